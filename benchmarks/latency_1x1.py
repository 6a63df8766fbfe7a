"""Sequential requests (1 × 1) timed by one minimal client for every server.

    python benchmarks/latency_1x1.py                       # spdyasgi vs uvicorn, hello
    python benchmarks/latency_1x1.py --servers spdyasgi,spdyasgi-tls,uvicorn -n 20000

``run.py``'s hello-1x1 times SPDY with ``spdyasgi-bench`` (Python, ~100 µs of its own per
request) and HTTP/1.1 with h2load (C, ~17 µs): its latencies include each client's own
work, so they compare clients as much as servers. Here one blocking-socket client does
the same minimum for both: the requests are encoded before the clock starts (SPDY's
header compression is one stream, so they are encoded in order, once), then each one is
a ``send`` and ``recv`` calls until the response's last byte (DATA with FIN; the
content-length for HTTP/1.1). The server runs pinned to core 0 (same command as
``run.py``), this client on core 1. Reported: latency percentiles and the server's CPU
per request (utime + stime from /proc, 10 ms ticks: use ``-n`` ≥ 10,000).
"""

# ruff: noqa: RUF002  (the docstring uses the multiplication sign on purpose)
from __future__ import annotations

import argparse
import os
import socket
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from proc import cpu_seconds  # noqa: E402
from run import (  # noqa: E402
    CLIENT_CORE,
    SERVERS,
    make_files,
    run_server,
    workloads,
)

from spdyasgi.spdy import Connection, ConnectionConfig  # noqa: E402

HTTP_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: latency_1x1\r\n\r\n"


def spdy_requests(count: int) -> tuple[bytes, list[tuple[int, bytes]]]:
    """The session preface, then (stream id, SYN_STREAM bytes) per request, in order."""
    conn = Connection(ConnectionConfig(client_side=True, session_window_size=1 << 30))
    conn.initiate_connection()
    preface = conn.data_to_send()
    headers = [(b":method", b"GET"), (b":path", b"/"), (b":version", b"HTTP/1.1"),
               (b":host", b"127.0.0.1"), (b":scheme", b"http"),
               (b"user-agent", b"latency_1x1")]
    out = []
    for _ in range(count):
        stream_id = conn.send_request(headers, end_stream=True)
        out.append((stream_id, conn.data_to_send()))
        conn.streams.pop(stream_id, None)  # never answered here: keep the engine small
    return preface, out


def spdy_round(sock: socket.socket, stream_id: int, request: bytes, buf: bytearray) -> None:
    """Send one request, read until the frame with FIN for `stream_id` is complete."""
    sock.sendall(request)
    while True:
        while len(buf) >= 8:
            end = 8 + int.from_bytes(buf[5:8], "big")
            if len(buf) < end:
                break
            fin = buf[4] & 1
            if buf[0] & 0x80:  # control: SYN_REPLY (2) and HEADERS (8) carry a stream id
                kind = int.from_bytes(buf[2:4], "big")
                sid = int.from_bytes(buf[8:12], "big") & 0x7FFFFFFF if kind in (2, 8) else 0
            else:
                sid = int.from_bytes(buf[0:4], "big")
            del buf[:end]
            if fin and sid == stream_id:
                return
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("server closed")
        buf += data


def http_round(sock: socket.socket, buf: bytearray) -> None:
    sock.sendall(HTTP_REQUEST)
    while True:
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            head = bytes(buf[:head_end]).lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15:head.find(b"\r\n", at) if head.find(b"\r\n", at) >= 0
                              else len(head)]) if at >= 0 else 0
            end = head_end + 4 + length
            if len(buf) >= end:
                del buf[:end]
                return
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("server closed")
        buf += data


def measure(name: str, count: int, warmup: int, tmp: Path) -> dict[str, float]:
    server = next(s for s in SERVERS if s.name == name)
    wl = next(w for w in workloads(False) if w.name == "hello-1x1")
    with run_server(server, wl, tmp) as running:
        proc, port = running.proc, running.port
        raw = socket.create_connection(("127.0.0.1", port))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock: socket.socket = raw
        if server.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["spdy/3.1"])
            sock = context.wrap_socket(raw, server_hostname="localhost")
        buf = bytearray()
        total = warmup + count
        times: list[float] = []
        perf = time.perf_counter
        if server.proto == "spdy":
            preface, requests = spdy_requests(total)
            sock.sendall(preface)
            for i, (stream_id, request) in enumerate(requests):
                if i == warmup:
                    cpu0 = cpu_seconds(proc.pid)
                start = perf()
                spdy_round(sock, stream_id, request, buf)
                times.append(perf() - start)
        else:
            for i in range(total):
                if i == warmup:
                    cpu0 = cpu_seconds(proc.pid)
                start = perf()
                http_round(sock, buf)
                times.append(perf() - start)
        cpu = cpu_seconds(proc.pid) - cpu0
        sock.close()
    timed = sorted(times[warmup:])
    return {
        "p50_us": timed[len(timed) // 2] * 1e6,
        "p90_us": timed[int(len(timed) * 0.9)] * 1e6,
        "p99_us": timed[int(len(timed) * 0.99)] * 1e6,
        "mean_us": statistics.fmean(timed) * 1e6,
        "server_cpu_us_per_req": cpu / count * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="spdyasgi,uvicorn",
                        help="comma-separated: spdyasgi, spdyasgi-tls, uvicorn")
    parser.add_argument("-n", "--requests", type=int, default=20000)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds; the servers alternate order (ABBA) between rounds")
    args = parser.parse_args()
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    for name in names:
        if name not in ("spdyasgi", "spdyasgi-tls", "uvicorn"):
            sys.exit(f"--servers: {name!r} is not one of spdyasgi, spdyasgi-tls, uvicorn")
    os.sched_setaffinity(0, {int(CLIENT_CORE)})
    print(f"{'round':>5} {'server':14} {'p50 µs':>8} {'p90 µs':>8} {'p99 µs':>8} "
          f"{'mean µs':>8} {'server CPU µs/req':>18}")
    with tempfile.TemporaryDirectory(prefix="spdyasgi-lat-") as name:
        tmp = Path(name)
        make_files(tmp, [])
        for rnd in range(1, args.rounds + 1):
            order = names if rnd % 2 else list(reversed(names))
            for server in order:
                row = measure(server, args.requests, args.warmup, tmp)
                print(f"{rnd:>5} {server:14} {row['p50_us']:>8.1f} {row['p90_us']:>8.1f} "
                      f"{row['p99_us']:>8.1f} {row['mean_us']:>8.1f} "
                      f"{row['server_cpu_us_per_req']:>18.1f}", flush=True)


if __name__ == "__main__":
    main()
