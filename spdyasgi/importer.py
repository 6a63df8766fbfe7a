"""Resolve ``"module:attribute"`` strings to objects, with errors that name the string."""

from __future__ import annotations

import importlib
from typing import Any


class ImportFromStringError(Exception):
    """The import string is malformed, or its module or attribute cannot be found."""


def import_from_string(import_str: Any) -> Any:
    """Return the object named by ``"package.module:attr.sub"``; non-strings pass through.

    Only a ``ModuleNotFoundError`` for the named module itself becomes an
    ``ImportFromStringError``: an import error raised *inside* the user's module is
    re-raised unchanged so its traceback points at the real bug.
    """
    if not isinstance(import_str, str):
        return import_str

    module_str, _, attrs_str = import_str.partition(":")
    if not module_str or not attrs_str:
        raise ImportFromStringError(
            f'Import string "{import_str}" must be in format "<module>:<attribute>".'
        )

    try:
        module = importlib.import_module(module_str)
    except ModuleNotFoundError as exc:
        if exc.name is None or not _is_prefix(exc.name, module_str):
            raise
        raise ImportFromStringError(
            f'Could not import module "{module_str}" (from import string "{import_str}").'
        ) from exc

    instance: Any = module
    try:
        for attr in attrs_str.split("."):
            instance = getattr(instance, attr)
    except AttributeError as exc:
        raise ImportFromStringError(
            f'Attribute "{attrs_str}" not found in module "{module_str}" '
            f'(from import string "{import_str}").'
        ) from exc
    return instance


def _is_prefix(missing: str, module_str: str) -> bool:
    """True if ``missing`` is ``module_str`` or one of its parent packages."""
    return module_str == missing or module_str.startswith(missing + ".")
