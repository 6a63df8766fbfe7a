"""Dial-out serving: open SPDY sessions to a relay and serve the streams it opens.

A server behind NAT cannot be reached, but it can connect out. With ``--connect
HOST:PORT`` the server opens ``--connect-sessions`` TCP connections (TLS with certificate
verification and ALPN ``spdy/3.1`` unless ``--connect-cleartext``) to a relay
(``spdyasgi-relay``, spdyasgi/relay/) and then plays the SPDY *server* on them: the
relay opens the streams (odd ids, it is the session's client although it accepted the
TCP connection), and each one runs through the very same `SpdyProtocol` as an accepted
connection: the same cycle, flow control, push, limits and access log.

Registration (before any SPDY byte, so it needs neither stream-id tricks nor SETTINGS
extensions): the origin sends one line ``SPDYASGI-REGISTER <token> <hosts>\\r\\n``
(``<token>`` is ``-`` without one, ``<hosts>`` a comma list or ``*``); the relay answers
``OK\\r\\n`` and starts SPDY, or ``DENIED <reason>\\r\\n`` and closes. A client certificate
(``--connect-certfile``) is presented in the TLS handshake when given.

Each session PINGs the relay (``--ping-interval``, 30 s when unset) and reconnects on
loss with exponential backoff (0.5 s doubling to 30 s) and +-50 % jitter; every state
change is one log line. At shutdown the sessions are ordinary server connections:
``shutdown()`` sends GOAWAY and the server drains them.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import ssl
from typing import Any

from spdyasgi.protocols.spdy import SpdyProtocol
from spdyasgi.spdy import Version

__all__ = ["DialOut", "parse_target", "preamble"]

logger = logging.getLogger("spdyasgi.error")

MAGIC = b"SPDYASGI-REGISTER"
MAX_LINE = 4096
BACKOFF_MIN = 0.5
BACKOFF_MAX = 30.0
HANDSHAKE_TIMEOUT = 10.0
#: PING interval of dial-out sessions when --ping-interval is not set: a relay that
#: vanished without a FIN (NAT mapping dropped, machine gone) is noticed within
#: this plus --ping-timeout, and the session is redialed.
PING_INTERVAL = 30.0


def parse_target(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` → (host, port); ValueError names what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def preamble(token: str | None, hosts: str) -> bytes:
    """The registration line an origin sends first (see the module docstring)."""
    for value in (token or "-", hosts):
        if not value or any(ch.isspace() for ch in value) or not value.isprintable():
            raise ValueError(f"{value!r}: tokens and host lists cannot contain spaces")
    return b"%s %s %s\r\n" % (MAGIC, (token or "-").encode(), hosts.encode())


class _Handshake(asyncio.Protocol):
    """Sends the registration line and waits for the relay's one-line answer."""

    def __init__(self, line: bytes, loop: asyncio.AbstractEventLoop) -> None:
        self.line = line
        self.answer: asyncio.Future[tuple[bytes, bytes]] = loop.create_future()
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.line)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        line, sep, rest = self.buffer.partition(b"\n")
        if sep and not self.answer.done():
            self.answer.set_result((line.rstrip(b"\r"), rest))
        elif len(self.buffer) > MAX_LINE and not self.answer.done():
            self.answer.set_exception(ConnectionError("relay answered no line"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(ConnectionError(
                f"relay closed the connection during registration{f': {exc}' if exc else ''}"
            ))


class DialedSpdyProtocol(SpdyProtocol):
    """`SpdyProtocol` on a connection we opened: never idles out, reports its end."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lost: asyncio.Future[None] = self.loop.create_future()

    def _arm_idle_timer(self, delay: float | None = None) -> None:
        self._idle_timer = None  # the relay keeps the session; PINGs check liveness

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.lost.done():
            self.lost.set_result(None)


def client_ssl_context(config: Any) -> ssl.SSLContext:
    """Verifying TLS client context with ALPN spdy/3.1 (and an optional client cert)."""
    ctx = ssl.create_default_context(cafile=config.connect_cafile)
    ctx.set_alpn_protocols(["spdy/3.1"])
    certfile = config.connect_certfile
    if certfile:
        ctx.load_cert_chain(certfile, config.connect_keyfile)
    return ctx


class DialOut:
    """The dial-out sessions of one server process (started and stopped by `Server`)."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        # The sessions' own copy: PINGs on even when --ping-interval is off (see above).
        self.session_config = copy.copy(config)
        self.session_config.ping_interval = config.ping_interval or PING_INTERVAL
        self.server_state = server_state
        self.app_state = app_state
        self.loop = loop
        self.targets = [parse_target(text) for text in config.connect]
        self.line = preamble(config.connect_token, config.connect_hosts)
        self.ssl = None if config.connect_cleartext else client_ssl_context(config)
        self.tasks: list[asyncio.Task[None]] = []
        self.sessions: set[DialedSpdyProtocol] = set()
        self.stopping = False

    def start(self) -> None:
        for host, port in self.targets:
            for index in range(self.config.connect_sessions):
                self.tasks.append(self.loop.create_task(self._run(host, port, index + 1)))

    async def stop(self) -> None:
        """No more reconnects; live sessions are drained by the server like any other."""
        self.stopping = True
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _run(self, host: str, port: int, index: int) -> None:
        where = f"relay {host}:{port} (session {index})"
        delay = BACKOFF_MIN
        while not self.stopping:
            logger.info("Dial-out: connecting to %s", where)
            try:
                session = await self._open(host, port)
            except asyncio.CancelledError:
                raise
            except (OSError, ValueError, asyncio.TimeoutError) as exc:
                logger.warning("Dial-out: %s failed: %s", where, exc or type(exc).__name__)
            else:
                logger.info("Dial-out: registered with %s; serving", where)
                delay = BACKOFF_MIN
                try:
                    await asyncio.shield(session.lost)
                finally:
                    self.sessions.discard(session)
                if self.stopping:
                    return
                logger.warning("Dial-out: session with %s ended", where)
            wait = delay * random.uniform(0.5, 1.5)
            logger.info("Dial-out: reconnecting to %s in %.1f s", where, wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _open(self, host: str, port: int) -> DialedSpdyProtocol:
        handshake = _Handshake(self.line, self.loop)
        transport, _ = await asyncio.wait_for(self.loop.create_connection(
            lambda: handshake, host, port, ssl=self.ssl,
            server_hostname=host if self.ssl is not None else None,
        ), HANDSHAKE_TIMEOUT)
        try:
            answer, rest = await asyncio.wait_for(handshake.answer, HANDSHAKE_TIMEOUT)
        except BaseException:
            transport.abort()
            raise
        if answer != b"OK":
            transport.abort()
            raise ConnectionError(
                f"relay refused the registration: {answer.decode('latin-1')[:200]}"
            )
        session = DialedSpdyProtocol(self.session_config, self.server_state, self.app_state,
                                     _loop=self.loop, version=Version.SPDY31)
        transport.set_protocol(session)
        session.connection_made(transport)
        self.sessions.add(session)
        if rest and not transport.is_closing():
            session.data_received(rest)
        return session
