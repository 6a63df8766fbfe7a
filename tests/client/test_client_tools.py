"""`spdyasgi-client` and `spdyasgi-bench` as subprocesses against the engine-based test server."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from spdyasgi.client import cli as client_cli
from tests.procs import free_port

from .spdy_testserver import PUSHED_CSS, SpdyTestServer, body_bytes

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server() -> Iterator[SpdyTestServer]:
    with SpdyTestServer() as running:
        yield running


def run(module: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True,
                          timeout=timeout, env=env, cwd=str(ROOT))


def client(*args: str) -> subprocess.CompletedProcess[bytes]:
    return run("spdyasgi.client.cli", *args)


def test_output_file_byte_exact(server: SpdyTestServer, tmp_path: Path) -> None:
    out = tmp_path / "body.bin"
    n = 3 << 20
    proc = client(f"{server.url}/bytes?n={n}&seed=3", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b""
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(body_bytes(n, 3)).digest()


def test_include_headers(server: SpdyTestServer) -> None:
    proc = client(f"{server.url}/hello", "-i")
    assert proc.returncode == 0, proc.stderr
    head, _, body = proc.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK"  # the standard phrase when :status has none
    assert "set-cookie: a=1" in lines and "set-cookie: b=2" in lines
    assert body == b"hello"


def test_verbose_prints_frames(server: SpdyTestServer) -> None:
    proc = client(f"{server.url}/hello", "-v", "-H", "X-Extra: yes")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"hello"
    err = proc.stderr.decode()
    assert "> SETTINGS" in err and "INITIAL_WINDOW_SIZE=" in err
    assert "< SETTINGS" in err and "MAX_CONCURRENT_STREAMS=256" in err
    assert "> WINDOW_UPDATE v3 flags=0x00 length=8 stream=0 delta=" in err
    assert "> SYN_STREAM v3 flags=0x01 length=" in err and "FIN stream=1" in err
    assert ">   :method: GET" in err and ">   x-extra: yes" in err
    assert "< SYN_REPLY" in err and "<   :status: 200" in err
    assert "< DATA stream=1 flags=0x01 FIN length=5" in err
    assert "Traceback" not in err


def test_push_listing(server: SpdyTestServer) -> None:
    proc = client(f"{server.url}/push", "--push")
    assert proc.returncode == 0, proc.stderr
    assert f"push: /pushed.css status=200 length={len(PUSHED_CSS)}" in proc.stderr.decode()


def test_upload_file(server: SpdyTestServer, tmp_path: Path) -> None:
    data = os.urandom(2 << 20)
    path = tmp_path / "up.bin"
    path.write_bytes(data)
    proc = client(f"{server.url}/upload", "--data-binary", f"@{path}")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"length": len(data),
                                       "sha256": hashlib.sha256(data).hexdigest()}


def test_exit_code_connect_refused() -> None:
    proc = client(f"http://127.0.0.1:{free_port()}/")
    assert proc.returncode == 7
    err = proc.stderr.decode()
    assert err.startswith("spdyasgi-client: failed to connect") and err.count("\n") == 1


def test_exit_code_not_spdy(tls_files: tuple[str, str]) -> None:
    with SpdyTestServer(tls=tls_files, alpn=["http/1.1"]) as http11:
        proc = client(f"{http11.url}/", "-k")
    assert proc.returncode == 16
    assert proc.stderr.decode().startswith("spdyasgi-client: server does not speak SPDY")
    assert b"Traceback" not in proc.stderr


def test_exit_codes_timeout_and_reset(server: SpdyTestServer) -> None:
    proc = client(f"{server.url}/slow", "--max-time", "0.5")
    assert proc.returncode == 28
    proc = client(f"{server.url}/reset?code=6")
    assert proc.returncode == 16
    assert b"server reset stream 1: INTERNAL_ERROR" in proc.stderr


def test_usage_errors() -> None:
    runner = CliRunner()
    assert runner.invoke(client_cli.cli, []).exit_code == 2
    assert runner.invoke(client_cli.cli, ["http://x/", "--cleartext", "--tls"]).exit_code == 2
    assert runner.invoke(client_cli.cli, ["ftp://x/"]).exit_code == 2


def test_bench_2000_requests(server: SpdyTestServer) -> None:
    proc = run("spdyasgi.client.bench", f"{server.url}/hello", "-n", "2000", "-c", "4",
               "-m", "10", timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert lines[-1].startswith("RESULT ")
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["done"] == 2000 and result["succeeded"] == 2000 and result["failed"] == 0
    assert result["status"]["2xx"] == 2000
    assert result["body_bytes"] == 2000 * 5
    assert result["latency_ms"]["p50"] > 0
    assert result["cpu_us_per_request"] > 0
    assert any(line.startswith("latency (ms): min") for line in lines)


def test_bench_processes_upload_and_duration(server: SpdyTestServer, tmp_path: Path) -> None:
    body = tmp_path / "body.bin"
    body.write_bytes(os.urandom(20000))
    proc = run("spdyasgi.client.bench", f"{server.url}/upload", "-n", "200", "-c", "2",
               "-m", "4", "-p", "2", "-d", str(body), "-w", "17", timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.decode().splitlines()[-1][len("RESULT "):])
    assert result["processes"] == 2 and result["done"] == 200 and result["failed"] == 0
    assert result["bytes_sent"] > 200 * 20000
    proc = run("spdyasgi.client.bench", f"{server.url}/hello", "-D", "0.5", "-c", "1", "-m", "4")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.decode().splitlines()[-1][len("RESULT "):])
    assert result["done"] > 0 and result["failed"] == 0 and result["target_requests"] is None


def test_bench_connect_failure_exit_code() -> None:
    proc = run("spdyasgi.client.bench", f"http://127.0.0.1:{free_port()}/", "-n", "10")
    assert proc.returncode == 7
    assert b"Traceback" not in proc.stderr


def _bench(server: SpdyTestServer, path: str, *args: str, timeout: float = 60) -> dict:
    proc = run("spdyasgi.client.bench", f"{server.url}{path}", *args, timeout=timeout)
    assert b"Traceback" not in proc.stderr, proc.stderr
    result = json.loads(proc.stdout.decode().splitlines()[-1][len("RESULT "):])
    result["exit_code"] = proc.returncode
    return result


def test_bench_counts_resets_and_status_classes_on_the_callback_path(
        server: SpdyTestServer) -> None:
    result = _bench(server, "/reset?code=6", "-n", "50", "-c", "2", "-m", "5")
    assert result["done"] == 50 and result["failed"] == 50 and result["exit_code"] == 1
    assert result["errors"] == {"StreamResetError": 50}
    result = _bench(server, "/status/404", "-n", "30", "-c", "1", "-m", "3")
    assert result["status"]["4xx"] == 30 and result["failed"] == 0
    assert result["exit_code"] == 0


def test_bench_reconnects_after_goaway_and_finishes(server: SpdyTestServer) -> None:
    # Every request makes the server end its session (GOAWAY, last good stream 0): each
    # fails as unprocessed and the bench opens a new session for the next ones.
    result = _bench(server, "/goaway?last=0", "-n", "6", "-c", "1", "-m", "1", "-T", "10")
    assert result["done"] == 6 and result["failed"] == 6
    assert set(result["errors"]) <= {"GoAwayError", "ConnectionClosedError"}


def test_bench_read_timeout_gives_up_on_stalled_streams(server: SpdyTestServer) -> None:
    started = time.monotonic()
    result = _bench(server, "/slow", "-n", "4", "-c", "1", "-m", "4", "-T", "0.5",
                    timeout=30)
    assert time.monotonic() - started < 15
    assert result["done"] == 4 and result["errors"] == {"ReadTimeout": 4}
    assert result["exit_code"] == 1
