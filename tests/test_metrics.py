"""Prometheus metrics: scraped while load runs, checked against what the clients sent."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prometheus_client")

from prometheus_client.parser import text_string_to_metric_families

from spdyasgi.client import connect
from tests.procs import free_port, spdyasgi_process
from tests.utils import read_response, run_server

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """/echo: the body back; /big/N: N bytes; /fail: raises; /slow: waits for disconnect."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    if path == "/fail":
        raise RuntimeError("boom (expected by the metrics test)")
    if path == "/slow":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        await receive()  # http.disconnect when the client resets the stream
        return
    status = 404 if path == "/missing" else 200
    if path.startswith("/big/"):
        body = b"x" * int(path[5:])
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def wait_for(port: int, check: Any, timeout: float = 20) -> Samples:
    """Scrape until ``check(samples)`` holds (the server publishes once a second)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        samples = await asyncio.to_thread(scrape, port)
        if check(samples) or asyncio.get_running_loop().time() > deadline:
            return samples
        await asyncio.sleep(0.2)


SESSIONS, PER_SESSION = 8, 12


async def spdy_load(port: int, sent: Counter[str]) -> None:
    async def one(n: int) -> None:
        async with connect(f"http://127.0.0.1:{port}") as client:
            for i in range(PER_SESSION):
                body = b"u" * (100 * n + i)
                response = await client.post("/echo", content=body)
                assert await response.aread() == body
                sent["in"] += len(body)
                sent["out"] += len(body)
            response = await client.get("/big/70000")
            big = await response.aread()  # not inside +=: that would read sent["out"] first
            sent["out"] += len(big)
            response = await client.get("/missing")
            await response.aread()
            sent["streams"] += PER_SESSION + 2

    await asyncio.gather(*(one(n) for n in range(SESSIONS)))


async def test_scrape_while_load_runs_matches_what_was_sent() -> None:
    metrics_port = free_port()
    sent: Counter[str] = Counter()
    async with run_server(app, metrics_port=metrics_port, access_log=False) as (_, port):
        before = await asyncio.to_thread(scrape, metrics_port)
        load = asyncio.ensure_future(spdy_load(port, sent))
        during: list[Samples] = []
        while not load.done():  # scrapes while the load runs: never ahead of the clients
            during.append(await asyncio.to_thread(scrape, metrics_port))
            assert delta(during[-1], before, "spdyasgi_streams_total",
                         protocol="spdy/3.1") <= SESSIONS * (PER_SESSION + 2)
            await asyncio.sleep(0.1)
        await load
        # HTTP/1.1 on the same port, and one app exception.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
        assert (await read_response(reader))[2] == b"hello"
        writer.write(b"GET /fail HTTP/1.1\r\nHost: a\r\n\r\n")
        assert (await read_response(reader))[0] == 500
        writer.close()
        total = SESSIONS * (PER_SESSION + 2)

        def settled(s: Samples) -> bool:
            return (delta(s, before, "spdyasgi_requests_total", protocol="http/1.1",
                          status_class="5xx") == 1
                    and delta(s, before, "spdyasgi_request_duration_seconds_count",
                              protocol="spdy/3.1") == total
                    and value(s, "spdyasgi_sessions_open", protocol="http/1.1") == 0)

        after = await wait_for(metrics_port, settled)
    assert during, "the load ended before a single scrape"
    spdy = {"protocol": "spdy/3.1"}
    assert delta(after, before, "spdyasgi_sessions_total", **spdy) == SESSIONS
    assert value(after, "spdyasgi_sessions_open", **spdy) == 0
    assert delta(after, before, "spdyasgi_streams_total", **spdy) == total
    assert value(after, "spdyasgi_streams_open", **spdy) == 0
    assert delta(after, before, "spdyasgi_requests_total", status_class="2xx",
                 **spdy) == SESSIONS * (PER_SESSION + 1)
    assert delta(after, before, "spdyasgi_requests_total", status_class="4xx",
                 **spdy) == SESSIONS
    assert delta(after, before, "spdyasgi_request_duration_seconds_count", **spdy) == total
    assert delta(after, before, "spdyasgi_request_body_bytes_total", **spdy) == sent["in"]
    assert delta(after, before, "spdyasgi_response_body_bytes_total", **spdy) == sent["out"]
    h1 = {"protocol": "http/1.1"}
    assert delta(after, before, "spdyasgi_sessions_total", **h1) == 1
    assert delta(after, before, "spdyasgi_requests_total", status_class="2xx", **h1) == 1
    assert delta(after, before, "spdyasgi_request_body_bytes_total", **h1) == 5
    assert delta(after, before, "spdyasgi_app_exceptions_total") == 1


async def test_resets_goaway_tls_and_proxy_rejections(tls_files: tuple[str, str]) -> None:
    metrics_port = free_port()
    certfile, keyfile = tls_files
    async with run_server(app, metrics_port=metrics_port, ssl_certfile=certfile,
                          ssl_keyfile=keyfile, proxy_protocol="v2",
                          access_log=False) as (server, port):
        before = await asyncio.to_thread(scrape, metrics_port)
        # A PROXY rejection: no header from a trusted source.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        # A TLS handshake failure behind a valid LOCAL header: plain HTTP to the TLS port.
        from tests.proxyrelay import v2_header

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(v2_header(("0.0.0.0", 0), ("0.0.0.0", 0), command=0)
                     + b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        await asyncio.wait_for(reader.read(), 10)
        writer.close()
        # A client RST_STREAM, and the GOAWAY of a graceful shutdown.
        from tests.proxyrelay import relay

        async with relay(port, lambda c, s: v2_header(c, s)) as front:
            client = connect(f"https://127.0.0.1:{front}", verify=False)
            async with client:
                async with client.stream("GET", "/slow") as response:
                    assert response.status == 200
                    await response.aclose()  # resets the stream: CANCEL
                body = await (await client.get("/big/10")).aread()
                assert body == b"x" * 10
                server.should_exit = True  # GOAWAY OK to the open session
                with pytest.raises(Exception):  # noqa: B017 - any end of the session will do
                    for _ in range(100):
                        await client.get("/big/1")
                        await asyncio.sleep(0.05)

        def settled(s: Samples) -> bool:
            return delta(s, before, "spdyasgi_goaway_sent_total", code="0") >= 1

        after = await wait_for(metrics_port, settled)
    assert delta(after, before, "spdyasgi_proxy_protocol_rejections_total", reason="invalid") == 1
    failures = sum(v for (name, _), v in after.items()
                   if name == "spdyasgi_tls_handshake_failures_total")
    assert failures - sum(v for (name, _), v in before.items()
                          if name == "spdyasgi_tls_handshake_failures_total") == 1
    assert delta(after, before, "spdyasgi_rst_stream_received_total", code="5") == 1
    assert delta(after, before, "spdyasgi_goaway_sent_total", code="0") >= 1


def test_workers_share_one_scrape(tmp_path: Path) -> None:
    """--workers 2: the supervisor serves the sum of both workers (multiprocess mode)."""
    metrics_port = free_port()
    with spdyasgi_process(tmp_path, "tests.proxyrelay:echo_app", "--workers", "2",
                          "--metrics-port", str(metrics_port), "--lifespan", "off",
                          "--no-access-log") as server:

        async def load() -> None:
            for _ in range(20):
                async with connect(f"http://127.0.0.1:{server.port}") as client:
                    for _ in range(3):
                        assert json.loads(await (await client.get("/")).aread())["pid"]

        asyncio.run(load())

        async def settled() -> Samples:
            return await wait_for(metrics_port, lambda s: value(
                s, "spdyasgi_streams_total", protocol="spdy/3.1") == 60)

        samples = asyncio.run(settled())
    assert value(samples, "spdyasgi_sessions_total", protocol="spdy/3.1") == 20
    assert value(samples, "spdyasgi_streams_total", protocol="spdy/3.1") == 60
    assert value(samples, "spdyasgi_requests_total", protocol="spdy/3.1",
                 status_class="2xx") == 60
    assert value(samples, "spdyasgi_sessions_open", protocol="spdy/3.1") == 0


async def test_resets_the_engine_sends_on_its_own_are_counted() -> None:
    """RST_STREAMs the engine queues without an API call (a refusal over its stream limit,
    DATA for a stream that never existed) count like the session's own resets."""
    from tests.spdyraw import RawSession

    metrics_port = free_port()
    async with run_server(app, metrics_port=metrics_port, max_concurrent_streams=1,
                          access_log=False) as (_, port):
        before = await asyncio.to_thread(scrape, metrics_port)
        raw = await RawSession.connect(port, record=True)
        try:
            slow = raw.request("/slow")  # holds the only stream
            refused = raw.request("/slow")  # before our SETTINGS arrived: the engine refuses
            unknown = refused + 40  # DATA for a stream never opened: INVALID_STREAM
            raw.writer.write(unknown.to_bytes(4, "big") + b"\x00" + (5).to_bytes(3, "big")
                             + b"hello")
            deadline = asyncio.get_running_loop().time() + 20
            while not {refused, unknown} <= raw.rst_streams().keys():
                assert asyncio.get_running_loop().time() < deadline, raw.rst_streams()
                assert await raw.pump(), "server closed the session"
            assert raw.rst_streams() == {refused: 3, unknown: 2}
            assert slow not in raw.rst_streams()

            def settled(s: Samples) -> bool:
                return (delta(s, before, "spdyasgi_rst_stream_sent_total", code="3") >= 1
                        and delta(s, before, "spdyasgi_rst_stream_sent_total", code="2") >= 1)

            after = await wait_for(metrics_port, settled)
        finally:
            raw.writer.close()
    assert delta(after, before, "spdyasgi_rst_stream_sent_total", code="3") == 1
    assert delta(after, before, "spdyasgi_rst_stream_sent_total", code="2") == 1
    assert delta(after, before, "spdyasgi_streams_refused_total") == 1


async def test_dialout_session_counts_and_drains_like_an_accepted_one() -> None:
    """A --connect session (SpdyProtocol on a connection we opened) is in the metrics as
    an accepted session is, engine-sent resets included, and graceful shutdown ends it
    with GOAWAY OK and closes the gauge."""
    from spdyasgi.spdy import Connection, ConnectionConfig, Version
    from tests.spdyraw import RawSession

    dialed: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
        asyncio.get_running_loop().create_future())

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not dialed.done():
            dialed.set_result((reader, writer))

    relay = await asyncio.start_server(accept, "127.0.0.1", 0)
    relay_port = relay.sockets[0].getsockname()[1]
    metrics_port = free_port()
    try:
        async with run_server(app, metrics_port=metrics_port, access_log=False,
                              connect=[f"127.0.0.1:{relay_port}"], connect_cleartext=True,
                              ) as (server, _):
            before = await asyncio.to_thread(scrape, metrics_port)
            reader, writer = await asyncio.wait_for(dialed, 20)
            assert (await asyncio.wait_for(reader.readline(), 20)).startswith(
                b"SPDYASGI-REGISTER ")
            writer.write(b"OK\r\n")
            conn = Connection(ConnectionConfig(client_side=True, version=Version.SPDY31))
            conn.initiate_connection()
            raw = RawSession(reader, writer, conn)
            raw.raw = bytearray()
            raw.flush()
            sid = raw.request("/big/10")
            unknown = sid + 40
            writer.write(unknown.to_bytes(4, "big") + b"\x00" + (1).to_bytes(3, "big") + b"x")
            while not (raw.replies[sid].ended and unknown in raw.rst_streams()):
                assert await raw.pump(20), "the origin closed the session"
            assert bytes(raw.replies[sid].body) == b"x" * 10

            def open_one(s: Samples) -> bool:
                return (value(s, "spdyasgi_sessions_open", protocol="spdy/3.1") == 1
                        and delta(s, before, "spdyasgi_rst_stream_sent_total", code="2") == 1)

            during = await wait_for(metrics_port, open_one)
            server.should_exit = True  # graceful: GOAWAY OK to the relay, then close
            while await raw.pump(20):
                pass
            assert raw.goaway is not None and raw.goaway.status == 0
            writer.close()
            after = await wait_for(metrics_port, lambda s: value(
                s, "spdyasgi_sessions_open", protocol="spdy/3.1") == 0)
    finally:
        relay.close()
    spdy = {"protocol": "spdy/3.1"}
    assert value(during, "spdyasgi_sessions_open", **spdy) == 1
    assert value(after, "spdyasgi_sessions_total", **spdy) >= 1
    assert delta(during, before, "spdyasgi_rst_stream_sent_total", code="2") == 1
    assert delta(after, before, "spdyasgi_goaway_sent_total", code="0") == 1
    assert delta(after, before, "spdyasgi_requests_total", status_class="2xx", **spdy) == 1
