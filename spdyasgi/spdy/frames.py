"""Frame layouts: precompiled structs and serialisers for every SPDY/3 frame.

Parsing lives in `connection.py` (it needs session state to decide what a frame means);
this module only knows byte layouts, so the client, the server and tests share it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from .accel import nvfast
from .constants import (
    MAX_FRAME_LENGTH,
    TYPE_GOAWAY,
    TYPE_HEADERS,
    TYPE_PING,
    TYPE_RST_STREAM,
    TYPE_SETTINGS,
    TYPE_SYN_REPLY,
    TYPE_SYN_STREAM,
    TYPE_WINDOW_UPDATE,
)

FRAME_HEADER = struct.Struct("!LL")
UINT32 = struct.Struct("!L")
UINT32X2 = struct.Struct("!LL")
SYN_STREAM_HEAD = struct.Struct("!LLBB")
SETTINGS_ENTRY = struct.Struct("!LL")

_CONTROL_BIT = 0x80000000
_STREAM_MASK = 0x7FFFFFFF
#: SYN_REPLY / HEADERS head: control word, flags+length, stream id, in one pack.
_HEADED = struct.Struct("!LLL")


def control_frame(version: int, frame_type: int, flags: int, payload: bytes) -> bytes:
    """A control frame with the 8-byte header in front of `payload`."""
    length = len(payload)
    if length > MAX_FRAME_LENGTH:
        raise ValueError("control frame payload exceeds 2^24-1 bytes")
    return (
        FRAME_HEADER.pack(_CONTROL_BIT | (version << 16) | frame_type, (flags << 24) | length)
        + payload
    )


def data_frame_header(stream_id: int, flags: int, length: int) -> bytes:
    return FRAME_HEADER.pack(stream_id & _STREAM_MASK, (flags << 24) | length)


def data_frame(stream_id: int, flags: int, data: bytes) -> bytes:
    return FRAME_HEADER.pack(stream_id & _STREAM_MASK, (flags << 24) | len(data)) + data


def syn_stream(
    version: int,
    stream_id: int,
    associated_id: int,
    priority: int,
    flags: int,
    header_block: bytes,
    slot: int = 0,
) -> bytes:
    payload = (
        SYN_STREAM_HEAD.pack(stream_id & _STREAM_MASK, associated_id & _STREAM_MASK,
                             (priority & 7) << 5, slot)
        + header_block
    )
    return control_frame(version, TYPE_SYN_STREAM, flags, payload)


def syn_reply(version: int, stream_id: int, flags: int, header_block: bytes) -> bytes:
    return _headed(version, TYPE_SYN_REPLY, stream_id, flags, header_block)


def _reply_with_data(version: int, stream_id: int, header_block: bytes,
                     body: bytes | memoryview, data_flags: int) -> bytes:
    """SYN_REPLY (no flags) + one DATA frame of `body`: a small response in one bytes
    object. The C extension has the same function (one allocation, no Python frames)."""
    if len(body) > MAX_FRAME_LENGTH:
        raise ValueError("frame payload exceeds 2^24-1 bytes")
    return (_headed(version, TYPE_SYN_REPLY, stream_id, 0, header_block)
            + FRAME_HEADER.pack(stream_id & _STREAM_MASK, (data_flags << 24) | len(body))
            + body)


reply_with_data = nvfast.reply_with_data if nvfast is not None else _reply_with_data


def headers_frame(version: int, stream_id: int, flags: int, header_block: bytes) -> bytes:
    return _headed(version, TYPE_HEADERS, stream_id, flags, header_block)


def _headed(version: int, frame_type: int, stream_id: int, flags: int,
            header_block: bytes) -> bytes:
    length = 4 + len(header_block)
    if length > MAX_FRAME_LENGTH:
        raise ValueError("control frame payload exceeds 2^24-1 bytes")
    return _HEADED.pack(_CONTROL_BIT | (version << 16) | frame_type, (flags << 24) | length,
                        stream_id & _STREAM_MASK) + header_block


def rst_stream(version: int, stream_id: int, status: int) -> bytes:
    return control_frame(
        version, TYPE_RST_STREAM, 0, UINT32X2.pack(stream_id & _STREAM_MASK, status)
    )


def settings(version: int, entries: Iterable[tuple[int, int, int]], flags: int = 0) -> bytes:
    """SETTINGS from `(id, flags, value)` entries, written in increasing id order."""
    ordered = sorted(entries)
    payload = UINT32.pack(len(ordered)) + b"".join(
        SETTINGS_ENTRY.pack(((entry_flags & 0xFF) << 24) | (setting_id & 0xFFFFFF), value)
        for setting_id, entry_flags, value in ordered
    )
    return control_frame(version, TYPE_SETTINGS, flags, payload)


def ping(version: int, ping_id: int) -> bytes:
    return control_frame(version, TYPE_PING, 0, UINT32.pack(ping_id & 0xFFFFFFFF))


def goaway(version: int, last_good_stream_id: int, status: int) -> bytes:
    return control_frame(
        version, TYPE_GOAWAY, 0, UINT32X2.pack(last_good_stream_id & _STREAM_MASK, status)
    )


def window_update(version: int, stream_id: int, delta: int) -> bytes:
    """WINDOW_UPDATE; a delta outside 1..2^31-1 is a bug of the caller, never masked."""
    if not 0 < delta <= _STREAM_MASK or not 0 <= stream_id <= _STREAM_MASK:
        raise ValueError(f"WINDOW_UPDATE delta {delta} for stream {stream_id} out of range")
    return control_frame(
        version, TYPE_WINDOW_UPDATE, 0, UINT32X2.pack(stream_id, delta)
    )
