import numpy as np
import pytest

from models.temporal import (
    TemporalError,
    adaptive_local_polynomial,
    local_speed,
    local_polynomial,
    loo_score,
    segments,
    window_average,
)


def walk(t: int = 60, joints: int = 5, seed: int = 0, speed: float = 0.05) -> np.ndarray:
    """A smooth (T, J, 3) trajectory in mm."""
    time = np.arange(t)[:, None, None]
    phase = np.random.default_rng(seed).uniform(0, 6, (1, joints, 3))
    return 40 * np.sin(speed * time + phase) + 300


def test_segments_explicit_jump_and_nan():
    x = walk(30)
    x[10:] += 200.0  # a jump of 200 mm
    x[20] = np.nan  # lost track
    assert segments(x) == [(0, 20), (21, 30)]
    assert segments(x, jump=50.0) == [(0, 10), (10, 20), (21, 30)]
    assert segments(x, cuts=(5, 0, 99), jump=50.0) == [(0, 5), (5, 10), (10, 20), (21, 30)]
    x[21] = np.nan
    x[29, 0, 0] = np.inf
    assert segments(x) == [(0, 20), (22, 29)]


@pytest.mark.parametrize("smooth", [lambda x, **kw: window_average(x, 3, **kw),
                                    lambda x, **kw: local_polynomial(x, 4, 2, **kw)])
def test_filters_do_not_cross_cuts(smooth):
    x = walk(40)
    y = x.copy()
    y[20:] += 500.0  # a second segment far away
    out_cut = smooth(y, cuts=(20,))
    # each segment filtered alone gives the same result: nothing leaked across the cut
    np.testing.assert_allclose(out_cut[:20], smooth(y[:20]), atol=1e-9)
    np.testing.assert_allclose(out_cut[20:], smooth(y[20:]), atol=1e-9)
    np.testing.assert_allclose(smooth(y, jump=100.0), out_cut, atol=1e-9)  # automatic cut
    mixed = smooth(y)  # without the cut the frames next to it are pulled across
    assert np.abs(mixed[19] - y[19]).max() > 50.0


@pytest.mark.parametrize("smooth", [lambda x: window_average(x, 2), lambda x: local_polynomial(x, 3, 2)])
def test_nan_frames_stay_nan_and_split(smooth):
    x = walk(30)
    x[12] = np.nan
    out = smooth(x)
    assert np.isnan(out[12]).all()
    assert np.isfinite(np.delete(out, 12, axis=0)).all()
    np.testing.assert_allclose(out[:12], smooth(x[:12]), atol=1e-9)
    np.testing.assert_allclose(out[13:], smooth(x[13:]), atol=1e-9)


def test_window_average_values():
    x = np.arange(6, dtype=float).reshape(6, 1, 1) ** 2  # 0 1 4 9 16 25
    out = window_average(x, 1)[:, 0, 0]
    np.testing.assert_allclose(out, [0.5, 5 / 3, 14 / 3, 29 / 3, 50 / 3, 20.5])
    np.testing.assert_array_equal(window_average(x, 0), x)


def test_local_polynomial_keeps_polynomials_and_reduces_noise():
    t = np.arange(50, dtype=float)
    quad = (0.05 * t**2 - 2 * t + 7)[:, None, None] * np.ones((1, 3, 3))
    np.testing.assert_allclose(local_polynomial(quad, 5, 2), quad, atol=1e-8)  # degree 2 is reproduced
    clean = walk(200)
    noisy = clean + np.random.default_rng(1).normal(0, 3, clean.shape)
    err = lambda a: np.linalg.norm(a - clean, axis=-1).mean()
    assert err(local_polynomial(noisy, 5, 2)) < 0.6 * err(noisy)
    assert err(window_average(noisy, 3)) < 0.6 * err(noisy)


def test_auto_width_follows_noise_level():
    clean = walk(300, seed=2, speed=0.3)
    rng = np.random.default_rng(3)
    widths = (1, 2, 4, 8)
    pick = lambda x: min(widths, key=lambda h: loo_score(x, h))
    quiet, loud = pick(clean + rng.normal(0, 0.2, clean.shape)), pick(clean + rng.normal(0, 8, clean.shape))
    assert loud > quiet
    noisy = clean + rng.normal(0, 8, clean.shape)
    np.testing.assert_allclose(local_polynomial(noisy, "auto", widths=widths), local_polynomial(noisy, pick(noisy)))


def test_misuse():
    with pytest.raises(TemporalError):
        window_average(walk(5), -1)
    with pytest.raises(TemporalError):
        local_polynomial(walk(5), -2)
    with pytest.raises(TemporalError):
        local_polynomial(np.zeros(4), 1)


def _oscillation(t: int, period: float, amplitude: float, joints: int = 5) -> np.ndarray:
    """(T, J, 3) mm: every joint swings along x with ``amplitude`` mm and ``period`` frames."""
    time = np.arange(t)[:, None]
    x = np.zeros((t, joints, 3))
    x[..., 0] = amplitude * np.sin(2 * np.pi * time / period + np.arange(joints) * 0.3)
    return x + 400.0


def test_adaptive_filter_keeps_a_fast_motion():
    """A 30 mm swing every 6 frames (ICVL-like fast motion) with 1 mm noise: a fixed window flattens it,
    the adaptive filter keeps it (error no worse than the input's, amplitude kept)."""
    truth = _oscillation(120, 6.0, 30.0)
    noisy = truth + np.random.default_rng(1).normal(0, 1.0, truth.shape)
    err = lambda y: float(np.linalg.norm(y - truth, axis=-1).mean())  # noqa: E731
    amp = lambda y: float(np.ptp(y[20:-20, :, 0], axis=0).mean())  # noqa: E731
    fixed = window_average(noisy, 2)
    assert amp(fixed) < 0.6 * amp(truth)  # the case the adaptive step must survive
    out = adaptive_local_polynomial(noisy, motion_mm=6.0)
    assert err(out) <= 1.02 * err(noisy)
    assert amp(out) > 0.95 * amp(truth)


def test_adaptive_filter_smooths_slow_stretches_only():
    """Slow first half, fast second half, 2 mm noise: the slow half loses most of its noise, the fast
    half keeps its motion."""
    slow = walk(80, speed=0.02)
    fast = _oscillation(80, 5.0, 25.0) - 400.0 + slow[-1]
    truth = np.concatenate([slow, fast])
    noisy = truth + np.random.default_rng(2).normal(0, 2.0, truth.shape)
    out = adaptive_local_polynomial(noisy, motion_mm=6.0)
    err = lambda y, s: float(np.linalg.norm(y[s] - truth[s], axis=-1).mean())  # noqa: E731
    first, second = slice(5, 75), slice(85, 155)
    assert err(out, first) < 0.7 * err(noisy, first)
    assert err(out, second) <= 1.05 * err(noisy, second)
    speed = local_speed(truth)
    assert speed[first].max() < 2.0 < speed[second].min()


def test_adaptive_filter_misuse_and_identity():
    x = walk(20)
    np.testing.assert_allclose(adaptive_local_polynomial(x, motion_mm=0.0), x)
    np.testing.assert_allclose(adaptive_local_polynomial(x[:2]), x[:2])
    with pytest.raises(TemporalError):
        adaptive_local_polynomial(x, motion_mm=-1.0)
