"""The NYU / ICVL development data (ground truth + published predictions) and the project's split.

The copy under ``<data_root>/nyu_icvl_eval`` (see its PROVENANCE.md) is a *development split*: NYU test
frames 0-2439 and ICVL ``test_seq_1`` (frames 0-701). Frames and a subject outside it are reserved
for independent evaluation, so nothing here may be tuned to look good on one particular part.

The project's own split inside the development data is **contiguous by time**: the first
``TRAIN_FRACTION`` of each data set's frames are the *fit* part (priors, refiner fine-tuning,
filter parameters), the rest is the *validation* part on which every reported number is measured.
A contiguous tail (rather than random frames) keeps temporally-correlated neighbours of fitted frames
out of validation, which is closer to the unseen continuation the project is judged on.

All coordinates here are the benchmarks' (u, v, d): pixels, pixels, mm; convert with
:func:`models.depth_datasets.uvd_to_xyz` and :data:`devices.nyu.NYU_BENCHMARK` / ``ICVL_BENCHMARK``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.depth_datasets import ICVL_BENCHMARK, NYU_BENCHMARK, PinholeParams, read_labels
from tracker.core.data_root import data_root

__all__ = [
    "DATASETS",
    "TRAIN_FRACTION",
    "CUT_POINTS",
    "benchmark_params",
    "eval_dir",
    "ground_truth_path",
    "prediction_paths",
    "method_name",
    "load_ground_truth",
    "dev_split",
    "write_labels",
]

DATASETS = ("nyu", "icvl")
TRAIN_FRACTION = 0.7
# 0-based frame indices where a new segment starts (GT jumps > 50 mm; PROVENANCE.md). None fall inside
# the development split, but any full-test file the commands are run on may contain them.
CUT_POINTS = {
    "nyu": (2440, 3136, 4690, 4860, 4883, 5405, 5722, 6051, 6196, 6557, 6562, 6731, 6734, 7054, 7171, 7222, 7375),
    "icvl": (702,),
}


def _check(dataset: str) -> str:
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    return dataset


def benchmark_params(dataset: str) -> PinholeParams:
    """The benchmark's uvd <-> xyz convention (NYU has a negative fy)."""
    return NYU_BENCHMARK if _check(dataset) == "nyu" else ICVL_BENCHMARK


def eval_dir(root: Path | None = None) -> Path:
    """``<data_root>/nyu_icvl_eval`` (may not exist)."""
    return (root or data_root()) / "nyu_icvl_eval"


def ground_truth_path(dataset: str, root: Path | None = None) -> Path:
    return eval_dir(root) / _check(dataset) / "groundtruth" / f"{dataset}_test_groundtruth_label.txt.gz"


def prediction_paths(dataset: str, root: Path | None = None) -> list[Path]:
    """The published prediction files of every method, sorted by file name (empty when absent)."""
    folder = eval_dir(root) / _check(dataset) / "results"
    return sorted(p for p in folder.glob("*.txt*")) if folder.is_dir() else []


def method_name(path: Path) -> str:
    """``CVPR18_NYU_V2V_PoseNet.txt.gz`` -> ``CVPR18_NYU_V2V_PoseNet``."""
    name = path.name
    for suffix in (".gz", ".txt"):
        name = name.removesuffix(suffix)
    return name


def load_ground_truth(dataset: str, root: Path | None = None) -> np.ndarray:
    """``(N, J, 3)`` uvd ground truth of the development split. Raises FileNotFoundError when absent."""
    return read_labels(ground_truth_path(dataset, root), dataset)


def dev_split(num_frames: int, train_fraction: float = TRAIN_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """``(fit_indices, validation_indices)``: the first ``train_fraction`` of the frames, then the rest."""
    if num_frames < 2:
        raise ValueError(f"need at least 2 frames to split, got {num_frames}")
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    cut = min(max(int(round(num_frames * train_fraction)), 1), num_frames - 1)
    return np.arange(cut), np.arange(cut, num_frames)


def write_labels(path: "str | Path", uvd: np.ndarray, decimals: int = 4) -> None:
    """Write ``(N, J, 3)`` uvd labels in the benchmarks' text format (the inverse of ``read_labels``).

    One frame per line, ``J x (u v d)`` space-separated with ``decimals`` digits (pixels, pixels, mm);
    gzip-compressed when the name ends in ``.gz``.

    Raises:
        ValueError: not ``(N >= 1, J, 3)`` or a non-finite value (the benchmark format has no NaN).
    """
    import gzip

    a = np.asarray(uvd, dtype=np.float64)
    if a.ndim != 3 or a.shape[2] != 3 or len(a) == 0:
        raise ValueError(f"labels must be (N >= 1, J, 3), got {a.shape}")
    if not np.isfinite(a).all():
        bad = int(np.flatnonzero(~np.isfinite(a).all(axis=(1, 2)))[0])
        raise ValueError(f"frame {bad} has a NaN/inf value; the label format needs finite numbers")
    rows = a.reshape(len(a), -1)
    text = "\n".join(" ".join(f"{v:.{decimals}f}" for v in row) for row in rows) + "\n"
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("ascii")
    file.write_bytes(gzip.compress(data, mtime=0) if file.suffix.lower() == ".gz" else data)
