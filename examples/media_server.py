"""Serve a directory of media files with Range support (video players seek with it).

    MEDIA_DIR=/path/to/videos spdyasgi examples.media_server:app

Without ``MEDIA_DIR`` a 4 MiB sample file is generated in a temporary directory, so
``curl -r 0-99 http://127.0.0.1:8000/sample.bin`` works out of the box. Starlette's
``FileResponse`` answers ``Range`` requests with 206 and streams the file in chunks,
which spdyasgi sends under SPDY flow control.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route


def _media_dir() -> Path:
    configured = os.environ.get("MEDIA_DIR")
    if configured:
        return Path(configured).resolve()
    directory = Path(tempfile.mkdtemp(prefix="spdyasgi-media-"))
    block = bytes(range(256)) * 4096  # 1 MiB with a recognisable pattern
    with open(directory / "sample.bin", "wb") as f:
        for _ in range(4):
            f.write(block)
    return directory


MEDIA_DIR = _media_dir()


async def index(request: Request) -> Response:
    names = sorted(p.name for p in MEDIA_DIR.iterdir() if p.is_file())
    links = "".join(f'<li><a href="/{name}">{name}</a></li>' for name in names)
    return HTMLResponse(f"<h1>{MEDIA_DIR}</h1><ul>{links}</ul>")


async def media(request: Request) -> Response:
    path = (MEDIA_DIR / request.path_params["name"]).resolve()
    if MEDIA_DIR not in path.parents or not path.is_file():
        raise HTTPException(status_code=404)
    return FileResponse(path)  # handles Range / If-Range / HEAD


app = Starlette(routes=[Route("/", index), Route("/{name:path}", media)])
