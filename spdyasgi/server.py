"""``Server(config).run()``: listening sockets, the main tick, signals, graceful drain.

Life of a server: load the config, run lifespan startup (the socket accepts only after
it), serve until ``should_exit`` (a signal, ``limit_max_requests``, or code setting it),
then stop accepting, ask every connection to finish (``shutdown()``: GOAWAY for SPDY,
close-after-response for HTTP/1.1), wait up to ``timeout_graceful_shutdown``,
``force_close()`` whatever remains, run lifespan shutdown. A second signal skips the
wait. Nothing here waits without a bound once forcing has started.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import socket
import sys
import threading
import time
from email.utils import formatdate
from types import FrameType
from typing import TYPE_CHECKING, Any

from spdyasgi import metrics
from spdyasgi.listen import BindError, FdLimitMonitor, bind, describe, guard
from spdyasgi.protocols.auto import AutoProtocol
from spdyasgi.protocols.proxy import proxy_protocol_factory
from spdyasgi.tls import tls_protocol_factory

if TYPE_CHECKING:
    from spdyasgi.config import Config

__all__ = ["BindError", "Server", "ServerState"]

logger = logging.getLogger("spdyasgi.error")

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
TICK = 0.1
# After force_close(), how long app tasks get to notice http.disconnect before cancelling.
FORCE_GRACE = 1.0


def _socket_name(sock: socket.socket) -> str:
    """``host:port``, the Unix path, or the descriptor: what error messages name."""
    try:
        name = sock.getsockname()
    except OSError:
        return f"socket fd {sock.fileno()}"
    if isinstance(name, tuple):
        return f"{name[0]}:{name[1]}"
    return f"unix socket {name}" if name else f"socket fd {sock.fileno()}"


class ServerState:
    """What every connection of one server shares (and the server inspects)."""

    __slots__ = ("connections", "default_headers", "tasks", "total_requests")

    def __init__(self) -> None:
        self.total_requests = 0
        self.connections: set[Any] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.default_headers: list[tuple[bytes, bytes]] = []


class Server:
    """One server process serving one app; see the module docstring for its life.

    ``serve()`` raises :class:`BindError` (an ``OSError`` whose message names the
    address) when it cannot listen: the port is taken, the host does not resolve, the
    Unix socket path is unusable. Anything it had already bound is closed first, and
    lifespan shutdown has run. ``run()`` turns that into one log line and exit status 3.
    Sockets passed to ``serve(sockets=...)`` belong to the server from then on: they are
    closed at shutdown and when listening on them fails.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        # --limit-max-requests-jitter: each worker draws its own extra so they restart apart.
        limit = config.limit_max_requests
        jitter = getattr(config, "limit_max_requests_jitter", 0)
        self.limit_max_requests = limit + random.randint(0, jitter) if limit and jitter else limit
        self.server_state = ServerState()
        self.started = False
        self.should_exit = False
        self.force_exit = False
        self.startup_failed = False
        self.servers: list[asyncio.base_events.Server] = []
        self.lifespan: Any = None
        self._last_date = -1
        self._last_notified = 0.0
        self._owned_sockets: list[socket.socket] = []
        self._fd_monitor: FdLimitMonitor | None = None
        self._dialout: Any = None

    # -- entry points ---------------------------------------------------------------
    def run(self, sockets: list[socket.socket] | None = None) -> None:
        """Blocking: set up the event loop (uvloop when chosen) and serve."""
        self.config.setup_event_loop()
        try:
            asyncio.run(self.serve(sockets=sockets))
        except BindError as exc:
            logger.error("%s", exc)
            sys.exit(3)
        if self.startup_failed:
            sys.exit(3)

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        """Serve in the running loop until asked to stop.

        Raises :class:`BindError` when it cannot listen (see the class docstring); app
        failures (lifespan startup) never raise: ``startup_failed`` is set instead.
        """
        config = self.config
        if not config.loaded:
            config.load()
        self.lifespan = config.lifespan_class(config)
        self._refresh_headers(int(time.time()))
        logger.info("Started server process [%d]", os.getpid())
        restore = self._install_signal_handlers()
        try:
            await self.startup(sockets=sockets)
            if self.should_exit:
                return
            await self.main_loop()
            await self.shutdown(sockets=sockets)
        finally:
            if self._fd_monitor is not None:
                self._fd_monitor.uninstall()
            restore()
        logger.info("Finished server process [%d]", os.getpid())

    # -- startup --------------------------------------------------------------------
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            self.startup_failed = True
            self.should_exit = True
            return
        config = self.config
        loop = asyncio.get_running_loop()
        state = self.server_state
        app_state: dict[str, Any] = self.lifespan.state

        def factory() -> asyncio.Protocol:
            return AutoProtocol(config, state, app_state, _loop=loop)

        extra: dict[str, Any] = {"backlog": config.backlog}
        if config.ssl is not None:  # TLS is layered by the factory: see spdyasgi/tls.py
            factory = tls_protocol_factory(factory, config.ssl, loop, config.timeout_handshake)
        if config.proxy_protocol != "off":  # below TLS and the sniff: spdyasgi/protocols/proxy.py
            factory = proxy_protocol_factory(factory, config, state, loop)
        owned: list[socket.socket] = []
        where = describe(config)
        try:
            if sockets is None:
                owned.append(bind(config))
            for sock in list(sockets if sockets is not None else owned):
                where = _socket_name(sock)
                listening = guard(sock, loop)
                if listening is not sock:
                    owned.append(listening)
                if sock.family == getattr(socket, "AF_UNIX", None):
                    server = await loop.create_unix_server(factory, sock=listening, **extra)
                else:
                    server = await loop.create_server(factory, sock=listening, **extra)
                self.servers.append(server)
        except (OSError, ValueError) as exc:
            await self._release(owned + list(sockets or ()))
            await self.lifespan.shutdown()
            self.startup_failed = True
            self.should_exit = True
            if isinstance(exc, BindError):
                raise
            raise BindError(
                getattr(exc, "errno", None), f"could not listen on {where}: {exc}"
            ) from exc
        self._owned_sockets = owned
        if config.metrics_port is not None:
            metrics.enable(config)  # RuntimeError without prometheus_client: startup fails
        self._fd_monitor = FdLimitMonitor(loop, state.connections)
        self._fd_monitor.install()
        if getattr(config, "connect", None):  # dial-out sessions to a relay: spdyasgi/dialout.py
            from spdyasgi.dialout import DialOut

            self._dialout = DialOut(config, state, app_state, loop)
            self._dialout.start()
        self._log_started()
        self.started = True

    async def _release(self, sockets: list[socket.socket]) -> None:
        """A failed start: stop whatever already listens and close every socket."""
        for server in self.servers:
            server.close()
        for server in self.servers:
            try:
                await asyncio.wait_for(server.wait_closed(), FORCE_GRACE)
            except (asyncio.TimeoutError, OSError):
                pass
        self.servers.clear()
        for sock in sockets:
            sock.close()

    def _log_started(self) -> None:
        config = self.config
        versions = ", ".join(config.spdy_versions)
        scheme = "https" if config.ssl is not None else "http"
        if config.ssl is not None:
            how = f"TLS, ALPN {', '.join(config.alpn_protocols)}"
        else:
            how = f"cleartext SPDY/{config.cleartext_spdy_version} + HTTP/1.1 on one port"
        for server in self.servers:
            for sock in server.sockets:
                name = sock.getsockname()
                if isinstance(name, tuple):
                    host, port = name[0], name[1]
                    where = (
                        f"{scheme}://[{host}]:{port}"
                        if ":" in host
                        else (f"{scheme}://{host}:{port}")
                    )
                else:
                    where = f"{scheme} on unix socket {name}"
                logger.info(
                    "Serving on %s (SPDY %s; %s) (Press CTRL+C to quit)",
                    where,
                    versions,
                    how,
                )

    # -- the main loop --------------------------------------------------------------
    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter += 1
            await asyncio.sleep(TICK)

    async def on_tick(self, counter: int) -> bool:
        """Ten times a second: refresh Date, notify a supervisor, decide whether to stop."""
        now = time.time()
        second = int(now)
        if second != self._last_date:
            self._refresh_headers(second)
            if self._fd_monitor is not None:
                self._fd_monitor.tick()
            metrics.sync(self.server_state.connections)
        notify = getattr(self.config, "callback_notify", None)
        if notify is not None and now - self._last_notified > self.config.timeout_notify / 2:
            self._last_notified = now
            await notify()
        if self.should_exit:
            return True
        limit = self.limit_max_requests
        if limit is not None and self.server_state.total_requests >= limit:
            logger.warning("Maximum request limit of %d exceeded. Terminating process.", limit)
            return True
        return False

    def _refresh_headers(self, second: int) -> None:
        """Build a new list (never mutate the old one: in-flight responses hold it)."""
        self._last_date = second
        config = self.config
        extra: list[tuple[bytes, bytes]] = list(getattr(config, "encoded_headers", []))
        headers: list[tuple[bytes, bytes]] = []
        if config.server_header and not any(name == b"server" for name, _ in extra):
            headers.append((b"server", b"spdyasgi"))
        if config.date_header:
            headers.append((b"date", formatdate(second, usegmt=True).encode("ascii")))
        self.server_state.default_headers = headers + extra

    # -- shutdown -------------------------------------------------------------------
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        logger.info("Shutting down")
        if self._dialout is not None:  # no more reconnects; its sessions drain below
            await self._dialout.stop()
        for server in self.servers:
            server.close()
        for sock in sockets or ():
            sock.close()
        for sock in self._owned_sockets:
            sock.close()
        state = self.server_state
        for connection in list(state.connections):
            connection.shutdown()
        timeout = self.config.timeout_graceful_shutdown
        deadline = None if timeout is None else time.monotonic() + timeout
        # Wait for connections, then for tasks that outlive them (background work).
        if not await self._wait(lambda: not state.connections, deadline):
            if state.connections:
                logger.warning(
                    "Closing %d connection(s) still open after the grace period",
                    len(state.connections),
                )
            for connection in list(state.connections):
                connection.force_close()
        if state.tasks and not self.force_exit:
            logger.info("Waiting for background tasks to complete.")
            await self._wait(lambda: not state.tasks, deadline)
        await self._finish_tasks()
        metrics.sync()
        for server in self.servers:
            try:
                await asyncio.wait_for(server.wait_closed(), FORCE_GRACE)
            except (asyncio.TimeoutError, OSError):
                pass
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _wait(self, done: Any, deadline: float | None) -> bool:
        """Poll until ``done()``; False when the deadline passes or exit is forced."""
        while not done():
            if self.force_exit or (deadline is not None and time.monotonic() >= deadline):
                return False
            await asyncio.sleep(TICK)
        return True

    async def _finish_tasks(self) -> None:
        """Give app tasks a moment after ``http.disconnect``, then cancel the stragglers."""
        tasks = self.server_state.tasks
        if not tasks:
            return
        for connection in list(self.server_state.connections):
            connection.force_close()
        _, pending = await asyncio.wait(set(tasks), timeout=FORCE_GRACE)
        if pending:
            logger.warning("Cancelling %d task(s) that ignored the disconnect", len(pending))
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=FORCE_GRACE)

    # -- signals --------------------------------------------------------------------
    def handle_exit(self, sig: int, frame: FrameType | None = None) -> None:
        """First signal: graceful shutdown. Second: stop waiting for anything."""
        if self.should_exit:
            self.force_exit = True
        else:
            self.should_exit = True

    def _install_signal_handlers(self) -> Any:
        """Install handlers for this serve() only; returns a callable that restores them."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        loop = asyncio.get_running_loop()
        previous = {sig: signal.getsignal(sig) for sig in HANDLED_SIGNALS}
        try:
            for sig in HANDLED_SIGNALS:
                loop.add_signal_handler(sig, self.handle_exit, sig, None)
            via_loop = True
        except NotImplementedError:  # Windows
            for sig in HANDLED_SIGNALS:
                signal.signal(sig, self.handle_exit)
            via_loop = False

        def restore() -> None:
            for sig, handler in previous.items():
                if via_loop:
                    loop.remove_signal_handler(sig)
                signal.signal(sig, handler)

        return restore
