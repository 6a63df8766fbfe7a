"""The ASGI lifespan protocol: run the app's startup before accepting, shutdown last.

``LifespanOn`` serves both ``lifespan="on"`` (an app that fails the lifespan scope stops
the server) and ``"auto"`` (an app that raises on the scope is assumed not to support it
and the server runs without). ``state`` is the dict the app fills at startup; the
protocols copy it into every request's ``scope["state"]``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

__all__ = ["LifespanOff", "LifespanOn"]

logger = logging.getLogger("spdyasgi.error")

Message = dict[str, Any]


class LifespanOff:
    """``lifespan="off"``: nothing to run, an empty shared state."""

    def __init__(self, config: Any) -> None:
        self.should_exit = False
        self.state: dict[str, Any] = {}

    async def startup(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None


class LifespanOn:
    """Drives one long-lived ``lifespan`` call of the app through startup and shutdown."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.state: dict[str, Any] = {}
        self.should_exit = False
        self.startup_failed = False
        self.shutdown_failed = False
        self.error_occurred = False
        self.message = ""
        self._queue: asyncio.Queue[Message] = asyncio.Queue()
        self._startup_done = asyncio.Event()
        self._shutdown_done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def _strict(self) -> bool:
        return bool(getattr(self.config, "lifespan", "auto") == "on")

    async def startup(self) -> None:
        logger.info("Waiting for application startup.")
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._queue.put({"type": "lifespan.startup"})
        await self._startup_done.wait()
        if self.startup_failed or (self.error_occurred and self._strict):
            detail = f": {self.message}" if self.message else ""
            logger.error("Application startup failed%s. Exiting.", detail)
            self.should_exit = True
        else:
            logger.info("Application startup complete.")

    async def shutdown(self) -> None:
        if self.error_occurred:
            return
        logger.info("Waiting for application shutdown.")
        await self._queue.put({"type": "lifespan.shutdown"})
        await self._shutdown_done.wait()
        if self.shutdown_failed or (self.error_occurred and self._strict):
            detail = f": {self.message}" if self.message else ""
            logger.error("Application shutdown failed%s. Exiting.", detail)
            self.should_exit = True
        else:
            logger.info("Application shutdown complete.")

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.config.loaded_app(scope, self._receive, self._send)
        except asyncio.CancelledError:
            # A forced exit skips lifespan shutdown and cancels us: not the app's failure.
            raise
        except BaseException as exc:  # the app's own failure; reported, never propagated
            self.error_occurred = True
            if self.startup_failed or self.shutdown_failed:
                return
            if self._strict:
                self.message = repr(exc)
                logger.error("Exception in 'lifespan' protocol", exc_info=exc)
            else:
                logger.info("ASGI 'lifespan' protocol appears unsupported.")
        finally:
            self._startup_done.set()
            self._shutdown_done.set()

    async def _receive(self) -> Message:
        return await self._queue.get()

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            self._check(not self._startup_done.is_set(), kind)
            self._startup_done.set()
        elif kind == "lifespan.startup.failed":
            self._check(not self._startup_done.is_set(), kind)
            self.startup_failed = True
            self.message = str(message.get("message", ""))
            self._startup_done.set()
        elif kind == "lifespan.shutdown.complete":
            self._check(self._startup_done.is_set() and not self._shutdown_done.is_set(), kind)
            self._shutdown_done.set()
        elif kind == "lifespan.shutdown.failed":
            self._check(self._startup_done.is_set() and not self._shutdown_done.is_set(), kind)
            self.shutdown_failed = True
            self.message = str(message.get("message", ""))
            self._shutdown_done.set()
        else:
            raise RuntimeError(f"Unexpected ASGI lifespan message {kind!r}")

    @staticmethod
    def _check(ok: bool, kind: str) -> None:
        if not ok:
            raise RuntimeError(f"ASGI lifespan message {kind!r} sent at the wrong time")
