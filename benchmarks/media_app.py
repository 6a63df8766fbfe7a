"""The media-pattern benchmark's ASGI app: one real file served with Range support.

    spdyasgi media_app:app --app-dir benchmarks     # SPDYASGI_MEDIA_FILE=/path/to/file

* ``GET /media`` + ``range: bytes=A-B`` or ``bytes=A-`` -> 206 + content-range
* ``GET /media`` without a range                      -> 200, the whole file
* an unsatisfiable range                               -> 416; anything else -> 404

The body is read from the file in ``CHUNK`` (64 KiB) pieces and each is sent with
``more_body``, so the server's flow control paces the reads and a cancelled stream stops
them: after a RST_STREAM, ``send()`` raises (``ClientDisconnected``, an OSError) and the
handler returns. Reads are ``os.pread`` on one descriptor opened at startup: the file
is in the page cache during the benchmark, and a 64 KiB copy costs microseconds.
``benchmarks/node_spdy_media.js`` is the node-spdy twin of this app.
"""

from __future__ import annotations

import os
import re
from typing import Any, Literal

CHUNK = 64 * 1024
_RANGE = re.compile(rb"bytes=(\d+)-(\d*)")
_fd: int | None = None
_size = 0


def _open() -> tuple[int, int]:
    global _fd, _size
    if _fd is None:
        path = os.environ["SPDYASGI_MEDIA_FILE"]
        _fd = os.open(path, os.O_RDONLY)
        _size = os.fstat(_fd).st_size
    return _fd, _size


def _range(scope: dict[str, Any], size: int) -> tuple[int, int] | Literal[False] | None:
    """(first, last) byte of the request's range; None without one; False if unsatisfiable."""
    for name, value in scope["headers"]:
        if name == b"range":
            match = _RANGE.fullmatch(value.strip())
            if match is None:
                return None  # a range form we do not serve: the whole file (RFC 9110 allows)
            first = int(match[1])
            last = min(int(match[2]), size - 1) if match[2] else size - 1
            if first >= size or last < first:
                return False
            return first, last
    return None


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _open()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    fd, size = _open()
    if scope["path"] != "/media":
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        return
    wanted = _range(scope, size)
    if wanted is False:
        await send({"type": "http.response.start", "status": 416,
                    "headers": [(b"content-range", f"bytes */{size}".encode()),
                                (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        return
    first, last = (0, size - 1) if wanted is None else wanted
    headers = [(b"content-type", b"application/octet-stream"),
               (b"content-length", str(last - first + 1).encode()),
               (b"accept-ranges", b"bytes")]
    if wanted is not None:
        headers.append((b"content-range", f"bytes {first}-{last}/{size}".encode()))
    await send({"type": "http.response.start", "status": 206 if wanted is not None else 200,
                "headers": headers})
    offset, end = first, last + 1
    try:
        while offset < end:
            piece = os.pread(fd, min(CHUNK, end - offset), offset)
            if not piece:
                raise RuntimeError(f"{os.environ['SPDYASGI_MEDIA_FILE']} shrank under us")
            offset += len(piece)
            await send({"type": "http.response.body", "body": piece,
                        "more_body": offset < end})
    except OSError:
        return  # the client cancelled the stream (ClientDisconnected): stop reading
