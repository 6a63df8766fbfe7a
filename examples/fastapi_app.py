"""A FastAPI app.

spdyasgi examples.fastapi_app:app
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel

app = FastAPI(title="spdyasgi example")


class Item(BaseModel):
    name: str
    price: float


@app.get("/")
async def root(request: Request) -> dict[str, Any]:
    spdy = request.scope.get("extensions", {}).get("spdy")
    return {"message": "Hello from FastAPI", "spdy": spdy}


@app.post("/items")
async def create_item(item: Item) -> Item:
    return item
