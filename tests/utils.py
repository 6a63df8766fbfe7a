"""Helpers for tests that run a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from spdyasgi.config import Config
from spdyasgi.server import Server

Message = dict[str, Any]


@contextlib.asynccontextmanager
async def run_server(app: Any, **options: Any) -> AsyncIterator[tuple[Server, int]]:
    """Start ``Server(Config(app, host="127.0.0.1", port=0, ...))`` in this loop.

    Yields ``(server, port)``; on exit asks the server to stop and waits (bounded).
    """
    options.setdefault("lifespan", "off")
    options.setdefault("log_config", None)
    config = Config(app, host="127.0.0.1", port=0, **options)
    server = Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if task.done():
            task.result()
        assert server.started, "server did not start"
        port: int = server.servers[0].sockets[0].getsockname()[1]
        yield server, port
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(task, 15)
        except asyncio.TimeoutError:
            task.cancel()
            raise


async def open_conn(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes], bytes]:
    """Read one HTTP/1.1 response (content-length, chunked or close-delimited)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head[:-4].split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if b"content-length" in headers:
        body = await asyncio.wait_for(reader.readexactly(int(headers[b"content-length"])), 5)
    elif headers.get(b"transfer-encoding") == b"chunked":
        body = b""
        while True:
            size = int((await asyncio.wait_for(reader.readline(), 5)).strip(), 16)
            chunk = await asyncio.wait_for(reader.readexactly(size + 2), 5)
            if size == 0:
                break
            body += chunk[:-2]
    elif status in (204, 304) or status < 200:
        body = b""
    else:
        body = await asyncio.wait_for(reader.read(), 5)
    return status, headers, body


async def hello_app(scope: Message, receive: Any, send: Any) -> None:
    """Answers "hello" for GET, echoes the body for everything else."""
    assert scope["type"] == "http"
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["method"] in ("GET", "HEAD"):
        body = b"hello " + scope["path"].encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": body})
