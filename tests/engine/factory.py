"""Test helpers for the SPDY engine: craft exact frame bytes, parse output frames back.

`FrameFactory` plays the client (or any peer): it owns a deflate context primed with the
SPDY/3 dictionary (the engine's `HeaderCompressor`, or a raw zlib object) so header blocks
share one zlib stream exactly like a real peer's, and it can also produce malformed frames.

`FrameDecoder` parses what an engine wrote, inflating header blocks with its own context.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from spdyasgi.spdy import Connection, ConnectionConfig, Event, Version
from spdyasgi.spdy.dictionary import SPDY3_DICTIONARY
from spdyasgi.spdy.headers import HUFFMAN_ONLY, HeaderCompressor, HeaderDecompressor

U32 = struct.Struct("!L")
U32X2 = struct.Struct("!LL")

SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
NOOP = 5
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9
CREDENTIAL = 10
DATA = 0  # pseudo type for decoded DATA frames

FIN = 0x01
UNIDIRECTIONAL = 0x02

Pairs = Sequence[tuple[bytes, bytes]]


def nv_block(pairs: Pairs, count: int | None = None) -> bytes:
    """An uncompressed SPDY/3 name/value block, no validation whatsoever."""
    out = [U32.pack(len(pairs) if count is None else count)]
    for name, value in pairs:
        out += [U32.pack(len(name)), name, U32.pack(len(value)), value]
    return b"".join(out)


def request_headers(
    path: bytes = b"/",
    method: bytes = b"GET",
    host: bytes = b"example.com",
    extra: Iterable[tuple[bytes, bytes]] = (),
    *,
    omit: Iterable[bytes] = (),
) -> list[tuple[bytes, bytes]]:
    base = [
        (b":method", method),
        (b":path", path),
        (b":version", b"HTTP/1.1"),
        (b":host", host),
        (b":scheme", b"https"),
    ]
    skip = set(omit)
    return [(n, v) for n, v in base if n not in skip] + list(extra)


BROWSER_HEADERS = request_headers(
    b"/static/app.js?v=3",
    extra=[
        (b"accept", b"*/*"),
        (b"accept-encoding", b"gzip, deflate, br"),
        (b"accept-language", b"en-US,en;q=0.9"),
        (
            b"user-agent",
            b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            b"Chrome/51.0.2704.103 Safari/537.36",
        ),
        (b"referer", b"https://example.com/index.html"),
        (b"cookie", b"session=0123456789abcdef; theme=dark"),
    ],
)


class FrameFactory:
    """Builds raw frames. Header blocks go through one shared client-side deflate context."""

    def __init__(
        self,
        version: int = 3,
        *,
        dictionary: bytes = SPDY3_DICTIONARY,
        level: int = HUFFMAN_ONLY,
        raw_zlib: bool = False,
    ) -> None:
        self.version = version
        self._compressor: HeaderCompressor | None = None
        self._raw: zlib._Compress | None = None
        if raw_zlib:
            self._raw = zlib.compressobj(6, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY,
                                         zdict=dictionary)
        else:
            self._compressor = HeaderCompressor(level, dictionary)

    # ------------------------------------------------------------ header blocks
    def compress(self, raw: bytes) -> bytes:
        """Deflate an uncompressed NV block with this peer's context (SYNC flush)."""
        if self._raw is not None:
            return self._raw.compress(raw) + self._raw.flush(zlib.Z_SYNC_FLUSH)
        assert self._compressor is not None
        return self._compressor.compress(raw)

    def block(self, pairs: Pairs, count: int | None = None) -> bytes:
        return self.compress(nv_block(pairs, count))

    # ------------------------------------------------------------ control frames
    def control(self, frame_type: int, payload: bytes, flags: int = 0,
                *, version: int | None = None, length: int | None = None) -> bytes:
        ver = self.version if version is None else version
        size = len(payload) if length is None else length
        return U32X2.pack(0x80000000 | (ver << 16) | frame_type, (flags << 24) | size) + payload

    def syn_stream(
        self,
        stream_id: int,
        headers: Pairs | None = None,
        *,
        fin: bool = False,
        unidirectional: bool = False,
        assoc: int = 0,
        priority: int = 0,
        slot: int = 0,
        block: bytes | None = None,
        flags: int | None = None,
    ) -> bytes:
        if block is None:
            block = self.block(request_headers() if headers is None else headers)
        if flags is None:
            flags = (FIN if fin else 0) | (UNIDIRECTIONAL if unidirectional else 0)
        payload = struct.pack("!LLBB", stream_id, assoc, (priority & 7) << 5, slot) + block
        return self.control(SYN_STREAM, payload, flags)

    def syn_reply(self, stream_id: int, headers: Pairs | None = None, *, fin: bool = False,
                  block: bytes | None = None) -> bytes:
        if block is None:
            block = self.block(
                [(b":status", b"200"), (b":version", b"HTTP/1.1")] if headers is None
                else headers
            )
        return self.control(SYN_REPLY, U32.pack(stream_id) + block, FIN if fin else 0)

    def headers(self, stream_id: int, headers: Pairs | None = None, *, fin: bool = False,
                block: bytes | None = None) -> bytes:
        if block is None:
            block = b"" if headers is None else self.block(headers)
        return self.control(HEADERS, U32.pack(stream_id) + block, FIN if fin else 0)

    def rst(self, stream_id: int, status: int) -> bytes:
        return self.control(RST_STREAM, U32X2.pack(stream_id, status))

    def settings(self, entries: Iterable[tuple[int, int]] | Iterable[tuple[int, int, int]],
                 *, flags: int = 0, count: int | None = None) -> bytes:
        body = []
        n = 0
        for entry in entries:
            if len(entry) == 2:
                setting_id, value = entry  # type: ignore[misc]
                entry_flags = 0
            else:
                setting_id, entry_flags, value = entry  # type: ignore[misc]
            body.append(U32X2.pack((entry_flags << 24) | setting_id, value))
            n += 1
        payload = U32.pack(n if count is None else count) + b"".join(body)
        return self.control(SETTINGS, payload, flags)

    def ping(self, ping_id: int) -> bytes:
        return self.control(PING, U32.pack(ping_id))

    def goaway(self, last_good: int, status: int = 0) -> bytes:
        return self.control(GOAWAY, U32X2.pack(last_good, status))

    def window_update(self, stream_id: int, delta: int) -> bytes:
        return self.control(WINDOW_UPDATE, U32X2.pack(stream_id, delta))

    def data(self, stream_id: int, data: bytes = b"", *, fin: bool = False,
             flags: int | None = None, length: int | None = None) -> bytes:
        f = (FIN if fin else 0) if flags is None else flags
        size = len(data) if length is None else length
        return U32X2.pack(stream_id & 0x7FFFFFFF, (f << 24) | size) + data


# --------------------------------------------------------------------- decoding


@dataclass
class Frame:
    type: int  # 0 = DATA
    flags: int
    payload: bytes
    stream_id: int = 0
    version: int = 3
    headers: list[tuple[bytes, bytes]] | None = None
    assoc: int = 0
    priority: int = 0
    status: int = 0
    ping_id: int = 0
    last_good: int = 0
    delta: int = 0
    settings: dict[int, int] = field(default_factory=dict)
    raw: bytes = b""

    @property
    def fin(self) -> bool:
        return bool(self.flags & FIN)

    def header(self, name: bytes) -> bytes | None:
        assert self.headers is not None
        values = [v for n, v in self.headers if n == name]
        return values[0] if values else None

    def __repr__(self) -> str:  # compact, for assertion messages
        names = {0: "DATA", 1: "SYN_STREAM", 2: "SYN_REPLY", 3: "RST", 4: "SETTINGS",
                 6: "PING", 7: "GOAWAY", 8: "HEADERS", 9: "WINDOW_UPDATE"}
        return (f"<{names.get(self.type, self.type)} sid={self.stream_id} fl={self.flags} "
                f"len={len(self.payload)} st={self.status}>")


class FrameDecoder:
    """Parses a byte stream written by an engine. Keeps its own inflate context."""

    def __init__(self, dictionary: bytes = SPDY3_DICTIONARY) -> None:
        self._inflater = HeaderDecompressor(1 << 24, 10_000, dictionary)
        self._buf = b""

    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buf + data
        out: list[Frame] = []
        pos = 0
        while len(buf) - pos >= 8:
            word, fl = U32X2.unpack_from(buf, pos)
            length = fl & 0xFFFFFF
            if len(buf) - pos - 8 < length:
                break
            payload = buf[pos + 8:pos + 8 + length]
            raw = buf[pos:pos + 8 + length]
            pos += 8 + length
            out.append(self._frame(word, fl >> 24, payload, raw))
        self._buf = buf[pos:]
        return out

    @property
    def pending(self) -> bytes:
        return self._buf

    def _frame(self, word: int, flags: int, payload: bytes, raw: bytes) -> Frame:
        if not word & 0x80000000:
            return Frame(DATA, flags, payload, stream_id=word, raw=raw)
        version = (word >> 16) & 0x7FFF
        ftype = word & 0xFFFF
        f = Frame(ftype, flags, payload, version=version, raw=raw)
        if ftype == SYN_STREAM:
            sid, assoc, pri, _slot = struct.unpack_from("!LLBB", payload)
            f.stream_id, f.assoc, f.priority = sid & 0x7FFFFFFF, assoc & 0x7FFFFFFF, pri >> 5
            f.headers = self._inflater.decode(payload[10:])
        elif ftype in (SYN_REPLY, HEADERS):
            (f.stream_id,) = U32.unpack_from(payload)
            f.headers = self._inflater.decode(payload[4:]) if len(payload) > 4 else []
        elif ftype == RST_STREAM:
            f.stream_id, f.status = U32X2.unpack_from(payload)
        elif ftype == SETTINGS:
            (count,) = U32.unpack_from(payload)
            for i in range(count):
                idw, value = U32X2.unpack_from(payload, 4 + 8 * i)
                f.settings[idw & 0xFFFFFF] = value
        elif ftype == PING:
            (f.ping_id,) = U32.unpack_from(payload)
        elif ftype == GOAWAY:
            f.last_good, f.status = U32X2.unpack_from(payload)
        elif ftype == WINDOW_UPDATE:
            f.stream_id, f.delta = U32X2.unpack_from(payload)
        return f


def decode_frames(data: bytes, dictionary: bytes = SPDY3_DICTIONARY) -> list[Frame]:
    """One-shot decode (fresh inflate context: only for output with a single header block
    or none; use a FrameDecoder for a whole session)."""
    dec = FrameDecoder(dictionary)
    frames = dec.feed(data)
    assert not dec.pending, "trailing partial frame"
    return frames


# --------------------------------------------------------------------- sessions


class ServerHarness:
    """A server-role Connection with a matching client FrameFactory and output decoder."""

    def __init__(self, *, initiate: bool = False, version: Version = Version.SPDY31,
                 **config: object) -> None:
        self.conn = Connection(ConnectionConfig(client_side=False, version=version,
                                                **config))  # type: ignore[arg-type]
        self.f = FrameFactory()
        self.decoder = FrameDecoder()
        if initiate:
            self.conn.initiate_connection()
        self.preamble = self.out() if initiate else []

    def feed(self, *chunks: bytes) -> list[Event]:
        return self.conn.receive_data(b"".join(chunks))

    def out(self) -> list[Frame]:
        return self.decoder.feed(self.conn.data_to_send())

    def request(self, stream_id: int, headers: Pairs | None = None, *, fin: bool = True,
                priority: int = 0) -> list[Event]:
        return self.feed(self.f.syn_stream(stream_id, headers, fin=fin, priority=priority))


def frame_types(frames: Iterable[Frame]) -> list[tuple[int, int]]:
    return [(fr.type, fr.stream_id) for fr in frames]
