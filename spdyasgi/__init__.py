"""spdyasgi: an ASGI server for SPDY/3.1 clients."""

__version__ = "0.1.0"
