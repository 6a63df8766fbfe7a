"""Config: defaults, validation naming the option, app loading, TLS, sockets, logging."""

from __future__ import annotations

import json
import logging
import os
import socket
import ssl
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from spdyasgi.asgi.proxy_headers import ProxyHeadersMiddleware
from spdyasgi.config import LOGGING_CONFIG, Config, ConfigError, load_env_file
from spdyasgi.importer import ImportFromStringError
from spdyasgi.tls import DEFAULT_CIPHERS

CONTRACT_DEFAULTS: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 8000,
    "uds": None,
    "fd": None,
    "backlog": 2048,
    "loop": "auto",
    "http1": "auto",
    "lifespan": "auto",
    "interface": "auto",
    "env_file": None,
    "log_level": None,
    "access_log": True,
    "access_log_format": None,
    "use_colors": None,
    "reload": False,
    "reload_delay": 0.25,
    "proxy_headers": True,
    "root_path": "",
    "limit_concurrency": None,
    "limit_max_requests": None,
    "timeout_keep_alive": 5,
    "timeout_graceful_shutdown": None,
    "timeout_notify": 30,
    "server_header": True,
    "date_header": True,
    "factory": False,
    "app_dir": ".",
    "ssl_keyfile": None,
    "ssl_certfile": None,
    "ssl_keyfile_password": None,
    "ssl_version": ssl.PROTOCOL_TLS_SERVER,
    "ssl_cert_reqs": ssl.CERT_NONE,
    "ssl_ca_certs": None,
    "ssl_ciphers": DEFAULT_CIPHERS,
    "ssl_min_version": "1.2",
    "self_signed": False,
    "spdy_versions": ("3.1", "3"),
    "alpn_protocols": ("spdy/3.1", "spdy/3", "http/1.1"),
    "cleartext_spdy_version": "3.1",
    "max_concurrent_streams": 256,
    "initial_window_size": 262144,
    "session_window_size": 4194304,
    "header_compression_level": 0,
    "max_header_size": 65536,
    "max_header_count": 128,
    "max_frame_size": 65536,
    "limit_request_body": None,
    "max_pending_output": 1048576,
    "ping_interval": None,
    "ping_timeout": 20.0,
    "timeout_receive": 30.0,
    "receive_min_rate": 500,
    "rapid_reset_burst": 2000,
    "rapid_reset_rate": 100.0,
    "timeout_idle": 300.0,
    "timeout_handshake": 10.0,
}


async def asgi3_app(scope: Any, receive: Any, send: Any) -> None:
    pass


class ASGI2App:
    def __init__(self, scope: Any) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        pass


def make_factory() -> Any:
    return asgi3_app


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)


def test_contract_defaults() -> None:
    config = Config(asgi3_app)
    for name, value in CONTRACT_DEFAULTS.items():
        assert getattr(config, name) == value, name
    assert config.log_config is LOGGING_CONFIG
    assert config.workers == 1
    assert config.headers == []
    assert config.forwarded_allow_ips == ["127.0.0.1"]
    assert config.is_ssl is False


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("port", 70000),
        ("port", -1),
        ("backlog", 0),
        ("loop", "trio"),
        ("http1", "h2"),
        ("lifespan", "maybe"),
        ("interface", "wsgi"),
        ("log_level", "loud"),
        ("workers", 0),
        ("limit_concurrency", 0),
        ("timeout_keep_alive", -1),
        ("spdy_versions", ("2",)),
        ("spdy_versions", ()),
        ("alpn_protocols", ("spdy/é",)),
        ("initial_window_size", 65535),
        ("initial_window_size", 2**31),
        ("session_window_size", 1024),
        ("header_compression_level", 10),
        ("header_compression_level", -2),
        ("max_concurrent_streams", 0),
        ("max_frame_size", 2**24),
        ("limit_request_body", -1),
        ("ping_interval", 0),
        ("ping_timeout", 0),
        ("timeout_idle", -5),
        ("root_path", "api"),
        ("ssl_cert_reqs", 7),
        ("cleartext_spdy_version", "2"),
        ("headers", ["nocolon"]),
        ("headers", ["bad name:x"]),
        ("headers", ["x:a\nb"]),
        ("ping_timeout", True),
        ("http", "h2"),
        ("ws", "socketio"),
        ("ws_max_size", 0),
        ("ws_max_queue", 0),
        ("ws_ping_interval", 0),
        ("ws_ping_timeout", -1),
        ("h11_max_incomplete_event_size", 0),
        ("limit_max_requests_jitter", -1),
        ("timeout_worker_healthcheck", 0),
    ],
)
def test_invalid_values_name_the_option(option: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        Config(asgi3_app, **{option: value})
    assert info.value.option == option
    assert f"'{option}'" in str(info.value)


def test_mutually_exclusive_and_dependent_options() -> None:
    with pytest.raises(ConfigError, match="'uds'"):
        Config(asgi3_app, uds="/tmp/x.sock", fd=3)
    with pytest.raises(ConfigError, match="ssl_certfile"):
        Config(asgi3_app, ssl_keyfile="key.pem")
    with pytest.raises(ConfigError, match="self_signed"):
        Config(asgi3_app, self_signed=True, ssl_certfile="c.pem")


def test_comma_strings_and_headers_are_normalised() -> None:
    config = Config(
        asgi3_app,
        spdy_versions="3",
        alpn_protocols="spdy/3, http/1.1",
        forwarded_allow_ips="10.0.0.1, 10.1.0.0/16",
        headers=["X-A: 1", ("X-B", "two")],
    )
    assert config.spdy_versions == ("3",)
    assert config.alpn_protocols == ("spdy/3", "http/1.1")
    assert config.forwarded_allow_ips == ["10.0.0.1", "10.1.0.0/16"]
    config.load()
    assert config.encoded_headers == [(b"x-a", b"1"), (b"x-b", b"two")]


def test_workers_from_web_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert Config("m:app").workers == 3
    assert Config("m:app", workers=2).workers == 2
    monkeypatch.setenv("WEB_CONCURRENCY", "many")
    with pytest.raises(ConfigError, match="'workers'"):
        Config("m:app")


def test_forwarded_allow_ips_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    assert Config(asgi3_app).forwarded_allow_ips == ["*"]


# -- app loading ----------------------------------------------------------------


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "cfgtest_app.py").write_text(
        textwrap.dedent(
            """
            async def app(scope, receive, send):
                pass

            class Legacy:
                def __init__(self, scope):
                    self.scope = scope
                async def __call__(self, receive, send):
                    pass

            def create():
                return app

            broken = 1
            """
        )
    )
    (tmp_path / "cfgtest_boom.py").write_text("raise RuntimeError('kaboom at import')\n")
    (tmp_path / "cfgtest_inner.py").write_text("import cfgtest_does_not_exist\n")
    yield tmp_path
    for name in ("cfgtest_app", "cfgtest_boom", "cfgtest_inner"):
        sys.modules.pop(name, None)
    while str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


def test_load_from_import_string_with_app_dir(app_dir: Path) -> None:
    config = Config("cfgtest_app:app", app_dir=str(app_dir), proxy_headers=False)
    config.load()
    import cfgtest_app  # type: ignore[import-not-found]

    assert config.loaded_app is cfgtest_app.app
    assert config.loaded is True


def test_factory(app_dir: Path) -> None:
    config = Config("cfgtest_app:create", app_dir=str(app_dir), factory=True, proxy_headers=False)
    config.load()
    assert config.loaded_app.__name__ == "app"


@pytest.mark.parametrize(
    ("import_str", "fragment"),
    [
        ("cfgtest_app", "<module>:<attribute>"),
        ("cfgtest_missing:app", 'import string "cfgtest_missing:app"'),
        ("cfgtest_app:nope", '"nope" not found'),
        ("cfgtest_boom:app", "kaboom at import"),
        ("cfgtest_app:broken", "not callable"),
    ],
)
def test_load_errors_name_the_import_string(app_dir: Path, import_str: str, fragment: str) -> None:
    config = Config(import_str, app_dir=str(app_dir))
    with pytest.raises(ImportFromStringError) as info:
        config.load()
    assert fragment in str(info.value)


def test_missing_module_inside_user_code_keeps_its_name(app_dir: Path) -> None:
    config = Config("cfgtest_inner:app", app_dir=str(app_dir))
    with pytest.raises(ImportFromStringError, match="cfgtest_does_not_exist"):
        config.load()


async def test_asgi2_app_is_wrapped_for_auto_and_asgi2() -> None:
    calls: list[str] = []

    class App2:
        def __init__(self, scope: Any) -> None:
            calls.append(scope["type"])

        async def __call__(self, receive: Any, send: Any) -> None:
            calls.append("called")

    for interface in ("auto", "asgi2"):
        config = Config(App2, interface=interface, proxy_headers=False)
        config.load()
        await config.loaded_app({"type": "http"}, None, None)
    assert calls == ["http", "called", "http", "called"]


def test_asgi3_app_is_untouched_and_proxy_wrapping() -> None:
    config = Config(asgi3_app, proxy_headers=False)
    config.load()
    assert config.loaded_app is asgi3_app
    config = Config(asgi3_app)
    config.load()
    assert isinstance(config.loaded_app, ProxyHeadersMiddleware)
    assert config.loaded_app.app is asgi3_app


def test_load_is_idempotent() -> None:
    config = Config(asgi3_app)
    config.load()
    first = config.loaded_app
    config.load()
    assert config.loaded_app is first


# -- TLS ------------------------------------------------------------------------


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_self_signed_context_has_alpn() -> None:
    pytest.importorskip("cryptography")
    config = Config(asgi3_app, self_signed=True, alpn_protocols=("spdy/3.1", "http/1.1"))
    assert config.is_ssl
    handler = ListHandler()
    logging.getLogger("spdyasgi.error").addHandler(handler)
    try:
        config.load()
    finally:
        logging.getLogger("spdyasgi.error").removeHandler(handler)
    assert isinstance(config.ssl, ssl.SSLContext)
    assert any("development" in m for m in handler.messages)


def test_ssl_context_from_files_and_tls_handshake_negotiates_spdy(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    from spdyasgi._selfsigned import generate_self_signed

    files = generate_self_signed(str(tmp_path))
    config = Config(asgi3_app, ssl_certfile=files.certfile, ssl_keyfile=files.keyfile)
    config.load()
    assert config.ssl is not None
    client_ctx = ssl.create_default_context(cafile=files.certfile)
    client_ctx.set_alpn_protocols(["spdy/3.1", "http/1.1"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    server = config.ssl.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for end in (client, server):
            try:
                end.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(outgoing.read())
        incoming.write(s_out.read())
    assert server.selected_alpn_protocol() == "spdy/3.1"
    assert client.selected_alpn_protocol() == "spdy/3.1"


def test_unreadable_certificate_fails_at_load(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    config = Config(asgi3_app, ssl_certfile=str(bad))
    with pytest.raises(ssl.SSLError):
        config.load()


# -- protocol classes -----------------------------------------------------------


def test_http_protocol_class_choice_is_lazy(monkeypatch: pytest.MonkeyPatch) -> None:
    imported: list[str] = []

    def fake_import(s: str) -> Any:
        imported.append(s)
        return type("P", (), {})

    monkeypatch.setattr("spdyasgi.config.import_from_string", fake_import)
    Config(asgi3_app, http1="h11").http_protocol_class  # noqa: B018
    Config(asgi3_app, http1="httptools").http_protocol_class  # noqa: B018
    Config(asgi3_app, lifespan="off").lifespan_class  # noqa: B018
    Config(asgi3_app, lifespan="on").lifespan_class  # noqa: B018
    assert imported == [
        "spdyasgi.protocols.http11:H11Protocol",
        "spdyasgi.protocols.httptools_impl:HttpToolsProtocol",
        "spdyasgi.asgi.lifespan:LifespanOff",
        "spdyasgi.asgi.lifespan:LifespanOn",
    ]
    custom = type("Custom", (), {})
    assert Config(asgi3_app, http1=custom).http_protocol_class is custom


# -- sockets --------------------------------------------------------------------


def test_bind_tcp_port_zero() -> None:
    sock = Config(asgi3_app, port=0).bind_socket()
    try:
        assert sock.family == socket.AF_INET
        assert sock.getsockname()[1] > 0
        assert sock.get_inheritable()
        with socket.create_connection(sock.getsockname()[:2], timeout=2):
            pass
    finally:
        sock.close()


def test_bind_ipv6() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        sock = Config(asgi3_app, host="::1", port=0).bind_socket()
    except OSError:
        pytest.skip("IPv6 loopback unavailable")
    with sock:
        assert sock.family == socket.AF_INET6


def test_bind_port_in_use_names_the_address() -> None:
    first = Config(asgi3_app, port=0).bind_socket()
    try:
        port = first.getsockname()[1]
        with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
            Config(asgi3_app, port=port).bind_socket()
    finally:
        first.close()


def test_bind_uds_replaces_stale_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()
    sock = Config(asgi3_app, uds=path).bind_socket()
    with sock:
        assert sock.family == socket.AF_UNIX
        assert sock.getsockname() == path


def test_bind_fd() -> None:
    original = Config(asgi3_app, port=0).bind_socket()
    with original:
        sock = Config(asgi3_app, fd=original.fileno()).bind_socket()
        assert sock.getsockname() == original.getsockname()
        sock.detach()


# -- env file, logging, loop ------------------------------------------------------


def test_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "# comment\nCFGT_A=1\nexport CFGT_B='two words'\nCFGT_C=\"line\\nbreak\"\n"
        "CFGT_D=plain # trailing\nCFGT_KEEP=from-file\n"
    )
    monkeypatch.setenv("CFGT_KEEP", "from-env")
    for key in ("CFGT_A", "CFGT_B", "CFGT_C", "CFGT_D"):
        monkeypatch.delenv(key, raising=False)
    Config(asgi3_app, env_file=str(env))
    assert os.environ["CFGT_A"] == "1"
    assert os.environ["CFGT_B"] == "two words"
    assert os.environ["CFGT_C"] == "line\nbreak"
    assert os.environ["CFGT_D"] == "plain"
    assert os.environ["CFGT_KEEP"] == "from-env"


def test_env_file_through_python_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the old hand-written parser refused: dashes in keys, multi-line values,
    ``${VAR}`` interpolation; a line python-dotenv cannot parse is skipped, not fatal."""
    env = tmp_path / ".env"
    env.write_text(
        'CFGT-DASH=yes\nCFGT_MULTI="first\nsecond"\nCFGT_REF=${CFGT_BASE}/sub\n'
        "NOT A PAIR\nCFGT_AFTER=ok\n"
    )
    monkeypatch.setenv("CFGT_BASE", "/base")
    for key in ("CFGT-DASH", "CFGT_MULTI", "CFGT_REF", "CFGT_AFTER"):
        monkeypatch.delenv(key, raising=False)
    values = load_env_file(env)
    assert values["CFGT-DASH"] == os.environ["CFGT-DASH"] == "yes"
    assert os.environ["CFGT_MULTI"] == "first\nsecond"
    assert os.environ["CFGT_REF"] == "/base/sub"
    assert os.environ["CFGT_AFTER"] == "ok"


def test_http_is_http1_and_ws_defaults() -> None:
    assert Config(asgi3_app, http="h11").http1 == "h11"
    config = Config(asgi3_app, http="h11", h11_max_incomplete_event_size=1000)
    assert config.http == "h11" and config.http1_max_head_size == 1000
    config = Config(asgi3_app)
    assert config.http1_max_head_size == config.max_header_size == 65536
    assert (config.ws_max_size, config.ws_max_queue) == (16777216, 32)
    assert (config.ws_ping_interval, config.ws_ping_timeout) == (20.0, 20.0)
    assert config.ws_per_message_deflate is True
    assert config.limit_max_requests_jitter == 0
    assert config.timeout_worker_healthcheck == 5
    assert config.reset_contextvars is False
    assert config.ws_protocol_class.__name__ == "WebSocketsProtocol"  # auto, both installed
    assert Config(asgi3_app, ws="wsproto").ws_protocol_class.__name__ == "WSProtoProtocol"
    assert Config(asgi3_app, ws="none").ws_protocol_class is None


def test_env_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'env_file'"):
        Config(asgi3_app, env_file=str(tmp_path / "missing.env"))


def test_log_level_and_access_log_off() -> None:
    Config(asgi3_app, log_level="debug", access_log=False)
    assert logging.getLogger("spdyasgi.error").level == logging.DEBUG
    assert logging.getLogger("spdyasgi.access").handlers == []
    Config(asgi3_app, log_level="trace")
    assert logging.getLogger("spdyasgi").level == 5
    Config(asgi3_app)  # restore defaults for other tests
    logging.getLogger("spdyasgi").setLevel(logging.INFO)
    logging.getLogger("spdyasgi.error").setLevel(logging.INFO)
    logging.getLogger("spdyasgi.access").setLevel(logging.INFO)


def test_use_colors_reaches_formatters() -> None:
    Config(asgi3_app, use_colors=True)
    handler = logging.getLogger("spdyasgi").handlers[0]
    assert getattr(handler.formatter, "use_colors", None) is True
    Config(asgi3_app, use_colors=False)
    handler = logging.getLogger("spdyasgi").handlers[0]
    assert getattr(handler.formatter, "use_colors", None) is False


def test_log_config_json_and_ini(tmp_path: Path) -> None:
    json_path = tmp_path / "log.json"
    cfg = {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {"cfgtest.json": {"level": "WARNING"}},
    }
    json_path.write_text(json.dumps(cfg))
    Config(asgi3_app, log_config=str(json_path))
    assert logging.getLogger("cfgtest.json").level == logging.WARNING

    ini_path = tmp_path / "log.ini"
    ini_path.write_text(
        "[loggers]\nkeys=root,ini\n[handlers]\nkeys=h\n[formatters]\nkeys=\n"
        "[logger_root]\nhandlers=h\n[logger_ini]\nlevel=ERROR\nhandlers=h\nqualname=cfgtest.ini\n"
        "[handler_h]\nclass=NullHandler\nargs=()\n"
    )
    Config(asgi3_app, log_config=str(ini_path))
    assert logging.getLogger("cfgtest.ini").level == logging.ERROR
    Config(asgi3_app)


def test_log_config_yaml(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    path = tmp_path / "log.yaml"
    path.write_text(
        "version: 1\ndisable_existing_loggers: false\n"
        "loggers:\n  cfgtest.yaml:\n    level: CRITICAL\n"
    )
    Config(asgi3_app, log_config=str(path))
    assert logging.getLogger("cfgtest.yaml").level == logging.CRITICAL
    Config(asgi3_app)


def test_loop_factory() -> None:
    import asyncio

    assert Config(asgi3_app, loop="asyncio").get_loop_factory() is asyncio.new_event_loop
    assert Config(asgi3_app, loop="none").get_loop_factory() is None
    uvloop = pytest.importorskip("uvloop")
    assert Config(asgi3_app, loop="auto").get_loop_factory() is uvloop.new_event_loop
    config = Config(asgi3_app, loop="uvloop")
    try:
        config.setup_event_loop()
        assert isinstance(asyncio.get_event_loop_policy(), uvloop.EventLoopPolicy)
    finally:
        asyncio.set_event_loop_policy(None)


def test_config_is_picklable_for_spawned_workers() -> None:
    import pickle

    config = Config("examples.hello:app", workers=2)
    clone = pickle.loads(pickle.dumps(config))
    assert clone.workers == 2 and clone.app == "examples.hello:app"


def test_spdy_versions_filter_alpn_and_cleartext_version() -> None:
    config = Config("examples.hello:app", spdy_versions="3")
    assert config.offered_alpn_protocols == ["spdy/3", "http/1.1"]
    assert config.cleartext_spdy_version == "3"
    config = Config("examples.hello:app", spdy_versions=("3.1",), cleartext_spdy_version="3.1")
    assert config.offered_alpn_protocols == ["spdy/3.1", "http/1.1"]


def test_ws_auto_falls_back_to_wsproto_then_none(monkeypatch: pytest.MonkeyPatch) -> None:
    import spdyasgi.config as config_module

    monkeypatch.setattr(config_module, "_module_available", lambda name: name == "wsproto")
    assert Config(asgi3_app).ws_protocol_class.__name__ == "WSProtoProtocol"
    monkeypatch.setattr(config_module, "_module_available", lambda name: False)
    assert Config(asgi3_app).ws_protocol_class is None
