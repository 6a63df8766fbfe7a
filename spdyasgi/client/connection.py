"""The asyncio SPDY/3.1 client: one session multiplexing many concurrent requests.

Architecture
------------
`transport.py` connects (TCP or Unix socket, then TLS + ALPN), `session.py` runs the
sans-IO engine (`spdyasgi.spdy.Connection`, client role) and dispatches its events to
per-stream `StreamState`s, `upload.py` sends request bodies, `response.py` hands bodies to
the caller; `SpdyClient` here is the public face. A request runs in the caller's task:
send SYN_STREAM (and as much body as the windows take), await the SYN_REPLY, return the
`Response`. A body that does not fit the windows at once goes on in a background task
while the response is read (full duplex). Body-less requests create no task at all.

The event loop is whatever the caller runs (uvloop only if the caller chose it).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..spdy import Connection as Engine
from ..spdy import ConnectionConfig as EngineConfig
from ..spdy import Version
from ..spdy.constants import DEFAULT_WINDOW, HOP_BY_HOP_HEADERS
from ..spdy.exceptions import SpdyError
from .errors import (
    ConnectError,
    ConnectionClosedError,
    NotSpdyError,
    ReadTimeout,
    SpdyClientError,
    SpdyProtocolError,
    StreamRefusedError,
)
from .response import Response, StreamState
from .session import ClientSession
from .transport import ClientProtocol, make_ssl_context, open_transport
from .upload import Body, Content, iter_file, normalize, start_upload

TraceHook = Callable[[str, bytes], None]

#: Request headers never sent: connection-specific ones, and `host` (it becomes `:host`).
_FORBIDDEN_REQUEST_HEADERS = HOP_BY_HOP_HEADERS | {b"host"}


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """A request header list built once (pseudo-headers first) and reusable many times."""

    method: str
    path: str
    headers: list[tuple[bytes, bytes]]


def _encode(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


class SpdyClient(ClientSession):
    """One SPDY session to one origin; use as `async with SpdyClient(url) as client:`.

    Parameters
    ----------
    url: ``http://host:port`` (cleartext, prior knowledge) or ``https://host:port`` (TLS +
        ALPN); alternatively pass ``host`` and ``port``.
    tls: force TLS on (True) or off (False); default from the URL scheme.
    verify, cafile, ssl_context, server_hostname: TLS certificate checking.
    protocols: ALPN ids offered, in preference order (only SPDY ones by default).
    cleartext_version: ``"3.1"`` or ``"3"`` spoken by prior knowledge without TLS.
    uds: connect to this Unix socket path instead of host:port (the URL still gives
        ``:host`` and the scheme).
    connect_timeout: seconds for the socket connect, DNS included (None = no limit).
    tls_timeout: seconds for the TLS handshake (default: `connect_timeout`).
    read_timeout: idle timeout: how long an awaited response (headers or next body chunk)
        or ping may go without a byte moving on its stream, either way (None = no limit).
    timeout: default whole-request timeout for `request()` (None = none).
    max_buffer: response bytes per stream credited to the server before the caller reads
        them (default: `window_size`). A stream never holds more than `max_buffer` +
        `window_size` unread bytes; a caller that stops reading stops the server there.
    accept_push: accept pushed streams (exposed as `response.pushes`) or refuse them.
    window_size: our per-stream receive window (INITIAL_WINDOW_SIZE, >= 65536).
    session_window_size: our SPDY/3.1 session receive window (default: 16 x window_size,
        at least 16 MiB).
    max_concurrent_pushes: the MAX_CONCURRENT_STREAMS we advertise (limits pushes).
    retries: how many times a request refused with REFUSED_STREAM (before any response)
        is re-sent transparently when its body can be replayed.
    trace: optional hook called with ("<", bytes received) and (">", bytes sent).
    compat: tolerate a server's known SPDY faults (docs/spdy.md "Compatibility mode"),
        bounded; each is logged once per session and kept in `faults`.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        tls: bool | None = None,
        verify: bool = True,
        cafile: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        protocols: Sequence[str] = ("spdy/3.1", "spdy/3"),
        cleartext_version: str = "3.1",
        uds: str | None = None,
        local_addr: tuple[str, int] | None = None,
        connect_timeout: float | None = 10.0,
        tls_timeout: float | str | None = "connect_timeout",
        read_timeout: float | None = 60.0,
        timeout: float | None = None,
        max_buffer: int | None = None,
        accept_push: bool = True,
        window_size: int = 1 << 20,
        session_window_size: int | None = None,
        max_concurrent_pushes: int = 100,
        header_compression_level: int = -1,
        retries: int = 2,
        trace: TraceHook | None = None,
        compat: bool = False,
    ):
        super().__init__()
        scheme = "http"
        if url is not None:
            parts = urlsplit(url if "://" in url else "http://" + url)
            scheme = parts.scheme.lower()
            if scheme not in ("http", "https"):
                raise ValueError(f"unsupported URL scheme {parts.scheme!r} (use http or https)")
            host = host or parts.hostname
            port = port or parts.port
        if not host:
            raise ValueError("a URL or a host is required")
        self.tls: bool = (scheme == "https") if tls is None else tls
        self.host: str = host
        self.port: int = port or (443 if self.tls else 80)
        self.scheme = "https" if self.tls else "http"
        default_port = 443 if self.tls else 80
        host_text = f"[{host}]" if ":" in host else host
        self.authority = host_text if self.port == default_port else f"{host_text}:{self.port}"
        self.verify = verify
        self.cafile = cafile
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.protocols = tuple(protocols)
        if cleartext_version not in ("3.1", "3"):
            raise ValueError("cleartext_version must be '3.1' or '3'")
        self.cleartext_version = cleartext_version
        self.uds = uds
        self.local_addr = local_addr  # source address to bind (e.g. 127.0.0.2 in tests)
        self.connect_timeout = connect_timeout
        self.tls_timeout: float | None = (
            connect_timeout if isinstance(tls_timeout, str) else tls_timeout
        )
        self.read_timeout = read_timeout
        self.timeout = timeout
        self.accept_push = accept_push
        if window_size < DEFAULT_WINDOW:
            raise ValueError("window_size must be at least 65536")
        self.window_size = window_size
        self.max_buffer = window_size if max_buffer is None else max_buffer
        self.session_window_size = session_window_size or min(
            max(window_size * 16, 16 << 20), 2**31 - 1
        )
        self.max_concurrent_pushes = max_concurrent_pushes
        self.header_compression_level = header_compression_level
        self.retries = retries
        self.trace = trace
        self.compat = compat

        self.version: Version | None = None
        self.alpn_protocol: str | None = None

    # ------------------------------------------------------------- lifecycle

    async def open(self) -> SpdyClient:
        """Connect and start the session (called by `async with`)."""
        if self._engine is not None:
            return self
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._time = loop.time
        self._closed_event = asyncio.Event()
        ctx = None
        if self.tls:
            ctx = make_ssl_context(verify=self.verify, cafile=self.cafile,
                                   ssl_context=self.ssl_context, protocols=self.protocols)
        transport, protocol = await open_transport(
            lambda: ClientProtocol(self), host=self.host, port=self.port, uds=self.uds,
            local_addr=self.local_addr, ssl_context=ctx, server_hostname=self.server_hostname,
            connect_timeout=self.connect_timeout, tls_timeout=self.tls_timeout,
        )
        where = f"unix socket {self.uds}" if self.uds else f"{self.host} port {self.port}"
        assert isinstance(protocol, ClientProtocol)
        if self._engine is None:
            transport.abort()
            if not self.tls:
                raise ConnectError(f"could not start a SPDY session with {where}")
            selected = protocol.alpn
            what = f"ALPN selected {selected}" if selected else "no ALPN protocol selected"
            raise NotSpdyError(f"server does not speak SPDY ({what})", selected)
        return self

    def _connection_made(self, protocol: ClientProtocol) -> None:
        transport = protocol.transport
        assert transport is not None
        if self.tls:
            alpn = protocol.alpn
            if alpn not in ("spdy/3.1", "spdy/3"):
                return  # open() reports NotSpdyError
            version = Version.from_alpn(alpn)
        else:
            version = Version.SPDY31 if self.cleartext_version == "3.1" else Version.SPDY3
        self.version = version
        self.alpn_protocol = protocol.alpn
        self._protocol = protocol
        self._transport = transport
        engine = Engine(
            EngineConfig(
                client_side=True,
                version=version,
                max_concurrent_streams=self.max_concurrent_pushes,
                initial_window_size=self.window_size,
                session_window_size=self.session_window_size,
                header_compression_level=self.header_compression_level,
                accept_push=self.accept_push,
                borrow_data=True,
                clock=time.monotonic,
                compat=self.compat,
            )
        )
        self._engine = engine
        if not self.tls:
            engine.assume_version()  # compat: detect 3 vs 3.1 flow control from the server
        engine.initiate_connection()
        self._flush()

    async def __aenter__(self) -> SpdyClient:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __await__(self) -> Generator[Any, None, SpdyClient]:
        return self.open().__await__()

    async def aclose(self, status: int = 0) -> None:
        """Send GOAWAY, close the connection and fail anything still in flight."""
        engine = self._engine
        transport = self._transport
        if engine is not None and transport is not None and not transport.is_closing():
            if not engine.goaway_sent:
                engine.close_connection(status)
            self._flush()
            transport.close()
        for task in list(self._upload_tasks):
            task.cancel()
        self._fail_all(ConnectionClosedError("the client closed the session"))
        if self._closed_event is not None and transport is not None:
            try:
                await asyncio.wait_for(self._closed_event.wait(), 1.0)
            except asyncio.TimeoutError:
                transport.abort()

    @property
    def is_closed(self) -> bool:
        return self._closed is not None

    @property
    def is_usable(self) -> bool:
        """True while new requests may be sent (connected, no GOAWAY, not closed)."""
        return self._engine is not None and self._closed is None and self._goaway is None

    @property
    def remote_settings(self) -> dict[int, int]:
        """The server's SETTINGS so far (keys are `SettingId` values)."""
        return dict(self._engine.remote_settings) if self._engine is not None else {}

    @property
    def active_streams(self) -> int:
        return self._active

    # --------------------------------------------------------------- requests

    def prepare(
        self,
        method: str,
        url: str = "/",
        headers: Iterable[tuple[str | bytes, str | bytes]] | None = None,
    ) -> PreparedRequest:
        """Build the SPDY header list of a request once (reuse it with `send`)."""
        authority = self.authority
        if "://" in url:
            parts = urlsplit(url)
            authority = parts.netloc or authority
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
        else:
            path = url or "/"
            if not path.startswith("/") and path != "*":
                path = "/" + path
        extra: list[tuple[bytes, bytes]] = []
        host = authority.encode("latin-1")
        for name, value in headers or ():
            key = _encode(name).lower()
            if key == b"host":
                host = _encode(value)
                continue
            if key in _FORBIDDEN_REQUEST_HEADERS or key[:1] == b":":
                continue
            extra.append((key, _encode(value)))
        header_list = [
            (b":method", method.upper().encode("latin-1")),
            (b":path", path.encode("latin-1")),
            (b":version", b"HTTP/1.1"),
            (b":host", host),
            (b":scheme", self.scheme.encode("latin-1")),
        ]
        header_list.extend(extra)
        return PreparedRequest(method.upper(), path, header_list)

    def fire(self, prepared: PreparedRequest,
             on_done: Callable[[StreamState], None]) -> bool:
        """Start a body-less request whose response body is only counted: no coroutine, no
        future, no `Response`. `on_done(state)` runs once, from the read path, when the
        stream ends: `state.headers` (the reply), `state.discarded` (body bytes) and
        `state.error` (None on success) tell how. Made for load generators, which can
        start the next request from inside `on_done`. Returns False when every stream
        slot is taken; raises like `send` when the session is unusable.
        """
        if self._active >= self.max_concurrent_streams or self._slot_waiters:
            return False
        state = self._start_stream(prepared, True, 3, None)
        self._active += 1
        state.discarding = True
        state.on_done = on_done
        self._schedule_flush()
        return True

    def _start_stream(self, prepared: PreparedRequest, end_stream: bool, priority: int,
                      deadline: float | None) -> StreamState:
        """Open a stream in the engine and track it (the caller holds its slot)."""
        self._check_usable()
        engine = self._engine
        assert engine is not None
        try:
            stream_id = engine.send_request(prepared.headers, end_stream=end_stream,
                                            priority=priority)
        except SpdyError as exc:
            raise ConnectionClosedError(f"cannot open a stream: {exc}") from None
        state = StreamState(stream_id, deadline)
        self._streams[stream_id] = state
        return state

    def expire_fired(self, error: SpdyClientError, idle: float | None = None) -> int:
        """Give up on the streams started with `fire` (reset, `on_done` with `error`): all
        of them, or those on which nothing arrived for `idle` seconds. A load generator
        calls this periodically instead of arming one timer per request (a stream's idle
        time counts from the first call that sees it, so `fire` reads no clock)."""
        now = self._time()
        stale: list[StreamState] = []
        for state in self._streams.values():
            if state.on_done is None:
                continue
            if idle is not None:
                if not state.last_activity:
                    state.last_activity = now
                if state.last_activity > now - idle:
                    continue
            stale.append(state)
        for state in stale:
            if state.error is None:
                state.error = error
            self._abandon(state)
        return len(stale)

    def _check_usable(self) -> None:
        if self._engine is None:
            raise ConnectionClosedError("the client is not connected (use `async with`)")
        if self._goaway is not None:
            raise self._goaway
        if self._closed is not None:
            raise ConnectionClosedError(f"the session is closed: {self._closed}")

    async def request(
        self,
        method: str,
        url: str = "/",
        *,
        headers: Iterable[tuple[str | bytes, str | bytes]] | None = None,
        content: Content = None,
        timeout: float | None = None,
        priority: int = 3,
    ) -> Response:
        """Send a request and return its `Response` once the SYN_REPLY arrived.

        `content` is bytes, str, a path, a binary file or a (sync or async) iterable of
        bytes; what the windows do not take at once is sent while the response is read.
        `timeout` bounds the whole request including reading the body (default: the
        client's `timeout`). Read the body with `aiter_bytes()`, `aread()` or `discard()`,
        or give it up with `aclose()`.
        """
        return await self.send(self.prepare(method, url, headers), content=content,
                               timeout=timeout, priority=priority)

    @contextlib.asynccontextmanager
    async def stream(self, method: str, url: str = "/", **kwargs: Any
                     ) -> AsyncIterator[Response]:
        """`async with client.stream("POST", url, content=...) as response:` (httpx's
        shape): the stream is reset on exit unless its body was read to the end."""
        response = await self.request(method, url, **kwargs)
        try:
            yield response
        finally:
            await response.aclose()

    async def send(
        self,
        prepared: PreparedRequest,
        *,
        content: Content = None,
        timeout: float | None = None,
        priority: int = 3,
    ) -> Response:
        """Send a `PreparedRequest` (see `prepare`)."""
        self._check_usable()
        assert self._loop is not None
        if timeout is None:
            timeout = self.timeout
        deadline = None if timeout is None else self._loop.time() + timeout
        body = normalize(content)
        replayable = body is None or isinstance(body, bytes | memoryview)
        attempts = self.retries + 1 if replayable else 1
        for attempt in range(attempts):
            state = await self._open_stream(prepared, body, deadline, priority)
            try:
                while not state.replied:
                    if state.error is not None:
                        raise state.error
                    if state.finished:
                        raise SpdyProtocolError(
                            f"stream {state.stream_id} ended without a SYN_REPLY"
                        )
                    await self._wait(state)
            except StreamRefusedError:
                if attempt + 1 < attempts:
                    continue
                raise
            except BaseException:
                self._abandon(state)
                raise
            return Response(self, state, prepared.method, prepared.path)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _open_stream(
        self,
        prepared: PreparedRequest,
        body: Body | AsyncIterable[bytes] | None,
        deadline: float | None,
        priority: int,
    ) -> StreamState:
        await self._acquire_slot(deadline)
        end_stream = body is None or (not isinstance(body, AsyncIterable) and not len(body))
        try:
            state = self._start_stream(prepared, end_stream, priority, deadline)
        except BaseException:
            self._active -= 1
            self._release_slots()
            raise
        assert self._loop is not None
        state.last_activity = self._loop.time()
        if end_stream or body is None:
            self._schedule_flush()
            return state
        self._flush()
        start_upload(self, state, body)
        return state

    # ------------------------------------------------------------ shortcuts

    async def get(self, url: str = "/", **kwargs: Any) -> Response:
        return await self.request("GET", url, **kwargs)

    async def head(self, url: str = "/", **kwargs: Any) -> Response:
        return await self.request("HEAD", url, **kwargs)

    async def post(self, url: str = "/", **kwargs: Any) -> Response:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str = "/", **kwargs: Any) -> Response:
        return await self.request("PUT", url, **kwargs)

    async def delete(self, url: str = "/", **kwargs: Any) -> Response:
        return await self.request("DELETE", url, **kwargs)

    # ----------------------------------------------------------------- misc

    async def ping(self, timeout: float | None = None) -> float:
        """Send a PING and return the round-trip time in seconds."""
        self._check_usable()
        engine = self._engine
        assert engine is not None and self._loop is not None
        future: asyncio.Future[float] = self._loop.create_future()
        ping_id = engine.ping()
        self._pings[ping_id] = (future, time.perf_counter())
        self._flush()
        if timeout is None:
            timeout = self.read_timeout
        try:
            if timeout is None:
                return await future
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise ReadTimeout(f"no PING reply within {timeout:g} s") from None
        finally:
            self._pings.pop(ping_id, None)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._engine else "new")
        return f"<SpdyClient {self.scheme}://{self.authority} {state}>"


def connect(url: str | None = None, **kwargs: Any) -> SpdyClient:
    """A `SpdyClient`; use `async with connect(url) as client:` (or `await connect(url)`)."""
    return SpdyClient(url, **kwargs)


__all__ = ["PreparedRequest", "SpdyClient", "connect", "iter_file"]
