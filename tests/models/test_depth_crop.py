"""Reference point of a depth crop: seeded by 2D joints, or the nearest object."""

from __future__ import annotations

import numpy as np

from models.depth_crop import CropConfig, reference_from_depth, reference_from_joints
from tracker.core.structures import Intrinsics

INTR = Intrinsics(fx=500.0, fy=500.0, cx=80.0, cy=60.0, width=160, height=120)


def test_seeded_reference_lies_on_the_hand(synthetic_frameset) -> None:
    """Seeded by the true 2D joints on 8 sensor-like frames. Measured: distance to the joint centroid
    median 25.3 mm, max 60.0 mm; every joint within 107 mm of the reference per axis, i.e. inside V2V's
    250 mm cube (half-edge 125 mm)."""
    dists, spans = [], []
    for seed in range(8):
        f = synthetic_frameset(seed, num_frames=1).frames[0]
        ref = reference_from_joints(f.depth, f.camera.intrinsics, f.ground_truth.joints_2d[0])
        assert ref is not None
        joints = f.ground_truth.joints_3d[0]
        dists.append(np.linalg.norm(ref - joints.mean(0)))
        spans.append(np.abs(joints - ref).max())
    assert np.median(dists) < 35.0 and max(dists) < 70.0, dists
    assert max(spans) < 125.0, spans  # the whole hand fits a 250 mm cube around the reference


def test_depth_only_reference_is_the_nearest_object() -> None:
    depth = np.full((120, 160), 1200, np.uint16)  # a wall
    depth[40:60, 100:130] = 600  # the nearest object, a 20x30 px patch at 600 mm
    ref = reference_from_depth(depth, INTR)
    u = INTR.fx * ref[0] / ref[2] + INTR.cx
    v = INTR.fy * ref[1] / ref[2] + INTR.cy
    assert abs(ref[2] - 600.0) < 1e-6 and abs(u - 115.0) < 0.5 and abs(v - 50.0) < 0.5


def test_no_hand_points_give_none() -> None:
    empty = np.zeros((120, 160), np.uint16)
    assert reference_from_depth(empty, INTR) is None
    assert reference_from_joints(empty, INTR, np.full((21, 2), 50.0)) is None
    far = np.full((120, 160), 3000, np.uint16)
    assert reference_from_depth(far, INTR, CropConfig(far_mm=1500.0)) is None
