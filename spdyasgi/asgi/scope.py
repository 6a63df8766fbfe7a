"""Building the parts of an ASGI ``http`` scope that HTTP/1.1 and SPDY share.

A protocol builds a per-connection *base* once (``connection_scope``) and then one
dict copy per request (``http_scope``); this keeps the per-request work to a copy and a
handful of assignments.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote_to_bytes

__all__ = ["addresses", "connection_scope", "http_scope", "proxy_extension", "split_target"]

Address = tuple[str, int]


def addresses(transport: asyncio.BaseTransport) -> tuple[Address | None, Address | None]:
    """``(server, client)`` as ASGI wants them; ``None`` for non-IP sockets (UDS)."""
    return _ip_address(transport.get_extra_info("sockname")), _ip_address(
        transport.get_extra_info("peername")
    )


def proxy_extension(transport: asyncio.BaseTransport) -> dict[str, Any]:
    """``{"proxy_protocol": {...}}`` when a PROXY header came first, else ``{}``.

    ``client``/``server`` already come from the header (``get_extra_info`` answers
    with its addresses, see spdyasgi/protocols/proxy.py); this adds its TLVs.
    """
    info = transport.get_extra_info("proxy_protocol")
    return {} if info is None else {"proxy_protocol": info}


def _ip_address(info: Any) -> Address | None:
    if isinstance(info, (tuple, list)) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    return None


def connection_scope(
    *,
    scheme: str,
    server: Address | None,
    client: Address | None,
    root_path: str,
    extensions: dict[str, Any],
) -> dict[str, Any]:
    """The fields that do not change between requests on one connection."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": scheme,
        "server": server,
        "client": client,
        "root_path": root_path,
        "extensions": extensions,
    }


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """``b"/a%20b?x=1"`` → ``(b"/a%20b", b"x=1")``."""
    path, _, query = target.partition(b"?")
    return path, query


def http_scope(
    base: dict[str, Any],
    method: str,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    state: dict[str, Any],
    http_version: str = "1.1",
) -> dict[str, Any]:
    """One request's scope: ``path`` is percent-decoded text, ``raw_path`` stays bytes.

    ``root_path`` is prefixed to both paths, as ASGI 2.4 / uvicorn do, so apps mounted
    under a prefix see the full path.
    """
    raw_path, _, query = target.partition(b"?")
    if 37 in raw_path:  # b"%" as a byte value: `b"%" in` costs a caught TypeError
        path = unquote_to_bytes(raw_path).decode("utf-8", "replace")
    else:
        path = raw_path.decode("utf-8", "replace")
    scope = base.copy()
    root_path: str = base["root_path"]
    if root_path:
        path = root_path + path
        raw_path = root_path.encode("utf-8") + raw_path
    scope["method"] = method
    scope["path"] = path
    scope["raw_path"] = raw_path
    scope["query_string"] = query
    scope["headers"] = headers
    scope["state"] = state.copy() if state else {}
    if http_version != "1.1":
        scope["http_version"] = http_version
    return scope
