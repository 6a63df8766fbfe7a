"""spdyasgi-client and spdyasgi-bench as a user runs them, over real sockets on 127.0.0.1:
every timeout fires with exit 28 (connect, TLS handshake, idle read, --max-time), -f prints
no body and exits 22, --unix-socket reaches `spdyasgi --uds`, the CLI echoes 20 MiB, and the
bench uploads 2 MiB bodies and reports stalled streams as timeouts instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spdyasgi import __version__
from tests.utils import run_server

from . import duplex_app

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def _tool(module: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True,
                          timeout=timeout, cwd=ROOT, env=ENV)


def client(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    return _tool("spdyasgi.client.cli", *args, timeout=timeout)


async def aclient(*args: str) -> subprocess.CompletedProcess[bytes]:
    return await asyncio.to_thread(client, *args)


def bench(*args: str) -> tuple[subprocess.CompletedProcess[bytes], dict[str, Any]]:
    proc = _tool("spdyasgi.client.bench", *args)
    line = next(x for x in proc.stdout.decode().splitlines() if x.startswith("RESULT "))
    return proc, json.loads(line[len("RESULT "):])


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """Accepts connections and reads whatever comes, never answering a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    conns: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conn.setblocking(False)
            conns.append(conn)
            for other in conns:  # keep reading so the client's writes never block
                with contextlib.suppress(OSError):
                    while other.recv(1 << 20):
                        pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in conns:
            conn.close()
        listener.close()


@contextlib.contextmanager
def full_backlog() -> Iterator[int]:
    """A listening socket whose accept queue is full: a new connect never completes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler: list[socket.socket] = []
    for _ in range(8):  # fill the queue until a connect no longer completes
        sock = socket.socket()
        sock.settimeout(0.5)
        try:
            sock.connect(("127.0.0.1", port))
        except OSError:
            sock.close()
            break
        filler.append(sock)
    try:
        yield port
    finally:
        for sock in filler:
            sock.close()
        listener.close()


def test_connect_timeout_exit_28() -> None:
    with full_backlog() as port:
        started = time.monotonic()
        proc = client(f"http://127.0.0.1:{port}/", "--connect-timeout", "1")
        elapsed = time.monotonic() - started
    assert proc.returncode == 28, proc.stderr
    assert b"timed out after 1 s" in proc.stderr
    assert elapsed < 30


def test_tls_handshake_and_idle_read_timeouts_exit_28(tmp_path: Path) -> None:
    upload = tmp_path / "body.bin"
    upload.write_bytes(b"x" * 200_000)
    with silent_server() as port:
        proc = client(f"https://127.0.0.1:{port}/", "-k", "--connect-timeout", "1")
        assert proc.returncode == 28, proc.stderr
        assert b"TLS handshake with 127.0.0.1 port" in proc.stderr
        assert b"timed out after 1 s" in proc.stderr

        proc = client(f"http://127.0.0.1:{port}/", "--read-timeout", "1")
        assert proc.returncode == 28, proc.stderr
        assert b"no data for 1 s on stream 1 (read timeout)" in proc.stderr

        # Uploading into a server that never opens its window: the same idle timeout.
        proc = client(f"http://127.0.0.1:{port}/", "--read-timeout", "1", "-d", f"@{upload}")
        assert proc.returncode == 28, proc.stderr


async def test_max_time_on_an_endless_response_exit_28() -> None:
    async with run_server(duplex_app.app) as (_, port):
        started = time.monotonic()
        proc = await aclient(f"http://127.0.0.1:{port}/drip", "--max-time", "1.5")
        elapsed = time.monotonic() - started
    assert proc.returncode == 28, proc.stderr
    assert proc.stdout.startswith(b"drip\n")  # the response was flowing
    assert b"operation timed out after 1.5 seconds" in proc.stderr
    assert elapsed < 30


async def test_max_time_fires_while_a_write_blocks_the_loop() -> None:
    """stdout is a pipe nobody reads: the blocked write stalls the event loop, and the
    watchdog thread still ends the run with exit 28."""
    async with run_server(duplex_app.app) as (_, port):
        proc = await asyncio.to_thread(
            subprocess.Popen,
            [sys.executable, "-m", "spdyasgi.client.cli", f"http://127.0.0.1:{port}/bytes?n="
             f"{1 << 30}", "--max-time", "1"],
            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            code = await asyncio.to_thread(proc.wait, 60)
        finally:
            if proc.poll() is None:
                proc.kill()
            assert proc.stdout is not None and proc.stderr is not None
            proc.stdout.close()
            err = proc.stderr.read()
            proc.stderr.close()
    assert code == 28, err
    assert b"operation timed out after 1 seconds" in err


async def test_fail_prints_no_body_and_exits_22() -> None:
    async with run_server(duplex_app.app) as (_, port):
        proc = await aclient(f"http://127.0.0.1:{port}/status/404", "-f", "-i")
        assert proc.returncode == 22, proc.stderr
        assert proc.stdout == b""
        assert b"returned error: 404" in proc.stderr
        proc = await aclient(f"http://127.0.0.1:{port}/status/404")
        assert proc.returncode == 0 and proc.stdout == b"status 404 body"
        proc = await aclient(f"http://127.0.0.1:{port}/status/201", "-f", "-i")
        assert proc.returncode == 0
        assert proc.stdout.startswith(b"HTTP/1.1 201 Created\r\n")


def test_version_and_help() -> None:
    proc = client("--version")
    assert proc.returncode == 0
    assert proc.stdout.decode().startswith(f"spdyasgi-client {__version__}")
    text = client("--help").stdout.decode()
    for option in ("-H, --header", "--cacert", "--proto", "--connect-timeout",
                   "--read-timeout", "--unix-socket", "--max-time", "--version"):
        line = next(x for x in text.splitlines() if option in x)
        assert len(line.strip()) > len(option) + 20, line  # followed by its help text
    text = _tool("spdyasgi.client.bench", "--help").stdout.decode()
    for option in ("-H, --header", "--cacert", "--proto", "--loop", "--connect-timeout"):
        line = next(x for x in text.splitlines() if option in x)
        assert len(line.strip()) > len(option) + 20, line


def test_unix_socket_against_spdyasgi_uds(tmp_path: Path) -> None:
    path = tmp_path / "spdy.sock"
    server = subprocess.Popen(
        [sys.executable, "-m", "spdyasgi", "tests.client.duplex_app:app", "--uds", str(path)],
        cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not path.exists():
            assert server.poll() is None, server.stderr.read() if server.stderr else b""
            assert time.monotonic() < deadline, "the server did not create its socket"
            time.sleep(0.05)
        proc = client("--unix-socket", str(path), "http://localhost/hi", "-i")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(b"HTTP/1.1 200 OK\r\n")
        assert proc.stdout.endswith(b"\r\n\r\nhello /hi")
        body = tmp_path / "body.bin"
        body.write_bytes(os.urandom(3 * MIB))
        out = tmp_path / "out.bin"
        proc = client("--unix-socket", str(path), "http://localhost/echo", "-d", f"@{body}",
                      "-o", str(out))
        assert proc.returncode == 0, proc.stderr
        assert out.read_bytes() == body.read_bytes()
        proc = client("--unix-socket", str(tmp_path / "missing.sock"), "http://localhost/")
        assert proc.returncode == 7
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


@pytest.mark.slow
@pytest.mark.parametrize("tls", [False, True], ids=["cleartext", "tls"])
async def test_cli_echo_20mib(tls: bool, tls_files: tuple[str, str], tmp_path: Path) -> None:
    """The issue's command: `-d @20mb.bin -o echo.bin` against a streaming echo."""
    body = tmp_path / "20mb.bin"
    body.write_bytes(os.urandom(20 * MIB))
    out = tmp_path / "echo.bin"
    options: dict[str, Any] = {}
    if tls:
        options = {"ssl_certfile": tls_files[0], "ssl_keyfile": tls_files[1]}
    async with run_server(duplex_app.app, **options) as (_, port):
        proc = await aclient(f"{'https' if tls else 'http'}://127.0.0.1:{port}/echo", "-k",
                             "-d", f"@{body}", "-o", str(out), "--max-time", "100")
    assert proc.returncode == 0, proc.stderr
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(
        body.read_bytes()).digest()


async def test_bench_uploads_2mib_bodies_in_parallel(tmp_path: Path) -> None:
    body = tmp_path / "2mb.bin"
    body.write_bytes(os.urandom(2 * MIB))
    async with run_server(duplex_app.app) as (_, port):
        proc, result = await asyncio.to_thread(
            bench, f"http://127.0.0.1:{port}/echo", "-d", str(body), "-n", "24", "-c", "2",
            "-m", "4", "-T", "20")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert result["succeeded"] == 24 and result["failed"] == 0 and result["timeouts"] == 0
    assert result["status"]["2xx"] == 24 and result["non_2xx"] == 0
    assert result["body_bytes"] == 24 * 2 * MIB  # every echo came back whole
    assert result["bytes_sent"] > 24 * 2 * MIB


@pytest.mark.parametrize("upload", [False, True], ids=["get", "upload"])
def test_bench_timeout_fires_on_a_stalled_server(upload: bool, tmp_path: Path) -> None:
    args = ["-n", "6", "-c", "1", "-m", "2", "-T", "1"]
    if upload:
        body = tmp_path / "2mb.bin"
        body.write_bytes(os.urandom(2 * MIB))
        args += ["-d", str(body)]
    with silent_server() as port:
        started = time.monotonic()
        proc, result = bench(f"http://127.0.0.1:{port}/", *args)
        elapsed = time.monotonic() - started
    assert proc.returncode == 1
    assert result["done"] == 6 and result["failed"] == 6 and result["timeouts"] == 6
    assert result["errors"] == {"ReadTimeout": 6}
    # Three rounds of 1 s stalls: the progress line (once a second) shows them meanwhile.
    shown = [int(n) for n in re.findall(r"\((\d+) timed out\)", proc.stderr.decode())]
    assert shown and max(shown) >= 2, proc.stderr
    assert elapsed < 60


async def test_bench_counts_each_stalled_stream_while_others_progress() -> None:
    """One request in five never gets an answer while the rest flow: each stalled stream
    times out on its own (-T), the others succeed, and the run ends."""
    duplex_app.observed["calls"] = 0
    async with run_server(duplex_app.app) as (_, port):
        proc, result = await asyncio.to_thread(
            bench, f"http://127.0.0.1:{port}/some-stall", "-n", "40", "-c", "1", "-m", "4",
            "-T", "1")
    assert proc.returncode == 1
    assert result["done"] == 40
    assert result["timeouts"] == result["failed"] == 8, result
    assert result["succeeded"] == 32
