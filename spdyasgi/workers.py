"""Gunicorn worker classes: ``gunicorn -k spdyasgi.workers.SpdyWorker app:app``.

Gunicorn owns the sockets, process management and its own logging; each worker builds
a ``Config`` from gunicorn's settings, serves on gunicorn's sockets, and sends the
heartbeat gunicorn uses to detect hung workers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from importlib import import_module
from typing import Any

from gunicorn.arbiter import Arbiter
from gunicorn.workers.base import Worker

from spdyasgi.config import Config


class SpdyWorker(Worker):  # type: ignore[misc]  # gunicorn is untyped
    """Asyncio event loop worker (uvloop when installed, as ``loop="auto"``)."""

    CONFIG_KWARGS: dict[str, Any] = {"loop": "auto", "http1": "auto"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._route_logs()
        self.config = Config(app=None, log_config=None, **self._config_kwargs())

    def _route_logs(self) -> None:
        """Send our loggers through gunicorn's handlers so --log-level/--access-logfile apply."""
        error_logger = logging.getLogger("spdyasgi.error")
        error_logger.handlers = self.log.error_log.handlers
        error_logger.setLevel(self.log.error_log.level)
        error_logger.propagate = False
        access_logger = logging.getLogger("spdyasgi.access")
        access_logger.handlers = self.log.access_log.handlers
        access_logger.setLevel(self.log.access_log.level)
        access_logger.propagate = False

    def _config_kwargs(self) -> dict[str, Any]:
        cfg = self.cfg
        kwargs: dict[str, Any] = {
            "timeout_keep_alive": cfg.keepalive,
            "timeout_notify": max(1, self.timeout),
            "forwarded_allow_ips": cfg.forwarded_allow_ips,
            "access_log": bool(cfg.accesslog),
            "workers": 1,
        }
        if self.max_requests:
            kwargs["limit_max_requests"] = self.max_requests
        if cfg.backlog:
            kwargs["backlog"] = cfg.backlog
        if getattr(cfg, "graceful_timeout", None):
            kwargs["timeout_graceful_shutdown"] = cfg.graceful_timeout
        if cfg.is_ssl:
            options = cfg.ssl_options
            kwargs.update(
                ssl_keyfile=options.get("keyfile"),
                ssl_certfile=options.get("certfile"),
                ssl_version=options.get("ssl_version"),
                ssl_cert_reqs=options.get("cert_reqs"),
                ssl_ca_certs=options.get("ca_certs"),
            )
            if options.get("ciphers"):
                kwargs["ssl_ciphers"] = options["ciphers"]
        kwargs.update(self.CONFIG_KWARGS)
        return kwargs

    def init_process(self) -> None:
        self.config.setup_event_loop()
        super().init_process()

    def init_signals(self) -> None:
        """Leave SIGINT/SIGTERM/SIGQUIT to the server's graceful handling; keep USR1 (reopen)."""
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGUSR1, self.handle_usr1)
        signal.siginterrupt(signal.SIGUSR1, False)

    def run(self) -> None:
        self.config.app = self.wsgi  # gunicorn has already imported the app for us
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        server = import_module("spdyasgi.server").Server(self.config)
        sockets = [getattr(s, "sock", s) for s in self.sockets]
        heartbeat = asyncio.ensure_future(self._heartbeat(server))
        try:
            await server.serve(sockets=sockets)
        finally:
            heartbeat.cancel()
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)

    async def _heartbeat(self, server: Any) -> None:
        """Tell the arbiter we are alive; stop serving if the arbiter went away."""
        interval = max(0.5, self.timeout / 4) if self.timeout else 1.0
        while True:
            self.notify()
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                server.should_exit = True
                return
            await asyncio.sleep(interval)


class SpdyUvloopWorker(SpdyWorker):
    """Same, but insist on uvloop."""

    CONFIG_KWARGS: dict[str, Any] = {"loop": "uvloop", "http1": "auto"}
