"""HTT-style hierarchical temporal transformer for hand gestures (Wen et al., CVPR 2023).

The source (``seeds/htt_hamuco_seminar.txt``, ``DESIGN.md`` §3) stacks two transformers: a *pose
block* over short windows of per-frame tokens that outputs a per-frame pose, and an *action block*
over the whole clip's tokens plus a learned action token that outputs the action label; loss =
action cross-entropy + per-frame L1 pose. Here, on 3D hand joints instead of image features:

* **Tokens**: per-frame features of a clip (:mod:`models.gestures.features`: normalised shape,
  trajectory, velocities, the present-joint mask, log duration) -> linear embedding + learned
  position embedding.
* **Pose block** (``pose_layers``): transformer layers whose attention is limited to a band of
  ``window`` frames (the short windows of HTT, as a banded mask so every frame has its own centred
  window); the **pose head** regresses each frame's clean normalised shape (63 values) from its
  token: trained on noised / dropped inputs, it is a temporal denoiser (``--temporal-refine``).
* **Action block** (``action_layers``): full attention over the clip's tokens and a learned action
  token; the **class head** reads the action token (or the mean of the frame tokens when
  ``action_token`` is off). The action token's features, L2-normalised, are the clip *embedding*
  used for custom gestures (:mod:`models.gestures.custom`).

Frames with no hand (``frame_valid`` False) are masked out of attention. Shapes: input
``(B, T, NUM_FEATURES)``, T <= ``max_frames``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.gestures.features import NUM_FEATURES
from tracker.core.joints import NUM_JOINTS

__all__ = ["HTTConfig", "HTT", "htt_loss"]


@dataclass(frozen=True)
class HTTConfig:
    """Architecture of :class:`HTT` (stored in every checkpoint).

    Attributes:
        num_classes: gesture classes of the class head.
        dim: token width; heads: attention heads; ff: feed-forward width.
        pose_layers: pose-block layers (0 = no pose block: the ablation).
        action_layers: action-block layers.
        window: the pose block's attention band (frames).
        max_frames: longest clip (position embeddings).
        dropout: dropout in the transformer layers and before the heads.
        action_token: True = class from the action token; False = mean pooling (the ablation).
        causal: the pose block's band looks back only (frame i attends to i - window .. i): every
            frame's pose is causal (the live temporal refiner, :mod:`models.gestures.denoise`).
    """

    num_classes: int = 14
    dim: int = 96
    heads: int = 4
    ff: int = 192
    pose_layers: int = 2
    action_layers: int = 2
    window: int = 8
    max_frames: int = 64
    dropout: float = 0.1
    action_token: bool = True
    causal: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _layer(c: HTTConfig) -> nn.TransformerEncoderLayer:
    return nn.TransformerEncoderLayer(c.dim, c.heads, c.ff, c.dropout, activation="gelu", batch_first=True,
                                      norm_first=True)  # fmt: skip


class HTT(nn.Module):
    """The network (module docstring).

    ``forward(x, frame_valid)`` -> dict with ``logits (B, C)``, ``pose (B, T, 63)`` (normalised shape
    per frame; None without a pose block), ``embedding (B, dim)`` (unit length).
    """

    def __init__(self, config: HTTConfig = HTTConfig()) -> None:
        super().__init__()
        c = self.config = config
        self.embed = nn.Sequential(nn.Linear(NUM_FEATURES, c.dim), nn.GELU(), nn.Linear(c.dim, c.dim))
        self.position = nn.Parameter(torch.zeros(1, c.max_frames, c.dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.pose_block = nn.ModuleList(_layer(c) for _ in range(c.pose_layers))
        self.pose_head = nn.Sequential(nn.LayerNorm(c.dim), nn.Linear(c.dim, NUM_JOINTS * 3)) if c.pose_layers else None
        self.action_token = nn.Parameter(torch.zeros(1, 1, c.dim))
        nn.init.trunc_normal_(self.action_token, std=0.02)
        self.action_block = nn.ModuleList(_layer(c) for _ in range(c.action_layers))
        self.norm = nn.LayerNorm(c.dim)
        self.head = nn.Sequential(nn.Dropout(c.dropout), nn.Linear(c.dim, c.num_classes))

    def _band(self, t: int, device: torch.device) -> torch.Tensor:
        i = torch.arange(t, device=device)
        d = i[:, None] - i[None, :]  # query - key
        if self.config.causal:
            return (d < 0) | (d > self.config.window)  # True = not attended
        return d.abs() > self.config.window // 2

    def forward(self, x: torch.Tensor, frame_valid: torch.Tensor | None = None) -> dict[str, torch.Tensor | None]:
        b, t, _ = x.shape
        if t > self.config.max_frames:
            raise ValueError(f"clip of {t} frames is longer than max_frames={self.config.max_frames}")
        if frame_valid is None:
            frame_valid = torch.ones(b, t, dtype=torch.bool, device=x.device)
        # a clip with no valid frame keeps its first frame attendable (its output is meaningless, not NaN)
        frame_valid = frame_valid.clone()
        frame_valid[~frame_valid.any(dim=1), 0] = True
        pad = ~frame_valid
        h = self.embed(x) + self.position[:, :t]
        band = self._band(t, x.device)
        for layer in self.pose_block:
            h = layer(h, src_mask=band, src_key_padding_mask=pad)
        pose = self.pose_head(h) if self.pose_head is not None else None
        tokens = torch.cat([self.action_token.expand(b, -1, -1), h], dim=1)
        pad_a = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=x.device), pad], dim=1)
        for layer in self.action_block:
            tokens = layer(tokens, src_key_padding_mask=pad_a)
        tokens = self.norm(tokens)
        if self.config.action_token:
            feat = tokens[:, 0]
        else:
            w = frame_valid.unsqueeze(-1).to(tokens.dtype)
            feat = (tokens[:, 1:] * w).sum(1) / w.sum(1).clamp_min(1.0)
        return {"logits": self.head(feat), "pose": pose, "embedding": F.normalize(feat, dim=-1)}


def htt_loss(out: dict[str, torch.Tensor | None], labels: torch.Tensor, pose_target: torch.Tensor | None,
             pose_valid: torch.Tensor | None, pose_weight: float = 0.5,
             label_smoothing: float = 0.1) -> tuple[torch.Tensor, dict[str, float]]:  # fmt: skip
    """HTT's loss: action cross-entropy + ``pose_weight`` x per-frame L1 on the present joints.

    Args:
        out: :meth:`HTT.forward`'s output.
        labels: ``(B,)`` class indices 0..C-1.
        pose_target: ``(B, T, 21, 3)`` clean normalised shape (NaN/anything where not valid).
        pose_valid: ``(B, T, 21)`` True where the target joint exists.
    """
    ce = F.cross_entropy(out["logits"], labels, label_smoothing=label_smoothing)
    parts = {"ce": float(ce.detach())}
    loss = ce
    if out["pose"] is not None and pose_target is not None and pose_valid is not None and pose_weight > 0:
        pred = out["pose"].view(pose_target.shape)
        m = pose_valid.unsqueeze(-1).to(pred.dtype)
        target = torch.nan_to_num(pose_target)
        l1 = ((pred - target).abs() * m).sum() / (m.sum() * 3).clamp_min(1.0)
        loss = loss + pose_weight * l1
        parts["pose_l1"] = float(l1.detach())
    return loss, parts
