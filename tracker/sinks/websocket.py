"""Streaming results to WebSocket clients, and serving the browser viewer on the same port.

:class:`WebSocketSink` is a sink (``sink(result)``, ``close()``) that runs a ``websockets`` server in
its own thread with its own asyncio event loop. Bound to ``127.0.0.1`` unless another host is given
(``0.0.0.0`` or ``::`` lets other machines on the network, e.g. a phone, connect).

What a client gets (``ws://HOST:PORT/``): one JSON text message per frame, exactly the object of a
line of the JSON Lines export (layout in :mod:`tracker.sinks.export`)::

    {"timestamp": s, "frame_index": int, "hands": [{"id", "handedness", ..., "joints_2d": 21 x [u, v] px,
     "joints_3d": 21 x [x, y, z] mm (camera frame) or null, ..., "joints_world": (rigs)}]}

The same port answers plain HTTP ``GET /`` with the browser viewer (``tracker/sinks/viewer/``,
read with :mod:`importlib.resources`): ``/`` and ``/index.html`` (the page), ``/viewer.js`` (its
script); any other path is 404, and a WebSocket handshake on another path than ``/`` too. The
messages carry no image size; the viewer uses a frame's ``image_size`` (``[w, h]`` or one per view)
when there is one, and otherwise the smallest common resolution holding every 2D joint seen so far.

Never blocking the pipeline:

* ``sink(result)`` does no I/O and no serialisation: with no client connected it returns at once;
  otherwise it appends the result to a queue of ``max_pending`` results and wakes the server thread
  (``call_soon_threadsafe``, once per batch). When the server thread is that far behind, the oldest
  waiting result is dropped for everyone (counted in :attr:`WebSocketStats.frames_dropped`): memory
  stays bounded and the newest frame always goes out.
* the server thread encodes each frame once, then puts the text into every client's own buffer of
  ``buffer_frames`` messages (the newest kept): a client slower than the frame rate skips frames
  (counted per client and in :attr:`WebSocketStats.frames_skipped`), and never slows the others.
* a client whose send has not completed for ``stall_timeout_s`` (it stopped reading: its socket
  buffers are full) is disconnected; keepalive pings drop a client that vanished silently.
  Per client, memory stays below ``buffer_frames`` messages, the ``websockets`` write buffer (32 KiB)
  and a fixed kernel send buffer (``socket_buffer_bytes``), which also bounds how stale a slow
  client's frames can get.
* a client that goes away costs nothing: its buffer and task are gone with it.

Errors: a port already in use, a host that is not an address of this machine, or a port this
process may not open raise :class:`~tracker.core.errors.OutputError` when the sink is constructed
(before any frame); a malformed ``[HOST:]PORT`` is a :class:`~tracker.core.errors.ConfigError`
(:func:`tracker.config.parse_address`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.utils
import errno
import http
import logging
import socket
import threading
from dataclasses import dataclass, field
from importlib import resources
from typing import Final, Self

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tracker.core.errors import OutputError
from tracker.core.structures import FrameResult
from tracker.sinks.export import frame_json

__all__ = [
    "DEFAULT_HOST",
    "VIEWER_FILES",
    "ClientStats",
    "WebSocketSink",
    "WebSocketStats",
]

logger = logging.getLogger(__name__)

#: The ``websockets`` library's own log (a line per connection and per HTTP request): warnings only
#: unless the application turns it up.
_server_logger = logging.getLogger(f"{__name__}.server")
if _server_logger.level == logging.NOTSET:
    _server_logger.setLevel(logging.WARNING)

#: Where the server listens when ``[HOST:]PORT`` names no host: this machine only.
DEFAULT_HOST: Final = "127.0.0.1"

#: HTTP path -> (file in ``tracker/sinks/viewer/``, content type).
VIEWER_FILES: Final[dict[str, tuple[str, str]]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/viewer.js": ("viewer.js", "text/javascript; charset=utf-8"),
}


def _read_viewer() -> dict[str, bytes]:
    """The viewer's files, by name, read from the installed package."""
    folder = resources.files("tracker.sinks").joinpath("viewer")
    try:
        return {name: folder.joinpath(name).read_bytes() for name, _ in VIEWER_FILES.values()}
    except OSError as exc:
        raise OutputError(f"the browser viewer's files are missing from the installed package ({exc}); "
                          "reinstall handtrack") from exc  # fmt: skip


@dataclass(frozen=True)
class ClientStats:
    """One connected client.

    Attributes:
        address: ``host:port`` of the client.
        frames_sent: messages handed to its connection.
        frames_skipped: frames it never got because it was slower than the frame rate.
    """

    address: str
    frames_sent: int
    frames_skipped: int


@dataclass(frozen=True)
class WebSocketStats:
    """Counters of a :class:`WebSocketSink` (all clients since the start, gone ones included).

    Attributes:
        frames_published: frames encoded and offered to the clients connected at the time.
        frames_dropped: frames dropped before encoding because the server thread was behind (the
            oldest waiting ones).
        frames_sent: messages handed to client connections, summed over clients.
        frames_skipped: frames clients skipped (slow readers), summed over clients.
        clients_served: WebSocket clients that connected.
        clients: the clients connected now.
    """

    frames_published: int
    frames_dropped: int
    frames_sent: int
    frames_skipped: int
    clients_served: int
    clients: tuple[ClientStats, ...] = field(default_factory=tuple)


class _Client:
    """A connected client: its buffer of encoded frames (newest kept) and counters. Loop thread only."""

    def __init__(self, ws: ServerConnection, buffer_frames: int) -> None:
        self.ws = ws
        remote = ws.remote_address
        self.address = f"{remote[0]}:{remote[1]}" if remote else "?"
        self.buffer: collections.deque[str] = collections.deque(maxlen=buffer_frames)
        self.ready = asyncio.Event()
        self.sent = 0
        self.skipped = 0

    def push(self, text: str) -> None:
        if len(self.buffer) == self.buffer.maxlen:
            self.skipped += 1  # the oldest buffered frame falls out
        self.buffer.append(text)
        self.ready.set()


class WebSocketSink:
    """Streams every result as JSON to WebSocket clients and serves the browser viewer.

    Args:
        port: TCP port; 0 picks a free one (read it back from :attr:`port`).
        host: address to listen on; :data:`DEFAULT_HOST` (this machine only) by default, ``0.0.0.0``
            / ``::`` for every interface.
        buffer_frames: per-client buffer, in messages (>= 1); a client more than this behind skips
            the oldest.
        max_pending: results waiting for the server thread; beyond that the oldest is dropped (>= 1).
        stall_timeout_s: a client whose send makes no progress for this long is disconnected.
        socket_buffer_bytes: the kernel send buffer of each client's socket (``SO_SNDBUF``; Linux
            doubles it). Fixed rather than autotuned (up to megabytes), so a slow client is at most
            this much plus ``websockets``' 32 KiB write buffer behind (about a second at 30 fps), and
            skips frames beyond that.
        ping_interval_s, ping_timeout_s: keepalive pings; a client that does not answer one within
            the timeout is disconnected.

    Attributes:
        host, port: where the server listens (``port`` is the real one when 0 was asked).
        url: the viewer's address, ``http://HOST:PORT/`` (``127.0.0.1`` when listening on every
            interface; other machines use this machine's address).
        ws_url: the WebSocket address, ``ws://HOST:PORT/``.

    Raises:
        OutputError: the server cannot listen (port in use, host not local, no permission), or the
            viewer's files are missing.
        ValueError: a buffer size or timeout that is not positive.
    """

    def __init__(
        self,
        port: int = 0,
        host: str = DEFAULT_HOST,
        *,
        buffer_frames: int = 4,
        max_pending: int = 8,
        stall_timeout_s: float = 10.0,
        ping_interval_s: float = 5.0,
        ping_timeout_s: float = 10.0,
        socket_buffer_bytes: int = 65536,
        start_timeout_s: float = 10.0,
    ) -> None:
        if buffer_frames < 1 or max_pending < 1:
            raise ValueError(f"buffer_frames and max_pending must be >= 1, got {buffer_frames}, {max_pending}")
        if not (stall_timeout_s > 0 and ping_interval_s > 0 and ping_timeout_s > 0):
            raise ValueError("stall_timeout_s, ping_interval_s and ping_timeout_s must be positive")
        self.host = host
        self.port = port
        self._files = _read_viewer()
        self._buffer_frames = buffer_frames
        self._stall_timeout_s = stall_timeout_s
        self._ping = (ping_interval_s, ping_timeout_s)
        self._socket_buffer_bytes = socket_buffer_bytes
        self._clients: set[_Client] = set()
        self._lock = threading.Lock()  # guards _pending, _wake_scheduled, _dropped (pipeline vs loop thread)
        self._pending: collections.deque[FrameResult] = collections.deque(maxlen=max_pending)
        self._wake_scheduled = False
        self._dropped = 0
        self._published = 0
        self._sent_gone = 0  # counters of clients that left
        self._skipped_gone = 0
        self._served = 0
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="websocket-sink", daemon=True)
        self._thread.start()
        if not self._ready.wait(start_timeout_s):
            self._closed = True
            raise OutputError(f"--websocket {host}:{port}: the server did not start within {start_timeout_s:g} s")
        if self._start_error is not None:
            self._thread.join(timeout=5.0)
            self._closed = True
            raise self._start_error
        logger.info("websocket: streaming on %s; open %s in a browser", self.ws_url, self.url)

    # --- addresses -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self._url_host()}:{self.port}/"

    @property
    def ws_url(self) -> str:
        return f"ws://{self._url_host()}:{self.port}/"

    def _url_host(self) -> str:
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"[{host}]" if ":" in host else host

    # --- pipeline thread -----------------------------------------------------------------------
    def __call__(self, result: FrameResult) -> None:
        """Offer ``result`` to the connected clients; returns at once (no I/O, no encoding here)."""
        if self._closed or not self._clients:
            return
        with self._lock:
            if len(self._pending) == self._pending.maxlen:
                self._dropped += 1  # the oldest waiting result falls out
            self._pending.append(result)
            wake, self._wake_scheduled = not self._wake_scheduled, True
        if wake:
            try:
                self._loop.call_soon_threadsafe(self._publish_pending)
            except RuntimeError:  # the loop closed under us (close() from another thread)
                pass

    def stats(self) -> WebSocketStats:
        """The counters now (see :class:`WebSocketStats`); safe from any thread."""
        clients = tuple(ClientStats(c.address, c.sent, c.skipped) for c in list(self._clients))
        return WebSocketStats(
            frames_published=self._published,
            frames_dropped=self._dropped,
            frames_sent=self._sent_gone + sum(c.frames_sent for c in clients),
            frames_skipped=self._skipped_gone + sum(c.frames_skipped for c in clients),
            clients_served=self._served,
            clients=clients,
        )

    def close(self) -> None:
        """Disconnect every client, stop the server and its thread; safe to call more than once.

        Takes at most about 2 s (the close handshake's timeout) when a client does not answer."""
        if self._closed:
            return
        self._closed = True
        stop = self._stop
        if stop is not None:
            try:
                self._loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass
        self._thread.join(timeout=10.0)
        if self._thread.is_alive():
            logger.warning("websocket: the server thread did not stop within 10 s")
        s = self.stats()
        if s.frames_skipped or s.frames_dropped:
            logger.info("websocket: %d frames published, %d skipped by slow clients, %d dropped (server behind)",
                        s.frames_published, s.frames_skipped, s.frames_dropped)  # fmt: skip

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- server thread -------------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            server: Server = await serve(
                self._handle,
                self.host,
                self.port,
                process_request=self._http,
                ping_interval=self._ping[0],
                ping_timeout=self._ping[1],
                close_timeout=2.0,
                max_size=2**16,  # clients have nothing to send; the viewer sends nothing
                logger=_server_logger,
            )
        except OSError as exc:
            self._start_error = self._listen_error(exc)
            self._ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()  # closes client connections too (close code 1001, going away)
            await server.wait_closed()

    def _listen_error(self, exc: OSError) -> OutputError:
        where = f"{self.host}:{self.port}"
        if exc.errno == errno.EADDRINUSE:
            why = (f"port {self.port} is already in use (another handtrack or another program listens "
                   "there); choose another port, or 0 for any free one")  # fmt: skip
        elif exc.errno == errno.EADDRNOTAVAIL:
            why = f"{self.host} is not an address of this machine; use 127.0.0.1, 0.0.0.0 or one of its addresses"
        elif exc.errno == errno.EACCES:
            why = f"no permission to listen on port {self.port} (ports below 1024 need privileges); use 1024 or above"
        else:
            why = exc.strerror or str(exc)
        return OutputError(f"--websocket {where}: cannot listen: {why}")

    def _publish_pending(self) -> None:
        """Encode the waiting results, oldest first, and offer each to every client."""
        with self._lock:
            results = list(self._pending)
            self._pending.clear()
            self._wake_scheduled = False
        for result in results:
            if not self._clients:
                return
            text = frame_json(result)
            self._published += 1
            for client in self._clients:
                client.push(text)

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        """Answer plain HTTP requests with the viewer; let WebSocket handshakes on ``/`` through."""
        path = request.path.split("?", 1)[0]
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None if path == "/" else connection.respond(http.HTTPStatus.NOT_FOUND, "no stream here; use /\n")
        if path not in VIEWER_FILES:
            return connection.respond(http.HTTPStatus.NOT_FOUND, f"{path} not found; the viewer is at /\n")
        name, content_type = VIEWER_FILES[path]
        body = self._files[name]
        headers = Headers([
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
        ])  # fmt: skip
        return Response(http.HTTPStatus.OK.value, http.HTTPStatus.OK.phrase, headers, body)

    async def _handle(self, ws: ServerConnection) -> None:
        client = _Client(ws, self._buffer_frames)
        sock = ws.transport.get_extra_info("socket")
        if sock is not None:  # a fixed kernel send buffer: no autotuning to megabytes of stale frames
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._socket_buffer_bytes)
        self._clients.add(client)
        self._served += 1
        logger.info("websocket: client %s connected (%d now)", client.address, len(self._clients))
        sender = asyncio.create_task(self._send_loop(client))
        reader = asyncio.create_task(self._drain_incoming(ws))
        try:
            await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, reader):
                task.cancel()
            await asyncio.gather(sender, reader, return_exceptions=True)
            self._clients.discard(client)
            self._sent_gone += client.sent
            self._skipped_gone += client.skipped
            logger.info("websocket: client %s left after %d frames (%d skipped)", client.address, client.sent,
                        client.skipped)  # fmt: skip

    async def _send_loop(self, client: _Client) -> None:
        """Send the client's buffered frames, oldest first; disconnect it when a send stalls."""
        ws = client.ws
        while True:
            await client.ready.wait()
            client.ready.clear()
            while client.buffer:
                text = client.buffer.popleft()
                try:
                    async with asyncio.timeout(self._stall_timeout_s):
                        await ws.send(text)
                except TimeoutError:
                    logger.warning("websocket: client %s stopped reading for %g s; disconnecting it",
                                   client.address, self._stall_timeout_s)  # fmt: skip
                    ws.transport.abort()
                    return
                except ConnectionClosed:
                    return
                client.sent += 1

    @staticmethod
    async def _drain_incoming(ws: ServerConnection) -> None:
        """Read and discard what the client sends, so pings, pongs and the close are processed."""
        try:
            async for _ in ws:
                pass
        except ConnectionClosed:
            pass
