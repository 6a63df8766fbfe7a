"""``--connect`` and friends: dial-out serving through a relay (docs/relay.md)."""

from __future__ import annotations

import click

from spdyasgi.cli_options import option_group

__all__ = ["dialout_options"]

dialout_options = option_group(
    click.option(
        "--connect",
        multiple=True,
        metavar="HOST:PORT",
        help="Open SPDY sessions to this relay (spdyasgi-relay) and serve the streams it "
        "opens (repeatable). TLS with certificate verification unless --connect-cleartext.",
    ),
    click.option(
        "--connect-sessions",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Sessions kept open to each --connect relay (reconnected with backoff).",
    ),
    click.option(
        "--connect-token",
        default=None,
        help="Token sent to the relay in the registration line (docs/relay.md).",
    ),
    click.option(
        "--connect-hosts",
        default="*",
        show_default=True,
        help="Comma-separated Host names this origin serves through the relay ('*': any).",
    ),
    click.option(
        "--connect-cleartext",
        is_flag=True,
        default=False,
        help="Dial the relay without TLS (trusted networks and tests only).",
    ),
    click.option(
        "--connect-cafile",
        default=None,
        help="CA bundle that verifies the relay's certificate [default: the system's].",
    ),
    click.option(
        "--connect-certfile",
        default=None,
        help="Client certificate presented to the relay.",
    ),
    click.option(
        "--connect-keyfile",
        default=None,
        help="Private key of --connect-certfile.",
    ),
    click.option(
        "--listen/--no-listen",
        default=True,
        show_default=True,
        help="Also listen on --host/--port (--no-listen: serve only through --connect).",
    ),
)
