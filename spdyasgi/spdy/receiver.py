"""The receiving half of a session: parse frames, check them, emit events.

Each frame is checked against the session's state and answered with the narrowest
reaction the spec allows (an event, an RST_STREAM, or GOAWAY + `ConnectionTerminated`).
Header blocks are inflated for every header-carrying frame, even ones about to be
refused, because the zlib context is shared by the whole session.
"""

from __future__ import annotations

from . import frames
from .constants import (
    MAX_WINDOW,
    REQUIRED_PUSH_HEADERS,
    TYPE_HEADERS,
    TYPE_PING,
    TYPE_RST_STREAM,
    TYPE_SETTINGS,
    TYPE_SYN_REPLY,
    TYPE_WINDOW_UPDATE,
    FrameType,
    SessionStatus,
    SettingId,
    StreamStatus,
)
from .events import (
    Event,
    GoAwayReceived,
    HeadersReceived,
    PingAcknowledged,
    PingReceived,
    PushReceived,
    RequestReceived,
    ResponseReceived,
    SettingsReceived,
    StreamReset,
    WindowUpdated,
)
from .exceptions import (
    ProtocolError,
)
from .headers import (
    CompressionError,
    HeaderBlockError,
    Headers,
)
from .request_heads import request_head
from .stream import ClosedStreams, Stream
from .stream_input import StreamInput

_unpack_header = frames.FRAME_HEADER.unpack_from
_unpack_u32 = frames.UINT32.unpack_from
_unpack_u32x2 = frames.UINT32X2.unpack_from
_unpack_syn = frames.SYN_STREAM_HEAD.unpack_from

_FIN = 0x01
_UNIDIRECTIONAL = 0x02
_CONTROL_BIT = 0x80000000
_STREAM_MASK = 0x7FFFFFFF
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

#: DATA frames at least this long are delivered piece by piece as they arrive instead of
#: being buffered whole: no copy of the payload beyond the read itself, bounded buffering.
_STREAM_FROM = 65536


def _payload(buf: bytes | bytearray | memoryview, start: int, end: int,
             in_place: bool) -> bytes:
    """`buf[start:end]` as bytes with a single copy."""
    if in_place:
        return buf[start:end]  # type: ignore[return-value]  # buf is bytes here
    if end - start <= 4096:
        return bytes(buf[start:end])
    with memoryview(buf) as view:
        return bytes(view[start:end])


class FrameReceiver(StreamInput):
    """Turns received bytes into events (see the module docstring)."""

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed bytes read from the peer; returns what happened, in order.

        `data` is not kept: what must outlive the call is copied, except the DATA views
        handed out with `borrow_data` (see `DataViewed`)."""
        if self.terminated:
            return []
        if type(data) is not bytes and not (self._borrow and type(data) is memoryview):
            data = bytes(data)
        events: list[Event | None] = []
        self._events = events
        self._batch_requests.clear()
        try:
            if self._abuse:  # found while the caller refused streams (`reset_stream`)
                raise ProtocolError(self._abuse)
            pos = self._more_data(data) if self._data_left else 0
            if pos < len(data):
                if self._inbuf or self._skip:
                    self._parse_input(data, pos)
                else:  # the usual read: whole frames parsed in place, a partial one kept
                    pos = self._parse(data, pos)
                    if pos < len(data):
                        self._inbuf += memoryview(data)[pos:]
        except ProtocolError as exc:
            self._terminate(exc.status, str(exc))
            self._inbuf.clear()
            self._data_left = 0
        self.has_partial_input = bool(self._inbuf) or self._skip > 0 or self._data_left > 0
        if self._queued_control > self.limits.max_queued_control_frames and not self.terminated:
            self._terminate(
                SessionStatus.PROTOCOL_ERROR,
                f"more than {self.limits.max_queued_control_frames} control frames queued "
                "for a peer that does not read",
            )
        dropped = self._batch_dropped
        if dropped:
            return self._without(events, dropped)
        return events  # type: ignore[return-value]  # no None when nothing was dropped

    def _parse_input(self, data: bytes | memoryview, pos: int) -> None:
        """Parse `data[pos:]` after whatever partial frame is buffered."""
        buf = self._inbuf
        # With nothing buffered, parse the read in place: whole frames never get copied
        # into the buffer, only a trailing partial one does.
        source: bytes | bytearray | memoryview
        if buf:
            buf += memoryview(data)[pos:] if pos else data
            source = buf
            pos = 0
        else:
            source = data
        if self._skip:
            take = min(self._skip, len(source) - pos)
            self._skip -= take
            pos += take
        pos = self._parse(source, pos)
        if source is buf:
            if pos:
                del buf[:pos]
        elif pos < len(data):
            buf += memoryview(data)[pos:]

    def _parse(self, buf: bytes | bytearray | memoryview, pos: int) -> int:
        end = len(buf)
        in_place = type(buf) is bytes  # slicing bytes copies once; a bytearray slice twice
        borrowed = type(buf) is memoryview  # the caller's buffer, lent for DATA views
        max_frame = self.limits.max_frame_size
        syn_word = self._syn_stream_word
        acceptor = self._acceptor
        while end - pos >= 8:
            word, flags_length = _unpack_header(buf, pos)
            if word == syn_word:  # SYN_STREAM of our version: the frame that comes per request
                if acceptor is not None:
                    # The C acceptor opens the plain requests from here on (as many in a
                    # row as it can), or declines the first and Python takes it below.
                    done = acceptor.accept(self, buf, pos, end, max_frame, self._events)
                    if type(done) is not int:
                        pos = self._finish_request(done)
                        continue
                    if done != pos:
                        pos = done
                        continue
                length = flags_length & 0xFFFFFF
                if length > max_frame:
                    raise ProtocolError(
                        f"SYN_STREAM of {length} bytes is over the {max_frame}-byte limit")
                if end - pos - 8 < length:
                    break
                start = pos + 8
                pos = start + length
                self._on_syn_stream(flags_length >> 24, buf, start, pos)
                continue
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
                if known:  # SYN_STREAM was taken above
                    self._on_control(frame_type, flags, _payload(buf, start, pos, in_place))
            else:
                if end - pos - 8 < length:
                    if length > self._max_inbound_data():
                        self._oversized_data(word, length)
                    if length < _STREAM_FROM:
                        break
                    start = pos + 8
                    self._data_fin = bool(flags & _FIN)
                    self._data_stream = self._admit_data(word, flags, length, 0)
                    self._data_left = length - (end - start)
                    if end > start:
                        self._data_piece(buf[start:end] if borrowed  # type: ignore[arg-type]
                                         else _payload(buf, start, end, in_place))
                    return end
                start = pos + 8
                pos = start + length
                self._on_data(word, flags, buf[start:pos] if borrowed  # type: ignore[arg-type]
                              else _payload(buf, start, pos, in_place))
        return pos

    def _on_control(self, frame_type: int, flags: int, payload: bytes) -> None:
        fixed = _FIXED_LENGTH.get(frame_type)  # type: ignore[call-overload]
        if fixed is not None and len(payload) != fixed:
            raise ProtocolError(
                f"{FrameType(frame_type).name} with length {len(payload)} (must be {fixed})"
            )
        if frame_type == TYPE_WINDOW_UPDATE:
            self._on_window_update(payload)
        elif frame_type == TYPE_SYN_REPLY:
            self._on_syn_reply(flags, payload)
        elif frame_type == TYPE_HEADERS:
            self._on_headers(flags, payload)
        elif frame_type == TYPE_RST_STREAM:
            self._on_rst_stream(payload)
        elif frame_type == TYPE_PING:
            self._on_ping(payload)
        elif frame_type == TYPE_SETTINGS:
            self._on_settings(flags, payload)
        else:
            self._on_goaway(payload)

    def _on_syn_stream(self, flags: int, buf: bytes | bytearray | memoryview, start: int,
                       end: int) -> None:
        """The frame is `buf[start:end]`: only its header block is sliced off (zlib takes
        any buffer), so the payload is never copied whole first."""
        if end - start < 10:
            raise ProtocolError(f"SYN_STREAM with length {end - start} (at least 10)")
        stream_id, assoc_id, prio_byte, _slot = _unpack_syn(buf, start)
        stream_id &= _STREAM_MASK
        block = buf[start + 10:end]
        if self.client_side:
            self._on_push(stream_id, assoc_id & _STREAM_MASK, prio_byte >> 5, flags, block)
            return
        if not stream_id & 1:  # 0 or even
            raise ProtocolError(f"SYN_STREAM with invalid client stream id {stream_id}")
        highest = self.highest_remote_id
        if stream_id > highest:
            reordered = False
            if self._compat:
                self._note_remote_id(stream_id)
        elif stream_id < highest:
            self._reordered_stream_id(stream_id)  # raises unless tolerated (compat A)
            reordered = True
        else:
            self._repeated_stream_id(stream_id, block)
            return
        decoded = self._decoded_request(stream_id, reordered, block=block)
        if decoded is None:
            return
        headers, scanned = decoded
        if not reordered:
            self.highest_remote_id = stream_id
        if (self.goaway_sent and stream_id > self.last_good_stream_id) or (
            flags & _UNIDIRECTIONAL or assoc_id & _STREAM_MASK
            or self._remote_open >= self.config.max_concurrent_streams
        ):
            self._refuse_request(stream_id, reordered, None, flags, assoc_id)
            return
        self._open_request(stream_id, prio_byte >> 5, flags, headers, scanned, reordered)

    def _finish_request(self, pending: tuple[int, int, int, int, object]) -> int:
        """A SYN_STREAM the C acceptor checked and inflated but leaves to Python (a block
        that is not plain, or does not decode): `pending` is (position after the frame,
        flags, stream id, priority, what `inflate_request` gave)."""
        pos, flags, stream_id, priority, out = pending
        decoded = self._decoded_request(stream_id, False, inflated=out)
        if decoded is not None:
            self.highest_remote_id = stream_id
            self._open_request(stream_id, priority, flags, *decoded, False)
        return pos

    def _decoded_request(
        self, stream_id: int, reordered: bool, *,
        block: bytes | bytearray | memoryview | None = None, inflated: object = None,
    ) -> tuple[Headers, tuple[tuple[bytes, bytes, bytes, bytes, Headers], int] | None] | None:
        """A SYN_STREAM's headers and request scan, from its block or from what the C
        acceptor inflated of it. A bad header block refuses the stream (None); a broken
        zlib stream ends the session (ProtocolError)."""
        try:
            if block is not None:
                return self._decompressor.decode_request(block)
            return self._decompressor.decoded_request(inflated)
        except CompressionError as exc:
            raise ProtocolError(str(exc)) from None
        except HeaderBlockError as exc:
            self._refuse_request(stream_id, reordered, exc)
            return None

    def _open_request(self, stream_id: int, priority: int, flags: int, headers: Headers,
                      scanned: tuple[tuple[bytes, bytes, bytes, bytes, Headers], int] | None,
                      reordered: bool) -> None:
        """Open the client's stream and emit its request (or reject a bad one). The C
        acceptor (`_nv_accept.c`) does the same for plain requests: keep them in step."""
        end_stream = (flags & _FIN) != 0
        stream = Stream(stream_id, priority, self.remote_initial_window,
                        self.local_initial_window)
        stream.remote_closed = end_stream
        self.streams[stream_id] = stream
        self._remote_open += 1
        if not reordered:
            self.last_good_stream_id = stream_id
        if not self.config.validate_requests:
            head = request_head(headers)
        elif scanned is not None and not (end_stream and scanned[1] > 0):
            head, content_length = scanned  # plainly valid: checked and split in C
            if content_length >= 0:
                stream.content_length = content_length
        else:
            problem, headers = self._check_request(stream, headers)
            if problem:
                self._reject(stream, problem)
                return
            head = request_head(headers)
        self._batch_requests.add(stream_id)
        self._events.append(RequestReceived(stream_id, headers, priority, end_stream, head))

    def _repeated_stream_id(self, stream_id: int, block: bytes | bytearray | memoryview) -> None:
        """A SYN_STREAM for the id just opened: its block is still inflated (the zlib
        context is shared), then the stream is reset."""
        try:
            self._decompressor.decode_request(block)
        except CompressionError as exc:
            raise ProtocolError(str(exc)) from None
        except HeaderBlockError:
            pass
        self._stream_error(stream_id, StreamStatus.PROTOCOL_ERROR,
                           f"SYN_STREAM reuses stream id {stream_id}",
                           self.streams.get(stream_id))

    def _refuse_request(self, stream_id: int, reordered: bool,
                        block_error: HeaderBlockError | None, flags: int = 0,
                        assoc_id: int = 0) -> None:
        """The uncommon endings of a SYN_STREAM whose block inflated, in the spec's order:
        ignored after our GOAWAY, a bad header block, a unidirectional or associated
        client stream, or one over the concurrent stream limit."""
        if block_error is not None and not reordered:
            self.highest_remote_id = stream_id
        if self.goaway_sent and stream_id > self.last_good_stream_id:
            return  # ignored after GOAWAY: inflated, never answered
        if block_error is not None:
            self._stream_error(stream_id, block_error.status, str(block_error))
        elif flags & _UNIDIRECTIONAL or assoc_id & _STREAM_MASK:
            self._stream_error(stream_id, StreamStatus.PROTOCOL_ERROR,
                               "client SYN_STREAM must not be unidirectional or associated")
        else:
            self._count_wasted()
            self._stream_error(stream_id, StreamStatus.REFUSED_STREAM,
                               "over the concurrent stream limit")

    def _on_push(
        self, stream_id: int, assoc_id: int, priority: int, flags: int,
        block: bytes | bytearray | memoryview,
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
        if any(name not in names for name in REQUIRED_PUSH_HEADERS):
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

    def _decode_block_or_reset(self, stream_id: int,
                               block: bytes | bytearray | memoryview) -> Headers | None:
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

    def _on_rst_stream(self, payload: bytes) -> None:
        stream_id, status = _unpack_u32x2(payload, 0)
        stream_id &= _STREAM_MASK
        if stream_id == 0:
            raise ProtocolError("RST_STREAM on stream 0")
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        # Cost the peer imposed: a stream it opened and reset before any reply of ours.
        wasted = (not stream.reply_sent and not stream.local_closed
                  and (stream_id % 2 == 1) != self.client_side)
        self._forget(stream, ClosedStreams.RESET)
        if stream_id in self._batch_requests:
            # Opened and reset within one read: hidden from the caller (see `_without`).
            self._batch_dropped.add(stream_id)
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
        if wasted:
            # Counted last, so a stream dropped above stays dropped if this ends the session.
            self._count_wasted()

    def _on_window_update(self, payload: bytes) -> None:
        stream_id, delta = _unpack_u32x2(payload, 0)
        stream_id &= _STREAM_MASK
        delta &= _STREAM_MASK
        if stream_id == 0:
            if not self._session_fc:
                return
            if delta == 0:
                raise ProtocolError("session WINDOW_UPDATE with delta 0")
            if self._session_unseen:
                self._first_session_credit()
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
        if self._watch_credit:
            self._credit_without_session(delta)
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
