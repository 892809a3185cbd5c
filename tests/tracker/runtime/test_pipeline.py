"""Pipeline: stages run in order, each timed; non-finite joints are contained, not passed on."""

import numpy as np
import pytest

from tracker.runtime.pipeline import Pipeline


def test_stages_run_in_order_and_are_timed(blank_frameset, make_hand):
    calls = []

    def first(fs, hands):
        calls.append("first")
        return [make_hand(1.0, joints_3d=2.0)]

    def second(fs, hands):
        calls.append("second")
        assert len(hands) == 1
        return hands + [make_hand(3.0)]

    result = Pipeline([("first", first), ("second", second)])(blank_frameset(timestamp=1.5, index=3))
    assert calls == ["first", "second"]
    assert len(result.hands) == 2 and result.index == 3 and result.timestamp == 1.5
    assert set(result.timings_ms) == {"first", "second", "total"}
    assert all(v >= 0 for v in result.timings_ms.values())


def test_non_finite_output_is_contained(blank_frameset, make_hand, caplog):
    def bad(fs, hands):
        return [make_hand(np.nan, joints_3d=1.0), make_hand(5.0, joints_3d=np.nan), make_hand(6.0, joints_3d=7.0)]

    result = Pipeline([("bad", bad)])(blank_frameset())
    assert len(result.hands) == 2
    assert result.hands[0].joints_3d is None and result.hands[1].joints_3d is not None
    assert "non-finite 2D" in caplog.text and "non-finite 3D" in caplog.text


def test_stage_names_unique():
    with pytest.raises(ValueError, match="unique"):
        Pipeline([("a", lambda f, h: h), ("a", lambda f, h: h)])
