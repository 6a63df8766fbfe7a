"""Turn ``Config.app`` into the ASGI 3 callable the server runs.

Imports an import string (with ``app_dir`` on ``sys.path``), calls a ``--factory``,
adapts ASGI 2 apps to the single-callable interface and wraps the proxy-headers
middleware; every failure is an ``ImportFromStringError`` that names the app.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from spdyasgi.importer import ImportFromStringError, import_from_string

if TYPE_CHECKING:
    from spdyasgi.config import Config

__all__ = ["load_app"]

logger = logging.getLogger("spdyasgi.error")


def load_app(config: Config) -> Any:
    """The app of ``config``: imported, built, interface-adapted and wrapped."""
    import_str = config.app if isinstance(config.app, str) else None
    if import_str is not None and config.app_dir is not None:
        app_dir = os.path.abspath(config.app_dir)
        if app_dir not in sys.path:
            sys.path.insert(0, app_dir)
    try:
        app = import_from_string(config.app)
    except ImportFromStringError:
        raise
    except Exception as exc:
        # The user's module itself failed: keep the traceback on __cause__, name the app.
        raise ImportFromStringError(
            f'Error while importing "{import_str}": {type(exc).__name__}: {exc}'
        ) from exc

    if config.factory:
        try:
            app = app()
        except TypeError as exc:
            raise ImportFromStringError(
                f'Error calling the app factory "{import_str or app!r}": {exc}'
            ) from exc
    elif import_str is not None and _looks_like_factory(app):
        logger.warning(
            'The app "%s" takes no arguments: is it a factory? Then pass --factory.',
            import_str,
        )
    if not callable(app):
        raise ImportFromStringError(
            f'The app "{import_str or app!r}" is not callable (an ASGI app is expected).'
        )

    if config.interface == "asgi2":
        from asgiref.compatibility import double_to_single_callable

        app = double_to_single_callable(app)  # type: ignore[no-untyped-call]
    elif config.interface == "auto":
        from asgiref.compatibility import guarantee_single_callable

        app = guarantee_single_callable(app)  # type: ignore[no-untyped-call]

    if config.proxy_headers:
        from spdyasgi.asgi.proxy_headers import ProxyHeadersMiddleware

        app = ProxyHeadersMiddleware(app, trusted_hosts=config.forwarded_allow_ips)
    return app


def _looks_like_factory(app: Any) -> bool:
    """A plain function with no parameters cannot be an ASGI app; it is likely a factory."""
    if not inspect.isfunction(app):
        return False
    try:
        return len(inspect.signature(app).parameters) == 0
    except (TypeError, ValueError):
        return False
