"""RecordingWriter: MCAP session recordings that replay bit for bit, give the same joints, survive kill -9,
never block the caller; ``python -m tracker.io.recording check|repair``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from devices.mcap_format import TOPIC_HANDS, camera_to_dict
from devices.mcap_playback import McapPlaybackDevice
from tracker.core.errors import OutputError, RecordingError
from tracker.core.structures import Camera, Frame, FrameResult, FrameSet, Intrinsics
from tracker.io.recording import (
    RecordingWriter,
    check_record_path,
    inspect_recording,
    main,
    repair_recording,
)
from tracker.io.sources import (
    SourceOptions,
    open_source,
    parse_source,
    views_per_frameset,
)
from tracker.sinks.export import JsonlExporter

ROOT = Path(__file__).resolve().parents[3]


def _live(source: str, n: int) -> list[FrameSet]:
    device = open_source(parse_source(source), SourceOptions(realtime=False))
    with device:
        return [device.read() for _ in range(n)]


def _replay(path: Path) -> list[FrameSet]:
    with McapPlaybackDevice(path) as device:
        out = []
        while (fs := device.read()) is not None:
            out.append(fs)
    return out


def _assert_identical(live: list[FrameSet], replayed: list[FrameSet]) -> None:
    assert len(replayed) == len(live)
    for a, b in zip(live, replayed, strict=True):
        assert (b.index, b.timestamp) == (a.index, a.timestamp)  # float seconds, exactly
        assert len(b.frames) == len(a.frames)
        for fa, fb in zip(a.frames, b.frames, strict=True):
            assert (fb.index, fb.timestamp) == (fa.index, fa.timestamp)
            assert fb.image.dtype == np.uint8 and np.array_equal(fb.image, fa.image)
            assert fb.depth is not None and fb.depth.dtype == np.uint16 and np.array_equal(fb.depth, fa.depth)
            assert camera_to_dict(fb.camera) == camera_to_dict(fa.camera)  # K, dist, R, t: exact floats


@pytest.mark.parametrize("source, views", [("synthetic:1", 1), ("synthetic:3:ring:4", 4)])
def test_rgbd_and_rig_replay_bit_for_bit(tmp_path: Path, source: str, views: int) -> None:
    live = _live(source, 3)
    path = tmp_path / "session.mcap"
    with RecordingWriter(path, device=source) as writer:
        for fs in live:
            assert writer.record(fs)
    assert (writer.written, writer.dropped) == (3, 0)
    _assert_identical(live, _replay(path))
    spec = parse_source(str(path))
    assert spec.kind == "mcap" and views_per_frameset(spec) == views
    info = inspect_recording(path)
    assert (info.framesets, len(info.views), info.summary, info.truncated, info.corrupt) == (3, views, True, None, None)
    assert info.channels["/camera/cam0/color"] == ("foxglove.RawImage", "protobuf", 3)
    assert info.channels["/camera/cam0/depth"] == ("foxglove.RawImage", "protobuf", 3)
    assert info.channels["/camera/cam0/calibration"] == ("foxglove.CameraCalibration", "protobuf", 3)
    assert info.metadata["handtrack.recording"]["device"] == source


@pytest.mark.slow
@pytest.mark.parametrize("source", ["synthetic:1", "synthetic:3:ring:4"])
def test_replay_gives_the_same_joints(tmp_path: Path, source: str) -> None:
    """The same pipeline on live and replayed frames: 2D within 1 px, 3D within 2 mm (lossless: equal)."""
    from tracker.build import build_pipeline
    from tracker.config import TrackerConfig

    live = _live(source, 3)
    path = tmp_path / "session.mcap"
    with RecordingWriter(path) as writer:
        for fs in live:
            writer.record(fs)
    replayed = _replay(path)

    def run(framesets: list[FrameSet]) -> list[FrameResult]:
        pipeline = build_pipeline(TrackerConfig(), len(framesets[0].frames))
        try:
            return [pipeline(fs) for fs in framesets]
        finally:
            pipeline.close()

    a, b = run(live), run(replayed)
    assert sum(len(r.hands) for r in a) >= 3  # the synthetic hand is found in every frame set
    for ra, rb in zip(a, b, strict=True):
        assert len(ra.hands) == len(rb.hands)
        for ha, hb in zip(ra.hands, rb.hands, strict=True):
            assert np.abs(ha.joints_2d - hb.joints_2d).max() <= 1.0
            assert ha.joints_3d is not None and hb.joints_3d is not None
            assert np.abs(ha.joints_3d - hb.joints_3d).max() <= 2.0
            if ha.joints_world is not None:
                assert np.nanmax(np.abs(ha.joints_world - hb.joints_world)) <= 2.0


def test_hands_are_the_jsonl_export_line(tmp_path: Path, blank_frameset, make_hand) -> None:
    result = FrameResult(blank_frameset(0.25, 7), (make_hand(joints_2d=12.345, joints_3d=400.0, track_id=3),))
    path = tmp_path / "hands.mcap"
    with RecordingWriter(path) as writer:
        writer(result)  # the sink interface
    with JsonlExporter(tmp_path / "hands.jsonl") as exporter:
        exporter(result)
    from mcap.reader import make_reader

    with open(path, "rb") as f:
        messages = [m.data for _, c, m in make_reader(f).iter_messages() if c.topic == TOPIC_HANDS]
    line = (tmp_path / "hands.jsonl").read_text().strip()
    assert len(messages) == 1 and json.loads(messages[0]) == json.loads(line)


def test_record_only_writes_no_hands(tmp_path: Path, blank_frameset) -> None:
    path = tmp_path / "frames.mcap"
    with RecordingWriter(path, record_hands=False) as writer:
        writer(FrameResult(blank_frameset(), ()))
    assert TOPIC_HANDS not in inspect_recording(path).channels


def test_jpeg_quality_is_smaller_and_plays(tmp_path: Path) -> None:
    live = _live("synthetic:1", 3)
    sizes = {}
    for name, quality in (("lossless", None), ("jpeg", 80)):
        with RecordingWriter(tmp_path / f"{name}.mcap", quality=quality) as writer:
            for fs in live:
                writer.record(fs)
        sizes[name] = (tmp_path / f"{name}.mcap").stat().st_size
    assert sizes["jpeg"] < 0.5 * sizes["lossless"]
    replayed = _replay(tmp_path / "jpeg.mcap")
    assert [fs.index for fs in replayed] == [0, 1, 2]
    err = np.abs(replayed[0].frames[0].image.astype(int) - live[0].frames[0].image.astype(int)).mean()
    assert err < 3.0  # mean absolute error of JPEG q80, grey levels
    assert np.array_equal(replayed[0].frames[0].depth, live[0].frames[0].depth)  # depth stays lossless


def test_a_full_queue_drops_and_never_blocks(tmp_path: Path) -> None:
    camera = Camera("big", Intrinsics(1000.0, 1000.0, 1000.0, 1000.0, 2000, 2000))
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (2000, 2000, 3), dtype=np.uint8)  # noise: slow to compress (12 MB)
    writer = RecordingWriter(tmp_path / "slow.mcap", queue_size=1)
    calls = []
    for i in range(40):
        fs = FrameSet.single(Frame(image, i / 30, i, camera))
        t = time.perf_counter()
        writer.record(fs)
        calls.append(time.perf_counter() - t)
    writer.close()
    assert max(calls) < 0.02  # seconds: record() only queues
    assert writer.dropped > 0 and writer.written + writer.dropped == 40
    assert inspect_recording(tmp_path / "slow.mcap").dropped == writer.dropped
    assert len(_replay(tmp_path / "slow.mcap")) == writer.written


def test_bad_paths_are_output_errors(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="must end in .mcap"):
        check_record_path(tmp_path / "x.mp4")
    with pytest.raises(OutputError, match="is a folder"):
        check_record_path(tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="is a file"):
        RecordingWriter(tmp_path / "file" / "x.mcap")
    assert check_record_path(tmp_path / "new" / "x.mcap") == tmp_path / "new" / "x.mcap"


def test_check_says_corrupt_with_exit_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "bogus.mcap"
    bogus.write_bytes(b"not a recording at all")
    assert main(["check", str(bogus)]) == 4
    with pytest.raises(RecordingError, match="not an MCAP recording"):
        inspect_recording(bogus)
    good = tmp_path / "good.mcap"
    with RecordingWriter(good) as writer:
        for fs in _live("synthetic:1", 2):
            writer.record(fs)
    assert main(["check", str(good)]) == 0
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped byte inside the first chunk: its CRC no longer matches
    (tmp_path / "flipped.mcap").write_bytes(bytes(data))
    assert main(["check", str(tmp_path / "flipped.mcap")]) == 4
    assert "CORRUPT" in capsys.readouterr().out
    assert main(["check", str(tmp_path / "missing.mcap")]) == 2


_CHILD = """
import sys, time
from tracker.io.recording import RecordingWriter
from tracker.io.sources import SourceOptions, open_source, parse_source
device = open_source(parse_source("synthetic:1"), SourceOptions(realtime=True, loop=True))
writer = RecordingWriter(sys.argv[1], flush_interval_s=0.5)
while True:
    writer.record(device.read())
    print(writer.written, flush=True)
"""


@pytest.mark.slow
def test_kill_9_loses_at_most_a_second_and_repair_restores_the_index(tmp_path: Path) -> None:
    path = tmp_path / "killed.mcap"
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    progress: list[tuple[float, int]] = []  # (time the line arrived, frame sets written by then)

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            progress.append((time.monotonic(), int(line)))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not progress and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        assert progress, "the recording child never started"
        time.sleep(2.5)
    finally:
        kill_time = time.monotonic()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        reader.join(5)
    written_1s_before = max((n for t, n in progress if t <= kill_time - 1.0), default=0)
    assert written_1s_before >= 20  # ~1.5 s of recording at 30 FPS before the last second

    info = inspect_recording(path)
    assert not info.summary and not info.complete
    played = _replay(path)
    assert len(played) >= written_1s_before  # at most the last second is lost
    assert [fs.index for fs in played] == list(range(len(played)))
    assert main(["check", str(path)]) == 0

    repaired = repair_recording(path, tmp_path / "repaired.mcap")
    assert repaired.summary and repaired.complete and repaired.framesets == info.framesets
    assert len(_replay(tmp_path / "repaired.mcap")) == len(played)
    assert main(["repair", str(path)]) == 0  # in place
    assert inspect_recording(path).summary


class _LiveFrames:
    """A live source at ~200 FPS (a Device: open/read/close, ``live``): faster than the pipeline below."""

    live = True
    name = "live-test"

    def __init__(self, count: int) -> None:
        self.count, self.i = count, 0
        self.camera = Camera("live", Intrinsics(500.0, 500.0, 32.0, 24.0, 64, 48))

    def open(self) -> None:
        pass

    def read(self) -> FrameSet | None:
        if self.i >= self.count:
            return None
        time.sleep(0.005)
        image = np.full((48, 64, 3), self.i % 256, np.uint8)
        fs = FrameSet.single(Frame(image, self.i * 0.005, self.i, self.camera))
        self.i += 1
        return fs

    def close(self) -> None:
        pass


def test_a_live_loop_records_every_captured_frame(tmp_path: Path) -> None:
    """A live loop skips frames to stay live (a 20 ms pipeline, 5 ms frames); with the recorder as a
    capture tap every captured frame set is in the file, and the hands of each processed one."""
    from tracker.runtime.loop import StreamingLoop
    from tracker.runtime.pipeline import Pipeline

    def slow(frameset: FrameSet, hands: list) -> list:
        time.sleep(0.02)
        return hands

    path = tmp_path / "live.mcap"
    writer = RecordingWriter(path)
    loop = StreamingLoop(_LiveFrames(60), Pipeline([("slow", slow)]), [writer.hands], taps=[writer.capture])
    stats = loop.run()
    writer.close()
    assert stats.captured == 60 and stats.processed < 40  # the live loop skipped frames
    info = inspect_recording(path)
    assert info.framesets == 60 and info.dropped == 0
    assert info.channels[TOPIC_HANDS][2] == stats.processed
    with McapPlaybackDevice(path) as dev:
        played = [fs.index for fs in iter(dev.read, None)]
    assert played == list(range(60))
