"""Rapid-reset policy (CVE-2023-44487): bursts of opened-and-cancelled streams, as media
players make them, never end a session; sustained abuse does, with GOAWAY."""

from __future__ import annotations

from spdyasgi.spdy import (
    ConnectionTerminated,
    Event,
    Limits,
    RequestReceived,
    StreamReset,
    StreamStatus,
)

from .factory import GOAWAY, RST_STREAM, ServerHarness

RESPONSE = [(b":status", b"200"), (b":version", b"HTTP/1.1")]


class Clocked(ServerHarness):
    """A server session whose clock the test moves."""

    def __init__(self, **config: object) -> None:
        self.now = 0.0
        super().__init__(clock=lambda: self.now, **config)
        self.next_id = 1
        self.goaways: list[int] = []

    def drain(self) -> None:
        """Read what the server wrote, as a live peer does."""
        self.goaways += [fr.status for fr in self.out() if fr.type == GOAWAY]

    def open_and_cancel(self, count: int, *, spread: float = 0.1, one_read: bool = False,
                        reply_first: int = 0) -> list[Event]:
        """`count` streams opened, then all reset by the peer within `spread` seconds;
        the first `reply_first` get a SYN_REPLY before their reset."""
        ids = [self.next_id + 2 * i for i in range(count)]
        self.next_id += 2 * count
        syns = [self.f.syn_stream(sid) for sid in ids]
        rsts = [self.f.rst(sid, StreamStatus.CANCEL) for sid in ids]
        if one_read:
            events = list(self.feed(*syns, *rsts))
            self.drain()
            return events
        events = list(self.feed(*syns))
        for sid in ids[:reply_first]:
            self.conn.send_response(sid, RESPONSE)
        self.drain()
        for rst in rsts:
            self.now += spread / count
            events += self.feed(rst)
            self.drain()
        return events


def _goaways(h: ServerHarness) -> list[int]:
    sent = h.goaways if isinstance(h, Clocked) else []
    return sent + [fr.status for fr in h.out() if fr.type == GOAWAY]


def test_media_player_bursts_pass_indefinitely() -> None:
    """50 Range streams opened and cancelled within 100 ms every 3 s, for 3 hours."""
    h = Clocked()
    for _ in range(3600):
        events = h.open_and_cancel(50)
        assert not any(isinstance(e, ConnectionTerminated) for e in events)
        h.now += 3.0
    assert not h.conn.terminated and _goaways(h) == []


def test_a_burst_of_200_per_second_for_10_seconds_passes_again_and_again() -> None:
    h = Clocked()
    for _ in range(5):
        for _ in range(10):  # 200 opened and cancelled in each second
            h.open_and_cancel(200, spread=1.0)
        assert not h.conn.terminated
        h.now += 60.0
    assert _goaways(h) == []


def test_one_read_of_50_open_and_reset_pairs_passes_even_with_a_small_stream_limit() -> None:
    h = Clocked(max_concurrent_streams=2)
    for _ in range(20):
        assert h.open_and_cancel(50, one_read=True) == []  # hidden: opened and reset at once
        h.now += 2.0
    assert not h.conn.terminated


def test_sustained_rapid_reset_ends_the_session() -> None:
    """1,000 opened-and-reset streams a second: over within a few seconds."""
    h = Clocked()
    limits = h.conn.limits
    seconds = 0
    while not h.conn.terminated and seconds < 60:
        events = h.open_and_cancel(1000, spread=1.0)
        seconds += 1
    assert h.conn.terminated
    assert isinstance(events[-1], ConnectionTerminated) and "rapid reset" in events[-1].reason
    # The bucket lasts burst / (1000 - rate) seconds, no longer.
    assert seconds <= limits.reset_burst / (1000 - limits.reset_rate) + 1
    assert _goaways(h) == [1]  # PROTOCOL_ERROR


def test_a_tight_loop_of_syn_and_rst_ends_the_session() -> None:
    h = Clocked()
    for i in range(10_000):
        h.now += 0.0001
        events = h.feed(h.f.syn_stream(2 * i + 1), h.f.rst(2 * i + 1, StreamStatus.CANCEL))
        if events:
            break
    assert isinstance(events[-1], ConnectionTerminated)
    assert h.conn.limits.reset_burst <= i < 2 * h.conn.limits.reset_burst
    assert _goaways(h) == [1]


def test_200_per_second_sustained_ends_the_session_eventually() -> None:
    h = Clocked()
    seconds = 0
    while not h.conn.terminated and seconds < 600:
        h.open_and_cancel(200, spread=1.0)
        seconds += 1
    # 200 a second against a refill of 100: the 2,000 spare last about 20 s.
    assert h.conn.terminated and seconds > 10


def test_resets_after_a_reply_cost_nothing() -> None:
    """A player that cancels a Range stream once data flows did nothing wrong."""
    h = ServerHarness(limits=Limits(reset_burst=5))  # no clock: no refill either
    sid = 1
    for _ in range(500):
        h.request(sid, fin=True)
        h.conn.send_response(sid, RESPONSE)
        assert h.feed(h.f.rst(sid, StreamStatus.CANCEL)) == [
            StreamReset(sid, StreamStatus.CANCEL, True)]
        sid += 2
    assert not h.conn.terminated


def test_streams_the_server_refuses_count_and_other_resets_do_not() -> None:
    h = ServerHarness(limits=Limits(reset_burst=10))
    sid = 1
    for _ in range(50):  # CANCEL / INTERNAL_ERROR from the server: its own choice
        assert isinstance(h.request(sid, fin=True)[0], RequestReceived)
        h.conn.reset_stream(sid, StreamStatus.INTERNAL_ERROR)
        sid += 2
    assert not h.conn.terminated and _goaways(h) == []
    for refused in range(1, 12):  # refused by the server layer (its concurrency limit)
        events = h.request(sid, fin=True)
        assert isinstance(events[0], RequestReceived)
        h.conn.reset_stream(sid, StreamStatus.REFUSED_STREAM)
        sid += 2
        frames = h.out()
        assert [fr.status for fr in frames if fr.type == RST_STREAM] == [
            StreamStatus.REFUSED_STREAM]
        # GOAWAY at once on the 11th.
        assert [fr.status for fr in frames if fr.type == GOAWAY] == ([1] if refused == 11 else [])
    events = h.request(sid, fin=True)
    assert len(events) == 1 and isinstance(events[0], ConnectionTerminated)
    assert "rapid reset" in events[0].reason
    assert h.conn.terminated and _goaways(h) == []  # GOAWAY only once


def test_a_reset_costs_o1_whatever_else_the_read_holds() -> None:
    """256 streams opened, 900 PINGs, then their 256 resets, in one read: the resets
    are filtered out in one pass at the end (the events list is walked once)."""
    h = ServerHarness(max_concurrent_streams=256)
    ids = [2 * i + 1 for i in range(256)]
    blob = b"".join(h.f.syn_stream(sid) for sid in ids)
    blob += b"".join(h.f.ping(2 * i + 1) for i in range(900))
    blob += b"".join(h.f.rst(sid, StreamStatus.CANCEL) for sid in ids)
    events = h.feed(blob)
    assert len(events) == 900 and not any(isinstance(e, RequestReceived) for e in events)
    assert h.conn.open_stream_count == 0
