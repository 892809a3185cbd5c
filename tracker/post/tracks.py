"""Per-track state of the stateful post stages (smoothing, temporal refiner, grip, gestures)."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping

from tracker.core.structures import HandPose

__all__ = ["drop_ended_tracks"]


def drop_ended_tracks(state: MutableMapping[tuple[int, int], object], hands: Iterable[HandPose]) -> None:
    """Remove from ``state`` (keyed by ``(view, track_id)``) every track that is not among ``hands``:
    a track that ended frees its state, and an id seen again later starts fresh."""
    live = {(h.view, h.track_id) for h in hands}
    for key in [k for k in state if k not in live]:
        del state[key]
