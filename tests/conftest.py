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


def _needs_node(item: pytest.Item) -> bool:
    """Marked ``node``, or skipped when the npm peers are missing (``needs_node``)."""
    if item.get_closest_marker("node") is not None:
        return True
    return any(
        "node_modules" in str(mark.kwargs.get("reason", "")) for mark in item.iter_markers("skipif")
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """In CI a missing node peer is a failure, not a skip (runs before skipif is evaluated)."""
    from tests import peers

    if peers.NODE_REQUIRED and not peers.NODE_AVAILABLE and _needs_node(item):
        pytest.fail(peers.NODE_MISSING_IN_CI, pytrace=False)
