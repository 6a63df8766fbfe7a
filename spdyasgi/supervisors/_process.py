"""Starting one worker process that serves on sockets inherited from the supervisor."""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import sys
from multiprocessing.process import BaseProcess

from spdyasgi.config import Config

STARTUP_FAILURE = 3
_spawn = multiprocessing.get_context("spawn")


def spawn_worker(config: Config, sockets: list[socket.socket]) -> BaseProcess:
    """Start (and return) a child process running ``run_worker(config, sockets)``.

    ``config`` must not be loaded yet: the child imports the app itself, which is what
    makes --reload pick up new code and keeps the parent free of user imports.
    """
    process = _spawn.Process(target=run_worker, args=(config, sockets), daemon=False)
    process.start()
    return process


def run_worker(config: Config, sockets: list[socket.socket]) -> None:
    """Child entry point: configure logging, load the app, serve until told to stop."""
    config.configure_logging()
    log = logging.getLogger("spdyasgi.error")
    try:
        config.load()
    except Exception as exc:
        log.error("%s", exc)
        sys.exit(STARTUP_FAILURE)
    from importlib import import_module

    server = import_module("spdyasgi.server").Server(config)
    log.info("Started worker process [%d]", os.getpid())
    server.run(sockets=sockets)
    if not server.started:
        sys.exit(STARTUP_FAILURE)
