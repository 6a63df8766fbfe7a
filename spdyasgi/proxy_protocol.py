"""The PROXY protocol (HAProxy's, versions 1 and 2), sans-IO: bytes in, a header out.

A layer-4 balancer (HAProxy ``send-proxy[-v2]``, nginx ``proxy_protocol on``, AWS NLB,
GCP, DigitalOcean) writes one header before the client's own bytes, naming the client
and the address it connected to. :func:`parse` takes the bytes read so far and returns

* ``None``: not enough bytes yet (read more and call again with all of them),
* a :class:`ProxyHeader` whose ``length`` says how many bytes the header used (the
  rest belongs to the connection: a TLS ClientHello, a SPDY frame, an HTTP request),
* or raises :class:`ProxyProtocolError` saying what is wrong.

Specification: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt. Both
versions are bounded (v1: 107 bytes; v2: ``max_v2_length`` bytes after the 16-byte
fixed part) so a peer cannot make the reader buffer without end.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "V1_MAX_LENGTH",
    "V1_SIGNATURE",
    "V2_MAX_LENGTH",
    "V2_SIGNATURE",
    "ProxyHeader",
    "ProxyProtocolError",
    "crc32c",
    "detect",
    "parse",
]

V1_SIGNATURE = b"PROXY "
V1_MAX_LENGTH = 107  # the longest line ("PROXY TCP6 <39> <39> <5> <5>\r\n") per the spec
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_MAX_LENGTH = 4096  # address block + TLVs accepted; the field itself allows 65535

# v2 TLV types (spec 2.2.x).
PP2_TYPE_ALPN = 0x01
PP2_TYPE_AUTHORITY = 0x02
PP2_TYPE_CRC32C = 0x03
PP2_TYPE_NOOP = 0x04
PP2_TYPE_UNIQUE_ID = 0x05
PP2_TYPE_SSL = 0x20
PP2_SUBTYPE_SSL_VERSION = 0x21
PP2_SUBTYPE_SSL_CN = 0x22
PP2_SUBTYPE_SSL_CIPHER = 0x23
PP2_SUBTYPE_SSL_SIG_ALG = 0x24
PP2_SUBTYPE_SSL_KEY_ALG = 0x25
PP2_TYPE_NETNS = 0x30

_SSL_TEXT = {
    PP2_SUBTYPE_SSL_VERSION: "version",
    PP2_SUBTYPE_SSL_CN: "cn",
    PP2_SUBTYPE_SSL_CIPHER: "cipher",
    PP2_SUBTYPE_SSL_SIG_ALG: "sig_alg",
    PP2_SUBTYPE_SSL_KEY_ALG: "key_alg",
}
_V2_ADDRESS_SIZES = {1: 12, 2: 36, 3: 216}  # INET, INET6, UNIX
_V2_FAMILIES = {0: "UNSPEC", 1: "TCP4", 2: "TCP6", 3: "UNIX"}

Address = tuple[str, int]


class ProxyProtocolError(ValueError):
    """The bytes are not an acceptable PROXY header; the message says why."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """One parsed header.

    ``client``/``server`` are ``None`` when the real socket addresses apply: a LOCAL
    command (the balancer's own health check), v1 ``UNKNOWN``, v2 ``UNSPEC``/``UNIX``.
    """

    version: int
    command: str  # "PROXY" or "LOCAL"
    family: str  # "TCP4", "TCP6", "UNIX", "UNSPEC" (v2) or "UNKNOWN" (v1)
    client: Address | None
    server: Address | None
    length: int
    tlvs: tuple[tuple[int, bytes], ...] = ()
    alpn: bytes | None = None
    authority: str | None = None
    unique_id: bytes | None = None
    ssl: dict[str, Any] | None = field(default=None)

    def extension(self) -> dict[str, Any]:
        """What an ASGI app sees as ``scope["extensions"]["proxy_protocol"]``."""
        info: dict[str, Any] = {
            "version": self.version,
            "command": self.command,
            "family": self.family,
            "client": self.client,
            "server": self.server,
        }
        if self.alpn is not None:
            info["alpn"] = self.alpn
        if self.authority is not None:
            info["authority"] = self.authority
        if self.unique_id is not None:
            info["unique_id"] = self.unique_id
        if self.ssl is not None:
            info["ssl"] = self.ssl
        if self.tlvs:
            info["tlvs"] = [(kind, value) for kind, value in self.tlvs]
        return info


def detect(data: bytes) -> int | None:
    """``1``/``2`` when ``data`` starts a v1/v2 header, ``0`` when it cannot, ``None``
    when too few bytes arrived to tell."""
    for version, signature in ((1, V1_SIGNATURE), (2, V2_SIGNATURE)):
        if data[: len(signature)] == signature[: len(data)]:
            return version if len(data) >= len(signature) else None
    return 0


def parse(
    data: bytes, versions: tuple[int, ...] = (1, 2), max_v2_length: int = V2_MAX_LENGTH
) -> ProxyHeader | None:
    """The header at the start of ``data``; see the module docstring."""
    version = detect(data)
    if version is None:
        return None
    if version == 0:
        raise ProxyProtocolError(f"no PROXY header (first bytes {bytes(data[:12])!r})")
    if version not in versions:
        raise ProxyProtocolError(f"a v{version} header where only v{versions[0]} is accepted")
    if version == 1:
        return _parse_v1(data)
    return _parse_v2(data, max_v2_length)


# -- version 1 ------------------------------------------------------------------------


def _parse_v1(data: bytes) -> ProxyHeader | None:
    end = data.find(b"\r\n", 0, V1_MAX_LENGTH)
    if end < 0:
        if len(data) >= V1_MAX_LENGTH:
            raise ProxyProtocolError(f"v1 header longer than {V1_MAX_LENGTH} bytes")
        if b"\n" in data:
            raise ProxyProtocolError("v1 header line does not end with CRLF")
        return None
    try:
        line = data[:end].decode("ascii")
    except UnicodeDecodeError:
        raise ProxyProtocolError("v1 header is not ASCII") from None
    parts = line.split(" ")
    family = parts[1] if len(parts) > 1 else ""
    if family == "UNKNOWN":
        return ProxyHeader(1, "PROXY", "UNKNOWN", None, None, end + 2)
    if family not in ("TCP4", "TCP6"):
        raise ProxyProtocolError(f"v1 header with unknown protocol {family[:16]!r}")
    if len(parts) != 6:
        raise ProxyProtocolError(f"v1 header has {len(parts)} fields instead of 6")
    kind = ipaddress.IPv4Address if family == "TCP4" else ipaddress.IPv6Address
    client = (_v1_ip(kind, parts[2]), _v1_port(parts[4]))
    server = (_v1_ip(kind, parts[3]), _v1_port(parts[5]))
    return ProxyHeader(1, "PROXY", family, client, server, end + 2)


def _v1_ip(kind: type[ipaddress.IPv4Address | ipaddress.IPv6Address], text: str) -> str:
    try:
        return str(kind(text))
    except ValueError:
        raise ProxyProtocolError(f"v1 header with a bad address {text[:45]!r}") from None


def _v1_port(text: str) -> int:
    if not text.isdigit() or not text.isascii() or (text[0] == "0" and text != "0"):
        raise ProxyProtocolError(f"v1 header with a bad port {text[:8]!r}")
    port = int(text)
    if port > 65535:
        raise ProxyProtocolError(f"v1 header with a port out of range ({port})")
    return port


# -- version 2 ------------------------------------------------------------------------


def _parse_v2(data: bytes, max_length: int) -> ProxyHeader | None:
    if len(data) < 16:
        return None
    version_command, family_protocol, length = struct.unpack_from("!BBH", data, 12)
    if version_command >> 4 != 2:
        raise ProxyProtocolError(f"v2 signature with version {version_command >> 4}")
    command = version_command & 0x0F
    if command > 1:
        raise ProxyProtocolError(f"v2 header with unknown command {command}")
    if length > max_length:
        raise ProxyProtocolError(f"v2 header of {length} bytes (more than {max_length})")
    total = 16 + length
    if len(data) < total:
        return None
    if command == 0:  # LOCAL: the balancer speaking for itself; the block is ignored
        return ProxyHeader(2, "LOCAL", "UNSPEC", None, None, total)
    family_code, transport = family_protocol >> 4, family_protocol & 0x0F
    family = _V2_FAMILIES.get(family_code)
    if family is None:
        raise ProxyProtocolError(f"v2 header with unknown address family {family_code}")
    if transport not in (0, 1):
        raise ProxyProtocolError("v2 header for a datagram (UDP) connection")
    body = memoryview(data)[16:total]
    size = _V2_ADDRESS_SIZES.get(family_code, 0)
    if length < size:
        raise ProxyProtocolError(f"v2 {family} address block of {length} bytes (needs {size})")
    client = server = None
    if family_code == 1:
        client = (str(ipaddress.IPv4Address(bytes(body[0:4]))), _u16(body, 8))
        server = (str(ipaddress.IPv4Address(bytes(body[4:8]))), _u16(body, 10))
    elif family_code == 2:
        client = (str(ipaddress.IPv6Address(bytes(body[0:16]))), _u16(body, 32))
        server = (str(ipaddress.IPv6Address(bytes(body[16:32]))), _u16(body, 34))
    found = _tlvs(body[size:], 16 + size)
    tlvs = tuple((kind, value) for kind, value, _ in found)
    for kind, value, at in found:
        if kind == PP2_TYPE_CRC32C:
            _check_crc(bytes(data[:total]), value, at)
    header = ProxyHeader(2, "PROXY", family, client, server, total, tlvs)
    return _with_known_tlvs(header) if tlvs else header


def _u16(view: memoryview, offset: int) -> int:
    return int(view[offset]) << 8 | int(view[offset + 1])


def _tlvs(view: memoryview, base: int = 0) -> list[tuple[int, bytes, int]]:
    """``(type, value, offset of value + base)`` for each TLV in ``view``."""
    found: list[tuple[int, bytes, int]] = []
    offset, end = 0, len(view)
    while offset < end:
        if end - offset < 3:
            raise ProxyProtocolError("v2 header with a truncated TLV")
        kind, size = view[offset], _u16(view, offset + 1)
        offset += 3
        if offset + size > end:
            raise ProxyProtocolError(f"v2 TLV 0x{kind:02x} longer than the header")
        found.append((kind, bytes(view[offset : offset + size]), base + offset))
        offset += size
    return found


def _with_known_tlvs(header: ProxyHeader) -> ProxyHeader:
    """Fill in the TLVs ASGI apps can use."""
    fields: dict[str, Any] = {}
    for kind, value in header.tlvs:
        if kind == PP2_TYPE_ALPN:
            fields["alpn"] = value
        elif kind == PP2_TYPE_AUTHORITY:
            fields["authority"] = _text(value, "authority")
        elif kind == PP2_TYPE_UNIQUE_ID:
            if len(value) > 128:
                raise ProxyProtocolError("v2 unique id longer than 128 bytes")
            fields["unique_id"] = value
        elif kind == PP2_TYPE_SSL:
            fields["ssl"] = _ssl_tlv(value)
    if not fields:
        return header
    return ProxyHeader(
        header.version,
        header.command,
        header.family,
        header.client,
        header.server,
        header.length,
        header.tlvs,
        fields.get("alpn"),
        fields.get("authority"),
        fields.get("unique_id"),
        fields.get("ssl"),
    )


def _text(value: bytes, what: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ProxyProtocolError(f"v2 {what} TLV is not UTF-8") from None


def _ssl_tlv(value: bytes) -> dict[str, Any]:
    if len(value) < 5:
        raise ProxyProtocolError("v2 SSL TLV shorter than 5 bytes")
    client, verify = struct.unpack_from("!BI", value, 0)
    info: dict[str, Any] = {"client": client, "verify": verify}
    for kind, sub, _ in _tlvs(memoryview(value)[5:]):
        name = _SSL_TEXT.get(kind)
        if name is not None:
            info[name] = _text(sub, f"SSL {name}")
    return info


def _check_crc(raw: bytes, value: bytes, at: int) -> None:
    """The checksum covers the whole header with its own field zeroed."""
    if len(value) != 4:
        raise ProxyProtocolError("v2 CRC32C TLV is not 4 bytes")
    zeroed = raw[:at] + b"\0\0\0\0" + raw[at + 4 :]
    if crc32c(zeroed) != int.from_bytes(value, "big"):
        raise ProxyProtocolError("v2 header fails its CRC32C check")


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), which the v2 CRC32C TLV carries; headers are short."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
