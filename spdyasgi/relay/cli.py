"""``spdyasgi-relay``: visitors on one port, dial-out origins on another (docs/relay.md)."""

from __future__ import annotations

import ssl
from typing import Any

import click

from .app import RelayApp
from .origins import OriginRegistry

__all__ = ["main", "origin_ssl_context"]


def origin_ssl_context(certfile: str, keyfile: str | None,
                       ca_certs: str | None) -> ssl.SSLContext:
    """TLS for the origin port: ALPN spdy/3.1; origin client certificates when `ca_certs`."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certfile, keyfile)
    ctx.set_alpn_protocols(["spdy/3.1"])
    if ca_certs:
        ctx.load_verify_locations(ca_certs)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


@click.command(context_settings={"auto_envvar_prefix": "SPDYASGI_RELAY"})
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Visitor address (HTTP/1.1 and SPDY on one port).")
@click.option("--port", type=int, default=8080, show_default=True, help="Visitor port.")
@click.option("--ssl-certfile", default=None, help="Visitor-side TLS certificate.")
@click.option("--ssl-keyfile", default=None, help="Visitor-side TLS key.")
@click.option("--origin-host", default="0.0.0.0", show_default=True,
              help="Address origins (spdyasgi --connect) dial.")
@click.option("--origin-port", type=int, default=8443, show_default=True,
              help="Port origins dial.")
@click.option("--origin-certfile", default=None,
              help="TLS certificate of the origin port (cleartext without one).")
@click.option("--origin-keyfile", default=None, help="Key of --origin-certfile.")
@click.option("--origin-ca-certs", default=None,
              help="Require origins to present a client certificate issued by this CA.")
@click.option("--token", "tokens", multiple=True,
              help="Token an origin must register with (repeatable; none: any origin).")
@click.option("--origin-timeout", type=float, default=30.0, show_default=True,
              help="Seconds an origin may take to send a response head (then 504).")
@click.option("--origin-max-streams", type=click.IntRange(min=1), default=100,
              show_default=True, help="Concurrent streams per origin session.")
@click.option("--origin-buffer", type=click.IntRange(min=65536), default=262144,
              show_default=True,
              help="Response bytes buffered per stream before the origin is held back.")
@click.option("--timeout-graceful-shutdown", type=float, default=10.0, show_default=True,
              help="Seconds visitors' requests get to finish at shutdown.")
@click.option("--log-level", default="info", show_default=True)
@click.option("--access-log/--no-access-log", default=True, show_default=True)
def main(**options: Any) -> None:
    """Relay visitors' requests to origins that dial in with `spdyasgi --connect`."""
    registry = OriginRegistry(list(options["tokens"]), options["origin_max_streams"],
                              options["origin_buffer"])
    origin_ssl = None
    if options["origin_certfile"]:
        origin_ssl = origin_ssl_context(options["origin_certfile"], options["origin_keyfile"],
                                        options["origin_ca_certs"])
    app = RelayApp(registry, options["origin_host"], options["origin_port"], origin_ssl,
                   options["origin_timeout"])
    from spdyasgi.main import run  # late: keeps --help light

    run(
        app, host=options["host"], port=options["port"], lifespan="on",
        ssl_certfile=options["ssl_certfile"], ssl_keyfile=options["ssl_keyfile"],
        proxy_headers=False, log_level=options["log_level"],
        access_log=options["access_log"],
        timeout_graceful_shutdown=options["timeout_graceful_shutdown"],
    )


if __name__ == "__main__":  # pragma: no cover
    main()
