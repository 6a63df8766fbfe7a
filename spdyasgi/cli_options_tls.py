"""The ``spdyasgi`` command's TLS options (docs/tls.md): one decorator, ``tls_options``.

TLS with ALPN is how browsers pick SPDY; these flags feed ``Config`` and, through it,
``spdyasgi.tls.create_context``.
"""

from __future__ import annotations

import ssl

import click

from spdyasgi.cli_options import FILE_IN, option_group
from spdyasgi.config_choices import SSL_MIN_VERSIONS
from spdyasgi.tls import DEFAULT_CIPHERS

__all__ = ["tls_options"]


#: TLS: certificate, key, client certificates, versions and ciphers (docs/tls.md).
tls_options = option_group(
    click.option(
        "--ssl-keyfile",
        type=FILE_IN,
        default=None,
        help="TLS private key file (PEM); may be omitted when --ssl-certfile holds the key.",
    ),
    click.option(
        "--ssl-certfile",
        type=FILE_IN,
        default=None,
        help="TLS certificate chain file (PEM, leaf first: certbot's fullchain.pem); "
        "enables TLS with ALPN. RSA and ECDSA keys both work.",
    ),
    click.option(
        "--ssl-keyfile-password", default=None, help="Password of an encrypted --ssl-keyfile."
    ),
    click.option(
        "--ssl-version",
        type=int,
        default=int(ssl.PROTOCOL_TLS_SERVER),
        show_default=True,
        help="ssl module protocol constant for the context (leave as is; see --ssl-min-version).",
    ),
    click.option(
        "--ssl-min-version",
        type=click.Choice(SSL_MIN_VERSIONS),
        default="1.2",
        show_default=True,
        help="Oldest TLS version accepted. 1.0/1.1 also need --ssl-ciphers with legacy suites "
        "(see docs/tls.md).",
    ),
    click.option(
        "--ssl-cert-reqs",
        type=click.IntRange(0, 2),
        default=int(ssl.CERT_NONE),
        show_default=True,
        help="Client certificates: 0 none, 1 optional, 2 required (needs --ssl-ca-certs).",
    ),
    click.option(
        "--ssl-ca-certs",
        type=FILE_IN,
        default=None,
        help="CA bundle (PEM) that client certificates must chain to.",
    ),
    click.option(
        "--ssl-ciphers",
        default=DEFAULT_CIPHERS,
        show_default=True,
        help="OpenSSL cipher list for TLS 1.2 and below (TLS 1.3 suites are always on); "
        "the default is Mozilla's intermediate profile: ECDHE with AES-GCM or ChaCha20.",
    ),
    click.option(
        "--self-signed",
        is_flag=True,
        default=False,
        help="Serve TLS with an ephemeral self-signed localhost certificate, ECDSA P-256 "
        "(development).",
    ),
)
