"""A sans-IO SPDY/3 and SPDY/3.1 protocol engine: bytes in, events out.

No asyncio, no sockets, no clock: `Connection.receive_data()` turns bytes into events,
command methods queue frames, `Connection.data_to_send()` returns the bytes to write.
"""

from .connection import Connection, ConnectionConfig
from .constants import (
    FrameType,
    SessionStatus,
    SettingId,
    StreamStatus,
    Version,
)
from .events import (
    ConnectionTerminated,
    DataReceived,
    DataViewed,
    Event,
    GoAwayReceived,
    HeadersReceived,
    PeerFault,
    PingAcknowledged,
    PingReceived,
    PushReceived,
    RequestReceived,
    RequestRejected,
    ResponseReceived,
    SettingsReceived,
    StreamReset,
    WindowUpdated,
)
from .exceptions import (
    FlowControlBlocked,
    LocalProtocolError,
    ProtocolError,
    SpdyError,
    StreamClosedError,
    StreamError,
)
from .headers import HUFFMAN_ONLY
from .limits import Limits
from .request_heads import RequestHead, request_head

__all__ = [
    "HUFFMAN_ONLY",
    "Connection",
    "ConnectionConfig",
    "ConnectionTerminated",
    "DataReceived",
    "DataViewed",
    "Event",
    "FlowControlBlocked",
    "FrameType",
    "GoAwayReceived",
    "HeadersReceived",
    "Limits",
    "LocalProtocolError",
    "PeerFault",
    "PingAcknowledged",
    "PingReceived",
    "ProtocolError",
    "PushReceived",
    "RequestHead",
    "RequestReceived",
    "RequestRejected",
    "ResponseReceived",
    "SessionStatus",
    "SettingId",
    "SettingsReceived",
    "SpdyError",
    "StreamClosedError",
    "StreamError",
    "StreamReset",
    "StreamStatus",
    "Version",
    "WindowUpdated",
    "request_head",
]
