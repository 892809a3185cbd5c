import numpy as np
import pytest

from models.temporal import (
    TemporalError,
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
