"""The uvicorn options that came with WebSockets: --h11-max-incomplete-event-size,
--reset-contextvars, --limit-max-requests-jitter (in-process servers, real sockets)."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

from spdyasgi.config import Config
from spdyasgi.server import Server
from tests.utils import open_conn, read_response, run_server

HTTP = ["h11", "httptools"]
REQUEST_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("request_var", default="unset")


async def context_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers the value the request found in REQUEST_VAR, then sets it to its own path."""
    seen = REQUEST_VAR.get()
    REQUEST_VAR.set(scope["path"])
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": seen.encode()})


@pytest.mark.parametrize("http", HTTP)
@pytest.mark.parametrize("reset", [False, True])
async def test_reset_contextvars_isolates_pipelined_requests(http: str, reset: bool) -> None:
    """Without the option the second pipelined request starts inside the first one's
    context (its task is created when the first response completes) and sees its value."""
    async with run_server(context_app, http=http, reset_contextvars=reset) as (_, port):
        reader, writer = await open_conn(port)
        writer.write(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n" * 1)
        writer.write(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
        first = await read_response(reader)
        second = await read_response(reader)
        writer.close()
    assert first[2] == b"unset"
    assert second[2] == (b"unset" if reset else b"/first")


@pytest.mark.parametrize("http", HTTP)
async def test_h11_max_incomplete_event_size_bounds_http11_heads(http: str) -> None:
    async with run_server(context_app, http=http, h11_max_incomplete_event_size=2048) as (
        server,
        port,
    ):
        assert server.config.max_header_size == 65536  # SPDY's bound is untouched
        for size, status in ((1000, 200), (3000, 431)):
            reader, writer = await open_conn(port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n" % (b"a" * size))
            assert (await read_response(reader))[0] == status
            writer.close()


def test_limit_max_requests_jitter_is_drawn_per_server() -> None:
    config = Config("m:app", limit_max_requests=10, limit_max_requests_jitter=5)
    limits = {Server(config).limit_max_requests for _ in range(60)}
    assert limits <= set(range(10, 16)) and len(limits) > 1
    assert Server(Config("m:app", limit_max_requests=10)).limit_max_requests == 10
    assert Server(Config("m:app", limit_max_requests_jitter=5)).limit_max_requests is None


async def test_limit_max_requests_with_jitter_stops_within_the_range() -> None:
    """The server stops after limit..limit+jitter requests, not before."""
    async with run_server(context_app, limit_max_requests=2, limit_max_requests_jitter=1) as (
        server,
        port,
    ):
        limit = server.limit_max_requests
        assert limit in (2, 3)
        for _ in range(limit):
            reader, writer = await open_conn(port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert (await read_response(reader))[0] == 200
            writer.close()
        # The server stops on its own: the listening socket goes away (bounded wait).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while True:
            assert loop.time() < deadline, "the server kept listening past its limit"
            try:
                _, writer = await open_conn(port)
            except OSError:
                break
            writer.close()
            await asyncio.sleep(0.05)
        assert server.server_state.total_requests == limit
