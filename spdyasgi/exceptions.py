"""Exceptions the server raises into applications."""

from __future__ import annotations

__all__ = ["ClientDisconnected"]


class ClientDisconnected(OSError):
    """Raised by ``send()`` once the peer is gone (connection lost or stream reset).

    It subclasses ``OSError`` as ASGI spec 2.4 asks, so applications that already handle
    I/O errors handle this too; the server logs it at debug level, never as an error.
    """
