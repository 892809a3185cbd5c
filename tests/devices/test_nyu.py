"""NYU / ICVL readers (devices/nyu.py).

The first part runs everywhere on files written in the test. The second part checks the readers on
the real NYU test frame and the benchmark label files under ``../shared/data`` (set
``HANDTRACK_DATA`` to point elsewhere) and is skipped where that folder is absent (CI).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import cv2
import numpy as np
import pytest

from devices.base import Device
from devices.nyu import NyuDepthFolderDevice
from models.depth_datasets import (
    ICVL_BENCHMARK,
    ICVL_INTRINSICS,
    NYU_BENCHMARK,
    NYU_INTRINSICS,
    camera_to_uvd,
    load_icvl_depth,
    load_nyu_depth,
    read_labels,
    uvd_to_camera,
    uvd_to_xyz,
    xyz_to_uvd,
)
from tracker.core.data_root import data_root
from tracker.core.errors import ConfigError, DeviceNotFoundError, RecordingError, UnsupportedSourceError
from tracker.core.joints import JOINT_INDEX, MP_TO_ICVL, MP_TO_NYU, NYU36_TO_NYU, NYU_JOINT_NAMES, common_joints

# --- Helpers -------------------------------------------------------------------------------------


def write_nyu_depth(path: Path, depth: np.ndarray) -> Path:
    """Write ``depth`` (uint16 mm) the way NYU does: high byte in green, low byte in blue, red 0."""
    depth = depth.astype(np.uint16)
    bgr = np.stack([depth & 0xFF, depth >> 8, np.zeros_like(depth)], axis=-1).astype(np.uint8)
    assert cv2.imwrite(str(path), bgr)
    return path


def write_labels(path: Path, rows: list[str]) -> Path:
    text = "".join(row + "\n" for row in rows)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def label_row(joints: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(f"{x:.3f}" for x in rng.uniform(1, 600, size=3 * joints))


# --- Depth images --------------------------------------------------------------------------------


def test_nyu_depth_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    depth = rng.integers(0, 65536, size=(48, 64), dtype=np.uint16)
    depth[0, :4] = [0, 255, 256, 65535]  # byte boundaries
    out = load_nyu_depth(write_nyu_depth(tmp_path / "depth_1_0000001.png", depth))
    assert out.dtype == np.uint16 and out.shape == (48, 64)
    np.testing.assert_array_equal(out, depth)


def test_nyu_depth_errors(tmp_path: Path) -> None:
    with pytest.raises(DeviceNotFoundError, match="does not exist"):
        load_nyu_depth(tmp_path / "missing.png")
    with pytest.raises(DeviceNotFoundError, match="folder"):
        load_nyu_depth(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(RecordingError, match="cannot decode"):
        load_nyu_depth(tmp_path / "empty.png")
    good = write_nyu_depth(tmp_path / "good.png", np.full((8, 8), 800))
    (tmp_path / "truncated.png").write_bytes(good.read_bytes()[:30])
    with pytest.raises(RecordingError, match="cannot decode"):
        load_nyu_depth(tmp_path / "truncated.png")
    colour = np.full((8, 8, 3), (10, 20, 30), np.uint8)  # BGR with red 30
    cv2.imwrite(str(tmp_path / "rgb.png"), colour)
    with pytest.raises(UnsupportedSourceError, match="red channel"):
        load_nyu_depth(tmp_path / "rgb.png")
    cv2.imwrite(str(tmp_path / "d16.png"), np.full((8, 8), 800, np.uint16))
    with pytest.raises(UnsupportedSourceError, match="load_icvl_depth"):
        load_nyu_depth(tmp_path / "d16.png")
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((8, 8), 8, np.uint8))
    with pytest.raises(UnsupportedSourceError, match="8-bit RGB"):
        load_nyu_depth(tmp_path / "grey.png")


def test_icvl_depth(tmp_path: Path) -> None:
    depth = np.random.default_rng(2).integers(0, 3000, size=(24, 32), dtype=np.uint16)
    assert cv2.imwrite(str(tmp_path / "image_0000.png"), depth)
    np.testing.assert_array_equal(load_icvl_depth(tmp_path / "image_0000.png"), depth)
    write_nyu_depth(tmp_path / "nyu.png", depth)
    with pytest.raises(UnsupportedSourceError, match="load_nyu_depth"):
        load_icvl_depth(tmp_path / "nyu.png")
    with pytest.raises(DeviceNotFoundError):
        load_icvl_depth(tmp_path / "missing.png")


# --- uvd <-> 3D ------------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [NYU_BENCHMARK, ICVL_BENCHMARK], ids=["nyu", "icvl"])
def test_uvd_xyz_round_trip(params) -> None:
    rng = np.random.default_rng(3)
    uvd = np.stack([rng.uniform(0, 640, (5, 14)), rng.uniform(0, 480, (5, 14)), rng.uniform(300, 1500, (5, 14))], -1)
    xyz = uvd_to_xyz(uvd, *params)
    assert xyz.shape == (5, 14, 3)
    np.testing.assert_allclose(xyz[..., 2], uvd[..., 2])
    np.testing.assert_allclose(xyz_to_uvd(xyz, *params), uvd, rtol=0, atol=1e-9)


def test_benchmark_and_camera_frames() -> None:
    uvd = np.array([[100.0, 50.0, 700.0], [320.0, 240.0, 800.0], [600.0, 400.0, 900.0]])
    bench = uvd_to_xyz(uvd, *NYU_BENCHMARK)
    cam = uvd_to_camera(uvd, NYU_INTRINSICS)
    np.testing.assert_allclose(cam, bench * [1, -1, 1])  # NYU's benchmark frame has y up
    assert cam[0, 1] < 0 and bench[0, 1] > 0  # a pixel above the centre: y up in one, down in the other
    np.testing.assert_allclose(uvd_to_camera(uvd, ICVL_INTRINSICS), uvd_to_xyz(uvd, *ICVL_BENCHMARK))
    np.testing.assert_allclose(camera_to_uvd(cam, NYU_INTRINSICS), uvd, atol=1e-9)
    np.testing.assert_allclose(NYU_INTRINSICS.project(cam), uvd[:, :2], atol=1e-9)  # same as tracker.core.structures


def test_uvd_misuse() -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        uvd_to_xyz(np.zeros((4, 2)), *NYU_BENCHMARK)
    with pytest.raises(ValueError, match="in front of the camera"):
        xyz_to_uvd(np.array([[0.0, 0.0, 0.0]]), *NYU_BENCHMARK)
    with pytest.raises(ValueError, match="non-zero"):
        uvd_to_xyz(np.ones(3), 0.0, 1.0, 0.0, 0.0)


# --- Label files -----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".txt", ".txt.gz"])
def test_read_labels_round_trip(tmp_path: Path, suffix: str) -> None:
    rows = [label_row(16, seed) for seed in range(3)]
    path = write_labels(tmp_path / f"labels{suffix}", rows + ["", "  "])  # trailing blank lines are fine
    labels = read_labels(path, "icvl")
    assert labels.shape == (3, 16, 3) and labels.dtype == np.float64
    np.testing.assert_allclose(labels.reshape(3, -1), [[float(x) for x in r.split()] for r in rows])
    assert read_labels(write_labels(tmp_path / "centres.txt", ["1 2 3", "4 5 6"]), 1).shape == (2, 1, 3)


def test_read_labels_misuse(tmp_path: Path) -> None:
    ok = label_row(14)
    cases = {
        "wrong_count": ([ok, ok + " 1.0 2.0 3.0"], r"line 2: 45 values, expected 42 \(14 joints"),
        "nan": ([ok, ok.replace(ok.split()[4], "nan", 1)], r"line 2: value 5 \(joint 1\) is 'nan'"),
        "inf": ([ok.replace(ok.split()[0], "inf", 1)], "line 1: value 1 .* must be finite"),
        "text": ([ok, " ".join(["u"] + ok.split()[1:])], "line 2: could not convert string to float: 'u'"),
        "blank_inside": ([ok, "", ok], "line 2: 0 values"),
        "empty": ([], "is empty"),
        "only_blank": (["", "   "], "is empty"),
    }
    for name, (rows, message) in cases.items():
        with pytest.raises(ValueError, match=message):
            read_labels(write_labels(tmp_path / f"{name}.txt", rows), "nyu")
    icvl_file = write_labels(tmp_path / "icvl.txt", [label_row(16)])
    with pytest.raises(ValueError, match="fits the 'icvl' layout"):
        read_labels(icvl_file, "nyu")
    with pytest.raises(ValueError, match="unknown joint layout 'msra'"):
        read_labels(icvl_file, "msra")
    with pytest.raises(ValueError, match="positive number"):
        read_labels(icvl_file, 0)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_labels(tmp_path / "missing.txt", "nyu")
    (tmp_path / "bad.txt.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="not a valid gzip"):
        read_labels(tmp_path / "bad.txt.gz", "nyu")
    write_labels(tmp_path / "packed.txt", [ok]).write_bytes(gzip.compress(ok.encode()))  # gzip without .gz
    with pytest.raises(ValueError, match="not plain text"):
        read_labels(tmp_path / "packed.txt", "nyu")


# --- Folder playback -------------------------------------------------------------------------------


def test_folder_device(tmp_path: Path) -> None:
    depths = {n: np.full((48, 64), 700 + n, np.uint16) for n in (1, 2, 10)}
    for n, depth in depths.items():
        write_nyu_depth(tmp_path / f"depth_1_{n:07d}.png", depth)
    write_nyu_depth(tmp_path / "depth_2_0000001.png", np.full((48, 64), 5, np.uint16))  # other camera
    cv2.imwrite(str(tmp_path / "rgb_1_0000002.png"), np.full((48, 64, 3), (30, 20, 10), np.uint8))  # BGR
    intr = NYU_INTRINSICS.scaled_to(64, 48)
    with NyuDepthFolderDevice(tmp_path, fps=10.0, intrinsics=intr) as dev:
        assert isinstance(dev, Device) and dev.live is False and dev.frame_count == 3
        frames = []
        while (fs := dev.read()) is not None:
            frames.append(fs.frames[0])
    assert [int(f.depth[0, 0]) for f in frames] == [701, 702, 710]  # frame-number order, camera 1 only
    assert [f.index for f in frames] == [0, 1, 2]
    np.testing.assert_allclose([f.timestamp for f in frames], [0.0, 0.1, 0.2])
    assert not frames[0].image.any() and frames[0].image.shape == (48, 64, 3)  # no rgb: black
    np.testing.assert_array_equal(frames[1].image[0, 0], (10, 20, 30))  # rgb paired, as RGB
    assert frames[0].camera.intrinsics == intr


def test_folder_device_loops(tmp_path: Path) -> None:
    for n in (1, 2):
        write_nyu_depth(tmp_path / f"depth_1_{n:07d}.png", np.full((48, 64), 700 + n, np.uint16))
    with NyuDepthFolderDevice(tmp_path, fps=10.0, loop=True) as dev:
        frames = [dev.read().frames[0] for _ in range(5)]
    assert [int(f.depth[0, 0]) for f in frames] == [701, 702, 701, 702, 701]
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose([f.timestamp for f in frames], [0.0, 0.1, 0.2, 0.3, 0.4])


def test_folder_device_errors(tmp_path: Path) -> None:
    with pytest.raises(DeviceNotFoundError, match="does not exist"):
        NyuDepthFolderDevice(tmp_path / "missing").open()
    with pytest.raises(RecordingError, match="no depth_1_NNNNNNN.png"):
        NyuDepthFolderDevice(tmp_path).open()
    with pytest.raises(ValueError, match="cameras 1, 2 and 3"):
        NyuDepthFolderDevice(tmp_path, camera=4)
    with pytest.raises(RuntimeError, match="not open"):
        NyuDepthFolderDevice(tmp_path).read()
    with pytest.raises(ConfigError, match=r"NYU folder .*: the playback rate \(--fps\) must be a positive number"):
        NyuDepthFolderDevice(tmp_path, fps=0.0)


# --- The real data (skipped without ../shared/data) --------------------------------------------------

SHARED = data_root()
FRAME_DIR = SHARED / "nyu_test_frame1"
EVAL_DIR = SHARED / "nyu_icvl_eval"
NYU_GT = EVAL_DIR / "nyu" / "groundtruth" / "nyu_test_groundtruth_label.txt.gz"
ICVL_GT = EVAL_DIR / "icvl" / "groundtruth" / "icvl_test_groundtruth_label.txt.gz"

needs_frame = pytest.mark.skipif(not (FRAME_DIR / "depth_1_0000001.png").is_file() or not NYU_GT.is_file(),
                                 reason=f"real NYU data not found under {SHARED}")  # fmt: skip
needs_labels = pytest.mark.skipif(not (NYU_GT.is_file() and ICVL_GT.is_file()),
                                  reason=f"NYU / ICVL label files not found under {EVAL_DIR}")  # fmt: skip


@pytest.fixture(scope="module")
def nyu_gt() -> np.ndarray:
    return read_labels(NYU_GT, "nyu")


@pytest.fixture(scope="module")
def icvl_gt() -> np.ndarray:
    return read_labels(ICVL_GT, "icvl")


@needs_frame
def test_real_frame_decodes(nyu_gt: np.ndarray) -> None:
    depth = load_nyu_depth(FRAME_DIR / "depth_1_0000001.png")
    assert depth.shape == (480, 640) and depth.dtype == np.uint16
    assert (depth.min(), depth.max()) == (731, 2001)  # PROVENANCE: 731-2001 mm, 2001 = far background
    assert 0.55 < np.mean(depth == 2001) < 0.65
    with pytest.raises(UnsupportedSourceError, match="red channel"):
        load_nyu_depth(FRAME_DIR / "rgb_1_0000001.png")


@needs_frame
def test_real_frame_gt_joints_lie_on_the_hand(nyu_gt: np.ndarray) -> None:
    gt = nyu_gt[0]  # line 1 = test frame 1
    depth = load_nyu_depth(FRAME_DIR / "depth_1_0000001.png").astype(np.float64)
    u, v = np.round(gt[:, 0]).astype(int), np.round(gt[:, 1]).astype(int)
    behind = gt[:, 2] - depth[v, u]  # joint centres lie behind the skin the sensor sees
    # measured: 2.6 .. 32.8 mm, median 10.1; the two wrist points are the deepest
    assert np.all((behind > 0) & (behind < 40)), behind
    assert np.sum(behind < 30) >= 12 and np.median(behind) < 15

    # in 3D (camera frame): every GT joint is close to the back-projected hand surface
    vv, uu = np.nonzero(depth < 2001)
    surface = uvd_to_camera(np.stack([uu, vv, depth[vv, uu]], -1), NYU_INTRINSICS)
    joints = uvd_to_camera(gt, NYU_INTRINSICS)
    nearest = np.linalg.norm(surface[None] - joints[:, None], axis=-1).min(axis=1)
    assert nearest.max() < 25 and np.median(nearest) < 12, nearest  # measured 2.7 .. 22.6, median 9.7


@needs_frame
def test_real_folder_plays_back() -> None:
    with NyuDepthFolderDevice(FRAME_DIR) as dev:
        fs = dev.read()
        assert dev.read() is None
    frame = fs.frames[0]
    np.testing.assert_array_equal(frame.depth, load_nyu_depth(FRAME_DIR / "depth_1_0000001.png"))
    assert frame.image.shape == (480, 640, 3) and frame.image.any()  # the paired rgb_1_0000001.png
    assert frame.camera.intrinsics == NYU_INTRINSICS


@needs_labels
def test_real_label_files(nyu_gt: np.ndarray, icvl_gt: np.ndarray) -> None:
    assert nyu_gt.shape == (2440, 14, 3) and icvl_gt.shape == (702, 16, 3)  # the development split
    lists = [EVAL_DIR / n / "groundtruth" / f"{n}_test_list.txt" for n in ("nyu", "icvl")]
    assert [len(p.read_text().split()) for p in lists] == [2440, 702]
    assert 500 < nyu_gt[..., 2].min() and nyu_gt[..., 2].max() < 1500  # d in mm
    assert read_labels(EVAL_DIR / "nyu" / "centers" / "nyu_center.txt", 1).shape == (2440, 1, 3)
    results = sorted((EVAL_DIR / "nyu" / "results").glob("*V2V*.txt.gz"))
    if results:
        pred = read_labels(results[0], "nyu")
        assert pred.shape == nyu_gt.shape
        err = np.linalg.norm(uvd_to_xyz(pred, *NYU_BENCHMARK) - uvd_to_xyz(nyu_gt, *NYU_BENCHMARK), axis=-1)
        assert err.mean() == pytest.approx(4.217, abs=0.01)  # V2V-PoseNet on frames 1-2440, PROVENANCE
    with pytest.raises(ValueError, match="expected 48 .* fits the 'nyu' layout"):
        read_labels(NYU_GT, "icvl")


def _bone(joints_xyz: np.ndarray, a: int, b: int) -> float:
    return float(np.median(np.linalg.norm(joints_xyz[:, a] - joints_xyz[:, b], axis=-1)))


@needs_labels
def test_bone_lengths_support_the_mappings(nyu_gt: np.ndarray, icvl_gt: np.ndarray) -> None:
    """The evidence quoted in tracker/joints.py: NYU/ICVL finger '.R' is the PIP, not the MCP."""
    nyu = uvd_to_xyz(nyu_gt, *NYU_BENCHMARK)
    name = {n: i for i, n in enumerate(NYU_JOINT_NAMES)}
    for finger in ("Index", "Mid", "Ring", "Pinky"):
        tip_to_r = _bone(nyu, name[f"{finger}.T"], name[f"{finger}.R"])
        assert 35 < tip_to_r < 65, (finger, tip_to_r)  # middle + distal phalanx; the MCP would be 75+
    assert _bone(nyu, name["Thumb.T"], name["Thumb.R2"]) < 30  # distal phalanx: R2 is the IP
    icvl = uvd_to_xyz(icvl_gt, *ICVL_BENCHMARK)
    for f in range(4):
        r, m, t = 4 + 3 * f, 5 + 3 * f, 6 + 3 * f
        r_m, m_t = _bone(icvl, r, m), _bone(icvl, m, t)
        assert r_m < 36 and 1.1 < r_m / m_t < 1.6, (f, r_m, m_t)  # middle / distal, not proximal / middle
    assert MP_TO_NYU[name["Mid.R"]] == JOINT_INDEX["middle_pip"] and MP_TO_ICVL[7] == JOINT_INDEX["middle_pip"]
    assert len(common_joints("nyu")[0]) == 11


@needs_frame
def test_real_nyu_convnet_predictions(nyu_gt: np.ndarray) -> None:
    scipy_io = pytest.importorskip("scipy.io")  # scipy is not a dependency of handtrack
    mat = scipy_io.loadmat(FRAME_DIR / "test_predictions.mat")
    pred = mat["pred_joint_uvconf"][0]
    assert pred.shape == (8252, 36, 3)
    assert tuple(np.flatnonzero(np.abs(pred).sum(axis=(0, 2)))) == NYU36_TO_NYU
    uv = pred[: len(nyu_gt), list(NYU36_TO_NYU), :2]  # the 14 benchmark joints, in label-file order
    err = np.linalg.norm(uv - nyu_gt[..., :2], axis=-1)
    assert err[0].mean() < 8 and err.mean() < 10  # frame 1: 4.6 px
