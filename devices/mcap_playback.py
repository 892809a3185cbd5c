"""Playback of a handtrack MCAP session recording (``--source FILE.mcap``): every frame set, in order.

Plays single cameras, RGB-D and rigs alike: all views of one recorded frame set come back together
(matched by the recorded frame-set index), with the recorded cameras (intrinsics with distortion,
extrinsics), depth, frame indices and timestamps (float seconds, bit for bit). The file is read
sequentially, so a recording whose writer was killed (no summary/index) plays up to its last
complete chunk. Layout: :mod:`devices.mcap_format`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from devices._common import DeviceBase, Pacer
from devices.mcap_format import (
    TOPIC_FRAMESET,
    RecordStream,
    camera_from_dict,
    decode_color,
    decode_depth,
)
from tracker.core.errors import DeviceNotFoundError, RecordingError
from tracker.core.structures import Camera, Frame, FrameSet

__all__ = ["McapPlaybackDevice"]

log = logging.getLogger(__name__)


class McapPlaybackDevice(DeviceBase):
    """A recording made by :class:`tracker.io.recording.RecordingWriter`, played frame set by frame set.

    Args:
        path: the ``.mcap`` file.
        realtime: if True, :meth:`read` sleeps so frame sets come at the recorded pace (counted from
            the first read); if False, as fast as they decode.
        loop: start again at the first frame set after the last; indices and timestamps keep rising
            (each pass is shifted by the recording's duration plus one mean frame interval).

    Attributes:
        frame_count: frame sets in one pass: from the file's summary when it has one (a cleanly
            closed recording), else 0 (unknown) until the first pass has played them all.
        truncated: after the end of a pass, why the file ended early (writer killed), else None.
    """

    live = False

    def __init__(self, path: str | os.PathLike[str], realtime: bool = False, loop: bool = False) -> None:
        self.path = Path(path)
        self.name = self.path.name
        self.realtime = realtime
        self.loop = loop
        self.frame_count = 0
        self._played = 0  # frame sets played in the first pass so far
        self.truncated: str | None = None
        self._iter: Iterator[FrameSet] | None = None
        self._pending: FrameSet | None = None  # the first frame set, decoded by open()
        self._color_schema: dict[int, str] = {}  # view -> schema name of its colour channel
        self._open = False
        self._pass = 0
        self._first: tuple[int, float] | None = None  # (index, timestamp) of the first frame set
        self._last: tuple[int, float] | None = None
        self._shift: tuple[int, float] = (0, 0.0)  # added to index / timestamp in the current pass
        self._pacer = Pacer()

    def open(self) -> None:
        """Check the file and prepare the first pass.

        Raises:
            DeviceNotFoundError: no file at ``path``.
            RecordingError: not an MCAP recording, or it holds no complete frame set.
        """
        if self._open:
            return
        if not self.path.is_file():
            what = "is a folder" if self.path.is_dir() else "does not exist"
            raise DeviceNotFoundError(f"recording {self.path} {what}: check the path")
        self._iter = self._framesets()
        self._pass = 0
        self._shift = (0, 0.0)
        self._first = self._last = None
        self._pacer = Pacer()
        self._played = 0
        self.frame_count = _summary_framesets(self.path)
        self._open = True
        # decode the first frame set now, so a file that is not a recording fails here, not in read()
        first = next(self._iter, None)
        if first is None:
            raise RecordingError(f"recording {self.path} holds no complete frame set"
                                 + (f" ({self.truncated})" if self.truncated else ""))  # fmt: skip
        self._pending = first
        log.info("%s: %d view(s) per frame set%s", self.name, len(first.frames), ", looping" if self.loop else "")

    def read(self) -> FrameSet | None:
        """The next frame set, or None after the last (with ``loop``, never).

        Raises:
            RecordingError: the file is corrupt (a CRC mismatch, an undecodable image) at this point.
            RuntimeError: the device is not open.
        """
        if not self._open or self._iter is None:
            raise self._not_open()
        fs, self._pending = self._pending, None
        if fs is None:
            fs = next(self._iter, None)
        if fs is None:
            if self._pass == 0:
                self.frame_count = self._played
                if self.truncated:
                    log.warning("%s: %s; played the %d complete frame set(s) it holds", self.name, self.truncated,
                                self._played)  # fmt: skip
            if not self.loop or self._first is None or self._last is None:
                return None
            self._pass += 1
            n = self._last[0] - self._first[0] + 1
            span = self._last[1] - self._first[1]
            step = span / (self._played - 1) if self._played > 1 else 1.0 / 30.0
            self._shift = (self._pass * n, self._pass * (span + step))
            log.info("%s: end of the recording; playing it again", self.name)
            self._iter = self._framesets()
            fs = next(self._iter, None)
            if fs is None:
                return None
        if self._pass == 0:
            self._played += 1
            if self._first is None:
                self._first = (fs.index, fs.timestamp)
            self._last = (fs.index, fs.timestamp)
        elif self._shift != (0, 0.0):
            fs = _shifted(fs, *self._shift)
        if self.realtime:
            self._pacer.wait(fs.timestamp)
        return fs

    def close(self) -> None:
        """Stop reading (closes the file); safe to call more than once."""
        if self._iter is not None:
            close = getattr(self._iter, "close", None)
            if close is not None:
                close()
        self._iter = None
        self._pending = None
        self._open = False

    def _framesets(self) -> Iterator[FrameSet]:
        """Decode the file's frame sets in order (a generator over one sequential pass)."""
        from mcap.records import Channel, Message, Schema

        stream = RecordStream(self.path)
        schemas: dict[int, str] = {}
        channels: dict[int, tuple[str, int | None, str]] = {}  # id -> (topic, view, kind)
        self._color_schema.clear()
        cameras: dict[int, Camera] = {}
        pending: dict[tuple[int, int, str], bytes] = {}  # (sequence, view, kind) -> message data
        for record in stream.records():
            if isinstance(record, Schema):
                schemas[record.id] = record.name
            elif isinstance(record, Channel):
                view = None if "view" not in record.metadata else int(record.metadata["view"])
                kind = record.topic.rsplit("/", 1)[-1]
                channels[record.id] = (record.topic, view, kind)
                if view is not None and kind == "color":
                    self._color_schema[view] = schemas.get(record.schema_id, "")
            elif isinstance(record, Message):
                topic, view, kind = channels.get(record.channel_id, ("", None, ""))
                if topic == TOPIC_FRAMESET:
                    yield self._assemble(json.loads(record.data), record.sequence, pending, cameras)
                elif view is not None and kind == "camera":
                    cameras[view] = camera_from_dict(json.loads(record.data))
                elif view is not None and kind in ("color", "depth"):
                    pending[(record.sequence, view, kind)] = record.data
        self.truncated = stream.truncated
        if stream.corrupt:
            raise RecordingError(f"recording {stream.corrupt} (after {self._played} good frame set(s)); "
                                 "`python -m tracker.io.recording check FILE` says more")  # fmt: skip

    def _assemble(self, marker: dict[str, Any], seq: int, pending: dict[tuple[int, int, str], bytes],
                  cameras: dict[int, Camera]) -> FrameSet:  # fmt: skip
        """The frame set of ``marker`` from the images queued under sequence ``seq``."""
        frames = []
        for v, view in enumerate(marker["views"]):
            color = pending.pop((seq, v, "color"), None)
            depth = pending.pop((seq, v, "depth"), None) if view.get("depth") else None
            if color is None or (view.get("depth") and depth is None) or v not in cameras:
                raise RecordingError(f"recording {self.path}: frame set {marker['index']} lacks the "
                                     f"{'camera' if v not in cameras else 'image'} of view {v}")  # fmt: skip
            image = decode_color(color, self._color_schema.get(v, ""))
            frames.append(Frame(image, float(view["timestamp"]), int(view["index"]), cameras[v],
                                None if depth is None else decode_depth(depth)))  # fmt: skip
        for key in [k for k in pending if k[0] == seq]:  # views beyond the marker's (should not happen)
            del pending[key]
        return FrameSet(tuple(frames), float(marker["timestamp"]), int(marker["index"]))


def _shifted(fs: FrameSet, d_index: int, d_time: float) -> FrameSet:
    """``fs`` moved by ``d_index`` frames and ``d_time`` seconds (later passes of a looped recording)."""
    import dataclasses

    frames = tuple(dataclasses.replace(f, index=f.index + d_index, timestamp=f.timestamp + d_time) for f in fs.frames)
    return FrameSet(frames, fs.timestamp + d_time, fs.index + d_index)


def _summary_framesets(path: Path) -> int:
    """Frame sets of a recording according to its summary (the frame-set records' message count),
    or 0 when the file has no summary (the writer was killed) or it cannot be read."""
    from mcap.reader import make_reader

    try:
        with open(path, "rb") as f:
            summary = make_reader(f).get_summary()
    except Exception as exc:  # noqa: BLE001 - no usable summary: the count is found by playing
        log.debug("%s: no summary (%s)", path, exc)
        return 0
    if summary is None or summary.statistics is None:
        return 0
    counts = summary.statistics.channel_message_counts
    return sum(counts.get(cid, 0) for cid, ch in summary.channels.items() if ch.topic == TOPIC_FRAMESET)
