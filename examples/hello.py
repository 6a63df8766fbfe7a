"""The smallest raw ASGI app: says hello and which protocol carried the request.

spdyasgi examples.hello:app
"""

from __future__ import annotations

from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    spdy = scope.get("extensions", {}).get("spdy")
    if spdy:
        protocol = f"SPDY/{spdy.get('version')} stream {spdy.get('stream_id')}"
    else:
        protocol = f"HTTP/{scope.get('http_version', '1.1')}"
    body = f"Hello, SPDY!\nYou came over {protocol}.\n".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
