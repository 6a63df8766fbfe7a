"""What arrives on a stream the peer opened: request heads checked, request bodies
admitted and delivered, and the bytes of dropped DATA credited back.

The frame-level half (`receiver.FrameReceiver`) parses frames and calls these. Every
received DATA byte is taken from the session window once (`_admit_data`) and given
back once: by the application's acknowledgement when delivered, here when dropped.
"""

from __future__ import annotations

from . import frames
from .compat import CompatTolerance, strict_hint
from .constants import (
    DROPPED_REQUEST_HEADERS,
    KEPT_REQUEST_HEADER,
    REQUIRED_REQUEST_PSEUDO_HEADERS,
    StreamStatus,
)
from .events import DataReceived, DataViewed, Event, RequestRejected
from .exceptions import ProtocolError
from .headers import Headers
from .stream import ClosedStreams, Stream

_FIN = 0x01
_ALLOWED_REQUEST_PSEUDO = frozenset(REQUIRED_REQUEST_PSEUDO_HEADERS)
_KEPT_NAME, _KEPT_VALUE = KEPT_REQUEST_HEADER


def _data_event(stream_id: int, data: bytes | memoryview, end_stream: bool) -> Event:
    if isinstance(data, bytes):
        return DataReceived(stream_id, data, end_stream)
    return DataViewed(stream_id, data, end_stream)


class StreamInput(CompatTolerance):
    """Request and body checks for peer streams (see the module docstring)."""

    def _without(self, events: list[Event | None], dropped: set[int]) -> list[Event]:
        """This read's events less those of streams opened and reset within it: the
        application never needs to see them. Their DATA is credited here, since nobody
        will acknowledge it. One pass per read, so each such reset costs O(1)."""
        self._batch_dropped = set()
        kept: list[Event] = []
        credit = 0
        for event in events:
            if event is None:
                continue
            if getattr(event, "stream_id", None) in dropped:
                if isinstance(event, (DataReceived, DataViewed)):
                    credit += len(event.data)
                continue
            kept.append(event)
        if credit and not self.terminated:
            self._credit_session(credit)
        return kept

    def _more_data(self, data: bytes | memoryview) -> int:
        """Deliver the next piece of a large DATA payload; returns where the rest starts."""
        take = min(self._data_left, len(data))
        self._data_left -= take
        self._data_piece(data if take == len(data) else data[:take])
        return take

    def _data_piece(self, piece: bytes | memoryview) -> None:
        stream = self._data_stream
        if stream is None or self.streams.get(stream.stream_id) is not stream:
            # Dropped from the start, or reset on our side since the frame began.
            self._credit_session(len(piece))
            return
        self._deliver(stream, piece, self._data_fin and not self._data_left)

    def _max_inbound_data(self) -> int:
        if self._session_fc:
            return self.session_recv_window
        return max(self.local_initial_window, self.config.initial_window_size)

    def _oversized_data(self, stream_id: int, length: int) -> None:
        if self._compat:
            return  # judged by `_admit_data` like any overrun (compat B); never buffered whole
        raise ProtocolError(
            f"DATA frame of {length} bytes on stream {stream_id} exceeds every receive window"
            + strict_hint("B")
        )

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
            elif name in DROPPED_REQUEST_HEADERS and not (
                name == _KEPT_NAME and value == _KEPT_VALUE
            ):
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
            self.rst_sent[StreamStatus.STREAM_ALREADY_CLOSED] += 1
            self._closed_streams.add(stream_id, ClosedStreams.RESET)
            return
        if stream_id == 0:  # pragma: no cover - defensive: DATA/HEADERS check it first
            raise ProtocolError(f"{what} on stream 0")
        self._queue_control(frames.rst_stream(self._wire, stream_id, StreamStatus.INVALID_STREAM))
        self.rst_sent[StreamStatus.INVALID_STREAM] += 1
        self._closed_streams.add(stream_id, ClosedStreams.RESET)

    def _empty_frame(self, stream: Stream) -> bool:
        stream.empty_frames += 1
        if stream.empty_frames > self.limits.max_empty_frames:
            self._stream_error(stream.stream_id, StreamStatus.PROTOCOL_ERROR,
                               "too many empty frames", stream)
            return True
        return False

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

    def _count_wasted(self) -> None:
        """One more stream the peer opened that ended before any reply (reset by the peer
        or refused): sustained beyond the budget, it is abuse (see `Limits.reset_burst`)."""
        if not self._reset_budget.spend():
            raise ProtocolError(self._abuse_reason())

    def _on_data(self, stream_id: int, flags: int, data: bytes | memoryview) -> None:
        size = len(data)
        stream = self._admit_data(stream_id, flags, size, size)
        if stream is not None:
            self._deliver(stream, data, bool(flags & _FIN))

    def _deliver(self, stream: Stream, data: bytes | memoryview, end_stream: bool) -> None:
        """A whole DATA payload or a piece of one, admitted by `_admit_data`."""
        self._events.append(_data_event(stream.stream_id, data, end_stream))
        if end_stream:
            self._end_of_request_body(stream)

    def _admit_data(self, stream_id: int, flags: int, size: int, arrived: int) -> Stream | None:
        """Check and account a DATA frame of `size` bytes: the stream to deliver it to, or
        None when it is dropped (any error queued, the `arrived` bytes of it credited).

        Every received byte is credited to the session window exactly once: a whole frame
        here (`arrived == size`), a frame delivered in pieces piece by piece as they
        arrive (`arrived == 0` here, then `_data_piece`)."""
        if stream_id == 0:
            raise ProtocolError("DATA on stream 0")
        if self._session_fc:
            if size > self.session_recv_window:
                self._session_overrun(size)  # raises unless tolerated (compat B)
            self.session_recv_window -= size
        stream = self.streams.get(stream_id)
        end_stream = bool(flags & _FIN)
        if stream is None:
            self._credit_session(arrived)
            self._frame_for_dead_stream(stream_id, "DATA")
            return None
        if stream.remote_closed:
            self._credit_session(arrived)
            self._stream_error(stream_id, StreamStatus.STREAM_ALREADY_CLOSED,
                               f"DATA after FIN on stream {stream_id}", stream)
            return None
        if self.client_side and stream_id % 2 == 1 and not stream.reply_received:
            self._credit_session(arrived)
            self._stream_error(stream_id, StreamStatus.PROTOCOL_ERROR,
                               "DATA before SYN_REPLY", stream)
            return None
        if size > stream.recv_window:
            problem = self._stream_overrun(stream, size)  # "" when tolerated (compat B)
            if problem:
                self._credit_session(arrived)
                self._stream_error(stream_id, StreamStatus.FLOW_CONTROL_ERROR, problem, stream)
                return None
        stream.recv_window -= size
        if stream.rejected:
            self._credit_session(arrived)
            stream.recv_window += size
            if end_stream:
                self._remote_fin(stream)
            return None
        if not size and not end_stream and self._empty_frame(stream):
            return None
        stream.received += size
        expected = stream.content_length
        if expected is not None and stream.received > expected and not self.client_side:
            self._credit_session(arrived)
            self._reject_after_delivery(
                stream, f"body exceeds content-length {expected}"
            )
            return None
        return stream
