"""The cross-modal estimator stage (``--estimator crossmodal``) with the shipped model, the real MediaPipe
landmarker and rendered RGB-D frames: RGB-only and RGB-D hands, the decoded surface, bad model files,
non-finite outputs."""

from __future__ import annotations

import numpy as np
import pytest

from models.crossmodal import load_weights
from models.registry import shipped_path
from tracker.build import build_pipeline
from tracker.config import TrackerConfig, override
from tracker.core.errors import ModelError
from tracker.core.metrics import procrustes_align
from tracker.core.structures import HandPose, Intrinsics
from tracker.stages.crossmodal import CrossModalEstimator, CrossModalStageConfig
from tracker.stages.lift import LiftConfig, MetricLifter


@pytest.fixture(scope="module")
def results(synthetic_frameset):  # noqa: ANN001, ANN201
    """Frames 0-5 of one rendered single-hand sequence through the crossmodal and the MediaPipe pipelines,
    with depth and without: ``{(estimator, depth): [FrameResult]}`` plus the frame sets."""
    framesets = [synthetic_frameset(42, t=t, num_frames=6, layout="single") for t in range(6)]
    out: dict = {"framesets": framesets}
    for estimator in ("crossmodal", "mediapipe"):
        for depth in (True, False):
            pipeline = build_pipeline(override(TrackerConfig(), **{"depth.estimator": estimator,
                                                                   "landmarks.max_hands": 1}))  # fmt: skip
            try:
                out[estimator, depth] = [pipeline(fs if depth else fs.without_depth()) for fs in framesets]
            finally:
                pipeline.close()
    return out


@pytest.mark.parametrize("depth", [True, False])
def test_estimator_places_a_generated_hand_with_a_surface(results, depth: bool) -> None:  # noqa: ANN001
    found = 0
    for fs, res in zip(results["framesets"], results["crossmodal", depth]):
        if not res.hands or res.hands[0].joints_local is None:  # none, or V2V-PoseNet's (RGB missed it)
            continue
        found += 1
        hand, truth = res.hands[0], fs.frames[0].ground_truth.joints_3d[0]
        assert hand.joints_3d is not None and np.isfinite(hand.joints_3d).all()
        shape_err = np.linalg.norm(procrustes_align(hand.joints_3d, truth) - truth, axis=1).mean()
        assert shape_err < 15.0
        if depth:  # RGB alone: the metric lift's scale ambiguity leaves the distance tens of mm off
            assert np.linalg.norm(hand.joints_3d - truth, axis=1).mean() < 20.0
        assert hand.surface is not None and hand.surface.shape[1] == 3 and np.isfinite(hand.surface).all()
        # the decoded surface lies on the placed hand (around its joints, the wrist and forearm stub
        # included) and, with depth, on the surface the depth camera sees
        assert np.linalg.norm(hand.surface.mean(axis=0) - hand.joints_3d.mean(axis=0)) < 80.0
        assert np.ptp(hand.surface, axis=0).max() < 300.0
        if depth:
            frame = fs.frames[0]
            uv = np.round(frame.camera.intrinsics.project(hand.surface)).astype(int)
            inside = (uv >= 0).all(axis=1) & (uv[:, 0] < frame.depth.shape[1]) & (uv[:, 1] < frame.depth.shape[0])
            z = frame.depth[uv[inside, 1], uv[inside, 0]].astype(float)
            seen = z > 0
            assert inside.mean() > 0.9 and np.median(np.abs(hand.surface[inside][seen, 2] - z[seen])) < 20.0
    assert found >= 3


def test_crossmodal_changes_mediapipes_shape_and_uses_the_depth(results) -> None:  # noqa: ANN001
    for a, b, c in zip(results["crossmodal", True], results["crossmodal", False], results["mediapipe", False]):
        if all(r.hands and r.hands[0].joints_local is not None for r in (a, b, c)):
            assert not np.allclose(b.hands[0].joints_local, c.hands[0].joints_local, atol=1.0)  # RGB: a new shape
            assert not np.allclose(a.hands[0].joints_local, b.hands[0].joints_local, atol=0.5)  # depth is fused in
            assert c.hands[0].surface is None


def test_non_finite_output_keeps_mediapipes_shape(results, caplog: pytest.LogCaptureFixture) -> None:  # noqa: ANN001
    model = load_weights(shipped_path("crossmodal"))
    with __import__("torch").no_grad():
        next(model.pose.parameters()).fill_(float("nan"))
    stage = CrossModalEstimator(CrossModalStageConfig(), model=model)
    fs = results["framesets"][0]
    hand = next(r.hands[0] for r in results["mediapipe", False] if r.hands)
    out = stage(fs, [hand])
    assert out[0] is hand or np.array_equal(out[0].joints_local, hand.joints_local)
    assert out[0].surface is None
    assert "non-finite" in caplog.text


def test_missing_or_corrupt_weights_fail_at_build(tmp_path) -> None:  # noqa: ANN001
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    for path in (bad, tmp_path / "missing.pt"):
        cfg = override(TrackerConfig(), **{"depth.estimator": "crossmodal", "depth.crossmodal.weights": path})
        with pytest.raises(ModelError, match="--estimator crossmodal"):
            build_pipeline(cfg)


def test_lift_moves_the_surface_with_the_joints() -> None:
    rng = np.random.default_rng(3)
    local = rng.normal(0.0, 40.0, (21, 3))
    intr = Intrinsics(500.0, 500.0, 320.0, 240.0, 640, 480)
    truth = local + [80.0, -40.0, 500.0]
    uv = intr.project(truth)
    hand = HandPose(joints_2d=uv, confidence=np.ones(21), timestamp=0.0, joints_local=local, surface=local[:5] * 1.0)
    for align in ("ray", "none"):
        out = MetricLifter(LiftConfig(align=align)).lift(hand, intr)
        assert np.allclose(out.surface, out.joints_3d[:5], atol=1e-9)


def test_rgb_blend_mixes_the_model_and_mediapipes_shapes(results) -> None:  # noqa: ANN001
    fs = results["framesets"][-1].without_depth()
    hand = next(r.hands[0] for r in reversed(results["mediapipe", False]) if r.hands)
    model = load_weights(shipped_path("crossmodal"))
    shape = {b: CrossModalEstimator(CrossModalStageConfig(blend_rgb=b), model=model)(fs, [hand])[0].joints_local
             for b in (0.0, 0.5, 1.0)}  # fmt: skip
    mp = hand.joints_local - hand.joints_local[[0, 5, 9, 13, 17]].mean(axis=0)
    assert np.allclose(shape[0.0], mp, atol=1e-9)
    assert np.allclose(shape[0.5], (shape[0.0] + shape[1.0]) / 2, atol=1e-6)
    assert np.linalg.norm(shape[1.0] - mp, axis=1).mean() > 2.0  # the model does change the shape
    with pytest.raises(ValueError, match="blend"):
        CrossModalStageConfig(blend_rgb=1.5)
