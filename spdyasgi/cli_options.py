"""The ``spdyasgi`` command's options, one composable decorator per topic.

``main.py`` stacks these groups on the click command in a fixed order, which is the
order of ``--help`` and docs/settings.md; TLS and SPDY options are in
cli_options_tls.py and cli_options_spdy.py. A new topic is a new ``option_group``
(here or in its own ``cli_options_<topic>.py``) added to that stack.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from typing import Any, TypeVar

import click

import spdyasgi
from spdyasgi.config_choices import (
    HTTP1_CHOICES,
    INTERFACE_CHOICES,
    LIFESPAN_CHOICES,
    LOG_LEVELS,
    PROXY_PROTOCOL_CHOICES,
    WS_CHOICES,
)

__all__ = [
    "FILE_IN",
    "NON_NEGATIVE",
    "POSITIVE",
    "app_options",
    "binding_options",
    "fleet_options",
    "limits_timeouts_options",
    "logging_options",
    "option_group",
    "proxy_headers_options",
    "response_headers_options",
    "runtime_options",
    "version_option",
    "websocket_uvicorn_options",
    "workers_reload_options",
]

F = TypeVar("F", bound=Callable[..., Any])

FILE_IN = click.Path(exists=True, dir_okay=False, readable=True)
POSITIVE = click.FloatRange(min=0, min_open=True)
NON_NEGATIVE = click.FloatRange(min=0)


def option_group(*options: Callable[[F], F]) -> Callable[[F], F]:
    """One decorator for several ``click.option``s; the first one is listed first."""

    def apply(f: F) -> F:
        for option in reversed(options):
            f = option(f)
        return f

    return apply


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


#: Where the app comes from: ``--factory``, ``--app-dir``, ``--env-file``.
app_options = option_group(
    click.option(
        "--factory",
        is_flag=True,
        default=False,
        help="Treat APP as a factory: call it with no arguments to get the ASGI app.",
    ),
    click.option(
        "--app-dir",
        default=".",
        show_default=True,
        help="Directory put first on sys.path before importing APP.",
    ),
    click.option(
        "--env-file",
        type=FILE_IN,
        default=None,
        help="Dotenv file (read by python-dotenv) whose variables are set, unless already "
        "set, before the app is loaded.",
    ),
)

#: The listening socket: TCP host/port, a Unix socket or an inherited fd.
binding_options = option_group(
    click.option(
        "--host",
        default="127.0.0.1",
        show_default=True,
        help="Address to bind; '::' or '0.0.0.0' for all interfaces.",
    ),
    click.option(
        "--port",
        type=click.IntRange(0, 65535),
        default=8000,
        show_default=True,
        help="TCP port to bind; 0 picks a free port.",
    ),
    click.option("--uds", default=None, help="Bind to this Unix domain socket instead of TCP."),
    click.option(
        "--fd",
        type=click.IntRange(min=0),
        default=None,
        help="Serve on an already bound socket with this file descriptor.",
    ),
    click.option(
        "--backlog",
        type=click.IntRange(min=1),
        default=2048,
        show_default=True,
        help="Maximum number of pending connections.",
    ),
)

#: Worker processes and the ``--reload`` file watcher (supervisors/).
workers_reload_options = option_group(
    click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=None,
        help="Number of worker processes (default: $WEB_CONCURRENCY or 1).",
    ),
    click.option(
        "--reload",
        is_flag=True,
        default=False,
        help="Restart the server when source files change (development).",
    ),
    click.option(
        "reload_dirs",
        "--reload-dir",
        multiple=True,
        type=click.Path(exists=True, file_okay=False),
        help="Directory to watch for --reload (repeatable; default: current directory).",
    ),
    click.option(
        "reload_includes",
        "--reload-include",
        multiple=True,
        help="Glob of files to watch for --reload (repeatable; default: *.py).",
    ),
    click.option(
        "reload_excludes",
        "--reload-exclude",
        multiple=True,
        help="Glob of files to ignore for --reload (repeatable).",
    ),
    click.option(
        "--reload-delay",
        type=NON_NEGATIVE,
        default=0.25,
        show_default=True,
        help="Seconds to wait for more changes before restarting.",
    ),
)

#: Event loop, HTTP/1.1 parser, lifespan and ASGI interface of the app.
runtime_options = option_group(
    click.option(
        "--loop",
        type=click.Choice(["auto", "asyncio", "uvloop"]),
        default="auto",
        show_default=True,
        help="Event loop; auto uses uvloop when installed.",
    ),
    click.option(
        "--http",
        "--http1",
        "http",
        envvar=["SPDYASGI_HTTP", "SPDYASGI_HTTP1"],
        type=click.Choice(HTTP1_CHOICES),
        default="auto",
        show_default=True,
        help="HTTP/1.1 parser; auto uses httptools when installed. --http1 and "
        "SPDYASGI_HTTP1 are the older names of this option.",
    ),
    click.option(
        "--lifespan",
        type=click.Choice(LIFESPAN_CHOICES),
        default="auto",
        show_default=True,
        help="ASGI lifespan events; auto ignores apps without support.",
    ),
    click.option(
        "--interface",
        type=click.Choice(INTERFACE_CHOICES),
        default="auto",
        show_default=True,
        help="ASGI interface of APP; auto detects ASGI2 classes.",
    ),
)

#: Log level, logging config file, the access log and colours.
logging_options = option_group(
    click.option(
        "--log-level",
        type=click.Choice(list(LOG_LEVELS), case_sensitive=False),
        default=None,
        help="Log level of the spdyasgi loggers [default: info].",
    ),
    click.option(
        "--log-config",
        type=FILE_IN,
        default=None,
        help="Logging configuration file: .json, .yaml/.yml or .ini.",
    ),
    click.option(
        "--access-log/--no-access-log",
        default=True,
        show_default=True,
        help="Log one line per request (SPDY stream or HTTP/1.1 request).",
    ),
    click.option(
        "--access-log-format",
        default=None,
        help="Access line in gunicorn atoms, plus %(S)s stream id and %(P)s protocol.",
    ),
    click.option(
        "--use-colors/--no-use-colors",
        default=None,
        help="Colour log output [default: when the output is a terminal].",
    ),
)

#: Behind a reverse proxy: trusted forwarding headers and ``root_path``.
proxy_headers_options = option_group(
    click.option(
        "--proxy-headers/--no-proxy-headers",
        default=True,
        show_default=True,
        help="Trust X-Forwarded-For/-Proto and Forwarded from --forwarded-allow-ips.",
    ),
    click.option(
        "--forwarded-allow-ips",
        default=None,
        help="Comma list of proxy IPs/CIDRs to trust, or '*' "
        "[default: $FORWARDED_ALLOW_IPS or 127.0.0.1].",
    ),
    click.option("--root-path", default="", help="ASGI root_path when mounted below a prefix."),
)

#: Request limits and HTTP/1.1 keep-alive, shutdown and heartbeat timeouts.
limits_timeouts_options = option_group(
    click.option(
        "--limit-concurrency",
        type=click.IntRange(min=1),
        default=None,
        help="Answer 503 above this many concurrent requests/streams.",
    ),
    click.option(
        "--limit-max-requests",
        type=click.IntRange(min=1),
        default=None,
        help="Exit after this many requests (workers are then restarted).",
    ),
    click.option(
        "--timeout-keep-alive",
        type=NON_NEGATIVE,
        default=5,
        show_default=True,
        help="Seconds an idle HTTP/1.1 keep-alive connection stays open.",
    ),
    click.option(
        "--timeout-graceful-shutdown",
        type=NON_NEGATIVE,
        default=None,
        help="Seconds to let requests finish on shutdown before cancelling them.",
    ),
    click.option(
        "--timeout-notify",
        type=POSITIVE,
        default=30,
        show_default=True,
        help="Seconds between worker heartbeats to a supervisor.",
    ),
)

#: Headers added to every response: server, date and ``--header``.
response_headers_options = option_group(
    click.option(
        "--server-header/--no-server-header",
        default=True,
        show_default=True,
        help="Send 'server: spdyasgi'.",
    ),
    click.option(
        "--date-header/--no-date-header",
        default=True,
        show_default=True,
        help="Send the 'date' header.",
    ),
    click.option(
        "headers",
        "--header",
        multiple=True,
        callback=_headers,
        metavar="NAME:VALUE",
        help="Extra response header on every response (repeatable).",
    ),
)

#: Fleet: PROXY protocol and metrics (docs/deployment.md, docs/metrics.md).
fleet_options = option_group(
    click.option(
        "--proxy-protocol",
        type=click.Choice(PROXY_PROTOCOL_CHOICES),
        default="off",
        show_default=True,
        help="Read a PROXY protocol header (v1, v2 or either) from --proxy-protocol-allow-ips "
        "before TLS and the protocol sniff.",
    ),
    click.option(
        "--proxy-protocol-allow-ips",
        default=None,
        help="Comma list of balancer IPs/CIDRs that must send a PROXY header, or '*' "
        "[default: $PROXY_PROTOCOL_ALLOW_IPS or 127.0.0.1].",
    ),
    click.option(
        "--metrics-port",
        type=click.IntRange(0, 65535),
        default=None,
        help="Serve Prometheus metrics on this port (needs the 'metrics' extra).",
    ),
    click.option(
        "--metrics-host",
        default="127.0.0.1",
        show_default=True,
        help="Address the metrics port binds.",
    ),
)

#: WebSockets and the rest of uvicorn's options (docs/websockets.md).
websocket_uvicorn_options = option_group(
    click.option(
        "--ws",
        type=click.Choice(WS_CHOICES),
        default="auto",
        show_default=True,
        help="WebSocket implementation over HTTP/1.1; auto: websockets, else wsproto, else none.",
    ),
    click.option(
        "--ws-max-size",
        type=click.IntRange(min=1),
        default=16777216,
        show_default=True,
        help="Largest WebSocket message accepted, in bytes (bigger: close 1009).",
    ),
    click.option(
        "--ws-max-queue",
        type=click.IntRange(min=1),
        default=32,
        show_default=True,
        help="Received WebSocket messages queued for the app before reading pauses.",
    ),
    click.option(
        "--ws-ping-interval",
        type=POSITIVE,
        default=20.0,
        show_default=True,
        help="Seconds between WebSocket keepalive pings.",
    ),
    click.option(
        "--ws-ping-timeout",
        type=POSITIVE,
        default=20.0,
        show_default=True,
        help="Seconds to wait for a pong before closing the WebSocket.",
    ),
    click.option(
        "--ws-per-message-deflate",
        type=bool,
        default=True,
        show_default=True,
        help="Offer the permessage-deflate WebSocket extension.",
    ),
    click.option(
        "--h11-max-incomplete-event-size",
        type=click.IntRange(min=1),
        default=None,
        help="When set, the largest HTTP/1.1 request head (request line + headers, h11 and "
        "httptools alike; over it: 431) instead of --max-header-size, which keeps bounding "
        "SPDY header blocks [default: --max-header-size].",
    ),
    click.option(
        "--limit-max-requests-jitter",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Random extra (0..N) added per worker to --limit-max-requests.",
    ),
    click.option(
        "--timeout-worker-healthcheck",
        type=POSITIVE,
        default=5,
        show_default=True,
        help="Seconds a worker may leave the supervisor's ping unanswered before it is killed.",
    ),
    click.option(
        "--reset-contextvars/--no-reset-contextvars",
        default=False,
        show_default=True,
        help="Start each HTTP/1.1 request and WebSocket from a fresh copy of the "
        "connection's contextvars context, never from the previous pipelined request's.",
    ),
)

#: ``--version``: print versions and exit (eager, never reaches ``Config``).
version_option = option_group(
    click.option(
        "--version",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_version,
        help="Show the version and exit.",
    ),
)
