"""Sequential requests (1 × 1) timed by one minimal client for every server.

    python benchmarks/latency_1x1.py                       # spdyasgi vs uvicorn, hello, C client
    python benchmarks/latency_1x1.py -n 3000 --warmup 300 --rounds 1       # a smoke run
    python benchmarks/latency_1x1.py --client python --servers spdyasgi,spdyasgi-tls,uvicorn

Why: ``run.py``'s hello-1x1 rows time SPDY with ``spdyasgi-bench`` (Python, ~100 µs of its
own CPU per request) and HTTP/1.1 with h2load (C, ~33 µs), both on the other core, so the
server's CPU and latency there depend on the client as much as on the server (uvicorn
costs 87 µs/request behind a Python client, 58 behind h2load). Issue 18's 1×1 targets
need both servers behind one client of equal, small cost; h2load no longer speaks SPDY.

How: ``--client c`` (default) is ``seqclient.c``, compiled here on first use with
``gcc -O2`` into ``~/.cache/spdyasgi/`` (keyed by the source's hash; no gcc: a clear
error, use ``--client python``). This script encodes every request beforehand into a
file (SPDY: the session preface and each SYN_STREAM, encoded in order by spdyasgi's
engine, since SPDY's header compression is one zlib stream; HTTP/1.1: the same request
bytes), the client connects (TCP_NODELAY), sends the preface, then per request makes one
write and reads until the response's end (the frame with FIN for that stream, control
or DATA; HTTP/1.1: head + Content-Length), timed with CLOCK_MONOTONIC. After the
warm-up it stops until the server's CPU time has been read from /proc, and again after
the last response: the server CPU per request covers the timed requests only (10 ms
ticks: use ``-n`` ≥ 10,000). The client's own CPU (wait4: utime + stime of its whole
run) is reported per request too, so readers can see that it is small and the same for
both protocols. Any error (connection closed, RST_STREAM, GOAWAY, malformed frame,
HTTP status, 10 s without bytes) ends the run with the client's one-line message.
``--client python`` is the same loop on a blocking Python socket (the only one with
TLS). The server runs pinned to core 0 (same command as ``run.py``), the client on
core 1, servers alternating order between rounds (ABBA). ``run.py`` runs the C client
as its ``hello-1x1-seqclient`` workload, whose figures the 1×1 targets use.
"""

# ruff: noqa: RUF002  (the docstring uses the multiplication sign on purpose)
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from apps import HELLO  # noqa: E402
from proc import cpu_seconds, hwm_kib  # noqa: E402
from run import (  # noqa: E402
    CLIENT_CORE,
    SERVERS,
    make_files,
    run_server,
    workloads,
)

from spdyasgi.spdy import Connection, ConnectionConfig  # noqa: E402

SEQCLIENT_SOURCE = HERE / "seqclient.c"


class NoCompiler(RuntimeError):
    """gcc is missing: the C client cannot be built."""


class SeqClientError(RuntimeError):
    """The C client stopped with an error (its one-line message)."""


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


def seqclient_binary() -> Path:
    """seqclient.c compiled with ``gcc -O2``, once per version of the source (cached)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise NoCompiler("gcc not found: the C client (benchmarks/seqclient.c) is compiled on "
                         "demand; install gcc, or use --client python")
    source = SEQCLIENT_SOURCE.read_bytes()
    name = f"seqclient-{hashlib.sha256(source).hexdigest()[:16]}"
    for cache in (Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "spdyasgi",
                  Path(tempfile.gettempdir()) / f"spdyasgi-{os.getuid()}"):
        binary = cache / name
        if binary.exists():
            return binary
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        partial = cache / f"{name}.{os.getpid()}.tmp"  # concurrent builds: last rename wins
        built = subprocess.run([gcc, "-O2", "-Wall", "-Wextra", "-o", str(partial),
                                str(SEQCLIENT_SOURCE)], capture_output=True, text=True,
                               check=False)
        if built.returncode != 0:
            raise RuntimeError(f"gcc failed on {SEQCLIENT_SOURCE}:\n{built.stderr[-2000:]}")
        os.replace(partial, binary)
        return binary
    raise RuntimeError("no writable cache directory for the compiled seqclient")


def write_requests(path: Path, proto: str, count: int) -> None:
    """seqclient's input: every request encoded in order (format in seqclient.c)."""
    if proto == "spdy":
        mode, (preface, requests) = 1, spdy_requests(count)
    else:
        mode, preface, requests = 2, b"", [(0, HTTP_REQUEST)] * count
    with open(path, "wb") as out:
        out.write(struct.pack("<III", mode, count, len(preface)) + preface)
        for stream_id, request in requests:
            out.write(struct.pack("<II", stream_id, len(request)) + request)


def run_seqclient(port: int, requests: Path, warmup: int, *, server_pid: int | None = None,
                  core: str | None = None, timeout_ms: int = 10_000,
                  read_max: int | None = None) -> dict[str, float]:
    """Run the C client on `requests` (see `write_requests`); its JSON result plus
    ``client_cpu_s`` (its own utime + stime, from wait4) and, given `server_pid`, the
    server's CPU seconds over the timed requests only (read while the client waits).

    Raises `SeqClientError` with the client's one-line message when it fails."""
    cmd = [str(seqclient_binary()), "-s", "-w", str(warmup), "-t", str(timeout_ms)]
    if read_max:
        cmd += ["-r", str(read_max)]
    if core is not None:
        cmd = ["taskset", "-c", core, *cmd]  # taskset execs: wait4 sees the client itself
    proc = subprocess.Popen([*cmd, str(port), str(requests)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin and proc.stdout and proc.stderr
    with open(requests, "rb") as handle:
        count = struct.unpack("<III", handle.read(12))[1]
    # Bounded even if a server trickled bytes forever (each read alone times out).
    watchdog = threading.Timer(120 + timeout_ms / 1000 * 3 + count * 0.002, proc.kill)
    watchdog.start()
    try:
        cpu0 = cpu1 = 0.0
        line = proc.stdout.readline()
        if line == b"warm\n":
            cpu0 = cpu_seconds(server_pid) if server_pid else 0.0
            proc.stdin.write(b"g")
            proc.stdin.flush()
            line = proc.stdout.readline()
            cpu1 = cpu_seconds(server_pid) if server_pid else 0.0
        proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        error = proc.stderr.read().decode("utf-8", "replace").strip()
    finally:
        watchdog.cancel()
        if proc.returncode is None:  # an exception above: leave no client behind
            proc.kill()
            proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            pipe.close()
    if proc.returncode != 0 or not line.startswith(b"{"):
        raise SeqClientError(error or f"seqclient exited with {proc.returncode}, no result")
    result: dict[str, float] = json.loads(line)
    result["client_cpu_s"] = usage.ru_utime + usage.ru_stime
    result["server_cpu_s"] = cpu1 - cpu0
    return result


def measure(name: str, count: int, warmup: int, tmp: Path,
            client: str = "c") -> dict[str, float]:
    """One fresh server `name` (run.py's command, hello app), `warmup` + `count` requests
    on one connection: latency percentiles (µs) and server and client CPU µs per request."""
    server = next(s for s in SERVERS if s.name == name)
    if client == "c" and server.tls:
        raise ValueError(f"{name}: the C client is cleartext only (use --client python)")
    wl = next(w for w in workloads(False) if w.name == "hello-1x1")
    if client == "c":
        requests = tmp / f"requests-{server.proto}-{count + warmup}.bin"
        if not requests.exists():
            write_requests(requests, server.proto, count + warmup)
    with run_server(server, wl, tmp) as running:
        if client == "c":
            res = run_seqclient(running.port, requests, warmup, server_pid=running.pid,
                                core=CLIENT_CORE)
            if res["body_bytes"] != len(HELLO) * count:
                raise RuntimeError(f"{name}: {res['body_bytes']} body bytes in {count} "
                                   f"responses, expected {len(HELLO)} each")
            client_us = res["client_cpu_s"] / (count + warmup) * 1e6  # whole run
        else:
            res = python_client(server.proto, server.tls, running.port, count, warmup,
                                running.pid)
            client_us = res["client_cpu_s"] / count * 1e6  # timed requests only
        peak_kib = hwm_kib(running.pid)
        if running.proc.poll() is not None:
            raise RuntimeError(f"{name} died during the run (rc={running.proc.returncode})")
    return {
        "p50_us": res["p50_us"], "p90_us": res["p90_us"], "p99_us": res["p99_us"],
        "mean_us": res["mean_us"],
        "server_cpu_us_per_req": res["server_cpu_s"] / count * 1e6,
        "client_cpu_us_per_req": client_us,
        "server_peak_rss_mib": peak_kib / 1024,
    }


def python_client(proto: str, tls: bool, port: int, count: int, warmup: int,
                  server_pid: int) -> dict[str, float]:
    """The same loop in Python (blocking socket, in this process): the reference the C
    client replaced, and the only one that speaks TLS."""
    raw = socket.create_connection(("127.0.0.1", port))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock: socket.socket = raw
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["spdy/3.1"])
        sock = context.wrap_socket(raw, server_hostname="localhost")
    buf = bytearray()
    times: list[float] = []
    perf = time.perf_counter
    cpu0 = own0 = 0.0
    if proto == "spdy":
        preface, requests = spdy_requests(warmup + count)
        sock.sendall(preface)
        for i, (stream_id, request) in enumerate(requests):
            if i == warmup:
                cpu0, own0 = cpu_seconds(server_pid), time.process_time()
            start = perf()
            spdy_round(sock, stream_id, request, buf)
            times.append(perf() - start)
    else:
        for i in range(warmup + count):
            if i == warmup:
                cpu0, own0 = cpu_seconds(server_pid), time.process_time()
            start = perf()
            http_round(sock, buf)
            times.append(perf() - start)
    cpu, own = cpu_seconds(server_pid) - cpu0, time.process_time() - own0
    sock.close()
    timed = sorted(times[warmup:])
    return {
        "p50_us": timed[len(timed) // 2] * 1e6,
        "p90_us": timed[int(len(timed) * 0.9)] * 1e6,
        "p99_us": timed[int(len(timed) * 0.99)] * 1e6,
        "mean_us": statistics.fmean(timed) * 1e6,
        "server_cpu_s": cpu,
        "client_cpu_s": own,
    }


def run_row(server: str, requests: int, warmup: int, tmp: Path) -> dict[str, Any]:
    """run.py's row for its same-client 1×1 workload (the figures issue 18's 1×1 targets
    use): `measure` with the C client, in run.py's units."""
    res = measure(server, requests, warmup, tmp, client="c")
    return {"done": requests, "succeeded": requests, "failed": 0,
            "p50_ms": res["p50_us"] / 1000, "p99_ms": res["p99_us"] / 1000,
            "req_per_s": 1e6 / res["mean_us"],
            "server_cpu_us_per_req": res["server_cpu_us_per_req"],
            "client_cpu_us_per_req": res["client_cpu_us_per_req"],
            "server_peak_rss_mib": res["server_peak_rss_mib"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="spdyasgi,uvicorn",
                        help="comma-separated: spdyasgi, spdyasgi-tls, uvicorn")
    parser.add_argument("--client", choices=("c", "python"), default="c",
                        help="c: seqclient.c (default, cleartext); python: blocking socket")
    parser.add_argument("-n", "--requests", type=int, default=20000)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds; the servers alternate order (ABBA) between rounds")
    args = parser.parse_args()
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    for name in names:
        if name not in ("spdyasgi", "spdyasgi-tls", "uvicorn"):
            sys.exit(f"--servers: {name!r} is not one of spdyasgi, spdyasgi-tls, uvicorn")
        if args.client == "c" and name.endswith("-tls"):
            sys.exit(f"--servers: {name} needs TLS; the C client is cleartext only "
                     "(use --client python)")
    if args.client == "c":
        try:
            seqclient_binary()
        except NoCompiler as exc:
            sys.exit(str(exc))
    os.sched_setaffinity(0, {int(CLIENT_CORE)})
    print(f"client: {args.client}, {args.requests:,} requests after {args.warmup:,} warm-up")
    print(f"{'round':>5} {'server':14} {'p50 µs':>8} {'p90 µs':>8} {'p99 µs':>8} "
          f"{'mean µs':>8} {'server CPU µs/req':>18} {'client CPU µs/req':>18}")
    with tempfile.TemporaryDirectory(prefix="spdyasgi-lat-") as name:
        tmp = Path(name)
        make_files(tmp, [])
        for rnd in range(1, args.rounds + 1):
            order = names if rnd % 2 else list(reversed(names))
            for server in order:
                try:
                    row = measure(server, args.requests, args.warmup, tmp, args.client)
                except SeqClientError as exc:
                    sys.exit(f"{server}: {exc}")
                print(f"{rnd:>5} {server:14} {row['p50_us']:>8.1f} {row['p90_us']:>8.1f} "
                      f"{row['p99_us']:>8.1f} {row['mean_us']:>8.1f} "
                      f"{row['server_cpu_us_per_req']:>18.1f} "
                      f"{row['client_cpu_us_per_req']:>18.1f}", flush=True)


if __name__ == "__main__":
    main()
