import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.depth_datasets import xyz_to_uvd
from models.benchmark_data import benchmark_params, write_labels
from models.evaluate import evaluate_xyz

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "models.evaluate", *args], cwd=REPO, capture_output=True, text=True)


@pytest.fixture()
def files(tmp_path):
    """GT and a prediction whose errors are known: frame 0 joint 0 off by 5 mm, frame 1 joint 3 by 30 mm."""
    params = benchmark_params("nyu")
    rng = np.random.default_rng(0)
    gt_xyz = rng.normal(0, 40, (4, 14, 3)) + [0, 0, 500]
    pred_xyz = gt_xyz.copy()
    pred_xyz[0, 0] += [3.0, 4.0, 0.0]
    pred_xyz[1, 3] += [0.0, 0.0, 30.0]
    gt, pred = tmp_path / "gt.txt", tmp_path / "pred.txt"
    write_labels(gt, xyz_to_uvd(gt_xyz, *params), decimals=8)
    write_labels(pred, xyz_to_uvd(pred_xyz, *params), decimals=8)
    return gt, pred


def test_numbers_match_hand_computation(files, tmp_path):
    gt, pred = files
    res = run("--dataset", "nyu", "--pred", str(pred), "--gt", str(gt), "--json", "--plot", str(tmp_path / "c.png"))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["frames"] == 4
    assert out["mean_mm"] == pytest.approx(35.0 / (4 * 14), abs=1e-4)
    assert out["per_joint_mm"]["Pinky.T"] == pytest.approx(5.0 / 4, abs=1e-4)
    assert out["per_joint_mm"]["Ring.R"] == pytest.approx(30.0 / 4, abs=1e-4)
    assert out["per_joint_mm"]["Palm"] == pytest.approx(0.0, abs=1e-4)
    assert out["within_mm"] == pytest.approx({"10": 0.75, "20": 0.75, "40": 1.0})
    frac = dict(zip(out["success_rate"]["thresholds_mm"], out["success_rate"]["fraction"]))
    assert frac[4.0] == 0.5 and frac[5.0] == 0.75 and frac[30.0] == 1.0
    img = cv2.imread(str(tmp_path / "c.png"))
    assert img is not None and img.shape == (480, 640, 3) and (img < 200).any()


def test_text_output_and_frame_sets(files):
    gt, pred = files
    res = run("--dataset", "nyu", "--pred", str(pred), "--gt", str(gt))
    assert res.returncode == 0 and "mean error 0.625 mm" in res.stdout and "Ring.R" in res.stdout
    val = json.loads(run("--dataset", "nyu", "--pred", str(pred), "--gt", str(gt), "--frames", "val", "--json").stdout)
    assert val["frames"] == 1 and val["mean_mm"] == pytest.approx(0.0, abs=1e-4)  # last 30 % of 4 = frame 3


def test_misuse(files, tmp_path):
    gt, pred = files
    res = run("--dataset", "icvl", "--pred", str(pred), "--gt", str(gt))
    assert res.returncode == 2 and "expected 48" in res.stderr and "Traceback" not in res.stderr
    short = tmp_path / "short.txt"
    short.write_text(pred.read_text().splitlines()[0] + "\n")
    res = run("--dataset", "nyu", "--pred", str(short), "--gt", str(gt))
    assert res.returncode == 2 and "1 frames" in res.stderr


def test_evaluate_xyz_direct():
    gt = np.zeros((2, 3, 3))
    pred = gt.copy()
    pred[1, 2, 0] = 12.0
    out = evaluate_xyz(pred, gt, ("a", "b", "c"))
    assert out["mean_mm"] == pytest.approx(2.0)
    assert out["per_joint_mm"] == pytest.approx({"a": 0.0, "b": 0.0, "c": 6.0})
    assert out["within_mm"]["10"] == 0.5
