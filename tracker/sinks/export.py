"""Writing tracking results to files: JSON Lines, CSV or NPZ, chosen by the file extension.

Joints are in the order of :mod:`tracker.core.joints` (``wrist``, ``thumb_cmc`` ... ``pinky_tip``,
21 names). Pixels (px) are in the image of the hand's view; ``joints_3d`` are millimetres in that
camera's frame (OpenCV convention: x right, y down, z forward); ``joints_world`` are millimetres in a
rig's world frame. Every format holds one entry per hand and frame; frames without hands are kept
(a line in ``.jsonl``, a ``frame_*`` entry in ``.npz``; ``.csv`` has rows for hands only).

``.jsonl`` / ``.ndjson``: one JSON object per processed frame, one line each::

    {"timestamp": s (6 decimals), "frame_index": int,
     "hands": [{"id": track id, "handedness": "left" | "right" | "unknown",
                "handedness_score": 0..1, "score": 0..1, "view": int (-1: fused from a rig),
                "joints_2d": 21 x [u, v] px, "joints_3d": 21 x [x, y, z] mm or null,
                "confidence": 21 x 0..1,
                "joints_world": 21 x [x, y, z] mm,       # rig hands only
                "uncertainty_mm": 21 x 1-sigma mm,      # rig hands only
                "grip": {"pinch": bool, "pinch_distance_mm": mm, "grab": bool,
                         "grab_strength": 0..1},        # --grip / --gestures
                "gesture": {"label": name, "score": 0..1, "start_frame": int, "end_frame": int,
                            "start_time": s, "end_time": s}}]}  # on the frame a gesture completes

  px and mm are rounded to 0.01, scores to 1e-4; a non-finite number (an unknown joint, a joint
  that was not triangulated) is ``null``.

``.csv``: a header line, then one row per hand per frame (rows end in ``\\r\\n``), 133 columns:

  ====================================  =============================================================
  ``timestamp``                         s, 6 decimals
  ``frame_index``                       int
  ``id``                                track id (int)
  ``handedness``                        ``left`` / ``right`` / ``unknown``
  ``handedness_score``, ``score``       0..1, 4 decimals
  ``view``                              int (-1: fused from a rig)
  ``{joint}_u``, ``{joint}_v``          px, 2 decimals; 21 joints x 2 = 42 columns, joint-major
                                        (``wrist_u, wrist_v, thumb_cmc_u, ...``)
  ``{joint}_x``, ``{joint}_y``,         mm in the camera frame, 2 decimals, empty when unknown;
  ``{joint}_z``                         63 columns, joint-major (``wrist_x, wrist_y, wrist_z, ...``)
  ``{joint}_conf``                      0..1, 4 decimals; 21 columns
  ====================================  =============================================================

  CSV keeps the camera-frame columns only (no ``joints_world`` / ``uncertainty_mm``).

``.npz`` (written when the exporter closes): ``F`` frames, ``H`` hand rows over all frames:

  ====================  ==============  ==========  ===============================================
  array                 shape           dtype       meaning
  ====================  ==============  ==========  ===============================================
  ``frame_timestamp``   (F,)            float64     s
  ``frame_index``       (F,)            int64       the source's frame index
  ``hand_frame``        (H,)            int64       row of the hand's frame in the ``frame_*`` arrays
  ``track_id``          (H,)            int64       track id
  ``handedness``        (H,)            <U7         ``left`` / ``right`` / ``unknown``
  ``handedness_score``  (H,)            float64     0..1
  ``score``             (H,)            float64     0..1
  ``view``              (H,)            int64       -1: fused from a rig
  ``joints_2d``         (H, 21, 2)      float64     px
  ``joints_3d``         (H, 21, 3)      float64     mm, camera frame; NaN when unknown
  ``confidence``        (H, 21)         float64     0..1
  ``joints_world``      (H, 21, 3)      float64     mm, rig world frame; NaN for single-camera hands
  ``uncertainty_mm``    (H, 21)         float64     1-sigma mm; NaN without, inf where not triangulated
  ``joint_names``       (21,)           <U10        the joint order
  ``pinch``, ``grab``   (H,)            bool        grip state (these 8 arrays only with --grip /
                                                    --gestures)
  ``pinch_distance_mm`` (H,)            float64     thumb tip -> index tip mm; NaN without
  ``grab_strength``     (H,)            float64     0 open .. 1 fist; NaN without
  ``gesture``           (H,)            <U64        gesture completed on this frame, "" none
  ``gesture_score``     (H,)            float64     its score; NaN without
  ``gesture_start_frame``, ``gesture_end_frame``  (H,) int64  its frames; -1 without
  ====================  ==============  ==========  ===============================================

Errors. Every failure to create or write the file raises :class:`~tracker.core.errors.OutputError`
naming the file, what happened and how many frames were written:

* :func:`check_export_path` (cheap, creates nothing) and :func:`open_exporter` refuse an unknown
  extension, a path that is a folder, a folder that cannot be created, and a folder or file that is
  not writable, before any frame is processed.
* ``.jsonl`` / ``.csv`` write each frame's lines with one write call, straight to the file (no
  buffer), so an interrupted run keeps every frame written so far. When a write fails (the disk
  fills: ENOSPC; a size limit: EFBIG; any other OSError) a regular file is truncated back to the
  last complete frame, so it always ends on a complete line.
* A pipe (FIFO) export whose reader goes away (EPIPE) ends the export with an OutputError saying so
  (like any Unix pipeline whose reader quits, the writer stops).
* ``.npz`` is written to a hidden temporary file in the same folder (``.NAME.PID.partial``) and
  renamed over ``path`` at the end, so an interrupted or failed run leaves no half ``.npz``.

Standard output. The path ``-`` (:data:`STDOUT`) exports JSON Lines to the process's standard
output, for shell pipelines (``handtrack --no-view --export - | jq .hands``): each frame is one
unbuffered write of one line, so a reader sees every frame as soon as it is processed. The
program's logs go to standard error, so standard output holds the JSON lines only. A reader that
quits (``| head -n 2``) ends the export like a FIFO's (:class:`OutputError`, "the program reading
this pipe closed it"). A file literally named ``-`` is written as ``./-``.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
import stat
import sys
from pathlib import Path
from typing import Any, Self

import numpy as np

from tracker.core.errors import OutputError
from tracker.core.joints import JOINT_NAMES, NUM_JOINTS
from tracker.core.structures import FrameResult, HandPose

__all__ = [
    "frame_to_dict",
    "frame_json",
    "Exporter",
    "JsonlExporter",
    "CsvExporter",
    "NpzExporter",
    "EXPORT_SUFFIXES",
    "STDOUT",
    "check_export_path",
    "open_exporter",
    "hand_to_dict",
    "read_jsonl",
]


def _round(a: np.ndarray, decimals: int) -> list[Any]:
    return [[None if not math.isfinite(v) else round(float(v), decimals) for v in row] for row in a]


def hand_to_dict(hand: HandPose) -> dict[str, Any]:
    """A JSON-ready dict of one hand (px and mm rounded to 0.01, NaN / inf -> null).

    ``joints_world`` and ``uncertainty_mm`` are present only when the hand has them (rig mode)."""
    out = {
        "id": hand.track_id,
        "handedness": hand.handedness,
        "handedness_score": round(hand.handedness_score, 4),
        "score": round(hand.score, 4),
        "view": hand.view,
        "joints_2d": _round(hand.joints_2d, 2),
        "joints_3d": None if hand.joints_3d is None else _round(hand.joints_3d, 2),
        "confidence": [round(float(c), 4) for c in hand.confidence],
    }
    if hand.joints_world is not None:
        out["joints_world"] = _round(hand.joints_world, 2)
    if hand.uncertainty_mm is not None:
        out["uncertainty_mm"] = _round(np.asarray(hand.uncertainty_mm).reshape(1, -1), 2)[0]
    if hand.grip is not None:
        g = hand.grip
        out["grip"] = {"pinch": g.pinch, "pinch_distance_mm": round(g.pinch_distance_mm, 2), "grab": g.grab,
                       "grab_strength": round(g.grab_strength, 4)}  # fmt: skip
    if hand.gesture is not None:
        e = hand.gesture
        out["gesture"] = {"label": e.label, "score": round(e.score, 4), "start_frame": e.start_frame,
                          "end_frame": e.end_frame, "start_time": round(e.start_time, 6),
                          "end_time": round(e.end_time, 6)}  # fmt: skip
    return out


def frame_to_dict(result: FrameResult) -> dict[str, Any]:
    """The JSON Lines object of one frame: ``timestamp`` (s), ``frame_index``, ``hands``
    (:func:`hand_to_dict`). The same object goes to WebSocket clients and into recordings."""
    return {
        "timestamp": round(result.timestamp, 6),
        "frame_index": result.index,
        "hands": [hand_to_dict(h) for h in result.hands],
    }


def frame_json(result: FrameResult) -> str:
    """:func:`frame_to_dict` as compact JSON text (one JSON Lines line, without the newline)."""
    return json.dumps(frame_to_dict(result), separators=(",", ":"))


def _what_failed(exc: OSError) -> str:
    """A short human description of a write error."""
    if exc.errno == errno.ENOSPC:
        return "the disk is full (no space left on device)"
    if exc.errno == errno.EFBIG:
        return "the file grew past the largest size allowed (file too large)"
    if exc.errno == errno.EROFS:
        return "the file system is read-only"
    if exc.errno == errno.EDQUOT:
        return "the disk quota is exhausted"
    return exc.strerror or str(exc)


def _frames(n: int) -> str:
    return f"{n} frame{'' if n == 1 else 's'}"


class Exporter:
    """Base: a sink called with each :class:`FrameResult`; ``close()`` finishes the file.

    Attributes:
        path: the file written.
        frames_written: frames completely written (``.npz``: received) so far.
    """

    path: Path
    frames_written: int = 0

    def __call__(self, result: FrameResult) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: The export path that means standard output (JSON Lines).
STDOUT = "-"


def _is_stdout(path: str | os.PathLike[str]) -> bool:
    return os.fspath(path) == STDOUT


def _stdout_fd() -> int:
    """The file descriptor behind ``sys.stdout`` (1 when it has none, e.g. replaced by a capture)."""
    try:
        sys.stdout.flush()
        return sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # io.UnsupportedOperation is an OSError and a ValueError
        return 1


class _LineExporter(Exporter):
    """Streams text lines to a file (created with its parent folders), a FIFO or standard output (``-``).

    Each frame's lines are encoded and handed to the OS in one unbuffered write (retried for a
    short write), so the file only ever grows by whole frames; on a failed write a regular file is
    truncated back to the last whole frame and :class:`OutputError` is raised.

    Raises:
        OutputError: the file cannot be created or written.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.frames_written = 0
        stdout = _is_stdout(path)
        self._label = "(standard output)" if stdout else str(self.path)
        try:
            if stdout:  # never closed here: the descriptor belongs to the process
                self._f: io.FileIO | None = io.FileIO(_stdout_fd(), "w", closefd=False)
            else:
                _make_parent(self.path)
                self._f = io.FileIO(self.path, "w")  # a FIFO: blocks until a reader opens it
            mode = os.fstat(self._f.fileno()).st_mode
        except OSError as exc:
            raise OutputError(f"cannot create export {self._label}: {_what_failed(exc)}") from exc
        # standard output redirected to a file may hold earlier output (``>>``): never truncate it
        self._regular = stat.S_ISREG(mode) and not stdout
        self._pipe = stat.S_ISFIFO(mode)
        self._complete = 0  # bytes of whole frames in the file
        self._error: OutputError | None = None

    def _write(self, text: str) -> None:
        """Write ``text`` (whole lines) completely, or restore the last whole frame and raise."""
        if self._f is None:
            raise self._error or OutputError(f"export {self._label} is closed")
        encoded = text.encode("utf-8")
        data = memoryview(encoded)
        try:
            while data:
                n = self._f.write(data)
                if not n:
                    raise OSError(errno.EIO, "the file accepted no bytes")
                data = data[n:]
        except OSError as exc:
            self._fail(exc)
        self._complete += len(encoded)

    def _fail(self, exc: OSError) -> None:
        assert self._f is not None
        if isinstance(exc, BrokenPipeError) or exc.errno == errno.EPIPE:
            error = OutputError(f"export {self._label}: the program reading this pipe closed it after "
                                f"{_frames(self.frames_written)}; the export stopped there")  # fmt: skip
        else:
            kept = "it ends after"
            if self._regular:
                try:
                    os.ftruncate(self._f.fileno(), self._complete)
                except OSError:
                    kept = "it may end in a partial line after"
            error = OutputError(f"export {self._label}: writing failed, {_what_failed(exc)}; {kept} "
                                f"{_frames(self.frames_written)}. Free space or export to another disk.")  # fmt: skip
        self._error = error
        with contextlib.suppress(OSError):
            self._f.close()
        self._f = None
        raise error from exc

    def close(self) -> None:
        """Close the file; safe to call more than once, also after a failed write."""
        if self._f is not None:
            f, self._f = self._f, None
            try:
                f.close()
            except OSError as exc:
                raise OutputError(f"export {self._label}: closing failed, {_what_failed(exc)}") from exc


class JsonlExporter(_LineExporter):
    """``.jsonl`` / ``.ndjson``: one JSON object per frame (layout in the module docstring)."""

    def __call__(self, result: FrameResult) -> None:
        self._write(frame_json(result) + "\n")
        self.frames_written += 1


class CsvExporter(_LineExporter):
    """``.csv``: one row per hand per frame under a header (columns in the module docstring).

    Raises:
        OutputError: ``path`` is ``-`` (standard output takes JSON Lines only), or the file cannot be
            created or written.
    """

    HEADER = (
        ["timestamp", "frame_index", "id", "handedness", "handedness_score", "score", "view"]
        + [f"{n}_{a}" for n in JOINT_NAMES for a in ("u", "v")]
        + [f"{n}_{a}" for n in JOINT_NAMES for a in ("x", "y", "z")]
        + [f"{n}_conf" for n in JOINT_NAMES]
    )

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if _is_stdout(path):
            raise OutputError("export -: standard output takes JSON Lines only (JsonlExporter)")
        super().__init__(path)
        self._write(self._rows([self.HEADER]))

    @staticmethod
    def _rows(rows: list[list[Any]]) -> str:
        """``rows`` as CSV text (the csv module's quoting, ``\\r\\n`` line ends)."""
        buffer = io.StringIO()
        csv.writer(buffer).writerows(rows)
        return buffer.getvalue()

    def __call__(self, result: FrameResult) -> None:
        rows = []
        for h in result.hands:
            j3 = h.joints_3d if h.joints_3d is not None else np.full((NUM_JOINTS, 3), np.nan)
            rows.append(
                [f"{result.timestamp:.6f}", result.index, h.track_id, h.handedness, f"{h.handedness_score:.4f}",
                 f"{h.score:.4f}", h.view]
                + [f"{v:.2f}" for v in h.joints_2d.ravel()]
                + ["" if not math.isfinite(v) else f"{v:.2f}" for v in j3.ravel()]
                + [f"{v:.4f}" for v in h.confidence]
            )  # fmt: skip
        if rows:
            self._write(self._rows(rows))
        self.frames_written += 1


class NpzExporter(Exporter):
    """``.npz``: arrays (layout in the module docstring), written when the exporter closes.

    Raises:
        OutputError: the folder cannot be created or written, ``path`` exists and is not a regular
            file (a pipe cannot take an ``.npz``: use ``.jsonl``), or (at :meth:`close`) writing fails.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.frames_written = 0
        if self.path.exists() and not self.path.is_file():
            raise OutputError(f"export {self.path} exists and is not a regular file: an .npz is written at the end "
                              "through a temporary file; stream to a pipe with .jsonl or .csv instead")  # fmt: skip
        _make_parent(self.path)
        self._frames: list[tuple[float, int]] = []
        self._hands: list[tuple[int, HandPose]] = []
        self._closed = False

    def __call__(self, result: FrameResult) -> None:
        self._hands.extend((len(self._frames), h) for h in result.hands)
        self._frames.append((result.timestamp, result.index))
        self.frames_written += 1

    def _arrays(self) -> dict[str, np.ndarray]:
        hands = [h for _, h in self._hands]
        nan3 = np.full((NUM_JOINTS, 3), np.nan)
        return dict(
            frame_timestamp=np.array([t for t, _ in self._frames], dtype=np.float64),
            frame_index=np.array([i for _, i in self._frames], dtype=np.int64),
            hand_frame=np.array([f for f, _ in self._hands], dtype=np.int64),
            track_id=np.array([h.track_id for h in hands], dtype=np.int64),
            handedness=np.array([h.handedness for h in hands], dtype="<U7"),
            handedness_score=np.array([h.handedness_score for h in hands], dtype=np.float64),
            score=np.array([h.score for h in hands], dtype=np.float64),
            view=np.array([h.view for h in hands], dtype=np.int64),
            joints_2d=np.array([h.joints_2d for h in hands], dtype=np.float64).reshape(-1, NUM_JOINTS, 2),
            joints_3d=np.array([h.joints_3d if h.joints_3d is not None else nan3 for h in hands],
                               dtype=np.float64).reshape(-1, NUM_JOINTS, 3),
            confidence=np.array([h.confidence for h in hands], dtype=np.float64).reshape(-1, NUM_JOINTS),
            joints_world=np.array([h.joints_world if h.joints_world is not None else nan3 for h in hands],
                                  dtype=np.float64).reshape(-1, NUM_JOINTS, 3),
            uncertainty_mm=np.array([h.uncertainty_mm if h.uncertainty_mm is not None else nan3[:, 0] for h in hands],
                                    dtype=np.float64).reshape(-1, NUM_JOINTS),
            joint_names=np.array(JOINT_NAMES),
            **self._gesture_arrays(hands),
        )  # fmt: skip

    @staticmethod
    def _gesture_arrays(hands: list[HandPose]) -> dict[str, np.ndarray]:
        """The grip / gesture arrays, only when those stages ran (some hand has a grip)."""
        if not any(h.grip is not None or h.gesture is not None for h in hands):
            return {}
        nan = float("nan")
        return dict(
            pinch=np.array([bool(h.grip and h.grip.pinch) for h in hands], dtype=bool),
            pinch_distance_mm=np.array([h.grip.pinch_distance_mm if h.grip else nan for h in hands], np.float64),
            grab=np.array([bool(h.grip and h.grip.grab) for h in hands], dtype=bool),
            grab_strength=np.array([h.grip.grab_strength if h.grip else nan for h in hands], np.float64),
            gesture=np.array([h.gesture.label if h.gesture else "" for h in hands], dtype="<U64"),
            gesture_score=np.array([h.gesture.score if h.gesture else nan for h in hands], np.float64),
            gesture_start_frame=np.array([h.gesture.start_frame if h.gesture else -1 for h in hands], np.int64),
            gesture_end_frame=np.array([h.gesture.end_frame if h.gesture else -1 for h in hands], np.int64),
        )  # fmt: skip

    def close(self) -> None:
        """Write the file: to a temporary name in the same folder, then renamed over ``path``.

        Raises:
            OutputError: the write failed (the temporary file is removed; ``path`` is untouched).
        """
        if self._closed:
            return
        self._closed = True
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
        try:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **self._arrays())
            os.replace(tmp, self.path)
        except BaseException as exc:  # Ctrl-C included: never leave the temporary file behind
            with contextlib.suppress(OSError):
                tmp.unlink()
            if isinstance(exc, OSError):
                raise OutputError(f"export {self.path}: writing failed, {_what_failed(exc)}; nothing was saved "
                                  f"({_frames(self.frames_written)} received). Free space or export to "
                                  "another disk.") from exc  # fmt: skip
            raise


#: The extensions :func:`open_exporter` knows, and the exporter each one gets.
EXPORT_SUFFIXES: dict[str, type[Exporter]] = {
    ".jsonl": JsonlExporter,
    ".ndjson": JsonlExporter,
    ".csv": CsvExporter,
    ".npz": NpzExporter,
}


def _existing_ancestor(folder: Path) -> Path:
    """``folder`` or its nearest ancestor that exists."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return candidate
    return Path(folder.anchor or ".")


def check_export_path(path: str | os.PathLike[str]) -> Path:
    """Check that ``path`` can become an export, without creating or opening anything.

    Cheap enough to call before models load. A pipe (FIFO) or an existing writable file passes; a
    missing parent folder passes when it can be created (the exporter creates it). ``-``
    (:data:`STDOUT`) passes: JSON Lines to standard output.

    Returns:
        ``path`` as a :class:`Path`.

    Raises:
        OutputError: unknown extension (the message lists the known ones), ``path`` is a folder,
            its folder cannot be created (a parent is a file) or is not writable, or ``path`` is
            an existing file that is not writable.
    """
    p = Path(path)
    if _is_stdout(path):
        return p
    suffix = p.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise OutputError(f"export {p}: unknown extension {suffix or '(none)'!r}; use one of "
                          f"{', '.join(EXPORT_SUFFIXES)}")  # fmt: skip
    if p.is_dir():
        raise OutputError(f"export {p} is a folder: give a file name ending in {', '.join(EXPORT_SUFFIXES)}")
    if p.exists():
        if not os.access(p, os.W_OK):
            raise OutputError(f"export {p} exists and is not writable: check its permissions or choose another file")
        folder = p.parent
    else:
        folder = _existing_ancestor(p.parent)
    if not folder.is_dir():
        raise OutputError(f"export {p}: cannot create the folder {p.parent}, since {folder} is a file")
    if (suffix == ".npz" or not p.exists()) and not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"export {p}: the folder {folder} is not writable (read-only file system or no "
                          "permission); export to another folder")  # fmt: skip
    return p


def _make_parent(path: Path) -> None:
    """Create ``path``'s folder (and its parents) after :func:`check_export_path` passes."""
    check_export_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"export {path}: cannot create the folder {path.parent}: {_what_failed(exc)}") from exc


def open_exporter(path: str | os.PathLike[str]) -> Exporter:
    """The exporter for ``path``'s extension (.jsonl/.ndjson, .csv, .npz), its file created; for ``-``
    (:data:`STDOUT`) a :class:`JsonlExporter` on standard output.

    Checks ``path`` first (:func:`check_export_path`), so a bad path fails before any frame. A FIFO
    blocks here until a reader opens it.

    Raises:
        OutputError: unknown extension, or the file cannot be created (see :func:`check_export_path`).
    """
    check_export_path(path)
    if _is_stdout(path):
        return JsonlExporter(STDOUT)
    return EXPORT_SUFFIXES[Path(path).suffix.lower()](path)


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a file written by :class:`JsonlExporter` back into a list of frame dicts."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
