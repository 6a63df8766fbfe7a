"""One WebSocket connection as one ASGI ``websocket`` cycle, whatever library frames it.

The HTTP/1.1 protocols hand an upgrade request over with :func:`handoff`: the transport
is switched to a :class:`WSProtocol` subclass, which re-reads the request head through
its library (websockets' or wsproto's sans-IO state machine) so the library does the
handshake checks. Everything ASGI — scope, the receive queue, send with backpressure,
the denial-response extension, keepalive pings, shutdown — lives here once; the
subclasses only translate between bytes and library events.

Backpressure both ways: ``send`` waits while the transport's buffer is above its high
water mark (a client that stops reading pauses the app, not our memory), and reading
pauses while ``ws_max_queue`` received messages wait for the app.
"""

from __future__ import annotations

import asyncio
import contextvars
import http
import logging
import os
from collections import deque
from typing import Any

from spdyasgi.asgi.scope import addresses, connection_scope, http_scope, proxy_extension
from spdyasgi.exceptions import ClientDisconnected
from spdyasgi.protocols.flow import WriteFlow

__all__ = ["WSProtocol", "handoff", "is_websocket_upgrade"]

logger = logging.getLogger("spdyasgi.error")

Headers = list[tuple[bytes, bytes]]
Message = dict[str, Any]

_EXTENSIONS: dict[str, Any] = {"websocket.http.response": {}}
# How long we wait for the client's closing frame after sending ours.
CLOSE_TIMEOUT = 10.0
ABNORMAL = 1006


def is_websocket_upgrade(headers: Headers) -> bool:
    """``Upgrade: websocket`` with ``Connection: upgrade`` (names already lower-case)."""
    upgrade = connection = False
    for name, value in headers:
        if name == b"upgrade":
            upgrade = upgrade or b"websocket" in value.lower()
        elif name == b"connection":
            connection = connection or b"upgrade" in value.lower()
    return upgrade and connection


def handoff(http_protocol: Any, target: bytes, headers: Headers, rest: bytes) -> None:
    """Move the connection of ``http_protocol`` to the configured WebSocket protocol.

    The head is rebuilt from the parsed request (the libraries parse it again and check
    the handshake); ``rest`` is whatever the client sent after it.
    """
    config = http_protocol.config
    transport: asyncio.Transport = http_protocol.transport
    http_protocol.upgraded = True
    http_protocol._cancel_timers()
    http_protocol.server_state.connections.discard(http_protocol)
    http_protocol.resume_reading()
    parts = [b"GET ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        parts += [name, b": ", value, b"\r\n"]
    parts.append(b"\r\n")
    protocol = config.ws_protocol_class(
        config,
        http_protocol.server_state,
        http_protocol.app_state,
        _loop=http_protocol.loop,
        target=target,
        headers=headers,
    )
    protocol.base_context = http_protocol.base_context
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    protocol.data_received(b"".join(parts) + rest)


class WSProtocol(asyncio.Protocol):
    """The ASGI side of a WebSocket; subclasses implement the ``_lib_*`` hooks."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        target: bytes = b"/",
        headers: Headers | None = None,
    ) -> None:
        self.config = config
        self.app: Any = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        self.app_state = app_state
        self.target = target
        self.headers: Headers = headers or []
        self.max_size: int = config.ws_max_size
        self.max_queue: int = config.ws_max_queue
        self.ping_interval: float | None = config.ws_ping_interval
        self.ping_timeout: float | None = config.ws_ping_timeout
        self.per_message_deflate: bool = config.ws_per_message_deflate
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.flow = WriteFlow(self.loop)
        self.scope: Message = {}
        self.client: tuple[str, int] | None = None
        self.queue: deque[Message] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.handshake_started = False  # the library parsed the request
        self.connect_delivered = False
        self.accepted = False
        self.responded = False  # a denial (or 403/500) answer was sent
        self.close_sent = False
        self.disconnected = False
        self.close_code = ABNORMAL
        self.close_reason = ""
        self.reading_paused = False
        self._denial: tuple[int, Headers, list[bytes]] | None = None
        self.base_context: contextvars.Context | None = None  # --reset-contextvars
        self._ping_handle: asyncio.TimerHandle | None = None
        self._pong_handle: asyncio.TimerHandle | None = None
        self._close_handle: asyncio.TimerHandle | None = None

    # -- library hooks ----------------------------------------------------------------
    def _lib_receive(self, data: bytes) -> None:
        """Feed bytes; call ``_on_request``/``_on_message``/``_on_close``/``_on_pong``."""
        raise NotImplementedError

    def _lib_accept(self, subprotocol: str | None, headers: Headers) -> None:
        raise NotImplementedError

    def _lib_reject(self, status: int, headers: Headers, body: bytes) -> None:
        raise NotImplementedError

    def _lib_send(self, data: str | bytes) -> None:
        raise NotImplementedError

    def _lib_close(self, code: int, reason: str) -> None:
        raise NotImplementedError

    def _lib_ping(self, payload: bytes) -> None:
        raise NotImplementedError

    # -- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.server_state.connections.add(self)
        self.transport = transport  # type: ignore[assignment]
        server, client = addresses(transport)
        self.client = client
        tls = transport.get_extra_info("sslcontext") is not None
        base = connection_scope(
            scheme="wss" if tls else "ws",
            server=server,
            client=client,
            root_path=self.config.root_path,
            extensions={**_EXTENSIONS, **proxy_extension(transport)},
        )
        base["type"] = "websocket"
        scope = http_scope(base, "GET", self.target, self.headers, self.app_state)
        del scope["method"]
        scope["subprotocols"] = [
            proto.strip()
            for name, value in self.headers
            if name == b"sec-websocket-protocol"
            for proto in value.decode("latin-1").split(",")
            if proto.strip()
        ]
        self.scope = scope

    def data_received(self, data: bytes) -> None:
        try:
            self._lib_receive(data)
        except Exception as exc:  # a library bug must not take the server down
            logger.info("%s - WebSocket protocol error: %s", self._peer(), exc)
            self._lost(ABNORMAL)
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        self._cancel_timers()
        self.flow.close()
        if not self.disconnected:
            logger.info('%s - "WebSocket %s" connection closed', self._peer(), self._path())
        self._lost(self.close_code)

    def eof_received(self) -> bool | None:
        return None

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    # -- the server's hooks -------------------------------------------------------------
    def shutdown(self) -> None:
        """Graceful shutdown: close 1012 (service restart) as uvicorn does."""
        if self.accepted and not self.close_sent and not self.transport.is_closing():
            self._close(1012, "")
            self._lost(1012)
        self.transport.close()

    def force_close(self) -> None:
        self._lost(ABNORMAL)
        self.transport.abort()

    # -- events from the library ----------------------------------------------------------
    def _on_request(self) -> None:
        """The library accepted the request as a handshake: run the app."""
        self.handshake_started = True
        self.server_state.total_requests += 1
        if self.base_context is not None:
            task = self.base_context.copy().run(self.loop.create_task, self.run_asgi())
        else:
            task = self.loop.create_task(self.run_asgi())
        tasks = self.server_state.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def _on_bad_request(self, why: str) -> None:
        logger.info("%s - invalid WebSocket handshake: %s", self._peer(), why)

    def _on_message(self, data: str | bytes) -> None:
        if isinstance(data, str):
            self.queue.append({"type": "websocket.receive", "text": data})
        else:
            self.queue.append({"type": "websocket.receive", "bytes": data})
        if len(self.queue) >= self.max_queue and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def _on_close(self, code: int, reason: str) -> None:
        """The peer closed (or the library failed the connection with ``code``)."""
        self.close_code, self.close_reason = code, reason
        self._lost(code)
        self._flush()
        self.transport.close()

    def _on_pong(self) -> None:
        if self._pong_handle is not None:
            self._pong_handle.cancel()
            self._pong_handle = None

    # -- ASGI ------------------------------------------------------------------------------
    async def run_asgi(self) -> None:
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except BaseException as exc:
            if isinstance(exc, ClientDisconnected) or (
                self.disconnected and isinstance(exc, (OSError, asyncio.CancelledError))
            ):
                logger.debug("WebSocket client went away: %r", exc)
                return
            logger.error("Exception in ASGI application", exc_info=exc)
            self._app_failed()
            if not isinstance(exc, Exception):
                raise
            return
        if result is not None:
            logger.error("ASGI callable returned a value instead of None: %r", result)
        if not self.accepted and not self.responded and not self.disconnected:
            logger.error("ASGI callable returned without sending handshake.")
            self._app_failed()
        elif self.accepted and not self.close_sent and not self.disconnected:
            self._close(1000, "")

    def _app_failed(self) -> None:
        if self.disconnected or self.transport.is_closing():
            return
        if not self.accepted:
            if not self.responded:
                self._respond(500, [(b"content-type", b"text/plain")], b"Internal Server Error")
            return
        if not self.close_sent:
            self._close(1011, "")

    async def receive(self) -> Message:
        if not self.connect_delivered:
            self.connect_delivered = True
            return {"type": "websocket.connect"}
        while not self.queue and not self.disconnected:
            waiter = self.waiter = self.loop.create_future()
            try:
                await waiter
            finally:
                self.waiter = None
        if self.queue:
            message = self.queue.popleft()
            if self.reading_paused and len(self.queue) < self.max_queue:
                self.reading_paused = False
                if not self.transport.is_closing():
                    self.transport.resume_reading()
            return message
        code, reason = self.close_code, self.close_reason
        return {"type": "websocket.disconnect", "code": code, "reason": reason}

    async def send(self, message: Message) -> None:
        if self.flow.paused and not self.disconnected:
            await self.flow.drain()
        kind = message["type"]
        if self.disconnected or self.transport.is_closing():
            raise ClientDisconnected("the WebSocket client disconnected")
        if not self.accepted and not self.responded:
            self._send_handshake(kind, message)
        elif self.accepted and not self.close_sent:
            if kind == "websocket.send":
                data = message.get("bytes")
                if data is None:
                    text = message.get("text")
                    if text is None:
                        raise RuntimeError("websocket.send needs 'bytes' or 'text'")
                    self._lib_send(str(text))
                else:
                    self._lib_send(bytes(data))
                self._flush()
            elif kind == "websocket.close":
                self._close(int(message.get("code") or 1000), message.get("reason") or "")
            else:
                raise RuntimeError(f"Unexpected ASGI message {kind!r} after the handshake")
        else:
            raise RuntimeError(f"Unexpected ASGI message {kind!r}: the WebSocket is closed")

    def _send_handshake(self, kind: str, message: Message) -> None:
        if self._denial is not None:
            if kind != "websocket.http.response.body":
                raise RuntimeError(f"Expected 'websocket.http.response.body', got {kind!r}")
            self._denial[2].append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                status, headers, chunks = self._denial
                self._respond(status, headers, b"".join(chunks))
            return
        if kind == "websocket.accept":
            subprotocol = message.get("subprotocol")
            headers = [(bytes(n).lower(), bytes(v)) for n, v in message.get("headers", ())]
            logger.info('%s - "WebSocket %s" [accepted]', self._peer(), self._path())
            self._lib_accept(subprotocol, headers)
            self.accepted = True
            self._flush()
            self._schedule_ping()
        elif kind == "websocket.close":
            logger.info('%s - "WebSocket %s" 403', self._peer(), self._path())
            self._respond(403, [(b"content-type", b"text/plain")], b"Forbidden")
        elif kind == "websocket.http.response.start":
            status = int(message["status"])
            logger.info('%s - "WebSocket %s" %d', self._peer(), self._path(), status)
            headers = [(bytes(n).lower(), bytes(v)) for n, v in message.get("headers", ())]
            self._denial = (status, headers, [])
        else:
            raise RuntimeError(f"Expected 'websocket.accept' or 'websocket.close', got {kind!r}")

    def _respond(self, status: int, headers: Headers, body: bytes) -> None:
        """Answer the handshake with a plain HTTP response and close the connection."""
        self.responded = True
        if not any(name == b"content-length" for name, _ in headers):
            headers = [*headers, (b"content-length", str(len(body)).encode("ascii"))]
        self._lib_reject(status, headers, body)
        self._flush()
        self._lost(ABNORMAL)
        self.transport.close()

    def _close(self, code: int, reason: str) -> None:
        self.close_sent = True
        self._cancel_ping()
        self._lib_close(code, reason)
        self._flush()
        if self._close_handle is None and not self.transport.is_closing():
            self._close_handle = self.loop.call_later(CLOSE_TIMEOUT, self.transport.abort)

    # -- keepalive --------------------------------------------------------------------------
    def _schedule_ping(self) -> None:
        if self.ping_interval and not self.close_sent:
            self._ping_handle = self.loop.call_later(self.ping_interval, self._ping)

    def _ping(self) -> None:
        self._ping_handle = None
        if self.disconnected or self.close_sent or self.transport.is_closing():
            return
        self._lib_ping(os.urandom(4))
        self._flush()
        if self.ping_timeout and self._pong_handle is None:
            self._pong_handle = self.loop.call_later(self.ping_timeout, self._ping_timed_out)
        self._schedule_ping()

    def _ping_timed_out(self) -> None:
        self._pong_handle = None
        if self.disconnected:
            return
        logger.info("%s - WebSocket keepalive ping timeout; closing", self._peer())
        self._close(1011, "keepalive ping timeout")
        self._lost(ABNORMAL)
        self.transport.abort()

    def _cancel_ping(self) -> None:
        for name in ("_ping_handle", "_pong_handle"):
            handle = getattr(self, name)
            if handle is not None:
                handle.cancel()
                setattr(self, name, None)

    def _cancel_timers(self) -> None:
        self._cancel_ping()
        if self._close_handle is not None:
            self._close_handle.cancel()
            self._close_handle = None

    # -- helpers ----------------------------------------------------------------------------
    def _lost(self, code: int) -> None:
        if not self.disconnected:
            self.disconnected = True
            self.close_code = code
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _flush(self) -> None:
        """Write what the library has queued; subclasses override."""

    def _peer(self) -> str:
        client = self.client
        return f"{client[0]}:{client[1]}" if client else "-"

    def _path(self) -> str:
        return str(self.scope.get("path", "")) if self.scope else ""

    @staticmethod
    def reason_phrase(status: int) -> str:
        try:
            return http.HTTPStatus(status).phrase
        except ValueError:
            return ""
