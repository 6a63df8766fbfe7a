"""TLS record sizes on the wire, over real sockets: frames are not cut into tiny records.

A TLS transport encrypts each item of ``writelines`` as its own record(s), so a list of
SPDY frames written as is became one 8-byte record per DATA frame header (and, from the
client, one record per SYN_STREAM), each paying a record's fixed cost at both ends.
These tests read the server's bytes record by record (a TLS client on memory BIOs over
a plain TCP stream) and count the client's records through a relay, and check that a
write arrives in as few records as its size allows, with the bytes intact.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from spdyasgi.client import SpdyClient
from spdyasgi.spdy import Connection, ConnectionConfig
from spdyasgi.tls import TLS_RECORD
from tests.spdyraw import RawSession
from tests.utils import run_server

TIMEOUT = 20.0
_HEADER = 5  # TLS record header: type, version (2), length (2)
_APPLICATION_DATA = 23


def body_of(size: int) -> bytes:
    """Bytes that differ from one position to the next (a shifted copy would show)."""
    return bytes((i * 7 + i // 251) & 0xFF for i in range(size))


def app_sending(size: int) -> Any:
    """`/big` answers `size` bytes in one body message, anything else 2 bytes."""
    payload = body_of(size)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = payload if scope["path"] == "/big" else b"ok"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return app


def client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["spdy/3.1"])
    return context


class RecordReader:
    """The TLS client side on memory BIOs: decrypts the server's bytes one record at a
    time and keeps the plaintext size of every application record (`records`)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.tls = client_context().wrap_bio(self._incoming, self._outgoing,
                                             server_hostname="localhost")
        self._wire = bytearray()
        self.records: list[int] = []

    async def handshake(self) -> None:
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._send_outgoing()
                data = await asyncio.wait_for(self._reader.read(65536), TIMEOUT)
                assert data, "server closed during the handshake"
                self._incoming.write(data)
        self._send_outgoing()
        assert not self._incoming.pending, "application data within the handshake's read"

    def _send_outgoing(self) -> None:
        data = self._outgoing.read()
        if data:
            self._writer.write(data)

    # -- what RawSession uses of a StreamReader / StreamWriter -------------------------
    async def read(self, _size: int) -> bytes:
        """The plaintext of the next records (at least one application record)."""
        plain = bytearray()
        while not plain:
            while len(self._wire) < _HEADER or len(self._wire) < _HEADER + int.from_bytes(
                    self._wire[3:5], "big"):
                data = await self._reader.read(65536)
                if not data:
                    return bytes(plain)
                self._wire += data
            while len(self._wire) >= _HEADER:
                end = _HEADER + int.from_bytes(self._wire[3:5], "big")
                if len(self._wire) < end:
                    break
                assert self._wire[0] == _APPLICATION_DATA, f"record type {self._wire[0]}"
                self._incoming.write(bytes(self._wire[:end]))
                del self._wire[:end]
                got = 0
                while True:  # one record in: everything it decrypts to
                    try:
                        piece = self.tls.read(1 << 17)
                    except ssl.SSLWantReadError:
                        break
                    if not piece:
                        break
                    got += len(piece)
                    plain += piece
                if got:  # 0: a TLS 1.3 session ticket, not application data
                    self.records.append(got)
        return bytes(plain)

    def write(self, data: bytes) -> None:
        self.tls.write(data)
        self._send_outgoing()

    def is_closing(self) -> bool:
        return self._writer.is_closing()

    def close(self) -> None:
        self._writer.close()

    async def wait_closed(self) -> None:
        await self._writer.wait_closed()


async def record_session(port: int, window: int) -> tuple[RawSession, RecordReader]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port),
                                            TIMEOUT)
    records = RecordReader(reader, writer)
    await asyncio.wait_for(records.handshake(), TIMEOUT)
    assert records.tls.selected_alpn_protocol() == "spdy/3.1"
    conn = Connection(ConnectionConfig(client_side=True, initial_window_size=window,
                                       session_window_size=max(window, 1 << 24)))
    conn.initiate_connection()
    session = RawSession(records, records, conn)  # type: ignore[arg-type]
    session.flush()
    # The SETTINGS and a first small answer arrive first, in writes of their own.
    reply = await session.fetch("/small")
    assert reply.body == b"ok"
    return session, records


def fewest_records(size: int) -> int:
    return -(-size // TLS_RECORD)


async def test_large_response_written_at_once_fills_tls_records(
        tls_files: tuple[str, str]) -> None:
    """A lone 200 KiB response leaves in one list write (SYN_REPLY, DATA header, payload):
    as many records as its bytes need, not one each for the reply and the frame header."""
    size = 200 * 1024
    certfile, keyfile = tls_files
    async with run_server(app_sending(size), ssl_certfile=certfile,
                          ssl_keyfile=keyfile) as (_, port):
        session, records = await record_session(port, window=1 << 20)
        try:
            mark = len(records.records)
            reply = await session.fetch("/big")
            assert reply.status == 200 and bytes(reply.body) == body_of(size)
            sizes = records.records[mark:]
            assert len(sizes) == fewest_records(sum(sizes)), sizes
            assert all(n == TLS_RECORD for n in sizes[:-1]), sizes
        finally:
            await session.close()


async def test_scheduled_body_fills_tls_records(tls_files: tuple[str, str]) -> None:
    """A 5 MiB body is too large to send directly: the scheduler cuts it into 128 KiB
    DATA frames and writes them as one list; the frame headers ride in full records."""
    size = 5 * 1024 * 1024
    certfile, keyfile = tls_files
    async with run_server(app_sending(size), ssl_certfile=certfile, ssl_keyfile=keyfile,
                          max_pending_output=16 * 1024 * 1024) as (_, port):
        session, records = await record_session(port, window=8 * 1024 * 1024)
        try:
            mark = len(records.records)
            reply = await session.fetch("/big")
            assert reply.status == 200 and bytes(reply.body) == body_of(size)
            assert reply.data_frames >= 40  # cut into frames: their headers were items
            sizes = records.records[mark:]
            assert len(sizes) == fewest_records(sum(sizes)), sizes[:20]
            assert min(sizes[:-1]) == TLS_RECORD
        finally:
            await session.close()


class RecordCountingRelay:
    """A TCP relay that counts the TLS application records the client sends."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.client_records = 0
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                       count: bool) -> None:
            wire = bytearray()
            try:
                while data := await src.read(65536):
                    if count:
                        wire += data
                        while len(wire) >= _HEADER:
                            end = _HEADER + int.from_bytes(wire[3:5], "big")
                            if len(wire) < end:
                                break
                            if wire[0] == _APPLICATION_DATA:
                                self.client_records += 1
                            del wire[:end]
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))


async def test_client_requests_of_one_flush_share_a_tls_record(
        tls_files: tuple[str, str]) -> None:
    """Ten requests started together leave the client in one flush: one TLS record, not
    one per SYN_STREAM (each of which the server would decrypt with a read of its own)."""
    certfile, keyfile = tls_files
    async with run_server(app_sending(16), ssl_certfile=certfile,
                          ssl_keyfile=keyfile) as (_, port):
        relay = RecordCountingRelay(port)
        await relay.start()
        try:
            async with SpdyClient(f"https://127.0.0.1:{relay.port}", verify=False) as client:
                first = await client.get("/small")
                assert first.status == 200 and await first.aread() == b"ok"
                before = relay.client_records
                responses = await asyncio.wait_for(
                    asyncio.gather(*(client.get("/small") for _ in range(10))), TIMEOUT)
                bodies = [await response.aread() for response in responses]
                assert bodies == [b"ok"] * 10
                assert relay.client_records - before == 1
        finally:
            await relay.stop()


def test_tls_records_recut_keeps_bytes_and_fills_records() -> None:
    """The re-cut itself, on the shapes the engine produces: every item but the last a
    whole number of records, the bytes unchanged, large payloads passed as views."""
    from spdyasgi.tls import tls_records

    header, small = b"\x00" * 8, b"reply" * 10
    big, huge = body_of(3 * TLS_RECORD + 5), body_of(128 * 1024)
    shapes: list[list[bytes | memoryview]] = [
        [], [small], [header, b"x" * 12], [small, header, huge],
        [header, huge, header, huge, header, big], [big, small],
        [memoryview(big)[1:], header, memoryview(huge)], [b"", header, b""],
        [body_of(TLS_RECORD)], [header, body_of(TLS_RECORD - 8), header],
    ]
    for chunks in shapes:
        out = tls_records(chunks)
        assert b"".join(bytes(c) for c in out) == b"".join(bytes(c) for c in chunks)
        assert all(len(c) and len(c) % TLS_RECORD == 0 for c in out[:-1]), [len(c) for c in out]
        total = sum(len(c) for c in chunks)
        assert len(out) <= fewest_records(total) if total else not out
    assert tls_records([header, b"y"]) == [header + b"y"]  # small ones: one joined item
    assert isinstance(tls_records([huge])[0], memoryview)  # no copy of a large payload
