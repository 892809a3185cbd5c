"""Streaming the joints over OSC (Open Sound Control 1.0, UDP): ``--osc HOST:PORT``.

Each processed frame is sent as **one OSC bundle** (time tag "immediately") holding, in this order,
one ``/handtrack/frame`` message and then, for each hand, ``/handtrack/hand``, ``/handtrack/hand2d``
and ``/handtrack/confidence``. A bundle is one UDP datagram, so a receiver gets a frame whole or not
at all, never one hand of it. Every common receiver unpacks bundles into their messages
(TouchDesigner, Max ``udpreceive``, Pure Data, extOSC, OscJack, python-osc); for one that does not,
``OscSink(..., bundle=False)`` sends the same messages as separate datagrams, frame message first.

Messages (OSC type tags in brackets; ``f`` is float32, ``i`` int32, ``s`` string)::

    /handtrack/frame       [i f i]        frame_index, timestamp, hand_count
    /handtrack/hand        [i s f*63]     track_id, handedness, x0 y0 z0 x1 y1 z1 ... x20 y20 z20
    /handtrack/hand2d      [i i f*42]     track_id, view, u0 v0 u1 v1 ... u20 v20
    /handtrack/confidence  [i f f*21]     track_id, score, c0 c1 ... c20
    /handtrack/grip        [i i f i f]    track_id, pinch (0/1), pinch_distance_mm, grab (0/1),
                                          grab_strength 0..1         (--grip / --gestures)
    /handtrack/gesture     [i s f i i]    track_id, label, score, start_frame, end_frame
                                          (only on the frame a gesture completes, --gestures)

* ``frame_index``: the source's frame index (the ``frame_index`` of a JSONL export line).
* ``timestamp``: seconds since the first frame this sink sent, on the tracker's clock (the frame's
  timestamp minus the first frame's). It is relative because OSC floats are 32-bit: an absolute
  camera clock (seconds since boot) would lose its milliseconds; relative, the resolution is 1 ms
  or better for the first 2.3 hours (8 ms after 18 hours).
* ``hand_count``: how many hands follow (0: a frame without hands is still announced).
* ``track_id``: the hand's identity, kept while it is tracked; it starts every per-hand message,
  so a receiver matches the three messages of a hand by it.
* ``handedness``: ``"left"``, ``"right"`` (the person's anatomical hand) or ``"unknown"``.
* joints ``x y z``: millimetres, 21 joints in the order of :mod:`tracker.core.joints` (``wrist``,
  ``thumb_cmc``, ``thumb_mcp``, ``thumb_ip``, ``thumb_tip``, ``index_mcp`` ... ``pinky_tip``),
  joint-major. A single camera: the camera frame (OpenCV: x right, y down, z forward, origin at
  the camera). A rig (hands fused from several views, ``view`` -1 in ``/handtrack/hand2d``): the
  rig's world frame. NaN where a joint is unknown (no metric 3D yet, not triangulated).
* ``view``: the view whose image the pixels are in; -1 for a hand fused from a rig, whose pixels
  are then those of its reference view (the lowest-index view that saw it).
* ``u v``: pixels in that view's image (origin top-left).
* ``score``: hand presence 0..1; ``c0 .. c20``: per-joint confidence 0..1.

Sizes: a bundle is 60 + 748 bytes per hand (1556 bytes with two hands). Receivers with a 4 KB receive
buffer (OscJack) take up to five hands per frame; on a network, datagrams over ~1.4 KB are split
into IP fragments, which a LAN handles and a lossy Wi-Fi link loses more often.

Never blocking the pipeline: the sink's call only hands the result to the sink's own thread (a
two-slot mailbox, the newest frame wins: a frame replaced before it was sent is counted in
:attr:`OscSink.frames_dropped`). That thread encodes the bundle and sends it on a non-blocking UDP
socket; a receiver that is not running, a full socket buffer or an unreachable host cost one
failed ``sendto`` (counted in :attr:`OscSink.send_errors`, the first one logged) and nothing else.

Receiving: set the receiver to listen on the port given to ``--osc``. The default host is
127.0.0.1 (this machine); give the receiver machine's address to send elsewhere, or a subnet's
broadcast address (``--osc 192.168.1.255:9000``) to reach every receiver on it.

* **TouchDesigner**: an *OSC In DAT* on the port lists each message as a row (address, then its
  arguments, the handedness string included); select the rows of ``/handtrack/hand`` and read
  columns 2..64 as the coordinates. An *OSC In CHOP* turns the numeric arguments into channels
  named after the address; use it for ``/handtrack/frame`` and ``/handtrack/confidence``.
* **Max**: ``[udpreceive 9000]`` -> ``[route /handtrack/frame /handtrack/hand /handtrack/hand2d
  /handtrack/confidence]``; the ``/handtrack/hand`` outlet gives the list ``track_id handedness x0
  y0 z0 ...``: ``[zl slice 2]`` splits the id and side from the 63 coordinates, ``[zl iter 3]``
  then gives one ``x y z`` list per joint.
* **Unity**, extOSC: an ``OSCReceiver`` with ``LocalPort`` 9000, ``receiver.Bind("/handtrack/hand",
  OnHand)``, and in ``OnHand(OSCMessage m)``: ``m.Values[0].IntValue`` (track id),
  ``m.Values[1].StringValue`` (handedness), ``m.Values[2 + 3 * j + a].FloatValue`` (joint ``j``,
  axis ``a`` = 0, 1, 2 for x, y, z, mm). OscJack: ``new OscServer(9000)``, then
  ``server.MessageDispatcher.AddCallback("/handtrack/hand", (address, data) => ...)`` with
  ``data.GetElementAsInt(0)``, ``data.GetElementAsString(1)``, ``data.GetElementAsFloat(2 + 3 * j + a)``
  (the callback runs on OscJack's thread: hand the values to the main thread). Unity is
  left-handed with y up: ``new Vector3(x, -y, z) * 0.001f`` turns the camera frame (y down, mm)
  into metres with y up.
"""

from __future__ import annotations

import collections
import logging
import socket
import struct
import threading
from dataclasses import dataclass
from typing import Self

import numpy as np

from tracker.core.errors import ConfigError
from tracker.core.joints import NUM_JOINTS
from tracker.core.structures import FrameResult, HandPose

__all__ = ["DEFAULT_HOST", "OscSink", "OscTarget", "encode_frame"]

log = logging.getLogger(__name__)

#: Where ``--osc PORT`` sends when no host is given (this machine only).
DEFAULT_HOST = "127.0.0.1"

_IMMEDIATELY = struct.pack(">Q", 1)  # the OSC time tag that means "now"
_NAN3 = np.full((NUM_JOINTS, 3), np.nan)


@dataclass(frozen=True)
class OscTarget:
    """Where to send: a host name or address and a UDP port."""

    host: str
    port: int


def _osc_string(text: str) -> bytes:
    """An OSC string: UTF-8, NUL-terminated, padded with NULs to a multiple of 4 bytes."""
    raw = text.encode("utf-8") + b"\0"
    return raw + b"\0" * (-len(raw) % 4)


def _message(address: str, tags: str, payload: bytes) -> bytes:
    return _osc_string(address) + _osc_string("," + tags) + payload


def _floats(values: np.ndarray) -> bytes:
    """Big-endian float32s (NaN and inf pass through as IEEE values)."""
    return np.ascontiguousarray(values, dtype=">f4").tobytes()


def _hand_messages(hand: HandPose) -> list[bytes]:
    joints = hand.joints_world if hand.joints_world is not None else hand.joints_3d
    joints = _NAN3 if joints is None else joints
    tid = struct.pack(">i", int(hand.track_id))
    out = [
        _message("/handtrack/hand", "is" + "f" * (3 * NUM_JOINTS),
                 tid + _osc_string(hand.handedness) + _floats(joints.reshape(-1))),
        _message("/handtrack/hand2d", "ii" + "f" * (2 * NUM_JOINTS),
                 tid + struct.pack(">i", int(hand.view)) + _floats(hand.joints_2d.reshape(-1))),
        _message("/handtrack/confidence", "if" + "f" * NUM_JOINTS,
                 tid + struct.pack(">f", float(hand.score)) + _floats(hand.confidence)),
    ]  # fmt: skip
    if hand.grip is not None:
        g = hand.grip
        out.append(_message("/handtrack/grip", "iifif", tid + struct.pack(">ifif", int(g.pinch),
                            float(g.pinch_distance_mm), int(g.grab), float(g.grab_strength))))  # fmt: skip
    if hand.gesture is not None:
        e = hand.gesture
        out.append(_message("/handtrack/gesture", "isfii", tid + _osc_string(e.label)
                            + struct.pack(">fii", float(e.score), int(e.start_frame), int(e.end_frame))))  # fmt: skip
    return out


def encode_frame(result: FrameResult, timestamp: float) -> list[bytes]:
    """The OSC messages of one frame (layout in the module docstring), ``/handtrack/frame`` first.

    Args:
        result: the frame's result.
        timestamp: the value of the frame message's timestamp argument, seconds.
    """
    frame = _message("/handtrack/frame", "ifi",
                     struct.pack(">ifi", int(result.index), float(timestamp), len(result.hands)))  # fmt: skip
    return [frame] + [m for hand in result.hands for m in _hand_messages(hand)]


def _bundle(messages: list[bytes]) -> bytes:
    return b"#bundle\0" + _IMMEDIATELY + b"".join(struct.pack(">i", len(m)) + m for m in messages)


class OscSink:
    """Sends every result as OSC over UDP from its own thread (layout in the module docstring).

    Args:
        host: receiver's host name or address (default 127.0.0.1: this machine).
        port: receiver's UDP port.
        bundle: one bundle per frame (True) or separate datagrams per message (False).
        capacity: results waiting to be sent at most; when full the oldest is dropped.

    Attributes:
        frames_sent: frames handed to the OS (sent, as far as UDP can tell).
        frames_dropped: frames replaced by newer ones before the thread could send them.
        send_errors: datagrams the OS refused (receiver gone, buffer full, no route).

    Raises:
        ConfigError: ``port`` outside 1..65535, or ``host`` cannot be resolved.
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int = 9000, bundle: bool = True, capacity: int = 2) -> None:
        if not 1 <= port <= 65535:
            raise ConfigError(f"--osc: the port must be in 1..65535, got {port}")
        try:
            family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        except (OSError, UnicodeError) as exc:
            raise ConfigError(f"--osc {host}:{port}: cannot resolve the host {host!r} ({exc})") from exc
        self.target = OscTarget(host, port)
        self.bundle = bundle
        self._address = address
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        if family == socket.AF_INET:  # a subnet's broadcast address (192.168.1.255) reaches every receiver on it
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self._pending: collections.deque[FrameResult] = collections.deque(maxlen=max(1, capacity))
        self._cond = threading.Condition()
        self._closing = False
        self._t0: float | None = None
        self.frames_sent = 0
        self.frames_dropped = 0
        self.send_errors = 0
        self._thread = threading.Thread(target=self._run, name=f"osc-{host}:{port}", daemon=True)
        self._thread.start()
        log.info("OSC: sending to %s:%d (UDP%s)", host, port, ", one bundle per frame" if bundle else "")

    def __call__(self, result: FrameResult) -> None:
        """Queue ``result`` for sending (returns at once; after :meth:`close`, does nothing)."""
        with self._cond:
            if self._closing:
                return
            if len(self._pending) == self._pending.maxlen:
                self.frames_dropped += 1
            self._pending.append(result)
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    return
                result = self._pending.popleft()
            try:
                self._send(result)
            except Exception:  # a bad result must not end the thread silently
                log.exception("OSC: could not encode frame %d", result.index)

    def _send(self, result: FrameResult) -> None:
        if self._t0 is None:
            self._t0 = result.timestamp
        messages = encode_frame(result, result.timestamp - self._t0)
        ok = True
        for datagram in [_bundle(messages)] if self.bundle else messages:
            try:
                self._sock.sendto(datagram, self._address)
            except OSError as exc:  # refused (ICMP port unreachable), buffer full, no route, too big
                ok = False
                self.send_errors += 1
                if self.send_errors == 1:
                    log.warning("OSC %s:%d: sending failed (%s); frames keep being sent, further "
                                "failures are counted, not logged", self.target.host, self.target.port,
                                exc.strerror or exc)  # fmt: skip
        if ok:
            self.frames_sent += 1

    def close(self, timeout: float = 1.0) -> None:
        """Send what is queued, stop the thread (waits up to ``timeout`` s) and close the socket.

        Safe to call more than once."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        self._sock.close()
        log.info("OSC %s:%d: %d frames sent, %d dropped, %d send errors", self.target.host, self.target.port,
                 self.frames_sent, self.frames_dropped, self.send_errors)  # fmt: skip

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OscSink({self.target.host!r}, {self.target.port})"

