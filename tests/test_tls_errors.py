"""TLS configuration mistakes, run as a user would: one ``Error:`` line naming the file and
the problem, exit status 3 (startup failure, as before), or 2 for a usage error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.procs import ROOT
from tests.tlscerts import Issued, issue

pytest.importorskip("cryptography")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "spdyasgi", "examples.hello:app", "--port", "0", *args],
        cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=60, check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Issued]:
    directory = tmp_path_factory.mktemp("tls-errors")
    return {
        "a": issue(directory, "a", "ecdsa"),
        "b": issue(directory, "b", "rsa"),
        "c": issue(directory, "c", "rsa"),
        "enc": issue(directory, "enc", "rsa", password=b"s3cret"),
    }


def assert_error(result: subprocess.CompletedProcess[str], code: int, *parts: str) -> None:
    assert result.returncode == code, result.stderr
    line = next(line for line in result.stderr.splitlines() if line.startswith("Error:"))
    for part in parts:
        assert part in line, line
    assert "PEM lib" not in result.stderr


def test_certificate_without_key(certs: dict[str, Issued]) -> None:
    result = run_cli("--ssl-certfile", certs["a"].certfile)
    assert_error(result, 3, certs["a"].certfile, "no private key", "--ssl-keyfile")


def test_certificate_and_key_swapped(certs: dict[str, Issued]) -> None:
    a = certs["a"]
    result = run_cli("--ssl-certfile", a.keyfile, "--ssl-keyfile", a.certfile)
    assert_error(result, 3, a.keyfile, a.certfile, "swapped")


@pytest.mark.parametrize(("cert", "key"), [("b", "c"), ("a", "b")], ids=["same-type", "other-type"])
def test_key_that_does_not_match(certs: dict[str, Issued], cert: str, key: str) -> None:
    certfile, keyfile = certs[cert].certfile, certs[key].keyfile
    result = run_cli("--ssl-certfile", certfile, "--ssl-keyfile", keyfile)
    assert_error(result, 3, keyfile, certfile, "does not match")


def test_encrypted_key_without_password(certs: dict[str, Issued]) -> None:
    enc = certs["enc"]
    result = run_cli("--ssl-certfile", enc.certfile, "--ssl-keyfile", enc.keyfile)
    assert_error(result, 3, enc.keyfile, "encrypted", "--ssl-keyfile-password")


def test_encrypted_key_with_wrong_password(certs: dict[str, Issued]) -> None:
    enc = certs["enc"]
    result = run_cli("--ssl-certfile", enc.certfile, "--ssl-keyfile", enc.keyfile,
                     "--ssl-keyfile-password", "wrong")
    assert_error(result, 3, enc.keyfile, "cannot decrypt", "--ssl-keyfile-password")


def test_key_file_holding_no_key(certs: dict[str, Issued]) -> None:
    a, b = certs["a"], certs["b"]
    result = run_cli("--ssl-certfile", a.certfile, "--ssl-keyfile", b.certfile)
    assert_error(result, 3, b.certfile, "holds no private key", "CERTIFICATE")


def test_unreadable_ca_file(certs: dict[str, Issued], tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("this is not a certificate\n")
    a = certs["a"]
    result = run_cli("--ssl-certfile", a.certfile, "--ssl-keyfile", a.keyfile,
                     "--ssl-cert-reqs", "2", "--ssl-ca-certs", str(garbage))
    assert_error(result, 3, str(garbage), "--ssl-ca-certs", "cannot load CA certificates")


def test_missing_ca_file_is_a_usage_error(certs: dict[str, Issued], tmp_path: Path) -> None:
    a = certs["a"]
    result = run_cli("--ssl-certfile", a.certfile, "--ssl-keyfile", a.keyfile,
                     "--ssl-ca-certs", str(tmp_path / "nope.pem"))
    assert result.returncode == 2
    assert "--ssl-ca-certs" in result.stderr and "nope.pem" in result.stderr


def test_client_certificates_without_ca_is_a_usage_error(certs: dict[str, Issued]) -> None:
    a = certs["a"]
    result = run_cli("--ssl-certfile", a.certfile, "--ssl-keyfile", a.keyfile,
                     "--ssl-cert-reqs", "2")
    assert result.returncode == 2
    assert "--ssl-cert-reqs" in result.stderr and "ssl_ca_certs" in result.stderr


def test_ciphers_that_select_nothing(certs: dict[str, Issued]) -> None:
    a = certs["a"]
    result = run_cli("--ssl-certfile", a.certfile, "--ssl-keyfile", a.keyfile,
                     "--ssl-ciphers", "NO-SUCH-CIPHER")
    assert_error(result, 3, "--ssl-ciphers", "NO-SUCH-CIPHER", "selects no cipher")


@pytest.mark.parametrize(
    ("value", "bad"),
    [("h2", ["'h2'"]), ("spdy/3.1,h2,spdy/2", ["'h2'", "'spdy/2'"]), ("http/1.0", ["'http/1.0'"])],
)
def test_alpn_protocols_only_what_is_served(value: str, bad: list[str]) -> None:
    result = run_cli("--self-signed", "--alpn-protocols", value)
    assert result.returncode == 2
    assert "--alpn-protocols" in result.stderr
    for name in bad:
        assert name in result.stderr
    assert "spdy/3.1, spdy/3, http/1.1" in result.stderr
    assert "'spdy/3.1'" not in result.stderr.split("serves only")[0]
