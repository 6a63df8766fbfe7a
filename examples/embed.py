"""Run spdyasgi inside an existing asyncio program and stop it from code.

    python -m examples.embed            # serves for 5 seconds
    python -m examples.embed 30

``Server.serve()`` is a coroutine: run it as a task next to your own work, set
``server.should_exit = True`` to start a graceful shutdown, then await the task.
"""

from __future__ import annotations

import asyncio
import sys

from examples.hello import app
from spdyasgi import Config, Server


async def main(seconds: float) -> None:
    config = Config(app, host="127.0.0.1", port=8000, log_level="info")
    server = Server(config)
    stop = asyncio.Event()

    serving = asyncio.create_task(server.serve())
    # Your program's own work; here: stop after `seconds` or when `stop` is set elsewhere.
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        pass
    server.should_exit = True
    await serving


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 5.0))
