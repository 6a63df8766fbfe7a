"""Budgets that stop a peer from making us work without bound (rapid reset, floods)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Limits:
    """Protective limits of one session; every one is configurable, defaults are safe."""

    #: Largest control frame payload we buffer; header frames above it end the session.
    max_frame_size: int = 65536
    #: Largest decompressed header block (bytes) and number of fields per block.
    max_header_block_size: int = 65536
    max_header_count: int = 128
    #: Control frames (PING echoes, RSTs, ...) queued while the caller is not draining.
    max_queued_control_frames: int = 1000
    #: Recently closed stream ids remembered to classify late frames.
    max_closed_streams: int = 1024
    #: Rapid reset (CVE-2023-44487): streams the peer opens that end before any reply of
    #: ours (reset by the peer, refused over the stream limit by the engine, or refused
    #: by the server with `reset_stream(..., REFUSED_STREAM)`) spend one token of a bucket
    #: of `reset_burst` that refills at `reset_rate` per second (and by one for every
    #: stream completed normally); an empty bucket ends the session with GOAWAY. Generous
    #: on purpose: media players open and cancel bursts of Range requests (a burst of 200
    #: a second for 10 s leaves 1,000 tokens spare), while a loop of SYN+RST runs it dry
    #: within seconds. Each such stream costs O(1) and no app work beyond what the
    #: concurrency limit allows, so the budget only has to stop sustained abuse.
    reset_burst: int = 2000
    reset_rate: float = 100.0
    #: SETTINGS frames: burst and per second; entries per frame.
    settings_burst: int = 10
    settings_rate: float = 10.0
    max_settings_entries: int = 16
    #: Empty DATA/HEADERS frames without FIN tolerated per stream.
    max_empty_frames: int = 100
    #: Compatibility mode only (`ConnectionConfig.compat`, docs/spdy.md): a SYN_STREAM id
    #: below the highest seen is accepted within the last `compat_reorder_window` ids (A);
    #: DATA may drive a stream's receive window down to -`compat_stream_overrun`, the sum
    #: of all streams' overruns and the 3.1 session window down to
    #: -`compat_session_overrun` (B).
    compat_reorder_window: int = 64
    compat_stream_overrun: int = 4 << 20
    compat_session_overrun: int = 8 << 20


class Budget:
    """A token bucket: `spend()` is False once the peer exceeded `burst` plus refills.

    With a clock the bucket refills at `rate` per second; without one (the engine has no
    clock of its own) it refills only through `refund()`, for example when a stream
    completes normally, so a peer doing real work never runs dry.
    """

    __slots__ = ("_burst", "_clock", "_last", "_rate", "_tokens")

    def __init__(self, burst: int, rate: float, clock: Callable[[], float] | None):
        self._burst = float(burst)
        self._rate = rate
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock() if clock is not None else 0.0

    def spend(self) -> bool:
        if self._clock is not None:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now
        self._tokens -= 1.0
        return self._tokens >= 0.0

    def refund(self) -> None:
        if self._tokens < self._burst:
            self._tokens += 1.0
