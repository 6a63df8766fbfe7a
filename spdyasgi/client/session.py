"""The session core of the client: the engine, its I/O, its events, and stream bookkeeping.

`ClientSession` feeds received bytes to the sans-IO engine (`spdyasgi.spdy.Connection`,
client role) and dispatches its events to per-stream `StreamState`s. Writes are
coalesced: commands queue frames in the engine and a single `call_soon` flush writes them
once per loop turn. `SpdyClient` (connection.py) adds the options and the request API.

Receive credit: DATA is credited to the server on arrival while the stream's queue holds
at most `max_buffer` bytes, and as the caller consumes beyond that (see response.py).
Timeouts: a waiting reader gives up after `read_timeout` seconds without bytes moving on
its stream in either direction, or at the request's deadline, whichever comes first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING

from ..spdy import Connection as Engine
from ..spdy import (
    ConnectionTerminated,
    DataReceived,
    DataViewed,
    GoAwayReceived,
    HeadersReceived,
    PeerFault,
    PingAcknowledged,
    PushReceived,
    ResponseReceived,
    SettingsReceived,
    StreamReset,
    StreamStatus,
    WindowUpdated,
)
from ..spdy.compat import FAULTS
from ..tls import tls_records
from .errors import (
    ConnectionClosedError,
    GoAwayError,
    ReadTimeout,
    RequestTimeout,
    SpdyClientError,
    SpdyProtocolError,
    StreamRefusedError,
    StreamResetError,
    session_status_name,
    stream_status_name,
)
from .response import PushedResponse, StreamState

logger = logging.getLogger("spdyasgi.client")

if TYPE_CHECKING:
    from collections.abc import Callable

    from .transport import ClientProtocol

#: Requests we allow in flight before the server's SETTINGS tell us its real limit.
ASSUMED_MAX_CONCURRENT_STREAMS = 100


class ClientSession:
    """Engine, transport and streams of one SPDY session (the base of `SpdyClient`)."""

    read_timeout: float | None
    max_buffer: int
    trace: Callable[[str, bytes], None] | None

    def __init__(self) -> None:
        self._engine: Engine | None = None
        self._protocol: ClientProtocol | None = None
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._streams: dict[int, StreamState] = {}
        self._uploading: set[StreamState] = set()
        self._upload_tasks: set[asyncio.Task[None]] = set()
        self._active = 0
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self._pings: dict[int, tuple[asyncio.Future[float], float]] = {}
        self._flush_scheduled = False
        self._tls: bool | None = None  # over TLS each writelines item ends a record
        self._writing_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._closed: SpdyClientError | None = None
        #: The server's faults the engine saw (once each), tolerated with `compat=True`.
        self.faults: list[PeerFault] = []
        self._goaway: GoAwayError | None = None
        self._closed_event: asyncio.Event | None = None
        self._time: Callable[[], float] = time.monotonic  # the loop's clock, once open
        #: Counters, cheap enough to keep always (used by the load generator).
        self.bytes_received = 0
        self.bytes_sent = 0

    def _connection_made(self, protocol: ClientProtocol) -> None:  # pragma: no cover
        raise NotImplementedError

    @property
    def max_concurrent_streams(self) -> int:
        """How many of our streams may be open at once (server's value, or our assumption)."""
        engine = self._engine
        limit = engine.remote_max_concurrent_streams if engine is not None else None
        return ASSUMED_MAX_CONCURRENT_STREAMS if limit is None else limit

    # ------------------------------------------------------------------ I/O

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        engine = self._engine
        transport = self._transport
        if engine is None or transport is None or not engine.has_output:
            return
        if transport.is_closing():
            engine.data_to_send()
            return
        if self.trace is None:
            chunks = engine.chunks_to_send()
            for chunk in chunks:
                self.bytes_sent += len(chunk)
            if self._tls is None:
                self._tls = transport.get_extra_info("sslcontext") is not None
            transport.writelines(tls_records(chunks) if self._tls else chunks)
        else:
            data = engine.data_to_send()
            self.bytes_sent += len(data)
            self.trace(">", data)
            transport.write(data)

    def _resume_writing(self) -> None:
        self._writing_paused = False
        waiters = self._drain_waiters
        self._drain_waiters = []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _data_received(self, data: memoryview) -> None:
        """One read, as a view of the protocol's buffer: valid during this call only."""
        engine = self._engine
        if engine is None:
            return
        self.bytes_received += len(data)
        if self.trace is not None:
            self.trace("<", bytes(data))
        events = engine.receive_data(data)
        streams = self._streams
        now = self._time()
        limit = self.max_buffer
        for event in events:
            cls = type(event)
            if cls is DataViewed or cls is DataReceived:
                assert isinstance(event, DataViewed | DataReceived)
                state = streams.get(event.stream_id)
                payload = event.data
                size = len(payload)
                if state is None:
                    engine.acknowledge_received_data(event.stream_id, size)
                    continue
                if size:
                    state.body_started = True
                    if state.discarding:  # counted and let go now, never queued
                        state.last_activity = now
                        state.discarded += size
                        engine.acknowledge_received_data(state.stream_id, size)
                    else:
                        state.last_activity = now
                        state.received += size
                        kept = payload if isinstance(payload, bytes) else bytes(payload)
                        state.chunks.append(kept)
                        if state.is_push:
                            engine.acknowledge_received_data(state.stream_id, size)
                        else:
                            buffered = state.buffered = state.buffered + size
                            if buffered <= limit:
                                engine.acknowledge_received_data(state.stream_id, size)
                            else:  # over the bound: credit waits for the caller
                                state.unacked += size
                if event.end_stream:
                    state.eof = True
                    if state.send_waiter is not None:
                        state.wake_sender()
                    self._check_finished(state)
                state.wake()
            elif cls is ResponseReceived:
                assert isinstance(event, ResponseReceived)
                self._on_response(event, now)
            elif cls is WindowUpdated:
                assert isinstance(event, WindowUpdated)
                if event.stream_id == 0:
                    for state in self._uploading:
                        state.last_activity = now
                        state.wake_sender()
                else:
                    state = streams.get(event.stream_id)
                    if state is not None:
                        state.last_activity = now
                        state.wake_sender()
            elif cls is HeadersReceived:
                assert isinstance(event, HeadersReceived)
                self._on_headers(event, now)
            elif cls is PushReceived:
                assert isinstance(event, PushReceived)
                self._on_push(event)
            elif cls is StreamReset:
                assert isinstance(event, StreamReset)
                self._on_reset(event)
            elif cls is SettingsReceived:
                for state in self._uploading:
                    state.wake_sender()
                self._release_slots()
            elif cls is PingAcknowledged:
                assert isinstance(event, PingAcknowledged)
                entry = self._pings.pop(event.ping_id, None)
                if entry is not None and not entry[0].done():
                    entry[0].set_result(time.perf_counter() - entry[1])
            elif cls is GoAwayReceived:
                assert isinstance(event, GoAwayReceived)
                self._on_goaway(event)
            elif cls is PeerFault:
                assert isinstance(event, PeerFault)
                self.faults.append(event)
                logger.warning("server fault %s (%s)%s: %s", event.fault, FAULTS[event.fault],
                               " tolerated (compat)" if event.tolerated else "", event.detail)
            elif cls is ConnectionTerminated:
                assert isinstance(event, ConnectionTerminated)
                self._flush()
                error = SpdyProtocolError(
                    f"server broke the protocol: {event.reason} "
                    f"(sent GOAWAY {session_status_name(event.status)})"
                )
                self._fail_all(error)
                if self._transport is not None:
                    self._transport.close()
                return
        self._flush()

    def _connection_lost(self, exc: Exception | None) -> None:
        if exc is None:
            error = ConnectionClosedError("the server closed the connection")
        else:
            error = ConnectionClosedError(f"connection lost: {exc}")
        self._fail_all(error)
        self._resume_writing()
        if self._closed_event is not None:
            self._closed_event.set()

    def _fail_all(self, error: SpdyClientError) -> None:
        if self._closed is None:
            self._closed = error
        fired: list[StreamState] = []
        for state in list(self._streams.values()):
            if not state.eof and state.error is None:
                state.error = error
            state.finished = True
            state.wake()
            state.wake_sender()
            if state.on_done is not None:
                fired.append(state)
        self._streams.clear()
        self._uploading.clear()
        self._active = 0
        waiters = self._slot_waiters
        self._slot_waiters = deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(self._goaway or error)
        for future, _ in self._pings.values():
            if not future.done():
                future.set_exception(error)
        self._pings.clear()
        for state in fired:
            self._call_done(state)

    # --------------------------------------------------------------- events

    def _on_response(self, event: ResponseReceived, now: float) -> None:
        state = self._streams.get(event.stream_id)
        if state is None:
            return
        state.last_activity = now
        status = b""
        for name, value in event.headers:
            if name == b":status":
                status = value
                break
        if not status.split(b" ", 1)[0].isdigit():
            what = f"invalid :status {status!r}" if status else "no :status"
            self._protocol_fault(state, f"SYN_REPLY on stream {event.stream_id} has {what}")
            return
        state.headers = event.headers
        state.replied = True
        if event.end_stream:
            state.eof = True
            state.wake_sender()
            self._check_finished(state)
        state.wake()

    def _on_headers(self, event: HeadersReceived, now: float) -> None:
        state = self._streams.get(event.stream_id)
        if state is None:
            return
        state.last_activity = now
        if state.body_started or (event.end_stream and not state.is_push):
            state.trailers.extend(event.headers)
        else:
            state.headers.extend(event.headers)
        if event.end_stream:
            state.eof = True
            state.wake_sender()
            self._check_finished(state)
        state.wake()

    def _on_push(self, event: PushReceived) -> None:
        engine = self._engine
        assert engine is not None
        parent = self._streams.get(event.associated_stream_id)
        if parent is None or parent.error is not None:
            engine.reset_stream(event.stream_id, StreamStatus.CANCEL)
            return
        state = StreamState(event.stream_id, None, is_push=True)
        state.headers = list(event.headers)
        state.replied = True
        parent.pushes.append(PushedResponse(self, state, event.associated_stream_id))
        if event.end_stream:
            state.eof = True
            state.finished = True
        else:
            self._streams[event.stream_id] = state

    def _on_reset(self, event: StreamReset) -> None:
        state = self._streams.get(event.stream_id)
        if state is None:
            return
        error: SpdyClientError
        goaway = self._goaway
        if goaway is not None and event.stream_id > goaway.last_good_stream_id and event.remote \
                and event.status == StreamStatus.REFUSED_STREAM and not state.is_push:
            error = GoAwayError(
                f"stream {event.stream_id} was not processed: the server sent GOAWAY "
                f"(last good stream {goaway.last_good_stream_id}, "
                f"{session_status_name(goaway.status)}); retry on a new connection",
                goaway.last_good_stream_id, goaway.status,
            )
        elif event.remote:
            if event.status == StreamStatus.REFUSED_STREAM:
                error = StreamRefusedError(event.stream_id, event.status)
            else:
                error = StreamResetError(event.stream_id, event.status)
        else:
            error = SpdyProtocolError(
                f"protocol error on stream {event.stream_id}: {event.reason} "
                f"(sent RST_STREAM {stream_status_name(event.status)})"
            )
        if not state.eof:
            if event.remote and self._body_complete(state):
                # The whole declared body is here: the reset only ends the stream (as
                # HTTP/2 lets a server stop an upload after a complete response). node-spdy
                # does this when a WINDOW_UPDATE reaches a stream it already let go of.
                state.eof = True
            else:
                state.error = error
        self._finish(state)

    @staticmethod
    def _body_complete(state: StreamState) -> bool:
        """Did the reply's content-length worth of body arrive (a body was declared)?"""
        if not state.replied:
            return False
        for name, value in state.headers:
            if name == b"content-length":
                return value.isdigit() and int(value) == state.received > 0
        return False

    def _on_goaway(self, event: GoAwayReceived) -> None:
        self._goaway = GoAwayError(
            f"the server sent GOAWAY ({session_status_name(event.status)}, last good stream "
            f"{event.last_good_stream_id}): no new requests on this session",
            event.last_good_stream_id, event.status,
        )
        waiters = self._slot_waiters
        self._slot_waiters = deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(self._goaway)

    def _protocol_fault(self, state: StreamState, message: str) -> None:
        engine = self._engine
        assert engine is not None
        engine.reset_stream(state.stream_id, StreamStatus.PROTOCOL_ERROR)
        state.error = SpdyProtocolError(message)
        self._finish(state)

    # ----------------------------------------------------- stream bookkeeping

    def _check_finished(self, state: StreamState) -> None:
        engine = self._engine
        if engine is not None and not engine.stream_is_open(state.stream_id):
            self._finish(state)

    def _finish(self, state: StreamState) -> None:
        """The engine no longer holds the stream: forget it and free its slot."""
        if state.finished:
            return
        state.finished = True
        self._streams.pop(state.stream_id, None)
        self._uploading.discard(state)
        state.wake()
        state.wake_sender()
        if not state.is_push:
            self._active -= 1
            self._release_slots()
        if state.on_done is not None:
            self._call_done(state)

    @staticmethod
    def _call_done(state: StreamState) -> None:
        callback = state.on_done
        state.on_done = None
        if callback is not None:
            callback(state)

    def _release_slots(self) -> None:
        waiters = self._slot_waiters
        if not waiters:
            return
        limit = self.max_concurrent_streams
        while waiters and self._active < limit:
            waiter = waiters.popleft()
            if not waiter.done():
                self._active += 1
                waiter.set_result(None)

    async def _acquire_slot(self, deadline: float | None) -> None:
        if self._active < self.max_concurrent_streams and not self._slot_waiters:
            self._active += 1
            return
        assert self._loop is not None
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._slot_waiters.append(waiter)
        try:
            if deadline is None:
                await waiter
            else:
                await asyncio.wait_for(asyncio.shield(waiter), max(deadline - self._loop.time(), 0))
        except asyncio.TimeoutError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._active -= 1
                self._release_slots()
            else:
                waiter.cancel()
            raise RequestTimeout("request timed out waiting for a free stream slot") from None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._active -= 1
                self._release_slots()
            waiter.cancel()
            raise

    def _consumed(self, state: StreamState, size: int) -> None:
        """The caller took `size` body bytes: credit what was held back over `max_buffer`."""
        buffered = state.buffered = state.buffered - size
        unacked = state.unacked
        if not unacked or buffered > self.max_buffer:
            return
        state.unacked = 0
        engine = self._engine
        if engine is not None and self._closed is None:
            engine.acknowledge_received_data(state.stream_id, unacked)
            if engine.has_output:
                self._schedule_flush()

    def _abandon(self, state: StreamState) -> None:
        """The caller does not want the rest of this stream (either direction)."""
        upload = state.upload
        if upload is not None and not upload.done() and upload is not asyncio.current_task():
            upload.cancel()
        engine = self._engine
        if engine is None or self._closed is not None:
            return
        unacked = state.unacked
        state.chunks.clear()
        state.buffered = state.unacked = 0
        if not state.finished:
            engine.reset_stream(state.stream_id, StreamStatus.CANCEL)
            if state.error is None and not state.eof:
                state.error = ConnectionClosedError(f"stream {state.stream_id} was cancelled")
            self._finish(state)
        if unacked and not state.is_push:
            engine.acknowledge_received_data(state.stream_id, unacked)
        self._schedule_flush()

    # ------------------------------------------------------------- waiting

    def _on_timer(self, state: StreamState, waiter: asyncio.Future[None]) -> None:
        """A reader's timer: fail the stream if it is really idle (or past its deadline)."""
        state.timer = None
        if waiter.done():
            return
        loop = self._loop
        assert loop is not None
        now = loop.time()
        error: SpdyClientError | None = None
        if state.deadline is not None and now >= state.deadline:
            error = RequestTimeout(f"request on stream {state.stream_id} timed out")
        else:
            delay = self._timer_delay(state, now)
            if delay is not None and delay > 0:  # bytes moved meanwhile: wait some more
                state.timer = loop.call_later(delay, self._on_timer, state, waiter)
                return
            error = ReadTimeout(
                f"no data for {self.read_timeout:g} s on stream {state.stream_id} "
                "(read timeout)"
            )
        if state.error is None:
            state.error = error
        waiter.set_result(None)
        self._abandon(state)

    def _timer_delay(self, state: StreamState, now: float) -> float | None:
        delay: float | None = None
        if self.read_timeout is not None:
            delay = state.last_activity + self.read_timeout - now
        if state.deadline is not None:
            remaining = state.deadline - now
            if delay is None or remaining < delay:
                delay = remaining
        return delay

    async def _wait(self, state: StreamState) -> None:
        """Wait for anything to happen on `state`, bounded by the read/request timeouts."""
        loop = self._loop
        assert loop is not None
        waiter: asyncio.Future[None] = loop.create_future()
        state.waiter = waiter
        now = state.last_activity = loop.time()  # idle time counts while somebody waits
        delay = self._timer_delay(state, now)
        if delay is not None:
            state.timer = loop.call_later(max(delay, 0.0), self._on_timer, state, waiter)
        try:
            await waiter
        finally:
            state.waiter = None
            timer = state.timer
            if timer is not None:
                timer.cancel()
                state.timer = None


__all__ = ["ASSUMED_MAX_CONCURRENT_STREAMS", "ClientSession"]
