"""Compatibility mode: bounded, reported tolerances for faults of deployed SPDY peers.

Strict (the default) answers each fault as the spec says and names it in the reason
(`strict_hint`). With `ConnectionConfig(compat=True)`:

- A: a SYN_STREAM id below the highest seen is accepted when it is odd, was skipped (never
  used) and lies within the last `Limits.compat_reorder_window` ids (at most
  `max_concurrent_streams`);
- B: DATA beyond a receive window is accepted up to `Limits.compat_stream_overrun` bytes
  below zero per stream and `Limits.compat_session_overrun` in total (and below zero on the
  3.1 session window);
- C: a 3.1 peer that credits its streams (64 KiB or more) but never stream 0 is taken to
  assume the session window starts at its own INITIAL_WINDOW_SIZE: the session send window
  is raised once by the difference;
- D: when the version was assumed, not negotiated (`assume_version`), the session send
  window is not enforced until the peer's first stream-0 WINDOW_UPDATE.

Each tolerance is reported once per session with a `PeerFault` event (strict mode reports
C too, as it only stalls). Nothing here runs on a path a well-behaved peer takes, except
one attribute check.
"""

from __future__ import annotations

from .constants import DEFAULT_WINDOW, MAX_WINDOW
from .events import PeerFault
from .exceptions import ProtocolError
from .session import SessionState
from .stream import Stream

#: What each fault is, for log lines and the docs (docs/spdy.md "Compatibility mode").
FAULTS = {
    "A": "out-of-order stream ids",
    "B": "DATA beyond the flow-control window",
    "C": "the session window is never credited",
    "D": "SPDY/3 flow control on a SPDY/3.1 session",
}


def strict_hint(fault: str) -> str:
    """The tail of a strict-mode reason: which fault it was, and that compat tolerates it."""
    return f" [fault {fault}: {FAULTS[fault]}; tolerated with --compat]"


class CompatTolerance(SessionState):
    """The decisions of compatibility mode (see the module docstring)."""

    def _report(self, fault: str, detail: str, tolerated: bool) -> None:
        """A `PeerFault` event, once per fault and session."""
        if fault in self._faults_reported:
            return
        self._faults_reported.add(fault)
        self._events.append(PeerFault(fault, detail, tolerated))

    # ------------------------------------------------------------ A: stream ids

    def _note_remote_id(self, stream_id: int) -> None:
        """Compat: `stream_id` is the new highest; remember the ids it skipped.

        Bit k of `_id_gaps` says id `highest - 2k` was skipped (never used); only the
        last `compat_reorder_window` ids are remembered."""
        base = self.highest_remote_id or (-1 if stream_id % 2 else 0)
        shift = (stream_id - base) // 2
        window = self.limits.compat_reorder_window
        if shift > window:
            gaps = (1 << (window + 1)) - 2
        else:
            gaps = (self._id_gaps << shift) | ((1 << shift) - 2)
        self._id_gaps = gaps & ((1 << (window + 1)) - 1)

    def _reordered_stream_id(self, stream_id: int) -> None:
        """A SYN_STREAM below the highest id seen: tolerated (compat) or session error."""
        highest = self.highest_remote_id
        reason = f"SYN_STREAM id {stream_id} below the highest seen {highest}"
        if not self._compat:
            raise ProtocolError(reason + strict_hint("A"))
        back = (highest - stream_id) // 2
        # No further back than the peer may have streams open at once.
        window = min(self.limits.compat_reorder_window, self.config.max_concurrent_streams)
        if stream_id % 2 == 0 or back > window or not self._id_gaps >> back & 1:
            raise ProtocolError(
                f"{reason}: reused, or older than the last {window} ids (beyond what "
                "--compat tolerates)"
            )
        self._id_gaps &= ~(1 << back)
        self._report("A", f"{reason}, accepted: it was never used", True)

    # --------------------------------------------------------- B: window overruns

    def _session_overrun(self, size: int) -> None:
        """DATA larger than the session receive window: tolerated (compat) or session error."""
        window = self.session_recv_window
        reason = f"DATA overran the session window ({size} > {window})"
        if not self._compat:
            raise ProtocolError(reason + strict_hint("B"))
        bound = self.limits.compat_session_overrun
        if size - window > bound:
            raise ProtocolError(f"{reason}: more than the {bound} bytes --compat tolerates")
        self._report("B", reason + ", accepted", True)

    def _stream_overrun(self, stream: Stream, size: int) -> str:
        """DATA larger than `stream`'s receive window: "" when tolerated, else the reason
        for its FLOW_CONTROL_ERROR. A tolerated overrun is counted until credited back."""
        window = stream.recv_window
        reason = f"DATA overran the stream window ({size} > {window})"
        if not self._compat:
            return reason + strict_hint("B")
        limits = self.limits
        after = size - window
        added = after - max(0, -window)
        if after > limits.compat_stream_overrun:
            return f"{reason}: more than the {limits.compat_stream_overrun} bytes per stream " \
                "--compat tolerates"
        if self.overrun + added > limits.compat_session_overrun:
            return f"{reason}: the session's overruns exceed the {limits.compat_session_overrun}" \
                " bytes --compat tolerates"
        self.overrun += added
        self._report("B", reason + ", accepted", True)
        return ""

    def _overrun_repaid(self, before: int, after: int) -> None:
        """A stream's receive window moved from `before` (< 0) to `after`."""
        self.overrun -= -before - max(0, -after)

    # --------------------------------------------------- C, D: session send window

    def assume_version(self) -> None:
        """The version was assumed (cleartext), not negotiated. With compat on a 3.1
        session, behave as SPDY/3 for the session send window until the peer credits
        stream 0 (fault D, node-spdy's approach)."""
        if self._compat and self._session_fc:
            self._send_session_fc = False

    def _first_session_credit(self) -> None:
        """The peer's first stream-0 WINDOW_UPDATE: it runs 3.1 flow control."""
        self._session_unseen = False
        self._watch_credit = False
        if not self._send_session_fc:
            self._send_session_fc = True
            if self.session_send_window < 0:  # else SPDY/3 mode made no difference
                self._report("D", f"{-self.session_send_window} bytes sent past the SPDY/3.1 "
                             "session window before the first stream-0 WINDOW_UPDATE (taken "
                             "for SPDY/3 until then)", True)

    def _credit_without_session(self, delta: int) -> None:
        """Stream credit while the 3.1 peer never credited stream 0: fault C once it
        reaches 64 KiB. Strict mode only reports it, once our session send window is
        exhausted (the stall ends nothing, but the log says why and what helps)."""
        self._stream_credit += delta
        if self._stream_credit < DEFAULT_WINDOW:
            return
        detail = f"{self._stream_credit} bytes of stream credit but no session WINDOW_UPDATE"
        if not self._compat:
            if self.session_send_window <= 0:
                self._watch_credit = False
                self._report("C", f"{detail}: the session window stays closed"
                             + strict_hint("C"), False)
            return
        self._watch_credit = False  # decided once: no more checks on this path
        assumed = self.remote_initial_window
        if assumed <= DEFAULT_WINDOW:
            self._report("C", f"{detail} (its INITIAL_WINDOW_SIZE {assumed} gives nothing "
                         "to assume)", False)
            return
        self.session_send_window = min(
            self.session_send_window + assumed - DEFAULT_WINDOW, MAX_WINDOW
        )
        self._report("C", f"{detail}: the session window is taken to start at the "
                     f"peer's INITIAL_WINDOW_SIZE {assumed}", True)
