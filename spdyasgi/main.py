"""The ``spdyasgi`` command line and ``spdyasgi.run()``.

Exit codes: 0 after a clean shutdown, 2 for a bad option (click's usage errors, and
``ConfigError`` mapped back to the flag that set it), 3 when startup fails (the app
cannot be imported, the port is taken, the certificate cannot be read) — always one
``Error: ...`` line on stderr, with the traceback only at ``--log-level debug``/``trace``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click
from click.core import ParameterSource

from spdyasgi.cli_options import (
    app_options,
    binding_options,
    fleet_options,
    limits_timeouts_options,
    logging_options,
    proxy_headers_options,
    response_headers_options,
    runtime_options,
    version_option,
    websocket_uvicorn_options,
    workers_reload_options,
)
from spdyasgi.cli_options_dialout import dialout_options
from spdyasgi.cli_options_spdy import compat_options, spdy_options
from spdyasgi.cli_options_tls import tls_options
from spdyasgi.config import Config
from spdyasgi.exceptions import ConfigError
from spdyasgi.importer import ImportFromStringError
from spdyasgi.logging import LOGGING_CONFIG

__all__ = ["STARTUP_FAILURE", "main", "run"]

STARTUP_FAILURE = 3
logger = logging.getLogger("spdyasgi.error")


@click.command(
    context_settings={"auto_envvar_prefix": "SPDYASGI", "help_option_names": ["-h", "--help"]}
)
@click.argument("app", envvar="SPDYASGI_APP")
@app_options
@binding_options
@workers_reload_options
@runtime_options
@logging_options
@proxy_headers_options
@limits_timeouts_options
@response_headers_options
@tls_options
@spdy_options
@fleet_options
@websocket_uvicorn_options
@compat_options
@dialout_options
@version_option
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
