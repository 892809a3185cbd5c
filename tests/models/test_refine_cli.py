import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.benchmark_data import (
    benchmark_params,
    ground_truth_path,
    prediction_paths,
    write_labels,
)
from models.depth_datasets import read_labels
from models.refine import RefineError, parse_steps, refine_xyz
from models.registry import shipped_path

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "models.refine", *args], cwd=REPO, capture_output=True, text=True, check=False)


def synthetic_uvd(n: int, joints: int, seed: int = 0) -> np.ndarray:
    """A smooth, noisy (n, joints, 3) uvd sequence near the image centre, d ~ 400-450 mm."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    base = np.stack([320 + rng.uniform(-60, 60, joints), 240 + rng.uniform(-60, 60, joints),
                     420 + rng.uniform(-20, 20, joints)], axis=-1)
    wobble = np.stack([10 * np.sin(0.1 * t), 8 * np.cos(0.07 * t), 5 * np.sin(0.05 * t)], axis=-1)
    return base[None] + wobble + rng.normal(0, 1.0, (n, joints, 3))


@pytest.mark.parametrize("dataset,joints,out", [("nyu", 14, "out.txt"), ("icvl", 16, "out.txt.gz")])
def test_roundtrip_synthetic(tmp_path, dataset, joints, out):
    src = tmp_path / "pred.txt"
    uvd = synthetic_uvd(37, joints)
    write_labels(src, uvd)
    res = run("--dataset", dataset, "--input", str(src), "--output", str(tmp_path / out), "--steps", "temporal,prior")
    assert res.returncode == 0, res.stderr
    lines = (gzip.decompress((tmp_path / out).read_bytes()) if out.endswith(".gz")
             else (tmp_path / out).read_bytes()).decode().splitlines()
    assert len(lines) == 37 and all(len(line.split()) == 3 * joints for line in lines)
    back = read_labels(tmp_path / out, dataset)
    assert np.isfinite(back).all()
    assert np.abs(back - uvd).max() < 100.0  # random points are no hand: the prior moves them, within reason
    assert np.abs(back - uvd).max() > 1e-3  # and really processed


def test_identity_when_nothing_to_do(tmp_path):
    uvd = synthetic_uvd(5, 14)
    xyz_params = benchmark_params("nyu")
    from models.depth_datasets import uvd_to_xyz, xyz_to_uvd

    xyz = uvd_to_xyz(uvd, *xyz_params)
    np.testing.assert_allclose(xyz_to_uvd(refine_xyz(xyz, "nyu", ()), *xyz_params), uvd, atol=1e-9)


def test_steps_order_and_errors():
    assert parse_steps("temporal,prior,refiner") == ("refiner", "prior", "temporal")
    with pytest.raises(RefineError, match="subset"):
        parse_steps("prior,blur")


@pytest.mark.parametrize("content,message", [
    ("1 2 3\n", "values, expected 42"),
    (" ".join(["1.0"] * 41 + ["nan"]) + "\n", "finite"),
    ("", "empty"),
])
def test_misuse_exits_nonzero_with_clear_message(tmp_path, content, message):
    bad = tmp_path / "bad.txt"
    bad.write_text(content)
    res = run("--dataset", "nyu", "--input", str(bad), "--output", str(tmp_path / "o.txt"), "--steps", "temporal")
    assert res.returncode == 2
    assert res.stderr.startswith("error:") and message in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "o.txt").exists()


def test_unknown_step_and_missing_file(tmp_path):
    res = run("--dataset", "nyu", "--input", str(tmp_path / "nope.txt"), "--output", str(tmp_path / "o.txt"))
    assert res.returncode == 2 and "does not exist" in res.stderr and "Traceback" not in res.stderr
    res = run("--dataset", "nyu", "--input", "x", "--output", "y", "--steps", "blur")
    assert res.returncode == 2 and "subset" in res.stderr


class _Offset:
    """A stand-in with the refiner's interface that is checked for being called: adds 1 mm to x in frame 0."""

    def refine(self, xyz, confidence=None):
        out = xyz.copy()
        out[0, :, 0] += 4.0
        return out


def test_refiner_step_uses_given_refiner():
    xyz = np.random.default_rng(0).normal(0, 30, (4, 14, 3)) + [0, 0, 500]
    out = refine_xyz(xyz, "nyu", ("refiner",), refiner=_Offset(), blend=1.0, gate=False, jump=None)
    expected = xyz.copy()
    expected[:, :, 0] += np.array([3.0, -1.0, -1.0, -1.0])[:, None]  # the correction, centred over the file
    np.testing.assert_allclose(out, expected, atol=1e-9)


@pytest.mark.skipif(not prediction_paths("nyu"), reason="NYU development data absent (../shared/data)")
def test_roundtrip_real_file(tmp_path):
    assert shipped_path("prior_nyu").is_file()  # shipped: a missing prior is a failure, not a skip
    src = next(p for p in prediction_paths("nyu") if "V2V" in p.name)
    res = run("--dataset", "nyu", "--input", str(src), "--output", str(tmp_path / "v2v.txt"), "--steps", "prior,temporal")
    assert res.returncode == 0, res.stderr
    before, after = read_labels(src, "nyu"), read_labels(tmp_path / "v2v.txt", "nyu")
    assert after.shape == before.shape and np.isfinite(after).all()
    gt = read_labels(ground_truth_path("nyu"), "nyu")
    err = lambda a: np.abs(a[: len(gt)] - gt).mean()
    assert err(after) < err(before) * 1.02
