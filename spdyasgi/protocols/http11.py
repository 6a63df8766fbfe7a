"""HTTP/1.1 over h11: the pure-Python parser, always available."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11

from spdyasgi.asgi.messages import Headers
from spdyasgi.asgi.scope import http_scope
from spdyasgi.protocols.http_base import (
    HIGH_WATER,
    RESPONSE_400,
    RESPONSE_413,
    RESPONSE_503,
    BaseHTTPProtocol,
)
from spdyasgi.protocols.http_cycle import HTTPCycle
from spdyasgi.protocols.ws.base import handoff, is_websocket_upgrade

__all__ = ["H11Protocol"]

logger = logging.getLogger("spdyasgi.error")


class H11Cycle(HTTPCycle):
    """Encodes the response through the connection's h11 state machine."""

    __slots__ = ("conn",)

    def __init__(self, conn: h11.Connection, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = conn

    def _encode_head(self, status: int, headers: Headers) -> bytes:
        return self.conn.send(h11.Response(status_code=status, headers=headers)) or b""

    def _encode_body(self, data: bytes, more_body: bool) -> bytes:
        out = (self.conn.send(h11.Data(data=data)) or b"") if data else b""
        if not more_body:
            out += self.conn.send(h11.EndOfMessage()) or b""
        return out

    def _encode_continue(self) -> bytes:
        event = h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")
        return self.conn.send(event) or b""


class H11Protocol(BaseHTTPProtocol):
    """h11 parses and frames; we handle one request at a time (h11 pauses pipelining)."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.max_head_size)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        try:
            self.conn.send(h11.ConnectionClosed())
        except h11.LocalProtocolError:
            pass

    def data_received(self, data: bytes) -> None:
        if self.discarding:
            return
        self._cancel_keep_alive()
        self.conn.receive_data(data)
        self._handle_events()

    def _handle_events(self) -> None:
        conn = self.conn
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                if exc.error_status_hint == 431:
                    self._reject_head()
                    return
                logger.info("%s - invalid HTTP request: %s", self._peer(), exc)
                self._reject(RESPONSE_400)
                return
            if event is h11.NEED_DATA:
                if conn.their_state is h11.IDLE and conn.trailing_data[0]:
                    self._start_receive_timer()  # half a request head: slowloris guard
                break
            if event is h11.PAUSED:
                self.pause_reading()
                break
            if isinstance(event, h11.Request):
                self._cancel_receive_timer()
                self._on_request(event)
                if self.upgraded:
                    return
            elif isinstance(event, h11.Data):
                cycle = self.cycle
                if cycle is not None and not cycle.disconnected:
                    cycle.feed_body(event.data)
                    if self._body_too_large(cycle):
                        return
                    if len(cycle.body) > HIGH_WATER:
                        self.pause_reading()
            elif isinstance(event, h11.EndOfMessage):
                if self.cycle is not None:
                    self.cycle.end_body()
            elif isinstance(event, h11.ConnectionClosed):
                break
            if self.transport.is_closing():
                break

    def _on_request(self, event: h11.Request) -> None:
        headers: Headers = list(event.headers)
        # h11 enforces the limit only on a head still incomplete; one that arrived in a
        # single read is measured here, so both parsers draw the line at the same size.
        size = len(event.method) + len(event.target) + 12
        size += sum(len(name) + len(value) + 4 for name, value in headers)
        if size > self.max_head_size:
            self._reject_head()
            return
        if self._over_limit():
            logger.warning("Exceeded concurrency limit.")
            self._reject(RESPONSE_503)
            return
        limit = self.limit_request_body
        if limit is not None:
            for name, value in headers:
                if name == b"content-length" and int(value) > limit:
                    self._reject(RESPONSE_413, linger=True)
                    return
        if (
            event.method == b"GET"
            and self.ws_protocol_class is not None
            and is_websocket_upgrade(headers)
        ):
            handoff(self, event.target, headers, self.conn.trailing_data[0])
            return
        scope = http_scope(
            self.base_scope,
            event.method.decode("ascii"),
            event.target,
            headers,
            self.app_state,
            event.http_version.decode("ascii"),
        )
        self.cycle = H11Cycle(
            self.conn,
            self,
            scope,
            keep_alive=not self.closing,
            expect_100=self.conn.they_are_waiting_for_100_continue,
        )
        self._run(self.cycle)

    def _body_too_large(self, cycle: HTTPCycle) -> bool:
        limit = self.limit_request_body
        if limit is None or cycle.body_received <= limit:
            return False
        if cycle.response_started:
            cycle.disconnect()
            self.abort()
        else:
            cycle.response_started = cycle.response_complete = True
            cycle.status = 413
            cycle.disconnect()
            self._reject(RESPONSE_413, linger=True)
        return True

    def _next_request(self) -> None:
        conn = self.conn
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        else:
            # The app answered without reading the whole body, or h11 wants to close.
            self.transport.close()
            return
        self.cycle = None
        self.resume_reading()
        self._handle_events()
        if self.cycle is None and not self.transport.is_closing():
            self._start_keep_alive()
