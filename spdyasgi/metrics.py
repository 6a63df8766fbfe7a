"""Prometheus metrics (``--metrics-port``; the optional ``metrics`` extra: prometheus_client).

Two halves, so the request path stays cheap and metrics that are off cost nothing:

* :class:`Stats`, plain integers the protocols add to once per session or stream (never
  per frame). ``STATS`` is ``None`` unless metrics are on, and the protocols check that
  once per session/stream.
* :class:`Exporter`, which once a second (the server's tick) turns what changed into
  prometheus_client counters, gauges and a histogram, reading gauges (open sessions,
  streams waiting on a flow-control window) off the live connections.

With ``--workers N`` the supervisor points ``PROMETHEUS_MULTIPROC_DIR`` at a directory
(its own temporary one unless set), serves the port itself with prometheus_client's
multiprocess collector, and the workers only write. See docs/metrics.md for the list.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections import Counter
from typing import Any

__all__ = ["STATS", "Exporter", "Stats", "enable", "process_dead", "start_supervisor", "sync"]

logger = logging.getLogger("spdyasgi.error")

#: Request duration buckets (seconds): SPDY streams range from microseconds to long polls.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
           30.0, 60.0)
_CLASSES = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx")
MISSING = "--metrics-port needs prometheus_client: pip install 'spdyasgi[metrics]'"


class Stats:
    """This process's numbers since start; only ever added to (see the module docstring)."""

    __slots__ = (
        "app_exceptions",
        "body_in",
        "body_out",
        "durations",
        "goaway_received",
        "goaway_sent",
        "rst_received",
        "rst_sent",
        "sessions_closed",
        "sessions_opened",
        "statuses",
        "streams_closed",
        "streams_opened",
    )

    def __init__(self) -> None:
        self.sessions_opened: Counter[str] = Counter()
        self.sessions_closed: Counter[str] = Counter()
        self.streams_opened: Counter[str] = Counter()
        self.streams_closed: Counter[str] = Counter()
        self.statuses: Counter[tuple[str, str]] = Counter()
        self.durations: list[tuple[str, float]] = []  # drained by every sync
        self.body_in: Counter[str] = Counter()
        self.body_out: Counter[str] = Counter()
        self.rst_sent: Counter[int] = Counter()
        self.rst_received: Counter[int] = Counter()
        self.goaway_sent: Counter[int] = Counter()
        self.goaway_received: Counter[int] = Counter()
        self.app_exceptions = 0

    def stream_done(self, protocol: str, status: int, duration: float, body_in: int,
                    body_out: int) -> None:
        """One request/stream finished (its handler returned)."""
        self.streams_closed[protocol] += 1
        self.statuses[protocol, _CLASSES[status // 100] if 100 <= status < 600 else "none"] += 1
        self.durations.append((protocol, duration))
        if body_in:
            self.body_in[protocol] += body_in
        if body_out:
            self.body_out[protocol] += body_out

    def count_engine(self, engine: Any) -> None:
        """Count RST_STREAM and GOAWAY this session's engine sends.

        RST_STREAMs: the engine counts every one it queues (API calls and its own, for
        unknown streams or refusals) in ``engine.rst_sent``, pointed here at the shared
        Counter. GOAWAY: wraps this one engine instance's ``close_connection`` (none per
        frame); GOAWAYs the engine sends on its own arrive as events.
        """
        engine.rst_sent = self.rst_sent
        close = engine.close_connection
        goaway_sent = self.goaway_sent

        def close_connection(status: int = 0, last_good_stream_id: int | None = None) -> None:
            if not engine.goaway_sent:
                goaway_sent[int(status)] += 1
            close(status, last_good_stream_id)

        engine.close_connection = close_connection


STATS: Stats | None = None


class Exporter:
    """prometheus_client metrics fed from :class:`Stats` (once per process)."""

    def __init__(self, stats: Stats, registry: Any = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.stats = stats
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.sessions_open = Gauge("spdyasgi_sessions_open", "Open sessions (connections)",
                                   ["protocol"], registry=r, multiprocess_mode="livesum")
        self.sessions = Counter("spdyasgi_sessions", "Sessions (connections) opened",
                                ["protocol"], registry=r)
        self.streams_open = Gauge("spdyasgi_streams_open", "Streams/requests being handled",
                                  ["protocol"], registry=r, multiprocess_mode="livesum")
        self.streams = Counter("spdyasgi_streams", "Streams/requests started", ["protocol"],
                               registry=r)
        self.requests = Counter("spdyasgi_requests", "Finished requests by status class",
                                ["protocol", "status_class"], registry=r)
        self.duration = Histogram("spdyasgi_request_duration_seconds",
                                  "From request head to handler return", ["protocol"],
                                  buckets=BUCKETS, registry=r)
        self.body_in = Counter("spdyasgi_request_body_bytes", "Request body bytes received",
                               ["protocol"], registry=r)
        self.body_out = Counter("spdyasgi_response_body_bytes", "Response body bytes sent",
                                ["protocol"], registry=r)
        self.rst_sent = Counter("spdyasgi_rst_stream_sent", "RST_STREAM sent", ["code"],
                                registry=r)
        self.rst_received = Counter("spdyasgi_rst_stream_received", "RST_STREAM received",
                                    ["code"], registry=r)
        self.goaway_sent = Counter("spdyasgi_goaway_sent", "GOAWAY sent", ["code"], registry=r)
        self.goaway_received = Counter("spdyasgi_goaway_received", "GOAWAY received",
                                       ["code"], registry=r)
        self.refused = Counter("spdyasgi_streams_refused",
                               "Streams refused (RST_STREAM REFUSED_STREAM sent)", registry=r)
        self.stalled = Gauge("spdyasgi_flow_control_stalled_streams",
                             "Streams with body bytes waiting on a flow-control window",
                             registry=r, multiprocess_mode="livesum")
        self.tls_failures = Counter("spdyasgi_tls_handshake_failures",
                                    "Failed TLS handshakes", ["reason"], registry=r)
        self.app_exceptions = Counter("spdyasgi_app_exceptions",
                                      "Exceptions raised by the ASGI app", registry=r)
        self.proxy_rejections = Counter("spdyasgi_proxy_protocol_rejections",
                                        "Connections closed by the PROXY protocol reader",
                                        ["reason"], registry=r)
        self._pushed: dict[tuple[str, Any], float] = {}

    def _push(self, name: str, metric: Any, values: dict[Any, int]) -> None:
        for key, value in list(values.items()):
            delta = value - self._pushed.get((name, key), 0)
            if delta:
                self._pushed[name, key] = value
                child = metric.labels(*key) if isinstance(key, tuple) else (
                    metric.labels(str(key)) if key is not None else metric)
                child.inc(delta)

    def sync(self, connections: Any = ()) -> None:
        """Publish what changed since the last call (cheap when nothing did)."""
        from spdyasgi.protocols.proxy import REJECTIONS
        from spdyasgi.tls import HANDSHAKE_FAILURES

        s = self.stats
        self._push("sessions", self.sessions, s.sessions_opened)
        self._push("streams", self.streams, s.streams_opened)
        self._push("requests", self.requests, s.statuses)
        self._push("body_in", self.body_in, s.body_in)
        self._push("body_out", self.body_out, s.body_out)
        self._push("rst_sent", self.rst_sent, {int(k): v for k, v in s.rst_sent.items()})
        self._push("rst_received", self.rst_received, s.rst_received)
        self._push("goaway_sent", self.goaway_sent, s.goaway_sent)
        self._push("goaway_received", self.goaway_received, s.goaway_received)
        self._push("refused", self.refused, {None: s.rst_sent[3]})
        self._push("app_exceptions", self.app_exceptions, {None: s.app_exceptions})
        self._push("tls", self.tls_failures, HANDSHAKE_FAILURES.by_reason)
        self._push("proxy", self.proxy_rejections, REJECTIONS)
        durations, s.durations = s.durations, []
        for protocol, seconds in durations:
            self.duration.labels(protocol).observe(seconds)
        for protocol, opened in s.sessions_opened.items():
            self.sessions_open.labels(protocol).set(opened - s.sessions_closed[protocol])
        for protocol, opened in s.streams_opened.items():
            self.streams_open.labels(protocol).set(opened - s.streams_closed[protocol])
        stalled = 0
        for connection in list(connections):
            queue = getattr(connection, "_sendq", None)
            if queue is not None:
                stalled += len(queue.stalled)
        self.stalled.set(stalled)


_EXPORTER: Exporter | None = None
_SERVED: dict[tuple[str, int], Any] = {}


def enable(config: Any) -> Exporter:
    """Turn metrics on in this process; serve them unless a supervisor does (workers)."""
    global STATS, _EXPORTER
    try:
        import prometheus_client
    except ImportError:
        raise RuntimeError(MISSING) from None
    if STATS is None:
        STATS = Stats()
    if _EXPORTER is None:
        _EXPORTER = Exporter(STATS)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        key = (config.metrics_host, config.metrics_port)
        if key not in _SERVED:
            _SERVED[key] = prometheus_client.start_http_server(
                config.metrics_port, config.metrics_host, registry=_EXPORTER.registry)
            logger.info("Serving metrics on http://%s:%d/metrics", *key)
    return _EXPORTER


def sync(connections: Any = ()) -> None:
    if _EXPORTER is not None:
        _EXPORTER.sync(connections)


def start_supervisor(config: Any) -> Any:
    """``--workers``: a shared directory for the workers' files, served from here.

    Returns a callable that stops serving and removes a directory made here.
    """
    try:
        import prometheus_client  # noqa: F401  (fail early, with the install hint)
    except ImportError:
        raise RuntimeError(MISSING) from None
    made = None
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        directory = made = tempfile.mkdtemp(prefix="spdyasgi-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    server, _thread = start_http_server(config.metrics_port, config.metrics_host,
                                        registry=registry)
    logger.info("Serving metrics of %d workers on http://%s:%d/metrics", config.workers,
                config.metrics_host, config.metrics_port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        if made is not None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            shutil.rmtree(made, ignore_errors=True)

    return stop


def process_dead(pid: int | None) -> None:
    """A worker exited: drop its live gauges (sessions open...) from the sums."""
    if pid is not None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
