"""The NYU / ICVL development data and the project's contiguous fit / validation split.

The split sizes are the ones every published refiner / prior / post-processing number is measured on
(``models/weights/eval_refiner.md``: NYU validation frames 1708-2439, ICVL 491-701). The tests that read
``<data_root>/nyu_icvl_eval`` skip when that folder is absent (as on CI).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from models.benchmark_data import (
    benchmark_params,
    dev_split,
    eval_dir,
    ground_truth_path,
    load_ground_truth,
    method_name,
    prediction_paths,
    write_labels,
)
from models.depth_datasets import ICVL_BENCHMARK, NYU_BENCHMARK, read_labels

needs_data = pytest.mark.skipif(not eval_dir().is_dir(), reason="NYU/ICVL development data absent (../shared/data)")


@pytest.mark.parametrize(("frames", "fit", "validation"), [(2440, 1708, 732), (702, 491, 211), (2, 1, 1), (3, 2, 1)])
def test_dev_split_sizes(frames: int, fit: int, validation: int) -> None:
    """NYU 2440 -> fit 0-1707 + validation 1708-2439; ICVL 702 -> 0-490 + 491-701; both parts never empty."""
    a, b = dev_split(frames)
    assert (len(a), len(b)) == (fit, validation)
    np.testing.assert_array_equal(np.concatenate([a, b]), np.arange(frames))  # contiguous, in order, disjoint


def test_dev_split_misuse() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        dev_split(1)
    with pytest.raises(ValueError, match="train_fraction"):
        dev_split(10, 1.0)
    assert [len(p) for p in dev_split(10, 0.01)] == [1, 9] and [len(p) for p in dev_split(10, 0.99)] == [9, 1]


def test_method_name_and_paths(tmp_path: Path) -> None:
    assert method_name(Path("x/CVPR18_NYU_V2V_PoseNet.txt.gz")) == "CVPR18_NYU_V2V_PoseNet"
    assert method_name(Path("ICIP17_ICVL_REN_4x6x6.txt")) == "ICIP17_ICVL_REN_4x6x6"
    assert method_name(Path("a.b.txt")) == "a.b"
    assert benchmark_params("nyu") is NYU_BENCHMARK and benchmark_params("icvl") is ICVL_BENCHMARK
    assert ground_truth_path("icvl", tmp_path) == tmp_path / "nyu_icvl_eval/icvl/groundtruth/icvl_test_groundtruth_label.txt.gz"
    assert prediction_paths("nyu", tmp_path) == []  # no folder: no predictions, no error
    with pytest.raises(ValueError, match="unknown dataset"):
        benchmark_params("msra")


@pytest.mark.parametrize("suffix", [".txt", ".txt.gz"])
def test_write_labels_round_trips_through_read_labels(tmp_path: Path, suffix: str) -> None:
    """4 decimals: read back within 5e-5 px / mm of what was written; gzip written with mtime 0 (reproducible)."""
    uvd = np.random.default_rng(0).uniform([0, 0, 300], [640, 480, 1200], (5, 14, 3))
    path = tmp_path / "sub" / f"pred{suffix}"
    write_labels(path, uvd)
    back = read_labels(path, "nyu")
    assert back.shape == (5, 14, 3) and np.abs(back - uvd).max() <= 5e-5
    if suffix.endswith(".gz"):
        first = path.read_bytes()
        write_labels(path, uvd)
        assert path.read_bytes() == first and gzip.decompress(first).count(b"\n") == 5
    with pytest.raises(ValueError, match="frame 2"):
        bad = uvd.copy()
        bad[2, 3, 1] = np.nan
        write_labels(path, bad)
    with pytest.raises(ValueError, match=r"\(N >= 1, J, 3\)"):
        write_labels(path, uvd[:, :, :2])


@needs_data
@pytest.mark.parametrize(("dataset", "frames", "joints", "methods"), [("nyu", 2440, 14, 24), ("icvl", 702, 16, 16)])
def test_development_data(dataset: str, frames: int, joints: int, methods: int) -> None:
    """The development split holds 2440 NYU / 702 ICVL frames and 24 / 16 published methods' predictions."""
    gt = load_ground_truth(dataset)
    assert gt.shape == (frames, joints, 3) and np.isfinite(gt).all()
    paths = prediction_paths(dataset)
    assert len(paths) == methods
    names = [method_name(p) for p in paths]
    assert len(set(names)) == methods  # one name per method
    assert read_labels(paths[0], dataset).shape[1:] == (joints, 3)
