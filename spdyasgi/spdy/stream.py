"""Per-stream state: half-close flags, windows and request bookkeeping.

States follow the spec's view from one endpoint: a stream is *open* until each side has sent
FIN (`remote_closed`, `local_closed`); it is closed when both have, or on RST either way, at
which point the connection forgets it (keeping only a short memory of recently closed ids).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .accel import nvfast


class Stream:
    __slots__ = (
        "associated_id",
        "content_length",
        "empty_frames",
        "local_closed",
        "priority",
        "pushes",
        "received",
        "recv_window",
        "rejected",
        "remote_closed",
        "reply_received",
        "reply_sent",
        "send_window",
        "stream_id",
        "unacked",
    )

    def __init__(self, stream_id: int, priority: int, send_window: int, recv_window: int):
        self.stream_id = stream_id
        self.priority = priority
        self.send_window = send_window
        self.recv_window = recv_window
        self.unacked = 0
        self.remote_closed = False
        self.local_closed = False
        self.reply_sent = False
        self.reply_received = False
        self.rejected = False
        self.associated_id = 0
        self.content_length: int | None = None
        self.received = 0
        self.empty_frames = 0
        self.pushes: list[int] | None = None


#: The pure-Python class, kept under this name when the C one replaces it below (tests
#: hold the two to the same fields and defaults).
PyStream = Stream
if not TYPE_CHECKING and nvfast is not None:
    Stream = nvfast.Stream  # the same fields, made in C: one is made per request


class ClosedStreams:
    """A bounded memory of recently closed stream ids and how each one ended.

    Lets the connection tell "DATA for a stream we just reset" (drop quietly) from "DATA
    after the peer's FIN" (STREAM_ALREADY_CLOSED) without remembering every id forever.
    """

    RESET = 1
    FINISHED = 2

    __slots__ = ("_ids", "_limit", "_next", "_ring")

    def __init__(self, limit: int):
        self._ids: dict[int, int] = {}
        self._limit = limit
        # Ids in the order they came; once full, the oldest is overwritten first. (Evicting
        # a dict's first key instead costs a scan over the holes earlier deletions left.)
        # Grown as streams close, so an idle session pays nothing for it.
        self._ring: list[int] = []
        self._next = 0

    def add(self, stream_id: int, how: int) -> None:
        if not self._limit:
            return
        ids = self._ids
        if stream_id in ids:  # a finished stream reset afterwards: keep its place
            ids[stream_id] = how
            return
        ids[stream_id] = how
        ring = self._ring
        if len(ring) < self._limit:
            ring.append(stream_id)
            return
        index = self._next
        del ids[ring[index]]
        ring[index] = stream_id
        index += 1
        self._next = index if index < self._limit else 0

    def get(self, stream_id: int) -> int | None:
        return self._ids.get(stream_id)

    def __len__(self) -> int:
        return len(self._ids)
