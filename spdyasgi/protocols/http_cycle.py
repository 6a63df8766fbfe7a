"""One HTTP/1.x request as one ASGI ``http`` cycle (``receive``/``send``).

Shared by the h11 and httptools protocols; they differ only in how a response head and
body are encoded (``_encode_head``/``_encode_body``/``_encode_continue``). The response
head is held back until the first body message or the end of the current loop
iteration, whichever comes first, so a one-shot response leaves in a single write with
a ``content-length`` instead of chunked framing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from spdyasgi import metrics
from spdyasgi.asgi.messages import (
    DISCONNECT,
    NO_BODY_STATUS,
    PATHSEND_CHUNK,
    Headers,
    Message,
)
from spdyasgi.exceptions import ClientDisconnected

if TYPE_CHECKING:
    from spdyasgi.protocols.http_base import BaseHTTPProtocol

__all__ = ["HTTPCycle"]

logger = logging.getLogger("spdyasgi.error")

_FRAMING = (b"content-length", b"transfer-encoding")


class HTTPCycle:
    """State of one request/response; created by the protocol when a head is parsed."""

    __slots__ = (
        "_flush_handle",
        "_pending_head",
        "body",
        "body_received",
        "bytes_sent",
        "disconnected",
        "expect_100",
        "is_head",
        "keep_alive",
        "more_body",
        "protocol",
        "request_delivered",
        "response_complete",
        "response_headers",
        "response_started",
        "scope",
        "start_time",
        "status",
        "waiter",
    )

    def __init__(
        self,
        protocol: BaseHTTPProtocol,
        scope: dict[str, Any],
        *,
        keep_alive: bool,
        expect_100: bool,
    ) -> None:
        self.protocol = protocol
        self.scope = scope
        self.keep_alive = keep_alive
        self.expect_100 = expect_100
        self.is_head = scope["method"] == "HEAD"
        self.body = b""
        self.body_received = 0
        self.more_body = True
        self.request_delivered = False
        self.disconnected = False
        self.waiter: asyncio.Future[None] | None = None
        self.response_started = False
        self.response_complete = False
        self.status = 0
        self.response_headers: Headers = []
        self.bytes_sent = 0
        self._pending_head = False
        self._flush_handle: asyncio.Handle | None = None
        timed = protocol.access.enabled or metrics.STATS is not None
        self.start_time = time.perf_counter() if timed else 0.0

    # -- encoding hooks (per parser) ------------------------------------------------
    def _encode_head(self, status: int, headers: Headers) -> bytes:
        raise NotImplementedError

    def _encode_body(self, data: bytes, more_body: bool) -> bytes:
        raise NotImplementedError

    def _encode_continue(self) -> bytes:
        return b"HTTP/1.1 100 Continue\r\n\r\n"

    # -- events from the protocol ---------------------------------------------------
    def wake(self) -> None:
        """Body data, end of body or disconnect arrived: let a waiting ``receive`` run."""
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def feed_body(self, data: bytes) -> None:
        self.body = self.body + data if self.body else data
        self.body_received += len(data)
        self.wake()

    def end_body(self) -> None:
        self.more_body = False
        self.wake()

    def disconnect(self) -> None:
        self.disconnected = True
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self.wake()

    # -- ASGI -----------------------------------------------------------------------
    async def run_asgi(self, app: Any) -> None:
        stats = metrics.STATS
        if stats is not None:
            stats.streams_opened["http/1.1"] += 1
        try:
            result = await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            if self.disconnected and isinstance(exc, (OSError, asyncio.CancelledError)):
                # The client left (or the server gave up on it): not the app's fault.
                logger.debug("Client went away during the request: %r", exc)
                return
            if isinstance(exc, ClientDisconnected):
                logger.debug("Client went away during the request: %r", exc)
            else:
                logger.error("Exception in ASGI application", exc_info=exc)
                if stats is not None:
                    stats.app_exceptions += 1
            self._app_failed()
            if not isinstance(exc, Exception):
                raise
        else:
            if result is not None:
                logger.error("ASGI callable returned a value instead of None: %r", result)
            if not self.disconnected and not self.response_complete:
                if self.response_started and not self._pending_head:
                    logger.error("ASGI callable returned without completing response.")
                else:
                    logger.error("ASGI callable returned without starting response.")
                self._app_failed()
        finally:
            if stats is not None:
                stats.stream_done("http/1.1", self.status or (499 if self.disconnected else 0),
                                  time.perf_counter() - self.start_time, self.body_received,
                                  self.bytes_sent)

    def _app_failed(self) -> None:
        if self.disconnected or self.response_complete:
            return
        if not self.response_started or self._pending_head:
            self._send_500()
        else:
            self.keep_alive = False
            self.protocol.abort()

    def _send_500(self) -> None:
        body = b"Internal Server Error"
        self._drop_pending_head()
        self.response_started = True
        self.keep_alive = False
        self.status = 500
        headers: Headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"21"),
            (b"connection", b"close"),
        ]
        self.response_headers = headers
        self._write(self._encode_head(500, headers) + self._encode_body(body, False), body)
        self._complete()

    async def receive(self) -> Message:
        if self.expect_100 and not self.response_started:
            self.expect_100 = False
            if not self.disconnected:
                self.protocol.write(self._encode_continue())
        if self.request_delivered:
            # The whole body was handed over; the next event is the end of the exchange.
            while not (self.disconnected or self.response_complete):
                await self._wait()
            return DISCONNECT
        while not self.body and self.more_body and not self.disconnected:
            self.protocol.resume_reading()
            await self._wait()
        if self.disconnected:
            return DISCONNECT
        body, self.body = self.body, b""
        if self.more_body:
            self.protocol.resume_reading()
        else:
            self.request_delivered = True
        return {"type": "http.request", "body": body, "more_body": self.more_body}

    async def _wait(self) -> None:
        waiter = self.waiter = self.protocol.loop.create_future()
        try:
            await waiter
        finally:
            self.waiter = None

    async def send(self, message: Message) -> None:
        flow = self.protocol.flow
        if flow.paused and not self.disconnected:
            await flow.drain()
        if self.disconnected:
            raise ClientDisconnected("the client disconnected")
        kind = message["type"]
        if not self.response_started:
            if kind != "http.response.start":
                raise RuntimeError(f"Expected 'http.response.start', got {kind!r}")
            self._start(message)
        elif self.response_complete:
            raise RuntimeError(f"Unexpected ASGI message {kind!r} after the response completed")
        elif kind == "http.response.body":
            self._body(message.get("body", b""), message.get("more_body", False))
        elif kind == "http.response.pathsend":
            await self._pathsend(message["path"])
        else:
            raise RuntimeError(f"Unexpected ASGI message {kind!r} during the response")

    def _start(self, message: Message) -> None:
        self.response_started = True
        self.expect_100 = False
        self.status = status = int(message["status"])
        headers: Headers = self.protocol.server_state.default_headers + list(
            message.get("headers", ())
        )
        if not self.keep_alive or self.protocol.closing:
            self.keep_alive = False
            headers.append((b"connection", b"close"))
        self.response_headers = headers
        if self.is_head or status in NO_BODY_STATUS or status < 200:
            # Nothing to learn from the body: no reason to hold the head back.
            self._write(self._encode_head(status, headers), b"")
            return
        self._pending_head = True
        self._flush_handle = self.protocol.loop.call_soon(self._flush_head)

    def _flush_head(self) -> None:
        self._flush_handle = None
        if self._pending_head and not self.disconnected:
            self._pending_head = False
            self.protocol.write(self._encode_head(self.status, self.response_headers))

    def _drop_pending_head(self) -> None:
        self._pending_head = False
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None

    def _body(self, body: bytes, more_body: bool) -> None:
        if self.is_head or self.status in NO_BODY_STATUS:
            body = b""
        if self._pending_head:
            self._drop_pending_head()
            headers = self.response_headers
            if not more_body and not any(name.lower() in _FRAMING for name, _ in headers):
                headers.append((b"content-length", str(len(body)).encode("ascii")))
            head = self._encode_head(self.status, headers)
            self._write(head + self._encode_body(body, more_body), body)
        else:
            self._write(self._encode_body(body, more_body), body)
        if not more_body:
            self._complete()

    async def _pathsend(self, path: str) -> None:
        """``http.response.pathsend``: stream the file ourselves, honouring backpressure."""
        loop = self.protocol.loop
        flow = self.protocol.flow
        with open(path, "rb") as file:
            if self._pending_head and not any(
                name.lower() in _FRAMING for name, _ in self.response_headers
            ):
                size = os.fstat(file.fileno()).st_size
                self.response_headers.append((b"content-length", str(size).encode("ascii")))
            while True:
                chunk = await loop.run_in_executor(None, file.read, PATHSEND_CHUNK)
                if self.disconnected:
                    raise ClientDisconnected("the client disconnected")
                if not chunk:
                    self._body(b"", False)
                    return
                self._body(chunk, True)
                if flow.paused:
                    await flow.drain()

    def _write(self, data: bytes, body: bytes) -> None:
        self.bytes_sent += len(body)
        if data:
            self.protocol.write(data)

    def _complete(self) -> None:
        self.response_complete = True
        self.wake()
        self.protocol.on_response_complete(self)
