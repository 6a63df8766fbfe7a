"""The ``spdyasgi`` command's SPDY options: ``spdy_options`` and ``compat_options``.

Versions and ALPN offer, flow-control windows, header and frame bounds, PINGs and
timers, the rapid-reset budget; ``--compat`` relaxes the engine for deployed clients.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from spdyasgi.cli_options import POSITIVE, option_group
from spdyasgi.config_choices import MAX_CONTROL_FRAME, MAX_WINDOW, MIN_WINDOW, SPDY_VERSIONS

__all__ = ["compat_options", "spdy_options"]

_WINDOW = click.IntRange(MIN_WINDOW, MAX_WINDOW)


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


#: SPDY: versions offered, windows, header and frame bounds, timers and abuse limits.
spdy_options = option_group(
    click.option(
        "--spdy-versions",
        default="3.1,3",
        show_default=True,
        callback=_comma_list(SPDY_VERSIONS),
        help="Comma list of SPDY versions to accept.",
    ),
    click.option(
        "--alpn-protocols",
        default="spdy/3.1,spdy/3,http/1.1",
        show_default=True,
        callback=_comma_list(),
        help="Comma list of ALPN protocols offered, most preferred first: "
        "spdy/3.1, spdy/3 and http/1.1 only.",
    ),
    click.option(
        "--cleartext-spdy-version",
        type=click.Choice(SPDY_VERSIONS),
        default="3.1",
        show_default=True,
        help="SPDY version assumed for cleartext (prior knowledge).",
    ),
    click.option(
        "--max-concurrent-streams",
        type=click.IntRange(1, MAX_WINDOW),
        default=256,
        show_default=True,
        help="Streams a client may open at once per session.",
    ),
    click.option(
        "--initial-window-size",
        type=_WINDOW,
        default=262144,
        show_default=True,
        help="Per-stream receive window advertised to clients (bytes).",
    ),
    click.option(
        "--session-window-size",
        type=_WINDOW,
        default=4194304,
        show_default=True,
        help="SPDY/3.1 session receive window (bytes).",
    ),
    click.option(
        "--header-compression-level",
        type=click.IntRange(-1, 9),
        default=0,
        show_default=True,
        help="zlib level for response headers: 0 stored (default: CRIME-safe and cheapest), "
        "-1 Huffman-only (CRIME-safe, ~15% smaller, ~8x the CPU), 1-9 full deflate "
        "(smallest, but leaks secrets through compressed sizes).",
    ),
    click.option(
        "--max-header-size",
        type=click.IntRange(min=1),
        default=65536,
        show_default=True,
        help=(
            "Largest request head (bytes): a decompressed SPDY header block, or an "
            "HTTP/1.1 request line with its headers (431 over it)."
        ),
    ),
    click.option(
        "--max-header-count",
        type=click.IntRange(min=1),
        default=128,
        show_default=True,
        help="Most header fields in one request.",
    ),
    click.option(
        "--max-frame-size",
        type=click.IntRange(1024, MAX_CONTROL_FRAME),
        default=65536,
        show_default=True,
        help="Largest control frame payload accepted (bytes).",
    ),
    click.option(
        "--limit-request-body",
        type=click.IntRange(min=0),
        default=None,
        help="Answer 413 to request bodies above this many bytes.",
    ),
    click.option(
        "--ping-interval",
        type=POSITIVE,
        default=None,
        help="Seconds between server PINGs on an idle session (default: off).",
    ),
    click.option(
        "--ping-timeout",
        type=POSITIVE,
        default=20.0,
        show_default=True,
        help="Seconds to wait for a PING reply before closing the session.",
    ),
    click.option(
        "--timeout-receive",
        type=POSITIVE,
        default=30.0,
        show_default=True,
        help=(
            "Seconds without progress on a half-received frame or request head before the "
            "connection is closed (see --receive-min-rate)."
        ),
    ),
    click.option(
        "--receive-min-rate",
        type=click.IntRange(min=0),
        default=500,
        show_default=True,
        help=(
            "Bytes per second a half-received SPDY frame must bring over each "
            "--timeout-receive period (slowloris guard; 0: any byte is progress)."
        ),
    ),
    click.option(
        "--rapid-reset-burst",
        type=click.IntRange(min=1),
        default=2000,
        show_default=True,
        help=(
            "SPDY streams a session may open that end before any reply (reset or refused) "
            "before it is closed, on top of --rapid-reset-rate."
        ),
    ),
    click.option(
        "--rapid-reset-rate",
        type=POSITIVE,
        default=100.0,
        show_default=True,
        help="Such streams per second that a session may sustain (refill of --rapid-reset-burst).",
    ),
    click.option(
        "--timeout-idle",
        type=POSITIVE,
        default=300.0,
        show_default=True,
        help="Seconds a SPDY session with no open streams stays open.",
    ),
    click.option(
        "--timeout-handshake",
        type=POSITIVE,
        default=10.0,
        show_default=True,
        help="Seconds allowed for the TLS handshake.",
    ),
    click.option(
        "--max-pending-output",
        type=click.IntRange(min=1),
        default=1048576,
        show_default=True,
        help="Bytes buffered per session before app send() waits.",
    ),
)

#: ``--compat``: bounded tolerances for deployed SPDY clients (docs/spdy.md).
compat_options = option_group(
    click.option(
        "--compat",
        is_flag=True,
        default=False,
        help=(
            "Tolerate, bounded and logged once per session, the faults of deployed SPDY clients: "
            "out-of-order stream ids, bodies sent past the window, a session window never "
            "credited; on cleartext, detect SPDY/3 vs 3.1 flow control (docs/spdy.md)."
        ),
    ),
)
