"""The bundled demo's ground truth is what scripts/make_demo.py produces (to 1e-9 mm / px)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np

from tracker.core.joints import FINGERS
from tracker.io.sources import DEMO_DIR

ROOT = Path(__file__).resolve().parents[1]


def load_make_demo():
    spec = importlib.util.spec_from_file_location("make_demo", ROOT / "scripts" / "make_demo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_demo"] = module
    spec.loader.exec_module(module)
    return module


def test_ground_truth_regenerates():
    make_demo = load_make_demo()
    gt = make_demo.ground_truth(make_demo.animate())
    committed = np.load(DEMO_DIR / "demo_gt.npz")
    for key in ("timestamps", "K"):
        np.testing.assert_array_equal(gt[key], committed[key], err_msg=key)
    for key in ("joints_2d", "joints_3d"):  # the kinematics run in torch: last-bit rounding may differ
        np.testing.assert_allclose(gt[key], committed[key], rtol=0, atol=make_demo.GT_TOLERANCE, err_msg=key)


def test_ground_truth_is_a_consistent_right_hand():
    gt = np.load(DEMO_DIR / "demo_gt.npz")
    K, j3, j2 = gt["K"], gt["joints_3d"], gt["joints_2d"]
    proj = j3 @ K.T
    np.testing.assert_allclose(proj[..., :2] / proj[..., 2:], j2, atol=1e-9)
    # bone lengths are constant over the sequence (a rigid kinematic hand)
    for chain in FINGERS.values():
        for a, b in zip(chain[:-1], chain[1:]):
            length = np.linalg.norm(j3[:, b] - j3[:, a], axis=1)
            assert length.std() < 1e-6
    # palm towards the camera, right hand: thumb side on the image's right
    assert np.all(j2[:, 5, 0] > j2[:, 17, 0])
    assert set(gt["handedness"].tolist()) == {"right"}
