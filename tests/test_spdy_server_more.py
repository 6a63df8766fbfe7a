"""SPDY server behaviour around timers, limits, priorities, pushes and pathsend."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

from spdyasgi.spdy import (
    DataReceived,
    GoAwayReceived,
    PingReceived,
    StreamReset,
    StreamStatus,
)
from tests import spdyapps
from tests.spdyapps import app, pattern
from tests.spdyraw import RawSession
from tests.utils import run_server


async def test_idle_session_gets_goaway_then_close() -> None:
    async with run_server(app, timeout_idle=0.3) as (_, port):
        session = await RawSession.connect(port)
        reply = await session.fetch("/first")
        assert reply.status == 200
        await session.read_until_closed()
        assert session.closed
        assert session.goaway is not None and session.goaway.status == 0
        assert session.goaway.last_good_stream_id == 1


async def test_half_sent_frame_times_out() -> None:
    async with run_server(app, timeout_receive=0.3) as (_, port):
        session = await RawSession.connect(port)
        session.writer.write(bytes.fromhex("80030006000000"))  # 7 of a PING's 12 bytes
        await session.read_until_closed()
        assert session.closed


async def test_ping_liveness_keeps_answering_peer_and_drops_silent_one() -> None:
    async with run_server(app, ping_interval=0.1, ping_timeout=0.3) as (_, port):
        session = await RawSession.connect(port)
        for _ in range(50):
            await session.pump()
            if sum(isinstance(e, PingReceived) for e in session.events) >= 3:
                break
        assert sum(isinstance(e, PingReceived) for e in session.events) >= 3
        assert not session.closed  # our engine echoes every server PING
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(bytes.fromhex("80030006000000040000000f"))  # start a session, never echo
        data = await asyncio.wait_for(reader.read(), 5)  # closed after ping_timeout
        assert data  # it sent SETTINGS, PINGs, then closed
        writer.close()
        await session.close()


async def test_limit_concurrency_answers_503() -> None:
    async with run_server(app, limit_concurrency=1) as (_, port):
        session = await RawSession.connect(port)
        slow = session.request("/slow?t=0.5")
        await asyncio.sleep(0.1)
        busy = await session.fetch("/now")
        assert busy.status == 503
        (reply,) = await session.wait(slow)
        assert bytes(reply.body) == b"slow done"
        await session.close()


async def test_pathsend_streams_file_honouring_small_windows(tmp_path: Path) -> None:
    blob = hashlib.sha256(b"x").digest() * 40000  # 1.25 MB
    path = tmp_path / "blob.bin"
    path.write_bytes(blob)

    async def file_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert "http.response.pathsend" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(blob)).encode())]})
        await send({"type": "http.response.pathsend", "path": str(path)})

    async with run_server(file_app) as (_, port):
        session = await RawSession.connect(port, window=65536, session_window=65536)
        reply = await session.fetch("/blob")
        assert bytes(reply.body) == blob
        await session.close()


async def test_streams_unblocked_together_are_served_by_priority() -> None:
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port, window=65536, session_window=1 << 24,
                                           auto_ack=False)
        size = str(1 << 20)
        low = session.request("/bytes?n=" + size, priority=7)
        high = session.request("/bytes?n=" + size, priority=0)
        while len(session.replies[low].body) < 65536 or len(session.replies[high].body) < 65536:
            await session.pump()
        first_new = len(session.events)
        # Reopen both windows in one write: the low-priority stream's update goes first.
        session.conn.acknowledge_received_data(low, 65536)
        session.conn.acknowledge_received_data(high, 65536)
        session.flush()
        while not any(isinstance(e, DataReceived) for e in session.events[first_new:]):
            await session.pump()
        data = [e for e in session.events[first_new:] if isinstance(e, DataReceived)]
        assert data[0].stream_id == high
        await session.close()


async def test_client_resetting_a_push_keeps_the_page() -> None:
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port)
        sid = session.request("/push")
        while not session.replies[sid].pushes:
            await session.pump()
        push_id = session.replies[sid].pushes[0]
        session.conn.reset_stream(push_id, StreamStatus.CANCEL)
        session.flush()
        (reply,) = await session.wait(sid)
        assert bytes(reply.body) == b"<link href=/pushed.css>"
        reply = await session.fetch("/after-push")
        assert reply.status == 200
        await session.close()


async def test_no_push_after_client_goaway() -> None:
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port)
        sid = session.request("/push")
        session.conn.close_connection()
        session.flush()
        (reply,) = await session.wait(sid)
        assert reply.status == 200 and not reply.pushes
        await session.close()


async def test_grace_period_over_disconnects_and_resets_remaining_streams() -> None:
    spdyapps.observed.clear()
    async with run_server(app, timeout_graceful_shutdown=0.3) as (server, port):
        session = await RawSession.connect(port)
        sid = session.request("/wait-disconnect")
        while not session.replies[sid].body:
            await session.pump()
        server.should_exit = True
        await session.read_until_closed()
        assert session.goaway is not None
        assert session.replies[sid].reset == StreamStatus.CANCEL
    assert spdyapps.observed["disconnects"] == 1


async def test_data_on_unknown_stream_gets_invalid_stream_and_session_survives() -> None:
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port, record=True)
        session.writer.write(bytes.fromhex("0000000b 01000003 616263"))  # DATA stream 11
        reply = await session.fetch("/after")
        assert reply.status == 200
        # The RST is for a stream the client engine never knew: it drops it silently, so
        # look at the bytes themselves.
        assert session.rst_streams() == {11: StreamStatus.INVALID_STREAM}
        resets = [e for e in session.events if isinstance(e, StreamReset)]
        assert not resets
        assert not any(isinstance(e, GoAwayReceived) for e in session.events)
        await session.close()


async def test_goaway_survives_a_peer_that_keeps_sending() -> None:
    async with run_server(app) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        bad_ping = bytes.fromhex("80030006000000080000000100000000")  # wrong length
        writer.write(bad_ping + b"\x00" * (4 << 20))  # and a lot more behind it
        await asyncio.sleep(1.0)  # let the server act before we read anything
        received = b""
        try:
            while True:
                chunk = await asyncio.wait_for(reader.read(65536), 10)
                if not chunk:
                    break
                received += chunk
        except ConnectionResetError:
            pass
        assert bytes.fromhex("80030007 00000008 00000000 00000001") in received
        writer.close()


async def test_eight_concurrent_downloads_with_huge_windows_complete() -> None:
    # Regression: the scheduler's byte budget ran out while the socket kept up, so no
    # pause/resume ever came and the session stalled for good.
    chunk = pattern(1 << 20)

    async def big_chunks(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(15):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": chunk})

    async with run_server(big_chunks, max_pending_output=256 * 1024) as (_, port):
        session = await RawSession.connect(port, window=1 << 30, session_window=1 << 30)
        ids = [session.request("/") for _ in range(8)]
        replies = await session.wait(*ids, timeout=30)
        assert [len(reply.body) for reply in replies] == [16 << 20] * 8
        await session.close()


async def test_busy_session_outlives_the_idle_timeout() -> None:
    async with run_server(app, timeout_idle=0.5) as (_, port):
        session = await RawSession.connect(port)
        for i in range(8):  # 1.6 s of traffic, never 0.5 s without a request
            reply = await session.fetch(f"/tick{i}")
            assert reply.status == 200
            await asyncio.sleep(0.2)
        assert session.goaway is None and not session.closed
        await session.read_until_closed()  # then idle: GOAWAY and close
        assert session.goaway is not None and session.goaway.status == 0


async def test_handler_tasks_named_and_task_factory_honoured() -> None:
    """Handlers run in Tasks named "spdyasgi-stream" (made directly when the loop has no
    task factory); a loop with a factory still gets every handler task through it."""
    seen: list[tuple[str, bool]] = []

    async def named(scope: dict[str, Any], receive: Any, send: Any) -> None:
        task = asyncio.current_task()
        assert task is not None
        seen.append((task.get_name(), getattr(task, "from_factory", False)))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, **kwargs)
        task.from_factory = True  # type: ignore[attr-defined]
        return task

    loop = asyncio.get_running_loop()
    async with run_server(named) as (_, port):
        session = await RawSession.connect(port)
        assert (await session.fetch("/")).body == b"ok"
        loop.set_task_factory(factory)
        try:
            assert (await session.fetch("/")).body == b"ok"
        finally:
            loop.set_task_factory(None)
        await session.close()
    assert seen == [("spdyasgi-stream", False), ("spdyasgi-stream", True)]
