"""An ASGI app for the client's full-duplex and timeout tests (served by spdyasgi).

    /echo        streams the request body back as it arrives; the response starts first
    /bytes?n=N   N bytes of a fixed pattern; `observed["sent"]` counts what went to send()
    /drip        an endless slow response (one small chunk every 50 ms)
    /some-stall  every 5th request never answers (until the client gives up on it)
    /slowread    reads the body at about 1 MiB/s, then answers its length
    /status/NNN  that status with a short body
    anything else: "hello <path>"
"""

from __future__ import annotations

import asyncio
from typing import Any

observed: dict[str, int] = {"sent": 0, "calls": 0}
BLOCK = bytes(range(256)) * 256  # 64 KiB


def pattern(size: int) -> bytes:
    return (BLOCK * (size // len(BLOCK) + 1))[:size]


async def _start(send: Any, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/octet-stream")]})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    if path == "/echo":
        await _start(send)  # before the body has ended: the client must read while sending
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            more = bool(message.get("more_body"))
            await send({"type": "http.response.body", "body": message.get("body", b""),
                        "more_body": more})
    elif path == "/bytes":
        size = int(scope["query_string"].decode().partition("=")[2] or 0)
        observed["sent"] = 0
        await _start(send)
        sent = 0
        while sent < size:
            piece = BLOCK[: min(len(BLOCK), size - sent)]
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            sent += len(piece)
            observed["sent"] = sent
        await send({"type": "http.response.body", "body": b""})
    elif path == "/drip":
        await _start(send)
        while True:
            await send({"type": "http.response.body", "body": b"drip\n", "more_body": True})
            await asyncio.sleep(0.05)
    elif path == "/some-stall":
        observed["calls"] += 1
        if observed["calls"] % 5 == 0:
            while (await receive())["type"] != "http.disconnect":
                pass
            return
        await _start(send)
        await send({"type": "http.response.body", "body": b"ok"})
    elif path == "/slowread":
        total = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size = len(message.get("body", b""))
            total += size
            more = bool(message.get("more_body"))
            await asyncio.sleep(size / (1 << 20))
        await _start(send)
        await send({"type": "http.response.body", "body": str(total).encode()})
    elif path.startswith("/status/"):
        status = int(path.rsplit("/", 1)[1])
        await _start(send, status)
        await send({"type": "http.response.body", "body": f"status {status} body".encode()})
    else:
        await _start(send)
        await send({"type": "http.response.body", "body": b"hello " + path.encode()})
