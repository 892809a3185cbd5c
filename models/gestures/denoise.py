"""Causal temporal refinement of hand joints with the gesture network's pose block (HTT's pose head).

The pose head of :class:`models.htt.HTT` was trained to output each frame's *clean* normalised shape
from noisy, partly missing clips (:mod:`models.gestures.data`): a temporal denoiser. Its attention
band is centred on each frame, so the **last** frame of a window only attends to itself and the
``window // 2`` frames before it: refining the newest frame of a stream from the frames up to it is
causal. The network refines the hand's *shape* (joints relative to the palm root, in hand sizes);
the root itself (where the hand is) passes through unchanged.

Joints: mm, camera frame (OpenCV axes), 21 joints, NaN = missing (a missing joint gets the
network's estimate when the frame has a root).
"""

from __future__ import annotations

import numpy as np

from models.gestures.features import clip_features, normalise
from tracker.core.joints import NUM_JOINTS

__all__ = ["refine_last"]


def refine_last(model, windows: list[tuple[np.ndarray, float]], device="cpu") -> np.ndarray:  # noqa: ANN001
    """The refined last frame of each window.

    Args:
        model: an :class:`~models.htt.HTT` with a pose block, eval mode.
        windows: ``(joints (T, 21, 3) mm, duration s)``, T <= ``model.config.max_frames``.
        device: where the model runs.

    Returns:
        ``(N, 21, 3)`` mm; a window whose last frame has no root comes back unchanged.

    Raises:
        ValueError: the model has no pose block.
    """
    import torch

    if model.pose_head is None:
        raise ValueError("this gesture network has no pose block (trained with --no-pose-block)")
    if not windows:
        return np.zeros((0, NUM_JOINTS, 3))
    out = np.stack([np.asarray(j[-1], np.float64) for j, _ in windows])
    by_length: dict[int, list[int]] = {}
    for i, (j, _) in enumerate(windows):
        by_length.setdefault(len(j), []).append(i)
    with torch.no_grad():
        for idx in by_length.values():
            feats = [clip_features(windows[i][0], windows[i][1]) for i in idx]
            x = torch.from_numpy(np.stack([f for f, _ in feats])).to(device)
            v = torch.from_numpy(np.stack([m for _, m in feats])).to(device)
            pose = model(x, v)["pose"][:, -1].float().cpu().numpy().reshape(-1, NUM_JOINTS, 3)
            for k, i in enumerate(idx):
                _, root, s, valid = normalise(windows[i][0])
                if valid[-1]:
                    out[i] = root[-1] + s * pose[k].astype(np.float64)
    return out
