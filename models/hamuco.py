"""HaMuCo-style learned multi-view hand fusion (Zheng et al., ICCV 2023), on 2D detections.

Inputs are per-view detections of ONE hand (MediaPipe or any 2D detector) in a calibrated rig of
V = 1..8 cameras (slots padded to a fixed V with ``view_mask``):

* **Single-view network** (:class:`SingleViewNet`): per view, 2D joints normalised by the
  intrinsics into camera rays (normalised image coordinates), per-joint confidence, MediaPipe's
  metric root-relative 3D ("world landmarks", mm), the handedness probability and, in models with
  ``patch_size > 0``, **image features**: a small CNN (:class:`PatchEncoder`) on an RGB patch of the
  view's image around each detected joint (:func:`models.hamuco_data.joint_patches`), so the network
  can see an occluder or a detection off the hand -> per-joint
  features (graph convolutions over :data:`tracker.core.joints.EDGES`) -> hand-model parameters
  (6D rotation in that camera's frame, 20 joint angles, 18 shape factors) -> joints by
  :func:`models.hand_model.forward_kinematics` -> absolute camera-frame joints (mm) by a
  confidence-weighted closed-form solve of the translation against the rays.
* **Cross-view interaction network** (:class:`CrossViewNet`): per view and joint, graph features
  (single-view features, joint positions and rays in the world frame, camera centre, pose
  parameters), a **cross-view attention** branch (attention over the views of each joint) and a
  **view-shared** branch (adaptive GCN, max-pool over views, :class:`ViewSharedBranch`):
  ``G* = G + Attn(G) + C'``. It regresses refined per-view parameters and joints, a 2D ray
  correction per view and joint (the detector's bias), and fusion weights.
* **Fusion** (:func:`fuse_world`): per joint, the world point closest (weighted least squares,
  mm) to the refined rays of all views and to their refined 3D joints mapped into the world frame
  with the extrinsics: ``X = argmin sum_v wr_v |(I - d_v d_v^T)(X - C_v)|^2 + wp_v |X - P_v|^2``.
  The inverse of the normal matrix gives the per-joint uncertainty (1-sigma, mm), scaled by a
  learned head.

Frames and units: camera frame OpenCV (x right, y down, z forward), world frame of the rig,
extrinsics world -> camera ``x_cam = R x_world + t`` with ``t`` in mm; all 3D in mm; pixels for
``uv`` (undistorted). Every function follows its inputs' device and dtype; models are built with
``device=None, dtype=None`` like timm's. Losses: :func:`supervised_loss` (3D labels) and
:func:`self_supervised_loss` (HaMuCo's 2D consistency, fusion consistency, self-distillation and
parameter regularisation; no 3D labels).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Final

import torch
import torch.nn.functional as F
from torch import nn

from tracker.core.errors import ModelError
from tracker.core.joints import EDGES, NUM_JOINTS

from models.hand_model import NUM_ANGLES, SHAPE_DIM, SHAPE_LIMITS, angle_limits, forward_kinematics

__all__ = [
    "HaMuCoConfig",
    "HaMuCoOutput",
    "HaMuCo",
    "SingleViewNet",
    "PatchEncoder",
    "CrossViewNet",
    "ViewSharedBranch",
    "fuse_world",
    "camera_to_world",
    "world_to_camera",
    "project",
    "solve_translation",
    "supervised_loss",
    "self_supervised_loss",
    "create_model",
    "list_models",
    "save_weights",
    "load_weights",
]

#: Input features per joint and view of the single-view network.
_SV_IN: Final = 2 + 1 + 3 + 1 + 3
#: Extra geometric features per joint and view of the cross-view network.
_CV_GEOM: Final = 3 + 3 + 3 + 3


@dataclass(frozen=True)
class HaMuCoConfig:
    """Architecture settings.

    Attributes:
        width: feature width per joint.
        sv_blocks: graph blocks of the single-view network.
        cv_blocks: cross-view interaction blocks.
        heads: attention heads of the cross-view attention branch.
        ray_correction: largest 2D correction of a ray (normalised image units, ~px / f).
        patch_size: edge (px) of the per-joint image patches the single-view network sees; 0 = no
            image features (detections only).
    """

    width: int = 64
    sv_blocks: int = 2
    cv_blocks: int = 2
    heads: int = 4
    ray_correction: float = 0.03
    patch_size: int = 0


@dataclass
class HaMuCoOutput:
    """What :meth:`HaMuCo.forward` returns (B frames, V view slots, J = 21 joints; mm).

    Attributes:
        joints_world: ``(B, J, 3)`` fused joints, world frame.
        uncertainty_mm: ``(B, J)`` 1-sigma per-axis position uncertainty.
        single_world: ``(B, V, J, 3)`` single-view joints in the world frame.
        refined_world: ``(B, V, J, 3)`` cross-view refined per-view joints in the world frame.
        refined_cam: ``(B, V, J, 3)`` the same in each view's camera frame.
        angles: ``(B, V, 20)`` single-view joint angles (rad); ``angles_ref`` refined ones.
        shape: ``(B, V, 18)`` single-view shape factors; ``shape_ref`` refined ones.
        ray_weight, point_weight: ``(B, V, J)`` fusion weights (1/mm^2; 0 for masked views).
        left: ``(B,)`` bool, the side the hand model was posed as.
    """

    joints_world: torch.Tensor
    uncertainty_mm: torch.Tensor
    single_world: torch.Tensor
    refined_world: torch.Tensor
    refined_cam: torch.Tensor
    angles: torch.Tensor
    angles_ref: torch.Tensor
    shape: torch.Tensor
    shape_ref: torch.Tensor
    ray_weight: torch.Tensor
    point_weight: torch.Tensor
    left: torch.Tensor


# --------------------------------------------------------------------------------------------------
# Geometry (plain functions)
# --------------------------------------------------------------------------------------------------


def camera_to_world(x_cam: torch.Tensor, R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``(..., N, 3)`` camera-frame points (mm) -> world, with ``R`` ``(..., 3, 3)``, ``t`` ``(..., 3)``
    world -> camera (``x_cam = R x_world + t``)."""
    return (x_cam - t[..., None, :]) @ R


def world_to_camera(x_world: torch.Tensor, R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``(..., N, 3)`` world points (mm) -> camera frame (inverse of :func:`camera_to_world`)."""
    return x_world @ R.transpose(-1, -2) + t[..., None, :]


def project(x_cam: torch.Tensor, K: torch.Tensor, min_depth_mm: float = 10.0) -> torch.Tensor:
    """``(..., N, 3)`` camera-frame mm -> ``(..., N, 2)`` px with ``K`` ``(..., 3, 3)`` (depth clamped)."""
    z = x_cam[..., 2:3].clamp_min(min_depth_mm)
    xy = x_cam[..., :2] / z
    return xy * torch.stack([K[..., 0, 0], K[..., 1, 1]], -1)[..., None, :] + K[..., None, :2, 2]


def solve_translation(rel: torch.Tensor, rays: torch.Tensor, w: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Translation ``T`` (mm) that puts root-relative joints ``rel`` on their camera rays.

    Minimises ``sum_j w_j |((rel_j + T)_xy - ray_j (rel_j + T)_z)|^2`` (linear in ``T``).

    Args:
        rel: ``(..., J, 3)`` joints relative to any origin, camera axes, mm.
        rays: ``(..., J, 2)`` normalised image coordinates ``((u - cx) / fx, (v - cy) / fy)``.
        w: ``(..., J)`` non-negative weights.

    Returns:
        ``(..., 3)`` mm, camera frame.
    """
    # rows: [1, 0, -x] T = x * rel_z - rel_x ; [0, 1, -y] T = y * rel_z - rel_y
    one, zero = torch.ones_like(rays[..., 0]), torch.zeros_like(rays[..., 0])
    ax = torch.stack([one, zero, -rays[..., 0]], -1)
    ay = torch.stack([zero, one, -rays[..., 1]], -1)
    bx = rays[..., 0] * rel[..., 2] - rel[..., 0]
    by = rays[..., 1] * rel[..., 2] - rel[..., 1]
    a = torch.cat([ax, ay], -2)  # (..., 2J, 3)
    b = torch.cat([bx, by], -1)
    ww = torch.cat([w, w], -1)
    ata = (a * ww[..., None]).transpose(-1, -2) @ a
    atb = ((a * ww[..., None]).transpose(-1, -2) @ b[..., None])[..., 0]
    scale = ww.sum(-1).clamp_min(eps)[..., None, None]
    eye = torch.eye(3, dtype=rel.dtype, device=rel.device)
    return torch.linalg.solve(ata + eps * scale * eye + 1e-9 * eye, atb)


def fuse_world(centres: torch.Tensor, dirs: torch.Tensor, ray_w: torch.Tensor, points: torch.Tensor,
               point_w: torch.Tensor, eps: float = 1e-9) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted least-squares fusion of rays and points per joint, world frame (mm).

    Args:
        centres: ``(B, V, 3)`` camera centres.
        dirs: ``(B, V, J, 3)`` unit ray directions.
        ray_w: ``(B, V, J)`` ray weights (1/mm^2; 0 = unused).
        points: ``(B, V, J, 3)`` per-view 3D joints.
        point_w: ``(B, V, J)`` point weights (1/mm^2; 0 = unused).

    Returns:
        ``(X, sigma)``: ``(B, J, 3)`` fused joints and ``(B, J)`` the 1-sigma per-axis spread implied
        by the weights (``sqrt(trace(H^-1) / 3)``, mm).
    """
    eye = torch.eye(3, dtype=points.dtype, device=points.device)
    proj = eye - dirs[..., :, None] * dirs[..., None, :]  # (B, V, J, 3, 3)
    h = (ray_w[..., None, None] * proj).sum(1) + point_w.sum(1)[..., None, None] * eye
    rhs = (ray_w[..., None] * (proj @ centres[:, :, None, :, None])[..., 0]).sum(1) + (point_w[..., None] * points).sum(1)
    h = h + eps * eye
    x = torch.linalg.solve(h, rhs)
    cov_tr = torch.linalg.inv(h).diagonal(dim1=-2, dim2=-1).sum(-1)
    return x, (cov_tr / 3.0).clamp_min(1e-12).sqrt()


def _rot6d(x: torch.Tensor) -> torch.Tensor:
    """``(..., 6)`` -> ``(..., 3, 3)`` rotation (Gram-Schmidt of two columns, Zhou et al. 2019)."""
    a, b = x[..., :3], x[..., 3:]
    c0 = F.normalize(a, dim=-1)
    c1 = F.normalize(b - (c0 * b).sum(-1, keepdim=True) * c0, dim=-1)
    c2 = torch.cross(c0, c1, dim=-1)
    return torch.stack([c0, c1, c2], -1)


def _skeleton_adjacency() -> torch.Tensor:
    a = torch.eye(NUM_JOINTS)
    for p, c in EDGES:
        a[p, c] = a[c, p] = 1.0
    return a / a.sum(-1, keepdim=True)


# --------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------


class GraphBlock(nn.Module):
    """Adaptive graph convolution over the 21 joints + MLP, both residual: ``(..., J, C) -> (..., J, C)``.
    The adjacency is the normalised skeleton plus a learned offset (the "adaptive GCN")."""

    def __init__(self, width: int, device: torch.device | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.register_buffer("adj", _skeleton_adjacency().to(**kw))
        self.adapt = nn.Parameter(torch.zeros(NUM_JOINTS, NUM_JOINTS, **kw))
        self.norm1 = nn.LayerNorm(width, **kw)
        self.lin = nn.Linear(width, width, **kw)
        self.norm2 = nn.LayerNorm(width, **kw)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width, **kw), nn.GELU(), nn.Linear(2 * width, width, **kw))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = (self.adj + self.adapt).to(x.dtype)
        x = x + a @ self.lin(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _ParamHead(nn.Module):
    """Per-joint features ``(..., J, C)`` -> rotation 6D, angles (rad, within limits), shape factors."""

    def __init__(self, width: int, device: torch.device | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.mlp = nn.Sequential(nn.Linear(2 * width, 4 * width, **kw), nn.GELU(),
                                 nn.Linear(4 * width, 6 + NUM_ANGLES + SHAPE_DIM, **kw))
        lo, hi = angle_limits(dtype=torch.float32)
        self.register_buffer("a_mid", ((lo + hi) / 2).to(device=device, dtype=dtype))
        self.register_buffer("a_half", ((hi - lo) / 2).to(device=device, dtype=dtype))
        lim = torch.tensor(SHAPE_LIMITS, dtype=torch.float32)
        self.register_buffer("s_lo", lim[:, 0].to(device=device, dtype=dtype))
        self.register_buffer("s_hi", lim[:, 1].to(device=device, dtype=dtype))
        with torch.no_grad():  # start at the identity rotation, mid-range angles, the mean hand
            self.mlp[-1].weight.mul_(0.1)
            self.mlp[-1].bias.zero_()
            self.mlp[-1].bias[:6] = torch.tensor([1.0, 0, 0, 0, 1.0, 0])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pooled = torch.cat([x.mean(-2), x.amax(-2)], -1)
        p = self.mlp(pooled)
        rot = _rot6d(p[..., :6])
        angles = self.a_mid + self.a_half * torch.tanh(p[..., 6:6 + NUM_ANGLES])
        shape = (1.0 + 0.3 * torch.tanh(p[..., 6 + NUM_ANGLES:])).clamp(self.s_lo, self.s_hi)
        return rot, angles, shape


def _pose_joints(rot: torch.Tensor, angles: torch.Tensor, shape: torch.Tensor, left: torch.Tensor) -> torch.Tensor:
    """Root-relative joints (mm, the frame ``rot`` maps into) by the hand model's forward kinematics.

    ``rot`` ``(B, V, 3, 3)``, ``angles`` ``(B, V, 20)``, ``shape`` ``(B, V, 18)``, ``left`` ``(B,)``."""
    b, v = angles.shape[:2]
    pose = torch.cat([angles.new_zeros(b * v, 6), angles.reshape(b * v, NUM_ANGLES)], -1)
    flags = left[:, None].expand(b, v).reshape(-1)
    local = forward_kinematics(pose, shape.reshape(b * v, SHAPE_DIM), flags).reshape(b, v, NUM_JOINTS, 3)
    return local @ rot.transpose(-1, -2)


class PatchEncoder(nn.Module):
    """Image features: ``(N, P, P, 3)`` uint8 RGB patches -> ``(N, C)`` (three strided 3x3
    convolutions, global average pool, linear). The output layer starts at zero, so adding the
    branch to a trained detections-only model leaves its predictions unchanged until fine-tuned."""

    def __init__(self, width: int, device: torch.device | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.convs = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1, **kw), nn.GELU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1, **kw), nn.GELU(),
            nn.Conv2d(32, 48, 3, stride=2, padding=1, **kw), nn.GELU(),
        )  # fmt: skip
        self.out = nn.Linear(48, width, **kw)
        with torch.no_grad():
            self.out.weight.zero_()
            self.out.bias.zero_()

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        x = patches.to(self.out.weight.dtype).permute(0, 3, 1, 2) / 127.5 - 1.0
        return self.out(self.convs(x).mean((-1, -2)))


class SingleViewNet(nn.Module):
    """Per view: detections -> per-joint features, hand-model parameters, camera-frame joints.

    Input per view and joint (``_SV_IN`` = 10): the ray relative to the hand's 2D centre and scaled
    by its 2D spread (2), confidence (1), MediaPipe metric 3D / 100 mm (3), left probability (1),
    the 2D centre (2) and log spread (1).
    """

    def __init__(self, cfg: HaMuCoConfig, device: torch.device | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.embed = nn.Linear(_SV_IN, cfg.width, **kw)
        self.joint_embed = nn.Parameter(0.02 * torch.randn(NUM_JOINTS, cfg.width, **kw))
        self.blocks = nn.ModuleList(GraphBlock(cfg.width, **kw) for _ in range(cfg.sv_blocks))
        self.head = _ParamHead(cfg.width, **kw)
        self.patches = PatchEncoder(cfg.width, **kw) if cfg.patch_size > 0 else None

    def forward(self, feats: torch.Tensor, patches: torch.Tensor | None = None,
                view_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(B, V, J, 10)`` (+ image patches ``(B, V, J, P, P, 3)`` uint8 when the model has image
        features; None = no images: that branch adds nothing; ``view_mask`` ``(B, V)`` limits the
        image branch to the views that hold a detection) -> features ``(B, V, J, C)``, rotation
        ``(B, V, 3, 3)``, angles ``(B, V, 20)`` rad, shape ``(B, V, 18)``."""
        x = self.embed(feats) + self.joint_embed
        if self.patches is not None and patches is not None:
            b, v, j = feats.shape[:3]
            sel = torch.ones(b, v, dtype=torch.bool, device=x.device) if view_mask is None else view_mask.bool()
            enc = self.patches(patches[sel].reshape(-1, *patches.shape[3:])).reshape(-1, j, x.shape[-1])
            x = x + torch.zeros_like(x).masked_scatter(sel[..., None, None].expand_as(x), enc.to(x.dtype))
        for blk in self.blocks:
            x = blk(x)
        return (x, *self.head(x))


class ViewSharedBranch(nn.Module):
    """View-shared features: adaptive GCN per view then max-pool over the valid views.

    ``(B, V, J, C)``, mask ``(B, V)`` -> ``(B, J, C)``; invariant to the order of the views."""

    def __init__(self, width: int, device: torch.device | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.gcn = GraphBlock(width, device=device, dtype=dtype)

    def forward(self, g: torch.Tensor, view_mask: torch.Tensor) -> torch.Tensor:
        c = self.gcn(g)
        c = c.masked_fill(~view_mask[:, :, None, None], float("-inf"))
        c = c.amax(1)
        return torch.where(torch.isfinite(c), c, torch.zeros_like(c))


class CrossViewBlock(nn.Module):
    """``G* = G + Attn_views(G) + C'`` followed by a graph block (one dual-branch interaction)."""

    def __init__(self, cfg: HaMuCoConfig, device: torch.device | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.norm = nn.LayerNorm(cfg.width, **kw)
        self.attn = nn.MultiheadAttention(cfg.width, cfg.heads, batch_first=True, **kw)
        self.shared = ViewSharedBranch(cfg.width, **kw)
        self.graph = GraphBlock(cfg.width, **kw)

    def forward(self, g: torch.Tensor, view_mask: torch.Tensor) -> torch.Tensor:
        b, v, j, c = g.shape
        tokens = self.norm(g).permute(0, 2, 1, 3).reshape(b * j, v, c)
        pad = (~view_mask)[:, None, :].expand(b, j, v).reshape(b * j, v)
        att, _ = self.attn(tokens, tokens, tokens, key_padding_mask=pad, need_weights=False)
        att = att.reshape(b, j, v, c).permute(0, 2, 1, 3)
        g = g + att + self.shared(g, view_mask)[:, None]
        return self.graph(g)


class CrossViewNet(nn.Module):
    """Cross-view interaction: graph features of all views -> refined parameters, ray corrections,
    fusion weights and an uncertainty scale (see the module docstring)."""

    def __init__(self, cfg: HaMuCoConfig, device: torch.device | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.cfg = cfg
        self.embed = nn.Linear(cfg.width + _CV_GEOM + 6 + NUM_ANGLES, cfg.width, **kw)
        self.blocks = nn.ModuleList(CrossViewBlock(cfg, **kw) for _ in range(cfg.cv_blocks))
        self.head = _ParamHead(cfg.width, **kw)
        self.joint_out = nn.Linear(cfg.width, 2 + 2, **kw)  # ray correction (2), ray / point weight logits (2)
        self.unc = nn.Sequential(nn.Linear(cfg.width, cfg.width, **kw), nn.GELU(), nn.Linear(cfg.width, 1, **kw))
        with torch.no_grad():
            self.joint_out.weight.mul_(0.1)
            self.joint_out.bias.zero_()
            self.unc[-1].weight.mul_(0.1)
            self.unc[-1].bias.zero_()

    def forward(self, g: torch.Tensor, view_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.embed(g)
        for blk in self.blocks:
            x = blk(x, view_mask)
        rot, angles, shape = self.head(x)
        out = self.joint_out(x)
        pooled = x.masked_fill(~view_mask[:, :, None, None], float("-inf")).amax(1)
        pooled = torch.where(torch.isfinite(pooled), pooled, torch.zeros_like(pooled))
        return {"rot": rot, "angles": angles, "shape": shape,
                "ray_delta": self.cfg.ray_correction * torch.tanh(out[..., :2]),
                "ray_logit": out[..., 2], "point_logit": out[..., 3], "unc_logit": self.unc(pooled)[..., 0]}


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------


class HaMuCo(nn.Module):
    """Learned multi-view fusion of per-view 2D hand detections (module docstring).

    Args:
        cfg: architecture settings.
        device, dtype: where to build the parameters (default: torch's defaults).
    """

    #: Nominal weight scales (1/mm^2): a ray is worth a ~5 mm sigma, a single-view 3D joint ~100 mm
    #: (the learned logits move both).
    RAY_W0: Final = 1.0 / 25.0
    POINT_W0: Final = 1.0 / 10000.0

    def __init__(self, cfg: HaMuCoConfig = HaMuCoConfig(), device: torch.device | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.single = SingleViewNet(cfg, device=device, dtype=dtype)
        self.cross = CrossViewNet(cfg, device=device, dtype=dtype)
        self.unc_bias = nn.Parameter(torch.zeros((), device=device, dtype=dtype))

    def forward_features(self, uv: torch.Tensor, conf: torch.Tensor, local: torch.Tensor, left_prob: torch.Tensor,
                         view_mask: torch.Tensor, K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Single-view inputs: ``(feats (B, V, J, 10), rays (B, V, J, 2), weights (B, V, J))``."""
        fxy = torch.stack([K[..., 0, 0], K[..., 1, 1]], -1)[..., None, :]
        rays = (uv - K[..., None, :2, 2]) / fxy
        w = conf * view_mask[..., None].to(conf.dtype)
        wn = w / w.sum(-1, keepdim=True).clamp_min(1e-6)
        centre = (wn[..., None] * rays).sum(-2, keepdim=True)
        spread = ((wn * ((rays - centre) ** 2).sum(-1)).sum(-1, keepdim=True)).clamp_min(1e-8).sqrt()[..., None]
        feats = torch.cat([(rays - centre) / spread, conf[..., None], local / 100.0,
                           left_prob[..., None, None].expand(*conf.shape, 1), centre.expand(*rays.shape),
                           spread.log().expand(*conf.shape, 1)], -1)
        feats = feats * view_mask[..., None, None].to(feats.dtype)
        return feats, rays, w

    def forward(self, uv: torch.Tensor, conf: torch.Tensor, local: torch.Tensor, left_prob: torch.Tensor,
                view_mask: torch.Tensor, K: torch.Tensor, R: torch.Tensor, t: torch.Tensor,
                patches: torch.Tensor | None = None) -> HaMuCoOutput:
        """Fuse one hand seen by up to V cameras.

        Args:
            uv: ``(B, V, J, 2)`` px detections (any finite value where masked).
            conf: ``(B, V, J)`` per-joint confidence in [0, 1].
            local: ``(B, V, J, 3)`` mm root-relative metric 3D per view (camera axes; zeros if unknown).
            left_prob: ``(B, V)`` probability that the hand is a left hand, per view.
            view_mask: ``(B, V)`` bool, the view slot holds a detection.
            K: ``(B, V, 3, 3)`` intrinsics (px); R ``(B, V, 3, 3)``, t ``(B, V, 3)`` mm world -> camera.
            patches: ``(B, V, J, P, P, 3)`` uint8 RGB image patches around the detected joints
                (:func:`models.hamuco_data.joint_patches`), used by models with ``patch_size > 0``;
                None = no images (the image branch adds nothing).

        Returns:
            :class:`HaMuCoOutput`.

        Raises:
            ValueError: inconsistent shapes.
        """
        b, v, j, _ = uv.shape
        if j != NUM_JOINTS or conf.shape != (b, v, j) or view_mask.shape != (b, v) or R.shape != (b, v, 3, 3):
            raise ValueError(f"expected uv (B, V, 21, 2), conf (B, V, 21), view_mask (B, V), R (B, V, 3, 3); got "
                             f"{tuple(uv.shape)}, {tuple(conf.shape)}, {tuple(view_mask.shape)}, {tuple(R.shape)}")
        view_mask = view_mask.bool()
        # a frame with no valid view would make attention undefined: give it view 0 (its output is garbage)
        safe_mask = view_mask.clone()
        safe_mask[:, 0] |= ~view_mask.any(1)
        vm = safe_mask.to(uv.dtype)
        left = (left_prob * vm).sum(1) / vm.sum(1) > 0.5

        feats, rays, w = self.forward_features(uv, conf, local, left_prob, safe_mask, K)
        hfeat, rot, angles, shape = self.single(feats, patches, safe_mask)
        rel = _pose_joints(rot, angles, shape, left)
        single_cam = rel + solve_translation(rel, rays, w)[..., None, :]
        single_world = camera_to_world(single_cam, R, t)

        centres = -(t[..., None, :] @ R)[..., 0, :]  # (B, V, 3)
        ones = torch.ones_like(rays[..., :1])
        dirs_w = F.normalize(torch.cat([rays, ones], -1), dim=-1) @ R  # (B, V, J, 3)
        cscale = centres.norm(dim=-1, keepdim=True).mean(1, keepdim=True).clamp_min(1.0)
        params = torch.cat([rot[..., :2].flatten(-2), angles], -1)  # 6D rotation + angles
        geom = torch.cat([dirs_w, (centres / cscale)[..., None, :].expand_as(dirs_w),
                          (single_world - (single_world * vm[..., None, None]).sum(1, keepdim=True)
                           / vm.sum(1)[:, None, None, None]) / 100.0,
                          (rel - rel[..., :1, :]) / 100.0], -1)
        g = torch.cat([hfeat, geom, params[..., None, :].expand(b, v, j, params.shape[-1])], -1)
        cv = self.cross(g, safe_mask)

        rays_ref = rays + cv["ray_delta"]
        rel_ref = _pose_joints(cv["rot"], cv["angles"], cv["shape"], left)
        ref_cam = rel_ref + solve_translation(rel_ref, rays_ref, w)[..., None, :]
        ref_world = camera_to_world(ref_cam, R, t)
        dirs_ref = F.normalize(torch.cat([rays_ref, ones], -1), dim=-1) @ R
        vmask = view_mask[..., None].to(uv.dtype)
        ray_w = self.RAY_W0 * torch.exp(cv["ray_logit"].clamp(-8, 6)) * conf * vmask
        point_w = self.POINT_W0 * torch.exp(cv["point_logit"].clamp(-8, 6)) * vmask
        x, sigma = fuse_world(centres, dirs_ref, ray_w, ref_world, point_w)
        unc = sigma.detach() * torch.exp(cv["unc_logit"] + self.unc_bias)
        return HaMuCoOutput(x, unc, single_world, ref_world, ref_cam, angles, cv["angles"], shape, cv["shape"],
                            ray_w, point_w, left)


# --------------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------------


def _masked_mean(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (x * w).sum() / w.sum().clamp_min(1e-6)


def _param_reg(out: HaMuCoOutput, vm: torch.Tensor) -> torch.Tensor:
    """HaMuCo's L_p: |theta| + |theta*| + gamma |beta - 1| (angles in rad; shape deviations)."""
    per_view = (out.angles.abs().mean(-1) + out.angles_ref.abs().mean(-1)
                + 10.0 * ((out.shape - 1).abs().mean(-1) + (out.shape_ref - 1).abs().mean(-1)))
    return _masked_mean(per_view, vm)


def supervised_loss(out: HaMuCoOutput, joints_world: torch.Tensor, view_mask: torch.Tensor,
                    weights: dict[str, float] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """3D-supervised loss (mm): fused MPJPE + per-view (single / refined) joint errors, root-relative,
    + uncertainty NLL + parameter regularisation. Frames without a valid view are ignored.

    Args:
        out: model output.
        joints_world: ``(B, J, 3)`` mm ground truth.
        view_mask: ``(B, V)`` bool.
        weights: overrides of the term weights ``fused, view, nll, reg``.

    Returns:
        ``(loss, terms)`` with the terms as floats (mm for the joint errors).
    """
    w = {"fused": 1.0, "view": 0.2, "nll": 0.05, "reg": 0.5} | (weights or {})
    vm = view_mask.to(out.joints_world.dtype)
    valid = (vm.sum(1) > 0).to(vm.dtype)[:, None].expand(-1, NUM_JOINTS)
    err = (out.joints_world - joints_world).norm(dim=-1)
    fused = _masked_mean(err, valid)
    gt_rel = joints_world - joints_world[:, :1]

    def view_err(p: torch.Tensor) -> torch.Tensor:
        rel = (p - p[..., :1, :]) - gt_rel[:, None]
        return _masked_mean(rel.norm(dim=-1).mean(-1), vm)

    views = view_err(out.single_world) + view_err(out.refined_world)
    sigma = out.uncertainty_mm.clamp_min(0.1)
    nll = _masked_mean(3.0 * sigma.log() + err.detach() ** 2 / (2.0 * sigma**2), valid)
    reg = _param_reg(out, vm)
    loss = w["fused"] * fused + w["view"] * views + w["nll"] * nll + w["reg"] * reg
    return loss, {k: float(v.detach()) for k, v in (("fused_mm", fused), ("view_mm", views), ("nll", nll), ("reg", reg))}


def self_supervised_loss(out: HaMuCoOutput, uv: torch.Tensor, conf: torch.Tensor, view_mask: torch.Tensor,
                         K: torch.Tensor, R: torch.Tensor, t: torch.Tensor,
                         weights: dict[str, float] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """HaMuCo's objective without 3D labels, from multi-view pseudo 2D labels ``uv`` / ``conf``.

    * 2D consistency (px, Huber, confidence-weighted): the fused joints and every view's refined
      joints (mapped to the world with the extrinsics) reprojected into every valid view vs. that
      view's pseudo labels (``L_c2D`` over all view pairs).
    * fusion consistency: refined per-view joints vs. the fused joints (world, mm).
    * self-distillation: single-view joints vs. the (detached) fused joints (world, mm).
    * parameter regularisation.

    Args:
        out: model output; uv ``(B, V, J, 2)`` px, conf ``(B, V, J)``, view_mask ``(B, V)``,
        K/R/t as for :meth:`HaMuCo.forward`; weights: overrides of ``c2d, fusion, distill, reg``.

    Returns:
        ``(loss, terms)``.
    """
    w = {"c2d": 1.0, "fusion": 0.05, "distill": 0.05, "reg": 0.5} | (weights or {})
    vm = view_mask.to(out.joints_world.dtype)
    wj = conf * vm[..., None]  # (B, V, J)

    def reproj(points_world: torch.Tensor) -> torch.Tensor:
        """(B, J, 3) -> (B, V, J) robust px error vs the pseudo labels of every view: Huber (10 px),
        capped at 100 px so gross detector outliers carry no gradient."""
        e = (project(world_to_camera(points_world[:, None], R, t), K) - uv).norm(dim=-1)
        e = torch.where(e < 10.0, 0.05 * e * e, e - 5.0)
        return e.clamp(max=100.0)

    c2d = _masked_mean(reproj(out.joints_world), wj)
    # refined joints of view i reprojected into every view j (HaMuCo's pairwise L_c2D)
    v = uv.shape[1]
    pair = torch.stack([reproj(out.refined_world[:, i]) for i in range(v)], 1)  # (B, Vi, Vj, J)
    pair_w = vm[:, :, None, None] * wj[:, None]
    c2d = c2d + _masked_mean(pair, pair_w)
    target = out.joints_world.detach()[:, None]
    fusion = _masked_mean((out.refined_world - target).norm(dim=-1), vm[..., None].expand_as(wj))
    distill = _masked_mean((out.single_world - target).norm(dim=-1), vm[..., None].expand_as(wj))
    reg = _param_reg(out, vm)
    loss = w["c2d"] * c2d + w["fusion"] * fusion + w["distill"] * distill + w["reg"] * reg
    return loss, {k: float(v.detach()) for k, v in (("c2d_px", c2d), ("fusion_mm", fusion), ("distill_mm", distill),
                                                    ("reg", reg))}


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------

_REGISTRY: dict[str, Callable[..., HaMuCo]] = {}


def _register(name: str, cfg: HaMuCoConfig) -> None:
    def build(device: torch.device | None = None, dtype: torch.dtype | None = None, **overrides: object) -> HaMuCo:
        return HaMuCo(HaMuCoConfig(**(asdict(cfg) | overrides)), device=device, dtype=dtype)  # type: ignore[arg-type]

    _REGISTRY[name] = build


_register("hamuco_small", HaMuCoConfig())
_register("hamuco_tiny", HaMuCoConfig(width=32, sv_blocks=1, cv_blocks=1, heads=2))
_register("hamuco_img", HaMuCoConfig(patch_size=16))


def list_models() -> list[str]:
    """Names :func:`create_model` knows."""
    return sorted(_REGISTRY)


def create_model(name: str = "hamuco_small", device: torch.device | None = None, dtype: torch.dtype | None = None,
                 **overrides: object) -> HaMuCo:
    """Build a registered model (``hamuco_small``, ``hamuco_tiny``, ``hamuco_img`` = small + image
    features), with config field overrides.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown HaMuCo model {name!r}; known: {', '.join(list_models())}")
    model = _REGISTRY[name](device=device, dtype=dtype, **overrides)
    model.model_name = name
    return model


def save_weights(model: HaMuCo, path: str | Path, meta: dict[str, Any] | None = None, half: bool = True) -> None:
    """Write a small weights file (``name``, ``config``, ``state_dict``, ``meta``; plain types and
    tensors, float16 when ``half``) loadable with ``torch.load(path, weights_only=True)``; atomic."""
    from models.v2v import atomic_torch_save

    sd = {k: (v.detach().half() if half and v.is_floating_point() else v.detach()).cpu().contiguous()
          for k, v in model.state_dict().items()}
    blob = {"name": getattr(model, "model_name", "hamuco_small"), "config": asdict(model.cfg), "state_dict": sd,
            "meta": json.loads(json.dumps(meta or {}, default=str))}
    atomic_torch_save(blob, path)
    Path(path).chmod(0o644)  # the temporary file's 0600 would keep it from other users of a checkout


def load_weights(path: str | Path, device: torch.device | str | None = None) -> HaMuCo:
    """Rebuild a model written by :func:`save_weights`, or from a training checkpoint ``last.pt`` of
    ``scripts/train_hamuco.py`` (float32, eval mode; ``.meta`` = the file's meta).

    The shipped checkpoint loads by name with :func:`models.load_pretrained` (``"hamuco"``), which
    calls this.

    Raises:
        tracker.core.errors.ModelError: no such file, not a readable checkpoint, not a HaMuCo
            checkpoint, or weights that do not fit the network (the message names the file; train
            one with ``python -m scripts.train_hamuco``).
    """
    from models.registry import load_state, read_torch_checkpoint

    path = Path(path)
    blob = read_torch_checkpoint(path)
    try:
        if "state_dict" not in blob and "model" in blob:  # a training checkpoint (scripts/train_hamuco.py last.pt)
            model = create_model(blob["model_name"])
            sd = blob["model"]
            meta = {"steps": int(blob.get("step", 0)), "checkpoint": str(path)}
        else:
            cfg = blob["config"]
            model = create_model(blob["name"], **{k: cfg[k] for k in asdict(HaMuCoConfig()) if k in cfg})
            sd = blob["state_dict"]
            meta = blob.get("meta", {})
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ModelError(f"{path} is not a HaMuCo checkpoint ({type(e).__name__}: {e})") from e
    load_state(model, sd, path, model.model_name)
    model.meta = meta
    return model.to(device).eval()
