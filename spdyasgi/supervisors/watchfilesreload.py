"""``--reload``: restart the worker process when watched files change (development).

The parent never imports the application; it binds the socket once, watches the
directories with watchfiles (native file events, polling as fallback) and replaces
the worker process on every relevant change. A worker that crashes on import simply
stays down until the next change fixes it.

If the reloader itself is killed (``kill -9``, the OOM killer), the worker
sees its supervisor pipe close and shuts down gracefully by itself (see ``_process``).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

from spdyasgi.config import Config
from spdyasgi.supervisors._process import forget, spawn_worker

logger = logging.getLogger("spdyasgi.error")

DEFAULT_INCLUDES = ("*.py",)
DEFAULT_EXCLUDES = (".*", ".py[cod]", ".sw.*", "~*")
IGNORED_DIRS = frozenset(
    {
        "__pycache__",
        ".git",
        ".hg",
        ".svn",
        ".tox",
        ".venv",
        "venv",
        "node_modules",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        "build",
        "dist",
    }
)


class ReloadFilter:
    """watchfiles filter: a path matters if it matches an include and no exclude glob.

    Globs without ``/`` match the file name; globs with ``/`` match the path relative
    to any watched directory (``pathlib`` semantics).
    """

    def __init__(self, includes: Sequence[str], excludes: Sequence[str]) -> None:
        self.includes = list(includes) or list(DEFAULT_INCLUDES)
        self.excludes = [*DEFAULT_EXCLUDES, *excludes]

    @staticmethod
    def _matches(path: Path, pattern: str) -> bool:
        if "/" in pattern:
            return path.match(pattern)
        return fnmatch.fnmatch(path.name, pattern)

    def __call__(self, _change: Any, raw_path: str) -> bool:
        path = Path(raw_path)
        if any(part in IGNORED_DIRS for part in path.parts[:-1]):
            return False
        if any(self._matches(path, pattern) for pattern in self.excludes):
            return False
        return any(self._matches(path, pattern) for pattern in self.includes)


SpawnFn = Callable[[Config, list[socket.socket]], BaseProcess]


class WatchFilesReload:
    def __init__(
        self, config: Config, sockets: list[socket.socket], *, spawn: SpawnFn = spawn_worker
    ) -> None:
        self.config = config
        self.sockets = sockets
        self.spawn = spawn
        self.should_exit = threading.Event()
        self.process: BaseProcess | None = None
        dirs = config.reload_dirs or [os.getcwd()]
        self.reload_dirs = [str(Path(d).resolve()) for d in dirs if Path(d).is_dir()]
        self.watch_filter = ReloadFilter(config.reload_includes, config.reload_excludes)

    def handle_signal(self, _signum: int, _frame: FrameType | None = None) -> None:
        self.should_exit.set()

    def run(self) -> None:
        import watchfiles

        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, self.handle_signal)
        logger.info("Will watch for changes in: %s", ", ".join(self.reload_dirs))
        logger.info("Started reloader process [%d]", os.getpid())
        self.process = self.spawn(self.config, self.sockets)
        try:
            for changes in watchfiles.watch(
                *self.reload_dirs,
                watch_filter=self.watch_filter,
                stop_event=self.should_exit,
                step=max(50, int(self.config.reload_delay * 1000)),
                raise_interrupt=False,
                yield_on_timeout=False,
            ):
                if not changes:
                    continue
                names = sorted({os.path.relpath(path) for _, path in changes})
                logger.warning("Changes detected in %s. Reloading...", ", ".join(names))
                self.restart()
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            logger.info("Stopped reloader process [%d]", os.getpid())

    def restart(self) -> None:
        self.stop()
        self.process = self.spawn(self.config, self.sockets)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.is_alive():
            process.terminate()
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()
        forget(process)
