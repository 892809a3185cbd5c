"""Kinematic hand model: forward kinematics by hand, limits, mirroring, inverse kinematics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models import hand_model as hm
from tracker.core.joints import FINGERS, JOINT_INDEX
from tracker.core.structures import Camera, Extrinsics, Intrinsics


def _deg(name: str) -> int:
    return hm.ANGLE_NAMES.index(name)


def _random_pose(n: int, seed: int = 0, margin: float = 0.1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lo, hi = hm.angle_limits()
    pose = hm.rest_pose(n)
    pose[:, 6:] = lo + (hi - lo) * (margin + (1 - 2 * margin) * torch.rand(n, 20, generator=g, dtype=torch.float64))
    pose[:, :3] = torch.randn(n, 3, generator=g, dtype=torch.float64)
    pose[:, 3:6] = torch.randn(n, 3, generator=g, dtype=torch.float64) * 40 + torch.tensor([0.0, 0.0, 450.0])
    return pose


def test_rest_pose_geometry_matches_constants() -> None:
    j = hm.forward_kinematics(hm.rest_pose(1))[0].numpy()
    s = hm.BASE_SCALE_MM
    assert np.allclose(j[0], 0.0)
    for name, mcp in hm.MCP_LOCAL.items():
        assert np.allclose(j[FINGERS[name][0]], np.array(mcp) * s)
    assert np.allclose(j[JOINT_INDEX["thumb_cmc"]], np.array(hm.THUMB_CMC_LOCAL) * s)
    lengths = hm.bone_lengths(j)
    for name, idx in FINGERS.items():
        for k in range(3):
            assert lengths[idx[k + 1] - 1] == pytest.approx(hm.BONE_LENGTHS[name][k] * s)
    # middle finger straight along +y at rest
    assert np.allclose(j[12, [0, 2]], 0.0) and j[12, 1] == pytest.approx((90 + 44 + 28 + 22) * s)


def test_flexion_and_abduction_by_hand() -> None:
    pose = hm.rest_pose(1)
    pose[0, 6 + _deg("index_mcp_flex")] = math.radians(90.0)
    pose[0, 6 + _deg("middle_mcp_abd")] = math.radians(10.0)
    j = hm.forward_kinematics(pose)[0].numpy()
    s = hm.BASE_SCALE_MM
    # index MCP flexed 90 deg: the proximal phalanx points volar (+z) whatever its fan angle
    assert np.allclose(j[6] - j[5], [0.0, 0.0, 38.0 * s], atol=1e-9)
    # middle abducted 10 deg radially: along (sin, cos, 0)
    d = (j[10] - j[9]) / np.linalg.norm(j[10] - j[9])
    assert np.allclose(d, [math.sin(math.radians(10)), math.cos(math.radians(10)), 0.0], atol=1e-12)


def test_shape_factors_scale_bones() -> None:
    shape = hm.mean_shape(1)
    shape[0, 0] = 1.2
    shape[0, 3 + 3 * 2 + 1] = 1.1  # middle finger, middle phalanx
    j = hm.forward_kinematics(hm.rest_pose(1), shape)[0]
    lengths = hm.bone_lengths(j)
    assert lengths[10] == pytest.approx(28.0 * hm.BASE_SCALE_MM * 1.2 * 1.1)
    assert lengths[8] == pytest.approx(90.0 * hm.BASE_SCALE_MM * 1.2)


def test_left_hand_is_the_mirror_image() -> None:
    pose = _random_pose(3)
    pose[:, :6] = 0.0
    right = hm.forward_kinematics(pose, left=False)
    left = hm.forward_kinematics(pose, left=True)
    assert torch.allclose(left, right * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))


def test_rotation_and_translation_applied() -> None:
    pose = _random_pose(4)
    local = hm.forward_kinematics(torch.cat([torch.zeros(4, 6, dtype=torch.float64), pose[:, 6:]], 1))
    rot = hm.rotvec_to_matrix(pose[:, :3])
    assert torch.allclose(hm.forward_kinematics(pose), local @ rot.transpose(1, 2) + pose[:, None, 3:6])
    assert torch.allclose(hm.matrix_to_rotvec(rot), pose[:, :3], atol=1e-9)


def test_rotvec_gradient_finite_at_identity() -> None:
    v = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    hm.rotvec_to_matrix(v).sum().backward()
    assert torch.isfinite(v.grad).all()


def test_wrong_parameter_shapes_raise() -> None:
    with pytest.raises(ValueError, match="pose must be"):
        hm.forward_kinematics(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="shape must be"):
        hm.forward_kinematics(hm.rest_pose(2), torch.ones(2, 4))


def test_ik_recovers_noiseless_pose_below_1mm() -> None:
    pose = _random_pose(16, seed=1)
    left = torch.tensor([i % 2 == 1 for i in range(16)])
    target = hm.forward_kinematics(pose, left=left)
    fit = hm.fit_to_joints_3d(target, left=left)
    assert float(fit.mean_residual.max()) < 1.0
    assert float(torch.linalg.norm(fit.joints - target, dim=-1).max()) < 2.0


def test_ik_with_shape_recovers_other_hand_sizes() -> None:
    pose = _random_pose(8, seed=2)
    g = torch.Generator().manual_seed(3)
    shape = 1 + torch.randn(8, hm.SHAPE_DIM, generator=g, dtype=torch.float64) * torch.tensor(hm.SHAPE_PRIOR_SIGMA)
    target = hm.forward_kinematics(pose, shape)
    fixed = hm.fit_to_joints_3d(target)
    free = hm.fit_to_joints_3d(target, config=hm.FitConfig(fit_shape=True, shape_prior_scale=10.0))
    assert float(free.mean_residual.max()) < 1.0
    assert float(free.mean_residual.mean()) < float(fixed.mean_residual.mean())


def test_ik_degrades_gracefully_with_noise() -> None:
    pose = _random_pose(32, seed=4)
    truth = hm.forward_kinematics(pose)
    g = torch.Generator().manual_seed(5)
    errors = []
    for sigma in (1.0, 4.0, 10.0):
        noisy = truth + sigma * torch.randn(truth.shape, generator=g, dtype=torch.float64)
        fit = hm.fit_to_joints_3d(noisy)
        err = float(torch.linalg.norm(fit.joints - truth, dim=-1).mean())
        noise = float(torch.linalg.norm(noisy - truth, dim=-1).mean())
        assert err < noise  # projecting onto the hand model removes part of the noise
        errors.append(err)
    assert errors[0] < errors[1] < errors[2]


def test_ik_respects_joint_limits_and_missing_joints() -> None:
    pose = _random_pose(4, seed=6)
    target = hm.forward_kinematics(pose)
    target[:, 8] += torch.tensor([0.0, 0.0, -60.0], dtype=torch.float64)  # index tip bent backwards
    target[0, 12] = float("nan")
    fit = hm.fit_to_joints_3d(target)
    lo, hi = hm.angle_limits()
    angles = fit.pose[:, 6:]
    assert bool(((angles >= lo - 1e-12) & (angles <= hi + 1e-12)).all())
    assert torch.isfinite(fit.joints).all()


def _ring_cameras(n: int) -> list[Camera]:
    intr = Intrinsics(fx=600.0, fy=600.0, cx=320.0, cy=240.0, width=640, height=480)
    cams = []
    for i in range(n):
        a = 2 * math.pi * i / n
        rot = hm.rotvec_to_matrix(torch.tensor([0.0, a, 0.0], dtype=torch.float64)).numpy()
        centre = np.array([-600.0 * math.sin(a), 0.0, -600.0 * math.cos(a)])  # looks at the origin
        cams.append(Camera(f"cam{i}", intr, Extrinsics(R=rot.T, t=-rot.T @ centre)))
    return cams


def test_ik_from_2d_views() -> None:
    pose = _random_pose(4, seed=7)
    pose[:, 3:6] = 0.0
    truth = hm.forward_kinematics(pose)
    cams = _ring_cameras(3)
    k, r, t = hm._projections(cams, torch.float64, None)
    uv = hm._project(truth, k, r, t)
    fit = hm.fit_to_joints_2d(uv, cams)
    assert float(fit.mean_residual.max()) < 0.5  # px
    assert float(torch.linalg.norm(fit.joints - truth, dim=-1).mean()) < 3.0


def test_forward_kinematics_follows_the_device(device: str) -> None:
    """Joints computed on ``device`` stay there and match the CPU's within 1e-9 mm (float64)."""
    pose = _random_pose(8)
    cpu = hm.forward_kinematics(pose)
    out = hm.forward_kinematics(pose.to(device))
    assert out.device.type == device
    assert torch.allclose(cpu, out.cpu(), atol=1e-9)
