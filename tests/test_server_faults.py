"""Failed starts reach the caller; running out of file descriptors costs nothing else.

Bind failures: ``Server.serve()`` raises ``BindError`` naming the address and leaves no
socket of ours open; the CLI and ``examples/embed.py`` exit with status 3.

The fd limit: a server launched with a low ``RLIMIT_NOFILE`` is flooded with idle
connections until ``accept()`` fails; it must log at most about once a second (asyncio
used to write ~100k lines in 15 s at 100 % CPU, uvloop nothing at all), keep answering
a session opened before, and accept again once the flood is gone.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop

from spdyasgi.config import Config
from spdyasgi.server import BindError, Server
from tests.procs import free_port, wait_listening
from tests.utils import hello_app

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parent.parent
LOOPS: dict[str, Callable[[Coroutine[Any, Any, None]], None]] = {
    "asyncio": asyncio.run,
    "uvloop": uvloop.run,
}


def _open_sockets() -> set[str]:
    """This process's open sockets (uvloop keeps a pipe pair of its own: not counted)."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # the listing's own descriptor, gone already
            continue
        if target.startswith("socket:"):
            found.add(f"{name}={target}")
    return found


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


class _Lifespan:
    """An app recording lifespan events: a failed start must still run shutdown."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await hello_app(scope, receive, send)
            return
        while True:
            message = await receive()
            self.events.append(message["type"])
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return


# -- bind failures --------------------------------------------------------------------
@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_serve_on_a_busy_port_raises_and_keeps_nothing(loop: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = _Lifespan()
        server = Server(Config(app, port=port, lifespan="on", log_config=None))
        before = _open_sockets()

        async def scenario() -> None:
            with pytest.raises(BindError, match=f"127.0.0.1:{port}") as info:
                await asyncio.wait_for(server.serve(), 10)
            assert info.value.errno == 98  # EADDRINUSE, kept from the cause

        LOOPS[loop](scenario())
        assert _open_sockets() <= before  # no socket of ours is left open
        assert server.startup_failed and not server.started and not server.servers
        assert app.events == ["lifespan.startup", "lifespan.shutdown"]


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_second_listen_failure_releases_the_first(loop: str) -> None:
    """Two sockets, the second unusable: the first must stop listening too."""
    first = socket.socket()
    first.bind(("127.0.0.1", 0))
    first.listen()
    port = first.getsockname()[1]
    second = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # not a stream socket
    server = Server(Config(hello_app, lifespan="off", log_config=None))
    before = _open_sockets()

    async def scenario() -> None:
        with pytest.raises(BindError, match="could not listen"):
            await asyncio.wait_for(server.serve(sockets=[first, second]), 10)

    LOOPS[loop](scenario())
    assert first.fileno() == -1 and second.fileno() == -1  # both closed
    assert _open_sockets() < before
    assert _refused(port)


def test_unresolvable_host_and_bad_unix_path_name_the_address(tmp_path: Path) -> None:
    async def scenario(**options: Any) -> str:
        server = Server(Config(hello_app, lifespan="off", log_config=None, **options))
        with pytest.raises(BindError) as info:
            await asyncio.wait_for(server.serve(), 10)
        return str(info.value)

    message = asyncio.run(scenario(host="999.1.1.1", port=8000))
    assert "999.1.1.1" in message and "8000" in message
    path = str(tmp_path / "no-such-dir" / "s.sock")
    assert path in asyncio.run(scenario(uds=path))


def _cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_cli_busy_port_and_bad_host_exit_3_naming_the_address() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = _cli("-m", "spdyasgi", "examples.hello:app", "--port", str(port))
    assert busy.returncode == 3, busy.stderr
    assert f"Error: could not bind on 127.0.0.1:{port}: " in busy.stderr
    assert "Traceback" not in busy.stderr
    host = _cli("-m", "spdyasgi", "examples.hello:app", "--host", "999.1.1.1")
    assert host.returncode == 3, host.stderr
    assert "Error: could not resolve host '999.1.1.1'" in host.stderr
    assert "Traceback" not in host.stderr


def test_server_run_exits_3_on_a_busy_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = textwrap.dedent(
            f"""
            from spdyasgi.config import Config
            from spdyasgi.server import Server
            from tests.utils import hello_app

            Server(Config(hello_app, port={port}, lifespan="off")).run()
            """
        )
        proc = _cli("-c", code)
    assert proc.returncode == 3, proc.stderr
    assert f"127.0.0.1:{port}" in proc.stderr


def test_embed_example_exits_non_zero_on_a_busy_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        proc = _cli("-m", "examples.embed", "30", str(port))
    assert proc.returncode == 3, proc.stderr
    assert f"Error: could not bind on 127.0.0.1:{port}" in proc.stderr
    assert time.monotonic() - started < 20  # noticed at once, not after the 30 s


# -- the file-descriptor limit ------------------------------------------------------
LAUNCHER = """
import resource, sys
limit = int(sys.argv.pop(1))
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
from spdyasgi.main import main
main()
"""
FD_LIMIT = 64
FLOOD = 150


def _get(sock: socket.socket, path: str) -> bytes:
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path.encode())
    data = b""
    while not data.endswith(b"You came over HTTP/1.1.\n"):
        chunk = sock.recv(65536)
        assert chunk, f"connection closed; got {data!r}"
        data += chunk
    return data


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _served(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.settimeout(5)
            return _get(sock, "/fresh").startswith(b"HTTP/1.1 200")
    except (OSError, AssertionError):
        return False


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_fd_exhaustion_is_logged_rarely_and_survived(tmp_path: Path, loop: str) -> None:
    (tmp_path / "launch.py").write_text(LAUNCHER)
    port = free_port()
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(tmp_path / "launch.py"),
                str(FD_LIMIT),
                "examples.hello:app",
                "--port",
                str(port),
                "--loop",
                loop,
                "--timeout-keep-alive",
                "60",
                "--timeout-receive",
                "60",
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    flood: list[socket.socket] = []
    try:
        wait_listening(port, proc)
        session = socket.create_connection(("127.0.0.1", port), timeout=10)
        session.settimeout(10)
        assert _get(session, "/before").startswith(b"HTTP/1.1 200")
        # More idle connections than the server has descriptors: the kernel completes
        # them all (backlog), the server runs out while accepting.
        for _ in range(FLOOD):
            flood.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        deadline = time.monotonic() + 15
        while b"Too many open files" not in log.read_bytes():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        noticed = time.monotonic()
        cpu_before = _cpu_seconds(proc.pid)
        window = 3.0
        while time.monotonic() - noticed < window:  # let it sit at the limit a while
            assert _get(session, "/during").startswith(b"HTTP/1.1 200")
            time.sleep(0.25)
        elapsed = time.monotonic() - noticed
        assert _cpu_seconds(proc.pid) - cpu_before < 0.5 * elapsed  # no accept storm
        lines = log.read_text().splitlines()
        complaints = [line for line in lines if "Too many open files" in line]
        assert 1 <= len(complaints) <= elapsed + 2, complaints
        assert len(lines) < 40, lines[:50]  # no tracebacks, no storm
        for sock in flood:
            sock.close()
        flood.clear()
        deadline = time.monotonic() + 15
        while not _served(port):  # accepting resumes by itself
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        assert _get(session, "/after").startswith(b"HTTP/1.1 200")
        session.close()
    finally:
        for sock in flood:
            sock.close()
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
