"""Self-tests of the independent-peer tooling (tests/peers, tests/vectors, tests/peers.py).

node client.js <-> node server.js (cleartext by prior knowledge and TLS/ALPN),
decode.js against the committed spdy-transport vectors, and the Python body
generator against the JS one.  No spdyasgi code is involved.
"""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

try:
    from tests import peers
except ImportError:  # tests/ is not a package: its directory is on sys.path
    import peers  # type: ignore[no-redef]

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(not peers.NODE_AVAILABLE, reason=peers.NODE_SKIP_REASON),
]

KAV_SYN_STREAM = (
    "800300010000002c0000000100000000000078f9e3c6a7c202e50e507ab442a45a77d7105006"
    "b32a4804974d8cfa00000000ffff"
)
MiB = 1 << 20


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def plain_port() -> Any:
    with peers.start_node_server({"tls": False, "protocol": "spdy/3.1"}) as port:
        yield port


@pytest.fixture(scope="module")
def tls_port(tmp_path_factory: pytest.TempPathFactory) -> Any:
    key, cert = peers.make_self_signed_cert(tmp_path_factory.mktemp("peer-cert"))
    with peers.start_node_server({"tls": True, "key": key, "cert": cert}) as port:
        yield port


def _ok(result: dict[str, Any], n: int) -> list[dict[str, Any]]:
    assert len(result["results"]) == n, result
    for r in result["results"]:
        assert r["error"] is None, r
    return result["results"]  # type: ignore[no-any-return]


# ------------------------------------------------------------------ body generator


def test_body_generator_matches_js() -> None:
    cases: list[tuple[int, int | str]] = [
        (0, 0),
        (1, 1),
        (4095, 7),
        (4096, 7),
        (4097, "seed"),
        (100_000, 12345),
    ]
    script = (
        "const b=require('./lib/body');"
        "const cases=JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify({"
        "sha: cases.map(c=>b.sha256(c[0],c[1])),"
        "slice: b.slice(10000,3,4090,4110).toString('hex')}))"
    )
    out = subprocess.run(
        [str(peers.NODE), "-e", script, json.dumps(cases)],
        cwd=str(peers.PEERS_DIR),
        capture_output=True,
        check=True,
        timeout=30,
    )
    js = json.loads(out.stdout)
    assert js["sha"] == [peers.body_sha256(n, s) for n, s in cases]
    assert js["slice"] == peers.body_bytes(10000, 3, 4090, 4110).hex()
    assert peers.body_bytes(10000, 3)[4090:4110].hex() == js["slice"]
    assert peers.body_sha256(100_000, 12345) == _sha(peers.body_bytes(100_000, 12345))
    assert b"".join(peers.body_chunks(9000, "x", chunk_size=1000)) == peers.body_bytes(9000, "x")


# ------------------------------------------------------------ client <-> server


def test_cleartext_hello_and_settings(plain_port: int) -> None:
    res = peers.run_client(
        {"port": plain_port, "requests": [{"path": "/hello", "capture_body": 100}]}, timeout=20
    )
    assert res["protocol"] == "spdy/3.1"
    (r,) = _ok(res, 1)
    assert r["status"] == 200
    assert r["body_text"] == "hello"
    assert r["body_sha256"] == _sha(b"hello")
    assert r["headers"][":status"] == "200 OK"
    assert r["headers"][":version"] == "HTTP/1.1"
    assert r["stream_id"] == 1
    assert res["settings"]["initial_window_size"] == 1048576
    assert res["sessions"][0]["session_window_updates"] >= 1


def test_cleartext_bytes_10mib_and_range(plain_port: int) -> None:
    res = peers.run_client(
        {
            "port": plain_port,
            "requests": [
                {"path": f"/bytes?n={10 * MiB}&seed=42"},
                {"path": "/bytes?n=10000&seed=5", "headers": {"range": "bytes=4090-4109"}},
            ],
        },
        timeout=30,
    )
    big, rng = _ok(res, 2)
    assert big["status"] == 200
    assert big["body_length"] == 10 * MiB
    assert big["body_sha256"] == peers.body_sha256(10 * MiB, 42)
    assert rng["status"] == 206
    assert rng["headers"]["content-range"] == "bytes 4090-4109/10000"
    assert rng["body_sha256"] == _sha(peers.body_bytes(10000, 5, 4090, 4110))


def test_cleartext_echo_1mib_and_upload(plain_port: int) -> None:
    res = peers.run_client(
        {
            "port": plain_port,
            "requests": [
                {"method": "POST", "path": "/echo", "body": {"size": MiB, "seed": "echo"}},
                {
                    "method": "PUT",
                    "path": "/upload",
                    "body": {"size": 3 * MiB + 17, "seed": 9},
                    "capture_body": 500,
                },
            ],
        },
        timeout=30,
    )
    echo, up = _ok(res, 2)
    assert echo["status"] == 200
    assert echo["body_length"] == MiB
    assert echo["body_sha256"] == peers.body_sha256(MiB, "echo")
    assert json.loads(up["body_text"]) == {
        "length": 3 * MiB + 17,
        "sha256": peers.body_sha256(3 * MiB + 17, 9),
    }


def test_cleartext_push_received(plain_port: int) -> None:
    res = peers.run_client({"port": plain_port, "requests": [{"path": "/push"}]}, timeout=20)
    (r,) = _ok(res, 1)
    assert r["status"] == 200
    assert r["body_sha256"] == _sha(peers.PUSH_PAGE)
    (p,) = r["pushes"]
    assert p["error"] is None
    assert p["path"] == "/pushed.css"
    assert p["stream_id"] % 2 == 0
    assert p["headers"][":path"] == "/pushed.css"
    assert p["headers"]["content-type"] == "text/css"
    assert p["body_sha256"] == _sha(peers.PUSHED_CSS)


def test_cleartext_50_concurrent_streams(plain_port: int) -> None:
    res = peers.run_client(
        {"port": plain_port, "requests": [{"path": "/bytes?n=20000&seed=3", "repeat": 50}]},
        timeout=30,
    )
    rs = _ok(res, 50)
    want = peers.body_sha256(20000, 3)
    assert all(r["status"] == 200 and r["body_sha256"] == want for r in rs)
    assert sorted(r["stream_id"] for r in rs) == list(range(1, 100, 2))


def test_multiple_sessions_and_abort(plain_port: int) -> None:
    res = peers.run_client(
        {
            "port": plain_port,
            "sessions": 3,
            "requests": [
                {"path": f"/bytes?n={4 * MiB}&seed=1", "abort_after_bytes": 50_000},
                {"path": "/hello", "repeat": 2},
            ],
        },
        timeout=30,
    )
    rs = _ok(res, 9)
    assert {r["session"] for r in rs} == {0, 1, 2}
    aborted = [r for r in rs if r["index"] == 0]
    assert all(r["aborted"] == "stream" and r["body_length"] < 4 * MiB for r in aborted)
    assert all(r["status"] == 200 for r in rs if r["index"] == 1)


def test_tls_alpn_spdy31(tls_port: int) -> None:
    res = peers.run_client(
        {
            "port": tls_port,
            "tls": True,
            "protocol": "spdy/3.1",
            "requests": [
                {"path": "/hello"},
                {"path": f"/bytes?n={MiB}&seed=8"},
                {"method": "POST", "path": "/echo", "body": {"hex": "00ff10"}},
                {"path": "/push"},
            ],
        },
        timeout=30,
    )
    assert res["protocol"] == "spdy/3.1"
    hello, data, echo, push = _ok(res, 4)
    assert hello["body_sha256"] == _sha(b"hello")
    assert data["body_sha256"] == peers.body_sha256(MiB, 8)
    assert echo["body_sha256"] == _sha(bytes.fromhex("00ff10"))
    assert push["pushes"][0]["body_sha256"] == _sha(peers.PUSHED_CSS)


def test_tls_alpn_http11_fallback(tls_port: int) -> None:
    res = peers.run_client(
        {"port": tls_port, "tls": True, "alpn": ["http/1.1"], "requests": [{"path": "/hello"}]},
        timeout=20,
    )
    assert res["protocol"] == "http/1.1"
    (r,) = _ok(res, 1)
    assert r["status"] == 200 and r["body_sha256"] == _sha(b"hello")


# ----------------------------------------------------------------------- decode.js


def test_decode_known_answer_syn_stream() -> None:
    (f,) = peers.decode_frames(KAV_SYN_STREAM, version=3, role="client")
    assert f["type"] == "SYN_STREAM"
    assert f["stream_id"] == 1
    assert f["priority"] == 0 and f["fin"] is False
    assert f["headers"] == {":method": "GET", ":path": "/"}
    assert "transport_error" not in f
    assert f["transport"]["headers"] == {":method": "GET", ":path": "/"}


def test_decode_js_decodes_vectors_back_to_expect() -> None:
    vectors = peers.load_vectors()
    assert len(vectors) >= 20
    names = {v["name"] for v in vectors}
    assert {"client_header_sequence", "server_header_sequence", "server_push_syn_stream"} <= names
    decoded = peers.decode_frames_many(
        [{"frames_hex": v["hex"], "version": v["version"], "role": v["role"]} for v in vectors]
    )
    for v, frames in zip(vectors, decoded, strict=True):
        expects = v["expect"] if isinstance(v["expect"], list) else [v["expect"]]
        assert len(frames) == len(expects), v["name"]
        for got, want in zip(frames, expects, strict=True):
            assert "error" not in got, (v["name"], got)
            assert "transport_error" not in got, (v["name"], got)
            for key, value in want.items():
                assert got[key] == value, (v["name"], key, got)


# ----------------------------------------- Python-side cross-check of the vectors

_DICT_FILE = Path("/work/shared/docs/spdy3-dictionary.hex")


def _py_decode(hex_frames: str, zdict: bytes) -> list[dict[str, Any]]:
    data = bytes.fromhex(hex_frames)
    inflater = zlib.decompressobj(zdict=zdict)
    out = []
    off = 0
    while off < len(data):
        word, flags_len = struct.unpack_from(">II", data, off)
        flags, length = flags_len >> 24, flags_len & 0xFFFFFF
        payload = data[off + 8 : off + 8 + length]
        off += 8 + length
        frame: dict[str, Any] = {"flags": flags}
        if word & 0x80000000:
            ftype = word & 0xFFFF
            block = {1: payload[10:], 2: payload[4:], 8: payload[4:]}.get(ftype)
            frame["stream_id"] = 0
            if ftype in (1, 2, 8, 3, 9):
                frame["stream_id"] = struct.unpack_from(">I", payload)[0] & 0x7FFFFFFF
            if block:
                nv = inflater.decompress(block)
                (count,) = struct.unpack_from(">I", nv)
                pos, headers = 4, {}
                for _ in range(count):
                    (n,) = struct.unpack_from(">I", nv, pos)
                    name = nv[pos + 4 : pos + 4 + n].decode("latin-1")
                    pos += 4 + n
                    (n,) = struct.unpack_from(">I", nv, pos)
                    value = nv[pos + 4 : pos + 4 + n].decode("latin-1")
                    pos += 4 + n
                    parts = value.split("\0")
                    headers[name] = parts if len(parts) > 1 else value
                assert pos == len(nv)
                frame["headers"] = headers
        else:
            frame["stream_id"] = word & 0x7FFFFFFF
        out.append(frame)
    return out


@pytest.mark.skipif(not _DICT_FILE.exists(), reason="shared SPDY/3 dictionary not available")
def test_vectors_decode_with_python_zlib() -> None:
    zdict = bytes.fromhex(_DICT_FILE.read_text())
    assert zlib.adler32(zdict) == 0xE3C6A7C2
    for v in peers.load_vectors():
        expects = v["expect"] if isinstance(v["expect"], list) else [v["expect"]]
        frames = _py_decode(v["hex"], zdict)
        assert len(frames) == len(expects), v["name"]
        for got, want in zip(frames, expects, strict=True):
            assert got["flags"] == want["flags"], v["name"]
            assert got["stream_id"] == want["stream_id"], v["name"]
            if "headers" in want:
                assert got["headers"] == want["headers"], v["name"]


@pytest.mark.slow
def test_large_and_wide_transfers(plain_port: int) -> None:
    """The sizes the real peer tests use: 200 streams, 20x20, 10 MiB echo, 50/100 MiB."""
    res = peers.run_client(
        {"port": plain_port, "requests": [{"path": "/bytes?n=2000&seed=1", "repeat": 200}]},
        timeout=60,
    )
    assert len({r["stream_id"] for r in _ok(res, 200)}) == 200
    res = peers.run_client(
        {
            "port": plain_port,
            "sessions": 20,
            "requests": [{"path": "/bytes?n=2000&seed=1", "repeat": 20}],
        },
        timeout=60,
    )
    assert {r["body_sha256"] for r in _ok(res, 400)} == {peers.body_sha256(2000, 1)}
    res = peers.run_client(
        {
            "port": plain_port,
            "requests": [
                {"method": "POST", "path": "/echo", "body": {"size": 10 * MiB, "seed": 2}},
                {"method": "POST", "path": "/upload", "body": {"size": 50 * MiB, "seed": 3}},
                {"path": f"/bytes?n={100 * MiB}&seed=4"},
            ],
            "capture_body": 200,
        },
        timeout=120,
    )
    echo, up, down = _ok(res, 3)
    assert echo["body_sha256"] == peers.body_sha256(10 * MiB, 2)
    assert json.loads(up["body_text"])["sha256"] == peers.body_sha256(50 * MiB, 3)
    assert down["body_length"] == 100 * MiB
    assert down["body_sha256"] == peers.body_sha256(100 * MiB, 4)
