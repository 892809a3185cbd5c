"""A corrupt model file given on the command line stops the tracker at start-up with exit 9
(``Exit.MODEL``) and one clear log line naming the file: no traceback, no frame processed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tracker.cli import Exit, main


@pytest.fixture()
def corrupt(tmp_path: Path) -> Path:
    """A file of random bytes where a checkpoint should be."""
    path = tmp_path / "corrupt_weights.pt"
    path.write_bytes(bytes(range(256)) * 8)
    return path


def _run(argv: list[str], caplog: pytest.LogCaptureFixture) -> tuple[int, list[logging.LogRecord]]:
    caplog.clear()
    with caplog.at_level(logging.INFO):
        code = main(argv)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    return code, errors


def _assert_clear_model_error(code: int, errors: list[logging.LogRecord], file: Path, flag: str) -> None:
    assert code == Exit.MODEL
    assert len(errors) == 1, [r.getMessage() for r in errors]
    message = errors[0].getMessage()
    assert str(file) in message and flag in message
    assert "train it with" in message or "fit it with" in message  # says how to make a good one
    assert errors[0].exc_info is None and "Traceback" not in message


def test_corrupt_refiner_fails_at_start_up(corrupt: Path, caplog: pytest.LogCaptureFixture) -> None:
    code, errors = _run(["--source", "demo", "--no-view", "--frames", "2", "--refine", str(corrupt)], caplog)
    _assert_clear_model_error(code, errors, corrupt, "--refine")
    assert "done:" not in caplog.text  # the stream never started


def test_corrupt_prior_fails_at_start_up(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = tmp_path / "prior.npz"
    bad.write_bytes(b"PK\x03\x04 truncated zip")
    code, errors = _run(["--source", "demo", "--no-view", "--frames", "2", "--prior", str(bad)], caplog)
    _assert_clear_model_error(code, errors, bad, "--prior")


def test_corrupt_v2v_weights_fail_at_start_up_not_on_the_first_depth_frame(
        corrupt: Path, caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    code, errors = _run(["--source", "synthetic:1", "--no-view", "--frames", "2", "--estimator", "v2v",
                         "--v2v-weights", str(corrupt)], caplog)  # fmt: skip
    _assert_clear_model_error(code, errors, corrupt, "v2v_light")
    assert "done:" not in caplog.text


def test_corrupt_learned_fusion_weights_fail_at_start_up(corrupt: Path, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    config = tmp_path / "run.toml"
    config.write_text(f'[fusion]\nmethod = "learned"\nweights = "{corrupt}"\n')
    code, errors = _run(["--config", str(config), "--source", "synthetic:3:ring:4", "--no-view", "--frames", "2"],
                        caplog)  # fmt: skip
    _assert_clear_model_error(code, errors, corrupt, "--fusion learned")
