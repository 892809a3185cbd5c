"""Masked joint refinement: a small BERT-style transformer over joint tokens (SNU thesis 2021).

The thesis (``seeds/mlm_joint_refinement_thesis.txt``) puts a transformer encoder after a hand pose
estimator: every joint is a token, the network is pre-trained to restore ground-truth poses whose
joints were noised or masked, then fine-tuned on the estimator's outputs with an L1 loss weighted
per joint (eq. 4.4). Here the same idea is a post-processor for *any* estimator's 3D joints:

* **Token** of joint ``j``: ``E_joint[j] + W_xyz @ x_j + W_conf * c_j`` (learned joint embedding,
  linear embedding of the normalized coordinates, and of the input confidence ``c_j`` in [0, 1]); a
  masked joint's token is ``E_joint[j] + E_mask`` (the [MASK] token, no coordinates).
* **Output** per joint: a coordinate correction (residual, normalized units) and a log-scale
  ``s_j`` of the remaining error; ``exp(-s_j)`` is the network's own confidence and
  ``exp(s_j) * scale_mm`` its expected per-coordinate absolute error in mm.
* **Normalization** (:func:`normalize_poses`): root-relative, with the root the confidence-weighted
  centroid of the layout's *root joints* (:data:`ROOT_JOINTS`: the palm / knuckle joints, masked or
  zero-confidence joints left out), divided by the fixed :data:`SCALE_MM`. There is **no rotation
  normalization** for the depth benchmarks: an estimator's errors are view dependent (depth errors
  lie along the camera z axis) and that structure is worth keeping. The 21-joint model is trained
  on uniformly random orientations instead, so it works in a camera or a rig's world frame.
* **Loss** (:func:`confidence_weighted_l1`): the thesis' confidence-weighted L1 with the network's
  predicted confidence as the weight and ``-log`` confidence as the regulariser that stops it from
  collapsing to zero (a per-joint Laplace negative log-likelihood), times the thesis' weight
  ``1 / C`` of the *input* confidence (eq. 4.3-4.4).
* **Blend**: :class:`JointRefiner` applies ``x + blend * correction``; ``blend`` in [0, 1] is chosen
  on a hold-out inside the fit data (``scripts/train_refiner.py``) as the largest value that makes
  no estimator worse there, so an uncertain refiner falls back towards the identity.

Frames and units: inputs and outputs of :class:`JointRefiner` are millimetres in the frame the
weights were trained in: the OpenCV camera frame (x right, y down, z forward) for ``nyu`` / ``icvl``
(:func:`models.depth_datasets.uvd_to_camera`, *not* the NYU benchmark frame, whose y points up; use
:meth:`JointRefiner.refine_uvd` for benchmark ``(u, v, d)`` files), any frame for ``mp21``.
Joint orders: ``nyu`` 14 and ``icvl`` 16 joints as in :mod:`tracker.core.joints`, ``mp21`` the 21
MediaPipe joints.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from torch import nn

from tracker.core.errors import ModelError
from tracker.core.joints import ICVL_JOINT_NAMES, NUM_JOINTS, NYU_JOINT_NAMES, PALM

__all__ = [
    "LAYOUTS",
    "ROOT_JOINTS",
    "SCALE_MM",
    "RefinerConfig",
    "JointRefinerNet",
    "JointRefiner",
    "normalize_poses",
    "corrupt_poses",
    "confidence_weighted_l1",
    "save_refiner",
    "load_weights",
    "describe",
]

log = logging.getLogger(__name__)

#: Number of joints of each layout a refiner can be trained for.
LAYOUTS: Final[dict[str, int]] = {"nyu": len(NYU_JOINT_NAMES), "icvl": len(ICVL_JOINT_NAMES), "mp21": NUM_JOINTS}

#: Joints whose (confidence-weighted) centroid is the normalization root: the ones that move with
#: the palm. NYU: the finger PIP knuckles (``.R``), thumb MCP (``Thumb.R1``), both wrist points and
#: the palm; ICVL: palm, thumb MCP and finger PIPs; MediaPipe: wrist, thumb CMC and the four MCPs.
ROOT_JOINTS: Final[dict[str, tuple[int, ...]]] = {
    "nyu": (1, 3, 5, 7, 10, 11, 12, 13),
    "icvl": (0, 1, 4, 7, 10, 13),
    "mp21": PALM,
}

#: Fixed normalization scale, mm (about half a hand length): normalized coordinates are ~[-1, 1].
SCALE_MM: Final = 100.0

@dataclass(frozen=True)
class RefinerConfig:
    """Architecture of a :class:`JointRefinerNet`.

    Attributes:
        layout: joint layout, a key of :data:`LAYOUTS`.
        dim: token width.
        depth: number of transformer encoder layers.
        heads: attention heads.
        mlp_ratio: feed-forward width / ``dim``.
        scale_mm: normalization scale (mm per normalized unit).
    """

    layout: str = "nyu"
    dim: int = 64
    depth: int = 3
    heads: int = 4
    mlp_ratio: float = 2.0
    scale_mm: float = SCALE_MM

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown refiner layout {self.layout!r}; expected one of {', '.join(LAYOUTS)}")
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")

    @property
    def num_joints(self) -> int:
        return LAYOUTS[self.layout]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class JointRefinerNet(nn.Module):
    """Transformer encoder over joint tokens -> per-joint residual and log-scale.

    ``forward(x, conf, mask)``:

    Args:
        x: ``(B, J, 3)`` normalized coordinates (:func:`normalize_poses`); ignored where ``mask``.
        conf: ``(B, J)`` input confidence in [0, 1].
        mask: ``(B, J)`` bool, True = the joint is replaced by the [MASK] token.

    Returns:
        ``(delta (B, J, 3), log_scale (B, J))``: the refined normalized pose is
        ``where(mask, 0, x) + delta``; ``log_scale`` is the predicted per-joint log error scale.
    """

    def __init__(self, config: RefinerConfig = RefinerConfig(), device=None, dtype=None) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.config = config
        d, j = config.dim, config.num_joints
        self.joint_embed = nn.Parameter(0.02 * torch.randn(j, d, **kw))
        self.mask_token = nn.Parameter(0.02 * torch.randn(d, **kw))
        self.coord_embed = nn.Linear(3, d, **kw)
        self.conf_embed = nn.Linear(1, d, **kw)
        layer = nn.TransformerEncoderLayer(d, config.heads, int(d * config.mlp_ratio), dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True, **kw)
        self.encoder = nn.TransformerEncoder(layer, config.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d, **kw)
        self.head = nn.Linear(d, 4, **kw)
        with torch.no_grad():  # start as the identity with a moderate error scale
            self.head.weight.mul_(0.01)
            self.head.bias.zero_()
            self.head.bias[3] = -3.0

    def forward_features(self, x: torch.Tensor, conf: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, J, dim)`` encoded joint tokens."""
        seen = self.coord_embed(x) + self.conf_embed(conf.unsqueeze(-1))
        tokens = torch.where(mask.unsqueeze(-1), self.mask_token.expand_as(seen), seen) + self.joint_embed
        return self.norm(self.encoder(tokens))

    def forward_head(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.head(features)
        return out[..., :3], out[..., 3].clamp(-8.0, 3.0)

    def forward(self, x: torch.Tensor, conf: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_head(self.forward_features(x, conf, mask))


def normalize_poses(xyz: torch.Tensor, weight: torch.Tensor, layout: str, scale_mm: float = SCALE_MM
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Root-relative, scaled coordinates.

    Args:
        xyz: ``(B, J, 3)`` mm.
        weight: ``(B, J)`` >= 0; joints with weight 0 (masked, unknown) do not move the root.
        layout: a key of :data:`ROOT_JOINTS`.
        scale_mm: mm per normalized unit.

    Returns:
        ``(x_norm (B, J, 3), root (B, 1, 3) mm)`` with ``xyz = x_norm * scale_mm + root``. The root is
        the weighted centroid of the layout's root joints, or of all joints when those all have
        weight 0.
    """
    idx = torch.as_tensor(ROOT_JOINTS[layout], device=xyz.device)
    w_root = torch.zeros_like(weight)
    w_root[:, idx] = weight[:, idx]
    fallback = w_root.sum(1, keepdim=True) <= 1e-6
    w = torch.where(fallback, weight, w_root)
    w = w / w.sum(1, keepdim=True).clamp_min(1e-6)
    root = (w.unsqueeze(-1) * torch.nan_to_num(xyz)).sum(1, keepdim=True)
    return (xyz - root) / scale_mm, root


def corrupt_poses(clean: torch.Tensor, generator: torch.Generator, mask_range: tuple[float, float] = (0.15, 0.4),
                  noise_mm: tuple[float, float] = (0.0, 8.0), outlier_prob: float = 0.08,
                  outlier_mm: tuple[float, float] = (15.0, 45.0), informative_conf: float = 0.5,
                  maskable: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """BERT-style corruption of clean poses for pre-training.

    Each sample masks a fraction of its joints drawn from ``mask_range`` (at least one), adds
    Gaussian noise of a per-sample std drawn from ``noise_mm`` to the other joints, and moves
    each with probability ``outlier_prob`` by ``outlier_mm`` in a random direction. In a fraction
    ``informative_conf`` of the samples the input confidence says how far each joint was moved
    (``exp(-|offset| / 10 mm)``); in the others it is 1 for every visible joint (no information, as
    for the benchmark files). Masked joints have confidence 0.

    Args:
        clean: ``(B, J, 3)`` mm.
        generator: the random source.
        maskable: optional ``(J,)`` bool, joints that may be masked (default: all).

    Returns:
        ``(noisy (B, J, 3) mm, confidence (B, J), mask (B, J) bool)``; ``noisy`` is 0 at masked joints.
    """
    b, j, _ = clean.shape
    dev, dt = clean.device, clean.dtype

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=dev, dtype=dt)

    rate = mask_range[0] + (mask_range[1] - mask_range[0]) * rand(b, 1)
    score = rand(b, j)
    if maskable is not None:
        score = torch.where(maskable.to(dev), score, torch.full_like(score, 2.0))
    k = torch.clamp((rate * j).round().long(), min=1)
    order = score.argsort(dim=1)
    mask = torch.zeros(b, j, dtype=torch.bool, device=dev)
    mask.scatter_(1, order, torch.arange(j, device=dev).expand(b, j) < k)
    mask &= score <= 1.0
    sigma = noise_mm[0] + (noise_mm[1] - noise_mm[0]) * rand(b, 1, 1)
    offset = sigma * torch.randn(b, j, 3, generator=generator, device=dev, dtype=dt)
    direction = torch.randn(b, j, 3, generator=generator, device=dev, dtype=dt)
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    size = outlier_mm[0] + (outlier_mm[1] - outlier_mm[0]) * rand(b, j, 1)
    offset = offset + (rand(b, j, 1) < outlier_prob) * size * direction
    noisy = torch.where(mask.unsqueeze(-1), torch.zeros_like(clean), clean + offset)
    informative = rand(b, 1) < informative_conf
    conf = torch.where(informative, torch.exp(-offset.norm(dim=-1) / 10.0), torch.ones(b, j, device=dev, dtype=dt))
    conf = torch.where(mask, torch.zeros_like(conf), conf)
    return noisy, conf, mask


def confidence_weighted_l1(pred: torch.Tensor, target: torch.Tensor, log_scale: torch.Tensor,
                           input_conf: torch.Tensor | None = None, weight: torch.Tensor | None = None,
                           min_conf: float = 0.2) -> torch.Tensor:
    """The thesis' confidence-weighted L1 with a learned confidence (scalar loss).

    Per joint: ``exp(-s) * |pred - target|_1 + 3 s`` (a Laplace negative log-likelihood: the
    predicted confidence ``exp(-s)`` weights the L1 and ``3 s = -3 log(confidence)`` keeps it from
    collapsing to 0; the optimum is ``exp(s)`` = the mean absolute error per coordinate), multiplied by
    the thesis' ``1 / C`` of the input confidence (clamped at ``min_conf``; eq. 4.3-4.4) and by
    ``weight`` (0 leaves a joint out), averaged over the weighted joints.

    Args:
        pred, target: ``(B, J, 3)`` (normalized units).
        log_scale: ``(B, J)``.
        input_conf: ``(B, J)`` in [0, 1] or None (all 1). Masked joints (0) get the largest weight.
        weight: ``(B, J)`` >= 0 or None.
    """
    per_joint = torch.exp(-log_scale) * (pred - target).abs().sum(-1) + 3.0 * log_scale
    w = torch.ones_like(log_scale) if weight is None else weight
    if input_conf is not None:
        w = w / input_conf.clamp(min_conf, 1.0)
    return (w * per_joint).sum() / w.sum().clamp_min(1e-6)


class JointRefiner:
    """A trained refiner ready to run on arrays of poses (CPU by default).

    Attributes:
        net: the network (eval mode).
        config: its :class:`RefinerConfig`.
        blend: fraction of the predicted correction that is applied, in [0, 1].
        meta: the weights card (training data, steps, scores).
    """

    def __init__(self, net: JointRefinerNet, blend: float = 1.0, meta: dict[str, Any] | None = None,
                 batch_size: int = 4096) -> None:
        if not 0.0 <= blend <= 1.0:
            raise ValueError(f"blend must be in [0, 1], got {blend}")
        self.net = net.eval()
        self.config = net.config
        self.blend = float(blend)
        self.meta = meta or {}
        self.batch_size = int(batch_size)

    @property
    def layout(self) -> str:
        return self.config.layout

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def refine_with_uncertainty(self, xyz: np.ndarray, confidence: np.ndarray | None = None
                                ) -> tuple[np.ndarray, np.ndarray]:
        """Refine poses and estimate their remaining error.

        Args:
            xyz: ``(N, J, 3)`` or ``(J, 3)`` mm in the frame of the weights (see the module doc).
                Non-finite joints are treated as masked.
            confidence: ``(N, J)`` / ``(J,)`` in [0, 1] or None (all 1). Joints with confidence 0
                are masked: the refiner predicts them from the others.

        Returns:
            ``(refined, uncertainty_mm)``: ``(N, J, 3)`` mm (float64, same frame) and ``(N, J)`` the
            predicted mean absolute error per coordinate of each refined joint, mm.

        Raises:
            ValueError: wrong shapes.
        """
        x = np.asarray(xyz, dtype=np.float64)
        single = x.ndim == 2
        if single:
            x = x[None]
        j = self.config.num_joints
        if x.ndim != 3 or x.shape[1:] != (j, 3):
            raise ValueError(f"{self.layout} refiner expects poses of shape (N, {j}, 3) mm, got {np.shape(xyz)}")
        if confidence is None:
            c = np.ones(x.shape[:2])
        else:
            c = np.asarray(confidence, dtype=np.float64).reshape(-1, j) if single else np.asarray(confidence, np.float64)
            if c.shape != x.shape[:2]:
                raise ValueError(f"confidence must have shape {x.shape[:2]}, got {np.shape(confidence)}")
            c = np.clip(np.nan_to_num(c, nan=0.0), 0.0, 1.0)
        c = np.where(np.isfinite(x).all(-1), c, 0.0)
        refined = np.empty_like(x)
        unc = np.empty(x.shape[:2])
        dev = self.device
        with torch.inference_mode():
            for s in range(0, len(x), self.batch_size):
                xb = torch.as_tensor(x[s : s + self.batch_size], dtype=torch.float32, device=dev)
                cb = torch.as_tensor(c[s : s + self.batch_size], dtype=torch.float32, device=dev)
                mask = cb <= 0.0
                xn, root = normalize_poses(torch.nan_to_num(xb), cb, self.layout, self.config.scale_mm)
                xn = torch.where(mask.unsqueeze(-1), torch.zeros_like(xn), xn)
                delta, log_scale = self.net(xn, cb, mask)
                step = torch.where(mask.unsqueeze(-1), delta, self.blend * delta)  # masked: full prediction
                out = (xn + step) * self.config.scale_mm + root
                refined[s : s + len(xb)] = out.double().cpu().numpy()
                unc[s : s + len(xb)] = (torch.exp(log_scale) * self.config.scale_mm).double().cpu().numpy()
        if single:
            return refined[0], unc[0]
        return refined, unc

    def refine(self, xyz: np.ndarray, confidence: np.ndarray | None = None) -> np.ndarray:
        """``(N, J, 3)`` refined poses, mm (see :meth:`refine_with_uncertainty`)."""
        return self.refine_with_uncertainty(xyz, confidence)[0]

    def refine_uvd(self, uvd: np.ndarray, confidence: np.ndarray | None = None) -> np.ndarray:
        """Refine benchmark ``(u, v, d)`` labels (``nyu`` / ``icvl`` refiners): ``(N, J, 3)`` -> same format.

        Converts with :func:`models.depth_datasets.uvd_to_camera` and the dataset's intrinsics, refines, projects back.

        Raises:
            ValueError: the refiner is not for a depth benchmark, or a depth is <= 0.
        """
        from models.depth_datasets import ICVL_INTRINSICS, NYU_INTRINSICS, camera_to_uvd, uvd_to_camera

        if self.layout not in ("nyu", "icvl"):
            raise ValueError(f"refine_uvd needs an 'nyu' or 'icvl' refiner, this one is {self.layout!r}")
        intr = NYU_INTRINSICS if self.layout == "nyu" else ICVL_INTRINSICS
        return camera_to_uvd(self.refine(uvd_to_camera(np.asarray(uvd, np.float64), intr), confidence), intr)


def save_refiner(net: JointRefinerNet, path: str | Path, blend: float = 1.0, meta: dict[str, Any] | None = None,
                 half: bool = True) -> None:
    """Write ``{"config", "state_dict", "blend", "meta"}`` (float16 tensors by default) atomically,
    loadable with ``torch.load(path, weights_only=True)``."""
    from models.v2v import atomic_torch_save

    sd = {k: (v.detach().half() if half and v.is_floating_point() else v.detach()).cpu().contiguous()
          for k, v in net.state_dict().items()}  # fmt: skip
    blob = {"config": net.config.to_dict(), "state_dict": sd, "blend": float(blend),
            "meta": json.loads(json.dumps(meta or {}, default=str))}
    atomic_torch_save(blob, path)


def load_weights(path: str | Path, device: str | torch.device | None = None) -> JointRefiner:
    """Rebuild a refiner written by :func:`save_refiner` (float32, eval mode).

    The shipped checkpoints load by name with :func:`models.load_pretrained` (``"refiner_mp21"``, ...),
    which calls this and checks the layout.

    Args:
        path: the weights file.
        device: torch device (default CPU).

    Raises:
        tracker.core.errors.ModelError: no such file, not a readable checkpoint, not a refiner
            checkpoint, or weights that do not fit the network (the message names the file).
    """
    from models.registry import load_state, read_torch_checkpoint

    p = Path(path)
    blob = read_torch_checkpoint(p)
    try:
        cfg = RefinerConfig(**blob["config"])
        sd = blob["state_dict"]
        blend = float(blob.get("blend", 1.0))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ModelError(f"{p} is not a joint refiner checkpoint ({type(e).__name__}: {e})") from e
    net = JointRefinerNet(cfg)
    load_state(net, sd, p, "joint refiner")
    net = net.to(torch.device(device) if device is not None else torch.device("cpu"))
    try:
        return JointRefiner(net, blend=blend, meta=blob.get("meta", {}))
    except ValueError as e:
        raise ModelError(f"{p}: {e}") from e


def _count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def describe(net: JointRefinerNet) -> str:
    """One line: layout, size, parameters."""
    c = net.config
    return f"{c.layout} refiner d={c.dim} x{c.depth} layers, {c.heads} heads, {_count_parameters(net) / 1e3:.1f} k params"
