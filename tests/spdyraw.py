"""A raw-frame SPDY client for server tests: the engine in client role over asyncio streams.

Deliberately thin so tests can misbehave on purpose: stop reading, reset, send raw bytes.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Any

from spdyasgi.spdy import (
    Connection,
    ConnectionConfig,
    ConnectionTerminated,
    DataReceived,
    Event,
    GoAwayReceived,
    HeadersReceived,
    PushReceived,
    ResponseReceived,
    StreamReset,
    Version,
)


@dataclass
class Reply:
    stream_id: int
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    ended: bool = False
    reset: int | None = None
    reply_fin: bool = False
    data_frames: int = 0
    pushes: list[int] = field(default_factory=list)

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


def request_headers(path: bytes | str, method: bytes = b"GET", host: bytes = b"localhost",
                    scheme: bytes = b"http",
                    extra: list[tuple[bytes, bytes]] | None = None) -> list[tuple[bytes, bytes]]:
    if isinstance(path, str):
        path = path.encode()
    headers = [(b":method", method), (b":path", path), (b":version", b"HTTP/1.1"),
               (b":host", host), (b":scheme", scheme)]
    headers.extend(extra or [])
    return headers


class RawSession:
    """One SPDY client session; call `pump()` to read and dispatch frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 conn: Connection, auto_ack: bool = True):
        self.reader = reader
        self.writer = writer
        self.conn = conn
        self.auto_ack = auto_ack
        self.replies: dict[int, Reply] = {}
        self.events: list[Event] = []
        self.goaway: GoAwayReceived | None = None
        self.closed = False
        self._pending_body: dict[int, memoryview] = {}
        #: Every byte received when `connect(record=True)`, for checks the client engine
        #: cannot make (it drops frames for streams it never knew without an event).
        self.raw: bytearray | None = None

    @classmethod
    async def connect(cls, port: int, *, ssl_context: ssl.SSLContext | None = None,
                      version: Version = Version.SPDY31, window: int = 1 << 20,
                      session_window: int = 1 << 24, auto_ack: bool = True,
                      record: bool = False, **config: Any) -> RawSession:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=ssl_context,
                                    server_hostname="localhost" if ssl_context else None),
            10,
        )
        conn = Connection(ConnectionConfig(client_side=True, version=version,
                                           initial_window_size=window,
                                           session_window_size=session_window, **config))
        conn.initiate_connection()
        session = cls(reader, writer, conn, auto_ack)
        if record:
            session.raw = bytearray()
        session.flush()
        return session

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    def request(self, path: bytes | str, method: bytes = b"GET", body: bytes | None = None,
                headers: list[tuple[bytes, bytes]] | None = None, priority: int = 3) -> int:
        sid = self.conn.send_request(request_headers(path, method, extra=headers),
                                     end_stream=body is None, priority=priority)
        self.replies[sid] = Reply(sid)
        if body is not None:
            self._pending_body[sid] = memoryview(body)
            self._send_bodies()
        self.flush()
        return sid

    def _send_bodies(self) -> None:
        for sid, view in list(self._pending_body.items()):
            if sid not in self.conn.streams:
                del self._pending_body[sid]
                continue
            while view:
                window = self.conn.local_flow_control_window(sid)
                if window <= 0:
                    break
                chunk = view[: min(window, 65536)]
                view = view[len(chunk):]
                self.conn.send_data(sid, bytes(chunk), end_stream=not view)
            if view:
                self._pending_body[sid] = view
            else:
                del self._pending_body[sid]

    async def pump(self, timeout: float = 10.0) -> bool:
        """Read once and dispatch; False on EOF."""
        data = await asyncio.wait_for(self.reader.read(1 << 18), timeout)
        if not data:
            self.closed = True
            return False
        self.feed(data)
        return True

    async def read_until_closed(self, timeout: float = 10.0) -> None:
        """Read (and dispatch) until the server closes, a read fails, or nothing arrives
        for `timeout` seconds; callers then assert on what arrived."""
        try:
            while await self.pump(timeout=timeout):
                pass
        except (ConnectionError, asyncio.TimeoutError):
            pass

    def control_frames(self, frame_type: int) -> list[tuple[int, bytes]]:
        """`(flags, payload)` of every control frame of `frame_type` received so far."""
        assert self.raw is not None, "connect with record=True"
        found = []
        raw = bytes(self.raw)
        pos = 0
        while pos + 8 <= len(raw):
            length = int.from_bytes(raw[pos + 5:pos + 8], "big")
            end = pos + 8 + length
            if end > len(raw):
                break
            if raw[pos] & 0x80 and int.from_bytes(raw[pos + 2:pos + 4], "big") == frame_type:
                found.append((raw[pos + 4], raw[pos + 8:end]))
            pos = end
        return found

    def rst_streams(self) -> dict[int, int]:
        """Stream id -> status of every RST_STREAM received (raw, not through the engine)."""
        return {int.from_bytes(payload[:4], "big") & 0x7FFFFFFF:
                int.from_bytes(payload[4:8], "big")
                for _, payload in self.control_frames(3)}

    def feed(self, data: bytes) -> list[Event]:
        if self.raw is not None:
            self.raw += data
        events = self.conn.receive_data(data)
        for event in events:
            self.events.append(event)
            if isinstance(event, ResponseReceived):
                reply = self.replies[event.stream_id]
                reply.headers = event.headers
                status = reply.header(b":status") or b"0"
                reply.status = int(status.split(b" ")[0])
                reply.reply_fin = event.end_stream
                reply.ended = event.end_stream
            elif isinstance(event, PushReceived):
                self.replies[event.stream_id] = Reply(event.stream_id, 200, event.headers,
                                                      ended=event.end_stream)
                assoc = self.replies.get(event.associated_stream_id)
                if assoc is not None:
                    assoc.pushes.append(event.stream_id)
            elif isinstance(event, DataReceived):
                reply = self.replies[event.stream_id]
                reply.body += event.data
                reply.data_frames += 1
                reply.ended = event.end_stream
                if self.auto_ack:
                    self.conn.acknowledge_received_data(event.stream_id, len(event.data))
            elif isinstance(event, HeadersReceived):
                reply = self.replies[event.stream_id]
                if reply.stream_id % 2 == 0 and not reply.body:
                    reply.headers = reply.headers + event.headers
                else:
                    reply.trailers = event.headers
                reply.ended = reply.ended or event.end_stream
            elif isinstance(event, StreamReset):
                if event.stream_id in self.replies:
                    self.replies[event.stream_id].reset = event.status
            elif isinstance(event, GoAwayReceived):
                self.goaway = event
            elif isinstance(event, ConnectionTerminated):
                self.closed = True
        self._send_bodies()
        self.flush()
        return events

    async def wait(self, *stream_ids: int, timeout: float = 20.0) -> list[Reply]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not all(self.replies[s].ended or self.replies[s].reset is not None
                      for s in stream_ids):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"streams {stream_ids} did not finish")
            if not await self.pump(remaining):
                break
        return [self.replies[s] for s in stream_ids]

    async def fetch(self, path: bytes | str, method: bytes = b"GET", body: bytes | None = None,
                    headers: list[tuple[bytes, bytes]] | None = None) -> Reply:
        sid = self.request(path, method, body, headers)
        (reply,) = await self.wait(sid)
        return reply

    async def close(self) -> None:
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 5)
        except (OSError, asyncio.TimeoutError):
            pass
