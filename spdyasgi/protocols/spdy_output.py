"""The sending half of a SPDY session: DATA scheduling, write coalescing, closing.

Every frame produced during one loop iteration leaves in a single `transport.write`.
A body that fits the windows and finds no other stream waiting goes out at once.
Otherwise it joins the scheduler (`SendQueue`), which cuts DATA into frames (16 KiB when
several streams compete, larger when one is alone), serves the numerically lowest
priority first and rotates round-robin within a priority, and parks streams whose window
is exhausted until a WINDOW_UPDATE or SETTINGS reopens it. The transport's high-water mark
(`max_pending_output`) bounds what one session buffers; while it is exceeded the
scheduler stops and `send()` callers wait.

Closing: every path that ends a session queues its GOAWAY in the engine first and drops
the send queue before the last flush, so no queued body can reach a terminated engine
and the GOAWAY is never lost behind an exception.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from spdyasgi.exceptions import ClientDisconnected
from spdyasgi.protocols.spdy_sendqueue import SendQueue
from spdyasgi.protocols.spdy_stream import StreamCycle
from spdyasgi.spdy import Connection, SessionStatus, StreamStatus
from spdyasgi.spdy.exceptions import StreamClosedError
from spdyasgi.tls import tls_records

__all__ = ["SessionOutput"]

logger = logging.getLogger("spdyasgi.error")

_SMALL_FRAME = 16 * 1024
_LARGE_FRAME = 128 * 1024
#: A body chunk up to this size goes out as one DATA frame when no other stream waits:
#: interleaving only matters under contention, and big frames save per-frame work.
_MAX_DIRECT = 4 * 1024 * 1024
_WRITELINES_FROM = 64 * 1024
_FLUSH_THRESHOLD = 256 * 1024
_LINGER_SECONDS = 2.0


class SessionOutput(asyncio.Protocol):
    """Send scheduling and the close paths; `SpdyProtocol` adds the rest of a session."""

    config: Any
    loop: asyncio.AbstractEventLoop
    engine: Connection
    transport: asyncio.Transport | None
    cycles: dict[int, StreamCycle]
    _peer: str
    _sendq: SendQueue
    _write_paused: bool
    _unflushed: int
    _flush_handle: asyncio.Handle | None
    _closed: bool
    _lingering: bool
    _repump: asyncio.Handle | None
    _linger_timer: asyncio.TimerHandle | None
    _shutting_down: bool
    _high_water: int
    #: Whether the transport encrypts (TLS); learnt at the first list write.
    _tls: bool | None = None
    #: Set when a body crossed `_FLUSH_THRESHOLD` and was written: the sending handler
    #: yields once to the loop (see `StreamCycle._send_body`).
    yield_due: bool

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        try:
            self._flush()  # pumps what waits, then writes
        except Exception:  # a protocol callback must not raise: end the session cleanly
            self._internal_error("resuming writes")

    def _stream_gone(self, stream_id: int) -> None:
        """The stream ended for good: its handler sees the disconnect, its queue goes."""
        cycle = self.cycles.get(stream_id)
        if cycle is not None:
            cycle.disconnect()
        self._sendq.drop(stream_id)

    def _stream_output_done(self, end_stream: bool, size: int = 0) -> None:
        """Write now when the last busy stream just finished, else batch the write.

        Streams that finish in the same loop iteration share one write; the last one
        (or a lone request) need not wait for another iteration to go out. `size` body
        bytes were just queued: an app sending in a tight loop never yields, so past
        `_FLUSH_THRESHOLD` they are written at once and the transport can push back
        (pause_writing) before memory grows.
        """
        self._unflushed += size
        if self._unflushed >= _FLUSH_THRESHOLD:
            # A fast reader never pauses the transport, so a handler sending in a loop
            # would never suspend: it yields once here, letting the session's other
            # streams (and every other session) take their turn, 256 KiB at a time.
            self.yield_due = True
            self._flush()
        elif end_stream and len(self.cycles) <= 1 and not self._write_paused:
            self._flush()
        else:
            self._schedule_flush()

    # ------------------------------------------------------------- DATA out

    def send_body_nowait(self, cycle: StreamCycle, body: bytes, end_stream: bool) -> None:
        """Queue body bytes without waiting (used for error replies)."""
        if cycle.disconnected or self._closed:
            return
        outbound = self._sendq.for_cycle(cycle)
        if body:
            outbound.chunks.append(memoryview(body))
        outbound.end = end_stream
        self._sendq.schedule(outbound)
        self._schedule_flush()

    async def send_body(self, cycle: StreamCycle, body: bytes, end_stream: bool) -> None:
        if not self.send_body_now(cycle, body, end_stream):
            await self.send_body_queued(cycle, body, end_stream)

    def send_body_now(self, cycle: StreamCycle, body: bytes, end_stream: bool) -> bool:
        """Send `body` at once if nothing stands in the way (no queue, window open, socket
        writable); False when it must be queued with `send_body_queued`. The common case
        thus costs no coroutine of its own."""
        stream_id = cycle.stream_id
        if cycle.disconnected or self._closed:
            raise ClientDisconnected()
        size = len(body)
        if self._can_send_now(stream_id, size):
            engine = self.engine
            try:
                window = engine.local_flow_control_window(stream_id)
                if size <= window or not size:
                    engine.send_data(stream_id, body, end_stream=end_stream)
                    self._stream_output_done(end_stream, size)
                    return True
            except StreamClosedError:
                cycle.disconnect()
                raise ClientDisconnected() from None
        return False

    def _can_send_now(self, stream_id: int, size: int) -> bool:
        """Nothing stands before `size` new body bytes of the stream but its windows: no
        bytes of its own or of other streams waiting, the transport writable, and a size
        that goes in one piece."""
        outbound = self._sendq.get(stream_id)
        return (
            (outbound is None or not outbound.chunks)
            and not self._sendq.ready_count
            and not self._write_paused
            and size <= _MAX_DIRECT
        )

    async def send_body_queued(self, cycle: StreamCycle, body: bytes, end_stream: bool) -> None:
        """Queue `body` behind what waits (priorities, windows, socket) and wait for it."""
        if cycle.disconnected or self._closed:
            raise ClientDisconnected()
        stream_id = cycle.stream_id
        outbound = self._sendq.get(stream_id)
        size = len(body)
        if outbound is None:
            outbound = self._sendq.for_cycle(cycle)
        if size:
            outbound.chunks.append(memoryview(body))
        outbound.end = end_stream
        waiter = outbound.waiter = self.loop.create_future()
        self._sendq.schedule(outbound)
        self._pump()
        if not waiter.done():
            await waiter
        if cycle.disconnected:
            raise ClientDisconnected()

    def _on_window(self, stream_id: int) -> None:
        # No pump here: the caller flushes once every event of the read is applied, so
        # streams unblocked together are served in priority order.
        if self._sendq.unstall(stream_id):
            self._schedule_flush()

    def _pump(self) -> None:
        """Move queued body bytes into the engine while windows and the transport allow."""
        engine = self.engine
        if self._closed or self.transport is None or engine.terminated or self._lingering:
            self._sendq.close()  # nothing queued can be sent any more: release the senders
            return
        transport = self.transport
        budget = self._high_water - transport.get_write_buffer_size()
        sendq = self._sendq
        while budget > 0 and sendq.ready_count and not self._write_paused:
            outbound = sendq.pop_ready()
            stream_id = outbound.cycle.stream_id
            try:
                window = engine.local_flow_control_window(stream_id)
                chunks = outbound.chunks
                if chunks and window <= 0:
                    sendq.stall(outbound)
                    continue
                frame = _LARGE_FRAME if not sendq.ready_count else _SMALL_FRAME
                if chunks:
                    head = chunks[0]
                    size = min(len(head), window, frame, budget)
                    if size == len(head):
                        del chunks[0]
                        data = head
                    else:
                        data = head[:size]
                        chunks[0] = head[size:]
                    last = not chunks
                    engine.send_data(stream_id, data, end_stream=last and outbound.end)
                    budget -= size
                else:
                    last = True
                    if outbound.end:
                        engine.send_data(stream_id, b"", end_stream=True)
            except StreamClosedError:  # reset, finished or the session ended meanwhile
                sendq.forget(stream_id)
                outbound.cycle.disconnect()
                outbound.release()
                continue
            if last:
                outbound.release()
                if outbound.cycle.response_complete and stream_id not in self.cycles:
                    sendq.forget(stream_id)
            else:
                sendq.requeue(outbound)
        if engine.has_output and not self._write_paused:
            self._unflushed = 0
            # A list write: large DATA payloads are not joined (copied) once more.
            self._write_chunks(transport, engine.chunks_to_send())
        if self._sendq.ready_count and not self._write_paused and self._repump is None:
            # The budget ran out but the socket took the bytes without pausing us, so no
            # resume_writing will come: look again on the next loop iteration.
            self._repump = self.loop.call_soon(self._pump_again)
        if self._shutting_down and not self.cycles:
            self._close_when_done()

    def _pump_again(self) -> None:
        self._repump = None
        if self._sendq.ready_count and not self._write_paused:
            try:
                self._pump()
            except Exception:  # a loop callback must not raise: end the session cleanly
                self._internal_error("sending queued DATA")

    # ---------------------------------------------------------------- output

    def _schedule_flush(self) -> None:
        if self._flush_handle is None and not self._closed:
            self._flush_handle = self.loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_handle = None  # running now: nothing left to cancel
        try:
            self._flush()
        except Exception:  # a loop callback must not raise: end the session cleanly
            self._internal_error("writing")

    def _flush(self, force: bool = False) -> None:
        handle = self._flush_handle
        if handle is not None:
            handle.cancel()  # this write covers what the scheduled one would have sent
            self._flush_handle = None
        if self._sendq.ready_count and not self._write_paused:
            self._pump()
        if self._closed or self.transport is None or self._lingering:
            return  # lingering: half-closed after the GOAWAY, nothing more may be written
        engine = self.engine
        if engine.has_output and (force or not self._write_paused or engine.terminated):
            if self._unflushed >= _WRITELINES_FROM:
                # Large DATA payloads: hand the transport the list, no joining copy.
                self._write_chunks(self.transport, engine.chunks_to_send())
            else:
                self.transport.write(engine.data_to_send())
            self._unflushed = 0

    def _write_chunks(self, transport: asyncio.Transport,
                      chunks: list[bytes | memoryview]) -> None:
        """One list write. Over TLS each item would end a record of its own (an 8-byte
        record per DATA frame header): the list is re-cut into full records first."""
        tls = self._tls
        if tls is None:
            tls = self._tls = transport.get_extra_info("sslcontext") is not None
        transport.writelines(tls_records(chunks) if tls else chunks)

    def _close_after_goaway(self) -> None:
        """End a session we gave up on, without losing the GOAWAY that says why.

        Closing a socket with unread input makes the kernel send RST, which can destroy
        the GOAWAY still in flight. So: flush, half-close, keep reading (and dropping)
        for a moment, then close.
        """
        for cycle in list(self.cycles.values()):
            cycle.disconnect()
        self._sendq.close()  # queued DATA is never sent: nothing may reach the engine now
        self._flush(force=True)
        transport = self.transport
        if transport is None or transport.is_closing() or self._lingering:
            return
        self._lingering = True
        if transport.can_write_eof():
            transport.write_eof()
        self._linger_timer = self.loop.call_later(_LINGER_SECONDS, self._close)

    def _internal_error(self, doing: str) -> None:
        """A bug of ours surfaced in a callback: log it, GOAWAY INTERNAL_ERROR, close.

        Never raises: it runs where an exception would reach the event loop and take the
        transport down without the GOAWAY."""
        logger.exception("%s - internal error while %s; closing the SPDY session",
                         self._peer, doing)
        try:
            self.engine.close_connection(SessionStatus.INTERNAL_ERROR)
            self._close_after_goaway()
        except Exception:  # pragma: no cover - last resort
            logger.exception("%s - could not close the SPDY session cleanly", self._peer)
            if self.transport is not None:
                self.transport.abort()

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _close_when_drained(self) -> None:
        self._flush(force=True)
        self._close()

    def _close_when_done(self) -> None:
        """Shutting down (ours or the client's GOAWAY) and no handler runs: once no body
        waits to go out, say GOAWAY (if not said yet) and close."""
        if not self._sendq.ready_count and not self._closed:
            self.engine.close_connection(SessionStatus.OK)
            self._close_when_drained()

    # ---------------------------------------------------------- server hooks

    def shutdown(self) -> None:
        """Graceful: GOAWAY(OK, last good id); close once the open streams finish."""
        if self._closed:
            return
        self._shutting_down = True
        self.engine.close_connection(SessionStatus.OK)
        if not self.cycles:
            self._close_when_drained()
        else:
            self._flush(force=True)

    def abort_session(self, status: int) -> None:
        """End a session the peer misbehaved on: GOAWAY(status), RST CANCEL for every
        stream still open, then the lingering close (so the GOAWAY is not lost)."""
        if self._closed:
            return
        self.engine.close_connection(status)
        self._reset_all()
        self._close_after_goaway()

    def _reset_all(self) -> None:
        """RST CANCEL the streams of running handlers, and of finished ones whose body
        still waits to go out; nothing queued is sent after this."""
        for stream_id in {*self.cycles, *self._sendq.queues}:
            self.engine.reset_stream(stream_id, StreamStatus.CANCEL)
            self._stream_gone(stream_id)
        self._sendq.close()

    def force_close(self) -> None:
        """After the grace period: disconnect every cycle, RST CANCEL, close."""
        if self._closed:
            return
        try:
            self.engine.close_connection(SessionStatus.OK)
            self._reset_all()
            self._flush(force=True)
        except Exception:  # called from timers and the server: must not raise
            logger.exception("%s - internal error while closing the SPDY session", self._peer)
        if self.transport is not None:
            self.transport.close()
