"""V2V-PoseNet inference: depth image + intrinsics + reference point -> 21 joints in mm.

The path of the paper, with the Numba kernels of :mod:`kernels` on both ends:

1. reference point: the depth centre of mass of the hand region (:func:`models.depth_crop.hand_reference_point`,
   seeded by a detector's guess of the hand centre), optionally corrected by
   :class:`models.v2v.RefPointNet` (:class:`RefPointRefiner`);
2. :func:`kernels.voxelize_depth`: occupancy grid ``D^3`` of the cube of ``cube_mm`` around it;
3. the network: one heatmap ``(D/2)^3`` per joint;
4. :func:`kernels.subvoxel_argmax_batch`: the maximum of each heatmap refined to sub-voxel precision
   (``REFINE_GAUSS`` by default, the better read-out of HANDS 2019), back to camera-frame mm.

Everything is batched; a sample whose reference point is not finite or whose cube holds no depth
reading gives NaN joints and confidence 0 (and is not sent through the network).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from kernels import REFINE_GAUSS, REFINE_MEAN, subvoxel_argmax_batch
from kernels import voxelize_depth_into
from models.depth_crop import hand_reference_point, intrinsics_of

from models.v2v import RefPointNet, V2VPoseNet

# ``hand_reference_point`` and ``intrinsics_of`` live with the other crop searches in
# :mod:`models.depth_crop`; they are re-exported here for the V2V code that uses them.
__all__ = ["hand_reference_point", "V2VEstimate", "V2VEstimator", "RefPointRefiner", "intrinsics_of"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class V2VEstimate:
    """Joints read from V2V-PoseNet heatmaps.

    Attributes:
        joints: ``(B, J, 3)`` float64 mm, camera frame; NaN for samples with no input.
        confidence: ``(B, J)`` float32 heatmap maxima (about 1 for a confident peak; 0: no estimate).
        refs: ``(B, 3)`` float64 cube centres used, mm.
        valid: ``(B,)`` bool, the sample went through the network.
    """

    joints: np.ndarray
    confidence: np.ndarray
    refs: np.ndarray
    valid: np.ndarray


class V2VEstimator:
    """V2V-PoseNet on depth images: voxelize -> network -> sub-voxel argmax.

    Args:
        model: a :class:`models.v2v.V2VPoseNet` (put in eval mode here).
        cube_mm: edge of the cube around the reference point, mm (default: the model's
            ``config.cube_mm``, else 250).
        grid: input voxels per side (default: the model's ``in_grid``).
        device: where to run the network; None = where the model's parameters are. The model is
            moved there once, here.
        half: run the network in float16 (CUDA only; ignored on CPU).
        refine: ``REFINE_GAUSS`` (default) or ``REFINE_MEAN`` sub-voxel read-out.
        radius: refinement window half-size (voxels) of the read-out.
    """

    def __init__(self, model: V2VPoseNet, cube_mm: float | None = None, grid: int | None = None,
                 device: torch.device | str | None = None, half: bool = False, refine: int = REFINE_GAUSS,
                 radius: int = 1) -> None:
        cfg = getattr(model, "config", None)
        self.cube_mm = float(cube_mm if cube_mm is not None else (cfg.cube_mm if cfg is not None else 250.0))
        self.grid = int(grid if grid is not None else model.in_grid)
        if self.grid != model.in_grid:
            raise ValueError(f"grid {self.grid} does not match the model's in_grid {model.in_grid}")
        if refine not in (REFINE_MEAN, REFINE_GAUSS):
            raise ValueError("refine must be kernels.REFINE_MEAN or kernels.REFINE_GAUSS")
        if device is None:
            device = next(model.parameters()).device
        self.device = torch.device(device)
        self.half = bool(half) and self.device.type == "cuda"
        self.model = model.to(self.device).eval()
        if self.half:
            self.model.half()
        self.refine = int(refine)
        self.radius = int(radius)
        self.num_joints = model.num_joints

    def voxelize(self, depths: Sequence[np.ndarray] | np.ndarray, Ks: np.ndarray, refs: np.ndarray,
                 depth_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Occupancy grids of a batch.

        Args:
            depths: ``B`` depth images ``(H, W)`` uint16 (a list, or an array ``(B, H, W)``).
            Ks: ``(B, 3, 3)`` or one ``(3, 3)`` for all.
            refs: ``(B, 3)`` cube centres, mm.
            depth_scale: mm per depth unit.

        Returns:
            ``(grids, valid)``: ``(B, D, D, D)`` uint8 and ``(B,)`` bool (finite reference point and at
            least one occupied voxel).
        """
        B = len(depths)
        refs = np.asarray(refs, dtype=np.float64).reshape(B, 3)
        Ks = np.asarray(Ks, dtype=np.float64)
        if Ks.shape == (3, 3):
            Ks = np.broadcast_to(Ks, (B, 3, 3))
        if Ks.shape != (B, 3, 3):
            raise ValueError(f"Ks must be (3, 3) or (B, 3, 3) for B={B}, got {Ks.shape}")
        D = self.grid
        grids = np.zeros((B, D, D, D), np.uint8)
        valid = np.zeros(B, bool)
        for b in range(B):
            if not np.all(np.isfinite(refs[b])):
                continue
            fx, fy, cx, cy = intrinsics_of(Ks[b])
            voxelize_depth_into(grids[b], np.asarray(depths[b]), fx, fy, cx, cy, refs[b], self.cube_mm,
                                float(depth_scale))  # fmt: skip
            valid[b] = bool(grids[b].any())
        return grids, valid

    @torch.inference_mode()
    def heatmaps(self, grids: np.ndarray) -> np.ndarray:
        """Network heatmaps ``(B, J, D/2, D/2, D/2)`` float32 (NumPy) of ``(B, D, D, D)`` uint8 grids."""
        x = torch.from_numpy(np.ascontiguousarray(grids)).to(self.device)
        x = x.unsqueeze(1).to(torch.float16 if self.half else torch.float32)
        return self.model(x).float().cpu().numpy()

    def estimate_grids(self, grids: np.ndarray, refs: np.ndarray, valid: np.ndarray | None = None) -> V2VEstimate:
        """Joints of a batch of ready occupancy grids (``(B, D, D, D)`` uint8, cube centres ``(B, 3)``)."""
        B = grids.shape[0]
        refs = np.asarray(refs, dtype=np.float64).reshape(B, 3)
        if valid is None:
            valid = np.isfinite(refs).all(1) & grids.reshape(B, -1).any(1)
        J = self.num_joints
        joints = np.full((B, J, 3), np.nan)
        conf = np.zeros((B, J), np.float32)
        idx = np.flatnonzero(valid)
        if idx.size:
            hm = self.heatmaps(grids[idx])
            r = np.ascontiguousarray(refs[idx])
            j, c = subvoxel_argmax_batch(hm, r, self.cube_mm, self.radius, self.refine)
            # a heatmap with no positive value (an untrained or confused network) still has a
            # maximum: read its voxel centre, with confidence 0
            bad = np.isnan(j).any(-1) & np.isfinite(hm).any(axis=(2, 3, 4))
            if bad.any():
                b, k = np.nonzero(bad)
                h = hm[b, k]
                h = h - np.nanmin(h, axis=(1, 2, 3), keepdims=True) + 1e-6
                jb, _ = subvoxel_argmax_batch(h[:, None], np.ascontiguousarray(r[b]), self.cube_mm, 0, REFINE_MEAN)
                j[b, k] = jb[:, 0]
                c[b, k] = 0.0
            joints[idx] = j
            conf[idx] = c
        return V2VEstimate(joints, conf, refs, np.asarray(valid, bool))

    def estimate_batch(self, depths: Sequence[np.ndarray] | np.ndarray, Ks: np.ndarray, refs: np.ndarray,
                       depth_scale: float = 1.0) -> V2VEstimate:
        """Joints of ``B`` hands (one depth image and reference point each; images may repeat).

        Args:
            depths: ``B`` depth images ``(H, W)`` uint16, mm * ``depth_scale``; 0 = no reading.
            Ks: ``(B, 3, 3)`` intrinsics (or one ``(3, 3)``).
            refs: ``(B, 3)`` cube centres, mm, camera frame (e.g. :func:`hand_reference_point`).
            depth_scale: mm per depth unit.

        Returns:
            The :class:`V2VEstimate`.
        """
        grids, valid = self.voxelize(depths, Ks, refs, depth_scale)
        return self.estimate_grids(grids, refs, valid)

    def estimate(self, depth: np.ndarray, K: np.ndarray, ref: np.ndarray, depth_scale: float = 1.0
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Joints of one hand: ``((J, 3) float64 mm, (J,) float32 confidence)``; see :meth:`estimate_batch`."""
        est = self.estimate_batch([depth], np.asarray(K)[None], np.asarray(ref, np.float64)[None], depth_scale)
        return est.joints[0], est.confidence[0]


class RefPointRefiner:
    """The paper's reference-point refinement: centre of mass + :class:`RefPointNet` offset.

    Args:
        model: a trained :class:`models.v2v.RefPointNet`.
        cube_mm: edge of its coarse cube, mm (default: ``model.config.cube_mm``, else 300).
        device: where to run it; None = where its parameters are.
    """

    def __init__(self, model: RefPointNet, cube_mm: float | None = None, device: torch.device | str | None = None
                 ) -> None:
        cfg = getattr(model, "config", None)
        self.cube_mm = float(cube_mm if cube_mm is not None else (cfg.cube_mm if cfg is not None else 300.0))
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model: nn.Module = model.to(self.device).eval()
        self.grid = int(model.in_grid)

    @torch.inference_mode()
    def refine_batch(self, depths: Sequence[np.ndarray] | np.ndarray, Ks: np.ndarray, coms: np.ndarray,
                     depth_scale: float = 1.0) -> np.ndarray:
        """``(B, 3)`` refined reference points (mm) from centres of mass ``coms`` ``(B, 3)``; NaN stays NaN."""
        B = len(depths)
        coms = np.asarray(coms, dtype=np.float64).reshape(B, 3)
        Ks = np.asarray(Ks, dtype=np.float64)
        if Ks.shape == (3, 3):
            Ks = np.broadcast_to(Ks, (B, 3, 3))
        D = self.grid
        grids = np.zeros((B, D, D, D), np.uint8)
        ok = np.isfinite(coms).all(1)
        for b in np.flatnonzero(ok):
            fx, fy, cx, cy = intrinsics_of(Ks[b])
            voxelize_depth_into(grids[b], np.asarray(depths[b]), fx, fy, cx, cy, coms[b], self.cube_mm,
                                float(depth_scale))  # fmt: skip
        out = coms.copy()
        idx = np.flatnonzero(ok)
        if idx.size:
            x = torch.from_numpy(grids[idx]).to(self.device).unsqueeze(1).float()
            out[idx] += self.model(x).double().cpu().numpy()
        return out
