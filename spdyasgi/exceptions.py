"""Exceptions the server raises into applications, and the one for bad settings."""

from __future__ import annotations

__all__ = ["ClientDisconnected", "ConfigError"]


class ClientDisconnected(OSError):
    """Raised by ``send()`` once the peer is gone (connection lost or stream reset).

    It subclasses ``OSError`` as ASGI spec 2.4 asks, so applications that already handle
    I/O errors handle this too; the server logs it at debug level, never as an error.
    """


class ConfigError(ValueError):
    """A setting has an invalid value; ``option`` is the ``Config`` keyword at fault."""

    def __init__(self, option: str, message: str) -> None:
        self.option = option
        self.detail = message
        super().__init__(f"Invalid value for option '{option}': {message}")
