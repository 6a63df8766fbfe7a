"""The media-pattern benchmark (benchmarks/media.py) as a smoke test, over real sockets.

Not a performance test: nothing is compared with a figure. A tiny run against spdyasgi
(and node-spdy, when the npm peers are installed) must open probes and players, cancel the
probes, check every body byte against the file and lose no session; a run checking against
the wrong file must count wrong bytes (so a zero above comes from real checks). The app's
other answers (200, 416, 404, a cancelled send) are checked by calling it directly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import peers

ROOT = Path(__file__).resolve().parent.parent
MEDIA = ROOT / "benchmarks" / "media.py"


def run_media(tmp_path: Path, *extra: str, server: str = "spdyasgi",
              ) -> tuple[int, dict[str, Any], str]:
    out = tmp_path / "media.json"
    proc = subprocess.run(
        [sys.executable, str(MEDIA), "--quick", "--servers", server, "--json", str(out),
         *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=150,
    )
    assert out.exists(), f"no JSON written:\n{proc.stdout}\n{proc.stderr}"
    rows = json.loads(out.read_text())["results"]
    assert len(rows) == 1 and rows[0]["server"] == server, rows
    return proc.returncode, rows[0], proc.stdout + proc.stderr


@pytest.mark.timeout(180)
@pytest.mark.parametrize("server", [
    "spdyasgi",
    pytest.param("node-spdy", marks=[
        pytest.mark.node,
        pytest.mark.skipif(not peers.NODE_AVAILABLE, reason=peers.NODE_SKIP_REASON)]),
])
def test_quick_media_run_checks_every_byte_and_loses_no_session(tmp_path: Path,
                                                                server: str) -> None:
    code, row, output = run_media(tmp_path, server=server)
    assert "error" not in row, row
    assert code == 0 and row["ok"] is True, output
    assert row["server_alive"] and row["sessions_lost"] == 0 and row["stream_errors"] == {}
    # probes were opened and cancelled after their 64 KiB; players read steadily
    assert row["probes_done"] > 0 and row["player_streams"] > 0
    assert row["streams"] == row["probes_done"] + row["player_streams"]
    assert row["bytes_received"] >= row["probes_done"] * 65536
    assert row["bytes_verified"] == row["bytes_received"] and row["bytes_wrong"] == 0
    assert row["bad_replies"] == 0
    # the socket carried at least what the readers took (frame headers, cancelled tails)
    assert row["wire_bytes"] >= row["bytes_received"]
    # figures are present and consistent
    assert row["server_cpu_s"] > 0 and row["server_cpu_us_per_stream"] > 0
    assert 0 < row["ttfb_ms_p50"] <= row["ttfb_ms_p99"] <= row["ttfb_ms_max"]
    assert row["mb_per_s"] > 0
    # the player is paced by its reader: it gets no more than its rate (plus the first
    # chunk's head start), and on an idle-enough machine about that much
    target = row["player_rate_target_mb_s"]
    assert 0 < row["player_rate_mb_s_min"] <= row["player_rate_mb_s_median"] <= target * 1.25


@pytest.mark.timeout(180)
def test_media_load_counts_bytes_that_differ_from_the_file(tmp_path: Path) -> None:
    """Checked against a file of zeros of the same size, every body byte is wrong."""
    zeros = tmp_path / "zeros.bin"
    with open(zeros, "wb") as handle:
        handle.truncate(16 << 20)  # --quick serves a 16 MiB file
    code, row, output = run_media(tmp_path, "--check-file", str(zeros))
    assert code == 1 and row["ok"] is False, output
    assert row["bytes_wrong"] == row["bytes_received"] > 0
    assert row["bytes_verified"] == 0
    assert any(example.startswith("wrong bytes at") for example in row["examples"]), row


# ------------------------------------------------------------------ the app, directly


@pytest.fixture
def media_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    path = tmp_path / "file.bin"
    path.write_bytes(bytes(range(256)) * 1024)  # 256 KiB
    monkeypatch.setenv("SPDYASGI_MEDIA_FILE", str(path))
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import media_app as module

    monkeypatch.setattr(module, "_fd", None)  # opened again from this test's file
    yield module
    if module._fd is not None:
        os.close(module._fd)


async def call(app: Any, path: str, headers: list[tuple[bytes, bytes]],
               fail_after: int | None = None) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if fail_after is not None and len(sent) >= fail_after:
            raise ConnectionResetError("the client cancelled")  # like ClientDisconnected
        sent.append(message)

    scope = {"type": "http", "path": path, "headers": headers}
    await app.app(scope, receive, send)
    return sent


def _body(messages: list[dict[str, Any]]) -> bytes:
    return b"".join(m.get("body", b"") for m in messages[1:])


async def test_app_serves_ranges_whole_file_and_refusals(media_app: Any) -> None:
    data = bytes(range(256)) * 1024
    part = await call(media_app, "/media", [(b"range", b"bytes=100000-")])
    headers = dict(part[0]["headers"])
    assert part[0]["status"] == 206
    assert headers[b"content-range"] == f"bytes 100000-{len(data) - 1}/{len(data)}".encode()
    assert _body(part) == data[100000:]
    assert len(part) == 1 + 3  # 162,144 bytes in 64 KiB chunks, each with more_body
    assert [m["more_body"] for m in part[1:]] == [True, True, False]

    closed = await call(media_app, "/media", [(b"range", b"bytes=10-19")])
    assert closed[0]["status"] == 206 and _body(closed) == data[10:20]

    whole = await call(media_app, "/media", [])
    assert whole[0]["status"] == 200 and _body(whole) == data

    beyond = await call(media_app, "/media", [(b"range", f"bytes={len(data)}-".encode())])
    assert beyond[0]["status"] == 416
    assert dict(beyond[0]["headers"])[b"content-range"] == f"bytes */{len(data)}".encode()

    missing = await call(media_app, "/other", [])
    assert missing[0]["status"] == 404


async def test_app_stops_reading_when_the_stream_is_cancelled(media_app: Any) -> None:
    sent = await call(media_app, "/media", [(b"range", b"bytes=0-")], fail_after=2)
    assert len(sent) == 2  # the start and one chunk; the handler returned, no error
    assert sent[1]["more_body"] is True
