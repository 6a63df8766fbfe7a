"""The optional C accelerator (`_nvfast`, built by setup.py when a compiler is there).

One switch for every module that uses it: ``SPDYASGI_NO_EXTENSION=1`` in the environment
runs the pure-Python engine even when the extension is built, which is how the test suite
runs a second time in CI (both paths must pass everything) and how a suspected fault in
the C code can be ruled out in production.
"""

from __future__ import annotations

import os
from types import ModuleType

nvfast: ModuleType | None
if os.environ.get("SPDYASGI_NO_EXTENSION", "") not in ("", "0"):
    nvfast = None
else:
    try:
        from . import _nvfast as nvfast
    except ImportError:  # pragma: no cover - built without a compiler: pure Python
        nvfast = None

__all__ = ["nvfast"]
