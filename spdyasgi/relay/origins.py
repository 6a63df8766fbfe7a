"""The origin side of the relay: registration, the SPDY sessions, choosing one per request.

An origin connects, sends ``SPDYASGI-REGISTER <token> <hosts>`` (spdyasgi/dialout.py) and,
once answered ``OK``, the connection becomes a SPDY session in which the relay is the
client: `OriginSession` is a `SpdyClient` attached to the accepted transport instead of
one it dialed, so requests, uploads, flow control and timeouts are the client's own.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
from typing import Any

from spdyasgi.client import SpdyClient
from spdyasgi.client.transport import ClientProtocol
from spdyasgi.dialout import MAGIC, MAX_LINE

__all__ = ["OriginGate", "OriginRegistry", "OriginSession"]

logger = logging.getLogger("spdyasgi.error")

REGISTER_TIMEOUT = 10.0


class OriginSession(SpdyClient):
    """One origin's SPDY session, on a connection the origin opened."""

    def __init__(self, registry: OriginRegistry, peer: str, hosts: list[str]) -> None:
        buffer = registry.buffer
        super().__init__(
            host="origin", port=80, tls=False, read_timeout=None, connect_timeout=None,
            window_size=max(65536, buffer), max_buffer=buffer, accept_push=False, retries=0,
        )
        self.registry = registry
        self.peer = peer
        self.hosts = hosts

    def attach(self, transport: asyncio.Transport, rest: bytes) -> None:
        """Start the session on `transport` (whatever followed the answer goes in first)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._time = loop.time
        self._closed_event = asyncio.Event()
        protocol = ClientProtocol(self)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if rest:
            self._data_received(memoryview(rest))

    def _connection_lost(self, exc: Exception | None) -> None:
        busy = self.active_streams
        super()._connection_lost(exc)
        self.registry.remove(self, busy)


class OriginRegistry:
    """Registered origin sessions by Host, and the per-origin limits."""

    def __init__(self, tokens: list[str], max_streams: int, buffer: int) -> None:
        self.tokens = [token.encode() for token in tokens]
        self.max_streams = max_streams
        self.buffer = buffer
        self.sessions: list[OriginSession] = []
        self._turn = itertools.count()

    def check_token(self, token: bytes) -> bool:
        if not self.tokens:
            return True
        return any(hmac.compare_digest(token, good) for good in self.tokens)

    def add(self, session: OriginSession) -> None:
        self.sessions.append(session)
        logger.info("Relay: origin %s registered for %s (%d session(s))", session.peer,
                    ",".join(session.hosts), len(self.sessions))

    def remove(self, session: OriginSession, busy: int) -> None:
        if session in self.sessions:
            self.sessions.remove(session)
            logger.warning("Relay: origin %s gone (%d stream(s) in flight; %d session(s) "
                           "left)", session.peer, busy, len(self.sessions))

    def _candidates(self, host: str, exclude: OriginSession | None) -> list[OriginSession]:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.lower()
        usable = [s for s in self.sessions if s.is_usable and s is not exclude]
        return [s for s in usable if name in s.hosts] or [s for s in usable if "*" in s.hosts]

    def pick(self, host: str, exclude: OriginSession | None = None) -> OriginSession | None:
        """A usable session for `host` under its stream limit: its own origins first,
        then wildcard ones; the least busy, ties taken in turn."""
        candidates = self._candidates(host, exclude)
        if not candidates:
            return None
        least = min(s.active_streams for s in candidates)
        if least >= self.max_streams:
            return None
        best = [s for s in candidates if s.active_streams == least]
        return best[next(self._turn) % len(best)]

    def serves(self, host: str) -> bool:
        """Whether any usable session is registered for `host` (busy or not)."""
        return bool(self._candidates(host, None))

    async def close(self) -> None:
        await asyncio.gather(*(s.aclose() for s in list(self.sessions)),
                             return_exceptions=True)


class OriginGate(asyncio.Protocol):
    """Reads an origin's registration line, answers it and hands over to `OriginSession`."""

    def __init__(self, registry: OriginRegistry) -> None:
        self.registry = registry
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.peer = "-"
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "-")
        self._timer = asyncio.get_running_loop().call_later(REGISTER_TIMEOUT, self._timeout)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        line, sep, rest = self.buffer.partition(b"\n")
        if not sep:
            if len(self.buffer) > MAX_LINE:
                self._deny("registration line too long")
            return
        parts = line.rstrip(b"\r").split(b" ")
        if len(parts) != 3 or parts[0] != MAGIC:
            self._deny("not a registration line")
            return
        if not self.registry.check_token(parts[1]):
            self._deny("wrong token")
            return
        transport = self.transport
        assert transport is not None
        self._cancel()
        hosts = [h.lower() for h in parts[2].decode("latin-1").split(",") if h]
        transport.write(b"OK\r\n")
        session = OriginSession(self.registry, self.peer, hosts or ["*"])
        session.attach(transport, rest)
        self.registry.add(session)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()

    def _deny(self, why: str) -> None:
        logger.warning("Relay: origin %s refused: %s", self.peer, why)
        self._cancel()
        if self.transport is not None:
            self.transport.write(f"DENIED {why}\r\n".encode())
            self.transport.close()

    def _timeout(self) -> None:
        self._timer = None
        self._deny(f"no registration within {REGISTER_TIMEOUT:g} s")

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def gate_factory(registry: OriginRegistry) -> Any:
    return lambda: OriginGate(registry)
