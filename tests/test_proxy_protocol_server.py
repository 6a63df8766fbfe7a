"""The PROXY header over real sockets: before the sniff, before TLS, and the trust policy."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from click.testing import CliRunner

from spdyasgi.client import connect
from spdyasgi.config import Config, ConfigError
from spdyasgi.main import main
from spdyasgi.protocols.proxy import REJECTIONS
from tests.proxyrelay import echo_app, relay, tlv, v2_header
from tests.utils import read_response, run_server

GET = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"


async def raw_request(port: int, data: bytes, source: str = "127.0.0.1") -> Any:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        writer.write(data)
        status, _, body = await read_response(reader)
        assert status == 200
        return json.loads(body)
    finally:
        writer.close()


async def closed_without_answer(port: int, data: bytes, source: str = "127.0.0.1") -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        writer.write(data)
        try:
            rest = await asyncio.wait_for(reader.read(), 10)
        except ConnectionResetError:
            rest = b""
        return rest == b""
    finally:
        writer.close()


async def test_v1_header_gives_http11_scope_its_addresses(http1: str) -> None:
    header = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n"
    async with run_server(echo_app, proxy_protocol="v1", http1=http1) as (_, port):
        seen = await raw_request(port, header + GET)
    assert seen["client"] == ["192.0.2.7", 56324]
    assert seen["server"] == ["198.51.100.1", 443]
    assert seen["proxy"]["version"] == 1


async def test_v2_cleartext_spdy_through_a_balancer_sees_the_client() -> None:
    def header(client: Any, server: Any) -> bytes:
        return v2_header(("203.0.113.9", client[1]), server,
                         tlv(0x02, b"example.com") + tlv(0x05, b"req-1"))

    async with run_server(echo_app, proxy_protocol="v2") as (_, port), \
            relay(port, header) as front, \
            connect(f"http://127.0.0.1:{front}") as client:
        seen = [json.loads(await (await client.get(f"/{i}")).aread()) for i in range(3)]
    for one in seen:
        assert one["client"][0] == "203.0.113.9"
        assert one["proxy"]["authority"] == "example.com"
        assert one["proxy"]["unique_id"] == "req-1"
        assert one["spdy"]


async def test_v2_tls_passthrough_alpn_spdy_end_to_end(tls_files: tuple[str, str]) -> None:
    certfile, keyfile = tls_files

    def header(client: Any, server: Any) -> bytes:
        return v2_header(("198.51.100.77", 4242), ("192.0.2.1", 443), tlv(0x01, b"spdy/3.1"))

    async with run_server(echo_app, proxy_protocol="auto", ssl_certfile=certfile,
                          ssl_keyfile=keyfile) as (_, port), \
            relay(port, header) as front, \
            connect(f"https://127.0.0.1:{front}", verify=False) as client:
        seen = json.loads(await (await client.get("/")).aread())
        assert client.alpn_protocol == "spdy/3.1"
    assert seen["client"] == ["198.51.100.77", 4242]
    assert seen["server"] == ["192.0.2.1", 443]
    assert seen["scheme"] == "https"
    assert seen["spdy"]
    assert seen["proxy"]["alpn"] == "spdy/3.1"


async def test_local_command_uses_the_real_addresses() -> None:
    local = v2_header(("0.0.0.0", 0), ("0.0.0.0", 0), command=0)
    async with run_server(echo_app, proxy_protocol="v2") as (_, port):
        seen = await raw_request(port, local + GET)
    assert seen["client"][0] == "127.0.0.1"
    assert seen["server"] == ["127.0.0.1", port]
    assert seen["proxy"]["command"] == "LOCAL"


async def test_untrusted_source_without_header_is_served_directly() -> None:
    async with run_server(echo_app, proxy_protocol="auto",
                          proxy_protocol_allow_ips="127.0.0.9") as (_, port):
        seen = await raw_request(port, GET, source="127.0.0.3")
    assert seen["client"][0] == "127.0.0.3"
    assert seen["proxy"] is None


@pytest.mark.parametrize(
    ("allow", "data", "log"),
    [
        ("127.0.0.9", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n" + GET, "source not in"),
        ("127.0.0.1", GET, "bad PROXY header: no PROXY header"),
        ("127.0.0.1", b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n" + GET, "fields instead of 6"),
        ("127.0.0.1", b"PROXY TCP4 " + b"9" * 200, "longer than 107"),
        ("127.0.0.0/8", v2_header(("1.2.3.4", 1), ("5.6.7.8", 2)) + GET, "only v1"),
    ],
)
async def test_refused_headers_close_with_a_log_line(
    allow: str, data: bytes, log: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="spdyasgi.error")
    before = sum(REJECTIONS.values())
    async with run_server(echo_app, proxy_protocol="v1",
                          proxy_protocol_allow_ips=allow) as (_, port):
        assert await closed_without_answer(port, data)
    assert any(log in r.getMessage() and "closing" in r.getMessage() for r in caplog.records)
    assert sum(REJECTIONS.values()) == before + 1


async def test_no_header_within_the_handshake_timeout(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="spdyasgi.error")
    async with run_server(echo_app, proxy_protocol="v2", timeout_handshake=0.3) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"PROXY")  # a start, then silence
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
    assert any("no PROXY header within timeout_handshake" in r.getMessage()
               for r in caplog.records)


async def test_header_split_across_reads_and_request_in_same_segment() -> None:
    header = v2_header(("192.0.2.44", 1234), ("192.0.2.1", 80))
    async with run_server(echo_app, proxy_protocol="v2") as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(header[:5])
        await writer.drain()
        await asyncio.sleep(0)  # let the first piece go out on its own
        writer.write(header[5:] + GET)
        status, _, body = await read_response(reader)
        writer.close()
    assert status == 200
    assert json.loads(body)["client"] == ["192.0.2.44", 1234]


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError):
        Config("x:y", proxy_protocol="v3")
    config = Config("x:y", proxy_protocol="auto", proxy_protocol_allow_ips="10.0.0.0/8, 1.2.3.4")
    assert config.proxy_protocol_allow_ips == ["10.0.0.0/8", "1.2.3.4"]
    result = CliRunner().invoke(main, ["x:y", "--proxy-protocol", "v3"])
    assert result.exit_code == 2
    assert "--proxy-protocol" in result.output


async def test_shutdown_while_reading_the_header_still_serves_the_request() -> None:
    """A drain that starts between accept and header: the request in flight is answered
    (the connection is drained like any other), not cut."""
    header = v2_header(("192.0.2.45", 1), ("192.0.2.1", 80))
    async with run_server(echo_app, proxy_protocol="v2") as (server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(500):  # accepted: the reader waits for its header
            if server.server_state.connections:
                break
            await asyncio.sleep(0.01)
        server.should_exit = True
        for _ in range(500):
            if not server.servers[0].is_serving():
                break
            await asyncio.sleep(0.01)
        writer.write(header + GET)
        status, _, body = await read_response(reader)
        writer.close()
    assert status == 200
    assert json.loads(body)["client"] == ["192.0.2.45", 1]


async def test_websocket_scope_carries_the_header_addresses() -> None:
    """A WebSocket behind a PROXY v1 balancer sees the balancer's client, like HTTP/1.1."""
    seen: dict[str, Any] = {}

    async def ws_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return
        seen.update(client=scope["client"], server=scope["server"],
                    proxy=scope["extensions"].get("proxy_protocol"))
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})

    header = b"PROXY TCP4 192.0.2.9 198.51.100.1 40000 80\r\n"
    handshake = (
        b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    async with run_server(ws_app, proxy_protocol="v1", lifespan="off") as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(header + handshake)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        finally:
            writer.close()
    assert head.startswith(b"HTTP/1.1 101 ")
    assert seen["client"] == ("192.0.2.9", 40000)
    assert seen["server"] == ("198.51.100.1", 80)
    assert seen["proxy"]["version"] == 1
