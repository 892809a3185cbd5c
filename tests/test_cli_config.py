"""The CLI's configuration: --config, --print-config, flags over the file, and the audit's error cases."""

import logging
import tomllib
from pathlib import Path

import pytest

from tracker import cli
from tracker.cli import Exit, config_from_args
from tracker.config import TrackerConfig, config_from_dict, load_config
from tracker.core.errors import (
    AcceleratorError,
    CalibrationError,
    ConfigError,
    DeviceDisconnectedError,
    DeviceNotFoundError,
    HandtrackError,
    ModelError,
    OutputError,
    RecordingError,
    ViewError,
)


def _config(argv):
    return config_from_args(cli.build_parser().parse_args(argv))


def test_no_flags_give_the_defaults():
    assert _config([]) == TrackerConfig()


def test_flags_override_the_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('device = "cpu"\n[landmarks]\nmax_hands = 1\nmodel_complexity = 0\n[source]\nhfov_deg = 70.0\n')
    config = _config(["--config", str(path), "--max-hands", "2", "--smoothing", "off", "--prior"])
    assert config.device == "cpu"  # from the file
    assert config.landmarks.model_complexity == 0  # from the file
    assert config.source.hfov_deg == 70.0  # from the file
    assert config.landmarks.max_hands == 2  # the flag wins
    assert config.smoothing is None
    assert config.prior.enabled and config.prior.path is None
    assert _config(["--config", str(path), "--model", "full"]).landmarks.model_complexity == 1


def test_print_config_writes_the_effective_config(tmp_path, capsys):
    path = tmp_path / "run.toml"
    path.write_text('[landmarks]\nmax_hands = 1\n')
    assert cli.main(["--config", str(path), "--hfov", "75", "--export", "x.csv", "--print-config"]) == Exit.OK
    text = capsys.readouterr().out
    printed = config_from_dict(tomllib.loads(text))
    assert printed.landmarks.max_hands == 1 and printed.source.hfov_deg == 75.0
    assert printed.output.export == Path("x.csv").resolve()
    (tmp_path / "again.toml").write_text(text)
    assert load_config(tmp_path / "again.toml") == printed


@pytest.mark.parametrize("argv", [
    ["--hfov", "0"], ["--hfov", "200"], ["--hfov", "nan"], ["--fps", "0"], ["--fps", "-5"],
    ["--frames", "0"], ["--max-hands", "0"], ["--smoothing", "silky"],
])
def test_bad_values_are_usage_errors_before_anything_starts(argv, caplog):
    caplog.set_level(logging.ERROR)
    assert cli.main(["--source", "demo", "--no-view", *argv]) == Exit.USAGE
    assert caplog.records and "Traceback" not in caplog.text


def test_bad_config_file_is_a_usage_error(tmp_path, caplog):
    bad = tmp_path / "bad.toml"
    bad.write_text("[landmarks]\nmax_handz = 1\n")
    assert cli.main(["--config", str(bad), "--no-view"]) == Exit.USAGE
    assert "landmarks.max_handz" in caplog.text
    assert cli.main(["--config", str(tmp_path / "none.toml"), "--no-view"]) == Exit.USAGE


def test_fps_zero_on_a_folder_is_refused(tmp_path, caplog):
    import cv2
    import numpy as np

    for i in range(2):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.zeros((48, 64, 3), np.uint8))
    assert cli.main(["--source", str(tmp_path), "--fps", "0", "--no-view"]) == Exit.USAGE
    assert "fps" in caplog.text


def test_learned_fusion_on_one_camera_is_warned(caplog):
    caplog.set_level(logging.WARNING)
    assert cli.main(["--source", "demo", "--no-view", "--frames", "2", "--fusion", "learned"]) == Exit.OK
    assert "only applies to rig sources" in caplog.text


def test_save_video_into_a_bad_place_fails_before_models_load(tmp_path, caplog):
    assert cli.main(["--source", "demo", "--no-view", "--save-video", str(tmp_path / "v.mkv")]) == Exit.OUTPUT
    assert "unsupported extension" in caplog.text and "codec" not in caplog.text
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli.main(["--source", "demo", "--no-view", "--save-video", str(blocker / "v.mp4")]) == Exit.OUTPUT


def test_exit_code_table_covers_every_family():
    cases = {
        ConfigError("x"): Exit.USAGE, DeviceNotFoundError("x"): Exit.SOURCE, RecordingError("x"): Exit.RECORDING,
        DeviceDisconnectedError("x"): Exit.DISCONNECTED, CalibrationError("x"): Exit.CALIBRATION,
        ViewError("x"): Exit.OUTPUT, OutputError("x"): Exit.OUTPUT, AcceleratorError("x"): Exit.ACCEL,
        ModelError("x"): Exit.MODEL, HandtrackError("x"): Exit.USAGE,
    }
    for error, code in cases.items():
        assert cli.exit_code(error) == code, error


def test_help_says_what_auto_tries(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "a connected RealSense (RGB-D), else webcam 0, else the bundled demo" in text
