"""gunicorn with `spdyasgi.workers.SpdyWorker` serves SPDY and HTTP/1.1, and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from spdyasgi.client import connect
from tests.procs import free_port, wait_listening

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("gunicorn")


@pytest.mark.parametrize("worker", ["spdyasgi.workers.SpdyWorker",
                                    "spdyasgi.workers.SpdyUvloopWorker"])
async def test_gunicorn_worker_serves_spdy_and_http11(worker: str) -> None:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-k", worker, "-w", "2", "-b", f"127.0.0.1:{port}",
         "--graceful-timeout", "5", "examples.hello:app"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        wait_listening(port, proc)
        async with connect(f"http://127.0.0.1:{port}") as client:
            response = await client.get("/")
            body = await response.read()
        assert response.status == 200
        assert b"SPDY/3.1" in body
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 200") and b"HTTP/1.1" in data.split(b"\r\n\r\n", 1)[1]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, stderr = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr
