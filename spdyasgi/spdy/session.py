"""Session state shared by the receiving and the command halves of `Connection`.

`SessionState` owns every field of a session (streams, windows, ids, queues, budgets)
and the small helpers both halves need: queueing frames, closing and forgetting
streams, crediting the session window, ending the session.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import frames
from .accel import nvfast
from .constants import (
    DEFAULT_WINDOW,
    MAX_WINDOW,
    TYPE_SYN_STREAM,
    Version,
)
from .events import (
    ConnectionTerminated,
    Event,
    RequestReceived,
    StreamReset,
)
from .flow import window_increment
from .headers import (
    HeaderCompressor,
    HeaderDecompressor,
)
from .limits import Budget, Limits
from .stream import ClosedStreams, Stream


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
    #: Deliver DATA payloads of a memoryview passed to `receive_data` as `DataViewed`
    #: views of it instead of copying them into `DataReceived` bytes (see `DataViewed`).
    borrow_data: bool = False
    #: Optional monotonic clock (seconds) for rate limits; the engine never reads time itself.
    clock: Callable[[], float] | None = None
    #: Compatibility mode: bounded tolerances for faults of deployed peers (`compat.py`).
    compat: bool = False

    def __post_init__(self) -> None:
        if not DEFAULT_WINDOW <= self.initial_window_size <= MAX_WINDOW:
            raise ValueError("initial_window_size must be between 65536 and 2^31-1")
        if not DEFAULT_WINDOW <= self.session_window_size <= MAX_WINDOW:
            raise ValueError("session_window_size must be between 65536 and 2^31-1")
        if self.max_concurrent_streams < 1:
            raise ValueError("max_concurrent_streams must be at least 1")


class SessionState:
    """Every field of one session, and the helpers both halves share."""

    """One SPDY/3 or SPDY/3.1 session, either role, with no I/O of its own."""

    def __init__(self, config: ConnectionConfig | None = None):
        self.config = config = config or ConnectionConfig()
        self.client_side = config.client_side
        self.version = config.version
        self._wire = config.version.wire
        # A SYN_STREAM's first word (control bit, version, type): one compare per frame.
        self._syn_stream_word = 0x80000000 | (self._wire << 16) | TYPE_SYN_STREAM
        self._session_fc = config.version.session_flow_control
        self._borrow = config.borrow_data
        self.limits = limits = config.limits
        self._decompressor = HeaderDecompressor(
            limits.max_header_block_size, limits.max_header_count
        )
        self._compressor = HeaderCompressor(config.header_compression_level)
        self.streams: dict[int, Stream] = {}
        self._closed_streams = ClosedStreams(limits.max_closed_streams)
        self._inbuf = bytearray()
        self._skip = 0
        # A large DATA frame being delivered piece by piece (see FrameReceiver).
        self._data_left = 0
        #: True while part of a frame is buffered (the caller times half-sent frames). A
        #: plain attribute, set by `receive_data`: the caller reads it after every read.
        self.has_partial_input = False
        self._data_stream: Stream | None = None
        self._data_fin = False
        self._control_out: list[bytes] = []
        self._out: list[bytes | memoryview] = []
        self._queued_control = 0
        #: RST_STREAMs queued, by status: every one, including those the engine sends on
        #: its own (unknown streams, refusals). Metrics may point it at a shared Counter.
        self.rst_sent: Counter[int] = Counter()
        self._events: list[Event | None] = []
        # Requests opened in the current read, and those of them reset within it.
        self._batch_requests: set[int] = set()
        self._batch_dropped: set[int] = set()
        # With the C extension, a server opens plain requests in C (_nv_accept.c).
        c_inflater = self._decompressor.c_inflater
        self._acceptor: Any = (
            nvfast.RequestAcceptor(c_inflater, limits.max_header_block_size,
                                   limits.max_header_count, self._syn_stream_word,
                                   self.streams, self._batch_requests, Stream,
                                   RequestReceived, config)
            if nvfast is not None and c_inflater is not None and not self.client_side
            else None)
        # Streams the peer opened that ended before any reply (see `Limits.reset_burst`);
        # `_abuse` holds the reason once the budget ran out in a command, for the next read.
        self._reset_budget = Budget(limits.reset_burst, limits.reset_rate, config.clock)
        self._abuse = ""
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
        # Compatibility mode (see compat.py): what was tolerated, skipped ids, overruns,
        # whether the peer credited stream 0 yet, and whether we enforce it for sending.
        self._compat = config.compat
        self._faults_reported: set[str] = set()
        self._id_gaps = 0
        #: Bytes accepted beyond stream receive windows, not yet credited back (compat B).
        self.overrun = 0
        self._session_unseen = self._watch_credit = self._session_fc
        self._stream_credit = 0
        self._send_session_fc = self._session_fc
        self._next_ping_id = 2 if not self.client_side else 1
        self._outstanding_pings: set[int] = set()

    def _queue_control(self, frame: bytes) -> None:
        self._control_out.append(frame)
        self._queued_control += 1

    def _queue_rst(self, stream: Stream, status: int) -> None:
        """RST_STREAM for a stream we may already have sent a header frame on.

        Such a RST must not overtake that SYN_REPLY/SYN_STREAM (the peer would see a reset
        for a stream it does not know yet), so it joins the ordered queue; other RSTs go
        with the control frames, ahead of DATA.
        """
        frame = frames.rst_stream(self._wire, stream.stream_id, status)
        self._queued_control += 1
        self.rst_sent[status] += 1
        if stream.reply_sent or (stream.stream_id % 2 == 0) != self.client_side:
            self._out.append(frame)
        else:
            self._control_out.append(frame)

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
        if stream.recv_window < 0:  # only after a tolerated overrun (compat B)
            self.overrun -= -stream.recv_window
            stream.recv_window = 0
        if stream.associated_id:
            assoc = self.streams.get(stream.associated_id)
            if assoc is not None and assoc.pushes:
                try:
                    assoc.pushes.remove(stream_id)
                except ValueError:  # pragma: no cover - defensive
                    pass

    def _credit_session(self, size: int) -> None:
        """`size` received bytes are done with (consumed or dropped): each byte is credited
        exactly once, here, and the WINDOW_UPDATE goes out once half the window is due."""
        if not self._session_fc:
            return
        unacked = self._session_unacked + size
        if unacked >= self._session_target >> 1:
            self._session_unacked = 0
            self.session_recv_window = self._grant(
                0, self.session_recv_window, unacked, self._session_target
            )
        else:
            self._session_unacked = unacked

    def _grant(self, stream_id: int, window: int, due: int, ceiling: int) -> int:
        """The one window manager of the receive direction: queue a WINDOW_UPDATE for `due`
        consumed bytes, never raising `window` past `ceiling` (<= 2^31-1), and return
        the new window. Credit beyond the ceiling can only come from a bookkeeping slip;
        it is dropped instead of letting the peer's view of the window grow without bound.
        """
        delta = window_increment(window, due, ceiling)
        if delta:
            self._control_out.append(frames.window_update(self._wire, stream_id, delta))
        return window + delta

    def _abuse_reason(self) -> str:
        limits = self.limits
        return (
            f"rapid reset: more than {limits.reset_burst} streams opened and reset or refused "
            f"before any reply, beyond {limits.reset_rate:g} per second sustained"
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
            self.rst_sent[status] += 1
            # Remember it, so its in-flight DATA is dropped quietly instead of drawing
            # one more RST per frame.
            self._closed_streams.add(stream_id, ClosedStreams.RESET)

    def _remote_fin(self, stream: Stream) -> None:
        stream.remote_closed = True
        if stream.local_closed:
            self._forget(stream, ClosedStreams.FINISHED)
            self._reset_budget.refund()
