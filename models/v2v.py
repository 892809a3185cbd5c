"""V2V-PoseNet (Moon et al., CVPR 2018): voxel-to-voxel 3D hand pose estimation, and its
reference-point refinement network.

Input: an occupancy grid ``(B, 1, D, D, D)`` (``D = 88`` in the paper) of the depth points in a
cube around a reference point (:mod:`kernels.voxel` defines the grid: ``grid[i, j, k]`` with i along
camera x, j along y, k along z). Output: one heatmap per joint ``(B, J, D/2, D/2, D/2)`` over the
same cube (:mod:`kernels.heatmap` reads joints back from it).

Topology (the paper's Fig. 4 and the HANDS 2019 slides, ``width`` = the paper's 32):

* front: basic block 7^3 (``width/2``) -> 2^3 max-pool -> residual blocks ``width/2 -> width``,
  ``width``, ``width``;
* encoder-decoder at ``D/2``: pool -> residual ``width -> 2 width`` -> pool -> residual
  ``2 width -> 4 width`` -> residual (middle) -> residual -> up (deconv 2^3 stride 2 + BN + ReLU) to
  ``2 width`` + skip (residual at ``D/4``) -> residual -> up to ``width`` + skip (residual at ``D/2``);
* back: residual ``width`` -> basic 1^3 -> basic 1^3 -> (head) 1^3 conv to ``J`` heatmaps.

Blocks: basic = Conv3d -> BatchNorm3d -> ReLU; residual = Conv 3^3 -> BN -> ReLU -> Conv 3^3 -> BN,
plus the identity (or a 1^3 conv + BN projection when the width changes), then ReLU; down = 2^3
max-pool, stride 2; up = ConvTranspose3d 2^3 stride 2 -> BN -> ReLU. Weights start from
``N(0, 0.001)`` as in the paper.

``D`` must be a multiple of 8 (three poolings). :func:`create_model` builds the registered
configurations (:data:`MODEL_CONFIGS`): ``v2v_full`` is the paper's (88^3, width 32, 3.4 M
parameters for 14 joints); ``v2v_light`` is sized to run in real time on two CPU cores.

:class:`RefPointNet` is the paper's reference-point refinement (after DeepPrior++), here as a
small 3D CNN on a coarse occupancy grid around the depth centre of mass that regresses the 3D offset
(mm) from that centre of mass to the hand's centre (the mean of the 21 joints).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tracker.core.errors import ModelError
from tracker.core.joints import NUM_JOINTS

__all__ = [
    "Conv3d",
    "Basic3DBlock",
    "Res3DBlock",
    "Pool3DBlock",
    "Upsample3DBlock",
    "EncoderDecoder",
    "V2VPoseNet",
    "RefPointNet",
    "ModelConfig",
    "MODEL_CONFIGS",
    "create_model",
    "model_config",
    "init_weights",
    "save_weights",
    "load_weights",
    "atomic_torch_save",
]


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` that takes oneDNN on CPU for a batch of one.

    PyTorch's heuristic sends small batch-1 3^3 convolutions to its im2col fallback
    (``slow_conv3d``), 2-3x slower than oneDNN for the light model on two cores; this calls
    ``aten.mkldnn_convolution`` directly there (same result, autograd supported). Elsewhere
    (CUDA, half precision, batches) it is plain ``nn.Conv3d``; the state dict is the same.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.shape[0] == 1 and x.device.type == "cpu" and x.dtype == torch.float32 and self.padding_mode == "zeros"
                and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
            return torch.ops.aten.mkldnn_convolution(x.contiguous(), self.weight, self.bias, list(self.padding),
                                                     list(self.stride), list(self.dilation), self.groups)
        return super().forward(x)


def init_weights(module: nn.Module, std: float = 0.001) -> None:
    """The paper's initialisation: conv / deconv / linear weights ``N(0, std)``, biases 0, BN (1, 0)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class Basic3DBlock(nn.Sequential):
    """Conv3d (``k^3``, same padding) -> BatchNorm3d -> ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, device=None, dtype=None) -> None:
        dd = {"device": device, "dtype": dtype}
        super().__init__(
            Conv3d(in_ch, out_ch, kernel, padding=(kernel - 1) // 2, **dd),
            nn.BatchNorm3d(out_ch, **dd),
            nn.ReLU(inplace=True),
        )


class Res3DBlock(nn.Module):
    """Residual block: two 3^3 conv + BN (ReLU between), identity or 1^3 projection shortcut, ReLU."""

    def __init__(self, in_ch: int, out_ch: int, device=None, dtype=None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.body = nn.Sequential(
            Conv3d(in_ch, out_ch, 3, padding=1, **dd),
            nn.BatchNorm3d(out_ch, **dd),
            nn.ReLU(inplace=True),
            Conv3d(out_ch, out_ch, 3, padding=1, **dd),
            nn.BatchNorm3d(out_ch, **dd),
        )
        if in_ch == out_ch:
            self.skip: nn.Module = nn.Identity()
        else:
            self.skip = nn.Sequential(Conv3d(in_ch, out_ch, 1, **dd), nn.BatchNorm3d(out_ch, **dd))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class Pool3DBlock(nn.MaxPool3d):
    """2^3 max-pool, stride 2."""

    def __init__(self, size: int = 2) -> None:
        super().__init__(kernel_size=size, stride=size)


class Upsample3DBlock(nn.Sequential):
    """ConvTranspose3d (2^3, stride 2) -> BatchNorm3d -> ReLU: doubles the grid."""

    def __init__(self, in_ch: int, out_ch: int, device=None, dtype=None) -> None:
        dd = {"device": device, "dtype": dtype}
        super().__init__(
            nn.ConvTranspose3d(in_ch, out_ch, 2, stride=2, **dd),
            nn.BatchNorm3d(out_ch, **dd),
            nn.ReLU(inplace=True),
        )


class EncoderDecoder(nn.Module):
    """The hourglass at ``D/2``: two poolings down, two deconvolutions up, residual skips."""

    def __init__(self, width: int, device=None, dtype=None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        w1, w2, w4 = width, 2 * width, 4 * width
        self.encoder_pool1 = Pool3DBlock(2)
        self.encoder_res1 = Res3DBlock(w1, w2, **dd)
        self.encoder_pool2 = Pool3DBlock(2)
        self.encoder_res2 = Res3DBlock(w2, w4, **dd)
        self.mid_res = Res3DBlock(w4, w4, **dd)
        self.decoder_res2 = Res3DBlock(w4, w4, **dd)
        self.decoder_upsample2 = Upsample3DBlock(w4, w2, **dd)
        self.decoder_res1 = Res3DBlock(w2, w2, **dd)
        self.decoder_upsample1 = Upsample3DBlock(w2, w1, **dd)
        self.skip_res1 = Res3DBlock(w1, w1, **dd)
        self.skip_res2 = Res3DBlock(w2, w2, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip1 = self.skip_res1(x)
        x = self.encoder_res1(self.encoder_pool1(x))
        skip2 = self.skip_res2(x)
        x = self.encoder_res2(self.encoder_pool2(x))
        x = self.mid_res(x)
        x = self.decoder_upsample2(self.decoder_res2(x)) + skip2
        x = self.decoder_upsample1(self.decoder_res1(x)) + skip1
        return x


class V2VPoseNet(nn.Module):
    """V2V-PoseNet: occupancy grid ``(B, 1, D, D, D)`` -> per-joint heatmaps ``(B, J, D/2, D/2, D/2)``.

    Args:
        num_joints: heatmaps out (21 in :mod:`tracker.core.joints` order).
        in_grid: ``D``, voxels per side of the input (multiple of 8; 88 in the paper).
        width: channels of the main trunk (the paper's 32; the front block has ``width // 2``, the
            encoder ``2 width`` and ``4 width``). HANDS 2019 found 64 slightly better.
        in_channels: input channels (1: occupancy).
        device, dtype: where and how to create the parameters.
    """

    def __init__(self, num_joints: int = NUM_JOINTS, in_grid: int = 88, width: int = 32, in_channels: int = 1,
                 device=None, dtype=None) -> None:
        super().__init__()
        if in_grid % 8 or in_grid < 8:
            raise ValueError(f"in_grid must be a positive multiple of 8 (three 2x poolings), got {in_grid}")
        if width < 2 or width % 2:
            raise ValueError(f"width must be an even number >= 2, got {width}")
        dd = {"device": device, "dtype": dtype}
        self.num_joints = num_joints
        self.in_grid = in_grid
        self.out_grid = in_grid // 2
        self.width = width
        self.num_features = width
        half = width // 2
        self.front = nn.Sequential(
            Basic3DBlock(in_channels, half, 7, **dd),
            Pool3DBlock(2),
            Res3DBlock(half, width, **dd),
            Res3DBlock(width, width, **dd),
            Res3DBlock(width, width, **dd),
        )
        self.encoder_decoder = EncoderDecoder(width, **dd)
        self.back = nn.Sequential(
            Res3DBlock(width, width, **dd),
            Basic3DBlock(width, width, 1, **dd),
            Basic3DBlock(width, width, 1, **dd),
        )
        self.head = Conv3d(width, num_joints, 1, **dd)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, D, D, D)`` grid -> ``(B, width, D/2, D/2, D/2)`` features."""
        if x.ndim != 5 or x.shape[-1] != self.in_grid or x.shape[-2] != self.in_grid or x.shape[-3] != self.in_grid:
            raise ValueError(f"expected input (B, C, {self.in_grid}, {self.in_grid}, {self.in_grid}), got "
                             f"{tuple(x.shape)}")  # fmt: skip
        return self.back(self.encoder_decoder(self.front(x)))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, width, d, d, d)`` features -> ``(B, J, d, d, d)`` heatmaps."""
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class RefPointNet(nn.Module):
    """Reference-point refinement: coarse occupancy grid around the centre of mass -> offset (mm).

    A small 3D CNN (basic 5^3 block, then residual blocks with max-pooling down to ``D/8``), global
    average pooling and two linear layers. The output is the offset from the grid's centre (the
    depth centre of mass) to the hand centre, divided by ``offset_scale_mm`` during training
    (:meth:`forward` returns millimetres).

    Args:
        in_grid: ``D`` of the coarse grid (multiple of 8; 32 by default).
        width: channels of the first block (doubles at each pooling).
        offset_scale_mm: normalisation of the regressed offset.
        device, dtype: where and how to create the parameters.
    """

    def __init__(self, in_grid: int = 32, width: int = 8, offset_scale_mm: float = 50.0,
                 device=None, dtype=None) -> None:
        super().__init__()
        if in_grid % 8 or in_grid < 8:
            raise ValueError(f"in_grid must be a positive multiple of 8, got {in_grid}")
        dd = {"device": device, "dtype": dtype}
        self.in_grid = in_grid
        self.width = width
        self.offset_scale_mm = float(offset_scale_mm)
        self.num_features = 4 * width
        self.features = nn.Sequential(
            Basic3DBlock(1, width, 5, **dd),
            Pool3DBlock(2),
            Res3DBlock(width, 2 * width, **dd),
            Pool3DBlock(2),
            Res3DBlock(2 * width, 4 * width, **dd),
            Pool3DBlock(2),
            Res3DBlock(4 * width, 4 * width, **dd),
        )
        self.fc = nn.Sequential(nn.Linear(4 * width, 64, **dd), nn.ReLU(inplace=True), nn.Linear(64, 3, **dd))
        for m in self.modules():
            if isinstance(m, (nn.Conv3d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.fc[-1].weight)  # start at "no correction"

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, D, D, D)`` -> ``(B, 4 width)`` pooled features."""
        if x.ndim != 5 or tuple(x.shape[-3:]) != (self.in_grid,) * 3:
            raise ValueError(f"expected input (B, 1, {self.in_grid}, {self.in_grid}, {self.in_grid}), "
                             f"got {tuple(x.shape)}")  # fmt: skip
        return self.features(x).mean(dim=(2, 3, 4))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features -> ``(B, 3)`` offset in units of ``offset_scale_mm``."""
        return self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, D, D, D)`` -> ``(B, 3)`` offset in mm (camera axes)."""
        return self.forward_head(self.forward_features(x)) * self.offset_scale_mm


@dataclass(frozen=True)
class ModelConfig:
    """A registered model: architecture arguments plus the crop it expects.

    Attributes:
        arch: ``"v2v"`` or ``"refpoint"``.
        in_grid: input voxels per side.
        width: channel width (see :class:`V2VPoseNet` / :class:`RefPointNet`).
        cube_mm: edge of the cube the grid covers, mm.
    """

    arch: str
    in_grid: int
    width: int
    cube_mm: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The registry of :func:`create_model`.
MODEL_CONFIGS: dict[str, ModelConfig] = {
    # the paper: 88^3 input, 44^3 heatmaps, widths 16/32/64/128
    "v2v_full": ModelConfig("v2v", in_grid=88, width=32, cube_mm=250.0),
    # HANDS 2019 width-64 variant
    "v2v_wide": ModelConfig("v2v", in_grid=88, width=64, cube_mm=250.0),
    # real time on two CPU cores (about 21 ms per hand): 48^3 input (5.2 mm voxels), 24^3 heatmaps,
    # widths 8/16/32/64
    "v2v_light": ModelConfig("v2v", in_grid=48, width=16, cube_mm=250.0),
    # reference-point refinement: 32^3 over a 300 mm cube around the centre of mass
    "refpoint": ModelConfig("refpoint", in_grid=32, width=8, cube_mm=300.0),
}


def model_config(name: str) -> ModelConfig:
    """The registered :class:`ModelConfig` of ``name``.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    try:
        return MODEL_CONFIGS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODEL_CONFIGS)}") from None


def create_model(name: str, num_joints: int = NUM_JOINTS, device=None, dtype=None, **overrides: Any) -> nn.Module:
    """Build a registered model with fresh weights.

    Args:
        name: a key of :data:`MODEL_CONFIGS` (``v2v_full``, ``v2v_wide``, ``v2v_light``, ``refpoint``).
        num_joints: heatmaps of a V2V model.
        device, dtype: where and how to create the parameters.
        overrides: ``in_grid`` / ``width`` replacing the registered values.

    Returns:
        A :class:`V2VPoseNet` or :class:`RefPointNet`; its ``model_name`` and ``config`` attributes
        record what it was built from (``config.cube_mm`` is the crop it expects).

    Raises:
        KeyError: unknown name.
    """
    cfg = model_config(name)
    unknown = set(overrides) - {"in_grid", "width"}
    if unknown:
        raise TypeError(f"create_model: unexpected overrides {sorted(unknown)}")
    cfg = ModelConfig(cfg.arch, overrides.get("in_grid", cfg.in_grid), overrides.get("width", cfg.width), cfg.cube_mm)
    if cfg.arch == "v2v":
        model: nn.Module = V2VPoseNet(num_joints, cfg.in_grid, cfg.width, device=device, dtype=dtype)
    else:
        model = RefPointNet(cfg.in_grid, cfg.width, device=device, dtype=dtype)
    model.model_name = name
    model.config = cfg
    return model


def save_weights(model: nn.Module, path: str | Path, meta: dict[str, Any] | None = None, half: bool = True) -> None:
    """Write a small, self-describing weights file (atomically: a temporary file, then a rename).

    The file is a plain dict (``name``, ``config``, ``num_joints``, ``state_dict``, ``meta``) of
    strings, numbers and tensors, loadable with ``torch.load(path, weights_only=True)``;
    :func:`load_weights` rebuilds the model from it.

    Args:
        model: a model built by :func:`create_model`.
        path: destination file.
        meta: JSON-like extra information (training data, steps, scores); stored as its JSON
            round trip (anything else becomes a string).
        half: store floating-point tensors as float16 (half the size; the networks run in float32).
    """
    name = getattr(model, "model_name", None)
    cfg = getattr(model, "config", None)
    if name is None or cfg is None:
        raise ValueError("save_weights needs a model built by create_model (with model_name and config)")
    sd = {k: (v.detach().half() if half and v.is_floating_point() else v.detach()).cpu().contiguous()
          for k, v in model.state_dict().items()}  # fmt: skip
    blob = {"name": name, "config": cfg.to_dict(), "num_joints": int(getattr(model, "num_joints", 0)),
            "state_dict": sd, "meta": json.loads(json.dumps(meta or {}, default=str))}  # plain types only
    atomic_torch_save(blob, path)


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file next to ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_weights(path: str | Path, device=None) -> nn.Module:
    """Rebuild a model written by :func:`save_weights` (float32, eval mode).

    The shipped checkpoints load by name with :func:`models.load_pretrained` (``"v2v_light"``,
    ``"refpoint"``), which calls this.

    Args:
        path: the weights file.
        device: where to put the model.

    Returns:
        The model; its ``meta`` attribute holds the file's ``meta`` dict.

    Raises:
        tracker.core.errors.ModelError: no such file, not a readable checkpoint, not a V2V-PoseNet /
            RefPointNet checkpoint, or weights that do not fit the network (the message names the file).
    """
    from models.registry import load_state, read_torch_checkpoint

    path = Path(path)
    blob = read_torch_checkpoint(path)
    try:
        cfg = blob["config"]
        kwargs: dict[str, Any] = {"in_grid": int(cfg["in_grid"]), "width": int(cfg["width"])}
        if cfg["arch"] == "v2v":
            kwargs["num_joints"] = int(blob["num_joints"])
        model = create_model(blob["name"], **kwargs)
        model.config = ModelConfig(cfg["arch"], int(cfg["in_grid"]), int(cfg["width"]), float(cfg["cube_mm"]))
        sd = blob["state_dict"]
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ModelError(f"{path} is not a V2V-PoseNet / RefPointNet checkpoint ({type(e).__name__}: {e})") from e
    load_state(model, sd, path, blob["name"])
    model.meta = blob.get("meta", {})
    return model.to(device).eval()
