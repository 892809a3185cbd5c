"""The learned multi-view fusion (:mod:`models.hamuco`) as a pipeline stage.

:class:`HaMuCoFusion` takes the per-view 2D hands of a rig's frame set (``HandPose.view`` = the
frame's index in the :class:`~tracker.core.structures.FrameSet`, e.g. MediaPipe run per view), groups the
detections of each physical hand across views (:func:`tracker.fusion.triangulate.associate_hands`:
reprojection consistency and handedness) and returns one fused hand per group in the rig's world
frame. ``models.load_pretrained("hamuco", device)`` loads the shipped checkpoint ``models/weights/hamuco.pt``.

    from tracker.fusion.learned import HaMuCoFusion
    stage = HaMuCoFusion(cameras, device="cpu")           # the shipped network, or model=load_pretrained(...)
    fused = stage(frameset, per_view_hands)

:func:`fuse_keypoints` runs the same network on arrays of 2D keypoints (the offline triangulator's
``--method fusion``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from tracker.core.errors import HandtrackError
from tracker.core.joints import NUM_JOINTS
from tracker.core.structures import Camera

from models.hamuco import HaMuCo

__all__ = ["FusionError", "fuse_keypoints", "rig_calibration", "to_model"]

log = logging.getLogger(__name__)

class FusionError(HandtrackError, ValueError):
    """The frame set, the cameras and the hands do not fit together."""


def rig_calibration(cameras: Sequence[Camera]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``K`` (V, 3, 3) px, ``R`` (V, 3, 3), ``t`` (V, 3) mm (world -> camera) of the rig, float64."""
    K = np.stack([c.intrinsics.K for c in cameras]).astype(np.float64)
    R = np.stack([np.asarray(c.extrinsics.R) for c in cameras]).astype(np.float64)
    t = np.stack([np.asarray(c.extrinsics.t) for c in cameras]).astype(np.float64)
    return K, R, t


def to_model(model: HaMuCo, a: np.ndarray) -> torch.Tensor:
    """An array as a tensor on ``model``'s device (floating point in its dtype)."""
    param = next(model.parameters())
    x = torch.from_numpy(np.ascontiguousarray(a)).to(param.device)
    return x.to(param.dtype) if x.is_floating_point() else x


@torch.inference_mode()
def fuse_keypoints(cameras: Sequence[Camera], points: np.ndarray, confidence: np.ndarray, model: HaMuCo | None = None,
                   min_views: int = 2, min_confidence: float = 0.05, batch: int = 64) -> np.ndarray:
    """Fuse 2D hand keypoints of a calibrated rig into world-frame 3D joints, frame by frame.

    The keypoints carry no images (a model with image features runs without them), no per-view
    metric 3D and no handedness (unlike :class:`HaMuCoFusion`'s MediaPipe hands): the network gets
    zeros for the metric 3D and is run as a left and as a right hand, keeping per frame the side
    whose joints reproject closer to the keypoints. Without the metric 3D it is less accurate
    (synthetic 4-camera ring, 3 px Gaussian noise: 7.4 mm), and on keypoints without gross errors
    RANSAC is better (3.3 mm there; ``scripts/eval_keypoint_fusion.py``): the network earns its keep on a real detector's failures
    (occlusion, two views; see ``models/weights/hamuco.md``).

    Args:
        cameras: ``V`` calibrated cameras (world -> camera, mm), in the order of ``points``' views.
        points: ``(F, V, 21, 2)`` pixels of the distorted images, MediaPipe joint order; NaN = not
            detected.
        confidence: ``(F, V, 21)`` in [0, 1].
        model: the network; None = the shipped checkpoint (``models.load_pretrained("hamuco")``).
        min_views: a frame needs this many views with >= 11 joints above ``min_confidence``.
        min_confidence: joints below it are ignored.
        batch: frames per network call.

    Returns:
        ``(F, 21, 3)`` mm in the world frame; NaN rows for frames seen by fewer than ``min_views``.

    Raises:
        FusionError: not 21 joints, more views than the network takes, or mismatched shapes.
        tracker.core.errors.ModelError: ``model`` is None and the shipped checkpoint cannot be loaded.
    """
    from models.hamuco_data import MAX_VIEWS

    pts = np.asarray(points, np.float64)
    conf = np.asarray(confidence, np.float64)
    if pts.ndim != 4 or pts.shape[2:] != (NUM_JOINTS, 2) or conf.shape != pts.shape[:3]:
        raise FusionError(f"the learned fusion needs points (F, V, {NUM_JOINTS}, 2) in MediaPipe joint order and "
                          f"confidence (F, V, {NUM_JOINTS}); got {pts.shape} and {conf.shape}")  # fmt: skip
    n_frames, n_views = pts.shape[:2]
    if n_views != len(cameras):
        raise FusionError(f"{n_views} views of keypoints but {len(cameras)} cameras")
    if n_views > MAX_VIEWS:
        raise FusionError(f"the fusion network takes at most {MAX_VIEWS} views, got {n_views}; use RANSAC")
    if model is None:
        from models.registry import load_pretrained

        model = load_pretrained("hamuco")
    model = model.eval()
    ok = np.isfinite(pts).all(-1) & np.isfinite(conf) & (conf >= min_confidence)
    c = np.where(ok, np.clip(np.nan_to_num(conf), 0.0, 1.0), 0.0)
    uv = np.zeros_like(pts)
    for v, cam in enumerate(cameras):  # undistort, and park undetected joints on the view's mean
        flat = np.where(ok[:, v, :, None], pts[:, v], 0.0).reshape(-1, 2)
        und = cam.undistort_pixels(flat).reshape(n_frames, NUM_JOINTS, 2)
        count = ok[:, v].sum(-1, keepdims=True)
        mean = (und * ok[:, v, :, None]).sum(1) / np.maximum(count, 1)
        uv[:, v] = np.where(ok[:, v, :, None], und, mean[:, None, :])
    mask = ok.sum(-1) >= (NUM_JOINTS + 1) // 2  # (F, V)
    c = c * mask[..., None]
    K, R, t = rig_calibration(cameras)
    out = np.full((n_frames, NUM_JOINTS, 3), np.nan)

    def tens(a: np.ndarray) -> torch.Tensor:
        return to_model(model, a)

    for s in range(0, n_frames, batch):
        sl = slice(s, min(s + batch, n_frames))
        b = sl.stop - sl.start
        best_err = np.full(b, np.inf)
        for p_left in (0.05, 0.95):  # no handedness in the file: fit both sides, keep the one that reprojects better
            res = model(tens(uv[sl]), tens(c[sl]), tens(np.zeros((b, n_views, NUM_JOINTS, 3))),
                        tens(np.full((b, n_views), p_left)), tens(mask[sl]), tens(np.broadcast_to(K, (b, *K.shape))),
                        tens(np.broadcast_to(R, (b, *R.shape))), tens(np.broadcast_to(t, (b, *t.shape))))  # fmt: skip
            X = res.joints_world.double().cpu().numpy()  # (b, 21, 3)
            proj = np.stack([view.intrinsics.project(view.world_to_camera(X)) for view in cameras], axis=1)
            err = (c[sl] * np.linalg.norm(proj - uv[sl], axis=-1)).sum((1, 2)) / np.maximum(c[sl].sum((1, 2)), 1e-9)
            better = err < best_err
            out[sl][better] = X[better]
            best_err = np.where(better, err, best_err)
    out[mask.sum(1) < min_views] = np.nan
    return out
