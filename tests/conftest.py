"""Shared fixtures: a self-signed certificate for TLS tests and HTTP/1.1 class params."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """``(certfile, keyfile)`` for 127.0.0.1/localhost, generated once per session."""
    from spdyasgi._selfsigned import generate_self_signed

    directory: Path = tmp_path_factory.mktemp("tls")
    files = generate_self_signed(str(directory), cleanup=False)
    return files.certfile, files.keyfile


@pytest.fixture(params=["h11", "httptools"])
def http1(request: pytest.FixtureRequest) -> str:
    """Run a test against both HTTP/1.1 implementations."""
    return str(request.param)
