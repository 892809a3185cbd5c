"""Online gesture detection in a continuous stream of one hand's joints (causal, sliding windows).

Every ``hop`` frames the detector looks back over several window lengths (``windows_s``), turns each
window into a clip (:mod:`models.gestures.features`) and scores all of them with the recogniser in
one batch. A window is a *candidate* for its best class when

* enough of it is there (``min_coverage`` of its frames have the hand),
* it holds a whole motion: the hand is slower at both ends of the window than ``edge_ratio`` x its
  peak speed in it (from rest to rest; a part of a gesture is not a candidate),
* the hand moved during it: its motion extent (:func:`motion_extent`: how far the joints move
  around their mean positions, in hand sizes; sensor jitter of a few mm barely counts, unlike a
  speed) reaches ``min_motion``, so an idle or resting hand never fires, and
* its score for the class (the recogniser's ``window_scores``: the probability that the window is
  that gesture, the network's "none" class and, for a custom gesture set, the similarity to the
  prototypes taken into account) reaches ``threshold``.

The best candidate so far is *pending*; a better-scoring candidate (of any label) replaces it. When
no better one has come for ``settle_hops`` hops (the scores peaked), the pending candidate is
emitted (causally) as the event, with its window's start and end frame. After an event, windows that
start before its end are ignored, and nothing is a candidate until the hand pauses (its last
``rest_s`` move less than ``rest_motion``) or ``refractory_s`` has passed: one motion, one event.

Joints: mm, camera frame (OpenCV axes), 21 joints, NaN = missing. Frames are the caller's indices;
times in seconds.
"""

from __future__ import annotations

import warnings
from collections import deque
from dataclasses import dataclass

import numpy as np

from models.gestures.features import CLIP_FRAMES, hand_size
from models.gestures.recognizer import GestureRecognizer
from models.gestures.sequences import GestureSequence, resample
from tracker.core.joints import NUM_JOINTS
from tracker.core.structures import GestureEvent

__all__ = ["OnlineConfig", "OnlineDetector", "detect_sequence", "motion_extent"]


@dataclass(frozen=True)
class OnlineConfig:
    """Settings of :class:`OnlineDetector` (module docstring).

    Attributes:
        windows_s: window lengths looked back over, seconds.
        hop: frames between two looks.
        threshold: minimum class probability of a candidate.
        min_motion: minimum motion extent (hand sizes) of a candidate window.
        min_coverage: fraction of a window's frames that must hold the hand.
        settle_hops: hops without a better candidate before the pending one is emitted.
        history_s: how much of the stream is kept (>= the longest window).
        rest_s, rest_motion: after an event, no candidate until the last ``rest_s`` s move less
            than ``rest_motion`` hand sizes (the hand paused: the gesture is over) ...
        refractory_s: ... or this long after the event's end (gestures done back to back).
        edge_s, edge_ratio: a window is a candidate only when the hand is slower over its first and
            its last ``edge_s`` s than ``edge_ratio`` x its peak speed in the window: the window
            holds a whole gesture, from rest to rest, not a part of one (None: off).
    """

    windows_s: tuple[float, ...] = (0.7, 1.2, 2.0, 3.0)
    hop: int = 4
    threshold: float = 0.6
    min_motion: float = 0.12
    min_coverage: float = 0.7
    settle_hops: int = 5
    history_s: float = 3.5
    rest_s: float = 0.4
    rest_motion: float = 0.05
    refractory_s: float = 3.0
    edge_s: float = 0.2
    edge_ratio: float | None = 0.5

    def __post_init__(self) -> None:
        if not self.windows_s or min(self.windows_s) <= 0:
            raise ValueError(f"windows_s must be positive lengths, got {self.windows_s}")
        if self.hop < 1 or self.settle_hops < 1:
            raise ValueError("hop and settle_hops must be >= 1")
        if self.history_s < max(self.windows_s):
            raise ValueError("history_s must cover the longest window")


def motion_extent(joints: np.ndarray) -> float:
    """How much a window moves: the root-mean-square distance of each joint from its mean position over
    the window, averaged over the joints, in hand sizes (missing joints skipped; 0 for < 2 frames).
    Jitter of sigma mm adds about sigma * sqrt(3) / hand size (1 mm: 0.02); a 10 cm swipe ~0.35."""
    if len(joints) < 2:
        return 0.0
    with warnings.catch_warnings():  # a joint missing over the whole window: NaN, skipped below
        warnings.simplefilter("ignore", RuntimeWarning)
        dev = joints - np.nanmean(joints, axis=0, keepdims=True)
        rms = np.sqrt(np.nanmean(np.sum(dev**2, axis=-1), axis=0))  # (21,)
    rms = rms[np.isfinite(rms)]
    return float(np.mean(rms)) / hand_size(joints) if len(rms) else 0.0


def _rests_at_edges(joints: np.ndarray, times: np.ndarray, edge_s: float, ratio: float) -> bool:
    """Whether the hand's mean joint speed over the first and the last ``edge_s`` of the window is
    below ``ratio`` x its peak (over ~0.1 s) in the window."""
    if len(joints) < 4:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        speed = np.nanmean(np.linalg.norm(np.diff(joints, axis=0), axis=-1), axis=1) / np.diff(times)
    speed = np.nan_to_num(speed)
    k = max(1, int(round(0.1 / max(float(np.median(np.diff(times))), 1e-3))))
    smooth = np.convolve(speed, np.ones(k) / k, mode="same")
    t = times[1:]
    head, tail = smooth[t <= t[0] + edge_s], smooth[t >= t[-1] - edge_s]
    peak = smooth.max()
    return peak > 0 and head.mean() < ratio * peak and tail.mean() < ratio * peak


@dataclass
class _Pending:
    label: int
    score: float
    start_frame: int
    end_frame: int
    start_time: float
    end_time: float
    quiet: int = 0


class OnlineDetector:
    """Causal gesture detection on one hand's stream (module docstring).

    Args:
        recognizer: what scores the windows (shared between detectors).
        config: the settings.
    """

    def __init__(self, recognizer: GestureRecognizer, config: OnlineConfig = OnlineConfig()) -> None:
        self.recognizer = recognizer
        self.config = config
        self._frames: deque[int] = deque()
        self._times: deque[float] = deque()
        self._joints: deque[np.ndarray] = deque()
        self._since_hop = 0
        self._pending: _Pending | None = None
        self._blocked_until = -np.inf  # windows starting before this time are ignored (after an event)
        self._refractory = False  # after an event, until the hand pauses

    def reset(self) -> None:
        """Forget the stream."""
        self._frames.clear()
        self._times.clear()
        self._joints.clear()
        self._since_hop = 0
        self._pending = None
        self._blocked_until = -np.inf
        self._refractory = False

    def push(self, frame: int, timestamp: float, joints: np.ndarray) -> list[GestureEvent]:
        """Add one frame; returns the events completed now (usually none).

        Args:
            frame: the frame's index in the stream.
            timestamp: seconds; frames with a timestamp not after the last one are ignored.
            joints: ``(21, 3)`` mm, NaN = missing.
        """
        if not self.add(frame, timestamp, joints):
            return []
        wins = self.windows()
        scores = self.recognizer.window_scores([(j, d) for _, j, d in wins]) if wins else None
        return self.decide(wins, scores)

    def add(self, frame: int, timestamp: float, joints: np.ndarray) -> bool:
        """The first half of :meth:`push`: add one frame; True when a look is due now (then call
        :meth:`windows`, score them, and :meth:`decide`). Lets a caller score the windows of many
        detectors in one batch (:class:`tracker.post.gestures.GestureStage`)."""
        j = np.asarray(joints, np.float64)
        if j.shape != (NUM_JOINTS, 3):
            raise ValueError(f"joints must be ({NUM_JOINTS}, 3), got {j.shape}")
        if self._times and timestamp <= self._times[-1]:
            return False
        self._frames.append(int(frame))
        self._times.append(float(timestamp))
        self._joints.append(j)
        while self._times[-1] - self._times[0] > self.config.history_s:
            self._frames.popleft()
            self._times.popleft()
            self._joints.popleft()
        self._since_hop += 1
        if self._since_hop < self.config.hop:
            return False
        self._since_hop = 0
        return True

    def flush(self) -> list[GestureEvent]:
        """End of stream: emit the pending gesture, if any."""
        if self._pending is None:
            return []
        return [self._emit()]

    def windows(self) -> list[tuple[int, np.ndarray, float]]:
        """The windows to score now: (start index in the history, clip joints, duration s)."""
        c = self.config
        times = np.asarray(self._times)
        joints = np.stack(self._joints)
        present = np.isfinite(joints).all(axis=-1).any(axis=-1)
        period = float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / 30.0
        out: list[tuple[int, np.ndarray, float]] = []
        if self._refractory:  # after an event: wait for the hand to pause (or refractory_s to pass)
            a = int(np.searchsorted(times, times[-1] - c.rest_s - 1e-9))
            if motion_extent(joints[a:]) < c.rest_motion or times[-1] - self._blocked_until > c.refractory_s:
                self._refractory = False
            else:
                return out
        for w in c.windows_s:
            t0 = times[-1] - w
            if t0 < times[0] - period / 2 or t0 < self._blocked_until:
                continue
            a = int(np.searchsorted(times, t0 - 1e-9))
            if present[a:].mean() < c.min_coverage or motion_extent(joints[a:]) < c.min_motion:
                continue
            if c.edge_ratio is not None and not _rests_at_edges(joints[a:], times[a:], c.edge_s, c.edge_ratio):
                continue
            seq = GestureSequence(joints[a:], times[a:])
            out.append((a, resample(seq, np.linspace(times[a], times[-1], CLIP_FRAMES)), max(times[-1] - times[a], period)))
        return out

    def decide(self, wins: list[tuple[int, np.ndarray, float]], p: np.ndarray | None) -> list[GestureEvent]:
        """The second half of :meth:`push`: the :meth:`windows` and their ``window_scores`` ``(W, C)``
        (None when there were none) -> the events completed now."""
        events: list[GestureEvent] = []
        best = None
        if wins:
            k = p.argmax(axis=1)
            score = p[np.arange(len(wins)), k]
            good = [i for i in range(len(wins)) if score[i] >= self.config.threshold]
            if good:
                i = max(good, key=lambda i: score[i])
                a = wins[i][0]
                best = (int(k[i]), float(score[i]), self._frames[a], self._frames[-1], self._times[a], self._times[-1])
        if best is not None and (self._pending is None or best[1] > self._pending.score):
            self._pending = _Pending(*best)  # a new peak, of any label
            return events
        if self._pending is not None:
            self._pending.quiet += 1
            if self._pending.quiet >= self.config.settle_hops:
                events.append(self._emit())
        return events

    def _emit(self) -> GestureEvent:
        p = self._pending
        assert p is not None
        self._pending = None
        ev = GestureEvent(self.recognizer.names[p.label], p.score, p.start_frame, p.end_frame, p.start_time,
                          p.end_time)  # fmt: skip
        self._blocked_until = ev.end_time
        self._refractory = True
        return ev


def detect_sequence(recognizer: GestureRecognizer, seq: GestureSequence,
                    config: OnlineConfig = OnlineConfig()) -> list[GestureEvent]:  # fmt: skip
    """Run the online detector over a whole recorded stream (frame indices 0..T-1)."""
    det = OnlineDetector(recognizer, config)
    events = []
    for i, (t, j) in enumerate(zip(seq.timestamps, seq.joints)):
        events += det.push(i, float(t), j)
    return events + det.flush()
