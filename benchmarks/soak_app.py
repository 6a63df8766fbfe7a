"""The ASGI app served during the soak (``spdyasgi --app-dir benchmarks soak_app:app``).

Every body is a deterministic function of its query (see `soak_body`), so the client can
check each byte it receives. Routes (query values are integers):

* ``GET /data?seed=S&size=N&chunk=C``    -> 200, N bytes of body S sent in C-byte pieces
* ``POST /echo``                         -> 200, the request body streamed back piece by piece
* ``GET /slow?seed=S&n=K&chunk=C&ms=T``  -> 200, K pieces of C bytes, one every T ms
* ``GET /file?seed=S`` + ``range: bytes=A-[B]`` -> 206, bytes A..B of a 256 MiB virtual file
* ``GET /stubborn?seed=S&size=N&ms=T``   -> 200 at once, then sleeps T ms ignoring any
  disconnect, then sends N bytes (a handler that does not watch for ``http.disconnect``)

``SPDYASGI_SOAK_CORRUPT=N`` flips one byte of every N-th ``/data`` body (to show that the
soak's checks catch it). With ``SPDYASGI_TRACEMALLOC=DIR`` in the environment, the
lifespan starts tracemalloc and writes snapshot diffs to DIR at intervals (see
`soak_trace`); nothing of either runs otherwise.

``SPDYASGI_SOAK_BUFFERED_READS=1`` is an experiment for issue 11 item 13 (TLS memory
growth), not part of the soak: it gives the server's SPDY protocol ``get_buffer`` /
``buffer_updated`` at import, so uvloop's TLS layer decrypts into one preallocated buffer
instead of allocating a 256 KiB bytes object per TLS record read (see docs/soak.md).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from soak_body import FILE_SIZE, expected

from spdyasgi.exceptions import ClientDisconnected

Scope = dict[str, Any]
Receive = Any
Send = Any

PIECE = 65536
CORRUPT_EVERY = int(os.environ.get("SPDYASGI_SOAK_CORRUPT", "0"))
_served = [0]


def _buffered_reads() -> None:
    """Patch `SpdyProtocol` into an `asyncio.BufferedProtocol` (experiment only)."""
    from spdyasgi.protocols.spdy import SpdyProtocol

    view = memoryview(bytearray(256 * 1024))  # one per process: reads are handled at once

    def get_buffer(self: SpdyProtocol, sizehint: int) -> memoryview:
        return view

    def buffer_updated(self: SpdyProtocol, nbytes: int) -> None:
        self.data_received(bytes(view[:nbytes]))

    SpdyProtocol.get_buffer = get_buffer  # type: ignore[attr-defined]
    SpdyProtocol.buffer_updated = buffer_updated  # type: ignore[attr-defined]
    # uvloop takes the buffered path only for protocols that are not asyncio.Protocol
    SpdyProtocol.__bases__ = (asyncio.BufferedProtocol,)


if os.environ.get("SPDYASGI_SOAK_BUFFERED_READS") == "1":
    _buffered_reads()


def _query(scope: Scope) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in scope.get("query_string", b"").decode("latin-1").split("&"):
        name, _, value = part.partition("=")
        if name and value.isdigit():
            out[name] = int(value)
    return out


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _start(send: Send, status: int, length: int | None,
                 extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", b"application/octet-stream")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    headers.extend(extra or ())
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def _send_range(send: Send, seed: int, offset: int, length: int, chunk: int) -> None:
    chunk = max(1, chunk)
    end = offset + length
    while offset < end:
        take = min(chunk, end - offset)
        await send({"type": "http.response.body", "body": expected(seed, offset, take),
                    "more_body": offset + take < end})
        offset += take
    if length == 0:
        await send({"type": "http.response.body", "body": b""})


async def _data(scope: Scope, send: Send) -> None:
    q = _query(scope)
    size = q.get("size", 0)
    _served[0] += 1
    if CORRUPT_EVERY and size and _served[0] % CORRUPT_EVERY == 0:
        body = bytearray(expected(q.get("seed", 0), 0, size))
        body[size // 2] ^= 0x01
        await _start(send, 200, size)
        await send({"type": "http.response.body", "body": bytes(body)})
        return
    await _start(send, 200, size)
    await _send_range(send, q.get("seed", 0), 0, size, q.get("chunk", PIECE))


async def _echo(receive: Receive, send: Send) -> None:
    await _start(send, 200, None)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        more = message.get("more_body", False)
        body = message.get("body", b"")
        if body or not more:
            await send({"type": "http.response.body", "body": body, "more_body": more})
        if not more:
            return


async def _slow(scope: Scope, send: Send) -> None:
    q = _query(scope)
    seed, count, chunk = q.get("seed", 0), q.get("n", 4), q.get("chunk", 1024)
    await _start(send, 200, count * chunk)
    for index in range(count):
        await asyncio.sleep(q.get("ms", 100) / 1000)
        await send({"type": "http.response.body",
                    "body": expected(seed, index * chunk, chunk),
                    "more_body": index + 1 < count})
    if count == 0:
        await send({"type": "http.response.body", "body": b""})


async def _file(scope: Scope, send: Send) -> None:
    seed = _query(scope).get("seed", 0)
    spec = (_header(scope, b"range") or b"").decode("latin-1")
    first, _, last = spec.removeprefix("bytes=").partition("-")
    if not spec.startswith("bytes=") or not first.isdigit() or int(first) >= FILE_SIZE:
        await _start(send, 416, 0, [(b"content-range", f"bytes */{FILE_SIZE}".encode())])
        await send({"type": "http.response.body", "body": b""})
        return
    start = int(first)
    end = min(int(last), FILE_SIZE - 1) if last.isdigit() else FILE_SIZE - 1
    length = end - start + 1
    await _start(send, 206, length,
                 [(b"content-range", f"bytes {start}-{end}/{FILE_SIZE}".encode())])
    await _send_range(send, seed, start, length, PIECE)


async def _stubborn(scope: Scope, send: Send) -> None:
    q = _query(scope)
    size = q.get("size", 0)
    await _start(send, 200, size)
    await asyncio.sleep(q.get("ms", 500) / 1000)  # deliberately not watching receive()
    try:
        await _send_range(send, q.get("seed", 0), 0, size, PIECE)
    except ClientDisconnected:
        pass  # the client cancelled long ago: the usual end of this route


async def _lifespan(receive: Receive, send: Send) -> None:
    tracer = None
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            directory = os.environ.get("SPDYASGI_TRACEMALLOC")
            if directory:
                from soak_trace import SnapshotWriter

                tracer = SnapshotWriter(directory)
                tracer.start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if tracer is not None:
                await tracer.stop()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    try:
        await _route(scope, receive, send)
    except ClientDisconnected:
        pass  # the client went away mid-body (a cancel, a reset, a dropped session)


async def _route(scope: Scope, receive: Receive, send: Send) -> None:
    path = scope["path"]
    if path == "/data":
        await _data(scope, send)
    elif path == "/echo":
        await _echo(receive, send)
    elif path == "/slow":
        await _slow(scope, send)
    elif path == "/file":
        await _file(scope, send)
    elif path == "/stubborn":
        await _stubborn(scope, send)
    else:
        await _start(send, 404, 0)
        await send({"type": "http.response.body", "body": b""})
