"""Access log lines: default shape, gunicorn atoms, and the disabled fast path."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from spdyasgi.access_log import AccessLogger
from tests.utils import hello_app, open_conn, read_response, run_server

pytestmark = pytest.mark.timeout(30)

REQUEST = {
    "client": ("127.0.0.1", 51234),
    "method": "GET",
    "path": "/path",
    "query": b"q=1",
    "protocol": "spdy/3.1",
    "status": 200,
    "bytes_sent": 1234,
    "duration": 0.0032,
    "stream_id": 1,
    "request_headers": [(b"user-agent", b"curl/8"), (b"x-id", b"abc")],
    "response_headers": [(b"content-type", b"text/plain")],
}


def logger_for(fmt: str | None = None, access_log: bool = True) -> AccessLogger:
    return AccessLogger(SimpleNamespace(access_log_format=fmt, access_log=access_log))


def test_default_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "spdyasgi.access")
    logger_for().log(**REQUEST)  # type: ignore[arg-type]
    assert caplog.messages == [
        '127.0.0.1:51234 - "GET /path?q=1 HTTP/1.1" 200 1234 spdy/3.1 stream=1 3.2ms'
    ]
    # The five leading args are what spdyasgi.logging.AccessFormatter consumes.
    assert caplog.records[0].args == ("127.0.0.1:51234", "GET", "/path?q=1", "HTTP/1.1", 200)


def test_atoms(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "spdyasgi.access")
    fmt = (
        '%(h)s "%(r)s" %(m)s %(U)s %(q)s %(H)s %(s)s %(B)s %(b)s %(L)s %(D)s %(T)s '
        '"%(a)s" "%(f)s" %({x-id}i)s %({Content-Type}o)s %(S)s %(P)s'
    )
    logger_for(fmt).log(**REQUEST)  # type: ignore[arg-type]
    assert caplog.messages == [
        '127.0.0.1 "GET /path?q=1 HTTP/1.1" GET /path q=1 HTTP/1.1 200 1234 1234 0.003200 '
        '3200 0 "curl/8" "-" abc text/plain 1 spdy/3.1'
    ]


def test_http11_has_no_stream_and_zero_bytes(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "spdyasgi.access")
    request: dict[str, Any] = {**REQUEST, "stream_id": None, "bytes_sent": 0, "query": ""}
    logger_for("%(b)s %(S)s").log(**request)
    logger_for().log(**request)
    assert caplog.messages[0] == "- -"
    assert caplog.messages[1].endswith('"GET /path HTTP/1.1" 200 0 spdy/3.1 3.2ms')


def test_disabled(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "spdyasgi.access")
    off = logger_for(access_log=False)
    assert not off.enabled
    off.log(**REQUEST)  # type: ignore[arg-type]
    logging.getLogger("spdyasgi.access").setLevel(logging.WARNING)
    assert not logger_for().enabled
    assert caplog.messages == []


async def test_server_logs_http11_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "spdyasgi.access")
    async with run_server(hello_app, http1="httptools") as (_, port):
        reader, writer = await open_conn(port)
        writer.write(b"GET /logged?x HTTP/1.1\r\nHost: t\r\n\r\n")
        await read_response(reader)
        writer.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "spdyasgi.access"]
    assert len(lines) == 1
    assert '"GET /logged?x HTTP/1.1" 200 13 http/1.1 ' in lines[0]
    assert lines[0].startswith("127.0.0.1:")
