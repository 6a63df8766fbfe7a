"""A Starlette app; ``request.scope["extensions"]["spdy"]`` tells SPDY requests apart.

spdyasgi examples.starlette_app:app
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route


async def homepage(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello from Starlette over spdyasgi!\n")


async def info(request: Request) -> JSONResponse:
    spdy = request.scope.get("extensions", {}).get("spdy")
    return JSONResponse(
        {
            "http_version": request.scope.get("http_version"),
            "spdy": spdy,
            "client": list(request.client) if request.client else None,
            "scheme": request.url.scheme,
        }
    )


async def echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(await request.body())


app = Starlette(
    routes=[
        Route("/", homepage),
        Route("/info", info),
        Route("/echo", echo, methods=["POST"]),
    ]
)
