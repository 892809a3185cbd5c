import numpy as np
import pytest

from tracker.post.one_euro import OneEuroFilter, OneEuroParams, parse_smoothing


def run(f: OneEuroFilter, xs: np.ndarray, fps: float = 30.0) -> np.ndarray:
    return np.array([f(x, i / fps) for i, x in enumerate(xs)])


def test_first_sample_passes_through_and_constant_stays():
    f = OneEuroFilter(OneEuroParams())
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(f(x, 0.0), x)
    for k in range(1, 10):
        np.testing.assert_allclose(f(x, k / 30), x)


def test_reduces_jitter_on_static_signal():
    rng = np.random.default_rng(0)
    xs = 100.0 + rng.normal(0, 2.0, size=(300, 21, 2))
    out = run(OneEuroFilter(OneEuroParams(min_cutoff=1.0, beta=0.0)), xs)
    assert out[50:].std() < 0.4 * xs[50:].std()


def test_beta_reduces_lag_on_fast_motion():
    t = np.arange(90) / 30.0
    xs = (500.0 * t)[:, None]  # 500 units/s ramp
    lag_slow = np.abs(run(OneEuroFilter(OneEuroParams(1.0, 0.0)), xs) - xs)[-1, 0]
    lag_fast = np.abs(run(OneEuroFilter(OneEuroParams(1.0, 0.05)), xs) - xs)[-1, 0]
    assert lag_fast < 0.3 * lag_slow


def test_matches_scalar_reference():
    """Element-wise result equals a direct scalar implementation of Casiez et al.'s formulas."""
    p = OneEuroParams(min_cutoff=1.2, beta=0.03, d_cutoff=1.0)
    rng = np.random.default_rng(1)
    xs = np.cumsum(rng.normal(0, 3, size=50))
    ts = np.cumsum(rng.uniform(0.02, 0.05, size=50))

    def alpha(cutoff, dt):
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    ref = [xs[0]]
    x_prev, dx_prev = xs[0], 0.0
    for i in range(1, 50):
        dt = ts[i] - ts[i - 1]
        dx = (xs[i] - x_prev) / dt
        dx_hat = alpha(p.d_cutoff, dt) * dx + (1 - alpha(p.d_cutoff, dt)) * dx_prev
        a = alpha(p.min_cutoff + p.beta * abs(dx_hat), dt)
        x_prev = a * xs[i] + (1 - a) * x_prev
        dx_prev = dx_hat
        ref.append(x_prev)
    f = OneEuroFilter(p)
    out = [float(f(np.array([x]), t)[0]) for x, t in zip(xs, ts)]
    np.testing.assert_allclose(out, ref, rtol=1e-12)


def test_nan_does_not_poison_state():
    f = OneEuroFilter(OneEuroParams())
    f(np.array([1.0, 2.0]), 0.0)
    out = f(np.array([np.nan, 2.0]), 1 / 30)
    assert np.isnan(out[0]) and out[1] == pytest.approx(2.0)
    out = f(np.array([1.0, 2.0]), 2 / 30)
    assert np.isfinite(out).all() and out[0] == pytest.approx(1.0)


def test_parse_smoothing():
    assert parse_smoothing("off") is None
    assert parse_smoothing("1.0,0.02") == OneEuroParams(1.0, 0.02)
    assert parse_smoothing("2,0.1,0.5") == OneEuroParams(2.0, 0.1, 0.5)
    with pytest.raises(ValueError, match="MIN_CUTOFF"):
        parse_smoothing("silky")
    with pytest.raises(ValueError):
        parse_smoothing("-1,0.1")
