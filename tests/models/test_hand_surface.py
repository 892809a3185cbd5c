"""The hand's skin built from 21 joints: joints inside, tips, frames, mirroring, moving, packing."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.render import hit_t, signed_distance
from models.hand_surface import (
    PART_SLEEVE,
    RADII,
    TIP_INSET,
    build_surface,
    finger_part,
    pack,
    palm_frame,
    transform,
)
from tracker.core.joints import FINGERS, NUM_JOINTS, TIPS
from tracker.io.sources import DEMO_DIR

MIRROR = np.diag([-1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def demo_joints() -> np.ndarray:
    """``(120, 21, 3)`` camera-frame joints (mm) of the demo's right hand."""
    return np.load(DEMO_DIR / "demo_gt.npz")["joints_3d"]


def random_rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@pytest.mark.parametrize("frame", [0, 40, 75, 110])
def test_every_joint_lies_inside_the_skin(demo_joints, frame):
    pk = pack([build_surface(demo_joints[frame], "right")])
    for j, p in enumerate(demo_joints[frame]):
        inside = [signed_distance(*pk.geometry, i, *p) < 0 for i in range(len(pk.kind))]
        assert any(inside), j


def test_fingertips_end_about_5_mm_beyond_the_tip_joint(demo_joints):
    j = demo_joints[0]
    pk = pack([build_surface(j, "right")])
    scale = np.linalg.norm(j[9] - j[0]) / 90.0
    for name, chain in FINGERS.items():
        tip, dip = j[chain[3]], j[chain[2]]
        d = (tip - dip) / np.linalg.norm(tip - dip)
        origin = tip + 40.0 * d
        t = min(hit_t(*pk.geometry, i, *origin, *(-d), 0.0) for i in range(len(pk.kind)))
        beyond = 40.0 - t
        expected = (1.0 - TIP_INSET) * RADII[name][3] * scale
        assert beyond == pytest.approx(expected, abs=0.5), name
        assert 3.5 < beyond < 7.0


def test_palm_normal_points_out_of_the_palm(demo_joints):
    # frame 0 of the demo shows the palm of a right hand to the camera, fingers up
    axes, scale = palm_frame(demo_joints[0], "right")
    assert axes[:, 2] @ np.array([0.0, 0.0, -1.0]) > 0.8  # volar: towards the camera
    assert axes[:, 1] @ np.array([0.0, -1.0, 0.0]) > 0.9  # distal: up in the image
    assert scale == pytest.approx(np.linalg.norm(demo_joints[0, 9] - demo_joints[0, 0]) / 90.0)
    left, _ = palm_frame(demo_joints[0] @ MIRROR, "left")
    np.testing.assert_allclose(left, MIRROR @ axes, atol=1e-12)


def test_left_hand_is_the_mirror_image_of_the_right(demo_joints):
    j = demo_joints[40]
    right = build_surface(j, "right")
    left = build_surface(j @ MIRROR, "left")
    pr, pl = pack([right]), pack([left])
    assert len(pr.kind) == len(pl.kind)
    rng = np.random.default_rng(0)
    pts = j.mean(0) + rng.normal(0.0, 40.0, (200, 3))
    for i in range(len(pr.kind)):
        for p in pts[::4]:
            assert signed_distance(*pl.geometry, i, *(MIRROR @ p)) == pytest.approx(
                signed_distance(*pr.geometry, i, *p), abs=1e-9)
    np.testing.assert_allclose(left.crease_p0, right.crease_p0 @ MIRROR, atol=1e-6)
    np.testing.assert_allclose(left.cap_volar, right.cap_volar @ MIRROR, atol=1e-12)
    np.testing.assert_array_equal(left.cap_part, right.cap_part)


def test_transform_equals_building_in_the_new_frame(demo_joints):
    j = demo_joints[75]
    R, t = random_rotation(3), np.array([10.0, -40.0, 300.0])
    moved = transform(build_surface(j, "right"), R, t)
    built = build_surface(j @ R.T + t, "right")
    for name, value in vars(built).items():
        if isinstance(value, np.ndarray):
            np.testing.assert_allclose(getattr(moved, name), value, atol=1e-8, err_msg=name)
    with pytest.raises(ValueError, match="rotation"):
        transform(built, MIRROR, t)


def test_radius_scale_and_albedo(demo_joints):
    j = demo_joints[0]
    thin = build_surface(j, "right", 0.8)
    base = build_surface(j, "right")
    fingers = base.cap_part >= 10
    np.testing.assert_allclose(thin.cap_ra[fingers], 0.8 * base.cap_ra[fingers])
    dark = build_surface(j, "right", skin_albedo=(0.45, 0.3, 0.22))
    skin = dark.cap_part != PART_SLEEVE
    assert dark.cap_albedo[skin].mean() < 0.6 * base.cap_albedo[skin].mean()
    bare = build_surface(j, "right", forearm_mm=0.0)
    assert bare.num_primitives == base.num_primitives - 2  # no forearm, no sleeve


def test_degenerate_inputs(demo_joints):
    j = demo_joints[0].copy()
    with pytest.raises(ValueError, match="21"):
        build_surface(j[:20], "right")
    with pytest.raises(ValueError, match="handedness"):
        build_surface(j, "unknown")
    with pytest.raises(ValueError, match="degenerate"):
        build_surface(np.zeros((NUM_JOINTS, 3)), "right")
    bad = j.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        build_surface(bad, "right")
    # a zero-length fingertip bone (labels sometimes put two joints on one point) still builds
    j[TIPS[1]] = j[TIPS[1] - 1]
    pk = pack([build_surface(j, "right")])
    assert np.isfinite(pk.minv).all() and np.isfinite(pk.org).all()


def test_pack_keeps_hands_apart(demo_joints):
    a = build_surface(demo_joints[0], "right")
    b = build_surface(demo_joints[0] @ MIRROR + [0.0, 0.0, 100.0], "left")
    pk = pack([a, b])
    n = a.num_primitives
    assert len(pk.kind) == 2 * n
    np.testing.assert_array_equal(pk.hand, [0] * n + [1] * n)
    assert set(pk.groups[:n, 0]).isdisjoint(pk.groups[n:, 0])
    np.testing.assert_array_equal(pk.groups[n:, 0], pk.groups[:n, 0] + 100)
    assert len(pk.creases) == len(a.crease_p0) + len(b.crease_p0)
    assert (pk.part[:n] == np.concatenate([a.cap_part, a.ell_part, a.slab_part])).all()
    assert finger_part(4, 2) in pk.part
    empty = pack([])
    assert empty.minv.shape == (0, 3, 3) and empty.kind.shape == (0,)


def test_ellipsoids_pack_into_the_kernels(demo_joints):
    import dataclasses

    base = build_surface(demo_joints[0], "right")
    axes = random_rotation(1) @ np.diag([20.0, 8.0, 5.0])
    centre = np.array([0.0, 0.0, 300.0])
    sf = dataclasses.replace(base, ell_centre=centre[None], ell_axes=axes[None], ell_volar=axes[None, :, 2] / 5.0,
                             ell_part=np.array([0], np.int32), ell_albedo=np.array([[0.5, 0.5, 0.5]]))
    pk = pack([sf])
    i = len(sf.cap_a)  # capsules first, then ellipsoids
    assert signed_distance(*pk.geometry, i, *centre) < 0
    for k in range(3):
        assert signed_distance(*pk.geometry, i, *(centre + 0.99 * axes[:, k])) < 0
        assert signed_distance(*pk.geometry, i, *(centre + 1.01 * axes[:, k])) > 0
    # the bounding capsule holds the ellipsoid
    tips = centre + np.concatenate([axes.T, -axes.T])
    a, b, r = pk.bound_a[i], pk.bound_b[i], pk.bound_r[i]
    for p in tips:
        s = np.clip((p - a) @ (b - a) / ((b - a) @ (b - a)), 0.0, 1.0)
        assert np.linalg.norm(p - (a + s * (b - a))) <= r + 1e-9
