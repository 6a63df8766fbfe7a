"""benchmarks/seqclient.c, the sequential-request client of latency_1x1.py (issue 18, 1x1).

Over real sockets on 127.0.0.1: against real spdyasgi and uvicorn servers the client
reports sane figures for exactly the timed requests; against small scripted servers in
a thread it reads responses split at every byte (``-r 1``: each read returns one byte,
so every frame header and payload is cut at every offset), answers the server's PING,
and ends with a non-zero exit and a one-line message (never a hang) when the server
closes, resets the stream, sends GOAWAY, a malformed frame, a bad HTTP response, or
nothing at all. Skipped without gcc (the client is compiled on demand).
"""

# ruff: noqa: RUF001  (run.py's target labels use the multiplication sign)
from __future__ import annotations

import importlib.util
import socket
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import latency_1x1  # noqa: E402
import run  # noqa: E402

HELLO = b"hello, world"
TIMEOUT = 30.0  # generous: the machine may be loaded


@pytest.fixture(scope="module", autouse=True)
def compiled() -> Path:
    try:
        return latency_1x1.seqclient_binary()
    except latency_1x1.NoCompiler as exc:
        pytest.skip(str(exc))


# ------------------------------------------------------------------ scripted servers

Serve = Callable[[socket.socket], None]


class Scripted(threading.Thread):
    """Accepts one connection on 127.0.0.1 and runs `serve` on it; errors are kept."""

    def __init__(self, serve: Serve) -> None:
        super().__init__(daemon=True)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(TIMEOUT)
        self.port = int(self.listener.getsockname()[1])
        self.serve = serve
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(TIMEOUT)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.serve(conn)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.listener.close()


def recv_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise EOFError(f"client closed with {len(data)} of {size} bytes read")
        data += chunk
    return data


def read_frame(conn: socket.socket) -> tuple[bytes, bytes]:
    """One SPDY frame from the client: (8-byte header, payload)."""
    head = recv_exact(conn, 8)
    return head, recv_exact(conn, int.from_bytes(head[5:8], "big"))


def next_request(conn: socket.socket, pongs: list[bytes] | None = None) -> int:
    """Skip the client's SETTINGS/WINDOW_UPDATE (and collect PING echoes) up to its next
    SYN_STREAM; its stream id."""
    while True:
        head, payload = read_frame(conn)
        kind = int.from_bytes(head[2:4], "big") if head[0] & 0x80 else -1
        if kind == 1:
            return int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
        if kind == 6 and pongs is not None:
            pongs.append(head + payload)


def control(kind: int, payload: bytes, flags: int = 0) -> bytes:
    return struct.pack(">HHI", 0x8003, kind, flags << 24 | len(payload)) + payload


def data(stream_id: int, body: bytes, fin: bool = False) -> bytes:
    return struct.pack(">II", stream_id, (1 << 24 if fin else 0) | len(body)) + body


def syn_reply(stream_id: int, fin: bool = False) -> bytes:
    # The client never inflates header blocks: any bytes stand in for the zlib block.
    return control(2, struct.pack(">I", stream_id) + b"\x78\xbb-headers-", int(fin))


def send(conn: socket.socket, payload: bytes, one_byte_at_a_time: bool) -> None:
    if one_byte_at_a_time:
        for i in range(len(payload)):
            conn.sendall(payload[i:i + 1])
    else:
        conn.sendall(payload)


def run_client(tmp_path: Path, port: int, proto: str, count: int, warmup: int,
               **kwargs: Any) -> dict[str, float]:
    requests = tmp_path / f"requests-{proto}.bin"
    latency_1x1.write_requests(requests, proto, count + warmup)
    return latency_1x1.run_seqclient(port, requests, warmup, **kwargs)


@pytest.fixture
def scripted() -> Iterator[Callable[[Serve], Scripted]]:
    started: list[Scripted] = []

    def start(serve: Serve) -> Scripted:
        server = Scripted(serve)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.join(TIMEOUT)
        assert not server.is_alive(), "scripted server still running"


# ------------------------------------------------------------------ real servers


@pytest.mark.parametrize("name", ["spdyasgi", "uvicorn"])
def test_real_server_gives_sane_figures_for_the_timed_requests(tmp_path: Path,
                                                               name: str) -> None:
    if name == "uvicorn" and importlib.util.find_spec("uvicorn") is None:
        pytest.skip("uvicorn not installed (pip install -e '.[bench]')")
    server = next(s for s in run.SERVERS if s.name == name)
    wl = next(w for w in run.workloads(True) if w.name == "hello-1x1")
    with run.run_server(server, wl, tmp_path) as running:
        res = run_client(tmp_path, running.port, server.proto, 200, 20,
                         server_pid=running.pid)
        assert running.proc.poll() is None
    assert res["count"] == 200
    assert res["body_bytes"] == 200 * len(HELLO)  # warm-up responses not counted
    assert 0 < res["p50_us"] <= res["p90_us"] <= res["p99_us"]
    assert 0 < res["mean_us"] < 1e6
    assert res["client_cpu_s"] >= 0 and res["server_cpu_s"] >= 0


def test_measure_runs_the_c_client_against_a_fresh_spdyasgi(tmp_path: Path) -> None:
    row = latency_1x1.measure("spdyasgi", 300, 30, tmp_path, client="c")
    assert 0 < row["p50_us"] <= row["p99_us"]
    assert row["server_cpu_us_per_req"] >= 0 and row["client_cpu_us_per_req"] >= 0
    assert row["server_peak_rss_mib"] > 1
    with pytest.raises(ValueError, match="cleartext only"):
        latency_1x1.measure("spdyasgi-tls", 10, 1, tmp_path, client="c")


# ------------------------------------------------------------------ SPDY framing


@pytest.mark.parametrize("split", ["every-byte", "whole"])
def test_spdy_responses_split_at_every_byte_are_read_whole(
        tmp_path: Path, scripted: Callable[[Serve], Scripted], split: str) -> None:
    """Three response shapes, extra frames in between, and a server PING the client must
    echo; with -r 1 every frame is cut at every offset across reads."""
    count, warmup = 12, 3
    bodies: list[int] = []
    pongs: list[bytes] = []
    ping = control(6, struct.pack(">I", 2))

    def serve(conn: socket.socket) -> None:
        for i in range(count + warmup):
            sid = next_request(conn, pongs)
            shape = i % 3
            out = control(4, struct.pack(">I", 0))  # empty SETTINGS: ignored
            if shape == 0:  # SYN_REPLY, DATA, DATA with FIN
                out += syn_reply(sid) + control(9, struct.pack(">II", 0, 100))
                out += data(sid, HELLO[:5]) + data(sid, HELLO[5:], fin=True)
                size = len(HELLO)
            elif shape == 1:  # SYN_REPLY with FIN, no body
                out += syn_reply(sid, fin=True)
                size = 0
            else:  # SYN_REPLY, DATA, trailing HEADERS with FIN (and a PING before)
                out += ping + syn_reply(sid) + data(sid, HELLO + HELLO)
                out += control(8, struct.pack(">I", sid) + b"\x00" * 6, flags=1)
                size = 2 * len(HELLO)
            if i >= warmup:
                bodies.append(size)
            send(conn, out, split == "every-byte")
        while len(pongs) < (count + warmup) // 3:  # the echoes of the last PINGs
            head, payload = read_frame(conn)
            pongs.append(head + payload)

    server = scripted(serve)
    res = run_client(tmp_path, server.port, "spdy", count, warmup,
                     read_max=1 if split == "every-byte" else None)
    server.join(TIMEOUT)
    assert server.error is None, server.error
    assert res["count"] == count
    assert res["body_bytes"] == sum(bodies)
    assert pongs == [ping] * ((count + warmup) // 3)


def _fails_after(tmp_path: Path, scripted: Callable[[Serve], Scripted], answered: int,
                 then: Callable[[socket.socket, int], None]) -> str:
    """`answered` good responses, then `then(conn, stream_id)`: the client's message."""

    def serve(conn: socket.socket) -> None:
        for _ in range(answered):
            sid = next_request(conn)
            conn.sendall(syn_reply(sid) + data(sid, HELLO, fin=True))
        then(conn, next_request(conn))
        with pytest.raises((EOFError, ConnectionError)):  # the client gives up and closes
            while True:
                read_frame(conn)

    server = scripted(serve)
    with pytest.raises(latency_1x1.SeqClientError) as caught:
        run_client(tmp_path, server.port, "spdy", 10, 2, timeout_ms=1500)
    server.join(TIMEOUT)
    assert server.error is None, server.error
    message = str(caught.value)
    assert message.startswith("seqclient: ") and "\n" not in message
    return message


def test_server_closing_mid_run_ends_the_client_with_its_message(
        tmp_path: Path, scripted: Callable[[Serve], Scripted]) -> None:
    def close(conn: socket.socket, sid: int) -> None:
        conn.shutdown(socket.SHUT_WR)

    message = _fails_after(tmp_path, scripted, 5, close)
    assert message == "seqclient: server closed the connection after 5 responses"


def test_rst_stream_mid_run_ends_the_client_with_its_message(
        tmp_path: Path, scripted: Callable[[Serve], Scripted]) -> None:
    def reset(conn: socket.socket, sid: int) -> None:
        conn.sendall(syn_reply(sid) + control(3, struct.pack(">II", sid, 6)))

    message = _fails_after(tmp_path, scripted, 4, reset)
    assert message == "seqclient: RST_STREAM on stream 9, status 6 (after 4 responses)"


def test_goaway_ends_the_client_with_its_message(
        tmp_path: Path, scripted: Callable[[Serve], Scripted]) -> None:
    def goaway(conn: socket.socket, sid: int) -> None:
        conn.sendall(control(7, struct.pack(">II", sid - 2, 1)))

    message = _fails_after(tmp_path, scripted, 3, goaway)
    assert message == "seqclient: GOAWAY, last stream 5, status 1 (after 3 responses)"


@pytest.mark.parametrize(("frame", "expected"), [
    (lambda sid: b"\x80\x02" + control(2, struct.pack(">I", sid))[2:],
     "malformed: control frame of SPDY version 2"),
    (lambda sid: data(sid + 2, HELLO, fin=True),
     "malformed: DATA for stream 3 while waiting for stream 1"),
    (lambda sid: control(2, b"\x00\x00", flags=1), "malformed: SYN_REPLY with length 2"),
    (lambda sid: control(3, struct.pack(">I", sid)), "malformed: RST_STREAM with length 4"),
    (lambda sid: control(1, struct.pack(">II", 2, sid) + b"\x00" * 10),
     "unexpected SYN_STREAM from the server"),
])
def test_malformed_frames_end_the_client_with_what_was_wrong(
        tmp_path: Path, scripted: Callable[[Serve], Scripted],
        frame: Callable[[int], bytes], expected: str) -> None:
    message = _fails_after(tmp_path, scripted, 0, lambda conn, sid: conn.sendall(frame(sid)))
    assert message.startswith("seqclient: " + expected), message


def test_silent_server_times_out_instead_of_hanging(
        tmp_path: Path, scripted: Callable[[Serve], Scripted]) -> None:
    def silent(conn: socket.socket, sid: int) -> None:
        conn.sendall(syn_reply(sid))  # a reply, but never the FIN

    message = _fails_after(tmp_path, scripted, 2, silent)
    assert message == "seqclient: timeout: no response bytes (after 2 responses)"


# ------------------------------------------------------------------ HTTP/1.1


def http_server(responses: Callable[[int], bytes], count: int,
                one_byte_at_a_time: bool = False) -> Serve:
    def serve(conn: socket.socket) -> None:
        buf = b""
        for i in range(count):
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                buf += chunk
            buf = buf.split(b"\r\n\r\n", 1)[1]
            send(conn, responses(i), one_byte_at_a_time)
        while conn.recv(4096):  # until the client closes
            pass
    return serve


def test_http_responses_split_at_every_byte_are_read_whole(
        tmp_path: Path, scripted: Callable[[Serve], Scripted]) -> None:
    def response(i: int) -> bytes:
        body = HELLO * (i % 3)  # 0, 12, 24 bytes
        return (b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nContent-Length: %d\r\n\r\n"
                % len(body)) + body

    count, warmup = 9, 3
    server = scripted(http_server(response, count + warmup, one_byte_at_a_time=True))
    res = run_client(tmp_path, server.port, "h1", count, warmup, read_max=1)
    server.join(TIMEOUT)
    assert server.error is None, server.error
    assert res["count"] == count
    assert res["body_bytes"] == sum(len(HELLO) * (i % 3) for i in range(warmup, count + warmup))


@pytest.mark.parametrize(("response", "expected"), [
    (b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n",
     "seqclient: HTTP status 500 (after 2 responses)"),
    (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
     "seqclient: chunked (Transfer-Encoding) responses are not supported"),
    (b"HTTP/1.1 200 OK\r\nconnection: keep-alive\r\n\r\n",
     "seqclient: malformed: response without Content-Length"),
    (b"", "seqclient: server closed the connection after 2 responses"),
])
def test_bad_http_responses_end_the_client_with_what_was_wrong(
        tmp_path: Path, scripted: Callable[[Serve], Scripted], response: bytes,
        expected: str) -> None:
    good = b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n" + HELLO

    def serve(conn: socket.socket) -> None:
        buf = b""
        for i in range(3):
            while b"\r\n\r\n" not in buf:
                buf += conn.recv(4096)
            buf = buf.split(b"\r\n\r\n", 1)[1]
            if i < 2:
                conn.sendall(good)
            elif response:
                conn.sendall(response)
            else:
                conn.shutdown(socket.SHUT_WR)
        while conn.recv(4096):
            pass

    server = scripted(serve)
    with pytest.raises(latency_1x1.SeqClientError) as caught:
        run_client(tmp_path, server.port, "h1", 8, 1, timeout_ms=5000)
    server.join(TIMEOUT)
    assert server.error is None, server.error
    assert str(caught.value) == expected


def test_missing_gcc_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(latency_1x1.NoCompiler, match=r"gcc not found.*--client python"):
        latency_1x1.seqclient_binary()


def test_run_targets_use_the_same_client_figures_when_measured() -> None:
    """run.py's 1x1 target rows compare the hello-1x1-seqclient figures (same client);
    results without them fall back to hello-1x1, labelled as two generators."""
    summary: dict[tuple[str, str], dict[str, Any]] = {
        ("spdyasgi", "hello-1x1"): {"server_cpu_us_per_req": (100.0, 100.0, 100.0),
                                    "p50_ms": (0.2, 0.2, 0.2)},
        ("uvicorn", "hello-1x1"): {"server_cpu_us_per_req": (50.0, 50.0, 50.0),
                                   "p50_ms": (0.1, 0.1, 0.1)},
    }
    old = [row for row in run.targets(summary, {}) if "hello 1×1" in row]
    assert len(old) == 2 and all("spdyasgi-bench vs h2load" in row for row in old)
    assert "spdyasgi 100.0 µs vs uvicorn 50.0 µs | **no**" in old[0]
    summary[("spdyasgi", "hello-1x1-seqclient")] = {
        "server_cpu_us_per_req": (40.0, 40.0, 40.0), "p50_ms": (0.06, 0.06, 0.06)}
    summary[("uvicorn", "hello-1x1-seqclient")] = {
        "server_cpu_us_per_req": (45.0, 45.0, 45.0), "p50_ms": (0.055, 0.055, 0.055)}
    new = [row for row in run.targets(summary, {}) if "hello 1×1" in row]
    assert len(new) == 2 and all("same C client" in row for row in new)
    assert "spdyasgi 40.0 µs vs uvicorn 45.0 µs | yes" in new[0]
    assert "spdyasgi 0.060 ms vs uvicorn 0.055 ms | yes" in new[1]
    seq = next(w for w in run.workloads(False) if w.name == "hello-1x1-seqclient")
    assert [s.name for s in run.SERVERS if run.supports(s, seq) is None] == ["spdyasgi",
                                                                             "uvicorn"]
