"""Body bytes waiting to go out on one SPDY session, ordered by priority.

A stream gets an `Outbound` only when its body has to wait (for a window or for the
transport); most responses go straight into the engine and never need one. Waiting
streams sit in one FIFO per priority level (0 first, round-robin within a level), or
among the *stalled* ones while their flow-control window is closed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spdyasgi.protocols.spdy_stream import StreamCycle

__all__ = ["Outbound", "SendQueue"]


class Outbound:
    """Body bytes of one stream waiting for windows or for the transport."""

    __slots__ = ("chunks", "cycle", "end", "priority", "queued", "waiter")

    def __init__(self, cycle: StreamCycle, priority: int):
        self.cycle = cycle
        self.priority = priority
        # A list, not a deque: it rarely holds more than one chunk, and a deque's first
        # block alone costs ~600 B per waiting stream.
        self.chunks: list[memoryview] = []
        self.end = False
        self.waiter: asyncio.Future[None] | None = None
        #: In its priority level's FIFO as a live entry (a dropped stream's entry stays
        #: there as a tombstone until popped, so dropping costs O(1)).
        self.queued = False

    def release(self) -> None:
        """Drop what is left and wake the sender waiting on it."""
        self.chunks.clear()
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)


class SendQueue:
    """Which streams have body bytes to send, and in which order to serve them."""

    __slots__ = ("_levels", "queues", "ready_count", "stalled")

    def __init__(self) -> None:
        self.queues: dict[int, Outbound] = {}
        self._levels: list[deque[Outbound]] = [deque() for _ in range(8)]
        self.ready_count = 0
        self.stalled: dict[int, Outbound] = {}

    def get(self, stream_id: int) -> Outbound | None:
        return self.queues.get(stream_id)

    def for_cycle(self, cycle: StreamCycle) -> Outbound:
        """The stream's queue, made on first need."""
        outbound = self.queues.get(cycle.stream_id)
        if outbound is None:
            outbound = self.queues[cycle.stream_id] = Outbound(cycle, cycle.priority)
        return outbound

    def schedule(self, outbound: Outbound) -> None:
        """Mark ready (unless it waits for a window)."""
        if outbound.queued or outbound.cycle.stream_id in self.stalled:
            return
        outbound.queued = True
        self._levels[outbound.priority].append(outbound)
        self.ready_count += 1

    def pop_ready(self) -> Outbound:
        """The next stream to serve: lowest priority number, oldest first."""
        for level in self._levels:
            while level:
                outbound = level.popleft()
                if outbound.queued:  # else the tombstone of a dropped stream
                    outbound.queued = False
                    self.ready_count -= 1
                    return outbound
        raise LookupError("no stream is ready")  # pragma: no cover - callers check first

    def requeue(self, outbound: Outbound) -> None:
        """Back to the end of its level after one frame (round-robin)."""
        self.schedule(outbound)

    def stall(self, outbound: Outbound) -> None:
        self.stalled[outbound.cycle.stream_id] = outbound

    def unstall(self, stream_id: int) -> bool:
        """A window opened (0: the session's): reschedule what waited for it."""
        if not self.stalled:
            return False
        if stream_id == 0:
            waiting = list(self.stalled.values())
            self.stalled.clear()
        else:
            outbound = self.stalled.pop(stream_id, None)
            if outbound is None:
                return False
            waiting = [outbound]
        for outbound in waiting:
            self.schedule(outbound)
        return True

    def forget(self, stream_id: int) -> None:
        """Stop tracking a stream whose queue is empty (it may still finish its FIN)."""
        self.queues.pop(stream_id, None)

    def drop(self, stream_id: int) -> None:
        """The stream is gone: unschedule it and wake its sender."""
        outbound = self.queues.pop(stream_id, None)
        if outbound is None:
            return
        if outbound.queued:  # O(1): its FIFO entry stays behind as a tombstone
            outbound.queued = False
            self.ready_count -= 1
        self.stalled.pop(stream_id, None)
        outbound.release()

    def close(self) -> None:
        """The session is gone: release every sender."""
        for outbound in self.queues.values():
            outbound.queued = False
            outbound.release()
        self.queues.clear()
        self.stalled.clear()
        for level in self._levels:
            level.clear()
        self.ready_count = 0
