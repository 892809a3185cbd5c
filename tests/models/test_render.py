"""Rendering hands from their joints: labels consistent with the images, occlusion, cameras,
mirroring, determinism, sensor noise, empty scenes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from models.hand_surface import TIP_INSET, build_surface
from models.render import RenderConfig, RenderHand, make_background, render
from tracker.core.joints import NUM_JOINTS, TIPS
from tracker.io.sources import DEMO_DIR
from tracker.core.structures import Camera, Extrinsics, Intrinsics

INTR = Intrinsics(600.0, 600.0, 320.0, 240.0, 640, 480)
CAMERA = Camera("cam", INTR)
MIRROR = np.diag([-1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def demo_joints() -> np.ndarray:
    """``(120, 21, 3)`` camera-frame joints (mm) of the demo's right hand, 425-540 mm away."""
    return np.load(DEMO_DIR / "demo_gt.npz")["joints_3d"]


def orbit(angle_deg: float, pivot: np.ndarray) -> Camera:
    """The camera moved on a circle about the vertical axis through ``pivot`` (world = the frame of
    ``CAMERA``): ``X_cam = R (X - pivot) + pivot``."""
    a = np.radians(angle_deg)
    r = np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])
    return Camera("orbit", INTR, Extrinsics(r, pivot - r @ pivot))


def test_outputs_have_the_documented_types(demo_joints):
    out = render(CAMERA, [RenderHand(demo_joints[0], "right")])
    assert out.rgb.shape == (480, 640, 3) and out.rgb.dtype == np.uint8
    assert out.depth.shape == (480, 640) and out.depth.dtype == np.uint16
    assert out.mask.dtype == np.uint8 and set(np.unique(out.mask)) == {0, 1}
    assert out.part.dtype == np.int16 and out.part.min() == -1
    assert out.joints_2d.shape == (1, NUM_JOINTS, 2) and out.joints_cam.shape == (1, NUM_JOINTS, 3)
    assert out.visible.shape == (1, NUM_JOINTS) and out.visible.dtype == bool
    np.testing.assert_allclose(out.joints_cam[0], demo_joints[0])
    np.testing.assert_allclose(out.joints_2d[0], INTR.project(demo_joints[0]))
    assert ((out.depth > 0) == (out.mask > 0)).all()  # no wall: readings exactly where the hand is


@pytest.mark.parametrize("frame", [0, 30, 60, 100])
def test_depth_at_visible_joints_is_their_skin(demo_joints, frame):
    j = demo_joints[frame]
    cfg = RenderConfig()
    out = render(CAMERA, [RenderHand(j, "right")], cfg)
    radius = build_surface(j, "right").joint_radius
    assert out.visible[0].sum() >= 14
    for n in np.flatnonzero(out.visible[0]):
        col, row = np.floor(out.joints_2d[0, n]).astype(int)
        assert out.mask[row, col] == 1, n
        skin = j[n, 2] - float(out.depth[row, col])  # how far in front of the joint the skin is
        # (the pixel centre is up to 0.7 px off the joint's ray: allow 2 mm on sloped skin)
        assert 0.0 < skin < radius[n] + cfg.visibility_tol_mm + 2.0, (n, skin, radius[n])
        if frame == 0 and n in (6, 7, 10, 11, 14, 15, 18, 19):
            # straight finger joints seen from the palm side: one flattened radius of skin
            assert skin == pytest.approx(0.9 * radius[n], abs=2.0), n
    hidden = ~out.visible[0]
    for n in np.flatnonzero(hidden & np.isfinite(out.joints_2d[0, :, 0])):
        col, row = np.floor(out.joints_2d[0, n]).astype(int)
        # hidden: something else at the pixel, or this hand's skin much nearer than the joint's own
        assert out.mask[row, col] != 1 or j[n, 2] - out.depth[row, col] > radius[n] + cfg.visibility_tol_mm - 2.0


def test_tip_labels_sit_inside_the_end_of_the_finger(demo_joints):
    out = render(CAMERA, [RenderHand(demo_joints[0], "right")])
    for tip in TIPS[1:]:
        u, v = out.joints_2d[0, tip]
        # the finger goes on about (1 - TIP_INSET) * r ~ 5 mm ~ 6 px beyond the tip joint (upwards)
        ahead = out.mask[int(v) - 3, int(u)], out.mask[int(v) - 12, int(u)]
        assert ahead == (1, 0), tip
    assert 0.0 < TIP_INSET < 0.5


def test_two_hands_one_in_front_of_the_other(demo_joints):
    front = demo_joints[0]
    back = demo_joints[0] @ MIRROR + np.array([-20.0, -30.0, 250.0])  # a left hand 25 cm further
    out = render(CAMERA, [RenderHand(front, "right"), RenderHand(back, "left")])
    assert set(np.unique(out.mask)) == {0, 1, 2}
    assert out.visible[0].all()
    covered = np.array([out.mask[int(v), int(u)] == 1 for u, v in out.joints_2d[1]])
    assert covered.sum() >= 5  # the constructed overlap hides several joints of the far hand
    np.testing.assert_array_equal(out.visible[1], ~covered)
    alone = render(CAMERA, [RenderHand(back, "left")])
    assert alone.visible[0].all()
    # the far hand's depth where it is seen is its own, and the near hand's is unchanged
    near = render(CAMERA, [RenderHand(front, "right")])
    np.testing.assert_array_equal(out.depth[out.mask == 1], near.depth[out.mask == 1])
    np.testing.assert_array_equal(out.depth[out.mask == 2], alone.depth[out.mask == 2])


def test_curled_fingers_from_the_front_and_from_behind(demo_joints):
    # frame 40: fingers half closed, palm to the camera; frame 60: a pinch with the thumb in front
    for frame, hidden_from_behind in ((40, (12, 16, 20)), (60, (3, 4))):
        j = demo_joints[frame]
        pivot = j.mean(axis=0)
        seen = render(orbit(0.0, pivot), [RenderHand(j, "right")]).visible[0]
        behind = render(orbit(180.0, pivot), [RenderHand(j, "right")]).visible[0]
        assert seen[list(hidden_from_behind)].all(), frame
        assert not behind[list(hidden_from_behind)].any(), frame
        assert behind[[0, 5, 9, 13, 17]].all()  # the wrist and the knuckles face the camera behind


def test_extrinsics_move_the_camera_not_the_hand(demo_joints):
    j = demo_joints[20]
    pivot = j.mean(axis=0)
    cam = orbit(35.0, pivot)
    moved = render(cam, [RenderHand(j, "right")])
    j_cam = j @ cam.extrinsics.R.T + cam.extrinsics.t
    direct = render(CAMERA, [RenderHand(j_cam, "right")])
    np.testing.assert_allclose(moved.joints_cam, direct.joints_cam, atol=1e-9)
    np.testing.assert_array_equal(moved.visible, direct.visible)
    differ = moved.depth.astype(int) - direct.depth.astype(int)
    assert (np.abs(differ) > 1).sum() <= 5  # the same picture up to rounding on a few edge pixels


def test_left_hand_renders_as_the_mirror_image(demo_joints):
    j = demo_joints[45]
    bg = make_background(640, 480, np.random.default_rng(3))
    cfg = RenderConfig()
    right = render(CAMERA, [RenderHand(j, "right")], cfg, background_rgb=bg)
    light = np.asarray(cfg.light_dir) * [-1.0, 1.0, 1.0]
    left = render(CAMERA, [RenderHand(j @ MIRROR, "left")], dataclasses.replace(cfg, light_dir=tuple(light)),
                  background_rgb=np.ascontiguousarray(bg[:, ::-1]))
    # cx = W / 2: mirroring the scene flips the image about its vertical centre line
    np.testing.assert_array_equal(left.visible, right.visible)
    np.testing.assert_allclose(left.joints_2d[..., 0], 640.0 - right.joints_2d[..., 0], atol=1e-9)
    np.testing.assert_array_equal(left.mask, right.mask[:, ::-1])
    np.testing.assert_array_equal(left.depth, right.depth[:, ::-1])
    diff = np.abs(left.rgb.astype(int) - right.rgb[:, ::-1].astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.01  # float rounding of mirrored sums only


def test_same_seed_same_frame_and_noise_as_configured(demo_joints):
    j = demo_joints[10]
    cfg = RenderConfig(depth_noise_a_mm=1.0, depth_noise_b_per_m2=2.0, background_depth_mm=1000.0,
                       hole_prob=0.05, rgb_noise=2.0)
    a = render(CAMERA, [RenderHand(j, "right")], cfg, np.random.default_rng(7))
    b = render(CAMERA, [RenderHand(j, "right")], cfg, np.random.default_rng(7))
    c = render(CAMERA, [RenderHand(j, "right")], cfg, np.random.default_rng(8))
    for name in ("rgb", "depth", "mask", "visible"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert (a.depth != c.depth).mean() > 0.5
    wall = (a.mask == 0) & (a.depth > 0)
    assert (a.depth[a.mask == 0] == 0).mean() == pytest.approx(0.05, abs=0.005)  # holes
    # sigma = a + b z^2 = 1 + 2 * 1^2 = 3 mm at 1 m (+ quantisation to whole mm)
    assert np.std(a.depth[wall].astype(float) - 1000.0) == pytest.approx(np.sqrt(9.0 + 1.0 / 12.0), rel=0.03)
    assert abs(np.mean(a.depth[wall].astype(float)) - 1000.0) < 0.05
    clean = render(CAMERA, [RenderHand(j, "right")], RenderConfig(depth_noise_a_mm=1.0), np.random.default_rng(0))
    plain = render(CAMERA, [RenderHand(j, "right")])
    err = clean.depth[plain.mask > 0].astype(float) - plain.depth[plain.mask > 0]
    assert 0.9 < np.std(err) < 1.3


def test_edge_dropout_removes_readings_along_depth_edges(demo_joints):
    j = demo_joints[0]
    cfg = RenderConfig(edge_dropout=1.0, edge_radius_px=1, background_depth_mm=900.0)
    out = render(CAMERA, [RenderHand(j, "right")], cfg, np.random.default_rng(0))
    plain = render(CAMERA, [RenderHand(j, "right")])
    hand = plain.mask > 0
    ext = np.pad(hand, 1, mode="edge")  # the image border is no depth edge
    border = hand & ~ext[2:, 1:-1] | hand & ~ext[1:-1, 2:]
    assert (out.depth[border] == 0).all()
    assert (out.depth[~hand] > 0).mean() > 0.95 and (out.depth[hand] > 0).mean() > 0.6
    half = render(CAMERA, [RenderHand(j, "right")], dataclasses.replace(cfg, edge_dropout=0.5),
                  np.random.default_rng(0))
    assert (half.depth[border] == 0).mean() == pytest.approx(0.5, abs=0.1)


@pytest.mark.parametrize("where", ["behind", "outside", "none"])
def test_empty_scenes(demo_joints, where):
    bg = make_background(640, 480, np.random.default_rng(0))
    j = demo_joints[0]
    hands = {"behind": [RenderHand(j * [1.0, 1.0, -1.0], "right")],
             "outside": [RenderHand(j + [3000.0, 0.0, 0.0], "right")], "none": []}[where]
    out = render(CAMERA, hands, background_rgb=bg)
    assert not out.depth.any() and not out.mask.any() and not out.visible.any()
    np.testing.assert_array_equal(out.rgb, bg)
    assert out.joints_2d.shape == (len(hands), NUM_JOINTS, 2)
    if where == "behind":
        assert np.isnan(out.joints_2d).all()


def test_quality_options_agree_with_the_fast_path(demo_joints):
    j = demo_joints[70]
    fast = render(CAMERA, [RenderHand(j, "right")])
    ss = render(CAMERA, [RenderHand(j, "right")], RenderConfig(supersample=2))
    np.testing.assert_array_equal(ss.depth, fast.depth)  # depth and labels come from pixel centres
    np.testing.assert_array_equal(ss.visible, fast.visible)
    assert np.abs(ss.rgb.astype(int) - fast.rgb.astype(int)).mean() < 1.5
    soft = render(CAMERA, [RenderHand(j, "right")], RenderConfig(blur_sigma=0.8))
    assert 0 < np.abs(soft.rgb.astype(int) - fast.rgb.astype(int)).mean() < 2.0


def test_bad_arguments(demo_joints):
    with pytest.raises(ValueError, match="rng"):
        render(CAMERA, [RenderHand(demo_joints[0], "right")], RenderConfig(hole_prob=0.1))
    with pytest.raises(ValueError, match="background_rgb"):
        render(CAMERA, [], background_rgb=np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="joints_world"):
        render(CAMERA, [RenderHand(demo_joints[0][:5], "right")])
    with pytest.raises(ValueError):
        RenderConfig(supersample=0)
    with pytest.raises(ValueError):
        RenderConfig(hole_prob=1.5)


def test_backgrounds_are_seeded():
    a = make_background(320, 240, np.random.default_rng(5))
    b = make_background(320, 240, np.random.default_rng(5))
    c = make_background(320, 240, np.random.default_rng(6))
    assert a.shape == (240, 320, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 5
