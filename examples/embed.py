"""Run spdyasgi inside an existing asyncio program and stop it from code.

    python -m examples.embed            # serves on 127.0.0.1:8000 for 5 seconds
    python -m examples.embed 30 8001    # 30 seconds on port 8001

``Server.serve()`` is a coroutine: run it as a task next to your own work, set
``server.should_exit = True`` to start a graceful shutdown, then await the task.
If the server cannot listen (port taken, unknown host), ``serve()`` raises
``BindError`` naming the address: awaiting the task re-raises it, and this program
exits with status 3.
"""

from __future__ import annotations

import asyncio
import sys

from examples.hello import app
from spdyasgi import Config, Server
from spdyasgi.server import BindError


async def main(seconds: float, port: int = 8000) -> None:
    config = Config(app, host="127.0.0.1", port=port, log_level="info")
    server = Server(config)
    stop = asyncio.Event()

    serving = asyncio.create_task(server.serve())
    # Your program's own work; here: stop after `seconds` or when `stop` is set elsewhere.
    # Waiting on `serving` too means a failed start is noticed at once.
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    server.should_exit = True
    await serving  # re-raises BindError from a failed start


if __name__ == "__main__":
    try:
        args = sys.argv[1:]
        asyncio.run(main(float(args[0]) if args else 5.0, int(args[1]) if args[1:] else 8000))
    except BindError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(3)
