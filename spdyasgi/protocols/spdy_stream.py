"""One SPDY stream as one ASGI ``http`` cycle.

The cycle knows ASGI messages, not frames: it asks its session (`SpdyProtocol`) to start
a response, send body bytes (which waits for flow-control windows), push, send trailers or
reset. Request body chunks are buffered as they arrive and acknowledged to the engine only
when the application takes them through ``receive()``, so the peer's send window is the
bound on what we buffer and a slow application slows only its own stream.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Coroutine
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
    from spdyasgi.protocols.spdy import SpdyProtocol

__all__ = ["StreamCycle"]

logger = logging.getLogger("spdyasgi.error")

_EMPTY_BODY: Message = {"type": "http.request", "body": b"", "more_body": False}


class StreamCycle:
    """Request/response state of one stream; driven by the app task and the session."""

    __slots__ = (
        "body_bytes",
        "body_chunks",
        "bytes_sent",
        "disconnected",
        "is_head",
        "more_body",
        "priority",
        "protocol",
        "push_path",
        "replied",
        "request_done",
        "response_complete",
        "response_headers",
        "response_started",
        "scope",
        "start_time",
        "status",
        "stream_id",
        "task",
        "trailers_expected",
        "waiter",
    )

    def __init__(self, protocol: SpdyProtocol, stream_id: int, scope: dict[str, Any],
                 more_body: bool, push_path: str | None = None):
        self.protocol = protocol
        self.stream_id = stream_id
        self.scope = scope
        self.more_body = more_body
        self.body_chunks: list[bytes] = []  # a list: a deque costs ~600 B per stream
        self.body_bytes = 0
        self.waiter: asyncio.Future[None] | None = None
        self.disconnected = False
        self.response_started = False
        self.response_complete = False
        self.trailers_expected = False
        self.is_head = scope["method"] == "HEAD"
        self.status = 0
        self.response_headers: Headers = []
        self.bytes_sent = 0
        # Only the access log and the metrics read it: a clock read per request otherwise.
        self.start_time = time.monotonic() if protocol.timed else 0.0
        self.push_path = push_path
        self.request_done = False
        self.replied = False
        self.priority = 3
        self.task: asyncio.Task[None] | None = None

    # ----------------------------------------------------------- from the session

    def body_received(self, data: bytes, end_stream: bool) -> None:
        if data:
            self.body_chunks.append(data)
            self.body_bytes += len(data)
        if end_stream:
            self.more_body = False
        self._wake()

    def disconnect(self) -> None:
        """The stream or the connection is gone: `http.disconnect` comes next."""
        if self.disconnected:
            return
        self.disconnected = True
        if self.body_bytes:
            # Buffered bytes nobody will read still hold session window: give it back.
            self.protocol.acknowledge(self.stream_id, self.body_bytes)
            self.body_chunks.clear()
            self.body_bytes = 0
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # ----------------------------------------------------------- the application

    async def run_asgi(self, app: Any) -> None:
        try:
            if self.disconnected:
                return  # reset before its task first ran: no app code for it at all
            result = await app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError) and self.disconnected:
                return
            logger.error("Exception in ASGI application (stream %d)", self.stream_id,
                         exc_info=exc)
            if metrics.STATS is not None:
                metrics.STATS.app_exceptions += 1
            self._fail()
            if not isinstance(exc, Exception):
                raise
        else:
            if result is not None:
                logger.error("ASGI callable returned a value instead of None: %r", result)
            if not self.response_complete and not self.disconnected:
                if not self.response_started:
                    logger.error("ASGI callable returned without starting a response")
                else:
                    logger.error("ASGI callable returned without completing the response")
                self._fail()
        finally:
            self.protocol.cycle_done(self)

    def _fail(self) -> None:
        """The app failed: 500 if no reply went out yet, else RST INTERNAL_ERROR."""
        if self.disconnected or self.response_complete:
            return
        self.response_started = True
        self.response_complete = True
        protocol = self.protocol
        if self.replied:
            protocol.reset(self, internal=True)
            return
        self.status = 500
        body = b"Internal Server Error"
        self.bytes_sent = len(body)
        try:
            protocol.start_response(
                self, 500, [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", b"21")], end_stream=False)
        except (ClientDisconnected, RuntimeError):
            return
        protocol.send_body_nowait(self, body, end_stream=True)

    async def receive(self) -> Message:
        while True:
            if self.disconnected:
                return DISCONNECT
            if self.body_chunks:
                chunks = self.body_chunks
                body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                self.body_bytes = 0
                self.protocol.acknowledge(self.stream_id, len(body))
                more = self.more_body
                self.request_done = not more
                return {"type": "http.request", "body": body, "more_body": more}
            if not self.more_body:
                if not self.request_done:
                    self.request_done = True
                    return _EMPTY_BODY
                if self.response_complete:
                    return DISCONNECT
            await self._wait()

    async def _wait(self) -> None:
        waiter = self.waiter = self.protocol.loop.create_future()
        try:
            await waiter
        finally:
            self.waiter = None

    async def send(self, message: Message) -> None:
        if self.disconnected:
            raise ClientDisconnected()
        kind = message["type"]
        if not self.response_started:
            if kind == "http.response.start":
                # Inline, not a method: it comes once per request.
                self.response_started = True
                status = message["status"]
                self.status = status = status if type(status) is int else int(status)
                self.response_headers = list(message.get("headers", ()))
                if message.get("trailers"):
                    self.trailers_expected = True
                # The reply itself waits for the first body message, so a one-shot
                # response leaves as SYN_REPLY(+FIN) in the same write as its DATA.
                if status < 200 or status in NO_BODY_STATUS:
                    self.is_head = True
                return
            if kind == "http.response.push":
                self._push(message)
                return
            raise RuntimeError(f"expected 'http.response.start', got {kind!r}")
        if self.response_complete:
            if kind == "http.response.trailers" and self.trailers_expected:
                self.trailers_expected = False
                self.protocol.send_trailers(self, list(message.get("headers", ())))
                return
            if kind == "http.response.push":
                return  # the associated stream finished: nothing left to push onto
            raise RuntimeError(f"unexpected {kind!r} after the response completed")
        if kind == "http.response.body":
            body = message.get("body", b"")
            more = message.get("more_body", False)
            waiting = self._send_body(body, more)
            if waiting is not None:
                await waiting
        elif kind == "http.response.pathsend":
            await self._pathsend(message["path"])
        elif kind == "http.response.push":
            self._push(message)
        elif kind == "http.response.trailers":
            raise RuntimeError("http.response.trailers before the body completed")
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")

    def _send_body(self, body: bytes, more: bool) -> Coroutine[Any, Any, None] | None:
        """Send a body message; returns a coroutine to await when it had to be queued."""
        end = not more
        fin = end and not self.trailers_expected  # the last DATA frame carries FIN
        protocol = self.protocol
        first = not self.bytes_sent and not self.replied
        if self.is_head:
            # No DATA at all: the reply (with FIN) waits for the app's last message.
            if end:
                protocol.start_response(self, self.status, self.response_headers,
                                        end_stream=not self.trailers_expected)
                self._complete()
            return None
        if first:
            if body and protocol.respond_now(self, body, fin):  # the one-shot common case
                self.bytes_sent += len(body)
                if end:
                    self._complete()
                return None
            no_data = fin and not body
            protocol.start_response(self, self.status, self.response_headers,
                                    end_stream=no_data)
            if no_data:
                self._complete()
                return None
        if body or fin:
            self.bytes_sent += len(body)
            if not protocol.send_body_now(self, body, fin):
                return self._send_body_queued(body, fin, end)
            if protocol.yield_due and not end:
                protocol.yield_due = False
                return asyncio.sleep(0)  # take turns with the other streams (see there)
        if end:
            self._complete()
        return None

    async def _send_body_queued(self, body: bytes, fin: bool, end: bool) -> None:
        await self.protocol.send_body_queued(self, body, fin)
        if end:
            self._complete()

    def _complete(self) -> None:
        self.response_complete = True
        self._wake()

    async def _pathsend(self, path: str) -> None:
        loop = self.protocol.loop
        fd = os.open(path, os.O_RDONLY)
        try:
            if not self.replied:
                self.protocol.start_response(self, self.status, self.response_headers,
                                             end_stream=False)
            offset = 0
            while True:
                chunk = await loop.run_in_executor(None, os.pread, fd, PATHSEND_CHUNK, offset)
                if not chunk:
                    break
                offset += len(chunk)
                self.bytes_sent += len(chunk)
                await self.protocol.send_body(self, chunk, False)
            await self.protocol.send_body(self, b"", not self.trailers_expected)
            self._complete()
        finally:
            os.close(fd)

    def _push(self, message: Message) -> None:
        path = message["path"]
        headers = list(message.get("headers", ()))
        self.protocol.push(self, path, headers)
