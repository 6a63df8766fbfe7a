"""``--workers N``: N processes serving one shared listening socket.

The kernel spreads connections across the workers' accept calls, so no connection
ever passes through the parent. The parent only watches: it restarts a worker that
dies unexpectedly, replaces all workers one by one on SIGHUP (new one first, so the
port never goes quiet), and on SIGINT/SIGTERM asks every worker to drain. A second
SIGINT/SIGTERM, or ``timeout_graceful_shutdown`` (+5 s) passing, kills them.
A worker that fails during startup (exit status 3) stops the whole group with
status 3 instead of restarting forever.

Health check (``--timeout-worker-healthcheck``, uvicorn's semantics): every check
interval the parent pings each worker over a pipe; a thread in the worker answers.
A worker that leaves a ping unanswered for that many seconds (frozen, stopped, stuck
in C code holding the GIL) is killed and replaced.

If this process dies without stopping the workers (SIGKILL, the OOM killer), each
worker notices through the same pipe and shuts down gracefully on its own
(``_process.SupervisorWatch``).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import FrameType

from spdyasgi import metrics
from spdyasgi.config import Config
from spdyasgi.supervisors._process import STARTUP_FAILURE, forget, spawn_worker

logger = logging.getLogger("spdyasgi.error")

SpawnFn = Callable[[Config, list[socket.socket]], BaseProcess]
_HANDLED = ("SIGINT", "SIGTERM", "SIGHUP")
_PING = b"ping"


def responds(process: BaseProcess, timeout: float) -> bool:
    """Ping a worker spawned with a health pipe; True if it answered within ``timeout``."""
    conn: Connection | None = getattr(process, "health", None)
    if conn is None:
        return True
    try:
        conn.send_bytes(_PING)
        if conn.poll(timeout):
            conn.recv_bytes()
            return True
    except (EOFError, OSError):
        return not process.is_alive()  # it exited: keep_alive handles that
    return False


class Multiprocess:
    def __init__(
        self,
        config: Config,
        sockets: list[socket.socket],
        *,
        spawn: SpawnFn = spawn_worker,
        check_interval: float = 0.5,
    ) -> None:
        self.config = config
        self.sockets = sockets
        self.spawn = spawn
        self.check_interval = check_interval
        self.processes: list[BaseProcess] = []
        self.should_exit = threading.Event()
        self.force_exit = threading.Event()
        self.restart_requested = threading.Event()
        self.exit_code = 0

    # -- signals --------------------------------------------------------------------

    def handle_signal(self, signum: int, _frame: FrameType | None = None) -> None:
        if signum == getattr(signal, "SIGHUP", None):
            self.restart_requested.set()
        elif self.should_exit.is_set():
            self.force_exit.set()
        else:
            self.should_exit.set()

    def _install_signals(self) -> dict[int, object]:
        previous: dict[int, object] = {}
        if threading.current_thread() is not threading.main_thread():
            return previous
        for name in _HANDLED:
            sig = getattr(signal, name, None)
            if sig is not None:
                previous[sig] = signal.signal(sig, self.handle_signal)
        return previous

    # -- lifecycle ------------------------------------------------------------------

    def run(self) -> int:
        """Supervise until told to stop; return the exit status for the command."""
        previous = self._install_signals()
        stop_metrics = None
        if self.config.metrics_port is not None:  # workers write, this process serves
            stop_metrics = metrics.start_supervisor(self.config)
        logger.info("Started parent process [%d] with %d workers", os.getpid(), self.config.workers)
        try:
            self.processes = [
                self.spawn(self.config, self.sockets) for _ in range(self.config.workers)
            ]
            while not self.should_exit.wait(self.check_interval):
                if self.restart_requested.is_set():
                    self.restart_requested.clear()
                    self.restart_all()
                self.keep_alive()
        finally:
            self.shutdown()
            if stop_metrics is not None:
                stop_metrics()
            for sig, handler in previous.items():
                signal.signal(sig, handler)  # type: ignore[arg-type]
            logger.info("Stopped parent process [%d]", os.getpid())
        return self.exit_code

    def keep_alive(self) -> None:
        """Replace workers that died; give up if one could not even start."""
        timeout = self.config.timeout_worker_healthcheck
        for index, process in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            if process.is_alive():
                if responds(process, timeout):
                    continue
                logger.warning(
                    "Worker [%s] did not answer the health check within %ss: killing it.",
                    process.pid,
                    timeout,
                )
                process.kill()
                process.join(5)
                forget(process)
                self.processes[index] = self.spawn(self.config, self.sockets)
                continue
            metrics.process_dead(process.pid)
            if process.exitcode == STARTUP_FAILURE:
                logger.error("Worker [%s] failed to start: stopping.", process.pid)
                self.exit_code = STARTUP_FAILURE
                self.should_exit.set()
                return
            logger.warning(
                "Worker [%s] died with exit code %s: restarting.", process.pid, process.exitcode
            )
            forget(process)
            self.processes[index] = self.spawn(self.config, self.sockets)

    def restart_all(self) -> None:
        """Rolling restart: start the replacement before stopping the old worker."""
        logger.info("Restarting %d workers", len(self.processes))
        for index, old in enumerate(self.processes):
            self.processes[index] = self.spawn(self.config, self.sockets)
            self._stop([old])

    def shutdown(self) -> None:
        self._stop(self.processes)

    def _stop(self, processes: list[BaseProcess]) -> None:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: the server drains gracefully
        grace = self.config.timeout_graceful_shutdown
        deadline = None if grace is None else time.monotonic() + grace + 5
        for process in processes:
            while process.is_alive():
                process.join(0.2)
                late = deadline is not None and time.monotonic() > deadline
                if process.is_alive() and (late or self.force_exit.is_set()):
                    logger.warning("Killing worker [%s]", process.pid)
                    process.kill()
                    process.join()
            metrics.process_dead(process.pid)
            forget(process)
