"""The TLS matrix over real sockets, against the CLI with its default TLS settings.

One server process per certificate type (RSA, ECDSA), many client connections each:
TLS 1.2 with each AEAD suite of the default list (a client context restricted to that
one suite), TLS 1.3, and ALPN offering spdy/3.1, spdy/3, http/1.1 or nothing. Every
connection asserts the version, suite and protocol negotiated and gets a request
answered (SPDY through tests/spdyraw.py, HTTP/1.1 as plain bytes). ``openssl s_client``
and node-spdy (spdy-transport on Node's TLS) are driven against the same servers.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from spdyasgi.spdy import Version
from spdyasgi.tls import DEFAULT_CIPHERS
from tests import peers
from tests.procs import ServerProcess, spdyasgi_process
from tests.spdyraw import RawSession
from tests.tlscerts import KeyType, issue

OPENSSL = shutil.which("openssl")
APP = "examples.hello:app"
ALPN_OFFERS: list[list[str]] = [["spdy/3.1"], ["spdy/3"], ["http/1.1"], []]
ALPN_IDS = ["spdy3.1", "spdy3", "http1.1", "no-alpn"]
SPDY_VERSIONS = {"spdy/3.1": Version.SPDY31, "spdy/3": Version.SPDY3}
KEY_TYPES: list[KeyType] = ["rsa", "ecdsa"]


def suites_for(key_type: KeyType) -> list[str]:
    """The default TLS 1.2 suites a certificate of this key type can serve."""
    auth = "ECDHE-RSA-" if key_type == "rsa" else "ECDHE-ECDSA-"
    return [suite for suite in DEFAULT_CIPHERS.split(":") if suite.startswith(auth)]


@pytest.fixture(scope="module", params=KEY_TYPES)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    key_type: KeyType = request.param
    directory = tmp_path_factory.mktemp(f"tls-{key_type}")
    leaf = issue(directory, "server", key_type)
    with spdyasgi_process(
        directory, APP, "--ssl-certfile", leaf.certfile, "--ssl-keyfile", leaf.keyfile,
        "--log-level", "debug", "--no-access-log",
    ) as proc:
        proc.tls = (leaf.certfile, leaf.keyfile)
        yield proc


def key_type_of(server: ServerProcess) -> KeyType:
    assert server.tls is not None
    return "rsa" if "tls-rsa" in server.tls[0] else "ecdsa"


def client_context(
    version: ssl.TLSVersion, alpn: list[str], suite: str | None = None
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = context.maximum_version = version
    if suite is not None:
        context.set_ciphers(suite)
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


class Negotiated(NamedTuple):
    """What the handshake settled, read while the connection is open (a closed SSL
    object reports no version)."""

    version: str | None
    cipher: str | None


def negotiated(ssl_object: ssl.SSLObject) -> Negotiated:
    cipher = ssl_object.cipher()
    return Negotiated(ssl_object.version(), cipher[0] if cipher else None)


async def exchange(port: int, context: ssl.SSLContext, alpn: list[str]) -> Negotiated:
    """Connect, check ALPN, get "/" answered over what was negotiated."""
    expected = alpn[0] if alpn else None
    if expected in SPDY_VERSIONS:
        session = await RawSession.connect(port, ssl_context=context,
                                           version=SPDY_VERSIONS[expected])
        try:
            ssl_object = session.writer.get_extra_info("ssl_object")
            assert ssl_object.selected_alpn_protocol() == expected
            reply = await session.fetch("/")
            assert reply.status == 200
            assert f"SPDY/{expected[5:]} stream".encode() in bytes(reply.body)
            return negotiated(ssl_object)
        finally:
            await session.close()
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost"),
        20,
    )
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        assert ssl_object.selected_alpn_protocol() == expected
        writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 20)
        assert data.startswith(b"HTTP/1.1 200 ")
        assert b"You came over HTTP/1.1." in data
        return negotiated(ssl_object)
    finally:
        writer.close()


@pytest.mark.parametrize("alpn", ALPN_OFFERS, ids=ALPN_IDS)
@pytest.mark.parametrize("suite_index", [0, 1, 2], ids=["aes128gcm", "aes256gcm", "chacha20"])
async def test_tls12_each_default_suite(
    server: ServerProcess, suite_index: int, alpn: list[str]
) -> None:
    suite = suites_for(key_type_of(server))[suite_index]
    context = client_context(ssl.TLSVersion.TLSv1_2, alpn, suite)
    result = await exchange(server.port, context, alpn)
    assert result == Negotiated("TLSv1.2", suite)


@pytest.mark.parametrize("alpn", ALPN_OFFERS, ids=ALPN_IDS)
async def test_tls13(server: ServerProcess, alpn: list[str]) -> None:
    context = client_context(ssl.TLSVersion.TLSv1_3, alpn)
    assert (await exchange(server.port, context, alpn)).version == "TLSv1.3"


async def test_tls12_client_without_a_shared_suite_gets_an_alert(server: ServerProcess) -> None:
    """A CBC-only TLS 1.2 client: a handshake_failure alert, not a bare close; logged."""
    other = "ECDHE-ECDSA-AES128-SHA" if key_type_of(server) == "ecdsa" else "AES128-SHA"
    context = client_context(ssl.TLSVersion.TLSv1_2, ["spdy/3.1"], other)
    with pytest.raises(ssl.SSLError) as info:
        await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", server.port, ssl=context), 20
        )
    assert "ALERT_HANDSHAKE_FAILURE" in str(info.value)
    for _ in range(100):  # the debug line may trail the client's error a little
        if "TLS handshake failed: no shared cipher" in server.stderr():
            break
        await asyncio.sleep(0.05)
    assert "127.0.0.1:" in server.stderr()
    assert "- TLS handshake failed: no shared cipher (SSL); alert sent" in server.stderr()


def s_client(*args: str, stdin: bytes = b"") -> str:
    assert OPENSSL is not None
    proc = subprocess.run(
        [OPENSSL, "s_client", *args], input=stdin, capture_output=True, timeout=60, check=False
    )
    return proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")


@pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")
def test_openssl_s_client_tls12_aead_suite(server: ServerProcess) -> None:
    """The issue's reproducer: ``s_client -tls1_2 -cipher <ECDHE AEAD suite>`` completes."""
    suite = suites_for(key_type_of(server))[0]
    request = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    out = s_client("-connect", f"127.0.0.1:{server.port}", "-tls1_2", "-cipher", suite,
                   "-alpn", "http/1.1", "-ign_eof", stdin=request)
    assert f"Cipher is {suite}" in out
    assert "ALPN protocol: http/1.1" in out
    assert "You came over HTTP/1.1." in out


@pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")
def test_session_resumption_tls12(server: ServerProcess) -> None:
    """``s_client -reconnect``: the first handshake is full, the five reconnects resume."""
    out = s_client("-connect", f"127.0.0.1:{server.port}", "-tls1_2", "-reconnect")
    lines = [line for line in out.splitlines() if line.startswith(("New,", "Reused,"))]
    assert lines[0].startswith("New, TLSv1.2")
    assert len(lines) == 6 and all(line.startswith("Reused,") for line in lines[1:]), lines


@pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")
def test_session_resumption_tls13(server: ServerProcess, tmp_path: Path) -> None:
    """TLS 1.3 tickets arrive after the handshake, which ``-reconnect`` does not wait for:
    save the session after a request, then offer it on a new connection."""
    session = str(tmp_path / "session.pem")
    request = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    common = ("-connect", f"127.0.0.1:{server.port}", "-tls1_3", "-alpn", "http/1.1", "-ign_eof")
    first = s_client(*common, "-sess_out", session, stdin=request)
    assert "New, TLSv1.3" in first and "TLS session ticket:" in first
    second = s_client(*common, "-sess_in", session, stdin=request)
    assert "Reused, TLSv1.3" in second
    assert "You came over HTTP/1.1." in second


@pytest.mark.node
@pytest.mark.skipif(not peers.NODE_AVAILABLE, reason=peers.NODE_SKIP_REASON)
@pytest.mark.parametrize("tls_version", ["1.2", "1.3"])
def test_node_spdy_client(
    server: ServerProcess, tls_version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """node-spdy's protocol layer over Node's TLS: SPDY/3.1 negotiated, requests answered.

    TLS 1.2 is forced with Node's own flags (``--tls-max-v1.2`` and a one-suite list).
    """
    if tls_version == "1.2":
        suite = suites_for(key_type_of(server))[0]
        monkeypatch.setenv("NODE_OPTIONS", f"--tls-max-v1.2 --tls-cipher-list={suite}")
    else:
        monkeypatch.setenv("NODE_OPTIONS", "--tls-min-v1.3")
    result = peers.run_client({
        "port": server.port, "tls": True, "protocol": "spdy/3.1",
        "requests": [{"path": "/node", "repeat": 3}], "capture_body": 200,
    })
    assert result["protocol"] == "spdy/3.1"
    assert [r["status"] for r in result["results"]] == [200, 200, 200]
    assert all("SPDY/3.1 stream" in r["body_text"] for r in result["results"])
