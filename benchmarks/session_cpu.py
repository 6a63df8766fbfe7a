"""CPU per request of one SPDY session, in process: no sockets, no load generator.

    python benchmarks/session_cpu.py                 # CPU µs per request (best of 5 runs)
    python benchmarks/session_cpu.py --callgrind     # instructions per request (valgrind)

A client engine pre-encodes batches of 10 SYN_STREAMs (`--per-read 1`: one request per
read, as sequential 1x1 requests arrive) (SPDY/3.1, header blocks compressed
at zlib level 6 like spdyasgi-bench's; `--header-compression -1` for Huffman-only) and
they are fed to a real `SpdyProtocol` serving the raw hello app of `apps.py`, over a
transport that only counts bytes. What remains is the server's own per-request work:
engine, scope, task, app, reply, flush. Under `--callgrind` the requests are encoded
beforehand by this script (not under valgrind) and read from a file, so the client's
encoding is not in the count.

Wall-clock CPU time on a shared VM drifts by tens of percent from minute to minute, so
`--callgrind` counts instructions instead (runs two sizes under valgrind and divides the
difference by the extra requests): repeatable to a fraction of a percent, which is what
an A/B comparison of one change needs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import pickle
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.apps import raw  # noqa: E402
from spdyasgi.config import Config  # noqa: E402
from spdyasgi.protocols.spdy import SpdyProtocol  # noqa: E402
from spdyasgi.server import ServerState  # noqa: E402
from spdyasgi.spdy import Connection, ConnectionConfig  # noqa: E402

PER_BATCH = 10
HEADERS = [(b":method", b"GET"), (b":path", b"/"), (b":version", b"HTTP/1.1"),
           (b":host", b"127.0.0.1:8000"), (b":scheme", b"http"),
           (b"user-agent", b"spdyasgi-bench/0.1.0")]


class CountingTransport(asyncio.Transport):
    """Accepts every write at once and only counts the bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def write(self, data: Any) -> None:
        self.written += len(data)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.written += len(chunk)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000),
                "peername": ("127.0.0.1", 50000)}.get(name, default)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass


def encode_requests(batches: int, level: int = 6, per_read: int = PER_BATCH) -> list[bytes]:
    """The session preface, then one read of `per_read` SYN_STREAMs per batch."""
    client = Connection(ConnectionConfig(client_side=True, header_compression_level=level,
                                         initial_window_size=2**31 - 1,
                                         session_window_size=2**31 - 1))
    client.initiate_connection()
    reads = [client.data_to_send()]
    for _ in range(batches):
        for _ in range(per_read):
            client.send_request(HEADERS, end_stream=True)
        reads.append(client.data_to_send())
        client.streams.clear()  # the replies are never fed back: free the ids
    return reads


async def run(reads: list[bytes], per_read: int = PER_BATCH) -> float:
    """Serve the requests of `encode_requests`; CPU µs per request."""
    config = Config(raw, log_level="warning", access_log=False)
    config.load()
    protocol = SpdyProtocol(config, ServerState(), {}, asyncio.get_running_loop())
    transport = CountingTransport()
    protocol.connection_made(transport)
    protocol.data_received(reads[0])
    await asyncio.sleep(0)
    start = time.process_time()
    for data in reads[1:]:
        protocol.data_received(data)
        await asyncio.sleep(0)  # the handlers run (the raw app finishes in one step)
        while protocol.cycles or protocol._flush_handle is not None:
            await asyncio.sleep(0)  # whatever is left: a batched flush
    cpu = time.process_time() - start
    if protocol.cycles or not transport.written:
        raise SystemExit(f"{len(protocol.cycles)} requests did not finish")
    return cpu / ((len(reads) - 1) * per_read) * 1e6


def _loop_runner() -> Any:
    try:
        import uvloop

        return uvloop.run
    except ImportError:  # pragma: no cover - uvloop is in the test extras
        return asyncio.run


def callgrind(small: int, large: int, level: int, per_read: int = PER_BATCH) -> float:
    """`small` and `large` batches of 10 requests, whatever `per_read` (so a one-request
    read is measured over as many requests), each run with the same hash seed: dict
    layouts then match from run to run, and so do the counts."""
    counts = []
    scale = max(1, PER_BATCH // per_read)
    small, large = small * scale, large * scale
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    for batches in (small, large):
        with tempfile.NamedTemporaryFile(suffix=".pickle") as requests:
            pickle.dump((per_read, encode_requests(batches, level, per_read)), requests)
            requests.flush()
            done = subprocess.run(
                ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                 sys.executable, __file__, "--once", requests.name],
                capture_output=True, text=True, check=True, env=env)
        found = re.search(r"Collected : (\d+)", done.stderr)
        if found is None:
            raise SystemExit("valgrind printed no instruction count:\n" + done.stderr[-2000:])
        counts.append(int(found.group(1)))
    return (counts[1] - counts[0]) / ((large - small) * per_read)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callgrind", action="store_true",
                        help="instructions per request under valgrind (slow, repeatable)")
    parser.add_argument("--batches", type=int, default=3000)
    parser.add_argument("--header-compression", type=int, default=6, choices=range(-1, 10),
                        metavar="LEVEL", help="the requests' zlib level (as spdyasgi-bench)")
    parser.add_argument("--per-read", type=int, default=PER_BATCH, metavar="N",
                        help="requests per read (1: sequential requests, as hello-1x1)")
    parser.add_argument("--once", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.disable(logging.ERROR)
    runner = _loop_runner()
    if args.once:
        with open(args.once, "rb") as requests:
            per_read, reads = pickle.load(requests)
            runner(run(reads, per_read))
        return
    if args.callgrind:
        count = callgrind(100, 400, args.header_compression, args.per_read)
        print(f"{count:,.0f} instructions per request")
        return
    reads = encode_requests(args.batches, args.header_compression, args.per_read)
    results = sorted(runner(run(reads, args.per_read)) for _ in range(5))
    print(f"server CPU per request: best {results[0]:.2f} µs, median {results[2]:.2f} µs "
          f"({args.batches * args.per_read} requests per run, 5 runs)")


if __name__ == "__main__":
    main()
