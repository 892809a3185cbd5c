"""Benchmark: the live I/O, i.e. session recording and streaming joints out, on the real loop.

What is measured (every loop row runs the real :class:`~tracker.runtime.loop.StreamingLoop` on the
demo video, 640x480, at full speed, with a fresh device and pipeline per run, as ``bench/loop.py``):

* **recording overhead**: ms per frame of the loop with a :class:`~tracker.io.recording.RecordingWriter`
  as its first sink (as ``--record FILE.mcap``; lossless, then ``--record-quality Q``), against the
  same loop without it (the baseline, ``loop_no_record``). Rounds alternate the three settings so
  machine noise hits them alike. ``median_ms`` is the median over rounds of a run's wall time per
  frame (1000 / FPS); ``p95_ms`` is the 95th percentile of the per-frame intervals (result to
  result) over all rounds. The row also says how many frame sets the writer dropped (it never
  blocks the loop: it drops instead) and the file's MB per second of content (played faster than
  the demo's 30 FPS, so chunks are larger than live: the ``record_*`` rows give a live session's).
* **bytes per second recorded**: the writer alone, fed every result of a demo pass (colour) and of
  a ``synthetic:1`` run (RGB-D: colour + 16-bit depth), lossless and JPEG, with a queue large enough
  that nothing is dropped. ``median_ms`` is the writer's time per frame set when fed as fast as it
  goes (encode + write in its thread, from the first call to the end of ``close()``; the recording
  keeps up with a camera when this is below its frame period). ``mb_per_s`` is the file size per
  second of content (frames x frame period) when fed at the source's frame rate, as in a live
  session (a chunk ends every flush interval, 0.5 s); ``mb_per_s_full_speed`` is that of the files
  fed as fast as possible (larger chunks: zstd finds repeats across JPEG frames). No baseline.
* **streaming latency**: from the moment the loop calls the sink with a result (the frame's end) to
  the moment a client on 127.0.0.1 has received its message, per frame, while the loop runs:

  - ``websocket_latency``: :class:`~tracker.sinks.websocket.WebSocketSink` to a ``websockets`` (sync)
    client; baseline ``tcp_bridge_latency``: what one would write by hand, a sink that encodes the
    same JSON text and sends it length-prefixed on a plain localhost TCP socket (``TCP_NODELAY``)
    from the loop's thread, to a thread reading that socket.
  - ``osc_latency``: :class:`~tracker.sinks.osc.OscSink` (one bundle per frame) to a UDP socket;
    baseline ``udp_bridge_latency``: the same bundle bytes (``encode_frame``) sent with ``sendto``
    from the loop's thread. Received bundles are decoded with ``python-osc`` afterwards (frame index).

  Our sinks hand the result to their own thread (the loop never waits on the network), so the
  latency includes a thread hop; ``call_us`` is what each call costs the loop's thread.

``ratio`` = baseline / ours (> 1: ours is faster); for the recording rows ``overhead`` = ours /
baseline - 1.

    python bench/io.py [--rounds 3] [--frames N] [--rgbd-frames 60] [--quality 90] [--dir DIR] [--json]
    python bench/io.py --quick     # a layout check: 1 round of a few frames
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("GLOG_minloglevel", "2")

from bench._common import machine_info, print_json, row  # noqa: E402
from tracker.build import build_pipeline  # noqa: E402
from tracker.config import TrackerConfig  # noqa: E402
from tracker.core.structures import FrameResult  # noqa: E402
from tracker.io.recording import RecordingWriter  # noqa: E402
from tracker.io.sources import SourceOptions, open_source, parse_source  # noqa: E402
from tracker.runtime.loop import StreamingLoop  # noqa: E402
from tracker.sinks.export import frame_json  # noqa: E402
from tracker.sinks.osc import OscSink, encode_frame  # noqa: E402
from tracker.sinks.websocket import WebSocketSink  # noqa: E402

Sink = Callable[[FrameResult], None]


# -- running the loop ------------------------------------------------------------------------------


class Stamper:
    """A sink wrapper: when each result reached it (``perf_counter``, by frame index), the time the
    wrapped sink's call took, and the result times (for the per-frame intervals)."""

    def __init__(self, inner: Sink | None = None) -> None:
        self.inner = inner
        self.t_call: dict[int, float] = {}
        self.call_s: list[float] = []
        self.times: list[float] = []
        self.stamps: list[float] = []  # the results' own timestamps (content time)

    def __call__(self, result: FrameResult) -> None:
        t = time.perf_counter()
        self.times.append(t)
        self.stamps.append(result.timestamp)
        if self.inner is not None:
            self.t_call[result.index] = t
            self.inner(result)
            self.call_s.append(time.perf_counter() - t)


def run_loop(source: str, sinks: Sequence[Sink], frames: int | None) -> tuple[float, int, Stamper]:
    """One run of the real loop on ``source`` (fresh device and pipeline; played once, as fast as it
    goes) with ``sinks`` and a :class:`Stamper` last. Returns (seconds per frame, frames, the stamper)."""
    pipeline = build_pipeline(TrackerConfig(), 1)
    device = open_source(parse_source(source), SourceOptions(realtime=False))
    stamper = Stamper()
    try:
        loop = StreamingLoop(device, pipeline, [*sinks, stamper], max_frames=frames)
        t0 = time.perf_counter()
        stats = loop.run()
        wall = time.perf_counter() - t0
    finally:
        device.close()
        pipeline.close()
    return wall / stats.processed, stats.processed, stamper


def frame_period(stamps: Sequence[float]) -> float:
    """The source's frame period, seconds, from consecutive result timestamps."""
    d = np.diff(np.asarray(stamps, dtype=np.float64))
    d = d[d > 0]
    return float(np.median(d)) if d.size else 1.0 / 30.0


def intervals_ms(stamper: Stamper) -> list[float]:
    return list(np.diff(stamper.times) * 1e3)


def pooled(runs: Sequence[dict[str, Any]], key: str) -> list[float]:
    """The per-frame values ``key`` of several runs, in one list."""
    return [v for run in runs for v in run[key]]


# -- recording -------------------------------------------------------------------------------------


class RecordRun:
    """A loop run with a recording sink (lossless: ``quality`` None) and what it wrote."""

    def __init__(self, folder: Path, quality: int | None) -> None:
        self.folder, self.quality = folder, quality
        self.path = folder / f"loop_{'lossless' if quality is None else f'q{quality}'}.mcap"

    def __call__(self, frames: int | None) -> dict[str, Any]:
        writer = RecordingWriter(self.path, quality=self.quality, device="demo.mp4")
        try:
            s, n, stamper = run_loop("demo", [writer], frames)
        finally:
            t0 = time.perf_counter()
            writer.close()  # drains the queue: after the loop, not in its time
            close_s = time.perf_counter() - t0
        size = self.path.stat().st_size
        self.path.unlink()
        content_s = writer.written * frame_period(stamper.stamps)
        return {"s_per_frame": s, "frames": n, "intervals": intervals_ms(stamper), "bytes": size,
                "content_s": content_s, "written": writer.written, "dropped": writer.dropped,
                "close_ms": close_s * 1e3}  # fmt: skip


def bench_recording_overhead(folder: Path, quality: int, rounds: int, frames: int | None) -> list[dict]:
    """Rows: the loop with a lossless / JPEG recording sink vs the loop without one, same rounds."""
    settings: dict[str, Callable[[int | None], dict[str, Any]]] = {
        "loop_no_record": lambda f: dict(zip(("s_per_frame", "frames", "stamper"), run_loop("demo", [], f))),
        "lossless": RecordRun(folder, None),
        "jpeg": RecordRun(folder, quality),
    }  # fmt: skip
    for fn in settings.values():  # warm-up: MediaPipe, mcap/protobuf imports, the JPEG encoder
        fn(min(frames or 30, 30))
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in settings}
    names = list(settings)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate the order every round
            out = settings[name](frames)
            if "stamper" in out:
                out["intervals"] = intervals_ms(out.pop("stamper"))
            runs[name].append(out)

    base = runs["loop_no_record"]
    base_ms = float(np.median([x["s_per_frame"] for x in base])) * 1e3
    base_p95 = float(np.percentile(pooled(base, "intervals"), 95))
    rows = []
    for name, label in (("lossless", "loop_record_lossless"), ("jpeg", f"loop_record_jpeg{quality}")):
        rs = runs[name]
        ms = float(np.median([x["s_per_frame"] for x in rs])) * 1e3
        p95 = float(np.percentile(pooled(rs, "intervals"), 95))
        size, content = sum(x["bytes"] for x in rs), sum(x["content_s"] for x in rs)
        rows.append(row(label, ms, p95, "loop_no_record", base_ms, fps=1e3 / ms, baseline_fps=1e3 / base_ms,
                        baseline_p95_ms=base_p95, overhead=ms / base_ms - 1.0,
                        frames=sum(x["frames"] for x in rs), written=sum(x["written"] for x in rs),
                        dropped=sum(x["dropped"] for x in rs), mb_per_s=size / content / 1e6,
                        close_ms=float(np.median([x["close_ms"] for x in rs]))))  # fmt: skip
    return rows


def collect_results(source: str, frames: int | None) -> tuple[list[FrameResult], float]:
    """Every result of one run on ``source`` (kept in memory), and the source's frame period (s)."""
    results: list[FrameResult] = []
    _, _, stamper = run_loop(source, [results.append], frames)
    return results, frame_period(stamper.stamps)


def write_all(path: Path, quality: int | None, results: Sequence[FrameResult], period: float | None = None
              ) -> tuple[float, int, int]:  # fmt: skip
    """Feed ``results`` to a writer that drops nothing and close it; as fast as it goes (``period``
    None) or one every ``period`` seconds, as a camera would. Returns (seconds, bytes, written)."""
    writer = RecordingWriter(path, quality=quality, queue_size=len(results) + 1)
    t0 = time.perf_counter()
    for i, result in enumerate(results):
        if period is not None:
            time.sleep(max(0.0, t0 + i * period - time.perf_counter()))
        writer(result)
    writer.close()
    seconds = time.perf_counter() - t0
    size = path.stat().st_size
    path.unlink()
    return seconds, size, writer.written


def bench_bytes(folder: Path, quality: int, rounds: int, sources: dict[str, tuple[list[FrameResult], float]]
                ) -> list[dict]:  # fmt: skip
    """Rows: writer ms per frame set (fed as fast as it goes) and MB per second of content (fed at the
    source's frame rate, so chunks end as in a live session), lossless and JPEG, per source."""
    rows = []
    for label, (results, period) in sources.items():
        modes = {"lossless": None, f"jpeg{quality}": quality}
        for q in modes.values():  # warm-up
            write_all(folder / "warmup.mcap", q, results[:5])
        times: dict[str, list[float]] = {m: [] for m in modes}
        for _ in range(rounds):
            for mode, q in modes.items():
                seconds, _, written = write_all(folder / f"{label}_{mode}.mcap", q, results)
                assert written == len(results), (written, len(results))
                times[mode].append(seconds / written * 1e3)
        for mode, q in modes.items():
            # the size of a live session: at the camera's pace the writer ends a chunk every flush
            # interval (0.5 s); fed at full speed, larger chunks let zstd find repeats across frames
            _, size, written = write_all(folder / f"{label}_{mode}.mcap", q, results, period)
            _, size_fast, _ = write_all(folder / f"{label}_{mode}.mcap", q, results)
            ms = float(np.median(times[mode]))
            content_s = len(results) * period
            rows.append(row(f"record_{mode}_{label}", ms, float(np.percentile(times[mode], 95)),
                            mb_per_s=size / content_s / 1e6, bytes_per_frame=size / len(results),
                            mb_per_s_full_speed=size_fast / content_s / 1e6, frames=len(results),
                            content_s=content_s, writer_fps=1e3 / ms))  # fmt: skip
    return rows


# -- streaming -------------------------------------------------------------------------------------


class Receiver(threading.Thread):
    """A client thread: ``receive()`` returns one message's bytes/text (None on a timeout), stamped
    with ``perf_counter`` as soon as it returns; decoding the frame index happens after the run."""

    def __init__(self, receive: Callable[[], Any], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.receive = receive
        self.got: list[tuple[float, Any]] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                msg = self.receive()
                if msg is not None:
                    self.got.append((time.perf_counter(), msg))
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            if not self.stop.is_set():
                self.error = exc

    def wait_for(self, count: int, timeout: float = 3.0) -> None:
        """Wait until ``count`` messages arrived (or ``timeout``), then stop."""
        deadline = time.monotonic() + timeout
        while len(self.got) < count and time.monotonic() < deadline and self.error is None:
            time.sleep(0.005)
        self.stop.set()


def latencies(stamper: Stamper, receiver: Receiver, index_of: Callable[[Any], int]) -> tuple[list[float], int]:
    """Per-frame ms from the sink call to receipt, and how many frames were sent but never received."""
    if receiver.error is not None:
        raise RuntimeError(f"{receiver.name}: {receiver.error!r}")
    got = {index_of(msg): t for t, msg in receiver.got}
    lat = [(got[i] - t) * 1e3 for i, t in stamper.t_call.items() if i in got]
    return lat, len(stamper.t_call) - len(lat)


def ws_run(frames: int | None) -> dict[str, Any]:
    """A loop run streaming to a WebSocket client on 127.0.0.1."""
    from websockets.sync.client import connect

    sink = WebSocketSink(0, "127.0.0.1")
    try:
        with connect(sink.ws_url, open_timeout=5) as client:
            deadline = time.monotonic() + 5
            while not sink.stats().clients and time.monotonic() < deadline:  # the server registered it
                time.sleep(0.002)

            def receive() -> str | None:
                try:
                    return client.recv(timeout=0.1)
                except TimeoutError:
                    return None

            receiver = Receiver(receive, "ws-client")
            receiver.start()
            stamped = Stamper(sink)
            _, n, _ = run_loop("demo", [stamped], frames)
            receiver.wait_for(n)
            receiver.join(2.0)
            stats = sink.stats()
    finally:
        sink.close()
    lat, lost = latencies(stamped, receiver, lambda text: json.loads(text)["frame_index"])
    return {"latency": lat, "lost": lost, "call_us": [s * 1e6 for s in stamped.call_s],
            "bytes": float(np.mean([len(m.encode()) for _, m in receiver.got])) if receiver.got else 0.0,
            "dropped": stats.frames_dropped + stats.frames_skipped}  # fmt: skip


def tcp_bridge_run(frames: int | None) -> dict[str, Any]:
    """The baseline of :func:`ws_run`: the same JSON text, length-prefixed, on a plain TCP socket."""
    server = socket.create_server(("127.0.0.1", 0))
    sender = socket.create_connection(server.getsockname())
    sender.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn, _ = server.accept()
    conn.settimeout(0.1)
    buf = bytearray()

    def receive() -> bytes | None:
        while True:
            if len(buf) >= 4:
                size = struct.unpack(">I", buf[:4])[0]
                if len(buf) >= 4 + size:
                    msg = bytes(buf[4 : 4 + size])
                    del buf[: 4 + size]
                    return msg
            try:
                chunk = conn.recv(1 << 16)
            except TimeoutError:
                return None
            if not chunk:
                raise ConnectionError("the sender closed the connection")
            buf.extend(chunk)

    def bridge(result: FrameResult) -> None:
        data = frame_json(result).encode()
        sender.sendall(struct.pack(">I", len(data)) + data)

    receiver = Receiver(receive, "tcp-client")
    receiver.start()
    stamped = Stamper(bridge)
    try:
        _, n, _ = run_loop("demo", [stamped], frames)
        receiver.wait_for(n)
        receiver.join(2.0)
    finally:
        sender.close()
        conn.close()
        server.close()
    lat, lost = latencies(stamped, receiver, lambda data: json.loads(data)["frame_index"])
    return {"latency": lat, "lost": lost, "call_us": [s * 1e6 for s in stamped.call_s]}


def _udp_receiver(name: str) -> tuple[socket.socket, Receiver]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)

    def receive() -> bytes | None:
        try:
            return sock.recv(1 << 16)
        except TimeoutError:
            return None

    receiver = Receiver(receive, name)
    receiver.start()
    return sock, receiver


def _osc_frame_index(datagram: bytes) -> int:
    """The frame index of a bundle's ``/handtrack/frame`` message (decoded with python-osc)."""
    from pythonosc.osc_bundle import OscBundle

    msg = OscBundle(datagram).content(0)
    assert msg.address == "/handtrack/frame", msg.address
    return int(msg.params[0])


def osc_run(frames: int | None) -> dict[str, Any]:
    """A loop run sending OSC bundles to a UDP socket on 127.0.0.1."""
    sock, receiver = _udp_receiver("osc-client")
    sink = OscSink("127.0.0.1", sock.getsockname()[1])
    stamped = Stamper(sink)
    try:
        _, n, _ = run_loop("demo", [stamped], frames)
        receiver.wait_for(n)
        receiver.join(2.0)
    finally:
        sink.close()
        sock.close()
    lat, lost = latencies(stamped, receiver, _osc_frame_index)
    return {"latency": lat, "lost": lost, "call_us": [s * 1e6 for s in stamped.call_s],
            "bytes": float(np.mean([len(m) for _, m in receiver.got])) if receiver.got else 0.0,
            "dropped": sink.frames_dropped + sink.send_errors}  # fmt: skip


def udp_bridge_run(frames: int | None) -> dict[str, Any]:
    """The baseline of :func:`osc_run`: the same bundle bytes sent with ``sendto`` from the loop's thread."""
    sock, receiver = _udp_receiver("udp-client")
    address = sock.getsockname()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t0: list[float] = []

    def bridge(result: FrameResult) -> None:
        if not t0:
            t0.append(result.timestamp)
        messages = encode_frame(result, result.timestamp - t0[0])
        bundle = b"#bundle\0" + struct.pack(">Q", 1) + b"".join(struct.pack(">i", len(m)) + m for m in messages)
        sender.sendto(bundle, address)

    stamped = Stamper(bridge)
    try:
        _, n, _ = run_loop("demo", [stamped], frames)
        receiver.wait_for(n)
        receiver.join(2.0)
    finally:
        sender.close()
        sock.close()
    lat, lost = latencies(stamped, receiver, _osc_frame_index)
    return {"latency": lat, "lost": lost, "call_us": [s * 1e6 for s in stamped.call_s]}


def bench_streaming(rounds: int, frames: int | None) -> list[dict]:
    """Rows: WebSocket and OSC latency in the running loop, each against its hand-written bridge."""
    pairs = {"websocket_latency": (ws_run, "tcp_bridge_latency", tcp_bridge_run),
             "osc_latency": (osc_run, "udp_bridge_latency", udp_bridge_run)}  # fmt: skip
    runs: dict[str, list[dict[str, Any]]] = {}
    for ours, base_name, base in pairs.values():  # warm-up
        ours(min(frames or 20, 20))
        base(min(frames or 20, 20))
    for r in range(rounds):
        for name, (ours, base_name, base) in pairs.items():
            order = [(name, ours), (base_name, base)]
            for key, fn in order if r % 2 == 0 else order[::-1]:
                runs.setdefault(key, []).append(fn(frames))
    rows = []
    for name, (_, base_name, _) in pairs.items():
        lat = pooled(runs[name], "latency")
        base_lat = pooled(runs[base_name], "latency")
        median, p95 = float(np.median(lat)), float(np.percentile(lat, 95))
        rows.append(row(name, median, p95, base_name, float(np.median(base_lat)),
                        baseline_p95_ms=float(np.percentile(base_lat, 95)), frames=len(lat),
                        lost=sum(x["lost"] for x in runs[name]), dropped=sum(x["dropped"] for x in runs[name]),
                        call_us=float(np.median(pooled(runs[name], "call_us"))),
                        baseline_call_us=float(np.median(pooled(runs[base_name], "call_us"))),
                        message_bytes=float(np.mean([x["bytes"] for x in runs[name]]))))  # fmt: skip
    return rows


# -- the table -------------------------------------------------------------------------------------


def print_table(results: list[dict], header: str) -> None:
    print(header)
    print(f"{'name':<24}{'median ms':>10}{'p95 ms':>9}  {'baseline':<20}{'base ms':>9}{'ratio':>7}  notes")
    for r in results:
        if r["baseline"] is None:
            base = f"  {'-':<20}{'':>9}{'':>7}"
        else:
            base = f"  {r['baseline']:<20}{r['baseline_median_ms']:9.2f}{r['ratio']:7.2f}"
        if "overhead" in r:
            note = (f"{r['fps']:.1f} vs {r['baseline_fps']:.1f} FPS ({100 * r['overhead']:+.1f} %), "
                    f"{r['mb_per_s']:.2f} MB/s, dropped {r['dropped']}/{r['frames']}")  # fmt: skip
        elif "mb_per_s" in r:
            note = (f"{r['mb_per_s']:.2f} MB/s of content at its frame rate ({r['bytes_per_frame'] / 1e3:.0f} "
                    f"kB/frame; fed at full speed {r['mb_per_s_full_speed']:.2f} MB/s)")  # fmt: skip
        else:
            note = (f"p95 base {r['baseline_p95_ms']:.2f} ms, call {r['call_us']:.0f} vs {r['baseline_call_us']:.0f} "
                    f"us, {r['message_bytes']:.0f} B/msg, lost {r['lost']}, dropped {r['dropped']}")  # fmt: skip
        print(f"{r['name']:<24}{r['median_ms']:10.2f}{r['p95_ms']:9.2f}{base}  {note}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    ap.add_argument("--frames", type=int, default=None, help="frames per loop run (default: the whole demo)")
    ap.add_argument("--rgbd-frames", type=int, default=60, help="synthetic RGB-D frames recorded (default 60)")
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality of the JPEG rows (default 90)")
    ap.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where the recordings are written (deleted after each run; default: a temporary folder)",
    )
    ap.add_argument("--quick", action="store_true", help="1 round of 10 frames (a layout check)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.frames, args.rgbd_frames = 1, 10, 5

    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="bench_io_", dir=args.dir))
    try:
        results = bench_recording_overhead(folder, args.quality, args.rounds, args.frames)
        demo = collect_results("demo", args.frames)
        rgbd = collect_results("synthetic:1", args.rgbd_frames)
        results += bench_bytes(folder, args.quality, args.rounds, {"demo": demo, "rgbd": rgbd})
        del demo, rgbd
        results += bench_streaming(args.rounds, args.frames)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    machine = machine_info(rounds=args.rounds, frames=args.frames, rgbd_frames=args.rgbd_frames,
                           jpeg_quality=args.quality, record_dir=str(args.dir or tempfile.gettempdir()))  # fmt: skip
    if args.json:
        print_json(machine, results)
        return 0
    frames = "the whole demo" if args.frames is None else f"{args.frames} frames"
    print_table(results, f"demo 640x480 at full speed, {args.rounds} rounds x {frames}; RGB-D: synthetic:1, "
                         f"{args.rgbd_frames} frames; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
