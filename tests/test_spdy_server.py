"""The SPDY server over real sockets on 127.0.0.1, with the raw-frame engine client."""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl

import pytest

from spdyasgi.spdy import (
    GoAwayReceived,
    PingAcknowledged,
    SessionStatus,
    SettingsReceived,
    StreamStatus,
    Version,
    WindowUpdated,
)
from tests import spdyapps
from tests.spdyapps import app, pattern
from tests.spdyraw import RawSession, Reply, request_headers
from tests.utils import run_server


async def test_get_and_scope() -> None:
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port)
        reply = await session.fetch("/scope?x=1&y=%20")
        assert reply.status == 200
        assert reply.header(b":version") == b"HTTP/1.1"
        assert reply.header(b"server") == b"spdyasgi"
        info = json.loads(reply.body)
        assert info["method"] == "GET"
        assert info["path"] == "/scope"
        assert info["query_string"] == "x=1&y=%20"
        assert info["http_version"] == "1.1"
        assert info["scheme"] == "http"
        assert info["asgi"] == {"version": "3.0", "spec_version": "2.4"}
        assert info["headers"][0] == ["host", "localhost"]
        assert not [name for name, _ in info["headers"] if name.startswith(":")]
        assert info["client"][0] == "127.0.0.1"
        assert info["server"] == ["127.0.0.1", port]
        spdy = info["extensions"]["spdy"]
        assert spdy == {"version": "3.1", "stream_id": 1, "priority": 3}
        for name in ("http.response.push", "http.response.trailers", "http.response.pathsend"):
            assert name in info["extensions"]
        await session.close()


async def test_settings_and_session_window_sent_first() -> None:
    async with run_server(app, max_concurrent_streams=300, initial_window_size=1 << 20,
                          session_window_size=1 << 23) as (_, port):
        session = await RawSession.connect(port)
        await session.pump()
        settings = [e for e in session.events if isinstance(e, SettingsReceived)]
        assert settings and settings[0].settings == {4: 300, 7: 1 << 20}
        updates = [e for e in session.events if isinstance(e, WindowUpdated)]
        assert updates and updates[0].stream_id == 0
        assert updates[0].delta == (1 << 23) - 65536
        await session.close()


async def test_cookies_joined_and_multi_value_headers() -> None:
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port)
        reply = await session.fetch("/scope", headers=[(b"cookie", b"a=1"), (b"cookie", b"b=2"),
                                                       (b"accept", b"x"), (b"accept", b"y")])
        headers = json.loads(reply.body)["headers"]
        assert [value for name, value in headers if name == "cookie"] == ["a=1; b=2"]
        assert ["accept", "x"] in headers and ["accept", "y"] in headers
        # One cookie header: the request takes the engine's fast path, same scope shape.
        reply = await session.fetch("/scope", headers=[(b"cookie", b"c=3"), (b"x-a", b"1")])
        headers = json.loads(reply.body)["headers"]
        assert headers == [["host", "localhost"], ["cookie", "c=3"], ["x-a", "1"]]
        reply = await session.fetch("/multi")
        names = [name for name, _ in reply.headers]
        assert names.count(b"set-cookie") == 2  # one NUL-joined value, split by the engine
        assert b"connection" not in names and b"transfer-encoding" not in names
        assert reply.header(b"content-type") == b"text/plain"
        await session.close()


@pytest.mark.parametrize("path", ["/status/204", "/status/304"])
async def test_no_body_statuses_reply_with_fin(path: str) -> None:
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port)
        reply = await session.fetch(path)
        assert reply.reply_fin and reply.data_frames == 0
        await session.close()


async def test_head_has_no_data_frames() -> None:
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port)
        reply = await session.fetch("/head", method=b"HEAD")
        assert reply.status == 200 and reply.reply_fin and reply.data_frames == 0
        assert reply.header(b"content-length") == b"5"
        await session.close()


async def test_status_codes() -> None:
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port)
        for status in (200, 201, 301, 404, 418, 500, 503):
            reply = await session.fetch(f"/status/{status}")
            assert reply.status == status
            assert reply.body == f"status {status}".encode()
        await session.close()


async def test_echo_10mib_streamed_both_ways_with_small_windows() -> None:
    body = pattern(10 * 1024 * 1024)
    async with run_server(app, initial_window_size=65536,
                          session_window_size=65536 * 4) as (_, port):
        session = await RawSession.connect(port, window=65536, session_window=65536 * 2)
        reply = await session.fetch("/echo", method=b"POST", body=body)
        assert reply.status == 200
        assert hashlib.sha256(reply.body).digest() == hashlib.sha256(body).digest()
        await session.close()


async def test_upload_hashed_and_window_credit() -> None:
    body = pattern(3 * 1024 * 1024 + 17)
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port)
        reply = await session.fetch("/hash", method=b"POST", body=body)
        assert reply.body == f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()
        await session.close()


async def test_concurrent_200_streams_on_one_session() -> None:
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port)
        ids = [session.request(f"/n{i}") for i in range(200)]
        replies = await session.wait(*ids)
        assert all(r.status == 200 for r in replies)
        assert [bytes(r.body) for r in replies] == [f"hello /n{i}".encode() for i in range(200)]
        await session.close()


async def test_push_opens_unidirectional_stream_before_fin() -> None:
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port)
        sid = session.request("/push")
        (reply,) = await session.wait(sid)
        assert reply.pushes, "no push received"
        push = session.replies[reply.pushes[0]]
        await session.wait(push.stream_id)
        assert push.stream_id % 2 == 0
        assert dict(push.headers)[b":path"] == b"/pushed.css"
        assert dict(push.headers)[b"content-type"] == b"text/css"
        assert bytes(push.body) == b"body{}"
        assert bytes(reply.body) == b"<link href=/pushed.css>"
        await session.close()


async def test_trailers_sent_as_headers_with_fin() -> None:
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port)
        reply = await session.fetch("/trailers")
        assert bytes(reply.body) == b"data"
        assert reply.trailers == [(b"x-checksum", b"abc")]
        await session.close()


async def test_app_errors_500_or_rst_and_session_continues() -> None:
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port)
        reply = await session.fetch("/error-before")
        assert reply.status == 500
        reply = await session.fetch("/error-after")
        assert reply.reset == StreamStatus.INTERNAL_ERROR
        reply = await session.fetch("/still-alive")
        assert bytes(reply.body) == b"hello /still-alive"
        await session.close()


async def test_client_reset_gives_disconnect_and_send_raises() -> None:
    spdyapps.observed.clear()
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port)
        sid = session.request("/wait-disconnect")
        while not session.replies[sid].body:
            await session.pump()
        session.conn.reset_stream(sid, StreamStatus.CANCEL)
        session.flush()
        for _ in range(100):
            if "send_after_disconnect" in spdyapps.observed:
                break
            await asyncio.sleep(0.02)
        assert spdyapps.observed["disconnects"] == 1
        assert spdyapps.observed["send_after_disconnect"] == "ClientDisconnected"
        reply = await session.fetch("/after")
        assert reply.status == 200
        await session.close()


async def test_missing_host_gets_400_and_ping_still_echoed() -> None:
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port)
        headers = [h for h in request_headers("/x") if h[0] != b":host"]
        sid = session.conn.send_request(headers, end_stream=True)
        session.replies[sid] = __import__("tests.spdyraw", fromlist=["Reply"]).Reply(sid)
        session.conn.ping(1)
        session.flush()
        (reply,) = await session.wait(sid)
        assert reply.status == 400 and reply.reply_fin
        while not any(isinstance(e, PingAcknowledged) for e in session.events):
            await session.pump()
        await session.close()


async def test_content_length_mismatch_400() -> None:
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port)
        reply = await session.fetch("/hash", method=b"POST", body=b"123456789",
                                    headers=[(b"content-length", b"10")])
        assert reply.status == 400
        await session.close()


async def test_limit_request_body_413() -> None:
    async with run_server(app, limit_request_body=1000) as (_, port):
        session = await RawSession.connect(port)
        reply = await session.fetch("/hash", method=b"POST", body=b"x" * 5000)
        assert reply.status == 413
        reply = await session.fetch("/ok")
        assert reply.status == 200
        await session.close()


async def test_client_that_stops_reading_leaves_memory_bounded() -> None:
    spdyapps.observed.clear()
    async with run_server(app, max_pending_output=256 * 1024) as (server, port):
        session = await RawSession.connect(port, window=(1 << 31) - 1,
                                           session_window=(1 << 31) - 1)
        session.request("/bytes?n=" + str(100 * 1024 * 1024))
        await session.pump()  # read the settings and the first bytes, then stop reading
        await asyncio.sleep(1.5)
        sent = spdyapps.observed["/bytes"]["sent"]
        # Kernel socket buffers plus our 256 KiB high-water mark: far from 100 MiB.
        assert sent < 24 * 1024 * 1024, sent
        await asyncio.sleep(0.5)
        assert spdyapps.observed["/bytes"]["sent"] - sent < 1024 * 1024
        for connection in server.server_state.connections:
            transport = getattr(connection, "transport", None)
            if transport is not None:
                assert transport.get_write_buffer_size() <= 512 * 1024
        await session.close()


async def test_50_downloads_cut_by_closing_socket_reach_disconnect() -> None:
    spdyapps.observed.clear()
    async with run_server(app) as (_, port):
        sessions = []
        for _ in range(50):
            session = await RawSession.connect(port)
            sid = session.request("/wait-disconnect")
            sessions.append((session, sid))
        for session, sid in sessions:
            while not session.replies[sid].body:
                await session.pump()
        for session, _ in sessions:
            session.writer.transport.abort()
        for _ in range(200):
            if spdyapps.observed.get("disconnects", 0) == 50:
                break
            await asyncio.sleep(0.02)
        assert spdyapps.observed["disconnects"] == 50


async def test_10000_open_then_reset_streams_leave_server_responsive() -> None:
    """10,000 SYN_STREAM+RST_STREAM pairs in one write: the handlers they start stay within
    the stream slots, and the session ends with a GOAWAY or keeps serving (the engine's
    reset budget decides which); either way the server answers everyone else."""
    holder = spdyapps.Holding(running_target=1)
    async with run_server(holder, max_concurrent_streams=8) as (_, port):
        session = await RawSession.connect(port)
        for _ in range(10000):
            sid = session.conn.send_request(request_headers("/hold"), end_stream=True)
            session.conn.reset_stream(sid, StreamStatus.CANCEL)
        session.flush()
        try:  # until the server closes the session or has nothing more to say
            while await session.pump(timeout=2):
                pass
        except asyncio.TimeoutError:
            pass
        assert holder.started <= 8 and holder.peak <= 8  # reset streams keep their slot
        holder.release.set()
        if holder.started:
            await asyncio.wait_for(holder.all_ended.wait(), 10)
        if session.closed:
            assert session.goaway is not None
            assert session.goaway.status == SessionStatus.PROTOCOL_ERROR
        else:  # the session survived: it serves once the slots are free again
            reply = await session.fetch("/same-session")
            assert reply.status == 200
        other = await RawSession.connect(port)
        reply = await other.fetch("/fine")
        assert reply.status == 200
        await other.close()
        await session.close()


async def test_graceful_shutdown_finishes_inflight_stream() -> None:
    async with run_server(app) as (server, port):
        session = await RawSession.connect(port)
        sid = session.request("/slow?t=0.5")
        await asyncio.sleep(0.1)
        server.should_exit = True
        (reply,) = await session.wait(sid, timeout=10)
        assert bytes(reply.body) == b"slow done"
        assert session.goaway is not None and session.goaway.last_good_stream_id == sid
        assert session.goaway.status == 0


async def test_goaway_ignores_later_streams_but_keeps_decoding() -> None:
    """After the server's GOAWAY a later SYN_STREAM gets no reply, no RST and no app call,
    yet it is inflated: the request trailers that follow it still decode."""
    spdyapps.observed.clear()
    async with run_server(app) as (server, port):
        session = await RawSession.connect(port, record=True)
        # An open request body: the stream stays in flight until its trailers arrive.
        first = session.conn.send_request(request_headers("/slow?t=0"), end_stream=False)
        session.replies[first] = Reply(first)
        session.flush()
        await session.pump()  # the server's SETTINGS: the session is up
        server.should_exit = True
        # Read raw bytes, keeping them from the client engine, until the GOAWAY is in.
        held = b""
        while not held.count(bytes.fromhex("80030007")):
            chunk = await asyncio.wait_for(session.reader.read(65536), 10)
            assert chunk
            held += chunk
        later = session.conn.send_request(request_headers("/later"), end_stream=True)
        session.conn.send_headers(first, [(b"x-trailer", b"1")], end_stream=True)
        session.flush()
        session.feed(held)
        (reply,) = await session.wait(first, timeout=10)
        assert reply.status == 200 and bytes(reply.body) == b"slow done"
        await session.read_until_closed()
        assert session.goaway is not None and session.goaway.last_good_stream_id == first
        assert session.goaway.status == 0
        assert later not in session.rst_streams()
        replied = [int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
                   for _, payload in session.control_frames(2)]  # SYN_REPLY
        assert replied == [first]
    assert "/later" not in spdyapps.observed.get("paths", [])


async def test_ping_echo() -> None:
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port)
        ping_id = session.conn.ping()
        session.flush()
        while not any(isinstance(e, PingAcknowledged) and e.ping_id == ping_id
                      for e in session.events):
            await session.pump()
        await session.close()


async def test_garbage_gets_goaway_and_close() -> None:
    async with run_server(app) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # A SPDY/3 PING with a wrong length: session error.
        writer.write(bytes.fromhex("80030006000000080000000100000000"))
        data = await asyncio.wait_for(reader.read(), 5)
        assert bytes.fromhex("80030007 00000008 00000000 00000001") in data
        writer.close()


def _client_context(protocols: list[str]) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(protocols)
    return context


@pytest.mark.parametrize(("offer", "version", "session_update"), [
    (["spdy/3.1", "http/1.1"], Version.SPDY31, True),
    (["spdy/3"], Version.SPDY3, False),
])
async def test_tls_alpn_selects_spdy(tls_files: tuple[str, str], offer: list[str],
                                     version: Version, session_update: bool) -> None:
    certfile, keyfile = tls_files
    async with run_server(app, ssl_certfile=certfile, ssl_keyfile=keyfile) as (_, port):
        context = _client_context(offer)
        session = await RawSession.connect(port, ssl_context=context, version=version)
        ssl_object = session.writer.get_extra_info("ssl_object")
        assert ssl_object.selected_alpn_protocol() == version.alpn
        reply = await session.fetch("/scope")
        info = json.loads(reply.body)
        assert info["scheme"] == "https"
        assert info["extensions"]["spdy"]["version"] == version.value
        got_update = any(isinstance(e, WindowUpdated) and e.stream_id == 0
                         for e in session.events)
        assert got_update is session_update
        await session.close()


async def test_tls_alpn_http11_falls_back(tls_files: tuple[str, str]) -> None:
    certfile, keyfile = tls_files
    async with run_server(app, ssl_certfile=certfile, ssl_keyfile=keyfile) as (_, port):
        for offer in (["http/1.1"], []):
            context = _client_context(offer) if offer else _client_context(["x"])
            if not offer:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
            writer.write(b"GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = await asyncio.wait_for(reader.read(), 5)
            assert data.startswith(b"HTTP/1.1 200"), data[:50]
            assert data.endswith(b"hello /plain")
            writer.close()


async def test_cleartext_http11_on_same_port() -> None:
    async with run_server(app) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 5)
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"hello /plain")
        writer.close()


async def test_goaway_received_from_client_keeps_inflight() -> None:
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port)
        sid = session.request("/slow?t=0.2")
        session.conn.close_connection()
        session.flush()
        (reply,) = await session.wait(sid)
        assert bytes(reply.body) == b"slow done"
        # The server's own GOAWAY comes only once the stream has finished, then it closes.
        while await session.pump(timeout=10):
            pass
        kinds = [type(e) for e in session.events]
        assert kinds.index(GoAwayReceived) > max(
            i for i, e in enumerate(session.events) if getattr(e, "stream_id", None) == sid)
        assert session.goaway is not None and session.goaway.status == 0
        await session.close()


async def test_head_of_streamed_response_is_one_reply_with_fin() -> None:
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port)
        reply = await session.fetch("/bytes?n=300000", method=b"HEAD")
        assert reply.status == 200 and reply.reply_fin and reply.data_frames == 0
        assert reply.header(b"content-length") == b"300000"
        await session.close()


async def test_invalid_response_header_gives_500_not_reset() -> None:
    async def bad_app(scope: dict, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200,  # type: ignore[operator]
                    "headers": [(b"x-bad", b"a\r\nb")]})
        await send({"type": "http.response.body", "body": b"x"})  # type: ignore[operator]

    async with run_server(bad_app) as (_, port):
        session = await RawSession.connect(port)
        reply = await session.fetch("/")
        assert reply.status == 500
        await session.close()


async def test_first_body_filling_the_window_then_waiting_for_updates() -> None:
    """A reply's first body that fills the stream window exactly goes with its SYN_REPLY;
    the rest of the response waits for WINDOW_UPDATEs."""
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port, window=65536)
        reply = await session.fetch("/bytes?n=200000")
        assert reply.status == 200
        chunk = pattern(65536)
        assert reply.body == (chunk * 4)[:200000]
        small = await session.fetch("/bytes?n=1000")  # fits: reply and body together
        assert small.body == chunk[:1000]
        await session.close()


async def test_first_body_over_the_session_window_goes_after_its_reply() -> None:
    """A first body that does not fit the session window cannot go with its SYN_REPLY in
    one engine call: the reply goes alone and the body follows once the client credits
    the session again."""
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port, session_window=65536)
        first = session.request("/bytes?n=65536")  # takes the whole session window
        second = session.request("/bytes?n=1000")  # finds it closed
        big, small = await session.wait(first, second)
        assert big.body == pattern(65536)
        assert small.status == 200 and small.body == pattern(1000)
        assert small.reset is None and big.reset is None
        await session.close()
