"""The timers of a SPDY session: idle, half-received frames, PING liveness.

Half-received frames (the receive timeout): while part of a frame is buffered, every
`timeout_receive` seconds at least `receive_min_rate` bytes per second of that period
must have arrived (500 B/s by default, Apache mod_reqtimeout's MinRate), else the session
ends with GOAWAY PROTOCOL_ERROR. An upload that flows is never cut however its reads fall
on frame boundaries; a peer that stalls mid-frame, or trickles bytes (slowloris) to keep
a frame open, is closed after one period. The timer is re-armed once per period, never
per read.
"""

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
    _received_bytes: int
    _receive_mark: int

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
        try:
            self._check_idle()
        except Exception:  # a loop callback must not raise: end the session cleanly
            self._internal_error("checking the idle timeout")

    def _check_idle(self) -> None:
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
        """After each read: time a partial frame from now, or stop timing."""
        partial = self.engine.has_partial_input
        timer = self._receive_timer
        if partial:
            if timer is None and self.config.timeout_receive:
                self._receive_mark = self._received_bytes
                self._receive_timer = self.loop.call_later(self.config.timeout_receive,
                                                           self._on_receive_timeout)
        elif timer is not None:
            timer.cancel()
            self._receive_timer = None

    def _on_receive_timeout(self) -> None:
        self._receive_timer = None
        try:
            self._check_receive_progress()
        except Exception:  # a loop callback must not raise: end the session cleanly
            self._internal_error("checking the receive timeout")

    def _check_receive_progress(self) -> None:
        if not self.engine.has_partial_input or self._closed or self._lingering:
            return
        period = self.config.timeout_receive
        arrived = self._received_bytes - self._receive_mark
        if arrived and arrived >= self.config.receive_min_rate * period:
            self._arm_receive_timer()  # flowing: time the next period
            return
        logger.info("%s - frame half-sent: %d bytes in the last %ss (below --receive-min-rate "
                    "%d B/s); closing", self._peer, arrived, period, self.config.receive_min_rate)
        self.abort_session(SessionStatus.PROTOCOL_ERROR)

    def _send_ping(self) -> None:
        self._ping_timer = None
        if self._closed or self._lingering:
            return
        self.engine.ping()
        try:
            self._flush()
        except Exception:  # a loop callback must not raise: end the session cleanly
            self._internal_error("sending a PING")
            return
        if self._ping_deadline is None:
            self._ping_deadline = self.loop.call_later(self.config.ping_timeout,
                                                       self._on_ping_timeout)
        self._ping_timer = self.loop.call_later(self.config.ping_interval, self._send_ping)

    def _on_ping_timeout(self) -> None:
        self._ping_deadline = None
        logger.info("%s - no PING reply within %ss; closing", self._peer,
                    self.config.ping_timeout)
        self.force_close()
