"""Stream slots, cancel bursts, slow uploads, client GOAWAY and pseudo-headers over sockets.

Stream slots: a stream whose handler still runs holds one of the session's
`max_concurrent_streams` slots until the handler returns, even after the client reset it;
streams over the limit get RST_STREAM REFUSED_STREAM without any app code, and the session
lives on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

import pytest

from spdyasgi.spdy import SessionStatus, StreamStatus
from tests import spdyapps
from tests.spdyapps import Holding, app, pattern
from tests.spdyraw import RawSession, Reply, request_headers
from tests.utils import run_server


def _open(session: RawSession, path: str) -> int:
    sid = session.conn.send_request(request_headers(path), end_stream=True)
    session.replies[sid] = Reply(sid)
    return sid


async def _pump_for(session: RawSession, seconds: float) -> None:
    """Keep reading (and acknowledging) for `seconds`: the client's traffic shape."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            if not await session.pump(timeout=left):
                return
        except asyncio.TimeoutError:
            return


async def test_reset_streams_keep_their_slot_until_the_handler_returns() -> None:
    holder = Holding(running_target=2)
    async with run_server(holder, max_concurrent_streams=2) as (_, port):
        session = await RawSession.connect(port)
        first, second = _open(session, "/hold"), _open(session, "/hold")
        session.flush()
        await asyncio.wait_for(holder.reached.wait(), 10)
        # The client resets both, then opens more in the same write: the handlers of the
        # reset streams still run, so every new stream is refused, with no app call.
        session.conn.reset_stream(first, StreamStatus.CANCEL)
        session.conn.reset_stream(second, StreamStatus.CANCEL)
        refused = [_open(session, "/hold") for _ in range(3)]
        session.flush()
        replies = await session.wait(*refused)
        assert [reply.reset for reply in replies] == [StreamStatus.REFUSED_STREAM] * 3
        # Resetting and reopening one at a time (separate reads) gains nothing either.
        for _ in range(20):
            sid = _open(session, "/hold")
            session.flush()
            (reply,) = await session.wait(sid)
            assert reply.reset == StreamStatus.REFUSED_STREAM
            session.conn.reset_stream(sid, StreamStatus.CANCEL)  # a no-op for the server
        assert holder.started == 2 and holder.peak == 2
        assert session.goaway is None
        # Once the handlers return, the slots are free: the same session is served again.
        holder.release.set()
        await asyncio.wait_for(holder.all_ended.wait(), 10)
        reply = await session.fetch("/after")
        assert reply.status == 200 and bytes(reply.body) == b"hello /after"
        assert holder.started == 2
        await session.close()


async def test_stream_opened_and_reset_in_one_read_runs_no_handler() -> None:
    holder = Holding(running_target=1)
    async with run_server(holder) as (_, port):
        session = await RawSession.connect(port)
        for _ in range(50):
            sid = _open(session, "/hold")
            session.conn.reset_stream(sid, StreamStatus.CANCEL)
        session.flush()  # 50 SYN_STREAM + RST_STREAM pairs in one small write
        reply = await session.fetch("/after")  # the server has read all of it by now
        assert reply.status == 200
        assert holder.started == 0
        assert session.goaway is None
        await session.close()


# Regression: the old rapid-reset budget (100 resets, refilling 10/s) closed the whole
# session for this burst pattern; see docs/spdy.md, "Rapid reset and abuse limits".
async def test_media_player_cancel_bursts_leave_a_download_intact() -> None:
    size = 24 << 20
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port, window=1 << 20, session_window=1 << 24)
        download = session.request(f"/bytes?n={size}")
        for _ in range(4):
            # A player probing a file: 50 Range requests, cancelled ~50 ms later.
            burst = [_open(session, "/bytes?n=1048576") for _ in range(50)]
            session.flush()
            await _pump_for(session, 0.05)
            for sid in burst:
                session.conn.reset_stream(sid, StreamStatus.CANCEL)
            session.flush()
            await _pump_for(session, 0.2)
        (reply,) = await session.wait(download, timeout=60)
        assert session.goaway is None, session.goaway
        assert reply.reset is None and reply.ended
        chunk = pattern(65536)
        body = bytes(reply.body)
        assert len(body) == size
        for offset in range(0, size, 65536):  # every byte, and where it went wrong
            assert body[offset:offset + 65536] == chunk[:min(65536, size - offset)], offset
        assert (await session.fetch("/after")).status == 200
        await session.close()


async def test_steady_upload_longer_than_the_receive_timeout_completes() -> None:
    """Regression: the timeout measured how long the input buffer had been non-empty, so
    an upload whose reads never end on a frame boundary was closed at timeout_receive."""
    body = pattern(60000)
    async with run_server(app, timeout_receive=0.5) as (_, port):
        session = await RawSession.connect(port)
        conn = session.conn
        sid = conn.send_request(request_headers("/hash", method=b"POST"), end_stream=False)
        session.replies[sid] = Reply(sid)
        for offset in range(0, len(body), 16384):
            piece = body[offset:offset + 16384]
            conn.send_data(sid, piece, end_stream=offset + 16384 >= len(body))
        wire = conn.data_to_send()
        loop = asyncio.get_running_loop()
        started = loop.time()
        for offset in range(0, len(wire), 1000):  # 25 KB/s: ~2.4 s, five timeouts long
            session.writer.write(wire[offset:offset + 1000])
            await session.writer.drain()
            await asyncio.sleep(0.04)  # the upload's pace, not a wait for an event
        assert loop.time() - started > 1.0
        (reply,) = await session.wait(sid)
        assert reply.status == 200
        assert bytes(reply.body) == f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()
        assert session.goaway is None
        await session.close()


async def test_stalled_partial_frame_gets_goaway() -> None:
    async with run_server(app, timeout_receive=0.3) as (_, port):
        session = await RawSession.connect(port)
        session.writer.write(bytes.fromhex("80030006000000"))  # 7 of a PING's 12 bytes
        await session.read_until_closed()
        assert session.closed
        assert session.goaway is not None
        assert session.goaway.status == SessionStatus.PROTOCOL_ERROR


async def test_trickled_frame_slowloris_is_closed() -> None:
    async with run_server(app, timeout_receive=0.5) as (_, port):
        session = await RawSession.connect(port)
        conn = session.conn
        conn.send_request(request_headers("/never"), end_stream=True)
        frame = conn.data_to_send()  # one SYN_STREAM, sent a byte every 100 ms

        async def trickle() -> None:
            for byte in frame[:-1]:
                session.writer.write(bytes([byte]))
                await asyncio.sleep(0.1)

        loop = asyncio.get_running_loop()
        started = loop.time()
        task = asyncio.create_task(trickle())
        try:
            await session.read_until_closed()
        finally:
            task.cancel()
        assert session.closed and loop.time() - started < 5
        assert session.goaway is not None
        assert session.goaway.status == SessionStatus.PROTOCOL_ERROR


async def test_client_goaway_on_idle_session_closes_it() -> None:
    """Regression: the session stayed open until timeout_idle (300 s)."""
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port)
        assert (await session.fetch("/first")).status == 200
        session.conn.close_connection()
        session.flush()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await session.read_until_closed(timeout=10)
        assert session.closed and loop.time() - started < 5
        assert session.goaway is not None and session.goaway.status == 0
        assert session.goaway.last_good_stream_id == 1


async def test_app_pseudo_header_gives_500_and_one_log_line(
        caplog: pytest.LogCaptureFixture) -> None:
    async def redirecting(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b":status", b"302"), (b"location", b"/x")]})
        await send({"type": "http.response.body", "body": b"moved"})

    caplog.set_level(logging.INFO, logger="spdyasgi.error")
    async with run_server(redirecting) as (_, port):
        session = await RawSession.connect(port)
        reply = await session.fetch("/")
        assert reply.status == 500
        assert [name for name, _ in reply.headers].count(b":status") == 1
        assert bytes(reply.body) == b"Internal Server Error"
        await session.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and ":status" in str(errors[0].exc_info[1] if errors[0].exc_info
                                                 else errors[0].getMessage())


async def test_app_pseudo_header_in_trailers_resets_the_stream(
        caplog: pytest.LogCaptureFixture) -> None:
    async def bad_trailers(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [],
                    "trailers": True})
        await send({"type": "http.response.body", "body": b"data"})
        await send({"type": "http.response.trailers", "headers": [(b":status", b"1")]})

    caplog.set_level(logging.INFO, logger="spdyasgi.error")
    async with run_server(bad_trailers) as (_, port):
        session = await RawSession.connect(port)
        reply = await session.fetch("/")
        assert reply.reset == StreamStatus.INTERNAL_ERROR and not reply.trailers
        assert (await session.fetch("/again")).reset == StreamStatus.INTERNAL_ERROR
        await session.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2  # one line per failed stream


@pytest.mark.parametrize("high_water", [64 * 1024, 4 << 20])
async def test_equal_priority_downloads_progress_together(high_water: int) -> None:
    """Regression: a handler sending in a loop to a fast reader never suspended (direct
    sends, transport never paused), so a second download on the session got almost
    nothing until the first had finished."""
    size = 32 << 20
    async with run_server(app, max_pending_output=high_water) as (_, port):
        session = await RawSession.connect(port, window=1 << 30, session_window=1 << 30)
        first, second = (session.request(f"/bytes?n={size}") for _ in range(2))
        while not session.replies[first].ended:
            assert await session.pump()
        assert len(session.replies[second].body) >= size // 2
        replies = await session.wait(first, second, timeout=60)
        chunk = pattern(65536) * (size // 65536)
        assert all(bytes(reply.body) == chunk for reply in replies)
        await session.close()


async def test_client_fin_gets_goaway_and_disconnects_the_handlers() -> None:
    """The client's FIN ends the session with a GOAWAY (before: a bare close), and the
    handlers still running get http.disconnect."""
    spdyapps.observed.clear()
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port)
        sid = session.request("/wait-disconnect")
        while not session.replies[sid].body:
            await session.pump()
        session.writer.write_eof()
        await session.read_until_closed()
        assert session.goaway is not None and session.goaway.status == 0
        for _ in range(500):  # bounded wait for the handler to see the disconnect
            if spdyapps.observed.get("disconnects") == 1:
                break
            await asyncio.sleep(0.01)
        assert spdyapps.observed["disconnects"] == 1


async def test_rapid_reset_budget_is_configurable() -> None:
    """--rapid-reset-burst/-rate reach the engine: a tiny budget ends the session with
    GOAWAY PROTOCOL_ERROR after a few open+cancel pairs, while the default keeps it."""
    async with run_server(app, rapid_reset_burst=5, rapid_reset_rate=0.01) as (_, port):
        session = await RawSession.connect(port)
        for _ in range(20):
            session.conn.reset_stream(_open(session, "/"), StreamStatus.CANCEL)
        session.flush()
        await session.read_until_closed()
        assert session.goaway is not None
        assert session.goaway.status == SessionStatus.PROTOCOL_ERROR
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port)
        for _ in range(20):
            session.conn.reset_stream(_open(session, "/"), StreamStatus.CANCEL)
        session.flush()
        assert (await session.fetch("/after")).status == 200
        assert session.goaway is None
        await session.close()


async def test_receive_min_rate_zero_still_closes_a_silent_partial_frame() -> None:
    async with run_server(app, timeout_receive=0.3, receive_min_rate=0) as (_, port):
        session = await RawSession.connect(port)
        session.writer.write(bytes.fromhex("80030006000000"))  # 7 of a PING's 12 bytes
        await session.read_until_closed()
        assert session.goaway is not None
        assert session.goaway.status == SessionStatus.PROTOCOL_ERROR
