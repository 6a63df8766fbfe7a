"""Benchmark harness: spdyasgi vs uvicorn, hypercorn, node-spdy and a raw socket (run by hand).

    python benchmarks/run.py                      # full run (3 rounds), writes docs/benchmarks.md
    python benchmarks/run.py --quick              # short smoke run (1 round, small sizes)
    python benchmarks/run.py --only spdyasgi/hello-10x10 --only uvicorn/hello-10x10
    python benchmarks/run.py --rounds 5 --no-probes --no-profile --no-doc
    python benchmarks/run.py --only 'spdyasgi/hello-10x10' --duel-pairs 8 --no-doc

Every server runs pinned to core 0 (``taskset -c 0``), its load generator on core 1. A fresh
server is started for every (round, server, workload), so peak RSS (VmHWM) belongs to that
workload. Server CPU time is utime+stime of the server's process tree from /proc, read right
before and right after the measured load (after a warm-up run). Workloads run one after
another with every server back to back (order reversed on even rounds), so a table compares
servers measured minutes apart at most. The hello-10x10 target is measured once more after
the rounds in back-to-back spdyasgi/uvicorn pairs (``--duel-pairs``, ABBA order): the
ratio within a pair is what drift disturbs least.

Load generators: ``spdyasgi-bench`` (SPDY/3.1, its RESULT line), ``h2load --h1`` (HTTP/1.1),
``h2load`` (HTTP/2, h2c prior knowledge or TLS+ALPN), ``raw_socket.py recv`` (raw bytes);
``hello-1x1-seqclient`` times spdyasgi and uvicorn with one C client (``latency_1x1.py``).
p50/p99 come from the generators (h2load: ``--log-file`` per-request times).

Results: ``docs/benchmarks/results.json`` (every run) and ``docs/benchmarks.md`` (tables,
targets, probes, profile; text between ``<!-- notes:begin -->`` and ``<!-- notes:end -->``
in an existing docs/benchmarks.md is kept).
"""

# ruff: noqa: RUF001  (report strings use the multiplication sign and en dash on purpose)
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fnmatch
import importlib.metadata
import itertools
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from proc import cpu_seconds, hwm_kib  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
ASSETS = ROOT / "docs" / "benchmarks"
PEERS = ROOT / "tests" / "peers"
PY = sys.executable
BIN = Path(PY).parent
SERVER_CORE, CLIENT_CORE = "0", "1"
MIB = 1 << 20


def _tool(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else (shutil.which(name) or name)


# ------------------------------------------------------------------------------ specs


@dataclass
class Server:
    name: str
    proto: str            # spdy | h1 | h2 | raw
    tls: bool
    label: str
    apps: tuple[str, ...] = ("raw", "starlette")

    def available(self) -> bool:
        if self.name.startswith("node"):
            peers = PEERS / "node_modules" / "spdy-transport"
            return bool(shutil.which("node")) and peers.is_dir()
        if self.proto in ("h1", "h2"):
            return bool(shutil.which("h2load"))
        return True


SERVERS = [
    Server("spdyasgi", "spdy", False, "spdyasgi, SPDY/3.1 cleartext (spdyasgi-bench)"),
    Server("spdyasgi-tls", "spdy", True, "spdyasgi, SPDY/3.1 over TLS (spdyasgi-bench --tls)"),
    Server("uvicorn", "h1", False, "uvicorn uvloop+httptools, HTTP/1.1 (h2load --h1)"),
    Server("hypercorn-h2c", "h2", False, "hypercorn uvloop, HTTP/2 h2c (h2load)"),
    Server("hypercorn-tls", "h2", True, "hypercorn uvloop, HTTP/2 over TLS (h2load)"),
    Server("node-spdy", "spdy", False, "node-spdy (spdy-transport), SPDY/3.1 cleartext",
           ("raw",)),
    Server("node-spdy-tls", "spdy", True, "node-spdy (spdy-transport), SPDY/3.1 over TLS",
           ("raw",)),
    Server("node-spdy-buf", "spdy", False, "node-spdy (spdy-transport) writing a precomputed "
           "1 MiB Buffer (benchmarks/node_spdy_server.js), cleartext", ("raw",)),
    Server("node-spdy-buf-tls", "spdy", True, "node-spdy (spdy-transport) writing a "
           "precomputed 1 MiB Buffer (benchmarks/node_spdy_server.js), TLS", ("raw",)),
    Server("raw-socket", "raw", False, "raw asyncio socket sender (ceiling), cleartext",
           ("raw",)),
    Server("raw-socket-tls", "raw", True, "raw asyncio socket sender (ceiling), TLS",
           ("raw",)),
]


@dataclass
class Workload:
    name: str
    app: str              # raw | starlette
    path: str
    requests: int
    sessions: int
    streams: int
    kind: str = "hello"   # hello | download | upload | slow | seq (latency_1x1's C client)
    warmup: int = 0
    h1_sessions: int | None = None   # HTTP/1.1 connections (default sessions*streams)
    h1_streams: int = 1              # >1 = pipelining
    mib: int = 0
    window: tuple[str, str] = ("30", "30")  # -w / -W bits for spdyasgi-bench and h2load
    only: tuple[str, ...] = ()              # protocols the workload runs on (default all)


def workloads(quick: bool) -> list[Workload]:
    hello_n = 4000 if quick else 60000
    one_n = 1000 if quick else 5000
    seq_n = 2000 if quick else 20000
    dl = 20 if quick else 100
    up = 10 if quick else 50
    slow_n = 200 if quick else 1000
    return [
        Workload("hello-10x10", "raw", "/", hello_n, 10, 10, warmup=hello_n // 10),
        Workload("hello-10x10-pipelined", "raw", "/", hello_n, 10, 10, warmup=hello_n // 10,
                 h1_sessions=10, h1_streams=10),
        Workload("hello-1x1", "raw", "/", one_n, 1, 1, warmup=one_n // 10),
        # Issue 18's 1x1 targets: both servers behind one C client (latency_1x1.py).
        Workload("hello-1x1-seqclient", "raw", "/", seq_n, 1, 1, kind="seq",
                 warmup=seq_n // 10),
        Workload("starlette-10x10", "starlette", "/", hello_n, 10, 10, warmup=hello_n // 10),
        Workload("starlette-1x1", "starlette", "/", one_n, 1, 1, warmup=one_n // 10),
        # Transfers are warmed up by one identical run first: a fresh process's first
        # 100 MiB (page faults, cold code) is not what a long-running server does.
        Workload("download-1", "raw", f"/download?mib={dl}", 1, 1, 1, kind="download", mib=dl,
                 warmup=1),
        Workload("download-8", "raw", f"/download?mib={dl}", 8, 1, 8, kind="download", mib=dl,
                 warmup=8),
        Workload("download-8-64k", "raw", f"/download?mib={dl}", 8, 1, 8, kind="download",
                 mib=dl, window=("16", "20"), only=("spdy", "h2"), warmup=8),
        Workload("upload", "raw", "/upload", 1, 1, 1, kind="upload", mib=up, warmup=1),
        Workload("slow-1000", "raw", "/slow?n=6&ms=500", slow_n, 10, slow_n // 10,
                 kind="slow"),
    ]


def supports(server: Server, wl: Workload) -> str | None:
    """None when the pair runs, else why it is skipped."""
    if wl.app not in server.apps:
        return "no such app"
    if wl.kind == "seq" and server.name not in ("spdyasgi", "uvicorn"):
        return "same-client 1×1: spdyasgi and uvicorn (cleartext) only"
    if wl.only and server.proto not in wl.only:
        return "multiplexed protocols only"
    if wl.name == "hello-10x10-pipelined" and server.proto != "h1":
        return "HTTP/1.1 only"
    if server.proto == "raw" and wl.kind != "download":
        return "streaming ceiling only"
    if server.name.startswith("node-spdy-buf") and wl.kind != "download":
        return "download comparison only"
    if server.name.startswith("node") and wl.kind == "slow":
        return "tests/peers/server.js has no slow route"
    return None


def node_path(wl: Workload) -> str:
    if wl.kind == "download":
        return f"/bytes?n={wl.mib * MIB}&seed=1"
    if wl.kind == "upload":
        return "/upload"
    return "/hello"


# ------------------------------------------------------------------------------ servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            try:
                sock.connect(("127.0.0.1", port))
                return
            except OSError:
                time.sleep(0.1)
    raise RuntimeError(f"server not listening on {port} after {timeout}s")


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


def server_command(server: Server, wl: Workload, port: int, tmp: Path) -> list[str]:
    cert, key = str(tmp / "cert.pem"), str(tmp / "key.pem")
    app = "apps:raw" if wl.app == "raw" else "apps:starlette_app"
    if server.name.startswith("spdyasgi"):
        cmd = [_tool("spdyasgi"), app, "--app-dir", str(HERE), "--host", "127.0.0.1",
               "--port", str(port), "--no-access-log", "--log-level", "warning",
               "--loop", "uvloop"]
        if server.tls:
            cmd += ["--ssl-certfile", cert, "--ssl-keyfile", key]
        return cmd
    if server.name == "uvicorn":
        return [_tool("uvicorn"), app, "--app-dir", str(HERE), "--host", "127.0.0.1",
                "--port", str(port), "--loop", "uvloop", "--http", "httptools",
                "--no-access-log", "--log-level", "warning"]
    if server.name.startswith("hypercorn"):
        conf = tmp / f"hypercorn-{port}.toml"
        lines = [f'bind = ["127.0.0.1:{port}"]', 'worker_class = "uvloop"',
                 "keep_alive_max_requests = 1000000000", 'loglevel = "WARNING"',
                 "workers = 1", "backlog = 2048"]
        if server.tls:
            lines += [f'certfile = "{cert}"', f'keyfile = "{key}"']
        conf.write_text("\n".join(lines) + "\n")
        return [_tool("hypercorn"), "--config", str(conf), app]
    if server.name.startswith("node"):
        opts: dict[str, Any] = {"host": "127.0.0.1", "port": port}
        if server.tls:
            opts.update(tls=True, key=key, cert=cert)
        script = (HERE / "node_spdy_server.js" if server.name.startswith("node-spdy-buf")
                  else PEERS / "server.js")
        return ["node", str(script), json.dumps(opts)]
    if server.name.startswith("raw-socket"):
        cmd = [PY, str(HERE / "raw_socket.py"), "send", "--port", str(port),
               "--mib", str(wl.mib), "--loop", "uvloop"]
        if server.tls:
            cmd += ["--certfile", cert, "--keyfile", key]
        return cmd
    raise ValueError(server.name)


@contextlib.contextmanager
def serving(command: list[str], port: int, log: Path,
            env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server `command` pinned to the server core until `port` accepts; stop it on
    exit. Every benchmark script starts its servers through this."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(["taskset", "-c", SERVER_CORE, *command], cwd=str(HERE),
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.PIPE,
                                env=env, start_new_session=True)
    try:
        wait_port(port, proc)
        time.sleep(0.3)
        yield proc
    finally:
        stop(proc)


@contextlib.contextmanager
def run_server(server: Server, wl: Workload, tmp: Path) -> Iterator[Running]:
    port = free_port()
    log = tmp / f"{server.name}-{port}.log"
    with serving(server_command(server, wl, port, tmp), port, log) as proc:
        yield Running(proc, port, log)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            if proc.stdin:
                proc.stdin.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    # anything left in the group (workers) goes too
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


# ------------------------------------------------------------------------------ clients


def _url(server: Server, port: int, path: str) -> str:
    scheme = "https" if server.tls else "http"
    return f"{scheme}://127.0.0.1:{port}{path}"


def client_command(server: Server, wl: Workload, port: int, tmp: Path, requests: int,
                   log_file: Path) -> list[str]:
    peers_server = server.name.startswith("node") and not server.name.startswith("node-spdy-buf")
    path = node_path(wl) if peers_server else wl.path
    url = _url(server, port, path)
    upload = ["-d", str(tmp / f"upload-{wl.mib}.bin")] if wl.kind == "upload" else []
    if server.proto == "spdy":
        cmd = [_tool("spdyasgi-bench"), url, "-n", str(requests), "-c", str(wl.sessions),
               "-m", str(wl.streams), "-w", wl.window[0], "-W", wl.window[1],
               "-T", "30" if wl.kind == "download" else "120", *upload]
        if server.tls:
            cmd += ["--tls", "-k"]
        return cmd
    if server.proto == "h1":
        sessions = wl.h1_sessions or wl.sessions * wl.streams
        return ["h2load", "--h1", url, "-n", str(requests), "-c", str(sessions),
                "-m", str(wl.h1_streams), "-T", "120", "-N", "120",
                f"--log-file={log_file}", *upload]
    if server.proto == "h2":
        return ["h2load", url, "-n", str(requests), "-c", str(wl.sessions),
                "-m", str(wl.streams), "-w", wl.window[0], "-W", wl.window[1],
                "-T", "120", "-N", "30",
                f"--log-file={log_file}", *upload]
    if server.proto == "raw":
        cmd = [PY, str(HERE / "raw_socket.py"), "recv", "--port", str(port),
               "--connections", str(wl.requests), "--loop", "uvloop"]
        if server.tls:
            cmd.append("--tls")
        return cmd
    raise ValueError(server.proto)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _system_busy() -> float:
    """Busy CPU seconds of the whole machine (all cores) from /proc/stat."""
    with open("/proc/stat") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    index = min(len(values) - 1, max(0, round(q * len(values) + 0.5) - 1))
    return values[index]


def parse_h2load(out: str, log_file: Path) -> dict[str, Any]:
    res: dict[str, Any] = {}
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
    if m:
        res["elapsed_s"] = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed", out)
    if m:
        res["done"] = int(m.group(3))
        res["succeeded"] = int(m.group(4))
        res["failed"] = int(m.group(5))
    m = re.search(r"traffic: .*?, .*? headers .*?, [\d.]+\w* \((\d+)\) data", out)
    if m:
        res["body_bytes"] = int(m.group(1))
    lat = []
    with contextlib.suppress(OSError):
        for line in log_file.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 3:
                lat.append(int(parts[2]) / 1000.0)
    res["p50_ms"] = _pct(lat, 0.50)
    res["p99_ms"] = _pct(lat, 0.99)
    return res


def run_client(server: Server, wl: Workload, port: int, tmp: Path, requests: int,
               timeout: float) -> dict[str, Any]:
    log_file = tmp / "h2load.log"
    with contextlib.suppress(FileNotFoundError):
        log_file.unlink()
    cmd = ["taskset", "-c", CLIENT_CORE,
           *client_command(server, wl, port, tmp, requests, log_file)]
    cpu0 = _children_cpu()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc)  # type: ignore[arg-type]
        out, err = proc.communicate()
        return {"error": f"client timed out after {timeout}s"}
    client_cpu = _children_cpu() - cpu0
    text = out.decode("utf-8", "replace")
    res: dict[str, Any] = {"client_rc": proc.returncode, "client_cpu_s": client_cpu}
    if server.proto in ("spdy", "raw"):
        line = next((ln for ln in reversed(text.splitlines()) if ln.startswith("RESULT ")), None)
        if line is None:
            res["error"] = (f"no RESULT (rc={proc.returncode}): "
                            f"{err.decode('utf-8', 'replace')[-400:]}")
            return res
        data = json.loads(line[7:])
        if server.proto == "raw":
            res.update(elapsed_s=data["elapsed_s"], done=data["connections"],
                       succeeded=data["connections"], failed=0, body_bytes=data["bytes"],
                       p50_ms=data["elapsed_s"] * 1000, p99_ms=data["elapsed_s"] * 1000)
        else:
            res.update(elapsed_s=data["elapsed_s"], done=data["done"],
                       succeeded=data["status"]["2xx"], failed=data["failed"],
                       body_bytes=data["body_bytes"], p50_ms=data["latency_ms"]["p50"],
                       p99_ms=data["latency_ms"]["p99"],
                       bench_cpu_us_per_request=data["cpu_us_per_request"])
            if data.get("errors"):
                res["client_errors"] = data["errors"]
    else:
        res.update(parse_h2load(text, log_file))
        if "done" not in res:
            res["error"] = f"unparsable h2load output (rc={proc.returncode}): {text[-400:]}"
    return res


# ------------------------------------------------------------------------------ one run


def measure(server: Server, wl: Workload, tmp: Path) -> dict[str, Any]:
    row: dict[str, Any] = {"server": server.name, "workload": wl.name}
    if wl.kind == "seq":  # one fresh server, timed by seqclient.c: same client for both
        import latency_1x1

        return row | latency_1x1.run_row(server.name, wl.requests, wl.warmup, tmp)
    with run_server(server, wl, tmp) as running:
        pid = running.pid
        if wl.warmup:
            warm = run_client(server, wl, running.port, tmp, wl.warmup, 120)
            if "error" in warm:
                row["error"] = "warm-up: " + warm["error"]
                return row
        timeout = 300.0
        cpu0 = cpu_seconds(pid)
        busy0 = _system_busy()
        t0 = time.perf_counter()
        res = run_client(server, wl, running.port, tmp, wl.requests, timeout)
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(pid) - cpu0
        busy = _system_busy() - busy0
        row.update(res)
        row["server_cpu_s"] = cpu
        row["server_peak_rss_mib"] = hwm_kib(pid) / 1024
        row["wall_s"] = wall
        # CPU used by anything but this server and its load generator during the load
        row["foreign_cpu_s"] = max(0.0, busy - cpu - res.get("client_cpu_s", 0.0))
        if running.proc.poll() is not None:
            row["error"] = f"server died (rc={running.proc.returncode})"
    done = row.get("done") or 0
    if "error" not in row and done:
        elapsed = row["elapsed_s"] or 1e-9
        row["req_per_s"] = done / elapsed
        row["server_cpu_us_per_req"] = row["server_cpu_s"] / done * 1e6
        row["client_cpu_us_per_req"] = row["client_cpu_s"] / done * 1e6
        if wl.kind in ("download", "upload"):
            nbytes = row.get("body_bytes") or 0
            if wl.kind == "upload":
                nbytes = wl.mib * MIB * (row.get("succeeded") or 0)
            row["mb_per_s"] = nbytes / elapsed / 1e6
        if row.get("failed") or (row.get("succeeded", done) < wl.requests):
            row["warning"] = (f"{row.get('failed', 0)} failed, "
                              f"{row.get('succeeded')}/{wl.requests} succeeded")
    return row


def duel(tmp: Path, wls: list[Workload], pairs: int) -> list[dict[str, Any]]:
    """The hello-10x10 target measured in back-to-back pairs: spdyasgi and uvicorn,
    alternately first (ABBA...), each pair seconds apart. On a VM whose speed drifts by
    tens of percent over minutes, the ratio within a pair is steadier than either median."""
    wl = next(w for w in wls if w.name == "hello-10x10")
    contenders = [s for s in SERVERS if s.name in ("spdyasgi", "uvicorn") and s.available()]
    if len(contenders) < 2:
        return []
    results = []
    for index in range(pairs):
        order = contenders if index % 2 == 0 else contenders[::-1]
        pair: dict[str, Any] = {"pair": index + 1, "first": order[0].name}
        for server in order:
            row = measure(server, wl, tmp)
            if "error" in row:
                pair["error"] = f"{server.name}: {row['error']}"
                break
            pair[server.name] = row["server_cpu_us_per_req"]
        else:
            pair["ratio"] = pair["spdyasgi"] / pair["uvicorn"]
        results.append(pair)
        print(f"[duel] {pair}", flush=True)
    return results


def probe(mode: str, tmp: Path, quick: bool) -> dict[str, Any]:
    server = SERVERS[0]
    wl = Workload("probe", "raw", "/", 0, 0, 0)
    with run_server(server, wl, tmp) as running:
        if mode == "stall":
            args = ["--sessions", "20" if quick else "100", "--streams", "100"]
        else:
            args = ["--sessions", "200" if quick else "1000",
                    "--seconds", "3" if quick else "10"]
        cmd = ["taskset", "-c", CLIENT_CORE, PY, str(HERE / "stall.py"), mode,
               "--port", str(running.port), "--server-pid", str(running.pid), *args]
        proc = subprocess.run(cmd, capture_output=True, timeout=300, check=False)
        text = proc.stdout.decode()
        line = next((ln for ln in reversed(text.splitlines()) if ln.startswith("RESULT ")), None)
        if line is None:
            return {"mode": mode, "error": proc.stderr.decode()[-600:]}
        return json.loads(line[7:])


# ------------------------------------------------------------------------------ profile


def profile_hello(tmp: Path, quick: bool, seconds: float) -> dict[str, Any]:
    """py-spy record (raw folded stacks) of spdyasgi under hello 10x10; self time per function."""
    pyspy = _tool("py-spy")
    if not shutil.which(pyspy) and not Path(pyspy).exists():
        return {"error": "py-spy not installed (pip install py-spy)"}
    server = SERVERS[0]
    wl = next(w for w in workloads(quick) if w.name == "hello-10x10")
    out = tmp / "pyspy.txt"
    with run_server(server, wl, tmp) as running:
        spy = subprocess.Popen(
            ["taskset", "-c", CLIENT_CORE, pyspy, "record", "--pid", str(running.pid),
             "--format", "raw", "--output", str(out), "--rate", "250",
             "--duration", str(int(seconds)), "--nonblocking"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            time.sleep(1.0)
            cmd = ["taskset", "-c", CLIENT_CORE, _tool("spdyasgi-bench"),
                   _url(server, running.port, "/"), "-D", str(seconds - 2), "-c", "10",
                   "-m", "10"]
            subprocess.run(cmd, capture_output=True, timeout=seconds + 60, check=False)
            spy.communicate(timeout=seconds + 30)
        finally:
            stop(spy)  # type: ignore[arg-type]
    if not out.exists():
        return {"error": "py-spy produced no output (ptrace not permitted?)"}
    selfs: dict[str, int] = {}
    total_samples = 0
    idle = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total_samples += n
        leaf = stack.split(";")[-1]
        leaf = re.sub(r"\s+\(/[^)]*?/(site-packages|lib/python3\.\d+|main)/", " (", leaf)
        leaf = re.sub(r":\d+\)$", ")", leaf)  # aggregate the lines of one function
        if "select (" in leaf or "poll (" in leaf or "Runner.run (" in leaf:
            idle += n
        selfs[leaf] = selfs.get(leaf, 0) + n
    ShareRow = tuple[str, int, float]
    top: list[ShareRow] = sorted(
        ((k, v, 100.0 * v / max(total_samples, 1)) for k, v in selfs.items()),
        key=lambda item: -item[1])[:15]
    (ASSETS / "pyspy-hello-10x10.txt").write_text(out.read_text())
    return {"samples": total_samples, "loop_samples": idle, "top": top}


# ------------------------------------------------------------------------------ report


FIGURES = [
    ("req_per_s", "req/s", "{:,.0f}"),
    ("server_cpu_us_per_req", "server CPU µs/req", "{:,.1f}"),
    ("p50_ms", "p50 ms", "{:,.2f}"),
    ("p99_ms", "p99 ms", "{:,.2f}"),
    ("mb_per_s", "MB/s", "{:,.0f}"),
    ("server_peak_rss_mib", "peak RSS MiB", "{:,.1f}"),
    ("client_cpu_us_per_req", "load-gen CPU µs/req", "{:,.1f}"),
]


def stats(values: list[float]) -> tuple[float, float, float] | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def fmt(st: tuple[float, float, float] | None, spec: str) -> str:
    if st is None:
        return "–"
    med, lo, hi = st
    return f"**{spec.format(med)}** ({spec.format(lo)}–{spec.format(hi)})"


def summarise(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault((row["server"], row["workload"]), []).append(row)
    out = {}
    for key, group in grouped.items():
        good = [r for r in group if "error" not in r]
        entry: dict[str, Any] = {"runs": len(group), "ok": len(good),
                                 "errors": [r["error"] for r in group if "error" in r],
                                 "warnings": [r["warning"] for r in group if "warning" in r]}
        for fig, _, _ in [*FIGURES, ("bench_cpu_us_per_request", "", ""),
                          ("foreign_cpu_s", "", ""), ("wall_s", "", "")]:
            entry[fig] = stats([r.get(fig) for r in good if r.get(fig) is not None])
        out[key] = entry
    return out


def machine() -> dict[str, str]:
    model = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    info = {"nproc": str(os.cpu_count()), "cpu": model,
            "python": platform.python_version(), "kernel": platform.release()}
    for mod in ("uvloop", "uvicorn", "hypercorn", "httptools", "starlette", "spdyasgi"):
        try:
            info[mod] = importlib.metadata.version(mod)
        except importlib.metadata.PackageNotFoundError:
            info[mod] = "not installed"
    with contextlib.suppress(Exception):
        info["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True,
                                      timeout=10).stdout.strip()
    with contextlib.suppress(Exception):
        info["h2load"] = subprocess.run(["h2load", "--version"], capture_output=True,
                                        text=True, timeout=10).stdout.split("\n")[0].strip()
    return info


def plot(summary: dict[tuple[str, str], dict[str, Any]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    panels = [
        (axes[0], "hello-10x10", "server_cpu_us_per_req",
         "server CPU per request, hello 10×10 (µs, lower is better)"),
        (axes[1], "download-1", "mb_per_s", "one 100 MiB download (MB/s, higher is better)"),
    ]
    for ax, wl, fig_key, title in panels:
        names, meds, los, his = [], [], [], []
        for server in SERVERS:
            st = summary.get((server.name, wl), {}).get(fig_key)
            if st is None:
                continue
            names.append(server.name)
            meds.append(st[0])
            los.append(st[0] - st[1])
            his.append(st[2] - st[0])
        ax.barh(names, meds, xerr=[los, his], color="#4477aa", capsize=3)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
        # Each label starts past its error bar's upper end (not at the bar's end, where
        # the error bar would strike through it), and the x-axis leaves room for the
        # longest label so none is clipped.
        ends = [value + hi for value, hi in zip(meds, his, strict=True)]
        right = max(ends, default=1.0) or 1.0
        pad = right * 0.015
        for i, (value, end) in enumerate(zip(meds, ends, strict=True)):
            ax.text(end + pad, i, f"{value:,.0f}", va="center", ha="left", fontsize=8)
        ax.set_xlim(0, right * 1.22)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _get(summary: dict[tuple[str, str], dict[str, Any]], server: str, wl: str,
         fig: str) -> float | None:
    st = summary.get((server, wl), {}).get(fig)
    return None if st is None else st[0]


def targets(summary: dict[tuple[str, str], dict[str, Any]],
            probes: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines = ["| target | measured (medians) | met? |", "|---|---|---|"]

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("yes" if ok else "**no**")

    def vs_uvicorn(label: str, wl: str, uvicorn_wl: str | None = None,
                   key: str = "server_cpu_us_per_req", within: float = 1.0,
                   unit: str = "µs", spec: str = ".1f") -> None:
        """A row "spdyasgi's figure <= `within` times uvicorn's" for one workload."""
        s = _get(summary, "spdyasgi", wl, key)
        u = _get(summary, "uvicorn", uvicorn_wl or wl, key)
        ok = None if s is None or u is None else s <= within * u
        lines.append(f"| {label} | spdyasgi {s and format(s, spec)} {unit} vs uvicorn "
                     f"{u and format(u, spec)} {unit} | {verdict(ok)} |")

    vs_uvicorn("hello 10×10: spdyasgi server CPU/req ≤ uvicorn's (100 connections)",
               "hello-10x10")
    pairs = [p for p in probes.get("duel", []) if "ratio" in p]
    if pairs:
        paired = stats([p["ratio"] for p in pairs])
        assert paired is not None
        lines.append(
            f"| … measured in {len(pairs)} back-to-back pairs (`duel`): spdyasgi ÷ uvicorn | "
            f"median ratio {paired[0]:.2f} ({paired[1]:.2f}–{paired[2]:.2f}); spdyasgi "
            f"{statistics.median(p['spdyasgi'] for p in pairs):.1f} µs vs uvicorn "
            f"{statistics.median(p['uvicorn'] for p in pairs):.1f} µs | "
            f"{verdict(paired[0] <= 1)} |")
    vs_uvicorn("… and ≤ uvicorn with 10 connections × 10 pipelined", "hello-10x10",
               "hello-10x10-pipelined")
    # Issue 18: Starlette, sequential requests, TLS (instructions: server_instructions.py).
    vs_uvicorn("starlette 10×10: spdyasgi server CPU/req ≤ uvicorn's", "starlette-10x10")
    # 1x1: both servers behind the same C client when measured (older results: each
    # server behind its own generator, labelled so).
    one = "hello-1x1-seqclient"
    how = "same C client, `hello-1x1-seqclient`"
    if ("spdyasgi", one) not in summary:
        one, how = "hello-1x1", "spdyasgi-bench vs h2load, each generator's own clock"
    vs_uvicorn(f"hello 1×1 (sequential): spdyasgi server CPU/req ≤ uvicorn's (keep-alive; "
               f"{how})", one)
    vs_uvicorn(f"hello 1×1: p50 within 20 % of uvicorn's ({how})", one, key="p50_ms",
               within=1.2, unit="ms", spec=".3f")
    t = _get(summary, "spdyasgi-tls", "hello-10x10", "server_cpu_us_per_req")
    c = _get(summary, "spdyasgi", "hello-10x10", "server_cpu_us_per_req")
    ok = None if t is None or c is None else t <= 1.15 * c
    ratio = f" (+{100 * (t / c - 1):.0f} %)" if t and c else ""
    lines.append(f"| TLS hello 10×10 within 15 % of cleartext CPU/req | "
                 f"{t and f'{t:.1f}'} vs {c and f'{c:.1f}'} µs{ratio} | {verdict(ok)} |")
    d = _get(summary, "spdyasgi", "download-1", "mb_per_s")
    r = _get(summary, "raw-socket", "download-1", "mb_per_s")
    ok = None if d is None or r is None else d >= 0.8 * r
    ratio = f" = {100 * d / r:.0f} %" if d and r else ""
    lines.append(f"| one 100 MiB stream, cleartext ≥ 80 % of the raw socket | "
                 f"{d and f'{d:,.0f}'} vs {r and f'{r:,.0f}'} MB/s{ratio} | {verdict(ok)} |")
    d = _get(summary, "spdyasgi-tls", "download-1", "mb_per_s")
    n = _get(summary, "node-spdy-tls", "download-1", "mb_per_s")
    rt = _get(summary, "raw-socket-tls", "download-1", "mb_per_s")
    ok = None if d is None or n is None else d >= 5 * n
    ratio = f" = {d / n:.1f}×" if d and n else ""
    lines.append(f"| one 100 MiB stream over TLS ≥ 5× node-spdy | "
                 f"{d and f'{d:,.0f}'} vs {n and f'{n:,.0f}'} MB/s{ratio} "
                 f"(raw TLS socket: {rt and f'{rt:,.0f}'} MB/s) | {verdict(ok)} |")
    nb = _get(summary, "node-spdy-buf-tls", "download-1", "mb_per_s")
    ok = None if d is None or nb is None else d >= 5 * nb
    ratio = f" = {d / nb:.1f}×" if d and nb else ""
    lines.append(f"| … against node-spdy writing a precomputed Buffer (no body generation) | "
                 f"{d and f'{d:,.0f}'} vs {nb and f'{nb:,.0f}'} MB/s{ratio} | {verdict(ok)} |")
    st = [p for p in probes.get("stall", []) if "error" not in p]
    if st:
        per = statistics.median(p["kib_per_stream"] for p in st)
        lines.append(f"| {st[0]['streams']:,} stalled streams on {st[0]['sessions']} sessions: "
                     f"< 8 KiB RSS each | {per:.2f} KiB/stream | {verdict(per < 8)} |")
    idle = [p for p in probes.get("idle", []) if "error" not in p]
    if idle:
        pct = statistics.median(p["cpu_pct_of_core"] for p in idle)
        lines.append(f"| {idle[0]['sessions']:,} idle sessions: < 1 % of a core | "
                     f"{pct:.2f} % over {idle[0]['seconds']:.0f} s | {verdict(pct < 1)} |")
    return lines


def write_doc(meta: dict[str, Any], rows: list[dict[str, Any]],
              probes: dict[str, list[dict[str, Any]]], profile: dict[str, Any] | None,
              wls: list[Workload]) -> None:
    ASSETS.mkdir(parents=True, exist_ok=True)
    summary = summarise(rows)
    has_plot = plot(summary, ASSETS / "benchmarks.png")
    notes = ""
    if DOC.exists():
        m = re.search(r"<!-- notes:begin -->.*?<!-- notes:end -->", DOC.read_text(), re.S)
        if m:
            notes = m.group(0)
    info = meta["machine"]
    out = ["# Benchmarks", "",
           "Generated by `benchmarks/run.py` (see its docstring); numbers are from one machine "
           "and one run — compare servers within the table, not with other machines.", "",
           "```", meta["command"], "```", "",
           f"- date: {meta['date']} (harness wall time {meta['wall_min']:.1f} min, "
           f"{meta['rounds']} round(s){', --quick' if meta['quick'] else ''})",
           f"- machine: {info['nproc']} cores, {info['cpu']}, Linux {info['kernel']}",
           f"- Python {info['python']}, uvloop {info['uvloop']}, uvicorn {info['uvicorn']}, "
           f"hypercorn {info['hypercorn']}, httptools {info['httptools']}, starlette "
           f"{info['starlette']}, spdyasgi {info['spdyasgi']}, node {info.get('node', '-')}, "
           f"{info.get('h2load', 'h2load ?')}",
           f"- server pinned to core {SERVER_CORE}, load generator to core {CLIENT_CORE} "
           "(`taskset`); a fresh server process for every round × server × workload; "
           "every Python server on uvloop.",
           f"- other work on the machine during the loads (CPU seconds used by neither the "
           f"server nor its load generator, summed over all runs): "
           f"{meta['foreign_cpu_s']:.1f} s of {meta['load_wall_s']:.0f} s of load.", ""]
    if notes:
        out += [notes, ""]
    out += ["## Targets (issues 6 and 18)", "", *targets(summary, probes), ""]
    if has_plot:
        out += ["![server CPU per request and single-stream MB/s](benchmarks/benchmarks.png)",
                ""]
    out += ["## Results", "",
            "Each cell: **median** (min–max) over the rounds. *Server CPU µs/req* = "
            "utime+stime of the server process tree (from /proc/PID/stat, 10 ms ticks) "
            "during the load ÷ requests. *Peak RSS* = VmHWM of the server at the end of the "
            "workload (fresh process per workload). *Load-gen CPU* = the generator's own "
            "CPU ÷ requests. Latency is request sent → last byte, from the generator.", ""]
    wl_desc = {
        "hello-10x10": "raw ASGI hello, 10 sessions × 10 concurrent streams (HTTP/1.1: 100 "
                       "connections, 1 request in flight each)",
        "hello-10x10-pipelined": "raw ASGI hello over HTTP/1.1: 10 connections × 10 "
                                 "pipelined requests (`h2load --h1 -c 10 -m 10`)",
        "hello-1x1": "raw ASGI hello, 1 session × 1 stream (sequential requests); each "
                     "server behind its own load generator (spdyasgi-bench, h2load)",
        "hello-1x1-seqclient": "raw ASGI hello, 1 × 1, both servers timed by the same C "
                               "client (`benchmarks/seqclient.c` via `latency_1x1.py`; "
                               "load-gen CPU = that client's): the figures of the 1×1 "
                               "targets",
        "starlette-10x10": "Starlette `PlainTextResponse` hello, 10 × 10",
        "starlette-1x1": "Starlette hello, 1 × 1",
        "download-1": "one download of {mib} MiB (app sends a precomputed 1 MiB chunk "
                      "{mib}×); node-spdy: `/bytes` (SHAKE128-generated body)",
        "download-8": "8 downloads of {mib} MiB at once: 1 session × 8 streams (HTTP/1.1 "
                      "and raw socket: 8 connections); client windows 2^30 (stream and "
                      "session, h2load's default)",
        "download-8-64k": "the same 8 × {mib} MiB on one session with 64 KiB stream windows "
                          "and a 1 MiB session window (`-w 16 -W 20`), so flow control "
                          "paces the server",
        "upload": "one {mib} MiB upload (POST, the app counts the bytes; node-spdy's "
                  "`/upload` also SHA-256s them)",
        "slow-1000": "{n} concurrent slow streams, 10 sessions × {m} (HTTP/1.1: {n} "
                     "connections); each response trickles 6 × 64 B over 3 s",
    }
    for wl in wls:
        present = [s for s in SERVERS if (s.name, wl.name) in summary]
        if not present:
            continue
        desc = wl_desc.get(wl.name, wl.name).format(mib=wl.mib, n=wl.requests,
                                                     m=wl.streams)
        figs = [f for f in FIGURES if any(summary[(s.name, wl.name)].get(f[0]) for s in present)]
        if wl.kind in ("download", "upload", "slow"):
            figs = [f for f in figs if f[0] not in ("req_per_s", "client_cpu_us_per_req")]
        if wl.kind == "slow":
            figs = [f for f in figs if f[0] != "mb_per_s"]
        out += [f"### {wl.name}", "", desc + f" — {wl.requests:,} requests per round.", "",
                "| server | " + " | ".join(f[1] for f in figs) + " |",
                "|---" * (len(figs) + 1) + "|"]
        for s in present:
            entry = summary[(s.name, wl.name)]
            cells = [fmt(entry.get(f[0]), f[2]) for f in figs]
            flag = ""
            if entry["errors"]:
                flag = f" ⚠ {len(entry['errors'])}/{entry['runs']} runs failed: " \
                       f"{entry['errors'][0][:80]}"
            elif entry["warnings"]:
                flag = f" ⚠ {entry['warnings'][0]}"
            out.append(f"| {s.name}{flag} | " + " | ".join(cells) + " |")
        out.append("")
    out += ["Servers:", ""]
    out += [f"- `{s.name}`: {s.label}" for s in SERVERS]
    out += ["", "## spdyasgi-bench's own cost", "",
            "CPU per request of the SPDY load generator itself (`cpu_us_per_request` of its "
            "RESULT line), against the server's, for the same runs — if the generator needed "
            "more CPU per request than the server, its core would be the bottleneck.", "",
            "| server / workload | spdyasgi-bench µs/req | server µs/req |", "|---|---|---|"]
    for (server, wl), entry in summary.items():
        if entry.get("bench_cpu_us_per_request") and wl.startswith(("hello", "starlette")):
            out.append(f"| {server} / {wl} | {fmt(entry['bench_cpu_us_per_request'], '{:,.1f}')}"
                       f" | {fmt(entry['server_cpu_us_per_req'], '{:,.1f}')} |")
    out += ["", "## Memory and idle probes (spdyasgi, cleartext)", "",
            "`benchmarks/stall.py`, a client on spdyasgi's sans-IO engine.", ""]
    st = [p for p in probes.get("stall", []) if "error" not in p]
    if st:
        p0 = st[0]
        out += [f"**Stalled streams** — {p0['sessions']} sessions × {p0['streams_per_session']} "
                f"streams of `GET /download?mib=100`; the client advertises a 64 KiB stream "
                f"window and a {p0['session_window'] // 1024} KiB session window and never "
                f"sends WINDOW_UPDATE, so every stream receives 64 KiB and then stalls. RSS "
                f"measured with the sessions open (before the streams) and 1 s after the "
                f"server went quiet:", "",
                "| round | streams | SYN_REPLYs | resets | RSS before → sessions → stalled "
                "(MiB) | KiB / session | **KiB / stalled stream** | server peak RSS MiB |",
                "|---|---|---|---|---|---|---|---|"]
        for i, p in enumerate(st, 1):
            out.append(f"| {i} | {p['streams']:,} | {p['replies']:,} | {p['resets']} | "
                       f"{p['rss_before_kib'] / 1024:.1f} → {p['rss_sessions_kib'] / 1024:.1f} "
                       f"→ {p['rss_stalled_kib'] / 1024:.1f} | {p['kib_per_session']:.1f} | "
                       f"**{p['kib_per_stream']:.2f}** | {p['server_peak_rss_kib'] / 1024:.1f} |")
        out.append("")
    idle = [p for p in probes.get("idle", []) if "error" not in p]
    if idle:
        p0 = idle[0]
        out += [f"**Idle sessions** — {p0['sessions']:,} sessions, one hello request each, "
                f"then nothing for {p0['seconds']:.0f} s (default settings: no server PINGs); "
                "server CPU over that window (10 ms tick resolution):", "",
                "| round | sessions alive after | server CPU s | **% of one core** | "
                "KiB / idle session |", "|---|---|---|---|---|"]
        for i, p in enumerate(idle, 1):
            out.append(f"| {i} | {p['alive_after']:,} | {p['server_cpu_s']:.2f} | "
                       f"**{p['cpu_pct_of_core']:.2f}** | {p['kib_per_session']:.1f} |")
        out.append("")
    pairs = probes.get("duel", [])
    if pairs:
        out += ["## hello 10×10 in back-to-back pairs (spdyasgi and uvicorn)", "",
                "After the rounds, the target's two servers alternately first, each pair "
                "seconds apart (`--duel-pairs`): server CPU µs per request.", "",
                "| pair | first | spdyasgi | uvicorn | ratio |", "|---|---|---|---|---|"]
        for p in pairs:
            if "error" in p:
                out.append(f"| {p['pair']} | {p['first']} | error: {p['error'][-120:]} | | |")
                continue
            out.append(f"| {p['pair']} | {p['first']} | {p['spdyasgi']:.1f} | "
                       f"{p['uvicorn']:.1f} | {p['ratio']:.2f} |")
        out.append("")
    bad = [p for kind in probes.values() for p in kind if "error" in p]
    if bad:
        out += [f"Probe errors: {len(bad)} (`{bad[0]['error'][-200:]}`)", ""]
    if profile:
        out += ["## Profile: spdyasgi, hello 10×10", ""]
        if "error" in profile:
            out += [f"(not available: {profile['error']})", ""]
        else:
            out += [f"`py-spy record --format raw --rate 250 --nonblocking` on the server "
                    f"while `spdyasgi-bench -c 10 -m 10` runs; {profile['samples']:,} samples, "
                    "self time per function (leaf frames, lines of a function summed; "
                    "`Runner.run` = time inside uvloop's C event loop, i.e. socket I/O and "
                    "callbacks below Python; raw stacks in "
                    "`docs/benchmarks/pyspy-hello-10x10.txt`):", "",
                    "| self % | samples | function (file) |", "|---|---|---|"]
            for name, count, pct in profile["top"]:
                out.append(f"| {pct:.1f} | {count:,} | `{name}` |")
            out.append("")
    DOC.write_text("\n".join(out).rstrip() + "\n")


# ------------------------------------------------------------------------------ main


def _reverse_within_workloads(
        plan: list[tuple[Server, Workload]]) -> list[tuple[Server, Workload]]:
    return [pair for _, group in itertools.groupby(plan, key=lambda pair: pair[1].name)
            for pair in reversed(list(group))]


def make_files(tmp: Path, wls: list[Workload]) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")],
                   check=True, capture_output=True)
    for wl in wls:
        if wl.kind == "upload":
            path = tmp / f"upload-{wl.mib}.bin"
            block = os.urandom(MIB)
            with open(path, "wb") as handle:
                for _ in range(wl.mib):
                    handle.write(block)


def selected(only: list[str], server: Server, wl: Workload) -> bool:
    if not only:
        return True
    key = f"{server.name}/{wl.name}"
    return any(fnmatch.fnmatch(key, pat) or fnmatch.fnmatch(key, pat + "*")
               or key.startswith(pat.rstrip("/") + "/") for pat in only)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="1 round (unless --rounds), small counts and sizes, short probes")
    parser.add_argument("--only", action="append", default=[], metavar="SERVER/WORKLOAD",
                        help="glob filter, repeatable: spdyasgi/hello-*, uvicorn, */download-1")
    parser.add_argument("--no-probes", action="store_true", help="skip stall/idle probes")
    parser.add_argument("--duel-pairs", type=int, default=None,
                        help="back-to-back spdyasgi/uvicorn hello-10x10 pairs after the rounds "
                             "(default 8, 2 with --quick; 0 skips)")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument("--profile-seconds", type=float, default=12.0)
    parser.add_argument("--no-doc", action="store_true",
                        help="only print and save JSON, do not write docs/benchmarks.md")
    parser.add_argument("--json", type=Path, default=ASSETS / "results.json")
    parser.add_argument("--from-json", type=Path, metavar="FILE",
                        help="do not measure: rewrite docs/benchmarks.md from a results file")
    args = parser.parse_args(argv)
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        meta = saved["meta"]
        fresh = machine()
        for key, value in meta["machine"].items():  # fill versions an older run missed
            if value == "?":
                meta["machine"][key] = fresh.get(key, value)
        write_doc(meta, saved["rows"], saved["probes"], saved.get("profile"),
                  workloads(meta["quick"]))
        print(f"wrote {DOC}")
        return
    if args.quick and "--rounds" not in " ".join(sys.argv):
        args.rounds = 1
    if not shutil.which("taskset") or (os.cpu_count() or 1) < 2:
        sys.exit("needs taskset and at least 2 cores")
    wls = workloads(args.quick)
    started = time.time()
    rows: list[dict[str, Any]] = []
    probes: dict[str, list[dict[str, Any]]] = {"stall": [], "idle": []}
    # Workload by workload, every server back to back: servers compared in one table
    # then see the same machine (a shared VM's speed drifts over minutes).
    plan = [(s, w) for w in wls for s in SERVERS
            if supports(s, w) is None and selected(args.only, s, w)]
    skipped = sorted({s.name for s in SERVERS if not s.available()})
    if skipped:
        print(f"unavailable, skipped: {', '.join(skipped)}", flush=True)
    plan = [(s, w) for s, w in plan if s.available()]
    do_probes = not args.no_probes and (not args.only or any("probe" in o for o in args.only))
    with tempfile.TemporaryDirectory(prefix="spdyasgi-bench-") as name:
        tmp = Path(name)
        make_files(tmp, wls)
        for rnd in range(1, args.rounds + 1):
            # Alternate the server order per round so that drift does not favour one.
            ordered = plan if rnd % 2 else _reverse_within_workloads(plan)
            for server, wl in ordered:
                t0 = time.perf_counter()
                try:
                    row = measure(server, wl, tmp)
                except Exception as exc:  # one broken pair must not end the run
                    row = {"server": server.name, "workload": wl.name, "error": repr(exc)}
                row["round"] = rnd
                rows.append(row)
                brief = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()
                         if k in ("req_per_s", "server_cpu_us_per_req", "mb_per_s", "p50_ms",
                                  "client_cpu_us_per_req",
                                  "p99_ms", "server_peak_rss_mib", "foreign_cpu_s", "error",
                                  "warning")}
                print(f"[round {rnd}] {server.name}/{wl.name} "
                      f"({time.perf_counter() - t0:.1f}s): {brief}", flush=True)
            if do_probes:
                for mode in ("stall", "idle"):
                    try:
                        result = probe(mode, tmp, args.quick)
                    except Exception as exc:
                        result = {"mode": mode, "error": repr(exc)}
                    probes[mode].append(result)
                    print(f"[round {rnd}] probe {mode}: {result}", flush=True)
        pairs = args.duel_pairs if args.duel_pairs is not None else (2 if args.quick else 8)
        if pairs and (not args.only or args.duel_pairs):
            probes["duel"] = duel(tmp, wls, pairs)
        profile = None
        if not args.no_profile and not args.only:
            ASSETS.mkdir(parents=True, exist_ok=True)
            try:
                profile = profile_hello(tmp, args.quick, args.profile_seconds)
            except Exception as exc:
                profile = {"error": repr(exc)}
            print(f"profile: {profile}", flush=True)
    wall = time.time() - started
    meta = {
        "command": "python " + " ".join(["benchmarks/run.py", *(argv or sys.argv[1:])]),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(), "rounds": args.rounds, "quick": args.quick,
        "wall_min": wall / 60,
        "foreign_cpu_s": sum(r.get("foreign_cpu_s", 0.0) for r in rows),
        "load_wall_s": sum(r.get("wall_s", 0.0) for r in rows),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"meta": meta, "rows": rows, "probes": probes,
                                     "profile": profile}, indent=1, default=str))
    if not args.no_doc:
        write_doc(meta, rows, probes, profile, wls)
        print(f"wrote {DOC}", flush=True)
    print(f"done in {wall / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
