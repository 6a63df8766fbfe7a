"""The asyncio client against a tiny SPDY server built on the engine (spdy_testserver)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator, Iterator

import pytest

from spdyasgi.client import (
    ConnectError,
    ConnectionClosedError,
    GoAwayError,
    NotSpdyError,
    ReadTimeout,
    RequestTimeout,
    RetryableError,
    SpdyClient,
    SpdyProtocolError,
    StreamRefusedError,
    StreamResetError,
    TLSError,
    connect,
)
from spdyasgi.client.frametrace import FrameTracer
from spdyasgi.spdy import StreamStatus, Version
from spdyasgi.spdy.constants import SettingId
from tests.procs import free_port

from .spdy_testserver import PUSH_PAGE, PUSHED_CSS, Exchange, SpdyTestServer, body_bytes


@pytest.fixture
def server() -> Iterator[SpdyTestServer]:
    with SpdyTestServer() as running:
        yield running


async def test_get_headers_and_settings(server: SpdyTestServer) -> None:
    async with connect(server.url) as client:
        response = await client.get("/hello")
        assert response.status == 200
        assert response.stream_id == 1
        assert response.http_version == "HTTP/1.1"
        assert response.get("Content-Type") == "text/plain"
        assert response.get_all("set-cookie") == ["a=1", "b=2"]
        assert ("set-cookie", "a=1") in response.headers
        assert await response.read() == b"hello"
        assert client.remote_settings[SettingId.MAX_CONCURRENT_STREAMS] == 256
        assert client.version is Version.SPDY31
        # Request headers went out as SPDY/3 pseudo-headers, names lowercased.
        response = await client.get("/headers", headers=[("X-Test", "1"), ("Host", "h.example")])
        sent = json.loads(await response.read())
        names = [name for name, _ in sent]
        assert names[:5] == [":method", ":path", ":version", ":host", ":scheme"]
        assert ["x-test", "1"] in sent and [":host", "h.example"] in sent
        assert [":version", "HTTP/1.1"] in sent
        assert "host" not in names


async def test_await_connect_and_shortcuts(server: SpdyTestServer) -> None:
    client = await connect(host="127.0.0.1", port=server.port)
    try:
        assert (await client.head("/status/204")).status == 204
        assert (await client.delete("/status/202")).status == 202
        assert (await client.put("/status/201", content=b"x")).status == 201
    finally:
        await client.aclose()
    with pytest.raises(ConnectionClosedError):
        await client.get("/hello")


async def test_upload_5mib_hashed_with_small_server_windows() -> None:
    with SpdyTestServer(window_size=65536, session_window_size=65536) as server:
        data = os.urandom(5 << 20)
        async with connect(server.url) as client:
            response = await client.post("/upload", content=data)
            result = json.loads(await response.read())
        assert result == {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()}


async def test_streaming_upload_echo(server: SpdyTestServer) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(40):
            yield bytes([i]) * 10000

    async with connect(server.url) as client:
        response = await client.post("/echo", content=chunks())
        received = b"".join([chunk async for chunk in response.aiter_bytes()])
    assert received == b"".join(bytes([i]) * 10000 for i in range(40))


async def test_download_10mib_small_windows(server: SpdyTestServer) -> None:
    n = 10 << 20
    async with connect(server.url, window_size=65536, session_window_size=65536) as client:
        response = await client.get(f"/bytes?n={n}&seed=7")
        digest = hashlib.sha256()
        total = 0
        async for chunk in response.aiter_bytes():
            digest.update(chunk)
            total += len(chunk)
    assert total == n
    assert digest.hexdigest() == hashlib.sha256(body_bytes(n, 7)).hexdigest()


async def test_large_frames_read_through_the_reused_buffer_arrive_intact(
        server: SpdyTestServer) -> None:
    # Big windows: the server sends DATA frames far larger than one read, which reach the
    # client as views of its one read buffer; kept chunks must be copies of them.
    n = 24 << 20
    async with connect(server.url, window_size=1 << 30, session_window_size=1 << 30) as client:
        response = await client.get(f"/bytes?n={n}&seed=3")
        chunks = [chunk async for chunk in response.aiter_bytes()]
    assert all(isinstance(chunk, bytes) for chunk in chunks)
    assert hashlib.sha256(b"".join(chunks)).digest() == hashlib.sha256(body_bytes(n, 3)).digest()


async def test_discard_counts_queued_and_arriving_bytes(server: SpdyTestServer) -> None:
    n = 8 << 20
    async with connect(server.url, window_size=1 << 20, session_window_size=1 << 21) as client:
        response = await client.get(f"/bytes?n={n}")
        await asyncio.sleep(0.2)  # part of the body is queued before discard() starts
        assert response._state.chunks
        assert await response.discard() == n
        assert not response._state.chunks
        # The windows were given back as bytes were dropped: the session still flows.
        again = await client.get(f"/bytes?n={n}")
        assert len(await again.read()) == n


async def test_window_reopens_only_as_the_caller_reads(server: SpdyTestServer) -> None:
    async with connect(server.url, window_size=65536, max_buffer=0) as client:
        response = await client.get("/bytes?n=1000000")
        await asyncio.sleep(0.3)
        buffered = sum(len(c) for c in response._state.chunks)
        assert buffered <= 65536  # max_buffer=0: the server is stalled by our unread window
        data = await response.read()
        assert len(data) == 1000000


async def test_100_concurrent_requests(server: SpdyTestServer) -> None:
    async with connect(server.url) as client:
        responses = await asyncio.gather(*(client.get("/hello") for _ in range(100)))
        bodies = await asyncio.gather(*(r.read() for r in responses))
    assert bodies == [b"hello"] * 100
    assert len({r.stream_id for r in responses}) == 100


async def test_requests_queue_beyond_max_concurrent_streams() -> None:
    with SpdyTestServer(max_streams=10) as server:
        async with connect(server.url) as client:
            await client.ping()  # SETTINGS arrive before the PING echo
            assert client.max_concurrent_streams == 10
            responses = await asyncio.gather(*(client.get("/track") for _ in range(60)))
            assert [await r.read() for r in responses] == [b"ok"] * 60
            assert client.active_streams == 0
        assert server.max_seen <= 10
        assert not server.resets  # nothing was refused


async def test_push_accepted(server: SpdyTestServer) -> None:
    async with connect(server.url) as client:
        response = await client.get("/push")
        assert await response.read() == PUSH_PAGE
        assert len(response.pushes) == 1
        push = response.pushes[0]
        assert push.path == "/pushed.css"
        assert push.status == 200
        assert push.get("content-type") == "text/css"
        assert push.associated_stream_id == response.stream_id
        assert push.stream_id % 2 == 0
        assert await push.read() == PUSHED_CSS


async def test_push_refused(server: SpdyTestServer) -> None:
    lines: list[str] = []
    async with connect(server.url, accept_push=False, trace=FrameTracer(lines.append)) as client:
        response = await client.get("/push")
        assert await response.read() == PUSH_PAGE
        assert response.pushes == []
        await client.ping()
    assert any(line.startswith("< SYN_STREAM") and "UNIDIRECTIONAL stream=2 assoc=1" in line
               for line in lines)
    assert any(line.startswith("> RST_STREAM") and "stream=2 status=REFUSED_STREAM" in line
               for line in lines)


async def test_ping_rtt(server: SpdyTestServer) -> None:
    async with connect(server.url) as client:
        rtt = await client.ping()
        assert 0 < rtt < 1


async def test_goaway_fails_unprocessed_streams_as_retryable(server: SpdyTestServer) -> None:
    async with connect(server.url) as client:
        first = asyncio.ensure_future(client.get("/delay?ms=300"))  # stream 1
        await asyncio.sleep(0.05)
        with pytest.raises(GoAwayError) as info:
            await client.get("/goaway?last=1")  # stream 3 > last good 1
        assert isinstance(info.value, RetryableError)
        assert info.value.last_good_stream_id == 1
        assert "GOAWAY" in str(info.value)
        response = await first  # stream 1 is still served
        assert await response.read() == b"done"
        with pytest.raises(GoAwayError, match="GOAWAY") as later:
            await client.get("/hello")
        assert isinstance(later.value, ConnectionClosedError)
        assert not client.is_usable


async def test_server_reset_names_status(server: SpdyTestServer) -> None:
    async with connect(server.url, retries=0) as client:
        with pytest.raises(StreamResetError, match=r"server reset stream 1: INTERNAL_ERROR"):
            await client.get("/reset?code=6")
        with pytest.raises(StreamRefusedError,
                           match=r"server reset stream 3: REFUSED_STREAM") as info:
            await client.get("/reset?code=3")
        assert isinstance(info.value, SpdyProtocolError)
        assert isinstance(info.value, RetryableError)
        assert (await client.get("/hello")).status == 200


async def test_malformed_reply_is_a_protocol_error() -> None:
    async def handler(ex: Exchange) -> None:
        ex.conn.engine.send_response(ex.stream_id, [(b"x-no-status", b"1")], end_stream=True)
        ex.conn.flush()

    with SpdyTestServer(handler) as server:
        async with connect(server.url) as client:
            with pytest.raises(SpdyProtocolError, match="stream 1 has no :status"):
                await client.get("/")


async def test_read_and_request_timeouts(server: SpdyTestServer) -> None:
    async with connect(server.url, read_timeout=0.3) as client:
        with pytest.raises(ReadTimeout, match="stream 1"):
            await client.get("/slow")
        with pytest.raises(RequestTimeout):
            await client.get("/slow", timeout=0.2)
        assert await (await client.get("/hello")).read() == b"hello"  # session still fine
        await client.ping()
    assert (1, StreamStatus.CANCEL) in server.resets


async def test_connect_refused() -> None:
    with pytest.raises(ConnectError, match="refused"):
        async with connect(f"http://127.0.0.1:{free_port()}"):
            pass


async def test_tls_alpn(tls_files: tuple[str, str]) -> None:
    with SpdyTestServer(tls=tls_files) as server:
        async with connect(server.url, cafile=tls_files[0]) as client:
            assert client.alpn_protocol == "spdy/3.1"
            assert await (await client.get("/hello")).read() == b"hello"
        async with connect(server.url, verify=False, protocols=("spdy/3",)) as client:
            assert client.version is Version.SPDY3
            data = await (await client.get("/bytes?n=300000")).read()
            assert data == body_bytes(300000)
        with pytest.raises(TLSError):
            async with connect(server.url):  # self-signed, verification on
                pass


async def test_http11_only_tls_server_is_not_spdy(tls_files: tuple[str, str]) -> None:
    with SpdyTestServer(tls=tls_files, alpn=["http/1.1"]) as server:
        # Offering http/1.1 too lets the server pick it: the error names the choice.
        protocols = ("spdy/3.1", "spdy/3", "http/1.1")
        with pytest.raises(NotSpdyError) as info:
            async with SpdyClient(server.url, verify=False, protocols=protocols):
                pass
        assert str(info.value) == "server does not speak SPDY (ALPN selected http/1.1)"
        assert info.value.selected_protocol == "http/1.1"
        assert info.value.exit_code == 16
        # By default only SPDY is offered: an HTTP/1.1-only server selects nothing.
        with pytest.raises(NotSpdyError, match=r"^server does not speak SPDY \(no ALPN"):
            async with SpdyClient(server.url, verify=False):
                pass


async def test_fire_counts_bodies_through_callbacks(server: SpdyTestServer) -> None:
    from spdyasgi.client.response import StreamState

    seen: list[tuple[int, bytes, BaseException | None]] = []
    everything = asyncio.get_running_loop().create_future()

    def done(state: StreamState) -> None:
        status = dict(state.headers).get(b":status", b"")
        seen.append((state.discarded, status, state.error))
        if len(seen) == 3 and not everything.done():
            everything.set_result(None)

    async with connect(server.url, window_size=65536) as client:
        big = client.prepare("GET", "/bytes?n=300000")  # several window refills
        assert client.fire(big, done)
        assert client.fire(client.prepare("GET", "/status/204"), done)
        assert client.fire(client.prepare("GET", "/slow"), done)
        for _ in range(200):
            if len(seen) == 2:
                break
            await asyncio.sleep(0.01)
        assert sorted(seen[:2], key=lambda s: s[0]) == [(0, b"204", None), (300000, b"200", None)]
        assert client.expire_fired(ReadTimeout("gave up")) == 1
        await asyncio.wait_for(everything, 5)
        assert isinstance(seen[2][2], ReadTimeout)
        assert client.active_streams == 0
        assert (await client.get("/hello")).status == 200  # the session is still fine


async def test_reset_after_the_whole_declared_body_keeps_the_response(
        server: SpdyTestServer) -> None:
    """node-spdy resets a stream (INVALID_STREAM) when a WINDOW_UPDATE reaches it after it
    queued its last DATA: a body complete per content-length stays a good response; a
    short one is still an error."""
    async with connect(server.url) as client:
        response = await client.get("/body-then-reset?n=70000")
        assert await response.aread() == body_bytes(70000, 0)
        response = await client.get("/body-then-reset?n=70000&sent=60000")
        with pytest.raises(StreamResetError, match="INVALID_STREAM"):
            await response.aread()
