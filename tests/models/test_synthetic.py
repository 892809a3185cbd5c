"""Synthetic data engine: scene sampling, rig layouts, rendering with ground truth, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from models.synthetic import (
    SENSOR_LIKE,
    SceneConfig,
    look_at,
    render_frameset,
    render_view,
    sample_scene,
)


def test_look_at_points_the_optical_axis_at_the_target() -> None:
    ext = look_at([300.0, -200.0, -500.0], [10.0, 20.0, 30.0])
    target_cam = ext.R @ np.array([10.0, 20.0, 30.0]) + ext.t
    assert np.allclose(target_cam[:2], 0.0, atol=1e-9) and target_cam[2] > 0
    assert np.allclose(ext.R @ ext.R.T, np.eye(3)) and np.linalg.det(ext.R) == pytest.approx(1.0)
    assert (ext.R @ np.array([0.0, 1.0, 0.0]))[1] > 0  # world down is image down
    with pytest.raises(ValueError, match="coincide"):
        look_at([0, 0, 0], [0, 0, 0])


@pytest.mark.parametrize("layout,views", [("single", 1), ("desk", 4), ("ring", 8)])
def test_scenes_keep_the_hands_in_view(layout: str, views: int) -> None:
    for seed in range(4):
        scene = sample_scene(seed, SceneConfig(num_frames=12, layout=layout, num_views=views))
        assert len(scene.cameras) == views and len(scene) == 12
        for cam in scene.cameras:
            for t in (0, 11):
                j = scene.joints_world(t)[0]
                cam_pts = j @ cam.extrinsics.R.T + cam.extrinsics.t
                assert (cam_pts[:, 2] > 100.0).all()  # in front of every camera
                uv = cam.intrinsics.project(cam_pts)
                inside = (uv[:, 0] >= 0) & (uv[:, 0] < 640) & (uv[:, 1] >= 0) & (uv[:, 1] < 480)
                assert inside.mean() > 0.8


def test_scene_is_deterministic_by_seed() -> None:
    cfg = SceneConfig(num_frames=10, layout="ring", num_views=3, num_hands=2)
    a, b, c = sample_scene(5, cfg), sample_scene(5, cfg), sample_scene(6, cfg)
    for t in range(10):
        assert np.array_equal(a.joints_world(t), b.joints_world(t))
    assert not np.array_equal(a.joints_world(0), c.joints_world(0))
    assert [h.handedness for h in a.hands] in (["left", "right"], ["right", "left"])
    ra, rb = render_view(a, 4, 2, SENSOR_LIKE), render_view(b, 4, 2, SENSOR_LIKE)
    for name in ("rgb", "depth", "mask", "joints_2d", "visible"):
        assert np.array_equal(getattr(ra, name), getattr(rb, name)), name


def test_frameset_carries_consistent_ground_truth() -> None:
    scene = sample_scene(2, SceneConfig(num_frames=5, layout="desk", num_views=3))
    fs = render_frameset(scene, 3, SENSOR_LIKE)
    assert len(fs.frames) == 3 and fs.index == 3 and fs.timestamp == pytest.approx(3 / 30.0)
    for frame in fs.frames:
        gt = frame.ground_truth
        assert gt is not None and frame.depth is not None and frame.depth.dtype == np.uint16
        ext = frame.camera.extrinsics
        assert np.allclose(gt.joints_3d[0], gt.joints_world[0] @ ext.R.T + ext.t)
        assert np.allclose(gt.joints_2d[0], frame.camera.intrinsics.project(gt.joints_3d[0]))
        assert gt.actions[0] == scene.hands[0].motion.actions[3]
        # visible joints lie on the hand's mask and close behind its depth surface
        for j in np.flatnonzero(gt.visible[0]):
            u, v = (int(x) for x in gt.joints_2d[0, j])
            assert gt.mask[v, u] == 1
    with pytest.raises(IndexError):
        render_view(scene, 5, 0)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="layout"):
        SceneConfig(layout="dome")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_views"):
        SceneConfig(layout="ring", num_views=1)
    with pytest.raises(ValueError, match="actions"):
        SceneConfig(actions=("juggle",))
