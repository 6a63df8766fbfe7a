"""The relay over TLS both ways: origins verify the relay (and may present a certificate),
visitors use HTTP/1.1 (curl) and SPDY (ALPN spdy/3.1) with TLS."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from spdyasgi.client import SpdyClient
from tests.relayapps import download_digest
from tests.relaytools import Proc, curl, start_origin, start_relay, wait_for
from tests.tlscerts import issue

MiB = 1 << 20


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A CA, the relay's server certificate and an origin's client certificate."""
    directory = tmp_path_factory.mktemp("relay-pki")
    ca = issue(directory, "ca", "ecdsa", common_name="Relay CA", is_ca=True)
    server = issue(directory, "server", "ecdsa", ca=ca)
    client = issue(directory, "origin", "ecdsa", common_name="home", ca=ca,
                   usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    return {"ca": ca.certfile, "cert": server.certfile, "key": server.keyfile,
            "origin_cert": client.certfile, "origin_key": client.keyfile}


@pytest.fixture(scope="module")
def tls_relay(pki: dict[str, str], tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[Proc, Proc]]:
    directory = tmp_path_factory.mktemp("relay-tls")
    relay = start_relay(directory, "--ssl-certfile", pki["cert"], "--ssl-keyfile", pki["key"],
                        "--origin-certfile", pki["cert"], "--origin-keyfile", pki["key"],
                        "--origin-ca-certs", pki["ca"], "--token", "t")
    try:
        origin = start_origin(directory, relay, "secure", "--connect-cafile", pki["ca"],
                              "--connect-certfile", pki["origin_cert"],
                              "--connect-keyfile", pki["origin_key"], "--connect-token", "t")
    except BaseException:
        relay.stop()
        raise
    yield relay, origin
    origin.stop()
    relay.stop()


def test_https_get_and_download_over_http11(tls_relay: tuple[Proc, Proc]) -> None:
    relay, _ = tls_relay
    base = f"https://127.0.0.1:{relay.ports['visitors']}"
    result = curl("-k", "--http1.1", f"{base}/whoami")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [b"secure", b"127.0.0.1", b"https"]
    size = 20 * MiB
    result = curl("-k", "--http1.1", f"{base}/download?size={size}")
    assert hashlib.sha256(result.stdout).hexdigest() == download_digest(size)


async def test_spdy_over_tls(tls_relay: tuple[Proc, Proc]) -> None:
    relay, _ = tls_relay
    async with SpdyClient(f"https://127.0.0.1:{relay.ports['visitors']}", verify=False,
                          local_addr=("127.0.0.2", 0)) as spdy:
        assert spdy.alpn_protocol == "spdy/3.1"
        response = await spdy.get("/whoami")
        assert (await response.aread()).split() == [b"secure", b"127.0.0.2", b"https"]


def test_origin_without_client_certificate_refused(tls_relay: tuple[Proc, Proc],
                                                   pki: dict[str, str],
                                                   tmp_path: Path) -> None:
    relay, _ = tls_relay
    origin = start_origin(tmp_path, relay, "nocert", "--connect-cafile", pki["ca"],
                          "--connect-token", "t", wait=False)
    try:
        wait_for(lambda: "Dial-out: reconnecting" in origin.text(), 20, "the failure")
        # The relay says so too: one info line naming the peer (it logged nothing before).
        wait_for(lambda: "did not return a certificate" in relay.text(), 20, "the relay's line")
    finally:
        origin.stop()
    assert "; serving" not in origin.text()
    line = next(line for line in relay.text().splitlines()
                if "did not return a certificate" in line)
    assert re.search(r"127\.0\.0\.1:\d+ - TLS handshake failed: peer did not return a "
                     r"certificate", line), line


def test_origin_verifies_the_relay_certificate(tls_relay: tuple[Proc, Proc],
                                               tmp_path: Path) -> None:
    relay, _ = tls_relay
    origin = start_origin(tmp_path, relay, "strict", "--connect-token", "t", wait=False)
    try:
        wait_for(lambda: "certificate verify failed" in origin.text(), 20, "the failure")
    finally:
        origin.stop()
    assert "; serving" not in origin.text()
