"""Unit tests for the remaining engine paths: commands, client role, limits, helpers."""

from __future__ import annotations

import subprocess
import sys
import zlib

import pytest

from spdyasgi.spdy import (
    Connection,
    ConnectionConfig,
    ConnectionTerminated,
    DataReceived,
    DataViewed,
    FlowControlBlocked,
    FrameType,
    HeadersReceived,
    Limits,
    LocalProtocolError,
    PingReceived,
    PushReceived,
    RequestReceived,
    RequestRejected,
    ResponseReceived,
    StreamClosedError,
    StreamError,
    StreamReset,
    StreamStatus,
    Version,
)
from spdyasgi.spdy import frames as fr
from spdyasgi.spdy.dictionary import SPDY3_DICTIONARY
from spdyasgi.spdy.headers import (
    HUFFMAN_ONLY,
    CompressionError,
    HeaderBlockError,
    HeaderCompressor,
    HeaderDecompressor,
    encode_nv_block,
    parse_nv_block,
)
from spdyasgi.spdy.limits import Budget
from spdyasgi.spdy.request_heads import request_head
from spdyasgi.spdy.stream import ClosedStreams

from .factory import (
    DATA,
    GOAWAY,
    HEADERS,
    PING,
    RST_STREAM,
    SETTINGS,
    SYN_REPLY,
    SYN_STREAM,
    WINDOW_UPDATE,
    FrameDecoder,
    FrameFactory,
    ServerHarness,
    decode_frames,
    nv_block,
    request_headers,
)

RESPONSE = [(b":status", b"200"), (b":version", b"HTTP/1.1")]
PUSH = [(b":scheme", b"https"), (b":host", b"h"), (b":path", b"/p")]


def rsts(frames: list) -> list[tuple[int, int]]:
    return [(f.stream_id, f.status) for f in frames if f.type == RST_STREAM]


# --------------------------------------------------------------------- package


def test_import_does_not_pull_asyncio() -> None:
    code = "import sys, spdyasgi.spdy; print('asyncio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_version_helpers() -> None:
    assert Version.SPDY3.wire == Version.SPDY31.wire == 3
    assert Version.SPDY31.alpn == "spdy/3.1" and Version.SPDY3.alpn == "spdy/3"
    assert Version.SPDY31.session_flow_control and not Version.SPDY3.session_flow_control


def test_known_answer_vector() -> None:
    frame = bytes.fromhex(
        "800300010000002c0000000100000000000078f9e3c6a7c202e50e507ab442a45a77d7105006"
        "b32a4804974d8cfa00000000ffff")
    assert HeaderDecompressor().decode(frame[18:]) == [(b":method", b"GET"), (b":path", b"/")]
    h = ServerHarness()
    assert h.feed(frame) == [RequestRejected(1, 400, "missing :version, :host, :scheme")]


def test_config_validation() -> None:
    for kw in ({"initial_window_size": 1000}, {"session_window_size": 2**31},
               {"max_concurrent_streams": 0}):
        with pytest.raises(ValueError):
            ConnectionConfig(**kw)  # type: ignore[arg-type]


def test_stream_error_exception() -> None:
    err = StreamError(3, StreamStatus.CANCEL, "gone")
    assert (err.stream_id, err.status, str(err)) == (3, StreamStatus.CANCEL, "gone")


# --------------------------------------------------------------------- frames


def test_frame_serialisers_round_trip() -> None:
    dec = FrameDecoder()
    c = HeaderCompressor()
    raw = b"".join([
        fr.syn_stream(3, 1, 0, 5, 0x01, c.encode(request_headers())),
        fr.syn_reply(3, 1, 0x01, c.encode(RESPONSE)),
        fr.headers_frame(3, 1, 0, c.encode([(b"x", b"y")])),
        fr.rst_stream(3, 1, 5),
        fr.settings(3, [(7, 0, 100000), (4, 0, 10)], flags=1),
        fr.ping(3, 7),
        fr.goaway(3, 9, 2),
        fr.window_update(3, 0, 1234),
        fr.data_frame(5, 1, b"hello"),
        fr.data_frame_header(5, 0, 0),
    ])
    frames = dec.feed(raw)
    assert [f.type for f in frames] == [SYN_STREAM, SYN_REPLY, HEADERS, RST_STREAM, SETTINGS,
                                        PING, GOAWAY, WINDOW_UPDATE, DATA, DATA]
    assert frames[0].priority == 5 and frames[0].headers == request_headers()
    assert frames[4].raw[12:16] == b"\x00\x00\x00\x04"  # sorted: id 4 first
    assert frames[4].settings == {4: 10, 7: 100000} and frames[4].flags == 1
    assert (frames[5].ping_id, frames[6].last_good, frames[6].status) == (7, 9, 2)
    assert (frames[7].stream_id, frames[7].delta) == (0, 1234)
    assert frames[8].payload == b"hello" and frames[8].fin
    with pytest.raises(ValueError):
        fr.control_frame(3, 1, 0, bytes(2**24))
    with pytest.raises(ValueError):  # the 4-byte stream id counts toward the limit
        fr.syn_reply(3, 1, 0, bytes(2**24 - 4))
    assert len(fr.headers_frame(3, 1, 0, bytes(2**24 - 5))) == 8 + 2**24 - 1


# --------------------------------------------------------------------- headers


def test_header_codec_errors() -> None:
    with pytest.raises(LocalProtocolError):
        encode_nv_block([(b"", b"x")])
    with pytest.raises(LocalProtocolError):
        encode_nv_block([(b"bad name", b"x")])
    with pytest.raises(LocalProtocolError):
        encode_nv_block([(b"x", b"a\r\nb")])
    with pytest.raises(ValueError):
        HeaderCompressor(10)
    cases = {
        b"\x00\x00": 1,
        nv_block([(b"a", b"b")] * 1) + b"\x00": 1,  # stray byte
        nv_block([(b"n%d" % i, b"") for i in range(129)]): 11,  # > 128 headers
        b"\x00\x00\x00\x02\x00\x00\x00\x01a\x00\x00\x00\x03bcd" + b"\x00" * 2: 1,
        b"\x00\x00\x00\x01\x00\x00\x00\x09a\x00\x00\x00\x00": 1,  # name overruns
        b"\x00\x00\x00\x01\x00\x00\x00\x01a\x00\x00\x00\x09xy": 1,  # value overruns
        nv_block([(b"a", b"x\ny")]): 1,
        nv_block([(b"a", b"x\x00y\rz")]): 1,
    }
    for raw, status in cases.items():
        with pytest.raises(HeaderBlockError) as info:
            parse_nv_block(raw)
        assert info.value.status == status, raw


def test_decompressor_errors_and_limits() -> None:
    d = HeaderDecompressor(max_block_size=100)
    c = zlib.compressobj(zdict=SPDY3_DICTIONARY)
    big = nv_block([(b"a", b"x" * 1000)])
    small = nv_block([(b"a", b"b")])
    assert d.decode(c.compress(small) + c.flush(zlib.Z_SYNC_FLUSH)) == [(b"a", b"b")]
    # Past the limit: inflating stops there, and the context cannot go on (session error).
    with pytest.raises(CompressionError, match="more than 100 bytes"):
        d.decode(c.compress(big) + c.flush(zlib.Z_SYNC_FLUSH))
    # A peer that FINISHes its stream: nothing after it can decode.
    d2 = HeaderDecompressor()
    c2 = zlib.compressobj(zdict=SPDY3_DICTIONARY)
    with pytest.raises(CompressionError):
        d2.decode(c2.compress(small) + c2.flush())
    with pytest.raises(CompressionError):
        HeaderDecompressor().decode(b"\x00garbage")


def test_finished_zlib_stream_ends_session() -> None:
    h = ServerHarness()
    c = zlib.compressobj(zdict=SPDY3_DICTIONARY)
    block = c.compress(nv_block(request_headers())) + c.flush()
    events = h.feed(h.f.syn_stream(1, block=block, fin=True))
    assert len(events) == 1 and isinstance(events[0], ConnectionTerminated)


# --------------------------------------------------------------------- commands


def test_output_helpers() -> None:
    h = ServerHarness()
    assert not h.conn.has_output
    h.conn.initiate_connection()
    h.request(1)
    h.conn.send_response(1, RESPONSE)
    h.feed(h.f.ping(1))
    assert h.conn.has_output
    chunks = h.conn.chunks_to_send()
    frames = decode_frames(b"".join(bytes(c) for c in chunks))
    assert [f.type for f in frames] == [SETTINGS, PING, SYN_REPLY]
    assert h.conn.chunks_to_send() == [] and not h.conn.has_output


def test_server_command_errors() -> None:
    h = ServerHarness()
    with pytest.raises(LocalProtocolError):
        h.conn.send_request(request_headers())
    h.request(1, fin=False)
    with pytest.raises(LocalProtocolError, match="needs SYN_REPLY"):
        h.conn.send_data(1, b"x")
    with pytest.raises(LocalProtocolError, match="needs SYN_REPLY"):
        h.conn.send_headers(1, [(b"a", b"b")])
    h.conn.send_response(1, RESPONSE)
    with pytest.raises(LocalProtocolError, match="already has a reply"):
        h.conn.send_response(1, RESPONSE)
    with pytest.raises(FlowControlBlocked):
        h.conn.send_data(1, b"x" * 65537)
    push = h.conn.push_stream(1, PUSH)
    assert push == 2
    with pytest.raises(LocalProtocolError, match="client-initiated"):
        h.conn.send_response(2, RESPONSE)
    with pytest.raises(LocalProtocolError, match="priority"):
        h.conn.push_stream(1, PUSH, priority=8)
    with pytest.raises(StreamClosedError):
        h.conn.send_response(9, RESPONSE)
    with pytest.raises(StreamClosedError):
        h.conn.local_flow_control_window(9)
    with pytest.raises(LocalProtocolError):
        h.conn.update_settings({7: 1000})
    h.conn.update_settings({4: 10})
    assert h.conn.config.max_concurrent_streams == 10
    h.conn.reset_stream(2, StreamStatus.CANCEL)
    assert rsts(h.out()) == [(2, 5)]
    assert h.conn.push_stream(1, PUSH) == 4  # ids keep increasing
    h.conn._next_local_id = 2**31  # exhausted
    assert h.conn.push_stream(1, PUSH) is None


def test_client_command_errors() -> None:
    c = Connection(ConnectionConfig(client_side=True))
    with pytest.raises(LocalProtocolError):
        c.push_stream(1, PUSH)
    with pytest.raises(LocalProtocolError, match="priority"):
        c.send_request(request_headers(), priority=8)
    sid = c.send_request(request_headers(), end_stream=True)
    assert sid == 1
    with pytest.raises(LocalProtocolError):
        c.send_response(1, RESPONSE)
    c._next_local_id = 2**31 + 1
    with pytest.raises(LocalProtocolError, match="exhausted"):
        c.send_request(request_headers())
    c.close_connection()
    with pytest.raises(LocalProtocolError, match="going away"):
        c.send_request(request_headers())


def test_send_data_splits_huge_frames() -> None:
    h = ServerHarness()
    h.feed(h.f.settings([(7, 40 << 20)]), h.f.window_update(0, (40 << 20)))
    h.request(1)
    h.conn.send_response(1, RESPONSE)
    body = b"z" * ((1 << 24) + 100)
    h.conn.send_data(1, body, end_stream=True)
    frames = [f for f in h.out() if f.type == DATA]
    assert [(len(f.payload), f.fin) for f in frames] == [(0xFFFFFF, False), (101, True)]


def test_initiate_connection_client_defaults() -> None:
    c = Connection(ConnectionConfig(client_side=True))
    c.initiate_connection()
    frames = decode_frames(c.data_to_send())
    assert [(f.type, f.settings) for f in frames] == [(SETTINGS, {4: 256})]


# --------------------------------------------------------------------- client role


class ClientHarness:
    def __init__(self, **kw: object) -> None:
        self.conn = Connection(ConnectionConfig(client_side=True, **kw))  # type: ignore[arg-type]
        self.f = FrameFactory()  # plays the server
        self.dec = FrameDecoder()

    def feed(self, *chunks: bytes) -> list:
        return self.conn.receive_data(b"".join(chunks))

    def out(self) -> list:
        return self.dec.feed(self.conn.data_to_send())


def test_client_receives_reply_data_trailers() -> None:
    c = ClientHarness()
    sid = c.conn.send_request(request_headers(), end_stream=True)
    c.out()
    events = c.feed(c.f.syn_reply(sid), c.f.data(sid, b"body"),
                    c.f.headers(sid, [(b"x-t", b"1")], fin=True))
    assert events == [ResponseReceived(sid, RESPONSE, False), DataReceived(sid, b"body", False),
                      HeadersReceived(sid, [(b"x-t", b"1")], True)]
    assert c.conn.open_stream_count == 0
    # A reply for a stream that finished, and for one we never opened.
    assert c.feed(c.f.syn_reply(sid)) == []
    events = c.feed(c.f.syn_reply(99))
    assert isinstance(events[-1], ConnectionTerminated)


def test_client_reply_errors() -> None:
    c = ClientHarness()
    s1 = c.conn.send_request(request_headers())
    s3 = c.conn.send_request(request_headers())
    s5 = c.conn.send_request(request_headers())
    s7 = c.conn.send_request(request_headers())
    c.out()
    ev = c.feed(c.f.headers(s1, [(b"a", b"b")]))  # HEADERS before SYN_REPLY
    assert [(e.stream_id, e.status) for e in ev] == [(s1, 1)]
    ev = c.feed(c.f.data(s3, b"x"))  # DATA before SYN_REPLY
    assert [(e.stream_id, e.status) for e in ev] == [(s3, 1)]
    c.feed(c.f.syn_reply(s5))
    ev = c.feed(c.f.syn_reply(s5))  # second SYN_REPLY
    assert [(e.stream_id, e.status) for e in ev] == [(s5, StreamStatus.STREAM_IN_USE)]
    ev = c.feed(c.f.syn_reply(s7, [(b"Bad", b"x")]))  # bad block → RST, context kept
    assert [(e.stream_id, e.status) for e in ev] == [(s7, 1)]
    assert rsts(c.out()) == [(s1, 1), (s3, 1), (s5, 8), (s7, 1)]
    ev = c.feed(c.f.control(SYN_REPLY, b"\x00\x00"))
    assert isinstance(ev[-1], ConnectionTerminated)


def test_client_pushes() -> None:
    c = ClientHarness(max_concurrent_streams=2)
    sid = c.conn.send_request(request_headers(), end_stream=True)
    c.out()
    c.feed(c.f.syn_reply(sid))
    events = c.feed(
        c.f.syn_stream(2, PUSH, assoc=sid, unidirectional=True),
        c.f.syn_stream(4, PUSH, assoc=sid, unidirectional=True, fin=True),
        c.f.syn_stream(6, PUSH, assoc=0, unidirectional=True),  # not associated
        c.f.syn_stream(8, [(b":path", b"/x")], assoc=sid, unidirectional=True),  # no :host
        c.f.syn_stream(10, PUSH, assoc=99, unidirectional=True),  # unknown assoc: refused
        c.f.syn_stream(12, [(b"Bad", b"x")], assoc=sid, unidirectional=True),  # bad block
        c.f.data(2, b"pushed", fin=True),
    )
    assert events == [PushReceived(2, sid, PUSH, 0, False), PushReceived(4, sid, PUSH, 0, True),
                      DataReceived(2, b"pushed", True)]
    assert rsts(c.out()) == [(6, 1), (8, 1), (10, 3), (12, 1)]
    # Late DATA for a refused push is dropped quietly (no second RST).
    assert c.feed(c.f.data(10, b"x")) == []
    assert rsts(c.out()) == []
    # Over our concurrency limit → refused; accept_push=False → refused; after GOAWAY too.
    c.feed(c.f.syn_stream(14, PUSH, assoc=sid, unidirectional=True))
    c.feed(c.f.syn_stream(16, PUSH, assoc=sid, unidirectional=True))
    c.feed(c.f.syn_stream(18, PUSH, assoc=sid, unidirectional=True))
    assert rsts(c.out()) == [(18, 3)]
    c2 = ClientHarness(accept_push=False)
    s = c2.conn.send_request(request_headers())
    assert c2.feed(c2.f.syn_stream(2, PUSH, assoc=s, unidirectional=True)) == []
    assert rsts(c2.out()) == [(2, 3)]
    c2.conn.close_connection()
    assert c2.feed(c2.f.syn_stream(4, PUSH, assoc=s, unidirectional=True)) == []
    # Odd or non-increasing push ids end the session.
    ev = c2.feed(c2.f.syn_stream(3, PUSH, assoc=s, unidirectional=True))
    assert isinstance(ev[-1], ConnectionTerminated)


def test_client_accepts_push_without_unidirectional_flag() -> None:
    # spdy-transport omits UNIDIRECTIONAL on its pushes; the engine accepts them.
    c = ClientHarness()
    sid = c.conn.send_request(request_headers(), end_stream=True)
    c.feed(c.f.syn_reply(sid))
    assert c.feed(c.f.syn_stream(2, PUSH, assoc=sid)) == [PushReceived(2, sid, PUSH, 0, False)]


def test_client_goaway_marks_streams() -> None:
    c = ClientHarness()
    for _ in range(3):
        c.conn.send_request(request_headers())
    events = c.feed(c.f.goaway(1, 0))
    assert [(type(e).__name__, getattr(e, "stream_id", None)) for e in events] == [
        ("GoAwayReceived", None), ("StreamReset", 3), ("StreamReset", 5)]
    assert list(c.conn.streams) == [1]


def test_client_ping_parity() -> None:
    c = ClientHarness()
    assert c.feed(c.f.ping(2)) == [PingReceived(2)]
    assert c.feed(c.f.ping(3)) == []  # odd: ours, not outstanding
    assert [f.ping_id for f in c.out()] == [2]


def test_client_does_not_reject_content_length() -> None:
    c = ClientHarness()
    sid = c.conn.send_request(request_headers(), end_stream=True)
    ev = c.feed(c.f.syn_reply(sid, [*RESPONSE, (b"content-length", b"3")]),
                c.f.data(sid, b"12345", fin=True))
    assert ev[-1] == DataReceived(sid, b"12345", True)


# --------------------------------------------------------------------- server paths


def test_request_validation() -> None:
    h = ServerHarness()
    cases = [
        (request_headers(extra=[(b":authority", b"x")]), "unknown pseudo-header :authority"),
        (request_headers(path=b"index.html"), "invalid :path b'index.html'"),
        (request_headers(extra=[(b"content-length", b"1x")]), "invalid content-length b'1x'"),
        (request_headers(extra=[(b"content-length", b"1\x002")]), "invalid content-length b'2'"),
    ]
    sid = 1
    for headers, reason in cases:
        assert h.feed(h.f.syn_stream(sid, headers)) == [RequestRejected(sid, 400, reason)]
        sid += 2
    # content-length on a request without a body.
    hdrs = request_headers(extra=[(b"content-length", b"5")])
    assert h.feed(h.f.syn_stream(sid, hdrs, fin=True)) == [
        RequestRejected(sid, 400, "content-length disagrees with the body")]
    sid += 2
    assert h.request(sid, request_headers(path=b"*", method=b"OPTIONS")) == [
        RequestReceived(sid, request_headers(path=b"*", method=b"OPTIONS"), 0, True)]
    sid += 2
    # Client-forbidden headers are dropped before the app sees them.
    headers = request_headers(extra=[(b"accept", b"*/*"), (b"host", b"evil"),
                                     (b"connection", b"close"), (b"x-a", b"1")])
    assert h.request(sid) and True
    sid += 2
    assert h.request(sid, headers) == [RequestReceived(
        sid, request_headers(extra=[(b"accept", b"*/*"), (b"x-a", b"1")]), 0, True)]
    # Validation off: anything goes through.
    h2 = ServerHarness(validate_requests=False)
    bad = [(b"x", b"y"), (b"host", b"h")]
    assert h2.request(1, bad) == [RequestReceived(1, bad, 0, True)]


def test_request_head_splits_pseudo_headers_from_the_rest() -> None:
    headers = request_headers(b"/p?q=1", b"POST", b"h:1", extra=[
        (b"cookie", b"a=1"), (b"accept", b"*/*"), (b"cookie", b"b=2"), (b"x-a", b"1"),
        (b"cookie", b"c=3")])
    assert request_head(headers) == (
        b"POST", b"/p?q=1", b"h:1", b"HTTP/1.1",
        [(b"cookie", b"a=1; b=2; c=3"), (b"accept", b"*/*"), (b"x-a", b"1")])
    # A repeated pseudo-header gives its last value, a missing one b"".
    assert request_head([(b":method", b"GET"), (b":method", b"PUT")]) == (
        b"PUT", b"", b"", b"", [])


@pytest.mark.parametrize("extra", [
    [(b"user-agent", b"ua"), (b"content-length", b"0")],  # plain: checked and split in C
    [(b"cookie", b"a=1\x00b=2")],  # two cookie values (NUL-joined on the wire): Python
    [(b"connection", b"close"), (b"x-a", b"1")],  # a dropped header: the Python path
], ids=["fast", "cookies", "dropped"])
def test_request_received_carries_its_head(extra: list[tuple[bytes, bytes]]) -> None:
    h = ServerHarness()
    headers = request_headers(b"/x", extra=extra)
    (event,) = h.request(1, headers, fin=False)
    assert isinstance(event, RequestReceived)
    assert event.head == request_head(event.headers)
    assert event.head[:4] == (b"GET", b"/x", b"example.com", b"HTTP/1.1")
    stream = h.conn.streams[1]
    assert stream.content_length == (0 if (b"content-length", b"0") in extra else None)
    # Validation off: the head is still there, split in Python.
    (event,) = ServerHarness(validate_requests=False).request(1, headers)
    assert event.head == request_head(event.headers)


def test_rejected_stream_discards_body() -> None:
    h = ServerHarness()
    events = h.feed(h.f.syn_stream(1, request_headers(omit=[b":host"])),
                    h.f.data(1, b"x" * 40000), h.f.headers(1, [(b"a", b"b")]),
                    h.f.data(1, b"y", fin=True))
    assert events == [RequestRejected(1, 400, "missing :host")]
    assert not h.conn.stream_is_open(1)
    frames = h.out()
    assert [(f.type, f.stream_id) for f in frames] == [(WINDOW_UPDATE, 0), (SYN_REPLY, 1)]
    h.request(3, request_headers(omit=[b":path"]), fin=False)
    assert h.feed(h.f.headers(3, [(b"t", b"1")], fin=True)) == []
    assert not h.conn.stream_is_open(3)


def test_body_exceeds_content_length() -> None:
    h = ServerHarness()
    hdrs = request_headers(method=b"POST", extra=[(b"content-length", b"3")])
    events = h.feed(h.f.syn_stream(1, hdrs), h.f.data(1, b"12345"))
    assert events == [RequestReceived(1, hdrs, 0, False),
                      RequestRejected(1, 400, "body exceeds content-length 3")]
    # Once the reply went out, the same fault is an RST.
    events = h.feed(h.f.syn_stream(3, hdrs))
    h.conn.send_response(3, RESPONSE)
    h.out()
    events = h.feed(h.f.data(3, b"1234"))
    assert [(type(e), e.stream_id, e.status) for e in events] == [(StreamReset, 3, 1)]
    # Trailers end a short body: 400 before the reply, nothing when already finished.
    h.feed(h.f.syn_stream(5, hdrs), h.f.data(5, b"12"))
    assert h.feed(h.f.headers(5, [(b"t", b"1")], fin=True))[-1] == RequestRejected(
        5, 400, "content-length 3 but 2 body bytes")
    h.feed(h.f.syn_stream(7, hdrs), h.f.data(7, b"1"))
    h.conn.send_response(7, RESPONSE, end_stream=True)
    ev = h.feed(h.f.data(7, b"", fin=True))
    assert ev == [DataReceived(7, b"", True)]  # both sides done: nothing to reject


def test_headers_frame_paths() -> None:
    h = ServerHarness()
    h.request(1, fin=False)
    h.request(3, fin=True)
    assert h.feed(h.f.headers(1)) == [HeadersReceived(1, [], False)]  # length 4: no block
    ev = h.feed(h.f.headers(3, [(b"a", b"b")]))  # after FIN
    assert [(e.stream_id, e.status) for e in ev] == [(3, 9)]
    ev = h.feed(h.f.headers(1, [(b"A", b"b")]))  # bad block
    assert [(e.stream_id, e.status) for e in ev] == [(1, 1)]
    assert rsts(h.out()) == [(3, 9), (1, 1)]
    ev = h.feed(h.f.control(HEADERS, b"\x00\x00\x00\x00"))
    assert isinstance(ev[-1], ConnectionTerminated)
    h = ServerHarness()
    assert isinstance(h.feed(h.f.control(HEADERS, b"\x00"))[-1], ConnectionTerminated)
    h = ServerHarness()
    assert isinstance(h.feed(h.f.control(SYN_REPLY, b"\x00\x00\x00\x01"))[-1],
                      ConnectionTerminated)
    h = ServerHarness()
    assert isinstance(h.feed(h.f.control(SYN_STREAM, b"\x00" * 9))[-1], ConnectionTerminated)
    h = ServerHarness()
    assert isinstance(h.feed(h.f.rst(0, 5))[-1], ConnectionTerminated)
    h = ServerHarness()
    assert isinstance(h.feed(h.f.headers(1, [(b"a", b"b")], block=b"\x00junk"))[-1],
                      ConnectionTerminated)


def test_finished_stream_late_frames() -> None:
    h = ServerHarness()
    h.request(1)
    h.conn.send_response(1, RESPONSE, end_stream=True)
    h.out()
    assert h.feed(h.f.data(1, b"x")) == []
    assert h.feed(h.f.headers(1, [(b"a", b"b")])) == []
    assert h.feed(h.f.data(1, b"x")) == []  # only one RST per stream
    assert rsts(h.out()) == [(1, 9)]
    assert h.feed(h.f.rst(1, 5)) == []  # RST for an unknown stream: ignored


def test_empty_frame_limits() -> None:
    h = ServerHarness(limits=Limits(max_empty_frames=3))
    h.request(1, fin=False)
    assert h.feed(*[h.f.data(1)] * 3) == [DataReceived(1, b"", False)] * 3
    ev = h.feed(h.f.data(1))
    assert [(e.stream_id, e.status) for e in ev] == [(1, 1)]
    h.request(3, fin=False)
    assert len(h.feed(*[h.f.headers(3)] * 3)) == 3
    ev = h.feed(h.f.headers(3))
    assert [(e.stream_id, e.status) for e in ev] == [(3, 1)]


def test_unknown_oversized_frame_in_one_read() -> None:
    h = ServerHarness(limits=Limits(max_frame_size=100))
    assert h.feed(h.f.control(0x99, b"q" * 500), h.f.ping(1)) == [PingReceived(1)]


def test_v3_data_frame_over_window_refused_unbuffered() -> None:
    h = ServerHarness(version=Version.SPDY3)
    h.request(1, fin=False)
    ev = h.feed(h.f.data(1, length=65537))
    assert isinstance(ev[-1], ConnectionTerminated)
    assert len(h.conn._inbuf) == 0


# --------------------------------------------------------------------- limits


def test_settings_limits() -> None:
    h = ServerHarness()
    ev = h.feed(h.f.settings([(i, 0) for i in range(1, 18)]))
    assert isinstance(ev[-1], ConnectionTerminated)
    h = ServerHarness()
    for _ in range(10):
        assert len(h.feed(h.f.settings([(4, 10)]))) == 1
    ev = h.feed(h.f.settings([(4, 10)]))
    assert isinstance(ev[-1], ConnectionTerminated) and "flood" in ev[-1].reason
    # With a clock the budget refills at settings_rate per second.
    now = [0.0]
    h = ServerHarness(clock=lambda: now[0])
    for _ in range(100):
        now[0] += 0.1
        assert len(h.feed(h.f.settings([(4, 10)]))) == 1


def test_rapid_reset_with_clock() -> None:
    now = [0.0]
    h = ServerHarness(clock=lambda: now[0])
    rate = h.conn.limits.reset_rate
    for i in range(3000):
        now[0] += 1 / rate  # exactly the sustained rate: never runs dry
        h.request(2 * i + 1, fin=False)
        assert h.feed(h.f.rst(2 * i + 1, 5)) == [StreamReset(2 * i + 1, 5, True)]
    assert not h.conn.terminated
    for i in range(3000, 3000 + h.conn.limits.reset_burst + 2):  # no time passes
        h.request(2 * i + 1, fin=False)
        ev = h.feed(h.f.rst(2 * i + 1, 5))
        if ev and isinstance(ev[-1], ConnectionTerminated):
            break
    assert h.conn.terminated


def test_refused_streams_count_as_resets() -> None:
    h = ServerHarness(max_concurrent_streams=1, limits=Limits(reset_burst=100))
    h.request(1, fin=False)
    for i in range(1, 101):
        assert h.feed(h.f.syn_stream(2 * i + 1)) == []
    ev = h.feed(h.f.syn_stream(203))
    assert isinstance(ev[-1], ConnectionTerminated)


def test_completed_streams_refund_the_budget() -> None:
    h = ServerHarness(limits=Limits(reset_burst=2))
    sid = 1
    for _ in range(50):  # complete, cancel, complete, cancel, ...
        h.request(sid)
        h.conn.send_response(sid, RESPONSE, end_stream=True)
        h.request(sid + 2, fin=False)
        assert h.feed(h.f.rst(sid + 2, 5)) == [StreamReset(sid + 2, 5, True)]
        sid += 4
    assert not h.conn.terminated


def test_budget_and_closed_streams() -> None:
    b = Budget(2, 1.0, None)
    assert b.spend() and b.spend() and not b.spend()
    b.refund()
    b.refund()
    b.refund()
    assert b.spend()
    now = [0.0]
    b = Budget(1, 2.0, lambda: now[0])
    assert b.spend() and not b.spend()
    now[0] += 1.0
    assert b.spend()
    closed = ClosedStreams(3)
    for i in range(1, 6):
        closed.add(i, ClosedStreams.RESET)
    assert len(closed) == 3 and closed.get(1) is None and closed.get(5) == ClosedStreams.RESET
    closed.add(3, ClosedStreams.FINISHED)  # known id: updated in place, nothing evicted
    assert [closed.get(i) for i in (3, 4, 5)] == [ClosedStreams.FINISHED, ClosedStreams.RESET,
                                                  ClosedStreams.RESET]
    closed.add(6, ClosedStreams.RESET)  # evicts the oldest, 3, however it was updated
    assert closed.get(3) is None and len(closed) == 3
    for i in range(7, 1000, 2):
        closed.add(i, ClosedStreams.FINISHED)
    assert len(closed) == 3 and [closed.get(i) for i in (995, 997, 999)] == [2, 2, 2]
    nothing = ClosedStreams(0)
    nothing.add(1, ClosedStreams.RESET)
    assert len(nothing) == 0 and nothing.get(1) is None


def test_closed_stream_memory_eviction() -> None:
    h = ServerHarness(limits=Limits(max_closed_streams=4))
    for i in range(10):
        h.request(2 * i + 1)
        h.conn.send_response(2 * i + 1, RESPONSE, end_stream=True)
    assert len(h.conn._closed_streams) == 4
    h.out()
    # Stream 1 is forgotten: late DATA now looks like a never-opened stream.
    assert h.feed(h.f.data(1, b"x"), h.f.data(19, b"x")) == []
    assert rsts(h.out()) == [(1, 2), (19, 9)]


def test_queued_control_frames_limit() -> None:
    h = ServerHarness(limits=Limits(max_queued_control_frames=5))
    ev = h.feed(*[h.f.ping(2 * i + 1) for i in range(6)])
    assert ev[:6] == [PingReceived(2 * i + 1) for i in range(6)]
    assert isinstance(ev[-1], ConnectionTerminated)
    h = ServerHarness(limits=Limits(max_queued_control_frames=5))
    for i in range(10):
        assert h.feed(h.f.ping(2 * i + 1)) == [PingReceived(2 * i + 1)]
        h.conn.data_to_send()  # draining keeps the session alive


def test_encode_accepts_one_shot_iterables() -> None:
    # Commands take any iterable; a generator with a repeated name must still be merged.
    gen = (pair for pair in [(b"a", b"1"), (b"B", b"2"), (b"a", b"3")])
    assert parse_nv_block(encode_nv_block(gen)) == [(b"a", b"1"), (b"a", b"3"), (b"b", b"2")]
    h = ServerHarness()
    h.request(1)
    h.conn.send_response(1, (p for p in [*RESPONSE, (b"x", b"1"), (b"X", b"2")]))
    assert h.out()[0].headers == [*RESPONSE, (b"x", b"1"), (b"x", b"2")]


def test_nv_codec_uncached_names_and_truncation() -> None:
    # Names never seen before go through validation in both encode paths.
    fresh = [(b"x-fresh-one", b"1"), (b"x-fresh-one", b"2"), (b"x-Fresh-Two", b"3")]
    assert parse_nv_block(encode_nv_block(fresh)) == [
        (b"x-fresh-one", b"1"), (b"x-fresh-one", b"2"), (b"x-fresh-two", b"3")]
    assert parse_nv_block(encode_nv_block([(b"x-fresh-three", b"")])) == [
        (b"x-fresh-three", b"")]
    # Count 2 with room for it, but the second pair's length field is cut off.
    raw = b"\x00\x00\x00\x02\x00\x00\x00\x01a\x00\x00\x00\x0a0123456789\x00\x00"
    with pytest.raises(HeaderBlockError, match="truncated"):
        parse_nv_block(raw)


def test_nv_codec_hop_by_hop_and_merged_value_errors() -> None:
    assert parse_nv_block(encode_nv_block([(b"Connection", b"close"), (b"a", b"1")])) == [
        (b"a", b"1")]
    with pytest.raises(LocalProtocolError):
        encode_nv_block([(b"a", b"1"), (b"a", b"x\r\ny")])


def test_has_partial_input() -> None:
    h = ServerHarness()
    ping = h.f.ping(1)
    assert not h.conn.has_partial_input
    h.feed(ping[:5])
    assert h.conn.has_partial_input
    h.feed(ping[5:])
    assert not h.conn.has_partial_input
    h.feed(h.f.control(0x1234, b"", length=100_000))  # skipping an oversized unknown frame
    assert h.conn.has_partial_input and len(h.conn._inbuf) == 0


def test_client_corrupt_reply_block_ends_session() -> None:
    c = ClientHarness()
    sid = c.conn.send_request(request_headers(), end_stream=True)
    ev = c.feed(c.f.syn_reply(sid, block=b"\x00not zlib"))
    assert len(ev) == 1 and isinstance(ev[0], ConnectionTerminated)


def test_encode_nv_block_pair_cache_lists_and_hop_by_hop() -> None:
    from spdyasgi.spdy import headers as nv

    expected = nv.encode_nv_block([(b"a", b"1"), (b"b", b"2")])
    # ASGI allows [name, value] lists; they are not hashable but encode the same.
    assert nv.encode_nv_block([[b"a", b"1"], [b"b", b"2"]]) == expected  # type: ignore[list-item]
    # Repeated names take the merging path, which drops hop-by-hop headers too.
    merged = nv.encode_nv_block([(b"x", b"1"), (b"Connection", b"close"), (b"X", b"2")])
    assert nv.parse_nv_block(merged) == [(b"x", b"1"), (b"x", b"2")]
    # The cache is bounded: filling it clears it instead of growing without end.
    for i in range(nv._PAIR_CACHE_SIZE + 10):
        nv.encode_nv_block([(b"date", str(i).encode())])
    assert len(nv._ENCODED_PAIRS) <= nv._PAIR_CACHE_SIZE
    # A bad value behind a repeated name is still refused on the merging path.
    with pytest.raises(nv.LocalProtocolError):
        nv.encode_nv_block([(b"x", b"1"), (b"x", b"2"), (b"y", b"a\nb")])


def _split_feed(h: ServerHarness, data: bytes, cuts: list[int]) -> list[object]:
    events: list[object] = []
    last = 0
    for cut in [*cuts, len(data)]:
        events += h.conn.receive_data(data[last:cut])
        last = cut
    return events


def _data_by_stream(events: list[object]) -> list[tuple[str, object]]:
    """Events with consecutive DataReceived pieces of one stream merged (how they split
    across reads is not part of the contract; their order, bytes and FIN are)."""
    merged: list[tuple[str, object]] = []
    for event in events:
        if isinstance(event, DataReceived):
            if merged and merged[-1][0] == "data" and not merged[-1][1][2]:  # type: ignore[index]
                sid, body, _ = merged[-1][1]  # type: ignore[misc]
                assert sid == event.stream_id
                merged[-1] = ("data", (sid, body + event.data, event.end_stream))
                continue
            merged.append(("data", (event.stream_id, event.data, event.end_stream)))
        else:
            merged.append((type(event).__name__, event))
    return merged


def test_large_data_frames_arrive_in_pieces_with_the_same_bytes_in_order() -> None:
    big = bytes(range(256)) * 800  # 204,800 bytes: delivered as it arrives, not buffered
    whole = ServerHarness(initial_window_size=1 << 20, session_window_size=1 << 22,
                          initiate=True)
    parts = ServerHarness(initial_window_size=1 << 20, session_window_size=1 << 22,
                          initiate=True)
    wire = (whole.f.syn_stream(1, fin=False) + whole.f.data(1, big)
            + whole.f.data(1, b"tail", fin=True) + whole.f.ping(1))
    parts.f = whole.f  # same compressed bytes for both
    expected = whole.conn.receive_data(wire)
    assert [type(e).__name__ for e in expected] == [
        "RequestReceived", "DataReceived", "DataReceived", "PingReceived"]
    assert expected[1].data == big  # type: ignore[attr-defined]
    syn_len = len(whole.f.syn_stream(3, fin=False))  # any SYN_STREAM: header + block size
    cuts = [40, 100 + syn_len, 70_000, 70_001, 150_000, len(wire) - 10]
    got = _split_feed(parts, wire, sorted(set(c for c in cuts if c < len(wire))))
    pieces = [e for e in got if isinstance(e, DataReceived) and len(e.data) != 4]
    assert len(pieces) > 1, "a frame spread over reads is delivered as it arrives"
    assert all(not e.end_stream for e in pieces)
    assert _data_by_stream(got) == _data_by_stream(expected)
    assert not parts.conn.has_partial_input
    # Every piece is debited from the session window exactly once.
    assert parts.conn.session_recv_window == whole.conn.session_recv_window
    assert whole.conn.session_recv_window == (1 << 22) - len(big) - 4


def test_large_data_frame_with_fin_ends_the_stream_on_its_last_piece() -> None:
    h = ServerHarness(initial_window_size=1 << 20, session_window_size=1 << 22, initiate=True)
    h.request(1, fin=False)
    frame = h.f.data(1, b"y" * 100_000, fin=True)
    first = h.conn.receive_data(frame[:30_000])
    assert [(type(e).__name__, len(e.data), e.end_stream) for e in first] == [  # type: ignore[attr-defined]
        ("DataReceived", 30_000 - 8, False)]
    last = h.conn.receive_data(frame[30_000:])
    assert [(len(e.data), e.end_stream) for e in last] == [  # type: ignore[attr-defined]
        (100_000 - 30_000 + 8, True)]


def test_large_data_frame_for_a_stream_reset_midway_is_dropped_and_credited() -> None:
    h = ServerHarness(initial_window_size=1 << 20, session_window_size=1 << 20, initiate=True)
    h.request(1, fin=False)
    frame = h.f.data(1, b"z" * 900_000)
    events = h.conn.receive_data(frame[:100_000])
    assert [type(e).__name__ for e in events] == ["DataReceived"]
    h.conn.reset_stream(1)
    h.out()
    assert h.conn.receive_data(frame[100_000:]) == []
    assert not h.conn.has_partial_input
    # The rest of the frame went back to the session window without the app's help.
    updates = [f for f in h.out() if f.type == FrameType.WINDOW_UPDATE and f.stream_id == 0]
    assert sum(f.delta for f in updates) == 900_000 - (100_000 - 8)  # type: ignore[attr-defined]
    assert h.feed(h.f.ping(3))


def test_large_data_frame_on_stream_zero_ends_the_session_at_its_header() -> None:
    h = ServerHarness(initial_window_size=1 << 20, session_window_size=1 << 22, initiate=True)
    frame = h.f.data(0, b"x" * 100_000)
    events = h.conn.receive_data(frame[:50_000])
    assert isinstance(events[-1], ConnectionTerminated)
    assert not h.conn.has_partial_input
    assert h.conn.receive_data(frame[50_000:]) == []


def test_status_names_for_logs_and_errors() -> None:
    from spdyasgi.spdy.constants import session_status_name, stream_status_name

    assert stream_status_name(3) == "REFUSED_STREAM"
    assert stream_status_name(99) == "status 99"
    assert session_status_name(1) == "PROTOCOL_ERROR"
    assert session_status_name(7) == "status 7"


def _read_through_one_buffer(conn: Connection, wire: bytes, sizes: list[int],
                             size: int = 1 << 16) -> list[tuple[str, int, bytes, bool]]:
    """Feed `wire` the way a BufferedProtocol does: every read lands in the same buffer,
    which is scribbled over after each call so a view kept too long would show it."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    seen: list[tuple[str, int, bytes, bool]] = []
    pos = 0
    index = 0
    while pos < len(wire):
        take = min(sizes[index % len(sizes)], size, len(wire) - pos)
        index += 1
        buffer[:take] = wire[pos:pos + take]
        pos += take
        for event in conn.receive_data(view[:take]):
            if isinstance(event, (DataReceived, DataViewed)):
                seen.append((type(event).__name__, event.stream_id, bytes(event.data),
                             event.end_stream))
        buffer[:] = b"\xee" * size
    return seen


def _merge(seen: list[tuple[str, int, bytes, bool]]) -> bytes:
    return b"".join(data for _, _, data, _ in seen)


@pytest.mark.parametrize("sizes", [[1 << 16], [7, 1000, 30_000], [65_000, 3]])
def test_borrowed_data_views_of_a_reused_buffer_carry_the_right_bytes(sizes: list[int]) -> None:
    c = ClientHarness(borrow_data=True, initial_window_size=1 << 20,
                      session_window_size=1 << 22)
    c.conn.initiate_connection()
    sid = c.conn.send_request(request_headers(), end_stream=True)
    c.out()
    body = [bytes([n]) * n * 100 for n in range(1, 40)] + [b"z" * 200_000, b"end"]
    wire = c.f.syn_reply(sid) + b"".join(c.f.data(sid, chunk) for chunk in body[:-1])
    wire += c.f.data(sid, body[-1], fin=True)
    seen = _read_through_one_buffer(c.conn, wire, sizes)
    assert _merge(seen) == b"".join(body)
    assert seen[-1][3] is True and not any(end for *_, end in seen[:-1])
    kinds = {kind for kind, *_ in seen}
    assert "DataViewed" in kinds  # pieces straight from the buffer, not copied
    assert not c.conn.has_partial_input


def test_memoryview_input_without_borrowing_gives_bytes() -> None:
    c = ClientHarness(initial_window_size=1 << 20, session_window_size=1 << 22)
    c.conn.initiate_connection()
    sid = c.conn.send_request(request_headers(), end_stream=True)
    c.out()
    wire = c.f.syn_reply(sid) + c.f.data(sid, b"a" * 100_000) + c.f.data(sid, b"b", fin=True)
    seen = _read_through_one_buffer(c.conn, wire, [30_000])
    assert {kind for kind, *_ in seen} == {"DataReceived"}
    assert _merge(seen) == b"a" * 100_000 + b"b"


def test_header_blocks_replayed_only_for_levels_without_matching() -> None:
    block = encode_nv_block([(b":status", b"200"), (b"x-replay-test", b"1")])
    for level, replayed in ((0, True), (HUFFMAN_ONLY, True), (6, False)):
        c = HeaderCompressor(level)
        c.compress(b"\x00\x00\x00\x00")  # the first block carries the zlib header
        first = c.compress(block)
        assert (c.compress(block) is first) == replayed
        # A fresh session's first block is never a replay (it needs the zlib header).
        opening = HeaderCompressor(level).compress(block)
        assert opening != first
        assert HeaderDecompressor().inflate(opening) == block


def test_pure_python_parser_is_used_without_the_c_extension() -> None:
    """Installs without a compiler have no _nvfast: the same parser, in Python."""
    script = (
        "import sys; sys.modules['spdyasgi.spdy._nvfast'] = None\n"
        "from spdyasgi.spdy import headers\n"
        "assert headers._parse_plain is None\n"
        "raw = headers.encode_nv_block([(b':method', b'GET'), (b'x-a', b'1')])\n"
        "assert headers.parse_nv_block(raw) == [(b':method', b'GET'), (b'x-a', b'1')]\n"
        "from spdyasgi.spdy import request_heads\n"
        "assert request_heads.scan_request is None\n"
        "from spdyasgi.spdy import Connection, ConnectionConfig, RequestReceived\n"
        "client = Connection(ConnectionConfig(client_side=True))\n"
        "server = Connection(ConnectionConfig(client_side=False))\n"
        "client.initiate_connection()\n"
        "client.send_request([(b':method', b'GET'), (b':path', b'/'), (b':version', "
        "b'HTTP/1.1'), (b':host', b'h'), (b':scheme', b'http')], end_stream=True)\n"
        "(event,) = [e for e in server.receive_data(client.data_to_send())\n"
        "            if isinstance(e, RequestReceived)]\n"
        "assert event.head == (b'GET', b'/', b'h', b'HTTP/1.1', []), event.head\n"
        "print('python parser ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "python parser ok"


def test_c_extension_is_built_in_this_install() -> None:
    """The test environment builds it (setup.py); losing it silently would cost speed.
    The suite runs a second time with SPDYASGI_NO_EXTENSION=1: then nothing may use it."""
    import importlib
    import os

    from spdyasgi.spdy import frames, headers, request_heads, stream

    built = importlib.import_module("spdyasgi.spdy._nvfast")
    inflater = HeaderDecompressor()._c_inflater
    if os.environ.get("SPDYASGI_NO_EXTENSION", "") not in ("", "0"):
        assert headers._parse_plain is None
        assert request_heads.scan_request is None
        assert frames.reply_with_data is frames._reply_with_data
        assert stream.Stream is stream.PyStream
        assert inflater is None
    else:
        assert headers._parse_plain is built.parse_plain
        assert request_heads.scan_request is built.scan_request
        assert frames.reply_with_data is built.reply_with_data
        assert stream.Stream is built.Stream
        assert isinstance(inflater, built.Inflater)


@pytest.mark.parametrize("value, used", [("1", False), ("0", True), ("", True)])
def test_no_extension_switch(value: str, used: bool) -> None:
    """SPDYASGI_NO_EXTENSION=1 runs the pure-Python engine although the C one is built."""
    import os
    import subprocess
    import sys

    script = ("from spdyasgi.spdy import accel, frames\n"
              "print(accel.nvfast is not None, frames.reply_with_data.__module__)\n")
    env = {**os.environ, "SPDYASGI_NO_EXTENSION": value}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, check=True)
    module = "spdyasgi.spdy._nvfast" if used else "spdyasgi.spdy.frames"
    assert done.stdout.split() == [str(used), module]


def test_header_replay_cache_stays_bounded_and_correct() -> None:
    from spdyasgi.spdy import headers

    c = HeaderCompressor(0)
    d = HeaderDecompressor()
    for n in range(headers._REPLAY_ENTRIES * 2 + 10):  # churning values (dates, lengths)
        block = encode_nv_block([(b"content-length", str(n).encode())])
        assert d.inflate(c.compress(block)) == block
        assert len(headers._REPLAYS[0]) <= headers._REPLAY_ENTRIES


def test_header_blocks_larger_than_the_first_inflate_buffer() -> None:
    from spdyasgi.spdy import headers

    c = HeaderCompressor(6)
    d = HeaderDecompressor(max_block_size=200_000)
    for size in (headers._FIRST_INFLATE - 40, headers._FIRST_INFLATE, 70_000, 150_000):
        block = encode_nv_block([(b"x-big", bytes(range(33, 127)) * (size // 94 + 1))])
        assert d.inflate(c.compress(block)) == block
    small = HeaderDecompressor(max_block_size=1000)
    c2 = HeaderCompressor(6)
    with pytest.raises(CompressionError):
        small.inflate(c2.compress(encode_nv_block([(b"x", b"y" * 1500)])))


@pytest.mark.parametrize("level", [0, HUFFMAN_ONLY, 6])
def test_cached_reply_blocks_match_fresh_encoding(level: int) -> None:
    """`encode_response` (whole compressed reply blocks from a cache) gives every session
    the bytes `encode` would, decodable in order; lists of lists still work; a refused
    head raises each time instead of being cached."""
    from spdyasgi.spdy.headers import RESPONSE_PSEUDO

    head = ((b":status", b"200"), (b":version", b"HTTP/1.1"), (b"x-cache-test", b"1"))
    variants = [head, list(head), [list(pair) for pair in head]]
    for _ in range(2):  # a second session meets a warm cache
        cached, fresh = HeaderCompressor(level), HeaderCompressor(level)
        inflater = HeaderDecompressor()
        for headers in variants * 2:
            block = cached.encode_response(headers)  # type: ignore[arg-type]
            assert block == fresh.encode(headers, RESPONSE_PSEUDO)  # type: ignore[arg-type]
            assert parse_nv_block(inflater.inflate(block)) == list(head)
        for _ in range(2):
            with pytest.raises(LocalProtocolError):
                cached.encode_response(((b":path", b"/"), *head))


def test_c_stream_record_matches_the_python_one() -> None:
    """The C Stream (made once per request) has exactly the Python class's fields, the
    same defaults, keeps what is stored and refuses anything else, as slots do."""
    nv = pytest.importorskip("spdyasgi.spdy._nvfast")
    from spdyasgi.spdy.stream import PyStream

    fields = PyStream.__slots__
    for args, kwargs in (((7, 2, 1 << 20, 65536), {}),
                         ((), {"stream_id": 7, "priority": 2, "send_window": 1 << 20,
                               "recv_window": 65536})):
        c, py = nv.Stream(*args, **kwargs), PyStream(*args, **kwargs)
        assert {f: getattr(c, f) for f in fields} == {f: getattr(py, f) for f in fields}
        for value in (0, -(2**31), 2**31 - 1, True, None, [3, 5]):
            for f in fields:
                for record in (c, py):
                    setattr(record, f, value)
                assert getattr(c, f) == getattr(py, f) == value
        for record in (c, py):
            with pytest.raises(AttributeError):
                record.not_a_field = 1  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        nv.Stream(1, 2, 3)
