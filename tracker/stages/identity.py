"""Hand identities across frames, and handedness stabilised over each identity's track.

Each track predicts where its joints will be (constant velocity in the image) and detections are
assigned to tracks by the smallest total cost, where the cost of a pair is the mean 2D joint
distance between the prediction and the detection divided by the hand's size in pixels. Joint-level
costs with motion prediction keep two hands apart when they cross: at the crossing their centres
coincide but their joint layouts and velocities do not.

Handedness per track is a running log-odds vote over the per-frame labels, so one mislabelled frame
does not flip a hand's side.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field

import numpy as np

from tracker.core.joints import PALM
from tracker.core.structures import FrameSet, HandPose

__all__ = ["IdentityConfig", "IdentityTracker", "hand_size_px", "best_assignment"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IdentityConfig:
    """Options of :class:`IdentityTracker`.

    Attributes:
        max_cost: largest normalised cost (mean joint distance / hand size) for a match.
        max_age_s: a track unseen for longer than this (seconds) is dropped; its id is not reused.
        duplicate_cost: two detections closer than this (normalised) are one hand; keep the better.
        handedness_decay: per-frame decay of the handedness vote (closer to 1 = steadier).
        handedness_penalty: extra cost for matching a detection labelled with the other side of a
            track whose side is settled.
        max_velocity_dt_s: velocity is not extrapolated over gaps longer than this.
    """

    max_cost: float = 1.5
    max_age_s: float = 0.5
    duplicate_cost: float = 0.15
    handedness_decay: float = 0.9
    handedness_penalty: float = 0.3
    max_velocity_dt_s: float = 0.25


def hand_size_px(joints_2d: np.ndarray) -> float:
    """Hand size in pixels: the diagonal of the palm joints' bounding box (floor 1 px)."""
    palm = joints_2d[list(PALM)]
    return max(float(np.linalg.norm(palm.max(axis=0) - palm.min(axis=0))), 1.0)


@dataclass
class _Track:
    track_id: int
    joints_2d: np.ndarray
    velocity: np.ndarray  # px / s, (21, 2)
    timestamp: float
    side_logodds: float = 0.0  # > 0: right
    hits: int = 1

    def predict(self, t: float, max_dt: float) -> np.ndarray:
        dt = min(max(t - self.timestamp, 0.0), max_dt)
        return self.joints_2d + self.velocity * dt


@dataclass
class _State:
    tracks: list[_Track] = field(default_factory=list)
    next_id: int = 0


def _side_logit(hand: HandPose) -> float:
    if hand.handedness == "unknown":
        return 0.0
    p = min(max(hand.handedness_score, 0.5), 0.99)
    logit = math.log(p / (1.0 - p))
    return logit if hand.handedness == "right" else -logit


def _pair_cost(track: _Track, predicted: np.ndarray, hand: HandPose, cfg: IdentityConfig) -> float:
    size = 0.5 * (hand_size_px(predicted) + hand_size_px(hand.joints_2d))
    cost = float(np.linalg.norm(predicted - hand.joints_2d, axis=1).mean()) / size
    side = _side_logit(hand)
    if abs(track.side_logodds) > 2.0 and side * track.side_logodds < 0:
        cost += cfg.handedness_penalty
    return cost


def best_assignment(cost: np.ndarray, max_cost: float) -> list[tuple[int, int]]:
    """Minimum-total-cost matching (rows = tracks, cols = detections) with gating.

    Exhaustive over permutations for the handful of hands a frame holds (<= 4 x 4), greedy beyond.
    """
    n_t, n_d = cost.shape
    if n_t == 0 or n_d == 0:
        return []
    gated = np.where(cost <= max_cost, cost, np.inf)
    if max(n_t, n_d) <= 5:
        best: list[tuple[int, int]] = []
        best_key = (0, 0.0)
        k = min(n_t, n_d)
        for rows in itertools.combinations(range(n_t), k):
            for cols in itertools.permutations(range(n_d), k):
                pairs = [(r, c) for r, c in zip(rows, cols) if np.isfinite(gated[r, c])]
                key = (len(pairs), -sum(gated[r, c] for r, c in pairs))
                if key > best_key:
                    best, best_key = pairs, key
        return best
    pairs = []
    used_r: set[int] = set()
    used_c: set[int] = set()
    for flat in np.argsort(gated, axis=None):
        r, c = divmod(int(flat), n_d)
        if not np.isfinite(gated[r, c]):
            break
        if r not in used_r and c not in used_c:
            pairs.append((r, c))
            used_r.add(r)
            used_c.add(c)
    return pairs


class IdentityTracker:
    """Pipeline stage: assigns stable ``track_id`` and stabilised ``handedness`` to the hands of a view.

    State (the tracks) lives in this object and is only touched by ``__call__``; one tracker per view.
    """

    def __init__(self, config: IdentityConfig = IdentityConfig()) -> None:
        self.config = config
        self._state = _State()

    def reset(self) -> None:
        self._state = _State()

    def _suppress_duplicates(self, hands: list[HandPose]) -> list[HandPose]:
        keep: list[HandPose] = []
        for hand in sorted(hands, key=lambda h: -h.score):
            size = hand_size_px(hand.joints_2d)
            if all(
                np.linalg.norm(hand.joints_2d - k.joints_2d, axis=1).mean() / size > self.config.duplicate_cost
                for k in keep
            ):
                keep.append(hand)
        return keep

    def __call__(self, frameset: FrameSet, hands: list[HandPose]) -> list[HandPose]:
        cfg = self.config
        state = self._state
        t = frameset.timestamp
        hands = self._suppress_duplicates(hands)
        state.tracks = [tr for tr in state.tracks if t - tr.timestamp <= cfg.max_age_s]
        predicted = [tr.predict(t, cfg.max_velocity_dt_s) for tr in state.tracks]
        cost = np.array(
            [[_pair_cost(tr, p, h, cfg) for h in hands] for tr, p in zip(state.tracks, predicted)]
        ).reshape(len(state.tracks), len(hands))
        matches = dict((c, r) for r, c in best_assignment(cost, cfg.max_cost))

        out: list[HandPose] = []
        for d, hand in enumerate(hands):
            if d in matches:
                track = state.tracks[matches[d]]
                dt = t - track.timestamp
                if 0.0 < dt <= cfg.max_velocity_dt_s:
                    track.velocity = 0.5 * track.velocity + 0.5 * (hand.joints_2d - track.joints_2d) / dt
                else:
                    track.velocity = np.zeros_like(hand.joints_2d)
                track.joints_2d = hand.joints_2d
                track.timestamp = t
                track.hits += 1
            else:
                track = _Track(state.next_id, hand.joints_2d, np.zeros_like(hand.joints_2d), t)
                state.next_id += 1
                state.tracks.append(track)
            track.side_logodds = cfg.handedness_decay * track.side_logodds + _side_logit(hand)
            p_right = 1.0 / (1.0 + math.exp(-track.side_logodds))
            side = "right" if p_right >= 0.5 else "left"
            if track.side_logodds == 0.0:
                side = hand.handedness
            out.append(
                hand.replace(
                    track_id=track.track_id,
                    handedness=side,
                    handedness_score=max(p_right, 1.0 - p_right),
                )
            )
        return sorted(out, key=lambda h: h.track_id)
