"""The SPDY session state machine: bytes in, events out; commands in, bytes out.

Theory of operation
-------------------
Four layers of one class: `session.SessionState` holds every field and the shared
helpers, `stream_input.StreamInput` checks request heads and admits request bodies,
`receiver.FrameReceiver` parses what arrives, `Connection` adds the commands.

`receive_data()` appends to an input buffer and parses whole frames from it with
precompiled structs. Each frame is checked against the session's state and answered with the
narrowest reaction the spec allows: an event for the caller, an RST_STREAM for a stream-level
fault, or a GOAWAY (then `ConnectionTerminated`, after which all input is ignored) for a
session-level one. Header blocks are inflated for *every* header-carrying frame, even ones
about to be refused, because the zlib context is shared by the whole session.

Commands (`send_response`, `send_data`, ...) serialise frames immediately into an output
queue, so frames carrying compressed headers leave in exactly the order they were
compressed. Control frames that carry no header block (PING echoes, WINDOW_UPDATE,
SETTINGS, GOAWAY, and RSTs for streams we sent nothing on) go to a separate queue that
`data_to_send()` emits first, ahead of DATA; an RST for a stream whose SYN_REPLY or
SYN_STREAM we sent stays behind that frame.

Inbound flow control is acknowledged by the caller (`acknowledge_received_data`) once the
application has consumed the bytes; the engine decides when a WINDOW_UPDATE is worth it.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import frames
from .constants import (
    DEFAULT_WINDOW,
    MAX_STREAM_ID,
    MAX_WINDOW,
    REQUIRED_PUSH_HEADERS,
    SessionStatus,
    SettingId,
    StreamStatus,
)
from .exceptions import (
    FlowControlBlocked,
    LocalProtocolError,
    StreamClosedError,
)
from .headers import NO_PSEUDO, PUSH_PSEUDO, RESPONSE_PSEUDO
from .receiver import FrameReceiver
from .session import ConnectionConfig
from .stream import ClosedStreams, Stream

_data_header = frames.data_frame_header

_FIN = 0x01
_UNIDIRECTIONAL = 0x02
#: A reply's first body up to this size is copied into the same bytes object as its
#: SYN_REPLY (one item to queue and write); a larger one stays a separate item, uncopied.
_JOIN_REPLY_BODY = 16384


class Connection(FrameReceiver):
    """One SPDY/3 or SPDY/3.1 session, either role, with no I/O of its own."""

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
    def has_output(self) -> bool:
        return bool(self._out or self._control_out)

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
        stream = self._unreplied_stream(stream_id)
        block = self._compressor.encode(headers, RESPONSE_PSEUDO)
        stream.reply_sent = True
        self._out.append(frames.syn_reply(self._wire, stream_id, _FIN if end_stream else 0, block))
        if end_stream:
            self._local_fin(stream)

    def respond(
        self, stream_id: int, headers: Iterable[tuple[bytes, bytes]], body: bytes | memoryview,
        *, end_stream: bool = True,
    ) -> None:
        """Server role: SYN_REPLY and one DATA frame with `body`, in one call.

        The whole of a small response, so its common case pays for one stream lookup and
        one set of checks. `body` must fit the windows (`FlowControlBlocked` otherwise,
        raised before anything is queued or compressed).
        """
        stream = self._unreplied_stream(stream_id)
        size = len(body)
        if size > _JOIN_REPLY_BODY:
            self._queue_data(stream, body, end_stream, reply_headers=headers)
            return
        # The usual one-shot response, in one bytes object; the windows are checked
        # before anything is compressed.
        if size:
            self._check_send_window(stream, size)
        block = self._compressor.encode_response(headers)
        stream.reply_sent = True
        if size:
            stream.send_window -= size
            if self._session_fc:
                self.session_send_window -= size
        self._out.append(frames.reply_with_data(
            self._wire, stream_id, block, body, _FIN if end_stream else 0))
        if end_stream:
            self._local_fin(stream)

    def send_headers(
        self, stream_id: int, headers: Iterable[tuple[bytes, bytes]], *, end_stream: bool = False
    ) -> None:
        """HEADERS on a stream: extra headers, or trailers when `end_stream`."""
        stream = self._writable_stream(stream_id)
        self._require_reply(stream)
        block = self._compressor.encode(headers, NO_PSEUDO)
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
        self._queue_data(stream, data, end_stream)

    def _queue_data(
        self, stream: Stream, data: bytes | memoryview, end_stream: bool,
        reply_headers: Iterable[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """DATA (split at the 24-bit length limit), preceded by a SYN_REPLY if given one."""
        stream_id = stream.stream_id
        size = len(data)
        if size:  # an empty DATA (a bare FIN) goes even through a window driven below zero
            self._check_send_window(stream, size)
        if reply_headers is not None:
            block = self._compressor.encode_response(reply_headers)
            stream.reply_sent = True
            self._out.append(frames.syn_reply(self._wire, stream_id, 0, block))
        if size:
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

    def _check_send_window(self, stream: Stream, size: int) -> None:
        """The one rule for `size` DATA bytes: within the stream's and the session's send
        windows, else FlowControlBlocked (raised before anything is queued)."""
        if size > stream.send_window or (
            self._send_session_fc and size > self.session_send_window
        ):
            raise FlowControlBlocked(
                f"{size} bytes exceed the send window of stream {stream.stream_id}")

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
        missing = [name for name in REQUIRED_PUSH_HEADERS if name not in names]
        if missing:
            raise LocalProtocolError(f"a push needs {b', '.join(missing).decode()}")
        prio = assoc.priority if priority is None else max(priority, assoc.priority)
        if not 0 <= prio <= 7:
            raise LocalProtocolError("priority must be 0..7")
        block = self._compressor.encode(header_list, PUSH_PSEUDO)
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
        """RST_STREAM a live stream (a no-op for one that is already gone).

        REFUSED_STREAM for a stream the peer opened counts against the rapid-reset budget
        like a reset by the peer (it is work the peer made us do for nothing); when that
        runs out, GOAWAY goes now and the next `receive_data` ends the session."""
        stream = self.streams.get(stream_id)
        if stream is None or self.terminated:
            return
        self._queue_rst(stream, status)
        self._forget(stream, ClosedStreams.RESET)
        if (
            status == StreamStatus.REFUSED_STREAM
            and (stream_id % 2 == 1) != self.client_side
            and not stream.reply_sent
            and not self._abuse
            and not self._reset_budget.spend()
        ):
            self._abuse = self._abuse_reason()
            self.close_connection(SessionStatus.PROTOCOL_ERROR)

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
        if size <= 0 or self.terminated:
            return
        stream = self.streams.get(stream_id)
        if stream is not None and not stream.remote_closed:
            unacked = stream.unacked + size
            if unacked >= self.local_initial_window >> 1:
                stream.unacked = 0
                before = stream.recv_window
                stream.recv_window = self._grant(stream_id, before, unacked, MAX_WINDOW)
                if before < 0:  # only after a tolerated overrun (compat B)
                    self._overrun_repaid(before, stream.recv_window)
            else:
                stream.unacked = unacked
        self._credit_session(size)

    def local_flow_control_window(self, stream_id: int) -> int:
        """How many DATA bytes `send_data` accepts for this stream right now (may be <= 0)."""
        stream = self.streams.get(stream_id)
        if stream is None:
            raise StreamClosedError(stream_id)
        if self._send_session_fc:
            return min(stream.send_window, self.session_send_window)
        return stream.send_window

    def stream_is_open(self, stream_id: int) -> bool:
        return stream_id in self.streams

    @property
    def open_stream_count(self) -> int:
        return len(self.streams)

    def _writable_stream(self, stream_id: int) -> Stream:
        stream = self.streams.get(stream_id)
        if stream is None or stream.local_closed or self.terminated:
            raise StreamClosedError(stream_id)
        return stream

    def _unreplied_stream(self, stream_id: int) -> Stream:
        stream = self.streams.get(stream_id)
        if stream is None or stream.local_closed or self.terminated:
            raise StreamClosedError(stream_id)
        if self.client_side or stream_id % 2 == 0:
            raise LocalProtocolError("SYN_REPLY answers a client-initiated stream")
        if stream.reply_sent:
            raise LocalProtocolError(f"stream {stream_id} already has a reply")
        return stream

    def _require_reply(self, stream: Stream) -> None:
        if not stream.reply_sent and not self.client_side:
            raise LocalProtocolError(f"stream {stream.stream_id} needs SYN_REPLY first")


__all__ = ["Connection", "ConnectionConfig"]
