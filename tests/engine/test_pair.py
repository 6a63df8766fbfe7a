"""A client engine and a server engine wired back to back through a pump."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from spdyasgi.spdy import (
    Connection,
    ConnectionConfig,
    DataReceived,
    Event,
    FlowControlBlocked,
    GoAwayReceived,
    HeadersReceived,
    LocalProtocolError,
    PingAcknowledged,
    PingReceived,
    PushReceived,
    RequestReceived,
    ResponseReceived,
    SettingsReceived,
    StreamClosedError,
    StreamReset,
    StreamStatus,
    Version,
    WindowUpdated,
)

RESPONSE = [(b":status", b"200"), (b":version", b"HTTP/1.1")]


def payload(size: int, seed: bytes) -> bytes:
    block = hashlib.sha512(seed).digest() * 64  # 4 KiB
    return (block * (size // len(block) + 1))[:size]


class Endpoint:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.events: list[Event] = []
        self.pending: dict[int, tuple[bytearray, bool]] = {}
        self.received: dict[int, bytearray] = {}
        self.ended: set[int] = set()
        self.auto_ack = True
        self.hook: Callable[[Event], None] | None = None
        self.max_chunk = 16384

    def queue(self, stream_id: int, data: bytes, *, end: bool = True) -> None:
        self.pending[stream_id] = (bytearray(data), end)

    def send_pending(self) -> None:
        for sid, (buf, end) in list(self.pending.items()):
            if not self.conn.stream_is_open(sid):
                del self.pending[sid]
                continue
            while buf:
                window = self.conn.local_flow_control_window(sid)
                if window <= 0:
                    break
                n = min(window, self.max_chunk, len(buf))
                last = end and n == len(buf)
                self.conn.send_data(sid, bytes(buf[:n]), end_stream=last)
                del buf[:n]
            if not buf:
                if end and self.conn.stream_is_open(sid) and not self.conn.streams[
                        sid].local_closed:
                    self.conn.end_stream(sid)
                del self.pending[sid]

    def receive(self, data: bytes) -> None:
        for ev in self.conn.receive_data(data):
            self.events.append(ev)
            if isinstance(ev, DataReceived):
                self.received.setdefault(ev.stream_id, bytearray()).extend(ev.data)
                if self.auto_ack:
                    self.conn.acknowledge_received_data(ev.stream_id, len(ev.data))
            if getattr(ev, "end_stream", False):
                self.ended.add(ev.stream_id)  # type: ignore[attr-defined]
            if self.hook is not None:
                self.hook(ev)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


class Pair:
    def __init__(self, version: Version = Version.SPDY31, *, client: dict | None = None,
                 server: dict | None = None) -> None:
        self.client = Endpoint(Connection(ConnectionConfig(client_side=True, version=version,
                                                           **(client or {}))))
        self.server = Endpoint(Connection(ConnectionConfig(client_side=False, version=version,
                                                           **(server or {}))))
        self.client.conn.initiate_connection()
        self.server.conn.initiate_connection()
        self.wire_bytes = 0

    def pump(self, max_rounds: int = 100_000, between: Callable[[int], None] | None = None
             ) -> int:
        for rounds in range(max_rounds):
            if between is not None:
                between(rounds)
            self.client.send_pending()
            self.server.send_pending()
            c_out = self.client.conn.data_to_send()
            s_out = self.server.conn.data_to_send()
            if not c_out and not s_out:
                return rounds
            self.wire_bytes += len(c_out) + len(s_out)
            self.server.receive(c_out)
            self.client.receive(s_out)
        raise AssertionError("pump did not settle")

    def no_resets(self) -> None:
        assert self.client.of(StreamReset) == []
        assert self.server.of(StreamReset) == []


def echo_server(pair: Pair, responses: dict[bytes, bytes]) -> None:
    def hook(ev: Event) -> None:
        if isinstance(ev, RequestReceived):
            path = dict(ev.headers)[b":path"]
            pair.server.conn.send_response(ev.stream_id, RESPONSE)
            pair.server.queue(ev.stream_id, responses[path])
    pair.server.hook = hook


WINDOWS = [
    {},
    {"initial_window_size": 1 << 20, "session_window_size": 4 << 20},
]


@pytest.mark.parametrize("version", [Version.SPDY31, Version.SPDY3])
@pytest.mark.parametrize("windows", WINDOWS, ids=["default-windows", "large-windows"])
def test_large_bodies_both_directions(version: Version, windows: dict) -> None:
    pair = Pair(version, client=windows, server=windows)
    up1, up2 = payload(3 << 20, b"up1"), payload((2 << 20) + 12345, b"up2")
    down1, down2 = payload(5 << 20, b"down1"), payload(777_777, b"down2")
    echo_server(pair, {b"/a": down1, b"/b": down2})
    c = pair.client
    s1 = c.conn.send_request([(b":method", b"POST"), (b":path", b"/a"),
                              (b":version", b"HTTP/1.1"), (b":host", b"h"),
                              (b":scheme", b"https")])
    s3 = c.conn.send_request([(b":method", b"PUT"), (b":path", b"/b"),
                              (b":version", b"HTTP/1.1"), (b":host", b"h"),
                              (b":scheme", b"https")], priority=0)
    c.queue(s1, up1)
    c.queue(s3, up2)
    pair.pump()
    pair.no_resets()
    for got, want in ((pair.server.received[s1], up1), (pair.server.received[s3], up2),
                      (c.received[s1], down1), (c.received[s3], down2)):
        assert hashlib.sha256(got).digest() == hashlib.sha256(want).digest()
    assert c.ended == {s1, s3} and pair.server.ended == {s1, s3}
    assert c.conn.open_stream_count == 0 and pair.server.conn.open_stream_count == 0
    # Windows are fully restored: everything read was acknowledged.
    if version is Version.SPDY31:
        assert pair.server.of(WindowUpdated)
        sessions = [e for e in c.of(WindowUpdated) if e.stream_id == 0]
        assert sessions
        assert c.conn.session_send_window <= (windows.get("session_window_size", 65536))
    else:
        assert all(e.stream_id != 0 for e in c.of(WindowUpdated) + pair.server.of(WindowUpdated))


def test_unacknowledged_data_stalls_sender() -> None:
    pair = Pair()
    echo_server(pair, {b"/": payload(1 << 20, b"x")})
    pair.client.auto_ack = False
    sid = pair.client.conn.send_request(
        [(b":method", b"GET"), (b":path", b"/"), (b":version", b"HTTP/1.1"),
         (b":host", b"h"), (b":scheme", b"https")], end_stream=True)
    pair.pump()
    assert len(pair.client.received[sid]) == 65536
    pair.client.conn.acknowledge_received_data(sid, 65536)
    pair.pump()
    assert len(pair.client.received[sid]) == 131072


def test_server_push_and_trailers() -> None:
    pair = Pair()
    s, c = pair.server, pair.client
    pushed_body = payload(200_000, b"push")

    def hook(ev: Event) -> None:
        if isinstance(ev, HeadersReceived) and ev.end_stream:
            sid = ev.stream_id
            s.conn.send_response(sid, [*RESPONSE, (b"content-type", b"text/html")])
            p1 = s.conn.push_stream(sid, [(b":scheme", b"https"), (b":host", b"h"),
                                          (b":path", b"/app.css"), (b":status", b"200"),
                                          (b":version", b"HTTP/1.1")])
            p2 = s.conn.push_stream(sid, [(b":scheme", b"https"), (b":host", b"h"),
                                          (b":path", b"/empty"), (b":status", b"204"),
                                          (b":version", b"HTTP/1.1")], end_stream=True)
            assert (p1, p2) == (2, 4)
            s.queue(p1, pushed_body)
            s.conn.send_data(sid, b"<html>")
            s.conn.send_headers(sid, [(b"x-checksum", b"abc")], end_stream=True)
    s.hook = hook
    sid = c.conn.send_request([(b":method", b"POST"), (b":path", b"/"),
                               (b":version", b"HTTP/1.1"), (b":host", b"h"),
                               (b":scheme", b"https")])
    c.conn.send_data(sid, b"form=1")
    c.conn.send_headers(sid, [(b"x-trailer", b"yes")], end_stream=True)
    pair.pump()
    pair.no_resets()
    assert s.of(HeadersReceived) == [HeadersReceived(sid, [(b"x-trailer", b"yes")], True)]
    assert bytes(s.received[sid]) == b"form=1"
    pushes = c.of(PushReceived)
    assert [(p.stream_id, p.associated_stream_id, p.end_stream) for p in pushes] == [
        (2, sid, False), (4, sid, True)]
    assert dict(pushes[0].headers)[b":path"] == b"/app.css"
    assert bytes(c.received[2]) == pushed_body
    assert c.of(ResponseReceived)[0].headers == [*RESPONSE, (b"content-type", b"text/html")]
    assert c.of(HeadersReceived) == [HeadersReceived(sid, [(b"x-checksum", b"abc")], True)]
    assert bytes(c.received[sid]) == b"<html>"
    assert c.conn.open_stream_count == 0 and s.conn.open_stream_count == 0


def test_pings_both_ways() -> None:
    pair = Pair()
    c_id = pair.client.conn.ping()
    s_id = pair.server.conn.ping()
    assert c_id % 2 == 1 and s_id % 2 == 0
    pair.pump()
    assert pair.server.of(PingReceived) == [PingReceived(c_id)]
    assert pair.client.of(PingAcknowledged) == [PingAcknowledged(c_id)]
    assert pair.client.of(PingReceived) == [PingReceived(s_id)]
    assert pair.server.of(PingAcknowledged) == [PingAcknowledged(s_id)]
    assert pair.client.conn.ping() == c_id + 2


def test_settings_change_mid_transfer() -> None:
    body = payload(6 << 20, b"settings")
    pair = Pair(client={"initial_window_size": 1 << 20, "session_window_size": 8 << 20})
    echo_server(pair, {b"/": body})
    c, s = pair.client, pair.server
    sid = c.conn.send_request([(b":method", b"GET"), (b":path", b"/"),
                               (b":version", b"HTTP/1.1"), (b":host", b"h"),
                               (b":scheme", b"https")], end_stream=True)
    c.auto_ack = False  # the app is slow: the server fills the 1 MiB stream window
    pair.pump()
    assert len(c.received[sid]) == 1 << 20
    assert s.conn.local_flow_control_window(sid) == 0
    c.conn.update_settings({7: 65536})  # lowered mid-transfer
    pair.pump()
    assert s.conn.streams[sid].send_window == -(1 << 20) + 65536  # negative
    c.conn.acknowledge_received_data(sid, 1 << 20)
    pair.pump()
    # -983040 + 1 MiB: exactly 65536 more bytes may flow.
    assert len(c.received[sid]) == (1 << 20) + 65536
    c.auto_ack = True
    c.conn.acknowledge_received_data(sid, 65536)
    seen: list[int] = []

    def between(rounds: int) -> None:
        if len(c.received[sid]) > (3 << 20) and not seen:
            seen.append(1)
            c.conn.update_settings({7: 2 << 20, 4: 50})  # raised again mid-transfer
    pair.pump(between=between)
    pair.no_resets()
    assert seen == [1]
    assert hashlib.sha256(c.received[sid]).digest() == hashlib.sha256(body).digest()
    settings = s.of(SettingsReceived)
    assert [e.settings.get(7) for e in settings] == [1 << 20, 65536, 2 << 20]
    assert s.conn.remote_initial_window == 2 << 20
    assert s.conn.remote_max_concurrent_streams == 50


def test_settings_raise_before_upload() -> None:
    pair = Pair()
    s = pair.server
    s.conn.update_settings({7: 1 << 20})
    sid = pair.client.conn.send_request([(b":method", b"POST"), (b":path", b"/"),
                                         (b":version", b"HTTP/1.1"), (b":host", b"h"),
                                         (b":scheme", b"https")])
    pair.pump()
    # The stream opened before the client saw the new value: its window grows by the delta.
    assert pair.client.conn.local_flow_control_window(sid) == 65536  # session-capped
    assert pair.client.conn.streams[sid].send_window == 1 << 20
    pair.client.queue(sid, payload(3 << 20, b"u"))
    pair.pump()
    pair.no_resets()
    assert len(s.received[sid]) == 3 << 20


@pytest.mark.parametrize("who", ["server", "client"])
def test_goaway(who: str) -> None:
    pair = Pair()
    echo_server(pair, {b"/": payload(300_000, b"g")})
    c, s = pair.client, pair.server
    headers = [(b":method", b"GET"), (b":path", b"/"), (b":version", b"HTTP/1.1"),
               (b":host", b"h"), (b":scheme", b"https")]
    s1 = c.conn.send_request(headers, end_stream=True)
    pair.client.send_pending()
    s.receive(c.conn.data_to_send())  # server now holds stream 1
    if who == "server":
        s.conn.close_connection()
        s3 = c.conn.send_request(headers, end_stream=True)  # crosses the GOAWAY
        pair.pump()
        assert c.of(GoAwayReceived) == [GoAwayReceived(s1, 0)]
        assert [e.stream_id for e in c.of(StreamReset)] == [s3]
        assert [e.stream_id for e in s.of(RequestReceived)] == [s1]
        with pytest.raises(LocalProtocolError):
            c.conn.send_request(headers)
    else:
        c.conn.close_connection()
        pair.pump()
        assert s.of(GoAwayReceived) == [GoAwayReceived(0, 0)]
        assert s.conn.push_stream(s1, [(b":scheme", b"https"), (b":host", b"h"),
                                       (b":path", b"/x")]) is None
        with pytest.raises(LocalProtocolError):
            c.conn.send_request(headers)
    assert len(c.received[s1]) == 300_000
    assert s1 in c.ended


def test_resets_both_directions() -> None:
    pair = Pair()
    body = payload(1 << 20, b"r")
    echo_server(pair, {b"/1": body, b"/3": body})
    c, s = pair.client, pair.server
    c.auto_ack = False
    h = [(b":method", b"GET"), (b":version", b"HTTP/1.1"), (b":host", b"h"),
         (b":scheme", b"https")]
    s1 = c.conn.send_request([*h, (b":path", b"/1")], end_stream=True)
    s3 = c.conn.send_request([*h, (b":path", b"/3")], end_stream=True)
    pair.pump()
    c.conn.reset_stream(s1, StreamStatus.CANCEL)
    s.conn.reset_stream(s3, StreamStatus.INTERNAL_ERROR)
    c.auto_ack = True
    for sid in (s1, s3):
        c.conn.acknowledge_received_data(sid, len(c.received.get(sid, b"")))
    pair.pump()
    assert s.of(StreamReset) == [StreamReset(s1, StreamStatus.CANCEL, True)]
    assert c.of(StreamReset) == [StreamReset(s3, StreamStatus.INTERNAL_ERROR, True)]
    with pytest.raises(StreamClosedError):
        s.conn.send_data(s1, b"x")
    assert s.conn.open_stream_count == 0 and c.conn.open_stream_count == 0
    # Nothing answered a RST with a RST, and the session still works.
    s5 = c.conn.send_request([*h, (b":path", b"/1")], end_stream=True)
    pair.pump()
    assert bytes(c.received[s5]) == body
    # Every DATA byte, including the ones dropped for reset streams, was credited back.
    assert s.conn.session_send_window == 65536
    assert c.conn.session_recv_window == 65536


def test_multi_value_headers() -> None:
    pair = Pair()
    c, s = pair.client, pair.server

    def hook(ev: Event) -> None:
        if isinstance(ev, RequestReceived):
            s.conn.send_response(ev.stream_id, [
                *RESPONSE, (b"Set-Cookie", b"a=1"), (b"set-cookie", b"b=2"),
                (b"Vary", b"accept"), (b"vary", b""), (b"x-empty", b""),
            ], end_stream=True)
    s.hook = hook
    sid = c.conn.send_request([(b":method", b"GET"), (b":path", b"/"),
                               (b":version", b"HTTP/1.1"), (b":host", b"h"),
                               (b":scheme", b"https"), (b"accept", b"text/html"),
                               (b"Accept", b"*/*"), (b"cookie", b"x=1"), (b"cookie", b"y=2"),
                               (b"connection", b"keep-alive")], end_stream=True)
    pair.pump()
    req = s.of(RequestReceived)[0]
    assert req.headers[5:] == [(b"accept", b"text/html"), (b"accept", b"*/*"),
                               (b"cookie", b"x=1"), (b"cookie", b"y=2")]
    resp = c.of(ResponseReceived)[0]
    assert resp == ResponseReceived(sid, [
        *RESPONSE, (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2"), (b"vary", b"accept"),
        (b"x-empty", b""),
    ], True)


REQUEST = [(b":method", b"GET"), (b":path", b"/"), (b":version", b"HTTP/1.1"),
           (b":host", b"h"), (b":scheme", b"https")]


@pytest.mark.parametrize("version", [Version.SPDY31, Version.SPDY3])
def test_respond_sends_reply_and_body_in_one_call(version: Version) -> None:
    pair = Pair(version)
    one_shot = pair.client.conn.send_request(REQUEST, end_stream=True)
    streamed = pair.client.conn.send_request(REQUEST, end_stream=True)
    pair.pump()
    pair.server.conn.respond(one_shot, [*RESPONSE, (b"x-kind", b"one")], b"hello")
    pair.server.conn.respond(streamed, RESPONSE, b"part 1, ", end_stream=False)
    pair.pump()
    replies = {e.stream_id: e for e in pair.client.of(ResponseReceived)}
    assert dict(replies[one_shot].headers)[b"x-kind"] == b"one"
    assert not replies[one_shot].end_stream and not replies[streamed].end_stream
    assert pair.client.received[one_shot] == b"hello"
    assert one_shot in pair.client.ended and one_shot not in pair.server.conn.streams
    assert streamed not in pair.client.ended
    pair.server.conn.send_data(streamed, b"part 2", end_stream=True)
    pair.pump()
    assert pair.client.received[streamed] == b"part 1, part 2"
    assert streamed in pair.client.ended
    pair.no_resets()
    with pytest.raises(StreamClosedError):
        pair.server.conn.respond(one_shot, RESPONSE, b"again")


def test_respond_refuses_what_send_response_refuses() -> None:
    pair = Pair()
    sid = pair.client.conn.send_request(REQUEST, end_stream=True)
    pair.pump()
    pair.server.conn.send_response(sid, RESPONSE)
    with pytest.raises(LocalProtocolError, match="already has a reply"):
        pair.server.conn.respond(sid, RESPONSE, b"x")
    upload = pair.client.conn.send_request(REQUEST)  # still open on the client's side
    with pytest.raises(LocalProtocolError, match="client-initiated"):
        pair.client.conn.respond(upload, RESPONSE, b"x")


def test_respond_over_the_window_queues_nothing() -> None:
    pair = Pair()
    sid = pair.client.conn.send_request(REQUEST, end_stream=True)
    pair.pump()
    window = pair.server.conn.local_flow_control_window(sid)
    with pytest.raises(FlowControlBlocked):
        pair.server.conn.respond(sid, RESPONSE, bytes(window + 1))
    # Nothing was compressed or queued: the stream can still be answered normally.
    assert not pair.server.conn.has_output
    pair.server.conn.respond(sid, RESPONSE, bytes(window))
    pair.pump()
    assert pair.client.of(ResponseReceived)[0].stream_id == sid
    assert len(pair.client.received[sid]) == window
    pair.no_resets()
