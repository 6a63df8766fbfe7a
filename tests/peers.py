"""Python side of the independent-peer tooling in ``tests/peers`` (Node, spdy-transport).

* :data:`NODE_AVAILABLE` -- ``node`` is on PATH and ``tests/peers/node_modules`` exists
  (``cd tests/peers && npm ci``). Tests needing it skip without it, except in CI
  (:data:`NODE_REQUIRED`, env ``CI=true``), where they fail.
* :func:`body_bytes` / :func:`body_sha256` / :func:`body_chunks` -- the deterministic body
  generator shared with ``tests/peers/lib/body.js``::

      body(size, seed) = first `size` bytes of B(0) || B(1) || ...
      B(i)             = SHAKE128(S || uint64_be(i)) with 4096 bytes of output
      S                = UTF-8 of str(seed) (int seeds in decimal) or of the seed string

* :func:`run_client` -- run ``client.js`` with a plan, return its JSON result.
* :func:`decode_frames` / :func:`decode_frames_many` -- decode raw frames with ``decode.js``
  (spdy-transport); :func:`load_vectors` -- the committed spdy-transport framer vectors.
* :func:`start_node_server` -- run ``server.js``; context manager yielding the port.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PEERS_DIR = Path(__file__).resolve().parent / "peers"
VECTORS_FILE = Path(__file__).resolve().parent / "vectors" / "spdy_transport.json"
NODE = shutil.which("node")
NODE_AVAILABLE = bool(NODE) and (PEERS_DIR / "node_modules" / "spdy-transport").is_dir()
NODE_SKIP_REASON = "node or tests/peers/node_modules missing (run: cd tests/peers && npm ci)"
#: In CI (``CI=true``, as GitHub Actions, GitLab and most runners set it) the peers are
#: required: tests that need them fail instead of skipping (see tests/conftest.py).
NODE_REQUIRED = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
NODE_MISSING_IN_CI = (
    "CI is set but the npm peers are missing: install node and run "
    "`npm ci --prefix tests/peers` (scripts/test does it when node is on PATH); "
    "outside CI these tests are skipped instead"
)

BLOCK = 4096

#: body of the resource pushed by server.js for GET /push (must match server.js)
PUSHED_CSS = b"body { color: #123456; } /* pushed by tests/peers/server.js */\n"
#: page returned by server.js for GET /push
PUSH_PAGE = b'<!doctype html><link rel="stylesheet" href="/pushed.css"><p>push</p>\n'


# --------------------------------------------------------------------------- bodies


def _seed_bytes(seed: int | str | None) -> bytes:
    if seed is None:
        seed = 0
    if isinstance(seed, bool) or not isinstance(seed, (int, str)):
        raise TypeError("seed must be a non-negative int or a str")
    if isinstance(seed, int):
        if seed < 0:
            raise ValueError("seed must be non-negative")
        return str(seed).encode()
    return seed.encode("utf-8")


def _block(seed: bytes, index: int) -> bytes:
    return hashlib.shake_128(seed + index.to_bytes(8, "big")).digest(BLOCK)


def body_chunks(
    size: int,
    seed: int | str | None = 0,
    chunk_size: int = 65536,
    start: int = 0,
    end: int | None = None,
) -> Iterator[bytes]:
    """Yield bytes ``[start, end)`` of ``body(size, seed)`` in chunks of <= chunk_size."""
    if end is None or end > size:
        end = size
    s = _seed_bytes(seed)
    pos = start
    while pos < end:
        stop = min(pos + chunk_size, end)
        parts = []
        i = pos // BLOCK
        while i * BLOCK < stop:
            b = _block(s, i)
            parts.append(b[max(pos - i * BLOCK, 0) : min(stop - i * BLOCK, BLOCK)])
            i += 1
        yield b"".join(parts)
        pos = stop


def body_bytes(
    size: int, seed: int | str | None = 0, start: int = 0, end: int | None = None
) -> bytes:
    """The whole deterministic body (or bytes ``[start, end)`` of it) as one ``bytes``."""
    return b"".join(body_chunks(size, seed, chunk_size=1 << 20, start=start, end=end))


def body_sha256(size: int, seed: int | str | None = 0) -> str:
    """Hex SHA-256 of ``body_bytes(size, seed)``, computed incrementally."""
    h = hashlib.sha256()
    for chunk in body_chunks(size, seed, chunk_size=1 << 20):
        h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- node tools


def _require_node() -> str:
    if not NODE_AVAILABLE or NODE is None:
        raise RuntimeError(NODE_SKIP_REASON)
    return NODE


def _run_json(script: str, payload: Any, timeout: float) -> Any:
    node = _require_node()
    proc = subprocess.run(
        [node, str(PEERS_DIR / script), "-"],
        input=json.dumps(payload).encode(),
        capture_output=True,
        timeout=timeout,
        cwd=str(PEERS_DIR),
        check=False,
    )
    out = proc.stdout.decode("utf-8", "replace").strip()
    if not out:
        raise RuntimeError(
            f"{script} printed nothing (rc={proc.returncode}): "
            f"{proc.stderr.decode('utf-8', 'replace')[-2000:]}"
        )
    result = json.loads(out.splitlines()[-1])
    if isinstance(result, dict) and "error" in result and proc.returncode != 0:
        raise RuntimeError(f"{script} failed: {result['error']}")
    return result


def run_client(plan: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    """Run tests/peers/client.js with ``plan``; returns the parsed JSON result.

    ``timeout`` bounds the subprocess; ``plan["timeout_ms"]`` (default: a bit under
    ``timeout``) bounds the requests inside node, which then still reports partial
    results (``error: "timeout"``).
    """
    plan = dict(plan)
    plan.setdefault("timeout_ms", max(int((timeout - 2) * 1000), 1000))
    return _run_json("client.js", plan, timeout)  # type: ignore[no-any-return]


def decode_frames(
    frames_hex: str | bytes, version: int = 3, role: str = "server", timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Decode one direction of a session with spdy-transport (tests/peers/decode.js).

    ``role`` is the side that *sent* the frames.  ``frames_hex`` may be raw bytes.
    """
    if isinstance(frames_hex, (bytes, bytearray, memoryview)):
        frames_hex = bytes(frames_hex).hex()
    result = _run_json(
        "decode.js", {"version": version, "frames_hex": frames_hex, "role": role}, timeout
    )
    if isinstance(result, dict):
        raise RuntimeError(f"decode.js failed: {result.get('error')}")
    return result  # type: ignore[no-any-return]


def decode_frames_many(
    items: list[dict[str, Any]], timeout: float = 60.0
) -> list[list[dict[str, Any]]]:
    """Batch form of :func:`decode_frames` (one node process).

    ``items``: ``[{"frames_hex": ..., "version": 3, "role": "client"|"server"}, ...]``.
    """
    payload = []
    for item in items:
        fh = item["frames_hex"]
        if isinstance(fh, (bytes, bytearray, memoryview)):
            fh = bytes(fh).hex()
        payload.append(
            {
                "frames_hex": fh,
                "version": item.get("version", 3),
                "role": item.get("role", "server"),
            }
        )
    result = _run_json("decode.js", payload, timeout)
    if isinstance(result, dict):
        raise RuntimeError(f"decode.js failed: {result.get('error')}")
    return result  # type: ignore[no-any-return]


def load_vectors() -> list[dict[str, Any]]:
    """The spdy-transport framer vectors from tests/vectors/spdy_transport.json."""
    with open(VECTORS_FILE, encoding="utf-8") as fh:
        return json.load(fh)["vectors"]  # type: ignore[no-any-return]


@contextlib.contextmanager
def start_node_server(opts: dict[str, Any] | None = None, timeout: float = 15.0) -> Iterator[int]:
    """Start tests/peers/server.js with ``opts``; yield its port.

    The server exits when its stdin closes, which happens on leaving the block (and
    whenever this process dies); it is killed if it does not exit within a few
    seconds.  Its stderr is collected and attached to errors.
    """
    node = _require_node()
    options = {"port": 0, "host": "127.0.0.1"}
    options.update(opts or {})
    proc = subprocess.Popen(
        [node, str(PEERS_DIR / "server.js"), json.dumps(options)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=str(PEERS_DIR),
    )
    stderr_lines: list[bytes] = []

    def _drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            stderr_lines.append(line)

    drainer = threading.Thread(target=_drain, daemon=True)
    drainer.start()
    port_box: list[int] = []

    def _read_port() -> None:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line:
            with contextlib.suppress(ValueError, KeyError):
                port_box.append(int(json.loads(line)["port"]))

    reader = threading.Thread(target=_read_port, daemon=True)
    reader.start()
    reader.join(timeout)
    try:
        if not port_box:
            raise RuntimeError(
                "server.js did not report a port: "
                + b"".join(stderr_lines).decode("utf-8", "replace")[-2000:]
            )
        yield port_box[0]
    finally:
        with contextlib.suppress(Exception):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
        drainer.join(1)
        if proc.stderr is not None:
            proc.stderr.close()


def make_self_signed_cert(directory: str | os.PathLike[str]) -> tuple[str, str]:
    """Create a throw-away localhost key/cert pair with ``openssl``; returns (key, cert)."""
    d = Path(directory)
    key, cert = d / "peer-key.pem", d / "peer-cert.pem"
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl not found")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
    )
    return str(key), str(cert)
