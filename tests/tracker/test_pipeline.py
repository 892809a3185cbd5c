import numpy as np
import pytest

from tracker.core.joints import NUM_JOINTS
from tracker.runtime.pipeline import Pipeline
from tracker.core.structures import Camera, Frame, FrameSet, HandPose, Intrinsics

FS = FrameSet.single(Frame(np.zeros((48, 64, 3), np.uint8), 1.5, 3, Camera("c", Intrinsics(50, 50, 32, 24, 64, 48))))


def make(j2d: float, j3d: float | None) -> HandPose:
    return HandPose(
        np.full((NUM_JOINTS, 2), j2d), np.ones(NUM_JOINTS), 0.0,
        joints_3d=None if j3d is None else np.full((NUM_JOINTS, 3), j3d),
    )  # fmt: skip


def test_stages_run_in_order_and_are_timed():
    calls = []

    def first(fs, hands):
        calls.append("first")
        return [make(1.0, 2.0)]

    def second(fs, hands):
        calls.append("second")
        assert len(hands) == 1
        return hands + [make(3.0, None)]

    result = Pipeline([("first", first), ("second", second)])(FS)
    assert calls == ["first", "second"]
    assert len(result.hands) == 2 and result.index == 3 and result.timestamp == 1.5
    assert set(result.timings_ms) == {"first", "second", "total"}
    assert all(v >= 0 for v in result.timings_ms.values())


def test_non_finite_output_is_contained(caplog):
    def bad(fs, hands):
        return [make(np.nan, 1.0), make(5.0, np.nan), make(6.0, 7.0)]

    result = Pipeline([("bad", bad)])(FS)
    assert len(result.hands) == 2
    assert result.hands[0].joints_3d is None and result.hands[1].joints_3d is not None
    assert "non-finite 2D" in caplog.text and "non-finite 3D" in caplog.text


def test_stage_names_unique():
    with pytest.raises(ValueError, match="unique"):
        Pipeline([("a", lambda f, h: h), ("a", lambda f, h: h)])
