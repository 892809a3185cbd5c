"""``run_tracker.py`` on a RealSense recording (written here with the SDK's software device from the
synthetic engine) with each depth estimator, and its depth error paths."""

from pathlib import Path

import numpy as np
import pytest

from tracker import cli as run_tracker
from tracker.cli import Exit
from tracker.sinks.export import read_jsonl

NUM_FRAMES = 3


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A 320x240 RGB-D .db3 recording of one hand and its ground-truth joints (mm, camera frame)."""
    from devices.realsense_record import write_recording
    from devices.synthetic import SyntheticDevice
    from models.synthetic import SceneConfig

    cfg = SceneConfig(num_frames=NUM_FRAMES, width=320, height=240, back_probability=0.0)
    with SyntheticDevice(seed=21, config=cfg) as dev:
        framesets = [dev.read() for _ in range(NUM_FRAMES)]
    path = tmp_path_factory.mktemp("cli_depth") / "hand.db3"
    write_recording(path, framesets)
    gt = np.stack([fs.frames[0].ground_truth.joints_3d[0] for fs in framesets])
    return path, gt


@pytest.mark.parametrize("estimator", ["v2v", "fused"])
def test_recording_runs_with_depth_estimators(tmp_path: Path, recording, estimator: str) -> None:
    path, gt = recording
    out = tmp_path / "out.jsonl"
    code = run_tracker.main(["--source", str(path), "--no-view", "--speed", "max", "--estimator", estimator,
                             "--smoothing", "off", "--export", str(out), "--device", "cpu"])
    assert code == Exit.OK
    frames = read_jsonl(out)
    assert [f["frame_index"] for f in frames] == list(range(NUM_FRAMES))
    errors = [np.linalg.norm(np.array(f["hands"][0]["joints_3d"]) - g, axis=-1).mean()
              for f, g in zip(frames, gt) if f["hands"]]
    assert len(errors) >= NUM_FRAMES - 1 and np.median(errors) < 35.0, errors


def test_missing_v2v_weights_is_a_usage_error(tmp_path: Path, recording) -> None:
    path, _ = recording
    code = run_tracker.main(["--source", str(path), "--no-view", "--estimator", "v2v",
                             "--v2v-weights", str(tmp_path / "missing.pt")])
    assert code == Exit.MODEL


def test_corrupt_recording_is_a_recording_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.db3"
    bad.write_bytes(b"not a rosbag2 database" * 50)
    assert run_tracker.main(["--source", str(bad), "--no-view", "--estimator", "v2v"]) == Exit.RECORDING


def test_no_realsense_attached_says_so() -> None:
    assert run_tracker.main(["--source", "realsense", "--no-view", "--estimator", "v2v"]) == Exit.SOURCE
