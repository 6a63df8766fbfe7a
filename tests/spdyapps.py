"""ASGI apps used by the SPDY server tests (also importable by a subprocess server)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

Message = dict[str, Any]

#: What the apps observed, for assertions (keyed by path).
observed: dict[str, Any] = {}


def pattern(size: int) -> bytes:
    """Deterministic, non-repeating-looking bytes of `size`."""
    block = hashlib.sha256(b"spdyasgi").digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


async def read_body(receive: Any) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("client went away")
        body += message.get("body", b"")
        if not message.get("more_body"):
            return bytes(body)


async def serve_lifespan(receive: Any, send: Any) -> None:
    """Answer a lifespan scope: startup, then shutdown, nothing else."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


async def start(send: Any, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None,
                trailers: bool = False) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": headers or [(b"content-type", b"text/plain")], "trailers": trailers})


async def app(scope: Message, receive: Any, send: Any) -> None:
    """Routes by path; see each branch."""
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send)
        return
    path: str = scope["path"]
    observed.setdefault("paths", []).append(path)
    if path == "/scope":
        info = {key: scope[key] for key in ("method", "path", "query_string", "http_version",
                                             "scheme", "root_path", "client", "server")}
        info["query_string"] = scope["query_string"].decode()
        info["headers"] = [[k.decode(), v.decode()] for k, v in scope["headers"]]
        info["extensions"] = {k: v for k, v in scope["extensions"].items()}
        info["asgi"] = scope["asgi"]
        await read_body(receive)
        await start(send, headers=[(b"content-type", b"application/json")])
        await send({"type": "http.response.body", "body": json.dumps(info).encode()})
    elif path == "/echo":
        # Streams the request body back chunk by chunk as it arrives.
        await start(send, headers=[(b"content-type", b"application/octet-stream")])
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            await send({"type": "http.response.body", "body": message.get("body", b""),
                        "more_body": bool(message.get("more_body"))})
            if not message.get("more_body"):
                return
    elif path == "/hash":
        digest = hashlib.sha256()
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            digest.update(chunk)
            size += len(chunk)
            if not message.get("more_body"):
                break
        await start(send)
        await send({"type": "http.response.body",
                    "body": f"{size} {digest.hexdigest()}".encode()})
    elif path == "/bytes":
        size = int(scope["query_string"].decode().partition("=")[2] or 0)
        await start(send, headers=[(b"content-type", b"application/octet-stream"),
                                   (b"content-length", str(size).encode())])
        chunk = pattern(65536)
        sent = 0
        observed["/bytes"] = {"sent": 0, "disconnected": False}
        try:
            while sent < size:
                piece = chunk[: min(65536, size - sent)]
                sent += len(piece)
                await send({"type": "http.response.body", "body": piece,
                            "more_body": sent < size})
                observed["/bytes"]["sent"] = sent
        except OSError:
            observed["/bytes"]["disconnected"] = True
            raise
        if size == 0:
            await send({"type": "http.response.body", "body": b""})
    elif path.startswith("/status/"):
        status = int(path.rsplit("/", 1)[1])
        await start(send, status=status)
        await send({"type": "http.response.body", "body": b"" if status in (204, 304)
                    else f"status {status}".encode()})
    elif path == "/head":
        await start(send, headers=[(b"content-length", b"5")])
        await send({"type": "http.response.body", "body": b"hello"})
    elif path == "/multi":
        await start(send, headers=[(b"Content-Type", b"text/plain"), (b"set-cookie", b"a=1"),
                                   (b"Set-Cookie", b"b=2"), (b"Connection", b"close"),
                                   (b"Transfer-Encoding", b"chunked"), (b"x-empty", b"")])
        await send({"type": "http.response.body", "body": b"multi"})
    elif path == "/trailers":
        await start(send, trailers=True)
        await send({"type": "http.response.body", "body": b"data", "more_body": False})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")]})
    elif path == "/push":
        await send({"type": "http.response.push", "path": "/pushed.css",
                    "headers": [(b"accept", b"text/css")]})
        await start(send, headers=[(b"content-type", b"text/html")])
        await send({"type": "http.response.body", "body": b"<link href=/pushed.css>"})
    elif path == "/pushed.css":
        await start(send, headers=[(b"content-type", b"text/css")])
        await send({"type": "http.response.body", "body": b"body{}"})
    elif path == "/error-before":
        raise RuntimeError("boom before the response")
    elif path == "/error-after":
        await start(send)
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("boom after the response started")
    elif path == "/wait-disconnect":
        observed.setdefault("disconnects", 0)
        await start(send)
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        message = await receive()
        while message["type"] != "http.disconnect":
            message = await receive()
        observed["disconnects"] = observed.get("disconnects", 0) + 1
        try:
            await send({"type": "http.response.body", "body": b"more", "more_body": True})
        except OSError as exc:
            observed["send_after_disconnect"] = type(exc).__name__
    elif path == "/slow":
        await read_body(receive)
        await asyncio.sleep(float(scope["query_string"].decode().partition("=")[2] or 1))
        await start(send)
        await send({"type": "http.response.body", "body": b"slow done"})
    else:
        await read_body(receive)
        await start(send)
        await send({"type": "http.response.body", "body": b"hello " + path.encode()})


class Holding:
    """An app whose `/hold` handlers ignore `http.disconnect` and wait for the test."""

    def __init__(self, running_target: int) -> None:
        self.running = 0
        self.peak = 0
        self.started = 0
        self.ended = 0
        self.target = running_target
        self.reached = asyncio.Event()
        self.release = asyncio.Event()
        self.all_ended = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] != "/hold":
            await app(scope, receive, send)
            return
        self.started += 1
        self.running += 1
        self.peak = max(self.peak, self.running)
        if self.running >= self.target:
            self.reached.set()
        try:
            await asyncio.wait_for(self.release.wait(), 30)  # bounded: never hangs a run
        finally:
            self.running -= 1
            self.ended += 1
            if self.ended == self.started:
                self.all_ended.set()
