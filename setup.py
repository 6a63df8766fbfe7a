"""Only the optional C accelerator lives here; everything else is in pyproject.toml.

`optional=True`: without a C compiler (or zlib's headers, zlib1g-dev / zlib-devel) the
install still succeeds and spdyasgi runs its pure-Python engine (same results, slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("spdyasgi.spdy._nvfast", ["spdyasgi/spdy/_nvfast.c"], libraries=["z"],
                  optional=True),
    ],
)
