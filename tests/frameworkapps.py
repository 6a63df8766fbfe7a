"""Ordinary Starlette and FastAPI applications, written as their docs say, nothing SPDY-aware.

Used by tests/test_frameworks.py to check that such apps run unchanged over SPDY.  The
Starlette app is built by :func:`make_starlette_app` around a directory of files (so a test
can put a temp dir there); importable defaults live in ``STATIC_DIR`` for
``python -m spdyasgi tests.frameworkapps:starlette_app``-style use.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

#: the stylesheet served from /static/style.css and pushed by /page
STYLE_CSS = b"/* frameworkapps */\nbody { background: #fafafa; color: #222; }\n" * 40
#: the page that pushes it
PAGE_HTML = '<!doctype html><link rel="stylesheet" href="/static/style.css"><h1>pushed</h1>'

#: what the apps observed, for assertions
events: list[Any] = []


def chunk(i: int) -> bytes:
    return f"chunk {i:06d} ".encode() + b"." * (i % 50) + b"\n"


def data_file_bytes(size: int = 300_000) -> bytes:
    return bytes((i * 31 + i // 251) % 256 for i in range(size))


def write_static_dir(directory: Path) -> Path:
    """Write style.css and data.bin into ``directory`` (atomically: runs may overlap)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in (("style.css", STYLE_CSS), ("data.bin", data_file_bytes())):
        target = directory / name
        if target.is_file() and target.read_bytes() == content:
            continue
        tmp = directory / f".{name}.{os.getpid()}.tmp"
        tmp.write_bytes(content)
        os.replace(tmp, target)
    return directory


# ------------------------------------------------------------------------------ Starlette


def make_starlette_app(static_dir: Path, stream_gate: asyncio.Event | None = None) -> Starlette:
    """A plain Starlette app.  ``stream_gate`` (optional) lets a test hold /stream after its
    first chunk until it has seen that chunk arrive -- proof the response is streamed."""

    async def stream(request: Request) -> StreamingResponse:
        n = int(request.query_params.get("n", "1000"))

        async def numbers() -> AsyncIterator[bytes]:
            for i in range(n):
                yield chunk(i)
                if i == 0 and stream_gate is not None:
                    await asyncio.wait_for(stream_gate.wait(), 10)
                elif i % 97 == 0:
                    await asyncio.sleep(0.001)

        return StreamingResponse(numbers(), media_type="text/plain")

    async def file(request: Request) -> FileResponse:
        return FileResponse(static_dir / "data.bin", media_type="application/octet-stream")

    async def page(request: Request) -> HTMLResponse:
        await request.send_push_promise("/static/style.css")
        return HTMLResponse(PAGE_HTML)

    async def state(request: Request) -> JSONResponse:
        return JSONResponse({"greeting": request.state.greeting,
                             "startups": request.state.counter["startups"]})

    async def echo_form(request: Request) -> PlainTextResponse:
        body = await request.body()
        return PlainTextResponse(f"{request.method} {len(body)} {body[:20]!r}")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        counter = {"startups": 1}
        events.append("starlette startup")
        yield {"greeting": "hello from lifespan", "counter": counter}
        events.append("starlette shutdown")

    return Starlette(
        routes=[
            Route("/stream", stream),
            Route("/file", file),
            Route("/page", page),
            Route("/state", state),
            Route("/echo", echo_form, methods=["POST", "PUT"]),
            Mount("/static", StaticFiles(directory=static_dir), name="static"),
        ],
        lifespan=lifespan,
    )


STATIC_DIR = write_static_dir(Path(tempfile.gettempdir()) / "spdyasgi-frameworkapps")
starlette_app = make_starlette_app(STATIC_DIR)


# -------------------------------------------------------------------------------- FastAPI


class Item(BaseModel):
    name: str = Field(min_length=1)
    price: float = Field(gt=0)
    quantity: int = 1
    tags: list[str] = []


class Receipt(BaseModel):
    name: str
    total: float
    tags: list[str]


@contextlib.asynccontextmanager
async def fastapi_lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    events.append("fastapi startup")
    yield {"db": {"alice": "admin", "bob": "reader"}}
    events.append("fastapi shutdown")


fastapi_app = FastAPI(lifespan=fastapi_lifespan)

#: background tasks of /notify wait for this gate (a test opens it after the response)
background_gate: dict[str, asyncio.Event] = {}


async def current_user(request: Request,
                       x_token: Annotated[str | None, Header()] = None) -> dict[str, str]:
    users: dict[str, str] = request.state.db
    if x_token not in users:
        raise HTTPException(status_code=401, detail="bad token")
    return {"name": x_token, "role": users[x_token]}


@fastapi_app.post("/items", response_model=Receipt)
async def create_item(item: Item) -> Receipt:
    return Receipt(name=item.name.upper(), total=round(item.price * item.quantity, 2),
                   tags=sorted(item.tags))


@fastapi_app.get("/me")
async def me(user: Annotated[dict[str, str], Depends(current_user)]) -> dict[str, str]:
    return user


async def record(tag: str, who: str) -> None:
    gate = background_gate.get(tag)
    if gate is not None:
        await asyncio.wait_for(gate.wait(), 10)
    events.append(("background", tag, who))


@fastapi_app.post("/notify/{tag}", status_code=202)
async def notify(tag: str, background_tasks: BackgroundTasks,
                 user: Annotated[dict[str, str], Depends(current_user)]) -> dict[str, str]:
    background_tasks.add_task(record, tag, user["name"])
    return {"queued": tag}


@fastapi_app.get("/fstream")
async def fstream(n: int = 100) -> StreamingResponse:
    async def gen() -> AsyncIterator[str]:
        for i in range(n):
            yield chunk(i).decode()

    return StreamingResponse(gen(), media_type="text/plain")
