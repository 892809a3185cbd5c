"""Ctrl-C and SIGTERM, at start-up and while running: exit code 130, a clean log, no traceback."""

import signal
import subprocess
import sys
import time

import pytest


def _run_and_signal(args, sig, after_s, tmp_path):
    """Start ``handtrack``, wait for its "starting:" log line (the CLI has parsed its options and
    begins to load models and open the source), then ``after_s`` seconds, then send ``sig``."""
    out = tmp_path / "x.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "tracker.cli", *args, "--no-view", "--export", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = []
    for line in proc.stderr:
        err.append(line)
        if "starting:" in line:
            break
    time.sleep(after_s)
    proc.send_signal(sig)
    _, rest = proc.communicate(timeout=120)
    return proc.returncode, "".join(err) + rest, out


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_while_tracking_stops_cleanly(sig, tmp_path):
    code, err, out = _run_and_signal(["--source", "demo", "--loop", "--speed", "realtime"], sig, 4.0, tmp_path)
    assert code == 130, err[-2000:]
    assert "Traceback" not in err
    lines = out.read_text().splitlines()
    assert lines and all(line.endswith("}") for line in lines)  # the export ends on a complete frame


@pytest.mark.slow
def test_ctrl_c_during_start_up_is_not_a_traceback(tmp_path):
    """SIGINT while the models load (V2V-PoseNet is loaded at start-up with --estimator v2v)."""
    code, err, _ = _run_and_signal(["--source", "synthetic:1", "--estimator", "v2v"], signal.SIGINT, 0.0, tmp_path)
    assert code == 130, err[-2000:]
    assert "Traceback" not in err
    assert "interrupted" in err
