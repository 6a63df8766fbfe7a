"""A tiny SPDY server built directly on the engine, for testing the client.

It runs in a background thread with its own event loop (so the same server serves async
tests, subprocess CLI tests and the load generator) and listens on 127.0.0.1, port 0.

Routes:
  /hello                200 "hello"
  /bytes?n=N&seed=S     N deterministic bytes (`body_bytes`), sent within the windows
  /upload               consumes the body (acknowledging as it reads) -> JSON length+sha256
  /echo                 echoes the body
  /push                 pushes /pushed.css (PUSHED_CSS), then answers PUSH_PAGE
  /slow                 never answers
  /delay?ms=N           answers "done" after N ms
  /reset?code=N         RST_STREAM with status N
  /goaway?last=N        GOAWAY(OK, last-good N) and no answer
  /headers              JSON of the request headers
  /status/NNN           status NNN
  /track                counts concurrently open handlers (server.max_seen)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from spdyasgi.spdy import (
    Connection,
    ConnectionConfig,
    ConnectionTerminated,
    DataReceived,
    RequestReceived,
    StreamReset,
    Version,
    WindowUpdated,
)

PUSHED_CSS = b"body { color: #123456; } /* pushed by the client test server */\n"
PUSH_PAGE = b'<!doctype html><link rel="stylesheet" href="/pushed.css"><p>push</p>\n'


def body_bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


class Exchange:
    """One request as the handler sees it."""

    def __init__(self, conn: ServerConnection, stream_id: int, headers: list[tuple[bytes, bytes]],
                 end_stream: bool):
        self.conn = conn
        self.stream_id = stream_id
        self.headers = headers
        self.pseudo = {k.decode(): v.decode() for k, v in headers if k.startswith(b":")}
        self.method = self.pseudo.get(":method", "")
        target = urlsplit(self.pseudo.get(":path", "/"))
        self.path = target.path
        self.query = {k: v[0] for k, v in parse_qs(target.query).items()}
        self.body: asyncio.Queue[bytes | None] = asyncio.Queue()
        if end_stream:
            self.body.put_nowait(None)
        self.reset = False

    async def chunks(self) -> Any:
        while True:
            chunk = await self.body.get()
            if chunk is None:
                return
            yield chunk
            self.conn.engine.acknowledge_received_data(self.stream_id, len(chunk))
            self.conn.flush()

    def respond(self, status: int, headers: list[tuple[bytes, bytes]] | None = None,
                end: bool = False) -> None:
        if self.reset:
            return
        block = [(b":status", str(status).encode()), (b":version", b"HTTP/1.1")]
        block.extend(headers or [])
        self.conn.engine.send_response(self.stream_id, block, end_stream=end)
        self.conn.flush()

    async def send(self, data: bytes, end: bool = True, stream_id: int | None = None) -> None:
        await self.conn.send(self.stream_id if stream_id is None else stream_id, data, end)


class ServerConnection(asyncio.Protocol):
    def __init__(self, server: SpdyTestServer):
        self.server = server
        self.engine: Connection
        self.transport: asyncio.Transport | None = None
        self.exchanges: dict[int, Exchange] = {}
        self.window_waiters: list[asyncio.Future[None]] = []
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        version = Version.SPDY31
        sslobj = transport.get_extra_info("ssl_object")
        if sslobj is not None and sslobj.selected_alpn_protocol() == "spdy/3":
            version = Version.SPDY3
        self.engine = Connection(
            ConnectionConfig(
                version=version,
                max_concurrent_streams=self.server.max_streams,
                initial_window_size=self.server.window_size,
                session_window_size=self.server.session_window_size,
            )
        )
        self.server.connections.append(self)
        self.engine.initiate_connection()
        self.flush()

    def flush(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            data = self.engine.data_to_send()
            if data:
                self.transport.write(data)

    def wake(self) -> None:
        waiters, self.window_waiters = self.window_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def send(self, stream_id: int, data: bytes, end: bool) -> None:
        engine = self.engine
        offset = 0
        while True:
            if not engine.stream_is_open(stream_id):
                return
            if offset >= len(data):
                if end:
                    engine.send_data(stream_id, b"", end_stream=True)
                    self.flush()
                return
            window = engine.local_flow_control_window(stream_id)
            if window <= 0:
                waiter = asyncio.get_running_loop().create_future()
                self.window_waiters.append(waiter)
                await waiter
                continue
            take = min(window, len(data) - offset, 16384)
            last = end and offset + take == len(data)
            engine.send_data(stream_id, data[offset:offset + take], end_stream=last)
            offset += take
            self.flush()
            if last:
                return
            await asyncio.sleep(0)

    def data_received(self, data: bytes) -> None:
        for event in self.engine.receive_data(data):
            if isinstance(event, RequestReceived):
                exchange = Exchange(self, event.stream_id, event.headers, event.end_stream)
                self.exchanges[event.stream_id] = exchange
                task = asyncio.get_running_loop().create_task(self.run(exchange))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            elif isinstance(event, DataReceived):
                exchange_or_none = self.exchanges.get(event.stream_id)
                if exchange_or_none is not None:
                    if event.data:
                        exchange_or_none.body.put_nowait(event.data)
                    if event.end_stream:
                        exchange_or_none.body.put_nowait(None)
            elif isinstance(event, WindowUpdated):
                self.wake()
            elif isinstance(event, StreamReset):
                exchange_or_none = self.exchanges.get(event.stream_id)
                if exchange_or_none is not None:
                    exchange_or_none.reset = True
                    exchange_or_none.body.put_nowait(None)
                self.server.resets.append((event.stream_id, event.status))
                self.wake()
            elif isinstance(event, ConnectionTerminated):
                self.flush()
                assert self.transport is not None
                self.transport.close()
                return
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        for task in self.tasks:
            task.cancel()
        self.wake()

    async def run(self, exchange: Exchange) -> None:
        try:
            await self.server.handler(exchange)
        except asyncio.CancelledError:
            raise
        except Exception:  # pragma: no cover - surfaces in the test as a missing reply
            import traceback

            traceback.print_exc()
        finally:
            self.exchanges.pop(exchange.stream_id, None)


async def default_handler(ex: Exchange) -> None:
    server = ex.conn.server
    path = ex.path
    if path == "/hello":
        ex.respond(200, [(b"content-type", b"text/plain"), (b"content-length", b"5"),
                         (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")])
        await ex.send(b"hello")
    elif path == "/bytes":
        n = int(ex.query.get("n", "0"))
        data = body_bytes(n, int(ex.query.get("seed", "0")))
        ex.respond(200, [(b"content-length", str(n).encode())])
        await ex.send(data)
    elif path == "/upload":
        digest = hashlib.sha256()
        length = 0
        async for chunk in ex.chunks():
            digest.update(chunk)
            length += len(chunk)
        ex.respond(200, [(b"content-type", b"application/json")])
        await ex.send(json.dumps({"length": length, "sha256": digest.hexdigest()}).encode())
    elif path == "/echo":
        ex.respond(200)
        async for chunk in ex.chunks():
            await ex.send(chunk, end=False)
        await ex.send(b"", end=True)
    elif path == "/push":
        push_id = ex.conn.engine.push_stream(
            ex.stream_id,
            [(b":scheme", b"http"), (b":host", ex.pseudo.get(":host", "").encode()),
             (b":path", b"/pushed.css"), (b":status", b"200"), (b":version", b"HTTP/1.1"),
             (b"content-type", b"text/css")],
        )
        ex.conn.flush()
        ex.respond(200, [(b"content-type", b"text/html")])
        if push_id is not None:
            await ex.send(PUSHED_CSS, stream_id=push_id)
        await ex.send(PUSH_PAGE)
    elif path == "/slow":
        await asyncio.sleep(60)
    elif path == "/delay":
        await asyncio.sleep(int(ex.query.get("ms", "100")) / 1000)
        ex.respond(200)
        await ex.send(b"done")
    elif path == "/reset":
        ex.conn.engine.reset_stream(ex.stream_id, int(ex.query.get("code", "6")))
        ex.conn.flush()
    elif path == "/body-then-reset":
        # `n` bytes declared, `sent` of them sent (no FIN), then RST_STREAM INVALID_STREAM.
        n = int(ex.query.get("n", "5"))
        ex.respond(200, [(b"content-length", str(n).encode())])
        await ex.send(body_bytes(int(ex.query.get("sent", str(n))), 0), end=False)
        ex.conn.engine.reset_stream(ex.stream_id, 2)
        ex.conn.flush()
    elif path == "/goaway":
        ex.conn.engine.close_connection(0, int(ex.query.get("last", "0")))
        ex.conn.flush()
    elif path == "/headers":
        ex.respond(200)
        await ex.send(json.dumps([[k.decode(), v.decode()] for k, v in ex.headers]).encode())
    elif path.startswith("/status/"):
        ex.respond(int(path.rsplit("/", 1)[1]), end=True)
    elif path == "/track":
        server.in_flight += 1
        server.max_seen = max(server.max_seen, server.in_flight)
        await asyncio.sleep(0.01)
        server.in_flight -= 1
        ex.respond(200)
        await ex.send(b"ok")
    else:
        ex.respond(404)
        await ex.send(b"not found")


class SpdyTestServer:
    """`with SpdyTestServer(...) as server:` -> `server.port`, `server.url`."""

    def __init__(
        self,
        handler: Callable[[Exchange], Awaitable[None]] = default_handler,
        *,
        tls: tuple[str, str] | None = None,
        alpn: list[str] | None = None,
        max_streams: int = 256,
        window_size: int = 1 << 20,
        session_window_size: int = 1 << 24,
    ):
        self.handler = handler
        self.tls = tls
        self.alpn = alpn or ["spdy/3.1", "spdy/3"]
        self.max_streams = max_streams
        self.window_size = window_size
        self.session_window_size = session_window_size
        self.connections: list[ServerConnection] = []
        self.resets: list[tuple[int, int]] = []
        self.in_flight = 0
        self.max_seen = 0
        self.port = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Future[None] | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _ssl(self) -> ssl.SSLContext | None:
        if self.tls is None:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*self.tls)
        ctx.set_alpn_protocols(self.alpn)
        return ctx

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop

        async def main() -> None:
            self._stop = loop.create_future()
            server = await loop.create_server(
                lambda: self._protocol(), "127.0.0.1", 0, ssl=self._ssl()
            )
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop
            server.close()
            for conn in self.connections:
                if conn.transport is not None:
                    conn.transport.abort()
            await asyncio.sleep(0)

        try:
            loop.run_until_complete(main())
        finally:
            loop.close()

    def _protocol(self) -> asyncio.Protocol:
        if "spdy/3.1" not in self.alpn and "spdy/3" not in self.alpn:
            return _Http11Only()
        return ServerConnection(self)

    def __enter__(self) -> SpdyTestServer:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("test server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.loop is not None and self._stop is not None
        stop = self._stop
        self.loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))
        assert self._thread is not None
        self._thread.join(10)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` in the server's loop thread and return its result."""
        assert self.loop is not None
        done = threading.Event()
        box: list[Any] = []
        self.loop.call_soon_threadsafe(lambda: (box.append(fn()), done.set()))
        done.wait(5)
        return box[0] if box else None


class _Http11Only(asyncio.Protocol):
    """Answers any bytes with a fixed HTTP/1.1 response (an ALPN http/1.1-only server)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")


@contextlib.contextmanager
def serve(**kwargs: Any) -> Iterator[SpdyTestServer]:
    with SpdyTestServer(**kwargs) as server:
        yield server


if __name__ == "__main__":  # manual runs: python -m tests.client.spdy_testserver
    import sys
    import time

    with SpdyTestServer() as running:
        print(running.url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            sys.exit(0)
