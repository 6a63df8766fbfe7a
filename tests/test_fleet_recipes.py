"""The deployment recipes of docs/deployment.md, run: Docker's CMD + HEALTHCHECK, systemd's --fd."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.procs import ROOT, accepts, free_port


def _dockerfile_arrays() -> tuple[list[str], list[str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    health = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])$", text, re.M)
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert health and cmd
    return json.loads(cmd.group(1)), json.loads(health.group(1))


def test_docker_health_check_follows_the_served_port(tmp_path: Path) -> None:
    """The image's CMD and HEALTHCHECK, run as Docker would, with SPDYASGI_PORT moved."""
    cmd, health = _dockerfile_arrays()
    assert "--port" not in cmd  # the port comes from SPDYASGI_PORT, shared with the check
    port = free_port()
    env = dict(os.environ, SPDYASGI_PORT=str(port), PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "spdyasgi", *cmd[1:]]
    command[command.index("0.0.0.0")] = "127.0.0.1"  # tests listen on loopback only
    with open(tmp_path / "server.log", "wb") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while not accepts(port):
            assert proc.poll() is None and time.monotonic() < deadline, (
                (tmp_path / "server.log").read_text())
            time.sleep(0.05)
        probe = [sys.executable if health[0] == "python" else health[0], *health[1:]]
        assert subprocess.run(probe, env=env, timeout=30).returncode == 0
        wrong = dict(env, SPDYASGI_PORT=str(free_port()))
        assert subprocess.run(probe, env=wrong, timeout=30,
                              stderr=subprocess.DEVNULL).returncode != 0
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None,
                    reason="systemd-socket-activate is not installed (package systemd)")
def test_systemd_socket_activation_with_fd_3(tmp_path: Path) -> None:
    """What the systemd units in docs/deployment.md do: the socket is passed as fd 3."""
    import asyncio

    from spdyasgi.client import connect

    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with open(tmp_path / "server.log", "wb") as log:
        proc = subprocess.Popen(
            ["systemd-socket-activate", "-l", f"127.0.0.1:{port}", sys.executable, "-m",
             "spdyasgi", "tests.proxyrelay:echo_app", "--fd", "3", "--lifespan", "off"],
            cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while not accepts(port):  # the first connection starts the service
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)

        async def ask() -> dict[str, object]:
            async with connect(f"http://127.0.0.1:{port}") as client:
                return dict(json.loads(await (await client.get("/")).aread()))

        seen = asyncio.run(asyncio.wait_for(ask(), 30))
        assert seen["spdy"] and seen["server"] == ["127.0.0.1", port]
    finally:
        proc.terminate()
        proc.wait(15)
