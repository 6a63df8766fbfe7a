"""A real HAProxy (TCP mode, send-proxy-v2) in front of two spdyasgi processes.

Clients bind distinct loopback sources (127.0.0.x); HAProxy connects to the backends from
127.0.0.1, so an app that sees 127.0.0.x learned it from the PROXY header.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spdyasgi.client import connect
from spdyasgi.client.errors import RetryableError
from tests.haproxy import (
    DOC_VALUES,
    PASSTHROUGH,
    TERMINATING,
    HAProxy,
    require_haproxy,
    run_haproxy,
)
from tests.procs import ServerProcess, spdyasgi_process

pytestmark = pytest.mark.timeout(180)

APP = "tests.proxyrelay:echo_app"
COMMON = ("--proxy-protocol", "v2", "--proxy-protocol-allow-ips", "127.0.0.1",
          "--lifespan", "off", "--timeout-graceful-shutdown", "20", "--no-access-log")


@pytest.fixture(autouse=True)
def _haproxy_present() -> None:
    require_haproxy()


@contextlib.contextmanager
def backends(directory: Path, *extra: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    with spdyasgi_process(directory, APP, *COMMON, *extra) as a, \
            spdyasgi_process(directory, APP, *COMMON, *extra) as b:
        yield a, b


def pem(tls_files: tuple[str, str], directory: Path) -> Path:
    path = directory / "haproxy.pem"
    path.write_bytes(Path(tls_files[0]).read_bytes() + Path(tls_files[1]).read_bytes())
    return path


async def session(url: str, source: str, requests: int = 3) -> list[dict[str, Any]]:
    async with connect(url, verify=False, local_addr=(source, 0)) as client:
        seen = []
        for i in range(requests):
            response = await client.get(f"/r{i}")
            assert response.status == 200
            seen.append(json.loads(await response.aread()))
        seen[0]["alpn_negotiated"] = client.alpn_protocol
        return seen


def check_sessions(results: list[list[dict[str, Any]]], sources: list[str],
                   pids: set[int]) -> None:
    for source, seen in zip(sources, results, strict=True):
        assert {one["client"][0] for one in seen} == {source}  # the original address
        assert len({one["pid"] for one in seen}) == 1  # a session stays on one backend
    assert {seen[0]["pid"] for seen in results} == pids  # round robin used both


async def wait_up(proxy: HAProxy) -> None:
    """Both backends UP: HAProxy's HTTP/1.1 check (after a PROXY v2 header) passed."""
    await asyncio.to_thread(proxy.wait_status, {"a": "UP", "b": "UP"})


async def test_tls_passthrough_alpn_spdy_end_to_end(
    tmp_path: Path, tls_files: tuple[str, str]
) -> None:
    certfile, keyfile = tls_files
    with backends(tmp_path, "--ssl-certfile", certfile, "--ssl-keyfile", keyfile) as (a, b), \
            run_haproxy(tmp_path, PASSTHROUGH, port_a=a.port, port_b=b.port) as proxy:
        await wait_up(proxy)
        sources = [f"127.0.0.{n}" for n in range(2, 8)]
        url = f"https://127.0.0.1:{proxy.port}"
        results = [await session(url, source) for source in sources]
    check_sessions(results, sources, {a.pid, b.pid})
    for seen in results:
        assert seen[0]["alpn_negotiated"] == "spdy/3.1"
        assert seen[0]["scheme"] == "https" and seen[0]["spdy"]
        assert seen[0]["proxy"]["version"] == 2 and seen[0]["proxy"]["command"] == "PROXY"
        assert seen[0]["server"] == ["127.0.0.1", proxy.port]  # HAProxy's frontend address
    assert "LOCAL" not in a.stderr()  # health checks are accepted silently


async def test_haproxy_terminates_tls_and_forwards_cleartext_spdy(
    tmp_path: Path, tls_files: tuple[str, str]
) -> None:
    with backends(tmp_path) as (a, b), \
            run_haproxy(tmp_path, TERMINATING, pem=pem(tls_files, tmp_path),
                        port_a=a.port, port_b=b.port) as proxy:
        await wait_up(proxy)
        sources = [f"127.0.0.{n}" for n in range(10, 16)]
        url = f"https://127.0.0.1:{proxy.port}"
        results = [await session(url, source) for source in sources]
    check_sessions(results, sources, {a.pid, b.pid})
    for seen in results:
        info = seen[0]["proxy"]
        assert seen[0]["alpn_negotiated"] == "spdy/3.1"
        assert seen[0]["spdy"] and seen[0]["scheme"] == "http"  # the hop is cleartext
        assert info["alpn"] == "spdy/3.1"  # TLVs: what HAProxy negotiated with the client
        assert info["ssl"]["client"] & 0x01 and info["ssl"]["version"].startswith("TLSv1")
        assert info["unique_id"]
    assert len({seen[0]["proxy"]["unique_id"] for seen in results}) == len(results)


async def test_sigterm_drains_one_backend_without_a_failed_request(
    tmp_path: Path, tls_files: tuple[str, str]
) -> None:
    """New sessions move to the other backend; a request the server did not process
    (GOAWAY above last-good-stream-id: RetryableError) may be resent, nothing fails."""
    with backends(tmp_path) as (a, b), \
            run_haproxy(tmp_path, TERMINATING, pem=pem(tls_files, tmp_path),
                        port_a=a.port, port_b=b.port) as proxy:
        await wait_up(proxy)
        url = f"https://127.0.0.1:{proxy.port}"
        served: list[int] = []
        failures: list[BaseException] = []
        retried = 0
        stop = asyncio.Event()
        a_gone = asyncio.Event()
        after: list[int] = []

        async def worker(n: int) -> None:
            nonlocal retried
            while not stop.is_set():
                gone = a_gone.is_set()
                for _attempt in range(3):
                    try:
                        seen = await session(url, f"127.0.0.{20 + n}", requests=2)
                        break
                    except RetryableError:
                        retried += 1
                    except Exception as exc:
                        failures.append(exc)
                        return
                else:
                    failures.append(AssertionError("3 retryable failures in a row"))
                    return
                served.extend(one["pid"] for one in seen)
                if gone:
                    after.append(seen[0]["pid"])

        workers = [asyncio.ensure_future(worker(n)) for n in range(4)]
        try:
            for _ in range(600):  # both backends busy before the drain
                if {a.pid, b.pid} <= set(served) or failures:
                    break
                await asyncio.sleep(0.05)
            a.signal(signal.SIGTERM)
            assert await a.wait(30) == 0  # graceful exit
            await asyncio.to_thread(proxy.wait_status, {"a": "DOWN", "b": "UP"})
            a_gone.set()
            for _ in range(600):  # a good number of sessions after the drain
                if len(after) >= 12 or failures:
                    break
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*workers), 60)
    assert not failures, failures
    assert {a.pid, b.pid} <= set(served)
    assert len(after) >= 12 and set(after) == {b.pid}
    assert "Shutting down" in a.stderr()


def test_docs_show_the_tested_config() -> None:
    """docs/deployment.md quotes the HAProxy configurations above verbatim."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "deployment.md").read_text()
    for template in (PASSTHROUGH, TERMINATING):
        assert template.format(**DOC_VALUES) in text
