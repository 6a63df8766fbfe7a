# ruff: noqa: E501  (HAProxy lines quoted verbatim in docs/deployment.md)
"""Running Debian's HAProxy in front of spdyasgi processes for the fleet tests.

The configuration templates here are the ones docs/deployment.md shows verbatim
(filled with DOC_VALUES; test_haproxy.py::test_docs_show_the_tested_config checks it).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HAPROXY = shutil.which("haproxy") or (
    "/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None
)
MISSING = (
    "haproxy is not installed (Debian: apt-get install -y haproxy; scripts/test installs it "
    "when CI=true)"
)

# HAProxy in TCP mode passing TLS through: spdyasgi terminates TLS (ALPN spdy/3.1 end to
# end) and reads the PROXY v2 header first; the health check is HTTP/1.1 over TLS on the
# same port, preceded by a PROXY v2 LOCAL header.
PASSTHROUGH = """\
global
    stats socket {stats} mode 600 level admin

defaults
    mode tcp
    timeout connect 5s
    timeout client 330s
    timeout server 330s
    retries 3
    option redispatch 1

frontend spdy_in
    bind {bind}
    default_backend spdyasgi

backend spdyasgi
    balance roundrobin
    option httpchk
    http-check send meth GET uri /health ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
    default-server send-proxy-v2 check check-ssl verify none check-alpn http/1.1 inter 300ms fall 1 rise 1
    server a {server_a}
    server b {server_b}
"""

# HAProxy terminating TLS (ALPN spdy/3.1 offered by HAProxy) and forwarding cleartext
# SPDY; the PROXY v2 header carries ALPN, SSL details and a unique id as TLVs.
TERMINATING = """\
global
    stats socket {stats} mode 600 level admin

defaults
    mode tcp
    timeout connect 5s
    timeout client 330s
    timeout server 330s
    retries 3
    option redispatch 1

frontend spdy_tls_in
    bind {bind} ssl crt {pem} alpn spdy/3.1,http/1.1
    unique-id-format %{{+X}}o%ci:%cp_%fi:%fp_%Ts_%rt:%pid
    default_backend spdyasgi

backend spdyasgi
    balance roundrobin
    option httpchk
    http-check send meth GET uri /health ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
    default-server send-proxy-v2 proxy-v2-options ssl,unique-id,crc32c check inter 300ms fall 1 rise 1
    server a {server_a}
    server b {server_b}
"""


#: What docs/deployment.md shows in place of the test's ports and paths.
DOC_VALUES = {
    "bind": "0.0.0.0:443",
    "stats": "/run/haproxy/admin.sock",
    "pem": "/etc/haproxy/site.pem",
    "server_a": "10.0.0.11:8000",
    "server_b": "10.0.0.12:8000",
}


def require_haproxy() -> str:
    """The binary; under CI=true a missing HAProxy fails the test instead of skipping."""
    if HAPROXY is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but " + MISSING, pytrace=False)
        pytest.skip(MISSING)
    return HAPROXY


class HAProxy:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, stats: Path, log: Path):
        self.proc, self.port, self.stats_path, self.log = proc, port, stats, log

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.stats_path))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def statuses(self) -> dict[str, str]:
        """``{"a": "UP", "b": "DOWN 1/2", ...}`` for the backend's servers."""
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {row["svname"]: row["status"] for row in rows
                if row["pxname"] == "spdyasgi" and row["svname"] not in ("BACKEND",)}

    def wait_status(self, wanted: dict[str, str], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        seen: dict[str, str] = {}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"haproxy exited: {self.log.read_text()}")
            seen = self.statuses()
            if all(seen.get(name, "").startswith(state) for name, state in wanted.items()):
                return
            time.sleep(0.1)
        raise AssertionError(f"servers {seen}, wanted {wanted}")


@contextlib.contextmanager
def run_haproxy(directory: Path, template: str, port_a: int, port_b: int,
                **values: object) -> Iterator[HAProxy]:
    binary = require_haproxy()
    from tests.procs import free_port

    port = free_port()
    stats = directory / f"haproxy-{port}.sock"
    config = directory / f"haproxy-{port}.cfg"
    config.write_text(template.format(
        bind=f"127.0.0.1:{port}", stats=stats, server_a=f"127.0.0.1:{port_a}",
        server_b=f"127.0.0.1:{port_b}", **values))
    log = directory / f"haproxy-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([binary, "-db", "-f", str(config)], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while not stats.exists() and time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"haproxy did not start: {log.read_text()}")
            time.sleep(0.05)
        yield HAProxy(proc, port, stats, log)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
