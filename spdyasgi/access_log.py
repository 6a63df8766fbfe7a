"""One access-log line per request/stream, on the ``spdyasgi.access`` logger.

The default line is
``127.0.0.1:51234 - "GET /path?q HTTP/1.1" 200 1234 spdy/3.1 stream=1 3.2ms``.
``config.access_log_format`` takes gunicorn-style atoms (``%(h)s``, ``%(r)s``,
``%({name}i)s``...) plus ``%(S)s`` (stream id) and ``%(P)s`` (negotiated protocol).
Callers check ``AccessLogger.enabled`` first so a disabled log costs one attribute read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["AccessLogger"]

Headers = Iterable[tuple[bytes, bytes]]


class _Atoms(Mapping[str, str]):
    """Lazy mapping: only the atoms the format string uses get computed."""

    __slots__ = ("_rec",)

    def __init__(self, rec: dict[str, Any]) -> None:
        self._rec = rec

    def __getitem__(self, key: str) -> str:
        rec = self._rec
        if key.startswith("{"):
            name, _, kind = key[1:].rpartition("}")
            headers = rec["request_headers"] if kind == "i" else rec["response_headers"]
            return _header(headers, name.lower().encode("latin-1")) or "-"
        return str(_ATOMS[key](rec))

    def __iter__(self) -> Any:
        return iter(_ATOMS)

    def __len__(self) -> int:
        return len(_ATOMS)


def _header(headers: Headers, name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _full_path(rec: dict[str, Any]) -> str:
    query = rec["query"]
    return f"{rec['path']}?{query}" if query else str(rec["path"])


_ATOMS: dict[str, Any] = {
    "h": lambda r: r["client_host"],
    "r": lambda r: f"{r['method']} {_full_path(r)} HTTP/{r['http_version']}",
    "m": lambda r: r["method"],
    "U": lambda r: r["path"],
    "q": lambda r: r["query"],
    "H": lambda r: f"HTTP/{r['http_version']}",
    "s": lambda r: r["status"],
    "B": lambda r: r["bytes_sent"],
    "b": lambda r: r["bytes_sent"] or "-",
    "L": lambda r: f"{r['duration']:.6f}",
    "D": lambda r: int(r["duration"] * 1_000_000),
    "T": lambda r: int(r["duration"]),
    "a": lambda r: _header(r["request_headers"], b"user-agent") or "-",
    "f": lambda r: _header(r["request_headers"], b"referer") or "-",
    "S": lambda r: "-" if r["stream_id"] is None else r["stream_id"],
    "P": lambda r: r["protocol"],
}


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


class AccessLogger:
    """Formats and emits access lines; build one per server and share it."""

    __slots__ = ("_format", "_on", "configured", "logger")

    def __init__(self, config: Any) -> None:
        self.logger = logging.getLogger("spdyasgi.access")
        # `%({name}i)s` is already a valid mapping key for %-formatting: no parsing needed.
        self._format: str | None = getattr(config, "access_log_format", None)
        self._on = bool(getattr(config, "access_log", True))
        #: The configuration's switch alone: a plain attribute, so per-request callers can
        #: skip the `enabled` call (which also asks the logger) when the log is off.
        self.configured = self._on

    @property
    def enabled(self) -> bool:
        """Cheap check callers make before gathering what ``log`` needs."""
        return self._on and self.logger.isEnabledFor(logging.INFO)

    def log(
        self,
        *,
        client: tuple[str, int] | None,
        method: str | bytes,
        path: str | bytes,
        query: str | bytes,
        protocol: str,
        status: int,
        bytes_sent: int,
        duration: float,
        stream_id: int | None,
        request_headers: Headers,
        response_headers: Headers,
        http_version: str = "1.1",
    ) -> None:
        """Emit one line; ``duration`` is in seconds, ``query`` without the ``?``."""
        if not self.enabled:
            return
        client_text = f"{client[0]}:{client[1]}" if client else "-"
        method_s, path_s, query_s = _text(method), _text(path), _text(query)
        if self._format is None:
            full_path = f"{path_s}?{query_s}" if query_s else path_s
            stream = "" if stream_id is None else f" stream={stream_id}"
            # The five leading args are what spdyasgi.logging.AccessFormatter understands.
            suffix = f" {bytes_sent} {protocol}{stream} {duration * 1000:.1f}ms"
            self.logger.info(
                '%s - "%s %s %s" %d' + suffix.replace("%", "%%"),
                client_text,
                method_s,
                full_path,
                f"HTTP/{http_version}",
                status,
            )
            return
        rec = {
            "client_host": client[0] if client else "-",
            "method": method_s,
            "path": path_s,
            "query": query_s,
            "protocol": protocol,
            "status": status,
            "bytes_sent": bytes_sent,
            "duration": duration,
            "stream_id": stream_id,
            "request_headers": request_headers,
            "response_headers": response_headers,
            "http_version": http_version,
        }
        try:
            line = self._format % _Atoms(rec)
        except (KeyError, ValueError, TypeError) as exc:
            line = f"invalid access_log_format ({exc!r})"
        self.logger.info("%s", line)
