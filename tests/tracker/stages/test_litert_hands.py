"""The LiteRT hand stage: anchors, palm decoding, NMS and ROI geometry on constructed cases, and the
stage against MediaPipe's graph on the bundled demo (real models from the mediapipe wheel)."""

import math

import cv2
import numpy as np
import pytest

from tracker.core.errors import EstimatorError, ModelError
from tracker.core.structures import Camera, Frame, FrameSet, Intrinsics
from tracker.io.sources import DEMO_DIR
from tracker.stages.landmarks import MediaPipeConfig, MediaPipeHands
from tracker.stages.landmarks import LandmarkConfig
from tracker.stages.litert import LiteRTHands
from tracker.stages.litert.anchors import AnchorOptions, ssd_anchors
from tracker.stages.litert.palm import decode_palms, weighted_nms
from tracker.stages.litert.roi import (
    Roi,
    crop,
    crop_to_image,
    landmarks_to_roi,
    palm_to_roi,
    roi_iou,
)
from tracker.stages.litert.runtime import load_interpreter, mediapipe_model_path

N_FRAMES = 30


# ---------------------------------------------------------------- anchors


def test_palm_anchors_count_and_layout():
    a = ssd_anchors()
    # stride 8: 24x24 cells x 2 anchors (1 layer + its interpolated anchor); stride 16: 12x12 x 6 (3 layers)
    assert a.shape == (24 * 24 * 2 + 12 * 12 * 6, 4) == (2016, 4)
    np.testing.assert_allclose(a[:, 2:], 1.0)  # fixed_anchor_size
    np.testing.assert_allclose(a[0, :2], [0.5 / 24, 0.5 / 24])
    np.testing.assert_allclose(a[1, :2], [0.5 / 24, 0.5 / 24])  # 2 anchors share a cell
    np.testing.assert_allclose(a[2, :2], [1.5 / 24, 0.5 / 24])  # then x advances
    np.testing.assert_allclose(
        a[48, :2], [0.5 / 24, 1.5 / 24]
    )  # next row after 24 cells x 2
    np.testing.assert_allclose(a[1151, :2], [23.5 / 24, 23.5 / 24])
    np.testing.assert_allclose(a[1152:1158, :2], np.tile([0.5 / 12, 0.5 / 12], (6, 1)))
    np.testing.assert_allclose(a[1158, :2], [1.5 / 12, 0.5 / 12])
    np.testing.assert_allclose(a[-1, :2], [11.5 / 12, 11.5 / 12])


def test_anchor_sizes_follow_the_ssd_scales_when_not_fixed():
    a = ssd_anchors(AnchorOptions(fixed_anchor_size=False))
    lo, hi = 0.1484375, 0.75
    s = [
        lo + (hi - lo) * i / 3 for i in range(4)
    ]  # one scale per layer, linear in the layer index
    np.testing.assert_allclose(a[0, 2:], [s[0], s[0]], rtol=1e-6)
    np.testing.assert_allclose(
        a[1, 2:], [math.sqrt(s[0] * s[1])] * 2, rtol=1e-6
    )  # interpolated
    expected = [
        s[1],
        math.sqrt(s[1] * s[2]),
        s[2],
        math.sqrt(s[2] * s[3]),
        s[3],
        math.sqrt(s[3] * 1.0),
    ]
    np.testing.assert_allclose(a[1152:1158, 2], expected, rtol=1e-6)


# ---------------------------------------------------------------- decoding and NMS


def test_decode_palms_offsets_in_input_pixels_and_sigmoid_scores():
    anchors = ssd_anchors()
    raw = np.zeros((2016, 18), np.float32)
    logits = np.full(2016, -10.0, np.float32)
    i = 1158  # anchor centre (1.5/12, 0.5/12)
    raw[i, :4] = [19.2, -9.6, 48.0, 96.0]  # +0.1, -0.05 of the input; 0.25 x 0.5
    raw[i, 4:6] = [0.0, 19.2]  # wrist 0.1 below the anchor
    logits[i] = 1000.0  # clipped to 100 before the sigmoid: finite
    boxes, kps, scores = decode_palms(raw, logits, anchors, 192.0, 0.5)
    assert boxes.shape == (1, 4) and kps.shape == (1, 7, 2)
    cx, cy = 1.5 / 12 + 0.1, 0.5 / 12 - 0.05
    np.testing.assert_allclose(
        boxes[0], [cx - 0.125, cy - 0.25, cx + 0.125, cy + 0.25], atol=1e-6
    )
    np.testing.assert_allclose(kps[0, 0], [1.5 / 12, 0.5 / 12 + 0.1], atol=1e-6)
    np.testing.assert_allclose(
        kps[0, 1:], np.tile([1.5 / 12, 0.5 / 12], (6, 1)), atol=1e-6
    )
    assert scores[0] == pytest.approx(1.0)
    logits[i] = 0.0  # sigmoid 0.5: kept at min_score 0.5, dropped above
    assert decode_palms(raw, logits, anchors, 192.0, 0.5)[2][0] == pytest.approx(0.5)
    assert len(decode_palms(raw, logits, anchors, 192.0, 0.51)[2]) == 0


def test_weighted_nms_merges_an_overlapping_pair_and_keeps_distinct_boxes():
    boxes = np.array(
        [[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32
    )  # IoU(0, 1) = 9/11
    kps = np.zeros((3, 7, 2), np.float32)
    kps[0], kps[1], kps[2] = 1.0, 3.0, 7.0
    scores = np.array([0.6, 0.9, 0.8], np.float32)
    b, k, s = weighted_nms(boxes, kps, scores, 0.3)
    np.testing.assert_allclose(
        s, [0.9, 0.8]
    )  # the cluster keeps its best score; best first
    np.testing.assert_allclose(
        b[0], [(0 * 0.6 + 1 * 0.9) / 1.5, 0, (10 * 0.6 + 11 * 0.9) / 1.5, 10], rtol=1e-6
    )
    np.testing.assert_allclose(k[0], (1 * 0.6 + 3 * 0.9) / 1.5, rtol=1e-6)
    np.testing.assert_allclose(b[1], boxes[2])
    np.testing.assert_allclose(k[1], 7.0)
    # below the threshold nothing merges; max_detections caps the output
    b, _, s = weighted_nms(boxes, kps, scores, 0.9)
    np.testing.assert_allclose(s, [0.9, 0.8, 0.6])
    assert len(weighted_nms(boxes, kps, scores, 0.9, max_detections=1)[2]) == 1
    assert weighted_nms(boxes[:0], kps[:0], scores[:0])[0].shape == (0, 4)


# ---------------------------------------------------------------- ROI geometry


def _palm(wrist, mcp, box):
    kp = np.zeros((7, 2))
    kp[0], kp[2] = wrist, mcp
    return np.asarray(box, float), kp


def test_palm_roi_of_an_upright_hand():
    roi = palm_to_roi(
        *_palm((100, 200), (100, 120), (60, 110, 140, 190))
    )  # 80 x 80 box
    assert roi.rotation == pytest.approx(0.0)
    np.testing.assert_allclose(
        roi.center, [100, 150 - 0.5 * 80]
    )  # shifted towards the fingers
    assert roi.size == pytest.approx(2.6 * 80)


@pytest.mark.parametrize(
    "direction, angle", [(1, math.pi / 2), (-1, -math.pi / 2)], ids=["right", "left"]
)
def test_palm_roi_of_a_horizontal_hand(direction, angle):
    roi = palm_to_roi(
        *_palm((100, 100), (100 + 80 * direction, 100), (60, 80, 140, 120))
    )  # 80 wide, 40 high
    assert roi.rotation == pytest.approx(angle)
    # the shift is along the hand's own up axis (towards the fingers), half the box height
    np.testing.assert_allclose(roi.center, [100 + 0.5 * 40 * direction, 100], atol=1e-9)
    assert roi.size == pytest.approx(2.6 * 80)  # square on the long side


def test_landmark_roi_of_an_upright_hand():
    uv = np.zeros((21, 2))
    uv[0] = (100, 200)  # wrist
    uv[1:5] = (70, 180)  # thumb
    for base, x in zip((5, 9, 13, 17), (80, 95, 110, 125)):  # finger MCP, PIP, DIP, tip
        uv[base : base + 4] = np.stack([np.full(4, x), [150, 130, 120, 110]], axis=1)
    roi = landmarks_to_roi(uv)
    # rotation from the wrist to ((MCP5 + MCP13) / 2 + MCP9) / 2 = (95, 150), 5 px left of straight up:
    # a small negative (counter-clockwise on screen) angle, atan(5 / 50)
    assert roi.rotation == pytest.approx(-math.atan(5 / 50), abs=1e-9)
    turned = landmarks_to_roi(
        uv @ np.array([[0, 1], [-1, 0]]) + [400, 0]
    )  # the same hand turned 90 deg
    assert turned.rotation == pytest.approx(
        normalize(roi.rotation + math.pi / 2), abs=1e-9
    )
    assert turned.size == pytest.approx(roi.size)


def normalize(a):
    return (a + math.pi) % (2 * math.pi) - math.pi


def test_crop_is_the_inverse_of_crop_to_image():
    img = np.zeros((200, 300, 3), np.uint8)
    img[60, 210] = 255  # one bright pixel
    roi = Roi(np.array([200.0, 80.0]), 56.0, 0.7)
    patch = crop(img, roi, 224)
    assert (
        patch.shape == (224, 224, 3)
        and patch.dtype == np.float32
        and patch.max() <= 1.0
    )
    b, a = np.unravel_index(np.argmax(patch[..., 0]), patch.shape[:2])
    np.testing.assert_allclose(
        crop_to_image(np.array([a, b], float), roi, 224), [210, 60], atol=0.5
    )
    np.testing.assert_allclose(
        crop_to_image(np.array([112.0, 112.0]), roi, 224), roi.center
    )
    assert roi_iou(roi, roi) == pytest.approx(1.0)
    assert roi_iou(roi, Roi(roi.center + 100, 56.0, 0.0)) == 0.0


# ---------------------------------------------------------------- models and config


def test_missing_or_corrupt_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="nothing.tflite"):
        load_interpreter(tmp_path / "nothing.tflite", 1)
    bad = tmp_path / "garbage.tflite"
    bad.write_bytes(b"not a flatbuffer" * 10)
    with pytest.raises(ModelError, match="garbage.tflite"):
        load_interpreter(bad, 1)
    for kind in ("palm", "landmark"):
        for complexity in (0, 1):
            assert mediapipe_model_path(kind, complexity).is_file()


def test_config_adds_two_options_to_mediapipes():
    c = LandmarkConfig.from_mediapipe(
        MediaPipeConfig(max_hands=1, mirrored=True), redetect_every=3
    )
    assert (c.max_hands, c.mirrored, c.redetect_every, c.num_threads) == (1, True, 3, 2)
    with pytest.raises(ValueError, match="redetect_every"):
        LandmarkConfig(redetect_every=0)
    with pytest.raises(ValueError, match="num_threads"):
        LandmarkConfig(num_threads=0)
    with pytest.raises(ValueError, match="model_complexity"):
        LandmarkConfig(model_complexity=2)


# ---------------------------------------------------------------- the stage on the demo


@pytest.fixture(scope="module")
def demo():
    cap = cv2.VideoCapture(str(DEMO_DIR / "demo.mp4"))
    frames = []
    for _ in range(N_FRAMES):
        ok, bgr = cap.read()
        assert ok
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames, np.load(DEMO_DIR / "demo_gt.npz")["joints_2d"]


def test_stage_matches_mediapipe_on_the_demo(demo):
    frames, gt = demo
    diff, err_mp, err_lt = [], [], []
    with MediaPipeHands(MediaPipeConfig()) as mp, LiteRTHands(LandmarkConfig()) as lt:
        for i, rgb in enumerate(frames):
            a, b = mp.detect(rgb, i / 30), lt.detect(rgb, i / 30)
            assert len(a) == 1 and len(b) == 1, f"frame {i}"
            a, b = a[0], b[0]
            assert b.handedness == a.handedness == "right"
            assert b.score == pytest.approx(a.score, abs=0.02)
            np.testing.assert_allclose(b.confidence, a.confidence, atol=0.02)
            assert b.view == 0 and b.timestamp == i / 30
            diff.append(np.linalg.norm(b.joints_2d - a.joints_2d, axis=1).mean())
            assert (
                np.linalg.norm(b.joints_local - a.joints_local, axis=1).mean() < 2.0
            )  # mm
            err_mp.append(np.linalg.norm(a.joints_2d - gt[i], axis=1).mean())
            err_lt.append(np.linalg.norm(b.joints_2d - gt[i], axis=1).mean())
    # measured (30 frames, full models): 0.20 px mean / 0.39 px max from MediaPipe; GT error 3.12 px for both
    assert np.mean(diff) < 1.0 and np.max(diff) < 2.0, (np.mean(diff), np.max(diff))
    assert np.mean(err_lt) <= 1.02 * np.mean(err_mp), (np.mean(err_lt), np.mean(err_mp))


def test_mirrored_flag_swaps_labels_and_static_mode_keeps_no_tracks(demo):
    frames, _ = demo
    with LiteRTHands(LandmarkConfig(mirrored=True, static_image_mode=True)) as lt:
        assert lt.detect(frames[0], 0.0)[0].handedness == "left"
        assert lt.tracked == 0


def _counting(stage):
    calls = []
    palm = stage._palm

    def counted(*args, **kwargs):
        calls.append(1)
        return palm(*args, **kwargs)

    stage._palm = counted
    return calls


def test_lost_hand_is_found_again_and_the_detector_runs_only_when_due(demo):
    frames, _ = demo
    n = 5
    grey = np.full_like(frames[0], 127)
    stream = frames[:10] + [grey] * 5 + frames[15:25]
    with LiteRTHands(LandmarkConfig(max_hands=2, redetect_every=n)) as lt:
        calls = _counting(lt)
        counts = [len(lt.detect(img, i / 30)) for i, img in enumerate(stream)]
    assert counts[:10] == [1] * 10 and counts[10:15] == [0] * 5
    assert counts[15 : 15 + n].count(1) >= 1 and counts[15 + n :] == [1] * (
        len(stream) - 15 - n
    )
    # one hand of two tracked: the detector ran on frames 0, 5 (due), 11..14 (nothing tracked), 15, 20
    assert len(calls) == 2 + 5 + 2, len(calls)


def test_a_second_hand_entering_is_found_within_redetect_every_frames(demo):
    frames, _ = demo
    n, enter = 4, 6
    grey = np.full_like(frames[0], 127)
    stream = [
        np.hstack([f, f if i >= enter else grey]) for i, f in enumerate(frames[:16])
    ]
    with LiteRTHands(LandmarkConfig(max_hands=2, redetect_every=n)) as lt:
        counts = [len(lt.detect(img, i / 30)) for i, img in enumerate(stream)]
    assert counts[:enter] == [1] * enter
    first = next(i for i, c in enumerate(counts) if c == 2)
    assert enter <= first < enter + n, counts
    assert counts[first:] == [2] * (len(counts) - first)


def test_stage_interface_and_misuse():
    lt = LiteRTHands(LandmarkConfig(model_complexity=0))
    blank = np.full((240, 320, 3), 127, np.uint8)
    cam = Camera("c", Intrinsics.from_fov(320, 240))
    assert lt(FrameSet.single(Frame(blank, 0.0, 0, cam)), []) == []
    with pytest.raises(ValueError, match="RGB uint8"):
        lt.detect(blank.astype(np.float32), 0.0)
    with pytest.raises(ValueError, match="RGB uint8"):
        lt.detect(blank[..., 0], 0.0)
    lt.reset()
    lt.close()
    lt.close()
    with pytest.raises(EstimatorError, match="closed"):
        lt.detect(blank, 0.0)


# ---------------------------------------------------------------- batching and several views


def test_a_batched_landmark_call_equals_one_call_per_crop(demo):
    from tracker.stages.litert.landmark_model import HandLandmarkModel

    frames, gt = demo
    model = HandLandmarkModel(mediapipe_model_path("landmark", 1), 2)
    rois = [landmarks_to_roi(gt[i]) for i in (0, 7, 14)]
    crops = np.stack([crop(frames[i], r, model.size) for i, r in zip((0, 7, 14), rois)])
    batch = model(crops)
    assert len(batch) == 3 and model(crops[:0]) == []
    for k in range(3):
        one = model(crops[k : k + 1])[0]
        np.testing.assert_allclose(batch[k].landmarks, one.landmarks, atol=1e-4)
        np.testing.assert_allclose(batch[k].world, one.world, atol=1e-6)
        assert batch[k].presence == pytest.approx(one.presence, abs=1e-6) and batch[k].presence > 0.9
        assert batch[k].handedness == pytest.approx(one.handedness, abs=1e-6)
    with pytest.raises(ValueError, match=r"\(N, 224, 224, 3\)"):
        model(crops[0])


def test_one_stage_for_several_views_equals_one_stage_per_view(demo):
    """A rig's views through one stage (one batched landmark call per frame set) give the hands of
    separate single-view stages, each view tracked on its own (view 1 = the demo mirrored, hand
    leaving for 3 frames)."""
    frames, _ = demo
    grey = np.full_like(frames[0], 127)
    second = [grey if 8 <= i < 11 else np.ascontiguousarray(f[:, ::-1]) for i, f in enumerate(frames[:16])]
    cfg = LandmarkConfig(max_hands=2, redetect_every=3)
    with LiteRTHands(cfg, view=(0, 1)) as both, LiteRTHands(cfg, view=0) as a, LiteRTHands(cfg, view=1) as b:
        assert both.views == (0, 1)
        for i, (f0, f1) in enumerate(zip(frames, second)):
            cam = Camera("c", Intrinsics.from_fov(f0.shape[1], f0.shape[0]))
            fs = FrameSet((Frame(f0, i / 30, i, cam), Frame(f1, i / 30, i, cam)), i / 30, i)
            got = both(fs, [])
            want = a(fs, []) + b(fs, [])
            assert [h.view for h in got] == [h.view for h in want], i
            assert len(got) == (1 if 8 <= i < 11 else 2), i
            for g, w in zip(got, want):
                np.testing.assert_allclose(g.joints_2d, w.joints_2d, atol=1e-3)
                assert g.handedness == w.handedness
            assert both.tracked == a.tracked + b.tracked
        with pytest.raises(ValueError, match="2 view"):
            both.detect(frames[0], 0.0)
