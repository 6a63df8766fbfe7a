"""ASGI app served by ``python -m spdyasgi`` for the wire-level conformance suite.

Routes (query parameters in brackets):

- ``/hello``            200 "hello <path>"
- ``/big``              [size=1048576] a deterministic body sent in 64 KiB messages
- ``/upload``           reads the whole body; JSON {size, sha256, messages: [[len, more]]}
- ``/hold``             [t=5] never reads the body; answers after t seconds (or on disconnect)
- ``/slow``             [t=2] reads the body, sleeps t seconds (or until disconnect), "slow"
- ``/stream``           [tag] 1 KiB every 20 ms for up to 10 s; records http.disconnect
- ``/head-body``        GET: 11-byte body; HEAD: same headers, the server must send no DATA
- ``/status``           [code] empty-bodied status (204, 304, ...)
- ``/headers``          Content-Type, two set-cookie, Connection: close, Transfer-Encoding
- ``/reqheaders``       JSON list of the request headers as the app saw them
- ``/reflect``          [v] response header x-reflect: v next to a secret set-cookie
- ``/push``             [n=1, target=/pushed, then=0, tag] pushes n resources (and after
                        0.3 s `then` more), then a small body
- ``/pushed``           [t=0, tag] the pushed resource (sleeps t first; records disconnect)
- ``/prio``             [size=100000] headers naming the path, a body, and trailers
- ``/stats``            JSON: per-path call counts and recorded disconnects

With ``CONFORMANCE_LOG=1`` every call is also written to stderr as ``CONFORMANCE-CALL <path>``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from typing import Any
from urllib.parse import parse_qs

from tests.spdyapps import serve_lifespan

Message = dict[str, Any]

CALLS: dict[str, int] = {}
DISCONNECTS: dict[str, str] = {}
_LOG = os.environ.get("CONFORMANCE_LOG") == "1"
_BLOCK = hashlib.sha256(b"conformance").digest() * 2048  # 64 KiB


def pattern(size: int) -> bytes:
    return (_BLOCK * (size // len(_BLOCK) + 1))[:size]


def _query(scope: Message) -> dict[str, str]:
    raw = scope.get("query_string", b"").decode("latin-1")
    return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}


async def _start(send: Any, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None,
                 trailers: bool = False) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": headers if headers is not None else [(b"content-type", b"text/plain")],
                "trailers": trailers})


async def _body(send: Any, body: bytes, more: bool = False) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": more})


async def _read_all(receive: Any) -> tuple[bytes, list[list[Any]]]:
    data = bytearray()
    messages: list[list[Any]] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("disconnected")
        chunk = message.get("body", b"")
        data += chunk
        more = bool(message.get("more_body", False))
        if len(messages) < 2000:
            messages.append([len(chunk), more])
        if not more:
            return bytes(data), messages


async def _sleep_or_disconnect(receive: Any, seconds: float, tag: str | None = None) -> bool:
    """Sleep `seconds` unless the client goes away first; True when it did."""

    async def watch() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return

    task = asyncio.ensure_future(watch())
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    finally:
        if not task.done():
            task.cancel()
    if done and tag:
        DISCONNECTS[tag] = "http.disconnect"
    return bool(done)


async def app(scope: Message, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send)
        return
    path: str = scope["path"]
    CALLS[path] = CALLS.get(path, 0) + 1
    if _LOG:
        print(f"CONFORMANCE-CALL {path}", file=sys.stderr, flush=True)
    q = _query(scope)
    try:
        await _route(path, q, scope, receive, send)
    except ConnectionResetError:
        return


async def _route(path: str, q: dict[str, str], scope: Message, receive: Any, send: Any) -> None:
    if path == "/stats":
        await _start(send, headers=[(b"content-type", b"application/json")])
        await _body(send, json.dumps({"calls": CALLS, "disconnects": DISCONNECTS}).encode())
    elif path == "/big":
        size = int(q.get("size", 1 << 20))
        body = pattern(size)
        await _start(send, headers=[(b"content-type", b"application/octet-stream"),
                                    (b"content-length", str(size).encode())])
        step = 65536
        for offset in range(0, size, step):
            await _body(send, body[offset:offset + step], more=offset + step < size)
        if not size:
            await _body(send, b"")
    elif path == "/upload":
        data, messages = await _read_all(receive)
        info = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                "messages": messages}
        await _start(send, headers=[(b"content-type", b"application/json")])
        await _body(send, json.dumps(info).encode())
    elif path == "/hold":
        # Never calls receive() for the body: the client's DATA stays unacknowledged.
        await asyncio.sleep(float(q.get("t", 5)))
        await _start(send)
        await _body(send, b"held")
    elif path == "/slow":
        await _sleep_or_disconnect(receive, float(q.get("t", 2)), q.get("tag"))
        await _start(send)
        await _body(send, b"slow")
    elif path == "/stream":
        tag = q.get("tag", "stream")
        await _start(send)
        gone = asyncio.Event()

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    DISCONNECTS[tag] = "http.disconnect"
                    gone.set()
                    return

        watcher = asyncio.ensure_future(watch())
        try:
            for _ in range(500):  # at most ~10 s
                if gone.is_set():
                    return
                try:
                    await _body(send, b"s" * 1024, more=True)
                except Exception:
                    DISCONNECTS.setdefault(tag, "send raised")
                    await asyncio.wait_for(gone.wait(), 2)
                    return
                await asyncio.sleep(0.02)
            await _body(send, b"")
        finally:
            await asyncio.sleep(0)
            if not watcher.done():
                watcher.cancel()
    elif path == "/head-body":
        await _start(send, headers=[(b"content-type", b"text/plain"),
                                    (b"content-length", b"11")])
        await _body(send, b"hello world")
    elif path == "/status":
        await _start(send, status=int(q.get("code", 204)), headers=[])
        await _body(send, b"")
    elif path == "/headers":
        await _start(send, headers=[
            (b"Content-Type", b"text/html; charset=utf-8"),
            (b"Set-Cookie", b"a=1; Path=/"),
            (b"set-cookie", b"b=2; Path=/"),
            (b"Connection", b"close"),
            (b"Transfer-Encoding", b"chunked"),
            (b"X-Mixed-Case", b"Value"),
        ])
        await _body(send, b"headers")
    elif path == "/reqheaders":
        await _read_all(receive)
        headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]]
        await _start(send, headers=[(b"content-type", b"application/json")])
        await _body(send, json.dumps(headers).encode())
    elif path == "/reflect":
        await _start(send, headers=[
            (b"content-type", b"text/plain"),
            (b"set-cookie", b"secret=" + b"k7Qz9XwB4mTn"),
            (b"x-reflect", q.get("v", "").encode("latin-1")),
        ])
        await _body(send, b"ok")
    elif path == "/push":
        n = int(q.get("n", 1))
        then = int(q.get("then", 0))
        target = q.get("target", "/pushed")
        for i in range(n):
            await send({"type": "http.response.push", "path": f"{target}?i={i}&{_rest(q)}",
                        "headers": [(b"accept", b"*/*")]})
        await _start(send, headers=[(b"content-type", b"text/html")])
        if then:
            await _body(send, b"<html>", more=True)
            await _sleep_or_disconnect(receive, 0.3)
            for i in range(then):
                await send({"type": "http.response.push",
                            "path": f"{target}?late={i}&{_rest(q)}", "headers": []})
        hold = float(q.get("hold", 0))
        if hold:
            await _body(send, b"<p>", more=True)
            await _sleep_or_disconnect(receive, hold, q.get("tag", "") + "-main")
        await _body(send, b"<html>pushed page</html>")
    elif path == "/pushed":
        t = float(q.get("t", 0))
        await _start(send, headers=[(b"content-type", b"text/css")])
        if t:
            await _body(send, b"/* start */", more=True)
            await _sleep_or_disconnect(receive, t, f"{q.get('tag', '')}-pushed-{q.get('i')}")
        await _body(send, b"body{color:red}")
    elif path == "/prio":
        size = int(q.get("size", 100000))
        await _start(send, headers=[(b"content-type", b"text/plain"),
                                    (b"x-path", scope["path"].encode() + b"?" +
                                     scope["query_string"]),
                                    (b"x-common", b"common-header-value-" * 8)],
                     trailers=True)
        await _body(send, pattern(size))
        await send({"type": "http.response.trailers",
                    "headers": [(b"x-trailer", scope["query_string"]),
                                (b"x-common", b"common-header-value-" * 8)]})
    else:
        await _read_all(receive)
        await _start(send)
        await _body(send, f"hello {path}".encode())


def _rest(q: dict[str, str]) -> str:
    return "&".join(f"{k}={v}" for k, v in q.items() if k in ("t", "tag"))
