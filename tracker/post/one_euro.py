"""Causal One Euro filter (Casiez, Roussel & Vogel, CHI 2012), vectorised over joints.

The filter is a first-order low-pass whose cut-off frequency rises with the signal's speed:
``cutoff = min_cutoff + beta * |dx/dt|``. Slow motion is smoothed hard (little jitter), fast
motion follows with little lag. Units: ``min_cutoff`` and ``d_cutoff`` in Hz; ``beta`` in
1 / (signal unit): with joints in pixels or millimetres (the two are of similar magnitude for a hand
at arm's length on a webcam), one parameter set serves both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["OneEuroParams", "OneEuroFilter", "SMOOTHING_PRESETS", "parse_smoothing"]


@dataclass(frozen=True)
class OneEuroParams:
    """Parameters of a One Euro filter.

    Attributes:
        min_cutoff: Hz, cut-off at rest; lower = smoother when still, more lag.
        beta: 1/unit, how fast the cut-off rises with speed; higher = less lag when moving.
        d_cutoff: Hz, cut-off of the low-pass on the speed estimate.
    """

    min_cutoff: float = 1.0
    beta: float = 0.02
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        if self.min_cutoff <= 0 or self.d_cutoff <= 0 or self.beta < 0:
            raise ValueError(f"One Euro needs min_cutoff > 0, d_cutoff > 0, beta >= 0; got {self}")


#: Named presets for ``--smoothing``; ``None`` turns smoothing off.
SMOOTHING_PRESETS: dict[str, OneEuroParams | None] = {
    "off": None,
    "low": OneEuroParams(min_cutoff=3.0, beta=0.05),
    "medium": OneEuroParams(min_cutoff=1.5, beta=0.02),
    "high": OneEuroParams(min_cutoff=0.5, beta=0.01),
}


def parse_smoothing(text: str) -> OneEuroParams | None:
    """Parse a preset name (off/low/medium/high) or ``MIN_CUTOFF,BETA[,D_CUTOFF]``."""
    key = text.strip().lower()
    if key in SMOOTHING_PRESETS:
        return SMOOTHING_PRESETS[key]
    try:
        values = [float(v) for v in key.split(",")]
    except ValueError:
        values = []
    if len(values) not in (2, 3):
        raise ValueError(
            f"--smoothing takes one of {', '.join(SMOOTHING_PRESETS)} or MIN_CUTOFF,BETA[,D_CUTOFF] "
            f"(e.g. 1.0,0.02), got {text!r}"
        )
    return OneEuroParams(*values)


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Smoothing factor of an exponential low-pass with ``cutoff`` Hz at time step ``dt`` s."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One Euro filter over an array of any fixed shape (e.g. ``(21, 3)`` joints), element-wise.

    Non-finite input elements are treated as missing: they pass through as NaN and leave that
    element's state untouched, so one bad estimate does not poison the following frames.
    """

    def __init__(self, params: OneEuroParams) -> None:
        self.params = params
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def reset(self) -> None:
        self._x = self._dx = self._t = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filter sample ``x`` taken at time ``t`` (seconds, increasing). Returns the filtered copy."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._x.shape != x.shape:
            self._x = x.copy()
            self._dx = np.zeros_like(x)
            self._t = t
            return x.copy()
        assert self._dx is not None and self._t is not None
        dt = t - self._t
        if dt <= 0.0:  # repeated or out-of-order timestamp: nothing to integrate over
            dt = 1e-3
        self._t = t
        valid = np.isfinite(x)
        # Missing elements are treated as unseen: a NaN anywhere must not enter the state.
        prev = np.where(np.isfinite(self._x), self._x, x)
        dx = np.where(valid, (x - prev) / dt, 0.0)
        a_d = _alpha(self.params.d_cutoff, dt)
        dx_hat = a_d * dx + (1.0 - a_d) * self._dx
        cutoff = self.params.min_cutoff + self.params.beta * np.abs(dx_hat)
        a = _alpha(cutoff, dt)
        x_hat = a * x + (1.0 - a) * prev
        self._x = np.where(valid, x_hat, self._x)
        self._dx = np.where(valid, dx_hat, self._dx)
        return np.where(valid, x_hat, np.nan)
