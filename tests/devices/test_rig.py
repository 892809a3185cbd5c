"""RigDevice: parallel capture, timestamp matching (jitter, dropped frames, drift), errors, end of stream."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from devices._common import DeviceBase
from devices.base import Device
from tracker.core.errors import DeviceDisconnectedError, DeviceNotFoundError
from devices.image_folder import ImageFolderDevice
from devices.rig import RigDevice, RigSync, RigView
from devices.synthetic import SyntheticDevice
from models.synthetic import SceneConfig
from tracker.runtime.loop import StreamingLoop
from tracker.runtime.pipeline import Pipeline
from tracker.core.structures import Camera, Extrinsics, Frame, FrameSet, Intrinsics

FPS = 30.0
CAM = Camera("replay", Intrinsics(20.0, 20.0, 8.0, 6.0, 16, 12))


class ReplayDevice(DeviceBase):
    """Test-only device replaying frames at given timestamps (s), then ending or raising ``error``."""

    def __init__(self, name: str, timestamps: Sequence[float], error: Exception | None = None,
                 live: bool = False, block: threading.Event | None = None) -> None:
        self.name = name
        self.live = live
        self.timestamps = list(timestamps)
        self.error = error
        self.block = block
        self.is_open = False
        self._i = 0

    def open(self) -> None:
        self.is_open = True
        self._i = 0

    def read(self) -> FrameSet | None:
        if self._i >= len(self.timestamps):
            if self.error is not None:
                raise self.error
            if self.block is not None:
                self.block.wait(5.0)  # a camera that stops delivering without an error
            return None
        t = self.timestamps[self._i]
        image = np.full((12, 16, 3), self._i % 256, np.uint8)
        frame = Frame(image, t, self._i, CAM)
        self._i += 1
        return FrameSet.single(frame)

    def close(self) -> None:
        self.is_open = False


def ticks(n: int, drop: Sequence[int] = (), jitter_ms: float = 0.0, seed: int = 0, drift_ms_per_frame: float = 0.0
          ) -> list[float]:
    rng = np.random.default_rng(seed)
    stamps = []
    for k in range(n):
        if k in drop:
            continue
        stamps.append(k / FPS + rng.uniform(-jitter_ms, jitter_ms) / 1000.0 + k * drift_ms_per_frame / 1000.0)
    return stamps


def read_all(rig: RigDevice) -> list[FrameSet]:
    sets = []
    while (fs := rig.read()) is not None:
        sets.append(fs)
    return sets


def tick_of(frame: Frame) -> int:
    return round(frame.timestamp * FPS)


def test_matches_jittered_frames_and_drops_a_missing_one(caplog: pytest.LogCaptureFixture) -> None:
    n = 30
    devices = [ReplayDevice("a", ticks(n, jitter_ms=5.0, seed=1)),
               ReplayDevice("b", ticks(n, jitter_ms=5.0, seed=2, drop=[10])),
               ReplayDevice("c", ticks(n, jitter_ms=5.0, seed=3))]  # fmt: skip
    rig = RigDevice([RigView(d.name, d) for d in devices], RigSync(tolerance_ms=15.0))
    assert isinstance(rig, Device) and not rig.live
    with caplog.at_level(logging.WARNING, logger="devices.rig"), rig:
        assert all(d.is_open for d in devices)
        sets = read_all(rig)
        stats = rig.stats()
    assert not any(d.is_open for d in devices)
    # set 10 lacks camera b: dropped (a's and c's frame 10 counted), every other set matched
    assert [tick_of(fs.frames[0]) for fs in sets] == [k for k in range(n) if k != 10]
    for fs in sets:
        assert len({tick_of(f) for f in fs.frames}) == 1
        assert [f.camera.name for f in fs.frames] == ["a", "b", "c"]
        assert fs.timestamp == fs.frames[0].timestamp
    assert [fs.index for fs in sets] == list(range(n - 1))
    assert stats.matched == n - 1 and stats.unmatched == (1, 0, 1) and stats.received == (n, n - 1, n)
    assert any("dropped frame 10" in r.getMessage() for r in caplog.records)
    assert abs(stats.offsets_ms[1]) < 5.0 and stats.drift_warnings == 0


def test_tolerance_too_small_for_the_jitter_drops_sets() -> None:
    devices = [ReplayDevice("a", ticks(20, jitter_ms=5.0, seed=1)), ReplayDevice("b", ticks(20, jitter_ms=5.0, seed=2))]
    with RigDevice([RigView(d.name, d) for d in devices], RigSync(tolerance_ms=1.0)) as rig:
        sets = read_all(rig)
        stats = rig.stats()
    assert len(sets) < 20 and sum(stats.unmatched) > 0
    for fs in sets:
        assert abs(fs.frames[0].timestamp - fs.frames[1].timestamp) <= 0.001 + 1e-9


def test_offset_ms_aligns_a_late_recording() -> None:
    late = [t + 0.5 for t in ticks(10)]  # started 500 ms later on the shared clock
    views = [RigView("a", ReplayDevice("a", ticks(10))), RigView("b", ReplayDevice("b", late), offset_ms=-500.0)]
    with RigDevice(views) as rig:
        sets = read_all(rig)
    assert len(sets) == 10 and rig.stats().unmatched == (0, 0)
    assert sets[3].frames[1].timestamp == pytest.approx(3 / FPS + 0.5)  # frames keep their own clock


def test_drift_is_warned(caplog: pytest.LogCaptureFixture) -> None:
    n = 45
    devices = [ReplayDevice("a", ticks(n, jitter_ms=1.0, seed=4)),
               ReplayDevice("b", ticks(n, jitter_ms=1.0, seed=5, drift_ms_per_frame=0.3))]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="devices.rig"):
        with RigDevice([RigView(d.name, d) for d in devices], RigSync(tolerance_ms=16.0, drift_warn_ms=4.0)) as rig:
            sets = read_all(rig)
            stats = rig.stats()
    assert len(sets) == n  # still within the tolerance, but drifting
    assert stats.drift_warnings == 1
    assert stats.offsets_ms[1] > 6.0
    assert sum("drifted" in r.getMessage() and "'b'" in r.getMessage() for r in caplog.records) == 1


def test_no_drift_warning_for_a_constant_offset(caplog: pytest.LogCaptureFixture) -> None:
    devices = [ReplayDevice("a", ticks(40)), ReplayDevice("b", [t + 0.008 for t in ticks(40, jitter_ms=2.0)])]
    with caplog.at_level(logging.WARNING, logger="devices.rig"):
        with RigDevice([RigView(d.name, d) for d in devices]) as rig:
            read_all(rig)
            stats = rig.stats()
    assert stats.drift_warnings == 0 and stats.offsets_ms[1] == pytest.approx(8.0, abs=1.5)
    assert not any("drifted" in r.getMessage() for r in caplog.records)


def test_camera_error_mid_stream_is_raised_with_its_name() -> None:
    devices = [ReplayDevice("left", ticks(50)),
               ReplayDevice("right", ticks(5), error=DeviceDisconnectedError("USB camera unplugged"))]  # fmt: skip
    rig = RigDevice([RigView(d.name, d) for d in devices])
    start = time.monotonic()
    with rig:
        got = 0
        with pytest.raises(DeviceDisconnectedError, match="rig camera 'right'.*USB camera unplugged"):
            while rig.read() is not None:
                got += 1
    assert got == 5 and time.monotonic() - start < 5.0
    assert not any(d.is_open for d in devices)


def test_camera_delivering_nothing_times_out_naming_it() -> None:
    block = threading.Event()
    devices = [ReplayDevice("a", ticks(50), live=True), ReplayDevice("b", ticks(2), live=True, block=block)]
    rig = RigDevice([RigView(d.name, d) for d in devices], RigSync(read_timeout_s=0.3))
    assert rig.live
    start = time.monotonic()
    with rig:
        try:
            with pytest.raises(DeviceDisconnectedError, match="camera 'b' delivered no frame for 0.3 s"):
                while rig.read() is not None:
                    pass
        finally:
            block.set()  # let the stuck read return so close() joins at once
    assert time.monotonic() - start < 2.0


def test_failing_open_names_the_camera_and_closes_the_others(tmp_path: Path) -> None:
    good = ReplayDevice("a", ticks(3))
    views = [RigView("a", good), RigView("missing", ImageFolderDevice(tmp_path / "nope"))]
    with pytest.raises(DeviceNotFoundError, match="rig camera 'missing'.*cannot be opened.*check the path"):
        RigDevice(views).open()
    assert not good.is_open


def test_end_of_stream_when_one_playback_child_ends() -> None:
    devices = [ReplayDevice("a", ticks(30)), ReplayDevice("b", ticks(7))]
    with RigDevice([RigView(d.name, d) for d in devices]) as rig:
        assert len(read_all(rig)) == 7
        assert rig.read() is None
    with pytest.raises(RuntimeError, match="not open"):
        rig.read()


def test_calibrated_cameras_replace_the_childs_and_rescale(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        for i in range(3):
            assert cv2.imwrite(str(tmp_path / folder / f"{i}.png"), np.full((12, 16, 3), 50 * i, np.uint8))
    ext = Extrinsics(np.eye(3), np.array([100.0, 0.0, 0.0]))
    cal_a = Camera("a", Intrinsics(30.0, 30.0, 8.0, 6.0, 16, 12), ext)
    cal_b = Camera("b", Intrinsics(60.0, 60.0, 16.0, 12.0, 32, 24))  # calibrated at twice the size
    views = [RigView("a", ImageFolderDevice(tmp_path / "a"), cal_a),
             RigView("b", ImageFolderDevice(tmp_path / "b"), cal_b)]
    with caplog.at_level(logging.WARNING, logger="devices.rig"), RigDevice(views) as rig:
        sets = read_all(rig)
    assert len(sets) == 3
    assert sets[0].frames[0].camera is cal_a
    b = sets[2].frames[1].camera
    assert b.name == "b" and (b.intrinsics.width, b.intrinsics.fx, b.intrinsics.cx) == (16, 30.0, 8.0)
    assert sum("calibrated for 32x24" in r.getMessage() for r in caplog.records) == 1


def test_synthetic_views_reproduce_the_multi_view_engine() -> None:
    cfg = SceneConfig(num_frames=3, layout="ring", num_views=3, width=64, height=48)
    views = [RigView(f"v{v}", SyntheticDevice(5, cfg, with_depth=False, view=v)) for v in range(3)]
    with RigDevice(views) as rig, SyntheticDevice(5, cfg, with_depth=False) as whole:
        for _ in range(3):
            got, ref = rig.read(), whole.read()
            for f, r in zip(got.frames, ref.frames):
                assert f.timestamp == r.timestamp and f.index == r.index
                assert np.array_equal(f.image, r.image)
                assert f.camera.intrinsics == r.camera.intrinsics
                assert np.array_equal(f.camera.extrinsics.R, r.camera.extrinsics.R)
                np.testing.assert_array_equal(f.ground_truth.joints_2d, r.ground_truth.joints_2d)
        assert rig.read() is None


def test_runs_through_the_streaming_loop() -> None:
    devices = [ReplayDevice("a", ticks(12)), ReplayDevice("b", ticks(12))]
    seen: list[int] = []
    with RigDevice([RigView(d.name, d) for d in devices]) as rig:
        StreamingLoop(rig, Pipeline([]), sinks=[lambda r: seen.append(len(r.frameset.frames))]).run()
    assert seen == [2] * 12


def test_live_children_keep_only_their_newest_frames() -> None:
    devices = [ReplayDevice("a", ticks(200), live=True), ReplayDevice("b", ticks(200), live=True)]
    with RigDevice([RigView(d.name, d) for d in devices], RigSync(live_queue=2)) as rig:
        sets = []
        while (fs := rig.read()) is not None:
            sets.append(fs)
            time.sleep(0.005)  # a slow consumer: the capture threads run ahead
        stats = rig.stats()
    assert stats.received == (200, 200) and sum(stats.overwritten) > 0
    for fs in sets:
        assert tick_of(fs.frames[0]) == tick_of(fs.frames[1])


def test_slow_consumer_of_playback_is_not_a_disconnect() -> None:
    """Playback children wait on full queues while the reader is busy; that is not a silent camera."""
    devices = [ReplayDevice("a", ticks(12, drop=[1, 2, 3, 4, 5])), ReplayDevice("b", ticks(12))]
    with RigDevice([RigView(d.name, d) for d in devices], RigSync(read_timeout_s=0.2, playback_queue=2)) as rig:
        sets = [rig.read()]
        time.sleep(0.4)  # both capture threads fill their queues and block
        sets += read_all(rig)
    assert [tick_of(fs.frames[0]) for fs in sets] == [0, 6, 7, 8, 9, 10, 11]
    assert rig.stats().unmatched == (0, 5)
