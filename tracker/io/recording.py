"""Session recording to MCAP: every view's colour and depth, the cameras and the tracking results.

:class:`RecordingWriter` is a sink (``writer(result)`` with each :class:`FrameResult`) and can be
called on raw frame sets (``writer.record(frameset)``, e.g. when capturing without tracking). Calls
return at once: frame sets go through a bounded queue to the writer's own thread, which encodes and
writes them; when the queue is full the frame set is dropped and counted (:attr:`RecordingWriter.dropped`),
so recording never slows capture or tracking.

The file layout (topics, Foxglove schemas, metadata) is described in :mod:`devices.mcap_format`;
``--source FILE.mcap`` plays it (:class:`devices.mcap_playback.McapPlaybackDevice`).

Crash safety: the writer ends the current chunk and flushes (and fsyncs) the file at least every
``flush_interval_s`` seconds, so a process killed with ``-9`` leaves a file that plays to within
that interval of the kill; such a file has no summary/index, which ``repair`` restores.

Command line::

    python -m tracker.io.recording check FILE.mcap         # what is in it; exit 0 ok, 4 corrupt
    python -m tracker.io.recording repair FILE.mcap [-o OUT.mcap]   # add the summary after a crash

Exit codes: 0 ok, 2 usage or missing file, 4 not an MCAP file / corrupt data (``check`` of a file that
was cut short but is readable is 0 and says "no summary: run repair").
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import numpy as np

from devices.mcap_format import (
    DEPTH_UNIT_M,
    FORMAT_VERSION,
    JSON_SCHEMAS,
    METADATA_END,
    METADATA_START,
    PROFILE,
    TOPIC_FRAMESET,
    TOPIC_HANDS,
    RecordStream,
    camera_to_dict,
    view_prefixes,
)
from tracker.core.errors import DeviceNotFoundError, OutputError, RecordingError
from tracker.core.structures import Camera, Frame, FrameResult, FrameSet
from tracker.sinks.export import frame_json

__all__ = [
    "RECORD_SUFFIX",
    "RecordingInfo",
    "RecordingWriter",
    "check_record_path",
    "inspect_recording",
    "main",
    "repair_recording",
]  # fmt: skip

log = logging.getLogger(__name__)

RECORD_SUFFIX = ".mcap"


def _what_failed(exc: OSError) -> str:
    import errno

    return {errno.ENOSPC: "the disk is full (no space left on device)", errno.EROFS: "the file system is read-only",
            errno.EDQUOT: "the disk quota is exhausted", errno.EFBIG: "the file grew past the largest size allowed",
            }.get(exc.errno or 0, exc.strerror or str(exc))  # fmt: skip


def check_record_path(path: str | os.PathLike[str]) -> Path:
    """Check that ``path`` can become a recording, creating nothing (cheap: call it at start-up).

    Returns:
        ``path`` as a :class:`Path`.

    Raises:
        OutputError: the name does not end in ``.mcap``, ``path`` is a folder, its folder cannot be
            created (a parent is a file) or is not writable, or it is an existing file that is not writable.
    """
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"recording {p} is a folder: give a file name ending in .mcap")
    if p.suffix.lower() != RECORD_SUFFIX:
        raise OutputError(f"recording {p}: the file name must end in .mcap")
    if p.exists() and not os.access(p, os.W_OK):
        raise OutputError(f"recording {p} exists and is not writable: check its permissions or choose another file")
    folder = p.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"recording {p}: cannot create the folder {p.parent}, since {folder} is a file")
    if not p.exists() and not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"recording {p}: the folder {folder} is not writable (read-only file system or no "
                          "permission); record to another folder")  # fmt: skip
    return p


def _handtrack_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("handtrack")
    except PackageNotFoundError:
        return "unknown"


def _ns(seconds: float) -> int:
    """Seconds -> integer nanoseconds for MCAP times (which are unsigned: clamped at 0)."""
    return max(0, round(seconds * 1e9))


class _Channels:
    """The MCAP schemas and channels of one recording, registered on first use."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}

    def _schema(self, name: str, message_class: Any | None) -> int:
        if name not in self._schemas:
            if message_class is not None:
                from mcap_protobuf.schema import register_schema

                self._schemas[name] = register_schema(self._writer, message_class)
            else:
                data = json.dumps({"title": name, **JSON_SCHEMAS[name]}).encode()
                self._schemas[name] = self._writer.register_schema(name, "jsonschema", data)
        return self._schemas[name]

    def channel(self, topic: str, schema: str, message_class: Any | None = None, view: int | None = None) -> int:
        """The id of ``topic`` (protobuf ``message_class``, or JSON when None)."""
        if topic not in self._channels:
            metadata = {} if view is None else {"view": str(view)}
            encoding = "protobuf" if message_class is not None else "json"
            self._channels[topic] = self._writer.register_channel(topic, encoding, self._schema(schema, message_class),
                                                                  metadata)  # fmt: skip
        return self._channels[topic]


@dataclass
class _Item:
    frameset: FrameSet | None  # None: only the result's hands (the frame set was queued at capture)
    result: FrameResult | None


class RecordingWriter:
    """Records frame sets (and tracking results) to an MCAP file from its own thread.

    Args:
        path: the ``.mcap`` file (created with its folder; overwritten if it exists).
        quality: None for lossless colour (default: raw RGB in zstd-compressed chunks); 1..100 for
            JPEG of that quality (much smaller files for long sessions).
        record_hands: write each result's hands on ``/handtrack/hands`` (False when capturing without
            tracking: ``--record-only``).
        device: the source's name, stored in the metadata.
        info: more metadata (strings) to store, e.g. device serial numbers.
        queue_size: frame sets waiting to be written before new ones are dropped (~1 s at 30 FPS by
            default; memory: that many frame sets' images).
        flush_interval_s: the longest time between chunk ends / flushes to disk, seconds (at most
            this much is lost when the process is killed).
        chunk_size: bytes after which a chunk ends early (larger: better compression).
        fsync: also ``fsync`` at each flush (survives a power cut, not only a killed process).

    Attributes:
        path: the file.
        written: frame sets written so far.
        dropped: frame sets dropped because the writer could not keep up (never blocks the caller).
        dropped_results: results (hands) dropped the same way (recorders fed by :meth:`capture`).

    Raises:
        OutputError: the path is not usable (see :func:`check_record_path`) or the file cannot be created.
        ValueError: ``quality`` outside 1..100.
    """

    def __init__(self, path: str | os.PathLike[str], *, quality: int | None = None, record_hands: bool = True,
                 device: str = "", info: Mapping[str, str] | None = None, queue_size: int = 30,
                 flush_interval_s: float = 0.5, chunk_size: int = 4 << 20, fsync: bool = True) -> None:  # fmt: skip
        from mcap.writer import CompressionType, Writer

        if quality is not None and not 1 <= int(quality) <= 100:
            raise ValueError(f"JPEG quality must be 1..100, got {quality}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.path = check_record_path(path)
        self.quality = None if quality is None else int(quality)
        self.record_hands = record_hands
        self.device = device
        self.info = dict(info or {})
        self.flush_interval_s = float(flush_interval_s)
        self.fsync = fsync
        self.written = 0
        self.dropped = 0
        self.dropped_results = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise OutputError(f"cannot create recording {self.path}: {_what_failed(exc)}") from exc
        self._writer = Writer(self._file, chunk_size=chunk_size, compression=CompressionType.ZSTD, enable_crcs=True)
        self._writer.start(profile=PROFILE, library=f"handtrack {_handtrack_version()}")
        self._channels = _Channels(self._writer)
        self._cameras: dict[int, tuple[Camera, dict[str, Any]]] = {}  # view -> last camera written, its record
        self._prefixes: list[str] | None = None
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._error: OutputError | None = None
        self._closed = False
        self._last_flush = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"record-{self.path.name}", daemon=True)
        self._thread.start()
        log.info("recording to %s (%s colour, lossless depth)", self.path,
                 "lossless" if self.quality is None else f"JPEG q{self.quality}")  # fmt: skip

    # -- the caller's side -------------------------------------------------------------------------

    def __call__(self, result: FrameResult) -> None:
        """Sink: record ``result``'s frame set and (with ``record_hands``) its hands. Returns at once.

        Raises:
            OutputError: an earlier write failed (disk full...); the recording has stopped.
        """
        self.record(result.frameset, result if self.record_hands else None)

    def record(self, frameset: FrameSet, result: FrameResult | None = None) -> bool:
        """Queue ``frameset`` (and the hands of ``result``) for writing; never blocks.

        Returns:
            True when queued, False when dropped (the writer is behind; counted in :attr:`dropped`).

        Raises:
            OutputError: an earlier write failed; RuntimeError: the writer is closed.
        """
        if self._error is not None:
            raise self._error
        if self._closed:
            raise RuntimeError(f"recording {self.path} is closed")
        try:
            self._queue.put_nowait(_Item(frameset, result))
            return True
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("recording %s: the writer cannot keep up, %d frame set(s) dropped so far "
                            "(use --record-quality for JPEG, or a faster disk)", self.path, self.dropped)  # fmt: skip
            return False

    def capture(self, frameset: FrameSet) -> bool:
        """Tap for the capture thread (:class:`tracker.runtime.loop.StreamingLoop` ``taps``): queue
        every captured frame set, also those a live loop skips to stay live; pair it with
        :meth:`hands` as the sink. Never blocks; see :meth:`record`."""
        return self.record(frameset)

    def hands(self, result: FrameResult) -> None:
        """Sink for a recorder fed by :meth:`capture`: queue only ``result``'s hands (its frame set
        is already queued). A result the writer has no room for is counted in
        :attr:`dropped_results`; never blocks.

        Raises:
            OutputError: an earlier write failed.
        """
        if self._error is not None:
            raise self._error
        if self._closed or not self.record_hands:
            return
        try:
            self._queue.put_nowait(_Item(None, result))
        except queue.Full:
            self.dropped_results += 1

    def close(self) -> None:
        """Write what is queued, the end metadata and the summary/index, and close the file.

        Safe to call more than once.

        Raises:
            OutputError: writing failed (the file then plays up to the last flushed chunk).
        """
        if self._closed:
            if self._error is not None:
                raise self._error
            return
        self._closed = True
        self._stop.set()
        self._thread.join()
        try:
            # also after a failed write: an encoding error leaves the file writable, and a full disk fails here
            self._writer.add_metadata(METADATA_END, {"framesets": str(self.written), "dropped": str(self.dropped)})
            self._writer.finish()
            self._file.flush()
            if self.fsync:
                os.fsync(self._file.fileno())
        except OSError as exc:
            self._error = self._error or OutputError(f"recording {self.path}: finishing the file failed, {_what_failed(exc)}; "
                                      f"it plays up to the last flushed chunk (repair adds the index)")  # fmt: skip
        finally:
            try:
                self._file.close()
            except OSError as exc:
                self._error = self._error or OutputError(f"recording {self.path}: closing failed, {_what_failed(exc)}")
        if self.dropped:
            log.warning("recording %s: %d frame set(s) written, %d dropped (the writer could not keep up)",
                        self.path, self.written, self.dropped)  # fmt: skip
        else:
            log.info("recording %s: %d frame set(s) written", self.path, self.written)
        if self._error is not None:
            raise self._error

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the writer thread -------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return
                self._maybe_flush()
                continue
            try:
                self._write(item)
                if item.frameset is not None:
                    self.written += 1
                self._maybe_flush()
            except OSError as exc:
                self._error = OutputError(f"recording {self.path}: writing failed, {_what_failed(exc)}, after "
                                          f"{self.written} frame set(s). Free space or record to another disk.")  # fmt: skip
                log.error("%s", self._error)
                return
            except Exception as exc:  # noqa: BLE001 - an unencodable frame: stop recording, tell the caller
                index = item.frameset.index if item.frameset is not None else item.result.index  # type: ignore[union-attr]
                self._error = OutputError(f"recording {self.path}: frame set {index} cannot be "
                                          f"recorded ({type(exc).__name__}: {exc}); stopped after "
                                          f"{self.written} frame set(s)")  # fmt: skip
                log.error("%s", self._error)
                return

    def _maybe_flush(self) -> None:
        now = time.monotonic()
        if now - self._last_flush < self.flush_interval_s:
            return
        self._last_flush = now
        self._writer.flush()  # ends the chunk in progress and flushes the stream
        if self.fsync:
            os.fsync(self._file.fileno())

    def _start_metadata(self, frameset: FrameSet) -> None:
        names = [f.camera.name for f in frameset.frames]
        self._prefixes = view_prefixes(names)
        meta = {
            "format_version": str(FORMAT_VERSION),
            "handtrack_version": _handtrack_version(),
            "device": self.device,
            "views": json.dumps(names),
            "topics": json.dumps(self._prefixes),
            "color_format": "rgb8" if self.quality is None else "jpeg",
            "jpeg_quality": "" if self.quality is None else str(self.quality),
            "depth_unit_m": str(DEPTH_UNIT_M),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            **self.info,
        }
        self._writer.add_metadata(METADATA_START, meta)

    def _write(self, item: _Item) -> None:
        fs = item.frameset
        if fs is None:  # the hands of a frame set written at capture
            if self._prefixes is not None and item.result is not None:
                t_ns, seq = _ns(item.result.timestamp), item.result.index & 0xFFFFFFFF
                data = frame_json(item.result).encode()
                self._writer.add_message(self._channels.channel(TOPIC_HANDS, "handtrack.Frame"), t_ns, data, t_ns, seq)
            return
        if self._prefixes is None:
            self._start_metadata(fs)
        assert self._prefixes is not None
        if len(fs.frames) != len(self._prefixes):
            log.warning("recording %s: frame set %d has %d views, the recording %d; skipped", self.path, fs.index,
                        len(fs.frames), len(self._prefixes))  # fmt: skip
            return
        seq = fs.index & 0xFFFFFFFF
        t_ns = _ns(fs.timestamp)
        for v, (frame, prefix) in enumerate(zip(fs.frames, self._prefixes, strict=True)):
            self._write_view(v, frame, prefix, seq)
        if item.result is not None:
            data = frame_json(item.result).encode()
            self._writer.add_message(self._channels.channel(TOPIC_HANDS, "handtrack.Frame"), t_ns, data, t_ns, seq)
        marker = {"index": fs.index, "timestamp": fs.timestamp, "dropped": self.dropped,
                  "views": [{"camera": f.camera.name, "index": f.index, "timestamp": f.timestamp,
                             "depth": f.depth is not None} for f in fs.frames]}  # fmt: skip
        data = json.dumps(marker, separators=(",", ":")).encode()
        self._writer.add_message(self._channels.channel(TOPIC_FRAMESET, "handtrack.FrameSet"), t_ns, data, t_ns, seq)

    def _write_view(self, v: int, frame: Frame, prefix: str, seq: int) -> None:
        import cv2
        from foxglove_schemas_protobuf.CameraCalibration_pb2 import CameraCalibration
        from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage
        from foxglove_schemas_protobuf.RawImage_pb2 import RawImage

        t_ns = _ns(frame.timestamp)
        cam = frame.camera
        last = self._cameras.get(v)
        record = None if last is not None and last[0] is cam else camera_to_dict(cam)
        if record is not None and (last is None or last[1] != record):
            self._cameras[v] = (cam, record)
            data = json.dumps(record).encode()
            self._writer.add_message(self._channels.channel(f"{prefix}/camera", "handtrack.Camera", view=v),
                                     t_ns, data, t_ns, seq)  # fmt: skip
        calib = _calibration(cam, t_ns)
        self._writer.add_message(self._channels.channel(f"{prefix}/calibration", "foxglove.CameraCalibration",
                                                        CameraCalibration, v), t_ns, calib, t_ns, seq)  # fmt: skip
        image = np.ascontiguousarray(frame.image, dtype=np.uint8)
        h, w = image.shape[:2]
        if self.quality is None:  # lossless: raw RGB, compressed by the chunk's zstd (~5x faster than PNG)
            msg: Any = RawImage(frame_id=cam.name, width=w, height=h, encoding="rgb8", step=3 * w, data=image.tobytes())
            schema, cls = "foxglove.RawImage", RawImage
        else:
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                                   [cv2.IMWRITE_JPEG_QUALITY, self.quality])  # fmt: skip
            if not ok:
                raise OSError(f"cannot JPEG-encode the image of view {v} ({frame.image.shape})")
            msg = CompressedImage(frame_id=cam.name, format="jpeg", data=buf.tobytes())
            schema, cls = "foxglove.CompressedImage", CompressedImage
        msg.timestamp.FromNanoseconds(t_ns)
        self._writer.add_message(self._channels.channel(f"{prefix}/color", schema, cls, v), t_ns,
                                 msg.SerializeToString(), t_ns, seq)  # fmt: skip
        if frame.depth is not None:
            depth = np.ascontiguousarray(frame.depth, dtype="<u2")
            h, w = depth.shape
            raw = RawImage(frame_id=cam.name, width=w, height=h, encoding="16UC1", step=2 * w,
                           data=depth.tobytes())  # fmt: skip
            raw.timestamp.FromNanoseconds(t_ns)
            self._writer.add_message(self._channels.channel(f"{prefix}/depth", "foxglove.RawImage", RawImage, v),
                                     t_ns, raw.SerializeToString(), t_ns, seq)  # fmt: skip


def _calibration(camera: Camera, t_ns: int) -> bytes:
    """``camera`` as a serialised ``foxglove.CameraCalibration`` (ROS conventions: R = I, P = [K | 0])."""
    from foxglove_schemas_protobuf.CameraCalibration_pb2 import CameraCalibration

    i = camera.intrinsics
    model = "plumb_bob" if len(i.dist) <= 5 else "rational_polynomial"
    msg = CameraCalibration(frame_id=camera.name, width=i.width, height=i.height, distortion_model=model,
                            D=[float(d) for d in i.dist], K=i.K.ravel().tolist(),
                            R=np.eye(3).ravel().tolist(), P=np.hstack([i.K, np.zeros((3, 1))]).ravel().tolist())  # fmt: skip
    msg.timestamp.FromNanoseconds(t_ns)
    return msg.SerializeToString()


# -- check and repair ------------------------------------------------------------------------------


@dataclass
class RecordingInfo:
    """What :func:`inspect_recording` found in a file.

    Attributes:
        path: the file; size: its bytes.
        complete: the footer was reached; summary: it points at a summary section (index present).
        truncated / corrupt: why reading stopped early, or None.
        framesets: complete frame sets (frame-set records); views: camera names per frame set.
        first_timestamp, last_timestamp: of the first / last complete frame set, seconds.
        channels: topic -> (schema name, message encoding, message count).
        metadata: name -> key/value records.
        dropped: frame sets the writer dropped (from the end record, else the last frame-set record).
    """

    path: Path
    size: int
    complete: bool
    summary: bool
    truncated: str | None
    corrupt: str | None
    framesets: int
    views: list[str]
    first_timestamp: float | None
    last_timestamp: float | None
    channels: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)
    dropped: int = 0

    @property
    def duration_s(self) -> float:
        if self.first_timestamp is None or self.last_timestamp is None:
            return 0.0
        return self.last_timestamp - self.first_timestamp

    def describe(self) -> str:
        lines = [(f"{self.path}: {self.size / 1e6:.1f} MB, {self.framesets} frame set(s), "
                  f"{len(self.views)} view(s) {', '.join(self.views) or '-'}, {self.duration_s:.3f} s")]  # fmt: skip
        if self.first_timestamp is not None:
            lines.append(f"  timestamps: {self.first_timestamp:.6f} .. {self.last_timestamp:.6f} s")
        lines.append(f"  summary/index: {'present' if self.summary else 'missing'}")
        if self.truncated:
            lines.append(f"  truncated: {self.truncated}; run `python -m tracker.io.recording repair {self.path}`")
        if self.corrupt:
            lines.append(f"  CORRUPT: {self.corrupt}")
        lines.append(f"  dropped frame sets: {self.dropped}")
        for name, meta in self.metadata.items():
            lines.append(f"  metadata {name}: " + ", ".join(f"{k}={v}" for k, v in meta.items()))
        lines.append("  channels:")
        for topic, (schema, encoding, count) in sorted(self.channels.items()):
            lines.append(f"    {topic:40s} {schema} ({encoding}): {count} message(s)")
        return "\n".join(lines)


def inspect_recording(path: str | os.PathLike[str]) -> RecordingInfo:
    """Read ``path`` through (sequentially; no index needed) and say what it holds.

    Raises:
        DeviceNotFoundError: no such file; RecordingError: not an MCAP file.
    """
    from mcap.records import Channel, Message, Metadata, Schema

    stream = RecordStream(path)
    schemas: dict[int, str] = {}
    channels: dict[int, Channel] = {}
    counts: dict[int, int] = {}
    metadata: dict[str, dict[str, str]] = {}
    framesets, views, first, last, dropped = 0, [], None, None, 0
    for record in stream.records():
        if isinstance(record, Schema):
            schemas[record.id] = record.name
        elif isinstance(record, Channel):
            channels[record.id] = record
        elif isinstance(record, Metadata):
            metadata[record.name] = dict(record.metadata)
        elif isinstance(record, Message):
            counts[record.channel_id] = counts.get(record.channel_id, 0) + 1
            ch = channels.get(record.channel_id)
            if ch is not None and ch.topic == TOPIC_FRAMESET:
                marker = json.loads(record.data)
                framesets += 1
                first = marker["timestamp"] if first is None else first
                last = marker["timestamp"]
                views = [v["camera"] for v in marker["views"]]
                dropped = int(marker.get("dropped", 0))
    if METADATA_END in metadata:
        dropped = int(metadata[METADATA_END].get("dropped", dropped))
    return RecordingInfo(
        path=Path(path), size=Path(path).stat().st_size, complete=stream.complete, summary=stream.summary,
        truncated=stream.truncated, corrupt=stream.corrupt, framesets=framesets, views=views,
        first_timestamp=first, last_timestamp=last, dropped=dropped, metadata=metadata,
        channels={c.topic: (schemas.get(c.schema_id, ""), c.message_encoding, counts.get(i, 0))
                  for i, c in channels.items()},
    )  # fmt: skip


def repair_recording(path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> RecordingInfo:
    """Rewrite a recording (e.g. one cut short by ``kill -9``) into a complete file with summary and index.

    Keeps every record up to the last complete chunk (a frame set whose images were written but not its
    frame-set record is kept too; playback skips it). ``out`` None rewrites ``path`` in place (through a
    temporary file renamed over it).

    Returns:
        :func:`inspect_recording` of the result.

    Raises:
        DeviceNotFoundError, RecordingError: ``path`` is missing or not an MCAP file.
        OutputError: the output cannot be written.
    """
    from mcap.records import Channel, Header, Message, Metadata, Schema
    from mcap.writer import CompressionType, Writer

    src = Path(path)
    dst = Path(out) if out is not None else src
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.partial")
    stream = RecordStream(src)
    schema_ids: dict[int, int] = {}
    channel_ids: dict[int, int] = {}
    schemas: dict[int, Schema] = {}
    try:
        with open(tmp, "wb") as f:
            writer: Writer | None = None
            for record in stream.records():
                if isinstance(record, Header):
                    writer = Writer(f, compression=CompressionType.ZSTD, enable_crcs=True)
                    writer.start(profile=record.profile, library=record.library)
                    continue
                if writer is None:
                    raise RecordingError(f"{src}: no MCAP header record at the start")
                if isinstance(record, Schema):
                    schemas[record.id] = record
                    schema_ids[record.id] = writer.register_schema(record.name, record.encoding, record.data)
                elif isinstance(record, Channel):
                    channel_ids[record.id] = writer.register_channel(
                        record.topic, record.message_encoding, schema_ids.get(record.schema_id, 0), record.metadata)
                elif isinstance(record, Metadata):
                    writer.add_metadata(record.name, record.metadata)
                elif isinstance(record, Message) and record.channel_id in channel_ids:
                    writer.add_message(channel_ids[record.channel_id], record.log_time, record.data,
                                       record.publish_time, record.sequence)  # fmt: skip
            if writer is None:
                raise RecordingError(f"{src}: no MCAP header record at the start")
            writer.finish()
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"repair of {src}: cannot write {dst}: {_what_failed(exc)}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if stream.corrupt:
        log.warning("%s; kept the records before it", stream.corrupt)
    return inspect_recording(dst)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tracker.io.recording check|repair FILE``. Returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m tracker.io.recording",
                                     description="Inspect or repair a handtrack MCAP recording.")  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    p_check = sub.add_parser("check", help="say what is in a recording (exit 0 readable, 4 corrupt)")
    p_check.add_argument("file")
    p_repair = sub.add_parser("repair", help="rewrite a recording without summary/index (after a crash) into a "
                                             "complete one")  # fmt: skip
    p_repair.add_argument("file")
    p_repair.add_argument("-o", "--output", help="write the repaired file here (default: replace FILE)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        if args.command == "check":
            info = inspect_recording(args.file)
        else:
            info = repair_recording(args.file, args.output)
            print(f"repaired: {info.path}")
    except DeviceNotFoundError as exc:
        log.error("%s", exc)
        return 2
    except RecordingError as exc:
        log.error("%s", exc)
        return 4
    except OutputError as exc:
        log.error("%s", exc)
        return 3
    print(info.describe())
    return 4 if info.corrupt else 0


if __name__ == "__main__":
    sys.exit(main())
