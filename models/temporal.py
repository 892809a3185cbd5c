"""Offline (non-causal) temporal filters over joint sequences that respect cut points.

For recordings and prediction files, where the whole sequence is known: each output frame may use
past *and* future frames. Every filter works on ``(T, J, 3)`` (any unit, usually mm) and never mixes
frames of different **segments**. A segment ends

* at an explicit cut index (``cuts``: 0-based frame indices where a new segment *starts*, e.g. a scene
  change or :data:`models.benchmark_data.CUT_POINTS`),
* at a jump: the mean joint displacement between two consecutive frames exceeds ``jump`` (same unit
  as the input; None = no automatic cuts),
* around a lost frame: a frame with any non-finite value is a lost track; it stays NaN in the output
  and the frames on either side belong to different segments.

Filters:

* :func:`window_average`: centred moving average over ``±k`` frames (HANDS 2019, Hrúz et al.: k = 3),
  the window shrinking at segment ends.
* :func:`local_polynomial`: tricube-weighted local polynomial regression (LOESS, degree 2 by
  default) over ``±half_width`` frames, which follows accelerating motion without the lag / flattening
  of an average and fits the segment ends without bias towards the inside. ``half_width="auto"``
  picks the width per sequence by leave-one-out cross-validation **on the input itself** (no ground
  truth: independent per-frame noise is exactly what the left-out frame cannot predict), so a noisy
  estimator is smoothed more than a clean one.

* :func:`adaptive_local_polynomial`: the same local fit with a half-width chosen **per frame** from
  the sequence's own speed (:func:`local_speed`): at most ``motion_mm`` of motion on each side, so a
  fast movement is kept and a slow stretch is smoothed (the default of ``python -m models.refine``).

The causal (live) counterpart is the One Euro filter in :mod:`tracker.post.one_euro` /
:class:`tracker.post.smoothing.TemporalSmoother`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from tracker.core.errors import HandtrackError

__all__ = ["TemporalError", "segments", "window_average", "local_polynomial", "loo_score", "AUTO_WIDTHS",
           "DEFAULT_MOTION_MM", "local_speed", "adaptive_local_polynomial"]

#: Candidate half-widths (frames) of ``local_polynomial(..., half_width="auto")``.
AUTO_WIDTHS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10)


class TemporalError(HandtrackError, ValueError):
    """Bad input to a temporal filter (the message says what is expected)."""


def _check(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim < 2:
        raise TemporalError(f"expected a sequence (T, ...) of frames, got shape {a.shape}")
    return a


def segments(x: np.ndarray, cuts: Sequence[int] = (), jump: float | None = None) -> list[tuple[int, int]]:
    """Split a sequence into runs of valid frames.

    Args:
        x: ``(T, J, 3)`` (or ``(T, ...)``) frames; a frame with any non-finite value is lost.
        cuts: 0-based indices where a new segment starts (out-of-range ones are ignored).
        jump: mean per-joint displacement between consecutive frames above which a new segment
            starts (unit of ``x``); None = no automatic cuts.

    Returns:
        ``[(start, stop), ...]`` half-open frame ranges, in order, covering every valid frame once.
    """
    a = _check(x)
    t = a.shape[0]
    flat = a.reshape(t, -1, a.shape[-1]) if a.ndim >= 3 else a.reshape(t, -1, 1)
    valid = np.isfinite(flat).all(axis=(1, 2))
    starts = np.zeros(t, bool)
    for c in cuts:
        if 0 < int(c) < t:
            starts[int(c)] = True
    if jump is not None and t > 1:
        step = np.linalg.norm(np.diff(flat, axis=0), axis=-1).mean(axis=-1)  # NaN next to lost frames
        starts[1:] |= np.nan_to_num(step, nan=0.0) > jump
    out = []
    begin = None
    for i in range(t):
        if not valid[i]:
            if begin is not None:
                out.append((begin, i))
                begin = None
            continue
        if begin is None:
            begin = i
        elif starts[i]:
            out.append((begin, i))
            begin = i
    if begin is not None:
        out.append((begin, t))
    return out


def _apply_per_segment(x: np.ndarray, cuts: Sequence[int], jump: float | None, fn) -> np.ndarray:
    a = _check(x)
    out = np.full_like(a, np.nan)
    for s, e in segments(a, cuts, jump):
        out[s:e] = fn(a[s:e])
    return out


def window_average(x: np.ndarray, k: int = 3, cuts: Sequence[int] = (), jump: float | None = None) -> np.ndarray:
    """Centred moving average over ``±k`` frames inside each segment (HANDS 2019 temporal averaging).

    Args:
        x: ``(T, J, 3)`` joints (unit kept).
        k: half-width in frames (0 = identity).
        cuts, jump: segment boundaries, see :func:`segments`.

    Returns:
        ``(T, J, 3)``; lost (non-finite) frames stay NaN.
    """
    if k < 0:
        raise TemporalError(f"k must be >= 0, got {k}")

    def avg(seg: np.ndarray) -> np.ndarray:
        n = len(seg)
        c = np.concatenate([np.zeros((1,) + seg.shape[1:]), np.cumsum(seg, axis=0)])
        idx = np.arange(n)
        lo, hi = np.maximum(idx - k, 0), np.minimum(idx + k + 1, n)
        shape = (n,) + (1,) * (seg.ndim - 1)
        return (c[hi] - c[lo]) / (hi - lo).reshape(shape)

    return _apply_per_segment(x, cuts, jump, avg)


@lru_cache(maxsize=512)
def _equivalent_kernel(left: int, right: int, half_width: int, degree: int) -> np.ndarray:
    """Weights over offsets ``-left..right`` whose dot product with the samples is the local fit at 0."""
    s = np.arange(-left, right + 1, dtype=np.float64)
    w = (1.0 - (np.abs(s) / (half_width + 1.0)) ** 3) ** 3
    deg = min(degree, left + right)  # too few samples near a short segment's ends: lower the degree
    a = np.vander(s, deg + 1, increasing=True) * np.sqrt(w)[:, None]
    return np.linalg.pinv(a)[0] * np.sqrt(w)


def _local_poly_segment(seg: np.ndarray, h: int, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed segment and the diagonal of its smoother matrix (``(n,)``)."""
    n = len(seg)
    flat = seg.reshape(n, -1)
    out = np.empty_like(flat)
    diag = np.empty(n)
    interior = _equivalent_kernel(h, h, h, degree)
    if n > 2 * h:  # interior frames: one kernel, as a correlation
        windows = np.lib.stride_tricks.sliding_window_view(flat, 2 * h + 1, axis=0)  # (n-2h, D, 2h+1)
        out[h : n - h] = windows @ interior
        diag[h : n - h] = interior[h]
        edge = list(range(h)) + list(range(n - h, n))
    else:
        edge = list(range(n))
    for t in edge:
        left, right = min(h, t), min(h, n - 1 - t)
        kern = _equivalent_kernel(left, right, h, degree)
        out[t] = kern @ flat[t - left : t + right + 1]
        diag[t] = kern[left]
    return out.reshape(seg.shape), diag


def loo_score(x: np.ndarray, half_width: int, degree: int = 2, cuts: Sequence[int] = (),
              jump: float | None = None) -> float:
    """Leave-one-out mean squared prediction error of :func:`local_polynomial` on ``x`` itself.

    For a linear smoother ``y = S x`` the left-out residual is ``(x_t - y_t) / (1 - S_tt)``; frames
    where ``S_tt`` is ~1 (single-frame segments) do not count. Unit: squared unit of ``x``.
    """
    a = _check(x)
    total, count = 0.0, 0
    for s, e in segments(a, cuts, jump):
        y, d = _local_poly_segment(a[s:e], half_width, degree)
        ok = d < 0.999
        r = (a[s:e] - y)[ok] / (1.0 - d[ok]).reshape((-1,) + (1,) * (a.ndim - 1))
        total += float((r**2).sum())
        count += int(r.size)
    return total / count if count else float("inf")


def local_polynomial(x: np.ndarray, half_width: int | str = "auto", degree: int = 2, cuts: Sequence[int] = (),
                     jump: float | None = None, widths: Sequence[int] = AUTO_WIDTHS) -> np.ndarray:
    """Tricube-weighted local polynomial smoothing (LOESS) inside each segment.

    Args:
        x: ``(T, J, 3)`` joints (unit kept).
        half_width: frames on each side (0 = identity), or ``"auto"``: the value of ``widths`` with the
            lowest :func:`loo_score` on ``x`` (one width for the whole sequence).
        degree: polynomial degree (0 = weighted average, 1 = linear, 2 = quadratic).
        cuts, jump: segment boundaries, see :func:`segments`.
        widths: candidates for ``"auto"``.

    Returns:
        ``(T, J, 3)``; lost (non-finite) frames stay NaN.
    """
    if degree < 0:
        raise TemporalError(f"degree must be >= 0, got {degree}")
    if half_width == "auto":
        if not widths:
            raise TemporalError("widths must name at least one candidate half-width")
        half_width = min(widths, key=lambda h: loo_score(x, int(h), degree, cuts, jump))
    if not isinstance(half_width, (int, np.integer)) or half_width < 0:
        raise TemporalError(f"half_width must be 'auto' or an int >= 0, got {half_width!r}")
    h = int(half_width)
    if h == 0:
        return _apply_per_segment(x, cuts, jump, lambda seg: seg.copy())
    return _apply_per_segment(x, cuts, jump, lambda seg: _local_poly_segment(seg, h, degree)[0])


#: Default motion budget of :func:`adaptive_local_polynomial`, mm: a frame is smoothed over at most
#: as many frames on each side as the hand needs to move this far (chosen by
#: ``scripts/eval_transfer.py``; see ``docs/postprocess_transfer.md``).
DEFAULT_MOTION_MM = 6.0


def local_speed(x: np.ndarray) -> np.ndarray:
    """Per-frame speed of a sequence, mm per frame (unit of ``x`` per frame): ``(T,)``.

    The mean over joints of the central difference ``|x[t+1] - x[t-1]| / 2`` (one-sided at the ends)
    of the input averaged over ``±1`` frames (so that per-frame noise counts less than motion), then
    the median over ``±2`` frames (one fast frame does not make its neighbours fast). Needs no
    ground truth. A sequence of one frame has speed 0.
    """
    a = _check(x)
    t = a.shape[0]
    if t < 2:
        return np.zeros(t)
    flat = a.reshape(t, -1, a.shape[-1]) if a.ndim >= 3 else a.reshape(t, -1, 1)
    pre = window_average(flat, 1)
    step = np.gradient(pre, axis=0)  # central differences inside, one-sided at the ends
    speed = np.linalg.norm(step, axis=-1).mean(axis=-1)
    padded = np.pad(speed, 2, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, 5), axis=-1)


def adaptive_local_polynomial(x: np.ndarray, motion_mm: float = DEFAULT_MOTION_MM, degree: int = 2,
                              cuts: Sequence[int] = (), jump: float | None = None,
                              widths: Sequence[int] = AUTO_WIDTHS) -> np.ndarray:
    """Local polynomial smoothing whose width follows the motion of the sequence at hand.

    Inside each segment (:func:`segments`), frame ``t`` gets half-width
    ``h_t = max{h in widths : h * speed_t <= motion_mm}`` (0 when none: the frame is kept as it
    is), where ``speed_t`` is :func:`local_speed` (mm/frame, of the input itself). A fast movement
    therefore keeps its frames (a fixed filter would flatten it: ICVL's fast motion made every fixed
    width hurt) and a slow stretch is smoothed over up to ``max(widths)`` frames on each side. The
    width is local: one fast gesture does not stop the rest of the file from being smoothed (a
    per-file width, as ``local_polynomial(..., "auto")``, is set by its noisiest or fastest part).

    Args:
        x: ``(T, J, 3)`` joints, mm.
        motion_mm: how far (mm, mean over joints) the hand may move within one side of a window.
        degree: polynomial degree of the local fits.
        cuts, jump: segment boundaries, see :func:`segments`.
        widths: candidate half-widths (frames).

    Returns:
        ``(T, J, 3)`` mm; lost (non-finite) frames stay NaN.

    Raises:
        TemporalError: ``motion_mm < 0`` or no candidate width.
    """
    if motion_mm < 0 or not widths:
        raise TemporalError(f"need motion_mm >= 0 and at least one width, got {motion_mm}, {tuple(widths)}")
    cand = sorted({int(h) for h in widths if int(h) > 0})

    def smooth(seg: np.ndarray) -> np.ndarray:
        n = len(seg)
        if n < 3 or motion_mm == 0:
            return seg.copy()
        speed = local_speed(seg)
        out = seg.copy()
        chosen = np.zeros(n, dtype=int)
        for h in cand:  # increasing: each frame ends with the widest width its motion allows
            chosen[h * speed <= motion_mm] = h
        for h in set(chosen.tolist()) - {0}:
            fitted = _local_poly_segment(seg, h, degree)[0]
            out[chosen == h] = fitted[chosen == h]
        return out

    return _apply_per_segment(x, cuts, jump, smooth)
