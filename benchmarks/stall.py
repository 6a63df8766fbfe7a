"""Memory and idle-cost probes of a SPDY server, with a client built on spdyasgi's engine.

    python benchmarks/stall.py stall --port P --server-pid PID [--sessions 100 --streams 100]
        Opens the sessions, measures the server's RSS, then opens `streams` requests for a
        large download on each session and never sends WINDOW_UPDATE: every stream gets its
        initial window (64 KiB) and then stalls on flow control. Once every stream has its
        SYN_REPLY and the server has gone quiet, measures RSS again:
        (RSS after - RSS before) / streams = server memory per stalled stream.
    python benchmarks/stall.py idle --port P --server-pid PID [--sessions 1000 --seconds 10]
        Opens the sessions, completes one hello request on each, then sits idle and
        measures the server's CPU time over `seconds`: % of one core.

Both print ``RESULT {json}``. The server pid is read through /proc (benchmarks/proc.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from proc import cpu_seconds, hwm_kib, rss_kib

from spdyasgi.spdy import (
    Connection,
    ConnectionConfig,
    ConnectionTerminated,
    DataReceived,
    ResponseReceived,
    StreamReset,
)

WINDOW = 65536


class Session(asyncio.Protocol):
    """One client session: feeds the engine, writes its output, counts events."""

    def __init__(self, session_window: int) -> None:
        self.conn = Connection(ConnectionConfig(
            client_side=True, initial_window_size=WINDOW,
            session_window_size=max(session_window, WINDOW), max_concurrent_streams=100,
        ))
        self.transport: asyncio.Transport | None = None
        self.replies = 0
        self.finished = 0
        self.resets = 0
        self.data = 0
        self.last_rx = time.monotonic()
        self.terminated: str | None = None
        self.ack = False  # acknowledge DATA (idle mode's hello); never in stall mode

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.conn.initiate_connection()
        self.flush()

    def flush(self) -> None:
        if self.transport is not None and self.conn.has_output:
            self.transport.write(self.conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        self.last_rx = time.monotonic()
        for event in self.conn.receive_data(data):
            if isinstance(event, ResponseReceived):
                self.replies += 1
                if event.end_stream:
                    self.finished += 1
            elif isinstance(event, DataReceived):
                self.data += len(event.data)
                if self.ack:
                    self.conn.acknowledge_received_data(event.stream_id, len(event.data))
                if event.end_stream:
                    self.finished += 1
            elif isinstance(event, StreamReset):
                self.resets += 1
            elif isinstance(event, ConnectionTerminated):
                self.terminated = repr(event)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.terminated = self.terminated or f"connection lost: {exc!r}"

    def request(self, path: str, authority: str) -> None:
        self.conn.send_request([
            (b":method", b"GET"), (b":path", path.encode()), (b":version", b"HTTP/1.1"),
            (b":host", authority.encode()), (b":scheme", b"http"),
        ], end_stream=True)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def _open(args: argparse.Namespace, session_window: int) -> list[Session]:
    loop = asyncio.get_running_loop()
    sessions: list[Session] = []
    for _ in range(args.sessions):
        _, proto = await loop.create_connection(lambda: Session(session_window), args.host,
                                                args.port)
        sessions.append(proto)  # type: ignore[arg-type]
    return sessions


async def _settle(sessions: list[Session], done: object, timeout: float,
                  quiet: float = 1.0) -> bool:
    """Wait until `done()` holds and no session received anything for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        now = time.monotonic()
        if done() and all(now - s.last_rx >= quiet for s in sessions):  # type: ignore[operator]
            return True
    return False


async def stall(args: argparse.Namespace) -> dict[str, object]:
    pid = args.server_pid
    authority = f"{args.host}:{args.port}"
    streams = args.streams
    rss0 = rss_kib(pid)
    session_window = args.session_window or streams * WINDOW
    sessions = await _open(args, session_window)
    await _settle(sessions, lambda: True, 10.0, quiet=0.5)
    rss1 = rss_kib(pid)
    t0 = time.perf_counter()
    cpu0 = cpu_seconds(pid)
    for s in sessions:
        for _ in range(streams):
            s.request(args.path, authority)
        s.flush()
    total = len(sessions) * streams
    ok = await _settle(sessions, lambda: sum(s.replies for s in sessions) >= total,
                       args.timeout, quiet=1.5)
    await asyncio.sleep(1.0)
    rss2 = rss_kib(pid)
    result = {
        "mode": "stall", "sessions": len(sessions), "streams_per_session": streams,
        "streams": total, "settled": ok, "replies": sum(s.replies for s in sessions),
        "finished": sum(s.finished for s in sessions),
        "resets": sum(s.resets for s in sessions),
        "terminated": sum(1 for s in sessions if s.terminated),
        "data_bytes": sum(s.data for s in sessions),
        "session_window": session_window, "stream_window": WINDOW,
        "rss_before_kib": rss0, "rss_sessions_kib": rss1, "rss_stalled_kib": rss2,
        "kib_per_session": round((rss1 - rss0) / max(len(sessions), 1), 2),
        "kib_per_stream": round((rss2 - rss1) / max(total, 1), 3),
        "server_peak_rss_kib": hwm_kib(pid),
        "server_cpu_s": round(cpu_seconds(pid) - cpu0, 3),
        "setup_s": round(time.perf_counter() - t0, 3),
    }
    for s in sessions:
        s.close()
    await asyncio.sleep(0.2)
    return result


async def idle(args: argparse.Namespace) -> dict[str, object]:
    pid = args.server_pid
    authority = f"{args.host}:{args.port}"
    rss0 = rss_kib(pid)
    sessions = await _open(args, WINDOW)
    for s in sessions:
        s.ack = True
        s.request("/", authority)
        s.flush()
    total = len(sessions)
    ok = await _settle(sessions, lambda: sum(s.finished for s in sessions) >= total,
                       args.timeout, quiet=1.0)
    rss1 = rss_kib(pid)
    cpu0 = cpu_seconds(pid)
    t0 = time.perf_counter()
    await asyncio.sleep(args.seconds)
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds(pid) - cpu0
    alive = sum(1 for s in sessions if s.transport is not None and s.terminated is None)
    result = {
        "mode": "idle", "sessions": total, "alive_after": alive, "hello_done": ok,
        "finished": sum(s.finished for s in sessions), "seconds": round(elapsed, 3),
        "server_cpu_s": round(cpu, 3), "cpu_pct_of_core": round(100 * cpu / elapsed, 3),
        "rss_before_kib": rss0, "rss_idle_kib": rss1,
        "kib_per_session": round((rss1 - rss0) / max(total, 1), 2),
        "tick_s": 0.01,
    }
    for s in sessions:
        s.close()
    await asyncio.sleep(0.2)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["stall", "idle"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--sessions", type=int)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--session-window", type=int, default=0,
                        help="client session window (default: streams x 64 KiB, so every "
                             "stream receives its full 64 KiB stream window then stalls)")
    parser.add_argument("--path", default="/download?mib=100")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    if args.sessions is None:
        args.sessions = 100 if args.mode == "stall" else 1000
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    result = asyncio.run(stall(args) if args.mode == "stall" else idle(args))
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
