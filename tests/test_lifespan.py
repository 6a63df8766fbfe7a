"""Lifespan: startup before accepting, shared state, auto/on/off, failures."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from spdyasgi.asgi.lifespan import LifespanOff, LifespanOn
from spdyasgi.config import Config
from spdyasgi.server import Server
from tests.utils import Message, open_conn, read_response, run_server

pytestmark = pytest.mark.timeout(30)


def lifespan_app(events: list[str], fail: str | None = None) -> Any:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"]
                events.append(kind)
                if kind == "lifespan.startup":
                    scope["state"]["db"] = "connected"
                    if fail == "startup":
                        await send({"type": "lifespan.startup.failed", "message": "no db"})
                        return
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = scope["state"]["db"].encode()
        scope["state"]["db"] = "mutated by a request"  # must not leak into the next one
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


async def test_startup_state_and_shutdown() -> None:
    events: list[str] = []
    async with run_server(lifespan_app(events), lifespan="on") as (_, port):
        assert events == ["lifespan.startup"]
        for _ in range(2):
            reader, writer = await open_conn(port)
            writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert (await read_response(reader))[2] == b"connected"
            writer.close()
    assert events == ["lifespan.startup", "lifespan.shutdown"]


async def test_startup_failure_stops_server() -> None:
    config = Config(lifespan_app([], fail="startup"), port=0, lifespan="auto", log_config=None)
    server = Server(config)
    await asyncio.wait_for(server.serve(), 5)
    assert server.startup_failed and not server.started and not server.servers


async def test_auto_tolerates_app_without_lifespan(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    caplog.set_level("INFO", "spdyasgi.error")
    async with run_server(app, lifespan="auto") as (_, port):
        reader, writer = await open_conn(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert (await read_response(reader))[2] == b"ok"
        writer.close()
    assert "appears unsupported" in caplog.text


async def test_on_fails_hard_when_app_raises() -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        raise RuntimeError("no lifespan here")

    config = Config(app, lifespan="on", log_config=None)
    config.load()
    lifespan = LifespanOn(config)
    await asyncio.wait_for(lifespan.startup(), 5)
    assert lifespan.should_exit
    assert "no lifespan here" in lifespan.message


async def test_startup_failed_message_kept() -> None:
    config = Config(lifespan_app([], fail="startup"), lifespan="on", log_config=None)
    config.load()
    lifespan = LifespanOn(config)
    await asyncio.wait_for(lifespan.startup(), 5)
    assert lifespan.should_exit and lifespan.message == "no db"


async def test_off_never_calls_app() -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        raise AssertionError("called")

    lifespan = LifespanOff(Config(app, log_config=None))
    await lifespan.startup()
    await lifespan.shutdown()
    assert lifespan.state == {} and not lifespan.should_exit
