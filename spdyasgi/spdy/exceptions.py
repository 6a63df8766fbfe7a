"""Errors raised by the engine; each carries the status code the peer should be told."""

from __future__ import annotations

from .constants import SessionStatus, StreamStatus


class SpdyError(Exception):
    """Base of every error the engine raises."""


class ProtocolError(SpdyError):
    """The peer broke the protocol so badly that the session must end with GOAWAY.

    Raised from `Connection.receive_data` only after the GOAWAY is already queued, so
    the caller flushes `data_to_send()` and closes the transport.
    """

    def __init__(self, message: str, status: SessionStatus = SessionStatus.PROTOCOL_ERROR):
        super().__init__(message)
        self.status = status


class StreamError(SpdyError):
    """A fault confined to one stream (answered with RST_STREAM `status`)."""

    def __init__(self, stream_id: int, status: StreamStatus, message: str):
        super().__init__(message)
        self.stream_id = stream_id
        self.status = status


class LocalProtocolError(SpdyError):
    """We (the caller) asked for something the protocol does not allow."""


class StreamClosedError(LocalProtocolError):
    """A command named a stream that is closed, reset or unknown."""

    def __init__(self, stream_id: int, message: str = ""):
        super().__init__(message or f"stream {stream_id} is closed")
        self.stream_id = stream_id


class FlowControlBlocked(LocalProtocolError):
    """`send_data` was given more than the stream and session windows allow."""
