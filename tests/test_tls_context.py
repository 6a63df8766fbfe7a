"""The TLS context: defaults, ``--self-signed`` for ECDSA and RSA-only clients, the legacy
profile of docs/tls.md, and option validation."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from spdyasgi.config import Config, ConfigError
from spdyasgi.tls import DEFAULT_CIPHERS, LEGACY_CIPHERS, create_context
from tests.spdyraw import RawSession
from tests.tlscerts import issue
from tests.utils import hello_app, run_server

ROOT = Path(__file__).resolve().parent.parent
AEAD_TLS12 = set(DEFAULT_CIPHERS.split(":"))


def tls12_client(suite: str, alpn: list[str] | None = None,
                 version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with pytest.warns(DeprecationWarning) if version < ssl.TLSVersion.TLSv1_2 else _nothing():
        context.minimum_version = context.maximum_version = version
    context.set_ciphers(suite)
    context.set_alpn_protocols(alpn or ["spdy/3.1"])
    return context


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *args: object) -> None:
        return None


def test_default_context_is_tls12_or_later_with_aead_ecdhe_only(tmp_path: Path) -> None:
    leaf = issue(tmp_path, "leaf", "rsa")
    context = create_context(leaf.certfile, leaf.keyfile)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    tls12 = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 == AEAD_TLS12
    assert all(c["aead"] for c in context.get_ciphers())
    tls13 = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.3"}
    assert tls13 == {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                     "TLS_CHACHA20_POLY1305_SHA256"}


@pytest.mark.parametrize(
    ("suite", "key_type"),
    [("ECDHE-ECDSA-AES128-GCM-SHA256", "id-ecPublicKey"),
     ("ECDHE-RSA-AES128-GCM-SHA256", "rsaEncryption")],
    ids=["ecdsa-only-client", "rsa-only-client"],
)
async def test_self_signed_serves_ecdsa_and_rsa_only_tls12_clients(
    suite: str, key_type: str, tmp_path: Path
) -> None:
    """The issue's reproducer: TLS 1.2 AEAD-only clients against ``--self-signed``."""
    async with run_server(hello_app, self_signed=True) as (_, port):
        session = await RawSession.connect(port, ssl_context=tls12_client(suite))
        try:
            ssl_object = session.writer.get_extra_info("ssl_object")
            assert (ssl_object.version(), ssl_object.cipher()[0]) == ("TLSv1.2", suite)
            der = ssl_object.getpeercert(binary_form=True)
            reply = await session.fetch("/x")
            assert (reply.status, bytes(reply.body)) == (200, b"hello /x")
        finally:
            await session.close()
    from cryptography import x509

    algorithm = x509.load_der_x509_certificate(der).public_key_algorithm_oid._name
    assert algorithm == key_type


async def test_tls11_client_is_refused_by_default_with_an_alert(tmp_path: Path) -> None:
    leaf = issue(tmp_path, "leaf", "rsa")
    async with run_server(hello_app, ssl_certfile=leaf.certfile,
                          ssl_keyfile=leaf.keyfile) as (_, port):
        context = tls12_client("ECDHE-RSA-AES128-SHA:@SECLEVEL=0",
                               version=ssl.TLSVersion.TLSv1_1)
        with pytest.raises(ssl.SSLError, match="ALERT_PROTOCOL_VERSION"):
            await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, ssl=context), 20
            )


@pytest.mark.parametrize(
    "version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_2], ids=["tls1.0", "tls1.2-cbc"]
)
async def test_legacy_profile_serves_old_clients_over_spdy(
    version: ssl.TLSVersion, tmp_path: Path
) -> None:
    """docs/tls.md's legacy command: TLS 1.0 and CBC-only TLS 1.2 clients get SPDY/3.1."""
    leaf = issue(tmp_path, "leaf", "rsa")
    assert LEGACY_CIPHERS in (ROOT / "docs" / "tls.md").read_text()
    async with run_server(hello_app, ssl_certfile=leaf.certfile, ssl_keyfile=leaf.keyfile,
                          ssl_min_version="1.0", ssl_ciphers=LEGACY_CIPHERS) as (_, port):
        context = tls12_client("ECDHE-RSA-AES128-SHA:@SECLEVEL=0", version=version)
        session = await RawSession.connect(port, ssl_context=context)
        try:
            ssl_object = session.writer.get_extra_info("ssl_object")
            assert ssl_object.cipher()[0] == "ECDHE-RSA-AES128-SHA"
            assert ssl_object.selected_alpn_protocol() == "spdy/3.1"
            reply = await session.fetch("/old")
            assert (reply.status, bytes(reply.body)) == (200, b"hello /old")
        finally:
            await session.close()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("alpn_protocols", "h2,spdy/3.1,spdy/2", "'h2', 'spdy/2': this server serves only"),
        ("ssl_min_version", "1.4", "'1.4' is not one of 1.0, 1.1, 1.2, 1.3"),
        ("ssl_cert_reqs", ssl.CERT_REQUIRED, "needs 'ssl_ca_certs'"),
    ],
)
def test_validation_names_the_option(option: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config(hello_app, log_config=None, **{option: value})
    assert info.value.option == option
    assert message in info.value.detail


@pytest.mark.parametrize("sent", [b"", b"\x16\x03\x01\x02\x00\x01"], ids=["silent", "half-hello"])
async def test_handshake_timeout_closes_a_stalled_handshake(sent: bytes, tmp_path: Path) -> None:
    """``timeout_handshake`` now reaches the loop through the TLS protocol factory."""
    leaf = issue(tmp_path, "leaf", "ecdsa")
    async with run_server(hello_app, ssl_certfile=leaf.certfile, ssl_keyfile=leaf.keyfile,
                          timeout_handshake=0.5) as (_, port):
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = loop.time()
        writer.write(sent)
        try:
            assert await asyncio.wait_for(reader.read(), 20) == b""
        except ConnectionResetError:
            pass  # an abort: also a close
        finally:
            writer.close()
        assert 0.4 <= loop.time() - started < 15
