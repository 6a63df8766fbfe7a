"""Reading the PROXY header off the raw socket, below TLS and below the cleartext sniff.

With ``--proxy-protocol`` on, every listening socket's protocol factory is wrapped (see
``server.py``): the connection first belongs to :class:`ProxyProtocolReader`, which
buffers the first bytes, parses the header (``spdyasgi.proxy_protocol``), then hands
the raw transport to the protocol the listener would otherwise have started (the TLS
layer, or the HTTP/1.1-vs-SPDY sniff) together with any bytes that followed the header.
That protocol sees a transport whose ``peername``/``sockname`` are the header's, so
every scope (SPDY streams, HTTP/1.1) carries the original client without a change in the
protocols; ``get_extra_info("proxy_protocol")`` gives the header's details.

Policy (docs/deployment.md): a source in ``proxy_protocol_allow_ips`` must send a header
(the balancer always does); a header that is malformed, oversized, of a version not
accepted, or missing after ``timeout_handshake`` closes the connection with one log line.
Any other source is served as a direct client with its real address; if it sends a
PROXY header anyway (spoofing an address) the connection is closed with a log line.
Unix-socket peers have no address and are trusted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from spdyasgi.asgi.proxy_headers import TrustedHosts
from spdyasgi.proxy_protocol import ProxyHeader, ProxyProtocolError, detect, parse

__all__ = ["REJECTIONS", "ProxiedTransport", "ProxyProtocolReader", "proxy_protocol_factory"]

logger = logging.getLogger("spdyasgi.error")

_VERSIONS = {"v1": (1,), "v2": (2,), "auto": (1, 2)}
# Server shutdown while a header is being read: the balancer's header and the client's
# first request are usually in flight; this long to let them land and be drained properly.
DRAIN_GRACE = 1.0

#: Connections closed by the reader in this process, by reason; read by the metrics.
REJECTIONS: Counter[str] = Counter()

# What the wrapper hands straight to the raw transport: bound once, no per-call cost.
_FORWARDED = (
    "write",
    "writelines",
    "write_eof",
    "can_write_eof",
    "close",
    "abort",
    "is_closing",
    "pause_reading",
    "resume_reading",
    "is_reading",
    "set_write_buffer_limits",
    "get_write_buffer_size",
    "get_write_buffer_limits",
    "set_protocol",
    "get_protocol",
)


class ProxiedTransport(asyncio.Transport):
    """The raw transport, with ``peername``/``sockname`` from the PROXY header."""

    def __init__(self, raw: asyncio.Transport, header: ProxyHeader) -> None:
        super().__init__()
        self.raw = raw
        self._override: dict[str, Any] = {"proxy_protocol": header.extension()}
        if header.client is not None:
            self._override["peername"] = header.client
        if header.server is not None:
            self._override["sockname"] = header.server
        for name in _FORWARDED:
            method = getattr(raw, name, None)
            if method is not None:
                setattr(self, name, method)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name in self._override:
            return self._override[name]
        return self.raw.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:  # anything else a loop's transport offers
        return getattr(self.raw, name)


class ProxyProtocolReader(asyncio.Protocol):
    """A connection's first protocol while its PROXY header is read (module docstring)."""

    def __init__(
        self,
        inner: Callable[[], asyncio.Protocol],
        versions: tuple[int, ...],
        trusted: TrustedHosts,
        server_state: Any,
        loop: asyncio.AbstractEventLoop,
        timeout: float | None,
    ) -> None:
        self.inner = inner
        self.versions = versions
        self.trusted_hosts = trusted
        self.server_state = server_state
        self.loop = loop
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self.trusted = False
        self.buffer = b""
        self._timer: asyncio.TimerHandle | None = None
        self._peer = "-"
        self._draining = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if isinstance(peer, (tuple, list)) and len(peer) >= 2:
            self._peer = f"{peer[0]}:{peer[1]}"
            self.trusted = str(peer[0]) in self.trusted_hosts
        else:  # a Unix socket: only local processes can connect
            self.trusted = True
        self.server_state.connections.add(self)
        if self.timeout:
            self._timer = self.loop.call_later(self.timeout, self._on_timeout)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer = self.buffer + data if self.buffer else data
        if not self.trusted:
            kind = detect(buffer)
            if kind:
                self._reject("untrusted", "PROXY header from a source not in "
                             "--proxy-protocol-allow-ips")
            elif kind == 0:
                self._hand_over(None, buffer)
            return
        try:
            header = parse(buffer, self.versions)
        except ProxyProtocolError as exc:
            self._reject("invalid", f"bad PROXY header: {exc}")
            return
        if header is not None:
            self._hand_over(header, buffer[header.length :])

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self.server_state.connections.discard(self)

    def eof_received(self) -> bool | None:
        return None

    # -- the server's hooks while still reading ---------------------------------------
    def shutdown(self) -> None:
        """Graceful: let the header (and request) arrive, then drain what it becomes."""
        self._draining = True
        if self.transport is not None and not self.transport.is_closing():
            self._cancel_timer()
            self._timer = self.loop.call_later(DRAIN_GRACE, self._on_timeout)

    def force_close(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- internals ----------------------------------------------------------------------
    def _hand_over(self, header: ProxyHeader | None, rest: bytes) -> None:
        raw = self.transport
        assert raw is not None
        self._cancel_timer()
        self.server_state.connections.discard(self)
        self.buffer = b""
        if header is not None and logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s - PROXY v%d %s %s -> %s", self._peer, header.version,
                         header.command, header.client, header.server)
        protocol = self.inner()
        transport = raw if header is None else ProxiedTransport(raw, header)
        raw.set_protocol(protocol)
        protocol.connection_made(transport)
        if rest and not raw.is_closing():
            _feed(protocol, rest)
        if self._draining and not raw.is_closing():
            current = raw.get_protocol()  # SPDY/HTTP once sniffed; TLS still handshaking
            if current in self.server_state.connections:
                current.shutdown()  # type: ignore[attr-defined]

    def _reject(self, reason: str, why: str) -> None:
        REJECTIONS[reason] += 1
        logger.info("%s - %s; closing the connection", self._peer, why)
        self._cancel_timer()
        self.buffer = b""
        if self.transport is not None:
            self.transport.abort()

    def _on_timeout(self) -> None:
        self._timer = None
        if self.transport is not None and not self.transport.is_closing():
            what = "PROXY header" if self.trusted else "first bytes"
            self._reject("timeout", f"no {what} within timeout_handshake")

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _feed(protocol: asyncio.BaseProtocol, data: bytes) -> None:
    """Deliver bytes already read, as the loop would: buffered protocols (TLS) too."""
    if isinstance(protocol, asyncio.BufferedProtocol) or hasattr(protocol, "buffer_updated"):
        view = memoryview(data)
        while view:
            buf = memoryview(protocol.get_buffer(len(view)))  # type: ignore[attr-defined]
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            protocol.buffer_updated(n)
            view = view[n:]
    else:
        protocol.data_received(data)  # type: ignore[attr-defined]


def proxy_protocol_factory(
    inner: Callable[[], asyncio.Protocol],
    config: Any,
    server_state: Any,
    loop: asyncio.AbstractEventLoop,
) -> Callable[[], asyncio.Protocol]:
    """Wrap a listener's protocol factory so each connection starts with the reader."""
    versions = _VERSIONS[config.proxy_protocol]
    trusted = TrustedHosts(config.proxy_protocol_allow_ips)
    timeout = config.timeout_handshake

    def make() -> asyncio.Protocol:
        return ProxyProtocolReader(inner, versions, trusted, server_state, loop, timeout)

    return make
