"""The client against node-spdy's protocol layer (tests/peers/server.js); skipped without node."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spdyasgi.client import connect

try:
    from tests import peers
except ImportError:  # pragma: no cover - the peer tooling is optional
    peers = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(peers is None or not peers.NODE_AVAILABLE,
                       reason="node or tests/peers/node_modules missing"),
]


@pytest.fixture(scope="module", params=["cleartext", "tls"])
def node_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[str]:
    opts: dict[str, Any] = {"protocol": "spdy/3.1"}
    scheme = "http"
    if request.param == "tls":
        key, cert = peers.make_self_signed_cert(tmp_path_factory.mktemp("node-tls"))
        opts.update(tls=True, key=str(key), cert=str(cert))
        scheme = "https"
    with peers.start_node_server(opts) as port:
        yield f"{scheme}://127.0.0.1:{port}"


async def test_node_get_download_upload_push(node_url: str) -> None:
    async with connect(node_url, verify=False) as client:
        if node_url.startswith("https"):
            assert client.alpn_protocol == "spdy/3.1"
        response = await client.get("/hello")
        assert response.status == 200 and await response.read() == b"hello"

        n = 2 << 20
        response = await client.get(f"/bytes?n={n}&seed=5")
        digest = hashlib.sha256()
        async for chunk in response.aiter_bytes():
            digest.update(chunk)
        assert digest.hexdigest() == peers.body_sha256(n, 5)

        data = os.urandom(1 << 20)
        response = await client.post("/upload", content=data,
                                     headers=[("content-length", str(len(data)))])
        result = json.loads(await response.read())
        assert result == {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()}

        rtt = await client.ping()
        assert rtt > 0

        response = await client.get("/push")
        assert await response.read() == peers.PUSH_PAGE
        # spdy-transport 3.0.0 opens pushes without FLAG_UNIDIRECTIONAL: accepted anyway.
        assert [p.path for p in response.pushes] == ["/pushed.css"]
        assert await response.pushes[0].read() == peers.PUSHED_CSS


def test_node_cli_and_bench(node_url: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    out = tmp_path / "b.bin"
    proc = subprocess.run(
        [sys.executable, "-m", "spdyasgi.client.cli", f"{node_url}/bytes?n=1000000", "-k",
         "-o", str(out)], capture_output=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == peers.body_sha256(1000000, 0)
    proc = subprocess.run(
        [sys.executable, "-m", "spdyasgi.client.bench", f"{node_url}/hello", "-k", "-n", "1000",
         "-c", "2", "-m", "10"], capture_output=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.decode().splitlines()[-1][len("RESULT "):])
    assert result["succeeded"] == 1000 and result["failed"] == 0
