"""Compatibility mode in the engine: each fault of docs/spdy.md "Compatibility mode", strict
and tolerated, with the bounds; bytes in, frames and events out."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from spdyasgi.spdy import (
    ConnectionTerminated,
    DataReceived,
    FlowControlBlocked,
    Limits,
    PeerFault,
    RequestReceived,
    SessionStatus,
    StreamReset,
    StreamStatus,
    Version,
    WindowUpdated,
)

from .factory import ServerHarness, request_headers

RST, GOAWAY, WINDOW_UPDATE = 3, 7, 9
SET_INITIAL_WINDOW_SIZE = 7
MIB = 1 << 20


def _post(h: ServerHarness, sid: int, length: int) -> list[object]:
    headers = request_headers(method=b"POST", path=b"/up",
                              extra=[(b"content-length", str(length).encode())])
    return list(h.request(sid, headers, fin=False))


def _faults(events: Sequence[object]) -> list[PeerFault]:
    return [e for e in events if isinstance(e, PeerFault)]


# ---------------------------------------------------------------- A: out-of-order ids


def test_strict_out_of_order_id_ends_the_session_naming_the_fault() -> None:
    h = ServerHarness()
    h.request(21)
    events = h.request(9)
    assert len(events) == 1 and isinstance(events[0], ConnectionTerminated)
    assert events[0].status == SessionStatus.PROTOCOL_ERROR
    assert "fault A: out-of-order stream ids" in events[0].reason
    assert "--compat" in events[0].reason
    assert [f.type for f in h.out()][-1] == GOAWAY


def test_compat_accepts_skipped_ids_once_in_any_order() -> None:
    h = ServerHarness(compat=True)
    sent = [1, 3, 5, 21, 9, 7, 19, 11, 13, 15, 17, 23]
    seen: list[int] = []
    faults: list[PeerFault] = []
    for sid in sent:
        events = h.request(sid)
        seen += [e.stream_id for e in events if isinstance(e, RequestReceived)]
        faults += _faults(events)
    assert seen == sent
    assert [(f.fault, f.tolerated) for f in faults] == [("A", True)]  # reported once
    assert h.conn.last_good_stream_id == 23 and h.conn.highest_remote_id == 23
    # Reusing one of them is still a session error, as is a stream id never skipped.
    events = h.request(9)
    assert isinstance(events[-1], ConnectionTerminated)
    assert "reused" in events[-1].reason


def test_compat_reorder_window_bounds_how_far_back() -> None:
    h = ServerHarness(compat=True, limits=Limits(compat_reorder_window=4))
    h.request(21)  # skipped 1..19, but only the last 4 ids (19, 17, 15, 13) are remembered
    assert any(isinstance(e, RequestReceived) for e in h.request(13))
    events = h.request(11)
    assert isinstance(events[-1], ConnectionTerminated)
    assert "older than the last 4 ids" in events[-1].reason


def test_compat_reorder_window_is_no_larger_than_the_stream_limit() -> None:
    h = ServerHarness(compat=True, max_concurrent_streams=3)
    h.request(9)
    assert any(isinstance(e, RequestReceived) for e in h.request(3))  # 3 ids back
    events = h.request(1)  # 4 ids back: more than 3 streams could have been in flight
    assert isinstance(events[-1], ConnectionTerminated)
    assert "older than the last 3 ids" in events[-1].reason


def test_compat_reordered_ids_still_count_against_the_stream_limit() -> None:
    h = ServerHarness(compat=True, max_concurrent_streams=2)
    h.request(5, fin=False)
    h.request(3, fin=False)
    events = h.request(1, fin=False)
    assert not any(isinstance(e, RequestReceived) for e in events)
    assert [(f.type, f.status) for f in h.out() if f.type == RST] == [
        (RST, StreamStatus.REFUSED_STREAM)]


# ----------------------------------------------------------------- B: window overruns


def test_strict_stream_overrun_resets_naming_the_fault() -> None:
    h = ServerHarness(initiate=True, session_window_size=16 * MIB)
    _post(h, 1, MIB)
    events = h.feed(h.f.data(1, b"x" * 65536), h.f.data(1, b"y" * 1000))
    reset = [e for e in events if isinstance(e, StreamReset)]
    assert reset and reset[0].status == StreamStatus.FLOW_CONTROL_ERROR
    assert "fault B" in reset[0].reason and "--compat" in reset[0].reason


def test_compat_accepts_a_body_sent_without_regard_to_windows() -> None:
    h = ServerHarness(initiate=True, compat=True, session_window_size=MIB)
    _post(h, 1, 3 * MIB)
    events: list[object] = []
    chunk = b"z" * 16384
    for index in range(3 * MIB // len(chunk)):
        events += h.feed(h.f.data(1, chunk, fin=index == 3 * MIB // len(chunk) - 1))
    received = sum(len(e.data) for e in events if isinstance(e, DataReceived))
    assert received == 3 * MIB
    assert not any(isinstance(e, (StreamReset, ConnectionTerminated)) for e in events)
    assert [(f.fault, f.tolerated) for f in _faults(events)] == [("B", True)]
    assert h.conn.overrun == 3 * MIB - 65536
    h.conn.acknowledge_received_data(1, 3 * MIB)
    assert h.conn.overrun == 3 * MIB - 65536  # counted while the stream lives
    h.conn.send_response(1, [(b":status", b"200")], end_stream=True)
    assert h.conn.overrun == 0  # the stream finished: its debt is gone


def test_compat_stream_overrun_bound() -> None:
    limits = Limits(compat_stream_overrun=MIB, compat_session_overrun=8 * MIB)
    h = ServerHarness(initiate=True, compat=True, session_window_size=16 * MIB, limits=limits)
    _post(h, 1, 4 * MIB)
    events: list[object] = []
    for _ in range(40):
        events += h.feed(h.f.data(1, b"q" * 65536))
    reset = [e for e in events if isinstance(e, StreamReset)]
    assert reset and reset[0].status == StreamStatus.FLOW_CONTROL_ERROR
    assert "per stream" in reset[0].reason
    delivered = sum(len(e.data) for e in events if isinstance(e, DataReceived))
    assert delivered <= 65536 + MIB
    assert h.conn.overrun == 0  # the reset stream's debt was dropped with it


def test_compat_session_overrun_bound_over_all_streams() -> None:
    limits = Limits(compat_stream_overrun=MIB, compat_session_overrun=2 * MIB)
    h = ServerHarness(initiate=True, compat=True, session_window_size=64 * MIB, limits=limits,
                      max_concurrent_streams=64)
    statuses: list[int] = []
    for sid in range(1, 16, 2):
        _post(h, sid, 2 * MIB)
        events = h.feed(h.f.data(sid, b"w" * (65536 + MIB)))
        statuses += [e.status for e in events if isinstance(e, StreamReset)]
        assert h.conn.overrun <= 2 * MIB
    assert h.conn.overrun == 2 * MIB  # two streams took the whole session allowance
    assert statuses == [StreamStatus.FLOW_CONTROL_ERROR] * 6


def test_strict_and_compat_session_window_overrun() -> None:
    strict = ServerHarness(initiate=True)
    _post(strict, 1, MIB)
    events = strict.feed(strict.f.data(1, b"s" * 65536), strict.f.data(1, b"s" * 65536))
    assert isinstance(events[-1], ConnectionTerminated)
    assert "fault B" in events[-1].reason
    loose = ServerHarness(initiate=True, compat=True, initial_window_size=4 * MIB)
    _post(loose, 1, MIB)
    events = loose.feed(loose.f.data(1, b"s" * MIB))  # 1 MiB into a 64 KiB session window
    assert sum(len(e.data) for e in events if isinstance(e, DataReceived)) == MIB
    assert loose.conn.session_recv_window == 65536 - MIB
    events = loose.feed(loose.f.data(1, b"s" * (9 * MIB)))
    assert isinstance(events[-1], ConnectionTerminated)


# ------------------------------------------------------ C, D: the session send window


def _download_ready(h: ServerHarness, sid: int) -> None:
    h.request(sid)
    h.conn.send_response(sid, [(b":status", b"200"), (b":version", b"HTTP/1.1")])


def _send_all(h: ServerHarness, sid: int) -> int:
    sent = 0
    while (window := h.conn.local_flow_control_window(sid)) > 0:
        h.conn.send_data(sid, b"d" * min(window, 16384))
        sent += min(window, 16384)
    h.out()
    return sent


def test_strict_client_that_never_credits_the_session_stalls_at_64k() -> None:
    h = ServerHarness(initiate=True)
    h.feed(h.f.settings([(SET_INITIAL_WINDOW_SIZE, 10 * MIB)]))
    _download_ready(h, 1)
    assert _send_all(h, 1) == 65536
    events = h.feed(h.f.window_update(1, 65536))
    (fault,) = _faults(events)  # reported, with what would help, but nothing changes
    assert fault.fault == "C" and not fault.tolerated and "--compat" in fault.detail
    assert events[-1] == WindowUpdated(1, 65536)
    assert not _faults(h.feed(h.f.window_update(1, 65536)))  # once
    assert h.conn.local_flow_control_window(1) == 0
    with pytest.raises(FlowControlBlocked):
        h.conn.send_data(1, b"x")


def test_compat_fault_c_session_window_starts_at_the_clients_initial_window() -> None:
    h = ServerHarness(initiate=True, compat=True)
    h.feed(h.f.settings([(SET_INITIAL_WINDOW_SIZE, 10 * MIB)]))
    _download_ready(h, 1)
    assert _send_all(h, 1) == 65536
    events = h.feed(h.f.window_update(1, 32768))  # not enough to be sure yet
    assert not _faults(events)
    events = h.feed(h.f.window_update(1, 32768))
    (fault,) = _faults(events)
    assert fault.fault == "C" and fault.tolerated
    # As the client sees it: 10 MiB of session window, 64 KiB of it used.
    assert h.conn.session_send_window == 10 * MIB - 65536
    assert _send_all(h, 1) == 10 * MIB - 65536
    events = h.feed(h.f.window_update(0, 5 * MIB))  # its first session credit, at 5 MiB
    assert h.conn.session_send_window == 5 * MIB
    assert not _faults(events)  # C is reported once; D never applied under negotiation


def test_compat_fault_c_without_a_larger_initial_window_changes_nothing() -> None:
    h = ServerHarness(initiate=True, compat=True)
    _download_ready(h, 1)
    _send_all(h, 1)
    (fault,) = _faults(h.feed(h.f.window_update(1, 65536)))
    assert fault.fault == "C" and not fault.tolerated
    assert h.conn.local_flow_control_window(1) == 0


def test_compat_cleartext_runs_spdy3_flow_control_until_the_first_session_credit() -> None:
    h = ServerHarness(initiate=True, compat=True)
    h.conn.assume_version()
    h.feed(h.f.settings([(SET_INITIAL_WINDOW_SIZE, MIB)]))
    _download_ready(h, 1)
    assert _send_all(h, 1) == MIB  # only the stream window applies
    assert h.conn.session_send_window == 65536 - MIB  # still counted
    events = h.feed(h.f.window_update(0, 2 * MIB))
    assert [(f.fault, f.tolerated) for f in _faults(events)] == [("D", True)]
    h.feed(h.f.window_update(1, MIB))
    h.feed(h.f.window_update(1, MIB))
    # The stream allows 2 MiB now; the session window (enforced again) only 1 MiB + 64 KiB.
    assert h.conn.local_flow_control_window(1) == 65536 + MIB
    assert _send_all(h, 1) == 65536 + MIB


def test_assume_version_does_nothing_strict_or_on_spdy3() -> None:
    for h in (ServerHarness(initiate=True), ServerHarness(initiate=True, compat=True,
                                                          version=Version.SPDY3)):
        h.conn.assume_version()
        h.feed(h.f.settings([(SET_INITIAL_WINDOW_SIZE, MIB)]))
        _download_ready(h, 1)
        expected = MIB if h.conn.version is Version.SPDY3 else 65536
        assert _send_all(h, 1) == expected


def test_client_role_tolerates_a_server_sending_past_the_session_window() -> None:
    from spdyasgi.spdy import Connection, ConnectionConfig
    from spdyasgi.spdy import frames as fr

    for compat in (False, True):
        conn = Connection(ConnectionConfig(client_side=True, compat=compat,
                                           initial_window_size=MIB))
        conn.initiate_connection()
        sid = conn.send_request(request_headers(), end_stream=True)
        server = ServerHarness()
        reply = server.f.syn_reply(sid, [(b":status", b"200"), (b":version", b"HTTP/1.1")])
        body = fr.data_frame_header(sid, 0, 200000) + b"b" * 200000
        events = conn.receive_data(reply + body)
        if compat:
            assert sum(len(e.data) for e in events if isinstance(e, DataReceived)) == 200000
            assert [(f.fault, f.tolerated) for f in _faults(events)] == [("B", True)]
        else:
            assert isinstance(events[-1], ConnectionTerminated)
            assert "fault B" in events[-1].reason


@pytest.mark.parametrize("compat", [False, True])
def test_fault_e_pushes_without_unidirectional_and_https_on_cleartext_need_no_mode(
        compat: bool) -> None:
    """E (node-spdy's pushes): already accepted by the client role, strict or not."""
    from spdyasgi.spdy import Connection, ConnectionConfig, PushReceived

    conn = Connection(ConnectionConfig(client_side=True, compat=compat))
    sid = conn.send_request(request_headers(), end_stream=True)
    server = ServerHarness()
    reply = server.f.syn_reply(sid)  # compressed first: it goes first
    push = server.f.syn_stream(2, [(b":scheme", b"https"), (b":host", b"localhost"),
                                   (b":path", b"/style.css"), (b":status", b"200"),
                                   (b":version", b"HTTP/1.1")], assoc=sid)  # no flag
    events = conn.receive_data(reply + push)
    pushes = [e for e in events if isinstance(e, PushReceived)]
    assert [(p.stream_id, p.associated_stream_id) for p in pushes] == [(2, sid)]
    assert (b":scheme", b"https") in pushes[0].headers
    assert not _faults(events)
