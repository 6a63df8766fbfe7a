"""The timers of a SPDY session: idle, half-received frames, PING liveness."""

from __future__ import annotations

import asyncio
import logging

from spdyasgi.protocols.spdy_output import SessionOutput
from spdyasgi.spdy import SessionStatus

__all__ = ["SessionTimers"]

logger = logging.getLogger("spdyasgi.error")


class SessionTimers(SessionOutput):
    """Timers that end a session which does nothing, stalls mid-frame or stops answering."""

    _idle_timer: asyncio.TimerHandle | None
    _idle_since: float
    _receive_timer: asyncio.TimerHandle | None
    _ping_timer: asyncio.TimerHandle | None
    _ping_deadline: asyncio.TimerHandle | None

    # --------------------------------------------------------------- timers

    def _arm_idle_timer(self, delay: float | None = None) -> None:
        """One timer per session that re-arms itself: requests only stamp `_idle_since`,
        so a busy session creates no timer per request."""
        timeout = self.config.timeout_idle
        self._idle_timer = (
            self.loop.call_later(timeout if delay is None else delay, self._on_idle)
            if timeout and not self._closed else None
        )

    def _on_idle(self) -> None:
        self._idle_timer = None
        if self._closed:
            return
        if self.cycles:
            self._arm_idle_timer()
            return
        idle_for = self.loop.time() - self._idle_since
        if idle_for < self.config.timeout_idle:
            self._arm_idle_timer(self.config.timeout_idle - idle_for)
            return
        logger.debug("%s - SPDY session idle for %ss; GOAWAY", self._peer,
                     self.config.timeout_idle)
        self.engine.close_connection(SessionStatus.OK)
        self._close_when_drained()

    def _arm_receive_timer(self) -> None:
        partial = self.engine.has_partial_input
        timer = self._receive_timer
        if partial and timer is None and self.config.timeout_receive:
            self._receive_timer = self.loop.call_later(self.config.timeout_receive,
                                                       self._on_receive_timeout)
        elif not partial and timer is not None:
            timer.cancel()
            self._receive_timer = None

    def _on_receive_timeout(self) -> None:
        self._receive_timer = None
        if self.engine.has_partial_input and not self._closed:
            logger.info("%s - frame half-sent for over %ss; closing", self._peer,
                        self.config.timeout_receive)
            self.engine.close_connection(SessionStatus.PROTOCOL_ERROR)
            self.force_close()

    def _send_ping(self) -> None:
        self._ping_timer = None
        if self._closed:
            return
        self.engine.ping()
        self._flush()
        if self._ping_deadline is None:
            self._ping_deadline = self.loop.call_later(self.config.ping_timeout,
                                                       self._on_ping_timeout)
        self._ping_timer = self.loop.call_later(self.config.ping_interval, self._send_ping)

    def _on_ping_timeout(self) -> None:
        self._ping_deadline = None
        logger.info("%s - no PING reply within %ss; closing", self._peer,
                    self.config.ping_timeout)
        self.force_close()
