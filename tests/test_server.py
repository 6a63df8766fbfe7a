"""Server life: start/stop from code, graceful drain, forced close, signals."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from spdyasgi.config import Config
from spdyasgi.server import BindError, Server
from tests.procs import free_port
from tests.utils import Message, hello_app, open_conn, read_response, run_server

pytestmark = pytest.mark.timeout(30)
ROOT = Path(__file__).resolve().parent.parent


async def _until(condition: Any, timeout: float = 10) -> None:
    """Wait (bounded) until ``condition()`` holds, checking at every loop turn."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def slow_app(delay: float, events: list[str], entered: asyncio.Event | None = None) -> Any:
    """Answers after ``delay`` seconds of "work"; ``entered`` is set when a request starts."""

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if entered is not None:
            entered.set()
        await asyncio.sleep(delay)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"slow done"})
        events.append("done")

    return app


async def test_start_stop_from_code() -> None:
    config = Config(hello_app, port=0, lifespan="off", log_config=None)
    server = Server(config)
    task = asyncio.create_task(server.serve())
    await _until(lambda: server.started)
    port = server.servers[0].sockets[0].getsockname()[1]
    reader, writer = await open_conn(port)
    writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await read_response(reader))[0] == 200
    server.should_exit = True
    await asyncio.wait_for(task, 5)
    assert await asyncio.wait_for(reader.read(), 5) == b""  # idle keep-alive closed
    with pytest.raises(OSError):
        await open_conn(port)


async def test_sockets_argument_and_default_headers() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = Config(
        hello_app, lifespan="off", log_config=None, headers=["X-Extra: 1"], server_header=False
    )
    server = Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await _until(lambda: server.started)
    reader, writer = await open_conn(port)
    writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    _, headers, _ = await read_response(reader)
    assert b"server" not in headers and headers[b"x-extra"] == b"1" and b"date" in headers
    server.should_exit = True
    await asyncio.wait_for(task, 5)


async def test_graceful_shutdown_finishes_in_flight_request() -> None:
    events: list[str] = []
    entered = asyncio.Event()
    async with run_server(slow_app(0.5, events, entered)) as (server, port):
        reader, writer = await open_conn(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await asyncio.wait_for(entered.wait(), 10)  # in flight
        server.should_exit = True
        status, headers, body = await read_response(reader)
        assert (status, body) == (200, b"slow done")
        assert headers[b"connection"] == b"close"
    assert events == ["done"]


async def test_grace_period_expires_and_app_sees_disconnect() -> None:
    seen: list[str] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"tick", "more_body": True})
        seen.append((await receive())["type"])  # request body done
        seen.append((await receive())["type"])  # then the disconnect

    started = time.monotonic()
    async with run_server(app, timeout_graceful_shutdown=0.3) as (server, port):
        reader, writer = await open_conn(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await asyncio.wait_for(reader.readuntil(b"tick"), 5)
        server.should_exit = True
    assert time.monotonic() - started < 5
    assert seen == ["http.request", "http.disconnect"]


async def test_app_ignoring_disconnect_is_cancelled() -> None:
    entered = asyncio.Event()

    async def app(scope: Message, receive: Any, send: Any) -> None:
        entered.set()
        await asyncio.sleep(3600)  # ignores the disconnect

    started = time.monotonic()
    async with run_server(app, timeout_graceful_shutdown=0.1) as (server, port):
        _, writer = await open_conn(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await asyncio.wait_for(entered.wait(), 10)
    assert time.monotonic() - started < 5
    assert not server.server_state.tasks


async def test_second_signal_forces_exit() -> None:
    entered = asyncio.Event()
    async with run_server(slow_app(3600, [], entered)) as (server, port):
        _, writer = await open_conn(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await asyncio.wait_for(entered.wait(), 10)
        server.handle_exit(signal.SIGTERM)
        await _until(lambda: not server.servers[0].is_serving())  # the drain has begun
        assert server.should_exit and not server.force_exit
        server.handle_exit(signal.SIGTERM)
        assert server.force_exit


async def test_limit_max_requests() -> None:
    async with run_server(hello_app, limit_max_requests=2) as (server, port):
        reader, writer = await open_conn(port)
        for _ in range(2):
            writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            await read_response(reader)
        await _until(lambda: not server.servers[0].is_serving())


async def test_bind_failure_raises_and_sets_startup_failed() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    server = Server(Config(hello_app, port=port, lifespan="off", log_config=None))
    with pytest.raises(BindError, match=f"could not bind on 127.0.0.1:{port}"):
        await asyncio.wait_for(server.serve(), 5)
    assert server.startup_failed and not server.started
    taken.close()


def test_run_exits_3_on_lifespan_failure(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        from spdyasgi.config import Config
        from spdyasgi.server import BindError, Server

        async def app(scope, receive, send):
            await receive()
            await send({"type": "lifespan.startup.failed", "message": "db down"})

        Server(Config(app, port=0, lifespan="on")).run()
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=20, cwd=ROOT
    )
    assert proc.returncode == 3
    assert "db down" in proc.stderr


APP_MODULE = """
import asyncio

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                print("LIFESPAN SHUTDOWN", flush=True)
                await send({"type": "lifespan.shutdown.complete"})
                return
    print("REQUEST STARTED", flush=True)
    await asyncio.sleep(1.0)  # the slow work SIGTERM must not cut short
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"finished"})
"""


def _read_until(proc: subprocess.Popen[bytes], marker: bytes, timeout: float) -> bytes:
    """Read the child's stdout (raw fd: nothing left in a buffer) until ``marker``."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {marker!r} from the server; got {data!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 65536)
            assert chunk, f"the server closed stdout; got {data!r}"
            data += chunk
    return data


def test_sigterm_with_slow_request_in_flight(tmp_path: Path) -> None:
    (tmp_path / "slowapp.py").write_text(APP_MODULE)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spdyasgi",
            "slowapp:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                client = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.05)
        client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        early = _read_until(proc, b"REQUEST STARTED\n", 15)  # in flight
        proc.send_signal(signal.SIGTERM)
        data = b""
        while not data.endswith(b"finished"):
            chunk = client.recv(65536)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"finished")
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert b"LIFESPAN SHUTDOWN" in early + out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
