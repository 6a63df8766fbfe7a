"""Helpers for tests that run servers as subprocesses on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A port that was free a moment ago (bind to 0, read it, release it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """Wait until `proc` accepts on `port`; fail at once if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = proc.stderr.read() if proc.stderr is not None else b""
            raise AssertionError(f"the server exited before it accepted connections: {output!r}")
        if accepts(port):
            return
        time.sleep(0.05)
    raise AssertionError("the server did not start listening")


def stop_group(proc: subprocess.Popen[Any], grace: float = 5) -> None:
    """End a server started with ``start_new_session=True`` and everything it spawned.

    SIGTERM to the whole process group (supervisor and workers), up to ``grace`` s for
    the leader to exit, then SIGKILL to the group: no worker outlives the test, even
    when the test killed the supervisor alone or the supervisor is stuck.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(grace)


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    port: int
    stderr_path: Path
    tls: tuple[str, str] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kb(self) -> int:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    async def wait(self, timeout: float) -> int:
        return await asyncio.to_thread(self.proc.wait, timeout)


@contextlib.contextmanager
def spdyasgi_process(directory: Path, app: str, *args: str,
                     env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """``python -m spdyasgi APP --host 127.0.0.1 --port P *args``, as a user would run it.

    The port is picked by binding a socket first; if another process grabs it in between,
    try again with a new one. The server runs in its own session; on leaving, its whole
    process group is stopped (:func:`stop_group`), workers included.
    """
    environ = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", **(env or {}))
    proc = None
    for attempt in range(3):
        port = free_port()
        stderr_path = directory / f"server-{port}-{attempt}.log"
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "spdyasgi", app, "--host", "127.0.0.1",
                 "--port", str(port), *args],
                cwd=str(ROOT), env=environ, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
            )
        deadline = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < deadline and not accepts(port):
            time.sleep(0.05)
        if proc.poll() is None and accepts(port):
            break
        stop_group(proc)
        text = stderr_path.read_text(errors="replace")
        if "in use" not in text.lower():
            raise AssertionError(f"spdyasgi did not start:\n{text}")
    else:
        raise AssertionError("no free port after 3 attempts")
    assert proc is not None
    try:
        yield ServerProcess(proc, port, stderr_path)
    finally:
        stop_group(proc)
