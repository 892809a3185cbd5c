"""ChArUco rig calibration (:mod:`tracker.calibration`) on rendered board views from known cameras: the
board and its detector, the initial solve, the bundle adjustment, the whole solve and the command line,
and their error paths."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.synthetic import look_at
from tracker.calibration.board import BoardConfig, BoardDetection, BoardDetector
from tracker.calibration.bundle import BundleAdjuster, huber
from tracker.calibration.cli import PROG, main
from tracker.calibration.initial import check_connected, initial_extrinsics, robust_mean_pose, view_poses
from tracker.calibration.solve import CalibrationOptions, calibrate_cameras, calibrate_from_images
from tracker.core.errors import CalibrationError
from tracker.core.structures import Camera, Intrinsics
from tracker.io.calibration import load_calibration

BOARD = BoardConfig(squares_x=7, squares_y=5, square_mm=35.0, marker_mm=26.0, dictionary="DICT_4X4_50")
W, H = 640, 480
PX_PER_MM = 4.0  # board texture resolution, about twice what the cameras see
MARGIN_PX = 20


def make_rig(rng: np.random.Generator, n: int = 4, radius_mm: float = 620.0) -> tuple[Camera, ...]:
    """``n`` cameras on an arc in front of the board (world z points into the board), looking at the origin."""
    cams = []
    for v in range(n):
        az = math.radians(-50.0 + 100.0 * v / max(n - 1, 1) + rng.uniform(-5, 5))
        el = math.radians(rng.uniform(-20.0, 25.0))
        eye = radius_mm * rng.uniform(0.9, 1.1) * np.array(
            [math.cos(el) * math.sin(az), -math.sin(el), -math.cos(el) * math.cos(az)])  # fmt: skip
        f = rng.uniform(540.0, 660.0)
        cx, cy = W / 2 + rng.uniform(-12, 12), H / 2 + rng.uniform(-10, 10)
        intr = Intrinsics(f, f * rng.uniform(0.99, 1.01), cx, cy, W, H)
        cams.append(Camera(f"view{v}", intr, look_at(eye, rng.uniform(-20, 20, 3))))
    return tuple(cams)


def board_poses(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """``n`` world <- board transforms: the board near the origin facing -z, turned towards the
    cameras' arc (yaw within +-45 deg) and tilted up to 30 deg about a random axis."""
    centre = np.array([BOARD.squares_x * BOARD.square_mm / 2, BOARD.squares_y * BOARD.square_mm / 2, 0.0])
    out = []
    for _ in range(n):
        yaw = cv2.Rodrigues(np.array([0.0, math.radians(rng.uniform(-55, 55)), 0.0]))[0]
        axis = np.array([*rng.normal(size=2), 0.0])
        tilt = cv2.Rodrigues(axis / np.linalg.norm(axis) * math.radians(rng.uniform(5, 30)))[0]
        spin = cv2.Rodrigues(np.array([0.0, 0.0, math.radians(rng.uniform(-25, 25))]))[0]
        T = np.eye(4)
        T[:3, :3] = yaw @ tilt @ spin
        T[:3, 3] = rng.uniform(-60, 60, 3) - T[:3, :3] @ centre
        out.append(T)
    return out


def board_texture() -> np.ndarray:
    w = int(round(BOARD.squares_x * BOARD.square_mm * PX_PER_MM)) + 2 * MARGIN_PX
    h = int(round(BOARD.squares_y * BOARD.square_mm * PX_PER_MM)) + 2 * MARGIN_PX
    return BOARD.board().generateImage((w, h), marginSize=MARGIN_PX, borderBits=1)


def cam_from_world(cam: Camera) -> np.ndarray:
    """``(4, 4)`` world -> camera transform of ``cam`` (mm)."""
    return np.vstack([cam.extrinsics.matrix, [0.0, 0.0, 0.0, 1.0]])


def board_to_world(world_from_board: np.ndarray) -> np.ndarray:
    """The board's corners in the world, ``(num_corners, 3)`` mm."""
    return BOARD.corners_mm() @ world_from_board[:3, :3].T + world_from_board[:3, 3]


def render(texture: np.ndarray, cam: Camera, world_from_board: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The board seen by ``cam``: exact plane homography, 2x supersampled, light blur and noise (RGB uint8)."""
    cam_from_board = cam_from_world(cam) @ world_from_board
    H_mm = cam.intrinsics.K @ cam_from_board[:3, [0, 1, 3]]  # board plane (x, y, 1) mm -> pixels
    s, m = PX_PER_MM, MARGIN_PX  # texture pixel u (centre convention) <- board x mm: u = m + s x - 0.5
    tex_to_mm = np.array([[1 / s, 0, (0.5 - m) / s], [0, 1 / s, (0.5 - m) / s], [0, 0, 1]])
    up = np.array([[2.0, 0, 0.5], [0, 2.0, 0.5], [0, 0, 1]])
    big = cv2.warpPerspective(texture, up @ H_mm @ tex_to_mm, (2 * W, 2 * H), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=90)  # fmt: skip
    img = cv2.resize(big, (W, H), interpolation=cv2.INTER_AREA).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), 0.6) + rng.normal(0, 2.0, img.shape).astype(np.float32)
    gray = np.clip(img, 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def views(seed: int, n_cams: int, n_poses: int) -> tuple[tuple[Camera, ...], list[list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    cams = make_rig(rng, n_cams)
    texture = board_texture()
    poses = board_poses(rng, n_poses)
    return cams, [[render(texture, cam, T, rng) for T in poses] for cam in cams]


def relative(cams: tuple[Camera, ...], c: int) -> tuple[np.ndarray, np.ndarray]:
    """Camera ``c``'s rotation and centre (mm) in camera 0's frame."""
    R_rel = cams[c].extrinsics.R @ cams[0].extrinsics.R.T
    return R_rel, cams[0].world_to_camera(cams[c].extrinsics.center)


def angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    return math.degrees(math.acos(np.clip((np.trace(Ra.T @ Rb) - 1) / 2, -1, 1)))


@pytest.fixture(scope="module")
def rendered() -> tuple[tuple[Camera, ...], list[list[np.ndarray]]]:
    return views(seed=7, n_cams=4, n_poses=20)


def test_detector_finds_rendered_corners_where_they_project(rendered) -> None:
    cams, images = rendered
    rng = np.random.default_rng(7)
    make_rig(rng, 4)
    T = board_poses(rng, 1)[0]
    det = BoardDetector(BOARD)(images[1][0])
    assert det is not None and len(det.ids) >= 12
    expected = cams[1].project(board_to_world(T))[det.ids]
    assert np.abs(det.corners_px - expected).max() < 0.5


def test_recovers_known_rig(rendered) -> None:
    cams, images = rendered
    result = calibrate_from_images(images, BOARD, names=[c.name for c in cams])
    assert [c.name for c in result.cameras] == [c.name for c in cams]
    np.testing.assert_array_equal(result.cameras[0].extrinsics.R, np.eye(3))  # world = camera 0
    for c, (truth, est) in enumerate(zip(cams, result.cameras)):
        assert est.intrinsics.fx == pytest.approx(truth.intrinsics.fx, rel=0.01)
        assert est.intrinsics.fy == pytest.approx(truth.intrinsics.fy, rel=0.01)
        R_true, c_true = relative(cams, c)
        R_est, c_est = relative(result.cameras, c)
        assert angle_deg(R_true, R_est) < 0.5
        assert np.linalg.norm(c_true - c_est) < 5.0
        report = result.reports[c]
        assert report.mean_error_px < 1.0 and report.frames >= 5 and report.corners >= 5 * 6
    assert result.mean_error_px < 0.5


def test_fixed_given_intrinsics_are_kept(rendered) -> None:
    cams, images = rendered
    given = [c.intrinsics for c in cams]
    result = calibrate_from_images([im[:8] for im in images], BOARD, intrinsics=given)
    assert [c.intrinsics for c in result.cameras] == given
    assert all(r.intrinsics_rms_px is None for r in result.reports)
    for c in range(1, len(cams)):
        R_true, c_true = relative(cams, c)
        R_est, c_est = relative(result.cameras, c)
        assert angle_deg(R_true, R_est) < 0.2 and np.linalg.norm(c_true - c_est) < 2.0


# --- error paths on exact detections (no rendering) -------------------------------------------------


def exact_detections(
    cams: tuple[Camera, ...], poses: list[np.ndarray], seen: np.ndarray
) -> list[list[BoardDetection | None]]:
    """Projected corners for ``seen[c, f]`` True, else None (0.1 px noise)."""
    rng = np.random.default_rng(0)
    out: list[list[BoardDetection | None]] = []
    for c, cam in enumerate(cams):
        row: list[BoardDetection | None] = []
        for f, T in enumerate(poses):
            uv = cam.project(board_to_world(T)) + rng.normal(0, 0.1, (BOARD.num_corners, 2))
            row.append(BoardDetection(np.arange(BOARD.num_corners), uv) if seen[c, f] else None)
        out.append(row)
    return out


def test_exact_detections_and_robust_loss_against_a_bad_view() -> None:
    rng = np.random.default_rng(11)
    cams, poses = make_rig(rng, 3), board_poses(rng, 10)
    dets = exact_detections(cams, poses, np.ones((3, 10), bool))
    d = dets[2][4]  # one corrupted corner in one view
    assert d is not None
    bad = d.corners_px.copy()
    bad[5] += (3.0, -2.0)
    dets[2][4] = BoardDetection(d.ids, bad)
    result = calibrate_cameras(dets, [(W, H)] * 3, BOARD, intrinsics=[c.intrinsics for c in cams])
    for c in range(1, 3):
        R_true, c_true = relative(cams, c)
        R_est, c_est = relative(result.cameras, c)
        assert angle_deg(R_true, R_est) < 0.05 and np.linalg.norm(c_true - c_est) < 0.5
    assert result.reports[0].mean_error_px < 0.3


def test_disconnected_groups_are_named() -> None:
    rng = np.random.default_rng(12)
    cams, poses = make_rig(rng, 4), board_poses(rng, 12)
    seen = np.zeros((4, 12), bool)
    seen[[0, 1], :6] = True  # cameras 0 and 1 together, 2 and 3 together, never across
    seen[[2, 3], 6:] = True
    dets = exact_detections(cams, poses, seen)
    names = ["left", "mid", "right", "top"]
    groups = r"never seen by two cameras at the same time.*\[left, mid\] \| \[right, top\]"
    with pytest.raises(CalibrationError, match=groups):
        calibrate_cameras(dets, [(W, H)] * 4, BOARD, names, intrinsics=[c.intrinsics for c in cams])
    seen[3] = False
    seen[3, 0] = True  # 'top' saw the board only alone...
    seen[:3, 0] = False
    with pytest.raises(CalibrationError, match=r"\[top\]"):
        calibrate_cameras(exact_detections(cams, poses, seen), [(W, H)] * 4, BOARD, names,
                          intrinsics=[c.intrinsics for c in cams])  # fmt: skip


def test_camera_that_never_sees_the_board(rendered) -> None:
    cams, images = rendered
    blank = [np.full((H, W, 3), 90, np.uint8)] * 6
    with pytest.raises(CalibrationError, match=r"camera\(s\) \['empty'\] never saw the board"):
        calibrate_from_images([images[0][:6], blank], BOARD, names=["cam0", "empty"])


def test_too_few_views_for_intrinsics() -> None:
    rng = np.random.default_rng(13)
    cams, poses = make_rig(rng, 2), board_poses(rng, 8)
    seen = np.ones((2, 8), bool)
    seen[1, 3:] = False
    with pytest.raises(CalibrationError, match=r"camera 'cam1' saw the board in 3 frames, intrinsics need at least 5"):
        calibrate_cameras(exact_detections(cams, poses, seen), [(W, H)] * 2, BOARD)


# --- the initial solve and the bundle adjustment, on exact poses ------------------------------------


def cam_pose(c: int, cams: tuple[Camera, ...]) -> np.ndarray:
    """Camera ``c`` <- camera 0 ``(4, 4)``: the extrinsics a calibration with reference 0 must find."""
    return cam_from_world(cams[c]) @ np.linalg.inv(cam_from_world(cams[0]))


def rotation(deg: np.ndarray) -> np.ndarray:
    return cv2.Rodrigues(np.radians(np.asarray(deg, np.float64)).reshape(3, 1))[0]


def test_robust_mean_pose_ignores_a_gross_outlier() -> None:
    """Six candidates within ~0.1 deg / 0.2 mm of the truth and one 25 deg / 150 mm off: the robust mean
    stays within 0.1 deg / 0.3 mm (a plain mean would be ~3.6 deg / ~21 mm off)."""
    rng = np.random.default_rng(3)
    truth = np.eye(4)
    truth[:3, :3], truth[:3, 3] = rotation([10.0, -20.0, 5.0]), (100.0, -40.0, 600.0)
    candidates = []
    for _ in range(6):
        T = truth.copy()
        T[:3, :3] = rotation(rng.normal(0.0, 0.06, 3)) @ truth[:3, :3]
        T[:3, 3] += rng.normal(0.0, 0.12, 3)
        candidates.append(T)
    bad = truth.copy()
    bad[:3, :3] = rotation([0.0, 25.0, 0.0]) @ truth[:3, :3]
    bad[:3, 3] += (150.0, 0.0, 0.0)
    mean = robust_mean_pose([*candidates[:3], bad, *candidates[3:]])
    assert angle_deg(mean[:3, :3], truth[:3, :3]) < 0.1
    assert np.linalg.norm(mean[:3, 3] - truth[:3, 3]) < 0.3


def test_initial_extrinsics_chain_through_the_middle_camera() -> None:
    """Camera 2 never sees the board with camera 0: its extrinsics come through camera 1, exact to 1e-9 mm."""
    rng = np.random.default_rng(21)
    cams, boards = make_rig(rng, 3), board_poses(rng, 10)
    seen = [range(0, 5), range(10), range(5, 10)]
    poses = [{f: cam_from_world(cams[c]) @ boards[f] for f in seen[c]} for c in range(3)]
    check_connected(["a", "b", "c"], poses)
    found = initial_extrinsics(poses, reference=0)
    for c in range(3):
        np.testing.assert_allclose(found[c], cam_pose(c, cams), atol=1e-9)
    poses[1] = {}
    with pytest.raises(CalibrationError, match=r"\[a\] \| \[b\] \| \[c\]"):
        check_connected(["a", "b", "c"], poses)


def test_view_poses_drop_a_misdetected_view() -> None:
    """With 0.1 px corner noise the board poses are within 0.2 deg / 1 mm; a view whose corner ids are
    scrambled reprojects far beyond 5 px and is dropped."""
    rng = np.random.default_rng(22)
    cams, boards = make_rig(rng, 1), board_poses(rng, 4)
    dets = exact_detections(cams, boards, np.ones((1, 4), bool))[0]
    d = dets[2]
    assert d is not None
    dets[2] = BoardDetection(rng.permutation(d.ids), d.corners_px)
    views = {f: det for f, det in enumerate(dets) if det is not None}
    poses = view_poses("cam", views, cams[0].intrinsics, BOARD.corners_mm(), max_error_px=5.0)
    assert sorted(poses) == [0, 1, 3]
    for f, T in poses.items():
        truth = cam_from_world(cams[0]) @ boards[f]
        assert angle_deg(T[:3, :3], truth[:3, :3]) < 0.2 and np.linalg.norm(T[:3, 3] - truth[:3, 3]) < 1.0


def test_bundle_adjustment_recovers_from_a_perturbed_start() -> None:
    """Extrinsics and board poses started 1 deg / 10 mm off reach the optimum found from the truth (to
    1e-4 deg / 1e-3 mm), which lies within 0.1 deg / 1 mm of the truth, with the corners reprojecting to
    0.15 px (the detections' noise is 0.1 px per axis)."""
    rng = np.random.default_rng(23)
    cams, boards = make_rig(rng, 3), board_poses(rng, 10)
    dets = exact_detections(cams, boards, np.ones((3, 10), bool))
    views = [{f: d for f, d in enumerate(row) if d is not None} for row in dets]
    intr = [c.intrinsics for c in cams]

    def nudged(T: np.ndarray) -> np.ndarray:
        out = T.copy()
        out[:3, :3] = rotation(rng.normal(0.0, 1.0, 3)) @ T[:3, :3]
        out[:3, 3] += rng.normal(0.0, 10.0, 3)
        return out

    true_cams = [cam_pose(c, cams) for c in range(3)]
    true_boards = {f: cam_from_world(cams[0]) @ T for f, T in enumerate(boards)}
    ba = BundleAdjuster(BOARD.corners_mm(), views, views, intr, refine=[False] * 3, reference=0)
    assert ba.n_params == 12  # 6 per non-reference camera, intrinsics fixed
    optimum, _, _, _ = ba.run(true_cams, true_boards, intr)
    start_cams = [np.eye(4)] + [nudged(T) for T in true_cams[1:]]
    adjusted, boards_found, intr_found, iterations = ba.run(start_cams, {f: nudged(T) for f, T in true_boards.items()},
                                                            intr)  # fmt: skip
    assert intr_found == intr and 1 <= iterations <= 100
    np.testing.assert_array_equal(adjusted[0], np.eye(4))
    for c in (1, 2):
        assert angle_deg(adjusted[c][:3, :3], optimum[c][:3, :3]) < 1e-4
        assert np.linalg.norm(adjusted[c][:3, 3] - optimum[c][:3, 3]) < 1e-3
        assert angle_deg(adjusted[c][:3, :3], true_cams[c][:3, :3]) < 0.1
        assert np.linalg.norm(adjusted[c][:3, 3] - true_cams[c][:3, 3]) < 1.0
        assert ba.errors(c, adjusted[c], boards_found, intr[c]).mean() < 0.15


def test_huber_loss_is_quadratic_then_linear() -> None:
    np.testing.assert_allclose(huber(np.array([0.0, 0.5, 1.0, 3.0]), 1.0), [0.0, 0.125, 0.5, 2.5])


def test_board_config_validation_and_image(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="marker side"):
        BoardConfig(7, 5, 30.0, 30.0)
    with pytest.raises(CalibrationError, match="unknown ArUco dictionary"):
        BoardConfig(dictionary="DICT_9X9_1")
    with pytest.raises(CalibrationError, match="distortion must be one of"):
        CalibrationOptions(distortion="fisheye")  # type: ignore[arg-type]
    with pytest.raises(CalibrationError, match="has 50"):
        BoardConfig(12, 10, 30.0, 20.0, "DICT_4X4_50")
    image = BOARD.image(pixels_per_mm=2.0, margin_mm=5.0)
    assert image.shape == (5 * 35 * 2 + 20, 7 * 35 * 2 + 20) and image.dtype == np.uint8
    assert BoardDetector(BOARD)(image) is not None
    assert main(["--board", "7x5", "--square-mm", "35", "--marker-mm", "26", "--board-image",
                 str(tmp_path / "board.png"), "--dpi", "100"]) == 0  # fmt: skip
    assert cv2.imread(str(tmp_path / "board.png")) is not None


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory, rendered) -> list[str]:
    """Three of the rendered sequences as MJPG videos."""
    folder = tmp_path_factory.mktemp("videos")
    paths = []
    for c, seq in enumerate(rendered[1][:3]):
        path = folder / f"cam{c}.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (W, H))
        assert writer.isOpened()
        for im in seq:
            writer.write(np.ascontiguousarray(im[..., ::-1]))
        writer.release()
        paths.append(str(path))
    return paths


def _check_third_camera(cams: tuple[Camera, ...], loaded: tuple[Camera, ...]) -> None:
    R_true, c_true = relative(cams, 2)
    R_est, c_est = relative(loaded, 2)
    assert angle_deg(R_true, R_est) < 1.0 and np.linalg.norm(c_true - c_est) < 10.0


BOARD_ARGS = ["--board", "7x5", "--square-mm", "35", "--marker-mm", "26"]


def test_cli_on_videos(tmp_path: Path, rendered, videos: list[str]) -> None:
    out = tmp_path / "calibration.toml"
    rc = main(["--videos", *videos, "--names", "a", "b", "c", *BOARD_ARGS, "--every", "1", "--out", str(out)])
    assert rc == 0
    loaded = load_calibration(out)
    assert [c.name for c in loaded] == ["a", "b", "c"]
    _check_third_camera(rendered[0], loaded)


def test_cli_on_rig_file(tmp_path: Path, rendered, videos: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    rig = tmp_path / "rig.toml"
    rig.write_text("".join(f'[[cameras]]\nname = "{n}"\nsource = "{v}"\n\n' for n, v in zip("xyz", videos)))
    out = tmp_path / "calib.toml"
    assert main(["--rig", str(rig), *BOARD_ARGS, "--every", "1", "--out", str(out)]) == 0
    loaded = load_calibration(out)
    assert [c.name for c in loaded] == ["x", "y", "z"]
    _check_third_camera(rendered[0], loaded)
    # A bad board size is reported, not raised.
    assert main(["--rig", str(rig), "--board", "5x4", "--square-mm", "35", "--marker-mm", "26", "--out", str(out)]) == 2
    assert "never saw the board" in capsys.readouterr().err


def test_cli_runs_as_a_module(tmp_path: Path, repo_root: Path) -> None:
    """``python -m tracker.calibration`` from another directory: its help names it, and it draws a board."""
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    run = [sys.executable, "-m", "tracker.calibration"]
    shown = subprocess.run([*run, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and shown.stdout.startswith(f"usage: {PROG} ")
    drawn = subprocess.run([*run, *BOARD_ARGS, "--board-image", "board.png", "--dpi", "50"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert drawn.returncode == 0 and "wrote board.png" in drawn.stdout
    assert cv2.imread(str(tmp_path / "board.png")) is not None


def test_cli_argument_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as nothing:
        main([])
    assert nothing.value.code == 2 and "give --videos or --rig" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad_board:
        main(["--board", "7x5", "--square-mm", "30", "--marker-mm", "30", "--board-image", "x.png"])
    assert bad_board.value.code == 2 and "marker side" in capsys.readouterr().err


def test_package_exports_its_public_names() -> None:
    import tracker.calibration as calibration
    from tracker.calibration import board, solve

    assert calibration.calibrate_cameras is solve.calibrate_cameras
    assert calibration.BoardConfig is board.BoardConfig
    assert all(getattr(calibration, name) is not None for name in calibration.__all__)
