"""Only the optional C accelerator lives here; everything else is in pyproject.toml.

`optional=True`: without a C compiler (or zlib's headers, zlib1g-dev / zlib-devel) the
install still succeeds and spdyasgi runs its pure-Python engine (same results, slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "spdyasgi.spdy._nvfast",
            [f"spdyasgi/spdy/{name}.c"
             for name in ("_nvfast", "_nv_headers", "_nv_inflater", "_nv_records",
                          "_nv_accept")],
            depends=["spdyasgi/spdy/_nvfast.h"],
            libraries=["z"],
            optional=True,
        ),
    ],
)
