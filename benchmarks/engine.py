"""Micro-benchmarks of the sans-IO SPDY engine (run by hand: python benchmarks/engine.py).

Reports small-DATA-frame parse throughput and the cost of one request/response exchange
(SYN_STREAM with browser headers in, SYN_REPLY with 3 headers + data_to_send out).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spdyasgi.spdy import Connection, ConnectionConfig
from spdyasgi.spdy.headers import HeaderCompressor

BROWSER_HEADERS = [
    (b":method", b"GET"),
    (b":path", b"/static/app.js?v=3"),
    (b":version", b"HTTP/1.1"),
    (b":host", b"example.com"),
    (b":scheme", b"https"),
    (b"accept", b"*/*"),
    (b"accept-encoding", b"gzip, deflate, br"),
    (b"accept-language", b"en-US,en;q=0.9"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                    b"Chrome/51.0.2704.103 Safari/537.36"),
    (b"referer", b"https://example.com/index.html"),
    (b"cookie", b"session=0123456789abcdef; theme=dark"),
]
RESPONSE = [(b":status", b"200"), (b":version", b"HTTP/1.1"), (b"content-type", b"text/plain")]


def syn_stream(compressor: HeaderCompressor, stream_id: int) -> bytes:
    block = compressor.encode(BROWSER_HEADERS)
    payload = struct.pack("!LLBB", stream_id, 0, 0, 0) + block
    return struct.pack("!LL", 0x80030001, (0x01 << 24) | len(payload)) + payload


def data_frame(stream_id: int, data: bytes) -> bytes:
    return struct.pack("!LL", stream_id, len(data)) + data


def best_of(runs: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(runs))


def bench_data_frames(frames: int, size: int) -> float:
    """Seconds to parse `frames` DATA frames of `size` bytes fed in one batch."""
    window = frames * size + 1
    config = ConnectionConfig(client_side=False, initial_window_size=min(window, 2**31 - 1),
                              session_window_size=min(window, 2**31 - 1))
    conn = Connection(config)
    conn.initiate_connection()
    compressor = HeaderCompressor()
    conn.receive_data(_syn_no_fin(compressor, 1))
    conn.data_to_send()
    batch = data_frame(1, b"d" * size) * frames
    start = time.perf_counter()
    events = conn.receive_data(batch)
    elapsed = time.perf_counter() - start
    assert len(events) == frames, len(events)
    return elapsed


def _syn_no_fin(compressor: HeaderCompressor, stream_id: int) -> bytes:
    frame = bytearray(syn_stream(compressor, stream_id))
    frame[4] = 0  # clear FIN: a body follows
    return bytes(frame)


def bench_requests(requests: int) -> float:
    """Seconds for `requests` SYN_STREAM → send_response(+FIN) → data_to_send cycles."""
    conn = Connection(ConnectionConfig(client_side=False, max_concurrent_streams=1000))
    conn.initiate_connection()
    conn.data_to_send()
    compressor = HeaderCompressor()
    inputs = [syn_stream(compressor, 2 * i + 1) for i in range(requests)]
    receive, respond, flush = conn.receive_data, conn.send_response, conn.data_to_send
    start = time.perf_counter()
    for frame in inputs:
        (event,) = receive(frame)
        respond(event.stream_id, RESPONSE, end_stream=True)  # type: ignore[attr-defined]
        flush()
    return time.perf_counter() - start


def bench_request_with_body(requests: int) -> float:
    """As bench_requests, but the reply is SYN_REPLY + one 1 KiB DATA+FIN."""
    conn = Connection(ConnectionConfig(client_side=False, max_concurrent_streams=1000))
    conn.initiate_connection()
    conn.data_to_send()
    compressor = HeaderCompressor()
    inputs = [syn_stream(compressor, 2 * i + 1) for i in range(requests)]
    body = b"b" * 1024
    start = time.perf_counter()
    for frame in inputs:
        (event,) = conn.receive_data(frame)
        sid = event.stream_id  # type: ignore[attr-defined]
        conn.send_response(sid, RESPONSE)
        conn.send_data(sid, body, end_stream=True)
        conn.data_to_send()
        if sid % 64 == 1:  # the client's window updates, as a browser would send them
            conn.receive_data(struct.pack("!LLLL", 0x80030009, 8, 0, 1 << 20))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile the request loop")
    args = parser.parse_args()

    rows = []
    t = best_of(args.runs, lambda: bench_data_frames(args.frames, args.size))
    rows.append((f"DATA frames parsed ({args.size} B payload)", args.frames / t, "frames/s",
                 t / args.frames * 1e6))
    t = best_of(args.runs, lambda: bench_requests(args.requests))
    rows.append(("SYN_STREAM + SYN_REPLY(FIN) pairs", args.requests / t, "pairs/s",
                 t / args.requests * 1e6))
    t = best_of(args.runs, lambda: bench_request_with_body(args.requests))
    rows.append(("... + 1 KiB DATA+FIN reply", args.requests / t, "pairs/s",
                 t / args.requests * 1e6))

    print(f"Python {sys.version.split()[0]}  (best of {args.runs})")
    print(f"{'benchmark':<40} {'rate':>14} {'unit':<9} {'µs/op':>8}")
    print("-" * 74)
    for name, rate, unit, us in rows:
        print(f"{name:<40} {rate:>14,.0f} {unit:<9} {us:>8.2f}")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        bench_requests(args.requests)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
