"""The MediaPipe stage on frames of the bundled demo recording (real models from the wheel)."""

import cv2
import numpy as np
import pytest

from tracker.core.structures import Camera, Frame, FrameSet, Intrinsics
from tracker.io.sources import DEMO_DIR
from tracker.stages.landmarks import EstimatorError, MediaPipeConfig, MediaPipeHands


@pytest.fixture(scope="module")
def demo_frames():
    cap = cv2.VideoCapture(str(DEMO_DIR / "demo.mp4"))
    frames = []
    for _ in range(20):
        ok, bgr = cap.read()
        assert ok
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames, np.load(DEMO_DIR / "demo_gt.npz")


@pytest.mark.parametrize("static", [False, True], ids=["tracking", "static"])
def test_detects_the_demo_hand_with_small_2d_error(demo_frames, static):
    frames, gt = demo_frames
    with MediaPipeHands(MediaPipeConfig(static_image_mode=static)) as stage:
        for i, rgb in enumerate(frames):
            hands = stage.detect(rgb, i / 30)
            assert len(hands) == 1, f"frame {i}"
            h = hands[0]
            err = np.linalg.norm(h.joints_2d - gt["joints_2d"][i], axis=1)
            assert err.mean() < 8.0, (i, err.mean())
            assert h.handedness == "right"  # anatomical: the demo is a right hand, camera not mirrored
            assert 0.5 <= h.score <= 1.0 and np.all((h.confidence > 0) & (h.confidence <= 1))
            local = h.joints_local
            assert local is not None and np.isfinite(local).all()
            # metric shape: wrist -> middle MCP of an adult hand, in mm
            assert 70 < np.linalg.norm(local[9] - local[0]) < 120


def test_mirrored_flag_swaps_labels(demo_frames):
    frames, _ = demo_frames
    with MediaPipeHands(MediaPipeConfig(mirrored=True, static_image_mode=True)) as stage:
        assert stage.detect(frames[0], 0.0)[0].handedness == "left"


def test_empty_image_has_no_hands_and_misuse_is_clear():
    stage = MediaPipeHands(MediaPipeConfig(static_image_mode=True))
    blank = np.full((240, 320, 3), 127, np.uint8)
    cam = Camera("c", Intrinsics.from_fov(320, 240))
    assert stage(FrameSet.single(Frame(blank, 0.0, 0, cam)), []) == []
    with pytest.raises(ValueError, match="RGB uint8"):
        stage.detect(blank.astype(np.float32), 0.0)
    with pytest.raises(ValueError, match="RGB uint8"):
        stage.detect(blank[..., 0], 0.0)
    stage.close()
    stage.close()
    with pytest.raises(EstimatorError, match="closed"):
        stage.detect(blank, 0.0)
