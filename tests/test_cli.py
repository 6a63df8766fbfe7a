"""The ``spdyasgi`` command: help, version, usage errors (exit 2), startup errors (exit 3)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

import spdyasgi
from spdyasgi import main as main_module
from spdyasgi.config import Config
from spdyasgi.main import main

EXPECTED_OPTIONS = [
    "--factory",
    "--app-dir",
    "--env-file",
    "--host",
    "--port",
    "--uds",
    "--fd",
    "--backlog",
    "--workers",
    "--reload",
    "--reload-dir",
    "--reload-include",
    "--reload-exclude",
    "--reload-delay",
    "--loop",
    "--http",
    "--http1",
    "--ws",
    "--ws-max-size",
    "--ws-max-queue",
    "--ws-ping-interval",
    "--ws-ping-timeout",
    "--ws-per-message-deflate",
    "--h11-max-incomplete-event-size",
    "--limit-max-requests-jitter",
    "--timeout-worker-healthcheck",
    "--reset-contextvars",
    "--lifespan",
    "--interface",
    "--log-level",
    "--log-config",
    "--access-log",
    "--no-access-log",
    "--access-log-format",
    "--use-colors",
    "--no-use-colors",
    "--proxy-headers",
    "--no-proxy-headers",
    "--forwarded-allow-ips",
    "--root-path",
    "--limit-concurrency",
    "--limit-max-requests",
    "--timeout-keep-alive",
    "--timeout-graceful-shutdown",
    "--server-header",
    "--no-server-header",
    "--date-header",
    "--no-date-header",
    "--header",
    "--ssl-keyfile",
    "--ssl-certfile",
    "--ssl-keyfile-password",
    "--ssl-ca-certs",
    "--ssl-cert-reqs",
    "--ssl-ciphers",
    "--self-signed",
    "--spdy-versions",
    "--alpn-protocols",
    "--max-concurrent-streams",
    "--initial-window-size",
    "--session-window-size",
    "--header-compression-level",
    "--max-header-size",
    "--limit-request-body",
    "--ping-interval",
    "--ping-timeout",
    "--timeout-receive",
    "--timeout-idle",
    "--max-pending-output",
    "--version",
]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[Config]:
    """Replace the serving step: record the Config the CLI built."""
    configs: list[Config] = []
    monkeypatch.setattr(main_module, "_run_config", configs.append)
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    return configs


def test_help_lists_every_option(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    for option in EXPECTED_OPTIONS:
        assert option in result.output, option


def test_every_config_keyword_has_a_flag() -> None:
    import inspect

    names = {p.name for p in main.params}
    # loop is a flag, see below; http1 is the old name of --http (its alias --http1)
    internal = {"app", "log_config", "callback_notify", "loop", "http1"}
    for keyword in inspect.signature(Config).parameters:
        if keyword not in internal and keyword != "self":
            assert keyword in names, keyword
    assert "loop" in names


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith(f"spdyasgi {spdyasgi.__version__} with ")


def test_options_reach_config(runner: CliRunner, captured: list[Config]) -> None:
    args = [
        "pkg.mod:app",
        "--port",
        "0",
        "--header",
        "X-One: 1",
        "--header",
        "X-Two:2",
        "--spdy-versions",
        "3.1",
        "--alpn-protocols",
        "spdy/3.1,http/1.1",
        "--initial-window-size",
        "65536",
        "--header-compression-level",
        "-1",
        "--no-access-log",
        "--reload-dir",
        ".",
        "--limit-request-body",
        "1000",
        "--ping-interval",
        "15",
        "--workers",
        "2",
        "--log-level",
        "WARNING",
    ]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    (config,) = captured
    assert config.app == "pkg.mod:app"
    assert config.port == 0
    assert config.headers == [("X-One", "1"), ("X-Two", "2")]
    assert config.spdy_versions == ("3.1",)
    assert config.alpn_protocols == ("spdy/3.1", "http/1.1")
    assert config.initial_window_size == 65536
    assert config.header_compression_level == -1
    assert config.access_log is False
    assert config.reload_dirs == ["."]
    assert config.limit_request_body == 1000
    assert config.ping_interval == 15
    assert config.workers == 2


def test_defaults_match_config(runner: CliRunner, captured: list[Config]) -> None:
    assert runner.invoke(main, ["m:app"]).exit_code == 0
    (from_cli,) = captured
    plain = Config("m:app")
    for name in vars(plain):
        if name.startswith("_") or name in ("log_config",):
            continue
        assert getattr(from_cli, name) == getattr(plain, name), name


def test_environment_variables(
    runner: CliRunner, captured: list[Config], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "SPDYASGI_APP": "env.mod:app",
        "SPDYASGI_PORT": "9123",
        "SPDYASGI_MAX_CONCURRENT_STREAMS": "7",
        "SPDYASGI_PROXY_HEADERS": "false",
    }
    result = runner.invoke(main, [], env=env)
    assert result.exit_code == 0, result.output
    (config,) = captured
    assert (config.app, config.port, config.max_concurrent_streams) == ("env.mod:app", 9123, 7)
    assert config.proxy_headers is False


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--port", "70000"], "--port"),
        (["--port", "http"], "--port"),
        (["--loop", "trio"], "--loop"),
        (["--http1", "h2"], "--http"),
        (["--http", "h2"], "--http"),
        (["--ws", "socketio"], "--ws"),
        (["--ws-max-size", "0"], "--ws-max-size"),
        (["--limit-max-requests-jitter", "-1"], "--limit-max-requests-jitter"),
        (["--workers", "0"], "--workers"),
        (["--header", "novalue"], "--header"),
        (["--header", ":x"], "--header"),
        (["--initial-window-size", "65535"], "--initial-window-size"),
        (["--session-window-size", str(2**31)], "--session-window-size"),
        (["--header-compression-level", "10"], "--header-compression-level"),
        (["--spdy-versions", "2"], "--spdy-versions"),
        (["--spdy-versions", ","], "--spdy-versions"),
        (["--ssl-certfile", "/nonexistent/cert.pem"], "--ssl-certfile"),
        (["--ssl-keyfile", "/nonexistent/key.pem"], "--ssl-keyfile"),
        (["--uds", "/tmp/x.sock", "--host", "0.0.0.0"], "--uds"),
        (["--uds", "/tmp/x.sock", "--fd", "3"], "--uds"),
        (["--fd", "3", "--port", "9000"], "--fd"),
        (["--root-path", "api"], "--root-path"),
        (["--ping-timeout", "0"], "--ping-timeout"),
        (["--max-frame-size", "10"], "--max-frame-size"),
        (["--log-level", "loud"], "--log-level"),
    ],
)
def test_bad_values_exit_2_naming_the_option(
    runner: CliRunner, captured: list[Config], args: list[str], flag: str
) -> None:
    result = runner.invoke(main, ["m:app", *args])
    assert result.exit_code == 2, result.output
    assert flag in result.output
    assert "Traceback" not in result.output
    assert captured == []


def test_ssl_keyfile_without_certfile(runner: CliRunner, captured: list[Config]) -> None:
    result = runner.invoke(main, ["m:app", "--ssl-keyfile", __file__])
    assert result.exit_code == 2
    assert "'--ssl-keyfile'" in result.output and "ssl_certfile" in result.output


def test_missing_app_argument(runner: CliRunner) -> None:
    result = runner.invoke(main, [])
    assert result.exit_code == 2
    assert "APP" in result.output


def _startup(runner: CliRunner, args: list[str]) -> Any:
    return runner.invoke(main, args, catch_exceptions=False)


def test_import_error_exits_3_with_import_string(runner: CliRunner) -> None:
    result = _startup(runner, ["cli_no_such_module:app"])
    assert result.exit_code == 3
    assert 'Error: Could not import module "cli_no_such_module"' in result.output
    assert "cli_no_such_module:app" in result.output
    assert "Traceback" not in result.output


def test_attribute_error_exits_3(runner: CliRunner) -> None:
    result = _startup(runner, ["json:no_such_app"])
    assert result.exit_code == 3
    assert "json:no_such_app" in result.output


def test_broken_module_exits_3(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "cli_broken_mod.py").write_text("1 / 0\n")
    try:
        result = _startup(runner, ["cli_broken_mod:app", "--app-dir", str(tmp_path)])
    finally:
        sys.modules.pop("cli_broken_mod", None)
        if str(tmp_path) in sys.path:
            sys.path.remove(str(tmp_path))
    assert result.exit_code == 3
    assert "ZeroDivisionError" in result.output and "cli_broken_mod:app" in result.output


def test_port_in_use_exits_3(runner: CliRunner) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _startup(runner, ["json:dumps", "--port", str(port), "--no-proxy-headers"])
    assert result.exit_code == 3
    assert result.output.startswith(f"Error: could not bind on 127.0.0.1:{port}: ")
    assert "Traceback" not in result.output


def test_unresolvable_host_exits_3_naming_it(runner: CliRunner) -> None:
    result = _startup(runner, ["json:dumps", "--host", "999.1.1.1", "--port", "8123"])
    assert result.exit_code == 3
    assert result.output.startswith("Error: could not resolve host '999.1.1.1' (port 8123): ")
    assert "Traceback" not in result.output


def test_unreadable_certificate_exits_3(runner: CliRunner, tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("garbage")
    result = _startup(runner, ["json:dumps", "--ssl-certfile", str(cert)])
    assert result.exit_code == 3
    assert result.output.startswith("Error: ")
    assert "Traceback" not in result.output


def test_run_requires_import_string_for_workers() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    with pytest.raises(ValueError, match="import string"):
        spdyasgi.run(app, workers=2)
    with pytest.raises(ValueError, match="import string"):
        spdyasgi.run(app, reload=True)


def test_python_dash_m_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "spdyasgi", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("spdyasgi ")


def test_flag_for_maps_config_names_to_flags() -> None:
    assert main_module._flag_for("headers") == "'--header'"
    assert main_module._flag_for("reload_dirs") == "'--reload-dir'"
    assert main_module._flag_for("port") == "'--port'"
    assert isinstance(main, click.Command)


@pytest.mark.parametrize("flag", ["--http", "--http1"])
def test_uvicorn_options_reach_config(
    runner: CliRunner, captured: list[Config], flag: str
) -> None:
    args = [
        "pkg.mod:app",
        flag,
        "h11",
        "--ws",
        "wsproto",
        "--ws-max-size",
        "1000",
        "--ws-max-queue",
        "4",
        "--ws-ping-interval",
        "1.5",
        "--ws-ping-timeout",
        "2.5",
        "--ws-per-message-deflate",
        "false",
        "--h11-max-incomplete-event-size",
        "8192",
        "--limit-max-requests",
        "100",
        "--limit-max-requests-jitter",
        "10",
        "--timeout-worker-healthcheck",
        "7",
        "--reset-contextvars",
    ]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    (config,) = captured
    assert config.http1 == config.http == "h11"
    assert config.ws == "wsproto"
    assert (config.ws_max_size, config.ws_max_queue) == (1000, 4)
    assert (config.ws_ping_interval, config.ws_ping_timeout) == (1.5, 2.5)
    assert config.ws_per_message_deflate is False
    assert config.http1_max_head_size == 8192 and config.max_header_size == 65536
    assert (config.limit_max_requests, config.limit_max_requests_jitter) == (100, 10)
    assert config.timeout_worker_healthcheck == 7
    assert config.reset_contextvars is True


@pytest.mark.parametrize("name", ["SPDYASGI_HTTP", "SPDYASGI_HTTP1"])
def test_http_from_either_environment_name(
    runner: CliRunner, captured: list[Config], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "h11")
    result = runner.invoke(main, ["pkg.mod:app"])
    assert result.exit_code == 0, result.output
    assert captured[0].http1 == "h11"
