"""Optional Prometheus metrics for the daemons: a fixed catalogue on a `prometheus_client` registry.

Usage in a daemon:

    from infra import metrics
    metrics.start_server(settings.metrics_port)          # no-op when the port is None
    metrics.inc("fills_detected", 3)
    metrics.inc("copies", status="FILLED")
    metrics.observe("cycle_seconds", 0.42, daemon="watcher")
    metrics.observe("copy_overhead_seconds", 0.8)
    metrics.inc("http_errors", error_class=error_class(exc))  # wire.errors.error_class
    metrics.sync_total("rate_limit_waits", client.rate_limit_waits)

The values, their thread safety and the text exposition are `prometheus_client`'s. Each
`Registry` owns its own `CollectorRegistry` (never the library's global default one), so tests
and several registries in one process never collide. The catalogue below is the contract:
names, types, help texts and label sets are what dashboards and alerts read.

Invariants: recording never raises into the caller (an unknown name, a wrong kind, wrong
labels, a negative or non-finite amount is logged once and dropped: a metrics bug must not stop
a copy); the server binds 127.0.0.1 unless told otherwise and serves only GET /metrics.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

log = logging.getLogger("pmct.metrics")

# No `<name>_created` series: they are not part of our catalogue (and double the series count).
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated upstream

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                 30.0, 60.0, 300.0, 3600.0)  # per-stage latency: milliseconds to an hour
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # what a plain GET (curl, no Accept header) receives


@dataclass(frozen=True)
class Spec:
    """One metric family: Prometheus name, type, help, allowed labels, buckets."""

    name: str
    kind: str  # counter | gauge | histogram
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = LATENCY_BUCKETS


CATALOGUE: dict[str, Spec] = {s.name.removeprefix("pmct_").removesuffix("_total"): s for s in (
    Spec("pmct_fills_detected_total", "counter", "Trader fills stored by the watcher."),
    Spec("pmct_copies_queued_total", "counter", "Copy orders queued by the watcher."),
    Spec("pmct_copies_total", "counter", "Copy orders reaching a status, by status.",
         ("status",)),
    Spec("pmct_copies_skipped_total", "counter", "Copy orders skipped, by reason.", ("reason",)),
    Spec("pmct_cycle_seconds", "histogram", "Duration of one daemon cycle.", ("daemon",)),
    Spec("pmct_copy_overhead_seconds", "histogram",
         "Time from the trader's fill to our order being acknowledged."),
    Spec("pmct_detection_delay_seconds", "histogram",
         "Time from the trader's fill to the watcher storing it."),
    Spec("pmct_http_errors_total", "counter", "Polymarket HTTP errors by class.",
         ("error_class",)),
    Spec("pmct_rate_limit_waits_total", "counter", "Requests that waited for a client-side token "
         "bucket."),
    Spec("pmct_open_copy_orders", "gauge", "Copy orders open at the venue."),
    Spec("pmct_last_cycle_timestamp_seconds", "gauge", "Unix time of the last completed cycle.",
         ("daemon",)),
    Spec("pmct_kill_switch", "gauge", "1 when the global kill switch is on."),
    Spec("pmct_chain_healthy", "gauge", "1 while the chain fill source is healthy."),
    Spec("pmct_chain_errors_total", "counter", "Chain source failures by kind.", ("kind",)),
    Spec("pmct_chain_reorgs_total", "counter", "Reorganisations the chain source read again."),
    Spec("pmct_chain_fills_removed_total", "counter",
         "Chain fills reorganised away and not found again."),
    Spec("pmct_fill_single_source_total", "counter",
         "Fills seen by one source only after the grace period, by that source.", ("source",)),
    Spec("pmct_copy_stage_seconds", "histogram",
         "Per-stage latency of a copy: detect, queue, claim, sign, post, ack, first_fill, fill_seen.",
         ("stage",), STAGE_BUCKETS),
    Spec("pmct_cancels_total", "counter", "Venue orders the executor asked to cancel, by outcome.",
         ("outcome",)),
)}


def _text(value: object) -> str:
    """A label value's text: an enum's own value (so `Side.BUY` and "BUY", which are equal
    and share a cache key, are one series), anything else's `str`."""
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


_Metric = Counter | Gauge | Histogram
_M = TypeVar("_M", Counter, Gauge, Histogram)
_Key = tuple[str, tuple[tuple[str, object], ...]]


def _make(spec: Spec, registry: CollectorRegistry) -> _Metric:
    if spec.kind == "counter":
        return Counter(spec.name, spec.help, spec.labels, registry=registry)
    if spec.kind == "gauge":
        return Gauge(spec.name, spec.help, spec.labels, registry=registry)
    if spec.kind == "histogram":
        return Histogram(spec.name, spec.help, spec.labels, registry=registry, buckets=spec.buckets)
    raise ValueError(f"unknown metric kind {spec.kind!r} for {spec.name}")


class Registry:
    """The catalogue's metrics on a private `CollectorRegistry`, with a never-raising update API.

    Hot path: a labelled child is resolved once per (name, labels) and cached, so a repeated
    `inc`/`observe` costs one dict lookup plus the library's locked add.
    """

    def __init__(self, catalogue: dict[str, Spec] | None = None, *,
                 standard_collectors: bool = True) -> None:
        self.catalogue = dict(CATALOGUE if catalogue is None else catalogue)
        self.registry = CollectorRegistry(auto_describe=True)
        self._metrics: dict[str, _Metric] = {
            short: _make(spec, self.registry) for short, spec in self.catalogue.items()}
        if standard_collectors:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        self._counters: dict[_Key, Counter] = {}
        self._gauges: dict[_Key, Gauge] = {}
        self._histograms: dict[_Key, Histogram] = {}
        self._synced: dict[_Key, float] = {}
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    def _drop(self, problem: str) -> None:
        with self._lock:
            if problem in self._warned:
                return
            self._warned.add(problem)
        log.error("metrics: %s (dropped)", problem)

    def _series(self, cache: dict[_Key, _M], kind: type[_M], short: str,
                labels: dict[str, object]) -> _M | None:
        """The series for these labels: cached, validated against the catalogue on first use."""
        key: _Key = (short, tuple(labels.items()))
        try:
            return cache[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable label value: key it by its text
            key = (short, tuple((k, _text(v)) for k, v in labels.items()))
            if key in cache:
                return cache[key]
        spec = self.catalogue.get(short)
        metric = self._metrics.get(short)
        wanted = kind.__name__.lower()
        if spec is None or metric is None:
            self._drop(f"unknown metric {short!r}")
            return None
        if not isinstance(metric, kind):
            self._drop(f"metric {short!r} is a {spec.kind}, not a {wanted}")
            return None
        if set(labels) != set(spec.labels):
            self._drop(f"metric {short!r} takes labels {spec.labels}, got {tuple(labels)}")
            return None
        series = metric.labels(**{k: _text(v) for k, v in labels.items()}) if labels else metric
        cache[key] = series
        return series

    def inc(self, short: str, amount: float = 1, **labels: object) -> None:
        """Add `amount` (>= 0) to a counter."""
        try:
            if amount < 0 or not math.isfinite(amount):
                self._drop(f"metric {short!r}: amount must be finite and >= 0")
                return
            series = self._series(self._counters, Counter, short, labels)
            if series is not None:
                series.inc(amount)
        except Exception as exc:  # noqa: BLE001 - a metrics bug must never stop a copy
            self._drop(f"metric {short!r}: {type(exc).__name__}")

    def sync_total(self, short: str, total: float, **labels: object) -> None:
        """Raise a counter to a cumulative `total` kept elsewhere (never lowers it)."""
        try:
            series = self._series(self._counters, Counter, short, labels)
            if series is None or not math.isfinite(total):
                return
            key = (short, tuple((k, _text(v)) for k, v in labels.items()))
            with self._lock:  # the counter only ever moves by what the outside total grew
                delta = float(total) - self._synced.get(key, 0.0)
                if delta <= 0:
                    return
                self._synced[key] = float(total)
                series.inc(delta)
        except Exception as exc:  # noqa: BLE001
            self._drop(f"metric {short!r}: {type(exc).__name__}")

    def set(self, short: str, value: float, **labels: object) -> None:
        """Set a gauge."""
        try:
            series = self._series(self._gauges, Gauge, short, labels)
            if series is not None:
                series.set(float(value))
        except Exception as exc:  # noqa: BLE001
            self._drop(f"metric {short!r}: {type(exc).__name__}")

    def observe(self, short: str, value: float, **labels: object) -> None:
        """Record one histogram observation (seconds)."""
        try:
            if not math.isfinite(value):
                self._drop(f"metric {short!r}: observation must be finite")
                return
            series = self._series(self._histograms, Histogram, short, labels)
            if series is not None:
                series.observe(float(value))
        except Exception as exc:  # noqa: BLE001
            self._drop(f"metric {short!r}: {type(exc).__name__}")

    def value(self, short: str, **labels: object) -> float:
        """Current counter/gauge value (0 when never set); for tests and status."""
        spec = self.catalogue[short]
        found = self.registry.get_sample_value(spec.name, {k: _text(v) for k, v in labels.items()})
        return 0.0 if found is None else found

    def render(self) -> str:
        """The Prometheus text exposition (format 0.0.4) of every metric."""
        return generate_latest(self.registry).decode()


# --- the process-wide registry and its endpoint ---------------------------------------------

REGISTRY = Registry()


def inc(short: str, amount: float = 1, **labels: object) -> None:
    """Add to a counter of the process registry."""
    REGISTRY.inc(short, amount, **labels)


def set_gauge(short: str, value: float, **labels: object) -> None:
    """Set a gauge of the process registry."""
    REGISTRY.set(short, value, **labels)


def observe(short: str, value: float, **labels: object) -> None:
    """Record a histogram observation in the process registry."""
    REGISTRY.observe(short, value, **labels)


def sync_total(short: str, total: float, **labels: object) -> None:
    """Raise a counter of the process registry to a cumulative total."""
    REGISTRY.sync_total(short, total, **labels)


class _Handler(BaseHTTPRequestHandler):
    registry: Registry = REGISTRY

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        """Serve /metrics in the format the scraper asks for (OpenMetrics or text 0.0.4)."""
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404, "only /metrics here")
            return
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        body = encoder(self.registry.registry)
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Request lines go to the debug log, not stderr."""
        log.debug("metrics http: " + format, *args)


def start_server(port: int | None, host: str = "127.0.0.1",
                 registry: Registry | None = None) -> ThreadingHTTPServer | None:
    """Serve GET /metrics on host:port in a daemon thread; None (no server) when port is None.

    Port 0 picks a free port (read it from `server.server_address`). Stop with `shutdown()`.
    """
    if port is None:
        return None
    handler = type("MetricsHandler", (_Handler,), {"registry": registry or REGISTRY})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    log.info("metrics on http://%s:%d/metrics", host, server.server_address[1])
    return server
