"""The send queue's order and bookkeeping when streams are dropped (O(1) tombstones)."""

from __future__ import annotations

from typing import Any

from spdyasgi.protocols.spdy_sendqueue import SendQueue


class _Cycle:
    def __init__(self, stream_id: int, priority: int = 3) -> None:
        self.stream_id = stream_id
        self.priority = priority


def _queue(sendq: SendQueue, stream_id: int, priority: int = 3) -> Any:
    outbound = sendq.for_cycle(_Cycle(stream_id, priority))  # type: ignore[arg-type]
    outbound.chunks.append(memoryview(b"x"))
    sendq.schedule(outbound)
    return outbound


def _drain(sendq: SendQueue) -> list[int]:
    order = []
    while sendq.ready_count:
        order.append(sendq.pop_ready().cycle.stream_id)
    return order


def test_dropped_streams_are_skipped_and_counted_once() -> None:
    sendq = SendQueue()
    for stream_id in (1, 3, 5, 7):
        _queue(sendq, stream_id)
    _queue(sendq, 9, priority=0)
    sendq.drop(3)
    sendq.drop(9)
    sendq.drop(3)  # twice: a no-op
    assert sendq.ready_count == 3
    assert _drain(sendq) == [1, 5, 7]
    assert sendq.ready_count == 0


def test_scheduling_twice_queues_once_and_round_robin_holds() -> None:
    sendq = SendQueue()
    first = _queue(sendq, 1)
    _queue(sendq, 3)
    sendq.schedule(first)  # already queued
    assert sendq.ready_count == 2
    served = sendq.pop_ready()
    assert served is first
    sendq.requeue(served)  # one frame sent, back to the end of its level
    assert _drain(sendq) == [3, 1]


def test_a_stream_queued_again_after_a_drop_is_served_once() -> None:
    sendq = SendQueue()
    _queue(sendq, 1)
    _queue(sendq, 3)
    sendq.drop(1)  # its FIFO entry stays behind as a tombstone
    _queue(sendq, 1)  # a new queue for the same stream id
    assert sendq.ready_count == 2
    assert _drain(sendq) == [3, 1]


def test_dropping_a_stalled_stream_forgets_it() -> None:
    sendq = SendQueue()
    outbound = _queue(sendq, 1)
    assert sendq.pop_ready() is outbound
    sendq.stall(outbound)
    sendq.drop(1)
    assert not sendq.unstall(1) and sendq.ready_count == 0
    assert not outbound.chunks  # released
