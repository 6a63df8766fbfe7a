"""Interoperability with an independent implementation (node-spdy's spdy-transport).

1. Frames spdy-transport produced (committed in tests/vectors/spdy_transport.json, with the
   script that regenerates them) decode correctly with our engine's primitives and, for
   whole client sessions, through a server `Connection`.
2. Frames our engine produces decode in spdy-transport (tests/peers/decode.js), when node
   and the npm packages are installed.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from spdyasgi.spdy import (
    Connection,
    ConnectionConfig,
    DataReceived,
    RequestReceived,
    SettingId,
    StreamStatus,
)
from spdyasgi.spdy.frames import FRAME_HEADER, UINT32, UINT32X2
from spdyasgi.spdy.headers import HeaderDecompressor
from tests import peers

VECTORS = peers.load_vectors()


def _as_dict(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in headers:
        key, text = name.decode(), value.decode()
        if key in result:
            previous = result[key]
            result[key] = [*previous, text] if isinstance(previous, list) else [previous, text]
        else:
            result[key] = text
    return result


def _decode(data: bytes) -> list[dict[str, Any]]:
    """Decode one direction of a session with the engine's own layouts and decompressor."""
    inflater = HeaderDecompressor()
    out: list[dict[str, Any]] = []
    pos = 0
    while pos < len(data):
        word, flags_length = FRAME_HEADER.unpack_from(data, pos)
        length = flags_length & 0xFFFFFF
        flags = flags_length >> 24
        payload = data[pos + 8: pos + 8 + length]
        pos += 8 + length
        if not word & 0x80000000:
            frame: dict[str, Any] = {"type": "DATA", "stream_id": word, "flags": flags,
                                     "data_length": length}
            if length:
                frame["data_hex"] = payload.hex()
            out.append(frame)
            continue
        kind = word & 0xFFFF
        if kind == 1:
            stream_id, assoc = UINT32X2.unpack_from(payload, 0)
            frame = {"type": "SYN_STREAM", "stream_id": stream_id, "associated": assoc,
                     "priority": payload[8] >> 5, "flags": flags,
                     "headers": _as_dict(inflater.decode(payload[10:]))}
        elif kind in (2, 8):
            (stream_id,) = UINT32.unpack_from(payload, 0)
            frame = {"type": "SYN_REPLY" if kind == 2 else "HEADERS", "stream_id": stream_id,
                     "flags": flags, "headers": _as_dict(inflater.decode(payload[4:]))}
        elif kind == 3:
            stream_id, status = UINT32X2.unpack_from(payload, 0)
            frame = {"type": "RST_STREAM", "stream_id": stream_id, "status": status}
        elif kind == 4:
            (count,) = UINT32.unpack_from(payload, 0)
            entries = [UINT32X2.unpack_from(payload, 4 + 8 * i) for i in range(count)]
            frame = {"type": "SETTINGS", "settings": [
                {"id": ident & 0xFFFFFF, "flags": ident >> 24, "value": value}
                for ident, value in entries]}
        elif kind == 6:
            frame = {"type": "PING", "ping_id": UINT32.unpack_from(payload, 0)[0]}
        elif kind == 7:
            last, status = UINT32X2.unpack_from(payload, 0)
            frame = {"type": "GOAWAY", "last_good": last, "status": status}
        elif kind == 9:
            stream_id, delta = UINT32X2.unpack_from(payload, 0)
            frame = {"type": "WINDOW_UPDATE", "stream_id": stream_id, "delta": delta}
        else:  # pragma: no cover - no other types in the vectors
            frame = {"type": kind}
        out.append(frame)
    return out


def _matches(decoded: dict[str, Any], expect: dict[str, Any]) -> None:
    for key, value in decoded.items():
        if key == "settings":
            assert [(e["id"], e["flags"], e["value"]) for e in value] == [
                (e["id"], e["flags"], e["value"]) for e in expect["settings"]]
        elif key in expect:
            assert value == expect[key], (key, value, expect[key])


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_spdy_transport_vector_decodes(vector: dict[str, Any]) -> None:
    expects = vector["expect"] if isinstance(vector["expect"], list) else [vector["expect"]]
    decoded = _decode(bytes.fromhex(vector["hex"]))
    assert len(decoded) == len(expects)
    for frame, expect in zip(decoded, expects, strict=True):
        assert frame["type"] == expect["type"]
        _matches(frame, expect)


def test_spdy_transport_client_session_through_server_engine() -> None:
    """The shared-context SYN_STREAM sequence, then DATA, through a real server engine."""
    vector = next(v for v in VECTORS if v["name"] == "client_header_sequence")
    server = Connection(ConnectionConfig())
    events = server.receive_data(bytes.fromhex(vector["hex"]))
    requests = [e for e in events if isinstance(e, RequestReceived)]
    assert [r.stream_id for r in requests] == [1, 3, 5]
    assert [dict(r.headers)[b":path"] for r in requests] == [b"/a", b"/b", b"/c"]
    assert [v for n, v in requests[2].headers if n == b"x-n"] == [b"3", b"4"]


def test_spdy_transport_post_with_body() -> None:
    # Each header-carrying vector starts its own zlib stream, so only one goes per session.
    by_name = {v["name"]: v for v in VECTORS}
    wire = b"".join(bytes.fromhex(by_name[name]["hex"]) for name in (
        "client_syn_stream_post_priority0", "client_data", "client_data_fin"))
    server = Connection(ConnectionConfig(validate_requests=False))
    events = server.receive_data(wire)
    kinds = [type(e) for e in events]
    assert kinds == [RequestReceived, DataReceived, DataReceived]
    assert events[0].priority == 0  # type: ignore[attr-defined]
    assert b"".join(e.data for e in events if isinstance(e, DataReceived)) == b"hello world"


# ------------------------------------------------------------ ours → spdy-transport

needs_node = pytest.mark.skipif(not peers.NODE_AVAILABLE, reason=peers.NODE_SKIP_REASON)


def _request(path: bytes) -> list[tuple[bytes, bytes]]:
    return [(b":method", b"GET"), (b":path", path), (b":version", b"HTTP/1.1"),
            (b":host", b"localhost"), (b":scheme", b"https"), (b"accept", b"a"),
            (b"accept", b"b")]


@needs_node
@pytest.mark.parametrize("level", [-1, 0, 9])
def test_our_server_frames_decode_in_spdy_transport(level: int) -> None:
    client = Connection(ConnectionConfig(client_side=True))
    server = Connection(ConnectionConfig(header_compression_level=level,
                                         initial_window_size=1 << 20,
                                         session_window_size=1 << 22))
    server.initiate_connection()
    first = client.send_request(_request(b"/page"), end_stream=True)
    second = client.send_request(_request(b"/other"), end_stream=True)
    server.receive_data(client.data_to_send())
    body = bytes(range(256)) * 40
    server.send_response(first, [(b":status", b"200"), (b":version", b"HTTP/1.1"),
                                 (b"content-type", b"text/html"), (b"set-cookie", b"a=1"),
                                 (b"set-cookie", b"b=2"), (b"Connection", b"close")])
    push = server.push_stream(first, [(b":scheme", b"https"), (b":host", b"localhost"),
                                      (b":path", b"/style.css"), (b":method", b"GET"),
                                      (b":status", b"200"), (b":version", b"HTTP/1.1")])
    assert push == 2
    server.send_data(first, body)
    server.send_headers(first, [(b"x-trailer", b"done")], end_stream=True)
    server.send_data(push, b"body{}", end_stream=True)
    server.reset_stream(second, StreamStatus.REFUSED_STREAM)
    server.ping(2)
    server.close_connection()
    frames = peers.decode_frames(server.data_to_send(), role="server")
    assert all("error" not in f and "transport_error" not in f for f in frames), frames
    kinds = [(f["type"], f["stream_id"]) for f in frames]
    assert kinds[:2] == [("SETTINGS", 0), ("WINDOW_UPDATE", 0)]
    settings = {e["id"]: e["value"] for e in frames[0]["settings"]}
    assert settings == {SettingId.MAX_CONCURRENT_STREAMS: 256,
                        SettingId.INITIAL_WINDOW_SIZE: 1 << 20}
    reply = next(f for f in frames if f["type"] == "SYN_REPLY")
    assert reply["stream_id"] == first
    assert reply["headers"]["set-cookie"] == ["a=1", "b=2"]
    assert reply["headers"][":status"] == "200"
    assert "connection" not in reply["headers"]
    pushed = next(f for f in frames if f["type"] == "SYN_STREAM")
    assert pushed["stream_id"] == 2 and pushed["associated"] == first
    assert pushed["unidirectional"] and pushed["headers"][":path"] == "/style.css"
    data = [f for f in frames if f["type"] == "DATA" and f["stream_id"] == first]
    assert data[0]["data_sha256"] == hashlib.sha256(body).hexdigest()
    trailer = next(f for f in frames if f["type"] == "HEADERS")
    assert trailer["fin"] and trailer["headers"] == {"x-trailer": "done"}
    assert ("RST_STREAM", second) in kinds
    assert next(f for f in frames if f["type"] == "RST_STREAM")["status"] == 3
    assert next(f for f in frames if f["type"] == "PING")["ping_id"] == 2
    assert frames[-1]["type"] == "GOAWAY" or ("GOAWAY", 0) in kinds


@needs_node
def test_our_client_frames_decode_in_spdy_transport() -> None:
    client = Connection(ConnectionConfig(client_side=True, initial_window_size=1 << 20))
    client.initiate_connection()
    sid = client.send_request([*_request(b"/upload"), (b"content-length", b"5")],
                              priority=1)
    client.send_data(sid, b"hello", end_stream=True)
    other = client.send_request(_request(b"/x"), end_stream=True)
    client.reset_stream(other, StreamStatus.CANCEL)
    frames = peers.decode_frames(client.data_to_send(), role="client")
    assert all("error" not in f and "transport_error" not in f for f in frames), frames
    syn = [f for f in frames if f["type"] == "SYN_STREAM"]
    assert [f["stream_id"] for f in syn] == [1, 3]
    assert syn[0]["priority"] == 1 and syn[0]["headers"]["accept"] == ["a", "b"]
    assert syn[1]["headers"][":path"] == "/x"
    data = next(f for f in frames if f["type"] == "DATA")
    assert data["fin"] and data["data_length"] == 5
