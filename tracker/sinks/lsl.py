"""Streaming the joints to Lab Streaming Layer (``pylsl``): ``--lsl``.

One LSL stream, type ``Mocap``, name ``handtrack`` (``--lsl`` takes no argument; ``LslSink(name=...)``
for another), channel format float32, irregular rate (``nominal_srate`` 0: a sample per processed
frame; a live tracker drops frames when it falls behind) unless a rate is given. Recorders such as
LabRecorder find it by name or type and store it in XDF next to EEG, eye tracking and markers.

Channels: ``max_hands`` **slots** of 65 channels each, slot-major (slot ``k`` starts at channel
``65 * k``); 130 channels with the default two slots:

====================================  ===========  ==========================================================
label                                 unit         meaning
====================================  ===========  ==========================================================
``hand{k}_{joint}_x|y|z`` (63)        millimeters  21 joints of :mod:`tracker.core.joints` (``wrist``,
                                                   ``thumb_cmc`` ... ``pinky_tip``), joint-major
                                                   (``hand0_wrist_x, hand0_wrist_y, hand0_wrist_z,
                                                   hand0_thumb_cmc_x, ...``). A single camera: the camera
                                                   frame (OpenCV: x right, y down, z forward); a rig: the
                                                   rig's world frame. NaN where a joint is unknown.
``hand{k}_track_id``                  (none)       the tracker's id of the hand in this slot
``hand{k}_handedness``                (none)       1 right, -1 left, 0 unknown (the person's anatomical hand)
====================================  ===========  ==========================================================

An empty slot is NaN in all its 65 channels. A hand keeps its slot for as long as it is tracked
(same ``track_id``); a new hand takes the lowest free slot; a slot is freed in the first frame
without its hand. Hands beyond ``max_hands`` are left out (lowest track ids kept). The stream
info's ``desc`` holds ``channels/channel`` (``label``, ``unit``, ``type``: ``PositionX|Y|Z`` or
``TrackId`` / ``Handedness``, ``hand``, ``joint``) following the XDF meta-data conventions for
Mocap, plus ``acquisition`` (``manufacturer`` handtrack, ``model``) and ``reference_frame``
(``camera`` or ``world``).

Timestamps: each sample carries the frame's tracker timestamp mapped to the LSL clock by one
offset fixed at the first frame, ``lsl_time = frame.timestamp + (t_capture0 - frame0.timestamp)``,
where ``t_capture0`` = ``pylsl.local_clock()`` at the first sample minus that frame's loop
latency (``FrameResult.latency_ms``), i.e. when the first frame set reached the tracker. So the
intervals between samples are exactly the tracker's (camera clock, recording clock) and the first
sample is stamped when its frame was captured. Not corrected: drift between a device's own clock
and the host's (webcams are stamped with the host's monotonic clock, which is LSL's clock on Linux,
so they have none; a camera with its own clock may drift by tens of ppm, milliseconds per minute),
and playback with ``--speed max``, whose recorded time runs ahead of the host clock. If a
timestamp goes backwards (a source that restarts its clock), the offset is set again at that frame.

pylsl's wheel (1.18.6 here: ``pylsl.library_info()`` reports liblsl 1.18) ships liblsl, so ``pip
install pylsl`` is all it takes; without pylsl, :class:`LslSink` raises :class:`ConfigError`.

``push_sample`` copies the sample into liblsl's buffer and returns (tens of microseconds for 130
channels, never waiting for a consumer), so the sink pushes in the pipeline's thread.
"""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from tracker.core.errors import ConfigError
from tracker.core.joints import JOINT_NAMES, NUM_JOINTS
from tracker.core.structures import FrameResult, HandPose

__all__ = ["HANDEDNESS_CODE", "SLOT_CHANNELS", "LslSink", "channel_labels"]

log = logging.getLogger(__name__)

#: Channels per hand slot: 21 joints x 3 coordinates, then track id and handedness.
SLOT_CHANNELS = 3 * NUM_JOINTS + 2
#: Value of a slot's handedness channel.
HANDEDNESS_CODE: dict[str, float] = {"right": 1.0, "left": -1.0, "unknown": 0.0}


def channel_labels(max_hands: int) -> list[str]:
    """The channel labels of a stream with ``max_hands`` slots, in channel order."""
    labels = []
    for k in range(max_hands):
        labels += [f"hand{k}_{joint}_{axis}" for joint in JOINT_NAMES for axis in "xyz"]
        labels += [f"hand{k}_track_id", f"hand{k}_handedness"]
    return labels


def _import_pylsl() -> Any:
    try:
        import pylsl
    except Exception as exc:  # ImportError, or liblsl failing to load (OSError / RuntimeError)
        raise ConfigError(f"--lsl needs pylsl (pip install handtrack[lsl]): {exc}") from exc
    return pylsl


class LslSink:
    """Pushes one sample per result to an LSL outlet (layout and clock in the module docstring).

    Args:
        name: stream name.
        max_hands: hand slots (fixed channel count: ``65 * max_hands``).
        nominal_rate: frames per second announced (0: irregular).
        reference: the joints' frame announced in the stream info: ``"camera"`` (single camera) or
            ``"world"`` (rig).
        source_id: LSL's unique source id (lets an inlet reconnect after a restart); default
            ``{name}@{hostname}``.

    Attributes:
        samples_pushed: samples handed to liblsl.
        hands_left_out: hands not streamed because every slot was taken.

    Raises:
        ConfigError: pylsl (or its liblsl) is not available, ``max_hands`` < 1, ``nominal_rate`` < 0,
            or ``reference`` is not camera / world.
    """

    def __init__(self, name: str = "handtrack", max_hands: int = 2, nominal_rate: float = 0.0,
                 reference: str = "camera", source_id: str | None = None) -> None:  # fmt: skip
        if max_hands < 1:
            raise ConfigError(f"--lsl: max_hands must be at least 1, got {max_hands}")
        if not (math.isfinite(nominal_rate) and nominal_rate >= 0):
            raise ConfigError(f"--lsl: the nominal rate must be a frame rate >= 0 (0: irregular), got {nominal_rate}")
        if reference not in ("camera", "world"):
            raise ConfigError(f"--lsl: reference must be 'camera' or 'world', got {reference!r}")
        pylsl = _import_pylsl()
        self._pylsl = pylsl
        self.name = name
        self.max_hands = max_hands
        self.channel_count = SLOT_CHANNELS * max_hands
        source_id = source_id or f"{name}@{socket.gethostname()}"
        info = pylsl.StreamInfo(name, "Mocap", self.channel_count, nominal_rate, pylsl.cf_float32, source_id)
        self._describe(info, reference)
        self._outlet: Any = pylsl.StreamOutlet(info)
        self._slots: list[int | None] = [None] * max_hands  # track id held by each slot
        self._sample = np.full(self.channel_count, np.nan, dtype=np.float32)
        self._offset: float | None = None  # lsl time - tracker time, seconds
        self._last_ts = -math.inf
        self.samples_pushed = 0
        self.hands_left_out = 0
        self._closed = False
        log.info("LSL: stream %r (Mocap, %d channels = %d hand slots x %d) on %s", name, self.channel_count,
                 max_hands, SLOT_CHANNELS, source_id)  # fmt: skip

    def _describe(self, info: Any, reference: str) -> None:
        desc = info.desc()
        acquisition = desc.append_child("acquisition")
        acquisition.append_child_value("manufacturer", "handtrack")
        acquisition.append_child_value("model", "21-joint hand tracker (MediaPipe joint order)")
        desc.append_child_value("reference_frame", reference)
        channels = desc.append_child("channels")
        for k in range(self.max_hands):
            for joint in JOINT_NAMES:
                for axis in "xyz":
                    ch = channels.append_child("channel")
                    ch.append_child_value("label", f"hand{k}_{joint}_{axis}")
                    ch.append_child_value("unit", "millimeters")
                    ch.append_child_value("type", f"Position{axis.upper()}")
                    ch.append_child_value("hand", str(k))
                    ch.append_child_value("joint", joint)
            for label, kind in ((f"hand{k}_track_id", "TrackId"), (f"hand{k}_handedness", "Handedness")):
                ch = channels.append_child("channel")
                ch.append_child_value("label", label)
                ch.append_child_value("unit", "none")
                ch.append_child_value("type", kind)
                ch.append_child_value("hand", str(k))

    def assign_slots(self, hands: Sequence[HandPose]) -> list[HandPose | None]:
        """Update the track-id -> slot assignment with this frame's hands; the hand of each slot.

        Slots whose hand is gone are freed, hands already in a slot keep it, new hands take the
        lowest free slots in track-id order; hands left without a slot are counted and dropped."""
        by_id = {h.track_id: h for h in hands}
        self._slots = [tid if tid in by_id else None for tid in self._slots]
        for tid in sorted(by_id):
            if tid in self._slots:
                continue
            if None in self._slots:
                self._slots[self._slots.index(None)] = tid
            else:
                self.hands_left_out += 1
        return [None if tid is None else by_id[tid] for tid in self._slots]

    def __call__(self, result: FrameResult) -> None:
        """Push the sample of ``result`` (does nothing after :meth:`close`)."""
        if self._closed:
            return
        sample = self._sample
        sample[:] = np.nan
        for k, hand in enumerate(self.assign_slots(result.hands)):
            if hand is None:
                continue
            base = k * SLOT_CHANNELS
            joints = hand.joints_world if hand.joints_world is not None else hand.joints_3d
            if joints is not None:
                sample[base:base + 3 * NUM_JOINTS] = joints.reshape(-1)
            sample[base + 3 * NUM_JOINTS] = hand.track_id
            sample[base + 3 * NUM_JOINTS + 1] = HANDEDNESS_CODE.get(hand.handedness, 0.0)
        self._outlet.push_sample(sample, self.lsl_time(result))
        self.samples_pushed += 1

    def lsl_time(self, result: FrameResult) -> float:
        """``result``'s timestamp on the LSL clock (fixes the offset at the first frame)."""
        ts = result.timestamp
        if self._offset is None or ts < self._last_ts:
            captured = self._pylsl.local_clock() - result.latency_ms / 1000.0
            self._offset = captured - ts
        self._last_ts = ts
        return ts + self._offset

    def have_consumers(self) -> bool:
        """Whether any inlet is connected."""
        return self._outlet is not None and bool(self._outlet.have_consumers())

    def close(self) -> None:
        """Close the outlet (inlets see the stream end); safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._outlet = None  # liblsl destroys the outlet when the Python object goes
        log.info("LSL %r: %d samples pushed%s", self.name, self.samples_pushed,
                 f", {self.hands_left_out} hands over the {self.max_hands} slots left out" if self.hands_left_out else "")  # fmt: skip

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
