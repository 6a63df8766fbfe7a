"""Workers never outlive their supervisor: SIGKILL the parent, the workers drain and go.

Real processes on 127.0.0.1. The app holds one request open until the test releases
it, so "graceful" is checked, not assumed: the in-flight response must complete after
the supervisor is dead, and each worker must run its lifespan shutdown.
"""

from __future__ import annotations

import http.client
import logging
import multiprocessing
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from spdyasgi.supervisors._process import SupervisorWatch
from tests.procs import ServerProcess, accepts, spdyasgi_process

APP = '''
import asyncio, os, sys

RELEASE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "release")


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                print(f"lifespan shutdown [{os.getpid()}]", file=sys.stderr, flush=True)
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    headers = [(b"content-length", b"13")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"started\\n", "more_body": True})
    for _ in range(1200):  # the test creates RELEASE; 60 s at most
        if os.path.exists(RELEASE):
            break
        await asyncio.sleep(0.05)
    await send({"type": "http.response.body", "body": b"done\\n"})
'''


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def exited(pid: int) -> bool:
    """Gone or a zombie (PID 1 here may not reap): either way it serves nothing."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def worker_pids(server: ServerProcess, count: int) -> list[int]:
    def found() -> list[int]:
        pids = re.findall(r"Started server process \[(\d+)\]", server.stderr())
        return [int(pid) for pid in pids if int(pid) != server.pid]

    wait_until(lambda: len(found()) >= count, f"{count} workers to start")
    return found()


def start_slow_request(port: int) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/")
    response = conn.getresponse()
    assert response.status == 200
    assert response.read(8) == b"started\n"  # the request is in flight in one worker
    return conn, response


def orphan_and_check(server: ServerProcess, tmp_path: Path, count: int) -> None:
    """SIGKILL the supervisor mid-request; workers drain, run lifespan shutdown, exit."""
    pids = worker_pids(server, count)
    conn, response = start_slow_request(server.port)
    supervisor = server.pid
    server.proc.kill()
    server.proc.wait(10)
    gone = f"supervisor [{supervisor}] is gone: shutting down"
    wait_until(lambda: server.stderr().count(gone) == count, "every worker to notice")
    (tmp_path / "release").touch()
    assert response.read() == b"done\n"  # drained, not cut off
    conn.close()
    wait_until(lambda: all(exited(pid) for pid in pids), "the orphaned workers to exit", 15)
    assert not accepts(server.port)
    log = server.stderr()
    for pid in pids:
        assert f"lifespan shutdown [{pid}]" in log, log
    assert "Traceback" not in log, log


def test_watch_answers_pings_then_stops_server_once_reparented(
    caplog: pytest.LogCaptureFixture,
) -> None:
    supervisor_end, worker_end = multiprocessing.Pipe()
    watch = SupervisorWatch(worker_end, supervisor_pid=-1)  # never our parent: reparented
    server = SimpleNamespace(should_exit=False)
    assert watch.attach(server)
    with caplog.at_level(logging.WARNING, logger="spdyasgi.error"):
        watch.start()
        supervisor_end.send_bytes(b"ping")
        assert supervisor_end.poll(10) and supervisor_end.recv_bytes() == b"ping"
        assert not watch.gone.is_set() and not server.should_exit  # pipe open: serving
        supervisor_end.close()
        assert watch.gone.wait(10)
    assert server.should_exit
    assert "supervisor [-1] is gone: shutting down" in caplog.text
    assert not watch.attach(SimpleNamespace(should_exit=False))  # too late to serve


@pytest.mark.timeout(120)
def test_workers_leave_when_supervisor_is_killed(tmp_path: Path) -> None:
    (tmp_path / "orphan_app.py").write_text(APP)
    with spdyasgi_process(tmp_path, "orphan_app:app", "--app-dir", str(tmp_path),
                          "--workers", "2") as server:
        orphan_and_check(server, tmp_path, 2)


@pytest.mark.timeout(120)
def test_reload_worker_leaves_when_reloader_is_killed(tmp_path: Path) -> None:
    pytest.importorskip("watchfiles")
    (tmp_path / "orphan_app.py").write_text(APP)
    with spdyasgi_process(tmp_path, "orphan_app:app", "--app-dir", str(tmp_path),
                          "--reload", "--reload-dir", str(tmp_path)) as server:
        orphan_and_check(server, tmp_path, 1)


@pytest.mark.timeout(120)
def test_supervisor_sigterm_still_drains_in_flight_request(tmp_path: Path) -> None:
    (tmp_path / "orphan_app.py").write_text(APP)
    with spdyasgi_process(tmp_path, "orphan_app:app", "--app-dir", str(tmp_path),
                          "--workers", "2") as server:
        pids = worker_pids(server, 2)
        conn, response = start_slow_request(server.port)
        server.signal(signal.SIGTERM)
        wait_until(lambda: server.stderr().count("Shutting down") == 2, "both workers to drain")
        assert server.proc.poll() is None  # still waiting for the draining worker
        (tmp_path / "release").touch()
        assert response.read() == b"done\n"
        conn.close()
        assert server.proc.wait(30) == 0
        assert not accepts(server.port)
        log = server.stderr()
        assert all(exited(pid) for pid in pids)
        for pid in pids:
            assert f"lifespan shutdown [{pid}]" in log, log
        assert "is gone" not in log, log
