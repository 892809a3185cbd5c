"""The WebSocket sink on 127.0.0.1 with real ``websockets`` clients and raw sockets: every frame arrives
as the JSON Lines export's line, several clients, a client that never reads neither blocks the
pipeline nor the other clients (and is dropped), the viewer is served over HTTP on the same port, a
port in use is an OutputError; and the viewer's bone list is the one of :mod:`tracker.core.joints`."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tracker.core.errors import OutputError
from tracker.core.joints import EDGES, NUM_JOINTS
from tracker.core.structures import FrameResult, FrameSet, HandPose
from tracker.sinks.export import JsonlExporter
from tracker.sinks.websocket import WebSocketSink


@pytest.fixture
def frame(blank_frameset: Callable[..., FrameSet], make_hand: Callable[..., HandPose]) -> Callable[[int], FrameResult]:
    """``frame(i)``: frame ``i`` at ``i / 30`` s with three hands: one with 3D, one without (and a NaN
    joint), one fused from a rig (``joints_world``, ``uncertainty_mm``)."""

    def make(i: int) -> FrameResult:
        j2 = np.arange(NUM_JOINTS * 2, dtype=float).reshape(NUM_JOINTS, 2) * 3.0 + 100.25 + i
        j3 = np.arange(NUM_JOINTS * 3, dtype=float).reshape(NUM_JOINTS, 3) * 1.5 + 300.0 + i
        j2_nan = j2 + 50.0
        j2_nan[4] = np.nan
        hands = (
            make_hand(j2, np.linspace(0.5, 0.9, NUM_JOINTS), i / 30, j3, track_id=3, handedness="right",
                      handedness_score=0.875, score=0.96875, view=0),
            make_hand(j2_nan, 0.5, i / 30, None, track_id=4, handedness="left", handedness_score=0.5),
            make_hand(j2 + 20.0, 0.75, i / 30, j3 + 7.0, track_id=5, view=-1, joints_world=j3 * 2.0,
                      uncertainty_mm=np.linspace(1.0, 9.0, NUM_JOINTS)),
        )  # fmt: skip
        return FrameResult(blank_frameset(i / 30, i), hands)

    return make


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def clients(sink: WebSocketSink) -> int:
    return len(sink.stats().clients)


def stalled_client(port: int) -> socket.socket:
    """A raw TCP client that completes the WebSocket handshake, then never reads (a 4 KiB receive buffer)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())  # fmt: skip
    head = b""
    while not head.endswith(b"\r\n\r\n"):  # byte by byte: read nothing past the response head
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def test_each_client_gets_every_frame_as_the_jsonl_export_line(tmp_path: Path, frame: Callable[[int], FrameResult]
                                                                 ) -> None:  # fmt: skip
    n = 20
    with WebSocketSink(0, buffer_frames=n, max_pending=n) as sink, connect(sink.ws_url) as a, connect(sink.ws_url) as b:
        wait_for(lambda: clients(sink) == 2)
        with JsonlExporter(tmp_path / "x.jsonl") as exporter:
            for i in range(n):
                sink(frame(i))
                exporter(frame(i))
        got_a = [a.recv(timeout=5) for _ in range(n)]
        got_b = [b.recv(timeout=5) for _ in range(n)]
        wait_for(lambda: sink.stats().frames_sent == 2 * n)  # counted once the send returns
        stats = sink.stats()
    lines = (tmp_path / "x.jsonl").read_text().splitlines()
    assert len(lines) == n
    assert got_a == lines  # byte for byte: the message is the export line
    assert got_b == lines
    assert [json.loads(m)["frame_index"] for m in got_a] == list(range(n))
    assert json.loads(got_a[0])["hands"][1]["joints_2d"][4] == [None, None]  # NaN -> null, as in the export
    assert (stats.frames_published, stats.frames_sent, stats.frames_skipped, stats.frames_dropped) == (n, 2 * n, 0, 0)


def test_a_client_that_never_reads_blocks_nothing_and_is_dropped(frame: Callable[[int], FrameResult]) -> None:
    n = 200
    results = [frame(i) for i in range(n)]
    with WebSocketSink(0, stall_timeout_s=1.0) as sink:
        stalled = stalled_client(sink.port)
        received: list[int] = []

        with connect(sink.ws_url) as fast:

            def read() -> None:
                try:
                    while not received or received[-1] != n - 1:
                        received.append(json.loads(fast.recv(timeout=10))["frame_index"])
                except (ConnectionClosed, TimeoutError):
                    pass

            reader = threading.Thread(target=read)
            reader.start()
            wait_for(lambda: clients(sink) == 2)
            durations = []
            for result in results:
                t0 = time.perf_counter()
                sink(result)
                durations.append(time.perf_counter() - t0)
                time.sleep(0.002)
            reader.join(timeout=10)
            assert received and received[-1] == n - 1  # the reading client got the newest frame
            assert received == sorted(set(received))  # in order, no repeats
            # the stalled client's send stalls once its socket buffers are full; it is then
            # disconnected after stall_timeout_s, leaving the reading client alone
            wait_for(lambda: clients(sink) == 1, timeout_s=10)
            stats = sink.stats()
        stalled.close()
    assert max(durations) < 0.05, f"a sink call took {max(durations) * 1e3:.1f} ms"
    assert stats.clients_served == 2
    assert stats.frames_skipped > 0  # the stalled client skipped frames (counted) rather than queueing them
    assert stats.frames_sent <= 2 * n


def test_calls_without_clients_do_nothing(frame: Callable[[int], FrameResult]) -> None:
    with WebSocketSink(0) as sink:
        with connect(sink.ws_url):
            wait_for(lambda: clients(sink) == 1)
        wait_for(lambda: clients(sink) == 0)  # a gone client costs nothing
        for i in range(50):
            sink(frame(i))
        time.sleep(0.05)
        assert sink.stats().frames_published == 0
    sink(frame(0))  # after close: ignored
    sink.close()  # twice: fine


def test_close_disconnects_the_clients(frame: Callable[[int], FrameResult]) -> None:
    sink = WebSocketSink(0)
    with connect(sink.ws_url) as ws:
        wait_for(lambda: clients(sink) == 1)
        sink.close()
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", sink.port), timeout=1).close()  # the port is free again


def test_http_serves_the_viewer_and_404_elsewhere() -> None:
    with WebSocketSink(0) as sink:
        assert sink.url == f"http://127.0.0.1:{sink.port}/"
        with urllib.request.urlopen(sink.url, timeout=5) as r:
            assert (r.status, r.headers["Content-Type"]) == (200, "text/html; charset=utf-8")
            page = r.read().decode()
        assert "<canvas" in page and 'src="viewer.js"' in page
        with urllib.request.urlopen(sink.url + "viewer.js", timeout=5) as r:
            assert r.headers["Content-Type"].startswith("text/javascript")
            assert r.read() == files("tracker.sinks").joinpath("viewer", "viewer.js").read_bytes()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(sink.url + "nope", timeout=5)
        assert err.value.code == 404
        err.value.close()  # else the server waits its close timeout (2 s) for this socket at close()
        with pytest.raises(InvalidStatus, match="404"):
            connect(f"{sink.ws_url}other").close()  # a stream only on /


def test_a_port_in_use_is_an_output_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OutputError, match=f"127.0.0.1:{port}: cannot listen: port {port} is already in use"):
            WebSocketSink(port)
    with pytest.raises(OutputError, match="not an address of this machine"):
        WebSocketSink(0, "192.0.2.1")  # TEST-NET-1: never local


def viewer_text(name: str) -> str:
    return files("tracker.sinks").joinpath("viewer", name).read_text(encoding="utf-8")


def test_viewer_bones_are_the_joint_edges() -> None:
    block = re.search(r"const BONES = \[(.*?)\];", viewer_text("viewer.js"), re.DOTALL)
    assert block, "viewer.js defines no BONES list"
    bones = tuple((int(a), int(b)) for a, b in re.findall(r"\[\s*(\d+)\s*,\s*(\d+)\s*\]", block.group(1)))
    assert bones == EDGES  # 20 bones, same order


def test_viewer_is_self_contained() -> None:
    for name in ("index.html", "viewer.js"):
        text = viewer_text(name)
        assert not re.search(r"https?://|//cdn|@import|url\(", text), f"{name} loads something from outside"
    assert re.findall(r'<script[^>]*src="([^"]*)"', viewer_text("index.html")) == ["viewer.js"]
