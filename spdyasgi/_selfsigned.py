"""An ephemeral self-signed certificate for ``--self-signed`` (development only).

Browsers and SPDY clients need TLS with ALPN to pick SPDY, so a throwaway certificate
lets a developer try the server without creating one by hand. The key never leaves
a private temporary directory that is removed when the process exits.
"""

from __future__ import annotations

import atexit
import datetime
import ipaddress
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class SelfSignedFiles:
    certfile: str
    keyfile: str
    directory: str


def generate_self_signed(
    directory: str | None = None,
    *,
    days: int = 7,
    cleanup: bool = True,
    key_type: Literal["ec", "rsa"] = "ec",
) -> SelfSignedFiles:
    """Write a fresh key (EC P-256, or RSA 2048) and a certificate for localhost/127.0.0.1/::1.

    ``--self-signed`` loads one of each: OpenSSL then answers ECDSA-capable clients with
    the EC certificate and clients offering only ECDHE-RSA suites with the RSA one.
    ``cryptography`` is imported here so it stays an optional dependency.
    """
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "--self-signed needs the 'cryptography' package: pip install 'spdyasgi[standard]'"
        ) from exc

    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if key_type == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    san = x509.SubjectAlternativeName(
        [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )

    if directory is None:
        directory = tempfile.mkdtemp(prefix="spdyasgi-selfsigned-")
        if cleanup:
            atexit.register(shutil.rmtree, directory, True)
    suffix = "" if key_type == "ec" else "-rsa"
    certfile = os.path.join(directory, f"cert{suffix}.pem")
    keyfile = os.path.join(directory, f"key{suffix}.pem")
    with open(certfile, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return SelfSignedFiles(certfile=certfile, keyfile=keyfile, directory=directory)
