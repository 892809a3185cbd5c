"""The masked joint refiner as a pipeline stage (``--refine``): :class:`models.refiner.JointRefiner`
on each hand's 21 joints."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tracker.core.structures import FrameSet, HandPose

if TYPE_CHECKING:
    import torch

    from models.refiner import JointRefiner

__all__ = ["RefinerStage"]


class RefinerStage:
    """Pipeline stage: refine each hand's 21 joints (``joints_3d``, and ``joints_world`` when present).

    Uses the ``mp21`` refiner (trained on all orientations, so the camera and the world frame both
    work) with the hand's per-joint ``confidence`` as the input confidence (joints at 0 are
    predicted from the others). Fills ``uncertainty_mm`` with the refiner's estimate where the hand
    has none. Hands without 3D joints pass unchanged. All hands of a frame set go through one
    batched forward pass on the refiner's device (inputs moved there, outputs back to CPU NumPy).

    Args:
        refiner: a ready refiner; None = load ``path`` (default: the shipped ``refiner_mp21``) now
            with :func:`models.load_pretrained`.
        path: a refiner checkpoint of the ``mp21`` layout to load instead of the shipped one.
        device: where the refiner runs (``"auto"``, ``"cpu"``, ``"cuda"``, ... or a torch device;
            None = CPU when loading, the refiner's own device when one is given).

    Raises:
        tracker.core.errors.ModelError: the checkpoint cannot be loaded (missing, corrupt, another
            layout).
        ValueError: a given ``refiner`` is not a 21-joint one.
    """

    def __init__(self, refiner: JointRefiner | None = None, *, path: str | Path | None = None,
                 device: str | torch.device | None = None) -> None:
        if refiner is None:
            from models.registry import load_pretrained

            refiner = load_pretrained("refiner_mp21", device, path=path)
        elif device is not None:
            from models.registry import resolve_device

            refiner.net.to(device if not isinstance(device, str) else resolve_device(device))
        if refiner.layout != "mp21":
            raise ValueError(f"RefinerStage needs a 21-joint ('mp21') refiner, got {refiner.layout!r}")
        self.refiner = refiner

    def __call__(self, frameset: FrameSet, hands: list[HandPose]) -> list[HandPose]:
        poses: list[np.ndarray] = []
        confs: list[np.ndarray] = []
        slots: list[tuple[int, str]] = []
        for i, h in enumerate(hands):
            for field in ("joints_3d", "joints_world"):
                value = getattr(h, field)
                if value is not None:
                    poses.append(value)
                    confs.append(h.confidence)
                    slots.append((i, field))
        if not poses:
            return hands
        refined, unc = self.refiner.refine_with_uncertainty(np.stack(poses), np.stack(confs))
        changes: list[dict[str, Any]] = [{} for _ in hands]
        for k, (i, field) in enumerate(slots):
            changes[i][field] = refined[k]
            if field == "joints_3d" and hands[i].uncertainty_mm is None:
                changes[i]["uncertainty_mm"] = unc[k]
        return [h.replace(**c) if c else h for h, c in zip(hands, changes)]
