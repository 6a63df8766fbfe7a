"""AutoProtocol: cleartext sniffing of the first bytes and ALPN dispatch on TLS."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest

from spdyasgi.config import Config
from spdyasgi.protocols import auto
from spdyasgi.protocols.auto import AutoProtocol
from spdyasgi.server import ServerState
from spdyasgi.spdy.constants import Version
from tests.utils import hello_app, open_conn, read_response, run_server

pytestmark = pytest.mark.timeout(30)


class FakeTransport(asyncio.Transport):
    def __init__(self, extra: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.extra = {"peername": ("127.0.0.1", 1234), "sockname": ("127.0.0.1", 80)}
        self.extra.update(extra or {})
        self.protocol: Any = None
        self.closed = False
        self.written = b""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Any:
        return self.protocol

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def write(self, data: Any) -> None:
        self.written += bytes(data)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class StubSpdy(asyncio.Protocol):
    """Stands in for spdyasgi.protocols.spdy.SpdyProtocol and records its use."""

    instances: list[StubSpdy] = []

    def __init__(
        self, config: Any, server_state: Any, app_state: Any, _loop: Any = None, version: Any = None
    ) -> None:
        self.version = version
        self.received = b""
        self.transport: Any = None
        StubSpdy.instances.append(self)

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(b"SPDY:" + self.version.value.encode())

    def data_received(self, data: bytes) -> None:
        self.received += data


@pytest.fixture
def stub_spdy(monkeypatch: pytest.MonkeyPatch) -> type[StubSpdy]:
    StubSpdy.instances = []
    monkeypatch.setattr(auto, "_spdy_class", lambda: StubSpdy)
    return StubSpdy


def make(**options: Any) -> tuple[AutoProtocol, FakeTransport, ServerState]:
    config = Config(hello_app, log_config=None, lifespan="off", **options)
    config.load()
    state = ServerState()
    protocol = AutoProtocol(config, state, {}, _loop=asyncio.get_running_loop())
    transport = FakeTransport()
    protocol.connection_made(transport)
    return protocol, transport, state


async def test_one_byte_waits_then_http(stub_spdy: type[StubSpdy]) -> None:
    protocol, transport, state = make(http1="h11")
    assert protocol in state.connections
    protocol.data_received(b"G")
    assert transport.protocol is None and not transport.closed
    protocol.data_received(b"ET / HTTP/1.1\r\nHost: t\r\n\r\n")
    new = transport.protocol
    assert type(new).__name__ == "H11Protocol"
    assert protocol not in state.connections and new in state.connections
    assert new.cycle is not None and new.cycle.scope["path"] == "/"  # buffered bytes handed on
    await asyncio.sleep(0.05)
    assert transport.written.startswith(b"HTTP/1.1 200")
    assert not stub_spdy.instances


@pytest.mark.parametrize(("setting", "version"), [("3.1", Version.SPDY31), ("3", Version.SPDY3)])
async def test_spdy_control_frame(
    stub_spdy: type[StubSpdy], setting: str, version: Version
) -> None:
    protocol, transport, _ = make(cleartext_spdy_version=setting)
    protocol.data_received(b"\x80")
    assert not stub_spdy.instances
    protocol.data_received(b"\x03\x00\x01rest")
    assert transport.protocol is stub_spdy.instances[0]
    assert stub_spdy.instances[0].version is version
    assert stub_spdy.instances[0].received == b"\x80\x03\x00\x01rest"


@pytest.mark.parametrize(
    "first", [b"\x16\x03\x01\x00", b"PRI * HTTP/2.0\r\n", b"\x00\x01"]
)
async def test_refused(stub_spdy: type[StubSpdy], first: bytes) -> None:
    protocol, transport, _ = make()
    protocol.data_received(first)
    assert transport.closed and transport.protocol is None
    assert not stub_spdy.instances


async def test_propfind_is_not_http2(stub_spdy: type[StubSpdy]) -> None:
    protocol, transport, _ = make()
    protocol.data_received(b"PR")
    assert transport.protocol is None and not transport.closed
    protocol.data_received(b"OPFIND / HTTP/1.1\r\nHost: t\r\n\r\n")
    assert transport.protocol is not None and not transport.closed


async def test_silent_client_times_out() -> None:
    _, transport, _ = make(timeout_receive=0.05)
    await asyncio.sleep(0.2)
    assert transport.closed


async def test_cleartext_real_socket(stub_spdy: type[StubSpdy]) -> None:
    async with run_server(hello_app) as (_, port):
        reader, writer = await open_conn(port)
        writer.write(b"GET /plain HTTP/1.1\r\nHost: t\r\n\r\n")
        assert (await read_response(reader))[2] == b"hello /plain"
        writer.close()
        reader, writer = await open_conn(port)
        writer.write(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        assert await asyncio.wait_for(reader.read(), 5) == b""
        reader, writer = await open_conn(port)
        writer.write(b"\x80\x03\x00\x04")
        assert await asyncio.wait_for(reader.readexactly(8), 5) == b"SPDY:3.1"
        writer.close()


@pytest.mark.parametrize(
    ("offer", "expected"),
    [
        (["spdy/3.1", "http/1.1"], "SPDY:3.1"),
        (["spdy/3"], "SPDY:3"),
        (["http/1.1"], "HTTP/1.1"),
        (None, "HTTP/1.1"),
    ],
)
async def test_tls_alpn(
    stub_spdy: type[StubSpdy],
    tls_files: tuple[str, str],
    offer: list[str] | None,
    expected: str,
) -> None:
    certfile, keyfile = tls_files
    context = ssl.create_default_context(cafile=certfile)
    if offer:
        context.set_alpn_protocols(offer)
    async with run_server(hello_app, ssl_certfile=certfile, ssl_keyfile=keyfile) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        if expected.startswith("SPDY"):
            assert await asyncio.wait_for(reader.readexactly(len(expected)), 5) == expected.encode()
        else:
            writer.write(b"GET /tls HTTP/1.1\r\nHost: t\r\n\r\n")
            status, _, body = await read_response(reader)
            assert (status, body) == (200, b"hello /tls")
        writer.close()


async def test_cleartext_real_spdy_protocol() -> None:
    """With the real SpdyProtocol: a PING by prior knowledge gets SPDY frames back."""
    async with run_server(hello_app) as (_, port):
        reader, writer = await open_conn(port)
        writer.write(b"\x80\x03\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01")
        frames = b""
        while b"\x80\x03\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01" not in frames:
            chunk = await asyncio.wait_for(reader.read(4096), 5)
            assert chunk, frames
            frames += chunk
        assert frames.startswith(b"\x80\x03")
        writer.close()
