"""One header policy: connection-specific headers are dropped from requests (the same in
the C fast path and the Python check) and stripped from everything we send; pseudo-headers
in what the application gives (reply, trailers, push) are refused."""

from __future__ import annotations

import pytest

from spdyasgi.spdy import LocalProtocolError, RequestReceived
from spdyasgi.spdy.constants import (
    CONNECTION_SPECIFIC_HEADERS,
    DROPPED_REQUEST_HEADERS,
    KEPT_REQUEST_HEADER,
)
from spdyasgi.spdy.request_heads import scan_request

from .factory import DATA, HEADERS, SYN_REPLY, SYN_STREAM, ServerHarness, request_headers

STATUS = [(b":status", b"200"), (b":version", b"HTTP/1.1")]


def test_the_one_list() -> None:
    assert set(CONNECTION_SPECIFIC_HEADERS) == {
        b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade",
        b"te"}
    assert set(DROPPED_REQUEST_HEADERS) == {*CONNECTION_SPECIFIC_HEADERS, b"host"}
    name, value = KEPT_REQUEST_HEADER
    assert (name, value) == (b"te", b"trailers")


@pytest.mark.parametrize("python_path", [False, True])
@pytest.mark.parametrize("name", sorted(DROPPED_REQUEST_HEADERS))
def test_connection_specific_request_headers_never_reach_the_app(
        name: bytes, python_path: bool) -> None:
    # A split cookie (two cookie headers once parsed) takes the Python check, not the C scan.
    extra = [(b"cookie", b"a=1\x00b=2")] if python_path else []
    headers = request_headers(extra=[(b"accept", b"*/*"), (name, b"x"), *extra])
    if not python_path and scan_request is not None:
        assert scan_request(headers) is None  # the C path leaves it to the Python check
    h = ServerHarness()
    (event,) = h.request(1, headers)
    assert isinstance(event, RequestReceived)
    assert name not in [n for n, _ in event.headers]
    assert name not in [n for n, _ in event.head[4]]
    assert (b"accept", b"*/*") in event.headers
    assert h.out() == []  # served, not rejected


@pytest.mark.parametrize("python_path", [False, True])
def test_te_trailers_is_kept_and_other_te_values_are_dropped(python_path: bool) -> None:
    extra = [(b"cookie", b"a=1\x00b=2")] if python_path else []
    h = ServerHarness()
    (kept,) = h.request(1, request_headers(extra=[(b"te", b"trailers"), *extra]))
    (dropped,) = h.request(3, request_headers(extra=[(b"te", b"gzip"), *extra]))
    assert (b"te", b"trailers") in kept.headers  # type: ignore[attr-defined]
    assert b"te" not in [n for n, _ in dropped.headers]  # type: ignore[attr-defined]
    if not python_path and scan_request is not None:
        assert scan_request(request_headers(extra=[(b"te", b"trailers")])) is not None


def test_responses_trailers_and_pushes_strip_connection_specific_headers() -> None:
    h = ServerHarness()
    h.request(1, fin=True)
    h.request(3, fin=True)
    junk = [(name, b"x") for name in CONNECTION_SPECIFIC_HEADERS]
    h.conn.send_response(1, [*STATUS, *junk, (b"x-kept", b"1")])
    h.conn.send_data(1, b"body")
    h.conn.send_headers(1, [*junk, (b"x-trailer", b"2")], end_stream=True)
    h.conn.respond(3, [*STATUS, (b"Transfer-Encoding", b"chunked"), (b"TE", b"x")], b"b")
    frames = [fr for fr in h.out() if fr.type != DATA]
    assert [fr.type for fr in frames] == [SYN_REPLY, HEADERS, SYN_REPLY]
    assert frames[0].headers == [*STATUS, (b"x-kept", b"1")]
    assert frames[1].headers == [(b"x-trailer", b"2")]
    assert frames[2].headers == STATUS


@pytest.mark.parametrize("app_header", [(b":status", b"302"), (b":version", b"HTTP/1.0"),
                                        (b":path", b"/x"), (b":STATUS", b"302"),
                                        (b":method", b"GET")])
def test_pseudo_headers_from_the_application_are_refused(app_header: tuple[bytes, bytes]
                                                         ) -> None:
    h = ServerHarness()
    h.request(1, fin=True)
    for _ in range(2):  # the second time past the block cache too
        with pytest.raises(LocalProtocolError, match="pseudo-header"):
            h.conn.send_response(1, [*STATUS, (b"x-app", b"1"), app_header])
        with pytest.raises(LocalProtocolError, match="pseudo-header"):
            h.conn.respond(1, [*STATUS, app_header, (b"x-app", b"1")], b"body")
    assert h.out() == []  # nothing was queued: the stream can still get a proper reply
    h.conn.send_response(1, [*STATUS, (b"x-app", b"1")])
    for trailer in ([app_header], [(b":status", b"200")], [(b"x", b"1"), (b":a", b"b")]):
        with pytest.raises(LocalProtocolError, match="pseudo-header"):
            h.conn.send_headers(1, trailer, end_stream=True)
    h.conn.send_headers(1, [(b"x-trailer", b"1")], end_stream=True)
    frames = h.out()
    assert [fr.type for fr in frames] == [SYN_REPLY, HEADERS]
    assert frames[0].headers == [*STATUS, (b"x-app", b"1")]


def test_push_headers_allow_only_the_push_pseudo_headers_once() -> None:
    h = ServerHarness()
    h.request(1, fin=True)
    h.conn.send_response(1, STATUS)
    promised = [(b":scheme", b"https"), (b":host", b"h"), (b":path", b"/a.css"),
                (b":method", b"GET"), *STATUS]
    for bad in ([(b":status", b"302")], [(b":authority", b"h")], [(b":path", b"/b")]):
        with pytest.raises(LocalProtocolError, match="pseudo-header"):
            h.conn.push_stream(1, [*promised, *bad])
    push_id = h.conn.push_stream(1, promised)
    assert push_id == 2
    with pytest.raises(LocalProtocolError, match="pseudo-header"):
        h.conn.send_headers(2, [(b":status", b"302")])
    frames = h.out()
    assert [fr.type for fr in frames] == [SYN_REPLY, SYN_STREAM]
    assert frames[1].headers == promised
