"""A first control frame of an unknown SPDY version is answered with GOAWAY, the same in
cleartext (prior knowledge, sniffed) as over TLS (ALPN): spec 2.1, 2.4.1 (issue 11)."""

from __future__ import annotations

import asyncio
import ssl
import struct

import pytest

from tests.utils import hello_app, run_server

pytestmark = pytest.mark.timeout(60)

# SYN_STREAM of version 99 (0x80 0x63 ...) for stream 1, with a 10-byte head and no block.
UNKNOWN_VERSION_SYN = struct.pack("!LL", 0x80630001, 10) + struct.pack("!LLBB", 1, 0, 0, 0)
GOAWAY = 7


def _frames(data: bytes) -> list[tuple[int, int, bytes]]:
    """(type, version, payload) of each control frame; DATA as type -1."""
    out = []
    pos = 0
    while len(data) - pos >= 8:
        word, flags_length = struct.unpack_from("!LL", data, pos)
        length = flags_length & 0xFFFFFF
        payload = data[pos + 8:pos + 8 + length]
        if word & 0x80000000:
            out.append((word & 0xFFFF, (word >> 16) & 0x7FFF, payload))
        else:
            out.append((-1, 0, payload))
        pos += 8 + length
    assert pos == len(data), "a partial frame before the close"
    return out


async def _answer(port: int, context: ssl.SSLContext | None) -> list[tuple[int, int, bytes]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    writer.write(UNKNOWN_VERSION_SYN)
    received = b""
    while True:  # until the server closes (bounded by the timeout)
        chunk = await asyncio.wait_for(reader.read(65536), 10)
        if not chunk:
            break
        received += chunk
    writer.close()
    return _frames(received)


async def test_unknown_version_is_answered_the_same_in_cleartext_and_tls(
        tls_files: tuple[str, str]) -> None:
    async with run_server(hello_app) as (_, port):
        cleartext = await _answer(port, None)
    certfile, keyfile = tls_files
    context = ssl.create_default_context(cafile=certfile)
    context.set_alpn_protocols(["spdy/3.1"])
    async with run_server(hello_app, ssl_certfile=certfile, ssl_keyfile=keyfile) as (_, port):
        tls = await _answer(port, context)
    for frames in (cleartext, tls):
        goaways = [payload for kind, _, payload in frames if kind == GOAWAY]
        assert len(goaways) == 1, frames
        last_good, status = struct.unpack("!LL", goaways[0])
        assert (last_good, status) == (0, 1)  # nothing processed; PROTOCOL_ERROR
        assert frames[-1][0] == GOAWAY
        assert all(version == 3 for kind, version, _ in frames if kind >= 0)
    assert [kind for kind, _, _ in cleartext] == [kind for kind, _, _ in tls]
