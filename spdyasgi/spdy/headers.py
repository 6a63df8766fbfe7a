"""Name/value header blocks: the NV codec and the per-direction zlib contexts.

One `HeaderDecompressor` and one `HeaderCompressor` live for a whole session (the protocol
shares one zlib stream per direction across every header-carrying frame), so every received
block must be inflated, in order, even when its stream is about to be refused.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable, Iterable
from typing import Any

from .accel import nvfast
from .constants import HOP_BY_HOP_HEADERS, StreamStatus
from .dictionary import SPDY3_DICTIONARY
from .exceptions import LocalProtocolError
from .request_heads import scan_request

# The optional C fast path (setup.py); pure Python gives the same results.
_parse_plain: Callable[[bytes, int], list[tuple[bytes, bytes]] | None] | None = (
    nvfast.parse_plain if nvfast is not None else None)

_UINT32 = struct.Struct("!L")
_UNPACK_UINT32 = _UINT32.unpack_from

# Lowercase printable ASCII without ':' except as the first byte (pseudo-headers).
_VALID_NAME = re.compile(rb":?[\x21-\x39\x3b-\x40\x5b-\x7e]+").fullmatch
# Outbound values: no NUL, CR or LF (NUL is our multi-value separator).
_INVALID_VALUE = re.compile(rb"[\x00\r\n]").search
_NAME_CACHE_SIZE = 512
#: Names already checked: inbound (valid as received) and outbound (raw → wire form).
_KNOWN_VALID_NAMES: set[bytes] = set()
_ENCODED_NAMES: dict[bytes, bytes] = {}
_ENCODED_PAIRS: dict[tuple[bytes, bytes], tuple[bytes, bytes]] = {}
_PAIR_CACHE_SIZE = 4096
_PAIR_CACHE_VALUE_LIMIT = 256
#: Whole blocks too: a response head often repeats exactly (until the date changes).
#: One block cache per set of allowed pseudo-headers (a block valid in one frame may not
#: be in another).
_ENCODED_BLOCKS: dict[frozenset[bytes] | None, dict[tuple[tuple[bytes, bytes], ...], bytes]] = {}
_BLOCK_CACHE_SIZE = 256
_BLOCK_CACHE_BYTES = 1024

Headers = list[tuple[bytes, bytes]]

#: Byte values for membership tests: `13 in value` is a plain scan, where `b"\r" in value`
#: first tries its argument as an integer, raising and clearing a TypeError each time
#: (CPython 3.11: ~2.5k instructions per test).
_NUL, _LF, _CR = 0, 10, 13


def _remember(cache: dict[Any, Any], key: Any, value: Any, limit: int) -> None:
    """Store in one of the module's caches; a full cache starts over, so values that
    churn (dates, lengths) can never grow it past `limit`."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value

#: Huffman-only coding: no LZ77 matches, so no CRIME leak; see HeaderCompressor.
HUFFMAN_ONLY = -1

#: Compressed forms of recent header blocks, per level, for levels without string
#: matching (stored and Huffman-only): such a block has no back-references, so once a
#: compressor's first block (which carries the zlib header) is out, a block's compressed
#: bytes after a sync flush are a valid continuation of any such stream. Bounded: blocks
#: of at most _REPLAY_BLOCK bytes, at most _REPLAY_ENTRIES blocks per level.
_REPLAYS: dict[int, dict[bytes, bytes]] = {0: {}, HUFFMAN_ONLY: {}}
_REPLAY_BLOCK = 1024
_REPLAY_ENTRIES = 512

#: Whole compressed SYN_REPLY blocks by their header tuples, per replay level: the same
#: bytes in every started session of that level (`HeaderCompressor.encode_response`).
_RESPONSE_WIRE: dict[int, dict[tuple[tuple[bytes, bytes], ...], bytes]] = {
    level: {} for level in _REPLAYS}

#: Output bytes asked of zlib first when inflating a header block (see `inflate`).
_FIRST_INFLATE = 2048


#: The C inflater's failure codes, in the words of the zlib-module path below.
_C_FAILURES = {
    1: "header block does not inflate: {detail}",
    2: ("header block inflates to more than {limit} bytes (decompression stopped there; "
        "the shared zlib context cannot continue)"),
    3: "the peer's header compression stream ended",
}


class HeaderBlockError(Exception):
    """A header block that inflated fine but breaks the NV rules: a stream-level error."""

    def __init__(self, status: StreamStatus, message: str):
        super().__init__(message)
        self.status = status


class CompressionError(Exception):
    """The zlib stream itself is corrupt (wrong dictionary, bad data): a session error."""


class HeaderDecompressor:
    """Inflates received header blocks with a bounded output per block."""

    __slots__ = ("_c_inflater", "_inflater", "max_block_size", "max_header_count")

    def __init__(self, max_block_size: int = 65536, max_header_count: int = 128,
                 dictionary: bytes = SPDY3_DICTIONARY, accelerated: bool = True):
        # The C extension's inflater when built (same contract, fewer steps per block),
        # else the zlib module's (`accelerated=False` asks for it: tests of that path).
        self._c_inflater: Any = (nvfast.Inflater(dictionary)
                                 if accelerated and nvfast is not None else None)
        self._inflater = zlib.decompressobj(zdict=dictionary) \
            if self._c_inflater is None else None
        self.max_block_size = max_block_size
        self.max_header_count = max_header_count

    def inflate(self, block: bytes | bytearray | memoryview) -> bytes:
        """The whole decompressed block, at most `max_block_size` bytes.

        zlib is never asked for more than one byte past the limit, so a block that would
        inflate to megabytes (a header bomb) costs what its compressed bytes cost, not
        what it expands to. Such a block leaves the session's shared context out of step
        with the peer's (the rest of it was never inflated), so it is a `CompressionError`:
        a session error, GOAWAY.
        """
        limit = self.max_block_size
        c_inflater = self._c_inflater
        if c_inflater is not None:
            out = c_inflater.inflate(block, limit)
            if type(out) is bytes:
                return out
            raise CompressionError(_C_FAILURES[out[0]].format(limit=limit, detail=out[1]))
        inflater = self._inflater
        assert inflater is not None
        # A small first output buffer: zlib allocates all of it on every call, and almost
        # every header block fits.
        first = _FIRST_INFLATE if limit >= _FIRST_INFLATE else limit + 1
        try:
            out = inflater.decompress(block, first)
            if inflater.unconsumed_tail or len(out) == first:
                out = self._inflate_rest(out, limit)
        except zlib.error as exc:
            raise CompressionError(f"header block does not inflate: {exc}") from None
        if inflater.eof:
            # The peer ended its zlib stream (Z_FINISH): no later block can be decoded.
            raise CompressionError("the peer's header compression stream ended")
        return out

    def decode_request(
        self, block: bytes | bytearray | memoryview,
    ) -> tuple[Headers, tuple[tuple[bytes, bytes, bytes, bytes, Headers], int] | None]:
        """`decode` for a SYN_STREAM, plus the C request scan's answer (`scan_request`,
        request_heads) made once here: None when it declined or there is no extension.
        With the extension, one call per request instead of three."""
        c_inflater = self._c_inflater
        if c_inflater is None:
            return parse_nv_block(self.inflate(block), self.max_header_count), None
        return self.decoded_request(
            c_inflater.inflate_request(block, self.max_block_size, self.max_header_count))

    def decoded_request(
        self, out: Any,
    ) -> tuple[Headers, tuple[tuple[bytes, bytes, bytes, bytes, Headers], int] | None]:
        """What the C `inflate_request` gave, as `decode_request` answers: the plain
        answer as it is, an inflated block that was not plain parsed here, a failure
        raised (the C request acceptor hands its non-plain blocks here too)."""
        if type(out) is bytes:  # inflated, but not a plain block: Python parses it
            headers = _parse_nv_block_py(out, self.max_header_count)
            return headers, scan_request(headers) if scan_request is not None else None
        if type(out[0]) is int:
            raise CompressionError(
                _C_FAILURES[out[0]].format(limit=self.max_block_size, detail=out[1]))
        return out  # type: ignore[no-any-return]

    @property
    def c_inflater(self) -> Any:
        """The C extension's inflater, None without it (for the C request acceptor)."""
        return self._c_inflater

    def _inflate_rest(self, head: bytes, limit: int) -> bytes:
        """The rest of a block, in one call bounded by what is left of the limit (+1 byte,
        to tell a block that ends exactly there from one that goes past it)."""
        inflater = self._inflater
        assert inflater is not None  # the zlib-module path only
        if len(head) <= limit:
            head += inflater.decompress(inflater.unconsumed_tail, limit + 1 - len(head))
        if len(head) > limit:
            raise CompressionError(
                f"header block inflates to more than {limit} bytes (decompression stopped "
                "there; the shared zlib context cannot continue)"
            )
        return head

    def decode(self, block: bytes | bytearray | memoryview) -> Headers:
        """Inflate and parse one compressed block (raises HeaderBlockError on bad content)."""
        return parse_nv_block(self.inflate(block), self.max_header_count)


def parse_nv_block(raw: bytes, max_header_count: int = 128) -> Headers:
    """Parse a decompressed SPDY/3 name/value block into (name, value) pairs.

    Multi-values (NUL-joined) become one pair per value. Counts and lengths declared by the
    peer are checked against the bytes actually present before anything is allocated.
    The block is cut first and validated after, in bulk: the common case (known names, no
    CR/LF anywhere, no multi-values) then costs a few C calls per header. With the C
    extension built, that common case is cut and checked in one call; every other block
    (and every error) takes the Python path below.
    """
    if _parse_plain is not None:
        plain = _parse_plain(raw, max_header_count)
        if plain is not None:
            return plain
    return _parse_nv_block_py(raw, max_header_count)


def _parse_nv_block_py(raw: bytes, max_header_count: int = 128) -> Headers:
    """`parse_nv_block` in pure Python: every block, every error message."""
    total = len(raw)
    if total < 4:
        raise HeaderBlockError(StreamStatus.PROTOCOL_ERROR, "header block shorter than its count")
    (count,) = _UNPACK_UINT32(raw, 0)
    # Each pair needs at least 8 bytes of lengths plus a 1-byte name.
    if count * 9 > total - 4:
        raise HeaderBlockError(
            StreamStatus.PROTOCOL_ERROR, f"header count {count} exceeds what the block holds"
        )
    if count > max_header_count:
        raise HeaderBlockError(
            StreamStatus.FRAME_TOO_LARGE, f"{count} headers is more than {max_header_count}"
        )
    names: list[bytes] = []
    values: list[bytes] = []
    add_name = names.append
    add_value = values.append
    unpack = _UNPACK_UINT32
    pos = 4
    try:
        for _ in range(count):
            (length,) = unpack(raw, pos)
            start = pos + 4
            pos = start + length
            add_name(raw[start:pos])
            (length,) = unpack(raw, pos)  # raises once a name overran the block
            start = pos + 4
            pos = start + length
            add_value(raw[start:pos])
    except struct.error:
        raise HeaderBlockError(StreamStatus.PROTOCOL_ERROR, "header block truncated") from None
    if pos != total:
        if pos > total:
            raise HeaderBlockError(StreamStatus.PROTOCOL_ERROR, "header value overruns the block")
        raise HeaderBlockError(
            StreamStatus.PROTOCOL_ERROR, f"{total - pos} stray bytes after the last header"
        )
    # Validation in bulk, with C-level set and bytes operations; loops only on a fault.
    known = _KNOWN_VALID_NAMES
    if not known.issuperset(names):
        for name in names:
            if name not in known:
                if _VALID_NAME(name) is None:
                    raise HeaderBlockError(
                        StreamStatus.PROTOCOL_ERROR, f"invalid header name {name!r}"
                    )
                if len(known) < _NAME_CACHE_SIZE:
                    known.add(name)
    if len(set(names)) != count:
        seen: set[bytes] = set()
        for name in names:
            if name in seen:
                raise HeaderBlockError(
                    StreamStatus.PROTOCOL_ERROR, f"duplicate header name {name!r}"
                )
            seen.add(name)
    joined = b" ".join(values)
    if _CR in joined or _LF in joined:
        for name, value in zip(names, values, strict=True):
            if _CR in value or _LF in value:
                raise HeaderBlockError(
                    StreamStatus.PROTOCOL_ERROR, f"CR or LF in the value of {name!r}"
                )
    if _NUL not in joined:
        return list(zip(names, values, strict=True))
    split: Headers = []
    for name, value in zip(names, values, strict=True):
        if _NUL in value:
            parts = value.split(b"\x00")
            if b"" in parts:
                raise HeaderBlockError(
                    StreamStatus.PROTOCOL_ERROR, f"empty segment in the value of {name!r}"
                )
            split.extend((name, part) for part in parts)
        else:
            split.append((name, value))
    return split


def _encoded_name(raw_name: bytes) -> bytes:
    """Length-prefixed lowercase name for the wire; b"" for connection-specific headers
    (dropped)."""
    name = raw_name.lower()
    if name in HOP_BY_HOP_HEADERS:
        encoded = b""
    elif not name or _VALID_NAME(name) is None:
        raise LocalProtocolError(f"invalid header name {raw_name!r}")
    else:
        encoded = _UINT32.pack(len(name)) + name
    if len(_ENCODED_NAMES) < _NAME_CACHE_SIZE:
        _ENCODED_NAMES[raw_name] = encoded
    return encoded


def _encoded_pair(raw_name: bytes, value: bytes) -> tuple[bytes, bytes]:
    """(wire name, wire bytes of the pair); (b"", b"") for a hop-by-hop header."""
    encoded = _ENCODED_NAMES.get(raw_name)
    if encoded is None:
        encoded = _encoded_name(raw_name)
    if not encoded:
        return b"", b""
    if _NUL in value or _CR in value or _LF in value:
        raise LocalProtocolError(f"header {raw_name!r} has NUL, CR or LF in its value")
    pair = (encoded, encoded + _UINT32.pack(len(value)) + value)
    if len(value) <= _PAIR_CACHE_VALUE_LIMIT:
        _remember(_ENCODED_PAIRS, (raw_name, value), pair, _PAIR_CACHE_SIZE)
    return pair


def wire_names(*names: bytes) -> frozenset[bytes]:
    """Names in the length-prefixed form the encoder works with (for `pseudo=`)."""
    return frozenset(_UINT32.pack(len(name)) + name for name in names)


#: Pseudo-headers each kind of frame we send may carry (`pseudo=` of `encode_nv_block`),
#: each at most once; any other name starting with ':' is invalid there.
RESPONSE_PSEUDO = wire_names(b":status", b":version")
PUSH_PSEUDO = wire_names(b":scheme", b":host", b":path", b":method", b":status", b":version")
NO_PSEUDO: frozenset[bytes] = frozenset()
_RESPONSE_BLOCKS = _ENCODED_BLOCKS[RESPONSE_PSEUDO] = {}


def encode_nv_block(headers: Iterable[tuple[bytes, bytes]],
                    pseudo: frozenset[bytes] | None = None) -> bytes:
    """Serialise headers for the wire: lowercase names, repeated names NUL-joined (empty
    values dropped), connection-specific headers removed. Raises LocalProtocolError on
    values that cannot be represented (NUL, CR, LF) or empty names, and, given `pseudo`
    (a set from `wire_names`), on a pseudo-header outside it or repeated: an application
    cannot add to or change the ones the server sets (None: not checked).

    Most response headers repeat from one response to the next (status, content-type,
    server, date), so checked and serialised pairs are cached, and so are whole small
    blocks, keyed by their header tuples."""
    if not isinstance(headers, (list, tuple)):
        headers = list(headers)  # the slow path may need a second pass
    if pseudo is RESPONSE_PSEUDO:  # the one per request
        blocks = _RESPONSE_BLOCKS
    else:
        blocks = _ENCODED_BLOCKS.get(pseudo)  # type: ignore[assignment]
        if blocks is None:
            blocks = _ENCODED_BLOCKS[pseudo] = {}
    try:
        key: tuple[tuple[bytes, bytes], ...] | None = tuple(headers)
        block = blocks.get(key)  # type: ignore[arg-type]
    except TypeError:  # a [name, value] list: allowed by ASGI, not hashable
        key = block = None
    if block is not None:
        return block
    block = _encode_pairs(headers, pseudo)
    if key is not None and len(block) <= _BLOCK_CACHE_BYTES:
        _remember(blocks, key, block, _BLOCK_CACHE_SIZE)
    return block


def _bad_pseudo(name: bytes, repeated: bool) -> LocalProtocolError:
    what = "repeated" if repeated else "not allowed here"
    return LocalProtocolError(
        f"pseudo-header {name[4:].decode()!r} {what}: those are set by the server, "
        "not the application"
    )


def _encode_pairs(headers: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...],
                  pseudo: frozenset[bytes] | None) -> bytes:
    cache = _ENCODED_PAIRS
    parts: list[bytes] = []
    seen: set[bytes] = set()
    for header in headers:
        try:
            hit = cache.get(header)
        except TypeError:  # a [name, value] list: allowed by ASGI, not hashable
            hit = None
        if hit is None:
            hit = _encoded_pair(header[0], header[1])
        name, blob = hit
        if not name:
            continue
        if name[4] == 58 and pseudo is not None and name not in pseudo:  # b":"
            raise _bad_pseudo(name, False)
        if name in seen:
            return _encode_merged(headers, pseudo)
        seen.add(name)
        parts.append(blob)
    return _UINT32.pack(len(seen)) + b"".join(parts)


def _encode_merged(headers: Iterable[tuple[bytes, bytes]],
                   pseudo: frozenset[bytes] | None) -> bytes:
    """The slow path of `encode_nv_block` for blocks that repeat a name."""
    merged: dict[bytes, list[bytes]] = {}
    for raw_name, value in headers:
        encoded = _ENCODED_NAMES.get(raw_name)
        if encoded is None:
            encoded = _encoded_name(raw_name)
        if not encoded:
            continue
        if _INVALID_VALUE(value) is not None:
            raise LocalProtocolError(f"header {raw_name!r} has NUL, CR or LF in its value")
        values = merged.get(encoded)
        if values is None:
            if encoded[4] == 58 and pseudo is not None and encoded not in pseudo:
                raise _bad_pseudo(encoded, False)
            merged[encoded] = [value]
        elif encoded[4] == 58 and pseudo is not None:
            raise _bad_pseudo(encoded, True)
        else:
            values.append(value)
    pack = _UINT32.pack
    parts = [pack(len(merged))]
    for encoded, values in merged.items():
        value = values[0] if len(values) == 1 else b"\x00".join(v for v in values if v)
        parts.append(encoded)
        parts.append(pack(len(value)))
        parts.append(value)
    return b"".join(parts)


class HeaderCompressor:
    """Deflates outgoing NV blocks with a SYNC flush after each one.

    `level`: 0 (stored, the default) and HUFFMAN_ONLY (-1) do no string matching, so a
    secret in one header cannot be guessed from the compressed size (CRIME); stored is
    also far cheaper, since Huffman coding builds new trees at every sync flush. 1..9 is
    full deflate: smallest, but only safe when no response header is secret.
    """

    __slots__ = ("_deflater", "_replay", "_responses", "_started")

    def __init__(self, level: int = 0, dictionary: bytes = SPDY3_DICTIONARY):
        if not HUFFMAN_ONLY <= level <= 9:
            raise ValueError(f"header compression level must be -1..9, not {level}")
        if level == HUFFMAN_ONLY:
            self._deflater = zlib.compressobj(
                9, zlib.DEFLATED, 11, 1, zlib.Z_HUFFMAN_ONLY, zdict=dictionary
            )
        else:
            self._deflater = zlib.compressobj(
                level, zlib.DEFLATED, 11, 1, zlib.Z_DEFAULT_STRATEGY, zdict=dictionary
            )
        self._replay = _REPLAYS.get(level) if dictionary is SPDY3_DICTIONARY else None
        self._responses = _RESPONSE_WIRE.get(level) if self._replay is not None else None
        self._started = False

    def compress(self, nv_block: bytes) -> bytes:
        replay = self._replay
        if replay is not None and self._started:
            hit = replay.get(nv_block)
            if hit is not None:
                return hit
        deflater = self._deflater
        out = deflater.compress(nv_block) + deflater.flush(zlib.Z_SYNC_FLUSH)
        if replay is not None:
            if not self._started:
                self._started = True  # this first block carries the zlib header
            elif len(nv_block) <= _REPLAY_BLOCK:
                _remember(replay, nv_block, out, _REPLAY_ENTRIES)
        return out

    def encode(self, headers: Iterable[tuple[bytes, bytes]],
               pseudo: frozenset[bytes] | None = None) -> bytes:
        return self.compress(encode_nv_block(headers, pseudo))

    def encode_response(self, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
        """`encode(headers, RESPONSE_PSEUDO)` for a SYN_REPLY, from a per-level cache of
        whole compressed reply blocks where the level allows replays (see `compress`):
        most replies repeat one of a few heads, which then costs one dict lookup (a
        tuple of pairs is the key as it is; other iterables are made one)."""
        responses = self._responses
        if responses is None or not self._started:
            return self.compress(encode_nv_block(headers, RESPONSE_PSEUDO))
        if type(headers) is not tuple:
            headers = tuple(headers)
        try:
            hit = responses.get(headers)
        except TypeError:  # a [name, value] list inside: allowed by ASGI, not hashable
            return self.compress(encode_nv_block(headers, RESPONSE_PSEUDO))
        if hit is None:
            hit = self.compress(encode_nv_block(headers, RESPONSE_PSEUDO))
            if len(hit) <= _BLOCK_CACHE_BYTES:
                _remember(responses, headers, hit, _BLOCK_CACHE_SIZE)
        return hit
