"""The asyncio side of a SPDY session: transport, requests, stream slots, app tasks.

One `SpdyProtocol` per connection owns a sans-IO engine. Reads go straight into
`engine.receive_data()`; events become `StreamCycle` calls. Sending and closing live in
`spdy_output.SessionOutput`, the timers in `spdy_timers.SessionTimers`.

Stream slots: a client stream holds one of the `max_concurrent_streams` slots we
advertise until its app handler has returned, even after the client reset it (the
engine forgets a reset stream at once, so its own count would let a peer that opens and
resets streams run unboundedly many handlers). A SYN_STREAM that finds every slot taken
is refused with RST_STREAM REFUSED_STREAM before any app code runs; the session lives on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, NoReturn

from spdyasgi import metrics
from spdyasgi.access_log import AccessLogger
from spdyasgi.asgi.scope import addresses, connection_scope, http_scope, proxy_extension
from spdyasgi.exceptions import ClientDisconnected
from spdyasgi.protocols.spdy_sendqueue import SendQueue
from spdyasgi.protocols.spdy_stream import StreamCycle
from spdyasgi.protocols.spdy_timers import SessionTimers
from spdyasgi.spdy import (
    Connection,
    ConnectionConfig,
    ConnectionTerminated,
    DataReceived,
    GoAwayReceived,
    HeadersReceived,
    Limits,
    PeerFault,
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
from spdyasgi.spdy.compat import FAULTS
from spdyasgi.spdy.constants import stream_status_name
from spdyasgi.spdy.exceptions import FlowControlBlocked, LocalProtocolError, StreamClosedError

__all__ = ["SpdyProtocol"]

logger = logging.getLogger("spdyasgi.error")

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


class SpdyProtocol(SessionTimers):
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
                    reset_burst=config.rapid_reset_burst,
                    reset_rate=config.rapid_reset_rate,
                ),
                clock=self.loop.time,
                compat=config.compat,
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
        self.yield_due = False
        self._received_bytes = 0
        self._receive_mark = 0
        # Stream slots: client streams whose handler has not returned yet (see above).
        self._handlers = 0
        self._max_handlers = config.max_concurrent_streams
        self._stats = metrics.STATS  # None unless --metrics-port: then per-stream adds only
        #: Whether streams note their start time (for the access log's or the metrics' duration).
        self.timed = self.access.configured or self._stats is not None

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
                **proxy_extension(transport),
            },
        )
        transport.set_write_buffer_limits(  # type: ignore[attr-defined]
            high=self._high_water, low=self._high_water // 4
        )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s - SPDY session (%s) started", self._peer, self.protocol_name)
        if scheme == "http":
            self.engine.assume_version()  # cleartext: compat detects 3 vs 3.1 flow control
        if self._stats is not None:
            self._stats.sessions_opened[self.protocol_name] += 1
            self._stats.count_engine(self.engine)
        self.engine.initiate_connection()
        self._flush()
        self._idle_since = self.loop.time()
        self._arm_idle_timer()
        if self.config.ping_interval:
            self._ping_timer = self.loop.call_later(self.config.ping_interval, self._send_ping)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.server_state.connections.discard(self)
        if self._stats is not None:
            self._stats.sessions_closed[self.protocol_name] += 1
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

    def eof_received(self) -> bool | None:
        """The client's FIN: over TCP a full close cannot be told from a half-close, and a
        handler waiting for `http.disconnect` must get it, so the session ends here (with
        GOAWAY, which a half-closed client still reads) and every handler is disconnected."""
        if not self._lingering and not self._closed:
            try:
                self.engine.close_connection(SessionStatus.OK)
                for cycle in list(self.cycles.values()):
                    cycle.disconnect()
                self._sendq.close()
                self._flush(force=True)
            except Exception:  # a protocol callback must not raise
                logger.exception("%s - internal error at the client's end of input",
                                 self._peer)
        return None

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # after our GOAWAY: read and drop until the peer or the timer closes
        self._received_bytes += len(data)
        try:  # free unless raised (3.11): no exception may leave a protocol callback
            for event in self.engine.receive_data(data):
                if isinstance(event, RequestReceived):
                    self._on_request(event)
                elif isinstance(event, DataReceived):
                    cycle = self.cycles.get(event.stream_id)
                    if self._stats is not None:
                        self._stats.body_in[self.protocol_name] += len(event.data)
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
                    if self._stats is not None:
                        self._stats.goaway_received[event.status] += 1
                    # No new streams will come: close (with our GOAWAY) once ours are done.
                    self._shutting_down = True
                elif isinstance(event, PeerFault):
                    logger.warning("%s - client fault %s (%s)%s: %s", self._peer, event.fault,
                                   FAULTS[event.fault],
                                   " tolerated (--compat)" if event.tolerated else "",
                                   event.detail)
                    if event.fault == "C" and event.tolerated:
                        self._on_window(0)  # the session window grew: wake every stream
                elif isinstance(event, ConnectionTerminated):
                    logger.warning("%s - closing SPDY session: %s", self._peer, event.reason)
                    if self._stats is not None:
                        self._stats.goaway_sent[event.status] += 1
                    self._close_after_goaway()
                    return
            self._flush()
            if self._shutting_down and not self.cycles:
                self._close_when_done()
            if self._receive_timer is not None or self.engine.has_partial_input:
                self._arm_receive_timer()  # else: nothing to time, nothing to stop
        except Exception:
            self._internal_error("handling received frames")

    # --------------------------------------------------------------- requests

    def _on_request(self, event: RequestReceived) -> None:
        stream_id = event.stream_id
        if self._handlers >= self._max_handlers:
            # Every slot is held by a handler still running (perhaps of a stream the
            # client already reset): refuse before any app code runs; the session lives on.
            self.engine.reset_stream(stream_id, StreamStatus.REFUSED_STREAM)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s - stream %d refused: %d handlers still running",
                             self._peer, stream_id, self._handlers)
            return
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
        self._handlers += 1  # given back in cycle_done, when the handler has returned
        self._start(cycle, event.priority)

    def _start(self, cycle: StreamCycle, priority: int) -> None:
        self.cycles[cycle.stream_id] = cycle
        cycle.priority = priority
        self.server_state.total_requests += 1
        if self._stats is not None:
            self._stats.streams_opened[self.protocol_name] += 1
        # A named Task made directly when the loop has no task factory: uvloop's
        # create_task would first let the Task format a "Task-N" name, then rename it,
        # and those two steps cost more than the rest of the call. A loop with a
        # factory gets it as always (create_task adds nothing else for a running loop).
        loop = self.loop
        coro = cycle.run_asgi(self.app)
        if loop.get_task_factory() is None:
            task = asyncio.Task(coro, loop=loop, name="spdyasgi-stream")
        else:
            task = loop.create_task(coro, name="spdyasgi-stream")
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
        if self._stats is not None and event.remote:  # sent ones: the engine counts them
            self._stats.rst_received[event.status] += 1
        if not event.remote:
            logger.info("%s - stream %d reset (%s): %s", self._peer, event.stream_id,
                        stream_status_name(event.status), event.reason)
        self._stream_gone(event.stream_id)

    def _on_rejected(self, event: RequestRejected) -> None:
        logger.info("%s - stream %d: %d (%s)", self._peer, event.stream_id,
                    event.http_status, event.reason)
        self._stream_gone(event.stream_id)

    def cycle_done(self, cycle: StreamCycle) -> None:
        """The app task of `cycle` finished: log it and forget the stream's state."""
        stream_id = cycle.stream_id
        self.cycles.pop(stream_id, None)
        if stream_id & 1:
            self._handlers -= 1
        self.server_state.tasks.discard(cycle.task)
        outbound = self._sendq.queues.get(stream_id)
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
            self._schedule_flush()
        if self._stats is not None:
            self._stats.stream_done(self.protocol_name,
                                    cycle.status or (499 if cycle.disconnected else 0),
                                    time.monotonic() - cycle.start_time, 0, cycle.bytes_sent)
        access = self.access
        if access.configured and access.enabled:
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
        if not self.cycles:
            if self._shutting_down:
                self._close_when_done()
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
                       headers: list[tuple[bytes, bytes]]) -> tuple[tuple[bytes, bytes], ...]:
        # A tuple: it is the key of the engine's cache of compressed reply blocks as is.
        return ((b":status", _STATUS_CACHE.get(status) or str(status).encode()),
                _VERSION_HEADER, *headers, *self.server_state.default_headers)

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
        try:  # the engine's encoder refuses pseudo-headers (a LocalProtocolError)
            self.engine.send_headers(cycle.stream_id, headers, end_stream=True)
        except StreamClosedError:
            cycle.disconnect()
            raise ClientDisconnected() from None
        except LocalProtocolError as exc:
            # The body went out already: the stream can only be reset, not left open.
            self.reset(cycle, internal=True)
            raise RuntimeError(f"invalid response trailers: {exc}") from None
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
