"""``spdyasgi-relay``: a public relay for origins that dial out (docs/relay.md).

`origins.py` accepts origins and keeps their SPDY sessions (the relay is the client of
each session), `app.py` is the ASGI app that spdyasgi's own `Server` runs for visitors
(HTTP/1.1 and SPDY, TLS or cleartext) and forwards each request onto an origin stream,
`cli.py` is the command.
"""

from .app import RelayApp
from .origins import OriginRegistry, OriginSession

__all__ = ["OriginRegistry", "OriginSession", "RelayApp"]
