"""The client's compatibility mode against a server that sends DATA past the session
window (node-spdy in cleartext runs SPDY/3 flow control): strict fails the session and
names the fault, `compat=True` / `--compat` reports it once and keeps going."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest

from spdyasgi.client import SpdyClient
from spdyasgi.client.errors import SpdyClientError
from spdyasgi.spdy import Connection, ConnectionConfig, RequestReceived, frames

from .test_cli_habits import aclient

BODY = bytes(range(256)) * 4096  # 1 MiB: within the client's stream window, not its session's
BIG = BODY * 2  # one 2 MiB frame: past the CLI's 1 MiB stream window, within its session's


@contextlib.asynccontextmanager
async def past_the_session_window() -> AsyncIterator[int]:
    """A cleartext SPDY/3.1 server that answers with `BODY` (`BIG` for /big) in one DATA
    frame, whatever the client's windows say."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        engine = Connection(ConnectionConfig(client_side=False))
        engine.initiate_connection()
        writer.write(engine.data_to_send())
        try:
            while data := await reader.read(65536):
                for event in engine.receive_data(data):
                    if isinstance(event, RequestReceived):
                        engine.send_response(event.stream_id, [(b":status", b"200"),
                                                               (b":version", b"HTTP/1.1")])
                        writer.write(engine.data_to_send())
                        body = BIG if (b":path", b"/big") in event.headers else BODY
                        writer.write(frames.data_frame_header(event.stream_id, 1, len(body)))
                        writer.write(body)
                writer.write(engine.data_to_send())
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10)


async def test_library_strict_fails_naming_the_fault() -> None:
    async with past_the_session_window() as port:
        client = SpdyClient(f"http://127.0.0.1:{port}", session_window_size=65536)
        async with client:
            with pytest.raises(SpdyClientError) as caught:
                response = await client.get("/")
                await response.aread()
            assert "fault B" in str(caught.value) and "--compat" in str(caught.value)


async def test_library_compat_reports_once_and_keeps_going(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="spdyasgi.client")
    async with past_the_session_window() as port:
        client = SpdyClient(f"http://127.0.0.1:{port}", session_window_size=65536, compat=True)
        async with client:
            for _ in range(3):
                response = await client.get("/")
                assert response.status == 200
                assert await response.aread() == BODY
            assert [(f.fault, f.tolerated) for f in client.faults] == [("B", True)]
    lines = [r.getMessage() for r in caplog.records if r.name == "spdyasgi.client"]
    assert len(lines) == 1 and "server fault B" in lines[0] and "tolerated" in lines[0]


async def test_cli_compat_flag() -> None:
    async with past_the_session_window() as port:
        url = f"http://127.0.0.1:{port}/big"
        strict = await aclient(url)
        assert strict.returncode != 0
        assert b"fault B" in strict.stderr and b"--compat" in strict.stderr
        tolerant = await aclient(url, "--compat")
        assert tolerant.returncode == 0, tolerant.stderr
        assert tolerant.stdout == BIG
        assert tolerant.stderr.count(b"server fault B") == 1
