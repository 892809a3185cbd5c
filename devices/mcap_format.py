"""The layout of handtrack's MCAP session recordings, shared by the writer
(:mod:`tracker.io.recording`) and playback (:mod:`devices.mcap_playback`).

A recording is an `MCAP <https://mcap.dev>`_ file (profile ``handtrack``, zstd-compressed chunks
with CRCs). Images and calibrations use Foxglove's well-known protobuf schemas
(``foxglove_schemas_protobuf``), so Foxglove Studio / Lichtblick show them as they are; handtrack's own
records are JSON (``jsonschema`` encoding). Per view ``v`` (``PREFIX`` = ``/camera/<name>``, the camera
name made topic-safe, ``_<v>`` appended when two views share a name; every channel's metadata holds
``{"view": "v"}``):

=====================================  ==========================  ====================================
topic                                  schema                      content
=====================================  ==========================  ====================================
``PREFIX/color``                       ``foxglove.RawImage``       RGB image, ``rgb8`` (lossless, the
                                                                   default; the chunk's zstd compresses
                                                                   it), or ``foxglove.CompressedImage``
                                                                   ``jpeg`` (``--record-quality``);
                                                                   ``frame_id`` = camera name
``PREFIX/depth``                       ``foxglove.RawImage``       depth, ``16UC1`` little-endian,
                                                                   uint16 millimetres, 0 = no reading
``PREFIX/calibration``                 ``foxglove.CameraCalibration``  K, D (OpenCV order), R = I, P,
                                                                   width, height; every frame set
``PREFIX/camera``                      ``handtrack.Camera`` (JSON)  the exact :class:`Camera`: intrinsics
                                                                   (incl. ``dist``, ``approximate``),
                                                                   extrinsics world -> camera (R, t mm),
                                                                   depth unit; written when it changes
``/handtrack/hands``                   ``handtrack.Frame`` (JSON)   tracking result: the same object as
                                                                   a JSON Lines export line
``/handtrack/frameset``                ``handtrack.FrameSet`` (JSON)  written last for each frame set: its
                                                                   index, timestamp (float s, exact),
                                                                   each view's frame index / timestamp /
                                                                   depth flag, frames dropped so far
=====================================  ==========================  ====================================

Every message of frame set ``i`` has MCAP ``sequence = i mod 2**32`` and ``log_time`` =
``publish_time`` = its timestamp in integer nanoseconds (clamped at 0); the float seconds are in the
frame-set record, so playback reproduces them bit for bit. The frame-set record doubles as the commit
marker: a frame set whose record is missing (the writer died) is not played.

Metadata records: ``handtrack.recording`` (written before the first chunk: format version, handtrack
version, device, views, colour format / quality, depth unit, start wall-clock time) and
``handtrack.recording.end`` (written by a clean close: frame sets written, frames dropped).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

from tracker.core.errors import RecordingError
from tracker.core.structures import Camera, Extrinsics, Intrinsics

__all__ = [
    "DEPTH_UNIT_M",
    "FORMAT_VERSION",
    "JSON_SCHEMAS",
    "METADATA_END",
    "METADATA_START",
    "PROFILE",
    "TOPIC_FRAMESET",
    "TOPIC_HANDS",
    "RecordStream",
    "camera_from_dict",
    "camera_to_dict",
    "decode_color",
    "decode_depth",
    "read_start_metadata",
    "view_prefixes",
]

log = logging.getLogger(__name__)

PROFILE = "handtrack"
FORMAT_VERSION = 1
METADATA_START = "handtrack.recording"
METADATA_END = "handtrack.recording.end"
TOPIC_FRAMESET = "/handtrack/frameset"
TOPIC_HANDS = "/handtrack/hands"
#: Metres per depth unit: depth is stored in millimetres.
DEPTH_UNIT_M = 0.001

#: JSON schemas (``jsonschema`` encoding) of handtrack's JSON channels, by schema name.
JSON_SCHEMAS: dict[str, dict[str, Any]] = {
    "handtrack.FrameSet": {
        "type": "object",
        "properties": {
            "index": {"type": "integer"},
            "timestamp": {"type": "number", "description": "seconds"},
            "dropped": {"type": "integer", "description": "frame sets the writer dropped so far"},
            "views": {"type": "array", "items": {"type": "object", "properties": {
                "camera": {"type": "string"}, "index": {"type": "integer"},
                "timestamp": {"type": "number"}, "depth": {"type": "boolean"}}}},
        },
    },
    "handtrack.Camera": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "intrinsics": {"type": "object", "description": "fx, fy, cx, cy px; width, height; dist (OpenCV); "
                                                            "approximate"},
            "extrinsics": {"type": "object", "description": "world -> camera: R (3x3 rows), t_mm (3)"},
            "depth_unit_m": {"type": "number"},
        },
    },
    "handtrack.Frame": {
        "type": "object",
        "description": "a tracking result, as one line of a JSON Lines export",
        "properties": {"timestamp": {"type": "number"}, "frame_index": {"type": "integer"},
                       "hands": {"type": "array", "items": {"type": "object"}}},
    },
}  # fmt: skip


def view_prefixes(names: list[str]) -> list[str]:
    """Topic prefixes ``/camera/<name>`` of the views named ``names`` (characters other than letters,
    digits, ``_``, ``-`` and ``.`` become ``_``; a repeated name gets ``_<view>`` appended)."""
    safe = [re.sub(r"[^A-Za-z0-9_.-]", "_", n) or "view" for n in names]
    out = []
    for v, s in enumerate(safe):
        out.append(f"/camera/{s}" if safe.count(s) == 1 else f"/camera/{s}_{v}")
    return out


def camera_to_dict(camera: Camera) -> dict[str, Any]:
    """The exact JSON form of ``camera`` (floats round-trip through JSON unchanged)."""
    i, e = camera.intrinsics, camera.extrinsics
    return {
        "name": camera.name,
        "intrinsics": {"fx": float(i.fx), "fy": float(i.fy), "cx": float(i.cx), "cy": float(i.cy),
                       "width": int(i.width), "height": int(i.height), "dist": [float(d) for d in i.dist],
                       "approximate": bool(i.approximate)},
        "extrinsics": {"R": np.asarray(e.R, np.float64).tolist(), "t_mm": np.asarray(e.t, np.float64).tolist()},
        "depth_unit_m": DEPTH_UNIT_M,
    }  # fmt: skip


def camera_from_dict(d: dict[str, Any]) -> Camera:
    """Inverse of :func:`camera_to_dict`. Raises RecordingError for a malformed record."""
    try:
        i = d["intrinsics"]
        intr = Intrinsics(i["fx"], i["fy"], i["cx"], i["cy"], int(i["width"]), int(i["height"]),
                          tuple(float(x) for x in i["dist"]), bool(i.get("approximate", False)))  # fmt: skip
        e = d["extrinsics"]
        return Camera(str(d["name"]), intr, Extrinsics(np.array(e["R"], np.float64), np.array(e["t_mm"], np.float64)))
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordingError(f"malformed camera record in the recording ({exc}): {d!r:.200}") from exc


def decode_color(data: bytes, schema: str) -> np.ndarray:
    """A serialised colour message -> RGB uint8 ``(H, W, 3)``: ``foxglove.RawImage`` (``rgb8`` / ``bgr8``)
    or ``foxglove.CompressedImage`` (``jpeg`` / ``png``), as ``schema`` (the channel's schema name) says.

    Raises:
        RecordingError: the message or its image cannot be decoded.
    """
    import cv2
    from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage
    from foxglove_schemas_protobuf.RawImage_pb2 import RawImage

    if schema == "foxglove.RawImage":
        raw = _parse(RawImage, data, "colour image")
        if raw.encoding not in ("rgb8", "bgr8") or raw.step < 3 * raw.width or len(raw.data) != raw.step * raw.height:
            raise RecordingError(f"a colour image is not a {raw.width}x{raw.height} rgb8/bgr8 image "
                                 f"(encoding {raw.encoding!r}, {len(raw.data)} bytes, step {raw.step})")  # fmt: skip
        rows = np.frombuffer(raw.data, np.uint8).reshape(raw.height, raw.step)[:, : 3 * raw.width]
        image = rows.reshape(raw.height, raw.width, 3)
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if raw.encoding == "bgr8" else image.copy()
    if schema != "foxglove.CompressedImage":
        raise RecordingError(f"colour images of schema {schema!r} are not supported (foxglove.RawImage or "
                             "foxglove.CompressedImage)")  # fmt: skip
    msg = _parse(CompressedImage, data, "colour image")
    image = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise RecordingError(f"a {msg.format or 'compressed'} colour image in the recording cannot be decoded")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _parse(cls: Any, data: bytes, what: str) -> Any:
    msg = cls()
    try:
        msg.ParseFromString(data)
    except Exception as exc:
        raise RecordingError(f"a {what} message cannot be parsed: {exc}") from exc
    return msg


def decode_depth(data: bytes) -> np.ndarray:
    """A serialised ``foxglove.RawImage`` with encoding ``16UC1`` -> uint16 mm ``(H, W)``.

    Raises:
        RecordingError: not a parsable ``16UC1`` image of the stated size.
    """
    from foxglove_schemas_protobuf.RawImage_pb2 import RawImage

    msg = _parse(RawImage, data, "depth image")
    if msg.encoding not in ("16UC1", "mono16") or len(msg.data) != msg.step * msg.height or msg.step < 2 * msg.width:
        raise RecordingError(f"a depth image is not a {msg.width}x{msg.height} 16UC1 image "
                             f"(encoding {msg.encoding!r}, {len(msg.data)} bytes, step {msg.step})")  # fmt: skip
    rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)[:, : 2 * msg.width]
    # the schema (foxglove_schemas_protobuf 0.2) has no byte-order field: little-endian, as written
    return np.ascontiguousarray(rows).view("<u2").astype(np.uint16).reshape(msg.height, msg.width)


@dataclass
class RecordStream:
    """The records of an MCAP file in file order, read sequentially (no summary or index needed), so
    a file whose writer died plays up to its last complete chunk.

    Iterate :meth:`records`; afterwards ``complete`` says whether the footer was reached, and
    ``truncated`` / ``corrupt`` hold a description when reading stopped early (``truncated``: the file
    ends inside a record, as after ``kill -9``; ``corrupt``: a CRC mismatch or undecodable record).
    ``summary`` is True when the footer points at a summary section.

    Args:
        path: the file.

    Raises (from :meth:`records`):
        DeviceNotFoundError: no file at ``path``.
        RecordingError: not an MCAP file (no magic bytes).
    """

    path: str | os.PathLike[str]
    complete: bool = False
    summary: bool = False
    truncated: str | None = None
    corrupt: str | None = None
    bytes_read: int = 0
    _file: BinaryIO | None = field(default=None, repr=False)

    def records(self) -> Iterator[Any]:
        from mcap.exceptions import EndOfFile, McapError
        from mcap.records import Footer
        from mcap.stream_reader import StreamReader

        from tracker.core.errors import DeviceNotFoundError

        try:
            f = open(self.path, "rb")  # noqa: SIM115 - closed by the `with f:` below
        except FileNotFoundError as exc:
            raise DeviceNotFoundError(f"recording {self.path} does not exist: check the path") from exc
        except OSError as exc:
            raise DeviceNotFoundError(f"recording {self.path} cannot be opened: {exc.strerror or exc}") from exc
        with f:
            magic = f.read(8)
            if magic[:5] != b"\x89MCAP" or len(magic) < 8:
                raise RecordingError(f"{self.path} is not an MCAP recording (it does not start with the MCAP "
                                     "magic bytes); record one with --record FILE.mcap")  # fmt: skip
            f.seek(0)
            reader = StreamReader(f, validate_crcs=True)
            it = iter(reader.records)
            while True:
                try:
                    record = next(it)
                except StopIteration:
                    break
                except EndOfFile:
                    self.truncated = (f"{self.path} ends inside a record after {f.tell()} bytes (the writer "
                                      "did not close it: killed or out of power)")  # fmt: skip
                    break
                except (McapError, ValueError, OSError, EOFError) as exc:
                    # CRC mismatch (ValueError), bad zstd data, impossible record lengths
                    self.corrupt = f"{self.path}: unreadable data at byte ~{f.tell()}: {exc}"
                    break
                except Exception as exc:  # noqa: BLE001 - zstd raises its own ZstdError
                    self.corrupt = f"{self.path}: unreadable data at byte ~{f.tell()}: {type(exc).__name__}: {exc}"
                    break
                self.bytes_read = f.tell()
                if isinstance(record, Footer):
                    self.complete = True
                    self.summary = record.summary_start != 0
                yield record


def read_start_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``handtrack.recording`` metadata of a recording, values JSON-decoded where they are JSON.

    Reads only the start of the file (the record precedes the first chunk). Returns {} when the
    file holds no such record before its first message.

    Raises:
        DeviceNotFoundError, RecordingError: see :class:`RecordStream`.
    """
    from mcap.records import Message, Metadata

    stream = RecordStream(path)
    for record in stream.records():
        if isinstance(record, Metadata) and record.name == METADATA_START:
            return {k: _json_or_str(v) for k, v in record.metadata.items()}
        if isinstance(record, Message):
            break
    if stream.corrupt:
        raise RecordingError(stream.corrupt)
    return {}


def _json_or_str(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value
