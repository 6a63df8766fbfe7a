"""The 44 edge cases of spdy31-checklist.md §15, against a server-role engine.

Each test feeds exact bytes (built by `FrameFactory`) into `Connection` and asserts the exact
events and the exact frames written back (parsed by `FrameDecoder`).
"""

from __future__ import annotations

import hashlib
import tracemalloc
import zlib

import pytest

from spdyasgi.spdy import (
    ConnectionTerminated,
    DataReceived,
    FlowControlBlocked,
    GoAwayReceived,
    HeadersReceived,
    LocalProtocolError,
    PingReceived,
    RequestReceived,
    RequestRejected,
    SettingsReceived,
    StreamClosedError,
    StreamReset,
    Version,
    WindowUpdated,
)
from spdyasgi.spdy.dictionary import SPDY2_DICTIONARY, SPDY3_DICTIONARY
from spdyasgi.spdy.headers import HeaderCompressor, HeaderDecompressor

from .factory import (
    DATA,
    GOAWAY,
    HEADERS,
    PING,
    RST_STREAM,
    SETTINGS,
    SYN_REPLY,
    SYN_STREAM,
    UNIDIRECTIONAL,
    WINDOW_UPDATE,
    FrameFactory,
    ServerHarness,
    decode_frames,
    frame_types,
    request_headers,
)

MAXW = 2**31 - 1
RESPONSE = [(b":status", b"200"), (b":version", b"HTTP/1.1")]
PUSH = [(b":scheme", b"https"), (b":host", b"example.com"), (b":path", b"/style.css"),
        (b":status", b"200"), (b":version", b"HTTP/1.1")]


def assert_goaway(h: ServerHarness, events: list, status: int = 1, last_good: int = 0) -> None:
    assert len(events) >= 1
    term = events[-1]
    assert isinstance(term, ConnectionTerminated)
    assert (term.status, term.last_good_stream_id) == (status, last_good)
    assert not any(isinstance(e, ConnectionTerminated) for e in events[:-1])
    frames = h.out()
    assert [(f.type, f.last_good, f.status) for f in frames if f.type == GOAWAY] == [
        (GOAWAY, last_good, status)
    ]
    assert h.conn.terminated
    assert h.feed(h.f.ping(1)) == []  # everything after the GOAWAY is ignored


def send_available(h: ServerHarness, stream_id: int, remaining: int, chunk: int = 16384) -> int:
    """Send as much as the windows allow (server app loop); returns bytes sent."""
    sent = 0
    while remaining > 0:
        window = h.conn.local_flow_control_window(stream_id)
        if window <= 0:
            break
        n = min(window, chunk, remaining)
        h.conn.send_data(stream_id, b"x" * n)
        sent += n
        remaining -= n
    return sent


def data_bytes(frames: list, stream_id: int | None = None) -> int:
    return sum(len(f.payload) for f in frames
               if f.type == DATA and (stream_id is None or f.stream_id == stream_id))


# ----------------------------------------------------------------------------- 1-4


def test_edge_01_byte_at_a_time() -> None:
    f = FrameFactory()
    body = bytes(range(256)) * 40
    phase1 = b"".join([
        f.settings([(4, 100), (7, 1 << 20)]),
        f.syn_stream(1, request_headers(b"/upload", b"POST",
                                        extra=[(b"content-length", b"10240")])),
        f.data(1, body[:5000]),
        f.syn_stream(3, request_headers(b"/b"), priority=5),
        f.data(1, body[5000:], fin=True),
        f.ping(1),
        f.data(3, b"abc"),
    ])
    phase2 = b"".join([
        f.window_update(0, 1000),
        f.window_update(1, 2000),
        f.headers(3, [(b"x-trailer", b"t")]),
        f.ping(3),
        f.rst(3, 5),
        f.data(3, b"late"),
        f.goaway(0, 0),
    ])

    def run(split: bool) -> tuple[list, bytes]:
        h = ServerHarness(initiate=True)
        out = h.conn.data_to_send()
        events: list = []

        def feed(data: bytes) -> None:
            if split:
                for i in range(len(data)):
                    events.extend(h.conn.receive_data(data[i:i + 1]))
            else:
                events.extend(h.conn.receive_data(data))

        feed(phase1)
        h.conn.send_response(1, RESPONSE)
        h.conn.send_data(1, b"ok", end_stream=True)
        h.conn.acknowledge_received_data(1, len(body))
        out += h.conn.data_to_send()
        feed(phase2)
        out += h.conn.data_to_send()
        return events, out

    events_one, out_one = run(False)
    events_split, out_split = run(True)
    assert events_one == events_split
    assert out_one == out_split
    kinds = [type(e).__name__ for e in events_one]
    assert kinds == [
        "SettingsReceived", "RequestReceived", "DataReceived", "RequestReceived",
        "DataReceived", "PingReceived", "DataReceived",
        "WindowUpdated", "HeadersReceived", "PingReceived", "StreamReset",
        "GoAwayReceived",  # WINDOW_UPDATE for the finished stream 1 is ignored
    ]
    assert b"".join(e.data for e in events_one if isinstance(e, DataReceived)
                    and e.stream_id == 1) == body
    frames = decode_frames(out_one)
    assert [f.type for f in frames] == [PING, SYN_REPLY, DATA, PING]


def test_edge_02_shared_zlib_context() -> None:
    h = ServerHarness()
    b1 = h.f.block(request_headers(b"/one"))
    b2 = h.f.block(request_headers(b"/two"))
    assert b1[0] & 0x0F == 8 and b1[1] & 0x20  # zlib header: deflate, FDICT set
    assert b1[2:6] == bytes.fromhex("e3c6a7c2")  # DICTID in the first block only
    assert bytes.fromhex("e3c6a7c2") not in b2[:6]
    events = h.feed(h.f.syn_stream(1, block=b1, fin=True), h.f.syn_stream(3, block=b2, fin=True))
    assert events == [
        RequestReceived(1, request_headers(b"/one"), 0, True),
        RequestReceived(3, request_headers(b"/two"), 0, True),
    ]
    assert h.out() == []


def test_edge_03_v2_dictionary_on_v3_session() -> None:
    h = ServerHarness()
    h.f = FrameFactory(dictionary=SPDY2_DICTIONARY)
    events = h.feed(h.f.syn_stream(1, fin=True))
    assert len(events) == 1
    assert_goaway(h, events, 1, 0)


def test_edge_04_refused_stream_still_inflated() -> None:
    h = ServerHarness(max_concurrent_streams=1)
    assert h.feed(h.f.syn_stream(1, request_headers(b"/first"))) == [
        RequestReceived(1, request_headers(b"/first"), 0, False)]
    assert h.feed(h.f.syn_stream(3, request_headers(b"/refused", extra=[(b"x-a", b"1")]))) == []
    assert [(f.type, f.stream_id, f.status) for f in h.out()] == [(RST_STREAM, 3, 3)]
    assert h.feed(h.f.rst(1, 5)) == [StreamReset(1, 5, True)]
    events = h.feed(h.f.syn_stream(5, request_headers(b"/after", extra=[(b"x-a", b"1")]),
                                   fin=True))
    assert events == [RequestReceived(5, request_headers(b"/after", extra=[(b"x-a", b"1")]),
                                      0, True)]
    assert h.out() == []


# ----------------------------------------------------------------------------- 5-12


def test_edge_05_bad_syn_stream_ids() -> None:
    for prefix, bad, last_good in [((), 0, 0), ((), 2, 0), ((5,), 3, 5), ((5,), 4, 5)]:
        h = ServerHarness()
        for sid in prefix:
            assert len(h.request(sid)) == 1
        events = h.feed(h.f.syn_stream(bad, fin=True))
        assert len(events) == 1
        assert_goaway(h, events, 1, last_good)


def test_edge_06_repeated_stream_id() -> None:
    h = ServerHarness()
    assert h.request(1) == [RequestReceived(1, request_headers(), 0, True)]
    events = h.request(1)
    assert len(events) == 1
    assert isinstance(events[0], StreamReset)
    assert (events[0].stream_id, events[0].status, events[0].remote) == (1, 1, False)
    assert [(f.type, f.stream_id, f.status) for f in h.out()] == [(RST_STREAM, 1, 1)]
    events = h.feed(h.f.syn_stream(3, request_headers(b"/next"), fin=True), h.f.ping(1))
    assert events == [RequestReceived(3, request_headers(b"/next"), 0, True), PingReceived(1)]
    assert [f.type for f in h.out()] == [PING]


def test_edge_06_repeated_stream_id_with_a_bad_block_keeps_the_zlib_stream() -> None:
    """The repeated id decides the answer even when its block is bad too, and that block
    is still inflated: the next request's block decodes against the same context."""
    h = ServerHarness()
    assert h.request(1) == [RequestReceived(1, request_headers(), 0, True)]
    events = h.feed(h.f.syn_stream(1, [(b"", b"empty name")], fin=True))
    assert [(type(e), e.stream_id, e.status) for e in events] == [(StreamReset, 1, 1)]
    assert [(f.type, f.stream_id, f.status) for f in h.out()] == [(RST_STREAM, 1, 1)]
    assert h.request(3, request_headers(b"/next")) == [
        RequestReceived(3, request_headers(b"/next"), 0, True)]


def test_edge_07_unidirectional_or_associated_client_stream() -> None:
    h = ServerHarness()
    assert h.feed(h.f.syn_stream(1, unidirectional=True, fin=True)) == []
    assert h.feed(h.f.syn_stream(3, assoc=1, fin=True)) == []
    assert [(f.type, f.stream_id, f.status) for f in h.out()] == [
        (RST_STREAM, 1, 1), (RST_STREAM, 3, 1)]
    assert h.request(5) == [RequestReceived(5, request_headers(), 0, True)]
    assert h.conn.open_stream_count == 1


def test_edge_08_missing_pseudo_headers() -> None:
    h = ServerHarness()
    sid = 1
    for name in (b":method", b":path", b":version", b":host", b":scheme"):
        events = h.feed(h.f.syn_stream(sid, request_headers(omit=[name]), fin=True))
        assert events == [RequestRejected(sid, 400, f"missing {name.decode()}")]
        frames = h.out()
        assert [(f.type, f.stream_id, f.fin) for f in frames] == [(SYN_REPLY, sid, True)]
        assert frames[0].headers == [(b":status", b"400"), (b":version", b"HTTP/1.1"),
                                     (b"content-length", b"0")]
        assert not h.conn.stream_is_open(sid)
        sid += 2
    assert h.feed(h.f.ping(7)) == [PingReceived(7)]
    frames = h.out()
    assert [(f.type, f.ping_id) for f in frames] == [(PING, 7)]


def test_edge_09_bad_header_names() -> None:
    h = ServerHarness()
    base = request_headers()
    cases = [[*base, (b"X-Upper", b"1")], [*base, (b"", b"1")],
             [*base, (b"accept", b"a"), (b"accept", b"b")]]
    sid = 1
    for headers in cases:
        assert h.feed(h.f.syn_stream(sid, headers, fin=True)) == []
        assert [(f.type, f.stream_id, f.status) for f in h.out()] == [(RST_STREAM, sid, 1)]
        sid += 2
    assert h.request(sid) == [RequestReceived(sid, base, 0, True)]


def test_edge_10_multi_values() -> None:
    h = ServerHarness()
    sid = 1
    for bad in (b"\x00a", b"a\x00", b"a\x00\x00b"):
        assert h.feed(h.f.syn_stream(sid, request_headers(extra=[(b"x-v", bad)]),
                                     fin=True)) == []
        assert [(f.type, f.stream_id, f.status) for f in h.out()] == [(RST_STREAM, sid, 1)]
        sid += 2
    events = h.request(sid, request_headers(extra=[(b"x-v", b"a\x00b"), (b"x-e", b"")]))
    assert events == [RequestReceived(sid, request_headers(
        extra=[(b"x-v", b"a"), (b"x-v", b"b"), (b"x-e", b"")]), 0, True)]


def test_edge_11_huge_nv_count() -> None:
    h = ServerHarness()
    block = h.f.compress(b"\xff\xff\xff\xff")
    tracemalloc.start()
    try:
        events = h.feed(h.f.syn_stream(1, block=block, fin=True))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert events == []
    assert peak < 256 * 1024
    assert [(f.type, f.stream_id, f.status) for f in h.out()] == [(RST_STREAM, 1, 1)]
    assert h.request(3) == [RequestReceived(3, request_headers(), 0, True)]


def test_edge_12_decompression_bomb() -> None:
    h = ServerHarness()
    h.f = FrameFactory(raw_zlib=True)
    big = request_headers(extra=[(b"x-bomb", b"a" * 70000)])
    block = h.f.block(big)
    assert len(block) < 200
    # Inflating stops at the limit, which leaves the shared zlib context unusable: the
    # session ends (see test_header_bomb.py for the bound on the work done).
    events = h.feed(h.f.syn_stream(1, block=block, fin=True))
    assert_goaway(h, events, 1, 0)
    assert "more than 65536 bytes" in events[-1].reason  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- 13-18


def test_edge_13_oversized_syn_stream() -> None:
    h = ServerHarness()
    header = h.f.control(SYN_STREAM, b"", length=65537)
    events = h.feed(header + b"\x00\x00\x00\x01")
    assert len(h.conn._inbuf) == 0
    assert len(events) == 1
    assert_goaway(h, events, 1, 0)


def test_edge_14_unknown_control_types_skipped() -> None:
    h = ServerHarness()
    junk = bytes(range(200))
    events = h.feed(
        h.f.control(0xF000, junk),
        h.f.control(10, junk),  # CREDENTIAL: unknown under 3.1
        h.f.control(5, junk),  # NOOP: unknown under 3
        h.f.control(0x7FF, b""),
    )
    assert events == []
    # An unknown type above the frame cap is skipped without buffering it.
    big = h.f.control(0x1234, b"", length=1_000_000)
    assert h.feed(big + b"z" * 1000) == []
    assert len(h.conn._inbuf) == 0
    for _ in range(99):
        assert h.feed(b"z" * 10_000) == []
        assert len(h.conn._inbuf) == 0
    assert h.feed(b"z" * 9000, h.f.ping(1), h.f.syn_stream(1, fin=True)) == [
        PingReceived(1), RequestReceived(1, request_headers(), 0, True)]
    assert [f.type for f in h.out()] == [PING]


def test_edge_15_bad_fixed_lengths() -> None:
    f = FrameFactory()
    for frame in (f.control(RST_STREAM, bytes(12)), f.control(PING, bytes(8)),
                  f.control(WINDOW_UPDATE, bytes(4)), f.control(GOAWAY, bytes(4))):
        h = ServerHarness()
        events = h.feed(frame)
        assert len(events) == 1
        assert_goaway(h, events, 1, 0)


def test_edge_16_ping_echo() -> None:
    h = ServerHarness()
    h.request(1)
    h.conn.send_response(1, RESPONSE)
    h.conn.send_data(1, b"pending data")
    ping = h.f.ping(1)
    assert h.feed(ping) == [PingReceived(1)]
    out = h.conn.data_to_send()
    assert out[:12] == ping  # identical frame, ahead of queued SYN_REPLY and DATA
    frames = h.decoder.feed(out)
    assert [f.type for f in frames] == [PING, SYN_REPLY, DATA]
    assert h.feed(h.f.ping(2)) == []
    assert h.conn.data_to_send() == b""


def test_edge_17_settings_bad_count() -> None:
    f = FrameFactory()
    cases = [
        f.settings([(4, 100)], count=2),
        f.settings([(4, 100), (7, 70000)], count=1),
        f.settings([(4, 100)], count=0xFFFFFFFF),
        f.control(SETTINGS, b"\x00\x00"),
    ]
    for frame in cases:
        h = ServerHarness()
        tracemalloc.start()
        try:
            events = h.feed(frame)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 256 * 1024
        assert len(events) == 1
        assert_goaway(h, events, 1, 0)


def test_edge_18_settings_first_value_wins() -> None:
    h = ServerHarness()
    h.request(1, fin=False)
    events = h.feed(h.f.settings([(7, 100_000), (7, 200_000)]))
    assert events == [SettingsReceived({7: 100_000}, False)]
    assert h.conn.remote_initial_window == 100_000
    assert h.conn.streams[1].send_window == 100_000
    assert h.out() == []


# ----------------------------------------------------------------------------- 19-24


def test_edge_19_window_goes_negative() -> None:
    h = ServerHarness()
    h.feed(h.f.window_update(0, 10_000_000))
    h.request(1)
    h.conn.send_response(1, RESPONSE)
    h.conn.send_data(1, b"x" * 60000)
    assert h.conn.local_flow_control_window(1) == 5536
    events = h.feed(h.f.settings([(7, 16384)]))
    assert events == [SettingsReceived({7: 16384}, False)]
    assert h.conn.local_flow_control_window(1) == 5536 - 49152
    with pytest.raises(FlowControlBlocked):
        h.conn.send_data(1, b"x")
    assert send_available(h, 1, 1 << 20) == 0
    assert h.feed(h.f.window_update(1, 43616)) == [WindowUpdated(1, 43616)]
    assert h.conn.local_flow_control_window(1) == 0
    assert send_available(h, 1, 1 << 20) == 0
    assert h.feed(h.f.window_update(1, 1000)) == [WindowUpdated(1, 1000)]
    with pytest.raises(FlowControlBlocked):
        h.conn.send_data(1, b"x" * 1001)
    assert send_available(h, 1, 1 << 20) == 1000
    frames = h.out()
    assert data_bytes(frames, 1) == 61000
    # An empty DATA+FIN is always allowed, even with no window.
    h.conn.end_stream(1)
    assert [(f.type, f.fin, len(f.payload)) for f in h.out()] == [(DATA, True, 0)]


def test_edge_20_initial_window_overflow() -> None:
    h = ServerHarness()
    h.request(1)
    h.request(3)
    assert h.feed(h.f.window_update(1, MAXW - 65536)) == [WindowUpdated(1, MAXW - 65536)]
    events = h.feed(h.f.settings([(7, 65537)]))
    assert len(events) == 2
    assert isinstance(events[0], StreamReset)
    assert (events[0].stream_id, events[0].status, events[0].remote) == (1, 7, False)
    assert events[1] == SettingsReceived({7: 65537}, False)
    assert [(f.type, f.stream_id, f.status) for f in h.out()] == [(RST_STREAM, 1, 7)]
    assert h.conn.streams[3].send_window == 65537
    events = h.feed(h.f.settings([(7, 0x80000000)]))
    assert_goaway(h, events, 1, 3)


def test_edge_21_window_update_overflow() -> None:
    h = ServerHarness()
    h.request(1)
    events = h.feed(h.f.window_update(1, MAXW))
    assert len(events) == 1 and isinstance(events[0], StreamReset)
    assert (events[0].stream_id, events[0].status) == (1, 7)
    assert [(f.type, f.stream_id, f.status) for f in h.out()] == [(RST_STREAM, 1, 7)]
    assert h.feed(h.f.window_update(0, MAXW - 65536)) == [WindowUpdated(0, MAXW - 65536)]
    events = h.feed(h.f.window_update(0, 1))
    assert_goaway(h, events, 1, 1)


def test_edge_22_window_update_zero_delta() -> None:
    h = ServerHarness()
    h.request(1)
    h.request(3)
    h.conn.send_response(3, RESPONSE, end_stream=True)  # 3 is now closed
    h.out()
    assert h.feed(h.f.window_update(99, 0), h.f.window_update(99, 5),
                  h.f.window_update(3, 0), h.f.window_update(3, 7)) == []
    assert h.out() == []
    events = h.feed(h.f.window_update(1, 0))
    assert len(events) == 1 and isinstance(events[0], StreamReset)
    assert (events[0].stream_id, events[0].status) == (1, 1)
    assert [(f.type, f.stream_id, f.status) for f in h.out()] == [(RST_STREAM, 1, 1)]
    events = h.feed(h.f.window_update(0, 0))
    assert_goaway(h, events, 1, 3)


def test_edge_23_response_stalls_at_window() -> None:
    h = ServerHarness()
    h.request(1)
    h.conn.send_response(1, RESPONSE)
    remaining = 1 << 20
    remaining -= send_available(h, 1, remaining)
    frames = h.out()
    assert data_bytes(frames) == 65536
    assert send_available(h, 1, remaining) == 0
    events = h.feed(h.f.window_update(1, 1000), h.f.window_update(0, 1000))
    assert events == [WindowUpdated(1, 1000), WindowUpdated(0, 1000)]
    remaining -= send_available(h, 1, remaining)
    assert data_bytes(h.out()) == 1000
    assert remaining == (1 << 20) - 66536


def test_edge_24_session_window_caps_all_streams() -> None:
    h = ServerHarness()
    h.feed(h.f.settings([(7, 1 << 20)]))
    h.request(1)
    h.request(3)
    for sid in (1, 3):
        h.conn.send_response(sid, RESPONSE)
    total = 0
    for _ in range(10):
        for sid in (1, 3):
            total += send_available(h, sid, 1 << 20, chunk=5000)
    assert total == 65536
    assert data_bytes(h.out()) == 65536
    assert h.feed(h.f.window_update(0, 10000)) == [WindowUpdated(0, 10000)]
    total = sum(send_available(h, sid, 1 << 20, chunk=3000) for sid in (1, 3, 1, 3))
    assert total == 10000
    assert h.conn.streams[1].send_window + h.conn.streams[3].send_window == 2 * (1 << 20) - 75536


# ----------------------------------------------------------------------------- 25-30


def test_edge_25_upload_credits_windows() -> None:
    h = ServerHarness(initiate=True)
    body = hashlib.sha256(b"seed").digest() * (32768 + 1)
    body = body[: 1 << 20]
    assert h.request(1, request_headers(b"/up", b"POST"), fin=False)
    stream_window = session_window = 65536
    sent = 0
    received = bytearray()
    stream_updates = session_updates = 0
    while sent < len(body):
        n = min(16384, stream_window, session_window, len(body) - sent)
        assert n > 0, "client stalled: server did not credit windows"
        fin = sent + n == len(body)
        events = h.feed(h.f.data(1, body[sent:sent + n], fin=fin))
        sent += n
        stream_window -= n
        session_window -= n
        for ev in events:
            assert isinstance(ev, DataReceived)
            received += ev.data
            h.conn.acknowledge_received_data(1, len(ev.data))  # the app read it
        for f in h.out():
            assert f.type == WINDOW_UPDATE
            if f.stream_id == 0:
                session_window += f.delta
                session_updates += 1
            else:
                assert f.stream_id == 1
                assert not fin, "WINDOW_UPDATE after the client's FIN"
                stream_window += f.delta
                stream_updates += 1
    assert hashlib.sha256(received).digest() == hashlib.sha256(body).digest()
    assert stream_updates >= 30 and session_updates >= 30
    assert h.conn.streams[1].remote_closed


def test_edge_26_client_overruns_windows() -> None:
    h = ServerHarness(session_window_size=1 << 20, initiate=True)
    h.request(1, fin=False)
    events = h.feed(h.f.data(1, b"a" * 40000), h.f.data(1, b"b" * 30000))
    assert isinstance(events[0], DataReceived)
    assert isinstance(events[1], StreamReset)
    assert (events[1].stream_id, events[1].status, events[1].remote) == (1, 7, False)
    assert [(f.type, f.stream_id, f.status) for f in h.out()] == [(RST_STREAM, 1, 7)]

    h = ServerHarness(initial_window_size=1 << 20, initiate=True)
    h.request(1, fin=False)
    events = h.feed(h.f.data(1, b"a" * 40000), h.f.data(1, b"b" * 30000))
    assert isinstance(events[0], DataReceived)
    assert_goaway(h, events, 1, 1)
    # A single frame over the session window is refused before being buffered.
    h = ServerHarness(initiate=True)
    h.request(1, fin=False)
    events = h.feed(h.f.data(1, length=65537))
    assert_goaway(h, events, 1, 1)


def test_edge_27_data_on_unopened_stream() -> None:
    h = ServerHarness()
    assert h.feed(h.f.data(7, b"q" * 40000)) == []
    frames = h.out()
    assert [(f.type, f.stream_id, f.status, f.delta) for f in frames] == [
        (WINDOW_UPDATE, 0, 0, 40000), (RST_STREAM, 7, 2, 0)]
    assert h.conn.session_recv_window == 65536
    # Further DATA for it is dropped quietly (no RST storm), still credited.
    assert h.feed(h.f.data(7, b"q" * 40000)) == []
    assert [(f.type, f.delta) for f in h.out()] == [(WINDOW_UPDATE, 40000)]


def test_edge_28_data_after_fin_and_stream_zero() -> None:
    h = ServerHarness()
    h.request(1)
    events = h.feed(h.f.data(1, b"late"))
    assert len(events) == 1 and isinstance(events[0], StreamReset)
    assert (events[0].stream_id, events[0].status, events[0].remote) == (1, 9, False)
    assert [(f.type, f.stream_id, f.status) for f in h.out()] == [(RST_STREAM, 1, 9)]
    events = h.feed(h.f.data(0, b"zero"))
    assert_goaway(h, events, 1, 1)


def test_edge_29_empty_data_fin_ends_body() -> None:
    h = ServerHarness()
    h.request(1, fin=False)
    events = h.feed(h.f.data(1, b"abc"), h.f.data(1, b"", fin=True))
    assert events == [DataReceived(1, b"abc", False), DataReceived(1, b"", True)]
    assert h.conn.streams[1].remote_closed
    assert h.out() == []


def test_edge_30_content_length_mismatch() -> None:
    h = ServerHarness()
    headers = request_headers(b"/p", b"POST", extra=[(b"content-length", b"10")])
    events = h.feed(h.f.syn_stream(1, headers), h.f.data(1, b"123456789", fin=True))
    assert events == [
        RequestReceived(1, headers, 0, False),
        DataReceived(1, b"123456789", True),
        RequestRejected(1, 400, "content-length 10 but 9 body bytes"),
    ]
    frames = h.out()
    assert [(f.type, f.stream_id, f.fin) for f in frames] == [(SYN_REPLY, 1, True)]
    assert frames[0].header(b":status") == b"400"
    assert not h.conn.stream_is_open(1)


# ----------------------------------------------------------------------------- 31-38


def test_edge_31_client_cancel_mid_response() -> None:
    h = ServerHarness()
    h.request(1)
    h.conn.send_response(1, RESPONSE)
    h.conn.send_data(1, b"part")
    h.out()
    assert h.feed(h.f.rst(1, 5)) == [StreamReset(1, 5, True)]
    assert h.out() == []  # never answer RST with RST
    with pytest.raises(StreamClosedError):
        h.conn.send_data(1, b"more")
    h.conn.reset_stream(1)  # no-op on a gone stream
    assert h.conn.data_to_send() == b""
    assert h.feed(h.f.data(1, b"x")) == []  # late DATA dropped quietly
    assert h.out() == []


def test_edge_32_cancel_associated_stops_pushes() -> None:
    h = ServerHarness()
    h.request(1)
    h.conn.send_response(1, RESPONSE)
    assert h.conn.push_stream(1, PUSH) == 2
    assert h.conn.push_stream(1, PUSH) == 4
    h.out()
    events = h.feed(h.f.rst(1, 5))
    assert events == [
        StreamReset(1, 5, True),
        StreamReset(2, 5, False, "associated stream was reset"),
        StreamReset(4, 5, False, "associated stream was reset"),
    ]
    assert [(f.type, f.stream_id, f.status) for f in h.out()] == [
        (RST_STREAM, 2, 5), (RST_STREAM, 4, 5)]
    assert h.conn.open_stream_count == 0
    with pytest.raises(StreamClosedError):
        h.conn.send_data(2, b"x")


def test_edge_33_server_push() -> None:
    h = ServerHarness()
    h.request(1, priority=3)
    h.request(3)
    h.conn.send_response(1, RESPONSE)
    assert h.conn.push_stream(1, PUSH) == 2
    assert h.conn.push_stream(1, PUSH, priority=1) == 4  # clamped to the assoc priority
    h.conn.send_data(2, b"body{}", end_stream=True)
    frames = h.out()
    assert [(f.type, f.stream_id) for f in frames] == [
        (SYN_REPLY, 1), (SYN_STREAM, 2), (SYN_STREAM, 4), (DATA, 2)]
    for f in frames[1:3]:
        assert f.flags == UNIDIRECTIONAL and f.assoc == 1 and f.priority == 3
        assert f.headers == PUSH
    h.conn.send_data(1, b"", end_stream=True)
    assert h.conn.push_stream(1, PUSH) is None  # associated stream finished
    # The client's MAX_CONCURRENT_STREAMS limits pushes (4 is still open).
    h.conn.send_response(3, RESPONSE)
    h.feed(h.f.settings([(4, 1)]))
    assert h.conn.push_stream(3, PUSH) is None
    h.conn.send_data(4, b"", end_stream=True)
    assert h.conn.push_stream(3, PUSH) == 6
    h.feed(h.f.settings([(4, 100)]))
    h.conn.close_connection()
    assert h.conn.push_stream(3, PUSH) is None
    assert ServerHarness().conn.push_stream(1, []) is None  # no such associated stream
    h2 = ServerHarness()
    h2.request(1)
    with pytest.raises(LocalProtocolError, match="a push needs :host, :path"):
        h2.conn.push_stream(1, [(b":scheme", b"https")])
    h2 = ServerHarness()
    h2.request(1)
    h2.feed(h2.f.goaway(0))
    assert h2.conn.push_stream(1, PUSH) is None


def test_edge_34_response_header_normalisation() -> None:
    h = ServerHarness()
    h.request(1)
    h.conn.send_response(1, [
        *RESPONSE, (b"Content-Type", b"text/html"), (b"set-cookie", b"a=1"),
        (b"Set-Cookie", b"b=2"), (b"Connection", b"close"), (b"Transfer-Encoding", b"chunked"),
        (b"Keep-Alive", b"5"),
    ])
    raw = h.conn.data_to_send()
    block = raw[12:]
    nv = zlib.decompressobj(zdict=SPDY3_DICTIONARY).decompress(block)
    assert b"set-cookie\x00\x00\x00\x07a=1\x00b=2" in nv
    assert b"Content" not in nv and b"connection" not in nv and b"transfer" not in nv
    frames = decode_frames(raw)
    assert frames[0].headers == [
        *RESPONSE, (b"content-type", b"text/html"), (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
    ]


def test_edge_35_bodiless_responses() -> None:
    # The engine's part of HEAD/204/304: a SYN_REPLY with FIN and never a DATA frame;
    # choosing end_stream for those statuses is the ASGI layer's job (server suite).
    for status in (b"200", b"204", b"304"):
        h = ServerHarness()
        h.request(1, request_headers(method=b"HEAD"))
        h.conn.send_response(1, [(b":status", status), (b":version", b"HTTP/1.1")],
                             end_stream=True)
        frames = h.out()
        assert [(f.type, f.stream_id, f.fin) for f in frames] == [(SYN_REPLY, 1, True)]
        assert not h.conn.stream_is_open(1)
        with pytest.raises(StreamClosedError):
            h.conn.send_data(1, b"")


def test_edge_36_compression_order() -> None:
    h = ServerHarness()
    h.request(1, priority=7, fin=False)
    h.request(3, priority=0, fin=False)
    h.conn.send_response(1, [*RESPONSE, (b"x-n", b"1")])
    h.conn.send_data(1, b"low")
    h.conn.send_response(3, [*RESPONSE, (b"x-n", b"3")])
    h.feed(h.f.ping(1))
    h.conn.send_headers(1, [(b"x-t", b"1")], end_stream=True)
    h.conn.send_headers(3, [(b"x-t", b"3")], end_stream=True)
    frames = h.out()  # one inflate context: decodes only if the order is right
    assert frame_types(frames) == [(PING, 0), (SYN_REPLY, 1), (DATA, 1), (SYN_REPLY, 3),
                                   (HEADERS, 1), (HEADERS, 3)]
    assert frames[3].headers == [*RESPONSE, (b"x-n", b"3")]
    assert frames[5].headers == [(b"x-t", b"3")]


def test_edge_37_graceful_shutdown() -> None:
    h = ServerHarness()
    h.request(1)
    h.request(3, request_headers(b"/upload", b"POST"), fin=False)
    h.conn.close_connection()
    assert [(f.type, f.last_good, f.status) for f in h.out()] == [(GOAWAY, 3, 0)]
    events = h.feed(h.f.syn_stream(5, request_headers(b"/ignored", extra=[(b"x", b"y")])),
                    h.f.data(5, b"ignored body"),
                    h.f.data(3, b"body"),
                    h.f.headers(3, [(b"x-trailer", b"done")], fin=True))
    assert events == [DataReceived(3, b"body", False),
                      HeadersReceived(3, [(b"x-trailer", b"done")], True)]
    assert h.out() == []  # no reply, no RST for stream 5
    for sid in (1, 3):
        h.conn.send_response(sid, RESPONSE)
        h.conn.send_data(sid, b"done", end_stream=True)
    assert h.conn.open_stream_count == 0
    assert [(f.type, f.stream_id) for f in h.out()] == [
        (SYN_REPLY, 1), (DATA, 1), (SYN_REPLY, 3), (DATA, 3)]
    h.conn.close_connection()  # idempotent
    assert h.out() == []


def test_edge_38_client_goaway() -> None:
    h = ServerHarness()
    h.request(1)
    h.request(3)
    h.conn.send_response(1, RESPONSE)
    assert h.conn.push_stream(1, PUSH) == 2
    assert h.conn.push_stream(1, PUSH) == 4
    h.out()
    events = h.feed(h.f.goaway(2, 0))
    assert events == [GoAwayReceived(2, 0),
                      StreamReset(4, 3, True, "above the peer's GOAWAY last-good id")]
    assert h.conn.push_stream(1, PUSH) is None
    h.conn.send_data(2, b"pushed", end_stream=True)
    h.conn.send_data(1, b"one", end_stream=True)
    h.conn.send_response(3, RESPONSE, end_stream=True)
    assert [(f.type, f.stream_id, f.fin) for f in h.out()] == [
        (DATA, 2, True), (DATA, 1, True), (SYN_REPLY, 3, True)]
    assert h.conn.open_stream_count == 0


# ----------------------------------------------------------------------------- 39-44


def test_edge_39_cleartext_first_bytes() -> None:
    # Sniffing (80 03 vs "GET " vs 16 03) happens in the asyncio AutoProtocol; the server
    # suite covers it. The engine's part: a 1-byte read waits, and HTTP/1.1 bytes fed to
    # the engine by mistake end the session instead of buffering 2 MB.
    h = ServerHarness()
    ping = h.f.ping(1)
    assert h.feed(ping[:1]) == []
    assert h.feed(ping[1:2]) == []
    assert h.feed(ping[2:]) == [PingReceived(1)]
    h = ServerHarness()
    events = h.feed(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert_goaway(h, events, 1, 0)


def test_edge_40_alpn_versions() -> None:
    assert Version.from_alpn("spdy/3.1") is Version.SPDY31
    assert Version.from_alpn("spdy/3") is Version.SPDY3
    with pytest.raises(ValueError):
        Version.from_alpn("http/1.1")
    for version, expect in ((Version.SPDY31, [SETTINGS, WINDOW_UPDATE]),
                            (Version.SPDY3, [SETTINGS])):
        h = ServerHarness(version=version, session_window_size=1 << 20,
                          initial_window_size=1 << 20, max_concurrent_streams=100,
                          initiate=True)
        assert [f.type for f in h.preamble] == expect
        assert h.preamble[0].settings == {4: 100, 7: 1 << 20}
        assert all(f.version == 3 for f in h.preamble)
    # SPDY/3 ignores a stream-0 WINDOW_UPDATE and has no session window at all.
    h = ServerHarness(version=Version.SPDY3)
    assert h.feed(h.f.window_update(0, 0)) == []
    h.request(1)
    h.conn.send_response(1, RESPONSE)
    assert h.conn.local_flow_control_window(1) == 65536


def test_edge_41_control_frame_wrong_version() -> None:
    h = ServerHarness()
    h.request(1)
    events = h.feed(h.f.control(PING, b"\x00\x00\x00\x01", version=2))
    assert_goaway(h, events, 1, 1)


def test_edge_42_rapid_reset() -> None:
    h = ServerHarness()
    invocations = 0
    terminated_at = None
    for i in range(10_000):
        sid = 2 * i + 1
        events = h.feed(h.f.syn_stream(sid), h.f.rst(sid, 5))
        invocations += sum(isinstance(e, RequestReceived) for e in events)
        if events and isinstance(events[-1], ConnectionTerminated):
            terminated_at = i
            break
        assert events == []
    # Without a clock nothing refills the budget: the reset after the burst ends it.
    assert terminated_at == h.conn.limits.reset_burst
    assert invocations == 0
    assert h.conn.open_stream_count == 0
    assert len(h.conn._closed_streams) <= h.conn.limits.max_closed_streams
    frames = h.out()
    assert [(f.type, f.status) for f in frames][-1] == (GOAWAY, 1)

    # All 10 000 pairs in one read: stopped by the same budget, the rest of the read unread.
    f = FrameFactory()
    h = ServerHarness()
    blob = b"".join(f.syn_stream(2 * i + 1) + f.rst(2 * i + 1, 5) for i in range(10_000))
    events = h.feed(blob)
    assert len(events) == 1 and isinstance(events[0], ConnectionTerminated)
    assert len(h.conn._inbuf) == 0


def test_edge_43_ping_flood() -> None:
    h = ServerHarness()
    f = h.f
    terminated = False
    for i in range(2000):
        events = h.feed(f.ping(2 * i + 1))
        assert len(h.conn._control_out) <= h.conn.limits.max_queued_control_frames + 2
        if events[-1:] and isinstance(events[-1], ConnectionTerminated):
            terminated = True
            assert i == h.conn.limits.max_queued_control_frames
            break
    assert terminated
    frames = h.out()
    assert frames[-1].type == GOAWAY and frames[-1].status == 1
    assert h.feed(f.ping(1)) == []


def test_edge_44_crime_resistant_compression() -> None:
    secret = b"sessionid=8f14e45fceea167a5a36dedd4bea2543"
    permuted = secret[:10] + secret[10:][::-1]

    def second_block_length(level: int, echo: bytes) -> int:
        c = HeaderCompressor(level)
        c.encode([*RESPONSE, (b"set-cookie", secret)])
        return len(c.encode([*RESPONSE, (b"x-echo", echo)]))

    # Default (Huffman-only) and stored: a guess matching the secret gains nothing.
    for level in (-1, 0):
        assert second_block_length(level, secret) == second_block_length(level, permuted)
    # With LZ77 matching the secret would leak (sanity check of the measurement).
    assert second_block_length(9, secret) < second_block_length(9, permuted)

    # The engine's default output decodes with a plain zlib inflater (reference client).
    h = ServerHarness()
    h.request(1)
    h.conn.send_response(1, [*RESPONSE, (b"set-cookie", secret)])
    h.conn.send_headers(1, [(b"x-echo", secret)], end_stream=True)
    raw = h.conn.data_to_send()
    inflater = zlib.decompressobj(zdict=SPDY3_DICTIONARY)
    frames = decode_frames(raw)
    first = raw[12:8 + len(frames[0].payload)]
    second = frames[1].payload[4:]
    assert inflater.decompress(first).endswith(b"set-cookie\x00\x00\x00\x2a" + secret)
    assert inflater.decompress(second).endswith(secret)
    for block in (first, second):
        assert block.endswith(b"\x00\x00\xff\xff")  # SYNC flush, never FINISH
    # Stored (level 0) is also a valid zlib stream with the dictionary.
    d = HeaderDecompressor()
    c = HeaderCompressor(0)
    assert d.decode(c.encode(RESPONSE)) == RESPONSE
