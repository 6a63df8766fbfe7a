"""Checks and normalisation of ``Config`` values, each failure a ``ConfigError``.

``validate()`` runs once from ``Config.__init__`` over the assigned attributes, so a bad
value fails at construction with the option named, not later inside a worker.
"""

from __future__ import annotations

import inspect
import os
import ssl
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from spdyasgi.config_choices import (
    ALPN_CHOICES,
    HTTP1_CHOICES,
    INTERFACE_CHOICES,
    LIFESPAN_CHOICES,
    LOG_LEVELS,
    LOOP_CHOICES,
    MAX_CONTROL_FRAME,
    MAX_WINDOW,
    MIN_WINDOW,
    PROXY_PROTOCOL_CHOICES,
    SPDY_VERSIONS,
    SSL_MIN_VERSIONS,
    WS_CHOICES,
)
from spdyasgi.exceptions import ConfigError

if TYPE_CHECKING:
    from spdyasgi.config import Config

__all__ = [
    "as_list",
    "check",
    "check_dialout",
    "comma_tuple",
    "parse_headers",
    "resolve_workers",
    "validate",
]


def check(ok: bool, option: str, message: str) -> None:
    if not ok:
        raise ConfigError(option, message)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def as_list(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def comma_tuple(value: str | Iterable[str]) -> tuple[str, ...]:
    """Accept ``"a,b"`` as well as a sequence, for options also set from the CLI/env."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(str(item).strip() for item in items if str(item).strip())


def parse_headers(headers: Sequence[str | tuple[str, str]] | None) -> list[tuple[str, str]]:
    parsed: list[tuple[str, str]] = []
    for item in headers or ():
        if isinstance(item, str):
            name, sep, value = item.partition(":")
            check(bool(sep), "headers", f"{item!r} is not in NAME:VALUE form")
        else:
            check(len(item) == 2, "headers", f"{item!r} is not a (name, value) pair")
            name, value = item
        name, value = name.strip(), value.strip()
        check(_valid_token(name), "headers", f"{name!r} is not a valid header name")
        check(
            "\r" not in value and "\n" not in value and "\0" not in value,
            "headers",
            f"the value of {name!r} contains a line break or NUL",
        )
        parsed.append((name, value))
    return parsed


def resolve_workers(workers: int | None) -> int:
    if workers is None:
        env = os.environ.get("WEB_CONCURRENCY")
        if env is None:
            return 1
        check(env.strip().isdigit(), "workers", f"WEB_CONCURRENCY={env!r} is not an integer")
        workers = int(env)
    check(_is_int(workers) and workers >= 1, "workers", f"{workers!r} must be an integer >= 1")
    return workers


def validate(config: Config) -> None:
    """Check every attribute of ``config`` against its type, range or choices."""

    def int_range(name: str, lo: int, hi: int | None = None, optional: bool = False) -> None:
        value = getattr(config, name)
        if optional and value is None:
            return
        ok = _is_int(value) and value >= lo and (hi is None or value <= hi)
        bounds = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        check(ok, name, f"{value!r} must be an integer {bounds}")

    def positive(name: str, optional: bool = False, allow_zero: bool = False) -> None:
        value = getattr(config, name)
        if optional and value is None:
            return
        ok = _is_number(value) and (value >= 0 if allow_zero else value > 0)
        check(ok, name, f"{value!r} must be a number {'>=' if allow_zero else '>'} 0")

    def choice(name: str, choices: Sequence[str]) -> None:
        value = getattr(config, name)
        check(value in choices, name, f"{value!r} is not one of {', '.join(choices)}")

    check(isinstance(config.host, str) and bool(config.host), "host", "must be a non-empty string")
    int_range("port", 0, 65535)
    int_range("fd", 0, optional=True)
    int_range("backlog", 1)
    check(config.uds is None or config.fd is None, "uds", "'uds' and 'fd' are mutually exclusive")
    choice("loop", LOOP_CHOICES)
    if not inspect.isclass(config.http1):
        value = config.http1
        check(
            value in HTTP1_CHOICES,
            config._http_option,
            f"{value!r} is not one of {', '.join(HTTP1_CHOICES)}",
        )
    choice("lifespan", LIFESPAN_CHOICES)
    choice("interface", INTERFACE_CHOICES)
    if config.log_level is not None and not _is_int(config.log_level):
        level = str(config.log_level).lower()
        choice_ok = level in LOG_LEVELS
        check(
            choice_ok, "log_level", f"{config.log_level!r} is not one of {', '.join(LOG_LEVELS)}"
        )
    positive("reload_delay", allow_zero=True)
    int_range("limit_concurrency", 1, optional=True)
    int_range("limit_max_requests", 1, optional=True)
    positive("timeout_keep_alive", allow_zero=True)
    positive("timeout_graceful_shutdown", optional=True, allow_zero=True)
    positive("timeout_notify")
    check(
        config.root_path == "" or config.root_path.startswith("/"),
        "root_path",
        f"{config.root_path!r} must be empty or start with '/'",
    )
    check(
        not config.root_path.endswith("/") or config.root_path == "",
        "root_path",
        f"{config.root_path!r} must not end with '/'",
    )
    if config.ssl_keyfile is not None:
        check(config.ssl_certfile is not None, "ssl_keyfile", "needs 'ssl_certfile' as well")
    if config.self_signed:
        check(
            config.ssl_certfile is None,
            "self_signed",
            "cannot be combined with 'ssl_certfile'",
        )
    check(
        config.ssl_cert_reqs in (ssl.CERT_NONE, ssl.CERT_OPTIONAL, ssl.CERT_REQUIRED),
        "ssl_cert_reqs",
        f"{config.ssl_cert_reqs!r} must be 0 (none), 1 (optional) or 2 (required)",
    )
    check(
        config.ssl_cert_reqs == ssl.CERT_NONE or config.ssl_ca_certs is not None,
        "ssl_cert_reqs",
        "checking client certificates needs 'ssl_ca_certs' (the CA that issued them)",
    )

    check(bool(config.spdy_versions), "spdy_versions", "at least one version is needed")
    for version in config.spdy_versions:
        check(
            version in SPDY_VERSIONS,
            "spdy_versions",
            f"{version!r} is not one of {', '.join(SPDY_VERSIONS)}",
        )
    unknown = [proto for proto in config.alpn_protocols if proto not in ALPN_CHOICES]
    check(
        not unknown,
        "alpn_protocols",
        f"{', '.join(map(repr, unknown))}: this server serves only {', '.join(ALPN_CHOICES)}",
    )
    choice("ssl_min_version", SSL_MIN_VERSIONS)
    choice("cleartext_spdy_version", SPDY_VERSIONS)
    int_range("max_concurrent_streams", 1, MAX_WINDOW)
    int_range("initial_window_size", MIN_WINDOW, MAX_WINDOW)
    int_range("session_window_size", MIN_WINDOW, MAX_WINDOW)
    int_range("header_compression_level", -1, 9)
    int_range("max_header_size", 1)
    int_range("max_header_count", 1)
    int_range("max_frame_size", 1024, MAX_CONTROL_FRAME)
    int_range("limit_request_body", 0, optional=True)
    int_range("max_pending_output", 1)
    positive("ping_interval", optional=True)
    positive("ping_timeout")
    positive("timeout_receive")
    int_range("receive_min_rate", 0)
    int_range("rapid_reset_burst", 1)
    positive("rapid_reset_rate")
    positive("timeout_idle")
    positive("timeout_handshake")
    if not inspect.isclass(config.ws):
        choice("ws", WS_CHOICES)
    int_range("ws_max_size", 1)
    int_range("ws_max_queue", 1)
    positive("ws_ping_interval", optional=True)
    positive("ws_ping_timeout", optional=True)
    int_range("h11_max_incomplete_event_size", 1, optional=True)
    int_range("limit_max_requests_jitter", 0)
    positive("timeout_worker_healthcheck")
    choice("proxy_protocol", PROXY_PROTOCOL_CHOICES)
    int_range("metrics_port", 0, 65535, optional=True)


def _valid_token(name: str) -> bool:
    allowed = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return bool(name) and all(c in allowed for c in name)


def check_dialout(config: Config) -> None:
    """Dial-out settings (spdyasgi/dialout.py) that cannot work are usage errors."""
    if not config.listen and not config.connect:
        raise ConfigError("listen", "--no-listen needs --connect (nothing would serve)")
    if not config.connect:
        return
    from spdyasgi.dialout import parse_target, preamble  # late: keeps --help light

    for target in config.connect:
        try:
            parse_target(target)
        except ValueError as exc:
            raise ConfigError("connect", str(exc)) from None
    try:
        preamble(config.connect_token, config.connect_hosts)
    except ValueError as exc:
        raise ConfigError("connect_token", str(exc)) from None
    if config.connect_sessions < 1:
        raise ConfigError("connect_sessions", "must be at least 1")
    if config.connect_keyfile and not config.connect_certfile:
        raise ConfigError("connect_keyfile", "needs 'connect_certfile' as well")
