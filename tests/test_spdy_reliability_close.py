"""SPDY sessions that end: the GOAWAY always goes out and no protocol callback raises."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import pytest

from spdyasgi.spdy import SessionStatus
from tests.spdyapps import app, pattern
from tests.spdyraw import RawSession, Reply, request_headers
from tests.utils import run_server

#: A SPDY/3 PING whose length field is wrong: a session error (GOAWAY PROTOCOL_ERROR).
BAD_PING = bytes.fromhex("80030006000000080000000100000000")


@pytest.mark.parametrize(("high_water", "tls"), [(64 * 1024, False), (4 << 20, False),
                                                 (64 * 1024, True)])
async def test_session_error_with_queued_body_still_sends_goaway(
        caplog: pytest.LogCaptureFixture, tls_files: tuple[str, str], high_water: int,
        tls: bool) -> None:
    """Regression: the close path left body bytes queued; the next flush called send_data
    on the terminated engine and StreamClosedError escaped data_received ("Fatal error on
    transport"), so the session closed without its GOAWAY."""
    loop = asyncio.get_running_loop()
    failures: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: failures.append(context))
    caplog.set_level(logging.DEBUG)
    try:
        options: dict[str, Any] = {}
        context = None
        if tls:
            options = {"ssl_certfile": tls_files[0], "ssl_keyfile": tls_files[1]}
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["spdy/3.1"])
        async with run_server(app, max_pending_output=high_water, **options) as (_, port):
            for _ in range(3):
                session = await RawSession.connect(port, ssl_context=context, window=1 << 30,
                                                   session_window=1 << 30)
                # Two big downloads compete, so the scheduler always holds queued bytes.
                ids = [session.request(f"/bytes?n={64 << 20}") for _ in range(2)]
                while min(len(session.replies[sid].body) for sid in ids) < (1 << 20):
                    await session.pump()
                session.writer.write(BAD_PING)
                await session.read_until_closed()
                assert session.goaway is not None, "the session closed without its GOAWAY"
                assert session.goaway.status == SessionStatus.PROTOCOL_ERROR
                for sid in ids:  # what arrived before the GOAWAY is intact
                    body = bytes(session.replies[sid].body)
                    assert body == (pattern(65536) * (len(body) // 65536 + 1))[:len(body)]
                await session.close()
    finally:
        loop.set_exception_handler(None)
    assert not failures, failures
    assert not [r for r in caplog.records if "Fatal error" in r.getMessage()]


async def test_receive_timeout_with_open_streams_logs_no_error(
        caplog: pytest.LogCaptureFixture) -> None:
    """A session ended mid-upload: the handlers' last acknowledgements and PINGs after
    the GOAWAY must not reach a half-closed transport (no error, no write after EOF)."""
    loop = asyncio.get_running_loop()
    failures: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: failures.append(context))
    caplog.set_level(logging.INFO)
    try:
        async with run_server(app, timeout_receive=0.3, ping_interval=0.1) as (_, port):
            session = await RawSession.connect(port)
            conn = session.conn
            sids = [conn.send_request(request_headers("/echo", method=b"POST"),
                                      end_stream=False) for _ in range(3)]
            for sid in sids:
                conn.send_data(sid, b"x" * 5000)
            session.flush()
            for sid in sids:
                session.replies[sid] = Reply(sid)
            while not all(session.replies[sid].body for sid in sids):
                await session.pump()
            session.writer.write(bytes.fromhex("0000000100"))  # half a DATA frame header
            await session.read_until_closed()
            assert session.goaway is not None
            assert session.goaway.status == SessionStatus.PROTOCOL_ERROR
            await asyncio.sleep(0.5)  # the pings and flushes that would follow the GOAWAY
    finally:
        loop.set_exception_handler(None)
    assert not failures, failures
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
