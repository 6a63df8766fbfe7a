"""Full duplex over real sockets, against spdyasgi and node-spdy, TLS and cleartext: a
20 MiB echo completes byte-exact (the reply is read while the body is still going up), and
a caller that stops reading holds the server at a bounded point, then resumes it.

Before the fix, the echo stalled at exactly one stream window (1 MiB): the client credited
received bytes only when the caller took them, and the caller could only take them after
`request()` had sent the whole body.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from spdyasgi.client import ReadTimeout, SpdyClient, connect
from tests import peers
from tests.utils import run_server

from . import duplex_app

MIB = 1 << 20
KINDS = [("spdyasgi", False), ("spdyasgi", True), ("node", False), ("node", True)]
IDS = ["spdyasgi-cleartext", "spdyasgi-tls", "node-cleartext", "node-tls"]


@contextlib.contextmanager
def _node(tls: bool, directory: Path) -> Iterator[str]:
    if not peers.NODE_AVAILABLE:
        pytest.skip(peers.NODE_SKIP_REASON)
    options: dict[str, Any] = {"protocol": "spdy/3.1", "tls": tls}
    if tls:
        key, cert = peers.make_self_signed_cert(directory)
        options.update(key=str(key), cert=str(cert))
    with peers.start_node_server(options) as port:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def origin(kind: str, tls: bool, tls_files: tuple[str, str], directory: Path
                 ) -> AsyncIterator[str]:
    """The base URL of a running server of `kind` (in this loop for spdyasgi)."""
    if kind == "node":
        with _node(tls, directory) as url:
            yield url
        return
    options: dict[str, Any] = {}
    if tls:
        options = {"ssl_certfile": tls_files[0], "ssl_keyfile": tls_files[1]}
    async with run_server(duplex_app.app, **options) as (_, port):
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"


async def _until(condition: Callable[[], bool], timeout: float) -> None:
    """Wait (bounded) until `condition()` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def _settled(value: Callable[[], int], quiet: float, timeout: float) -> int:
    """`value()` once it stopped changing for `quiet` seconds (bounded by `timeout`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last, since = value(), loop.time()
    while loop.time() - since < quiet:
        assert loop.time() < deadline, "the value kept changing"
        await asyncio.sleep(0.02)
        now = value()
        if now != last:
            last, since = now, loop.time()
    return last


async def _chunks(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start:start + size])
        await asyncio.sleep(0)


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "tls"), KINDS, ids=IDS)
async def test_echo_20mib_full_duplex(kind: str, tls: bool, tls_files: tuple[str, str],
                                      tmp_path: Path) -> None:
    data = os.urandom(20 * MIB)
    async with origin(kind, tls, tls_files, tmp_path) as url:
        async def exchange() -> tuple[int, str]:
            async with connect(url, verify=False) as client:
                # An async iterator over TLS, one bytes object in cleartext: both stream.
                content: Any = _chunks(data) if tls else data
                response = await client.post("/echo", content=content, headers=[
                    ("content-length", str(len(data)))])
                assert response.status == 200
                digest = hashlib.sha256()
                total = 0
                async for chunk in response.aiter_bytes():
                    digest.update(chunk)
                    total += len(chunk)
                return total, digest.hexdigest()

        total, digest = await asyncio.wait_for(exchange(), 120)
    assert total == len(data)
    assert digest == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("tls", [False, True], ids=["cleartext", "tls"])
async def test_unread_response_holds_our_server_then_resumes(
        tls: bool, tls_files: tuple[str, str], tmp_path: Path) -> None:
    window = limit = 65536
    size = 20 * MIB
    async with (
        origin("spdyasgi", tls, tls_files, tmp_path) as url,
        SpdyClient(url, verify=False, window_size=window, max_buffer=limit) as client,
    ):
        response = await client.get(f"/bytes?n={size}")
        state = response._state
        await _until(lambda: state.buffered >= limit, 30)
        sent = await _settled(lambda: duplex_app.observed["sent"], 0.5, 30)
        # The server is stopped at our bound (plus what it queues itself), far from 20 MiB.
        assert state.buffered <= limit + window
        assert sent <= limit + window + 4 * 65536, sent
        digest = hashlib.sha256()
        total = 0
        async for chunk in response.aiter_bytes():  # reading resumes it
            digest.update(chunk)
            total += len(chunk)
            assert state.buffered <= limit + window
    assert total == size
    assert digest.hexdigest() == hashlib.sha256(duplex_app.pattern(size)).hexdigest()


@pytest.mark.parametrize("tls", [False, True], ids=["cleartext", "tls"])
async def test_unread_response_holds_node_then_resumes(tls: bool, tmp_path: Path) -> None:
    window = limit = 65536
    size = 8 * MIB
    with _node(tls, tmp_path) as url:
        async with SpdyClient(url, verify=False, window_size=window, max_buffer=limit) as client:
            response = await client.get(f"/bytes?n={size}&seed=3")
            state = response._state
            await _until(lambda: state.buffered >= limit, 30)
            held = await _settled(lambda: client.bytes_received, 0.5, 30)
            assert state.buffered <= limit + window
            assert held < 2 * (limit + window)
            digest = hashlib.sha256()
            total = 0
            async for chunk in response.aiter_bytes():
                digest.update(chunk)
                total += len(chunk)
    assert total == size
    assert digest.hexdigest() == peers.body_sha256(size, 3)


async def test_buffered_reply_is_credited_up_to_max_buffer(tls_files: tuple[str, str],
                                                           tmp_path: Path) -> None:
    """A reply smaller than `max_buffer` arrives whole while nobody reads (so `aread()`
    after a long upload never deadlocks)."""
    size = 3 * MIB
    async with (
        origin("spdyasgi", False, tls_files, tmp_path) as url,
        SpdyClient(url, window_size=65536, max_buffer=4 * MIB) as client,
    ):
        response = await client.get(f"/bytes?n={size}")
        await _until(lambda: response.is_complete, 30)
        assert response._state.buffered == size
        assert await response.aread() == duplex_app.pattern(size)


async def test_body_sources_and_upload_failure(tls_files: tuple[str, str],
                                               tmp_path: Path) -> None:
    data = os.urandom(300_000)
    path = tmp_path / "body.bin"
    path.write_bytes(data)
    async with (
        origin("spdyasgi", False, tls_files, tmp_path) as url,
        SpdyClient(url) as client,
    ):
        for content in (data, memoryview(data), path, open(path, "rb"),  # noqa: SIM115
                        [data[:1000], data[1000:]]):
            response = await client.post("/echo", content=content)
            assert await response.aread() == data
            if hasattr(content, "close"):
                content.close()

        async def broken() -> AsyncIterator[bytes]:
            yield b"x" * 100_000
            raise OSError("disk gone")

        with pytest.raises(OSError, match="disk gone"):  # from post() or aread()
            response = await client.post("/echo", content=broken())
            await response.aread()
        # The session is still fine.
        response = await client.get("/hello")
        assert await response.aread() == b"hello /hello"


async def test_idle_timeout_counts_upload_progress(tls_files: tuple[str, str],
                                                  tmp_path: Path) -> None:
    """A server that takes a body slowly for longer than `read_timeout`, then answers: no
    timeout while bytes move; a silent stretch of `read_timeout` does time out."""
    data = os.urandom(2 * MIB)
    async with (
        origin("spdyasgi", False, tls_files, tmp_path) as url,
        SpdyClient(url, read_timeout=0.6) as client,
    ):
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await client.post("/slowread", content=data)
        assert await response.aread() == str(len(data)).encode()
        assert loop.time() - started > 0.6  # it did take longer than the idle limit
        response = await client.get("/drip")
        assert (await response.aiter_bytes().__anext__()).startswith(b"drip")
        await response.aclose()
        with pytest.raises(ReadTimeout, match="read timeout"):
            await client.post("/slowread", content=_stalled())


async def _stalled() -> AsyncIterator[bytes]:
    yield b"x"
    await asyncio.Event().wait()  # a body source that never produces again
    yield b""  # pragma: no cover
