"""quiet_native_logs: native start-up noise is dropped from fd 2, everything else passes in order.

Run in child processes, since the filter swaps the process's file descriptor 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tracker.runtime.quiet import is_noise

XNNPACK = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
FEEDBACK = ("W0000 00:00:1796328638.280355   11347 inference_feedback_manager.cc:114] Feedback manager requires "
            "a model with a single signature inference. Disabling support for feedback tensors.")  # fmt: skip


def run(repo_root: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=120,
                          check=True)  # fmt: skip


def test_is_noise_knows_the_start_up_lines_and_keeps_errors() -> None:
    assert all(is_noise(line.encode()) for line in (XNNPACK, ABSL_BANNER, FEEDBACK, XNNPACK + "\r"))
    for kept in ("E0000 00:00:1796328638.280355   11347 calculator_graph.cc:887] INVALID_ARGUMENT: bad",
                 FEEDBACK.replace("W0000", "W1203 20:10"),  # after absl::InitializeLog: not start-up noise
                 "INFO handtrack: source: demo.mp4 (playback)", "INFO: " + "something else", ""):  # fmt: skip
        assert not is_noise(kept.encode()), kept


def test_noise_is_dropped_and_everything_else_passes_in_order(repo_root: Path) -> None:
    code = f"""
import logging, os, sys, time
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
from tracker.runtime.quiet import quiet_native_logs
with quiet_native_logs():
    logging.getLogger("app").info("first")
    os.write(2, {(XNNPACK + chr(10) + ABSL_BANNER + chr(10)).encode()!r})
    os.write(2, b"native line one\\n" + {FEEDBACK[:40].encode()!r})
    os.write(2, {FEEDBACK[40:].encode()!r} + b"\\nnative line two\\n")
    print("to stdout")
    logging.getLogger("app").warning("second")
    sys.stderr.write("a prompt without a line end")
    sys.stderr.flush()
    time.sleep(0.3)
    os.write(2, b"E0000 00:00:1.5 7 graph.cc:1] an error\\n")
logging.getLogger("app").info("after the filter")
"""
    done = run(repo_root, code)
    assert done.stdout == "to stdout\n"
    assert done.stderr.splitlines() == [
        "INFO app: first",
        "native line one",
        "native line two",
        "WARNING app: second",
        "a prompt without a line endE0000 00:00:1.5 7 graph.cc:1] an error",
        "INFO app: after the filter",
    ]


def test_disabled_leaves_stderr_alone(repo_root: Path) -> None:
    code = f"""
import os
from tracker.runtime.quiet import quiet_native_logs
with quiet_native_logs(enabled=False):
    os.write(2, {(XNNPACK + chr(10)).encode()!r})
"""
    assert run(repo_root, code).stderr == XNNPACK + "\n"


@pytest.mark.slow
def test_mediapipe_start_up_prints_nothing(repo_root: Path) -> None:
    """The real thing: MediaPipe Hands built and run once prints its start-up lines without the
    filter and none with it (mediapipe 0.10.14: 4 lines: XNNPACK, the absl banner, 2 x feedback)."""
    code = """
import logging, sys, numpy as np
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
from tracker.runtime.quiet import quiet_native_logs
with quiet_native_logs(enabled=sys.argv[1] == "on"):
    import mediapipe as mp
    hands = mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=2, model_complexity=1)
    hands.process(np.zeros((480, 640, 3), np.uint8))
    hands.close()
    logging.getLogger("app").info("done")
"""

    def stderr(mode: str) -> list[str]:
        return subprocess.run([sys.executable, "-c", code, mode], cwd=repo_root, capture_output=True, text=True,
                              timeout=120, check=True).stderr.splitlines()  # fmt: skip

    noisy = stderr("off")
    assert XNNPACK in noisy and ABSL_BANNER in noisy and noisy[-1] == "INFO app: done"
    assert stderr("on") == ["INFO app: done"]
