"""Tests of tracker.view: offscreen (EGL) renders checked pixel by pixel, the rig mosaic, the event loop,
misuse. The video recorder is tested with the sinks (tests/tracker/sinks/test_video_recorder.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("EGL_PLATFORM", "surfaceless")

from tracker.core.joints import EDGES, FINGERS, NUM_JOINTS  # noqa: E402
from tracker.core.structures import (  # noqa: E402
    Camera,
    Frame,
    FrameResult,
    FrameSet,
    HandPose,
    Intrinsics,
)
from tracker.runtime.stats import LoopStats, StageStats  # noqa: E402
from tracker.view import TrackerView, ViewConfig, ViewUnavailableError, use_backend  # noqa: E402
from tracker.view.colors import FINGER_COLORS, confidence_colors, track_color  # noqa: E402
from tracker.view.geometry import camera_to_display  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
BACKGROUND = (20, 22, 24)
PATCH = (slice(440, 470), slice(590, 630))  # rows, cols of a red marker patch in the image
INTR = Intrinsics(fx=520.0, fy=520.0, cx=320.0, cy=240.0, width=640, height=480)
DEPTH_MM = 400.0
TOL = 40  # max per-channel difference (0..255) for "has this colour"


@pytest.fixture(scope="module", autouse=True)
def headless_backend() -> str:
    """EGL for the whole module; skip (with the reason) only where EGL cannot start at all."""
    try:
        return use_backend(headless=True)
    except ViewUnavailableError as exc:
        pytest.skip(f"headless EGL rendering unavailable here: {exc}")


@pytest.fixture
def view() -> TrackerView:
    v = TrackerView(size=(1280, 520))
    yield v
    v.close()


# ------------------------------------------------------------------------------- test data


def spread_hand_2d(center: tuple[float, float] = (320.0, 240.0)) -> np.ndarray:
    """A spread, upright hand (pixels): wrist below ``center``, fingers fanning out upwards, 30 px bones."""
    cx, cy = center
    wrist = np.array([cx, cy + 90.0])
    joints = np.zeros((NUM_JOINTS, 2))
    joints[0] = wrist
    angles = np.radians([-150.0, -120.0, -95.0, -70.0, -45.0])  # thumb .. pinky, image y down
    for angle, chain in zip(angles, FINGERS.values(), strict=True):
        direction = np.array([np.cos(angle), np.sin(angle)])
        root = wrist + 50.0 * direction
        for k, joint in enumerate(chain):
            joints[joint] = root + 30.0 * k * direction
    return joints


def lift(joints_2d: np.ndarray, depth_mm: float = DEPTH_MM) -> np.ndarray:
    """Back-project pixels to camera-frame mm at a constant depth (consistent with ``INTR``)."""
    return INTR.unproject(joints_2d, depth_mm)


def make_image() -> np.ndarray:
    image = np.empty((480, 640, 3), np.uint8)
    image[:] = BACKGROUND
    image[PATCH] = (230, 30, 30)
    return image


def make_result(
    hands_2d: list[np.ndarray], with_3d: bool = True, approximate: bool = False, index: int = 7
) -> FrameResult:
    intr = Intrinsics(INTR.fx, INTR.fy, INTR.cx, INTR.cy, INTR.width, INTR.height, approximate=approximate)
    frame = Frame(make_image(), timestamp=index / 30.0, index=index, camera=Camera("test", intr))
    hands = tuple(
        HandPose(
            joints_2d=j2d,
            confidence=np.ones(NUM_JOINTS),
            timestamp=frame.timestamp,
            joints_3d=lift(j2d) if with_3d else None,
            score=0.97,
            handedness="right",
            handedness_score=0.99,
            track_id=3 + i,
        )
        for i, j2d in enumerate(hands_2d)
    )
    return FrameResult(FrameSet.single(frame), hands, {"detect": 2.0, "landmarks": 5.0}, 9.0)


def make_stats() -> LoopStats:
    stages = {"detect": StageStats(2.5, 3.0, 2.6, 30), "total": StageStats(8.25, 9.0, 8.3, 30)}
    return LoopStats(fps=29.5, captured=120, processed=118, dropped=2, stages=stages)


# --------------------------------------------------------------------------------- helpers


def rgb255(color: tuple[float, ...]) -> np.ndarray:
    return np.round(np.asarray(color[:3]) * 255.0)


def pixel(rgb: np.ndarray, view: TrackerView, u: float, v: float) -> np.ndarray:
    x, y = view.image_to_canvas(u, v)
    return rgb[int(y), int(x)].astype(float)


def bone_samples(view: TrackerView, rgb: np.ndarray, joints_2d: np.ndarray, bone: tuple[int, int]) -> np.ndarray:
    """Pixels at 35..65 % along a bone (away from the joint markers), ``(n, 3)``."""
    a, b = joints_2d[bone[0]], joints_2d[bone[1]]
    return np.array([pixel(rgb, view, *(a + t * (b - a))) for t in np.linspace(0.35, 0.65, 7)])


def near(pixels: np.ndarray, color: tuple[float, ...], tol: float = TOL) -> np.ndarray:
    return np.abs(pixels - rgb255(color)).max(axis=-1) <= tol


def skeleton_pixel_count(rgb: np.ndarray, tol: float = 25) -> int:
    """Pixels close to any finger colour."""
    img = rgb.astype(float)
    return int(sum(near(img, c, tol).sum() for c in FINGER_COLORS.values()))


def panel(rgb: np.ndarray, view: TrackerView, name: str) -> np.ndarray:
    x, y, w, h = view.panel_rects[name]
    return rgb[y : y + h, x : x + w]


# ----------------------------------------------------------------------------------- tests


def test_camera_to_display_is_a_rotation() -> None:
    m = camera_to_display(np.eye(3)).astype(float)  # rows: images of the camera axes
    np.testing.assert_allclose(m @ m.T, np.eye(3))
    assert np.linalg.det(m) == pytest.approx(1.0)  # no mirror: handedness survives
    np.testing.assert_allclose(camera_to_display(np.array([0.0, 1.0, 0.0])), [0.0, -1.0, 0.0])  # y down -> up


def test_confidence_colors_run_red_to_green() -> None:
    c = confidence_colors(np.array([0.0, 0.5, 1.0, np.nan, 7.0]))
    assert c.shape == (5, 4)
    assert c[0, 0] > 0.8 and c[0, 1] < 0.3  # red
    assert c[1, 0] > 0.8 and c[1, 1] > 0.8  # yellow
    assert c[2, 1] > 0.8 and c[2, 0] < 0.3  # green
    np.testing.assert_allclose(c[3], c[0])  # NaN counts as 0
    np.testing.assert_allclose(c[4], c[2])  # clipped


def test_image_lands_where_image_to_canvas_says(view: TrackerView) -> None:
    view.update(make_result([]))
    rgb = view.render()
    assert rgb.shape == (520, 1280, 3) and rgb.dtype == np.uint8
    rows, cols = PATCH
    inside = pixel(rgb, view, (cols.start + cols.stop) / 2, (rows.start + rows.stop) / 2)
    assert near(inside, (230 / 255, 30 / 255, 30 / 255), 10)  # y points down: the patch is bottom right
    assert near(pixel(rgb, view, 40.5, 40.5), tuple(np.array(BACKGROUND) / 255), 10)
    x0, y0 = view.image_to_canvas(0, 0)
    x1, y1 = view.image_to_canvas(640, 480)
    assert 0 <= x0 < x1 <= view.panel_rects["3d"][0] and 0 <= y0 < y1 <= 520


def test_resizing_the_canvas_relayouts_the_panels(view: TrackerView) -> None:
    view.update(make_result([]))
    view.canvas.size = (960, 400)
    rgb = view.render()
    assert rgb.shape == (400, 960, 3)
    image_rect, rect_3d = view.panel_rects["image"], view.panel_rects["3d"]
    assert image_rect[2] + rect_3d[2] <= 960 and rect_3d[0] + rect_3d[2] == 960 and rect_3d[3] == 400
    rows, cols = PATCH
    inside = pixel(rgb, view, (cols.start + cols.stop) / 2, (rows.start + rows.stop) / 2)
    assert near(inside, (230 / 255, 30 / 255, 30 / 255), 10)


def test_bones_have_their_finger_colour_in_the_image_panel(view: TrackerView) -> None:
    joints = spread_hand_2d()
    view.update(make_result([joints]), make_stats())
    rgb = view.render()
    for name, chain in FINGERS.items():
        for bone in zip(chain[:-1], chain[1:], strict=True):
            assert near(bone_samples(view, rgb, joints, bone), FINGER_COLORS[name]).all(), (name, bone)
    for u, v in [(40.5, 40.5), (600.5, 60.5), (320.5, 420.5), (100.5, 300.5)]:  # away from the hand
        assert near(pixel(rgb, view, u, v), tuple(np.array(BACKGROUND) / 255), 10), (u, v)
    green = confidence_colors(np.ones(1))[0]
    tip = joints[FINGERS["middle"][3]]
    assert near(pixel(rgb, view, *tip), tuple(green), 60)  # joint marker: confidence 1 -> green
    assert skeleton_pixel_count(panel(rgb, view, "3d")) > 100


def test_hand_without_3d_is_drawn_in_2d_only(view: TrackerView) -> None:
    joints = spread_hand_2d()
    view.update(make_result([joints], with_3d=False))
    rgb = view.render()
    assert near(bone_samples(view, rgb, joints, (9, 10)), FINGER_COLORS["middle"]).all()
    assert skeleton_pixel_count(panel(rgb, view, "3d")) < 10


def test_zero_hands_clears_the_skeletons(view: TrackerView) -> None:
    joints = spread_hand_2d()
    view.update(make_result([joints, spread_hand_2d((470.0, 200.0))]))
    view.render()
    view.update(make_result([]))
    rgb = view.render()
    assert skeleton_pixel_count(rgb) < 10
    assert not near(bone_samples(view, rgb, joints, (9, 10)), FINGER_COLORS["middle"]).any()


def test_second_update_replaces_the_first(view: TrackerView) -> None:
    first, second = spread_hand_2d((200.0, 240.0)), spread_hand_2d((450.0, 240.0))
    view.update(make_result([first], index=1))
    view.update(make_result([second], index=2))
    rgb = view.render()
    assert near(bone_samples(view, rgb, second, (9, 10)), FINGER_COLORS["middle"]).all()
    assert not near(bone_samples(view, rgb, first, (9, 10)), FINGER_COLORS["middle"]).any()
    assert "frame 2" in view.status_text


def test_more_hands_than_the_pool_are_skipped(view: TrackerView, caplog: pytest.LogCaptureFixture) -> None:
    """Six hands, a pool of ViewConfig().max_hands = 4: exactly the first 4 are drawn (the image panel
    is pixel for pixel that of those 4 alone, and differs from 3 alone), hands 5 and 6 are not, and
    the warning says so once."""
    assert ViewConfig().max_hands == 4
    hands = [spread_hand_2d((x, 240.0)) for x in np.linspace(120.0, 520.0, 6)]

    def drawn(n: int) -> tuple[np.ndarray, int]:
        view.update(make_result(hands[:n]))
        rgb = view.render()
        return panel(rgb, view, "image").copy(), skeleton_pixel_count(panel(rgb, view, "3d"))

    with caplog.at_level("WARNING", logger="tracker.view.canvas"):
        image_6, count_3d_6 = drawn(6)
        drawn(6)
    assert [r.getMessage() for r in caplog.records] == ["6 hands in view, drawing the first 4 (ViewConfig.max_hands)"]
    image_4, count_3d_4 = drawn(4)
    image_3, _ = drawn(3)
    np.testing.assert_array_equal(image_6, image_4)  # hands 5 and 6 leave no pixel
    assert count_3d_6 == count_3d_4 > 100  # nor in 3D
    assert (np.abs(image_4.astype(int) - image_3).max(axis=-1) > TOL).sum() > 500  # hand 4 is drawn
    with TrackerView(size=(1280, 520), config=ViewConfig(max_hands=6)) as big:  # a pool of 6 draws them all
        big.update(make_result(hands))
        rgb = big.render()
        assert (np.abs(panel(rgb, big, "image").astype(int) - image_4).max(axis=-1) > TOL).sum() > 500


def test_non_finite_joints_do_not_break_the_view(view: TrackerView) -> None:
    joints = spread_hand_2d()
    joints[FINGERS["index"][3]] = np.nan
    view.update(make_result([joints]))
    rgb = view.render()
    assert near(bone_samples(view, rgb, joints, (9, 10)), FINGER_COLORS["middle"]).all()


def test_overlay_reports_stats_and_approximate_intrinsics(view: TrackerView) -> None:
    view.update(make_result([spread_hand_2d()], approximate=True, index=42), make_stats())
    text = view.status_text
    assert "29.5 FPS" in text and "dropped 2" in text and "frame 42" in text
    assert "detect 2.5" in text and "total 8.2" in text  # p50 of each stage
    assert "approximate intrinsics" in text
    view.update(make_result([spread_hand_2d()], approximate=False))  # no stats: this frame's timings
    assert "approximate" not in view.status_text and "landmarks 5.0" in view.status_text


def test_3d_camera_frames_the_hand_once(view: TrackerView) -> None:
    joints = spread_hand_2d()
    view.update(make_result([joints]))
    center = np.array(view.camera_3d.center)
    hand_center = camera_to_display(lift(joints)).mean(axis=0)
    assert np.linalg.norm(center - hand_center) < 0.3 * DEPTH_MM  # looking at the hand
    view.update(make_result([spread_hand_2d((500.0, 100.0))]))
    np.testing.assert_allclose(view.camera_3d.center, center)  # no jump while tracking
    view.reset_camera()
    view.update(make_result([spread_hand_2d((500.0, 100.0))]))
    assert not np.allclose(view.camera_3d.center, center)


def test_update_from_another_thread_is_refused(view: TrackerView) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            view.update(make_result([]))
        except RuntimeError as exc:
            errors.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    t.join(timeout=10)
    assert len(errors) == 1 and "thread" in str(errors[0])


def test_closed_view_refuses_work_and_close_is_idempotent() -> None:
    v = TrackerView(size=(320, 160))
    v.close()
    v.close()
    with pytest.raises(RuntimeError, match="closed"):
        v.render()


def test_backend_cannot_switch_to_a_window_after_egl() -> None:
    with pytest.raises(ViewUnavailableError, match="already"):
        use_backend(headless=False)
    assert use_backend(headless=True).lower() == "egl"


def test_bad_image_is_rejected(view: TrackerView) -> None:
    result = make_result([])
    frame = result.frameset.frames[0]
    bad = Frame(frame.image.astype(np.float32), frame.timestamp, frame.index, frame.camera)
    with pytest.raises(ValueError, match="uint8"):
        view.update(FrameResult(FrameSet.single(bad), ()))


# ------------------------------------------------------------------------------ event loop


# The event loop runs in a fresh interpreter per case: VisPy's EGL loop ends at once when any canvas
# of the process was closed before, and a backend (EGL / Qt) is chosen once per process.
_LOOP_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, threading
    mode, backend = sys.argv[1], sys.argv[2]
    sys.path[:0] = sys.argv[3:5]
    from test_view import make_result, make_stats, spread_hand_2d
    from tracker.view import TrackerView, run_window, use_backend

    sigint_before = signal.getsignal(signal.SIGINT)  # SIG_IGN when started from a background job
    use_backend(headless=backend == "egl")
    view = TrackerView(size=(320, 160), show=backend == "qt")
    stop = threading.Event()
    polled = []

    def poll():
        polled.append(1)
        n = len(polled)
        if mode == "fail":
            raise KeyError("boom")
        if mode == "finish" and n == 5:
            stop.set()  # "the pipeline finished"
        if mode == "sigint" and n == 3:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C
        if mode == "close" and n == 3:
            view.canvas.close()  # the user closes the window
        return (make_result([spread_hand_2d()], index=n), make_stats()) if n % 2 else None

    if mode == "thread":
        threading.Timer(0.2, stop.set).start()
    try:
        run_window(view, poll, stop, interval_s=0.005)
    except KeyError:
        assert mode == "fail" and stop.is_set() and len(polled) == 1, polled
    else:
        assert stop.is_set(), mode
        expected = {"finish": 5, "sigint": 3, "close": 3}.get(mode)
        assert expected is None or len(polled) == expected, (mode, polled)
        assert mode != "finish" or "frame 5" in view.status_text, view.status_text
    assert signal.getsignal(signal.SIGINT) is sigint_before  # restored
    view.close()
    print("DONE")
    """
)


def run_python(code: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize(
    ("backend", "mode"),
    [("egl", "finish"), ("egl", "fail"), ("qt", "finish"), ("qt", "sigint"), ("qt", "close"), ("qt", "thread")],
)
def test_run_window_polls_updates_and_stops(backend: str, mode: str) -> None:
    """poll feeds the view until the pipeline finishes / Ctrl-C / the window closes / another thread
    sets stop, and run_window returns; an exception in poll sets stop and reaches the caller.

    "qt" runs the real PySide6 event loop on Qt's offscreen platform (no display; Qt cannot draw GL
    there, so it logs warnings, but timers, close events and signals behave as in a window).
    """
    env = dict(os.environ, EGL_PLATFORM="surfaceless")
    if backend == "qt":
        env["QT_QPA_PLATFORM"] = "offscreen"
    proc = run_python(_LOOP_SCRIPT, mode, backend, str(REPO), str(Path(__file__).parent), env=env)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("DONE"), proc.stdout + proc.stderr[-3000:]


_BACKEND_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from tracker.view import ViewUnavailableError, use_backend
    try:
        print("backend", use_backend(headless=False))
    except ViewUnavailableError as exc:
        print("unavailable:", exc)
    """
)


@pytest.mark.parametrize(
    ("display", "expected"),
    [
        (None, "unavailable: no display"),
        (":97", "unavailable: Qt cannot open a window"),
        ("offscreen", "backend PySide6"),
    ],
)
def test_window_backend_fails_cleanly_without_a_display(display: str | None, expected: str) -> None:
    """No display, or an X server that is not there (Qt would abort the process): a clear error."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    if display == "offscreen":
        env["QT_QPA_PLATFORM"] = "offscreen"
    elif display is not None:
        env["DISPLAY"] = display
    proc = run_python(_BACKEND_SCRIPT, str(REPO), env=env)
    assert proc.returncode == 0 and proc.stdout.startswith(expected), proc.stdout + proc.stderr[-2000:]


def test_example_hand_pose_is_consistent() -> None:
    """The test hand's 3D joints project back onto its 2D joints (so both panels show one hand)."""
    joints = spread_hand_2d()
    np.testing.assert_allclose(INTR.project(lift(joints)), joints, atol=1e-9)
    assert len(EDGES) == NUM_JOINTS - 1


# ------------------------------------------------------------------------------------- rig mode


def make_rig_result(dist: tuple[float, ...] = (-0.6, 0.2, 0.0, 0.0, 0.0)) -> FrameResult:
    """Three cameras on an arc 600 mm from a world hand at the origin (camera 1 with distortion);
    flat grey images; one fused hand with per-joint uncertainty (index tip 0 mm, thumb tip not
    triangulated)."""
    from models.synthetic import look_at

    cams = []
    for v, az in enumerate((-40.0, 0.0, 40.0)):
        a = np.radians(az)
        eye = (600.0 * np.sin(a), -150.0, -600.0 * np.cos(a))
        intr = Intrinsics(520.0, 520.0, 320.0, 240.0, 640, 480, dist=dist if v == 1 else (0.0,) * 5)
        cams.append(Camera(f"cam{v}", intr, look_at(eye, (0.0, 0.0, 0.0))))
    frames = tuple(Frame(np.full((480, 640, 3), 60, np.uint8), 0.2, 6, c) for c in cams)
    world = lift(spread_hand_2d(), DEPTH_MM) - np.array([-230.0, -150.0, DEPTH_MM])  # a hand off the rig centre
    unc = np.full(NUM_JOINTS, 5.0)
    unc[8], unc[4] = 0.0, np.inf
    hand = HandPose(spread_hand_2d(), np.ones(NUM_JOINTS), 0.2, joints_3d=cams[0].world_to_camera(world),
                    handedness="right", handedness_score=0.9, track_id=0, view=-1, joints_world=world,
                    uncertainty_mm=unc)  # fmt: skip
    return FrameResult(FrameSet(frames, 0.2, 6), (hand,), {"landmarks": 40.0, "fusion": 1.0}, 50.0)


def projected(camera: Camera, X: np.ndarray) -> np.ndarray:
    """World mm ``(N, 3)`` -> pixels ``(N, 2)`` straight from ``cv2.projectPoints``: the independent
    reference the view's reprojection (through :meth:`Camera.project`) is checked against."""
    import cv2

    rvec = cv2.Rodrigues(np.asarray(camera.extrinsics.R, np.float64))[0]
    uv, _ = cv2.projectPoints(X.reshape(-1, 1, 3), rvec, np.asarray(camera.extrinsics.t, np.float64),
                              camera.intrinsics.K, np.asarray(camera.intrinsics.dist, np.float64))  # fmt: skip
    return uv.reshape(-1, 2)


def test_rig_mosaic_draws_world_joints_where_each_camera_sees_them() -> None:
    from tracker.view.mosaic import rig_mosaic

    result = make_rig_result()
    hand = result.hands[0]
    mosaic = rig_mosaic(result.frameset, result.hands)
    assert mosaic.image.shape == (2 * 480 + 30, 2 * 640, 3)  # 2 x 2 grid + legend
    green, red = rgb255(confidence_colors(np.ones(1))[0]), rgb255(confidence_colors(np.zeros(1))[0])
    for v, frame in enumerate(result.frameset.frames):
        uv = projected(frame.camera, hand.joints_world)
        tip, thumb = mosaic.to_mosaic(v, uv[[8, 4]])
        assert np.abs(mosaic.image[int(tip[1]), int(tip[0])] - green).max() <= 10, v
        assert np.abs(mosaic.image[int(thumb[1]), int(thumb[0])] - red).max() <= 10, v
    # the distortion of camera 1 is applied: its undistorted projection is elsewhere (> 5 px at the tip)
    cam1 = result.frameset.frames[1].camera
    plain = projected(Camera("p", Intrinsics(520.0, 520.0, 320.0, 240.0, 640, 480), cam1.extrinsics), hand.joints_world)
    assert np.linalg.norm(plain[8] - projected(cam1, hand.joints_world)[8]) > 5.0
    # the legend's ramp runs green -> red along the bottom; the empty 4th tile stays dark
    assert np.abs(mosaic.image[-15, 12] - green).max() <= 10 and np.abs(mosaic.image[-15, 207] - red).max() <= 10
    assert (mosaic.image[480 + 200, 640 + 300] < 30).all()


def test_rig_view_shows_mosaic_and_frustums_where_they_project(view: TrackerView) -> None:
    from tracker.view.mosaic import rig_mosaic

    result = make_rig_result()
    view.update(result, make_stats())
    rgb = view.render().astype(float)
    # image panel: the reprojected index tip of camera 2 is green on the canvas
    mosaic = rig_mosaic(result.frameset, result.hands)
    cam2 = result.frameset.frames[2].camera
    tip = mosaic.to_mosaic(2, projected(cam2, result.hands[0].joints_world)[[8]])[0]
    x, y = view.image_to_canvas(*tip)
    patch = rgb[int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2].reshape(-1, 3)
    assert near(patch, tuple(confidence_colors(np.ones(1))[0]), 60).any()
    # 3D panel: the middle of camera 2's far top edge (its frustum, placed by its extrinsics)
    intr, depth = cam2.intrinsics, ViewConfig().rig_frustum_depth_mm
    corners = intr.unproject(np.array([[0.0, 0.0], [intr.width, 0.0]]), depth)  # camera 2's frame
    cam0 = result.frameset.frames[0].camera
    mid = camera_to_display(cam0.world_to_camera(cam2.camera_to_world(corners).mean(axis=0)))
    x, y = view.display_to_canvas(mid[None])[0]
    x0, y0, w, h = view.panel_rects["3d"]
    assert x0 <= x < x0 + w and y0 <= y < y0 + h
    around = rgb[int(y) - 2 : int(y) + 3, int(x) - 2 : int(x) + 3].reshape(-1, 3)
    assert near(around, (0.85, 0.87, 0.90, 1.0), 70).any()  # the frustum's light grey
    # ... and not drawn 25 px off the edge (the panel's background is there)
    off = rgb[int(y) + 25, int(x)] if abs(int(y) + 25 - y0) < h else rgb[int(y) - 25, int(x)]
    assert not near(off, (0.85, 0.87, 0.90, 1.0), 70)


def test_single_view_after_rig_view_restores_the_single_camera(view: TrackerView) -> None:
    view.update(make_rig_result())
    view.update(make_result([spread_hand_2d()]))
    rgb = view.render()
    rows, cols = PATCH
    inside = pixel(rgb, view, (cols.start + cols.stop) / 2, (rows.start + rows.stop) / 2)
    assert near(inside, (230 / 255, 30 / 255, 30 / 255), 10)  # the plain image again, not a mosaic


def test_decoded_surface_is_drawn_and_toggled(view: TrackerView) -> None:
    """A hand with ``surface`` points (the cross-modal estimator's) gets them drawn in the 3D panel in its
    track colour; ``show_surface = False`` (the ``p`` key) hides them and the skeleton stays."""
    joints = spread_hand_2d()
    result = make_result([joints])
    hand = result.hands[0]
    rng = np.random.default_rng(0)
    surface = hand.joints_3d.mean(axis=0) + rng.normal(0.0, 25.0, (400, 3)) * [1.0, 1.0, 0.3]
    with_surface = FrameResult(result.frameset, (hand.replace(surface=surface),), result.timings_ms, result.latency_ms)

    def changed(a: np.ndarray, b: np.ndarray) -> int:
        """3D-panel pixels that differ by more than 30 levels."""
        return int((np.abs(panel(a, view, "3d").astype(int) - panel(b, view, "3d").astype(int)).max(axis=-1) > 30).sum())

    view.update(result)
    bare = view.render()
    view.update(with_surface)
    drawn = view.render()
    assert changed(drawn, bare) > 300
    ys, xs = np.nonzero((np.abs(drawn.astype(int) - bare.astype(int)).max(axis=-1) > 30))
    tint = drawn[ys, xs].astype(float).mean(axis=0)
    assert np.argmax(tint) == np.argmax(track_color(hand.track_id)[:3])  # drawn in the track's colour
    view.show_surface = False
    view.update(with_surface)
    hidden = view.render()
    assert changed(hidden, bare) < 20
    view.show_surface = True
