"""Starting one worker process that serves on sockets inherited from the supervisor.

Every worker (``--workers`` and ``--reload``) gets a pipe to its supervisor. A daemon
thread in the worker answers health-check pings on it (only ``--workers`` sends them)
and blocks in ``recv`` otherwise, so an idle worker spends no CPU on it.

A worker must not outlive its supervisor (``kill -9``, the OOM killer): nobody would
restart or stop it, and it would keep serving the shared port with old code. When the
supervisor's end of the pipe closes, the thread starts watching the parent pid; once
the worker has been reparented it logs why and sets ``should_exit`` on the server,
exactly what one SIGTERM does (drain, lifespan shutdown), never a forced exit. The
pipe EOF alone does not decide: it also comes when the supervisor closes the pipe on
purpose, and the kernel closes a dead process's fds before it reparents its children,
so the pid is polled after EOF (10 Hz for 5 s, then 1 Hz) until it changes. Polling
without the pipe would cost every idle worker a wake-up per second; PR_SET_PDEATHSIG
is Linux-only, tied to the thread that spawned the worker and cannot log why.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import sys
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Protocol

from spdyasgi.config import Config

STARTUP_FAILURE = 3
_spawn = multiprocessing.get_context("spawn")
logger = logging.getLogger("spdyasgi.error")


def spawn_worker(config: Config, sockets: list[socket.socket]) -> BaseProcess:
    """Start (and return) a child process running ``run_worker``, with a supervisor pipe.

    ``config`` must not be loaded yet: the child imports the app itself, which is what
    makes --reload pick up new code and keeps the parent free of user imports. The
    parent's end of the pipe is ``process.health``; close it with :func:`forget`.
    """
    parent, child = _spawn.Pipe()
    process = _spawn.Process(
        target=run_worker, args=(config, sockets, child, os.getpid()), daemon=False
    )
    process.start()
    child.close()
    process.health = parent  # type: ignore[attr-defined]
    return process


def forget(process: BaseProcess) -> None:
    """Close the supervisor's end of a finished worker's pipe."""
    conn: Connection | None = getattr(process, "health", None)
    if conn is not None:
        conn.close()


class _Stoppable(Protocol):
    should_exit: bool


class SupervisorWatch:
    """Worker side of the pipe: answer pings, then stop the server once orphaned."""

    def __init__(self, conn: Connection, supervisor_pid: int) -> None:
        self.conn = conn
        self.supervisor_pid = supervisor_pid
        self.gone = threading.Event()
        self._lock = threading.Lock()
        self._server: _Stoppable | None = None

    def start(self) -> None:
        threading.Thread(target=self._run, name="supervisor-watch", daemon=True).start()

    def attach(self, server: _Stoppable) -> bool:
        """Let the watch stop ``server``; False if the supervisor is already gone."""
        with self._lock:
            self._server = server
            return not self.gone.is_set()

    def _run(self) -> None:
        try:
            while True:
                self.conn.send_bytes(self.conn.recv_bytes())
        except (EOFError, OSError):
            pass
        polls = 0
        while os.getppid() == self.supervisor_pid:
            time.sleep(0.1 if polls < 50 else 1.0)
            polls += 1
        logger.warning("supervisor [%d] is gone: shutting down", self.supervisor_pid)
        with self._lock:
            if self._server is not None:
                self._server.should_exit = True  # what one SIGTERM does; two would force
            self.gone.set()


def run_worker(
    config: Config, sockets: list[socket.socket], conn: Connection, supervisor_pid: int
) -> None:
    """Child entry point: configure logging, load the app, serve until told to stop."""
    config.configure_logging()
    watch = SupervisorWatch(conn, supervisor_pid)
    watch.start()  # before the import: pings are answered while a slow app loads
    log = logging.getLogger("spdyasgi.error")
    try:
        config.load()
    except Exception as exc:
        log.error("%s", exc)
        sys.exit(STARTUP_FAILURE)
    from importlib import import_module

    server = import_module("spdyasgi.server").Server(config)
    if not watch.attach(server):
        return  # orphaned while importing: nothing started, nothing to drain
    log.info("Started worker process [%d]", os.getpid())
    server.run(sockets=sockets)
    if not server.started:
        sys.exit(STARTUP_FAILURE)
