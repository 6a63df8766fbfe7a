"""spdyasgi-bench against the real server process: 50,000 requests, zero failures, and
its counts agree with the server's access log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.procs import free_port, wait_listening

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.parametrize("tls", [False, True])
def test_bench_50000_requests_match_access_log(tls: bool, tls_files: tuple[str, str],
                                               tmp_path: Path) -> None:
    requests = 50_000 if not tls else 10_000
    port = free_port()
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "spdyasgi", "examples.hello:app", "--host", "127.0.0.1",
               "--port", str(port)]
    if tls:
        certfile, keyfile = tls_files
        command += ["--ssl-certfile", certfile, "--ssl-keyfile", keyfile]
    with open(log, "wb") as out:
        server = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                  env=dict(os.environ, PYTHONPATH=str(ROOT)))
        try:
            wait_listening(port, server)
            scheme = "https" if tls else "http"
            bench = subprocess.run(
                [sys.executable, "-m", "spdyasgi.client.bench", f"{scheme}://127.0.0.1:{port}/",
                 "-n", str(requests), "-c", "10", "-m", "10", "-k"],
                capture_output=True, timeout=240, cwd=ROOT,
            )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    assert bench.returncode == 0, bench.stderr.decode()[-2000:]
    line = next(x for x in bench.stdout.decode().splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    text = log.read_text()
    served = sum(1 for row in text.splitlines() if '"GET / HTTP/1.1" 200' in row)
    assert result["succeeded"] == requests, result
    assert result["failed"] == 0, result
    assert served == requests
    assert server.returncode == 0
    assert "Traceback" not in text
