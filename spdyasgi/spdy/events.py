"""Events returned by `Connection.receive_data`: what the peer did, already validated.

Header lists are `[(name, value), ...]` of bytes in wire order, with names lowercase and
NUL-joined multi-values split into one tuple per value; pseudo-headers (`:method`, ...) are
included and come first in the order the peer sent them.

Events are plain slotted records, not frozen ones: a frozen dataclass sets each field
through ``object.__setattr__``, which made building the per-request `RequestReceived`
several times dearer. Treat them as read-only all the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Headers = list[tuple[bytes, bytes]]
#: (method, path, host, version, other headers): a request's pseudo-header values and its
#: other headers in order, cookie headers joined (see `request_heads.request_head`).
RequestHead = tuple[bytes, bytes, bytes, bytes, Headers]


@dataclass(slots=True)
class Event:
    """Base class of every engine event."""


@dataclass(slots=True)
class RequestReceived(Event):
    """Server role: a client opened a stream (SYN_STREAM) carrying a valid request."""

    stream_id: int
    headers: Headers
    priority: int
    end_stream: bool
    #: The same request split for a server (pseudo-header values, other headers), made
    #: while the headers were checked: a server need not walk them again.
    head: RequestHead | None = field(default=None, compare=False)


@dataclass(slots=True)
class ResponseReceived(Event):
    """Client role: SYN_REPLY for one of our streams."""

    stream_id: int
    headers: Headers
    end_stream: bool


@dataclass(slots=True)
class PushReceived(Event):
    """Client role: the server opened a unidirectional stream associated with one of ours."""

    stream_id: int
    associated_stream_id: int
    headers: Headers
    priority: int
    end_stream: bool


@dataclass(slots=True)
class HeadersReceived(Event):
    """A HEADERS frame: more headers for a stream, or trailers when `end_stream`."""

    stream_id: int
    headers: Headers
    end_stream: bool


@dataclass(slots=True)
class DataReceived(Event):
    """DATA for a live stream. The caller must `acknowledge_received_data` once consumed."""

    stream_id: int
    data: bytes
    end_stream: bool


@dataclass(slots=True)
class DataViewed(Event):
    """Like `DataReceived`, but `data` is a view of the buffer given to `receive_data`.

    Only with `ConnectionConfig(borrow_data=True)` and a memoryview passed in. The view is
    valid until the next `receive_data` call: consume it (or copy it) before then. This lets
    a caller that reads into one reused buffer count or hash a body with no copy at all.
    """

    stream_id: int
    data: memoryview
    end_stream: bool


@dataclass(slots=True)
class StreamReset(Event):
    """A stream ended abnormally.

    `remote` is True when the peer sent RST_STREAM, False when the engine reset the stream
    itself because the peer broke a stream-level rule (the RST is already queued).
    """

    stream_id: int
    status: int
    remote: bool
    reason: str = ""


@dataclass(slots=True)
class RequestRejected(Event):
    """Server role: the engine answered a malformed request with an HTTP error reply.

    Emitted for a request that was never delivered (missing pseudo-headers, bad path) and
    for one already delivered whose body disagreed with its content-length. Either way the
    stream is finished from the caller's point of view.
    """

    stream_id: int
    http_status: int
    reason: str


@dataclass(slots=True)
class PeerFault(Event):
    """The peer did something a known deployed client or server gets wrong (see
    `spdy.compat.FAULTS`), reported once per fault and session: `tolerated` in compat
    mode, else what strict mode saw (the stall of fault C, which ends nothing)."""

    fault: str
    detail: str
    tolerated: bool


@dataclass(slots=True)
class WindowUpdated(Event):
    """Our send window grew (`stream_id` 0 is the 3.1 session window)."""

    stream_id: int
    delta: int


@dataclass(slots=True)
class SettingsReceived(Event):
    """The peer's SETTINGS, already applied (first value wins for a repeated id)."""

    settings: dict[int, int] = field(default_factory=dict)
    clear_persisted: bool = False


@dataclass(slots=True)
class PingReceived(Event):
    """The peer pinged us; the echo is already queued."""

    ping_id: int


@dataclass(slots=True)
class PingAcknowledged(Event):
    """The peer echoed a PING we sent."""

    ping_id: int


@dataclass(slots=True)
class GoAwayReceived(Event):
    """The peer will accept no stream above `last_good_stream_id`."""

    last_good_stream_id: int
    status: int


@dataclass(slots=True)
class ConnectionTerminated(Event):
    """The engine sent GOAWAY because the peer broke the protocol (or a limit).

    Always the last event of a session: flush `data_to_send()` and close the transport.
    """

    status: int
    last_good_stream_id: int
    reason: str
