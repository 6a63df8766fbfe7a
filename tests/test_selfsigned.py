"""The --self-signed certificate: right names, usable by ssl, key kept private."""

from __future__ import annotations

import ipaddress
import os
import ssl
import stat
from pathlib import Path

import pytest

x509 = pytest.importorskip("cryptography.x509")

from spdyasgi._selfsigned import generate_self_signed  # noqa: E402


def test_certificate_names_and_key_permissions(tmp_path: Path) -> None:
    files = generate_self_signed(str(tmp_path))
    cert = x509.load_pem_x509_certificate(Path(files.certfile).read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    cn = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    assert cn == "localhost"
    assert stat.S_IMODE(os.stat(files.keyfile).st_mode) == 0o600


def test_loads_into_ssl_and_verifies_as_its_own_ca(tmp_path: Path) -> None:
    files = generate_self_signed(str(tmp_path))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(files.certfile, files.keyfile)
    client = ssl.create_default_context(cafile=files.certfile)
    assert client.cert_store_stats()["x509"] == 1


def test_temporary_directory_is_private() -> None:
    files = generate_self_signed(cleanup=True)
    assert os.path.isdir(files.directory)
    assert stat.S_IMODE(os.stat(files.directory).st_mode) == 0o700


def test_rsa_variant_and_both_loaded_by_config(tmp_path: Path) -> None:
    """``--self-signed`` loads an ECDSA and an RSA certificate into one context."""
    rsa_files = generate_self_signed(str(tmp_path), key_type="rsa")
    cert = x509.load_pem_x509_certificate(Path(rsa_files.certfile).read_bytes())
    assert cert.public_key().key_size == 2048
    assert rsa_files.certfile != generate_self_signed(str(tmp_path)).certfile

    from spdyasgi.config import Config

    config = Config("json:dumps", self_signed=True, log_config=None)
    context = config.create_ssl_context()
    suites = {c["name"] for c in context.get_ciphers()}
    assert {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"} <= suites
