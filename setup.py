"""Only the optional C accelerator lives here; everything else is in pyproject.toml.

`optional=True`: without a C compiler the install still succeeds and spdyasgi uses its
pure-Python NV block parser (same results, slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("spdyasgi.spdy._nvfast", ["spdyasgi/spdy/_nvfast.c"], optional=True),
    ],
)
