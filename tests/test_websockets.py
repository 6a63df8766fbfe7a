"""WebSockets over HTTP/1.1, both implementations, with the ``websockets`` library as the
client over real sockets against Starlette and FastAPI apps (tests/test_websockets_app.py).
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from spdyasgi.protocols.ws.base import WSProtocol
from tests import test_websockets_app as apps
from tests.spdyraw import RawSession
from tests.utils import run_server

IMPLS = ["websockets", "wsproto"]
HTTP = ["h11", "httptools"]
# None: cleartext; otherwise TLS with the client's ALPN offer ("" offers nothing).
TLS = [None, "http/1.1", ""]


def client_context(certfile: str, alpn: str | None) -> ssl.SSLContext | None:
    if alpn is None:
        return None
    ctx = ssl.create_default_context(cafile=certfile)
    if alpn:
        ctx.set_alpn_protocols([alpn])
    return ctx


@asynccontextmanager
async def serve(
    app: Any, tls_files: tuple[str, str], alpn: str | None, **options: Any
) -> AsyncIterator[tuple[Any, str, ssl.SSLContext | None]]:
    """Yield ``(server, base_uri, client_ssl_context)``."""
    certfile, keyfile = tls_files
    if alpn is not None:
        options.update(ssl_certfile=certfile, ssl_keyfile=keyfile)
    async with run_server(app, **options) as (server, port):
        scheme = "ws" if alpn is None else "wss"
        yield server, f"{scheme}://localhost:{port}", client_context(certfile, alpn)


def ws_connect(uri: str, ctx: ssl.SSLContext | None, **kwargs: Any) -> Any:
    kwargs.setdefault("open_timeout", 20)
    kwargs.setdefault("close_timeout", 20)
    kwargs.setdefault("max_size", None)
    return connect(uri, ssl=ctx, **kwargs)


async def until(predicate: Any, timeout: float = 20.0) -> None:
    """Wait (bounded) for a condition the server sets asynchronously."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def echo_checks(client: ClientConnection) -> None:
    for i in range(1000):
        message: str | bytes = f"message {i}" if i % 2 else os.urandom(i % 50 + 1)
        await client.send(message)
        assert await asyncio.wait_for(client.recv(), 20) == message
    big = os.urandom(1 << 20)
    await client.send(big)
    assert await asyncio.wait_for(client.recv(), 30) == big


@pytest.mark.parametrize("ws", IMPLS)
@pytest.mark.parametrize("alpn", TLS)
@pytest.mark.parametrize("which", ["starlette", "fastapi"])
async def test_echo_1000_messages_and_1mib(
    ws: str, alpn: str | None, which: str, tls_files: tuple[str, str]
) -> None:
    app = apps.app if which == "starlette" else apps.fastapi_app
    async with (
        serve(app, tls_files, alpn, ws=ws) as (_, uri, ctx),
        ws_connect(f"{uri}/echo", ctx, subprotocols=["chat", "superchat"]) as client,
    ):
        assert client.subprotocol == "chat"
        await echo_checks(client)


@pytest.mark.parametrize("ws", IMPLS)
@pytest.mark.parametrize("http", HTTP)
async def test_no_subprotocol_and_per_message_deflate(ws: str, http: str) -> None:
    async with (
        run_server(apps.app, ws=ws, http=http) as (_, port),
        ws_connect(f"ws://127.0.0.1:{port}/echo", None) as client,
    ):
        assert client.subprotocol is None
        extensions = client.response.headers.get("Sec-WebSocket-Extensions", "")
        assert "permessage-deflate" in extensions
        await client.send("x" * 100_000)
        assert await client.recv() == "x" * 100_000
    async with (
        run_server(apps.app, ws=ws, ws_per_message_deflate=False) as (_, port),
        ws_connect(f"ws://127.0.0.1:{port}/echo", None) as client,
    ):
        assert "Sec-WebSocket-Extensions" not in client.response.headers


@pytest.mark.parametrize("ws", IMPLS)
@pytest.mark.parametrize("alpn", [None, "http/1.1"])
async def test_close_codes_both_ways(ws: str, alpn: str | None, tls_files: Any) -> None:
    async with serve(apps.app, tls_files, alpn, ws=ws) as (_, uri, ctx):
        async with ws_connect(f"{uri}/close", ctx) as client:
            await client.send("4001 server says bye")
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(client.recv(), 20)
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (4001, "server says bye")

        apps.SEEN.pop("client_close", None)
        async with ws_connect(f"{uri}/wait-close", ctx) as client:
            await client.close(4002, "client says bye")
        await until(lambda: "client_close" in apps.SEEN)
        assert apps.SEEN["client_close"] == (4002, "client says bye")


@pytest.mark.parametrize("ws", IMPLS)
async def test_ping_pong_both_ways(ws: str) -> None:
    async with run_server(apps.app, ws=ws, ws_ping_interval=0.1, ws_ping_timeout=5) as (
        server,
        port,
    ), ws_connect(f"ws://127.0.0.1:{port}/echo", None, ping_interval=None) as client:
        latency = await asyncio.wait_for(await client.ping(b"abc"), 10)
        assert latency >= 0
        (protocol,) = [c for c in server.server_state.connections if isinstance(c, WSProtocol)]
        # The server pings every 0.1 s; the client's pongs keep the connection open.
        pings = 0
        original = protocol._lib_ping

        def counting(payload: bytes) -> None:
            nonlocal pings
            pings += 1
            original(payload)

        protocol._lib_ping = counting  # type: ignore[method-assign]
        await until(lambda: pings >= 5)
        await client.send("still here")
        assert await client.recv() == "still here"
        assert protocol._pong_handle is None or not protocol.disconnected


@pytest.mark.parametrize("ws", IMPLS)
async def test_ping_timeout_closes_a_silent_client(ws: str) -> None:
    """A client that completes the handshake and then never answers pings is dropped."""
    async with run_server(apps.app, ws=ws, ws_ping_interval=0.2, ws_ping_timeout=0.3) as (
        _,
        port,
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101")
        loop = asyncio.get_running_loop()
        start = loop.time()
        data = b""
        while chunk := await asyncio.wait_for(reader.read(65536), 20):
            data += chunk  # pings (opcode 0x89) and finally a close frame
        elapsed = loop.time() - start
        assert data[:1] == b"\x89"  # a ping came first
        close_at = data.rfind(b"\x88\x18")  # the last frame: close, 2 + 22 bytes
        assert data[close_at + 2 : close_at + 4] == (1011).to_bytes(2, "big")
        assert 0.4 <= elapsed < 15
        writer.close()


@pytest.mark.parametrize("ws", IMPLS)
async def test_message_over_max_size_closes_1009(ws: str) -> None:
    async with run_server(apps.app, ws=ws, ws_max_size=1024) as (_, port):
        async with ws_connect(f"ws://127.0.0.1:{port}/echo", None) as client:
            await client.send(b"x" * 1024)
            assert await client.recv() == b"x" * 1024
            await client.send(b"y" * 2000)
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(client.recv(), 20)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009


@pytest.mark.parametrize("ws", IMPLS)
@pytest.mark.parametrize("alpn", [None, "http/1.1"])
async def test_denial_response_and_close_before_accept(
    ws: str, alpn: str | None, tls_files: Any
) -> None:
    async with serve(apps.app, tls_files, alpn, ws=ws) as (_, uri, ctx):
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(f"{uri}/deny", ctx):
                pass
        assert info.value.response.status_code == 418
        assert info.value.response.body == b"not you"
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(f"{uri}/refuse", ctx):
                pass
        assert info.value.response.status_code == 403


@pytest.mark.parametrize("http", HTTP)
async def test_ws_none_answers_upgrade_as_plain_http(http: str) -> None:
    async with run_server(apps.app, ws="none", http=http) as (_, port):
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(f"ws://127.0.0.1:{port}/echo", None):
                pass
        assert info.value.response.status_code != 101


@pytest.mark.parametrize("ws", IMPLS)
async def test_client_that_stops_reading_pauses_the_app(ws: str) -> None:
    """The app's send() blocks once the socket is full: server memory stays bounded."""
    async with run_server(apps.app, ws=ws) as (server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /flood HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101")
        (protocol,) = [c for c in server.server_state.connections if isinstance(c, WSProtocol)]
        # We read nothing more: wait until the app is parked in send() (flow paused).
        await until(lambda: protocol.flow.paused and apps.SEEN.get("flood_sent", 0) > 0)
        sent = apps.SEEN["flood_sent"]
        for _ in range(20):  # give it 20 loop turns: nothing more may be sent
            await asyncio.sleep(0)
        assert apps.SEEN["flood_sent"] == sent
        assert protocol.transport.get_write_buffer_size() <= 256 * 1024
        # What left the process is bounded by the kernel's socket buffers.
        assert sent * 65536 < 64 * 1024 * 1024
        writer.close()
        await until(lambda: "flood_error" in apps.SEEN)


@pytest.mark.parametrize("ws", IMPLS)
@pytest.mark.parametrize("alpn", [None, "spdy/3.1"])
async def test_spdy_session_and_websocket_on_one_port(
    ws: str, alpn: str | None, tls_files: tuple[str, str]
) -> None:
    certfile, _ = tls_files
    async with serve(apps.app, tls_files, None if alpn is None else "http/1.1", ws=ws) as (
        _,
        uri,
        ctx,
    ):
        port = int(uri.rsplit(":", 1)[1])
        spdy_ctx = None
        if alpn is not None:
            spdy_ctx = ssl.create_default_context(cafile=certfile)
            spdy_ctx.set_alpn_protocols([alpn])
        session = await RawSession.connect(port, ssl_context=spdy_ctx)
        try:
            async with ws_connect(f"{uri}/echo", ctx) as client:
                for i in range(5):
                    await client.send(f"ws {i}")
                    reply = await session.fetch("/")
                    assert reply.status == 200 and bytes(reply.body) == b"hello"
                    assert await asyncio.wait_for(client.recv(), 20) == f"ws {i}"
        finally:
            await session.close()


@pytest.mark.parametrize("ws", IMPLS)
async def test_app_failures_answer_500_or_close_1011(ws: str) -> None:
    async with run_server(apps.app, ws=ws) as (_, port):
        for path in ("/crash-before", "/forget"):
            with pytest.raises(InvalidStatus) as info:
                async with ws_connect(f"ws://127.0.0.1:{port}{path}", None):
                    pass
            assert info.value.response.status_code == 500
        async with ws_connect(f"ws://127.0.0.1:{port}/crash-after", None) as client:
            await client.send("go")
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(client.recv(), 20)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011


@pytest.mark.parametrize("ws", IMPLS)
@pytest.mark.parametrize("http", HTTP)
async def test_invalid_handshake_is_refused_without_the_app(ws: str, http: str) -> None:
    apps.SEEN.pop("echo_disconnect", None)
    async with run_server(apps.app, ws=ws, http=http) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(  # no Sec-WebSocket-Key
            b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 4")
        await asyncio.wait_for(reader.read(), 10)  # then the server closes (EOF)
        writer.close()
    assert "echo_disconnect" not in apps.SEEN


@pytest.mark.parametrize("ws", IMPLS)
async def test_graceful_shutdown_closes_1012(ws: str) -> None:
    apps.SEEN.pop("hold_disconnect", None)
    apps.SEEN.pop("hold_open", None)
    async with run_server(apps.app, ws=ws) as (server, port):
        client = await ws_connect(f"ws://127.0.0.1:{port}/hold", None)
        await until(lambda: "hold_open" in apps.SEEN)
        server.should_exit = True
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(client.recv(), 20)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1012
    await until(lambda: "hold_disconnect" in apps.SEEN)
    assert apps.SEEN["hold_disconnect"] == 1012


@pytest.mark.parametrize("ws", IMPLS)
async def test_app_that_stops_receiving_pauses_the_client(ws: str) -> None:
    """--ws-max-queue: with the app not receiving, the server stops reading, the queue
    stays near the limit, and the client's sends block; then nothing is lost."""
    apps.SEEN.pop("sleepy_open", None)
    apps.SEEN["wake"] = asyncio.Event()
    count, size = 400, 65536
    async with (
        run_server(apps.app, ws=ws, ws_max_queue=4, ws_per_message_deflate=False) as (
            server,
            port,
        ),
        ws_connect(f"ws://127.0.0.1:{port}/sleepy", None, compression=None) as client,
    ):
        await until(lambda: "sleepy_open" in apps.SEEN)
        (protocol,) = [c for c in server.server_state.connections if isinstance(c, WSProtocol)]
        payload = os.urandom(size)

        async def send_all() -> None:
            for _ in range(count):
                await client.send(payload)

        sender = asyncio.ensure_future(send_all())
        # The server stops reading; the kernel buffers fill; the client's own buffer
        # grows and its send() blocks.
        await until(lambda: protocol.reading_paused and client.transport.get_write_buffer_size())
        assert not sender.done(), "the client could send 25 MiB to an app that reads nothing"
        # One socket read can hold a few messages past the limit, never the whole flood.
        assert len(protocol.queue) <= 4 + 8
        apps.SEEN["wake"].set()
        await asyncio.wait_for(sender, 60)
        await until(lambda: apps.SEEN.get("sleepy_got") == count, timeout=60)
