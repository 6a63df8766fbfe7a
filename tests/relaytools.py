"""Processes for the relay tests: `spdyasgi-relay` and dial-out origins on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.procs import ROOT, accepts, free_port

RELAY = [sys.executable, "-c", "from spdyasgi.relay.cli import main; main()"]
ENV = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests'}", PYTHONUNBUFFERED="1")


@dataclass
class Proc:
    proc: subprocess.Popen[bytes]
    log: Path
    ports: dict[str, int] = field(default_factory=dict)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def rss_kb(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop(self, sig: int | None = None) -> None:
        if self.proc.poll() is None:
            if sig is None:
                self.proc.kill()
            else:
                self.proc.send_signal(sig)
        self.proc.wait(20)


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `check` (every 50 ms) until true; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def start_relay(directory: Path, *args: str, port: int | None = None,
                origin_port: int | None = None, name: str = "relay") -> Proc:
    port = port or free_port()
    origin_port = origin_port or free_port()
    log = directory / f"{name}-{port}.log"
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [*RELAY, "--port", str(port), "--origin-host", "127.0.0.1",
             "--origin-port", str(origin_port), *args],
            cwd=str(ROOT), env=ENV, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
        )
    relay = Proc(proc, log, {"visitors": port, "origins": origin_port})
    wait_for(lambda: proc.poll() is not None or (accepts(port) and accepts(origin_port)),
             20, "the relay to listen")
    assert proc.poll() is None, relay.text()
    return relay


def start_origin(directory: Path, relay: Proc, name: str, *args: str,
                 wait: bool = True) -> Proc:
    log = directory / f"{name}.log"
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "spdyasgi", "relayapps:app", "--no-listen",
             "--connect", f"127.0.0.1:{relay.ports['origins']}", *args],
            cwd=str(ROOT / "tests"), env=dict(ENV, ORIGIN_NAME=name),
            stdin=subprocess.DEVNULL, stdout=err, stderr=err,
        )
    origin = Proc(proc, log)
    if wait:
        wait_for(lambda: proc.poll() is not None or "; serving" in origin.text(), 20,
                 f"{name} to register")
        assert proc.poll() is None, origin.text()
    return origin


@contextlib.contextmanager
def running(*procs: Proc) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in procs:
            proc.stop()


def curl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["curl", "-sS", "--max-time", str(timeout), *args],
                          capture_output=True, timeout=timeout + 10)
