"""HTTP/1.1 over httptools (llhttp): the fast path when httptools is installed."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import httptools

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

__all__ = ["HttpToolsProtocol"]

logger = logging.getLogger("spdyasgi.error")

_REASONS: dict[int, bytes] = {}


def _status_line(status: int, http10: bool) -> bytes:
    line = _REASONS.get(status) if not http10 else None
    if line is None:
        import http

        try:
            reason = http.HTTPStatus(status).phrase.encode("ascii")
        except ValueError:
            reason = b""
        version = b"HTTP/1.0" if http10 else b"HTTP/1.1"
        line = b"%s %d %s\r\n" % (version, status, reason)
        if not http10:
            _REASONS[status] = line
    return line


class HttpToolsCycle(HTTPCycle):
    """Frames the response itself: content-length, chunked, or close-delimited (1.0)."""

    __slots__ = ("chunked", "remaining")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.chunked = False
        self.remaining: int | None = None

    def _encode_head(self, status: int, headers: Headers) -> bytes:
        http10 = self.scope["http_version"] == "1.0"
        parts = [_status_line(status, http10)]
        length: int | None = None
        chunked = False
        for name, value in headers:
            lname = name.lower()
            # Byte values, not b"\r": a bytes argument to `in` costs a caught TypeError.
            if 13 in name or 10 in name or 13 in value or 10 in value:
                raise RuntimeError("Invalid HTTP header: it contains a newline")
            if lname == b"content-length":
                length = int(value)
            elif lname == b"transfer-encoding":
                chunked = value.lower() == b"chunked"
            elif lname == b"connection" and value.lower() == b"close":
                self.keep_alive = False
            parts.append(b"%s: %s\r\n" % (name, value))
        no_body = self.is_head or status in (204, 304) or status < 200
        if no_body:
            self.remaining = 0
        elif chunked:
            self.chunked = True
        elif length is not None:
            self.remaining = length
        elif http10:
            self.keep_alive = False
        else:
            self.chunked = True
            parts.append(b"transfer-encoding: chunked\r\n")
        if http10 and self.keep_alive:
            parts.append(b"connection: keep-alive\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)

    def _encode_body(self, data: bytes, more_body: bool) -> bytes:
        if self.remaining is not None:
            if len(data) > self.remaining:
                raise RuntimeError("Response content longer than Content-Length")
            self.remaining -= len(data)
            if not more_body and self.remaining:
                self.keep_alive = False  # the framing is broken: this connection is done
            return data
        if self.chunked:
            out = b"%x\r\n%s\r\n" % (len(data), data) if data else b""
            return out + b"0\r\n\r\n" if not more_body else out
        return data


class HttpToolsProtocol(BaseHTTPProtocol):
    """httptools parses every byte as it comes; pipelined requests wait in a queue."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.parser = httptools.HttpRequestParser(self)
        self.pipeline: deque[HttpToolsCycle] = deque()
        self.parsing: HttpToolsCycle | None = None
        self._url = b""
        self._headers: Headers = []
        self._in_head = False
        self._in_body = False
        self._head_bytes = 0  # raw bytes read while a head is incomplete
        self._head_size = 0  # size of the head parsed so far
        self._rejected = False
        self._upgrade: tuple[bytes, Headers] | None = None  # a WebSocket handshake

    def _disconnect_cycles(self) -> None:
        super()._disconnect_cycles()
        for cycle in self.pipeline:
            cycle.disconnect()

    def data_received(self, data: bytes) -> None:
        if self._rejected or self.discarding:
            return  # answered and closing: parse (and buffer) nothing more
        self._cancel_keep_alive()
        if not self._in_body:
            # llhttp hands headers over only once complete: bound what it buffers.
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            if self._upgrade is not None:
                target, headers = self._upgrade
                handoff(self, target, headers, data[exc.args[0] :] if exc.args else b"")
                return
            # No websockets: the request was answered as a normal one; nothing after it
            # on this connection can be trusted, so close once it is answered.
            if self.parsing is not None:
                self.parsing.keep_alive = False
        except httptools.HttpParserError as exc:
            logger.info("%s - invalid HTTP request: %s", self._peer(), exc)
            self._reject(RESPONSE_400)
            return
        if self._in_head:
            if self._head_bytes > self.max_head_size:
                self._rejected = True
                self._reject_head()
                return
            self._start_receive_timer()

    # -- parser callbacks -----------------------------------------------------------
    def on_message_begin(self) -> None:
        self._in_head = True
        self._url = b""
        self._headers = []
        self._head_size = 12  # method, version, spaces and CRLFs, roughly

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))
        self._head_size += len(name) + len(value) + 4

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._in_body = True
        self._head_bytes = 0
        self._cancel_receive_timer()
        if self._rejected:
            return
        if self._head_size > self.max_head_size:  # a whole head in one read
            self._rejected = True
            self._reject_head()
            return
        parser = self.parser
        headers = self._headers
        if self._over_limit():
            logger.warning("Exceeded concurrency limit.")
            self._rejected = True
            self._reject(RESPONSE_503)
            return
        limit = self.limit_request_body
        expect_100 = False
        for name, value in headers:
            if name == b"content-length" and limit is not None and int(value) > limit:
                self._rejected = True
                self._reject(RESPONSE_413, linger=True)
                return
            if name == b"expect" and value.lower() == b"100-continue":
                expect_100 = True
        http_version = parser.get_http_version()
        if (
            self.ws_protocol_class is not None
            and parser.should_upgrade()
            and self.cycle is None
            and parser.get_method() == b"GET"
            and is_websocket_upgrade(headers)
        ):
            self._upgrade = (self._url, headers)
            return
        scope = http_scope(
            self.base_scope,
            parser.get_method().decode("ascii"),
            self._url,
            headers,
            self.app_state,
            http_version,
        )
        cycle = HttpToolsCycle(
            self,
            scope,
            keep_alive=parser.should_keep_alive() and not self.closing,
            expect_100=expect_100 and http_version != "1.0",
        )
        self.parsing = cycle
        if self.cycle is None or self.cycle.response_complete:
            self.cycle = cycle
            self._run(cycle)
        else:
            self.pipeline.append(cycle)
            self.pause_reading()

    def on_body(self, body: bytes) -> None:
        cycle = self.parsing
        if cycle is None or cycle.disconnected or self._rejected:
            return
        cycle.feed_body(body)
        limit = self.limit_request_body
        if limit is not None and cycle.body_received > limit:
            self._rejected = True
            if cycle.response_started:
                cycle.disconnect()
                self.abort()
            else:
                cycle.response_started = cycle.response_complete = True
                cycle.status = 413
                cycle.disconnect()
                self._reject(RESPONSE_413, linger=True)
            return
        if len(cycle.body) > HIGH_WATER:
            self.pause_reading()

    def on_message_complete(self) -> None:
        self._in_body = False
        cycle = self.parsing
        if cycle is not None:
            cycle.end_body()

    # -- pipelining -----------------------------------------------------------------
    def _next_request(self) -> None:
        self.cycle = None
        if self.pipeline:
            cycle = self.cycle = self.pipeline.popleft()
            self._run(cycle)
            if not self.pipeline:
                self.resume_reading()
            return
        self.resume_reading()
        self._start_keep_alive()
