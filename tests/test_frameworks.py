"""Starlette and FastAPI apps (tests/frameworkapps.py) run unchanged over SPDY.

Mostly with the raw-frame Python client (tests/spdyraw.py); the push page, the file ranges
and the FastAPI JSON endpoint also with the independent Node client when it is available.
Where the question is "what does Starlette answer" (odd Range headers) the reference is
the same app driven directly through httpx's ASGITransport.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import frameworkapps, peers
from tests.frameworkapps import STYLE_CSS, chunk, data_file_bytes
from tests.spdyraw import RawSession
from tests.utils import run_server

DATA = data_file_bytes()
SIZE = len(DATA)

needs_node = pytest.mark.skipif(not peers.NODE_AVAILABLE, reason=peers.NODE_SKIP_REASON)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def static_dir(tmp_path: Path) -> Path:
    return frameworkapps.write_static_dir(tmp_path / "static")


@pytest.fixture
def starlette_app(static_dir: Path) -> Any:
    return frameworkapps.make_starlette_app(static_dir)


async def node_client(port: int, requests: list[dict[str, Any]], **plan: Any) -> dict[str, Any]:
    result = await asyncio.to_thread(
        peers.run_client, {"port": port, **plan, "requests": requests}, 30)
    assert result["protocol"] == plan.get("protocol", "spdy/3.1")
    for r in result["results"]:
        assert r["error"] is None, r
    return result


def hdr(reply: Any, name: bytes) -> str | None:
    value = reply.header(name)
    return None if value is None else value.decode()


# ------------------------------------------------------------------------- streaming


async def test_starlette_streaming_response_streams_in_order(static_dir: Path) -> None:
    gate = asyncio.Event()
    app = frameworkapps.make_starlette_app(static_dir, stream_gate=gate)
    n = 3000
    async with run_server(app) as (_, port):
        session = await RawSession.connect(port)
        sid = session.request(f"/stream?n={n}")
        reply = session.replies[sid]
        # The generator blocks after its first chunk until we have seen that chunk:
        # the response is streamed, not collected.
        while not reply.body:
            await session.pump()
        assert reply.status == 200
        assert hdr(reply, b"content-type") == "text/plain; charset=utf-8"
        assert hdr(reply, b"content-length") is None
        assert bytes(reply.body) == chunk(0)
        assert not reply.ended
        gate.set()
        await session.wait(sid)
        assert reply.reset is None
        assert bytes(reply.body) == b"".join(chunk(i) for i in range(n))
        assert reply.data_frames > 10
        await session.close()


async def test_fastapi_streaming_response() -> None:
    async with run_server(frameworkapps.fastapi_app, lifespan="on") as (_, port):
        session = await RawSession.connect(port)
        reply = await session.fetch("/fstream?n=500")
        assert reply.status == 200
        assert bytes(reply.body) == b"".join(chunk(i) for i in range(500))
        await session.close()


# ----------------------------------------------------------------------- FileResponse


SINGLE_RANGES = [
    ("bytes=0-0", 0, 1),
    ("bytes=0-99", 0, 100),
    ("bytes=1000-", 1000, SIZE),
    ("bytes=-777", SIZE - 777, SIZE),
    ("bytes=65530-200000", 65530, 200001),
    (f"bytes=100-{SIZE + 100}", 100, SIZE),
]


async def test_file_response_full_and_head(starlette_app: Any) -> None:
    async with run_server(starlette_app) as (_, port):
        session = await RawSession.connect(port)
        reply = await session.fetch("/file")  # http.response.pathsend under the hood
        assert reply.status == 200
        assert hdr(reply, b"content-length") == str(SIZE)
        assert hdr(reply, b"accept-ranges") == "bytes"
        assert hdr(reply, b"etag") and hdr(reply, b"last-modified")
        assert bytes(reply.body) == DATA
        head = await session.fetch("/file", method=b"HEAD")
        assert head.status == 200 and head.reply_fin and head.data_frames == 0
        assert hdr(head, b"content-length") == str(SIZE)
        await session.close()


@pytest.mark.parametrize(("spec", "start", "end"), SINGLE_RANGES)
async def test_file_response_single_range(starlette_app: Any, spec: str, start: int,
                                          end: int) -> None:
    async with run_server(starlette_app) as (_, port):
        session = await RawSession.connect(port)
        reply = await session.fetch("/file", headers=[(b"range", spec.encode())])
        assert reply.status == 206
        assert hdr(reply, b"content-range") == f"bytes {start}-{end - 1}/{SIZE}"
        assert hdr(reply, b"content-length") == str(end - start)
        assert bytes(reply.body) == DATA[start:end]
        await session.close()


def parse_byteranges(body: bytes, boundary: str) -> list[tuple[str, bytes]]:
    """Split a multipart/byteranges body into (content-range, payload) pairs."""
    parts = []
    delimiter = f"--{boundary}".encode()
    assert body.endswith(delimiter + b"--")
    for raw in body[: -len(delimiter) - 2].split(delimiter)[1:]:
        head, _, payload = raw.partition(b"\r\n\r\n")
        assert payload.endswith(b"\r\n")
        headers = dict(line.split(b": ", 1) for line in head.strip().split(b"\r\n"))
        assert headers[b"Content-Type"] == b"application/octet-stream"
        parts.append((headers[b"Content-Range"].decode(), payload[:-2]))
    return parts


async def test_file_response_multiple_ranges(starlette_app: Any) -> None:
    spec = "bytes=0-9, 100-199, 250000-, 150-160"  # the last overlaps and is merged
    async with run_server(starlette_app) as (_, port):
        session = await RawSession.connect(port)
        reply = await session.fetch("/file", headers=[(b"range", spec.encode())])
        assert reply.status == 206
        ctype = hdr(reply, b"content-type") or ""
        assert ctype.startswith("multipart/byteranges; boundary=")
        assert hdr(reply, b"content-length") == str(len(reply.body))
        parts = parse_byteranges(bytes(reply.body), ctype.split("boundary=")[1])
        assert parts == [
            (f"bytes 0-9/{SIZE}", DATA[0:10]),
            (f"bytes 100-199/{SIZE}", DATA[100:200]),
            (f"bytes 250000-{SIZE - 1}/{SIZE}", DATA[250000:]),
        ]
        await session.close()


ODD_RANGES = [
    ("bytes=abc", 400),                # nothing parseable: Starlette says 400
    ("bytes=500-100", 400),            # start after end
    ("items=0-5", 400),                # unit other than bytes
    (f"bytes={SIZE}-", 416),           # unsatisfiable
    ("bytes=-0", 416),
    ("bytes=0-9, 99999999-", 416),     # one unsatisfiable range spoils the lot
]


async def test_file_response_odd_ranges_match_starlette(starlette_app: Any) -> None:
    """Whatever Starlette answers in-process (httpx ASGITransport), it answers over SPDY."""
    transport = httpx.ASGITransport(app=starlette_app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://test") as reference,
        run_server(starlette_app) as (_, port),
    ):
        session = await RawSession.connect(port)
        for spec, status in ODD_RANGES:
            expected = await reference.get("/file", headers={"range": spec})
            assert expected.status_code == status, spec
            reply = await session.fetch("/file", headers=[(b"range", spec.encode())])
            assert reply.status == status, spec
            assert bytes(reply.body) == expected.content, spec
            assert hdr(reply, b"content-range") == expected.headers.get("content-range")
            assert hdr(reply, b"content-type") == expected.headers.get("content-type")
        # If-Range that does not match the validator: the whole file, 200
        reply = await session.fetch("/file", headers=[(b"range", b"bytes=0-9"),
                                                      (b"if-range", b'"stale"')])
        assert reply.status == 200 and bytes(reply.body) == DATA
        await session.close()


@needs_node
async def test_file_ranges_with_node_client_tls(starlette_app: Any,
                                               tls_files: tuple[str, str]) -> None:
    certfile, keyfile = tls_files
    async with run_server(starlette_app, ssl_certfile=certfile,
                          ssl_keyfile=keyfile) as (_, port):
        result = await node_client(
            port,
            [{"path": "/file", "headers": {"range": spec}} for spec, _, _ in SINGLE_RANGES]
            + [{"path": "/file"}],
            tls=True,
        )
        *ranged, full = result["results"]
        for (spec, start, end), r in zip(SINGLE_RANGES, ranged, strict=True):
            assert r["status"] == 206, spec
            assert r["headers"]["content-range"] == f"bytes {start}-{end - 1}/{SIZE}"
            assert r["body_sha256"] == _sha(DATA[start:end]), spec
        assert full["status"] == 200 and full["body_sha256"] == _sha(DATA)


# ----------------------------------------------------------------------------- push


async def test_send_push_promise_page_raw_client(starlette_app: Any) -> None:
    async with run_server(starlette_app) as (_, port):
        session = await RawSession.connect(port)
        sid = session.request("/page", headers=[(b"accept", b"text/html")])
        (reply,) = await session.wait(sid)
        assert reply.status == 200
        assert bytes(reply.body) == frameworkapps.PAGE_HTML.encode()
        assert len(reply.pushes) == 1, reply
        push = session.replies[reply.pushes[0]]
        await session.wait(push.stream_id)
        headers = dict(push.headers)
        assert headers[b":path"] == b"/static/style.css"
        assert push.stream_id % 2 == 0 and push.reset is None
        assert headers[b"content-type"] == b"text/css; charset=utf-8"
        assert headers[b"content-length"] == str(len(STYLE_CSS)).encode()
        assert bytes(push.body) == STYLE_CSS
        await session.close()


@needs_node
@pytest.mark.parametrize("tls", [False, True], ids=["cleartext", "tls"])
async def test_send_push_promise_page_node_client(starlette_app: Any, tls: bool,
                                                  tls_files: tuple[str, str]) -> None:
    certfile, keyfile = tls_files
    options = {"ssl_certfile": certfile, "ssl_keyfile": keyfile} if tls else {}
    async with run_server(starlette_app, **options) as (_, port):
        result = await node_client(port, [{"path": "/page", "capture_body": 1000}], tls=tls)
        (page,) = result["results"]
        assert page["body_text"] == frameworkapps.PAGE_HTML
        (push,) = page["pushes"]
        assert push["path"] == "/static/style.css"
        assert push["error"] is None and push["status"] == 200
        assert push["body_sha256"] == _sha(STYLE_CSS)
        pushed_headers = {**push["headers"], **(push.get("trailers") or {})}
        assert pushed_headers["content-type"] == "text/css; charset=utf-8"
        assert pushed_headers[":scheme"] == ("https" if tls else "http")


# -------------------------------------------------------------------------- FastAPI


async def test_fastapi_json_post_pydantic() -> None:
    async with run_server(frameworkapps.fastapi_app, lifespan="on") as (_, port):
        session = await RawSession.connect(port)
        body = json.dumps({"name": "widget", "price": 2.5, "quantity": 4,
                           "tags": ["b", "a"]}).encode()
        reply = await session.fetch("/items", method=b"POST", body=body,
                                    headers=[(b"content-type", b"application/json"),
                                             (b"content-length", str(len(body)).encode())])
        assert reply.status == 200
        assert hdr(reply, b"content-type") == "application/json"
        assert json.loads(reply.body) == {"name": "WIDGET", "total": 10.0, "tags": ["a", "b"]}
        bad = json.dumps({"name": "", "price": -1}).encode()
        reply = await session.fetch("/items", method=b"POST", body=bad,
                                    headers=[(b"content-type", b"application/json")])
        assert reply.status == 422
        fields = sorted(err["loc"][-1] for err in json.loads(reply.body)["detail"])
        assert fields == ["name", "price"]
        reply = await session.fetch("/items", method=b"GET")
        assert reply.status == 405
        await session.close()


@needs_node
async def test_fastapi_json_post_node_client() -> None:
    item = {"name": "gadget", "price": 1.25, "quantity": 3, "tags": ["z", "y"]}
    async with run_server(frameworkapps.fastapi_app, lifespan="on") as (_, port):
        result = await node_client(port, [
            {"method": "POST", "path": "/items", "capture_body": 1000,
             "headers": {"content-type": "application/json"},
             "body": {"text": json.dumps(item)}},
            {"path": "/me", "headers": {"x-token": "alice"}, "capture_body": 1000},
        ])
        post, me = result["results"]
        assert post["status"] == 200
        assert json.loads(post["body_text"]) == {"name": "GADGET", "total": 3.75,
                                                 "tags": ["y", "z"]}
        assert json.loads(me["body_text"]) == {"name": "alice", "role": "admin"}


async def test_fastapi_dependency_and_background_task() -> None:
    tag = uuid.uuid4().hex[:8]
    gate = frameworkapps.background_gate[tag] = asyncio.Event()
    try:
        async with run_server(frameworkapps.fastapi_app, lifespan="on") as (_, port):
            session = await RawSession.connect(port)
            reply = await session.fetch("/me")
            assert reply.status == 401
            assert json.loads(reply.body) == {"detail": "bad token"}
            reply = await session.fetch("/me", headers=[(b"x-token", b"alice")])
            assert json.loads(reply.body) == {"name": "alice", "role": "admin"}
            # The response (with FIN) arrives while its background task is still blocked.
            reply = await session.fetch(f"/notify/{tag}", method=b"POST", body=b"",
                                        headers=[(b"x-token", b"bob")])
            assert reply.status == 202 and reply.ended
            assert json.loads(reply.body) == {"queued": tag}
            assert ("background", tag, "bob") not in frameworkapps.events
            gate.set()
            for _ in range(250):
                if ("background", tag, "bob") in frameworkapps.events:
                    break
                await asyncio.sleep(0.02)
            assert ("background", tag, "bob") in frameworkapps.events
            # the session is still usable afterwards
            reply = await session.fetch("/me", headers=[(b"x-token", b"bob")])
            assert json.loads(reply.body)["role"] == "reader"
            await session.close()
    finally:
        frameworkapps.background_gate.pop(tag, None)


# -------------------------------------------------------------------------- lifespan


async def test_starlette_lifespan_on_state_in_request(starlette_app: Any) -> None:
    frameworkapps.events.clear()
    async with run_server(starlette_app, lifespan="on") as (_, port):
        assert frameworkapps.events == ["starlette startup"]  # before accepting
        session = await RawSession.connect(port)
        reply = await session.fetch("/state")
        assert reply.status == 200
        assert json.loads(reply.body) == {"greeting": "hello from lifespan", "startups": 1}
        # every stream of the session sees the same state
        reply = await session.fetch("/state")
        assert json.loads(reply.body)["greeting"] == "hello from lifespan"
        await session.close()
    assert frameworkapps.events == ["starlette startup", "starlette shutdown"]


async def test_starlette_request_body_over_spdy(starlette_app: Any) -> None:
    async with run_server(starlette_app) as (_, port):
        session = await RawSession.connect(port)
        body = bytes(range(256)) * 2000
        reply = await session.fetch("/echo", method=b"PUT", body=body)
        assert reply.status == 200
        assert bytes(reply.body) == f"PUT {len(body)} {body[:20]!r}".encode()
        await session.close()
