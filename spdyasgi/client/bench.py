"""`spdyasgi-bench`: an h2load-like load generator for SPDY/3.1 servers.

    spdyasgi-bench http://127.0.0.1:8000/ -n 50000 -c 8 -m 32 -p 2
    spdyasgi-bench https://127.0.0.1:8443/upload -k -D 10 -c 4 -m 16 -d body.bin

Model: `-c` sessions (TCP connections), each carrying up to `-m` concurrent streams; `-p`
worker processes share the sessions and requests (each process runs its own event loop,
uvloop when installed). Requests without a body run on callbacks alone (`SpdyClient.fire`):
each finished stream starts the next from the read path, with no task, coroutine or future
per request, the way h2load works; uploads run `-m` long-lived stream loops per session. One
header template is built per run and bodies are counted, never copied.

Request headers are compressed with zlib level 6 and the SPDY dictionary by default
(`--header-compression`), the way OkHttp, Netty, Firefox and node-spdy compress theirs:
back-references to earlier requests make a repeated request's header block a few bytes.
`--header-compression -1` sends Huffman-only blocks instead (what `spdyasgi-client` does, as
a CRIME defence), which cost a server ~15 k more instructions per request to inflate.

`-w`/`-W` set our stream / session receive windows: a value <= 30 is a power of two
(`-w 20` = 2^20 = 1 MiB; h2load uses 2^N-1, but SPDY needs at least 65536 here), anything
larger is a byte count.

Bodies (`-d FILE`): the file is mapped once per process and sent from the mapping by
`-c` x `-m` parallel stream loops, each sending its body while the response comes back
(full duplex), so a body of any size works and an echo does not deadlock.

Counting: *done* = succeeded + failed; *succeeded* = a complete response was received
(whatever its status; every status is classified in `status`, and `non_2xx` counts the
ones outside 2xx); *failed* = no complete response (reset, timeout, connection loss);
*timeouts* = the failed ones that hit `-T` (no byte moved on the stream for that long) or
the connect timeout. A stalled stream therefore shows up in the progress line and in
RESULT, and never hangs the run. Latency = request sent -> last body byte. CPU time is this
tool's own (self + worker processes, from getrusage) divided by requests done.

The last line is `RESULT {json}` for machines. Exit status: 0 when every request
succeeded, 1 when some failed, curl-style codes (7, 16, 35...) when no session connected.
"""

from __future__ import annotations

import asyncio
import json
import mmap
import multiprocessing
import os
import resource
import sys
import time
from array import array
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import click

from .benchreport import WorkerResult, format_summary, progress_line, summarise
from .connection import SpdyClient
from .errors import ReadTimeout, SpdyClientError, SpdyTimeoutError
from .response import StreamState

PROG = "spdyasgi-bench"


@dataclass
class BenchConfig:
    url: str
    requests: int
    duration: float | None
    sessions: int
    streams: int
    method: str
    headers: list[tuple[str, str]]
    body: bytes | None  # a body given in memory (tests), or
    body_path: str | None  # a file mapped by each worker
    window_size: int
    session_window_size: int | None
    tls: bool | None
    insecure: bool
    cafile: str | None
    protocols: tuple[str, ...]
    cleartext_version: str
    timeout: float | None
    connect_timeout: float | None
    loop: str
    header_compression: int = 6


class _Session:
    __slots__ = ("client", "dead", "inflight", "lock", "reconnecting")

    def __init__(self, client: SpdyClient):
        self.client = client
        self.lock = asyncio.Lock()
        self.dead = False
        self.inflight = 0  # streams started with `fire` and not yet done
        self.reconnecting = False


def _new_client(cfg: BenchConfig) -> SpdyClient:
    return SpdyClient(
        cfg.url,
        tls=cfg.tls,
        verify=not cfg.insecure,
        cafile=cfg.cafile,
        protocols=cfg.protocols,
        cleartext_version=cfg.cleartext_version,
        connect_timeout=cfg.connect_timeout,
        read_timeout=cfg.timeout,
        accept_push=False,
        window_size=cfg.window_size,
        session_window_size=cfg.session_window_size,
        header_compression_level=cfg.header_compression,
        retries=0,
    )


async def _run_worker(
    cfg: BenchConfig, requests: int, sessions: int, progress: Any, slot: int
) -> WorkerResult:
    """One process's share: `sessions` sessions, `requests` requests (or until deadline)."""
    loop = asyncio.get_running_loop()
    result = WorkerResult()
    clients = [_new_client(cfg) for _ in range(sessions)]
    opened = await asyncio.gather(*(c.open() for c in clients), return_exceptions=True)
    live: list[_Session] = []
    for client, outcome in zip(clients, opened, strict=True):
        if isinstance(outcome, BaseException):
            if result.connect_error is None:
                result.connect_error = str(outcome)
                result.connect_exit_code = getattr(outcome, "exit_code", 1)
        else:
            live.append(_Session(client))
            version = client.version.value if client.version else "?"
            result.protocol = client.alpn_protocol or f"spdy/{version}"
    result.connected = len(live)
    if not live:
        return result

    template = live[0].client.prepare(cfg.method, cfg.url, cfg.headers)
    body: bytes | memoryview | None = cfg.body
    mapping: mmap.mmap | None = None
    if cfg.body_path is not None:
        with open(cfg.body_path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size:
                mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
                body = memoryview(mapping)
            else:
                body = b""
    remaining = [requests]
    deadline = None if cfg.duration is None else loop.time() + cfg.duration
    latencies = array("d")
    status = result.status
    errors = result.errors
    counters = [0, 0, 0, 0]  # done, failed, body bytes, timeouts
    perf = time.perf_counter

    def claim() -> bool:
        """Take one request from the budget (or check the deadline)."""
        if deadline is not None:
            return loop.time() < deadline
        if remaining[0] <= 0:
            return False
        remaining[0] -= 1
        return True

    def record(state: StreamState, start: float) -> None:
        counters[0] += 1
        error = state.error
        if error is not None:
            fail(error)
            return
        latencies.append(perf() - start)
        counters[2] += state.discarded
        code = b"0"
        for header, value in state.headers:
            if header == b":status":
                code = value
                break
        status[min(int(code[:3] or b"0") // 100, 5)] += 1

    def fail(error: BaseException) -> None:
        counters[1] += 1
        if isinstance(error, SpdyTimeoutError):
            counters[3] += 1
        kind = type(error).__name__
        errors[kind] = errors.get(kind, 0) + 1

    all_done: asyncio.Future[None] = loop.create_future()

    def settle() -> None:
        if all_done.done():
            return
        if any(session.inflight or session.reconnecting for session in live):
            return
        all_done.set_result(None)

    def launch(session: _Session) -> None:
        """Keep `cfg.streams` requests in flight on `session` (called from on_done too)."""
        client = session.client
        while session.inflight < cfg.streams and not session.dead:
            if not client.is_usable:
                if not session.reconnecting and (deadline is not None or remaining[0] > 0):
                    session.reconnecting = True
                    task = loop.create_task(refill(session, client))
                    background.add(task)
                    task.add_done_callback(background.discard)
                break
            if not claim():
                break
            try:
                started = client.fire(template, when_done(session, perf()))
            except SpdyClientError:
                started = False
            if not started:
                if deadline is None:
                    remaining[0] += 1
                if client.is_usable:
                    break  # every slot taken: the next on_done comes back here
                continue
            session.inflight += 1
            result.started += 1

    def when_done(session: _Session, start: float) -> Callable[[StreamState], None]:
        def finished(state: StreamState) -> None:
            session.inflight -= 1
            record(state, start)
            launch(session)
            if not session.inflight:  # only a drained session can end the run
                settle()

        return finished

    background: set[asyncio.Task[None]] = set()

    async def refill(session: _Session, broken: SpdyClient) -> None:
        try:
            await _reconnect(session, broken)
        finally:
            session.reconnecting = False
        launch(session)
        settle()

    async def watchdog() -> None:
        """The per-request read timeout without a timer per request: every quarter of
        `cfg.timeout`, streams on which nothing arrived for `cfg.timeout` are given up."""
        timeout = cfg.timeout
        if timeout is None:
            return
        while True:
            await asyncio.sleep(min(timeout / 4, 1.0))
            for session in live:
                if session.inflight:
                    session.client.expire_fired(ReadTimeout(
                        f"no response for {timeout:g} s (read timeout)"), idle=timeout)

    async def run_fired() -> None:
        for session in live:
            launch(session)
        settle()
        guard = loop.create_task(watchdog())
        try:
            await all_done
        finally:
            guard.cancel()

    async def stream_loop(session: _Session) -> None:
        while not session.dead:
            if deadline is not None:
                if loop.time() >= deadline:
                    return
            elif remaining[0] <= 0:
                return
            else:
                remaining[0] -= 1
            client = session.client
            result.started += 1
            start = perf()
            try:
                # Returns at the reply; the body goes on uploading while discard() reads.
                response = await client.send(template, content=body)
                size = await response.discard()
            except SpdyClientError as exc:
                counters[0] += 1
                fail(exc)
                if not client.is_usable:
                    await _reconnect(session, client)
                continue
            latencies.append(perf() - start)
            counters[0] += 1
            counters[2] += size
            status[min(response.status // 100, 5)] += 1

    async def _reconnect(session: _Session, broken: SpdyClient) -> None:
        async with session.lock:
            if session.client is not broken or session.dead:
                return
            await broken.aclose()
            if deadline is None and remaining[0] <= 0:
                return
            fresh = _new_client(cfg)
            try:
                await fresh.open()
            except SpdyClientError:
                session.dead = True
                return
            session.client = fresh

    async def reporter() -> None:
        while True:
            await asyncio.sleep(0.25)
            progress(slot, counters[0], counters[1], counters[2], counters[3])

    started_at = perf()
    report_task = loop.create_task(reporter())
    try:
        if body is None:
            await run_fired()  # callbacks only: no coroutine or future per request
        else:
            await asyncio.gather(
                *(stream_loop(session) for session in live for _ in range(cfg.streams))
            )
    finally:
        report_task.cancel()
    result.elapsed = perf() - started_at
    progress(slot, counters[0], counters[1], counters[2], counters[3])
    result.done, result.failed, result.body_bytes, result.timeouts = counters
    result.succeeded = result.done - result.failed
    result.latencies = latencies.tobytes()
    for session in live:
        result.bytes_received += session.client.bytes_received
        result.bytes_sent += session.client.bytes_sent
        await session.client.aclose()
    if mapping is not None:
        del body  # the last view: the mapping can close
        try:
            mapping.close()
        except BufferError:  # a view still queued somewhere: the GC closes it
            pass
    return result


def _event_loop_policy(name: str) -> None:
    if name in ("auto", "uvloop"):
        try:
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            if name == "uvloop":
                raise click.UsageError("uvloop is not installed") from None


def _process_main(cfg: BenchConfig, requests: int, sessions: int, shared: Any, slot: int,
                  queue: Any) -> None:
    def progress(index: int, done: int, failed: int, nbytes: int, timeouts: int) -> None:
        base = index * _SLOTS
        shared[base] = done
        shared[base + 1] = failed
        shared[base + 2] = nbytes
        shared[base + 3] = timeouts

    _event_loop_policy(cfg.loop)
    try:
        outcome = asyncio.run(_run_worker(cfg, requests, sessions, progress, slot))
    except BaseException as exc:  # pragma: no cover - reported by the parent
        outcome = WorkerResult(connect_error=f"worker crashed: {exc!r}", connect_exit_code=1)
    queue.put(asdict(outcome))


_SLOTS = 4  # progress numbers per worker: done, failed, body bytes, timeouts


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_bench(cfg: BenchConfig, processes: int, progress_stream: Any = None) -> dict[str, Any]:
    """Run the benchmark; returns the RESULT dictionary (also used by tests)."""
    out = progress_stream if progress_stream is not None else sys.stderr
    processes = max(1, min(processes, cfg.sessions))
    session_split = _split(cfg.sessions, processes)
    request_split = _split(cfg.requests, processes)
    target = None if cfg.duration is not None else cfg.requests
    cpu_start = _cpu_seconds()
    wall_start = time.perf_counter()
    results: list[WorkerResult] = []

    if processes == 1:
        last = [0.0, 0]

        def progress(index: int, done: int, failed: int, nbytes: int, timeouts: int) -> None:
            now = time.perf_counter() - wall_start
            if now - last[0] >= 1.0:
                print(progress_line(done, failed, timeouts, target, now,
                                     (last[0], int(last[1]))), file=out, flush=True)
                last[0], last[1] = now, done

        async def single() -> WorkerResult:
            return await _run_worker(cfg, cfg.requests, cfg.sessions, progress, 0)

        _event_loop_policy(cfg.loop)
        results.append(asyncio.run(single()))
    else:
        ctx: Any = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        shared = ctx.Array("d", processes * _SLOTS, lock=False)
        queue = ctx.Queue()
        procs = [
            ctx.Process(target=_process_main,
                        args=(cfg, request_split[i], session_split[i], shared, i, queue),
                        daemon=True)
            for i in range(processes)
        ]
        for proc in procs:
            proc.start()
        last_t, last_done = 0.0, 0
        while len(results) < processes:
            try:
                raw = queue.get(timeout=1.0)
                results.append(WorkerResult(**raw))
                continue
            except Exception:  # queue.Empty
                pass
            if not any(p.is_alive() for p in procs) and queue.empty():
                break
            now = time.perf_counter() - wall_start
            done, failed, timeouts = (
                int(sum(shared[i * _SLOTS + k] for i in range(processes))) for k in (0, 1, 3))
            print(progress_line(done, failed, timeouts, target, now, (last_t, last_done)),
                  file=out, flush=True)
            last_t, last_done = now, done
        for proc in procs:
            proc.join(10)
    cpu = _cpu_seconds() - cpu_start
    return summarise(cfg, processes, results, cpu)


def _window(value: int | None, option: str) -> int | None:
    if value is None:
        return None
    size = 1 << value if value <= 30 else value
    if size < 65536:
        raise click.BadParameter(f"window must be at least 65536 bytes (2^16), got {size}",
                                 param_hint=option)
    return min(size, 2**31 - 1)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("url")
@click.option("-n", "--requests", "requests", type=click.IntRange(1), default=1,
              show_default=True, help="Total requests (ignored with -D).")
@click.option("-D", "--duration", type=click.FloatRange(min=0, min_open=True),
              help="Run for this many seconds instead of -n requests.")
@click.option("-c", "--clients", "sessions", type=click.IntRange(1), default=1,
              show_default=True, help="Sessions (TCP connections).")
@click.option("-m", "--max-concurrent-streams", "streams", type=click.IntRange(1), default=1,
              show_default=True, help="Concurrent streams per session.")
@click.option("-d", "--data", "data", type=click.Path(exists=True, dir_okay=False),
              help="Upload this file (any size, memory-mapped) as the body of every "
                   "request, streams in parallel (implies POST).")
@click.option("-H", "--header", "headers", multiple=True, metavar="'Name: value'",
              help="Extra request header (repeatable).")
@click.option("-X", "--method", "method", help="Request method (default GET, POST with -d).")
@click.option("-w", "--window-bits", "window", type=click.IntRange(1), default=None,
              help="Stream receive window: N<=30 means 2^N bytes, else bytes [default 2^20].")
@click.option("-W", "--connection-window-bits", "session_window", type=click.IntRange(1),
              default=None, help="SPDY/3.1 session receive window, same units as -w.")
@click.option("-p", "--processes", type=click.IntRange(1), default=1, show_default=True,
              help="Worker processes; sessions and requests are split among them.")
@click.option("--tls", is_flag=True, help="TLS + ALPN even for http:// URLs.")
@click.option("--cleartext", is_flag=True, help="Cleartext prior knowledge even for https://.")
@click.option("-k", "--insecure", is_flag=True, help="Do not verify the TLS certificate.")
@click.option("--cacert", metavar="FILE",
              help="CA bundle (PEM) to verify the server's certificate with.")
@click.option("--proto", type=click.Choice(["spdy/3.1", "spdy/3"]),
              help="Speak only this SPDY version (default: spdy/3.1, then spdy/3).")
@click.option("-T", "--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, metavar="SECONDS",
              help="Read timeout per request: a stream with no byte moving for this long "
                   "fails and counts in 'timeouts'.")
@click.option("--connect-timeout", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True, metavar="SECONDS",
              help="Limit for each connect, and for each TLS handshake.")
@click.option("--header-compression", type=click.IntRange(-1, 9), default=6, show_default=True,
              metavar="LEVEL",
              help="zlib level for request header blocks: 1-9 as real SPDY clients do, 0 "
                   "stored, -1 Huffman-only (no back-references, as spdyasgi-client).")
@click.option("--loop", type=click.Choice(["auto", "asyncio", "uvloop"]), default="auto",
              show_default=True,
              help="Event loop: uvloop when installed (auto), or force one.")
def cli(url: str, requests: int, duration: float | None, sessions: int, streams: int,
        data: str | None, headers: tuple[str, ...], method: str | None, window: int | None,
        session_window: int | None, processes: int, tls: bool, cleartext: bool,
        insecure: bool, cacert: str | None, proto: str | None, timeout: float,
        connect_timeout: float, header_compression: int, loop: str) -> None:
    """Load a SPDY/3.1 server at URL (h2load-style)."""
    if tls and cleartext:
        raise click.UsageError("--tls and --cleartext are mutually exclusive")
    header_list: list[tuple[str, str]] = []
    for item in headers:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter(f"bad header {item!r}", param_hint="-H")
        header_list.append((name.strip(), value.strip()))
    if data is not None and not any(n.lower() == "content-length" for n, _ in header_list):
        header_list.append(("content-length", str(os.stat(data).st_size)))
    cfg = BenchConfig(
        url=url,
        requests=requests,
        duration=duration,
        sessions=sessions,
        streams=streams,
        method=(method or ("POST" if data is not None else "GET")).upper(),
        headers=header_list,
        body=None,
        body_path=data,
        window_size=_window(window, "-w") or (1 << 20),
        session_window_size=_window(session_window, "-W"),
        tls=True if tls else (False if cleartext else None),
        insecure=insecure,
        cafile=cacert,
        protocols=(proto,) if proto else ("spdy/3.1", "spdy/3"),
        cleartext_version="3" if proto == "spdy/3" else "3.1",
        timeout=timeout,
        connect_timeout=connect_timeout,
        loop=loop,
        header_compression=header_compression,
    )
    try:
        SpdyClient(url)  # validate the URL early (usage error, not a worker crash)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        result = run_bench(cfg, processes)
    except KeyboardInterrupt:
        sys.exit(130)
    print(format_summary(result))
    print("RESULT " + json.dumps(result, sort_keys=True), flush=True)
    if result["sessions_connected"] == 0:
        print(f"{PROG}: {result['connect_error']}", file=sys.stderr)
        sys.exit(result["connect_exit_code"] or 7)
    sys.exit(1 if result["failed"] else 0)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name=PROG)


if __name__ == "__main__":
    main()
