"""Listening sockets: binding with errors that name the address, and surviving the fd limit.

At the file-descriptor limit ``accept()`` fails with EMFILE while the listening socket
stays readable. Left alone, the two loops behave badly in opposite ways:

* asyncio's selector loop logs a traceback, removes its reader and schedules a retry
  in 1 s, but (CPython 3.11/3.12) then keeps looping up to ``backlog`` times: thousands
  of tracebacks and retry timers per burst, a 100 % CPU storm. :class:`GuardedSocket`
  makes every ``accept()`` after the first EMFILE report "would block" for
  :data:`BACKOFF` seconds, so one burst costs one failed syscall and one retry;
  :class:`FdLimitMonitor` turns the loop's report into one log line per second.
* uvloop (libuv) silently accepts and closes the pending connections (its "EMFILE
  trick", using a reserved descriptor) and reports nothing. :class:`FdLimitMonitor`
  probes once a second whether one more descriptor can be opened, and logs when not.

Either way open sessions keep being served and accepting resumes by itself once
descriptors are free again.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spdyasgi.config import Config

__all__ = ["BACKOFF", "BindError", "FdLimitMonitor", "GuardedSocket", "bind", "guard"]

logger = logging.getLogger("spdyasgi.error")

#: seconds a listening socket refuses to try ``accept()`` again after EMFILE/ENFILE
BACKOFF = 0.5
#: errors that mean "out of descriptors/memory", not "this client is broken"
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: the message asyncio's selector loop reports such accept() failures with
_ASYNCIO_MESSAGE = "socket.accept() out of system resource"


class BindError(OSError):
    """The server could not listen where it was told to; the message names the address.

    Raised by ``Server.serve()`` (after releasing anything already bound) and turned
    into exit status 3 by ``Server.run()`` and the ``spdyasgi`` command. ``errno`` is
    the underlying error's; ``str()`` is the message alone.
    """

    def __init__(self, errno_: int | None, message: str) -> None:
        super().__init__(message)
        self.errno = errno_


def describe(config: Config) -> str:
    """The configured listening address as a user would write it."""
    if config.uds is not None:
        return f"unix socket {config.uds}"
    if config.fd is not None:
        return f"file descriptor {config.fd}"
    return f"{config.host}:{config.port}"


def bind(config: Config) -> socket.socket:
    """``config.bind_socket()`` with every failure as a :class:`BindError` naming the address."""
    try:
        return config.bind_socket()
    except socket.gaierror as exc:
        raise BindError(
            exc.errno, f"could not resolve host {config.host!r} (port {config.port}): "
            f"{exc.strerror}"
        ) from exc
    except OSError as exc:
        detail = exc.strerror or str(exc)
        where = describe(config)
        message = detail if where in detail else f"could not listen on {where}: {detail}"
        raise BindError(exc.errno, message) from exc


class GuardedSocket(socket.socket):
    """A listening socket whose ``accept()`` backs off after running out of descriptors.

    Only asyncio's selector loop calls ``accept()`` on the Python object; uvloop reads
    the descriptor in C, so sockets are guarded on selector loops only (see :func:`guard`).
    """

    __slots__ = ("_refuse_until",)

    def accept(self) -> tuple[socket.socket, Any]:
        refuse_until = getattr(self, "_refuse_until", 0.0)
        if refuse_until and time.monotonic() < refuse_until:
            raise BlockingIOError(errno.EAGAIN, "backing off after running out of descriptors")
        try:
            return super().accept()
        except OSError as exc:
            if exc.errno in OUT_OF_RESOURCES:
                self._refuse_until = time.monotonic() + BACKOFF
            raise


def guard(sock: socket.socket, loop: asyncio.AbstractEventLoop) -> socket.socket:
    """The socket to hand to the loop: a :class:`GuardedSocket` twin on selector loops.

    The twin shares the open file description through ``dup()``; the caller keeps (and
    eventually closes) ``sock``. Other loops get ``sock`` itself.
    """
    if not isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
        return sock
    if isinstance(sock, GuardedSocket) or sock.type != socket.SOCK_STREAM:
        return sock  # already guarded, or not a listening socket: the loop will say so
    return GuardedSocket(sock.family, sock.type, sock.proto, fileno=os.dup(sock.fileno()))


class FdLimitMonitor:
    """Logs "too many open files" at most once a second, whichever loop noticed it."""

    __slots__ = ("_connections", "_installed", "_last_logged", "_loop", "_previous", "_probe")

    def __init__(self, loop: asyncio.AbstractEventLoop, connections: Any) -> None:
        self._loop = loop
        self._connections = connections
        self._last_logged = -1.0
        self._previous: Any = None
        self._installed = False
        # uvloop hides EMFILE on accept: only a probe can notice it.
        self._probe = not isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop)

    def install(self) -> None:
        """Intercept the selector loop's accept-failure reports (others pass through)."""
        if self._probe or self._installed:
            return
        self._previous = self._loop.get_exception_handler()
        self._loop.set_exception_handler(self._handle)
        self._installed = True

    def uninstall(self) -> None:
        if self._installed:
            self._loop.set_exception_handler(self._previous)
            self._installed = False

    def tick(self) -> None:
        """Once a second from the server's tick: probe for the limit where the loop is silent."""
        if not self._probe:
            return
        try:
            fd = os.open(os.devnull, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            if exc.errno in OUT_OF_RESOURCES:
                self.report(exc)
            return
        os.close(fd)

    def report(self, exc: BaseException | None) -> None:
        now = time.monotonic()
        if self._last_logged >= 0 and now - self._last_logged < 1.0:
            return
        self._last_logged = now
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "Out of resources"
        logger.error(
            "%s: not accepting new connections for now (%d open, still served); "
            "accepting resumes by itself once descriptors are free",
            reason,
            len(self._connections),
        )

    def _handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if context.get("message") == _ASYNCIO_MESSAGE and (
            isinstance(exc, OSError) and exc.errno in OUT_OF_RESOURCES
        ):
            self.report(exc)
            return
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)
