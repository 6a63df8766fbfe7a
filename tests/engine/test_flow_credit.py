"""Session flow control: every received DATA byte is credited exactly once, whatever
happens to its stream, and no WINDOW_UPDATE lifts the peer's window past 2^31-1."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spdyasgi.spdy import Connection, ConnectionConfig, DataReceived, DataViewed
from spdyasgi.spdy import frames as spdy_frames
from spdyasgi.spdy.constants import MAX_WINDOW
from spdyasgi.spdy.flow import window_increment

from .factory import WINDOW_UPDATE, FrameDecoder, FrameFactory, request_headers

SESSION = 1 << 20
BODY = 70_000  # a frame of 64 KiB or more: delivered piece by piece when split


def _connection(**config: object) -> Connection:
    conn = Connection(ConnectionConfig(client_side=False, session_window_size=SESSION,
                                       **config))  # type: ignore[arg-type]
    conn.initiate_connection()
    conn.data_to_send()
    return conn


def _dead(f: FrameFactory) -> tuple[dict[str, object], bytes, int]:
    return {}, b"", 1  # never opened


def _reset_by_peer(f: FrameFactory) -> tuple[dict[str, object], bytes, int]:
    return {}, f.syn_stream(1) + f.rst(1, 5), 1


def _reset_by_us(f: FrameFactory) -> tuple[dict[str, object], bytes, int]:
    return {}, f.syn_stream(1), -1


def _refused(f: FrameFactory) -> tuple[dict[str, object], bytes, int]:
    return {"max_concurrent_streams": 1}, f.syn_stream(1) + f.syn_stream(3), 3


def _rejected(f: FrameFactory) -> tuple[dict[str, object], bytes, int]:
    return {}, f.syn_stream(1, request_headers(omit=[b":path"])), 1


def _over_content_length(f: FrameFactory) -> tuple[dict[str, object], bytes, int]:
    headers = request_headers(b"/", b"POST", extra=[(b"content-length", b"10")])
    return {}, f.syn_stream(1, headers), 1


def _after_fin(f: FrameFactory) -> tuple[dict[str, object], bytes, int]:
    return {}, f.syn_stream(1, fin=True), 1


def _over_stream_window(f: FrameFactory) -> tuple[dict[str, object], bytes, int]:
    return {"initial_window_size": 65536}, f.syn_stream(1), 1


Setup = Callable[[FrameFactory], tuple[dict[str, object], bytes, int]]
KINDS: dict[str, Setup] = {
    "dead": _dead, "reset-by-peer": _reset_by_peer, "reset-by-us": _reset_by_us,
    "refused": _refused, "rejected": _rejected,
    "over-content-length": _over_content_length, "after-fin": _after_fin,
    "over-stream-window": _over_stream_window,
}


def _run(kind: str, cuts: Sequence[int]) -> None:
    """Feed the setup, then a BODY-byte DATA frame for the dropped stream and a PING, cut
    at `cuts`; the session must get exactly BODY bytes back."""
    f = FrameFactory()
    config, setup, sid = KINDS[kind](f)
    conn = _connection(**{"initial_window_size": 1 << 20, **config})
    conn.receive_data(setup)
    if sid < 0:
        sid = -sid
        conn.reset_stream(sid)
    conn.data_to_send()
    wire = f.data(sid, b"d" * BODY) + f.ping(1)
    before = conn.session_recv_window
    events = []
    last = 0
    for cut in [*sorted(set(cuts)), len(wire)]:
        if last < cut <= len(wire):
            events += conn.receive_data(wire[last:cut])
            last = cut
    assert not [e for e in events if isinstance(e, (DataReceived, DataViewed))], kind
    assert not conn.terminated and not conn.has_partial_input
    frames = FrameDecoder().feed(conn.data_to_send())
    credited = sum(fr.delta for fr in frames if fr.type == WINDOW_UPDATE and fr.stream_id == 0)
    assert credited + conn._session_unacked == BODY, (kind, cuts)
    assert conn.session_recv_window == before - BODY + credited
    assert conn.session_recv_window + conn._session_unacked == SESSION


def _boundary_cuts() -> list[int]:
    """Every split point within 24 bytes of a frame boundary, and a stride over the rest."""
    near = [c for edge in (0, 8, 8 + BODY, 8 + BODY + 12) for c in range(edge - 24, edge + 25)]
    return sorted({c for c in near + list(range(1, 8 + BODY + 12, 997)) if 0 < c < BODY + 20})


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_dropped_data_split_at_one_point_is_credited_once(kind: str) -> None:
    for cut in _boundary_cuts():
        _run(kind, [cut])


@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(1, BODY + 19), max_size=6))
def test_dropped_data_split_anywhere_is_credited_once(kind: str, cuts: list[int]) -> None:
    _run(kind, cuts)


def test_a_peer_flooding_dead_streams_never_sees_a_window_past_2_31() -> None:
    """The peer sends 2^31 + 64 MiB bytes to a dead stream, as fast as its window (as
    it sees it from our WINDOW_UPDATEs) lets it; that window never exceeds 2^31-1."""
    conn = Connection(ConnectionConfig(client_side=False, session_window_size=MAX_WINDOW))
    conn.initiate_connection()
    decoder = FrameDecoder()
    peer_window = 65536

    def read_updates() -> None:
        nonlocal peer_window
        for fr in decoder.feed(conn.data_to_send()):
            if fr.type == WINDOW_UPDATE and fr.stream_id == 0:
                peer_window += fr.delta
                assert peer_window <= MAX_WINDOW

    read_updates()
    assert peer_window == MAX_WINDOW
    chunk = b"\0" * (1 << 20)
    sent = 0
    while sent < (1 << 31) + (64 << 20):
        size = min(0xFFFFFF, peer_window)
        assert size > 0, "the session window stalled"
        conn.receive_data(FrameFactory().data(7, length=size))
        left = size
        while left:
            take = min(left, len(chunk))
            assert conn.receive_data(chunk if take == len(chunk) else chunk[:take]) == []
            left -= take
        peer_window -= size
        sent += size
        read_updates()
    assert not conn.terminated
    assert conn.session_recv_window == peer_window <= MAX_WINDOW


def test_stream_credit_is_capped_and_the_builder_refuses_bad_deltas() -> None:
    assert window_increment(100, 50, 1000) == 50
    assert window_increment(990, 50, 1000) == 10
    assert window_increment(1000, 50, 1000) == 0
    assert window_increment(MAX_WINDOW - 5, 50, 1 << 40) == 5
    assert window_increment(10, 0, 1000) == 0
    for delta in (0, -1, MAX_WINDOW + 1, 1 << 32):
        with pytest.raises(ValueError):
            spdy_frames.window_update(3, 1, delta)
    assert spdy_frames.window_update(3, 1, MAX_WINDOW)[-4:] == b"\x7f\xff\xff\xff"
    # An application acknowledging more than it received cannot lift a stream's window
    # past 2^31-1 either.
    conn = _connection(initial_window_size=MAX_WINDOW)
    f = FrameFactory()
    conn.receive_data(f.syn_stream(1))
    conn.acknowledge_received_data(1, MAX_WINDOW)
    frames = FrameDecoder().feed(conn.data_to_send())
    assert [fr.delta for fr in frames if fr.type == WINDOW_UPDATE and fr.stream_id == 1] == []
    assert conn.streams[1].recv_window == MAX_WINDOW
