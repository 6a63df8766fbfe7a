"""Compatibility mode over real sockets: raw-frame clients that reproduce each fault of
docs/spdy.md "Compatibility mode" exactly, against a server with and without `compat`,
over TLS (ALPN spdy/3.1) and cleartext (prior knowledge).

The client is frames built by hand (`FrameFactory`, one deflate context, compressed in
wire order as the faulty Go clients do) and a `FrameDecoder` for what the server writes:
the engine's own client role would refuse to misbehave.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import ssl
from dataclasses import dataclass, field
from typing import Any

import pytest

from spdyasgi.spdy import StreamStatus
from tests.engine.factory import Frame, FrameDecoder, FrameFactory
from tests.spdyapps import Holding, app, pattern
from tests.utils import run_server

SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 2, 3, 4, 6, 7, 9
SET_INITIAL_WINDOW_SIZE = 7
MIB = 1 << 20
PROTOCOL_ERROR = 1

MODES = [pytest.param(tls, compat, id=f"{'tls' if tls else 'cleartext'}-"
                      f"{'compat' if compat else 'strict'}")
         for tls in (False, True) for compat in (False, True)]


def _headers(path: str, method: bytes = b"GET",
             extra: list[tuple[bytes, bytes]] | None = None) -> list[tuple[bytes, bytes]]:
    return [(b":method", method), (b":path", path.encode()), (b":version", b"HTTP/1.1"),
            (b":host", b"localhost"), (b":scheme", b"http"), *(extra or [])]


@dataclass
class Stream:
    status: int = 0
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False
    reset: int | None = None


class FaultyClient:
    """A SPDY/3.1 client made of raw frames; each test decides what it gets wrong."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.f = FrameFactory()
        self.decoder = FrameDecoder()
        self.streams: dict[int, Stream] = {}
        self.goaway: Frame | None = None
        self.pings: set[int] = set()
        self.closed = False
        #: Called with (stream id, bytes) for each DATA frame: the client's crediting policy.
        self.on_data: Any = None

    @classmethod
    async def connect(cls, port: int, tls: bool, tls_files: tuple[str, str],
                      initial_window: int | None = None) -> FaultyClient:
        context = None
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["spdy/3.1"])
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            "127.0.0.1", port, ssl=context,
            server_hostname="localhost" if tls else None), 10)
        client = cls(reader, writer)
        if tls:
            assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "spdy/3.1"
        if initial_window is not None:
            client.send(client.f.settings([(SET_INITIAL_WINDOW_SIZE, initial_window)]))
        return client

    def send(self, *frames: bytes) -> None:
        self.writer.write(b"".join(frames))

    def syn(self, sid: int, path: str, *, fin: bool = True, method: bytes = b"GET",
            extra: list[tuple[bytes, bytes]] | None = None) -> bytes:
        self.streams[sid] = Stream()
        return self.f.syn_stream(sid, _headers(path, method, extra), fin=fin)

    async def pump(self, timeout: float = 20.0) -> list[Frame]:
        data = await asyncio.wait_for(self.reader.read(1 << 18), timeout)
        if not data:
            self.closed = True
            return []
        frames = self.decoder.feed(data)
        for frame in frames:
            stream = self.streams.get(frame.stream_id)
            if frame.type == SYN_REPLY and stream is not None:
                stream.status = int((frame.header(b":status") or b"0").split()[0])
                stream.ended = frame.fin
            elif frame.type == 0 and stream is not None:
                stream.body += frame.payload
                stream.ended = frame.fin
                if self.on_data is not None:
                    self.on_data(frame.stream_id, frame.payload)
            elif frame.type == RST_STREAM and stream is not None:
                stream.reset = frame.status
            elif frame.type == GOAWAY:
                self.goaway = frame
            elif frame.type == PING and frame.ping_id % 2:
                self.pings.add(frame.ping_id)
        return frames

    async def until(self, done: Any, timeout: float = 30.0) -> None:
        """Read until `done()` (or the server closes), within `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done() and not self.closed:
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError("the server did not get there")
            await self.pump(left)

    async def sync(self, ping_id: int) -> None:
        """PING and wait for the echo: the server has handled everything sent before."""
        self.send(self.f.ping(ping_id))
        await self.until(lambda: ping_id in self.pings or self.goaway is not None)

    def finished(self, *sids: int) -> bool:
        return all(self.streams[s].ended or self.streams[s].reset is not None for s in sids)

    async def close(self) -> None:
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 5)
        except (OSError, asyncio.TimeoutError):
            pass


def _options(tls: bool, compat: bool, tls_files: tuple[str, str], **more: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"compat": compat, **more}
    if tls:
        options.update(ssl_certfile=tls_files[0], ssl_keyfile=tls_files[1])
    return options


def _fault_lines(caplog: pytest.LogCaptureFixture, fault: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if f"fault {fault}" in r.getMessage() and r.name == "spdyasgi.error"]


# --------------------------------------------------------- A: ids out of order under load


@pytest.mark.parametrize(("tls", "compat"), MODES)
async def test_stream_ids_out_of_order_under_concurrency(
        caplog: pytest.LogCaptureFixture, tls_files: tuple[str, str], tls: bool,
        compat: bool) -> None:
    """amahi/spdy: ids are assigned, then 20 goroutines queue their SYN_STREAMs in
    whatever order they get the lock (id 9 after 21); headers compressed in wire order."""
    caplog.set_level(logging.INFO, logger="spdyasgi.error")
    async with run_server(app, **_options(tls, compat, tls_files)) as (_, port):
        client = await FaultyClient.connect(port, tls, tls_files)
        ids = list(range(1, 41, 2))
        order = [sid for sid in ids if sid not in (9, 21)]
        random.Random(14).shuffle(order)
        order[3:3] = [21, 9]  # the reported case, among other inversions
        client.send(*(client.syn(sid, f"/n{sid}") for sid in order))
        await client.until(lambda: client.finished(*ids) or client.goaway is not None)
        if compat:
            assert client.goaway is None
            assert all(client.streams[s].status == 200 for s in ids)
            assert [bytes(client.streams[s].body) for s in ids] == [
                f"hello /n{s}".encode() for s in ids]
            lines = _fault_lines(caplog, "A")
            assert len(lines) == 1 and "tolerated (--compat)" in lines[0]
        else:
            assert client.goaway is not None and client.goaway.status == PROTOCOL_ERROR
            assert client.goaway.last_good < 40
            (line,) = _fault_lines(caplog, "A")
            assert "out-of-order stream ids" in line and "--compat" in line
        await client.close()


# ---------------------------------------------------- B: a body sent ignoring the windows


@pytest.mark.parametrize(("tls", "compat"), MODES)
async def test_upload_sent_without_regard_to_windows(
        caplog: pytest.LogCaptureFixture, tls_files: tuple[str, str], tls: bool,
        compat: bool) -> None:
    """A 1 MB POST written at once into a 64 KiB stream window."""
    caplog.set_level(logging.INFO, logger="spdyasgi.error")
    body = pattern(1_000_000)
    options = _options(tls, compat, tls_files, initial_window_size=65536)
    async with run_server(app, **options) as (_, port):
        client = await FaultyClient.connect(port, tls, tls_files)
        frames = [client.syn(1, "/hash", fin=False, method=b"POST",
                             extra=[(b"content-length", str(len(body)).encode())])]
        for start in range(0, len(body), 16384):
            chunk = body[start:start + 16384]
            frames.append(client.f.data(1, chunk, fin=start + 16384 >= len(body)))
        client.send(*frames)
        await client.until(lambda: client.finished(1))
        stream = client.streams[1]
        if compat:
            assert stream.status == 200
            assert bytes(stream.body) == f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()
            lines = _fault_lines(caplog, "B")
            assert len(lines) == 1 and "tolerated (--compat)" in lines[0]
        else:
            assert stream.reset == StreamStatus.FLOW_CONTROL_ERROR
            (line,) = _fault_lines(caplog, "B")
            assert "stream 1 reset" in line and "--compat" in line
        # Either way the session lives on.
        client.send(client.syn(3, "/after"))
        await client.until(lambda: client.finished(3))
        assert client.streams[3].status == 200 and client.goaway is None
        await client.close()


# ----------------------------------------- C/D: a 3.1 client that never credits stream 0


@pytest.mark.parametrize(("tls", "compat"), MODES)
async def test_client_crediting_streams_but_not_the_session_until_5_mib(
        caplog: pytest.LogCaptureFixture, tls_files: tuple[str, str], tls: bool,
        compat: bool) -> None:
    """The Go client's session window starts at its own INITIAL_WINDOW_SIZE (10 MiB): it
    credits each stream as it reads but stream 0 only once 5 MiB have arrived."""
    caplog.set_level(logging.INFO, logger="spdyasgi.error")
    size = 8 * MIB
    async with run_server(app, **_options(tls, compat, tls_files)) as (_, port):
        client = await FaultyClient.connect(port, tls, tls_files, initial_window=10 * MIB)
        state = {"session_unacked": 0, "stream_unacked": 0}

        def credit(sid: int, payload: bytes) -> None:
            state["stream_unacked"] += len(payload)
            state["session_unacked"] += len(payload)
            if state["stream_unacked"] >= 32768:
                client.send(client.f.window_update(sid, state["stream_unacked"]))
                state["stream_unacked"] = 0
            if state["session_unacked"] >= 5 * MIB:
                client.send(client.f.window_update(0, state["session_unacked"]))
                state["session_unacked"] = 0

        client.on_data = credit
        client.send(client.syn(1, f"/bytes?n={size}"))
        stream = client.streams[1]
        if compat:
            await client.until(lambda: client.finished(1))
            assert stream.status == 200 and bytes(stream.body) == pattern(size)
            # Cleartext sent past 64 KiB as SPDY/3 would (D), and the C rule raised the
            # window the client's credits land on, before its first stream-0 credit came.
            lines = _fault_lines(caplog, "C")
            assert len(lines) == 1 and "tolerated (--compat)" in lines[0]
            assert not _fault_lines(caplog, "D")
        else:
            await client.until(lambda: len(stream.body) >= 65536)
            # The server keeps to the 64 KiB session window: nothing more comes.
            with pytest.raises(asyncio.TimeoutError):
                await client.pump(timeout=1.5)
            assert len(stream.body) == 65536 and not stream.ended
            (line,) = _fault_lines(caplog, "C")  # the stall is logged with what helps
            assert "session window" in line and "--compat" in line
        await client.close()


# -------------------------------------------------- memory bound under hostile overruns


@pytest.mark.parametrize("tls", [False, True], ids=["cleartext", "tls"])
async def test_largest_tolerated_overrun_on_every_stream_stays_bounded(
        tls_files: tuple[str, str], tls: bool) -> None:
    """A hostile client sends each stream's window plus the largest tolerated overrun
    (4 MiB) on every stream of a session, to handlers that never read: the server buffers
    at most the session window plus the session's overrun allowance (8 MiB)."""
    streams, window, session_window = 8, 256 * 1024, 4 * MIB
    holder = Holding(running_target=streams)
    options = _options(tls, True, tls_files, initial_window_size=window,
                       session_window_size=session_window, max_concurrent_streams=streams)
    async with run_server(holder, **options) as (server, port):
        client = await FaultyClient.connect(port, tls, tls_files)
        ids = list(range(1, 2 * streams, 2))
        client.send(*(client.syn(sid, "/hold", fin=False, method=b"POST") for sid in ids))
        await asyncio.wait_for(holder.reached.wait(), 20)
        chunk = b"h" * 65536
        for sid in ids:
            client.send(*[client.f.data(sid, chunk)] * ((window + 4 * MIB) // len(chunk)))
            await client.writer.drain()
        await client.sync(1)
        assert client.goaway is None
        (protocol,) = server.server_state.connections
        buffered = sum(cycle.body_bytes for cycle in protocol.cycles.values())
        limits = protocol.engine.limits
        assert buffered <= session_window + limits.compat_session_overrun
        assert protocol.engine.overrun <= limits.compat_session_overrun
        resets = [s for s in ids if client.streams[s].reset == StreamStatus.FLOW_CONTROL_ERROR]
        # Two streams use up the session's allowance; the others are reset once they go
        # past their window, and what they had buffered is let go with them.
        assert len(resets) == streams - 2
        assert buffered == 2 * (window + 4 * MIB)
        holder.release.set()
        await asyncio.wait_for(holder.all_ended.wait(), 20)
        await client.close()


@pytest.mark.parametrize("tls", [False, True], ids=["cleartext", "tls"])
async def test_conformant_client_sees_no_difference_and_no_fault_is_logged(
        caplog: pytest.LogCaptureFixture, tls_files: tuple[str, str], tls: bool) -> None:
    """Compat must cost a conformant 3.1 client nothing: downloads and uploads flow, and
    no fault is reported (SPDY/3 mode on cleartext ends at its first session credit)."""
    from tests.spdyraw import RawSession

    caplog.set_level(logging.INFO, logger="spdyasgi.error")
    context = None
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["spdy/3.1"])
    async with run_server(app, **_options(tls, True, tls_files)) as (_, port):
        # Small stream windows; the session window raised at once, as 3.1 clients do
        # (a cleartext client that keeps 64 KiB and credits late is D's known cost).
        session = await RawSession.connect(port, ssl_context=context, window=65536,
                                           session_window=1 << 24)
        ids = [session.request(f"/bytes?n={2 * MIB}") for _ in range(3)]
        replies = await session.wait(*ids, timeout=60)
        assert all(bytes(reply.body) == pattern(2 * MIB) for reply in replies)
        body = pattern(3 * MIB)
        reply = await session.fetch("/hash", b"POST", body)
        assert bytes(reply.body) == f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()
        assert session.goaway is None
        assert not [r for r in caplog.records if "fault" in r.getMessage()]
        await session.close()


def test_cli_flag_reaches_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    import spdyasgi.main as main_module

    configs: list[Any] = []
    monkeypatch.setattr(main_module, "_run_config", configs.append)
    for args, expected in (([], False), (["--compat"], True)):
        result = CliRunner().invoke(main_module.main, ["tests.spdyapps:app", *args])
        assert result.exit_code == 0, result.output
        assert configs.pop().compat is expected
