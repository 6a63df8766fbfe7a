"""The media-pattern load generator (run by benchmarks/media.py on its own core).

    python benchmarks/media_load.py --url http://127.0.0.1:8000/media --file F [options]

How VLC and QuickTime open a file, then play it: each of ``--sessions`` SPDY sessions
(`spdyasgi.client`) repeats a burst of ``--probes`` concurrent Range requests
(``bytes=A-``, random A) and cancels each one (RST_STREAM CANCEL, `Response.aclose`) as
soon as ``--probe-bytes`` of its body arrived, then waits ``--gap`` seconds; meanwhile
``--players`` streams per session read a long range at ``--rate`` bytes/s, paced by the
reader (so the client's flow control, not the server, holds them back). Every body byte
is compared with ``--file`` at its offset. Stops after ``--duration`` seconds and prints
one ``RESULT {json}`` line; exits 1 if a byte was wrong, a session was lost or a stream
failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import mmap
import random
import resource
import statistics
import sys
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, cast

from spdyasgi.client import (
    ConnectionClosedError,
    GoAwayError,
    Response,
    SpdyClient,
    SpdyClientError,
    SpdyProtocolError,
)

#: errors that end the whole session (the others end one stream)
SESSION_ERRORS = (GoAwayError, ConnectionClosedError, SpdyProtocolError)


@dataclass
class Tally:
    streams: int = 0            # streams opened (probes + player ranges)
    probes: int = 0             # probes that got their bytes and were cancelled as planned
    player_streams: int = 0
    bytes_received: int = 0     # every body byte the readers took
    bytes_verified: int = 0
    bytes_wrong: int = 0
    bad_replies: int = 0        # wrong status or content-range
    ttfb: list[float] = field(default_factory=list)
    player_rates: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    sessions_lost: int = 0
    examples: list[str] = field(default_factory=list)

    def error(self, exc: BaseException) -> None:
        name = type(exc).__name__
        self.errors[name] = self.errors.get(name, 0) + 1
        if len(self.examples) < 5:
            self.examples.append(f"{name}: {exc}")


class Load:
    def __init__(self, args: argparse.Namespace, data: mmap.mmap):
        self.args = args
        self.data = data
        self.size = len(data)
        self.tally = Tally()
        self.path = "/" + args.url.split("://", 1)[-1].split("/", 1)[-1]

    def check(self, offset: int, chunk: bytes) -> None:
        tally = self.tally
        tally.bytes_received += len(chunk)
        if self.data[offset:offset + len(chunk)] == chunk:
            tally.bytes_verified += len(chunk)
        else:
            tally.bytes_wrong += len(chunk)
            if len(tally.examples) < 5:
                tally.examples.append(f"wrong bytes at {offset}..{offset + len(chunk)}")

    def reply_ok(self, response: Response, first: int, last: int) -> bool:
        expected = f"bytes {first}-{last}/{self.size}"
        if response.status == 206 and response.get("content-range") == expected:
            return True
        self.tally.bad_replies += 1
        if len(self.tally.examples) < 5:
            self.tally.examples.append(
                f"reply {response.status} {response.get('content-range')!r}, wanted {expected}")
        return False

    async def open(self, client: SpdyClient, first: int, last: int | None) -> Response:
        spec = f"bytes={first}-" if last is None else f"bytes={first}-{last}"
        self.tally.streams += 1
        return await client.get(self.path, headers=[("range", spec)])

    async def probe(self, client: SpdyClient, rng: random.Random) -> None:
        """One probe: open `bytes=A-`, take `probe_bytes`, cancel."""
        want = self.args.probe_bytes
        offset = rng.randrange(0, self.size - want)
        started = time.perf_counter()
        response = await self.open(client, offset, None)
        try:
            if not self.reply_ok(response, offset, self.size - 1):
                return
            got = 0
            async with contextlib.aclosing(_body(response)) as body:
                async for chunk in body:
                    if got == 0:
                        self.tally.ttfb.append(time.perf_counter() - started)
                    self.check(offset + got, chunk)
                    got += len(chunk)
                    if got >= want:
                        break
            if got >= want:
                self.tally.probes += 1
        finally:
            await response.aclose()  # RST_STREAM CANCEL while the body is still coming

    async def player(self, client: SpdyClient, rng: random.Random, stop: float) -> None:
        """Read ranges at `rate` bytes/s until `stop` (a new range when one ends)."""
        rate = self.args.rate
        loop = asyncio.get_running_loop()
        while loop.time() < stop:
            length = min(int(rate * (stop - loop.time())) + 65536, self.size // 2)
            offset = rng.randrange(0, self.size - length)
            last = offset + length - 1
            response = await self.open(client, offset, last)
            self.tally.player_streams += 1
            started = loop.time()
            got = 0
            try:
                if not self.reply_ok(response, offset, last):
                    return
                async with contextlib.aclosing(_body(response)) as body:
                    async for chunk in body:
                        self.check(offset + got, chunk)
                        got += len(chunk)
                        now = loop.time()
                        if now >= stop:
                            break
                        ahead = got / rate - (now - started)
                        if ahead > 0:
                            await asyncio.sleep(min(ahead, stop - now))
            finally:
                await response.aclose()
                elapsed = loop.time() - started
                if elapsed > 0.5:
                    self.tally.player_rates.append(got / elapsed)

    async def guarded(self, coro: Any) -> bool:
        """Run one probe or player; False if its error ended the session."""
        try:
            await coro
        except SESSION_ERRORS as exc:
            self.tally.error(exc)
            return False
        except (SpdyClientError, OSError) as exc:
            self.tally.error(exc)
        return True

    async def session(self, index: int, stop: float) -> None:
        args = self.args
        rng = random.Random(args.seed * 1000 + index)
        loop = asyncio.get_running_loop()
        client = SpdyClient(args.url, verify=False, read_timeout=args.read_timeout,
                            window_size=args.window)
        await client.open()
        alive = True
        try:
            players = [asyncio.ensure_future(self.guarded(self.player(client, rng, stop)))
                       for _ in range(args.players)]
            while alive and loop.time() < stop:
                results = await asyncio.gather(
                    *(self.guarded(self.probe(client, rng)) for _ in range(args.probes)))
                alive = all(results) and client.is_usable
                if alive:
                    await asyncio.sleep(min(args.gap, max(stop - loop.time(), 0)))
            alive = all(await asyncio.gather(*players)) and alive and client.is_usable
        finally:
            if not alive:
                self.tally.sessions_lost += 1
            await client.aclose()


def _body(response: Response) -> AsyncGenerator[bytes, None]:
    """The body iterator (an async generator: closed at once when a reader stops early)."""
    return cast(AsyncGenerator[bytes, None], response.aiter_bytes())


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with open(args.file, "rb") as handle:
        data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    load = Load(args, data)
    loop = asyncio.get_running_loop()
    wire_before = _bytes_read()
    started = loop.time()
    stop = started + args.duration
    outcomes = await asyncio.gather(*(load.session(i, stop) for i in range(args.sessions)),
                                    return_exceptions=True)
    wall = loop.time() - started
    wire = _bytes_read() - wire_before
    tally = load.tally
    for outcome in outcomes:
        if isinstance(outcome, BaseException):  # could not even connect
            tally.error(outcome)
            tally.sessions_lost += 1
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rates = tally.player_rates
    return {
        "wall_s": round(wall, 3),
        "sessions": args.sessions,
        "streams": tally.streams,
        "probes_done": tally.probes,
        "player_streams": tally.player_streams,
        "bytes_received": tally.bytes_received,
        # everything the sockets delivered (frames included): what the server sent us,
        # also the DATA that was in flight when a probe was cancelled, which nobody read
        "wire_bytes": wire,
        "wire_mb_per_s": round(wire / wall / 1e6, 2),
        "bytes_verified": tally.bytes_verified,
        "bytes_wrong": tally.bytes_wrong,
        "bad_replies": tally.bad_replies,
        "mb_per_s": round(tally.bytes_received / wall / 1e6, 2),
        "ttfb_ms_p50": _ms(_pct(tally.ttfb, 0.5)),
        "ttfb_ms_p99": _ms(_pct(tally.ttfb, 0.99)),
        "ttfb_ms_max": _ms(max(tally.ttfb, default=None)),
        "player_rate_target_mb_s": round(args.rate / 1e6, 3),
        "player_rate_mb_s_median": round(statistics.median(rates) / 1e6, 3) if rates else None,
        "player_rate_mb_s_min": round(min(rates) / 1e6, 3) if rates else None,
        "sessions_lost": tally.sessions_lost,
        "stream_errors": tally.errors,
        "examples": tally.examples,
        "client_cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
    }


def _bytes_read() -> int:
    """Bytes this process read from file descriptors (`rchar`): here, its sockets.

    The checked file is memory-mapped, so it does not count. Cheaper than a trace hook
    copying every received buffer.
    """
    with open("/proc/self/io") as handle:
        for line in handle:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    return 0


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="the file's URL, e.g. http://127.0.0.1:8000/media")
    p.add_argument("--file", required=True, help="the served file, to check every byte against")
    add_load_options(p, duration=40.0)
    p.add_argument("--read-timeout", type=float, default=30.0)
    return p


#: The load's options, shared with benchmarks/media.py (which passes them on: `load_args`).
LOAD_OPTIONS = ("sessions", "probes", "probe_bytes", "players", "rate", "gap", "duration",
                "seed", "window")


def add_load_options(p: argparse.ArgumentParser, duration: float) -> None:
    p.add_argument("--sessions", type=int, default=8)
    p.add_argument("--probes", type=int, default=20, help="Range requests per burst")
    p.add_argument("--probe-bytes", type=int, default=65536, help="cancel a probe after this")
    p.add_argument("--players", type=int, default=2, help="steady readers per session")
    p.add_argument("--rate", type=float, default=2e6, help="each player's rate (bytes/s)")
    p.add_argument("--gap", type=float, default=0.25, help="seconds between a session's bursts")
    p.add_argument("--duration", type=float, default=duration, help="seconds of load")
    p.add_argument("--window", type=int, default=1 << 20,
                   help="the client's per-stream receive window (SETTINGS_INITIAL_WINDOW_SIZE: "
                        "what a server may send before a cancel lands)")
    p.add_argument("--seed", type=int, default=1)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        result = asyncio.run(run(args))
    else:
        result = uvloop.run(run(args))
    print("RESULT " + json.dumps(result), flush=True)
    failed = (result["bytes_wrong"] or result["sessions_lost"] or result["bad_replies"]
              or result["stream_errors"])
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
