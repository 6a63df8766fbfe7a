"""The soak's traffic: seeded operations over `spdyasgi.client` sessions, every answer checked.

Each *lane* is a loop on a long-lived session drawing operations from its own
`random.Random` (seeded from the run's seed), so a seed gives the same sequence of requests
on every run (timing, not content, varies). An operation either ends as it should or raises
`Wrong` with a category; `Tally.guard` turns client errors into categories too. The
session-level behaviours (stalls, churn, media-player bursts) are separate loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from soak_body import FILE_SIZE, expected, matches

from spdyasgi.client import (
    ConnectionClosedError,
    GoAwayError,
    Response,
    SpdyClient,
    SpdyClientError,
    SpdyTimeoutError,
    StreamRefusedError,
    StreamResetError,
)

#: wrong-answer categories (see docs/soak.md)
CATEGORIES = ("status", "bytes", "reset", "refused", "goaway", "lost", "timeout", "error")
OP_TIMEOUT = 60.0
READ_TIMEOUT = 30.0


class Wrong(Exception):
    """An answer that is not the one the soak app must give."""

    def __init__(self, category: str, message: str):
        super().__init__(message)
        self.category = category


@dataclass
class Tally:
    """Everything the soak counts; shared by all loops (one event loop, no locks)."""

    requests: int = 0
    ops: Counter[str] = field(default_factory=Counter)
    wrong: Counter[str] = field(default_factory=Counter)
    expected_errors: Counter[str] = field(default_factory=Counter)
    sessions: Counter[str] = field(default_factory=Counter)
    bursts: int = 0
    server_cpu: float = 0.0
    examples: list[str] = field(default_factory=list)

    @property
    def wrong_total(self) -> int:
        return sum(self.wrong.values())

    def add_wrong(self, category: str, message: str) -> None:
        self.wrong[category] += 1
        if len(self.examples) < 20:
            self.examples.append(f"{category}: {message}")

    async def guard(self, kind: str, operation: Awaitable[None],
                    client: SpdyClient | None = None) -> None:
        """Run one operation of an innocent stream (on `client`); count how it ended."""
        try:
            await asyncio.wait_for(operation, OP_TIMEOUT)
        except Wrong as exc:
            self.add_wrong(exc.category, f"{kind}: {exc}")
        except (asyncio.TimeoutError, SpdyTimeoutError) as exc:
            self.add_wrong("timeout", f"{kind}: {exc or 'no answer in time'}")
        except StreamRefusedError as exc:
            self.add_wrong("refused", f"{kind}: {exc}")
        except StreamResetError as exc:
            self.add_wrong("reset", f"{kind}: {exc}")
        except GoAwayError as exc:
            self.add_wrong("goaway", f"{kind}: {exc}")
        except ConnectionClosedError as exc:
            goaway = client is not None and client._goaway is not None
            self.add_wrong("goaway" if goaway else "lost", f"{kind}: {exc}")
        except SpdyClientError as exc:
            self.add_wrong("error", f"{kind}: {type(exc).__name__}: {exc}")
        else:
            self.ops[kind] += 1


# ----------------------------------------------------------------- checks


def _check_status(response: Response, status: int) -> None:
    if response.status != status:
        raise Wrong("status", f"{response.path}: status {response.status}, expected {status}")


def _check_length(response: Response, size: int) -> None:
    length = response.get("content-length")
    if length is not None and length != str(size):
        raise Wrong("bytes", f"{response.path}: content-length {length}, expected {size}")


async def read_checked(response: Response, seed: int, offset: int, size: int,
                       limit: int | None = None, pause: float = 0.0) -> int:
    """Read the body (or its first `limit` bytes) checking every byte; returns bytes read."""
    got = 0
    async for chunk in response.aiter_bytes():
        if not matches(seed, offset + got, chunk):
            raise Wrong("bytes", f"{response.path}: wrong bytes in {len(chunk)} at {got}")
        got += len(chunk)
        if got > size:
            raise Wrong("bytes", f"{response.path}: {got} bytes, more than {size}")
        if limit is not None and got >= limit:
            return got
        if pause:
            await asyncio.sleep(pause)
    if got != size:
        raise Wrong("bytes", f"{response.path}: body ended at {got} of {size} bytes")
    return got


def _size(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.6:
        return rng.randrange(0, 16384)
    if roll < 0.95:
        return rng.randrange(16384, 262144)
    return rng.randrange(262144, 4 << 20)


# ------------------------------------------------------------- operations


class Lane:
    """One loop of operations on a `Session`'s current client."""

    def __init__(self, session: Session, rng: random.Random, tally: Tally):
        self.session = session
        self.rng = rng
        self.tally = tally

    async def get(self, client: SpdyClient) -> None:
        rng = self.rng
        seed, size = rng.randrange(64), _size(rng)
        chunk = rng.choice((1000, 4096, 16384, 65536, 100000))
        self.tally.requests += 1
        response = await client.get(f"/data?seed={seed}&size={size}&chunk={chunk}")
        _check_status(response, 200)
        _check_length(response, size)
        await read_checked(response, seed, 0, size)

    async def echo(self, client: SpdyClient) -> None:
        rng = self.rng
        seed, size = rng.randrange(64), rng.randrange(0, 786432)
        body = expected(seed, rng.randrange(1 << 20), size)
        piece = rng.choice((0, 777, 16384, 100000))
        content: bytes | AsyncIterator[bytes] = body if not piece else _pieces(body, piece)
        self.tally.requests += 1
        response = await client.post("/echo", content=content)
        _check_status(response, 200)
        echoed = await response.read()
        if echoed != body:
            raise Wrong("bytes", f"/echo: {len(echoed)} bytes back for {size}, or different")

    async def range(self, client: SpdyClient) -> None:
        rng = self.rng
        seed, size = rng.randrange(64), rng.randrange(1, 1 << 20)
        start = rng.randrange(FILE_SIZE - size)
        end = start + size - 1
        self.tally.requests += 1
        response = await client.get(f"/file?seed={seed}",
                                    headers=[("range", f"bytes={start}-{end}")])
        _check_status(response, 206)
        _check_length(response, size)
        if response.get("content-range") != f"bytes {start}-{end}/{FILE_SIZE}":
            raise Wrong("bytes", f"/file: content-range {response.get('content-range')}")
        await read_checked(response, seed, start, size)

    async def abort(self, client: SpdyClient) -> None:
        """Read part of a large body (checked), then cancel the stream."""
        rng = self.rng
        seed, size = rng.randrange(64), rng.randrange(1 << 20, 8 << 20)
        self.tally.requests += 1
        response = await client.get(f"/data?seed={seed}&size={size}&chunk=65536")
        _check_status(response, 200)
        await read_checked(response, seed, 0, size, limit=rng.randrange(1, 1 << 20))
        await response.aclose()

    async def reset(self, client: SpdyClient) -> None:
        """Open a stream and reset it after 0-20 ms (before or after its reply)."""
        rng = self.rng
        seed, delay = rng.randrange(64), rng.uniform(0, 0.02)
        path = rng.choice((f"/data?seed={seed}&size=2000000&chunk=16384",
                           f"/slow?seed={seed}&n=5&chunk=100&ms=50"))
        self.tally.requests += 1
        task = asyncio.ensure_future(client.get(path))
        await asyncio.sleep(delay)
        if task.done() and not task.cancelled() and task.exception() is None:
            await task.result().aclose()  # replied already: RST_STREAM CANCEL mid-body
        else:
            task.cancel()  # no reply yet: RST_STREAM CANCEL from the client
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def slow(self, client: SpdyClient) -> None:
        rng = self.rng
        seed, count = rng.randrange(64), rng.randrange(1, 8)
        chunk, ms = rng.randrange(1, 4096), rng.randrange(10, 200)
        self.tally.requests += 1
        response = await client.get(f"/slow?seed={seed}&n={count}&chunk={chunk}&ms={ms}")
        _check_status(response, 200)
        await read_checked(response, seed, 0, count * chunk)

    async def slow_reader(self, client: SpdyClient) -> None:
        """Take a big body slowly, so the server waits on the stream window."""
        rng = self.rng
        seed, size = rng.randrange(64), rng.randrange(1 << 20, 4 << 20)
        self.tally.requests += 1
        response = await client.get(f"/data?seed={seed}&size={size}&chunk=65536")
        _check_status(response, 200)
        await read_checked(response, seed, 0, size, pause=rng.uniform(0.002, 0.02))

    async def stubborn(self, client: SpdyClient) -> None:
        """A handler that ignores disconnects: cancel it half the time, else check it."""
        rng = self.rng
        seed, ms, cancel = rng.randrange(64), rng.randrange(100, 2000), rng.random() < 0.5
        self.tally.requests += 1
        response = await client.get(f"/stubborn?seed={seed}&size=5000&ms={ms}")
        _check_status(response, 200)
        if cancel:
            await response.aclose()
        else:
            await read_checked(response, seed, 0, 5000)

    async def play(self, client: SpdyClient) -> None:
        """What a media player does between probes: a long Range read at ~5 MiB/s."""
        rng = self.rng
        seed, size = rng.randrange(64), rng.randrange(2 << 20, 8 << 20)
        start = rng.randrange(FILE_SIZE - size)
        self.tally.requests += 1
        response = await client.get(f"/file?seed={seed}",
                                    headers=[("range", f"bytes={start}-{start + size - 1}")])
        _check_status(response, 206)
        await read_checked(response, seed, start, size, pause=0.003)

    async def run(self, deadline: float, player: bool = False) -> None:
        kinds: list[tuple[str, Callable[[SpdyClient], Awaitable[None]], int]] = [
            ("get", self.get, 30), ("echo", self.echo, 15), ("range", self.range, 10),
            ("abort", self.abort, 10), ("reset", self.reset, 10), ("slow", self.slow, 8),
            ("slow_reader", self.slow_reader, 7), ("stubborn", self.stubborn, 5),
        ] if not player else [("play", self.play, 1)]
        weights = [weight for _, _, weight in kinds]
        while time.monotonic() < deadline:
            kind, operation, _ = self.rng.choices(kinds, weights)[0]
            client = await self.session.client()
            if client is None:
                return
            await self.tally.guard(kind, operation(client), client)


async def _pieces(body: bytes, piece: int) -> AsyncIterator[bytes]:
    for offset in range(0, len(body), piece):
        yield body[offset:offset + piece]
        await asyncio.sleep(0)


# ---------------------------------------------------------------- sessions


class Session:
    """A long-lived session: reconnects when the server lost it (and counts that)."""

    def __init__(self, url: str, tally: Tally, name: str):
        self.url = url
        self.tally = tally
        self.name = name
        self.current: SpdyClient | None = None
        self.lock = asyncio.Lock()
        self.closing = False
        self.retiring: set[asyncio.Future[None]] = set()

    async def client(self) -> SpdyClient | None:
        async with self.lock:
            if self.closing:
                return None
            current = self.current
            if current is not None and current.is_usable:
                return current
            if current is not None:
                # The server ended it (GOAWAY or drop): streams it still carries may end
                # normally, so close it only once they are done.
                self.tally.sessions["lost"] += 1
                retiring = asyncio.ensure_future(_retire(current))
                self.retiring.add(retiring)
                retiring.add_done_callback(self.retiring.discard)
            self.current = None
            for _ in range(5):
                try:
                    self.current = await open_client(self.url)
                    self.tally.sessions["opened"] += 1
                    return self.current
                except SpdyClientError as exc:
                    self.tally.add_wrong("error", f"{self.name}: connect failed: {exc}")
                    await asyncio.sleep(1)
            return None

    async def close(self) -> None:
        async with self.lock:
            self.closing = True
            if self.current is not None:
                await self.current.aclose()
                self.current = None
        if self.retiring:
            await asyncio.gather(*self.retiring)


async def _retire(client: SpdyClient) -> None:
    """Close a session the server ended, once its last stream is over (at most 60 s)."""
    deadline = time.monotonic() + OP_TIMEOUT
    while client.active_streams and not client.is_closed and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await client.aclose()


async def open_client(url: str) -> SpdyClient:
    return await SpdyClient(url, verify=False, read_timeout=READ_TIMEOUT, retries=2).open()


def transport_of(client: SpdyClient) -> Any:
    """The client's asyncio transport (the soak pauses and aborts it on purpose)."""
    return client._transport


# ------------------------------------------------------- session behaviours


async def burst_loop(session: Session, rng: random.Random, tally: Tally, size: int,
                     deadline: float) -> None:
    """Media-player probing: `size` Range opens, each cancelled within ~100 ms, every 2-4 s.

    Runs on a player session whose lane keeps playing (checked Range reads): the
    playback must not notice.
    Burst streams themselves may end any way short of a wrong status or wrong bytes.
    """
    while True:
        await asyncio.sleep(rng.uniform(2.0, 4.0))
        if time.monotonic() >= deadline:
            return
        client = await session.client()
        if client is None:
            return
        tally.bursts += 1
        seed = rng.randrange(64)
        plans = [(rng.randrange(FILE_SIZE - 1), rng.uniform(0.0, 0.1)) for _ in range(size)]
        await asyncio.gather(*(_probe(client, seed, start, delay, tally)
                               for start, delay in plans))


async def _probe(client: SpdyClient, seed: int, start: int, delay: float, tally: Tally) -> None:
    tally.requests += 1
    opened: list[Response] = []

    async def play() -> None:
        response = await client.get(f"/file?seed={seed}", headers=[("range", f"bytes={start}-")])
        opened.append(response)
        _check_status(response, 206)
        await read_checked(response, seed, start, FILE_SIZE - start, limit=65536)

    try:
        await asyncio.wait_for(play(), delay)
        tally.ops["burst_stream"] += 1
    except asyncio.TimeoutError:
        tally.ops["burst_stream"] += 1  # cancelled by us, as planned
    except Wrong as exc:
        tally.add_wrong(exc.category, f"burst: {exc}")
    except SpdyClientError as exc:
        tally.expected_errors[f"burst_{type(exc).__name__}"] += 1
    finally:
        for response in opened:
            await response.aclose()


async def stall_loop(url: str, rng: random.Random, tally: Tally, deadline: float) -> None:
    """A session that stops reading its socket for 1-6 s mid-download, then checks it all."""
    while time.monotonic() < deadline:
        await tally.guard("stalled_session", _stall_once(url, rng, tally))
        await asyncio.sleep(rng.uniform(0.5, 3.0))


async def _stall_once(url: str, rng: random.Random, tally: Tally) -> None:
    client = await open_client(url)
    tally.sessions["opened"] += 1
    try:
        plans = [(rng.randrange(64), rng.randrange(256 << 10, 3 << 20)) for _ in range(4)]
        tally.requests += len(plans)
        responses = [await client.get(f"/data?seed={seed}&size={size}&chunk=65536")
                     for seed, size in plans]
        transport_of(client).pause_reading()
        await asyncio.sleep(rng.uniform(1.0, 6.0))
        transport_of(client).resume_reading()
        for response, (seed, size) in zip(responses, plans, strict=True):
            _check_status(response, 200)
            await read_checked(response, seed, 0, size)
    finally:
        await client.aclose()


async def churn_loop(url: str, rng: random.Random, tally: Tally, deadline: float) -> None:
    """Sessions dropped abruptly (TCP abort) with 1-8 streams in flight."""
    while time.monotonic() < deadline:
        try:
            client = await open_client(url)
        except SpdyClientError as exc:
            tally.add_wrong("error", f"churn: connect failed: {exc}")
            await asyncio.sleep(1)
            continue
        tally.sessions["opened"] += 1
        count = rng.randrange(1, 9)
        tally.requests += count
        tasks = [asyncio.ensure_future(client.get(
            f"/data?seed={rng.randrange(64)}&size={rng.randrange(1 << 16, 1 << 20)}"))
            for _ in range(count)]
        await asyncio.sleep(rng.uniform(0.0, 0.05))
        transport_of(client).abort()
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(result, Response):
                await result.aclose()
            elif not isinstance(result, SpdyClientError):
                tally.add_wrong("error", f"churn: {result!r}")
        await client.aclose()
        tally.sessions["churned"] += 1
        tally.ops["churn"] += 1
        await asyncio.sleep(rng.uniform(0.1, 1.0))
