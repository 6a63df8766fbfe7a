"""Supervisors: restart/stop logic with fake processes, reload filter, and real workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from spdyasgi.config import Config
from spdyasgi.supervisors.multiprocess import Multiprocess
from spdyasgi.supervisors.watchfilesreload import ReloadFilter
from tests.procs import free_port, stop_group

ROOT = Path(__file__).resolve().parent.parent


class FakeProcess:
    counter = 0

    def __init__(self) -> None:
        FakeProcess.counter += 1
        self.pid = FakeProcess.counter
        self.alive = True
        self.exitcode: int | None = None
        self.terminated = False

    def is_alive(self) -> bool:
        return self.alive

    def terminate(self) -> None:
        self.terminated = True
        self.alive = False
        self.exitcode = -15

    def kill(self) -> None:
        self.alive = False

    def join(self, timeout: float | None = None) -> None:
        pass

    def die(self, code: int) -> None:
        self.alive = False
        self.exitcode = code


def make_supervisor(workers: int = 3) -> tuple[Multiprocess, list[FakeProcess]]:
    spawned: list[FakeProcess] = []

    def spawn(config: Config, sockets: list[socket.socket]) -> Any:
        process = FakeProcess()
        spawned.append(process)
        return process

    supervisor = Multiprocess(Config("m:app", workers=workers), [], spawn=spawn)
    supervisor.processes = [spawn(supervisor.config, []) for _ in range(workers)]
    return supervisor, spawned


def test_dead_worker_is_replaced() -> None:
    supervisor, spawned = make_supervisor()
    spawned[1].die(1)
    supervisor.keep_alive()
    assert len(spawned) == 4
    assert supervisor.processes[1] is spawned[3]
    assert not supervisor.should_exit.is_set()


def test_startup_failure_stops_everything_with_status_3() -> None:
    supervisor, spawned = make_supervisor()
    spawned[0].die(3)
    supervisor.keep_alive()
    assert supervisor.should_exit.is_set()
    assert supervisor.exit_code == 3
    supervisor.shutdown()
    assert all(not p.alive for p in spawned)


def test_rolling_restart_spawns_before_stopping() -> None:
    supervisor, spawned = make_supervisor(2)
    supervisor.restart_all()
    assert len(spawned) == 4
    assert spawned[0].terminated and spawned[1].terminated
    assert supervisor.processes == [spawned[2], spawned[3]]


def test_signals_first_graceful_then_force() -> None:
    supervisor, _ = make_supervisor(1)
    supervisor.handle_signal(signal.SIGHUP)
    assert supervisor.restart_requested.is_set() and not supervisor.should_exit.is_set()
    supervisor.handle_signal(signal.SIGTERM)
    assert supervisor.should_exit.is_set() and not supervisor.force_exit.is_set()
    supervisor.handle_signal(signal.SIGINT)
    assert supervisor.force_exit.is_set()


@pytest.mark.parametrize(
    ("path", "includes", "excludes", "expected"),
    [
        ("/src/app.py", [], [], True),
        ("/src/app.pyc", [], [], False),
        ("/src/.hidden.py", [], [], False),
        ("/src/__pycache__/app.py", [], [], False),
        ("/src/.venv/lib/x.py", [], [], False),
        ("/src/templates/page.html", ["*.html"], [], True),
        ("/src/templates/page.html", [], [], False),
        ("/src/tests/test_x.py", [], ["tests/*"], False),
        ("/src/app_test.py", [], ["*_test.py"], False),
    ],
)
def test_reload_filter(path: str, includes: list[str], excludes: list[str], expected: bool) -> None:
    assert ReloadFilter(includes, excludes)(None, path) is expected


# -- real processes (need the server) -------------------------------------------------


def _get(port: int, timeout: float = 15) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                return bytes(r.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.timeout(60)
def test_workers_end_to_end() -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spdyasgi",
            "examples.hello:app",
            "--workers",
            "2",
            "--port",
            str(port),
            "--timeout-graceful-shutdown",
            "5",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()

    def started() -> int:
        return sum("Started worker process" in line for line in list(lines))

    try:
        assert _get(port).startswith(b"Hello, SPDY!")
        deadline = time.monotonic() + 30
        while started() < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGHUP)  # rolling restart keeps serving
        # Keep asking while both workers are replaced (their "Started" lines are the event).
        while started() < 4 and time.monotonic() < deadline:
            assert _get(port).startswith(b"Hello, SPDY!")
            time.sleep(0.05)
        assert _get(port).startswith(b"Hello, SPDY!")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(timeout=10)
    finally:
        stop_group(proc)
    output = "".join(lines)
    assert proc.returncode == 0, output
    assert "Started parent process" in output
    assert output.count("Started worker process") >= 4


@pytest.mark.timeout(60)
def test_workers_with_broken_app_exit_3(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "spdyasgi",
            "sup_missing_mod:app",
            "--workers",
            "2",
            "--port",
            str(free_port()),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    assert "sup_missing_mod:app" in proc.stderr


@pytest.mark.timeout(60)
def test_reload_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("watchfiles")
    app_file = tmp_path / "reload_app.py"
    template = (
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'%s'})\n"
    )
    app_file.write_text(template % "version one")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "spdyasgi", "reload_app:app", "--reload", "--app-dir",
         str(tmp_path), "--reload-dir", str(tmp_path), "--reload-delay", "0.1",
         "--port", str(port)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        assert _get(port) == b"version one"
        app_file.write_text(template % "version two")
        deadline = time.monotonic() + 20
        while _get(port) != b"version two":
            assert time.monotonic() < deadline, "the change was not picked up"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    finally:
        stop_group(proc)
    assert proc.returncode == 0, output
    assert "Traceback" not in output
