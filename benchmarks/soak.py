"""A seeded, bounded soak of spdyasgi over real sockets on 127.0.0.1.

    python benchmarks/soak.py --mode cleartext --duration 1800 --seed 1
    python benchmarks/soak.py --mode tls --duration 1800 --seed 1

Starts ``python -m spdyasgi soak_app:app`` (benchmarks/soak_app.py) as a subprocess and
drives it from several client sessions (`spdyasgi.client`) with a seeded mix: checked
GETs, echoes, Range reads, aborts mid-body, resets, slow responses, slow readers,
handlers that ignore disconnects, stalled sessions, abrupt disconnects and media-player
bursts (see soak_client.py and docs/soak.md). Every ``--sample`` seconds it prints a
progress line with the server's RSS and open fds; at the end a summary and one
``RESULT {json}`` line. Exit status 0 when the targets hold (no wrong answer, no server
error logged, RSS growth after warm-up under 10 %, fds back to the start), else 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from proc import cpu_seconds, rss_kib, tree
from soak_client import (
    CATEGORIES,
    Lane,
    Session,
    Tally,
    burst_loop,
    churn_loop,
    open_client,
    stall_loop,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RSS_GROWTH_TARGET = 10.0  # percent
#: server log lines that mean something went wrong inside the server
ERROR_MARKERS = ("Traceback", "Fatal error", "Exception in", "ERROR")


def fd_count(pid: int) -> int:
    total = 0
    for member in tree(pid):
        try:
            total += len(os.listdir(f"/proc/{member}/fd"))
        except OSError:
            pass
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(args: argparse.Namespace, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "spdyasgi", "soak_app:app", "--app-dir", str(HERE),
               "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
               "--log-level", "warning", "--timeout-graceful-shutdown", "5"]
    if args.mode == "tls":
        command.append("--self-signed")
    command.extend(args.server_arg)
    path = os.environ.get("PYTHONPATH")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + (os.pathsep + path if path else ""))
    with open(log, "wb") as handle:
        return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL)


async def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with status {proc.returncode} before serving")
        try:  # a whole request: a cleartext connect alone succeeds before the loop runs
            client = await open_client(url)
            try:
                response = await client.get("/data?seed=0&size=10", timeout=10)
                await response.read()
            finally:
                await client.aclose()
        except Exception:  # not serving yet
            await asyncio.sleep(0.1)
            continue
        return
    raise SystemExit("the server did not start serving within 30 s")


class Sampler:
    """RSS and fd readings of the server, every `interval` seconds, with progress lines."""

    def __init__(self, pid: int, tally: Tally, interval: float, warmup: float):
        self.pid = pid
        self.tally = tally
        self.interval = interval
        self.warmup = warmup
        self.started = time.monotonic()
        self.samples: list[tuple[float, int, int]] = []  # (seconds, RSS KiB, fds)
        self.baseline: tuple[float, int, int] | None = None

    def sample(self) -> tuple[float, int, int]:
        reading = (round(time.monotonic() - self.started, 1), rss_kib(self.pid),
                   fd_count(self.pid))
        self.samples.append(reading)
        if self.baseline is None and reading[0] >= self.warmup:
            self.baseline = reading
        return reading

    def progress(self, reading: tuple[float, int, int]) -> None:
        tally = self.tally
        wrong = ",".join(f"{k}={v}" for k, v in sorted(tally.wrong.items())) or "0"
        print(f"t={reading[0]:7.1f}s requests={tally.requests} ops={sum(tally.ops.values())} "
              f"wrong={wrong} bursts={tally.bursts} sessions={dict(tally.sessions)} "
              f"rss={reading[1] / 1024:.1f}MiB fds={reading[2]}", flush=True)

    async def run(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(min(self.interval, max(deadline - time.monotonic(), 0.0)))
            self.progress(self.sample())


def server_errors(log: Path) -> list[str]:
    lines = log.read_text(errors="replace").splitlines()
    return [line for line in lines if any(marker in line for marker in ERROR_MARKERS)]


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    scheme = "https" if args.mode == "tls" else "http"
    log = Path(args.server_log or tempfile.mkstemp(prefix="soak-server-", suffix=".log")[1])
    for attempt in range(3):  # another process may take the free port before the server
        port = free_port()
        url = f"{scheme}://127.0.0.1:{port}"
        proc = start_server(args, port, log)
        try:
            await wait_ready(url, proc)
            break
        except SystemExit:
            if proc.poll() is None or attempt == 2 or "in use" not in log.read_text().lower():
                proc.kill()
                raise
    try:
        return await drive(args, url, proc, log)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def drive(args: argparse.Namespace, url: str, proc: subprocess.Popen[bytes],
                log: Path) -> dict[str, Any]:
    tally = Tally()
    warmup = args.warmup if args.warmup is not None else min(120.0, args.duration * 0.2)
    sampler = Sampler(proc.pid, tally, args.sample, warmup)
    start_reading = sampler.sample()
    cpu_start = cpu_seconds(proc.pid)
    master = random.Random(args.seed)
    deadline = time.monotonic() + args.duration
    sessions = [Session(url, tally, f"session-{index}") for index in range(args.sessions)]
    jobs = [sampler.run(deadline)]
    for session in sessions:
        jobs.extend(Lane(session, random.Random(master.random()), tally).run(deadline)
                    for _ in range(args.lanes))
    players = [Session(url, tally, f"player-{index}")
               for index in range(args.players if args.bursts else 0)]
    for session in players:
        jobs.append(Lane(session, random.Random(master.random()), tally).run(deadline, True))
        jobs.append(burst_loop(session, random.Random(master.random()), tally,
                               args.burst_size, deadline))
    if args.stalls:
        jobs.append(stall_loop(url, random.Random(master.random()), tally, deadline))
    if args.churn:
        jobs.append(churn_loop(url, random.Random(master.random()), tally, deadline))
    await asyncio.gather(*jobs)
    load_end = sampler.sample()
    for session in sessions + players:
        await session.close()
    fds_end = await settle_fds(proc.pid, start_reading[2], timeout=15)
    after = sampler.sample()
    errors = server_errors(log)
    tally.server_cpu = cpu_seconds(proc.pid) - cpu_start
    return summarize(args, tally, sampler, start_reading, load_end, after, fds_end, errors, log)


async def settle_fds(pid: int, target: int, timeout: float) -> int:
    """The server's fd count once it is back to `target` (or after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    count = fd_count(pid)
    while count > target and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        count = fd_count(pid)
    return count


def summarize(args: argparse.Namespace, tally: Tally, sampler: Sampler,
              start: tuple[float, int, int], load_end: tuple[float, int, int],
              after: tuple[float, int, int], fds_end: int, errors: list[str],
              log: Path) -> dict[str, Any]:
    baseline = sampler.baseline or load_end
    growth = 100.0 * (load_end[1] - baseline[1]) / baseline[1] if baseline[1] else 0.0
    peak = max(sample[1] for sample in sampler.samples)
    result: dict[str, Any] = {
        "mode": args.mode, "seed": args.seed, "duration": args.duration,
        "bursts": args.bursts, "sessions": args.sessions, "lanes": args.lanes,
        "players": args.players if args.bursts else 0,
        "requests": tally.requests, "ops": dict(sorted(tally.ops.items())),
        "wrong": {category: tally.wrong[category] for category in CATEGORIES},
        "wrong_total": tally.wrong_total,
        "expected_errors": dict(sorted(tally.expected_errors.items())),
        "session_counts": dict(tally.sessions), "burst_count": tally.bursts,
        "server_errors": len(errors), "server_cpu_s": round(tally.server_cpu, 1),
        "rss_kib": {"start": start[1], "baseline": baseline[1], "baseline_at": baseline[0],
                    "end_of_load": load_end[1], "peak": peak, "after": after[1]},
        "rss_growth_pct": round(growth, 2),
        "fds": {"start": start[2], "end_of_load": load_end[2], "after": fds_end},
        "examples": tally.examples, "server_log": str(log),
    }
    result["targets_met"] = (tally.wrong_total == 0 and not errors
                             and growth < RSS_GROWTH_TARGET and fds_end <= start[2])
    print(f"--- soak {args.mode} seed={args.seed} {args.duration:g}s "
          f"{'with' if args.bursts else 'without'} bursts ---")
    print(f"requests {tally.requests}, operations {sum(tally.ops.values())}: "
          + ", ".join(f"{k} {v}" for k, v in sorted(tally.ops.items())))
    print(f"wrong answers {tally.wrong_total}: "
          + ", ".join(f"{k} {tally.wrong[k]}" for k in CATEGORIES))
    for example in tally.examples[:10]:
        print(f"  e.g. {example}")
    print(f"server error lines {len(errors)} (log: {log}); server CPU {tally.server_cpu:.1f} s")
    for line in errors[:5]:
        print(f"  {line}")
    print(f"RSS start {start[1] / 1024:.1f} MiB, after warm-up ({baseline[0]:g}s) "
          f"{baseline[1] / 1024:.1f}, end of load {load_end[1] / 1024:.1f} "
          f"({growth:+.1f} %), peak {peak / 1024:.1f}, after load {after[1] / 1024:.1f}")
    print(f"fds start {start[2]}, end of load {load_end[2]}, after {fds_end}")
    print(f"targets {'met' if result['targets_met'] else 'NOT met'}")
    print("RESULT " + json.dumps(result), flush=True)
    return result


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("cleartext", "tls"), default="cleartext")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sessions", type=int, default=4, help="long-lived client sessions")
    parser.add_argument("--lanes", type=int, default=6, help="concurrent loops per session")
    parser.add_argument("--no-bursts", dest="bursts", action="store_false",
                        help="leave out the media-player bursts")
    parser.add_argument("--burst-size", type=int, default=50)
    parser.add_argument("--players", type=int, default=2,
                        help="media-player sessions (playback + bursts)")
    parser.add_argument("--no-stalls", dest="stalls", action="store_false")
    parser.add_argument("--no-churn", dest="churn", action="store_false")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds before the RSS baseline (default 20 %% of the run, "
                             "at most 120)")
    parser.add_argument("--server-log", default=None, help="file for the server's output")
    parser.add_argument("--server-arg", action="append", default=[],
                        help="extra spdyasgi option (repeatable), e.g. --server-arg=--loop=asyncio")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.duration > 24 * 3600:
        parser.error("--duration must be in (0, 86400] seconds")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(soak(args))
    else:
        result = uvloop.run(soak(args))
    return 0 if result["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
