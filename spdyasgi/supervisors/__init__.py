"""Process supervisors: several workers sharing one socket, and the auto-reloader.

Both start each worker with the ``spawn`` start method so a worker never inherits the
parent's event loop, threads or half-imported application.
"""

from __future__ import annotations

__all__ = ["Multiprocess", "WatchFilesReload"]

from typing import Any


def __getattr__(name: str) -> Any:  # lazy: watchfiles is optional
    if name == "Multiprocess":
        from spdyasgi.supervisors.multiprocess import Multiprocess

        return Multiprocess
    if name == "WatchFilesReload":
        from spdyasgi.supervisors.watchfilesreload import WatchFilesReload

        return WatchFilesReload
    raise AttributeError(name)
