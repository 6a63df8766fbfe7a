"""Every server setting in one place: the ``Config`` object and what it derives.

Option names and defaults follow uvicorn where one exists, so users can switch servers
without relearning flags; SPDY-specific knobs are documented in docs/settings.md.
``Config(...)`` validates eagerly (a bad value raises ``ConfigError`` naming the option;
the checks are in config_checks.py) and configures logging; ``load()`` does the
expensive, failure-prone work (import the app, see app_loader.py, and build the SSL
context) so a supervisor can defer it to each worker process.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import socket
import ssl
import stat
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from spdyasgi.app_loader import load_app
from spdyasgi.config_checks import (
    as_list,
    check_dialout,
    comma_tuple,
    parse_headers,
    resolve_workers,
    validate,
)
from spdyasgi.config_choices import (
    HTTP1_CLASSES,
    LIFESPAN_CLASSES,
    WS_CLASSES,
    HTTP1Type,
    InterfaceType,
    LifespanType,
    LoopSetupType,
    WSType,
)
from spdyasgi.exceptions import ConfigError
from spdyasgi.importer import import_from_string
from spdyasgi.logging import LOG_LEVELS, LOGGING_CONFIG, configure_logging
from spdyasgi.tls import DEFAULT_CIPHERS, create_context

__all__ = ["LOGGING_CONFIG", "LOG_LEVELS", "Config", "ConfigError", "load_env_file"]

logger = logging.getLogger("spdyasgi.error")

def load_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a dotenv file with python-dotenv (as uvicorn does) and set each variable
    that is not already in the environment; returns what the file defines.

    python-dotenv understands ``export``, quotes, multi-line values and ``${VAR}``
    interpolation; a key without ``=`` (value ``None``) sets nothing.
    """
    try:
        from dotenv import dotenv_values
    except ImportError as exc:  # pragma: no cover - python-dotenv is in "standard"
        raise ConfigError(
            "env_file", "needs python-dotenv: pip install 'spdyasgi[standard]'"
        ) from exc
    values = {key: value for key, value in dotenv_values(path).items() if value is not None}
    for key, value in values.items():
        os.environ.setdefault(key, value)
    return values


class Config:
    """All settings of one server; see docs/settings.md for what each does."""

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 8000,
        uds: str | None = None,
        fd: int | None = None,
        backlog: int = 2048,
        loop: LoopSetupType = "auto",
        http1: HTTP1Type | type[Any] = "auto",
        http: HTTP1Type | type[Any] | None = None,
        lifespan: LifespanType = "auto",
        interface: InterfaceType = "auto",
        env_file: str | os.PathLike[str] | None = None,
        log_config: dict[str, Any] | str | os.PathLike[str] | None = LOGGING_CONFIG,
        log_level: str | int | None = None,
        access_log: bool = True,
        access_log_format: str | None = None,
        use_colors: bool | None = None,
        workers: int | None = None,
        reload: bool = False,
        reload_dirs: list[str] | str | None = None,
        reload_includes: list[str] | str | None = None,
        reload_excludes: list[str] | str | None = None,
        reload_delay: float = 0.25,
        proxy_headers: bool = True,
        forwarded_allow_ips: list[str] | str | None = None,
        root_path: str = "",
        limit_concurrency: int | None = None,
        limit_max_requests: int | None = None,
        timeout_keep_alive: float = 5,
        timeout_graceful_shutdown: float | None = None,
        timeout_notify: float = 30,
        callback_notify: Callable[..., Awaitable[None]] | None = None,
        server_header: bool = True,
        date_header: bool = True,
        headers: Sequence[str | tuple[str, str]] | None = None,
        factory: bool = False,
        app_dir: str | None = ".",
        ssl_keyfile: str | os.PathLike[str] | None = None,
        ssl_certfile: str | os.PathLike[str] | None = None,
        ssl_keyfile_password: str | None = None,
        ssl_version: int = ssl.PROTOCOL_TLS_SERVER,
        ssl_cert_reqs: int = ssl.CERT_NONE,
        ssl_ca_certs: str | os.PathLike[str] | None = None,
        ssl_ciphers: str = DEFAULT_CIPHERS,
        ssl_min_version: str = "1.2",
        self_signed: bool = False,
        # SPDY
        spdy_versions: Sequence[str] | str = ("3.1", "3"),
        alpn_protocols: Sequence[str] | str = ("spdy/3.1", "spdy/3", "http/1.1"),
        cleartext_spdy_version: str = "3.1",
        max_concurrent_streams: int = 256,
        initial_window_size: int = 262144,
        session_window_size: int = 4194304,
        header_compression_level: int = 0,
        max_header_size: int = 65536,
        max_header_count: int = 128,
        max_frame_size: int = 65536,
        limit_request_body: int | None = None,
        max_pending_output: int = 1048576,
        ping_interval: float | None = None,
        ping_timeout: float = 20.0,
        timeout_receive: float = 30.0,
        receive_min_rate: int = 500,
        rapid_reset_burst: int = 2000,
        rapid_reset_rate: float = 100.0,
        timeout_idle: float = 300.0,
        timeout_handshake: float = 10.0,
        # WebSockets and the rest of uvicorn's options (docs/websockets.md)
        ws: WSType | type[Any] = "auto",
        ws_max_size: int = 16777216,
        ws_max_queue: int = 32,
        ws_ping_interval: float | None = 20.0,
        ws_ping_timeout: float | None = 20.0,
        ws_per_message_deflate: bool = True,
        h11_max_incomplete_event_size: int | None = None,
        limit_max_requests_jitter: int | None = 0,
        timeout_worker_healthcheck: float = 5,
        reset_contextvars: bool = False,
        compat: bool = False,
        # Fleet: PROXY protocol and metrics
        proxy_protocol: str = "off",
        proxy_protocol_allow_ips: list[str] | str | None = None,
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
        # Dial-out serving (spdyasgi/dialout.py): sessions to a relay
        connect: list[str] | str | None = None,
        connect_sessions: int = 1,
        connect_token: str | None = None,
        connect_hosts: str = "*",
        connect_cleartext: bool = False,
        connect_cafile: str | None = None,
        connect_certfile: str | None = None,
        connect_keyfile: str | None = None,
        listen: bool = True,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.uds = uds
        self.fd = fd
        self.backlog = backlog
        self.loop = loop
        # ``http`` is uvicorn's name, ``http1`` ours: the same setting.
        self.http1 = http if http is not None else http1
        self._http_option = "http1" if http is None else "http"  # named in errors
        self.http = self.http1
        self.lifespan = lifespan
        self.interface = interface
        self.env_file = env_file
        self.log_config = log_config
        self.log_level = log_level
        self.access_log = access_log
        self.access_log_format = access_log_format
        self.use_colors = use_colors
        self.reload = reload
        self.reload_delay = reload_delay
        self.proxy_headers = proxy_headers
        self.root_path = root_path
        self.limit_concurrency = limit_concurrency
        self.limit_max_requests = limit_max_requests
        self.timeout_keep_alive = timeout_keep_alive
        self.timeout_graceful_shutdown = timeout_graceful_shutdown
        self.timeout_notify = timeout_notify
        self.callback_notify = callback_notify
        self.server_header = server_header
        self.date_header = date_header
        self.factory = factory
        self.app_dir = app_dir
        self.ssl_keyfile = ssl_keyfile
        self.ssl_certfile = ssl_certfile
        self.ssl_keyfile_password = ssl_keyfile_password
        self.ssl_version = ssl_version
        self.ssl_cert_reqs = ssl_cert_reqs
        self.ssl_ca_certs = ssl_ca_certs
        self.ssl_ciphers = ssl_ciphers
        self.ssl_min_version = ssl_min_version
        self.self_signed = self_signed
        self.spdy_versions = comma_tuple(spdy_versions)
        self.alpn_protocols = comma_tuple(alpn_protocols)
        self.cleartext_spdy_version = cleartext_spdy_version
        self.max_concurrent_streams = max_concurrent_streams
        self.initial_window_size = initial_window_size
        self.session_window_size = session_window_size
        self.header_compression_level = header_compression_level
        self.max_header_size = max_header_size
        self.max_header_count = max_header_count
        self.max_frame_size = max_frame_size
        self.limit_request_body = limit_request_body
        self.max_pending_output = max_pending_output
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.timeout_receive = timeout_receive
        self.receive_min_rate = receive_min_rate
        self.rapid_reset_burst = rapid_reset_burst
        self.rapid_reset_rate = rapid_reset_rate
        self.timeout_idle = timeout_idle
        self.timeout_handshake = timeout_handshake
        self.ws = ws
        self.ws_max_size = ws_max_size
        self.ws_max_queue = ws_max_queue
        self.ws_ping_interval = ws_ping_interval
        self.ws_ping_timeout = ws_ping_timeout
        self.ws_per_message_deflate = ws_per_message_deflate
        self.h11_max_incomplete_event_size = h11_max_incomplete_event_size
        self.limit_max_requests_jitter = limit_max_requests_jitter or 0
        self.timeout_worker_healthcheck = timeout_worker_healthcheck
        self.reset_contextvars = reset_contextvars
        #: SPDY compatibility mode: bounded tolerances for deployed clients' faults.
        self.compat = compat
        self.proxy_protocol = proxy_protocol
        if proxy_protocol_allow_ips is None:
            proxy_protocol_allow_ips = os.environ.get("PROXY_PROTOCOL_ALLOW_IPS", "127.0.0.1")
        self.proxy_protocol_allow_ips: list[str] = list(comma_tuple(proxy_protocol_allow_ips))
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        # Dial-out serving: validated here so a bad target is a usage error
        self.connect: list[str] = as_list(connect)
        self.connect_sessions = connect_sessions
        self.connect_token = connect_token
        self.connect_hosts = connect_hosts
        self.connect_cleartext = connect_cleartext
        self.connect_cafile = connect_cafile
        self.connect_certfile = connect_certfile
        self.connect_keyfile = connect_keyfile
        self.listen = listen
        check_dialout(self)

        self.reload_dirs = [str(d) for d in as_list(reload_dirs)]
        self.reload_includes = as_list(reload_includes)
        self.reload_excludes = as_list(reload_excludes)
        self.headers: list[tuple[str, str]] = parse_headers(headers)
        self.workers = resolve_workers(workers)
        if forwarded_allow_ips is None:
            forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
        self.forwarded_allow_ips: list[str] = list(comma_tuple(forwarded_allow_ips))

        self.loaded = False
        self.loaded_app: Any = None
        self.ssl: ssl.SSLContext | None = None
        self.encoded_headers: list[tuple[bytes, bytes]] = []
        self._http_protocol_class: type[Any] | None = None
        self._ws_protocol_class: type[Any] | bool | None = False  # False: not resolved yet
        self._lifespan_class: type[Any] | None = None

        validate(self)
        if self.cleartext_spdy_version not in self.spdy_versions:
            # Prior-knowledge sessions can only be of a version that is switched on.
            self.cleartext_spdy_version = self.spdy_versions[0]
        if env_file is not None:
            if not os.path.isfile(env_file):
                raise ConfigError("env_file", f"{env_file!s} is not a file")
            load_env_file(env_file)
        self.configure_logging()
        if self.reload and not self.reload_dirs:
            self.reload_dirs = [os.getcwd()]
        if self.reload and self.workers > 1:
            logger.warning("Setting both 'reload' and 'workers' is unsupported: using reload.")

    # -- derived properties -------------------------------------------------------

    @property
    def is_ssl(self) -> bool:
        return bool(self.ssl_certfile or self.self_signed)

    @property
    def use_subprocess(self) -> bool:
        """Reload and workers run the app in child processes, which must re-import it."""
        return (self.reload or self.workers > 1) and isinstance(self.app, str)

    @property
    def should_reload(self) -> bool:
        return isinstance(self.app, str) and self.reload

    @property
    def asgi_version(self) -> Literal["2.0", "3.0"]:
        return "2.0" if self.interface == "asgi2" else "3.0"

    @property
    def http_protocol_class(self) -> type[Any]:
        """The HTTP/1.1 protocol class chosen by ``http1`` (imported on first use)."""
        if self._http_protocol_class is None:
            if inspect.isclass(self.http1):
                self._http_protocol_class = self.http1
            else:
                choice = self.http1
                if choice == "auto":
                    choice = "httptools" if _module_available("httptools") else "h11"
                self._http_protocol_class = import_from_string(HTTP1_CLASSES[str(choice)])
        assert self._http_protocol_class is not None
        return self._http_protocol_class

    @property
    def http1_max_head_size(self) -> int:
        """Largest HTTP/1.1 request head: ``h11_max_incomplete_event_size`` when set,
        else ``max_header_size`` (which also bounds SPDY header blocks)."""
        size = self.h11_max_incomplete_event_size
        return self.max_header_size if size is None else size

    @property
    def ws_protocol_class(self) -> type[Any] | None:
        """The WebSocket protocol chosen by ``ws``; None: upgrades get plain HTTP answers."""
        if self._ws_protocol_class is False:
            if inspect.isclass(self.ws):
                self._ws_protocol_class = self.ws
            else:
                choice = str(self.ws)
                if choice == "auto":
                    choice = next(
                        (lib for lib in ("websockets", "wsproto") if _module_available(lib)),
                        "none",
                    )
                self._ws_protocol_class = (
                    None if choice == "none" else import_from_string(WS_CLASSES[choice])
                )
        return self._ws_protocol_class  # type: ignore[return-value]

    @property
    def lifespan_class(self) -> type[Any]:
        """``LifespanOn`` for auto/on (it honours ``lifespan`` itself), else ``LifespanOff``."""
        if self._lifespan_class is None:
            self._lifespan_class = import_from_string(LIFESPAN_CLASSES[self.lifespan])
        assert self._lifespan_class is not None
        return self._lifespan_class

    # -- logging ------------------------------------------------------------------

    def configure_logging(self) -> None:
        """Apply ``log_config``, ``log_level``, ``access_log`` and ``use_colors``."""
        configure_logging(self.log_config, self.log_level, self.access_log, self.use_colors)

    # -- loading --------------------------------------------------------------------

    def load(self) -> None:
        """Build the SSL context, encode headers and import/wrap the app (idempotent)."""
        if self.loaded:
            return
        self.ssl = self.create_ssl_context() if self.is_ssl else None
        self.encoded_headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in self.headers
        ]
        self.loaded_app = load_app(self)
        self.loaded = True

    def create_ssl_context(self) -> ssl.SSLContext:
        """The server context (see spdyasgi/tls.py); file problems raise ``TLSConfigError``."""
        certfile, keyfile = self.ssl_certfile, self.ssl_keyfile
        if self.self_signed:
            from spdyasgi._selfsigned import generate_self_signed

            files = generate_self_signed()
            certfile, keyfile = files.certfile, files.keyfile
            rsa = generate_self_signed(files.directory, key_type="rsa", cleanup=False)
            logger.warning(
                "Using an ephemeral self-signed certificate for localhost: "
                "for development only, clients must skip verification (-k)."
            )
        assert certfile is not None
        context = create_context(
            certfile,
            keyfile,
            self.ssl_keyfile_password,
            protocol=self.ssl_version,
            cert_reqs=self.ssl_cert_reqs,
            ca_certs=self.ssl_ca_certs,
            ciphers=self.ssl_ciphers,
            min_version=self.ssl_min_version,
            alpn_protocols=self.offered_alpn_protocols,
        )
        if self.self_signed:  # a second chain: OpenSSL keeps one per key type
            context.load_cert_chain(rsa.certfile, rsa.keyfile)
        return context

    @property
    def offered_alpn_protocols(self) -> list[str]:
        """`alpn_protocols` less the SPDY versions that `spdy_versions` turns off."""
        return [
            proto for proto in self.alpn_protocols
            if not proto.startswith("spdy/") or proto[5:] in self.spdy_versions
        ]

    # -- event loop and sockets -----------------------------------------------------

    def get_loop_factory(self) -> Callable[[], asyncio.AbstractEventLoop] | None:
        """The loop constructor for ``asyncio.Runner(loop_factory=...)`` (None = default)."""
        if self.loop == "none":
            return None
        if self.loop == "uvloop" or (self.loop == "auto" and _module_available("uvloop")):
            import uvloop

            factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
            return factory
        return asyncio.new_event_loop

    def setup_event_loop(self) -> None:
        """Install uvloop's policy when chosen (or auto and installed); asyncio otherwise."""
        if self.loop == "none":
            return
        if self.loop == "uvloop" or (self.loop == "auto" and _module_available("uvloop")):
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        else:
            asyncio.set_event_loop_policy(None)

    def bind_socket(self) -> socket.socket:
        """Create and bind the listening socket (TCP, Unix domain, or an inherited fd).

        The socket is inheritable and already listening so supervisors can hand it to
        worker processes.
        """
        if self.uds is not None:
            path = self.uds
            if os.path.exists(path) and stat.S_ISSOCK(os.stat(path).st_mode):
                os.unlink(path)  # a stale socket from a previous run
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(path)
                os.chmod(path, 0o666)
            except OSError:
                sock.close()
                raise
            where = f"unix socket {path}"
        elif self.fd is not None:
            sock = socket.socket(fileno=self.fd)
            where = f"file descriptor {self.fd}"
        else:
            host = self.host.strip("[]")
            infos = socket.getaddrinfo(
                host, self.port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
            )
            family, socktype, proto, _, sockaddr = infos[0]
            sock = socket.socket(family, socktype, proto)
            try:
                if sys.platform != "win32":
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(sockaddr)
            except OSError as exc:
                sock.close()
                raise OSError(
                    exc.errno, f"could not bind on {self.host}:{self.port}: {exc.strerror}"
                ) from exc
            where = f"{self.host}:{sock.getsockname()[1]}"
        sock.listen(self.backlog)
        sock.set_inheritable(True)
        logger.debug("Bound %s", where)
        return sock


def _module_available(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
