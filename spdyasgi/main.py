"""The ``spdyasgi`` command line and ``spdyasgi.run()``.

Exit codes: 0 after a clean shutdown, 2 for a bad option (click's usage errors, and
``ConfigError`` mapped back to the flag that set it), 3 when startup fails (the app
cannot be imported, the port is taken, the certificate cannot be read) — always one
``Error: ...`` line on stderr, with the traceback only at ``--log-level debug``/``trace``.
"""

from __future__ import annotations

import logging
import os
import platform
import ssl
import sys
from collections.abc import Callable
from typing import Any

import click
from click.core import ParameterSource

import spdyasgi
from spdyasgi.config import (
    HTTP1_CHOICES,
    INTERFACE_CHOICES,
    LIFESPAN_CHOICES,
    LOG_LEVELS,
    LOGGING_CONFIG,
    MAX_CONTROL_FRAME,
    MAX_WINDOW,
    MIN_WINDOW,
    PROXY_PROTOCOL_CHOICES,
    SPDY_VERSIONS,
    SSL_MIN_VERSIONS,
    WS_CHOICES,
    Config,
    ConfigError,
)
from spdyasgi.importer import ImportFromStringError
from spdyasgi.tls import DEFAULT_CIPHERS

__all__ = ["STARTUP_FAILURE", "main", "run"]

STARTUP_FAILURE = 3
logger = logging.getLogger("spdyasgi.error")

_FileIn = click.Path(exists=True, dir_okay=False, readable=True)


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(
        f"spdyasgi {spdyasgi.__version__} with "
        f"{platform.python_implementation()} {platform.python_version()} on {platform.system()}"
    )
    ctx.exit()


def _headers(
    _ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]
) -> list[tuple[str, str]]:
    parsed = []
    for item in value:
        name, sep, val = item.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r} is not in NAME:VALUE form")
        parsed.append((name.strip(), val.strip()))
    return parsed


def _comma_list(allowed: tuple[str, ...] | None = None) -> Callable[..., tuple[str, ...]]:
    def callback(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
        items = tuple(item.strip() for item in value.split(",") if item.strip())
        if not items and allowed is not None:
            raise click.BadParameter("at least one value is needed")
        for item in items:
            if allowed is not None and item not in allowed:
                raise click.BadParameter(f"{item!r} is not one of {', '.join(allowed)}")
        return items

    return callback


_WINDOW = click.IntRange(MIN_WINDOW, MAX_WINDOW)
_POSITIVE = click.FloatRange(min=0, min_open=True)
_NON_NEGATIVE = click.FloatRange(min=0)


@click.command(
    context_settings={"auto_envvar_prefix": "SPDYASGI", "help_option_names": ["-h", "--help"]}
)
@click.argument("app", envvar="SPDYASGI_APP")
@click.option(
    "--factory",
    is_flag=True,
    default=False,
    help="Treat APP as a factory: call it with no arguments to get the ASGI app.",
)
@click.option(
    "--app-dir",
    default=".",
    show_default=True,
    help="Directory put first on sys.path before importing APP.",
)
@click.option(
    "--env-file",
    type=_FileIn,
    default=None,
    help="Dotenv file (read by python-dotenv) whose variables are set, unless already "
    "set, before the app is loaded.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; '::' or '0.0.0.0' for all interfaces.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="TCP port to bind; 0 picks a free port.",
)
@click.option("--uds", default=None, help="Bind to this Unix domain socket instead of TCP.")
@click.option(
    "--fd",
    type=click.IntRange(min=0),
    default=None,
    help="Serve on an already bound socket with this file descriptor.",
)
@click.option(
    "--backlog",
    type=click.IntRange(min=1),
    default=2048,
    show_default=True,
    help="Maximum number of pending connections.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Number of worker processes (default: $WEB_CONCURRENCY or 1).",
)
@click.option(
    "--reload",
    is_flag=True,
    default=False,
    help="Restart the server when source files change (development).",
)
@click.option(
    "reload_dirs",
    "--reload-dir",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Directory to watch for --reload (repeatable; default: current directory).",
)
@click.option(
    "reload_includes",
    "--reload-include",
    multiple=True,
    help="Glob of files to watch for --reload (repeatable; default: *.py).",
)
@click.option(
    "reload_excludes",
    "--reload-exclude",
    multiple=True,
    help="Glob of files to ignore for --reload (repeatable).",
)
@click.option(
    "--reload-delay",
    type=_NON_NEGATIVE,
    default=0.25,
    show_default=True,
    help="Seconds to wait for more changes before restarting.",
)
@click.option(
    "--loop",
    type=click.Choice(["auto", "asyncio", "uvloop"]),
    default="auto",
    show_default=True,
    help="Event loop; auto uses uvloop when installed.",
)
@click.option(
    "--http",
    "--http1",
    "http",
    envvar=["SPDYASGI_HTTP", "SPDYASGI_HTTP1"],
    type=click.Choice(HTTP1_CHOICES),
    default="auto",
    show_default=True,
    help="HTTP/1.1 parser; auto uses httptools when installed. --http1 and "
    "SPDYASGI_HTTP1 are the older names of this option.",
)
@click.option(
    "--lifespan",
    type=click.Choice(LIFESPAN_CHOICES),
    default="auto",
    show_default=True,
    help="ASGI lifespan events; auto ignores apps without support.",
)
@click.option(
    "--interface",
    type=click.Choice(INTERFACE_CHOICES),
    default="auto",
    show_default=True,
    help="ASGI interface of APP; auto detects ASGI2 classes.",
)
@click.option(
    "--log-level",
    type=click.Choice(list(LOG_LEVELS), case_sensitive=False),
    default=None,
    help="Log level of the spdyasgi loggers [default: info].",
)
@click.option(
    "--log-config",
    type=_FileIn,
    default=None,
    help="Logging configuration file: .json, .yaml/.yml or .ini.",
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="Log one line per request (SPDY stream or HTTP/1.1 request).",
)
@click.option(
    "--access-log-format",
    default=None,
    help="Access line in gunicorn atoms, plus %(S)s stream id and %(P)s protocol.",
)
@click.option(
    "--use-colors/--no-use-colors",
    default=None,
    help="Colour log output [default: when the output is a terminal].",
)
@click.option(
    "--proxy-headers/--no-proxy-headers",
    default=True,
    show_default=True,
    help="Trust X-Forwarded-For/-Proto and Forwarded from --forwarded-allow-ips.",
)
@click.option(
    "--forwarded-allow-ips",
    default=None,
    help="Comma list of proxy IPs/CIDRs to trust, or '*' "
    "[default: $FORWARDED_ALLOW_IPS or 127.0.0.1].",
)
@click.option("--root-path", default="", help="ASGI root_path when mounted below a prefix.")
@click.option(
    "--limit-concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="Answer 503 above this many concurrent requests/streams.",
)
@click.option(
    "--limit-max-requests",
    type=click.IntRange(min=1),
    default=None,
    help="Exit after this many requests (workers are then restarted).",
)
@click.option(
    "--timeout-keep-alive",
    type=_NON_NEGATIVE,
    default=5,
    show_default=True,
    help="Seconds an idle HTTP/1.1 keep-alive connection stays open.",
)
@click.option(
    "--timeout-graceful-shutdown",
    type=_NON_NEGATIVE,
    default=None,
    help="Seconds to let requests finish on shutdown before cancelling them.",
)
@click.option(
    "--timeout-notify",
    type=_POSITIVE,
    default=30,
    show_default=True,
    help="Seconds between worker heartbeats to a supervisor.",
)
@click.option(
    "--server-header/--no-server-header",
    default=True,
    show_default=True,
    help="Send 'server: spdyasgi'.",
)
@click.option(
    "--date-header/--no-date-header",
    default=True,
    show_default=True,
    help="Send the 'date' header.",
)
@click.option(
    "headers",
    "--header",
    multiple=True,
    callback=_headers,
    metavar="NAME:VALUE",
    help="Extra response header on every response (repeatable).",
)
@click.option(
    "--ssl-keyfile",
    type=_FileIn,
    default=None,
    help="TLS private key file (PEM); may be omitted when --ssl-certfile holds the key.",
)
@click.option(
    "--ssl-certfile",
    type=_FileIn,
    default=None,
    help="TLS certificate chain file (PEM, leaf first: certbot's fullchain.pem); "
    "enables TLS with ALPN. RSA and ECDSA keys both work.",
)
@click.option(
    "--ssl-keyfile-password", default=None, help="Password of an encrypted --ssl-keyfile."
)
@click.option(
    "--ssl-version",
    type=int,
    default=int(ssl.PROTOCOL_TLS_SERVER),
    show_default=True,
    help="ssl module protocol constant for the context (leave as is; see --ssl-min-version).",
)
@click.option(
    "--ssl-min-version",
    type=click.Choice(SSL_MIN_VERSIONS),
    default="1.2",
    show_default=True,
    help="Oldest TLS version accepted. 1.0/1.1 also need --ssl-ciphers with legacy suites "
    "(see docs/tls.md).",
)
@click.option(
    "--ssl-cert-reqs",
    type=click.IntRange(0, 2),
    default=int(ssl.CERT_NONE),
    show_default=True,
    help="Client certificates: 0 none, 1 optional, 2 required (needs --ssl-ca-certs).",
)
@click.option(
    "--ssl-ca-certs",
    type=_FileIn,
    default=None,
    help="CA bundle (PEM) that client certificates must chain to.",
)
@click.option(
    "--ssl-ciphers",
    default=DEFAULT_CIPHERS,
    show_default=True,
    help="OpenSSL cipher list for TLS 1.2 and below (TLS 1.3 suites are always on); "
    "the default is Mozilla's intermediate profile: ECDHE with AES-GCM or ChaCha20.",
)
@click.option(
    "--self-signed",
    is_flag=True,
    default=False,
    help="Serve TLS with an ephemeral self-signed localhost certificate, ECDSA P-256 "
    "(development).",
)
@click.option(
    "--spdy-versions",
    default="3.1,3",
    show_default=True,
    callback=_comma_list(SPDY_VERSIONS),
    help="Comma list of SPDY versions to accept.",
)
@click.option(
    "--alpn-protocols",
    default="spdy/3.1,spdy/3,http/1.1",
    show_default=True,
    callback=_comma_list(),
    help="Comma list of ALPN protocols offered, most preferred first: "
    "spdy/3.1, spdy/3 and http/1.1 only.",
)
@click.option(
    "--cleartext-spdy-version",
    type=click.Choice(SPDY_VERSIONS),
    default="3.1",
    show_default=True,
    help="SPDY version assumed for cleartext (prior knowledge).",
)
@click.option(
    "--max-concurrent-streams",
    type=click.IntRange(1, MAX_WINDOW),
    default=256,
    show_default=True,
    help="Streams a client may open at once per session.",
)
@click.option(
    "--initial-window-size",
    type=_WINDOW,
    default=262144,
    show_default=True,
    help="Per-stream receive window advertised to clients (bytes).",
)
@click.option(
    "--session-window-size",
    type=_WINDOW,
    default=4194304,
    show_default=True,
    help="SPDY/3.1 session receive window (bytes).",
)
@click.option(
    "--header-compression-level",
    type=click.IntRange(-1, 9),
    default=0,
    show_default=True,
    help="zlib level for response headers: 0 stored (default: CRIME-safe and cheapest), "
    "-1 Huffman-only (CRIME-safe, ~15% smaller, ~8x the CPU), 1-9 full deflate "
    "(smallest, but leaks secrets through compressed sizes).",
)
@click.option(
    "--max-header-size",
    type=click.IntRange(min=1),
    default=65536,
    show_default=True,
    help=(
        "Largest request head (bytes): a decompressed SPDY header block, or an "
        "HTTP/1.1 request line with its headers (431 over it)."
    ),
)
@click.option(
    "--max-header-count",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    help="Most header fields in one request.",
)
@click.option(
    "--max-frame-size",
    type=click.IntRange(1024, MAX_CONTROL_FRAME),
    default=65536,
    show_default=True,
    help="Largest control frame payload accepted (bytes).",
)
@click.option(
    "--limit-request-body",
    type=click.IntRange(min=0),
    default=None,
    help="Answer 413 to request bodies above this many bytes.",
)
@click.option(
    "--ping-interval",
    type=_POSITIVE,
    default=None,
    help="Seconds between server PINGs on an idle session (default: off).",
)
@click.option(
    "--ping-timeout",
    type=_POSITIVE,
    default=20.0,
    show_default=True,
    help="Seconds to wait for a PING reply before closing the session.",
)
@click.option(
    "--timeout-receive",
    type=_POSITIVE,
    default=30.0,
    show_default=True,
    help=(
        "Seconds without progress on a half-received frame or request head before the "
        "connection is closed (see --receive-min-rate)."
    ),
)
@click.option(
    "--receive-min-rate",
    type=click.IntRange(min=0),
    default=500,
    show_default=True,
    help=(
        "Bytes per second a half-received SPDY frame must bring over each "
        "--timeout-receive period (slowloris guard; 0: any byte is progress)."
    ),
)
@click.option(
    "--rapid-reset-burst",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help=(
        "SPDY streams a session may open that end before any reply (reset or refused) "
        "before it is closed, on top of --rapid-reset-rate."
    ),
)
@click.option(
    "--rapid-reset-rate",
    type=_POSITIVE,
    default=100.0,
    show_default=True,
    help="Such streams per second that a session may sustain (refill of --rapid-reset-burst).",
)
@click.option(
    "--timeout-idle",
    type=_POSITIVE,
    default=300.0,
    show_default=True,
    help="Seconds a SPDY session with no open streams stays open.",
)
@click.option(
    "--timeout-handshake",
    type=_POSITIVE,
    default=10.0,
    show_default=True,
    help="Seconds allowed for the TLS handshake.",
)
@click.option(
    "--max-pending-output",
    type=click.IntRange(min=1),
    default=1048576,
    show_default=True,
    help="Bytes buffered per session before app send() waits.",
)
# -- fleet: PROXY protocol and metrics (docs/deployment.md, docs/metrics.md) --
@click.option(
    "--proxy-protocol",
    type=click.Choice(PROXY_PROTOCOL_CHOICES),
    default="off",
    show_default=True,
    help="Read a PROXY protocol header (v1, v2 or either) from --proxy-protocol-allow-ips "
    "before TLS and the protocol sniff.",
)
@click.option(
    "--proxy-protocol-allow-ips",
    default=None,
    help="Comma list of balancer IPs/CIDRs that must send a PROXY header, or '*' "
    "[default: $PROXY_PROTOCOL_ALLOW_IPS or 127.0.0.1].",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve Prometheus metrics on this port (needs the 'metrics' extra).",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="Address the metrics port binds.",
)
@click.option(
    "--ws",
    type=click.Choice(WS_CHOICES),
    default="auto",
    show_default=True,
    help="WebSocket implementation over HTTP/1.1; auto: websockets, else wsproto, else none.",
)
@click.option(
    "--ws-max-size",
    type=click.IntRange(min=1),
    default=16777216,
    show_default=True,
    help="Largest WebSocket message accepted, in bytes (bigger: close 1009).",
)
@click.option(
    "--ws-max-queue",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Received WebSocket messages queued for the app before reading pauses.",
)
@click.option(
    "--ws-ping-interval",
    type=_POSITIVE,
    default=20.0,
    show_default=True,
    help="Seconds between WebSocket keepalive pings.",
)
@click.option(
    "--ws-ping-timeout",
    type=_POSITIVE,
    default=20.0,
    show_default=True,
    help="Seconds to wait for a pong before closing the WebSocket.",
)
@click.option(
    "--ws-per-message-deflate",
    type=bool,
    default=True,
    show_default=True,
    help="Offer the permessage-deflate WebSocket extension.",
)
@click.option(
    "--h11-max-incomplete-event-size",
    type=click.IntRange(min=1),
    default=None,
    help="When set, the largest HTTP/1.1 request head (request line + headers, h11 and "
    "httptools alike; over it: 431) instead of --max-header-size, which keeps bounding "
    "SPDY header blocks [default: --max-header-size].",
)
@click.option(
    "--limit-max-requests-jitter",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Random extra (0..N) added per worker to --limit-max-requests.",
)
@click.option(
    "--timeout-worker-healthcheck",
    type=_POSITIVE,
    default=5,
    show_default=True,
    help="Seconds a worker may leave the supervisor's ping unanswered before it is killed.",
)
@click.option(
    "--reset-contextvars/--no-reset-contextvars",
    default=False,
    show_default=True,
    help="Start each HTTP/1.1 request and WebSocket from a fresh copy of the "
    "connection's contextvars context, never from the previous pipelined request's.",
)
@click.option(
    "--compat",
    is_flag=True,
    default=False,
    help=(
        "Tolerate, bounded and logged once per session, the faults of deployed SPDY clients: "
        "out-of-order stream ids, bodies sent past the window, a session window never "
        "credited; on cleartext, detect SPDY/3 vs 3.1 flow control (docs/spdy.md)."
    ),
)
# -- Dial-out serving (spdyasgi/dialout.py, docs/relay.md): keep this block together --
@click.option(
    "--connect",
    multiple=True,
    metavar="HOST:PORT",
    help="Open SPDY sessions to this relay (spdyasgi-relay) and serve the streams it "
    "opens (repeatable). TLS with certificate verification unless --connect-cleartext.",
)
@click.option(
    "--connect-sessions",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Sessions kept open to each --connect relay (reconnected with backoff).",
)
@click.option(
    "--connect-token",
    default=None,
    help="Token sent to the relay in the registration line (docs/relay.md).",
)
@click.option(
    "--connect-hosts",
    default="*",
    show_default=True,
    help="Comma-separated Host names this origin serves through the relay ('*': any).",
)
@click.option(
    "--connect-cleartext",
    is_flag=True,
    default=False,
    help="Dial the relay without TLS (trusted networks and tests only).",
)
@click.option(
    "--connect-cafile",
    default=None,
    help="CA bundle that verifies the relay's certificate [default: the system's].",
)
@click.option(
    "--connect-certfile",
    default=None,
    help="Client certificate presented to the relay.",
)
@click.option(
    "--connect-keyfile",
    default=None,
    help="Private key of --connect-certfile.",
)
@click.option(
    "--listen/--no-listen",
    default=True,
    show_default=True,
    help="Also listen on --host/--port (--no-listen: serve only through --connect).",
)
# -- end of the dial-out block --
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_version,
    help="Show the version and exit.",
)
def main(app: str, **options: Any) -> None:
    """Serve the ASGI application APP ("module:attribute") over SPDY/3.1 and HTTP/1.1."""
    ctx = click.get_current_context()
    _check_exclusive(ctx, options)
    options["reload_dirs"] = list(options["reload_dirs"]) or None
    options["reload_includes"] = list(options["reload_includes"]) or None
    options["reload_excludes"] = list(options["reload_excludes"]) or None
    options["connect"] = list(options["connect"]) or None
    if options["log_config"] is None:
        options["log_config"] = LOGGING_CONFIG
    try:
        config = Config(app, **options)
    except ConfigError as exc:
        raise click.BadParameter(exc.detail, ctx=ctx, param_hint=_flag_for(exc.option)) from exc
    try:
        _run_config(config)
    except (ImportFromStringError, OSError, RuntimeError, ValueError) as exc:
        if logger.isEnabledFor(logging.DEBUG):
            logger.exception("Startup failed")
        click.echo(f"Error: {exc}", err=True)
        sys.exit(STARTUP_FAILURE)


def _check_exclusive(ctx: click.Context, options: dict[str, Any]) -> None:
    """Socket choices that silently override each other are usage errors instead."""
    explicit = {
        name
        for name in ("host", "port")
        if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)
    }
    for sock_opt in ("uds", "fd"):
        if options[sock_opt] is not None and explicit:
            others = " and ".join(f"--{name}" for name in sorted(explicit))
            raise click.BadParameter(
                f"cannot be combined with {others}", ctx=ctx, param_hint=f"'--{sock_opt}'"
            )
    if options["uds"] is not None and options["fd"] is not None:
        raise click.BadParameter("cannot be combined with --fd", ctx=ctx, param_hint="'--uds'")


def _flag_for(option: str) -> str:
    for param in main.params:
        if param.name == option and isinstance(param, click.Option):
            return f"'{param.opts[0]}'"
    return f"'{option}'"


def run(app: Any, **kwargs: Any) -> None:
    """Serve ``app`` (an ASGI app or a ``"module:attr"`` string) with ``Config(**kwargs)``.

    Blocks until the server stops. Startup failures raise (``ImportFromStringError``,
    ``OSError``...), except that a server which never started exits with status 3.
    """
    _run_config(Config(app, **kwargs))


def _run_config(config: Config) -> None:
    if (config.reload or config.workers > 1) and not isinstance(config.app, str):
        raise ValueError(
            'You must pass the application as an import string ("module:attr") '
            "to enable 'reload' or 'workers'."
        )
    from spdyasgi.listen import bind  # late, like server_class(): keeps --help light

    created_uds = config.uds
    try:
        if config.should_reload:
            from spdyasgi.supervisors.watchfilesreload import WatchFilesReload

            sock = bind(config)
            WatchFilesReload(config, sockets=[sock]).run()
        elif config.workers > 1:
            from spdyasgi.supervisors.multiprocess import Multiprocess

            sock = bind(config)
            code = Multiprocess(config, sockets=[sock]).run()
            if code:
                sys.exit(code)
        else:
            config.load()
            sockets = [bind(config)] if config.listen else []  # --no-listen: dial-out only
            server = server_class()(config)
            server.run(sockets=sockets)
            if not server.started:
                sys.exit(STARTUP_FAILURE)
    finally:
        if created_uds and os.path.exists(created_uds):
            os.unlink(created_uds)


def server_class() -> Any:
    """``spdyasgi.server.Server``, imported late so config/CLI work without the server."""
    from importlib import import_module

    return import_module("spdyasgi.server").Server


if __name__ == "__main__":  # pragma: no cover
    main()
