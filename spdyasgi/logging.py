"""Logging: the level names, the default configuration and how a config is applied,
and the formatters (a default one for server messages and one for access lines).

Colours are used only when asked for, or when ``use_colors`` is unset and the stream is
a terminal, so log files and pipes stay plain text.
"""

from __future__ import annotations

import http
import json
import logging
import logging.config
import os
import sys
from copy import copy, deepcopy
from pathlib import Path
from typing import Any, Literal

from spdyasgi.exceptions import ConfigError

TRACE_LOG_LEVEL = 5

LOG_LEVELS: dict[str, int] = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE_LOG_LEVEL,
}

LOGGING_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {
            "()": "spdyasgi.logging.DefaultFormatter",
            "fmt": "%(levelprefix)s %(message)s",
            "use_colors": None,
        },
        "access": {
            "()": "spdyasgi.logging.AccessFormatter",
            "fmt": "%(levelprefix)s %(message)s",
            "use_colors": None,
        },
    },
    "handlers": {
        "default": {
            "formatter": "default",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
        },
        "access": {
            "formatter": "access",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
        },
    },
    "loggers": {
        "spdyasgi": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "spdyasgi.error": {"level": "INFO"},
        "spdyasgi.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}

_LEVEL_COLORS = {
    TRACE_LOG_LEVEL: "\x1b[34m",  # blue
    logging.DEBUG: "\x1b[36m",  # cyan
    logging.INFO: "\x1b[32m",  # green
    logging.WARNING: "\x1b[33m",  # yellow
    logging.ERROR: "\x1b[31m",  # red
    logging.CRITICAL: "\x1b[91m",  # bright red
}
_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"

logging.addLevelName(TRACE_LOG_LEVEL, "TRACE")


def configure_logging(
    log_config: dict[str, Any] | str | os.PathLike[str] | None,
    log_level: str | int | None,
    access_log: bool,
    use_colors: bool | None,
) -> None:
    """Apply ``log_config`` (dict, .json, .yaml/.yml or .ini), then level and access log."""
    logging.addLevelName(TRACE_LOG_LEVEL, "TRACE")
    if log_config is not None:
        if isinstance(log_config, dict):
            log_config = deepcopy(log_config)
            if use_colors in (True, False):
                for name in ("default", "access"):
                    formatter = log_config.get("formatters", {}).get(name)
                    if isinstance(formatter, dict) and "use_colors" in formatter:
                        formatter["use_colors"] = use_colors
            logging.config.dictConfig(log_config)
        else:
            path = os.fspath(log_config)
            if not os.path.isfile(path):
                raise ConfigError("log_config", f"{path} is not a file")
            suffix = Path(path).suffix.lower()
            if suffix == ".json":
                with open(path, encoding="utf-8") as f:
                    logging.config.dictConfig(json.load(f))
            elif suffix in (".yaml", ".yml"):
                try:
                    import yaml
                except ImportError as exc:
                    raise ConfigError(
                        "log_config", f"{path}: YAML needs PyYAML (pip install PyYAML)"
                    ) from exc
                with open(path, encoding="utf-8") as f:
                    logging.config.dictConfig(yaml.safe_load(f))
            else:
                logging.config.fileConfig(path, disable_existing_loggers=False)

    if log_level is not None:
        level = log_level if isinstance(log_level, int) else LOG_LEVELS[log_level.lower()]
        for name in ("spdyasgi", "spdyasgi.error", "spdyasgi.access"):
            logging.getLogger(name).setLevel(level)
    if not access_log:
        access = logging.getLogger("spdyasgi.access")
        access.handlers = []
        access.propagate = False


def _colorize(text: str, code: str) -> str:
    return f"{code}{text}{_RESET}"


class ColourizedFormatter(logging.Formatter):
    """Adds ``%(levelprefix)s``: the level name padded to a column, coloured when enabled."""

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: Literal["%", "{", "$"] = "%",
        use_colors: bool | None = None,
    ) -> None:
        self.use_colors = self.stream_is_tty() if use_colors is None else bool(use_colors)
        super().__init__(fmt=fmt, datefmt=datefmt, style=style)

    def stream_is_tty(self) -> bool:
        """Where this formatter's output normally goes (the default handler's stream)."""
        return sys.stdout.isatty()

    def formatMessage(self, record: logging.LogRecord) -> str:
        record = copy(record)
        levelname = record.levelname
        pad = " " * max(0, 8 - len(levelname))
        if self.use_colors:
            levelname = _colorize(levelname, _LEVEL_COLORS.get(record.levelno, ""))
            if "color_message" in record.__dict__:
                record.msg = record.__dict__["color_message"]
                record.message = record.getMessage()
        record.__dict__["levelprefix"] = f"{levelname}:{pad}"
        return super().formatMessage(record)


class DefaultFormatter(ColourizedFormatter):
    """Formatter for ``spdyasgi`` and ``spdyasgi.error``; decides colour from stderr."""

    def stream_is_tty(self) -> bool:
        return sys.stderr.isatty()


class AccessFormatter(ColourizedFormatter):
    """Formatter for ``spdyasgi.access``.

    When a record carries the five-tuple ``(client, method, path, http_version, status)``
    as its args (the shape the access logger emits for the default line) it adds
    ``%(client_addr)s``, ``%(request_line)s`` and ``%(status_code)s`` so the format
    string can place them; other records are formatted unchanged.
    """

    def get_status_code(self, status_code: int) -> str:
        try:
            phrase = http.HTTPStatus(status_code).phrase
        except ValueError:
            phrase = ""
        text = f"{status_code} {phrase}".rstrip()
        if not self.use_colors:
            return text
        if status_code < 200:
            code = "\x1b[37m"
        elif status_code < 300:
            code = "\x1b[32m"
        elif status_code < 400:
            code = "\x1b[33m"
        elif status_code < 500:
            code = "\x1b[31m"
        else:
            code = "\x1b[91m"
        return _colorize(text, code)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record = copy(record)
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            client_addr, method, full_path, http_version, status_code = args
            request_line = f"{method} {full_path} {http_version}"
            if self.use_colors:
                request_line = _colorize(request_line, _BOLD)
            record.__dict__.update(
                client_addr=client_addr,
                request_line=request_line,
                status_code=self.get_status_code(int(str(status_code))),
            )
        return super().formatMessage(record)
