"""What the h11 and httptools protocols share: connection bookkeeping, timers, limits,
backpressure and the graceful/forced shutdown hooks the server calls.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from typing import Any

from spdyasgi import metrics
from spdyasgi.access_log import AccessLogger
from spdyasgi.asgi.scope import addresses, connection_scope, proxy_extension
from spdyasgi.protocols.flow import WriteFlow
from spdyasgi.protocols.http_cycle import HTTPCycle

__all__ = ["BaseHTTPProtocol"]

logger = logging.getLogger("spdyasgi.error")

# Request body buffered for an app that has not read it yet before we stop reading.
HIGH_WATER = 64 * 1024
# Largest request head (request line + headers) either parser buffers: the same
# ``max_header_size`` that bounds a SPDY header block. Over it: 431 and close.
DEFAULT_MAX_HEAD = 64 * 1024
# After a 413/431 sent to a client that may still be sending: how long we keep reading
# (and dropping) its bytes so that closing does not reset the connection under the answer.
LINGER = 2.0
_EXTENSIONS: dict[str, Any] = {"http.response.pathsend": {}}


def _simple_response(status: int, reason: bytes, body: bytes) -> bytes:
    return b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n" % (
        status,
        reason,
    ) + b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)


RESPONSE_400 = _simple_response(400, b"Bad Request", b"Invalid HTTP request received.")
RESPONSE_413 = _simple_response(413, b"Payload Too Large", b"Request body too large.")
RESPONSE_431 = _simple_response(
    431, b"Request Header Fields Too Large", b"Request header fields too large."
)
RESPONSE_503 = _simple_response(503, b"Service Unavailable", b"Service Unavailable")


class BaseHTTPProtocol(asyncio.Protocol):
    """An HTTP/1.1 connection; subclasses parse bytes and start cycles."""

    protocol_name = "http/1.1"

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.config = config
        self.app: Any = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        self.app_state = app_state
        self.access = AccessLogger(config)
        self.limit_concurrency: int | None = config.limit_concurrency
        self.limit_request_body: int | None = getattr(config, "limit_request_body", None)
        self.timeout_keep_alive: float = config.timeout_keep_alive
        self.timeout_receive: float | None = getattr(config, "timeout_receive", None)
        self.max_head_size: int = getattr(
            config, "http1_max_head_size", getattr(config, "max_header_size", DEFAULT_MAX_HEAD)
        )
        self.ws_protocol_class: Any = getattr(config, "ws_protocol_class", None)
        # --reset-contextvars: each request starts from the connection's clean context,
        # not from the previous (keep-alive) request's task, which started this one.
        self.base_context: contextvars.Context | None = None
        self.reset_contextvars: bool = getattr(config, "reset_contextvars", False)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.flow: WriteFlow = WriteFlow(self.loop)
        self.cycle: HTTPCycle | None = None
        self.closing = False
        self.reading_paused = False
        self.client: tuple[str, int] | None = None
        self.base_scope: dict[str, Any] = {}
        self._keep_alive_handle: asyncio.TimerHandle | None = None
        self._receive_handle: asyncio.TimerHandle | None = None
        self._linger_handle: asyncio.TimerHandle | None = None
        self.discarding = False  # answered and closing: incoming bytes are dropped
        self.upgraded = False  # handed over to a WebSocket protocol

    # -- asyncio.Protocol -----------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.server_state.connections.add(self)
        self.transport = transport  # type: ignore[assignment]
        server, client = addresses(transport)
        self.client = client
        if self.reset_contextvars:
            self.base_context = contextvars.copy_context()
        scheme = "https" if transport.get_extra_info("sslcontext") is not None else "http"
        self.base_scope = connection_scope(
            scheme=scheme,
            server=server,
            client=client,
            root_path=self.config.root_path,
            extensions={**_EXTENSIONS, **proxy_extension(transport)},
        )
        if metrics.STATS is not None:
            metrics.STATS.sessions_opened["http/1.1"] += 1
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s - HTTP/1.1 connection made", self._peer())

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        if metrics.STATS is not None:
            metrics.STATS.sessions_closed["http/1.1"] += 1
        self._cancel_timers()
        self.flow.close()
        self._disconnect_cycles()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s - HTTP/1.1 connection lost", self._peer())

    def eof_received(self) -> bool | None:
        return None

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    # -- the server's hooks ---------------------------------------------------------
    def shutdown(self) -> None:
        """Graceful: close now when idle, otherwise right after the current response."""
        self.closing = True
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            self.transport.close()
        else:
            cycle.keep_alive = False

    def force_close(self) -> None:
        """Grace period over: the running cycle sees ``http.disconnect``; drop the socket."""
        self._disconnect_cycles()
        self.abort()

    # -- used by cycles -------------------------------------------------------------
    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def abort(self) -> None:
        self.transport.abort()

    def resume_reading(self) -> None:
        if self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()

    def pause_reading(self) -> None:
        if not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def on_response_complete(self, cycle: HTTPCycle) -> None:
        if self.access.enabled:
            self._log_access(cycle)
        if self.transport.is_closing():
            return
        if not cycle.keep_alive or self.closing:
            self.transport.close()
            return
        self._next_request()

    # -- helpers for subclasses -----------------------------------------------------
    def _next_request(self) -> None:
        """Start the next pipelined request, or wait for one (keep-alive timer)."""
        raise NotImplementedError

    def _disconnect_cycles(self) -> None:
        if self.cycle is not None:
            self.cycle.disconnect()

    def _over_limit(self) -> bool:
        limit = self.limit_concurrency
        if limit is None:
            return False
        state = self.server_state
        return len(state.connections) > limit or len(state.tasks) >= limit

    def _reject(self, response: bytes, linger: bool = False) -> None:
        """Answer without the app (400/413/431/503) and close the connection.

        ``linger``: the client is probably still sending (an oversized head or body).
        Closing with its bytes unread would make the kernel reset the connection, and
        the client could lose our answer; instead send FIN after the answer, drop what
        still arrives (memory stays bounded) and close after ``LINGER`` seconds or as
        soon as the client closes. TLS transports cannot half-close: they close at once.
        """
        transport = self.transport
        if transport.is_closing():
            return
        transport.write(response)
        if not linger or not transport.can_write_eof():
            transport.close()
            return
        self.discarding = True
        self._cancel_timers()
        transport.write_eof()
        self.resume_reading()
        self._linger_handle = self.loop.call_later(LINGER, transport.close)

    def _reject_head(self) -> None:
        """The request head outgrew ``max_header_size``: 431, stop reading, close."""
        logger.info(
            "%s - request head larger than max_header_size (%d bytes): 431",
            self._peer(),
            self.max_head_size,
        )
        self._reject(RESPONSE_431, linger=True)

    def _run(self, cycle: HTTPCycle) -> None:
        self.server_state.total_requests += 1
        if self.base_context is not None:
            task = self.base_context.copy().run(self.loop.create_task, cycle.run_asgi(self.app))
        else:
            task = self.loop.create_task(cycle.run_asgi(self.app))
        tasks = self.server_state.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def _start_keep_alive(self) -> None:
        self._cancel_keep_alive()
        self._keep_alive_handle = self.loop.call_later(
            self.timeout_keep_alive, self._on_keep_alive_timeout
        )

    def _cancel_keep_alive(self) -> None:
        if self._keep_alive_handle is not None:
            self._keep_alive_handle.cancel()
            self._keep_alive_handle = None

    def _on_keep_alive_timeout(self) -> None:
        self._keep_alive_handle = None
        if not self.transport.is_closing():
            logger.debug("%s - keep-alive timeout, closing", self._peer())
            self.transport.close()

    def _start_receive_timer(self) -> None:
        if self._receive_handle is None and self.timeout_receive:
            self._receive_handle = self.loop.call_later(
                self.timeout_receive, self._on_receive_timeout
            )

    def _cancel_receive_timer(self) -> None:
        if self._receive_handle is not None:
            self._receive_handle.cancel()
            self._receive_handle = None

    def _on_receive_timeout(self) -> None:
        self._receive_handle = None
        if not self.transport.is_closing():
            logger.info("%s - request head not completed in time, closing", self._peer())
            self.transport.abort()

    def _cancel_timers(self) -> None:
        self._cancel_keep_alive()
        self._cancel_receive_timer()
        if self._linger_handle is not None:
            self._linger_handle.cancel()
            self._linger_handle = None

    def _peer(self) -> str:
        client = self.client
        return f"{client[0]}:{client[1]}" if client else "-"

    def _log_access(self, cycle: HTTPCycle) -> None:
        scope = cycle.scope
        self.access.log(
            client=self.client,
            method=scope["method"],
            path=scope["path"],
            query=scope["query_string"],
            protocol=self.protocol_name,
            status=cycle.status,
            bytes_sent=cycle.bytes_sent,
            duration=time.perf_counter() - cycle.start_time,
            stream_id=None,
            request_headers=scope["headers"],
            response_headers=cycle.response_headers,
            http_version=scope["http_version"],
        )
