"""Signals against a real ``python -m spdyasgi`` process, with a SPDY session in flight.

SIGTERM with a slow stream in flight: stop accepting, GOAWAY(OK, last good = that stream),
let the stream finish, exit 0 without a traceback.  A second signal during the grace period
forces a prompt exit; ``--timeout-graceful-shutdown`` resets what remains.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from spdyasgi.spdy import StreamStatus
from tests.procs import ServerProcess
from tests.procs import spdyasgi_process as _spdyasgi_process
from tests.spdyraw import RawSession

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@contextlib.contextmanager
def spdyasgi_process(tmp_path: Path, *args: str) -> Iterator[ServerProcess]:
    """``python -m spdyasgi tests.spdyapps:app --host 127.0.0.1 --port P *args``."""
    with _spdyasgi_process(tmp_path, "tests.spdyapps:app", *args) as server:
        yield server


async def _read_until_closed(session: RawSession, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while await session.pump(timeout=max(deadline - loop.time(), 0.01)):
            pass
    except (ConnectionError, OSError):
        session.closed = True


def _no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert "Exception in ASGI application" not in stderr, stderr


async def test_sigterm_finishes_inflight_stream_and_exits_cleanly(tmp_path: Path) -> None:
    with spdyasgi_process(tmp_path) as server:
        session = await RawSession.connect(server.port)
        first = await session.fetch("/warm-up")
        assert bytes(first.body) == b"hello /warm-up"
        sid = session.request("/slow?t=1.5")
        await asyncio.sleep(0.3)
        signalled = time.monotonic()
        server.signal(signal.SIGTERM)

        # GOAWAY comes first, while the slow stream is still running
        while session.goaway is None:
            assert await session.pump(timeout=5), "connection closed before GOAWAY"
        assert time.monotonic() - signalled < 1.0
        assert session.goaway.status == 0
        assert session.goaway.last_good_stream_id == sid
        reply = session.replies[sid]
        assert not reply.ended

        # the listening socket is closed: no new connections while draining
        with pytest.raises(OSError):
            _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.close()

        (reply,) = await session.wait(sid, timeout=10)
        assert reply.status == 200 and reply.reset is None
        assert bytes(reply.body) == b"slow done"
        assert time.monotonic() - signalled >= 1.0  # it really waited for the stream

        await _read_until_closed(session, timeout=10)  # the server ends the session
        assert session.closed
        assert await server.wait(10) == 0
        stderr = server.stderr()
        _no_traceback(stderr)
        assert "Shutting down" in stderr and "Finished server process" in stderr
        await session.close()


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_second_signal_forces_prompt_exit(tmp_path: Path, second: int) -> None:
    with spdyasgi_process(tmp_path) as server:
        session = await RawSession.connect(server.port)
        sid = session.request("/wait-disconnect")
        while not session.replies[sid].body:
            await session.pump(timeout=5)
        slow = session.request("/slow?t=30")  # ignores disconnects: must be cancelled
        await asyncio.sleep(0.2)
        server.signal(signal.SIGTERM)
        while session.goaway is None:
            assert await session.pump(timeout=5), "connection closed before GOAWAY"
        assert session.goaway.last_good_stream_id == slow
        await asyncio.sleep(0.3)  # well inside the (unbounded) grace period
        assert server.proc.poll() is None, "exited before the second signal"

        forced = time.monotonic()
        server.signal(second)
        code = await server.wait(5)
        elapsed = time.monotonic() - forced
        # force_close, then at most FORCE_GRACE (1 s) for tasks and 1 s after cancelling
        assert elapsed < 3.0, elapsed
        assert code is not None
        await _read_until_closed(session, timeout=5)
        assert session.closed
        assert not session.replies[slow].ended or session.replies[slow].reset is not None
        assert bytes(session.replies[slow].body) != b"slow done"
        _no_traceback(server.stderr())
        await session.close()


async def test_grace_period_expiry_resets_remaining_streams(tmp_path: Path) -> None:
    with spdyasgi_process(tmp_path, "--timeout-graceful-shutdown", "0.5") as server:
        session = await RawSession.connect(server.port)
        waiting = session.request("/wait-disconnect")
        quick = session.request("/slow?t=0.2")
        while not session.replies[waiting].body:
            await session.pump(timeout=5)
        signalled = time.monotonic()
        server.signal(signal.SIGTERM)
        (reply,) = await session.wait(quick, timeout=5)
        assert bytes(reply.body) == b"slow done"  # finished inside the grace period
        (reply,) = await session.wait(waiting, timeout=5)
        assert reply.reset == StreamStatus.CANCEL  # what remained after 0.5 s
        assert time.monotonic() - signalled >= 0.4
        await _read_until_closed(session, timeout=5)
        assert await server.wait(10) == 0
        stderr = server.stderr()
        _no_traceback(stderr)
        assert "Finished server process" in stderr
        await session.close()


@pytest.mark.parametrize("lifespan", ["on", "auto"])
async def test_forced_exit_does_not_blame_the_lifespan(tmp_path: Path, lifespan: str) -> None:
    with spdyasgi_process(tmp_path, "--lifespan", lifespan) as server:
        session = await RawSession.connect(server.port)
        session.request("/slow?t=30")
        await asyncio.sleep(0.2)
        server.signal(signal.SIGTERM)
        while session.goaway is None:
            assert await session.pump(timeout=5), "connection closed before GOAWAY"
        server.signal(signal.SIGINT)
        await server.wait(5)
        await session.close()
        stderr = server.stderr()
        assert "Application startup complete." in stderr
        assert "Exception in 'lifespan' protocol" not in stderr, stderr
        assert "appears unsupported" not in stderr, stderr
        _no_traceback(stderr)
