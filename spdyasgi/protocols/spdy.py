"""The asyncio side of a SPDY session: transport, timers, write scheduling, backpressure.

One `SpdyProtocol` per connection owns a sans-IO engine. Reads go straight into
`engine.receive_data()`; events become `StreamCycle` calls. Writes are coalesced: every
frame produced during one loop iteration leaves in a single `transport.write`.

Sending DATA: a body that fits the windows and finds no other stream waiting goes out at
once. Otherwise it joins the scheduler, which cuts DATA into frames (16 KiB when several
streams compete, larger when one is alone), serves the numerically lowest priority first
and rotates round-robin within a priority, and parks streams whose window is exhausted
until a WINDOW_UPDATE or SETTINGS reopens it. The transport's high-water mark
(`max_pending_output`) bounds what one session buffers; while it is exceeded the
scheduler stops and `send()` callers wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, NoReturn

from spdyasgi.access_log import AccessLogger
from spdyasgi.asgi.scope import addresses, connection_scope, http_scope
from spdyasgi.exceptions import ClientDisconnected
from spdyasgi.protocols.spdy_sendqueue import SendQueue
from spdyasgi.protocols.spdy_stream import StreamCycle
from spdyasgi.spdy import (
    Connection,
    ConnectionConfig,
    ConnectionTerminated,
    DataReceived,
    GoAwayReceived,
    HeadersReceived,
    Limits,
    PingAcknowledged,
    RequestReceived,
    RequestRejected,
    SessionStatus,
    SettingsReceived,
    StreamReset,
    StreamStatus,
    Version,
    WindowUpdated,
    request_head,
)
from spdyasgi.spdy.constants import stream_status_name
from spdyasgi.spdy.exceptions import FlowControlBlocked, LocalProtocolError, StreamClosedError

__all__ = ["SpdyProtocol"]

logger = logging.getLogger("spdyasgi.error")

_SMALL_FRAME = 16 * 1024
_LARGE_FRAME = 128 * 1024
#: A body chunk up to this size goes out as one DATA frame when no other stream waits:
#: interleaving only matters under contention, and big frames save per-frame work.
_MAX_DIRECT = 4 * 1024 * 1024
_WRITELINES_FROM = 64 * 1024
_FLUSH_THRESHOLD = 256 * 1024
_LINGER_SECONDS = 2.0
_VERSION_HEADER = (b":version", b"HTTP/1.1")
_STATUS_CACHE = {code: str(code).encode() for code in range(100, 600)}
_STATUS_200 = (b":status", b"200")
_PUSH_STATUS = (b":status", b"200")
_ACCESS_LOGGERS: dict[int, AccessLogger] = {}


_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS",
                                      "PATCH", "CONNECT", "TRACE")}


def _http_version(value: bytes) -> str:
    """`:version` (`HTTP/1.0`) as ASGI's `http_version` (`1.0`)."""
    return value[5:].decode("latin-1") if value.startswith(b"HTTP/") else "1.1"


def _access_logger(config: Any) -> AccessLogger:
    key = id(config)
    access = _ACCESS_LOGGERS.get(key)
    if access is None:
        access = _ACCESS_LOGGERS[key] = AccessLogger(config)
    return access


class SpdyProtocol(asyncio.Protocol):
    """A server-side SPDY/3 or SPDY/3.1 session serving one ASGI app."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        version: Version = Version.SPDY31,
    ) -> None:
        self.config = config
        self.server_state = server_state
        self.app_state = app_state
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.version = version
        self.protocol_name = version.alpn
        self._version_text = version.value
        self.engine = Connection(
            ConnectionConfig(
                client_side=False,
                version=version,
                max_concurrent_streams=config.max_concurrent_streams,
                initial_window_size=config.initial_window_size,
                session_window_size=config.session_window_size,
                header_compression_level=config.header_compression_level,
                limits=Limits(
                    max_frame_size=config.max_frame_size,
                    max_header_block_size=config.max_header_size,
                    max_header_count=config.max_header_count,
                ),
                clock=self.loop.time,
            )
        )
        self.access = _access_logger(config)
        self.transport: asyncio.Transport | None = None
        self.cycles: dict[int, StreamCycle] = {}
        self._sendq = SendQueue()
        self._write_paused = False
        self._unflushed = 0
        self._flush_handle: asyncio.Handle | None = None
        self._closed = False
        self._lingering = False
        self._repump: asyncio.Handle | None = None
        self._linger_timer: asyncio.TimerHandle | None = None
        self._shutting_down = False
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_since = 0.0
        self._receive_timer: asyncio.TimerHandle | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._ping_deadline: asyncio.TimerHandle | None = None
        self._base_scope: dict[str, Any] = {}
        self._client: tuple[str, int] | None = None
        self._peer = "-"
        self._high_water = max(65536, int(config.max_pending_output))

    # ------------------------------------------------------------- connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server_state.connections.add(self)
        server, client = addresses(transport)
        self._client = client
        self._peer = f"{client[0]}:{client[1]}" if client else "-"
        scheme = "https" if transport.get_extra_info("sslcontext") is not None else "http"
        self._base_scope = connection_scope(
            scheme=scheme,
            server=server,
            client=client,
            root_path=self.config.root_path,
            extensions={
                "http.response.push": {},
                "http.response.trailers": {},
                "http.response.pathsend": {},
                "spdy": {"version": self._version_text},
            },
        )
        transport.set_write_buffer_limits(  # type: ignore[attr-defined]
            high=self._high_water, low=self._high_water // 4
        )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s - SPDY session (%s) started", self._peer, self.protocol_name)
        self.engine.initiate_connection()
        self._flush()
        self._idle_since = self.loop.time()
        self._arm_idle_timer()
        if self.config.ping_interval:
            self._ping_timer = self.loop.call_later(self.config.ping_interval, self._send_ping)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.server_state.connections.discard(self)
        for timer in (self._idle_timer, self._receive_timer, self._ping_timer,
                      self._ping_deadline, self._flush_handle, self._linger_timer,
                      self._repump):
            if timer is not None:
                timer.cancel()
        for cycle in list(self.cycles.values()):
            cycle.disconnect()
        self._sendq.close()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s - SPDY session closed", self._peer)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._sendq.ready_count:
            self._pump()
        self._flush()

    def eof_received(self) -> bool | None:
        return None

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # after our GOAWAY: read and drop until the peer or the timer closes
        try:
            events = self.engine.receive_data(data)
        except Exception:  # pragma: no cover - an engine bug must not kill the server
            logger.exception("%s - internal error in the SPDY engine", self._peer)
            self.engine.close_connection(SessionStatus.INTERNAL_ERROR)
            self._flush()
            self._close()
            return
        for event in events:
            if isinstance(event, RequestReceived):
                self._on_request(event)
            elif isinstance(event, DataReceived):
                cycle = self.cycles.get(event.stream_id)
                if cycle is not None:
                    cycle.body_received(event.data, event.end_stream)
                    self._check_body_limit(cycle)
                else:
                    self.engine.acknowledge_received_data(event.stream_id, len(event.data))
            elif isinstance(event, WindowUpdated):
                self._on_window(event.stream_id)
            elif isinstance(event, StreamReset):
                self._on_reset(event)
            elif isinstance(event, HeadersReceived):
                if event.end_stream:
                    cycle = self.cycles.get(event.stream_id)
                    if cycle is not None:
                        cycle.body_received(b"", True)
            elif isinstance(event, RequestRejected):
                self._on_rejected(event)
            elif isinstance(event, SettingsReceived):
                self._on_window(0)
            elif isinstance(event, PingAcknowledged):
                if self._ping_deadline is not None:
                    self._ping_deadline.cancel()
                    self._ping_deadline = None
            elif isinstance(event, GoAwayReceived):
                logger.debug("%s - client sent GOAWAY (last good %d)", self._peer,
                             event.last_good_stream_id)
            elif isinstance(event, ConnectionTerminated):
                logger.warning("%s - closing SPDY session: %s", self._peer, event.reason)
                self._close_after_goaway()
                return
        self._flush()
        self._arm_receive_timer()

    # --------------------------------------------------------------- requests

    def _on_request(self, event: RequestReceived) -> None:
        stream_id = event.stream_id
        state = self.server_state
        limit = self.config.limit_concurrency
        # Same rule as HTTP/1.1: too many connections, or as many app tasks as the limit.
        if limit is not None and (len(state.connections) > limit or len(state.tasks) >= limit):
            self._reply_error(stream_id, 503, b"Service Unavailable")
            return
        method, target, host, version, others = event.head or request_head(event.headers)
        headers = [(b"host", host)]  # the host header goes first
        headers += others
        scope = http_scope(
            self._base_scope,
            _METHODS.get(method) or method.decode("latin-1") or "GET",
            target or b"/",
            headers,
            self.app_state,
            "1.1" if version == b"HTTP/1.1" else _http_version(version),
        )
        extensions = scope["extensions"] = dict(scope["extensions"])
        extensions["spdy"] = {"version": self._version_text, "stream_id": stream_id,
                              "priority": event.priority}
        cycle = StreamCycle(self, stream_id, scope, not event.end_stream)
        self._start(cycle, event.priority)

    def _start(self, cycle: StreamCycle, priority: int) -> None:
        self.cycles[cycle.stream_id] = cycle
        cycle.priority = priority
        self.server_state.total_requests += 1
        # A fixed name: asyncio would otherwise format "Task-N" for every stream.
        task = self.loop.create_task(cycle.run_asgi(self.app), name="spdyasgi-stream")
        cycle.task = task
        self.server_state.tasks.add(task)  # leaves in cycle_done: no done-callback needed

    def _reply_error(self, stream_id: int, status: int, reason: bytes) -> None:
        try:
            self.engine.send_response(
                stream_id,
                [(b":status", _STATUS_CACHE[status]), _VERSION_HEADER,
                 (b"content-type", b"text/plain; charset=utf-8"),
                 (b"content-length", str(len(reason)).encode())],
            )
            self.engine.send_data(stream_id, reason, end_stream=True)
        except LocalProtocolError:  # pragma: no cover - the stream died meanwhile
            pass

    def _check_body_limit(self, cycle: StreamCycle) -> None:
        limit = self.config.limit_request_body
        if limit is None:
            return
        received = self.engine.streams.get(cycle.stream_id)
        total = received.received if received is not None else 0
        if total <= limit:
            return
        logger.info("%s - stream %d: request body over limit_request_body (%d bytes)",
                    self._peer, cycle.stream_id, limit)
        if not cycle.response_started and not cycle.replied:
            cycle.response_started = cycle.response_complete = True
            cycle.status = 413
            cycle.replied = True
            self._reply_error(cycle.stream_id, 413, b"Request Entity Too Large")
        self.engine.reset_stream(cycle.stream_id, StreamStatus.CANCEL)
        self._stream_gone(cycle.stream_id)

    def _on_reset(self, event: StreamReset) -> None:
        if not event.remote:
            logger.info("%s - stream %d reset (%s): %s", self._peer, event.stream_id,
                        stream_status_name(event.status), event.reason)
        self._stream_gone(event.stream_id)

    def _on_rejected(self, event: RequestRejected) -> None:
        logger.info("%s - stream %d: %d (%s)", self._peer, event.stream_id,
                    event.http_status, event.reason)
        self._stream_gone(event.stream_id)

    def _stream_gone(self, stream_id: int) -> None:
        cycle = self.cycles.get(stream_id)
        if cycle is not None:
            cycle.disconnect()
        self._sendq.drop(stream_id)

    def cycle_done(self, cycle: StreamCycle) -> None:
        """The app task of `cycle` finished: log it and forget the stream's state."""
        stream_id = cycle.stream_id
        self.cycles.pop(stream_id, None)
        self.server_state.tasks.discard(cycle.task)
        outbound = self._sendq.get(stream_id)
        if outbound is not None and not outbound.chunks:
            self._sendq.forget(stream_id)
        if cycle.body_bytes:
            self.acknowledge(stream_id, cycle.body_bytes)
            cycle.body_chunks.clear()
            cycle.body_bytes = 0
        stream = self.engine.streams.get(stream_id)
        if stream is not None and stream.local_closed and not stream.remote_closed:
            # The response is complete but the client is still sending a body nobody reads.
            self.engine.reset_stream(stream_id, StreamStatus.CANCEL)
        access = self.access
        if access.enabled:
            scope = cycle.scope
            access.log(
                client=self._client,
                method=scope["method"],
                path=scope["path"],
                query=scope["query_string"],
                protocol=self.protocol_name,
                status=cycle.status or (499 if cycle.disconnected else 0),
                bytes_sent=cycle.bytes_sent,
                duration=time.monotonic() - cycle.start_time,
                stream_id=stream_id,
                request_headers=scope["headers"],
                response_headers=cycle.response_headers,
            )
        if self.engine.has_output:
            self._schedule_flush()
        if not self.cycles:
            if self._shutting_down and not self._sendq.ready_count:
                self._close_when_drained()
            else:
                self._idle_since = self.loop.time()

    # -------------------------------------------------------- cycle → session

    def acknowledge(self, stream_id: int, size: int) -> None:
        if not self._closed:
            self.engine.acknowledge_received_data(stream_id, size)
            self._schedule_flush()

    def start_response(self, cycle: StreamCycle, status: int,
                       headers: list[tuple[bytes, bytes]], end_stream: bool) -> None:
        if cycle.disconnected:
            raise ClientDisconnected()
        stream_id = cycle.stream_id
        if stream_id % 2 == 0:
            self._start_push_response(cycle, status, headers, end_stream)
            cycle.replied = True
            return
        try:
            self.engine.send_response(stream_id, self._reply_headers(status, headers),
                                     end_stream=end_stream)
        except LocalProtocolError as exc:
            self._reply_refused(cycle, exc)
        cycle.replied = True
        self._stream_output_done(end_stream)

    def respond_now(self, cycle: StreamCycle, body: bytes, end_stream: bool) -> bool:
        """The reply and its first (often only) body in one engine call, if both can go
        now (as `send_body_now` decides); False leaves it to `start_response` and
        `send_body_now`/`send_body_queued`."""
        stream_id = cycle.stream_id
        size = len(body)
        if (
            stream_id % 2 == 0  # pushed: its headers go out differently
            or self._closed
            or cycle.disconnected
            or not self._can_send_now(stream_id, size)
        ):
            return False
        try:
            self.engine.respond(stream_id,
                                self._reply_headers(cycle.status, cycle.response_headers),
                                body, end_stream=end_stream)
        except FlowControlBlocked:
            return False
        except LocalProtocolError as exc:
            self._reply_refused(cycle, exc)
        cycle.replied = True
        self._stream_output_done(end_stream, size)
        return True

    @staticmethod
    def _reply_refused(cycle: StreamCycle, exc: LocalProtocolError) -> NoReturn:
        """What the app sees when the engine refuses a reply: the stream is gone
        (`http.disconnect` follows), or the app's headers cannot be sent."""
        if isinstance(exc, StreamClosedError):
            cycle.disconnect()
            raise ClientDisconnected() from None
        raise RuntimeError(f"invalid response headers: {exc}") from None

    def _reply_headers(self, status: int,
                       headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        reply = [(b":status", _STATUS_CACHE.get(status) or str(status).encode()),
                 _VERSION_HEADER]
        reply.extend(headers)
        reply.extend(self.server_state.default_headers)
        return reply

    def _stream_output_done(self, end_stream: bool, size: int = 0) -> None:
        """Write now when the last busy stream just finished, else batch the write.

        Streams that finish in the same loop iteration share one write; the last one
        (or a lone request) need not wait for another iteration to go out. `size` body
        bytes were just queued: an app sending in a tight loop never yields, so past
        `_FLUSH_THRESHOLD` they are written at once and the transport can push back
        (pause_writing) before memory grows.
        """
        self._unflushed += size
        if self._unflushed >= _FLUSH_THRESHOLD or (
            end_stream and len(self.cycles) <= 1 and not self._write_paused
        ):
            self._flush()
        else:
            self._schedule_flush()

    def _start_push_response(self, cycle: StreamCycle, status: int,
                             headers: list[tuple[bytes, bytes]], end_stream: bool) -> None:
        if status != 200:
            # The SYN_STREAM already promised 200; anything else is withdrawn.
            self.engine.reset_stream(cycle.stream_id, StreamStatus.CANCEL)
            self._stream_gone(cycle.stream_id)
            raise ClientDisconnected()
        extra = list(headers)
        extra.extend(self.server_state.default_headers)
        try:
            self.engine.send_headers(cycle.stream_id, extra, end_stream=end_stream)
        except StreamClosedError:
            cycle.disconnect()
            raise ClientDisconnected() from None
        except LocalProtocolError as exc:
            raise RuntimeError(f"invalid response headers: {exc}") from None
        self._schedule_flush()

    def send_trailers(self, cycle: StreamCycle, headers: list[tuple[bytes, bytes]]) -> None:
        try:
            self.engine.send_headers(cycle.stream_id, headers, end_stream=True)
        except StreamClosedError:
            cycle.disconnect()
            raise ClientDisconnected() from None
        self._schedule_flush()

    def reset(self, cycle: StreamCycle, internal: bool = False) -> None:
        status = StreamStatus.INTERNAL_ERROR if internal else StreamStatus.CANCEL
        self.engine.reset_stream(cycle.stream_id, status)
        self._stream_gone(cycle.stream_id)
        self._schedule_flush()

    def push(self, cycle: StreamCycle, path: str, headers: list[tuple[bytes, bytes]]) -> None:
        """Open a pushed stream for `path` and run the app for it as a GET."""
        if self._shutting_down or self._closed:
            return
        scope = cycle.scope
        host = b""
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
                break
        target = path.encode("utf-8")
        promised = [
            (b":scheme", scope["scheme"].encode()), (b":host", host), (b":path", target),
            (b":method", b"GET"), _PUSH_STATUS, _VERSION_HEADER,
        ]
        try:
            push_id = self.engine.push_stream(cycle.stream_id, promised)
        except LocalProtocolError as exc:
            raise RuntimeError(f"invalid push: {exc}") from None
        if push_id is None:
            return
        request_headers = [(b"host", host)]
        request_headers.extend((name.lower(), value) for name, value in headers
                               if name.lower() != b"host")
        push_scope = http_scope(self._base_scope, "GET", target, request_headers,
                                self.app_state, scope["http_version"])
        extensions = push_scope["extensions"] = dict(push_scope["extensions"])
        extensions["spdy"] = {"version": self._version_text, "stream_id": push_id,
                              "priority": self.engine.streams[push_id].priority,
                              "associated_stream_id": cycle.stream_id}
        push_cycle = StreamCycle(self, push_id, push_scope, False, push_path=path)
        self._start(push_cycle, self.engine.streams[push_id].priority)
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
        if self._closed or self.transport is None:
            return
        engine = self.engine
        transport = self.transport
        budget = self._high_water - transport.get_write_buffer_size()
        sendq = self._sendq
        while budget > 0 and sendq.ready_count and not self._write_paused:
            outbound = sendq.pop_ready()
            stream_id = outbound.cycle.stream_id
            try:
                window = engine.local_flow_control_window(stream_id)
            except StreamClosedError:
                sendq.forget(stream_id)
                outbound.cycle.disconnect()
                outbound.release()
                continue
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
            if last:
                outbound.release()
                if outbound.cycle.response_complete and stream_id not in self.cycles:
                    sendq.forget(stream_id)
            else:
                sendq.requeue(outbound)
        if engine.has_output and not self._write_paused:
            self._unflushed = 0
            # A list write: large DATA payloads are not joined (copied) once more.
            transport.writelines(engine.chunks_to_send())
        if self._sendq.ready_count and not self._write_paused and self._repump is None:
            # The budget ran out but the socket took the bytes without pausing us, so no
            # resume_writing will come: look again on the next loop iteration.
            self._repump = self.loop.call_soon(self._pump_again)
        if self._shutting_down and not self.cycles and not self._sendq.ready_count:
            self._close_when_drained()

    def _pump_again(self) -> None:
        self._repump = None
        if self._sendq.ready_count and not self._write_paused:
            self._pump()

    # ---------------------------------------------------------------- output

    def _schedule_flush(self) -> None:
        if self._flush_handle is None and not self._closed:
            self._flush_handle = self.loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_handle = None  # running now: nothing left to cancel
        self._flush()

    def _flush(self, force: bool = False) -> None:
        handle = self._flush_handle
        if handle is not None:
            handle.cancel()  # this write covers what the scheduled one would have sent
            self._flush_handle = None
        if self._sendq.ready_count and not self._write_paused:
            self._pump()
        if self._closed or self.transport is None:
            return
        engine = self.engine
        if engine.has_output and (force or not self._write_paused or engine.terminated):
            if self._unflushed >= _WRITELINES_FROM:
                # Large DATA payloads: hand the transport the list, no joining copy.
                self.transport.writelines(engine.chunks_to_send())
            else:
                self.transport.write(engine.data_to_send())
            self._unflushed = 0

    def _close_after_goaway(self) -> None:
        """End a session we gave up on, without losing the GOAWAY that says why.

        Closing a socket with unread input makes the kernel send RST, which can destroy
        the GOAWAY still in flight. So: flush, half-close, keep reading (and dropping)
        for a moment, then close.
        """
        for cycle in list(self.cycles.values()):
            cycle.disconnect()
        self._flush(force=True)
        transport = self.transport
        if transport is None or transport.is_closing() or self._lingering:
            return
        self._lingering = True
        if transport.can_write_eof():
            transport.write_eof()
        self._linger_timer = self.loop.call_later(_LINGER_SECONDS, self._close)

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _close_when_drained(self) -> None:
        self._flush(force=True)
        self._close()

    # --------------------------------------------------------------- timers

    def _arm_idle_timer(self, delay: float | None = None) -> None:
        """One timer per session that re-arms itself: requests only stamp `_idle_since`,
        so a busy session creates no timer per request."""
        timeout = self.config.timeout_idle
        self._idle_timer = (
            self.loop.call_later(timeout if delay is None else delay, self._on_idle)
            if timeout and not self._closed else None
        )

    def _on_idle(self) -> None:
        self._idle_timer = None
        if self._closed:
            return
        if self.cycles:
            self._arm_idle_timer()
            return
        idle_for = self.loop.time() - self._idle_since
        if idle_for < self.config.timeout_idle:
            self._arm_idle_timer(self.config.timeout_idle - idle_for)
            return
        logger.debug("%s - SPDY session idle for %ss; GOAWAY", self._peer,
                     self.config.timeout_idle)
        self.engine.close_connection(SessionStatus.OK)
        self._close_when_drained()

    def _arm_receive_timer(self) -> None:
        partial = self.engine.has_partial_input
        timer = self._receive_timer
        if partial and timer is None and self.config.timeout_receive:
            self._receive_timer = self.loop.call_later(self.config.timeout_receive,
                                                       self._on_receive_timeout)
        elif not partial and timer is not None:
            timer.cancel()
            self._receive_timer = None

    def _on_receive_timeout(self) -> None:
        self._receive_timer = None
        if self.engine.has_partial_input and not self._closed:
            logger.info("%s - frame half-sent for over %ss; closing", self._peer,
                        self.config.timeout_receive)
            self.engine.close_connection(SessionStatus.PROTOCOL_ERROR)
            self.force_close()

    def _send_ping(self) -> None:
        self._ping_timer = None
        if self._closed:
            return
        self.engine.ping()
        self._flush()
        if self._ping_deadline is None:
            self._ping_deadline = self.loop.call_later(self.config.ping_timeout,
                                                       self._on_ping_timeout)
        self._ping_timer = self.loop.call_later(self.config.ping_interval, self._send_ping)

    def _on_ping_timeout(self) -> None:
        self._ping_deadline = None
        logger.info("%s - no PING reply within %ss; closing", self._peer,
                    self.config.ping_timeout)
        self.force_close()

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

    def force_close(self) -> None:
        """After the grace period: disconnect every cycle, RST CANCEL, close."""
        if self._closed:
            return
        for stream_id, cycle in list(self.cycles.items()):
            cycle.disconnect()
            self.engine.reset_stream(stream_id, StreamStatus.CANCEL)
            self._stream_gone(stream_id)
        self.engine.close_connection(SessionStatus.OK)
        self._flush(force=True)
        if self.transport is not None:
            self.transport.close()
