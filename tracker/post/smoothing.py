"""Live smoothing stage: a One Euro filter per tracked hand, on its 2D (px) and 3D (mm) joints."""

from __future__ import annotations

from tracker.post.one_euro import OneEuroFilter, OneEuroParams
from tracker.core.structures import FrameSet, HandPose
from tracker.post.tracks import drop_ended_tracks

__all__ = ["TemporalSmoother"]


class TemporalSmoother:
    """Pipeline stage: causal One Euro smoothing of each track's joints.

    Filters are keyed by ``(view, track_id)``; a track that disappears has its filters dropped, so
    a hand that comes back starts fresh instead of sliding in from its old position. Must run after
    :class:`tracker.stages.identity.IdentityTracker`.
    """

    def __init__(self, params: OneEuroParams) -> None:
        self.params = params
        self._filters: dict[tuple[int, int], tuple[OneEuroFilter, OneEuroFilter]] = {}

    def reset(self) -> None:
        """Forget every filter's state (the next frame is not smoothed towards earlier ones)."""
        self._filters.clear()

    def __call__(self, frameset: FrameSet, hands: list[HandPose]) -> list[HandPose]:
        drop_ended_tracks(self._filters, hands)
        out = []
        for hand in hands:
            f2d, f3d = self._filters.setdefault(
                (hand.view, hand.track_id), (OneEuroFilter(self.params), OneEuroFilter(self.params))
            )
            t = hand.timestamp
            joints_3d = hand.joints_3d
            if joints_3d is None:
                f3d.reset()
            else:
                joints_3d = f3d(joints_3d, t)
            out.append(hand.replace(joints_2d=f2d(hand.joints_2d, t), joints_3d=joints_3d))
        return out
