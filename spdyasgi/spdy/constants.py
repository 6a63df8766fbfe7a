"""Wire constants of SPDY/3 and SPDY/3.1 (frame types, flags, status codes, settings ids)."""

from __future__ import annotations

import enum


class FrameType(enum.IntEnum):
    DATA = 0  # not a control type; used for logging and tracing only
    SYN_STREAM = 1
    SYN_REPLY = 2
    RST_STREAM = 3
    SETTINGS = 4
    NOOP = 5
    PING = 6
    GOAWAY = 7
    HEADERS = 8
    WINDOW_UPDATE = 9
    CREDENTIAL = 10


# The control frame types as plain ints, for code that runs once per frame: reading an
# enum member costs ~0.1 µs, comparing two ints a few ns.
TYPE_SYN_STREAM = int(FrameType.SYN_STREAM)
TYPE_SYN_REPLY = int(FrameType.SYN_REPLY)
TYPE_RST_STREAM = int(FrameType.RST_STREAM)
TYPE_SETTINGS = int(FrameType.SETTINGS)
TYPE_PING = int(FrameType.PING)
TYPE_GOAWAY = int(FrameType.GOAWAY)
TYPE_HEADERS = int(FrameType.HEADERS)
TYPE_WINDOW_UPDATE = int(FrameType.WINDOW_UPDATE)


class Flag(enum.IntFlag):
    NONE = 0
    FIN = 0x01
    UNIDIRECTIONAL = 0x02
    CLEAR_SETTINGS = 0x01


class StreamStatus(enum.IntEnum):
    """RST_STREAM status codes."""

    PROTOCOL_ERROR = 1
    INVALID_STREAM = 2
    REFUSED_STREAM = 3
    UNSUPPORTED_VERSION = 4
    CANCEL = 5
    INTERNAL_ERROR = 6
    FLOW_CONTROL_ERROR = 7
    STREAM_IN_USE = 8
    STREAM_ALREADY_CLOSED = 9
    INVALID_CREDENTIALS = 10
    FRAME_TOO_LARGE = 11


class SessionStatus(enum.IntEnum):
    """GOAWAY status codes."""

    OK = 0
    PROTOCOL_ERROR = 1
    INTERNAL_ERROR = 2


def stream_status_name(status: int) -> str:
    """`REFUSED_STREAM` for 3, `status 99` for codes the protocol does not define."""
    try:
        return StreamStatus(status).name
    except ValueError:
        return f"status {status}"


def session_status_name(status: int) -> str:
    """`PROTOCOL_ERROR` for 1, `status 99` for codes the protocol does not define."""
    try:
        return SessionStatus(status).name
    except ValueError:
        return f"status {status}"


class SettingId(enum.IntEnum):
    UPLOAD_BANDWIDTH = 1
    DOWNLOAD_BANDWIDTH = 2
    ROUND_TRIP_TIME = 3
    MAX_CONCURRENT_STREAMS = 4
    CURRENT_CWND = 5
    DOWNLOAD_RETRANS_RATE = 6
    INITIAL_WINDOW_SIZE = 7
    CLIENT_CERTIFICATE_VECTOR_SIZE = 8


SETTINGS_FLAG_PERSIST_VALUE = 0x01
SETTINGS_FLAG_PERSISTED = 0x02


class Version(enum.Enum):
    """A negotiated protocol version; `wire` is what goes in frame headers."""

    SPDY3 = "3"
    SPDY31 = "3.1"

    @property
    def wire(self) -> int:
        return 3

    @property
    def alpn(self) -> str:
        return "spdy/" + self.value

    @property
    def session_flow_control(self) -> bool:
        return self is Version.SPDY31

    @classmethod
    def from_alpn(cls, protocol: str) -> Version:
        for version in cls:
            if version.alpn == protocol:
                return version
        raise ValueError(f"not a SPDY protocol id: {protocol!r}")


DEFAULT_WINDOW = 65536
MAX_WINDOW = 2**31 - 1
MAX_STREAM_ID = 2**31 - 1
FRAME_HEADER_SIZE = 8
MAX_FRAME_LENGTH = 2**24 - 1
MAX_PRIORITY = 7

# The one header policy (checklist §9; RFC 9113 8.2.2 for `upgrade` and `te`), used by
# the engine's request check, the C fast path (`_nvfast.configure`), the response
# encoder, and meant for the client's request builder too.
#: Connection-specific headers: they describe one HTTP/1.x hop and mean nothing on a SPDY
#: stream. Stripped from every header block we send (responses, trailers, pushes).
CONNECTION_SPECIFIC_HEADERS = (
    b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"te",
)
HOP_BY_HOP_HEADERS = frozenset(CONNECTION_SPECIFIC_HEADERS)
#: Request headers a client must not send: dropped before the application sees the
#: request (the stream is served). `host` joins them: `:host` replaces it.
DROPPED_REQUEST_HEADERS = frozenset((*CONNECTION_SPECIFIC_HEADERS, b"host"))
#: The one exception: `te: trailers` (exactly that value) says the client accepts
#: trailers, which is end to end; it reaches the application. Any other `te` is dropped.
KEPT_REQUEST_HEADER = (b"te", b"trailers")
REQUIRED_REQUEST_PSEUDO_HEADERS = (b":method", b":path", b":version", b":host", b":scheme")
REQUIRED_PUSH_HEADERS = (b":scheme", b":host", b":path")
