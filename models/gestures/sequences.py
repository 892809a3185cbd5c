"""The generic hand-sequence format of the gesture models, and readers for the layouts that feed it.

**Generic format** (NPZ, :func:`save_sequence` / :func:`load_sequence`):

* ``joints``: ``(T, 21, 3)`` float, millimetres, camera frame with OpenCV axes (x right, y down,
  z forward), joint order of :mod:`tracker.core.joints`; **NaN where a joint is missing** (another
  sensor's layout, a joint out of view, a frame without the hand);
* ``timestamps``: ``(T,)`` seconds, increasing (absent: ``fps`` must be given to the reader);
* ``label`` (optional): a string (a gesture name or a class id).

Readers: handtrack's own exports (:func:`sequences_from_export`: JSON Lines or NPZ, one sequence
per track id; a rig's ``joints_world`` when present, else ``joints_3d``) and the SHREC'17 layout
(:func:`read_shrec`: 22 joints in metres with y up; joint 2, the palm centre, is dropped). Sequences
of any length and rate; :func:`resample` puts them on a uniform time grid.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tracker.core.errors import HandtrackError
from tracker.core.joints import NUM_JOINTS

__all__ = [
    "SequenceError",
    "GestureSequence",
    "ShrecEntry",
    "load_sequence",
    "save_sequence",
    "sequences_from_export",
    "read_shrec",
    "read_shrec_list",
    "shrec_path",
    "resample",
    "SHREC_TO_MP",
]

log = logging.getLogger(__name__)

#: SHREC'17 joint (0-based) for each of the 21 MediaPipe joints: wrist, then thumb CMC..tip and the
#: four fingers MCP..tip; SHREC's joint 1 (palm centre) has no counterpart.
SHREC_TO_MP = np.array([0] + list(range(2, 22)))


class SequenceError(HandtrackError):
    """A sequence file cannot be read or is not a hand sequence (names the file and what is wrong)."""


@dataclass(frozen=True)
class GestureSequence:
    """One hand's joints over time.

    Attributes:
        joints: ``(T, 21, 3)`` mm, camera frame (OpenCV axes), NaN = missing.
        timestamps: ``(T,)`` s, strictly increasing.
        label: gesture name or class id, "" when unknown.
        source: where it came from (a path, with ``#track`` for an export), for messages.
    """

    joints: np.ndarray
    timestamps: np.ndarray
    label: str = ""
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        j = np.asarray(self.joints, np.float64)
        t = np.asarray(self.timestamps, np.float64)
        where = self.source or "sequence"
        if j.ndim != 3 or j.shape[1:] != (NUM_JOINTS, 3):
            raise SequenceError(f"{where}: joints must be (T, {NUM_JOINTS}, 3), got {j.shape}")
        if len(j) == 0:
            raise SequenceError(f"{where}: the sequence is empty")
        if t.shape != (len(j),):
            raise SequenceError(f"{where}: timestamps must be ({len(j)},), got {t.shape}")
        if not np.isfinite(t).all() or (len(t) > 1 and np.any(np.diff(t) <= 0)):
            raise SequenceError(f"{where}: timestamps must be finite and strictly increasing")
        if np.isinf(j).any():
            raise SequenceError(f"{where}: joints hold infinite values (use NaN for missing joints)")
        object.__setattr__(self, "joints", j)
        object.__setattr__(self, "timestamps", t)

    @property
    def num_frames(self) -> int:
        return len(self.joints)

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame."""
        return float(self.timestamps[-1] - self.timestamps[0])

    @property
    def valid(self) -> np.ndarray:
        """``(T, 21)`` True where a joint is present."""
        return np.isfinite(self.joints).all(axis=-1)


def _frames_to_times(n: int, fps: float | None, where: str) -> np.ndarray:
    if fps is None:
        raise SequenceError(f"{where} has no timestamps: give the frame rate (--fps)")
    if not fps > 0:
        raise SequenceError(f"the frame rate must be > 0, got {fps}")
    return np.arange(n) / float(fps)


def save_sequence(seq: GestureSequence, path: str | os.PathLike[str]) -> Path:
    """Write ``seq`` in the generic NPZ format; returns the path written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, joints=seq.joints.astype(np.float32), timestamps=seq.timestamps,
                        label=np.array(seq.label))  # fmt: skip
    return path


def load_sequence(path: str | os.PathLike[str], fps: float | None = None) -> GestureSequence:
    """Read a generic-format NPZ (``joints`` [, ``timestamps``, ``label``]).

    Args:
        path: the file.
        fps: frame rate for a file without ``timestamps``.

    Raises:
        SequenceError: missing file, not an NPZ, no ``joints``, wrong shape, all-NaN joints.
    """
    path = Path(path)
    if not path.is_file():
        raise SequenceError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "joints" not in data:
                raise SequenceError(f"{path}: no 'joints' array (the generic format needs joints (T, 21, 3) mm)")
            joints = np.asarray(data["joints"], np.float64)
            times = np.asarray(data["timestamps"], np.float64) if "timestamps" in data else None
            label = str(data["label"]) if "label" in data else ""
    except SequenceError:
        raise
    except Exception as e:  # a corrupt or non-NPZ file: zipfile, pickle and value errors alike
        raise SequenceError(f"{path}: not a readable NPZ file ({type(e).__name__}: {e})") from e
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3):
        raise SequenceError(f"{path}: joints must be (T, {NUM_JOINTS}, 3), got {joints.shape}")
    if len(joints) == 0:
        raise SequenceError(f"{path}: the sequence is empty")
    if not np.isfinite(joints).any():
        raise SequenceError(f"{path}: every joint is missing (NaN)")
    if times is None:
        times = _frames_to_times(len(joints), fps, str(path))
    return GestureSequence(joints, times, label, source=str(path))


def sequences_from_export(path: str | os.PathLike[str], min_frames: int = 2) -> list[GestureSequence]:
    """One sequence per track in a handtrack export (``.jsonl`` or ``.npz``).

    Frames of the export where the track is absent are NaN in its sequence (so one sequence per
    track spans from its first to its last frame). Joints: ``joints_world`` when the export has them
    (a rig), else ``joints_3d`` (camera frame); hands without 3D are NaN.

    Raises:
        SequenceError: unreadable file, unknown suffix, or no hand with 3D joints.
    """
    path = Path(path)
    if not path.is_file():
        raise SequenceError(f"{path}: no such file")
    frames: list[float] = []
    hands: list[tuple[int, int, np.ndarray]] = []  # (frame, track, joints)
    try:
        if path.suffix == ".jsonl":
            with open(path, encoding="utf-8") as f:
                for i, line in enumerate(x for x in f if x.strip()):
                    rec = json.loads(line)
                    frames.append(float(rec["timestamp"]))
                    for h in rec.get("hands", []):
                        xyz = h.get("joints_world") or h.get("joints_3d")
                        if xyz is not None:
                            hands.append((i, int(h.get("id", -1)), np.asarray(xyz, np.float64)))
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as d:
                frames = [float(x) for x in d["frame_timestamp"]]
                world = d["joints_world"] if "joints_world" in d else None
                for k, (fr, tid) in enumerate(zip(d["hand_frame"], d["track_id"])):
                    xyz = d["joints_3d"][k]
                    if world is not None and np.isfinite(world[k]).all():
                        xyz = world[k]
                    hands.append((int(fr), int(tid), np.asarray(xyz, np.float64)))
        else:
            raise SequenceError(f"{path}: a handtrack export is .jsonl or .npz, got '{path.suffix}'")
    except SequenceError:
        raise
    except Exception as e:
        raise SequenceError(f"{path}: not a readable handtrack export ({type(e).__name__}: {e})") from e
    times = np.asarray(frames)
    out = []
    for tid in sorted({t for _, t, _ in hands}):
        mine = [(fr, xyz) for fr, t, xyz in hands if t == tid and np.shape(xyz) == (NUM_JOINTS, 3)]
        if len(mine) < min_frames:
            continue
        first, last = mine[0][0], mine[-1][0]
        joints = np.full((last - first + 1, NUM_JOINTS, 3), np.nan)
        for fr, xyz in mine:
            joints[fr - first] = xyz
        out.append(GestureSequence(joints, times[first : last + 1], source=f"{path}#{tid}"))
    if not out:
        raise SequenceError(f"{path}: no tracked hand with 3D joints in {len(frames)} frames")
    return out


@dataclass(frozen=True)
class ShrecEntry:
    """One line of a SHREC'17 list (``id_gesture id_finger id_subject id_essai label_14 label_28 size``)."""

    gesture: int
    finger: int
    subject: int
    essai: int
    label_14: int
    label_28: int
    size: int


def read_shrec_list(path: str | os.PathLike[str]) -> list[ShrecEntry]:
    """Parse a SHREC'17 list file (7 integers per line; blank lines skipped).

    Raises:
        SequenceError: missing file or a line that is not 7 integers (names the line).
    """
    path = Path(path)
    if not path.is_file():
        raise SequenceError(f"{path}: no such list file")
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            values = [int(p) for p in parts]
        except ValueError:
            values = []
        if len(values) != 7:
            raise SequenceError(f"{path}:{n}: expected 7 integers "
                                f"(gesture finger subject essai label14 label28 size), got {line!r}")  # fmt: skip
        out.append(ShrecEntry(*values))
    return out


def shrec_path(root: str | os.PathLike[str], e: ShrecEntry) -> Path:
    """The skeleton file of entry ``e`` under the data folder ``root`` (``.txt`` or ``.txt.gz``)."""
    d = Path(root) / f"gesture_{e.gesture}" / f"finger_{e.finger}" / f"subject_{e.subject}" / f"essai_{e.essai}"
    plain = d / "skeletons_world.txt"
    return plain if plain.is_file() else d / "skeletons_world.txt.gz"


def read_shrec(path: str | os.PathLike[str], fps: float = 30.0, label: str = "") -> GestureSequence:
    """Read a SHREC'17 ``skeletons_world.txt[.gz]``: 66 values per line (22 joints, metres, y up) ->
    the generic format (21 joints, mm, OpenCV axes: y flipped; the palm centre dropped).

    Raises:
        SequenceError: missing or unreadable file, or lines that are not 66 numbers.
    """
    path = Path(path)
    if not path.is_file():
        raise SequenceError(f"{path}: no such file")
    try:
        raw = np.loadtxt(path, ndmin=2)
    except Exception as e:
        raise SequenceError(f"{path}: not a SHREC skeleton file ({type(e).__name__}: {e})") from e
    if raw.ndim != 2 or raw.shape[1] != 66 or len(raw) == 0:
        raise SequenceError(f"{path}: expected lines of 66 numbers (22 joints x 3), got shape {raw.shape}")
    joints = raw.reshape(-1, 22, 3)[:, SHREC_TO_MP] * 1000.0
    joints[..., 1] *= -1.0  # y up -> y down (x right, z forward unchanged)
    return GestureSequence(joints, np.arange(len(joints)) / fps, label, source=str(path))


def resample(seq: GestureSequence, times: np.ndarray) -> np.ndarray:
    """Joints at ``times`` (s, within or outside the sequence: clamped to its ends), ``(len(times), 21, 3)``
    mm; linear between the two neighbouring frames, NaN where either neighbour is missing."""
    t = np.clip(np.asarray(times, np.float64), seq.timestamps[0], seq.timestamps[-1])
    if seq.num_frames == 1:
        return np.repeat(seq.joints, len(t), axis=0)
    hi = np.clip(np.searchsorted(seq.timestamps, t, side="right"), 1, seq.num_frames - 1)
    lo = hi - 1
    t0, t1 = seq.timestamps[lo], seq.timestamps[hi]
    w = ((t - t0) / (t1 - t0))[:, None, None]
    out = seq.joints[lo] * (1.0 - w) + seq.joints[hi] * w
    out = np.where(w <= 0.0, seq.joints[lo], out)  # on a frame: that frame (a missing neighbour does not matter)
    return np.where(w >= 1.0, seq.joints[hi], out)
