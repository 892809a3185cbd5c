"""The learned rig fusion as a pipeline stage (``--fusion learned``): the HaMuCo-style network of
:mod:`models.hamuco` turns the per-view hands of a calibrated rig into world-frame hands."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from models.hamuco import HaMuCo
from models.hamuco_data import joint_patches
from models.hamuco_infer import FusionError, rig_calibration, to_model
from tracker.core.joints import NUM_JOINTS
from tracker.core.structures import Camera, FrameSet, Handedness, HandPose
from tracker.fusion.triangulate import TriangulationConfig, associate_hands, projection_matrices, split_rig_hands

__all__ = ["HaMuCoFusion"]

log = logging.getLogger(__name__)


class HaMuCoFusion:
    """Pipeline stage: per-view 2D hands of a calibrated rig -> fused world-frame hands.

    Output per physical hand seen by at least ``min_views`` views (``view = -1``):

    * ``joints_world`` ``(21, 3)`` mm, world frame; ``uncertainty_mm`` ``(21,)`` the network's
      1-sigma per-axis estimate;
    * ``joints_3d`` ``(21, 3)`` mm in the camera frame of the lowest-index view that saw the hand
      (its *reference view*); ``joints_2d`` that view's detection (px);
    * ``confidence`` per joint ``1 / (1 + (uncertainty_mm / confidence_scale_mm)^2)``;
    * ``handedness``: the network's side (the views' vote weighted by their probabilities),
      ``score`` the mean score of the views.

    Hands already fused (``view = -1``) pass through.

    Args:
        cameras: the rig's cameras, one per frame of the frame sets; None = each frame's ``camera``.
        model: a :class:`models.hamuco.HaMuCo` (e.g. ``models.load_pretrained("hamuco", device)``);
            None = load the shipped one now. It runs on its device (inputs moved there, outputs
            back to CPU NumPy).
        min_views: fewest views a hand needs (1 keeps hands seen by a single camera: the network
            still places them from that view's detection and MediaPipe's metric 3D, less accurately).
        confidence_scale_mm: uncertainty at which a joint's confidence is 0.5.
        device: where the network runs (``"auto"``, ``"cpu"``, ``"cuda"``, ... or a torch device);
            None = CPU when loading, the model's own device when one is given.

    Raises:
        tracker.core.errors.ModelError: ``model`` is None and the shipped checkpoint cannot be loaded.
    """

    def __init__(self, cameras: Sequence[Camera] | None, model: HaMuCo | None = None, min_views: int = 2,
                 confidence_scale_mm: float = 10.0, device: str | torch.device | None = None) -> None:
        from models.registry import load_pretrained, resolve_device

        if model is None:
            model = load_pretrained("hamuco", device)
        elif device is not None:
            model = model.to(resolve_device(device) if isinstance(device, str) else device)
        self.cameras = tuple(cameras) if cameras is not None else None
        self.model = model.eval()
        self.min_views = int(min_views)
        self.confidence_scale_mm = float(confidence_scale_mm)
        self._assoc = TriangulationConfig()

    def __call__(self, frameset: FrameSet, hands: list[HandPose]) -> list[HandPose]:
        """Fuse the per-view hands of ``frameset`` (see the class docstring).

        Raises:
            FusionError: the rig's camera count differs from the frame set's, or a hand's view is
                not a frame of the set.
        """
        cameras, out, per_view = split_rig_hands(frameset, hands, self.cameras, "HaMuCoFusion", FusionError)
        if not per_view:
            return out
        uv = [cameras[h.view].undistort_pixels(h.joints_2d) for h in per_view]
        groups = associate_hands(projection_matrices(cameras), per_view, uv, self._assoc)
        if self.min_views <= 1:
            used = {i for g in groups for i in g.values()}
            groups += [{per_view[i].view: i} for i in range(len(per_view)) if i not in used]
        for group in groups:
            if len(group) >= self.min_views:
                out.append(self._fuse(frameset, cameras, per_view, uv, group))
        return out

    @torch.inference_mode()
    def _fuse(self, frameset: FrameSet, cameras: Sequence[Camera], hands: Sequence[HandPose],
              uv_und: Sequence[np.ndarray], group: dict[int, int]) -> HandPose:
        v_count = len(cameras)
        arr_uv = np.zeros((1, v_count, NUM_JOINTS, 2), np.float32)
        conf = np.zeros((1, v_count, NUM_JOINTS), np.float32)
        local = np.zeros((1, v_count, NUM_JOINTS, 3), np.float32)
        left_prob = np.full((1, v_count), 0.5, np.float32)
        mask = np.zeros((1, v_count), bool)
        for v, i in group.items():
            h = hands[i]
            arr_uv[0, v] = np.nan_to_num(uv_und[i])
            conf[0, v] = np.nan_to_num(np.asarray(h.confidence, np.float32))
            if h.joints_local is not None:
                local[0, v] = h.joints_local
            hs = float(h.handedness_score)
            left_prob[0, v] = hs if h.handedness == "left" else (1.0 - hs if h.handedness == "right" else 0.5)
            mask[0, v] = True
        K, R, t = (a[None] for a in rig_calibration(cameras))

        def tens(a: np.ndarray) -> torch.Tensor:
            return to_model(self.model, a)

        patches = None
        size = int(getattr(self.model.cfg, "patch_size", 0))
        if size > 0:  # image features: patches of each view's image around its detected joints
            patches = np.zeros((1, v_count, NUM_JOINTS, size, size, 3), np.uint8)
            for v, i in group.items():
                image = frameset.frames[v].image
                if image is not None:
                    patches[0, v] = joint_patches(image, np.asarray(hands[i].joints_2d), size)
        res = self.model(tens(arr_uv), tens(conf), tens(local), tens(left_prob), tens(mask), tens(K), tens(R), tens(t),
                         None if patches is None else tens(patches))  # fmt: skip
        X = res.joints_world[0].double().cpu().numpy()
        sigma = res.uncertainty_mm[0].double().cpu().numpy()
        ref = min(group)
        cam = cameras[ref]
        members = [hands[i] for i in group.values()]
        handedness: Handedness = "left" if bool(res.left[0]) else "right"
        p_left = float(left_prob[0, mask[0]].mean())
        return HandPose(
            joints_2d=np.asarray(hands[group[ref]].joints_2d, np.float64).copy(),
            confidence=1.0 / (1.0 + (sigma / self.confidence_scale_mm) ** 2),
            timestamp=frameset.timestamp,
            joints_3d=cam.world_to_camera(X),
            score=float(np.mean([h.score for h in members])),
            handedness=handedness,
            handedness_score=p_left if handedness == "left" else 1.0 - p_left,
            view=-1,
            joints_world=X,
            uncertainty_mm=sigma,
        )

