"""Where one request's Python work goes: bytecodes and calls per request, per function.

    python benchmarks/request_ops.py                 # hello, 1,000 requests, top 40
    python benchmarks/request_ops.py --top 80 --header-compression -1

The same in-process session as `session_cpu.py` (a real `SpdyProtocol` serving the raw
hello app, requests pre-encoded in batches of 10), traced with `sys.settrace` opcode
events: every function that runs while the requests are served is listed with the
bytecodes it executed and how often it was called, per request. Bytecodes are not
instructions (one costs ~25-30 machine instructions in the 3.11 interpreter, calls and C
functions extra), but they show which Python piece is worth moving or cutting; then
`session_cpu.py --callgrind` measures what a change saved.
"""

from __future__ import annotations

import argparse
import collections
import logging
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import benchmarks.session_cpu as session_cpu  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=100, help="10 requests each")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--per-read", type=int, default=session_cpu.PER_BATCH, metavar="N",
                        help="requests per read (1: sequential requests, as hello-1x1)")
    parser.add_argument("--header-compression", type=int, default=6, choices=range(-1, 10),
                        metavar="LEVEL")
    args = parser.parse_args()
    logging.disable(logging.ERROR)
    reads = session_cpu.encode_requests(args.batches, args.header_compression, args.per_read)
    ops: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    tracing = False
    root = str(HERE.parent) + "/"

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        if not tracing:
            return None
        code = frame.f_code
        key = f"{code.co_filename.replace(root, '')}:{code.co_firstlineno}:{code.co_name}"
        calls[key] += 1
        frame.f_trace_opcodes = True

        def local(frame: FrameType, event: str, arg: Any) -> Any:
            if event == "opcode":
                ops[key] += 1
            return local

        return local

    # session_cpu.run reads the clock right before and right after serving: trace
    # exactly that span.
    clock = time.process_time

    def switch() -> float:
        nonlocal tracing
        tracing = not tracing
        return clock()

    session_cpu.time.process_time = switch  # type: ignore[attr-defined]
    sys.settrace(tracer)
    try:
        session_cpu._loop_runner()(session_cpu.run(reads, args.per_read))
    finally:
        sys.settrace(None)
        session_cpu.time.process_time = clock  # type: ignore[attr-defined]
    requests = (len(reads) - 1) * args.per_read
    print(f"{sum(ops.values()) / requests:,.0f} bytecodes per request "
          f"({requests} requests, header compression {args.header_compression})")
    print(f"{'bytecodes':>9} {'calls':>6}  function (per request)")
    for key, count in ops.most_common(args.top):
        print(f"{count / requests:9.1f} {calls[key] / requests:6.2f}  {key}")


if __name__ == "__main__":
    main()
