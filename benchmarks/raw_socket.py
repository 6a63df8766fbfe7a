"""The streaming ceiling: a raw asyncio socket sender and receiver on loopback.

    python benchmarks/raw_socket.py send --port 0 [--certfile C --keyfile K]
        prints {"port": N} once listening; writes --mib MiB (one precomputed 1 MiB chunk
        again and again, awaiting drain) to every connection, then closes it; runs until
        killed. This plays the server role (pinned to the server core by the harness).
    python benchmarks/raw_socket.py recv --port N [--tls] [--connections K]
        opens K connections at once, reads each until EOF, prints
        ``RESULT {"bytes", "elapsed_s", "mb_per_s", "cpu_s"}``.

Same event loop as the servers (uvloop when installed), no protocol framing at all: what an
asyncio program on this machine can push through loopback (with and without TLS).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import ssl
import sys
import time

CHUNK = bytes(range(256)) * 4096  # 1 MiB


def _use_uvloop(name: str) -> None:
    if name == "asyncio":
        return
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        if name == "uvloop":
            raise


async def _send(args: argparse.Namespace) -> None:
    context = None
    if args.certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.certfile, args.keyfile)
    total = args.mib

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for _ in range(total):
                writer.write(CHUNK)
                await writer.drain()
            writer.close()
            await writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass

    server = await asyncio.start_server(handle, args.host, args.port, ssl=context,
                                        limit=1 << 20)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port}), flush=True)
    async with server:
        await server.serve_forever()


class _Sink(asyncio.Protocol):
    def __init__(self, done: asyncio.Future[int]) -> None:
        self.done = done
        self.count = 0

    def data_received(self, data: bytes) -> None:
        self.count += len(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(self.count)


async def _recv(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    context = None
    if args.tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    cpu0 = _cpu()
    start = time.perf_counter()
    futures = []
    for _ in range(args.connections):
        done: asyncio.Future[int] = loop.create_future()
        await loop.create_connection(lambda d=done: _Sink(d), args.host, args.port, ssl=context)
        futures.append(done)
    counts = await asyncio.wait_for(asyncio.gather(*futures), args.timeout)
    elapsed = time.perf_counter() - start
    total = sum(counts)
    print("RESULT " + json.dumps({
        "bytes": total, "elapsed_s": round(elapsed, 6),
        "mb_per_s": round(total / elapsed / 1e6, 3), "cpu_s": round(_cpu() - cpu0, 4),
        "connections": args.connections,
    }), flush=True)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    send = sub.add_parser("send")
    send.add_argument("--host", default="127.0.0.1")
    send.add_argument("--port", type=int, default=0)
    send.add_argument("--mib", type=int, default=100)
    send.add_argument("--certfile")
    send.add_argument("--keyfile")
    recv = sub.add_parser("recv")
    recv.add_argument("--host", default="127.0.0.1")
    recv.add_argument("--port", type=int, required=True)
    recv.add_argument("--tls", action="store_true")
    recv.add_argument("--connections", type=int, default=1)
    recv.add_argument("--timeout", type=float, default=120.0)
    for p in (send, recv):
        p.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto")
    args = parser.parse_args(argv)
    _use_uvloop(args.loop)
    try:
        asyncio.run(_send(args) if args.mode == "send" else _recv(args))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
