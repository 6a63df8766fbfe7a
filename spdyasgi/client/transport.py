"""Getting a byte stream to the server: TCP or Unix socket, then (maybe) TLS with ALPN.

With TLS the two steps are timed separately so each timeout names what stalled: the socket
connect (DNS included) is bounded by `connect_timeout`, the TLS handshake by `tls_timeout`. Both
raise `ConnectTimeout` (curl exit 28); every other failure maps to the curl-style error
of `errors.py`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .errors import ConnectError, ConnectTimeout, ResolveError, TLSError

if TYPE_CHECKING:
    from .session import ClientSession

T = TypeVar("T")

#: Every read lands in this one buffer; the engine lends DATA views of it (no copies).
READ_BUFFER = 256 * 1024


class ClientProtocol(asyncio.BufferedProtocol):
    """Bytes <-> session glue owned by one client."""

    def __init__(self, session: ClientSession):
        self.session = session
        self.transport: asyncio.Transport | None = None
        self.alpn: str | None = None
        self._view = memoryview(bytearray(READ_BUFFER))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.alpn = ssl_object.selected_alpn_protocol()
        self.session._connection_made(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        self.session._data_received(self._view[:nbytes])

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.session._connection_lost(exc)

    def pause_writing(self) -> None:
        self.session._writing_paused = True

    def resume_writing(self) -> None:
        self.session._resume_writing()


def make_ssl_context(
    *,
    verify: bool,
    cafile: str | None,
    ssl_context: ssl.SSLContext | None,
    protocols: Sequence[str],
) -> ssl.SSLContext:
    """The client's TLS context with our ALPN offer (a given context is used as is)."""
    if ssl_context is not None:
        ctx = ssl_context
    elif verify:
        ctx = ssl.create_default_context(cafile=cafile)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if cafile:
            ctx.load_verify_locations(cafile)
    ctx.set_alpn_protocols(list(protocols))
    return ctx


async def _within(awaitable: Awaitable[T], timeout: float | None) -> T:
    if timeout is None:
        return await awaitable
    return await asyncio.wait_for(awaitable, timeout)


async def _connect_socket(loop: asyncio.AbstractEventLoop, host: str, port: int,
                          uds: str | None,
                          local_addr: tuple[str, int] | None = None) -> socket.socket:
    """A connected non-blocking socket (each resolved address tried in turn)."""
    if uds is not None:
        targets: list[tuple[int, int, int, Any]] = [
            (socket.AF_UNIX, socket.SOCK_STREAM, 0, uds)
        ]
    else:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        targets = [(family, kind, proto, addr) for family, kind, proto, _, addr in infos]
    error: OSError | None = None
    for family, kind, proto, address in targets:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            if family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if local_addr is not None:
                    sock.bind(local_addr)
            await loop.sock_connect(sock, address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
    assert error is not None
    raise error


def _reason(exc: OSError) -> str:
    return (os.strerror(exc.errno) if exc.errno else "") or str(exc) or type(exc).__name__


async def open_transport(
    factory: Callable[[], ClientProtocol],
    *,
    host: str,
    port: int,
    uds: str | None,
    ssl_context: ssl.SSLContext | None,
    local_addr: tuple[str, int] | None = None,
    server_hostname: str | None,
    connect_timeout: float | None,
    tls_timeout: float | None,
) -> tuple[asyncio.Transport, ClientProtocol]:
    """Connect (bounded by `connect_timeout`), then start TLS (bounded by `tls_timeout`)."""
    loop = asyncio.get_running_loop()
    where = f"unix socket {uds}" if uds is not None else f"{host} port {port}"
    try:
        if ssl_context is None:  # one step: the loop's own connect (uvloop reads a
            # transport it created itself measurably cheaper than one given a socket)
            if uds is not None:
                connecting = loop.create_unix_connection(factory, uds)
            else:
                connecting = loop.create_connection(factory, host, port, local_addr=local_addr)
            return await _within(connecting, connect_timeout)
        sock = await _within(_connect_socket(loop, host, port, uds, local_addr), connect_timeout)
    except asyncio.TimeoutError:
        raise ConnectTimeout(
            f"connection to {where} timed out after {connect_timeout:g} s"
        ) from None
    except socket.gaierror as exc:
        raise ResolveError(f"could not resolve host {host}: {exc.strerror}") from None
    except OSError as exc:
        raise ConnectError(f"failed to connect to {where}: {_reason(exc)}") from None
    handshake = loop.create_connection(
        factory, sock=sock, ssl=ssl_context, server_hostname=server_hostname or host,
        # asyncio's own limit, a backstop behind ours
        ssl_handshake_timeout=None if tls_timeout is None else tls_timeout + 5.0,
    )
    try:
        transport, protocol = await _within(handshake, tls_timeout)
    except asyncio.TimeoutError:
        sock.close()
        raise ConnectTimeout(
            f"TLS handshake with {where} timed out after {tls_timeout:g} s"
        ) from None
    except ssl.SSLCertVerificationError as exc:
        sock.close()
        raise TLSError(f"TLS certificate problem: {exc.verify_message or exc}") from None
    except ssl.SSLError as exc:
        sock.close()
        raise TLSError(f"TLS handshake with {where} failed: {exc.reason or exc}") from None
    except OSError as exc:
        sock.close()
        raise TLSError(f"TLS handshake with {where} failed: {_reason(exc)}") from None
    return transport, protocol


__all__ = ["READ_BUFFER", "ClientProtocol", "make_ssl_context", "open_transport"]
