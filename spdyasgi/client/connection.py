"""The asyncio SPDY/3.1 client: one session multiplexing many concurrent requests.

Architecture
------------
`_ClientProtocol` (an `asyncio.Protocol`) feeds received bytes to the sans-IO engine
(`spdyasgi.spdy.Connection`, client role) and dispatches its events to per-stream
`StreamState`s; `SpdyClient` is the public face. No task is created per request: a request
runs inline in the caller's task (send SYN_STREAM, upload within the flow-control windows,
await the SYN_REPLY), and the body is pulled by the caller. Writes are coalesced: commands
queue frames in the engine and a single `call_soon` flush writes them once per loop turn.

The event loop is whatever the caller runs (uvloop only if the caller chose it).
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from collections import deque
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from ..spdy import Connection as Engine
from ..spdy import ConnectionConfig as EngineConfig
from ..spdy import (
    ConnectionTerminated,
    DataReceived,
    DataViewed,
    GoAwayReceived,
    HeadersReceived,
    PingAcknowledged,
    PushReceived,
    ResponseReceived,
    SettingsReceived,
    StreamReset,
    StreamStatus,
    Version,
    WindowUpdated,
)
from ..spdy.constants import DEFAULT_WINDOW
from ..spdy.exceptions import SpdyError
from .errors import (
    ConnectError,
    ConnectionClosedError,
    ConnectTimeout,
    GoAwayError,
    NotSpdyError,
    ReadTimeout,
    RequestTimeout,
    ResolveError,
    SpdyClientError,
    SpdyProtocolError,
    StreamRefusedError,
    StreamResetError,
    TLSError,
    session_status_name,
    stream_status_name,
)
from .response import PushedResponse, Response, StreamState

Content = bytes | bytearray | memoryview | AsyncIterable[bytes] | None
TraceHook = Callable[[str, bytes], None]

#: Requests we allow in flight before the server's SETTINGS tell us its real limit.
ASSUMED_MAX_CONCURRENT_STREAMS = 100
#: Largest DATA frame we send (keeps streams interleaved, like the server does).
MAX_DATA_FRAME = 16384
_FORBIDDEN_REQUEST_HEADERS = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade",
     b"host"}
)
_UPLOAD_CHUNK = 65536


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """A request header list built once (pseudo-headers first) and reusable many times."""

    method: str
    path: str
    headers: list[tuple[bytes, bytes]]


def _encode(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


#: Every read lands in this one buffer; the engine lends DATA views of it (no copies).
_READ_BUFFER = 256 * 1024


class _ClientProtocol(asyncio.BufferedProtocol):
    """Bytes <-> engine glue owned by one `SpdyClient`."""

    def __init__(self, client: SpdyClient):
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.alpn: str | None = None
        self._view = memoryview(bytearray(_READ_BUFFER))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.alpn = ssl_object.selected_alpn_protocol()
        self.client._connection_made(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        self.client._data_received(self._view[:nbytes])

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._connection_lost(exc)

    def pause_writing(self) -> None:
        self.client._writing_paused = True

    def resume_writing(self) -> None:
        self.client._resume_writing()


class SpdyClient:
    """One SPDY session to one origin; use as `async with SpdyClient(url) as client:`.

    Parameters
    ----------
    url: ``http://host:port`` (cleartext, prior knowledge) or ``https://host:port`` (TLS +
        ALPN); alternatively pass ``host`` and ``port``.
    tls: force TLS on (True) or off (False); default from the URL scheme.
    verify, cafile, ssl_context, server_hostname: TLS certificate checking.
    protocols: ALPN ids offered, in preference order (only SPDY ones by default).
    cleartext_version: ``"3.1"`` or ``"3"`` spoken by prior knowledge without TLS.
    connect_timeout, read_timeout: seconds (None = wait forever). `read_timeout` is how
        long an awaited response (headers or next body chunk) or ping may stay silent.
    timeout: default whole-request timeout for `request()` (None = none).
    accept_push: accept pushed streams (exposed as `response.pushes`) or refuse them.
    window_size: our per-stream receive window (INITIAL_WINDOW_SIZE, >= 65536).
    session_window_size: our SPDY/3.1 session receive window (default: 16 x window_size,
        at least 16 MiB).
    max_concurrent_pushes: the MAX_CONCURRENT_STREAMS we advertise (limits pushes).
    retries: how many times a request refused with REFUSED_STREAM (before any response)
        is re-sent transparently when its body can be replayed.
    trace: optional hook called with ("<", bytes received) and (">", bytes sent).
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
        connect_timeout: float | None = 10.0,
        read_timeout: float | None = 60.0,
        timeout: float | None = None,
        accept_push: bool = True,
        window_size: int = 1 << 20,
        session_window_size: int | None = None,
        max_concurrent_pushes: int = 100,
        header_compression_level: int = -1,
        retries: int = 2,
        trace: TraceHook | None = None,
    ):
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
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.timeout = timeout
        self.accept_push = accept_push
        if window_size < DEFAULT_WINDOW:
            raise ValueError("window_size must be at least 65536")
        self.window_size = window_size
        self.session_window_size = session_window_size or min(
            max(window_size * 16, 16 << 20), 2**31 - 1
        )
        self.max_concurrent_pushes = max_concurrent_pushes
        self.header_compression_level = header_compression_level
        self.retries = retries
        self.trace = trace

        self.version: Version | None = None
        self.alpn_protocol: str | None = None
        self._engine: Engine | None = None
        self._protocol: _ClientProtocol | None = None
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._streams: dict[int, StreamState] = {}
        self._uploading: set[StreamState] = set()
        self._active = 0
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self._pings: dict[int, tuple[asyncio.Future[float], float]] = {}
        self._flush_scheduled = False
        self._writing_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._closed: SpdyClientError | None = None
        self._goaway: GoAwayError | None = None
        self._closed_event: asyncio.Event | None = None
        #: Counters, cheap enough to keep always (used by the load generator).
        self.bytes_received = 0
        self.bytes_sent = 0

    # ------------------------------------------------------------- lifecycle

    def _make_ssl_context(self) -> ssl.SSLContext:
        if self.ssl_context is not None:
            ctx = self.ssl_context
        elif self.verify:
            ctx = ssl.create_default_context(cafile=self.cafile)
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            if self.cafile:
                ctx.load_verify_locations(self.cafile)
        ctx.set_alpn_protocols(list(self.protocols))
        return ctx

    async def open(self) -> SpdyClient:
        """Connect and start the session (called by `async with`)."""
        if self._engine is not None:
            return self
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._closed_event = asyncio.Event()
        ctx = self._make_ssl_context() if self.tls else None
        where = f"{self.host} port {self.port}"
        try:
            connecting = loop.create_connection(
                lambda: _ClientProtocol(self),
                self.host,
                self.port,
                ssl=ctx,
                server_hostname=(self.server_hostname or self.host) if ctx else None,
            )
            if self.connect_timeout is None:
                transport, protocol = await connecting
            else:
                transport, protocol = await asyncio.wait_for(connecting, self.connect_timeout)
        except asyncio.TimeoutError:
            raise ConnectTimeout(
                f"connection to {where} timed out after {self.connect_timeout} s"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise TLSError(f"TLS certificate problem: {exc.verify_message or exc}") from None
        except ssl.SSLError as exc:
            raise TLSError(f"TLS handshake with {where} failed: {exc.reason or exc}") from None
        except socket.gaierror as exc:
            raise ResolveError(f"could not resolve host {self.host}: {exc.strerror}") from None
        except OSError as exc:
            if ctx is not None and isinstance(exc, ConnectionResetError | BrokenPipeError):
                raise TLSError(f"TLS handshake with {where} failed: {exc}") from None
            reason = (os.strerror(exc.errno) if exc.errno else "") or str(exc) \
                or type(exc).__name__
            raise ConnectError(f"failed to connect to {where}: {reason}") from None
        assert isinstance(protocol, _ClientProtocol)
        if self._engine is None:
            transport.abort()
            if not self.tls:
                raise ConnectError(f"could not start a SPDY session with {where}")
            selected = protocol.alpn
            what = f"ALPN selected {selected}" if selected else "no ALPN protocol selected"
            raise NotSpdyError(f"server does not speak SPDY ({what})", selected)
        return self

    def _connection_made(self, protocol: _ClientProtocol) -> None:
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
            )
        )
        self._engine = engine
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
    def max_concurrent_streams(self) -> int:
        """How many of our streams may be open at once (server's value, or our assumption)."""
        engine = self._engine
        limit = engine.remote_max_concurrent_streams if engine is not None else None
        return ASSUMED_MAX_CONCURRENT_STREAMS if limit is None else limit

    @property
    def active_streams(self) -> int:
        return self._active

    # ------------------------------------------------------------------ I/O

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        engine = self._engine
        transport = self._transport
        if engine is None or transport is None or not engine.has_output:
            return
        if transport.is_closing():
            engine.data_to_send()
            return
        if self.trace is None:
            chunks = engine.chunks_to_send()
            for chunk in chunks:
                self.bytes_sent += len(chunk)
            transport.writelines(chunks)
        else:
            data = engine.data_to_send()
            self.bytes_sent += len(data)
            self.trace(">", data)
            transport.write(data)

    def _resume_writing(self) -> None:
        self._writing_paused = False
        waiters = self._drain_waiters
        self._drain_waiters = []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _data_received(self, data: memoryview) -> None:
        """One read, as a view of the protocol's buffer: valid during this call only."""
        engine = self._engine
        if engine is None:
            return
        self.bytes_received += len(data)
        if self.trace is not None:
            self.trace("<", bytes(data))
        events = engine.receive_data(data)
        streams = self._streams
        for event in events:
            cls = type(event)
            if cls is DataViewed or cls is DataReceived:
                assert isinstance(event, DataViewed | DataReceived)
                state = streams.get(event.stream_id)
                payload = event.data
                size = len(payload)
                if state is None:
                    engine.acknowledge_received_data(event.stream_id, size)
                    continue
                if size:
                    state.body_started = True
                    if state.discarding:  # counted and let go now, never queued
                        state.discarded += size
                        engine.acknowledge_received_data(state.stream_id, size)
                    else:
                        kept = payload if isinstance(payload, bytes) else bytes(payload)
                        state.chunks.append(kept)
                        if state.is_push:
                            engine.acknowledge_received_data(state.stream_id, size)
                if event.end_stream:
                    state.eof = True
                    self._check_finished(state)
                state.wake()
            elif cls is ResponseReceived:
                assert isinstance(event, ResponseReceived)
                self._on_response(event)
            elif cls is WindowUpdated:
                assert isinstance(event, WindowUpdated)
                if event.stream_id == 0:
                    for state in self._uploading:
                        state.wake_sender()
                else:
                    state = streams.get(event.stream_id)
                    if state is not None:
                        state.wake_sender()
            elif cls is HeadersReceived:
                assert isinstance(event, HeadersReceived)
                self._on_headers(event)
            elif cls is PushReceived:
                assert isinstance(event, PushReceived)
                self._on_push(event)
            elif cls is StreamReset:
                assert isinstance(event, StreamReset)
                self._on_reset(event)
            elif cls is SettingsReceived:
                for state in self._uploading:
                    state.wake_sender()
                self._release_slots()
            elif cls is PingAcknowledged:
                assert isinstance(event, PingAcknowledged)
                entry = self._pings.pop(event.ping_id, None)
                if entry is not None and not entry[0].done():
                    entry[0].set_result(time.perf_counter() - entry[1])
            elif cls is GoAwayReceived:
                assert isinstance(event, GoAwayReceived)
                self._on_goaway(event)
            elif cls is ConnectionTerminated:
                assert isinstance(event, ConnectionTerminated)
                self._flush()
                error = SpdyProtocolError(
                    f"server broke the protocol: {event.reason} "
                    f"(sent GOAWAY {session_status_name(event.status)})"
                )
                self._fail_all(error)
                if self._transport is not None:
                    self._transport.close()
                return
        self._flush()

    def _connection_lost(self, exc: Exception | None) -> None:
        if exc is None:
            error = ConnectionClosedError("the server closed the connection")
        else:
            error = ConnectionClosedError(f"connection lost: {exc}")
        self._fail_all(error)
        self._resume_writing()
        if self._closed_event is not None:
            self._closed_event.set()

    def _fail_all(self, error: SpdyClientError) -> None:
        if self._closed is None:
            self._closed = error
        fired: list[StreamState] = []
        for state in list(self._streams.values()):
            if not state.eof and state.error is None:
                state.error = error
            state.finished = True
            state.wake()
            state.wake_sender()
            if state.on_done is not None:
                fired.append(state)
        self._streams.clear()
        self._uploading.clear()
        self._active = 0
        waiters = self._slot_waiters
        self._slot_waiters = deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(self._goaway or error)
        for future, _ in self._pings.values():
            if not future.done():
                future.set_exception(error)
        self._pings.clear()
        for state in fired:
            self._call_done(state)

    # --------------------------------------------------------------- events

    def _on_response(self, event: ResponseReceived) -> None:
        state = self._streams.get(event.stream_id)
        if state is None:
            return
        status = b""
        for name, value in event.headers:
            if name == b":status":
                status = value
                break
        if not status.split(b" ", 1)[0].isdigit():
            what = f"invalid :status {status!r}" if status else "no :status"
            self._protocol_fault(state, f"SYN_REPLY on stream {event.stream_id} has {what}")
            return
        state.headers = event.headers
        state.replied = True
        if event.end_stream:
            state.eof = True
            self._check_finished(state)
        state.wake()

    def _on_headers(self, event: HeadersReceived) -> None:
        state = self._streams.get(event.stream_id)
        if state is None:
            return
        if state.body_started or (event.end_stream and not state.is_push):
            state.trailers.extend(event.headers)
        else:
            state.headers.extend(event.headers)
        if event.end_stream:
            state.eof = True
            self._check_finished(state)
        state.wake()

    def _on_push(self, event: PushReceived) -> None:
        engine = self._engine
        assert engine is not None
        parent = self._streams.get(event.associated_stream_id)
        if parent is None or parent.error is not None:
            engine.reset_stream(event.stream_id, StreamStatus.CANCEL)
            return
        state = StreamState(event.stream_id, None, is_push=True)
        state.headers = list(event.headers)
        state.replied = True
        parent.pushes.append(PushedResponse(self, state, event.associated_stream_id))
        if event.end_stream:
            state.eof = True
            state.finished = True
        else:
            self._streams[event.stream_id] = state

    def _on_reset(self, event: StreamReset) -> None:
        state = self._streams.get(event.stream_id)
        if state is None:
            return
        error: SpdyClientError
        goaway = self._goaway
        if goaway is not None and event.stream_id > goaway.last_good_stream_id and event.remote \
                and event.status == StreamStatus.REFUSED_STREAM and not state.is_push:
            error = GoAwayError(
                f"stream {event.stream_id} was not processed: the server sent GOAWAY "
                f"(last good stream {goaway.last_good_stream_id}, "
                f"{session_status_name(goaway.status)}); retry on a new connection",
                goaway.last_good_stream_id, goaway.status,
            )
        elif event.remote:
            if event.status == StreamStatus.REFUSED_STREAM:
                error = StreamRefusedError(event.stream_id, event.status)
            else:
                error = StreamResetError(event.stream_id, event.status)
        else:
            error = SpdyProtocolError(
                f"protocol error on stream {event.stream_id}: {event.reason} "
                f"(sent RST_STREAM {stream_status_name(event.status)})"
            )
        if not state.eof:
            state.error = error
        self._finish(state)

    def _on_goaway(self, event: GoAwayReceived) -> None:
        self._goaway = GoAwayError(
            f"the server sent GOAWAY ({session_status_name(event.status)}, last good stream "
            f"{event.last_good_stream_id}): no new requests on this session",
            event.last_good_stream_id, event.status,
        )
        waiters = self._slot_waiters
        self._slot_waiters = deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(self._goaway)

    def _protocol_fault(self, state: StreamState, message: str) -> None:
        engine = self._engine
        assert engine is not None
        engine.reset_stream(state.stream_id, StreamStatus.PROTOCOL_ERROR)
        state.error = SpdyProtocolError(message)
        self._finish(state)

    # ----------------------------------------------------- stream bookkeeping

    def _check_finished(self, state: StreamState) -> None:
        engine = self._engine
        if engine is not None and not engine.stream_is_open(state.stream_id):
            self._finish(state)

    def _finish(self, state: StreamState) -> None:
        """The engine no longer holds the stream: forget it and free its slot."""
        if state.finished:
            return
        state.finished = True
        self._streams.pop(state.stream_id, None)
        self._uploading.discard(state)
        state.wake()
        state.wake_sender()
        if not state.is_push:
            self._active -= 1
            self._release_slots()
        if state.on_done is not None:
            self._call_done(state)

    @staticmethod
    def _call_done(state: StreamState) -> None:
        callback = state.on_done
        state.on_done = None
        if callback is not None:
            callback(state)

    def _release_slots(self) -> None:
        waiters = self._slot_waiters
        if not waiters:
            return
        limit = self.max_concurrent_streams
        while waiters and self._active < limit:
            waiter = waiters.popleft()
            if not waiter.done():
                self._active += 1
                waiter.set_result(None)

    async def _acquire_slot(self, deadline: float | None) -> None:
        if self._active < self.max_concurrent_streams and not self._slot_waiters:
            self._active += 1
            return
        assert self._loop is not None
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._slot_waiters.append(waiter)
        try:
            if deadline is None:
                await waiter
            else:
                await asyncio.wait_for(asyncio.shield(waiter), max(deadline - self._loop.time(), 0))
        except asyncio.TimeoutError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._active -= 1
                self._release_slots()
            else:
                waiter.cancel()
            raise RequestTimeout("request timed out waiting for a free stream slot") from None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._active -= 1
                self._release_slots()
            waiter.cancel()
            raise

    def _consumed(self, state: StreamState, size: int) -> None:
        """The caller took `size` body bytes: reopen the windows (engine decides when)."""
        engine = self._engine
        if engine is not None and size and self._closed is None:
            engine.acknowledge_received_data(state.stream_id, size)
            if engine.has_output:
                self._schedule_flush()

    def _abandon(self, state: StreamState) -> None:
        """The caller does not want the rest of this body."""
        engine = self._engine
        if engine is None or self._closed is not None:
            return
        buffered = sum(len(chunk) for chunk in state.chunks)
        state.chunks.clear()
        if not state.finished:
            engine.reset_stream(state.stream_id, StreamStatus.CANCEL)
            if state.error is None and not state.eof:
                state.error = ConnectionClosedError(f"stream {state.stream_id} was cancelled")
            self._finish(state)
        if buffered and not state.is_push:
            engine.acknowledge_received_data(state.stream_id, buffered)
        self._schedule_flush()

    def _on_timeout(self, state: StreamState, waiter: asyncio.Future[None], kind: str) -> None:
        if waiter.done():
            return
        if state.error is None:
            error: SpdyClientError
            if kind == "read":
                error = ReadTimeout(
                    f"no data for {self.read_timeout:g} s on stream {state.stream_id} "
                    "(read timeout)"
                )
            else:
                error = RequestTimeout(f"request on stream {state.stream_id} timed out{kind}")
            state.error = error
        waiter.set_result(None)
        self._abandon(state)

    async def _wait(self, state: StreamState) -> None:
        """Wait for anything to happen on `state`, bounded by the read/request timeouts."""
        loop = self._loop
        assert loop is not None
        waiter: asyncio.Future[None] = loop.create_future()
        state.waiter = waiter
        delay = self.read_timeout
        kind = "read"
        if state.deadline is not None:
            remaining = state.deadline - loop.time()
            if delay is None or remaining <= delay:
                delay = max(remaining, 0.0)
                kind = ""
        handle = None
        if delay is not None:
            handle = loop.call_later(delay, self._on_timeout, state, waiter, kind)
        try:
            await waiter
        finally:
            state.waiter = None
            if handle is not None:
                handle.cancel()

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

    def expire_fired(self, error: SpdyClientError) -> int:
        """Give up on every stream started with `fire` (reset, `on_done` with `error`)."""
        stale = [state for state in self._streams.values() if state.on_done is not None]
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

        `content` is bytes or an async iterator of bytes (streamed within the windows).
        `timeout` bounds the whole request including reading the body (default: the
        client's `timeout`). Read the body with `aiter_bytes()`, `read()` or `discard()`.
        """
        return await self.send(self.prepare(method, url, headers), content=content,
                               timeout=timeout, priority=priority)

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
        body: bytes | None = None
        stream: AsyncIterable[bytes] | None = None
        if content is None:
            pass
        elif isinstance(content, bytes | bytearray | memoryview):
            body = bytes(content) if not isinstance(content, bytes) else content
        else:
            stream = content
        attempts = self.retries + 1 if stream is None else 1
        for attempt in range(attempts):
            state = await self._open_stream(prepared, body, stream, deadline, priority)
            try:
                if state.error is not None:
                    raise state.error
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
        body: bytes | None,
        stream: AsyncIterable[bytes] | None,
        deadline: float | None,
        priority: int,
    ) -> StreamState:
        await self._acquire_slot(deadline)
        end_stream = stream is None and not body
        try:
            state = self._start_stream(prepared, end_stream, priority, deadline)
        except BaseException:
            self._active -= 1
            self._release_slots()
            raise
        engine = self._engine
        assert engine is not None
        stream_id = state.stream_id
        if end_stream:
            self._schedule_flush()
            return state
        self._flush()
        try:
            if stream is not None:
                async for chunk in stream:
                    if chunk:
                        await self._upload(state, chunk, False)
                if not state.finished and state.error is None and not state.eof:
                    engine.end_stream(stream_id)
                    self._schedule_flush()
            else:
                assert body is not None
                await self._upload(state, body, True)
        except BaseException:
            self._abandon(state)
            raise
        self._check_finished(state)
        return state

    async def _upload(self, state: StreamState, data: bytes, last: bool) -> None:
        """Send `data` on the stream as windows allow (FIN with the last piece if `last`)."""
        engine = self._engine
        assert engine is not None and self._loop is not None
        view = memoryview(data)
        size = len(data)
        offset = 0
        self._uploading.add(state)
        try:
            while offset < size:
                if state.error is not None:
                    raise state.error
                if state.finished:
                    return
                if state.eof:
                    # The server answered and finished before taking the whole body.
                    engine.reset_stream(state.stream_id, StreamStatus.CANCEL)
                    self._finish(state)
                    return
                if self._writing_paused:
                    await self._drain(state)
                    continue
                window = engine.local_flow_control_window(state.stream_id)
                if window <= 0:
                    await self._wait_window(state)
                    continue
                take = min(window, size - offset, MAX_DATA_FRAME)
                end = offset + take
                piece = data if take == size else bytes(view[offset:end])
                engine.send_data(state.stream_id, piece, end_stream=last and end == size)
                offset = end
                self._flush()
            if last and size == 0:
                engine.end_stream(state.stream_id)
                self._schedule_flush()
        finally:
            self._uploading.discard(state)

    async def _wait_window(self, state: StreamState) -> None:
        assert self._loop is not None
        self._flush()
        waiter: asyncio.Future[None] = self._loop.create_future()
        state.send_waiter = waiter
        # Also wake on stream events (reset, early response) through the read waiter.
        state.waiter = waiter
        try:
            await self._bounded(waiter, state, "waiting for the server to open its window")
        finally:
            state.send_waiter = None
            state.waiter = None

    async def _drain(self, state: StreamState) -> None:
        assert self._loop is not None
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._drain_waiters.append(waiter)
        await self._bounded(waiter, state, "waiting for the socket to drain")

    async def _bounded(self, waiter: asyncio.Future[None], state: StreamState, what: str) -> None:
        assert self._loop is not None
        if state.deadline is None:
            await waiter
            return
        remaining = state.deadline - self._loop.time()
        handle = self._loop.call_later(
            max(remaining, 0.0), self._on_timeout, state, waiter, f" ({what})"
        )
        try:
            await waiter
        finally:
            handle.cancel()

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


async def iter_file(path: str | os.PathLike[str], chunk_size: int = _UPLOAD_CHUNK
                    ) -> AsyncIterator[bytes]:
    """Stream a file as request content (`content=iter_file("big.bin")`)."""
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(chunk_size)
            if not chunk:
                return
            yield chunk


__all__ = ["PreparedRequest", "SpdyClient", "connect", "iter_file"]
