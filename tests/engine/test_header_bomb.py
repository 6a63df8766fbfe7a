"""Header bombs: a block that would inflate past the limit is inflated no further than
the limit (plus one byte), and ends the session, whose shared zlib context it broke."""

from __future__ import annotations

import zlib
from typing import Any

import pytest

from spdyasgi.spdy import ConnectionTerminated, SessionStatus
from spdyasgi.spdy.dictionary import SPDY3_DICTIONARY
from spdyasgi.spdy.headers import CompressionError, HeaderDecompressor

from .factory import GOAWAY, ServerHarness, nv_block, request_headers


class RecordingInflater:
    """Wraps the session's zlib decompressobj and records every call made to it."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[tuple[int, int]] = []  # (max_length asked, bytes produced)

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        out: bytes = self.real.decompress(data, max_length)
        self.calls.append((max_length, len(out)))
        return out

    @property
    def unconsumed_tail(self) -> bytes:
        return self.real.unconsumed_tail  # type: ignore[no-any-return]

    @property
    def eof(self) -> bool:
        return self.real.eof  # type: ignore[no-any-return]


def _bomb(value_size: int) -> bytes:
    """A compressed request header block whose `x-bomb` value is `value_size` bytes."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zdict=SPDY3_DICTIONARY)
    raw = nv_block(request_headers(extra=[(b"x-bomb", b"a" * value_size)]))
    return deflater.compress(raw) + deflater.flush(zlib.Z_SYNC_FLUSH)


def test_a_60_mib_bomb_in_a_58_kib_syn_stream_is_stopped_at_the_limit() -> None:
    block = _bomb(60 << 20)
    assert 50 << 10 < len(block) < 64 << 10  # fits the 64 KiB control frame limit
    h = ServerHarness()
    limit = h.conn.limits.max_header_block_size
    # The zlib-module path, recorded (nothing was inflated yet: a fresh context is the
    # same); the C path is held to the same results by test_c_inflater_* below.
    h.conn._decompressor = HeaderDecompressor(limit, accelerated=False)
    h.conn._acceptor = None  # the C request acceptor holds the C inflater: Python's path
    recorder = RecordingInflater(h.conn._decompressor._inflater)
    h.conn._decompressor._inflater = recorder  # type: ignore[assignment]
    events = h.feed(h.f.syn_stream(1, block=block, fin=True))
    assert len(events) == 1 and isinstance(events[0], ConnectionTerminated)
    assert events[0].status == SessionStatus.PROTOCOL_ERROR
    assert f"more than {limit} bytes" in events[0].reason
    assert [(fr.type, fr.status) for fr in h.out()] == [(GOAWAY, 1)]
    # zlib was never asked for an unbounded output, and produced one byte past the limit
    # at most; nearly all of the frame was never inflated.
    assert recorder.calls and all(0 < asked <= limit + 1 for asked, _ in recorder.calls)
    assert sum(got for _, got in recorder.calls) == limit + 1
    assert len(recorder.unconsumed_tail) > len(block) // 2
    assert h.feed(h.f.syn_stream(3)) == []  # the session is over


@pytest.mark.parametrize("limit", [100, 2047, 2048, 2049, 65536])
def test_blocks_at_and_around_the_limit(limit: int) -> None:
    for size in (limit - 1, limit, limit + 1, limit * 3):
        raw = nv_block([(b"x", b"y" * (size - 13))])
        assert len(raw) == size
        deflater = zlib.compressobj(6, zlib.DEFLATED, 11, 1, zdict=SPDY3_DICTIONARY)
        d = HeaderDecompressor(max_block_size=limit, accelerated=False)
        recorder = RecordingInflater(d._inflater)
        d._inflater = recorder  # type: ignore[assignment]
        block = deflater.compress(raw) + deflater.flush(zlib.Z_SYNC_FLUSH)
        if size <= limit:
            assert d.inflate(block) == raw
        else:
            with pytest.raises(CompressionError, match=f"more than {limit} bytes"):
                d.inflate(block)
            assert sum(got for _, got in recorder.calls) == limit + 1
        assert all(0 < asked <= limit + 1 for asked, _ in recorder.calls)


@pytest.mark.parametrize("limit", [100, 2047, 2048, 2049, 65536])
def test_c_inflater_same_answers_around_the_limit(limit: int) -> None:
    """The C inflater (the default when built) gives what the zlib-module path gives,
    and ends the session on a bomb the same way."""
    nv = pytest.importorskip("spdyasgi.spdy._nvfast")
    for size in (limit - 1, limit, limit + 1, limit * 3):
        raw = nv_block([(b"x", b"y" * (size - 13))])
        deflater = zlib.compressobj(6, zlib.DEFLATED, 11, 1, zdict=SPDY3_DICTIONARY)
        block = deflater.compress(raw) + deflater.flush(zlib.Z_SYNC_FLUSH)
        c = HeaderDecompressor(max_block_size=limit)
        c._c_inflater = nv.Inflater(SPDY3_DICTIONARY)  # even under SPDYASGI_NO_EXTENSION
        if size <= limit:
            assert c.inflate(block) == raw
        else:
            with pytest.raises(CompressionError, match=f"more than {limit} bytes"):
                c.inflate(block)


def test_c_inflater_stops_a_60_mib_bomb_at_the_limit() -> None:
    nv = pytest.importorskip("spdyasgi.spdy._nvfast")
    h = ServerHarness()
    limit = h.conn.limits.max_header_block_size
    h.conn._decompressor._c_inflater = nv.Inflater(SPDY3_DICTIONARY)
    h.conn._decompressor._inflater = None
    events = h.feed(h.f.syn_stream(1, block=_bomb(60 << 20), fin=True))
    assert len(events) == 1 and isinstance(events[0], ConnectionTerminated)
    assert f"more than {limit} bytes" in events[0].reason
    assert [(fr.type, fr.status) for fr in h.out()] == [(GOAWAY, 1)]
    assert h.feed(h.f.syn_stream(3)) == []
