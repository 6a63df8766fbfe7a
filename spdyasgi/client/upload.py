"""Request bodies: what `content=` accepts, and sending it while the response arrives.

A body goes out within the stream and session send windows. What fits right away is sent
inline by `send()`; the rest is sent by a background task (`state.upload`), so the caller
gets the response as soon as its SYN_REPLY arrives and can read it while the body is still
going up: full duplex, as an echo needs. The body-less path never creates a task.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from ..spdy import StreamStatus
from .errors import RequestTimeout

if TYPE_CHECKING:
    from .response import StreamState
    from .session import ClientSession

#: Largest DATA frame we send (keeps streams interleaved, like the server does).
MAX_DATA_FRAME = 16384
UPLOAD_CHUNK = 65536


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


#: What `request(content=...)` accepts: bytes (a memoryview is sent without copying, so it
#: must not change until sent), str (UTF-8), a path, a binary file object, or a (sync or
#: async) iterable of bytes.
Content = (bytes | bytearray | memoryview | str | os.PathLike[str] | Readable
           | Iterable[bytes] | AsyncIterable[bytes] | None)
Body = bytes | memoryview


async def iter_file(path: str | os.PathLike[str], chunk_size: int = UPLOAD_CHUNK
                    ) -> AsyncIterator[bytes]:
    """Stream a file as request content (`content=iter_file("big.bin")`)."""
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            yield chunk


async def _iter_reader(reader: Readable) -> AsyncIterator[bytes]:
    while chunk := reader.read(UPLOAD_CHUNK):
        yield chunk


async def _iter_sync(items: Iterable[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


def normalize(content: Content) -> Body | AsyncIterable[bytes] | None:
    """`content` as a replayable buffer, or as an async stream of chunks."""
    if content is None or isinstance(content, bytes):
        return content
    if isinstance(content, memoryview):
        return content.cast("B") if content.format != "B" else content
    if isinstance(content, bytearray):
        return bytes(content)
    if isinstance(content, str):
        return content.encode("utf-8")
    if isinstance(content, os.PathLike):
        return iter_file(content)
    if hasattr(content, "read"):
        return _iter_reader(content)  # type: ignore[arg-type]
    if isinstance(content, AsyncIterable):
        return content
    if isinstance(content, Iterable):
        return _iter_sync(content)
    raise TypeError(f"unsupported request content: {type(content).__name__}")


def push_body(session: ClientSession, state: StreamState, data: Body, offset: int,
              last: bool) -> int:
    """Send `data[offset:]` as far as the windows and the socket allow now (FIN with the
    final piece when `last`); returns the new offset."""
    engine = session._engine
    assert engine is not None
    size = len(data)
    view = data if isinstance(data, memoryview) else memoryview(data)
    stream_id = state.stream_id
    while offset < size and not session._writing_paused:
        window = engine.local_flow_control_window(stream_id)
        if window <= 0:
            break
        take = min(window, size - offset, MAX_DATA_FRAME)
        end = offset + take
        engine.send_data(stream_id, data if take == size else view[offset:end],
                         end_stream=last and end == size)
        offset = end
        session._flush()
    return offset


def start_upload(session: ClientSession, state: StreamState,
                 body: Body | AsyncIterable[bytes]) -> None:
    """Send what fits now; leave the rest (or a stream) to a background task."""
    offset = 0
    if not isinstance(body, AsyncIterable):
        offset = push_body(session, state, body, 0, True)
        if offset >= len(body):
            return
    loop = session._loop
    assert loop is not None
    task = loop.create_task(_upload(session, state, body, offset))
    state.upload = task
    session._upload_tasks.add(task)
    task.add_done_callback(session._upload_tasks.discard)


async def _upload(session: ClientSession, state: StreamState,
                  body: Body | AsyncIterable[bytes], offset: int) -> None:
    try:
        if not isinstance(body, AsyncIterable):
            await _send(session, state, body, offset, True)
            return
        iterator = aiter(body)
        try:
            async for chunk in iterator:
                if chunk and not await _send(session, state, chunk, 0, False):
                    return
            if _alive(session, state):
                engine = session._engine
                assert engine is not None
                engine.end_stream(state.stream_id)
                session._schedule_flush()
        finally:
            closer: Any = getattr(iterator, "aclose", None)
            if closer is not None:
                await closer()
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the body source failed: the reader sees why
        if state.error is None:
            state.error = exc
        session._abandon(state)
    finally:
        session._uploading.discard(state)


def _alive(session: ClientSession, state: StreamState) -> bool:
    """May the body still be sent? (An answered stream stops taking it: CANCEL.)"""
    if state.error is not None or state.finished:
        return False
    if state.eof:  # the server answered and finished before taking the whole body
        engine = session._engine
        assert engine is not None
        engine.reset_stream(state.stream_id, StreamStatus.CANCEL)
        session._finish(state)
        session._schedule_flush()
        return False
    return True


async def _send(session: ClientSession, state: StreamState, data: Body, offset: int,
                last: bool) -> bool:
    """Send `data[offset:]`, waiting for windows and the socket; False if the stream died."""
    loop = session._loop
    assert loop is not None
    size = len(data)
    session._uploading.add(state)
    while _alive(session, state):
        offset = push_body(session, state, data, offset, last)
        state.last_activity = loop.time()
        if offset >= size:
            return True
        waiter: asyncio.Future[None] = loop.create_future()
        if session._writing_paused:
            session._drain_waiters.append(waiter)
        else:
            state.send_waiter = waiter
        try:
            await _bounded(session, state, waiter)
        finally:
            state.send_waiter = None
    return False


async def _bounded(session: ClientSession, state: StreamState,
                   waiter: asyncio.Future[None]) -> None:
    """Await `waiter`, but not past the request's deadline (then the stream is abandoned)."""
    loop = session._loop
    assert loop is not None
    if state.deadline is None:
        await waiter
        return
    expired: list[bool] = []

    def expire() -> None:
        if not waiter.done():
            expired.append(True)
            waiter.set_result(None)

    handle = loop.call_later(max(state.deadline - loop.time(), 0.0), expire)
    try:
        await waiter
    finally:
        handle.cancel()
    if expired:
        if state.error is None:
            state.error = RequestTimeout(
                f"request on stream {state.stream_id} timed out sending its body")
        session._abandon(state)


__all__ = ["MAX_DATA_FRAME", "Content", "iter_file", "normalize", "push_body",
           "start_upload"]
