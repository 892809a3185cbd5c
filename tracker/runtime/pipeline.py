"""A pipeline: named stages run in order on each frame set, timed one by one."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from tracker.core.structures import FrameResult, FrameSet, HandPose

__all__ = ["Stage", "Pipeline"]

log = logging.getLogger(__name__)


class Stage(Protocol):
    """One step of the pipeline: takes the frame set and the hands so far, returns the new hands."""

    def __call__(self, frameset: FrameSet, hands: list[HandPose]) -> list[HandPose]: ...


def _sanitize(hands: list[HandPose], stage: str) -> list[HandPose]:
    """Drop hands with non-finite 2D joints; clear non-finite 3D. Logs what it removed and where."""
    out = []
    for hand in hands:
        if not np.isfinite(hand.joints_2d).all():
            log.warning("stage %r produced non-finite 2D joints for a hand; hand dropped this frame", stage)
            continue
        if hand.joints_3d is not None and not np.isfinite(hand.joints_3d).all():
            log.warning("stage %r produced non-finite 3D joints; 3D cleared this frame", stage)
            hand = hand.replace(joints_3d=None)
        out.append(hand)
    return out


class Pipeline:
    """Runs ``(name, stage)`` pairs in order; each stage's wall time goes into the result.

    Stages hold their own state (tracks, filters), so a pipeline serves one stream.
    """

    def __init__(self, stages: Sequence[tuple[str, Stage]]) -> None:
        names = [n for n, _ in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        self.stages = list(stages)

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.stages]

    def __call__(self, frameset: FrameSet, t_capture: float | None = None) -> FrameResult:
        """Process one frame set. ``t_capture``: ``time.perf_counter()`` when it was captured."""
        timings: dict[str, float] = {}
        hands: list[HandPose] = []
        t_start = time.perf_counter()
        for name, stage in self.stages:
            t0 = time.perf_counter()
            hands = _sanitize(stage(frameset, hands), name)
            timings[name] = (time.perf_counter() - t0) * 1e3
        t_end = time.perf_counter()
        timings["total"] = (t_end - t_start) * 1e3
        latency = (t_end - (t_capture if t_capture is not None else t_start)) * 1e3
        return FrameResult(frameset, tuple(hands), timings, latency)

    def reset(self) -> None:
        """Forget all state carried from frame to frame (tracks, filters, identities): the next
        frame set is processed as the first of a new stream. Stages without state are untouched."""
        for _, stage in self.stages:
            reset = getattr(stage, "reset", None)
            if callable(reset):
                reset()

    def close(self) -> None:
        for _, stage in self.stages:
            close = getattr(stage, "close", None)
            if callable(close):
                close()
