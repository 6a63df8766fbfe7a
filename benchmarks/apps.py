"""ASGI applications served by every Python server in the benchmark harness.

``raw`` (plain ASGI 3 callable) routes:

* ``/`` (anything not below)   -> 200 ``hello, world`` (12 bytes, content-length)
* ``/download?mib=N``          -> N MiB (default 100): one precomputed 1 MiB chunk sent N times
* ``/upload``                  -> consumes the request body, answers its length (counts only)
* ``/slow?n=N&ms=T``           -> N chunks (default 6) of 64 bytes, one every T ms (default 500)

``starlette_app`` is the Starlette equivalent of the hello route (``PlainTextResponse``).
"""

from __future__ import annotations

import asyncio
from typing import Any

CHUNK = bytes(range(256)) * 4096  # 1 MiB, built once at import
assert len(CHUNK) == 1 << 20
HELLO = b"hello, world"
SLOW_PIECE = b"x" * 63 + b"\n"

_HELLO_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"12")],
}
_HELLO_BODY = {"type": "http.response.body", "body": HELLO}


def _query(scope: dict[str, Any]) -> dict[str, str]:
    out = {}
    for part in scope.get("query_string", b"").decode("latin-1").split("&"):
        name, _, value = part.partition("=")
        if name:
            out[name] = value
    return out


async def _drain(receive: Any) -> int:
    total = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            return total
        total += len(message.get("body", b""))
        if not message.get("more_body", False):
            return total


async def raw(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/download":
        mib = int(_query(scope).get("mib", "100"))
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/octet-stream"),
                        (b"content-length", str(mib << 20).encode())],
        })
        for i in range(mib):
            await send({"type": "http.response.body", "body": CHUNK,
                        "more_body": i < mib - 1})
        return
    if path == "/upload":
        total = await _drain(receive)
        text = str(total).encode()
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"),
                        (b"content-length", str(len(text)).encode())],
        })
        await send({"type": "http.response.body", "body": text})
        return
    if path == "/slow":
        query = _query(scope)
        pieces = int(query.get("n", "6"))
        delay = int(query.get("ms", "500")) / 1000.0
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"),
                        (b"content-length", str(pieces * len(SLOW_PIECE)).encode())],
        })
        for i in range(pieces):
            await asyncio.sleep(delay)
            await send({"type": "http.response.body", "body": SLOW_PIECE,
                        "more_body": i < pieces - 1})
        return
    await send(_HELLO_START)
    await send(_HELLO_BODY)


def _starlette() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hello, world")

    return Starlette(routes=[Route("/", hello)])


starlette_app = _starlette()
