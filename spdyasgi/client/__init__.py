"""An asyncio SPDY/3.1 (and SPDY/3) client built on the spdyasgi engine.

    async with spdyasgi.client.connect("https://127.0.0.1:8443", verify=False) as client:
        response = await client.get("/")
        body = await response.read()

One `SpdyClient` holds one session and multiplexes any number of concurrent requests
(queued beyond the server's MAX_CONCURRENT_STREAMS). See `SpdyClient` for the options.
"""

from .connection import PreparedRequest, SpdyClient, connect
from .errors import (
    ConnectError,
    ConnectionClosedError,
    ConnectTimeout,
    GoAwayError,
    NotSpdyError,
    ReadTimeout,
    RequestTimeout,
    ResolveError,
    RetryableError,
    SpdyClientError,
    SpdyProtocolError,
    SpdyTimeoutError,
    StreamRefusedError,
    StreamResetError,
    TLSError,
)
from .response import PushedResponse, Response
from .upload import iter_file

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "ConnectionClosedError",
    "GoAwayError",
    "NotSpdyError",
    "PreparedRequest",
    "PushedResponse",
    "ReadTimeout",
    "RequestTimeout",
    "ResolveError",
    "Response",
    "RetryableError",
    "SpdyClient",
    "SpdyClientError",
    "SpdyProtocolError",
    "SpdyTimeoutError",
    "StreamRefusedError",
    "StreamResetError",
    "TLSError",
    "connect",
    "iter_file",
]
