"""WebSockets over HTTP/1.1: the ASGI side (``base``) and one module per library."""
