"""/proc readings of a process tree (Linux): CPU seconds, RSS, peak RSS."""

from __future__ import annotations

import os

TICKS = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as handle:
                kids.extend(int(x) for x in handle.read().split())
        except OSError:
            pass
    return kids


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (alive now)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(_children(current))
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime (seconds) of the tree rooted at `pid` (live processes only).

    Children reaped by their parent show up in the parent's cutime/cstime, added too.
    """
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after "comm)": field 3 is index 0 -> utime (14) = [11], stime = [12],
        # cutime = [13], cstime = [14]
        total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / TICKS


def _status_kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kib(pid: int) -> int:
    """Current RSS (KiB), summed over the tree."""
    return sum(_status_kib(p, "VmRSS:") for p in tree(pid))


def hwm_kib(pid: int) -> int:
    """Peak RSS (VmHWM, KiB), summed over the tree's live processes."""
    return sum(_status_kib(p, "VmHWM:") for p in tree(pid))
