"""The PROXY protocol parser (sans-IO): v1, v2, TLVs, LOCAL, bounds, and fuzzing."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spdyasgi.proxy_protocol import (
    V1_MAX_LENGTH,
    V2_SIGNATURE,
    ProxyProtocolError,
    crc32c,
    detect,
    parse,
)


def v2(
    command: int = 1,
    family: int = 0x11,
    addresses: bytes = b"",
    tlvs: bytes = b"",
    version: int = 2,
) -> bytes:
    body = addresses + tlvs
    return V2_SIGNATURE + struct.pack("!BBH", version << 4 | command, family, len(body)) + body


def inet(src: str, dst: str, sport: int, dport: int) -> bytes:
    return socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)


def inet6(src: str, dst: str, sport: int, dport: int) -> bytes:
    return (ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed
            + struct.pack("!HH", sport, dport))


def tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!BH", kind, len(value)) + value


# -- v1 ---------------------------------------------------------------------------------


def test_v1_tcp4_and_the_bytes_after_it() -> None:
    data = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\nGET / HTTP/1.1\r\n"
    header = parse(data)
    assert header is not None
    assert (header.version, header.command, header.family) == (1, "PROXY", "TCP4")
    assert header.client == ("192.0.2.7", 56324)
    assert header.server == ("198.51.100.1", 443)
    assert data[header.length :] == b"GET / HTTP/1.1\r\n"


def test_v1_tcp6() -> None:
    header = parse(b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n")
    assert header is not None
    assert header.client == ("2001:db8::1", 1)
    assert header.server == ("::1", 65535)


def test_v1_unknown_uses_real_addresses() -> None:
    header = parse(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n")
    assert header is not None
    assert (header.family, header.client, header.server) == ("UNKNOWN", None, None)


def test_v1_partial_header_needs_more() -> None:
    full = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n"
    for cut in range(len(full)):
        assert parse(full[:cut]) is None


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b"PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n", "fields"),
        (b"PROXY TCP4 192.0.2.777 198.51.100.1 1 2\r\n", "bad address"),
        (b"PROXY TCP4 ::1 ::1 1 2\r\n", "bad address"),
        (b"PROXY TCP6 192.0.2.7 198.51.100.1 1 2\r\n", "bad address"),
        (b"PROXY TCP4 192.0.2.7 198.51.100.1 01 2\r\n", "bad port"),
        (b"PROXY TCP4 192.0.2.7 198.51.100.1 65536 2\r\n", "out of range"),
        (b"PROXY TCP4 192.0.2.7 198.51.100.1 -1 2\r\n", "bad port"),
        (b"PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n", "unknown protocol"),
        (b"PROXY TCP4 192.0.2.7 198.51.100.1 1 2\n", "CRLF"),
        (b"PROXY TCP4 \xff 198.51.100.1 1 2\r\n", "ASCII"),
        (b"GET / HTTP/1.1\r\n\r\n", "no PROXY header"),
    ],
)
def test_v1_malformed(line: bytes, why: str) -> None:
    with pytest.raises(ProxyProtocolError, match=why):
        parse(line)


def test_v1_oversized_line_is_refused_without_waiting_for_more() -> None:
    with pytest.raises(ProxyProtocolError, match="longer than 107"):
        parse(b"PROXY TCP4 " + b"1" * (V1_MAX_LENGTH - 11))


def test_only_the_accepted_version() -> None:
    with pytest.raises(ProxyProtocolError, match="v1 header where only v2"):
        parse(b"PROXY UNKNOWN\r\n", versions=(2,))
    with pytest.raises(ProxyProtocolError, match="v2 header where only v1"):
        parse(v2(command=0), versions=(1,))


# -- v2 ---------------------------------------------------------------------------------


def test_v2_tcp4_with_tlvs() -> None:
    ssl_value = struct.pack("!BI", 0x07, 0) + tlv(0x21, b"TLSv1.3") + tlv(0x22, b"client-cn")
    tlvs = (tlv(0x01, b"spdy/3.1") + tlv(0x02, b"example.com") + tlv(0x05, b"\x01id")
            + tlv(0x20, ssl_value) + tlv(0x04, b"\0\0") + tlv(0xE0, b"custom"))
    data = v2(addresses=inet("192.0.2.7", "198.51.100.1", 40000, 443), tlvs=tlvs) + b"\x80\x03"
    header = parse(data)
    assert header is not None
    assert data[header.length :] == b"\x80\x03"
    assert (header.version, header.command, header.family) == (2, "PROXY", "TCP4")
    assert header.client == ("192.0.2.7", 40000)
    assert header.server == ("198.51.100.1", 443)
    assert header.alpn == b"spdy/3.1"
    assert header.authority == "example.com"
    assert header.unique_id == b"\x01id"
    assert header.ssl == {"client": 7, "verify": 0, "version": "TLSv1.3", "cn": "client-cn"}
    ext = header.extension()
    assert ext["alpn"] == b"spdy/3.1" and ext["client"] == ("192.0.2.7", 40000)
    assert (0xE0, b"custom") in ext["tlvs"]


def test_v2_tcp6() -> None:
    header = parse(v2(family=0x21, addresses=inet6("2001:db8::7", "2001:db8::1", 1, 2)))
    assert header is not None
    assert header.client == ("2001:db8::7", 1)
    assert header.server == ("2001:db8::1", 2)


def test_v2_local_ignores_the_block() -> None:
    header = parse(v2(command=0, family=0x11, addresses=b"garbage"))
    assert header is not None
    assert (header.command, header.client, header.server) == ("LOCAL", None, None)


def test_v2_unspec_and_unix_keep_real_addresses() -> None:
    for family, addresses in ((0x00, b""), (0x31, b"/a".ljust(108, b"\0") * 2)):
        header = parse(v2(family=family, addresses=addresses))
        assert header is not None
        assert (header.client, header.server) == (None, None)


def test_v2_partial_needs_more() -> None:
    full = v2(addresses=inet("192.0.2.7", "198.51.100.1", 1, 2), tlvs=tlv(0x01, b"h"))
    for cut in range(len(full)):
        assert parse(full[:cut]) is None


def test_v2_crc32c_checked() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the standard check value
    addresses = inet("192.0.2.7", "198.51.100.1", 1, 2)
    blank = v2(addresses=addresses, tlvs=tlv(0x03, b"\0\0\0\0"))
    good = v2(addresses=addresses, tlvs=tlv(0x03, crc32c(blank).to_bytes(4, "big")))
    assert parse(good) is not None
    bad = v2(addresses=addresses, tlvs=tlv(0x03, (crc32c(blank) ^ 1).to_bytes(4, "big")))
    with pytest.raises(ProxyProtocolError, match="CRC32C"):
        parse(bad)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (v2(version=1), "version 1"),
        (v2(command=2), "unknown command"),
        (v2(family=0x41), "unknown address family"),
        (v2(family=0x12, addresses=inet("1.1.1.1", "2.2.2.2", 1, 2)), "datagram"),
        (v2(family=0x11, addresses=b"\0" * 11), "needs 12"),
        (v2(family=0x21, addresses=b"\0" * 12), "needs 36"),
        (v2(addresses=inet("1.1.1.1", "2.2.2.2", 1, 2), tlvs=b"\x01\x00"), "truncated TLV"),
        (v2(addresses=inet("1.1.1.1", "2.2.2.2", 1, 2), tlvs=b"\x01\x00\x05ab"), "longer than"),
        (v2(addresses=inet("1.1.1.1", "2.2.2.2", 1, 2), tlvs=tlv(0x20, b"\0")), "SSL TLV"),
        (v2(addresses=inet("1.1.1.1", "2.2.2.2", 1, 2), tlvs=tlv(0x05, b"x" * 129)), "128"),
        (v2(addresses=inet("1.1.1.1", "2.2.2.2", 1, 2), tlvs=tlv(0x02, b"\xff")), "UTF-8"),
    ],
)
def test_v2_malformed(data: bytes, why: str) -> None:
    with pytest.raises(ProxyProtocolError, match=why):
        parse(data)


def test_v2_oversized_refused_from_the_fixed_part_alone() -> None:
    fixed = V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x11, 5000)
    with pytest.raises(ProxyProtocolError, match="5000 bytes"):
        parse(fixed)


def test_detect() -> None:
    assert detect(b"") is None
    assert detect(b"PRO") is None
    assert detect(b"\r\n\r\n") is None
    assert detect(b"PROXY ") == 1
    assert detect(V2_SIGNATURE) == 2
    assert detect(b"\x16\x03\x01") == 0
    assert detect(b"PRI * HTTP/2.0") == 0
    assert detect(b"\x80\x03\x00\x01") == 0


# -- fuzzing ------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_any_bytes(data: bytes) -> None:
    """Random bytes: a header, need-more, or ProxyProtocolError; never another exception."""
    for prefix in (b"", b"PROXY ", V2_SIGNATURE, V2_SIGNATURE + b"\x21\x11"):
        try:
            header = parse(prefix + data)
        except ProxyProtocolError:
            continue
        if header is not None:
            assert 0 < header.length <= len(prefix + data)


@settings(max_examples=300, deadline=None)
@given(
    st.ip_addresses(v=4), st.ip_addresses(v=4), st.integers(0, 65535), st.integers(0, 65535),
    st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=5),
    st.binary(max_size=20), st.integers(1, 30),
)
def test_fuzz_v2_round_trip_in_pieces(
    src: ipaddress.IPv4Address, dst: ipaddress.IPv4Address, sport: int, dport: int,
    extra: list[tuple[int, bytes]], rest: bytes, piece: int,
) -> None:
    """A valid v2 header (random TLVs of unknown types) fed in pieces: same answer."""
    tlvs = b"".join(tlv(kind | 0xE0, value) for kind, value in extra)  # 0xE0+: custom types
    data = v2(addresses=inet(str(src), str(dst), sport, dport), tlvs=tlvs)
    for end in range(0, len(data), piece):
        assert parse(data[:end]) is None
    header = parse(data + rest)
    assert header is not None
    assert header.length == len(data)
    assert header.client == (str(src), sport) and header.server == (str(dst), dport)
    assert len(header.tlvs) == len(extra)


@settings(max_examples=300, deadline=None)
@given(st.ip_addresses(v=6), st.ip_addresses(v=6), st.integers(0, 65535), st.integers(0, 65535))
def test_fuzz_v1_tcp6_round_trip(
    src: ipaddress.IPv6Address, dst: ipaddress.IPv6Address, sport: int, dport: int
) -> None:
    header = parse(f"PROXY TCP6 {src} {dst} {sport} {dport}\r\n".encode())
    assert header is not None
    assert header.client == (str(src), sport) and header.server == (str(dst), dport)
