"""HTTP/1.1 through the real server and real sockets, for both parsers."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from typing import Any

import pytest

from spdyasgi.exceptions import ClientDisconnected
from tests.utils import Message, hello_app, open_conn, read_response, run_server

pytestmark = pytest.mark.timeout(30)


async def test_get(http1: str) -> None:
    async with run_server(hello_app, http1=http1) as (_, port):
        reader, writer = await open_conn(port)
        writer.write(b"GET /a%20b?x=1 HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, body = await read_response(reader)
        assert status == 200
        assert body == b"hello /a b"
        assert headers[b"server"] == b"spdyasgi"
        assert b"date" in headers
        assert headers[b"content-length"] == b"10"
        writer.close()


async def test_scope(http1: str) -> None:
    seen: list[Message] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})

    async with run_server(app, http1=http1, root_path="/root") as (_, port):
        reader, writer = await open_conn(port)
        writer.write(b"GET /p%C3%A9?q=%20 HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n\r\n")
        status, _, body = await read_response(reader)
        assert (status, body) == (204, b"")
        writer.close()
    scope = seen[0]
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/root/p\u00e9"
    assert scope["raw_path"] == b"/root/p%C3%A9"
    assert scope["query_string"] == b"q=%20"
    assert scope["root_path"] == "/root"
    assert scope["server"] == ("127.0.0.1", port)
    assert scope["client"][0] == "127.0.0.1"
    assert (b"x-a", b"1") in scope["headers"]
    assert scope["state"] == {}
    assert "http.response.pathsend" in scope["extensions"]


async def test_post_echo_large_body(http1: str) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB: exercises pause/resume reading
    async with run_server(hello_app, http1=http1) as (_, port):
        reader, writer = await open_conn(port)
        writer.write(b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(payload))
        writer.write(payload)
        status, _, body = await read_response(reader)
        assert status == 200
        assert body == payload
        writer.close()


async def test_chunked_request_and_streamed_response(http1: str) -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message["body"])
            if not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for chunk in chunks:
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async with run_server(app, http1=http1) as (_, port):
        reader, writer = await open_conn(port)
        writer.write(
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )
        status, headers, body = await read_response(reader)
        assert status == 200
        assert headers[b"transfer-encoding"] == b"chunked"
        assert body == b"abcde"
        writer.close()


async def test_keep_alive_and_pipelining(http1: str) -> None:
    async with run_server(hello_app, http1=http1) as (server, port):
        reader, writer = await open_conn(port)
        writer.write(
            b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n"
            b"POST /2 HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody"
            b"GET /3 HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        assert (await read_response(reader))[2] == b"hello /1"
        assert (await read_response(reader))[2] == b"body"
        assert (await read_response(reader))[2] == b"hello /3"
        writer.write(b"GET /4 HTTP/1.1\r\nHost: t\r\n\r\n")
        assert (await read_response(reader))[2] == b"hello /4"
        assert server.server_state.total_requests == 4
        assert len(server.server_state.connections) == 1
        writer.close()


async def test_connection_close_and_http10(http1: str) -> None:
    async with run_server(hello_app, http1=http1) as (_, port):
        reader, writer = await open_conn(port)
        writer.write(b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        status, headers, body = await read_response(reader)
        assert (status, body) == (200, b"hello /x")
        assert headers[b"connection"] == b"close"
        assert await asyncio.wait_for(reader.read(), 5) == b""
        reader, writer = await open_conn(port)
        writer.write(b"GET /y HTTP/1.0\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 5)
        assert data.startswith(b"HTTP/1.") and data.endswith(b"hello /y")


async def test_head(http1: str) -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"5")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"hello"})

    async with run_server(app, http1=http1) as (_, port):
        reader, writer = await open_conn(port)
        writer.write(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert b"content-length: 5" in head.lower()
        status, _, body = await read_response(reader)  # no body bytes leaked from HEAD
        assert (status, body) == (200, b"hello")
        writer.close()


async def test_413_on_declared_and_streamed_body(http1: str) -> None:
    async with run_server(hello_app, http1=http1, limit_request_body=10) as (_, port):
        reader, writer = await open_conn(port)
        writer.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n")
        assert (await read_response(reader))[0] == 413
        reader, writer = await open_conn(port)
        writer.write(
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n"
        )
        assert (await read_response(reader))[0] == 413
        reader, writer = await open_conn(port)
        writer.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789")
        assert (await read_response(reader))[2] == b"0123456789"
        writer.close()


async def test_503_at_limit_concurrency(http1: str) -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def app(scope: Message, receive: Any, send: Any) -> None:
        entered.set()
        await release.wait()
        await hello_app(scope, receive, send)

    async with run_server(app, http1=http1, limit_concurrency=1) as (_, port):
        r1, w1 = await open_conn(port)
        w1.write(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        await asyncio.wait_for(entered.wait(), 10)  # the one allowed task is running
        r2, w2 = await open_conn(port)
        w2.write(b"GET /other HTTP/1.1\r\nHost: t\r\n\r\n")
        assert (await read_response(r2))[0] == 503
        release.set()
        assert (await read_response(r1))[0] == 200
        w1.close()


async def test_500_on_exception_then_abort_after_start(http1: str) -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["path"] == "/late":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
        raise RuntimeError("boom")

    async with run_server(app, http1=http1) as (_, port):
        reader, writer = await open_conn(port)
        writer.write(b"GET /early HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, body = await read_response(reader)
        assert (status, body) == (500, b"Internal Server Error")
        assert headers[b"connection"] == b"close"
        reader, writer = await open_conn(port)
        writer.write(b"GET /late HTTP/1.1\r\nHost: t\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 5)
        assert data.startswith(b"HTTP/1.1 200")
        assert not data.endswith(b"0\r\n\r\n")  # aborted: no terminating chunk


async def test_500_when_app_returns_without_response(http1: str) -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        return None

    async with run_server(app, http1=http1) as (_, port):
        reader, writer = await open_conn(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert (await read_response(reader))[0] == 500


async def test_disconnect_reaches_app_and_send_raises(http1: str) -> None:
    events: list[Any] = []
    done = asyncio.Event()
    received = asyncio.Event()

    async def app(scope: Message, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "http.request"
        received.set()
        events.append((await receive())["type"])
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        except ClientDisconnected as exc:
            events.append(exc)
        done.set()

    async with run_server(app, http1=http1) as (_, port):
        _, writer = await open_conn(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await asyncio.wait_for(received.wait(), 10)
        writer.close()
        await asyncio.wait_for(done.wait(), 5)
    assert events[0] == "http.disconnect"
    assert isinstance(events[1], ClientDisconnected) and isinstance(events[1], OSError)


async def test_expect_100_continue(http1: str) -> None:
    async with run_server(hello_app, http1=http1) as (_, port):
        reader, writer = await open_conn(port)
        writer.write(
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        line = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert line.startswith(b"HTTP/1.1 100")
        writer.write(b"ok")
        assert (await read_response(reader))[2] == b"ok"
        writer.close()


async def test_pathsend(http1: str, tmp_path: Any) -> None:
    data = b"0123456789" * 100_000
    path = tmp_path / "file.bin"
    path.write_bytes(data)

    async def app(scope: Message, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": str(path)})

    async with run_server(app, http1=http1) as (_, port):
        reader, writer = await open_conn(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        _, headers, body = await read_response(reader)
        assert headers[b"content-length"] == str(len(data)).encode()
        assert body == data
        writer.close()


async def test_bad_request_400(http1: str) -> None:
    async with run_server(hello_app, http1=http1) as (_, port):
        reader, writer = await open_conn(port)
        writer.write(b"GET / HTTP/1.1\r\nHost t\r\n\r\n")
        assert (await read_response(reader))[0] == 400


async def test_keep_alive_timeout(http1: str) -> None:
    async with run_server(hello_app, http1=http1, timeout_keep_alive=0.2) as (_, port):
        reader, writer = await open_conn(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await read_response(reader)
        assert await asyncio.wait_for(reader.read(), 3) == b""


async def test_upgrade_answered_normally(http1: str) -> None:
    # --ws none: no WebSocket implementation, the app answers (test_websockets.py for ws).
    async with run_server(hello_app, http1=http1, ws="none") as (_, port):
        reader, writer = await open_conn(port)
        writer.write(
            b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        )
        assert (await read_response(reader))[:3:2] == (200, b"hello /ws")
        writer.close()


# -- curl ---------------------------------------------------------------------------
CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")


async def _curl(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        CURL or "curl",
        "-sS",
        "--max-time",
        "10",
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


@needs_curl
async def test_curl_cleartext() -> None:
    async with run_server(hello_app) as (_, port):
        code, out, err = await _curl("--http1.1", f"http://127.0.0.1:{port}/c")
        assert code == 0, err
        assert out == "hello /c"
        code, out, err = await _curl("--http1.1", "-d", "posted", f"http://127.0.0.1:{port}/")
        assert out == "posted"


@needs_curl
@pytest.mark.parametrize("alpn", [["--http1.1"], ["--http1.1", "--no-alpn"]])
async def test_curl_tls(tls_files: tuple[str, str], alpn: list[str]) -> None:
    certfile, keyfile = tls_files
    async with run_server(hello_app, ssl_certfile=certfile, ssl_keyfile=keyfile) as (_, port):
        code, out, err = await _curl(
            *alpn, "--cacert", certfile, "-w", " %{scheme}", f"https://127.0.0.1:{port}/t"
        )
        assert code == 0, err
        assert out == "hello /t HTTPS"


def test_under_uvloop(tls_files: tuple[str, str]) -> None:
    """The same server on uvloop (what `--loop auto` picks): cleartext and TLS."""
    uvloop = pytest.importorskip("uvloop")
    import ssl

    certfile, keyfile = tls_files

    async def scenario() -> None:
        async with run_server(hello_app) as (_, port):
            reader, writer = await open_conn(port)
            writer.write(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\n")
            assert (await read_response(reader))[2] == b"hello /1"
            assert (await read_response(reader))[2] == b"hello /2"
            writer.close()
        context = ssl.create_default_context(cafile=certfile)
        context.set_alpn_protocols(["http/1.1"])
        async with run_server(hello_app, ssl_certfile=certfile, ssl_keyfile=keyfile) as (_, port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
            writer.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
            assert (await read_response(reader))[2] == b"abc"
            writer.close()

    uvloop.run(scenario())


async def test_tls_scope_scheme(tls_files: tuple[str, str]) -> None:
    import ssl

    certfile, keyfile = tls_files
    schemes: list[str] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        schemes.append(scope["scheme"])
        await hello_app(scope, receive, send)

    context = ssl.create_default_context(cafile=certfile)
    async with run_server(app, ssl_certfile=certfile, ssl_keyfile=keyfile) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await read_response(reader)
        writer.close()
    assert schemes == ["https"]


async def _until(condition: Any, timeout: float) -> None:
    """Wait (bounded) until ``condition()`` holds, checking at every loop turn."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def _sender_parked(server: Any) -> bool:
    """Some connection's app task is blocked in send(), waiting for the transport."""
    flows = (getattr(conn, "flow", None) for conn in list(server.server_state.connections))
    return any(flow is not None and flow._waiters for flow in flows)


async def test_send_waits_for_a_slow_reader(http1: str) -> None:
    """Backpressure: with the client not reading, the app's sends block (bounded memory)."""
    sent = 0
    chunk = b"x" * 65536

    async def app(scope: Message, receive: Any, send: Any) -> None:
        nonlocal sent
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(160):  # 10 MiB: far more than socket buffers + transport high-water
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent += 1
        await send({"type": "http.response.body", "body": b""})

    async with run_server(app, http1=http1) as (server, port):
        reader, writer = await open_conn(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await _until(lambda: _sender_parked(server), 10)  # the app waits in send()
        assert 0 < sent < 160
        _, _, body = await read_response(reader)
        assert len(body) == 160 * 65536 and sent == 160
        writer.close()


async def _send_head(writer: asyncio.StreamWriter, size: int, terminate: bool) -> int:
    """Write a request head of about ``size`` bytes; returns what got written."""
    writer.write(b"GET /big HTTP/1.1\r\nHost: t\r\n")
    sent = 0
    line = b"X-Fill: " + b"a" * 8000 + b"\r\n"
    try:
        while sent < size:
            writer.write(line)
            sent += len(line)
            await writer.drain()
        if terminate:
            writer.write(b"\r\n")
            await writer.drain()
    except OSError:  # the server hung up on us: expected once it has answered 431
        pass
    return sent


async def test_431_for_a_head_over_the_limit(http1: str) -> None:
    """A 2 MB head gets 431 then EOF, before the head is even complete (bounded buffering)."""
    async with run_server(hello_app, http1=http1) as (server, port):
        assert server.config.max_header_size == 65536  # the one limit, SPDY and HTTP/1.1
        for terminate in (False, True):
            reader, writer = await open_conn(port)
            sender = asyncio.create_task(_send_head(writer, 2_000_000, terminate))
            # Unterminated: only a server that stops at the limit can answer at all.
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
            assert b"connection: close" in head
            # Then EOF, not a reset: the server drops what we still send for a while,
            # so the answer is not lost under an RST.
            assert await asyncio.wait_for(reader.read(), 10) == b"Request header fields too large."
            await asyncio.wait_for(sender, 10)
            writer.close()
        # The connection was dropped, not the server: the next request is served.
        reader, writer = await open_conn(port)
        writer.write(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
        assert (await read_response(reader))[2] == b"hello /after"
        writer.close()


async def test_head_limit_is_max_header_size_for_both_parsers(http1: str) -> None:
    """Under ``max_header_size`` is served, over it is 431; many small pipelined heads
    adding up to more than the limit are not one big head."""
    async with run_server(hello_app, http1=http1, max_header_size=8192) as (_, port):
        reader, writer = await open_conn(port)
        writer.write(b"GET /ok HTTP/1.1\r\nHost: t\r\nX-Fill: " + b"a" * 7000 + b"\r\n\r\n")
        assert (await read_response(reader))[:1] == (200,)
        writer.write(b"GET /p HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"b" * 200 + b"\r\n\r\n" * 1)
        writer.write(b"".join(b"GET /%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(400)))
        assert (await read_response(reader))[2] == b"hello /p"
        for i in range(400):
            assert (await read_response(reader))[2] == b"hello /%d" % i
        writer.write(b"GET /no HTTP/1.1\r\nHost: t\r\nX-Fill: " + b"a" * 9000 + b"\r\n\r\n")
        status, headers, _ = await read_response(reader)
        assert (status, headers[b"connection"]) == (431, b"close")
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()


@pytest.mark.parametrize("bad", [(b"x-a", b"1\r\nx-injected: 1"), (b"x-a\n", b"1"),
                                 (b"x-a", b"1\r")])
async def test_response_header_with_cr_or_lf_is_refused(http1: str,
                                                       bad: tuple[bytes, bytes]) -> None:
    """A response header carrying CR or LF never reaches the wire (no header injection):
    the app's send raises, nothing of the head is written and the connection closes
    (as uvicorn does once a response was started)."""
    raised: list[BaseException] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [bad]})
            await send({"type": "http.response.body", "body": b"x"})
        except Exception as exc:
            raised.append(exc)
            raise

    async with run_server(app, http1=http1) as (_, port):
        reader, writer = await open_conn(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        wire = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    assert raised
    assert wire == b""
