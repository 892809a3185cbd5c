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


@pytest.mark.slow
def test_sigterm_finalises_every_output(tmp_path):
    """SIGTERM mid-run: the JSONL, CSV and NPZ exports are complete and the MP4 of the view plays."""
    import cv2
    import numpy as np

    outs = {fmt: tmp_path / f"x.{fmt}" for fmt in ("jsonl", "csv", "npz")}
    video = tmp_path / "view.mp4"
    procs = []
    for fmt, out in outs.items():
        extra = ["--save-video", str(video)] if fmt == "npz" else []
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tracker.cli", "--source", "demo", "--loop", "--speed", "realtime", "--no-view",
             "--export", str(out), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    time.sleep(8.0)
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err[-2000:]
        assert "Traceback" not in err
    jsonl = outs["jsonl"].read_text().splitlines()
    assert len(jsonl) > 3 and all(line.endswith("}") for line in jsonl)
    csv = outs["csv"].read_text().splitlines()
    assert len(csv) > 3 and all(len(line.split(",")) == 133 for line in csv)
    with np.load(outs["npz"]) as npz:
        assert len(npz["frame_index"]) > 3 and npz["joints_3d"].shape[1:] == (21, 3)
    cap = cv2.VideoCapture(str(video))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    assert frames == len(npz_frames(outs["npz"]))


def npz_frames(path):
    import numpy as np

    with np.load(path) as npz:
        return npz["frame_index"].tolist()


@pytest.mark.slow
def test_sigterm_finalises_a_recording(tmp_path):
    """SIGTERM while recording: the file is closed cleanly (summary and index present) and replays."""
    from tracker.io.recording import inspect_recording

    rec = tmp_path / "s.mcap"
    proc = subprocess.Popen([sys.executable, "-m", "tracker.cli", "--source", "demo", "--loop", "--speed", "realtime",
                             "--no-view", "--record", str(rec)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(6.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    info = inspect_recording(rec)
    assert info.complete and info.summary and info.framesets > 3, info
    assert "handtrack.recording.end" in info.metadata
