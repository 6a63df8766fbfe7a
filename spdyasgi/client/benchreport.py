"""What `spdyasgi-bench` reports: per-worker counts, the merged RESULT dictionary, the
human summary and the progress line (kept apart from the load loop in bench.py)."""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bench import BenchConfig


@dataclass
class WorkerResult:
    started: int = 0
    done: int = 0
    succeeded: int = 0
    failed: int = 0
    status: list[int] = field(default_factory=lambda: [0] * 6)
    timeouts: int = 0
    body_bytes: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0
    latencies: bytes = b""
    errors: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    connected: int = 0
    connect_error: str | None = None
    connect_exit_code: int = 0
    protocol: str | None = None


def progress_line(done: int, failed: int, timeouts: int, target: int | None,
                   elapsed: float, last: tuple[float, int]) -> str:
    rate = (done - last[1]) / max(elapsed - last[0], 1e-9)
    total = f"/{target}" if target else ""
    pct = f" ({100 * done / target:.0f}%)" if target else ""
    return (f"progress: {elapsed:6.1f}s {done}{total} done{pct}, {failed} failed "
            f"({timeouts} timed out), {rate:,.0f} req/s")


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def summarise(cfg: BenchConfig, processes: int, results: list[WorkerResult],
               cpu: float) -> dict[str, Any]:
    latencies: list[float] = []
    status = [0] * 6
    errors: dict[str, int] = {}
    totals = WorkerResult()
    connect_errors = []
    for res in results:
        totals.started += res.started
        totals.done += res.done
        totals.succeeded += res.succeeded
        totals.failed += res.failed
        totals.timeouts += res.timeouts
        totals.body_bytes += res.body_bytes
        totals.bytes_received += res.bytes_received
        totals.bytes_sent += res.bytes_sent
        totals.connected += res.connected
        totals.elapsed = max(totals.elapsed, res.elapsed)
        totals.protocol = totals.protocol or res.protocol
        if res.connect_error:
            connect_errors.append((res.connect_error, res.connect_exit_code))
        for i, count in enumerate(res.status):
            status[i] += count
        for name, count in res.errors.items():
            errors[name] = errors.get(name, 0) + count
        values = array("d")
        values.frombytes(res.latencies)
        latencies.extend(values)
    latencies.sort()
    elapsed = totals.elapsed or 1e-9
    ms = 1000.0
    return {
        "url": cfg.url,
        "protocol": totals.protocol,
        "processes": processes,
        "sessions": cfg.sessions,
        "sessions_connected": totals.connected,
        "streams_per_session": cfg.streams,
        "target_requests": None if cfg.duration is not None else cfg.requests,
        "duration_s": cfg.duration,
        "started": totals.started,
        "done": totals.done,
        "succeeded": totals.succeeded,
        "failed": totals.failed,
        "timeouts": totals.timeouts,
        "non_2xx": totals.succeeded - status[2],
        "status": {"1xx": status[1], "2xx": status[2], "3xx": status[3], "4xx": status[4],
                   "5xx": status[5]},
        "errors": errors,
        "connect_error": connect_errors[0][0] if connect_errors else None,
        "connect_exit_code": connect_errors[0][1] if connect_errors else 0,
        "elapsed_s": round(totals.elapsed, 6),
        "req_per_s": round(totals.done / elapsed, 2),
        "body_bytes": totals.body_bytes,
        "bytes_received": totals.bytes_received,
        "bytes_sent": totals.bytes_sent,
        "mb_per_s": round(totals.bytes_received / elapsed / 1e6, 3),
        "latency_ms": {
            "min": round(latencies[0] * ms, 3) if latencies else 0.0,
            "mean": round(sum(latencies) / len(latencies) * ms, 3) if latencies else 0.0,
            "p50": round(_percentile(latencies, 0.50) * ms, 3),
            "p90": round(_percentile(latencies, 0.90) * ms, 3),
            "p99": round(_percentile(latencies, 0.99) * ms, 3),
            "max": round(latencies[-1] * ms, 3) if latencies else 0.0,
        },
        "cpu_s": round(cpu, 4),
        "cpu_us_per_request": round(cpu / totals.done * 1e6, 2) if totals.done else None,
    }


def format_summary(result: dict[str, Any]) -> str:
    lat = result["latency_ms"]
    st = result["status"]
    lines = [
        f"finished in {result['elapsed_s']:.2f}s, {result['req_per_s']:,.2f} req/s, "
        f"{result['mb_per_s']:.2f} MB/s ({result['protocol']}, {result['processes']} "
        f"process(es), {result['sessions_connected']}/{result['sessions']} sessions, "
        f"{result['streams_per_session']} streams each)",
        f"requests: {result['started']} started, {result['done']} done, "
        f"{result['succeeded']} succeeded, {result['failed']} failed, "
        f"{result['timeouts']} timed out",
        f"status codes: {st['2xx']} 2xx, {st['3xx']} 3xx, {st['4xx']} 4xx, {st['5xx']} 5xx",
        f"traffic: {result['bytes_received']:,} bytes received ({result['body_bytes']:,} body),"
        f" {result['bytes_sent']:,} bytes sent",
        f"latency (ms): min {lat['min']:.3f}  mean {lat['mean']:.3f}  p50 {lat['p50']:.3f}  "
        f"p90 {lat['p90']:.3f}  p99 {lat['p99']:.3f}  max {lat['max']:.3f}",
        f"client cpu: {result['cpu_s']:.3f} s total, "
        f"{result['cpu_us_per_request'] or 0:.1f} us/request",
    ]
    if result["errors"]:
        lines.append("errors: " + ", ".join(f"{k} x{v}" for k, v in result["errors"].items()))
    if result["connect_error"]:
        lines.append(f"connect error: {result['connect_error']}")
    return "\n".join(lines)


__all__ = ["WorkerResult", "format_summary", "progress_line", "summarise"]
