"""OscSink against a real python-osc UDP server on 127.0.0.1: every frame arrives with its hands' values,
one bundle of 60 + 748 bytes per hand per frame, and a receiver that is not there costs the pipeline nothing."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

from tracker.core.errors import ConfigError
from tracker.core.joints import NUM_JOINTS
from tracker.core.structures import FrameResult, FrameSet, HandPose
from tracker.sinks.osc import OscSink


class _Receiver:
    """A python-osc server on 127.0.0.1 (an ephemeral port) that records every message in order."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, tuple]] = []
        self._lock = threading.Lock()
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(self._record)
        self.server = BlockingOSCUDPServer(("127.0.0.1", 0), dispatcher)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def _record(self, address: str, *args: object) -> None:
        with self._lock:
            self.messages.append((address, args))

    def wait_for(self, address: str, count: int, timeout: float = 5.0) -> list[tuple]:
        """The arguments of the first ``count`` messages to ``address`` (waits up to ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = [args for a, args in self.messages if a == address]
            if len(found) >= count:
                return found
            time.sleep(0.005)
        return found

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    r = _Receiver()
    yield r
    r.close()


@pytest.fixture
def frame(blank_frameset: Callable[..., FrameSet], make_hand: Callable[..., HandPose]) -> Callable[[int], FrameResult]:
    """``frame(i)``: frame ``i`` at ``100 + i / 30`` s with three hands: a camera hand with 3D (track 3,
    right), one without 3D (track 4, left), a rig hand with world joints (track 7, view -1)."""

    def make(i: int) -> FrameResult:
        j2 = np.arange(NUM_JOINTS * 2, dtype=float).reshape(NUM_JOINTS, 2) + 0.25 + i
        j3 = np.arange(NUM_JOINTS * 3, dtype=float).reshape(NUM_JOINTS, 3) * 1.5 + 300.0 + i
        world = -j3 - 1000.0
        ts = 100.0 + i / 30
        hands = (make_hand(j2, np.linspace(0.5, 0.9, NUM_JOINTS), ts, j3, track_id=3, handedness="right", score=0.75),
                 make_hand(j2 + 100.0, 0.5, ts, None, track_id=4, handedness="left", score=0.5),
                 make_hand(j2, 0.25, ts, j3, track_id=7, view=-1, joints_world=world))  # fmt: skip
        return FrameResult(blank_frameset(ts, i), hands)

    return make


def _send_paced(sink: OscSink, results: list[FrameResult], timeout: float = 5.0) -> None:
    """Hand each result to the sink once the previous one has been sent (no frame is replaced)."""
    for k, result in enumerate(results):
        sink(result)
        deadline = time.monotonic() + timeout
        while sink.frames_sent + sink.send_errors <= k and time.monotonic() < deadline:
            time.sleep(0.001)


def test_server_receives_every_frame_and_each_hands_values(receiver: _Receiver, frame) -> None:
    """N = 6 frames: 6 /handtrack/frame messages (index, time since the first frame, 3 hands) and 18 of
    each per-hand message, values equal to the hands' float32 values (NaN for the hand without 3D,
    world joints for the rig hand)."""
    n = 6
    results = [frame(i) for i in range(n)]
    with OscSink("127.0.0.1", receiver.port) as sink:
        _send_paced(sink, results)
    frames = receiver.wait_for("/handtrack/frame", n)
    hands = receiver.wait_for("/handtrack/hand", 3 * n)
    hands2d = receiver.wait_for("/handtrack/hand2d", 3 * n)
    confidence = receiver.wait_for("/handtrack/confidence", 3 * n)
    assert sink.frames_sent == n and sink.frames_dropped == 0 and sink.send_errors == 0
    assert [f[0] for f in frames] == list(range(n))
    assert [f[2] for f in frames] == [3] * n
    np.testing.assert_allclose([f[1] for f in frames], np.arange(n) / 30, atol=1e-6)
    assert len(hands) == len(hands2d) == len(confidence) == 3 * n
    for i, result in enumerate(results):
        for k, hand in enumerate(result.hands):
            msg = hands[3 * i + k]
            assert msg[:2] == (hand.track_id, hand.handedness) and len(msg) == 2 + 63
            expected = hand.joints_world if hand.view == -1 else hand.joints_3d
            if expected is None:
                assert np.isnan(msg[2:]).all()
            else:
                np.testing.assert_array_equal(msg[2:], expected.reshape(-1).astype(np.float32))
            m2 = hands2d[3 * i + k]
            assert m2[:2] == (hand.track_id, hand.view) and len(m2) == 2 + 42
            np.testing.assert_array_equal(m2[2:], hand.joints_2d.reshape(-1).astype(np.float32))
            mc = confidence[3 * i + k]
            assert mc[0] == hand.track_id and len(mc) == 2 + 21
            np.testing.assert_array_equal(mc[1:], np.r_[hand.score, hand.confidence].astype(np.float32))


def _udp_listener() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5.0)
    return s


def test_one_bundle_per_frame_of_60_plus_748_bytes_per_hand(blank_frameset, frame) -> None:
    """Frames with 0, 3 and 3 hands arrive as 3 datagrams, each an OSC bundle of 60 + 748 * hands bytes."""
    listener = _udp_listener()
    results = [FrameResult(blank_frameset(0.0, 0), ()), frame(1), frame(2)]
    with OscSink("127.0.0.1", listener.getsockname()[1]) as sink:
        _send_paced(sink, results)
    datagrams = [listener.recv(65536) for _ in results]
    listener.close()
    assert [d[:8] for d in datagrams] == [b"#bundle\0"] * 3
    assert [len(d) for d in datagrams] == [60, 60 + 748 * 3, 60 + 748 * 3]


def test_unbundled_sends_one_datagram_per_message(frame) -> None:
    """bundle=False: a frame with 3 hands is 1 + 3 * 3 = 10 datagrams, /handtrack/frame first."""
    listener = _udp_listener()
    with OscSink("127.0.0.1", listener.getsockname()[1], bundle=False) as sink:
        _send_paced(sink, [frame(0)])
    datagrams = [listener.recv(65536) for _ in range(10)]
    listener.close()
    assert datagrams[0].startswith(b"/handtrack/frame\0")
    assert [d.split(b"\0")[0] for d in datagrams[1:4]] == [b"/handtrack/hand", b"/handtrack/hand2d",
                                                           b"/handtrack/confidence"]  # fmt: skip


def _closed_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_a_receiver_that_is_not_there_costs_the_pipeline_nothing(frame) -> None:
    """200 frames to a closed port as fast as they come: every sink call returns in < 5 ms, the newest
    frame is still sent (sent + dropped + failed = 200), and close() returns in < 1 s."""
    results = [frame(i) for i in range(200)]
    sink = OscSink("127.0.0.1", _closed_port())
    calls = []
    for result in results:
        t0 = time.perf_counter()
        sink(result)
        calls.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    sink.close()
    assert time.perf_counter() - t0 < 1.0
    assert max(calls) < 0.005, f"slowest call {max(calls) * 1e3:.2f} ms"
    # a bundle is one datagram: a frame is sent, dropped, or failed once
    assert sink.frames_sent + sink.frames_dropped + sink.send_errors == 200


def test_newest_frame_wins_when_the_sender_falls_behind(receiver: _Receiver, frame) -> None:
    """50 frames handed over at once: frames are dropped rather than queued, the last one (49) is always
    received, and every frame is either sent or counted as dropped."""
    with OscSink("127.0.0.1", receiver.port) as sink:
        for i in range(50):
            sink(frame(i))
    assert sink.frames_sent + sink.frames_dropped == 50
    received = receiver.wait_for("/handtrack/frame", sink.frames_sent)
    assert received[-1][0] == 49


def test_calls_after_close_are_ignored(frame) -> None:
    sink = OscSink("127.0.0.1", _closed_port())
    sink.close()
    sink(frame(0))
    sink.close()
    assert sink.frames_sent == 0 and sink.frames_dropped == 0


def test_port_out_of_range_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="1..65535"):
        OscSink("127.0.0.1", 70000)


def test_grip_and_gesture_messages_reach_a_real_receiver(receiver: _Receiver, frame) -> None:
    """A hand with a grip state gets /handtrack/grip every frame; a completed gesture adds one
    /handtrack/gesture with its label, score and frames."""
    from tracker.core.structures import GestureEvent, Grip

    base = frame(0)
    hand = base.hands[0].replace(grip=Grip(True, 12.5, False, 0.25),
                                 gesture=GestureEvent("swipe_left", 0.875, 10, 40, 1.0, 2.0))  # fmt: skip
    result = FrameResult(base.frameset, (hand,) + tuple(base.hands[1:]))
    with OscSink("127.0.0.1", receiver.port) as sink:
        _send_paced(sink, [result])
    grip = receiver.wait_for("/handtrack/grip", 1)
    gesture = receiver.wait_for("/handtrack/gesture", 1)
    assert grip == [(3, 1, 12.5, 0, 0.25)]
    assert gesture == [(3, "swipe_left", 0.875, 10, 40)]
    assert len(receiver.wait_for("/handtrack/hand", 3)) == 3
