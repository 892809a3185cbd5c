"""``handtrack batch`` end to end, local pool and Ray, on small videos cut from the bundled demo recording,
an image folder and a corrupt file.

The numbers protected: every export of a batch is byte for byte the export of a single
``handtrack --source INPUT --no-view --export FILE`` run (also for the input a worker runs after
another one, with its models kept); the manifest names the corrupt input as failed
(``RecordingError``); exit codes 10 (some failed), 0, 2, 6, 9, 130; a re-run touches no finished export,
``--overwrite`` redoes every one; SIGTERM leaves no partial file and the next run resumes; a killed
worker fails only its input.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from tracker import cli
from tracker.batch import BatchExit, expand_inputs, main, plan_jobs, read_manifest
from tracker.batch.worker import partial_path
from tracker.commands import main as handtrack
from tracker.io.sources import DEMO_INTRINSICS, DEMO_VIDEO

ROOT = Path(__file__).resolve().parents[2]
FRAMES = 10  # per video


def _demo_frames(n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(DEMO_VIDEO))
    frames = []
    while len(frames) < n:
        ok, frame = cap.read()
        assert ok, "the demo recording has fewer frames than the test needs"
        frames.append(frame)
    cap.release()
    return frames


def _write_video(path: Path, frames: list[np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
    for frame in frames:
        writer.write(frame)
    writer.release()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``take.mp4``, ``day2/take.mp4`` (the same stem), ``other.mp4``, ``stills/`` (6 PNGs), ``broken.mp4``."""
    root = tmp_path_factory.mktemp("archive")
    frames = _demo_frames(3 * FRAMES)
    _write_video(root / "take.mp4", frames[:FRAMES])
    _write_video(root / "day2" / "take.mp4", frames[FRAMES:2 * FRAMES])
    _write_video(root / "other.mp4", frames[2 * FRAMES:])
    (root / "stills").mkdir()
    for i, frame in enumerate(frames[:6]):
        cv2.imwrite(str(root / "stills" / f"{i:03d}.png"), frame)
    (root / "broken.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    return root


GOOD = ("take.mp4", "day2/take.mp4", "other.mp4", "stills")


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo recording 4 times over (480 frames, several seconds of tracking): an input still running when
    a test signals or kills the batch."""
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    _write_video(path, _demo_frames(120) * 4)
    return path


def _wait_until_tracking(proc: subprocess.Popen, export: Path) -> None:
    """Until the batch ``proc`` has written the first frame of ``export`` (to its temporary name)."""
    partial = partial_path(export)
    deadline = time.monotonic() + 120
    while not (partial.is_file() and partial.stat().st_size > 0):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.02)


@pytest.fixture(scope="module")
def single_runs(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The export of a single ``handtrack`` run of every good input (the reference), by input."""
    out = tmp_path_factory.mktemp("single")
    ref = {}
    for i, name in enumerate(GOOD):
        export = out / f"{i}.jsonl"
        assert cli.main(["--source", str(archive / name), "--no-view", "--export", str(export)]) == cli.Exit.OK
        ref[str(archive / name)] = export.read_bytes()
    return ref


def _exports(out: Path) -> dict[str, bytes]:
    """Each input's export in ``out``, by input (through the manifest)."""
    return {entry["input"]: (out / entry["export"]).read_bytes()
            for entry in read_manifest(out).values() if entry["status"] == "done"}  # fmt: skip


def _check_batch(archive: Path, out: Path, single_runs: dict[str, bytes], engine: str) -> None:
    assert _exports(out) == single_runs
    manifest = read_manifest(out)
    assert set(manifest) == {*single_runs, str(archive / "broken.mp4")}
    broken = manifest[str(archive / "broken.mp4")]
    assert broken["status"] == "failed" and broken["error_type"] == "RecordingError" and broken["exit_code"] == 4
    assert "broken.mp4" in broken["error"] and not (out / broken["export"]).exists()
    assert {e["engine"] for e in manifest.values()} == {engine}
    frames = {Path(k).relative_to(archive).as_posix(): (e["frames"], e["frames_with_hands"]) for k, e in manifest.items()}
    assert frames == {"take.mp4": (FRAMES, FRAMES), "day2/take.mp4": (FRAMES, FRAMES), "other.mp4": (FRAMES, FRAMES),
                      "stills": (6, 6), "broken.mp4": (0, 0)}  # fmt: skip
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if n.startswith(".")], names  # no partial file left
    assert len([n for n in names if n.startswith("take-")]) == 2  # two inputs named take: two exports


# ------------------------------------------------------------------------------------------ local engine


@pytest.fixture(scope="module")
def local_batch(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("local") / "out"
    return main([str(archive), "--output", str(out), "--workers", "2"]), out


def test_local_batch_equals_single_runs_and_records_the_corrupt_input(local_batch, archive, single_runs) -> None:
    code, out = local_batch
    assert code == BatchExit.FAILED == 10
    _check_batch(archive, out, single_runs, "local")
    inputs_per_worker = Counter(e["worker"] for e in read_manifest(out).values())
    assert len(inputs_per_worker) <= 2 and max(inputs_per_worker.values()) >= 2  # a worker ran inputs in a row


def test_a_rerun_skips_done_inputs_and_overwrite_redoes_them(local_batch, archive, single_runs) -> None:
    _, out = local_batch
    done = {p: p.stat().st_mtime_ns for p in out.glob("*.jsonl") if p.name != "manifest.jsonl"}
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert main([str(archive), "--output", str(out), "--workers", "1"]) == BatchExit.FAILED  # broken.mp4 again
    assert {p: p.stat().st_mtime_ns for p in done} == done  # not one finished export touched
    new = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()[len(lines):]]
    assert [(Path(e["input"]).name, e["status"]) for e in new] == [("broken.mp4", "failed")]

    assert main([str(archive), "--output", str(out), "--workers", "1", "--overwrite"]) == BatchExit.FAILED
    assert all(p.stat().st_mtime_ns != t for p, t in done.items())
    assert _exports(out) == single_runs


def test_all_good_inputs_exit_0_in_every_format(archive: Path, tmp_path: Path) -> None:
    """CSV and NPZ go through the same writers: equal to single runs (NPZ: the same arrays), with the same
    options (a calibration file, one hand)."""
    inputs = [str(archive / "stills"), str(archive / "other.mp4")]
    options = ["--max-hands", "1", "--calib", str(DEMO_INTRINSICS)]
    for fmt in ("csv", "npz"):
        out = tmp_path / fmt
        assert main([*inputs, "--output", str(out), "--format", fmt, "--workers", "1", *options]) == 0
        for item in inputs:
            single = tmp_path / f"single.{fmt}"
            assert cli.main(["--source", item, "--no-view", "--export", str(single), *options]) == 0
            batch = out / f"{Path(item).stem}.{fmt}"
            if fmt == "csv":
                assert batch.read_bytes() == single.read_bytes()
            else:
                a, b = np.load(batch), np.load(single)
                assert sorted(a.files) == sorted(b.files)
                for key in a.files:
                    np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# -------------------------------------------------------------------------------------------- ray engine


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray instance for this module (2 CPUs, no dashboard); the engine uses it as it is. Shut down
    after the module, with the SIGTERM handler that ray.init() installs taken out again."""
    ray = pytest.importorskip("ray", reason="Ray is installed by scripts/setup.sh (the [ray] extra)")
    sigterm = signal.getsignal(signal.SIGTERM)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
    signal.signal(signal.SIGTERM, sigterm)


def test_ray_batch_equals_single_runs(ray_local, archive: Path, single_runs, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main([str(archive), "--output", str(out), "--engine", "ray", "--workers", "2"]) == BatchExit.FAILED
    _check_batch(archive, out, single_runs, "ray")
    assert ray_local.is_initialized()  # a Ray the batch did not start is left running


def test_ray_missing_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, archive: Path, tmp_path: Path,
                                      caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` finds without the extra: ImportError
    code = main([str(archive / "stills"), "--output", str(tmp_path), "--engine", "ray"])
    assert code == cli.Exit.USAGE == 2
    assert "pip install 'handtrack[ray]'" in caplog.text


# -------------------------------------------------------------------------------- errors, signals, inputs


def test_handtrack_batch_and_refused_options(archive: Path, tmp_path: Path, capsys) -> None:
    """``handtrack batch`` dispatches here; single-run options, no input and no --output are usage errors, a
    missing --calib file a calibration error, all before anything is created; any other first argument is
    the tracker's own command line."""
    base = ["batch", str(archive / "stills"), "--output", str(tmp_path / "o")]
    assert handtrack([*base, "--source", "demo"]) == 2
    assert handtrack([*base, "--export", "x.jsonl", "--loop"]) == 2
    assert handtrack(["batch", "--output", str(tmp_path)]) == 2
    assert handtrack(["batch", str(archive)]) == 2
    assert handtrack([*base, "--calib", str(tmp_path / "missing.json")]) == cli.Exit.CALIBRATION == 6
    assert not (tmp_path / "o").exists()
    assert handtrack(["--print-config", "--max-hands", "1"]) == 0
    assert "max_hands = 1" in capsys.readouterr().out


def test_a_model_error_stops_the_batch_with_its_exit_code(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main([str(archive / "stills"), str(archive / "other.mp4"), "--output", str(out), "--workers", "1",
                 "--prior", str(tmp_path / "missing_prior.npz")])  # fmt: skip
    assert code == cli.Exit.MODEL == 9
    entries = list(read_manifest(out).values())
    assert [(e["status"], e["fatal"]) for e in entries] == [("failed", True)]  # the second input never started
    assert "missing_prior.npz" in entries[0]["error"]


def test_sigterm_stops_cleanly_and_the_next_run_resumes(archive: Path, long_video: Path, tmp_path: Path) -> None:
    """SIGTERM while a 480-frame video runs: exit 130, the manifest says interrupted, no partial file; the same
    command then finishes it (and skips the image folder done before)."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "tracker.batch", str(archive / "stills"), str(long_video), "--output", str(out),
               "--workers", "1"]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_until_tracking(proc, out / "long.jsonl")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == BatchExit.INTERRUPTED == 130, err[-2000:]
    manifest = read_manifest(out)
    assert manifest[str(archive / "stills")]["status"] == "done"
    entry = manifest[str(long_video)]
    assert entry["status"] == "interrupted" and 0 < entry["frames"] < 480, entry
    assert sorted(p.name for p in out.iterdir()) == ["manifest.jsonl", "stills.jsonl"]
    assert main([str(archive / "stills"), str(long_video), "--output", str(out), "--workers", "1",
                 "--frames", "20"]) == 0  # fmt: skip
    manifest = read_manifest(out)
    assert manifest[str(long_video)]["status"] == "done" and manifest[str(long_video)]["frames"] == 20
    assert len((out / "long.jsonl").read_text().splitlines()) == 20
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert sum(json.loads(line)["input"] == str(archive / "stills") for line in lines) == 1  # not redone


def test_inputs_expand_and_get_unique_stable_names(archive: Path, tmp_path: Path) -> None:
    found = expand_inputs([str(archive)])
    assert [Path(p).relative_to(archive).as_posix() for p in found] == [
        "broken.mp4", "day2/take.mp4", "other.mp4", "stills", "take.mp4"]  # fmt: skip
    assert expand_inputs([str(archive / "*.mp4"), str(archive / "other.mp4")]) == [
        str(archive / n) for n in ("broken.mp4", "other.mp4", "take.mp4")]  # fmt: skip
    assert expand_inputs([str(archive / "stills")]) == [str(archive / "stills")]  # an image folder is one input
    assert expand_inputs([str(archive / "**" / "take.mp4")]) == [str(archive / "day2/take.mp4"), str(archive / "take.mp4")]
    assert expand_inputs([str(tmp_path / "nothing*.mp4")]) == []
    assert expand_inputs([str(tmp_path / "missing.mp4")]) == [str(tmp_path / "missing.mp4")]  # fails, recorded
    jobs = plan_jobs(found, tmp_path, "npz")
    names = [j.export.name for j in jobs]
    assert len(set(names)) == len(names) and names[2:4] == ["other.npz", "stills.npz"]
    assert names[1].startswith("take-") and names[4].startswith("take-") and names[1] != names[4]
    assert [j.export.name for j in plan_jobs(found, tmp_path, "npz")] == names  # the same every run
    assert partial_path(tmp_path / "take.npz") == tmp_path / ".take.partial.npz"
    assert os.path.basename(jobs[0].export) == "broken.npz"


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` and whose command line is a multiprocessing worker's."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and b"spawn_main" in cmdline:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the worker process through /proc")
def test_a_worker_that_dies_fails_its_input_and_a_new_one_goes_on(archive: Path, long_video: Path,
                                                                  tmp_path: Path) -> None:  # fmt: skip
    """kill -9 of the local pool's worker while it tracks a video: that input is failed (and its partial export
    removed), a new worker does the next input, exit 10."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "tracker.batch", str(long_video), str(archive / "stills"), "--output", str(out),
               "--workers", "1"]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_until_tracking(proc, out / "long.jsonl")
        (worker,) = _children(proc.pid)
        os.kill(worker, signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == BatchExit.FAILED, err[-2000:]
    manifest = read_manifest(out)
    assert manifest[str(long_video)]["status"] == "failed" and "worker process died" in manifest[str(long_video)]["error"]
    assert manifest[str(archive / "stills")]["status"] == "done"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.jsonl", "stills.jsonl"]


def test_progress_shows_inputs_and_frames(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Two bars on a terminal (inputs, frames); a log line without one."""
    import io
    import logging

    from tracker.batch.runner import BatchProgress
    from tracker.batch.worker import Job, Outcome

    jobs = [Job(i, f"in{i}.mp4", tmp_path / f"in{i}.jsonl") for i in range(3)]
    stream = io.StringIO()
    bar = BatchProgress(3, tty=True, stream=stream)
    bar.update({0: 40, 1: 25})
    bar.finished(jobs[0], Outcome("in0.mp4", "in0.jsonl", "done", frames=50))
    bar.finished(jobs[2], Outcome("in2.mp4", "in2.jsonl", "failed", frames=3))
    assert bar.frames == 50 + 25 + 3 and (bar.done, bar.failed) == (2, 1)
    bar.close()
    text = stream.getvalue()
    assert "inputs" in text and "2/3" in text and "1 failed" in text and "frames" in text and "78" in text, text
    caplog.set_level(logging.INFO, logger="handtrack")
    line = BatchProgress(3, tty=False, interval_s=0.0)
    line.finished(jobs[0], Outcome("in0.mp4", "in0.jsonl", "done", frames=50))
    line.close()
    assert "batch: 1/3 inputs (0 failed), 50 frames" in caplog.text


def test_recordings_rgbd_and_rig_equal_single_runs(archive: Path, tmp_path: Path) -> None:
    """handtrack's own recordings: an RGB-D camera (the depth path) and a 2-camera rig (the rig pipeline, world
    frame), run by one worker between image folders: each export equals its single run."""
    for name, source in (("rgbd", "synthetic:2"), ("rig", "synthetic:3:desk:2")):
        code = cli.main(["--source", source, "--no-view", "--record-only", "--record", str(tmp_path / f"{name}.mcap"),
                         "--frames", "6"])  # fmt: skip
        assert code == cli.Exit.OK
    inputs = [str(tmp_path / "rgbd.mcap"), str(archive / "stills"), str(tmp_path / "rig.mcap")]
    out = tmp_path / "out"
    assert main([*inputs, "--output", str(out), "--workers", "1"]) == BatchExit.OK
    for item in inputs:
        single = tmp_path / "single.jsonl"
        assert cli.main(["--source", item, "--no-view", "--export", str(single)]) == cli.Exit.OK
        assert (out / f"{Path(item).stem}.jsonl").read_bytes() == single.read_bytes(), item
    rig = [json.loads(line) for line in (out / "rig.jsonl").read_text().splitlines()]
    assert len(rig) == 6 and any(h.get("joints_world") for f in rig for h in f["hands"])  # fused rig hands
