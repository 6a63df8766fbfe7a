"""Server push: the page's stylesheet is pushed before the browser asks for it.

    spdyasgi examples.push_demo:app --self-signed

``request.send_push_promise()`` uses the ASGI ``http.response.push`` extension; over
SPDY the server opens a pushed stream associated with the page request and runs the
app for ``/style.css``. Over HTTP/1.1 the extension is absent and Starlette skips it.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

CSS = "body { font-family: sans-serif; background: #f4f4ff; }\n"


async def page(request: Request) -> HTMLResponse:
    await request.send_push_promise("/style.css")
    return HTMLResponse(
        '<!doctype html><link rel="stylesheet" href="/style.css">'
        "<h1>This stylesheet was pushed</h1>"
    )


async def style(request: Request) -> Response:
    return Response(CSS, media_type="text/css")


app = Starlette(routes=[Route("/", page), Route("/style.css", style)])
