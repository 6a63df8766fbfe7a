"""A passive SPDY/3 frame decoder for `spdyasgi-client -v`.

It is fed the exact bytes the engine reads and writes (the engine is not modified) and
prints one line per frame: direction, type, stream, flags, length, plus settings, window
updates, ping ids, statuses and, for header frames, the decoded headers. Each direction
keeps its own zlib context, mirroring the peer's, so header blocks decode in order.
DATA payloads are skipped, never buffered.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from ..spdy.constants import FrameType, SettingId
from ..spdy.headers import CompressionError, HeaderBlockError, HeaderDecompressor
from .errors import session_status_name, stream_status_name

_HEADER = struct.Struct("!LL")
_U32 = struct.Struct("!L")
_U32X2 = struct.Struct("!LL")

_NAMES = {int(t): t.name for t in FrameType}
_SETTINGS = {int(s): s.name for s in SettingId}


class _Direction:
    __slots__ = ("arrow", "buf", "decompressor", "skip")

    def __init__(self, arrow: str):
        self.arrow = arrow
        self.buf = bytearray()
        self.skip = 0
        self.decompressor = HeaderDecompressor(1 << 20, 4096)


class FrameTracer:
    """`feed("<" or ">", data)`; calls `write(line)` for every complete frame."""

    def __init__(self, write: Callable[[str], None], show_headers: bool = True):
        self.write = write
        self.show_headers = show_headers
        self._dirs = {"<": _Direction("<"), ">": _Direction(">")}

    def __call__(self, direction: str, data: bytes) -> None:
        self.feed(direction, data)

    def feed(self, direction: str, data: bytes) -> None:
        state = self._dirs[direction]
        view = memoryview(data)
        if state.skip:
            take = min(state.skip, len(view))
            state.skip -= take
            view = view[take:]
        buf = state.buf
        buf += view
        pos = 0
        while len(buf) - pos >= 8:
            word, flags_length = _HEADER.unpack_from(buf, pos)
            flags = flags_length >> 24
            length = flags_length & 0xFFFFFF
            if not word & 0x80000000:
                fin = " FIN" if flags & 1 else ""
                self.write(f"{state.arrow} DATA stream={word & 0x7FFFFFFF} flags=0x{flags:02x}"
                           f"{fin} length={length}")
                available = len(buf) - pos - 8
                if available >= length:
                    pos += 8 + length
                    continue
                state.skip = length - available
                pos = len(buf)
                break
            if len(buf) - pos - 8 < length:
                break
            payload = bytes(buf[pos + 8:pos + 8 + length])
            pos += 8 + length
            self._control(state, (word >> 16) & 0x7FFF, word & 0xFFFF, flags, payload)
        del buf[:pos]

    def _control(self, state: _Direction, version: int, ftype: int, flags: int,
                 payload: bytes) -> None:
        name = _NAMES.get(ftype, f"UNKNOWN({ftype})")
        head = f"{state.arrow} {name} v{version} flags=0x{flags:02x} length={len(payload)}"
        block: bytes | None = None
        try:
            if ftype == FrameType.SYN_STREAM and len(payload) >= 10:
                sid, assoc = _U32X2.unpack_from(payload, 0)
                pri = payload[8] >> 5
                extra = " FIN" if flags & 1 else ""
                extra += " UNIDIRECTIONAL" if flags & 2 else ""
                head += f"{extra} stream={sid & 0x7FFFFFFF} assoc={assoc & 0x7FFFFFFF} pri={pri}"
                block = payload[10:]
            elif ftype in (FrameType.SYN_REPLY, FrameType.HEADERS) and len(payload) >= 4:
                head += (" FIN" if flags & 1 else "") + \
                    f" stream={_U32.unpack_from(payload, 0)[0] & 0x7FFFFFFF}"
                block = payload[4:] if len(payload) > 4 else None
            elif ftype == FrameType.RST_STREAM and len(payload) == 8:
                sid, status = _U32X2.unpack_from(payload, 0)
                head += f" stream={sid & 0x7FFFFFFF} status={stream_status_name(status)}"
            elif ftype == FrameType.SETTINGS and len(payload) >= 4:
                (count,) = _U32.unpack_from(payload, 0)
                entries = []
                for offset in range(4, min(len(payload), 4 + 8 * count), 8):
                    id_word, value = _U32X2.unpack_from(payload, offset)
                    sid = id_word & 0xFFFFFF
                    entries.append(f"{_SETTINGS.get(sid, str(sid))}={value}")
                head += " " + (" ".join(entries) if entries else "(empty)")
            elif ftype == FrameType.PING and len(payload) == 4:
                head += f" id={_U32.unpack_from(payload, 0)[0]}"
            elif ftype == FrameType.GOAWAY and len(payload) >= 4:
                (last,) = _U32.unpack_from(payload, 0)
                head += f" last_good_stream={last & 0x7FFFFFFF}"
                if len(payload) >= 8:
                    head += f" status={session_status_name(_U32.unpack_from(payload, 4)[0])}"
            elif ftype == FrameType.WINDOW_UPDATE and len(payload) == 8:
                sid, delta = _U32X2.unpack_from(payload, 0)
                head += f" stream={sid & 0x7FFFFFFF} delta={delta & 0x7FFFFFFF}"
        except struct.error:  # pragma: no cover - lengths are checked above
            pass
        self.write(head)
        if block:
            try:
                headers = state.decompressor.decode(block)
            except (CompressionError, HeaderBlockError) as exc:
                self.write(f"{state.arrow}   (header block does not decode: {exc})")
                return
            if self.show_headers:
                for hname, value in headers:
                    self.write(f"{state.arrow}   {hname.decode('latin-1')}: "
                               f"{value.decode('latin-1')}")


__all__ = ["FrameTracer"]
