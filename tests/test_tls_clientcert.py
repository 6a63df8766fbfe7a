"""Client certificates end to end, and what a refused handshake leaves on the server.

``--ssl-cert-reqs 2 --ssl-ca-certs ca.pem``: a client with a certificate from that CA is
served over SPDY (the server sees it); one without, or with a certificate from another
CA, is refused at the handshake with a TLS alert, and the server logs the peer and the
reason at debug level and counts the failure in ``spdyasgi.tls.HANDSHAKE_FAILURES``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from spdyasgi.tls import HANDSHAKE_FAILURES
from tests.spdyraw import RawSession
from tests.tlscerts import Issued, issue
from tests.utils import run_server

Message = dict[str, Any]


async def whoami(scope: Message, receive: Any, send: Any) -> None:
    """Answers with the request path."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["path"].encode()})


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Issued]:
    directory = tmp_path_factory.mktemp("tls-pki")
    ca = issue(directory, "ca", "ecdsa", common_name="Test CA", is_ca=True)
    other_ca = issue(directory, "other-ca", "ecdsa", common_name="Other CA", is_ca=True)
    client = ExtendedKeyUsageOID.CLIENT_AUTH
    return {
        "ca": ca,
        "server": issue(directory, "server", "rsa", ca=ca),
        "client": issue(directory, "client", "ecdsa", common_name="alice", ca=ca, usage=client),
        "stranger": issue(directory, "stranger", "rsa", common_name="eve", ca=other_ca,
                          usage=client),
    }


def client_context(
    pki: dict[str, Issued], version: ssl.TLSVersion, cert: str | None
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki["ca"].certfile)
    context.minimum_version = context.maximum_version = version
    context.set_alpn_protocols(["spdy/3.1"])
    if cert is not None:
        context.load_cert_chain(pki[cert].certfile, pki[cert].keyfile)
    return context


def server_options(pki: dict[str, Issued]) -> dict[str, Any]:
    return {
        "ssl_certfile": pki["server"].certfile,
        "ssl_keyfile": pki["server"].keyfile,
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        "ssl_ca_certs": pki["ca"].certfile,
    }


VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]
VERSION_IDS = ["tls1.2", "tls1.3"]


@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
async def test_client_with_a_valid_certificate_is_served_over_spdy(
    pki: dict[str, Issued], version: ssl.TLSVersion
) -> None:
    async with run_server(whoami, **server_options(pki)) as (server, port):
        session = await RawSession.connect(port, ssl_context=client_context(pki, version,
                                                                            "client"))
        try:
            ssl_object = session.writer.get_extra_info("ssl_object")
            assert ssl_object.selected_alpn_protocol() == "spdy/3.1"
            reply = await session.fetch("/hello")
            assert (reply.status, bytes(reply.body)) == (200, b"/hello")
            # The server-side SSL object saw and verified alice's certificate.
            (connection,) = server.server_state.connections
            peercert = connection.transport.get_extra_info("peercert")
            assert ("commonName", "alice") in [rdn[0] for rdn in peercert["subject"]]
        finally:
            await session.close()


async def refused(port: int, context: ssl.SSLContext) -> ssl.SSLError:
    """Connect and read: TLS 1.2 fails in the handshake, TLS 1.3 at the first read
    (the client's handshake ends before the server has checked its certificate)."""
    with pytest.raises(ssl.SSLError) as info:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=context,
                                    server_hostname="localhost"),
            20,
        )
        try:
            writer.write(b"\x80\x03\x00\x01")  # anything: the server will not read it
            data = await asyncio.wait_for(reader.read(100), 20)
            pytest.fail(f"the server answered {data!r}")
        finally:
            writer.close()
    return info.value


@pytest.mark.parametrize("cert", [None, "stranger"], ids=["no-certificate", "other-ca"])
@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
async def test_client_without_a_valid_certificate_is_refused_at_the_handshake(
    pki: dict[str, Issued], version: ssl.TLSVersion, cert: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="spdyasgi.error")
    async with run_server(whoami, **server_options(pki)) as (server, port):
        before = HANDSHAKE_FAILURES.total
        error = await refused(port, client_context(pki, version, cert))
        # An alert, not a bare close (which would be SSLEOFError / "EOF occurred").
        assert "ALERT" in str(error), error
        for _ in range(200):
            if HANDSHAKE_FAILURES.total > before:
                break
            await asyncio.sleep(0.01)
        assert HANDSHAKE_FAILURES.total == before + 1
        assert not server.server_state.connections
    expected = "peer did not return a certificate" if cert is None else "certificate verify failed"
    lines = [r.getMessage() for r in caplog.records if "TLS handshake failed" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("127.0.0.1:"), lines
    assert expected in lines[0] and lines[0].endswith("; alert sent"), lines


async def test_failures_are_counted_by_reason(pki: dict[str, Issued]) -> None:
    """Two kinds of failure against one server: each reason counted separately."""
    async with run_server(whoami, **server_options(pki)) as (_, port):
        before = dict(HANDSHAKE_FAILURES.by_reason)
        await refused(port, client_context(pki, ssl.TLSVersion.TLSv1_2, None))
        cbc_only = client_context(pki, ssl.TLSVersion.TLSv1_2, "client")
        cbc_only.set_ciphers("ECDHE-RSA-AES128-SHA")
        await refused(port, cbc_only)
        for _ in range(200):
            if sum(HANDSHAKE_FAILURES.by_reason.values()) >= sum(before.values()) + 2:
                break
            await asyncio.sleep(0.01)
    grown = {k: v - before.get(k, 0) for k, v in HANDSHAKE_FAILURES.by_reason.items()}
    assert grown.get("NO_SHARED_CIPHER") == 1
    assert grown.get("PEER_DID_NOT_RETURN_A_CERTIFICATE") == 1
