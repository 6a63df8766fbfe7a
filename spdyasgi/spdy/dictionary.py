"""The zlib dictionaries SPDY primes its header compression contexts with."""

from __future__ import annotations

import zlib
from pathlib import Path

_HERE = Path(__file__).resolve().parent

#: SPDY/3 (and 3.1) dictionary: 1423 bytes, Adler-32 0xe3c6a7c2.
SPDY3_DICTIONARY: bytes = (_HERE / "dictionary_v3.bin").read_bytes()
SPDY3_DICTIONARY_ID = 0xE3C6A7C2

#: SPDY/2 dictionary (with its trailing NUL): 907 bytes, Adler-32 0xdfa251b2.
SPDY2_DICTIONARY: bytes = (_HERE / "dictionary_v2.bin").read_bytes()
SPDY2_DICTIONARY_ID = 0xDFA251B2

if zlib.adler32(SPDY3_DICTIONARY) != SPDY3_DICTIONARY_ID:  # pragma: no cover - packaging fault
    raise ImportError("spdyasgi: the packaged SPDY/3 dictionary is corrupt")
if zlib.adler32(SPDY2_DICTIONARY) != SPDY2_DICTIONARY_ID:  # pragma: no cover - packaging fault
    raise ImportError("spdyasgi: the packaged SPDY/2 dictionary is corrupt")
