"""WebSockets under ``--workers 2`` and the gunicorn worker (real processes), and the
``--timeout-worker-healthcheck`` supervisor replacing a frozen worker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.procs import free_port, spdyasgi_process, wait_listening
from tests.spdyraw import RawSession

ROOT = Path(__file__).resolve().parent.parent
APP = "tests.test_websockets_app:app"


async def exercise(port: int) -> None:
    """Echo, 1 MiB, subprotocol, server close code, and SPDY on the same port."""
    uri = f"ws://127.0.0.1:{port}"
    session = await RawSession.connect(port)
    try:
        async with connect(f"{uri}/echo", subprotocols=["chat"], max_size=None,
                           open_timeout=20) as client:
            assert client.subprotocol == "chat"
            for i in range(100):
                await client.send(f"m{i}")
                assert await asyncio.wait_for(client.recv(), 20) == f"m{i}"
            big = os.urandom(1 << 20)
            await client.send(big)
            assert await asyncio.wait_for(client.recv(), 30) == big
            reply = await session.fetch("/")
            assert reply.status == 200 and bytes(reply.body) == b"hello"
    finally:
        await session.close()
    async with connect(f"{uri}/close", open_timeout=20) as client:
        await client.send("4003 done")
        await asyncio.wait_for(client.wait_closed(), 20)
        assert client.close_code == 4003


@pytest.mark.parametrize("ws", ["websockets", "wsproto"])
async def test_workers_2(tmp_path: Path, ws: str) -> None:
    with spdyasgi_process(tmp_path, APP, "--workers", "2", "--ws", ws) as server:
        for _ in range(4):  # several connections: both workers get some
            await exercise(server.port)
        server.signal(signal.SIGTERM)
        assert await server.wait(30) == 0, server.stderr()
    assert "Traceback" not in server.stderr()


async def test_gunicorn_worker(tmp_path: Path) -> None:
    pytest.importorskip("gunicorn")
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-k", "spdyasgi.workers.SpdyWorker", "-w", "2",
         "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5", APP],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        await asyncio.to_thread(wait_listening, port, proc)
        for _ in range(3):
            await exercise(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, stderr = await asyncio.to_thread(proc.communicate, None, 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr


def _workers(parent: int) -> set[int]:
    """Children of ``parent`` that are spawned workers (not the resource tracker)."""
    pids: set[int] = set()
    for task in Path(f"/proc/{parent}/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:
                pids.add(int(pid))
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_frozen_worker_is_replaced(tmp_path: Path) -> None:
    with spdyasgi_process(
        tmp_path, APP, "--workers", "2", "--timeout-worker-healthcheck", "1"
    ) as server:
        deadline = time.monotonic() + 30
        while len(before := _workers(server.pid)) < 2:
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.1)
        frozen = min(before)
        os.kill(frozen, signal.SIGSTOP)  # alive, but it can no longer answer pings
        deadline = time.monotonic() + 30
        while True:
            now = _workers(server.pid)
            if frozen not in now and len(now) == 2:
                break
            assert time.monotonic() < deadline, f"frozen worker not replaced: {now}"
            time.sleep(0.1)
        assert "did not answer the health check" in server.stderr()
        server.signal(signal.SIGTERM)
        assert server.proc.wait(30) == 0, server.stderr()
