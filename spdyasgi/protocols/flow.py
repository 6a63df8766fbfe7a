"""Write-side backpressure shared by the connection protocols."""

from __future__ import annotations

import asyncio

__all__ = ["WriteFlow"]


class WriteFlow:
    """Tracks the transport's pause_writing/resume_writing so ``send()`` can wait.

    One object per connection; ``drain()`` allocates a future only while writing is
    paused, so the common case (transport buffer below its high-water mark) costs a
    single attribute check.
    """

    __slots__ = ("_closed", "_loop", "_waiters", "paused")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiters: list[asyncio.Future[None]] = []
        self._closed = False
        self.paused = False

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._wake()

    def close(self) -> None:
        """The connection is gone: release every waiter for good."""
        self._closed = True
        self.paused = False
        self._wake()

    async def drain(self) -> None:
        """Return once the transport accepts more data (or the connection is closed)."""
        if not self.paused or self._closed:
            return
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
