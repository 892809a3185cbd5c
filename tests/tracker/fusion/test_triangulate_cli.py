"""Offline triangulator: keypoint file formats, their errors, and the command line end to end."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from models.synthetic import SceneConfig, sample_scene
from tracker.core.errors import CalibrationError, ModelError
from tracker.fusion.triangulate import TriangulationError
from tracker.fusion.triangulate_cli import main, triangulate_keypoints
from tracker.io.calibration import save_calibration
from tracker.io.keypoints import (
    KeypointFormatError,
    Keypoints2D,
    load_keypoints,
    load_points_3d,
    save_keypoints,
)

DIST = (-0.2, 0.05, 0.0, 0.001, 0.0)


def make_rig(n_joints: int):
    """A 5-camera ring with distortion, 3 frames of one hand, the first ``n_joints`` joints; camera c3
    is an outlier view on frame 1 and joint 4 is missed by c0 on frame 2."""
    scene = sample_scene(7, SceneConfig(num_frames=3, layout="ring", num_views=5, num_hands=1))
    cams = tuple(
        dataclasses.replace(c, name=f"c{v}", intrinsics=dataclasses.replace(c.intrinsics, dist=DIST))
        for v, c in enumerate(scene.cameras)
    )
    X = np.stack([scene.joints_world(t)[0, :n_joints] for t in range(3)])  # (F, J, 3)
    rng = np.random.default_rng(0)
    pts = np.empty((3, 5, n_joints, 2))
    for v, c in enumerate(cams):
        rvec = cv2.Rodrigues(np.asarray(c.extrinsics.R))[0]
        uv = cv2.projectPoints(X.reshape(-1, 3), rvec, np.asarray(c.extrinsics.t, float), c.intrinsics.K,
                               np.asarray(DIST))[0]  # fmt: skip
        pts[:, v] = uv.reshape(3, n_joints, 2)
    pts += rng.normal(0.0, 0.5, pts.shape)
    conf = rng.uniform(0.5, 1.0, (3, 5, n_joints))
    pts[1, 3] += 120.0  # camera c3 is wrong on frame 1 (an outlier view)
    pts[2, 0, 4] = np.nan  # a missed joint
    conf[2, 0, 4] = 0.0
    kp = Keypoints2D(tuple(c.name for c in cams), tuple(f"kp{j}" for j in range(n_joints)), pts, conf,
                     np.array([10, 11, 12]))  # fmt: skip
    return cams, kp, X


@pytest.fixture(scope="module")
def rig():
    """14 'joints' (any count works for DLT / RANSAC)."""
    return make_rig(14)


def test_keypoint_files_round_trip(rig, tmp_path):
    _, kp, _ = rig
    for name in ("kp.json", "kp.npz"):
        save_keypoints(tmp_path / name, kp)
        back = load_keypoints(tmp_path / name)
        assert back.cameras == kp.cameras and back.joint_names == kp.joint_names
        np.testing.assert_array_equal(back.frame_indices, kp.frame_indices)
        np.testing.assert_array_equal(back.points, kp.points)  # NaN where NaN
        np.testing.assert_array_equal(back.confidence, kp.confidence)


def test_json_keypoints_minimal_form(tmp_path):
    doc = {"cameras": ["a", "b"], "frames": [
        {"index": 0, "views": {"a": [[1, 2, 0.5], [3, 4]], "b": None}},
        {"index": 5, "views": {"b": [None, [7.5, 8, 1.0]]}},
    ]}  # fmt: skip
    (tmp_path / "k.json").write_text(json.dumps(doc))
    kp = load_keypoints(tmp_path / "k.json")
    assert kp.joint_names == ("joint_0", "joint_1") and kp.points.shape == (2, 2, 2, 2)
    np.testing.assert_array_equal(kp.points[0, 0], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(kp.confidence[0, 0], [0.5, 1.0])
    assert np.isnan(kp.points[0, 1]).all() and (kp.confidence[0, 1] == 0).all()
    assert np.isnan(kp.points[1, 1, 0]).all() and kp.confidence[1, 1, 1] == 1.0
    np.testing.assert_array_equal(kp.frame_indices, [0, 5])


@pytest.mark.parametrize(
    "doc, match",
    [
        ({"frames": []}, "cameras"),
        ({"cameras": ["a"], "frames": []}, "no frames"),
        ({"cameras": ["a"], "frames": [{"views": {}}]}, "index"),
        ({"cameras": ["a"], "frames": [{"index": 0, "views": {"zz": [[1, 2, 1]]}}]}, "zz"),
        ({"cameras": ["a", "b"], "frames": [{"index": 0, "views": {"a": [[1, 2, 1]], "b": [[1, 2, 1], [3, 4, 1]]}}]},
         "2 joints, expected 1"),
        ({"cameras": ["a"], "frames": [{"index": 0, "views": {"a": [[1, "x", 1]]}}]}, "joint 0"),
        ({"cameras": ["a", "a"], "frames": [{"index": 0, "views": {"a": [[1, 2, 1]]}}]}, "unique"),
        ({"cameras": ["a"], "frames": [{"index": 0, "views": {"a": [[1, 2]]}}, {"index": 0, "views": {}}]},
         "unique"),
    ],
)
def test_malformed_json_keypoints(tmp_path, doc, match):
    (tmp_path / "k.json").write_text(json.dumps(doc))
    with pytest.raises(KeypointFormatError, match=match):
        load_keypoints(tmp_path / "k.json")


def test_malformed_files(tmp_path):
    (tmp_path / "k.json").write_text("{not json")
    with pytest.raises(KeypointFormatError, match="not valid JSON"):
        load_keypoints(tmp_path / "k.json")
    np.savez(tmp_path / "k.npz", points=np.zeros((2, 3, 4, 2)), cameras=np.array(["a", "b", "c"]))
    with pytest.raises(KeypointFormatError, match="confidence"):
        load_keypoints(tmp_path / "k.npz")
    np.savez(tmp_path / "k.npz", points=np.zeros((2, 3, 4, 2)), confidence=np.ones((2, 3, 4)),
             cameras=np.array(["a", "b"]))  # fmt: skip
    with pytest.raises(KeypointFormatError, match="cameras"):
        load_keypoints(tmp_path / "k.npz")
    np.savez(tmp_path / "k.npz", points=np.zeros((2, 3, 4)), confidence=np.ones((2, 3, 4)), cameras=np.array(["a"]))
    with pytest.raises(KeypointFormatError, match=r"\(F, V, J, 2\)"):
        load_keypoints(tmp_path / "k.npz")
    (tmp_path / "k.csv").write_text("1,2")
    with pytest.raises(KeypointFormatError, match=".json or .npz"):
        load_keypoints(tmp_path / "k.csv")
    with pytest.raises(FileNotFoundError):
        load_keypoints(tmp_path / "absent.json")


def test_triangulate_keypoints_methods(rig):
    cams, kp, X = rig
    shuffled = cams[::-1]  # matched by name, not order
    ran = triangulate_keypoints(shuffled, kp, "ransac")
    dlt = triangulate_keypoints(shuffled, kp, "dlt")
    assert ran.points_3d.shape == (3, 14, 3) and ran.inliers.shape == (3, 14, 5)
    e_ran = np.linalg.norm(ran.points_3d - X, axis=-1)
    e_dlt = np.linalg.norm(dlt.points_3d - X, axis=-1)
    assert e_ran.max() < 3.0
    assert e_dlt[1].mean() > 5 * e_ran[1].mean()  # frame 1's outlier view
    assert not ran.inliers[1, :, 3].any() and (ran.num_inliers[1] == 4).all()
    assert ran.num_inliers[2, 4] == 4 and (ran.num_inliers[0] == 5).all()
    assert np.isfinite(ran.uncertainty_mm).all() and (ran.reprojection_px < 2.0).all()
    with pytest.raises(CalibrationError, match="c4"):
        triangulate_keypoints(cams[:4], kp)


def test_fusion_needs_21_joints(rig):
    cams, kp, _ = rig
    with pytest.raises(TriangulationError, match="21"):
        triangulate_keypoints(cams, kp, "fusion")


def test_fusion_on_a_hand(monkeypatch):
    from models import registry

    cams, kp, X = make_rig(21)
    points = kp.points.copy()
    points[2, 1:] = np.nan  # frame 2: only c0 sees the hand
    kp = dataclasses.replace(kp, points=points)
    fused = triangulate_keypoints(cams, kp, "fusion")
    assert fused.method == "fusion" and fused.points_3d.shape == (3, 21, 3)
    err = np.linalg.norm(fused.points_3d[:2] - X[:2], axis=-1).mean(-1)
    assert err[0] < 10.0
    assert err[1] < 40.0  # one of the 5 views shifted by 120 px: pulled, not thrown (RANSAC rejects it)
    assert np.isnan(fused.points_3d[2]).all()  # one view is not enough
    entry = registry.CATALOG["hamuco"]  # the shipped checkpoint gone: a clear error, not a traceback
    monkeypatch.setitem(registry.CATALOG, "hamuco", dataclasses.replace(entry, filename="absent.pt"))
    with pytest.raises(ModelError, match="--method ransac"):
        triangulate_keypoints(cams, kp, "fusion")


def test_command_line(rig, tmp_path, caplog):
    cams, kp, X = rig
    save_calibration(cams, tmp_path / "rig.toml")
    save_keypoints(tmp_path / "kp.json", kp)
    assert main(["--calibration", str(tmp_path / "rig.toml"), "--keypoints", str(tmp_path / "kp.json"),
                 "--output", str(tmp_path / "out.json"), "--method", "ransac"]) == 0  # fmt: skip
    doc = json.loads((tmp_path / "out.json").read_text())
    assert doc["units"] == "mm" and doc["method"] == "ransac" and [f["index"] for f in doc["frames"]] == [10, 11, 12]
    back = load_points_3d(tmp_path / "out.json")
    assert np.linalg.norm(back.points_3d - X, axis=-1).max() < 3.0
    # errors are reported, not raised, with exit status 2
    (tmp_path / "bad.toml").write_text("[cam_0]\nname = 'c0'\n")
    assert main(["--calibration", str(tmp_path / "bad.toml"), "--keypoints", str(tmp_path / "kp.json"),
                 "--output", str(tmp_path / "o.npz")]) == 2  # fmt: skip
    assert "bad.toml" in caplog.text


def test_command_line_as_a_process(rig, tmp_path, repo_root):
    """``python -m tracker.fusion.triangulate_cli`` from another directory (repository on PYTHONPATH), NPZ in and out."""
    cams, kp, X = rig
    save_calibration(cams, tmp_path / "rig.toml")
    save_keypoints(tmp_path / "kp.npz", kp)
    out = tmp_path / "out.npz"
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    proc = subprocess.run([sys.executable, "-m", "tracker.fusion.triangulate_cli", "--calibration",
                           str(tmp_path / "rig.toml"), "--keypoints", str(tmp_path / "kp.npz"), "--output", str(out),
                           "--method", "dlt"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    res = load_points_3d(out)
    assert res.method == "dlt" and res.points_3d.shape == (3, 14, 3)
    np.testing.assert_array_equal(res.frame_indices, [10, 11, 12])
    assert np.linalg.norm(res.points_3d[0] - X[0], axis=-1).max() < 3.0
