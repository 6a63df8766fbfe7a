"""Opt-in memory tracing inside the soak server (``SPDYASGI_TRACEMALLOC=DIR``).

Started from the soak app's lifespan, so it runs in the server process and needs nothing
from the server package. Every ``SPDYASGI_TRACEMALLOC_INTERVAL`` seconds (default 60) it
appends one JSON line to ``DIR/summary.jsonl`` and writes ``DIR/diff-NNN.txt``:

* the line compares three views of the same memory: VmRSS, glibc's heap (``mallinfo2``:
  bytes in use and free-but-kept) and the Python heap as tracemalloc sees it, plus the
  OpenSSL server session cache of every live `ssl.SSLContext`; RSS growing while the
  traced total stays flat means the growth is outside Python objects (OpenSSL, zlib,
  fragmentation);
* the diff lists the top allocation sites (by traceback, ``SPDYASGI_TRACEMALLOC_FRAMES``
  deep, default 8) grown since the first snapshot and since the previous one.

``SPDYASGI_TRACEMALLOC_FRAMES=0`` leaves tracemalloc off (only the cheap summary lines, so
the server runs at full speed); ``SPDYASGI_MALLOC_TRIM=1`` calls glibc's ``malloc_trim(0)``
after each line and records the RSS it leaves (``rss_trimmed_kib``): RSS that a trim gives
back was free memory glibc kept, not live data.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import json
import os
import ssl
import time
import tracemalloc
from pathlib import Path
from typing import Any

TOP = 25


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def _mallinfo() -> dict[str, int]:
    """glibc heap figures (bytes); empty when not on glibc >= 2.33."""
    try:
        function = _libc().mallinfo2
    except (OSError, AttributeError):
        return {}
    function.restype = _MallInfo2
    info = function()
    return {"heap_in_use": int(info.uordblks) + int(info.hblkhd),
            "heap_free": int(info.fordblks), "mmapped": int(info.hblkhd)}


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def _ssl_sessions() -> list[dict[str, int]]:
    """OpenSSL session-cache statistics of every live SSLContext (server side)."""
    return [dict(obj.session_stats()) for obj in gc.get_objects()
            if isinstance(obj, ssl.SSLContext)]


def _filtered(snapshot: tracemalloc.Snapshot) -> tracemalloc.Snapshot:
    return snapshot.filter_traces((
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
    ))


class SnapshotWriter:
    """Takes tracemalloc snapshots at intervals and writes what grew."""

    def __init__(self, directory: str):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.interval = float(os.environ.get("SPDYASGI_TRACEMALLOC_INTERVAL", "60"))
        self.frames = int(os.environ.get("SPDYASGI_TRACEMALLOC_FRAMES", "8"))
        self.trim = os.environ.get("SPDYASGI_MALLOC_TRIM") == "1"
        self.first: tracemalloc.Snapshot | None = None
        self.previous: tracemalloc.Snapshot | None = None
        self.index = 0
        self.started = time.monotonic()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.frames:
            tracemalloc.start(self.frames)
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.write()
        if self.frames:
            tracemalloc.stop()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.write()

    def write(self) -> None:
        """One summary line and one diff file (blocks the loop for a moment, by design)."""
        traced, peak = tracemalloc.get_traced_memory()
        record: dict[str, Any] = {
            "index": self.index, "t": round(time.monotonic() - self.started, 1),
            "rss_kib": _status_kib("VmRSS:"), "traced": traced, "traced_peak": peak,
            "gc_objects": len(gc.get_objects()), **_mallinfo(),
            "ssl_sessions": _ssl_sessions(),
        }
        if self.trim:
            _libc().malloc_trim(0)
            record["rss_trimmed_kib"] = _status_kib("VmRSS:")
        with open(self.directory / "summary.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if not self.frames:
            self.index += 1
            return
        snapshot = _filtered(tracemalloc.take_snapshot())
        lines = [json.dumps(record), ""]
        for title, base in (("since the first snapshot", self.first),
                            ("since the previous snapshot", self.previous)):
            if base is None:
                continue
            stats = snapshot.compare_to(base, "traceback")
            lines.append(f"=== top {TOP} growth {title} ===")
            for stat in stats[:TOP]:
                lines.append(f"{stat.size_diff / 1024:+.1f} KiB ({stat.count_diff:+d} blocks), "
                             f"now {stat.size / 1024:.1f} KiB")
                lines.extend("    " + line for line in stat.traceback.format())
            lines.append("")
        (self.directory / f"diff-{self.index:03d}.txt").write_text("\n".join(lines))
        if self.first is None:
            self.first = snapshot
        self.previous = snapshot
        self.index += 1
