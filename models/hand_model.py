"""The project's kinematic hand model: shape and pose parameters -> 21 joints (mm), in torch.

A MANO-free articulated hand: five kinematic chains hanging off a rigid palm, with bone lengths
from a shape vector and joint angles from a pose vector. Differentiable, batched, CPU or CUDA
(every function follows the device and dtype of its inputs).

Frames and units:

* **Hand-local frame** (right hand): origin at the wrist joint centre, +x radial (towards the
  thumb), +y distal (towards the middle fingertip), +z volar (out of the palm); right-handed. A
  left hand is the mirror image: its local x is flipped (x -> -x), so the same angles describe the
  same anatomical pose of either hand.
* **Output frame**: ``X = R(rotvec) @ x_local + transl`` in millimetres; usually the OpenCV camera
  frame (x right, y down, z forward) or a rig's world frame, whichever the caller's ``transl`` and
  ``rotvec`` are expressed in.
* Angles are **radians** in the tensors; limits and docs quote degrees. Flexion is positive
  towards the palm, abduction positive away from the middle finger (middle finger: radial; thumb:
  away from the index finger).

Parameter vectors:

* ``pose``: ``(B, POSE_DIM)`` = ``[rotvec (3), transl mm (3), angles rad (20)]``; the angle order
  is :data:`ANGLE_NAMES` (per chain in :data:`tracker.core.joints.FINGERS` order: root flexion, root
  abduction, middle flexion, distal flexion; thumb: CMC flexion, CMC abduction, MCP, IP).
* ``shape``: ``(B, SHAPE_DIM)`` = ``[scale, palm_width, palm_length, 15 bone factors]``, all
  multiplicative, 1 = the average adult hand (:data:`MEAN_SHAPE`); bone factors in chain order root
  to tip.

The base geometry is an average adult right hand whose joint centres lean towards MediaPipe's
landmark conventions (tips ~5 mm inside the end of the finger; see ``scripts/make_demo.py``, which
draws this hand): wrist -> middle MCP 93.6 mm, middle finger 45.8 / 29.1 / 22.9 mm.

Inverse kinematics (:func:`fit_to_joints_3d`, :func:`fit_to_joints_2d`) is a batched, box-
constrained Levenberg–Marquardt on the joint residuals plus a Gaussian prior on the angles and the
shape, started from a rigid (Kabsch) alignment of the palm.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import torch

from tracker.core.joints import EDGES, FINGERS, NUM_JOINTS, PALM

__all__ = [
    "POSE_DIM",
    "SHAPE_DIM",
    "NUM_ANGLES",
    "ANGLE_NAMES",
    "ANGLE_LIMITS_DEG",
    "SHAPE_NAMES",
    "SHAPE_LIMITS",
    "SHAPE_PRIOR_SIGMA",
    "MEAN_SHAPE",
    "BASE_SCALE_MM",
    "MCP_LOCAL",
    "THUMB_CMC_LOCAL",
    "BONE_LENGTHS",
    "REST_FAN_DEG",
    "forward_kinematics",
    "local_joints",
    "local_joints_and_frames",
    "rotvec_to_matrix",
    "matrix_to_rotvec",
    "bone_lengths",
    "angle_limits",
    "shape_limits",
    "rest_pose",
    "mean_shape",
    "FitConfig",
    "FitResult",
    "fit_to_joints_3d",
    "fit_to_joints_2d",
    "levenberg_marquardt",
]

# --------------------------------------------------------------------------------------------------
# Geometry of the average right hand (hand-local frame, mm).
# --------------------------------------------------------------------------------------------------

#: Uniform factor from the drawing model of ``scripts/make_demo.py`` (wrist -> middle MCP 90 mm) to
#: MediaPipe's average adult hand (wrist -> middle MCP 93.6 mm); all lengths below are pre-scale.
BASE_SCALE_MM: Final = 1.04

#: MCP joint centres of the four fingers (the metacarpal arch puts index/pinky slightly volar).
MCP_LOCAL: Final[dict[str, tuple[float, float, float]]] = {
    "index": (23.0, 88.0, 2.0),
    "middle": (0.0, 90.0, 0.0),
    "ring": (-19.0, 85.0, 1.0),
    "pinky": (-35.0, 75.0, 4.0),
}
#: Thumb CMC (trapeziometacarpal) joint centre.
THUMB_CMC_LOCAL: Final[tuple[float, float, float]] = (24.0, 17.0, 6.0)
#: Bone lengths root to tip: thumb metacarpal / proximal / distal, fingers proximal / middle /
#: distal (the distal reaches MediaPipe's tip landmark).
BONE_LENGTHS: Final[dict[str, tuple[float, float, float]]] = {
    "thumb": (40.0, 31.0, 31.0),
    "index": (38.0, 24.0, 20.0),
    "middle": (44.0, 28.0, 22.0),
    "ring": (40.0, 28.0, 22.0),
    "pinky": (31.0, 21.0, 19.0),
}
#: Rest fan angle of each finger in the palm plane, degrees, positive away from the middle finger.
REST_FAN_DEG: Final[dict[str, float]] = {"index": 4.0, "middle": 0.0, "ring": 5.0, "pinky": 10.0}
#: +1 where "away from the middle finger" is radial (+x), -1 where it is ulnar.
_SPREAD_SIGN: Final[dict[str, float]] = {"index": 1.0, "middle": 1.0, "ring": -1.0, "pinky": -1.0}
#: Rest direction of the thumb metacarpal: 40 deg radial of +y in the palm plane, 25 deg volar.
THUMB_REST_RADIAL_DEG: Final = 40.0
THUMB_REST_VOLAR_DEG: Final = 25.0
#: Where the thumb pad faces at rest (thumb flexion bends towards it): ulnar and volar.
THUMB_PAD_DIRECTION: Final[tuple[float, float, float]] = (-0.6, 0.0, 0.8)

_CHAINS: Final[tuple[str, ...]] = tuple(FINGERS)
NUM_ANGLES: Final = 20
POSE_DIM: Final = 6 + NUM_ANGLES
SHAPE_DIM: Final = 3 + 15

ANGLE_NAMES: Final[tuple[str, ...]] = (
    "thumb_cmc_flex", "thumb_cmc_abd", "thumb_mcp_flex", "thumb_ip_flex",
    "index_mcp_flex", "index_mcp_abd", "index_pip_flex", "index_dip_flex",
    "middle_mcp_flex", "middle_mcp_abd", "middle_pip_flex", "middle_dip_flex",
    "ring_mcp_flex", "ring_mcp_abd", "ring_pip_flex", "ring_dip_flex",
    "pinky_mcp_flex", "pinky_mcp_abd", "pinky_pip_flex", "pinky_dip_flex",
)  # fmt: skip

#: Anatomical limits (degrees) of each angle, in :data:`ANGLE_NAMES` order: active ranges of
#: motion of adult hands (finger MCP -30..90 flexion, PIP 0..110, DIP 0..90, with a little
#: hyperextension; thumb CMC/MCP/IP ranges around the thumb's rest direction of this model).
ANGLE_LIMITS_DEG: Final[tuple[tuple[float, float], ...]] = (
    (-25.0, 60.0), (-25.0, 50.0), (-15.0, 75.0), (-25.0, 90.0),  # thumb
    (-30.0, 95.0), (-20.0, 25.0), (-5.0, 115.0), (-15.0, 95.0),  # index
    (-30.0, 95.0), (-15.0, 15.0), (-5.0, 115.0), (-15.0, 95.0),  # middle
    (-30.0, 95.0), (-20.0, 20.0), (-5.0, 115.0), (-15.0, 95.0),  # ring
    (-30.0, 95.0), (-20.0, 30.0), (-5.0, 115.0), (-15.0, 95.0),  # pinky
)  # fmt: skip

SHAPE_NAMES: Final[tuple[str, ...]] = ("scale", "palm_width", "palm_length") + tuple(
    f"{chain}_bone{k}" for chain in _CHAINS for k in range(3)
)
#: Allowed range of each shape factor. ``scale`` 0.72..1.35 spans adult hands from about 135 to
#: 250 mm wrist-to-middle-tip (average 185 mm); the bone factors leave room for the joint
#: conventions of other data sets (NYU/ICVL label skin points, not joint centres).
SHAPE_LIMITS: Final[tuple[tuple[float, float], ...]] = (
    ((0.72, 1.35), (0.75, 1.3), (0.75, 1.3)) + ((0.6, 1.6),) * 15
)
#: Standard deviation of each shape factor in the IK prior and the data generator (adults).
SHAPE_PRIOR_SIGMA: Final[tuple[float, ...]] = (0.08, 0.05, 0.05) + (0.06,) * 15
MEAN_SHAPE: Final[tuple[float, ...]] = (1.0,) * SHAPE_DIM


def angle_limits(device: torch.device | None = None, dtype: torch.dtype = torch.float64
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper angle limits ``(20,)`` each, radians."""
    lim = torch.tensor(ANGLE_LIMITS_DEG, dtype=dtype, device=device) * (math.pi / 180.0)
    return lim[:, 0], lim[:, 1]


def shape_limits(device: torch.device | None = None, dtype: torch.dtype = torch.float64
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper shape-factor limits ``(SHAPE_DIM,)`` each."""
    lim = torch.tensor(SHAPE_LIMITS, dtype=dtype, device=device)
    return lim[:, 0], lim[:, 1]


def rest_pose(batch: int = 1, device: torch.device | None = None, dtype: torch.dtype = torch.float64
              ) -> torch.Tensor:
    """``(B, POSE_DIM)`` identity rotation, zero translation, all angles 0 (flat open hand)."""
    return torch.zeros(batch, POSE_DIM, dtype=dtype, device=device)


def mean_shape(batch: int = 1, device: torch.device | None = None, dtype: torch.dtype = torch.float64
               ) -> torch.Tensor:
    """``(B, SHAPE_DIM)`` the average adult hand (all factors 1)."""
    return torch.ones(batch, SHAPE_DIM, dtype=dtype, device=device)


# --------------------------------------------------------------------------------------------------
# Rotations
# --------------------------------------------------------------------------------------------------


def _axis_rotation(angle: torch.Tensor, axis: int) -> torch.Tensor:
    """``(..., 3, 3)`` rotation by ``angle`` (radians, ``(...)``) about the x (0), y (1) or z (2) axis."""
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    if axis == 0:
        rows = ((one, zero, zero), (zero, c, -s), (zero, s, c))
    elif axis == 1:
        rows = ((c, zero, s), (zero, one, zero), (-s, zero, c))
    else:
        rows = ((c, -s, zero), (s, c, zero), (zero, zero, one))
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def rotvec_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """Rodrigues: axis-angle ``(..., 3)`` (radians) -> rotation matrices ``(..., 3, 3)``.

    Smooth at zero (Taylor expansions of ``sin(t)/t`` and ``(1 - cos t)/t^2``), so gradients are
    finite for the identity too.
    """
    theta2 = (rotvec * rotvec).sum(-1, keepdim=True)
    small = theta2 < 1e-8
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = torch.sqrt(theta2_safe)
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / theta2_safe)
    x, y, z = rotvec.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*rotvec.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device).expand_as(k)
    return eye + a[..., None] * k + b[..., None] * (k @ k)


def matrix_to_rotvec(rot: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``(..., 3, 3)`` -> axis-angle ``(..., 3)`` radians (not for backprop)."""
    r = rot.detach().cpu().double().reshape(-1, 3, 3).numpy()
    out = np.zeros((r.shape[0], 3))
    for i, m in enumerate(r):
        cos = np.clip((np.trace(m) - 1.0) / 2.0, -1.0, 1.0)
        angle = math.acos(cos)
        w = np.array([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]])
        if angle < 1e-6:
            out[i] = 0.5 * w
        elif angle > math.pi - 1e-4:  # near 180 deg: axis from the symmetric part
            s = (m + np.eye(3)) / 2.0
            axis = s[np.argmax(np.diag(s))]
            axis = axis / np.linalg.norm(axis)
            if np.dot(w, axis) < 0:
                axis = -axis
            out[i] = angle * axis
        else:
            out[i] = angle * w / (2.0 * math.sin(angle))
    return torch.as_tensor(out, dtype=rot.dtype, device=rot.device).reshape(*rot.shape[:-2], 3)


def _thumb_rest_frame() -> np.ndarray:
    """Columns (x, y, z) of the thumb's rest frame in hand-local axes: y along the metacarpal, z
    towards the pad (the flexion direction), x = y cross z."""
    a, b = math.radians(THUMB_REST_RADIAL_DEG), math.radians(THUMB_REST_VOLAR_DEG)
    y = np.array([math.sin(a) * math.cos(b), math.cos(a) * math.cos(b), math.sin(b)])
    w = np.array(THUMB_PAD_DIRECTION)
    z = w - np.dot(w, y) * y
    z = z / np.linalg.norm(z)
    return np.stack([np.cross(y, z), y, z], axis=1)


# --------------------------------------------------------------------------------------------------
# Forward kinematics
# --------------------------------------------------------------------------------------------------


def _check_params(pose: torch.Tensor, shape: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    if pose.ndim != 2 or pose.shape[1] != POSE_DIM:
        raise ValueError(f"pose must be (B, {POSE_DIM}), got {tuple(pose.shape)}")
    if shape is None:
        shape = mean_shape(pose.shape[0], pose.device, pose.dtype)
    if shape.ndim != 2 or shape.shape[1] != SHAPE_DIM or shape.shape[0] != pose.shape[0]:
        raise ValueError(f"shape must be ({pose.shape[0]}, {SHAPE_DIM}), got {tuple(shape.shape)}")
    return pose, shape.to(pose.dtype)


def _left_flags(left: bool | torch.Tensor | Sequence[bool], batch: int, device: torch.device) -> torch.Tensor:
    """``(B,)`` bool, True for left hands, from one flag or one per batch element."""
    flags = torch.as_tensor(left, dtype=torch.bool, device=device)
    if flags.ndim == 0:
        flags = flags.expand(batch).clone()
    if flags.shape != (batch,):
        raise ValueError(f"left must be a bool or ({batch},), got {tuple(flags.shape)}")
    return flags


def _mirror_sign(left: bool | torch.Tensor | Sequence[bool], batch: int, like: torch.Tensor) -> torch.Tensor:
    """``(B, 1)`` +1 for right hands, -1 for left hands (the hand-local x flip)."""
    return torch.where(_left_flags(left, batch, like.device), -1.0, 1.0).to(like.dtype)[:, None]


def local_joints_and_frames(angles: torch.Tensor, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Joints and bone frames of a RIGHT hand in its hand-local frame.

    Args:
        angles: ``(B, 20)`` radians, :data:`ANGLE_NAMES` order.
        shape: ``(B, SHAPE_DIM)`` shape factors.

    Returns:
        joints: ``(B, 21, 3)`` mm, hand-local frame, MediaPipe joint order.
        frames: ``(B, 5, 3, 3, 3)`` rotation of each bone (chains in :data:`tracker.core.joints.FINGERS`
            order, bones root to tip), columns in hand-local axes: x the flexion axis, y along the
            bone, z towards the volar side of the finger (the thumb: towards its pad).
    """
    b, dtype, device = angles.shape[0], angles.dtype, angles.device
    scale = shape[:, 0:1] * BASE_SCALE_MM  # (B, 1)
    palm = torch.stack([shape[:, 1], shape[:, 2], torch.ones_like(shape[:, 1])], dim=-1)  # (B, 3)
    joints: list[torch.Tensor] = [torch.zeros(b, 3, dtype=dtype, device=device)] * NUM_JOINTS
    frames: list[torch.Tensor] = []
    for f, name in enumerate(_CHAINS):
        idx = FINGERS[name]
        flex_root, abd, flex_mid, flex_dist = angles[:, 4 * f : 4 * f + 4].unbind(-1)
        if name == "thumb":
            rest = torch.as_tensor(_thumb_rest_frame(), dtype=dtype, device=device)
            frame = rest @ _axis_rotation(-abd, 2)
            root = torch.as_tensor(THUMB_CMC_LOCAL, dtype=dtype, device=device)
        else:
            fan = _SPREAD_SIGN[name] * (math.radians(REST_FAN_DEG[name]) + abd)
            frame = _axis_rotation(-fan, 2)  # Rz(+a) turns +y towards -x: radial spread is negative
            root = torch.as_tensor(MCP_LOCAL[name], dtype=dtype, device=device)
        p = root * palm * scale  # (B, 3)
        joints[idx[0]] = p
        chain_frames = []
        for k, flex in enumerate((flex_root, flex_mid, flex_dist)):
            frame = frame @ _axis_rotation(flex, 0)
            chain_frames.append(frame)
            length = BONE_LENGTHS[name][k] * shape[:, 3 + 3 * f + k : 4 + 3 * f + k] * scale  # (B, 1)
            p = p + length * frame[..., :, 1]
            joints[idx[k + 1]] = p
        frames.append(torch.stack(chain_frames, dim=1))
    return torch.stack(joints, dim=1), torch.stack(frames, dim=1)


def local_joints(angles: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """Joints ``(B, 21, 3)`` mm of a RIGHT hand in its hand-local frame (see
    :func:`local_joints_and_frames`)."""
    return local_joints_and_frames(angles, shape)[0]


def forward_kinematics(pose: torch.Tensor, shape: torch.Tensor | None = None,
                       left: bool | torch.Tensor | Sequence[bool] = False) -> torch.Tensor:
    """The 21 joints of hands with parameters ``pose`` / ``shape``.

    Args:
        pose: ``(B, POSE_DIM)`` ``[rotvec, transl mm, angles rad]`` (module docstring).
        shape: ``(B, SHAPE_DIM)`` shape factors; None = the average hand.
        left: True (or a ``(B,)`` bool tensor) for left hands, mirrored in the hand-local x.

    Returns:
        ``(B, 21, 3)`` joints in mm in the output frame (``R @ x_local + transl``), MediaPipe order.
    """
    pose, shape = _check_params(pose, shape)
    local = local_joints(pose[:, 6:], shape)
    local = local * torch.cat([_mirror_sign(left, pose.shape[0], pose),
                               torch.ones(pose.shape[0], 2, dtype=pose.dtype, device=pose.device)], dim=1)[:, None]
    rot = rotvec_to_matrix(pose[:, :3])
    return local @ rot.transpose(-1, -2) + pose[:, None, 3:6]


def bone_lengths(joints: torch.Tensor | np.ndarray) -> np.ndarray:
    """Length of each of the 20 bones (parent -> joint, :data:`tracker.core.joints.EDGES` order), mm.

    Args:
        joints: ``(..., 21, 3)`` mm.

    Returns:
        ``(..., 20)`` float64 mm.
    """
    j = joints.detach().cpu().numpy() if isinstance(joints, torch.Tensor) else np.asarray(joints)
    parents = [p for p, _ in EDGES]
    children = [c for _, c in EDGES]
    return np.linalg.norm(j[..., children, :] - j[..., parents, :], axis=-1).astype(np.float64)


# --------------------------------------------------------------------------------------------------
# Inverse kinematics
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitConfig:
    """Settings of the IK fits.

    Attributes:
        iterations: Levenberg–Marquardt iterations (each one Jacobian, several damping trials).
        fit_shape: also fit the shape factors (else the average hand, or ``shape`` given).
        joint_sigma_mm: expected 3D joint noise; residuals are divided by it (3D fits).
        pixel_sigma: expected 2D joint noise in px (2D fits).
        angle_prior_sigma_deg: std of the Gaussian prior pulling angles towards ``angle_prior_mean``
            (0 = flat hand); large values = weak prior.
        shape_prior_scale: multiplies :data:`SHAPE_PRIOR_SIGMA` (larger = weaker shape prior).
        tolerance: stop when the relative cost decrease of every batch element is below it.
    """

    iterations: int = 60
    fit_shape: bool = False
    joint_sigma_mm: float = 5.0
    pixel_sigma: float = 3.0
    angle_prior_sigma_deg: float = 60.0
    shape_prior_scale: float = 1.0
    tolerance: float = 1e-10


@dataclass(frozen=True)
class FitResult:
    """Result of an IK fit (batched).

    Attributes:
        pose: ``(B, POSE_DIM)`` fitted pose (angles within :data:`ANGLE_LIMITS_DEG`).
        shape: ``(B, SHAPE_DIM)`` fitted (or given) shape.
        joints: ``(B, 21, 3)`` mm, the model's joints at the fit, output frame.
        residual_mm: ``(B, 21)`` distance of each fitted joint to its target (3D fits: mm; 2D fits:
            mean reprojection distance over the views in px).
        mean_residual: ``(B,)`` weighted mean of ``residual_mm`` over the used joints.
        cost: ``(B,)`` final least-squares cost (data + prior).
        iterations: iterations run.
    """

    pose: torch.Tensor
    shape: torch.Tensor
    joints: torch.Tensor
    residual_mm: torch.Tensor
    mean_residual: torch.Tensor
    cost: torch.Tensor
    iterations: int


def levenberg_marquardt(residuals: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor,
                        lower: torch.Tensor, upper: torch.Tensor, iterations: int = 50,
                        tolerance: float = 1e-10) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Batched box-constrained Levenberg–Marquardt.

    Minimises ``sum(residuals(x)[b] ** 2)`` for each batch element ``b`` independently; steps are
    projected onto ``[lower, upper]`` (clamped) and the damping is adapted per element. The
    Jacobian comes from forward-mode differentiation, one tangent per parameter for all rows at
    once, so ``residuals`` must keep rows independent.

    Args:
        residuals: ``(B, P) -> (B, M)``; row ``b`` of the output may depend only on row ``b``.
        x0: ``(B, P)`` start (clamped into the box).
        lower, upper: ``(P,)`` or ``(B, P)`` bounds (``-inf``/``inf`` for free parameters).
        iterations: maximum iterations.
        tolerance: an element stops when its relative cost decrease falls below it or no damping
            gives a decrease.

    Returns:
        ``(x (B, P), cost (B,), iterations run)``.
    """
    lower = lower.expand_as(x0)
    upper = upper.expand_as(x0)
    x = torch.minimum(torch.maximum(x0.detach().clone(), lower), upper)
    batch, n_par = x.shape
    basis = torch.eye(n_par, dtype=x.dtype, device=x.device)[:, None, :].expand(n_par, batch, n_par)

    def jacobian(xc: torch.Tensor) -> torch.Tensor:
        def tangent(v: torch.Tensor) -> torch.Tensor:
            return torch.func.jvp(residuals, (xc,), (v,))[1]

        return torch.func.vmap(tangent)(basis).permute(1, 2, 0)  # (B, M, P)

    with torch.no_grad():
        r = residuals(x)
    cost = (r * r).sum(-1)
    lam = torch.full_like(cost, 1e-3)
    done = ~torch.isfinite(cost)
    it = 0
    for it in range(1, iterations + 1):
        jac = jacobian(x).detach()
        jtj = jac.transpose(1, 2) @ jac
        jtr = (jac.transpose(1, 2) @ r[..., None])[..., 0]
        diag = torch.diag_embed(torch.diagonal(jtj, dim1=1, dim2=2).clamp_min(1e-9))
        start_cost = cost.clone()
        accepted = torch.zeros_like(done)
        for _ in range(8):  # damping trials
            active = ~accepted & ~done
            if not bool(active.any()):
                break
            step = -torch.linalg.solve(jtj + lam[:, None, None] * diag, jtr)
            cand = torch.minimum(torch.maximum(x + step, lower), upper)
            with torch.no_grad():
                r_c = residuals(cand)
            cost_c = (r_c * r_c).sum(-1)
            better = active & torch.isfinite(cost_c) & (cost_c < cost)
            x = torch.where(better[:, None], cand, x)
            r = torch.where(better[:, None], r_c, r)
            cost = torch.where(better, cost_c, cost)
            lam = torch.where(better, (lam / 3.0).clamp_min(1e-10), torch.where(active, lam * 6.0, lam))
            accepted = accepted | better
        gain = (start_cost - cost) / start_cost.clamp_min(1e-300)
        done = done | ~accepted | (gain < tolerance)
        if bool(done.all()):
            break
    return x, cost, it


def _kabsch(src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation ``R`` and translation ``t`` minimising ``sum w ||R src + t - dst||^2`` (proper R)."""
    w = w / max(w.sum(), 1e-12)
    cs, cd = (w[:, None] * src).sum(0), (w[:, None] * dst).sum(0)
    h = ((src - cs) * w[:, None]).T @ (dst - cd)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    rot = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return rot, cd - rot @ cs


def _initial_pose(target: np.ndarray, weight: np.ndarray, shape: torch.Tensor, left: torch.Tensor,
                  dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Rigid palm alignment of the rest hand to ``target`` ``(B, 21, 3)``: ``(B, POSE_DIM)``."""
    b = target.shape[0]
    rest = forward_kinematics(rest_pose(b, device, dtype), shape, left).detach().cpu().numpy()
    pose = np.zeros((b, POSE_DIM))
    palm = list(PALM)
    for i in range(b):
        w = weight[i, palm] * np.isfinite(target[i, palm]).all(-1)
        src, dst = rest[i, palm], np.nan_to_num(target[i, palm])
        if (w > 0).sum() < 3:  # not enough palm joints: use every visible joint
            w = weight[i] * np.isfinite(target[i]).all(-1)
            src, dst = rest[i], np.nan_to_num(target[i])
        if (w > 0).sum() < 3:
            continue
        rot, t = _kabsch(src, dst, w)
        pose[i, :3] = matrix_to_rotvec(torch.as_tensor(rot)).numpy()
        pose[i, 3:6] = t
    return torch.as_tensor(pose, dtype=dtype, device=device)


def _prior_residuals(angles: torch.Tensor, shape: torch.Tensor | None, cfg: FitConfig,
                     angle_mean: torch.Tensor) -> list[torch.Tensor]:
    out = [(angles - angle_mean) / math.radians(cfg.angle_prior_sigma_deg)]
    if shape is not None:
        sigma = torch.tensor(SHAPE_PRIOR_SIGMA, dtype=shape.dtype, device=shape.device) * cfg.shape_prior_scale
        out.append((shape - 1.0) / sigma)
    return out


def _fit(data_residuals: Callable[[torch.Tensor], torch.Tensor], init_pose: torch.Tensor,
         shape0: torch.Tensor, left: torch.Tensor, cfg: FitConfig, angle_mean: torch.Tensor
         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Shared LM driver: ``data_residuals(joints (B,21,3)) -> (B, M)``."""
    dtype, device = init_pose.dtype, init_pose.device
    a_lo, a_hi = angle_limits(device, dtype)
    free = torch.full((6,), math.inf, dtype=dtype, device=device)
    lo, hi = torch.cat([-free, a_lo]), torch.cat([free, a_hi])
    x0 = init_pose
    if cfg.fit_shape:
        s_lo, s_hi = shape_limits(device, dtype)
        lo, hi = torch.cat([lo, s_lo]), torch.cat([hi, s_hi])
        x0 = torch.cat([init_pose, shape0], dim=1)

    def residuals(x: torch.Tensor) -> torch.Tensor:
        pose = x[:, :POSE_DIM]
        shape = x[:, POSE_DIM:] if cfg.fit_shape else shape0
        joints = forward_kinematics(pose, shape, left)
        parts = [data_residuals(joints)] + _prior_residuals(
            pose[:, 6:], shape if cfg.fit_shape else None, cfg, angle_mean)
        return torch.cat(parts, dim=1)

    x, cost, its = levenberg_marquardt(residuals, x0, lo, hi, cfg.iterations, cfg.tolerance)
    pose = x[:, :POSE_DIM]
    shape = x[:, POSE_DIM:] if cfg.fit_shape else shape0
    return pose, shape, cost, its


def _as_tensor(a: torch.Tensor | np.ndarray, dtype: torch.dtype, device: torch.device | None) -> torch.Tensor:
    return torch.as_tensor(a, dtype=dtype, device=device) if not isinstance(a, torch.Tensor) else a.to(dtype)


def _weights(target: torch.Tensor, weights: torch.Tensor | np.ndarray | None) -> torch.Tensor:
    """Per-point weights with non-finite targets (and negative weights) zeroed."""
    finite = torch.isfinite(target).all(-1)
    w = torch.ones(finite.shape, dtype=target.dtype, device=target.device) if weights is None else \
        torch.as_tensor(weights, dtype=target.dtype, device=target.device)
    if w.shape != finite.shape:
        raise ValueError(f"weights must be {tuple(finite.shape)}, got {tuple(w.shape)}")
    return torch.where(finite & torch.isfinite(w), w.clamp_min(0.0), torch.zeros_like(w))


def _result(pose: torch.Tensor, shape: torch.Tensor, left: torch.Tensor, cost: torch.Tensor, its: int,
            per_joint: Callable[[torch.Tensor], torch.Tensor], w: torch.Tensor) -> FitResult:
    with torch.no_grad():
        joints = forward_kinematics(pose, shape, left)
        res = per_joint(joints)
        used = (w > 0).to(res.dtype)
        mean = (torch.nan_to_num(res) * used).sum(-1) / used.sum(-1).clamp_min(1.0)
    return FitResult(pose.detach(), shape.detach(), joints, res, mean, cost.detach(), its)


def fit_to_joints_3d(target: torch.Tensor | np.ndarray, weights: torch.Tensor | np.ndarray | None = None,
                     left: bool | torch.Tensor | Sequence[bool] = False, shape: torch.Tensor | None = None,
                     config: FitConfig = FitConfig(), init_pose: torch.Tensor | None = None) -> FitResult:
    """Fit pose (and with ``config.fit_shape`` the shape) to 3D joints.

    Args:
        target: ``(B, 21, 3)`` mm joints in any frame (NaN = missing joint).
        weights: ``(B, 21)`` non-negative confidence per joint (default 1).
        left: handedness of the hands (True / ``(B,)`` = left).
        shape: ``(B, SHAPE_DIM)`` fixed shape, or the start of the shape fit (default average).
        config: solver settings.
        init_pose: ``(B, POSE_DIM)`` start; default a rigid palm alignment of the flat hand.

    Returns:
        :class:`FitResult` with per-joint distances in mm. Angles respect the limits.

    Raises:
        ValueError: wrong shapes.
    """
    dtype = torch.float64
    device = target.device if isinstance(target, torch.Tensor) else None
    tgt = _as_tensor(target, dtype, device)
    if tgt.ndim != 3 or tgt.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"target must be (B, 21, 3), got {tuple(tgt.shape)}")
    b = tgt.shape[0]
    w = _weights(tgt, weights)
    flags = _left_flags(left, b, tgt.device)
    shape0 = mean_shape(b, tgt.device, dtype) if shape is None else _as_tensor(shape, dtype, tgt.device)
    if init_pose is None:
        init_pose = _initial_pose(tgt.cpu().numpy(), w.cpu().numpy(), shape0, flags, dtype, tgt.device)
    tgt0 = torch.nan_to_num(tgt)
    sw = torch.sqrt(w)[..., None] / config.joint_sigma_mm

    def data(joints: torch.Tensor) -> torch.Tensor:
        return ((joints - tgt0) * sw).reshape(joints.shape[0], -1)

    pose, shape_f, cost, its = _fit(data, _as_tensor(init_pose, dtype, tgt.device), shape0, flags, config,
                                    torch.zeros(NUM_ANGLES, dtype=dtype, device=tgt.device))
    return _result(pose, shape_f, flags, cost, its, lambda j: torch.linalg.norm(j - tgt, dim=-1), w)


def _projections(cameras: Sequence, dtype: torch.dtype, device: torch.device | None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(V, 3, 3)`` K, ``(V, 3, 3)`` R, ``(V, 3)`` t (world -> camera mm) of ``tracker.core.structures.Camera``s."""
    ks, rs, ts = [], [], []
    for cam in cameras:
        ks.append(cam.intrinsics.K)
        ext = cam.extrinsics
        rs.append(np.eye(3) if ext is None else np.asarray(ext.R, dtype=np.float64))
        ts.append(np.zeros(3) if ext is None else np.asarray(ext.t, dtype=np.float64).reshape(3))
    as_t = lambda a: torch.as_tensor(np.stack(a), dtype=dtype, device=device)  # noqa: E731
    return as_t(ks), as_t(rs), as_t(ts)


def _project(joints: torch.Tensor, k: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """World joints ``(B, J, 3)`` -> pixels ``(B, V, J, 2)`` (pinhole, depth clamped at 1 mm)."""
    cam = torch.einsum("vij,bnj->bvni", r, joints) + t[None, :, None, :]
    z = cam[..., 2:3].clamp_min(1.0)
    xy = cam[..., :2] / z
    f = torch.stack([k[:, 0, 0], k[:, 1, 1]], -1)[None, :, None, :]
    c = torch.stack([k[:, 0, 2], k[:, 1, 2]], -1)[None, :, None, :]
    return xy * f + c


def _init_from_views(uv: torch.Tensor, w: torch.Tensor, k: torch.Tensor, r: torch.Tensor, t: torch.Tensor,
                     shape0: torch.Tensor, flags: torch.Tensor) -> np.ndarray:
    """A 3D start ``(B, 21, 3)`` world mm: the weighted DLT of the views where a joint is seen in
    two or more, else each view's palm back-projected at the depth where the average palm has the
    observed pixel size."""
    from kernels.triangulate import triangulate_dlt

    proj = (k @ torch.cat([r, t[..., None]], -1)).cpu().numpy()  # (V, 3, 4)
    uvn, wn = uv.cpu().numpy(), w.cpu().numpy()
    b, v = uvn.shape[:2]
    rest = forward_kinematics(rest_pose(b, dtype=torch.float64), shape0.cpu(), flags.cpu()).numpy()
    out = np.full((b, NUM_JOINTS, 3), np.nan)
    for i in range(b):
        if v >= 2:
            x = triangulate_dlt(proj, np.ascontiguousarray(uvn[i].transpose(1, 0, 2)),
                                np.ascontiguousarray(wn[i].T))
            x = x[0] if isinstance(x, tuple) else x
            out[i] = x
        if np.isfinite(out[i]).all(-1).sum() >= 3:
            continue
        # single view: the best view's joints at the depth matching the palm's pixel size
        best = int(np.argmax((wn[i] > 0).sum(-1)))
        seen = wn[i, best] > 0
        if seen.sum() < 2:
            continue
        kk, rr, tt = (a[best].cpu().numpy() for a in (k, r, t))
        px = uvn[i, best]
        ids = np.flatnonzero(seen)
        span_px = max(np.ptp(px[ids], axis=0).max(), 1.0)
        span_mm = max(np.ptp(rest[i, ids], axis=0).max(), 1.0)
        z = kk[0, 0] * span_mm / span_px
        rays = np.c_[(px - kk[:2, 2]) / np.diag(kk)[:2], np.ones(NUM_JOINTS)] * z  # camera frame
        world = (rays - tt) @ rr
        out[i, ids] = world[ids]
    return out


def fit_to_joints_2d(uv: torch.Tensor | np.ndarray, cameras: Sequence, weights: torch.Tensor | np.ndarray | None = None,
                     left: bool | torch.Tensor | Sequence[bool] = False, shape: torch.Tensor | None = None,
                     config: FitConfig = FitConfig(), init_pose: torch.Tensor | None = None) -> FitResult:
    """Fit pose (and optionally shape) to 2D joints seen by one or more calibrated cameras.

    Args:
        uv: ``(B, V, 21, 2)`` pixel positions (undistorted; NaN = not detected) in each of the
            ``V`` views.
        cameras: ``V`` :class:`tracker.core.structures.Camera` (pinhole intrinsics; extrinsics world ->
            camera, None = identity, i.e. the world is that camera's frame).
        weights: ``(B, V, 21)`` non-negative confidences (default 1).
        left, shape, config, init_pose: as in :func:`fit_to_joints_3d`. With one view the metric
            depth is only as good as the shape prior (a scale/depth ambiguity); fix ``shape`` when
            the hand size is known.

    Returns:
        :class:`FitResult`: pose in the world frame; ``residual_mm`` holds the per-joint mean
        reprojection error in pixels over the views that saw it.
    """
    dtype = torch.float64
    device = uv.device if isinstance(uv, torch.Tensor) else None
    obs = _as_tensor(uv, dtype, device)
    if obs.ndim != 4 or obs.shape[2:] != (NUM_JOINTS, 2) or obs.shape[1] != len(cameras):
        raise ValueError(f"uv must be (B, {len(cameras)}, 21, 2), got {tuple(obs.shape)}")
    b = obs.shape[0]
    w = _weights(obs, weights)
    flags = _left_flags(left, b, obs.device)
    shape0 = mean_shape(b, obs.device, dtype) if shape is None else _as_tensor(shape, dtype, obs.device)
    k, r, t = _projections(cameras, dtype, obs.device)
    if init_pose is None:
        start = _init_from_views(obs, w, k, r, t, shape0, flags)
        init_pose = _initial_pose(start, np.ones((b, NUM_JOINTS)), shape0, flags, dtype, obs.device)
    obs0 = torch.nan_to_num(obs)
    sw = torch.sqrt(w)[..., None] / config.pixel_sigma

    def data(joints: torch.Tensor) -> torch.Tensor:
        return ((_project(joints, k, r, t) - obs0) * sw).reshape(joints.shape[0], -1)

    pose, shape_f, cost, its = _fit(data, _as_tensor(init_pose, dtype, obs.device), shape0, flags, config,
                                    torch.zeros(NUM_ANGLES, dtype=dtype, device=obs.device))

    def per_joint(joints: torch.Tensor) -> torch.Tensor:
        err = torch.linalg.norm(_project(joints, k, r, t) - obs, dim=-1)  # (B, V, J)
        seen = (w > 0).to(err.dtype)
        return (torch.nan_to_num(err) * seen).sum(1) / seen.sum(1).clamp_min(1.0)

    return _result(pose, shape_f, flags, cost, its, per_joint, (w.sum(1) > 0).to(dtype))
