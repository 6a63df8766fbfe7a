"""spdyasgi: an ASGI server for SPDY/3.1 clients."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Config", "Server", "__version__", "run"]

if TYPE_CHECKING:
    from spdyasgi.config import Config
    from spdyasgi.main import run


def __getattr__(name: str) -> Any:
    """Import lazily so ``import spdyasgi`` (e.g. for the engine alone) stays cheap."""
    if name == "Config":
        from spdyasgi.config import Config

        return Config
    if name == "run":
        from spdyasgi.main import run

        return run
    if name == "Server":
        from importlib import import_module

        return import_module("spdyasgi.server").Server
    raise AttributeError(f"module 'spdyasgi' has no attribute {name!r}")
