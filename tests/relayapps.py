"""The origin app of the relay tests: says who served, streams, hashes uploads."""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any

from tests.spdyapps import serve_lifespan

NAME = os.environ.get("ORIGIN_NAME", "origin").encode()
BLOCK = bytes(range(256)) * 256  # 64 KiB


def download_digest(size: int) -> str:
    """The sha256 of what /download?size=N sends (the tests compute it the same way)."""
    digest = hashlib.sha256()
    for offset in range(0, size, len(BLOCK)):
        digest.update(BLOCK[: min(len(BLOCK), size - offset)])
    return digest.hexdigest()


async def _start(send: Any, status: int = 200, extra: list[tuple[bytes, bytes]] | None = None
                 ) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"), (b"x-origin", NAME),
                            *(extra or [])]})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send)
        return
    path = scope["path"]
    query = scope["query_string"].decode()
    if path == "/whoami":
        client = scope.get("client") or ("-", 0)
        text = f"{NAME.decode()} {client[0]} {scope['scheme']}\n".encode()
        await _start(send, extra=[(b"content-length", str(len(text)).encode())])
        await send({"type": "http.response.body", "body": text})
    elif path == "/download":
        size = int(query.split("=", 1)[1])
        await _start(send, extra=[(b"content-length", str(size).encode())])
        for offset in range(0, size, len(BLOCK)):
            await send({"type": "http.response.body", "more_body": True,
                        "body": BLOCK[: min(len(BLOCK), size - offset)]})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/upload":
        digest = hashlib.sha256()
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            digest.update(body)
            total += len(body)
            if not message.get("more_body"):
                break
        await _start(send)
        await send({"type": "http.response.body", "body": f"{total} {digest.hexdigest()}".encode()})
    elif path == "/no-head":
        await asyncio.sleep(3600)
    elif path == "/forever":
        await _start(send)
        while True:
            await send({"type": "http.response.body", "body": BLOCK, "more_body": True})
            await asyncio.sleep(0.05)
    else:
        await _start(send, 404)
        await send({"type": "http.response.body", "body": b"not found\n"})
