"""A relay and two dial-out origins over real sockets (cleartext; TLS in test_relay_tls).

Visitors: curl (HTTP/1.1) and spdyasgi.client (SPDY), from 127.0.0.2 so the origin's
app can be seen to get the visitor's address (X-Forwarded-For, trusted from the relay on
127.0.0.1 by the origin's default --forwarded-allow-ips).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from spdyasgi.client import SpdyClient, StreamResetError
from tests.relayapps import download_digest
from tests.relaytools import Proc, curl, start_origin, start_relay, wait_for
from tests.utils import read_response

TOKEN = "s3cret-token"
MiB = 1 << 20


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, Proc, Proc]]:
    directory = tmp_path_factory.mktemp("relay")
    relay = start_relay(directory, "--token", TOKEN, "--origin-timeout", "3")
    origins: list[Proc] = []
    try:
        for name in ("alpha", "beta"):
            origins.append(start_origin(
                directory, relay, name, "--connect-cleartext", "--connect-token", TOKEN,
                "--connect-hosts", "127.0.0.1,relay.test", "--connect-sessions", "2"))
        yield relay, origins[0], origins[1]
    finally:
        for proc in (*origins, relay):
            proc.stop()


def url(relay: Proc, path: str) -> str:
    return f"http://127.0.0.1:{relay.ports['visitors']}{path}"


def client(relay: Proc, **kwargs: object) -> SpdyClient:
    return SpdyClient(url(relay, ""), local_addr=("127.0.0.2", 0), **kwargs)  # type: ignore[arg-type]


def test_get_over_http11_carries_visitor_address(setup: tuple[Proc, Proc, Proc]) -> None:
    relay, _, _ = setup
    result = curl("--interface", "127.0.0.2", url(relay, "/whoami"))
    assert result.returncode == 0, result.stderr
    name, address, scheme = result.stdout.decode().split()
    assert name in ("alpha", "beta")
    assert (address, scheme) == ("127.0.0.2", "http")


async def test_get_over_spdy(setup: tuple[Proc, Proc, Proc]) -> None:
    relay, _, _ = setup
    async with client(relay) as spdy:
        response = await spdy.get("/whoami")
        body = await response.aread()
    assert response.status == 200
    assert body.split()[1:] == [b"127.0.0.2", b"http"]
    assert response.get("x-origin") in ("alpha", "beta")


def test_unknown_host_is_502(setup: tuple[Proc, Proc, Proc]) -> None:
    relay, _, _ = setup
    result = curl("-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: other.test",
                  url(relay, "/whoami"))
    assert result.stdout == b"502"


async def test_websocket_upgrade_is_501_with_a_reason(setup: tuple[Proc, Proc, Proc]) -> None:
    """WebSockets are not relayed: a clear 501 and a log line, not a bare 403."""
    relay, _, _ = setup
    reader, writer = await asyncio.open_connection("127.0.0.1", relay.ports["visitors"])
    try:
        writer.write(b"GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        status, _, body = await asyncio.wait_for(read_response(reader), 20)
    finally:
        writer.close()
    assert status == 501
    assert body == b"spdyasgi-relay does not forward WebSockets\n"
    wait_for(lambda: '"WebSocket /chat" 501' in relay.text(), 20, "the relay's log line")


def test_origin_without_head_is_504(setup: tuple[Proc, Proc, Proc]) -> None:
    relay, _, _ = setup
    result = curl("-o", "/dev/null", "-w", "%{http_code}", url(relay, "/no-head"))
    assert result.stdout == b"504"
    assert "sent no response head for GET /no-head within 3 s" in relay.text()


async def test_thousand_requests_spread_over_both_origins(
        setup: tuple[Proc, Proc, Proc]) -> None:
    relay, _, _ = setup
    served: collections.Counter[str] = collections.Counter()
    async with client(relay, timeout=60) as spdy:
        async def one() -> None:
            response = await spdy.get("/whoami")
            await response.aread()
            assert response.status == 200
            served[response.get("x-origin") or "?"] += 1

        for _ in range(10):
            await asyncio.gather(*(one() for _ in range(100)))
    assert sum(served.values()) == 1000
    assert served["alpha"] >= 200 and served["beta"] >= 200, served


def test_download_100mib_byte_exact_relay_rss_bounded(setup: tuple[Proc, Proc, Proc]) -> None:
    relay, _, _ = setup
    size = 100 * MiB
    before = relay.rss_kb()
    peak = before
    proc = subprocess.Popen(
        ["curl", "-sS", "--max-time", "120", url(relay, f"/download?size={size}")],
        stdout=subprocess.PIPE)
    digest = hashlib.sha256()
    received = 0
    assert proc.stdout is not None
    while chunk := proc.stdout.read(1 << 20):
        digest.update(chunk)
        received += len(chunk)
        peak = max(peak, relay.rss_kb())
    assert proc.wait(30) == 0
    assert received == size
    assert digest.hexdigest() == download_digest(size)
    assert peak - before < 48 * 1024, f"relay RSS grew {peak - before} KiB"


async def test_upload_50mib_byte_exact_over_spdy(setup: tuple[Proc, Proc, Proc]) -> None:
    relay, _, _ = setup
    block = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB
    count = 50 * MiB // len(block)
    expected = hashlib.sha256(block * count).hexdigest()
    before = relay.rss_kb()

    async def body() -> AsyncIterator[bytes]:
        for _ in range(count):
            yield block

    async with client(relay, timeout=120) as spdy:
        response = await spdy.post("/upload", content=body())
        text = (await response.aread()).decode()
    assert text == f"{count * len(block)} {expected}"
    assert relay.rss_kb() - before < 48 * 1024


async def test_slow_visitor_slows_only_its_stream(setup: tuple[Proc, Proc, Proc]) -> None:
    relay, _, _ = setup
    async with client(relay, timeout=60, window_size=65536) as spdy:
        stalled = await spdy.get(f"/download?size={100 * MiB}")  # never read
        for _ in range(3):
            response = await spdy.get(f"/download?size={8 * MiB}")
            assert len(await response.aread()) == 8 * MiB
        assert not stalled.is_complete
        await stalled.aclose()


def test_wrong_token_refused_and_logged(setup: tuple[Proc, Proc, Proc],
                                        tmp_path: Path) -> None:
    relay, _, _ = setup
    intruder = start_origin(tmp_path, relay, "intruder", "--connect-cleartext",
                            "--connect-token", "wrong", wait=False)
    try:
        wait_for(lambda: "DENIED wrong token" in intruder.text(), 20, "the refusal")
    finally:
        intruder.stop()
    assert "relay refused the registration: DENIED wrong token" in intruder.text()
    assert "refused: wrong token" in relay.text()


async def test_spdy_stream_reset_when_origin_dies(tmp_path: Path) -> None:
    relay = start_relay(tmp_path, name="relay2")
    origin = start_origin(tmp_path, relay, "doomed", "--connect-cleartext")
    try:
        curl_proc = subprocess.Popen(["curl", "-sS", "--max-time", "60", url(relay, "/forever")],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        async with client(relay, timeout=60) as spdy:
            response = await spdy.get("/forever")
            chunks = response.aiter_bytes()
            await chunks.__anext__()
            assert curl_proc.stdout is not None
            assert await asyncio.to_thread(curl_proc.stdout.read, 65536)
            origin.stop()  # SIGKILL mid-stream
            with pytest.raises(StreamResetError):
                async for _ in chunks:
                    pass
        assert await asyncio.to_thread(curl_proc.wait, 30) != 0  # connection closed early
        wait_for(lambda: "lost mid-response" in relay.text(), 10, "the relay's log line")
    finally:
        origin.stop()
        relay.stop()


def test_relay_restart_origins_reconnect(tmp_path: Path) -> None:
    relay = start_relay(tmp_path, name="relay3")
    origin = start_origin(tmp_path, relay, "steady", "--connect-cleartext")
    try:
        assert curl(url(relay, "/whoami")).stdout.startswith(b"steady")
        relay.stop(signal.SIGTERM)  # graceful: GOAWAY to the origin, then exit
        assert relay.proc.returncode == 0
        wait_for(lambda: "Dial-out: reconnecting" in origin.text(), 10, "the origin to notice")
        relay = start_relay(tmp_path, port=relay.ports["visitors"],
                            origin_port=relay.ports["origins"], name="relay3b")
        wait_for(lambda: curl(url(relay, "/whoami"), timeout=5).stdout.startswith(b"steady"),
                 15, "the origin to serve through the new relay")
    finally:
        origin.stop()
        relay.stop()


def test_origin_sigterm_sends_goaway_and_drains(tmp_path: Path) -> None:
    relay = start_relay(tmp_path, name="relay4")
    origin = start_origin(tmp_path, relay, "leaving", "--connect-cleartext")
    try:
        proc = subprocess.Popen(["curl", "-sS", "--max-time", "60", "--limit-rate", "20M",
                                 url(relay, f"/download?size={40 * MiB}")],
                                stdout=subprocess.PIPE)
        assert proc.stdout is not None
        assert proc.stdout.read(1 << 20)
        origin.proc.send_signal(signal.SIGTERM)  # mid-download
        rest = proc.stdout.read()
        assert proc.wait(30) == 0
        assert len(rest) + (1 << 20) == 40 * MiB
        assert origin.proc.wait(20) == 0
        assert "Dial-out: session with" not in origin.text()  # no reconnect attempt
        wait_for(lambda: "gone (0 stream(s) in flight" in relay.text(), 10, "the drain")
    finally:
        origin.stop()
        relay.stop()


async def test_stream_limit_per_origin_is_503(tmp_path: Path) -> None:
    relay = start_relay(tmp_path, "--origin-max-streams", "1", name="relay5")
    origin = start_origin(tmp_path, relay, "narrow", "--connect-cleartext")
    try:
        async with client(relay, timeout=60) as spdy:
            held = await spdy.get("/forever")
            busy = await spdy.get("/whoami")
            assert busy.status == 503
            await held.aclose()  # resets the stream: the relay frees the origin's slot
            for _ in range(100):  # the reset reaches the relay a moment later
                response = await spdy.get("/whoami")
                await response.aread()
                if response.status != 503:
                    break
                await asyncio.sleep(0.1)
            assert response.status == 200 and response.get("x-origin") == "narrow"
    finally:
        origin.stop()
        relay.stop()
