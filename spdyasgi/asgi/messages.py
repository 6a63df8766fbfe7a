"""ASGI message types and constants shared by the HTTP/1.1 and SPDY request cycles."""

from __future__ import annotations

from typing import Any

Message = dict[str, Any]
Headers = list[tuple[bytes, bytes]]

#: What `receive()` returns once the peer is gone (one shared, never-mutated dict).
DISCONNECT: Message = {"type": "http.disconnect"}
#: Responses that never carry a body, whatever the application sends.
NO_BODY_STATUS = frozenset({204, 304})
#: Read size for `http.response.pathsend` (reads run in the default executor).
PATHSEND_CHUNK = 256 * 1024
