"""The SPDY session state machine: bytes in, events out; commands in, bytes out.

Theory of operation
-------------------
`receive_data()` appends to an input buffer and parses whole frames from it with
precompiled structs. Each frame is checked against the session's state and answered with the
narrowest reaction the spec allows: an event for the caller, an RST_STREAM for a stream-level
fault, or a GOAWAY (then `ConnectionTerminated`, after which all input is ignored) for a
session-level one. Header blocks are inflated for *every* header-carrying frame, even ones
about to be refused, because the zlib context is shared by the whole session.

Commands (`send_response`, `send_data`, ...) serialise frames immediately into an output
queue, so frames carrying compressed headers leave in exactly the order they were
compressed. Control frames that carry no header block (PING echoes, WINDOW_UPDATE, RST,
SETTINGS, GOAWAY) go to a separate queue that `data_to_send()` emits first, ahead of DATA.

Inbound flow control is acknowledged by the caller (`acknowledge_received_data`) once the
application has consumed the bytes; the engine decides when a WINDOW_UPDATE is worth it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from . import frames
from .constants import (
    DEFAULT_WINDOW,
    MAX_STREAM_ID,
    MAX_WINDOW,
    REQUIRED_REQUEST_PSEUDO_HEADERS,
    FrameType,
    SessionStatus,
    SettingId,
    StreamStatus,
    Version,
)
from .events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    GoAwayReceived,
    HeadersReceived,
    PingAcknowledged,
    PingReceived,
    PushReceived,
    RequestReceived,
    RequestRejected,
    ResponseReceived,
    SettingsReceived,
    StreamReset,
    WindowUpdated,
)
from .exceptions import (
    FlowControlBlocked,
    LocalProtocolError,
    ProtocolError,
    StreamClosedError,
    StreamError,
)
from .headers import (
    CompressionError,
    HeaderBlockError,
    HeaderCompressor,
    HeaderDecompressor,
    Headers,
)
from .limits import Budget, Limits
from .stream import ClosedStreams, Stream

_unpack_header = frames.FRAME_HEADER.unpack_from
_unpack_u32 = frames.UINT32.unpack_from
_unpack_u32x2 = frames.UINT32X2.unpack_from
_unpack_syn = frames.SYN_STREAM_HEAD.unpack_from
_data_header = frames.data_frame_header

_FIN = 0x01
_UNIDIRECTIONAL = 0x02
_CONTROL_BIT = 0x80000000
_STREAM_MASK = 0x7FFFFFFF
_ALLOWED_REQUEST_PSEUDO = frozenset(REQUIRED_REQUEST_PSEUDO_HEADERS)
_DROPPED_REQUEST_HEADERS = frozenset(
    {b"host", b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding"}
)
_REQUIRED_PUSH_HEADERS = (b":scheme", b":host", b":path")
_FIXED_LENGTH = {
    FrameType.RST_STREAM: 8,
    FrameType.PING: 4,
    FrameType.GOAWAY: 8,
    FrameType.WINDOW_UPDATE: 8,
}
_KNOWN_TYPES = frozenset(
    {
        FrameType.SYN_STREAM,
        FrameType.SYN_REPLY,
        FrameType.RST_STREAM,
        FrameType.SETTINGS,
        FrameType.PING,
        FrameType.GOAWAY,
        FrameType.HEADERS,
        FrameType.WINDOW_UPDATE,
    }
)


@dataclass
class ConnectionConfig:
    """How one session behaves. `initial_window_size` and `session_window_size` are what we
    advertise for our *receive* side; `max_concurrent_streams` is what we let the peer open."""

    client_side: bool = False
    version: Version = Version.SPDY31
    max_concurrent_streams: int = 256
    initial_window_size: int = DEFAULT_WINDOW
    session_window_size: int = DEFAULT_WINDOW
    #: 0 (stored) by default: CRIME-safe and an order of magnitude cheaper than
    #: Huffman-only, whose per-flush tree building dominates small header blocks.
    header_compression_level: int = 0
    #: Client role: accept server pushes (False refuses them with REFUSED_STREAM).
    accept_push: bool = True
    #: Server role: answer requests lacking required pseudo-headers with 400 by ourselves.
    validate_requests: bool = True
    limits: Limits = field(default_factory=Limits)
    #: Optional monotonic clock (seconds) for rate limits; the engine never reads time itself.
    clock: Callable[[], float] | None = None

    def __post_init__(self) -> None:
        if not DEFAULT_WINDOW <= self.initial_window_size <= MAX_WINDOW:
            raise ValueError("initial_window_size must be between 65536 and 2^31-1")
        if not DEFAULT_WINDOW <= self.session_window_size <= MAX_WINDOW:
            raise ValueError("session_window_size must be between 65536 and 2^31-1")
        if self.max_concurrent_streams < 1:
            raise ValueError("max_concurrent_streams must be at least 1")


class Connection:
    """One SPDY/3 or SPDY/3.1 session, either role, with no I/O of its own."""

    def __init__(self, config: ConnectionConfig | None = None):
        self.config = config = config or ConnectionConfig()
        self.client_side = config.client_side
        self.version = config.version
        self._wire = config.version.wire
        self._session_fc = config.version.session_flow_control
        self.limits = limits = config.limits
        self._decompressor = HeaderDecompressor(
            limits.max_header_block_size, limits.max_header_count
        )
        self._compressor = HeaderCompressor(config.header_compression_level)
        self.streams: dict[int, Stream] = {}
        self._closed_streams = ClosedStreams(limits.max_closed_streams)
        self._inbuf = bytearray()
        self._skip = 0
        self._control_out: list[bytes] = []
        self._out: list[bytes | memoryview] = []
        self._queued_control = 0
        self._events: list[Event | None] = []
        self._batch_requests: dict[int, int] = {}
        self._batch_resets = 0
        self._reset_budget = Budget(limits.reset_burst, limits.reset_rate, config.clock)
        self._settings_budget = Budget(limits.settings_burst, limits.settings_rate, config.clock)
        # Stream ids.
        self._next_local_id = 1 if self.client_side else 2
        self.highest_remote_id = 0
        self.last_good_stream_id = 0  # highest peer stream we processed
        self._remote_open = 0  # peer-initiated streams not yet closed
        self._local_open = 0  # our streams not yet closed
        # Flow control.
        self.remote_initial_window = DEFAULT_WINDOW
        self.local_initial_window = DEFAULT_WINDOW
        self.session_send_window = DEFAULT_WINDOW
        self.session_recv_window = DEFAULT_WINDOW
        self._session_unacked = 0
        self._session_target = DEFAULT_WINDOW
        # Settings and lifecycle.
        self.remote_settings: dict[int, int] = {}
        self.remote_max_concurrent_streams: int | None = None
        self.goaway_sent = False
        self.goaway_received = False
        self.remote_last_good_stream_id: int | None = None
        self.terminated = False
        self._next_ping_id = 2 if not self.client_side else 1
        self._outstanding_pings: set[int] = set()

    # ------------------------------------------------------------------ output

    def initiate_connection(self) -> None:
        """Queue our SETTINGS (and, on 3.1, the session window raise): the session preamble."""
        config = self.config
        entries = [(SettingId.MAX_CONCURRENT_STREAMS, 0, config.max_concurrent_streams)]
        if config.initial_window_size != DEFAULT_WINDOW or not self.client_side:
            entries.append((SettingId.INITIAL_WINDOW_SIZE, 0, config.initial_window_size))
        self._set_local_initial_window(config.initial_window_size)
        self._control_out.append(frames.settings(self._wire, entries))
        if self._session_fc and config.session_window_size > DEFAULT_WINDOW:
            delta = config.session_window_size - DEFAULT_WINDOW
            self.session_recv_window += delta
            self._control_out.append(frames.window_update(self._wire, 0, delta))
        self._session_target = config.session_window_size

    def data_to_send(self) -> bytes:
        """Everything queued so far: control frames first, then header and DATA frames."""
        chunks: list[bytes | memoryview]
        if self._control_out:
            chunks = list(self._control_out)
            chunks.extend(self._out)
            self._control_out = []
        else:
            chunks = self._out
        self._out = []
        self._queued_control = 0
        return b"".join(chunks)

    def chunks_to_send(self) -> list[bytes | memoryview]:
        """Like `data_to_send()` but as a list for `transport.writelines` (no joining copy)."""
        chunks: list[bytes | memoryview] = list(self._control_out)
        chunks.extend(self._out)
        self._control_out = []
        self._out = []
        self._queued_control = 0
        return chunks

    @property
    def has_partial_input(self) -> bool:
        """True while part of a frame is buffered (the caller times half-sent frames)."""
        return bool(self._inbuf) or self._skip > 0

    @property
    def has_output(self) -> bool:
        return bool(self._out or self._control_out)

    def _queue_control(self, frame: bytes) -> None:
        self._control_out.append(frame)
        self._queued_control += 1

    # --------------------------------------------------------------- commands

    def send_request(
        self, headers: Iterable[tuple[bytes, bytes]], *, end_stream: bool = False,
        priority: int = 3,
    ) -> int:
        """Client role: open a stream with SYN_STREAM; returns its id."""
        if not self.client_side:
            raise LocalProtocolError("only a client opens request streams")
        if self.goaway_received or self.goaway_sent or self.terminated:
            raise LocalProtocolError("the session is going away: no new streams")
        stream_id = self._next_local_id
        if stream_id > MAX_STREAM_ID:
            raise LocalProtocolError("stream ids exhausted on this session")
        if not 0 <= priority <= 7:
            raise LocalProtocolError("priority must be 0..7")
        block = self._compressor.encode(headers)
        self._next_local_id += 2
        stream = Stream(stream_id, priority, self.remote_initial_window, self.local_initial_window)
        stream.local_closed = end_stream
        self.streams[stream_id] = stream
        self._local_open += 1
        self._out.append(
            frames.syn_stream(self._wire, stream_id, 0, priority, _FIN if end_stream else 0, block)
        )
        return stream_id

    def send_response(
        self, stream_id: int, headers: Iterable[tuple[bytes, bytes]], *, end_stream: bool = False
    ) -> None:
        """Server role: SYN_REPLY for a client stream (exactly once, before any DATA)."""
        stream = self._writable_stream(stream_id)
        if self.client_side or stream_id % 2 == 0:
            raise LocalProtocolError("SYN_REPLY answers a client-initiated stream")
        if stream.reply_sent:
            raise LocalProtocolError(f"stream {stream_id} already has a reply")
        block = self._compressor.encode(headers)
        stream.reply_sent = True
        self._out.append(frames.syn_reply(self._wire, stream_id, _FIN if end_stream else 0, block))
        if end_stream:
            self._local_fin(stream)

    def send_headers(
        self, stream_id: int, headers: Iterable[tuple[bytes, bytes]], *, end_stream: bool = False
    ) -> None:
        """HEADERS on a stream: extra headers, or trailers when `end_stream`."""
        stream = self._writable_stream(stream_id)
        self._require_reply(stream)
        block = self._compressor.encode(headers)
        self._out.append(
            frames.headers_frame(self._wire, stream_id, _FIN if end_stream else 0, block)
        )
        if end_stream:
            self._local_fin(stream)

    def send_data(
        self, stream_id: int, data: bytes | memoryview, *, end_stream: bool = False
    ) -> None:
        """One DATA frame. `len(data)` must fit `local_flow_control_window(stream_id)`."""
        stream = self._writable_stream(stream_id)
        self._require_reply(stream)
        size = len(data)
        if size:
            if size > stream.send_window or (self._session_fc and size > self.session_send_window):
                raise FlowControlBlocked(
                    f"{size} bytes exceed the send window of stream {stream_id}"
                )
            stream.send_window -= size
            if self._session_fc:
                self.session_send_window -= size
            out = self._out
            while size > 0xFFFFFF:
                out.append(_data_header(stream_id, 0, 0xFFFFFF))
                out.append(data[:0xFFFFFF])
                data = data[0xFFFFFF:]
                size -= 0xFFFFFF
            out.append(_data_header(stream_id, _FIN if end_stream else 0, size))
            out.append(data)
        else:
            self._out.append(_data_header(stream_id, _FIN if end_stream else 0, 0))
        if end_stream:
            self._local_fin(stream)

    def end_stream(self, stream_id: int) -> None:
        """Half-close our side with an empty DATA+FIN."""
        self.send_data(stream_id, b"", end_stream=True)

    def push_stream(
        self,
        associated_stream_id: int,
        headers: Iterable[tuple[bytes, bytes]],
        *,
        priority: int | None = None,
        end_stream: bool = False,
    ) -> int | None:
        """Server role: open a pushed stream; None when pushing is not allowed right now
        (peer's stream limit reached, GOAWAY either way, associated stream finished)."""
        if self.client_side:
            raise LocalProtocolError("only a server pushes")
        assoc = self.streams.get(associated_stream_id)
        if (
            assoc is None
            or assoc.local_closed
            or associated_stream_id % 2 == 0
            or self.goaway_sent
            or self.goaway_received
            or self.terminated
            or self._next_local_id > MAX_STREAM_ID
        ):
            return None
        limit = self.remote_max_concurrent_streams
        if limit is not None and self._local_open >= limit:
            return None
        header_list = list(headers)
        names = {name.lower() for name, _ in header_list}
        missing = [name for name in _REQUIRED_PUSH_HEADERS if name not in names]
        if missing:
            raise LocalProtocolError(f"a push needs {b', '.join(missing).decode()}")
        prio = assoc.priority if priority is None else max(priority, assoc.priority)
        if not 0 <= prio <= 7:
            raise LocalProtocolError("priority must be 0..7")
        block = self._compressor.encode(header_list)
        stream_id = self._next_local_id
        self._next_local_id += 2
        stream = Stream(stream_id, prio, self.remote_initial_window, self.local_initial_window)
        stream.associated_id = associated_stream_id
        stream.remote_closed = True
        stream.reply_sent = True
        self.streams[stream_id] = stream
        self._local_open += 1
        if assoc.pushes is None:
            assoc.pushes = [stream_id]
        else:
            assoc.pushes.append(stream_id)
        flags = _UNIDIRECTIONAL | (_FIN if end_stream else 0)
        self._out.append(
            frames.syn_stream(self._wire, stream_id, associated_stream_id, prio, flags, block)
        )
        if end_stream:
            self._local_fin(stream)
        return stream_id

    def reset_stream(self, stream_id: int, status: int = StreamStatus.CANCEL) -> None:
        """RST_STREAM a live stream (a no-op for one that is already gone)."""
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        self._queue_rst(stream, status)
        self._forget(stream, ClosedStreams.RESET)

    def _queue_rst(self, stream: Stream, status: int) -> None:
        """RST_STREAM for a stream we may already have sent a header frame on.

        Such a RST must not overtake that SYN_REPLY/SYN_STREAM (the peer would see a reset
        for a stream it does not know yet), so it joins the ordered queue; other RSTs go
        with the control frames, ahead of DATA.
        """
        frame = frames.rst_stream(self._wire, stream.stream_id, status)
        self._queued_control += 1
        if stream.reply_sent or (stream.stream_id % 2 == 0) != self.client_side:
            self._out.append(frame)
        else:
            self._control_out.append(frame)

    def ping(self, ping_id: int | None = None) -> int:
        """Send a PING with an id of our parity; `PingAcknowledged` reports the echo."""
        if ping_id is None:
            ping_id = self._next_ping_id
            self._next_ping_id = (self._next_ping_id + 2) & 0xFFFFFFFF
        self._outstanding_pings.add(ping_id)
        self._control_out.append(frames.ping(self._wire, ping_id))
        return ping_id

    def close_connection(
        self, status: int = SessionStatus.OK, last_good_stream_id: int | None = None
    ) -> None:
        """Send GOAWAY: no stream above the last good one will be served."""
        if self.goaway_sent:
            return
        self.goaway_sent = True
        if last_good_stream_id is None:
            last_good_stream_id = self.last_good_stream_id
        self.last_good_stream_id = last_good_stream_id
        self._control_out.append(frames.goaway(self._wire, last_good_stream_id, status))

    def update_settings(self, entries: dict[int, int]) -> None:
        """Send SETTINGS; a new INITIAL_WINDOW_SIZE applies to streams opened afterwards."""
        window = entries.get(SettingId.INITIAL_WINDOW_SIZE)
        if window is not None:
            if not DEFAULT_WINDOW <= window <= MAX_WINDOW:
                raise LocalProtocolError("INITIAL_WINDOW_SIZE must be 65536..2^31-1")
            self._set_local_initial_window(window)
        limit = entries.get(SettingId.MAX_CONCURRENT_STREAMS)
        if limit is not None:
            self.config.max_concurrent_streams = limit
        self._control_out.append(
            frames.settings(self._wire, [(key, 0, value) for key, value in entries.items()])
        )

    def _set_local_initial_window(self, window: int) -> None:
        # The peer moves every open stream's send window by the change when our SETTINGS
        # arrives, so a raise must grow our receive windows too (else its next DATA looks
        # like an overrun). A decrease is not applied to open streams: DATA already in
        # flight was sent under the old window, and SPDY has no SETTINGS ACK to tell when
        # the peer switched; we merely stay lenient by the difference on those streams.
        delta = window - self.local_initial_window
        self.local_initial_window = window
        if delta > 0:
            for stream in self.streams.values():
                stream.recv_window += delta

    def acknowledge_received_data(self, stream_id: int, size: int) -> None:
        """The application consumed `size` bytes of `stream_id`: reopen the windows."""
        if size <= 0:
            return
        stream = self.streams.get(stream_id)
        if stream is not None and not stream.remote_closed:
            unacked = stream.unacked + size
            if unacked >= self.local_initial_window >> 1:
                stream.recv_window += unacked
                stream.unacked = 0
                self._control_out.append(frames.window_update(self._wire, stream_id, unacked))
            else:
                stream.unacked = unacked
        self._credit_session(size)

    def local_flow_control_window(self, stream_id: int) -> int:
        """How many DATA bytes `send_data` accepts for this stream right now (may be <= 0)."""
        stream = self.streams.get(stream_id)
        if stream is None:
            raise StreamClosedError(stream_id)
        if self._session_fc:
            return min(stream.send_window, self.session_send_window)
        return stream.send_window

    def stream_is_open(self, stream_id: int) -> bool:
        return stream_id in self.streams

    @property
    def open_stream_count(self) -> int:
        return len(self.streams)

    # ---------------------------------------------------------- command helpers

    def _writable_stream(self, stream_id: int) -> Stream:
        stream = self.streams.get(stream_id)
        if stream is None or stream.local_closed:
            raise StreamClosedError(stream_id)
        return stream

    def _require_reply(self, stream: Stream) -> None:
        if not stream.reply_sent and not self.client_side:
            raise LocalProtocolError(f"stream {stream.stream_id} needs SYN_REPLY first")

    def _local_fin(self, stream: Stream) -> None:
        stream.local_closed = True
        if stream.remote_closed:
            self._forget(stream, ClosedStreams.FINISHED)
            self._reset_budget.refund()

    def _forget(self, stream: Stream, how: int) -> None:
        stream_id = stream.stream_id
        if self.streams.pop(stream_id, None) is None:  # pragma: no cover - defensive
            return
        if (stream_id % 2 == 1) == self.client_side:
            self._local_open -= 1
        else:
            self._remote_open -= 1
        self._closed_streams.add(stream_id, how)
        if stream.unacked:
            stream.unacked = 0
        if stream.associated_id:
            assoc = self.streams.get(stream.associated_id)
            if assoc is not None and assoc.pushes:
                try:
                    assoc.pushes.remove(stream_id)
                except ValueError:  # pragma: no cover - defensive
                    pass

    def _credit_session(self, size: int) -> None:
        if not self._session_fc:
            return
        unacked = self._session_unacked + size
        if unacked >= self._session_target >> 1:
            self.session_recv_window += unacked
            self._session_unacked = 0
            self._control_out.append(frames.window_update(self._wire, 0, unacked))
        else:
            self._session_unacked = unacked

    # ------------------------------------------------------------------- input

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes read from the peer; returns what happened, in order."""
        if self.terminated:
            return []
        events: list[Event | None] = []
        self._events = events
        self._batch_requests.clear()
        self._batch_resets = 0
        buf = self._inbuf
        buf += data
        pos = 0
        if self._skip:
            take = min(self._skip, len(buf))
            self._skip -= take
            pos = take
        try:
            pos = self._parse(buf, pos)
        except ProtocolError as exc:
            self._terminate(exc.status, str(exc))
            buf.clear()
        else:
            if pos:
                del buf[:pos]
        if self._queued_control > self.limits.max_queued_control_frames and not self.terminated:
            self._terminate(
                SessionStatus.PROTOCOL_ERROR,
                f"more than {self.limits.max_queued_control_frames} control frames queued "
                "for a peer that does not read",
            )
        if self._dropped:
            self._dropped = False
            return [event for event in events if event is not None]
        return events  # type: ignore[return-value]  # no None when nothing was dropped

    _dropped = False

    def _parse(self, buf: bytearray, pos: int) -> int:
        end = len(buf)
        max_frame = self.limits.max_frame_size
        while end - pos >= 8:
            word, flags_length = _unpack_header(buf, pos)
            length = flags_length & 0xFFFFFF
            flags = flags_length >> 24
            if word & _CONTROL_BIT:
                version = (word >> 16) & 0x7FFF
                frame_type = word & 0xFFFF
                if version != self._wire:
                    raise ProtocolError(
                        f"control frame of version {version} on a SPDY/{self._wire} session"
                    )
                known = frame_type in _KNOWN_TYPES
                if length > max_frame:
                    if known:
                        raise ProtocolError(
                            f"{FrameType(frame_type).name} of {length} bytes is over the "
                            f"{max_frame}-byte limit"
                        )
                    # Unknown types and CREDENTIAL: skip without buffering.
                    available = end - pos - 8
                    if available >= length:
                        pos += 8 + length
                        continue
                    self._skip = length - available
                    return end
                if end - pos - 8 < length:
                    break
                start = pos + 8
                pos = start + length
                if known:
                    self._on_control(frame_type, flags, bytes(buf[start:pos]))
            else:
                if end - pos - 8 < length:
                    if length > self._max_inbound_data():
                        self._oversized_data(word, length)
                    break
                start = pos + 8
                pos = start + length
                self._on_data(word, flags, bytes(buf[start:pos]))
        return pos

    def _max_inbound_data(self) -> int:
        if self._session_fc:
            return self.session_recv_window
        return max(self.local_initial_window, self.config.initial_window_size)

    def _oversized_data(self, stream_id: int, length: int) -> None:
        raise ProtocolError(
            f"DATA frame of {length} bytes on stream {stream_id} exceeds every receive window"
        )

    def _terminate(self, status: int, reason: str) -> None:
        if self.terminated:  # pragma: no cover - defensive: callers check first
            return
        self.terminated = True
        if not self.goaway_sent:
            self.goaway_sent = True
            self._control_out.append(frames.goaway(self._wire, self.last_good_stream_id, status))
        self._events.append(ConnectionTerminated(status, self.last_good_stream_id, reason))

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _stream_error(self, stream_id: int, status: int, reason: str,
                      stream: Stream | None = None) -> None:
        """RST_STREAM for a fault confined to one stream; tell the caller if it knew it."""
        if stream is not None:
            self._queue_rst(stream, status)
            self._forget(stream, ClosedStreams.RESET)
            self._emit(StreamReset(stream_id, status, False, reason))
        else:
            self._queue_control(frames.rst_stream(self._wire, stream_id, status))
            # Remember it, so its in-flight DATA is dropped quietly instead of drawing
            # one more RST per frame.
            self._closed_streams.add(stream_id, ClosedStreams.RESET)

    # ---------------------------------------------------------- control frames

    def _on_control(self, frame_type: int, flags: int, payload: bytes) -> None:
        fixed = _FIXED_LENGTH.get(frame_type)  # type: ignore[call-overload]
        if fixed is not None and len(payload) != fixed:
            raise ProtocolError(
                f"{FrameType(frame_type).name} with length {len(payload)} (must be {fixed})"
            )
        if frame_type == FrameType.SYN_STREAM:
            self._on_syn_stream(flags, payload)
        elif frame_type == FrameType.SYN_REPLY:
            self._on_syn_reply(flags, payload)
        elif frame_type == FrameType.HEADERS:
            self._on_headers(flags, payload)
        elif frame_type == FrameType.RST_STREAM:
            self._on_rst_stream(payload)
        elif frame_type == FrameType.WINDOW_UPDATE:
            self._on_window_update(payload)
        elif frame_type == FrameType.PING:
            self._on_ping(payload)
        elif frame_type == FrameType.SETTINGS:
            self._on_settings(flags, payload)
        else:
            self._on_goaway(payload)

    def _on_syn_stream(self, flags: int, payload: bytes) -> None:
        if len(payload) < 10:
            raise ProtocolError(f"SYN_STREAM with length {len(payload)} (at least 10)")
        stream_id, assoc_id, prio_byte, _slot = _unpack_syn(payload, 0)
        stream_id &= _STREAM_MASK
        assoc_id &= _STREAM_MASK
        priority = prio_byte >> 5
        if self.client_side:
            self._on_push(stream_id, assoc_id, priority, flags, payload[10:])
            return
        if stream_id == 0 or stream_id % 2 == 0:
            raise ProtocolError(f"SYN_STREAM with invalid client stream id {stream_id}")
        if stream_id < self.highest_remote_id:
            raise ProtocolError(
                f"SYN_STREAM id {stream_id} below the highest seen {self.highest_remote_id}"
            )
        repeated = stream_id == self.highest_remote_id
        try:
            headers = self._decompressor.decode(payload[10:])
            block_error: HeaderBlockError | None = None
        except CompressionError as exc:
            raise ProtocolError(str(exc)) from None
        except HeaderBlockError as exc:
            headers = []
            block_error = exc
        if repeated:
            self._stream_error(stream_id, StreamStatus.PROTOCOL_ERROR,
                               f"SYN_STREAM reuses stream id {stream_id}",
                               self.streams.get(stream_id))
            return
        self.highest_remote_id = stream_id
        if self.goaway_sent and stream_id > self.last_good_stream_id:
            return  # ignored after GOAWAY: inflated, never answered
        if block_error is not None:
            self._stream_error(stream_id, block_error.status, str(block_error))
            return
        if flags & _UNIDIRECTIONAL or assoc_id:
            self._stream_error(stream_id, StreamStatus.PROTOCOL_ERROR,
                               "client SYN_STREAM must not be unidirectional or associated")
            return
        if self._remote_open >= self.config.max_concurrent_streams:
            self._count_reset()
            self._stream_error(stream_id, StreamStatus.REFUSED_STREAM,
                               "over the concurrent stream limit")
            return
        end_stream = bool(flags & _FIN)
        stream = Stream(stream_id, priority, self.remote_initial_window, self.local_initial_window)
        stream.remote_closed = end_stream
        self.streams[stream_id] = stream
        self._remote_open += 1
        self.last_good_stream_id = stream_id
        if self.config.validate_requests:
            problem, headers = self._check_request(stream, headers)
            if problem:
                self._reject(stream, problem)
                return
        self._batch_requests[stream_id] = len(self._events)
        self._events.append(RequestReceived(stream_id, headers, priority, end_stream))

    def _check_request(self, stream: Stream, headers: Headers) -> tuple[str, Headers]:
        """Return (problem, headers with client-forbidden headers dropped)."""
        found = 0
        cleaned: Headers | None = None
        for index, (name, value) in enumerate(headers):
            if name[0] == 58:  # b":"
                if name not in _ALLOWED_REQUEST_PSEUDO:
                    return f"unknown pseudo-header {name.decode()}", headers
                found += 1
                if name == b":path" and (not value or value[0] != 47) and value != b"*":
                    return f"invalid :path {value!r}", headers
            elif name in _DROPPED_REQUEST_HEADERS:
                if cleaned is None:
                    cleaned = headers[:index]
                continue
            elif name == b"content-length":
                if not value.isdigit() or len(value) > 18 or stream.content_length is not None:
                    return f"invalid content-length {value!r}", headers
                stream.content_length = int(value)
            if cleaned is not None:
                cleaned.append((name, value))
        if found != len(REQUIRED_REQUEST_PSEUDO_HEADERS):
            names = {name for name, _ in headers}
            missing = [n.decode() for n in REQUIRED_REQUEST_PSEUDO_HEADERS if n not in names]
            return f"missing {', '.join(missing)}", headers
        if stream.remote_closed and stream.content_length:
            return "content-length disagrees with the body", headers
        return "", headers if cleaned is None else cleaned

    def _reject(self, stream: Stream, reason: str) -> None:
        """Answer a malformed request with 400 (or RST once a reply went out)."""
        stream_id = stream.stream_id
        if stream.reply_sent:  # pragma: no cover - defensive: callers check first
            self._stream_error(stream_id, StreamStatus.PROTOCOL_ERROR, reason, stream)
            return
        stream.rejected = True
        block = self._compressor.encode(
            [(b":status", b"400"), (b":version", b"HTTP/1.1"),
             (b"content-length", b"0")]
        )
        stream.reply_sent = True
        self._out.append(frames.syn_reply(self._wire, stream_id, _FIN, block))
        self._local_fin(stream)
        self._emit(RequestRejected(stream_id, 400, reason))

    def _on_push(
        self, stream_id: int, assoc_id: int, priority: int, flags: int, block: bytes
    ) -> None:
        if stream_id == 0 or stream_id % 2 == 1 or stream_id <= self.highest_remote_id:
            raise ProtocolError(f"pushed SYN_STREAM with invalid stream id {stream_id}")
        headers = self._decode_block_or_reset(stream_id, block)
        self.highest_remote_id = stream_id
        if headers is None:
            return
        assoc = self.streams.get(assoc_id)
        # The UNIDIRECTIONAL flag is not required: node-spdy (spdy-transport 3.0.0) omits it
        # on its pushes, and an even id with an associated stream can mean nothing else.
        if assoc_id == 0 or assoc_id % 2 == 0:
            self._stream_error(stream_id, StreamStatus.PROTOCOL_ERROR,
                               "push must be associated with one of our streams")
            return
        names = {name for name, _ in headers}
        if any(name not in names for name in _REQUIRED_PUSH_HEADERS):
            self._stream_error(stream_id, StreamStatus.PROTOCOL_ERROR,
                               "push lacks :scheme, :host or :path")
            return
        if (
            assoc is None
            or not self.config.accept_push
            or self.goaway_sent
            or self._remote_open >= self.config.max_concurrent_streams
        ):
            self._stream_error(stream_id, StreamStatus.REFUSED_STREAM, "push refused")
            return
        stream = Stream(stream_id, priority, self.remote_initial_window, self.local_initial_window)
        stream.associated_id = assoc_id
        stream.local_closed = True
        stream.reply_received = True
        stream.remote_closed = bool(flags & _FIN)
        self.streams[stream_id] = stream
        self._remote_open += 1
        self.last_good_stream_id = stream_id
        self._emit(PushReceived(stream_id, assoc_id, headers, priority, stream.remote_closed))
        if stream.remote_closed:
            self._forget(stream, ClosedStreams.FINISHED)

    def _decode_block_or_reset(self, stream_id: int, block: bytes) -> Headers | None:
        try:
            return self._decompressor.decode(block)
        except CompressionError as exc:
            raise ProtocolError(str(exc)) from None
        except HeaderBlockError as exc:
            self._stream_error(stream_id, exc.status, str(exc), self.streams.get(stream_id))
            return None

    def _on_syn_reply(self, flags: int, payload: bytes) -> None:
        if len(payload) < 4:
            raise ProtocolError(f"SYN_REPLY with length {len(payload)} (at least 4)")
        if not self.client_side:
            raise ProtocolError("a client sent SYN_REPLY")
        (stream_id,) = _unpack_u32(payload, 0)
        stream_id &= _STREAM_MASK
        headers = self._decode_block_or_reset(stream_id, payload[4:])
        if headers is None:
            return
        stream = self.streams.get(stream_id)
        if stream is None or stream_id % 2 == 0:
            if self._closed_streams.get(stream_id) is None and stream_id >= self._next_local_id:
                raise ProtocolError(f"SYN_REPLY for stream {stream_id} we never opened")
            return
        if stream.reply_received:
            self._stream_error(stream_id, StreamStatus.STREAM_IN_USE,
                               f"second SYN_REPLY on stream {stream_id}", stream)
            return
        stream.reply_received = True
        end_stream = bool(flags & _FIN)
        self._emit(ResponseReceived(stream_id, headers, end_stream))
        if end_stream:
            self._remote_fin(stream)

    def _on_headers(self, flags: int, payload: bytes) -> None:
        if len(payload) < 4:
            raise ProtocolError(f"HEADERS with length {len(payload)} (at least 4)")
        (stream_id,) = _unpack_u32(payload, 0)
        stream_id &= _STREAM_MASK
        if stream_id == 0:
            raise ProtocolError("HEADERS on stream 0")
        if len(payload) == 4:
            headers: Headers | None = []
        else:
            try:
                headers = self._decompressor.decode(payload[4:])
                block_error: HeaderBlockError | None = None
            except CompressionError as exc:
                raise ProtocolError(str(exc)) from None
            except HeaderBlockError as exc:
                headers = None
                block_error = exc
        stream = self.streams.get(stream_id)
        end_stream = bool(flags & _FIN)
        if stream is None:
            self._frame_for_dead_stream(stream_id, "HEADERS")
            return
        if stream.remote_closed:
            self._stream_error(stream_id, StreamStatus.STREAM_ALREADY_CLOSED,
                               f"HEADERS after FIN on stream {stream_id}", stream)
            return
        if headers is None:
            assert block_error is not None
            self._stream_error(stream_id, block_error.status, str(block_error), stream)
            return
        if self.client_side and not stream.reply_received and stream_id % 2 == 1:
            self._stream_error(stream_id, StreamStatus.PROTOCOL_ERROR,
                               "HEADERS before SYN_REPLY", stream)
            return
        if not headers and not end_stream and self._empty_frame(stream):
            return
        if stream.rejected:
            if end_stream:
                self._remote_fin(stream)
            return
        self._emit(HeadersReceived(stream_id, headers, end_stream))
        if end_stream:
            self._end_of_request_body(stream)

    def _frame_for_dead_stream(self, stream_id: int, what: str) -> None:
        """HEADERS or DATA for a stream we do not hold (credit was already handled)."""
        if self.goaway_sent and stream_id > self.last_good_stream_id:
            return
        how = self._closed_streams.get(stream_id)
        if how == ClosedStreams.RESET:
            return
        if how == ClosedStreams.FINISHED:
            self._queue_control(
                frames.rst_stream(self._wire, stream_id, StreamStatus.STREAM_ALREADY_CLOSED)
            )
            self._closed_streams.add(stream_id, ClosedStreams.RESET)
            return
        if stream_id == 0:  # pragma: no cover - defensive: DATA/HEADERS check it first
            raise ProtocolError(f"{what} on stream 0")
        self._queue_control(frames.rst_stream(self._wire, stream_id, StreamStatus.INVALID_STREAM))
        self._closed_streams.add(stream_id, ClosedStreams.RESET)

    def _empty_frame(self, stream: Stream) -> bool:
        stream.empty_frames += 1
        if stream.empty_frames > self.limits.max_empty_frames:
            self._stream_error(stream.stream_id, StreamStatus.PROTOCOL_ERROR,
                               "too many empty frames", stream)
            return True
        return False

    def _remote_fin(self, stream: Stream) -> None:
        stream.remote_closed = True
        if stream.local_closed:
            self._forget(stream, ClosedStreams.FINISHED)
            self._reset_budget.refund()

    def _end_of_request_body(self, stream: Stream) -> None:
        expected = stream.content_length
        if expected is not None and expected != stream.received and not self.client_side:
            self._remote_fin(stream)
            self._reject_after_delivery(
                stream, f"content-length {expected} but {stream.received} body bytes"
            )
            return
        self._remote_fin(stream)

    def _reject_after_delivery(self, stream: Stream, reason: str) -> None:
        if stream.stream_id not in self.streams:  # both sides already finished
            return
        if stream.reply_sent:
            self._stream_error(stream.stream_id, StreamStatus.PROTOCOL_ERROR, reason, stream)
        else:
            self._reject(stream, reason)

    def _on_rst_stream(self, payload: bytes) -> None:
        stream_id, status = _unpack_u32x2(payload, 0)
        stream_id &= _STREAM_MASK
        if stream_id == 0:
            raise ProtocolError("RST_STREAM on stream 0")
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        counted = not stream.local_closed and (stream_id % 2 == 1) != self.client_side
        self._forget(stream, ClosedStreams.RESET)
        index = self._batch_requests.pop(stream_id, None)
        if index is not None:
            # Opened and reset within one read: the application never needs to see it,
            # nor anything else this read produced for it (its DATA is credited here,
            # since nobody will acknowledge it).
            events = self._events
            dropped = 0
            for i in range(index, len(events)):
                event = events[i]
                if event is not None and getattr(event, "stream_id", None) == stream_id:
                    if isinstance(event, DataReceived):
                        dropped += len(event.data)
                    events[i] = None
            self._dropped = True
            if dropped:
                self._credit_session(dropped)
        else:
            self._emit(StreamReset(stream_id, status, True))
        if stream.pushes:
            for push_id in list(stream.pushes):
                push = self.streams.get(push_id)
                if push is not None:
                    self._queue_rst(push, StreamStatus.CANCEL)
                    self._forget(push, ClosedStreams.RESET)
                    self._emit(StreamReset(push_id, StreamStatus.CANCEL, False,
                                           "associated stream was reset"))
        if counted:
            # Counted last, so a stream dropped above stays dropped if this ends the session.
            self._count_reset()

    def _count_reset(self) -> None:
        self._batch_resets += 1
        if (
            not self._reset_budget.spend()
            or self._batch_resets > 2 * self.config.max_concurrent_streams
        ):
            raise ProtocolError("too many streams reset or refused (rapid reset)")

    def _on_window_update(self, payload: bytes) -> None:
        stream_id, delta = _unpack_u32x2(payload, 0)
        stream_id &= _STREAM_MASK
        delta &= _STREAM_MASK
        if stream_id == 0:
            if not self._session_fc:
                return
            if delta == 0:
                raise ProtocolError("session WINDOW_UPDATE with delta 0")
            if self.session_send_window + delta > MAX_WINDOW:
                raise ProtocolError("session send window overflow")
            self.session_send_window += delta
            self._emit(WindowUpdated(0, delta))
            return
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        if delta == 0:
            self._stream_error(stream_id, StreamStatus.PROTOCOL_ERROR,
                               "WINDOW_UPDATE with delta 0", stream)
            return
        if stream.send_window + delta > MAX_WINDOW:
            self._stream_error(stream_id, StreamStatus.FLOW_CONTROL_ERROR,
                               "stream send window overflow", stream)
            return
        stream.send_window += delta
        self._emit(WindowUpdated(stream_id, delta))

    def _on_ping(self, payload: bytes) -> None:
        (ping_id,) = _unpack_u32(payload, 0)
        if (ping_id % 2 == 1) != self.client_side:
            self._queue_control(frames.ping(self._wire, ping_id))
            self._emit(PingReceived(ping_id))
        elif ping_id in self._outstanding_pings:
            self._outstanding_pings.discard(ping_id)
            self._emit(PingAcknowledged(ping_id))

    def _on_settings(self, flags: int, payload: bytes) -> None:
        size = len(payload)
        if size < 4:
            raise ProtocolError(f"SETTINGS with length {size}")
        (count,) = _unpack_u32(payload, 0)
        if 4 + 8 * count != size:
            raise ProtocolError(f"SETTINGS declares {count} entries in {size} bytes")
        if count > self.limits.max_settings_entries:
            raise ProtocolError(f"SETTINGS with {count} entries")
        if not self._settings_budget.spend():
            raise ProtocolError("SETTINGS flood")
        received: dict[int, int] = {}
        for offset in range(4, size, 8):
            id_word, value = _unpack_u32x2(payload, offset)
            setting_id = id_word & 0xFFFFFF
            if setting_id not in received:
                received[setting_id] = value
        window = received.get(SettingId.INITIAL_WINDOW_SIZE)
        if window is not None:
            if window > MAX_WINDOW:
                raise ProtocolError(f"INITIAL_WINDOW_SIZE {window} above 2^31-1")
            delta = window - self.remote_initial_window
            self.remote_initial_window = window
            if delta:
                for stream in list(self.streams.values()):
                    stream.send_window += delta
                    if stream.send_window > MAX_WINDOW:
                        self._stream_error(stream.stream_id, StreamStatus.FLOW_CONTROL_ERROR,
                                           "INITIAL_WINDOW_SIZE overflows the window", stream)
        limit = received.get(SettingId.MAX_CONCURRENT_STREAMS)
        if limit is not None:
            self.remote_max_concurrent_streams = limit
        self.remote_settings.update(received)
        self._emit(SettingsReceived(received, bool(flags & 0x01)))

    def _on_goaway(self, payload: bytes) -> None:
        last_good, status = _unpack_u32x2(payload, 0)
        last_good &= _STREAM_MASK
        self.goaway_received = True
        self.remote_last_good_stream_id = last_good
        self._emit(GoAwayReceived(last_good, status))
        # Our streams above the peer's last good id were never processed: they are dead.
        local_parity = 1 if self.client_side else 0
        for stream_id in [s for s in self.streams if s % 2 == local_parity and s > last_good]:
            stream = self.streams[stream_id]
            self._forget(stream, ClosedStreams.RESET)
            self._emit(StreamReset(stream_id, StreamStatus.REFUSED_STREAM, True,
                                   "above the peer's GOAWAY last-good id"))

    # -------------------------------------------------------------------- DATA

    def _on_data(self, stream_id: int, flags: int, data: bytes) -> None:
        size = len(data)
        if stream_id == 0:
            raise ProtocolError("DATA on stream 0")
        if self._session_fc:
            if size > self.session_recv_window:
                raise ProtocolError(
                    f"DATA overran the session window ({size} > {self.session_recv_window})"
                )
            self.session_recv_window -= size
        stream = self.streams.get(stream_id)
        end_stream = bool(flags & _FIN)
        if stream is None:
            self._credit_session(size)
            self._frame_for_dead_stream(stream_id, "DATA")
            return
        if stream.remote_closed:
            self._credit_session(size)
            self._stream_error(stream_id, StreamStatus.STREAM_ALREADY_CLOSED,
                               f"DATA after FIN on stream {stream_id}", stream)
            return
        if self.client_side and stream_id % 2 == 1 and not stream.reply_received:
            self._credit_session(size)
            self._stream_error(stream_id, StreamStatus.PROTOCOL_ERROR,
                               "DATA before SYN_REPLY", stream)
            return
        if size > stream.recv_window:
            self._credit_session(size)
            self._stream_error(stream_id, StreamStatus.FLOW_CONTROL_ERROR,
                               f"DATA overran the stream window ({size} > {stream.recv_window})",
                               stream)
            return
        stream.recv_window -= size
        if stream.rejected:
            self._credit_session(size)
            stream.recv_window += size
            if end_stream:
                self._remote_fin(stream)
            return
        if not size and not end_stream and self._empty_frame(stream):
            return
        stream.received += size
        expected = stream.content_length
        if expected is not None and stream.received > expected and not self.client_side:
            self._credit_session(size)
            self._reject_after_delivery(
                stream, f"body exceeds content-length {expected}"
            )
            return
        self._events.append(DataReceived(stream_id, data, end_stream))
        if end_stream:
            self._end_of_request_body(stream)


__all__ = ["Connection", "ConnectionConfig", "StreamError"]
