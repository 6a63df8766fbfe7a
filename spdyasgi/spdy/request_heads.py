"""A request's head as a server uses it: pseudo-header values apart, other headers in order.

The engine checks every request's headers anyway (`FrameReceiver._check_request`); it
hands the server this split along with them (`RequestReceived.head`) so the headers are
walked once. With the C extension built, `scan_request` checks and splits a plainly valid
request in one call; everything else takes the Python path, which owns every decision.
"""

from __future__ import annotations

from .accel import nvfast
from .constants import DROPPED_REQUEST_HEADERS, KEPT_REQUEST_HEADER
from .events import Headers, RequestHead

scan_request = nvfast.scan_request if nvfast is not None else None
if nvfast is not None:
    nvfast.configure(tuple(sorted(DROPPED_REQUEST_HEADERS)), *KEPT_REQUEST_HEADER)

__all__ = ["RequestHead", "request_head", "scan_request"]


def request_head(headers: Headers) -> RequestHead:
    """(method, path, host, version, other headers) of a request's header list.

    A repeated pseudo-header gives its last value, a missing one b"". Several cookie
    headers become one, joined by "; " where the first stood (as HTTP/2 asks of crumbs
    split for compression, RFC 9113 8.2.3).
    """
    method = path = host = version = b""
    others: Headers = []
    cookie_at = -1
    for header in headers:
        name = header[0]
        if name[:1] == b":":
            if name == b":method":
                method = header[1]
            elif name == b":path":
                path = header[1]
            elif name == b":host":
                host = header[1]
            elif name == b":version":
                version = header[1]
        elif name == b"cookie":
            if cookie_at < 0:
                cookie_at = len(others)
                others.append(header)
            else:
                others[cookie_at] = (b"cookie", others[cookie_at][1] + b"; " + header[1])
        else:
            others.append(header)
    return method, path, host, version, others
