"""The Starlette and FastAPI WebSocket apps the WebSocket tests serve (no tests here).

Importable as ``tests.test_websockets_app:app`` for subprocess servers and gunicorn.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi import WebSocket as FastAPIWebSocket
from starlette.applications import Starlette
from starlette.endpoints import WebSocketEndpoint
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

#: What the apps saw, for the tests running the server in-process.
SEEN: dict[str, Any] = {}


class Echo(WebSocketEndpoint):
    """Echoes text as text and bytes as bytes; picks the first offered subprotocol."""

    encoding = None

    async def on_connect(self, websocket: WebSocket) -> None:
        offered = websocket.scope["subprotocols"]
        await websocket.accept(subprotocol=offered[0] if offered else None)

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        if isinstance(data, str):
            await websocket.send_text(data)
        else:
            await websocket.send_bytes(data)

    async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
        SEEN["echo_disconnect"] = close_code


async def close_with(websocket: WebSocket) -> None:
    """The client says "CODE REASON"; the server closes with exactly that."""
    await websocket.accept()
    code, _, reason = (await websocket.receive_text()).partition(" ")
    await websocket.close(int(code), reason)


async def wait_close(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        await websocket.receive_text()
    except WebSocketDisconnect as exc:
        SEEN["client_close"] = (exc.code, exc.reason)


async def deny(websocket: WebSocket) -> None:
    await websocket.send_denial_response(PlainTextResponse("not you", status_code=418))


async def refuse(websocket: WebSocket) -> None:
    await websocket.close()  # before accept: 403


async def flood(websocket: WebSocket) -> None:
    """Sends 64 KiB messages until the client goes; counts how many send() returned."""
    await websocket.accept()
    chunk = b"x" * 65536
    SEEN["flood_sent"] = 0
    try:
        while True:
            await websocket.send_bytes(chunk)
            SEEN["flood_sent"] += 1
    except Exception as exc:
        SEEN["flood_error"] = exc


async def hello(_request: Any) -> PlainTextResponse:
    return PlainTextResponse("hello")


app = Starlette(
    routes=[
        Route("/", hello),
        WebSocketRoute("/echo", Echo),
        WebSocketRoute("/close", close_with),
        WebSocketRoute("/wait-close", wait_close),
        WebSocketRoute("/deny", deny),
        WebSocketRoute("/refuse", refuse),
        WebSocketRoute("/flood", flood),
    ]
)

fastapi_app = FastAPI()


@fastapi_app.websocket("/echo")
async def fastapi_echo(websocket: FastAPIWebSocket) -> None:
    offered = websocket.scope["subprotocols"]
    await websocket.accept(subprotocol=offered[0] if offered else None)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        return


async def crash_before_accept(websocket: WebSocket) -> None:
    raise RuntimeError("boom before accept")


async def crash_after_accept(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.receive_text()
    raise RuntimeError("boom after accept")


async def forget_accept(websocket: WebSocket) -> None:
    return


async def hold(websocket: WebSocket) -> None:
    """Accepts and waits; records the disconnect the server gives it."""
    await websocket.accept()
    SEEN["hold_open"] = True
    try:
        await websocket.receive_text()
    except WebSocketDisconnect as exc:
        SEEN["hold_disconnect"] = exc.code


app.router.routes += [
    WebSocketRoute("/crash-before", crash_before_accept),
    WebSocketRoute("/crash-after", crash_after_accept),
    WebSocketRoute("/forget", forget_accept),
    WebSocketRoute("/hold", hold),
]


async def sleepy(websocket: WebSocket) -> None:
    """Accepts, then reads nothing until the test sets SEEN["wake"]; counts messages."""
    await websocket.accept()
    SEEN["sleepy_open"] = True
    await SEEN["wake"].wait()
    SEEN["sleepy_got"] = 0
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        SEEN["sleepy_got"] += 1


app.router.routes.append(WebSocketRoute("/sleepy", sleepy))
