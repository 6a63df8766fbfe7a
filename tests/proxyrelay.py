"""A tiny layer-4 'balancer' for tests: prepends a PROXY header, then copies bytes both ways."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

from spdyasgi.proxy_protocol import V2_SIGNATURE

Address = tuple[str, int]
HeaderFor = Callable[[Address, Address], bytes]


def v1_header(client: Address, server: Address) -> bytes:
    return f"PROXY TCP4 {client[0]} {server[0]} {client[1]} {server[1]}\r\n".encode()


def v2_header(client: Address, server: Address, tlvs: bytes = b"", command: int = 1) -> bytes:
    body = (socket.inet_aton(client[0]) + socket.inet_aton(server[0])
            + struct.pack("!HH", client[1], server[1]) + tlvs)
    return V2_SIGNATURE + struct.pack("!BBH", 0x20 | command, 0x11, len(body)) + body


def tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!BH", kind, len(value)) + value


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@contextlib.asynccontextmanager
async def relay(backend_port: int, header_for: HeaderFor) -> AsyncIterator[int]:
    """Listen on 127.0.0.1:0; each connection gets ``header_for(client, server)`` first."""
    tasks: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = writer.get_extra_info("peername")[:2]
        server = writer.get_extra_info("sockname")[:2]
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", backend_port)
        up_writer.write(header_for(client, server))
        both = [asyncio.ensure_future(_pipe(reader, up_writer)),
                asyncio.ensure_future(_pipe(up_reader, writer))]
        tasks.update(both)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*both)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the scope's addresses, scheme and PROXY extension as JSON."""
    if scope["type"] != "http":
        return
    proxy = scope.get("extensions", {}).get("proxy_protocol")
    if proxy is not None:
        proxy = {k: (v.decode("latin-1") if isinstance(v, bytes) else v)
                 for k, v in proxy.items() if k != "tlvs"}
    body = json.dumps({
        "client": scope["client"], "server": scope["server"], "scheme": scope["scheme"],
        "spdy": "spdy" in scope.get("extensions", {}), "proxy": proxy, "pid": os.getpid(),
    }).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
