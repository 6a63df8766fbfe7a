"""Receive-side flow control arithmetic: how much a WINDOW_UPDATE may grant.

A peer's send window is our receive window as it sees it. Each received byte is taken
from it once (when its frame is admitted) and given back once (when the application
consumed it or the engine dropped it); an update that would lift the window past what we
advertised, or past 2^31-1, would let the peer send without bound, so increments are
capped here (as h2's WindowManager does) and the frame builder refuses anything outside
1..2^31-1 instead of masking it.
"""

from __future__ import annotations

from .constants import MAX_WINDOW


def window_increment(window: int, due: int, ceiling: int = MAX_WINDOW) -> int:
    """The WINDOW_UPDATE delta for `due` consumed bytes on a receive window of `window`:
    all of them unless that takes the window past `ceiling` (itself capped at 2^31-1);
    0 when nothing may be granted."""
    room = min(ceiling, MAX_WINDOW) - window
    if due <= room:
        return due if due > 0 else 0
    return room if room > 0 else 0
