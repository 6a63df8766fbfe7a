"""Instructions and syscalls per request of whole servers over real loopback sockets.

    python benchmarks/server_instructions.py                     # spdyasgi vs uvicorn, hello 10×10
    python benchmarks/server_instructions.py --workload starlette-10x10 --servers spdyasgi

Each server runs under ``valgrind --tool=callgrind`` (pinned to core 0, its load generator
on core 1, the same commands as ``run.py``) twice: once serving N1 requests of the
workload and once N2. The difference of the two instruction totals divided by N2 - N1 is
what one request costs the server in user space (its Python, the event loop, libc,
OpenSSL), repeatable to a fraction of a percent, where CPU time on a shared VM drifts by
tens of percent from one minute to the next. Startup and shutdown cancel out.

valgrind does not see the kernel, so the read and write system calls per request are
counted too, in a third run without valgrind (``syscr``/``syscw`` of /proc/PID/io during
the load; valgrind's own thread lock would add to them): that is the part an HTTP/1.1
server answering one request per connection read pays in the kernel instead.

``--keep DIR`` keeps each run's callgrind profile (``DIR/<server>-<workload>-<N>.out``) to
see where the instructions go: ``callgrind_annotate --inclusive=yes FILE | head -60``,
or the difference of the two runs with ``callgrind_annotate --diff`` (valgrind ≥ 3.21).
"""

# ruff: noqa: RUF001, RUF002  (report strings use the multiplication sign on purpose)
from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import (  # noqa: E402
    PY,
    SERVER_CORE,
    SERVERS,
    Server,
    Workload,
    free_port,
    make_files,
    run_client,
    server_command,
    wait_port,
    workloads,
)

PYTHON_SERVERS = ("spdyasgi", "spdyasgi-tls", "uvicorn")


def _io_calls(pid: int) -> tuple[int, int]:
    fields = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return int(fields["syscr"]), int(fields["syscw"])


def one_run(server: Server, wl: Workload, requests: int, tmp: Path,
            valgrind: bool, keep: Path | None = None) -> dict[str, Any]:
    """Serve `requests`: total instructions (under callgrind), syscalls during the load."""
    port = free_port()
    # The console script through the interpreter itself: valgrind then follows Python.
    command = [PY, *server_command(server, wl, port, tmp)]
    if valgrind:
        out_file = (keep / f"{server.name}-{wl.name}-{requests}.out" if keep is not None
                    else Path("/dev/null"))
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
                   *command]
    cmd = ["taskset", "-c", SERVER_CORE, *command]
    log = tmp / f"server-{server.name}-{requests}-{valgrind}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=str(HERE), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_port(port, proc, timeout=180)
        time.sleep(1.0)
        reads0, writes0 = _io_calls(proc.pid)
        result = run_client(server, wl, port, tmp, requests, 1800)
        reads1, writes1 = _io_calls(proc.pid)
        if "error" in result or result.get("succeeded", result.get("done")) != requests:
            raise RuntimeError(f"{server.name}: load failed: {result.get('error', result)}")
        proc.send_signal(signal.SIGINT)  # graceful: the interpreter exits, valgrind reports
        proc.wait(300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    counts = {"reads": reads1 - reads0, "writes": writes1 - writes0}
    if valgrind:
        found = re.search(r"Collected : (\d+)", log.read_text(errors="replace"))
        if found is None:
            raise RuntimeError(f"{server.name}: valgrind printed no total (see {log})")
        counts["instructions"] = int(found.group(1))
    return counts


def measure(server: Server, wl: Workload, small: int, large: int, tmp: Path,
            keep: Path | None = None) -> dict[str, Any]:
    first = one_run(server, wl, small, tmp, valgrind=True, keep=keep)
    second = one_run(server, wl, large, tmp, valgrind=True, keep=keep)
    native = one_run(server, wl, large, tmp, valgrind=False)
    return {
        "server": server.name,
        "workload": wl.name,
        "instructions_per_request":
            (second["instructions"] - first["instructions"]) / (large - small),
        "reads_per_request": native["reads"] / large,
        "writes_per_request": native["writes"] / large,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="spdyasgi,uvicorn",
                        help=f"comma-separated, from {', '.join(PYTHON_SERVERS)}")
    parser.add_argument("--workload", default="hello-10x10",
                        help="a request/response workload of run.py (hello-*, starlette-*)")
    parser.add_argument("--requests", default="2000,8000", help="N1,N2")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the callgrind profiles in DIR (for callgrind_annotate)")
    args = parser.parse_args()
    keep: Path | None = args.keep.resolve() if args.keep is not None else None
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    names = [name.strip() for name in args.servers.split(",") if name.strip()]
    unknown = [name for name in names if name not in PYTHON_SERVERS]
    if unknown:
        sys.exit(f"--servers: not a Python server of run.py: {', '.join(unknown)}")
    wl = next((w for w in workloads(False) if w.name == args.workload), None)
    if wl is None or wl.kind != "hello":
        sys.exit(f"--workload: {args.workload!r} is not a hello or starlette workload of run.py")
    small, large = (int(n) for n in args.requests.split(","))
    if not 0 < small < large:
        sys.exit("--requests: N1,N2 with 0 < N1 < N2")
    with tempfile.TemporaryDirectory(prefix="spdyasgi-instr-") as name:
        tmp = Path(name)
        make_files(tmp, [wl])
        print(f"{wl.name}: {wl.sessions} sessions × {wl.streams} streams (HTTP/1.1: "
              f"{wl.h1_sessions or wl.sessions * wl.streams} connections), app {wl.app}")
        print(f"{'server':14} {'instructions/request':>22} {'reads/request':>14} "
              f"{'writes/request':>15}")
        for server in (s for s in SERVERS if s.name in names):
            row = measure(server, wl, small, large, tmp, keep)
            print(f"{row['server']:14} {row['instructions_per_request']:>22,.0f} "
                  f"{row['reads_per_request']:>14.2f} {row['writes_per_request']:>15.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
