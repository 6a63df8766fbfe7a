"""The protocol every listening socket starts with: pick HTTP/1.1 or SPDY, then step aside.

TLS connections are decided by ALPN as soon as the handshake is done. Cleartext ones
wait for their first bytes: a SPDY control frame starts with ``0x80`` (then the version,
``0x03``; a frame of another version goes to the SPDY session too, which answers it with
GOAWAY as over TLS), an HTTP/1.x request line with an ASCII letter. After
``transport.set_protocol()`` the chosen protocol receives every later read directly, so
sniffing costs nothing per request.
"""

from __future__ import annotations

import asyncio
import logging
from importlib import import_module
from typing import Any

from spdyasgi.spdy.constants import Version

__all__ = ["AutoProtocol"]

logger = logging.getLogger("spdyasgi.error")

_SPDY_ALPN = {"spdy/3.1": Version.SPDY31, "spdy/3": Version.SPDY3}
_CLEARTEXT_VERSIONS = {"3.1": Version.SPDY31, "3": Version.SPDY3}
_HTTP2_PREFACE = b"PRI "


def _spdy_class() -> Any:
    """Imported on first use so this module works before the SPDY protocol exists."""
    return import_module("spdyasgi.protocols.spdy").SpdyProtocol


def _is_letter(byte: int) -> bool:
    return 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A


class AutoProtocol(asyncio.Protocol):
    """Chooses the connection's real protocol and hands the transport over to it."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.config = config
        self.server_state = server_state
        self.app_state = app_state
        self.loop = _loop or asyncio.get_event_loop()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            alpn = ssl_object.selected_alpn_protocol()
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s - TLS, ALPN negotiated %s", self._peer(), alpn or "nothing")
            version = _SPDY_ALPN.get(alpn) if alpn else None
            if version is not None:
                self._switch(self._make_spdy(version))
            else:
                self._switch(self._make_http())
            return
        # Waiting for the first bytes is a connection like any other for shutdown.
        self.server_state.connections.add(self)
        timeout = getattr(self.config, "timeout_receive", None)
        if timeout:
            self._timer = self.loop.call_later(timeout, self._on_timeout)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer = self.buffer + data if self.buffer else data
        if len(buffer) < 2:
            return
        first, second = buffer[0], buffer[1]
        if first == 0x80:
            # A SPDY control frame, of our version or not: the SPDY session answers one of
            # another version as it does over TLS (GOAWAY PROTOCOL_ERROR, spec 2.1, 2.4.1),
            # so a client learns why instead of seeing the connection merely close.
            name = getattr(self.config, "cleartext_spdy_version", "3.1")
            self._switch(self._make_spdy(_CLEARTEXT_VERSIONS.get(name, Version.SPDY31)))
        elif first == 0x16 and second == 0x03:
            self._refuse("TLS handshake on a cleartext port")
        elif _is_letter(first):
            head = buffer[:4]
            if head == _HTTP2_PREFACE:
                self._refuse("HTTP/2 is not supported")
            elif len(head) < 4 and _HTTP2_PREFACE.startswith(head):
                return  # "PR" / "PRI": wait to tell HTTP/2 from PROPFIND and friends
            else:
                self._switch(self._make_http())
        else:
            self._refuse(f"unrecognised first bytes {bytes(buffer[:8])!r}")

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self.server_state.connections.discard(self)

    def eof_received(self) -> bool | None:
        return None

    # -- the server's hooks while still undecided -----------------------------------
    def shutdown(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def force_close(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- internals ------------------------------------------------------------------
    def _make_http(self) -> asyncio.Protocol:
        cls = self.config.http_protocol_class
        protocol: asyncio.Protocol = cls(
            self.config, self.server_state, self.app_state, _loop=self.loop
        )
        return protocol

    def _make_spdy(self, version: Version) -> asyncio.Protocol:
        protocol: asyncio.Protocol = _spdy_class()(
            self.config, self.server_state, self.app_state, _loop=self.loop, version=version
        )
        return protocol

    def _switch(self, protocol: asyncio.Protocol) -> None:
        transport = self.transport
        assert transport is not None
        self._cancel_timer()
        self.server_state.connections.discard(self)
        buffered, self.buffer = self.buffer, b""
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if buffered and not transport.is_closing():
            protocol.data_received(buffered)

    def _refuse(self, why: str) -> None:
        logger.info("%s - %s; closing the connection", self._peer(), why)
        self._cancel_timer()
        self.buffer = b""
        if self.transport is not None:
            self.transport.close()

    def _on_timeout(self) -> None:
        self._timer = None
        if self.transport is not None and not self.transport.is_closing():
            logger.info("%s - no request within timeout_receive; closing", self._peer())
            self.transport.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _peer(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        if isinstance(peer, tuple) and len(peer) >= 2:
            return f"{peer[0]}:{peer[1]}"
        return str(peer or "-")
