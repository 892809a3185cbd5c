"""The streaming loop with a small synthetic device (frames made in the test, no hardware)."""

import threading
import time

import numpy as np
import pytest

from tracker.core.errors import DeviceDisconnectedError
from tracker.core.structures import Camera, Frame, FrameSet, HandPose, Intrinsics
from tracker.runtime.loop import Channel, ChannelClosed, StreamingLoop
from tracker.runtime.pipeline import Pipeline

CAM = Camera("synthetic", Intrinsics(500, 500, 32, 24, 64, 48))


class CountingDevice:
    """Frames numbered 0..n-1, produced every ``period`` s; optionally fails after ``fail_at``."""

    def __init__(self, n: int, live: bool, period: float = 0.0, fail_at: int | None = None) -> None:
        self.name, self.live, self.n, self.period, self.fail_at = "counting", live, n, period, fail_at
        self.i = 0

    def open(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def read(self) -> FrameSet | None:
        if self.fail_at is not None and self.i == self.fail_at:
            raise DeviceDisconnectedError("camera unplugged")
        if self.i >= self.n:
            return None
        if self.period:
            time.sleep(self.period)
        frame = Frame(np.full((48, 64, 3), self.i % 256, np.uint8), self.i * 0.01, self.i, CAM)
        self.i += 1
        return FrameSet.single(frame)


class SlowStage:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.seen: list[int] = []

    def __call__(self, frameset: FrameSet, hands: list[HandPose]) -> list[HandPose]:
        self.seen.append(frameset.index)
        time.sleep(self.seconds)
        return hands


def test_playback_processes_every_frame_in_order():
    stage = SlowStage(0.001)
    results = []
    loop = StreamingLoop(CountingDevice(50, live=False), Pipeline([("slow", stage)]), [results.append])
    stats = loop.run()
    assert stage.seen == list(range(50))
    assert [r.index for r in results] == list(range(50))
    assert stats.processed == stats.captured == 50 and stats.dropped == 0
    assert set(stats.stages) >= {"slow", "total", "latency"}


def test_live_keeps_only_the_newest_frame_and_counts_drops():
    stage = SlowStage(0.02)  # pipeline slower than the 2 ms camera
    loop = StreamingLoop(CountingDevice(200, live=True, period=0.002), Pipeline([("slow", stage)]))
    stats = loop.run()
    assert stats.dropped > 0
    assert stats.processed + stats.dropped == stats.captured
    assert stage.seen == sorted(stage.seen) and len(stage.seen) < 200
    assert stage.seen[-1] == 199  # the last frame is the one the pipeline ends on


def test_max_frames_and_stop_event():
    loop = StreamingLoop(CountingDevice(1000, live=False), Pipeline([("slow", SlowStage(0))]), max_frames=7)
    assert loop.run().processed == 7
    stop = threading.Event()
    loop = StreamingLoop(CountingDevice(10**6, live=True, period=0.001), Pipeline([("slow", SlowStage(0.001))]))
    loop.start(stop)
    time.sleep(0.2)
    t0 = time.perf_counter()
    stop.set()
    stats = loop.join(timeout=2.0)
    assert not loop.is_running() and time.perf_counter() - t0 < 1.0
    assert stats.processed > 0


def test_device_error_reaches_the_caller_after_clean_shutdown():
    results = []
    loop = StreamingLoop(CountingDevice(100, live=True, fail_at=5), Pipeline([("s", SlowStage(0))]), [results.append])
    with pytest.raises(DeviceDisconnectedError, match="unplugged"):
        loop.run()
    assert all(r.index < 5 for r in results)


def test_channel_fifo_blocks_and_close_wakes_everyone():
    ch: Channel[int] = Channel(latest_only=False, capacity=2)
    assert ch.put(1) and ch.put(2)
    done = threading.Event()

    def producer():
        ch.put(3)  # blocks: full
        done.set()

    threading.Thread(target=producer, daemon=True).start()
    assert not done.wait(0.1)
    assert ch.get() == 1
    assert done.wait(1.0)
    assert ch.get_nowait() == 2 and ch.get(timeout=0.01) == 3
    assert ch.get(timeout=0.01) is None
    ch.close()
    assert not ch.put(4)
    with pytest.raises(ChannelClosed):
        ch.get()


def test_channel_latest_only_replaces():
    ch: Channel[int] = Channel(latest_only=True)
    for i in range(5):
        ch.put(i)
    assert ch.get() == 4 and ch.dropped == 4
