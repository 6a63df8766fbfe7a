"""Deterministic bodies shared by the soak app and the soak client.

Body `seed` is an endless byte stream: a pseudo-random block of a prime length (so pieces
never line up with frame or chunk sizes) repeated forever. Byte `i` of body `seed` is
``BLOCKS[seed][i % BLOCK_LEN]``; any misplaced, duplicated or lost byte shows up when the
client compares what it got with `expected`. All blocks are built at import, so neither
side's memory grows with the traffic.
"""

from __future__ import annotations

import random

BLOCK_LEN = 65521  # prime
SEEDS = 64
#: each block twice in a row, so any piece up to BLOCK_LEN long is one slice
_DOUBLED = [(lambda b: b + b)(random.Random(seed).randbytes(BLOCK_LEN)) for seed in range(SEEDS)]
#: size of the virtual file served by ``/file`` (Range requests)
FILE_SIZE = 256 << 20


def expected(seed: int, offset: int, length: int) -> bytes:
    """Bytes `offset` .. `offset + length` of body `seed`."""
    doubled = _DOUBLED[seed % SEEDS]
    start = offset % BLOCK_LEN
    if length <= BLOCK_LEN:
        return doubled[start:start + length]
    parts = []
    while length > 0:
        take = min(length, BLOCK_LEN)
        parts.append(doubled[start:start + take])
        length -= take
        start = (start + take) % BLOCK_LEN
    return b"".join(parts)


def matches(seed: int, offset: int, chunk: bytes | memoryview) -> bool:
    """True when `chunk` is exactly the bytes of body `seed` at `offset`."""
    size = len(chunk)
    position = 0
    while position < size:
        take = min(size - position, BLOCK_LEN)
        if chunk[position:position + take] != expected(seed, offset + position, take):
            return False
        position += take
    return True
