"""The media-pattern benchmark: Range probes cancelled after 64 KiB, plus steady players.

    python benchmarks/media.py                        # spdyasgi and node-spdy, ~1 min each
    python benchmarks/media.py --servers spdyasgi --duration 20
    python benchmarks/media.py --tls                  # both servers over TLS instead
    python benchmarks/media.py --window 65536 --rounds 2 --json /tmp/media-64k.json
    python benchmarks/media.py --quick --no-json      # a few seconds, a 16 MiB file

How VLC and QuickTime open a file over SPDY: they probe it with Range requests and cancel
most of them after the first bytes, then a few streams play at a bounded rate. Each
server serves the same real file (``--file-mib`` MiB of seeded random bytes, made once in
the temp dir) with ``Range: bytes=A-B`` / ``bytes=A-`` -> 206: spdyasgi runs
benchmarks/media_app.py (64 KiB ``os.pread`` chunks sent with ``more_body``), node-spdy
runs benchmarks/node_spdy_media.js (``fs.createReadStream`` piped into the stream). The
server runs on core 0 (``taskset -c 0``), the load (benchmarks/media_load.py, on the
spdyasgi client) on core 1 in its own process.

Reported per server: streams opened, server CPU (utime+stime from /proc, read right before
and after the load) per opened stream, MB/s of body delivered to the readers, p50/p99 time
to the first body byte of the probes, the players' achieved rate, sessions lost (must be
0) and body bytes checked against the file (a wrong byte is a failure). Table on stdout,
JSON in docs/benchmarks/media.json (``--json``). Exit status 1 if any server failed a
check.
"""

# ruff: noqa: RUF001  (report strings use the multiplication sign on purpose)
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from media_load import LOAD_OPTIONS, add_load_options  # noqa: E402
from proc import cpu_seconds  # noqa: E402
from run import (  # noqa: E402
    CLIENT_CORE,
    MIB,
    PY,
    ROOT,
    _tool,
    free_port,
    machine,
    make_files,
)
from run import serving as run_serving  # noqa: E402

SERVERS = ("spdyasgi", "node-spdy")
DEFAULT_JSON = ROOT / "docs" / "benchmarks" / "media.json"


def media_file(mib: int, seed: int) -> Path:
    """`mib` MiB of seeded random bytes in the temp dir, made once and reused."""
    path = Path(tempfile.gettempdir()) / f"spdyasgi-media-{mib}m-seed{seed}.bin"
    if path.exists() and path.stat().st_size == mib * MIB:
        return path
    rng = random.Random(seed)
    part = path.with_suffix(f".part{os.getpid()}")
    with open(part, "wb") as handle:
        for _ in range(mib):
            handle.write(rng.randbytes(MIB))
    part.replace(path)  # atomic: a half-written file is never taken for a finished one
    return path


def server_command(name: str, port: int, path: Path, tls: bool, tmp: Path) -> list[str]:
    cert, key = str(tmp / "cert.pem"), str(tmp / "key.pem")
    if name == "spdyasgi":
        cmd = [_tool("spdyasgi"), "media_app:app", "--app-dir", str(HERE), "--host",
               "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
               "--loop", "uvloop"]
        return cmd + (["--ssl-certfile", cert, "--ssl-keyfile", key] if tls else [])
    if name == "node-spdy":
        opts: dict[str, Any] = {"host": "127.0.0.1", "port": port, "file": str(path)}
        if tls:
            opts.update(tls=True, key=key, cert=cert)
        return ["node", str(HERE / "node_spdy_media.js"), json.dumps(opts)]
    raise ValueError(name)


@contextlib.contextmanager
def serving(name: str, path: Path, tls: bool,
            tmp: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    port = free_port()
    log = tmp / f"{name}-{port}.log"
    env = {**os.environ, "SPDYASGI_MEDIA_FILE": str(path)}
    with run_serving(server_command(name, port, path, tls, tmp), port, log, env) as proc:
        yield proc, port, log


def load_args(args: argparse.Namespace) -> list[str]:
    """This run's load options, as media_load.py's command line."""
    return [part for name in LOAD_OPTIONS
            for part in ("--" + name.replace("_", "-"), str(getattr(args, name)))]


def measure(name: str, args: argparse.Namespace, path: Path, tmp: Path) -> dict[str, Any]:
    """One server under the load: its CPU over the load and the load's RESULT."""
    row: dict[str, Any] = {"server": name, "transport": "tls" if args.tls else "cleartext"}
    check_file = Path(args.check_file) if args.check_file else path
    with serving(name, path, args.tls, tmp) as (proc, port, log):
        url = f"{'https' if args.tls else 'http'}://127.0.0.1:{port}/media"
        cmd = ["taskset", "-c", CLIENT_CORE, PY, str(HERE / "media_load.py"), "--url", url,
               "--file", str(check_file), *load_args(args)]
        before = cpu_seconds(proc.pid)
        done = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=args.duration + 120, cwd=str(ROOT))
        server_cpu = cpu_seconds(proc.pid) - before
        row["server_alive"] = proc.poll() is None
        lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
        if not lines:
            row["error"] = f"load exited {done.returncode} without RESULT: {done.stderr[-2000:]}"
            return row
        row.update(json.loads(lines[-1].removeprefix("RESULT ")))
        row["load_exit"] = done.returncode
        row["server_cpu_s"] = round(server_cpu, 3)
        row["server_core_pct"] = round(100 * server_cpu / row["wall_s"], 1)
        row["load_core_pct"] = round(100 * row["client_cpu_s"] / row["wall_s"], 1)
        streams = row["streams"]
        row["server_cpu_us_per_stream"] = round(server_cpu / streams * 1e6, 1) if streams else None
        log_lines = log.read_text(errors="replace").splitlines()
        tail = "\n".join(x for x in log_lines if not x.startswith('{"port"'))[-2000:].strip()
        if tail:
            row["server_log_tail"] = tail
    row["ok"] = (row["server_alive"] and row["sessions_lost"] == 0 and row["bytes_wrong"] == 0
                 and row["bad_replies"] == 0 and not row["stream_errors"]
                 and row["bytes_verified"] > 0)
    return row


def _cell(value: Any, spec: str = "{}") -> str:
    return "–" if value is None else spec.format(value)


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| server | streams opened | server CPU µs/stream | server core % | MB/s | "
            "wire MB/s | TTFB p50 ms | TTFB p99 ms | player MB/s (median, min; target) | "
            "sessions lost | bytes verified | wrong bytes | stream errors | load core % |")
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['server']} | failed: {r['error'][:200]} |" + " |" * 12)
            continue
        player = (f"{_cell(r['player_rate_mb_s_median'], '{:.2f}')}, "
                  f"{_cell(r['player_rate_mb_s_min'], '{:.2f}')}; "
                  f"{r['player_rate_target_mb_s']:.2f}")
        errors = ", ".join(f"{k} {v}" for k, v in r["stream_errors"].items()) or "0"
        where = r["transport"] + (f", round {r['round']}" if "round" in r else "")
        lines.append(
            f"| {r['server']} ({where}) | {r['streams']:,} "
            f"| {_cell(r['server_cpu_us_per_stream'], '{:,.0f}')} | {r['server_core_pct']:.0f} "
            f"| {r['mb_per_s']:.1f} | {r['wire_mb_per_s']:.1f} "
            f"| {_cell(r['ttfb_ms_p50'], '{:.2f}')} "
            f"| {_cell(r['ttfb_ms_p99'], '{:.2f}')} | {player} | {r['sessions_lost']} "
            f"| {r['bytes_verified']:,} | {r['bytes_wrong']:,} | {errors} "
            f"| {r['load_core_pct']:.0f} |")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", default=",".join(SERVERS),
                   help="comma-separated, from: " + ", ".join(SERVERS))
    p.add_argument("--tls", action="store_true", help="TLS (ALPN spdy/3.1) instead of cleartext")
    p.add_argument("--file-mib", type=int, default=256, help="size of the served file")
    add_load_options(p, duration=45.0)  # per server
    p.add_argument("--rounds", type=int, default=1,
                   help="measure every server this many times (order reversed every round)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 16 MiB file, 2 sessions x 5 probes + 1 player, 3 s")
    p.add_argument("--json", default=str(DEFAULT_JSON), help="where to write the results")
    p.add_argument("--no-json", action="store_true")
    p.add_argument("--check-file", help=argparse.SUPPRESS)  # tests: verify against another file
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.quick:
        args.file_mib, args.sessions, args.probes, args.players = 16, 2, 5, 1
        args.duration, args.rate = 3.0, 1e6
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    unknown = set(names) - set(SERVERS)
    if unknown:
        raise SystemExit(f"unknown server(s): {', '.join(sorted(unknown))}")
    path = media_file(args.file_mib, args.seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="spdyasgi-media-") as tmp_name:
        tmp = Path(tmp_name)
        if args.tls:
            make_files(tmp, [])
        for round_ in range(1, args.rounds + 1):
            for name in names if round_ % 2 else names[::-1]:  # ABBA: drift hits both
                print(f"round {round_}, {name}: {args.duration:.0f} s of load...",
                      file=sys.stderr, flush=True)
                rows.append({"round": round_, **measure(name, args, path, tmp)})
    print(table(rows))
    if not args.no_json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        meta = {"command": "python benchmarks/media.py " + shlex.join(argv or sys.argv[1:]),
                "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "machine": machine(), "file_mib": args.file_mib,
                "params": {k: getattr(args, k) for k in (
                    "sessions", "probes", "probe_bytes", "players", "rate", "gap", "duration",
                    "seed", "tls", "window", "rounds")}}
        out.write_text(json.dumps({"meta": meta, "results": rows}, indent=1) + "\n")
    return 0 if all(r.get("ok") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
