"""Cross-modal latent model: RGB that learned from depth (Yang et al., ICCV 2019), one network for RGB
and RGB-D hands.

The source (``seeds/latent_space_alignment.txt``, ``DESIGN.md`` §3) encodes each modality of a hand
into a Gaussian latent and decodes every target from the latent: the pose, and a point cloud of the
hand surface. Here:

* **RGB encoder** (:class:`RGBEncoder`): a small CNN over the hand crop (``crop`` px square, RGB in
  [0, 1]; 0 = no image branch: landmarks only) next to an MLP over MediaPipe's outputs for that hand
  (its 21 2D landmarks in crop coordinates [0, 1], its 21 world landmarks in metres, hand presence
  and handedness scores), so the network improves on MediaPipe instead of replacing it.
* **Point-cloud encoder** (:class:`PointEncoder`): PointNet (a shared per-point MLP, max pooling)
  over ``points`` depth points of the hand crop, in mm relative to the reference point divided by
  ``POINT_SCALE_MM``.
* **Latents**: each encoder gives a diagonal Gaussian ``(mu, logvar)`` of ``latent`` dimensions.
  ``alignment``: ``none`` (each branch on its own, the ablation), ``kl`` (the joint RGB-D posterior
  is pulled towards the RGB one by ``KL(q(z | x, w) || q(z | x))``, eq. 3) or ``poe`` (the joint
  posterior is the product of the Gaussian experts and the prior, eq. 4: :func:`product_of_experts`).
* **Decoders**: the 21 joints relative to the palm centre (the mean of the wrist and the four
  finger MCPs) in hand sizes, plus the log hand size in mm (:class:`PoseDecoder`; the metric lift
  still places the hand); a point cloud of
  ``cloud_points`` points of the hand surface in the encoder's normalised frame (:class:`CloudDecoder`).
* **Losses** (:func:`crossmodal_loss`): pose L1, log-size L1, Chamfer (:func:`chamfer`) and a sliced
  Wasserstein approximation of the EMD (:func:`sliced_wasserstein`) on the cloud, beta x the KL terms
  of the chosen alignment.

Shapes: image ``(B, 3, crop, crop)``; landmarks ``(B, LANDMARK_FEATURES)`` (:func:`landmark_features`);
points ``(B, N, 3)``. Every branch is optional in ``forward``; at least one must be given.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from tracker.core.errors import ModelError
from tracker.core.joints import KNUCKLES, NUM_JOINTS, PALM_ROOT

__all__ = [
    "CrossModalConfig",
    "CrossModal",
    "RGBEncoder",
    "PointEncoder",
    "PoseDecoder",
    "CloudDecoder",
    "LANDMARK_FEATURES",
    "POINT_SCALE_MM",
    "mediapipe_pose",
    "kl_normal",
    "kl_standard",
    "product_of_experts",
    "chamfer",
    "sliced_wasserstein",
    "crossmodal_loss",
    "save_weights",
    "load_weights",
]

#: Per hand: 21 x 2 crop-relative landmarks, 21 x 3 world landmarks (m), presence, handedness.
LANDMARK_FEATURES = NUM_JOINTS * 2 + NUM_JOINTS * 3 + 2
#: Depth points are divided by this (mm) after centring on the reference point.
POINT_SCALE_MM = 100.0

Alignment = Literal["none", "kl", "poe"]


@dataclass(frozen=True)
class CrossModalConfig:
    """Sizes of :class:`CrossModal` (stored in checkpoints). :meth:`light` is the live variant.

    Attributes:
        latent: latent dimensions (the paper: 64).
        crop: RGB crop side in px; 0 = no image branch (landmarks only: the ablation).
        image_channels: widths of the CNN's stride-2 conv blocks.
        hidden: width of the landmark MLP, the encoders' heads and the decoders.
        point_channels: widths of PointNet's shared per-point MLP.
        cloud_points: points of the decoded cloud.
        alignment: ``none``, ``kl`` or ``poe`` (module docstring).
        residual: with RGB inputs, the decoded pose is a correction added to MediaPipe's own world
            landmarks (normalised like the target: :func:`mediapipe_pose`), so the network starts
            from MediaPipe's answer and learns what to change.
    """

    latent: int = 64
    crop: int = 96
    image_channels: tuple[int, ...] = (24, 48, 96, 128)
    hidden: int = 256
    point_channels: tuple[int, ...] = (64, 128, 256)
    cloud_points: int = 256
    alignment: Alignment = "poe"
    residual: bool = True

    def __post_init__(self) -> None:
        if self.alignment not in ("none", "kl", "poe"):
            raise ValueError(f"alignment must be none, kl or poe, got {self.alignment!r}")
        if self.latent < 1 or self.cloud_points < 1 or self.crop < 0:
            raise ValueError("latent and cloud_points must be >= 1, crop >= 0")

    @classmethod
    def light(cls) -> "CrossModalConfig":
        """The variant that runs live on 2 CPU cores: a 64-px crop, narrower layers."""
        return cls(latent=32, crop=64, image_channels=(16, 32, 48, 64), hidden=128, point_channels=(32, 64, 128),
                   cloud_points=128)  # fmt: skip

    def to_dict(self) -> dict:
        d = asdict(self)
        d["image_channels"] = list(self.image_channels)
        d["point_channels"] = list(self.point_channels)
        return d


class _Gaussian(nn.Module):
    """Features -> ``(mu, logvar)`` (log-variance clamped to [-10, 10] for stability)."""

    def __init__(self, width: int, latent: int) -> None:
        super().__init__()
        self.mu = nn.Linear(width, latent)
        self.logvar = nn.Linear(width, latent)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mu(h), self.logvar(h).clamp(-10.0, 10.0)


class RGBEncoder(nn.Module):
    """Hand crop (optional CNN) + MediaPipe's landmarks (MLP) -> a Gaussian latent."""

    def __init__(self, c: CrossModalConfig) -> None:
        super().__init__()
        self.image = None
        width = c.hidden
        if c.crop > 0:
            layers: list[nn.Module] = []
            cin = 3
            for cout in c.image_channels:
                layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
                cin = cout
            layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            self.image = nn.Sequential(*layers)
            width += cin
        self.landmarks = nn.Sequential(nn.Linear(LANDMARK_FEATURES, c.hidden), nn.ReLU(),
                                       nn.Linear(c.hidden, c.hidden), nn.ReLU())  # fmt: skip
        self.head = nn.Sequential(nn.Linear(width, c.hidden), nn.ReLU())
        self.gauss = _Gaussian(c.hidden, c.latent)

    def forward(self, landmarks: torch.Tensor, image: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.landmarks(landmarks)
        if self.image is not None:
            if image is None:
                raise ValueError("this model has an image branch: pass the hand crop")
            h = torch.cat([h, self.image(image)], dim=1)
        return self.gauss(self.head(h))


class PointEncoder(nn.Module):
    """PointNet over the hand crop's depth points -> a Gaussian latent (order-invariant)."""

    def __init__(self, c: CrossModalConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for cout in c.point_channels:
            layers += [nn.Conv1d(cin, cout, 1), nn.ReLU()]
            cin = cout
        self.shared = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(cin, c.hidden), nn.ReLU())
        self.gauss = _Gaussian(c.hidden, c.latent)

    def forward(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.shared(points.transpose(1, 2)).max(dim=2).values
        return self.gauss(self.head(h))


class PoseDecoder(nn.Module):
    """Latent -> 21 joints relative to the palm centre in hand sizes ``(B, 21, 3)`` and the log hand
    size in mm ``(B,)``."""

    def __init__(self, c: CrossModalConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(c.latent, c.hidden), nn.ReLU(), nn.Linear(c.hidden, c.hidden), nn.ReLU(),
                                 nn.Linear(c.hidden, NUM_JOINTS * 3 + 1))  # fmt: skip

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(z)
        return out[:, :-1].view(-1, NUM_JOINTS, 3), out[:, -1] + math.log(85.0)


class CloudDecoder(nn.Module):
    """Latent -> ``cloud_points`` points of the hand surface ``(B, M, 3)``, same frame as the input points."""

    def __init__(self, c: CrossModalConfig) -> None:
        super().__init__()
        self.m = c.cloud_points
        self.net = nn.Sequential(nn.Linear(c.latent, c.hidden), nn.ReLU(), nn.Linear(c.hidden, 2 * c.hidden), nn.ReLU(),
                                 nn.Linear(2 * c.hidden, c.cloud_points * 3))  # fmt: skip

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, self.m, 3)


def mediapipe_pose(landmarks: torch.Tensor) -> torch.Tensor:
    """MediaPipe's world landmarks from the landmark features ``(B, LANDMARK_FEATURES)`` as a pose like
    the decoder's ``(B, 21, 3)``: relative to the palm centre (wrist and finger MCPs), in hand sizes."""
    j = landmarks[:, NUM_JOINTS * 2 : NUM_JOINTS * 5].reshape(-1, NUM_JOINTS, 3)
    root = j[:, list(PALM_ROOT)].mean(dim=1, keepdim=True)
    size = (j[:, list(KNUCKLES)] - j[:, :1]).norm(dim=-1).mean(dim=1).clamp_min(1e-6)
    return (j - root) / size[:, None, None]


def kl_normal(mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu1, var1) || N(mu2, var2))`` of diagonal Gaussians, summed over the last dimension."""
    return 0.5 * (logvar2 - logvar1 + (logvar1.exp() + (mu1 - mu2) ** 2) / logvar2.exp() - 1.0).sum(-1)


def kl_standard(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, var) || N(0, I))``, summed over the last dimension."""
    return 0.5 * (logvar.exp() + mu**2 - 1.0 - logvar).sum(-1)


def product_of_experts(mus: list[torch.Tensor], logvars: list[torch.Tensor],
                       prior: bool = True) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """The product of diagonal Gaussian experts (and the N(0, I) prior expert): precision-weighted
    mean, precision = the sum of the precisions. Returns ``(mu, logvar)``."""
    precision = [torch.exp(-lv) for lv in logvars]
    weighted = [m * p for m, p in zip(mus, precision)]
    total = sum(precision) + (1.0 if prior else 0.0)
    mu = sum(weighted) / total
    return mu, -torch.log(total)


def chamfer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Symmetric Chamfer distance (eq. 8): the mean nearest-neighbour distance from ``a`` to ``b`` plus
    from ``b`` to ``a``, per batch item ``(B,)``; ``a (B, N, 3)``, ``b (B, M, 3)``."""
    d = torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")  # exact near 0
    return d.min(dim=2).values.mean(dim=1) + d.min(dim=1).values.mean(dim=1)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, projections: int = 32,
                       generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
    """Sliced 1-Wasserstein distance between point sets of equal size (an EMD approximation, eq. 9):
    the mean over ``projections`` random directions of the mean absolute difference of the sorted
    projections, ``(B,)``. Exact EMD in 1D; 0 for identical sets; a translation ``t`` gives about
    ``E|<t, u>|`` over unit directions u."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"sliced_wasserstein needs equal point counts, got {a.shape[1]} and {b.shape[1]}")
    u = torch.randn(3, projections, generator=generator, device=a.device if generator is None else "cpu").to(a)
    u = u / u.norm(dim=0, keepdim=True)
    pa, _ = torch.sort(a @ u, dim=1)
    pb, _ = torch.sort(b @ u, dim=1)
    return (pa - pb).abs().mean(dim=(1, 2))


class CrossModal(nn.Module):
    """The network (module docstring). ``forward(landmarks=, image=, points=)`` -> dict with

    * ``rgb`` / ``depth`` / ``joint``: ``(mu, logvar)`` of each posterior present (``joint`` when both
      modalities are given: the product of experts, or a separate RGB-D encoding for ``kl`` / ``none``);
    * ``z``: the latent used (sampled in training, the mean in eval) of the richest posterior;
    * ``pose (B, 21, 3)``, ``log_size (B,)``, ``cloud (B, M, 3)``: decoded from ``z``;
    * ``rgb_pose``, ``rgb_log_size``, ``rgb_cloud``: decoded from the RGB posterior when RGB-D is
      given (training: the RGB branch must decode the targets on its own too).
    """

    def __init__(self, config: CrossModalConfig = CrossModalConfig()) -> None:
        super().__init__()
        self.config = config
        self.rgb = RGBEncoder(config)
        self.depth = PointEncoder(config)
        if config.alignment != "poe":  # an encoder of both modalities together (eq. 2-3)
            self.joint_head = nn.Sequential(nn.Linear(2 * config.latent * 2, config.hidden), nn.ReLU())
            self.joint_gauss = _Gaussian(config.hidden, config.latent)
        self.pose = PoseDecoder(config)
        self.cloud = CloudDecoder(config)

    def _sample(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return mu
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def forward(self, landmarks: torch.Tensor | None = None, image: torch.Tensor | None = None,
                points: torch.Tensor | None = None) -> dict[str, torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:  # fmt: skip
        if landmarks is None and points is None:
            raise ValueError("give the RGB inputs (landmarks [+ image]), the depth points, or both")
        out: dict = {}
        if landmarks is not None:
            out["rgb"] = self.rgb(landmarks, image)
        if points is not None:
            out["depth"] = self.depth(points)
        if "rgb" in out and "depth" in out:
            if self.config.alignment == "poe":
                out["joint"] = product_of_experts([out["rgb"][0], out["depth"][0]], [out["rgb"][1], out["depth"][1]])
            else:
                h = torch.cat([*out["rgb"], *out["depth"]], dim=1)
                out["joint"] = self.joint_gauss(self.joint_head(h))
            post = out["joint"]
            z_rgb = self._sample(*out["rgb"])
            out["rgb_pose"], out["rgb_log_size"] = self.pose(z_rgb)
            out["rgb_cloud"] = self.cloud(z_rgb)
        else:
            post = out.get("rgb", out.get("depth"))
        z = self._sample(*post)
        out["z"] = z
        out["pose"], out["log_size"] = self.pose(z)
        out["cloud"] = self.cloud(z)
        if self.config.residual and landmarks is not None:
            base = mediapipe_pose(landmarks)
            out["pose"] = out["pose"] + base
            if "rgb_pose" in out:
                out["rgb_pose"] = out["rgb_pose"] + base
        return out


def crossmodal_loss(out: dict, pose: torch.Tensor, log_size: torch.Tensor, cloud: torch.Tensor | None,
                    alignment: Alignment, beta: float = 1e-3, cloud_weight: float = 0.5,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:  # fmt: skip
    """Reconstruction (pose L1 + log-size L1 + ``cloud_weight`` x (Chamfer + sliced EMD)) of every
    decoded output present, plus ``beta`` x the KL terms of ``alignment``: each posterior to N(0, I)
    (``none`` / ``poe``, eq. 4), and for ``kl`` also ``KL(q_joint || q_rgb)`` (eq. 3).

    Args:
        out: :meth:`CrossModal.forward`'s output.
        pose: ``(B, 21, 3)`` target joints relative to the palm centre, in hand sizes.
        log_size: ``(B,)`` target log hand size (mm).
        cloud: ``(B, M, 3)`` target surface points in the normalised frame (M = the decoder's), or None.
    """
    parts: dict[str, float] = {}

    def recon(prefix: str) -> torch.Tensor:
        loss = (out[prefix + "pose"] - pose).abs().mean() + (out[prefix + "log_size"] - log_size).abs().mean()
        if cloud is not None:
            c = out[prefix + "cloud"]
            loss = loss + cloud_weight * (chamfer(c, cloud) + sliced_wasserstein(c, cloud, generator=generator)).mean()
        parts[(prefix or "main_") + "recon"] = float(loss.detach())
        return loss

    total = recon("")
    if "rgb_pose" in out:
        total = total + recon("rgb_")
    kl = sum(kl_standard(*out[k]).mean() for k in ("rgb", "depth") if k in out)
    if "joint" in out:
        if alignment == "kl":
            kl = kl + kl_standard(*out["joint"]).mean() + kl_normal(*out["joint"], *out["rgb"]).mean()
        elif alignment == "none":
            kl = kl + kl_standard(*out["joint"]).mean()
    parts["kl"] = float(kl.detach()) if torch.is_tensor(kl) else float(kl)
    return total + beta * kl, parts


def save_weights(model: CrossModal, path: str | Path, meta: dict | None = None) -> None:
    """Write ``model`` as ``{"model": float32 state dict, "config": ..., "meta": ...}`` (readable with
    ``torch.load(weights_only=True)``), through a temporary file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    state = {k: v.detach().float().cpu() if v.is_floating_point() else v.cpu() for k, v in model.state_dict().items()}
    torch.save({"kind": "crossmodal", "model": state, "config": model.config.to_dict(), "meta": dict(meta or {})}, tmp)
    tmp.replace(path)


def load_weights(path: str | Path, device: str | torch.device = "cpu") -> CrossModal:
    """The :class:`CrossModal` of a :func:`save_weights` file, eval mode, on ``device``.

    Raises:
        ModelError: missing, unreadable or corrupt file, or not cross-modal weights; the message names the file.
    """
    from models.registry import load_state, read_torch_checkpoint

    blob = read_torch_checkpoint(path)
    if blob.get("kind") != "crossmodal" or "config" not in blob or "model" not in blob:
        raise ModelError(f"{path} holds no cross-modal model weights (made by scripts/train_crossmodal.py)")
    try:
        cfg = dict(blob["config"])
        cfg["image_channels"] = tuple(cfg["image_channels"])
        cfg["point_channels"] = tuple(cfg["point_channels"])
        config = CrossModalConfig(**cfg)
    except (TypeError, ValueError, KeyError) as e:
        raise ModelError(f"{path}: bad cross-modal config ({e})") from e
    model = CrossModal(config)
    load_state(model, blob["model"], path, "cross-modal")
    model.meta = dict(blob.get("meta") or {})
    return model.to(device).eval()
