"""Exceptions raised by the SPDY client.

Every error derives from `SpdyClientError`. Each class carries the curl-style exit code the
command-line tools use for it (`exit_code`), so scripts can tell "could not connect" from
"server does not speak SPDY" from "timed out".
"""

from __future__ import annotations

from ..spdy.constants import session_status_name, stream_status_name


class SpdyClientError(Exception):
    """Base class of every client error."""

    exit_code = 1


class ResolveError(SpdyClientError):
    """The host name did not resolve (curl exit 6)."""

    exit_code = 6


class ConnectError(SpdyClientError):
    """The TCP connection could not be established (curl exit 7)."""

    exit_code = 7


class TLSError(SpdyClientError):
    """TLS handshake or certificate verification failed (curl exit 35)."""

    exit_code = 35


class NotSpdyError(SpdyClientError):
    """The server answered but does not speak SPDY (ALPN chose http/1.1 or nothing)."""

    exit_code = 16

    def __init__(self, message: str, selected_protocol: str | None = None):
        super().__init__(message)
        self.selected_protocol = selected_protocol


class SpdyProtocolError(SpdyClientError):
    """The server broke the protocol or ended a stream abnormally (exit 16)."""

    exit_code = 16


class StreamResetError(SpdyProtocolError):
    """The server reset our stream with RST_STREAM."""

    def __init__(self, stream_id: int, status: int, message: str | None = None):
        self.stream_id = stream_id
        self.status = status
        self.status_name = stream_status_name(status)
        super().__init__(message or f"server reset stream {stream_id}: {self.status_name}")


class RetryableError(SpdyClientError):
    """The server did not process the request; it is safe to send it again.

    Raised for streams above a GOAWAY's last-good stream id and (as `StreamRefusedError`)
    for REFUSED_STREAM resets.
    """

    exit_code = 16


class StreamRefusedError(StreamResetError, RetryableError):
    """RST_STREAM REFUSED_STREAM: the server never started processing the request."""


class ConnectionClosedError(SpdyClientError):
    """The session is closed (or closing) and cannot carry the request."""

    exit_code = 16


class GoAwayError(ConnectionClosedError, RetryableError):
    """The server sent GOAWAY: no new stream may be opened on this session.

    Raised for requests made after the GOAWAY and for streams the server never processed
    (ids above `last_good_stream_id`); either may be retried on a new connection.
    """

    def __init__(self, message: str, last_good_stream_id: int, status: int):
        super().__init__(message)
        self.last_good_stream_id = last_good_stream_id
        self.status = status


class SpdyTimeoutError(SpdyClientError):
    """Base of the client's timeouts (curl exit 28)."""

    exit_code = 28


class ConnectTimeout(SpdyTimeoutError):
    """The TCP/TLS connection was not established in time."""


class ReadTimeout(SpdyTimeoutError):
    """No bytes arrived for an awaited response within `read_timeout` seconds."""


class RequestTimeout(SpdyTimeoutError):
    """The whole request (queueing, upload, response, body) exceeded its `timeout`."""


__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "ConnectionClosedError",
    "GoAwayError",
    "NotSpdyError",
    "ReadTimeout",
    "RequestTimeout",
    "ResolveError",
    "RetryableError",
    "SpdyClientError",
    "SpdyProtocolError",
    "SpdyTimeoutError",
    "StreamRefusedError",
    "StreamResetError",
    "TLSError",
    "session_status_name",
    "stream_status_name",
]
