"""`spdyasgi-client` end to end, against our server and against node-spdy, TLS and cleartext:
100 MiB download byte-exact with -o, 10 MiB upload with -d @file, a 20 MiB full-duplex echo
(node-spdy; our server's is in tests/client/test_cli_habits.py), pushes, -v frames."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import peers
from tests.spdyapps import app, pattern
from tests.utils import run_server

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20


def _client(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "spdyasgi.client.cli", *args],
                          capture_output=True, timeout=120, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))


async def _run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return await asyncio.to_thread(_client, *args)


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.slow
@pytest.mark.parametrize("tls", [False, True], ids=["cleartext", "tls"])
async def test_cli_against_our_server(tls: bool, tls_files: tuple[str, str],
                                      tmp_path: Path) -> None:
    options: dict[str, Any] = {}
    if tls:
        options = {"ssl_certfile": tls_files[0], "ssl_keyfile": tls_files[1]}
    async with run_server(app, **options) as (_, port):
        base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        out = tmp_path / "download.bin"
        proc = await _run(f"{base}/bytes?n={100 * MIB}", "-o", str(out), "-k")
        assert proc.returncode == 0, proc.stderr
        assert out.stat().st_size == 100 * MIB
        assert _sha(out) == hashlib.sha256(pattern(100 * MIB)).hexdigest()

        upload = tmp_path / "upload.bin"
        upload.write_bytes(pattern(10 * MIB))
        proc = await _run(f"{base}/hash", "-d", f"@{upload}", "-k")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == f"{10 * MIB} {_sha(upload)}".encode()

        proc = await _run(f"{base}/push", "--push", "-k")
        assert proc.returncode == 0, proc.stderr
        assert b"/pushed.css" in proc.stdout + proc.stderr

        proc = await _run(f"{base}/hello", "-v", "-k")
        assert proc.returncode == 0, proc.stderr
        trace = proc.stderr.decode()
        for frame in ("SETTINGS", "SYN_STREAM", "SYN_REPLY", "DATA"):
            assert frame in trace, trace
        assert proc.stdout == b"hello /hello"


needs_node = pytest.mark.skipif(not peers.NODE_AVAILABLE, reason=peers.NODE_SKIP_REASON)


@needs_node
@pytest.mark.slow
@pytest.mark.parametrize("tls", [False, True], ids=["cleartext", "tls"])
def test_cli_against_node_spdy(tls: bool, tmp_path: Path) -> None:
    options: dict[str, Any] = {"tls": tls}
    if tls:
        key, cert = peers.make_self_signed_cert(tmp_path)
        options.update({"cert": cert, "key": key})
    with peers.start_node_server(options) as port:
        base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        out = tmp_path / "download.bin"
        proc = _client(f"{base}/bytes?n={100 * MIB}&seed=7", "-o", str(out), "-k")
        assert proc.returncode == 0, proc.stderr
        assert _sha(out) == peers.body_sha256(100 * MIB, 7)

        upload = tmp_path / "upload.bin"
        upload.write_bytes(peers.body_bytes(10 * MIB, 9))
        proc = _client(f"{base}/upload", "-d", f"@{upload}", "-k")
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert result["length"] == 10 * MIB and result["sha256"] == _sha(upload)

        big = tmp_path / "20mb.bin"
        big.write_bytes(os.urandom(20 * MIB))
        echo = tmp_path / "echo.bin"
        proc = _client(f"{base}/echo", "-d", f"@{big}", "-o", str(echo), "-k", "-m", "100")
        assert proc.returncode == 0, proc.stderr
        assert _sha(echo) == _sha(big)

        proc = _client(f"{base}/push", "--push", "-k")
        assert proc.returncode == 0, proc.stderr
        assert b"/pushed.css" in proc.stdout + proc.stderr

        proc = _client(f"{base}/hello", "-v", "-k")
        assert proc.returncode == 0, proc.stderr
        assert "SYN_REPLY" in proc.stderr.decode()
