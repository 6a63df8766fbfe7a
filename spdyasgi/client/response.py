"""Responses (and pushed responses) of the SPDY client.

A response's body is a queue of DATA payloads filled by the session. Arriving bytes are
credited to the server (`acknowledge_received_data`) at once while the queue holds at most
the client's `max_buffer` bytes; beyond that, credit waits until the caller takes chunks
out. So a response is read while its request body is still being sent (full duplex: an
echo of any size completes), and a caller that stops reading holds the server at
`max_buffer` + one stream window, never more. Pushed bodies are acknowledged on arrival
(like a browser's push cache) so an unread push can never stall the session window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from http import HTTPStatus
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

    from .session import ClientSession

RawHeaders = list[tuple[bytes, bytes]]


class StreamState:
    """Session-side bookkeeping of one stream (ours or a push). Internal."""

    __slots__ = (
        "body_started",
        "buffered",
        "chunks",
        "deadline",
        "discarded",
        "discarding",
        "eof",
        "error",
        "finished",
        "headers",
        "is_push",
        "last_activity",
        "on_done",
        "pushes",
        "received",
        "replied",
        "send_waiter",
        "stream_id",
        "timer",
        "trailers",
        "unacked",
        "upload",
        "waiter",
    )

    def __init__(self, stream_id: int, deadline: float | None, is_push: bool = False):
        self.stream_id = stream_id
        self.deadline = deadline
        self.is_push = is_push
        self.headers: RawHeaders = []
        self.trailers: RawHeaders = []
        self.replied = False
        self.body_started = False
        self.chunks: deque[bytes] = deque()
        self.buffered = 0  # bytes in `chunks`
        self.received = 0  # body bytes that arrived in all (kept bodies only)
        self.unacked = 0  # buffered bytes not yet credited to the server (over max_buffer)
        self.last_activity = 0.0  # loop time of the last bytes either way (idle timeout)
        self.timer: asyncio.TimerHandle | None = None
        self.upload: asyncio.Task[None] | None = None  # the request body still being sent
        self.discarding = False  # the body is only counted (`discard()`), not kept
        self.discarded = 0
        self.eof = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.send_waiter: asyncio.Future[None] | None = None
        self.pushes: list[PushedResponse] = []
        self.finished = False  # the engine forgot the stream; slot released
        #: Set by `SpdyClient.fire`: called once, instead of waking anybody, when it ends.
        self.on_done: Callable[[StreamState], None] | None = None

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def wake_sender(self) -> None:
        waiter = self.send_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _split(raw: RawHeaders) -> tuple[dict[str, str], list[tuple[str, str]]]:
    pseudo: dict[str, str] = {}
    regular: list[tuple[str, str]] = []
    for name, value in raw:
        if name[:1] == b":":
            pseudo.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        else:
            regular.append((name.decode("latin-1"), value.decode("latin-1")))
    return pseudo, regular


class _Body:
    """Shared body machinery of `Response` and `PushedResponse`."""

    _client: ClientSession
    _state: StreamState
    _content: bytes | None

    @property
    def stream_id(self) -> int:
        return self._state.stream_id

    @property
    def is_complete(self) -> bool:
        """True once the whole body arrived (it may not all have been read yet)."""
        return self._state.eof

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Yield body chunks as they arrive; the window reopens as each one is taken."""
        state = self._state
        client = self._client
        chunks = state.chunks
        while True:
            if chunks:
                chunk = chunks.popleft()
                if not state.is_push:
                    client._consumed(state, len(chunk))
                yield chunk
                continue
            if state.error is not None:
                raise state.error
            if state.eof:
                return
            await client._wait(state)

    async def aread(self) -> bytes:
        """The whole body (cached: later calls return the same bytes)."""
        if self._content is None:
            parts = [chunk async for chunk in self.aiter_bytes()]
            self._content = parts[0] if len(parts) == 1 else b"".join(parts)
        return self._content

    async def discard(self) -> int:
        """Consume the body without keeping it; returns its length (cheap, no copies)."""
        state = self._state
        client = self._client
        chunks = state.chunks
        state.discarding = True  # from now on the session counts arriving bytes itself
        total = 0
        while True:
            if chunks:
                size = 0
                while chunks:
                    size += len(chunks.popleft())
                if not state.is_push:
                    client._consumed(state, size)
                total += size
                continue
            total += state.discarded
            state.discarded = 0
            if state.error is not None:
                raise state.error
            if state.eof:
                return total
            await client._wait(state)

    read = aread  # the name this client used before following httpx

    @property
    def content(self) -> bytes:
        """The body after `await aread()`."""
        if self._content is None:
            raise RuntimeError("call `await response.aread()` first")
        return self._content

    async def aclose(self) -> None:
        """Stop: reset the stream (CANCEL) if the body is still arriving or being sent."""
        self._client._abandon(self._state)

    async def __aenter__(self) -> _Body:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class Response(_Body):
    """A response to one of our requests.

    `headers` excludes pseudo-headers and keeps every value of a repeated name as its own
    `(name, value)` pair in arrival order; `raw_headers` is the block exactly as received.
    """

    def __init__(self, client: ClientSession, state: StreamState, method: str, path: str):
        self._client = client
        self._state = state
        self._content = None
        self.method = method
        self.path = path
        self.raw_headers: RawHeaders = state.headers
        status_text = version = ""
        for name, value in state.headers:
            if name == b":status":
                status_text = value.decode("latin-1")
            elif name == b":version":
                version = value.decode("latin-1")
        code, _, reason = status_text.partition(" ")
        self.status: int = int(code)
        #: The reason phrase sent, else the standard one (SPDY servers often send none).
        self.reason: str = reason or _phrase(self.status)
        self.http_version: str = version
        self._headers: list[tuple[str, str]] | None = None
        #: Resources the server pushed with this response (complete once the body is).
        self.pushes: list[PushedResponse] = state.pushes

    @property
    def headers(self) -> list[tuple[str, str]]:
        """Response headers (no pseudo-headers), one pair per value, in arrival order."""
        if self._headers is None:
            self._headers = _split(self._state.headers)[1]
        return self._headers

    def get_all(self, name: str) -> list[str]:
        """Every value of header `name` (case-insensitive), in order."""
        key = name.lower()
        return [value for header, value in self.headers if header == key]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of header `name`, or `default`."""
        key = name.lower()
        for header, value in self.headers:
            if header == key:
                return value
        return default

    @property
    def trailers(self) -> list[tuple[str, str]]:
        """Headers that arrived in a HEADERS frame after the body started."""
        return _split(self._state.trailers)[1]

    async def text(self, encoding: str = "utf-8") -> str:
        return (await self.aread()).decode(encoding, errors="replace")

    def __repr__(self) -> str:
        return f"<Response stream={self.stream_id} status={self.status} {self.method} {self.path}>"


class PushedResponse(_Body):
    """A resource the server pushed (SYN_STREAM, UNIDIRECTIONAL) with one of our responses."""

    def __init__(self, client: ClientSession, state: StreamState, associated_stream_id: int):
        self._client = client
        self._state = state
        self._content = None
        self.associated_stream_id = associated_stream_id

    @property
    def raw_headers(self) -> RawHeaders:
        return self._state.headers

    @property
    def _pseudo(self) -> dict[str, str]:
        return _split(self._state.headers)[0]

    @property
    def headers(self) -> list[tuple[str, str]]:
        return _split(self._state.headers)[1]

    @property
    def path(self) -> str:
        return self._pseudo.get(":path", "")

    @property
    def url(self) -> str:
        pseudo = self._pseudo
        return f"{pseudo.get(':scheme', 'https')}://{pseudo.get(':host', '')}{self.path}"

    @property
    def status(self) -> int | None:
        """The pushed `:status` (None if the server has not sent one yet)."""
        text = self._pseudo.get(":status")
        if not text:
            return None
        try:
            return int(text.split(" ", 1)[0])
        except ValueError:
            return None

    def get_all(self, name: str) -> list[str]:
        key = name.lower()
        return [value for header, value in self.headers if header == key]

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.get_all(name)
        return values[0] if values else default

    def __repr__(self) -> str:
        return f"<PushedResponse stream={self.stream_id} status={self.status} {self.path}>"


__all__ = ["PushedResponse", "Response"]
