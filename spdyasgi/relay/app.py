"""The relay's visitor side: an ASGI app that forwards each request onto an origin stream.

spdyasgi's own `Server` runs this app, so visitors get HTTP/1.1 and SPDY, TLS or
cleartext, limits and the access log as from any spdyasgi server. Each request becomes a
stream on an origin session; both bodies are streamed chunk by chunk: the visitor's
upload is read only as the origin's window admits it, and the origin's response is
credited only as the visitor takes it (a slow visitor slows its own stream only).

WebSocket upgrades are not relayed: they are answered 501 with a one-line reason (the
server's log line reads ``"WebSocket /path" 501``).

Errors: no origin for the Host → 502 (every one at its stream limit → 503; a body-less
request refused or cut before its head is retried once on another origin); no response
head within ``origin_timeout`` → 504;
the origin gone after the head → one log line, then the visitor's stream is reset (SPDY)
or its connection closed (HTTP/1.1) by the server, as for any app failing mid-response.
The visitor's address reaches the origin as ``X-Forwarded-For``/``X-Forwarded-Proto``
and ``Forwarded`` (whatever the visitor sent under those names is dropped).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from typing import Any

from spdyasgi.client import PreparedRequest, RetryableError, SpdyClientError
from spdyasgi.spdy.constants import HOP_BY_HOP_HEADERS
from spdyasgi.tls import tls_protocol_factory

from .origins import REGISTER_TIMEOUT, OriginRegistry, OriginSession, gate_factory

__all__ = ["RelayApp"]

logger = logging.getLogger("spdyasgi.error")

_DROPPED = HOP_BY_HOP_HEADERS | {b"host", b"x-forwarded-for", b"x-forwarded-proto",
                                 b"forwarded", b"expect"}


class RelayApp:
    """ASGI app (``http`` and ``lifespan``) forwarding visitors to registered origins;
    ``websocket`` scopes are refused with 501."""

    def __init__(self, registry: OriginRegistry, origin_host: str, origin_port: int,
                 origin_ssl: ssl.SSLContext | None, origin_timeout: float) -> None:
        self.registry = registry
        self.origin_host = origin_host
        self.origin_port = origin_port
        self.origin_ssl = origin_ssl
        self.origin_timeout = origin_timeout
        self.server: asyncio.base_events.Server | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.forward(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)
        elif kind == "websocket":
            await self.refuse_websocket(scope, receive, send)

    @staticmethod
    async def refuse_websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
        """WebSockets are not relayed (an origin session carries SPDY streams, and no
        upgrade): answer 501 with a reason, where the server allows a denial body."""
        await receive()  # websocket.connect
        if "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1011})  # a bare 403
            return
        text = b"spdyasgi-relay does not forward WebSockets\n"
        await send({"type": "websocket.http.response.start", "status": 501,
                    "headers": [(b"content-type", b"text/plain"),
                                (b"content-length", str(len(text)).encode())]})
        await send({"type": "websocket.http.response.body", "body": text})

    async def lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except OSError as exc:
                    await send({"type": "lifespan.startup.failed",
                                "message": f"origin port: {exc}"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        factory = gate_factory(self.registry)
        if self.origin_ssl is not None:
            # The server's own TLS layer: an origin failing the handshake (no or a wrong
            # client certificate) is one info line naming the peer, not silence.
            factory = tls_protocol_factory(factory, self.origin_ssl, loop, REGISTER_TIMEOUT,
                                           failure_level=logging.INFO)
        self.server = await loop.create_server(factory, self.origin_host, self.origin_port)
        for sock in self.server.sockets:
            name = sock.getsockname()
            logger.info("Relay: accepting origins on %s://%s:%d",
                        "tls" if self.origin_ssl else "tcp", name[0], name[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        await self.registry.close()

    # ------------------------------------------------------------------ forwarding

    async def forward(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        host = ""
        headers: list[tuple[bytes, bytes]] = []
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
            elif name not in _DROPPED:
                headers.append((name, value))
        client = scope.get("client")
        scheme = scope.get("scheme", "http")
        if client:
            address = client[0]
            headers.append((b"x-forwarded-for", address.encode("latin-1")))
            quoted = f'"[{address}]"' if ":" in address else address
            headers.append((b"forwarded", f"for={quoted};proto={scheme}".encode("latin-1")))
        headers.append((b"x-forwarded-proto", scheme.encode("latin-1")))
        path = scope.get("raw_path") or scope["path"].encode("latin-1")
        if scope.get("query_string"):
            path += b"?" + scope["query_string"]
        prepared = PreparedRequest(scope["method"], path.decode("latin-1"), [
            (b":method", scope["method"].encode("latin-1")),
            (b":path", path),
            (b":version", b"HTTP/1.1"),
            (b":host", host.encode("latin-1")),
            (b":scheme", scheme.encode("latin-1")),
            *headers,
        ])
        first = await receive()
        body: bytes = first.get("body", b"")
        streaming = first.get("more_body", False)
        content: Any = _stream_body(body, receive) if streaming else (body or None)

        session: OriginSession | None = None
        for attempt in range(2):  # a body-less request is retried once on another origin
            session = self.registry.pick(host, exclude=session)
            if session is None:
                break
            try:
                response = await asyncio.wait_for(session.send(prepared, content=content),
                                                   self.origin_timeout)
            except asyncio.TimeoutError:
                logger.warning("Relay: origin %s sent no response head for %s %s within "
                               "%g s", session.peer, scope["method"], prepared.path,
                               self.origin_timeout)
                await _plain(send, 504, b"origin timed out\n")
                return
            except SpdyClientError as exc:
                logger.warning("Relay: origin %s failed %s %s: %s", session.peer,
                               scope["method"], prepared.path, exc)
                if attempt == 0 and content is None and isinstance(exc, RetryableError):
                    continue
                await _plain(send, 502, b"origin failed\n")
                return
            await self._relay_response(session, response, send)
            return
        if self.registry.serves(host):
            await _plain(send, 503, b"every origin for this host is at its stream limit\n")
        else:
            await _plain(send, 502, b"no origin registered for this host\n")

    async def _relay_response(self, session: OriginSession, response: Any, send: Any) -> None:
        out = [(name, value) for name, value in response.raw_headers
               if name[:1] != b":" and name not in HOP_BY_HOP_HEADERS]
        try:
            await send({"type": "http.response.start", "status": response.status,
                        "headers": out})
            try:
                async for chunk in response.aiter_bytes():
                    await send({"type": "http.response.body", "body": bytes(chunk),
                                "more_body": True})
            except SpdyClientError as exc:
                # Returning with the body incomplete makes the server reset the SPDY
                # stream / close the HTTP/1.1 connection (no traceback: not a bug here).
                logger.warning("Relay: origin %s lost mid-response (%s); resetting the "
                               "visitor's stream", session.peer, exc)
                return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()


async def _stream_body(first: bytes, receive: Any) -> AsyncIterator[bytes]:
    """The visitor's body as it arrives (read only as fast as the origin takes it)."""
    if first:
        yield first
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("visitor disconnected during the upload")
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def _plain(send: Any, status: int, text: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(text)).encode())]})
    await send({"type": "http.response.body", "body": text})
