"""Optional Prometheus metrics for the daemons: a tiny registry and a text endpoint (stdlib only).

Usage in a daemon:

    from infra import metrics
    metrics.start_server(settings.metrics_port)          # no-op when the port is None
    metrics.inc("fills_detected", 3)
    metrics.inc("copies", status="FILLED")
    metrics.observe("cycle_seconds", 0.42, daemon="watcher")
    metrics.observe("copy_overhead_seconds", 0.8)
    metrics.inc("http_errors", error_class=metrics.error_class(exc))
    metrics.sync_total("rate_limit_waits", client.rate_limit_waits)

Why stdlib and not prometheus_client: the needs are a handful of counters, gauges and
histograms with one or two labels; 200 lines of code avoid a dependency and its global
default registry (which makes tests order-dependent). The output is the Prometheus text
exposition format 0.0.4.

Invariants: recording never raises into the caller (an unknown name or bad label is logged
once and dropped, a metrics bug must not stop a copy); every update is under one lock; the
server binds 127.0.0.1 unless told otherwise and serves only GET /metrics.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("pmct.metrics")

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


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
)}


@dataclass
class _Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        self.total += value
        self.count += 1
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1


LabelKey = tuple[tuple[str, str], ...]


class Registry:
    """Thread-safe values of the catalogue's metrics."""

    def __init__(self, catalogue: dict[str, Spec] | None = None) -> None:
        self.catalogue = dict(CATALOGUE if catalogue is None else catalogue)
        self._lock = threading.Lock()
        self._values: dict[str, dict[LabelKey, float]] = {}
        self._hists: dict[str, dict[LabelKey, _Histogram]] = {}
        self._warned: set[str] = set()

    def _spec(self, short: str, kind: str,
              labels: dict[str, object]) -> tuple[Spec, LabelKey] | None:
        spec = self.catalogue.get(short)
        problem = None
        if spec is None:
            problem = f"unknown metric {short!r}"
        elif spec.kind != kind:
            problem = f"metric {short!r} is a {spec.kind}, not a {kind}"
        elif set(labels) != set(spec.labels):
            problem = f"metric {short!r} takes labels {spec.labels}, got {tuple(labels)}"
        if problem:
            if problem not in self._warned:
                self._warned.add(problem)
                log.error("metrics: %s (dropped)", problem)
            return None
        assert spec is not None
        return spec, tuple(sorted((k, str(v)) for k, v in labels.items()))

    def inc(self, short: str, amount: float = 1, **labels: object) -> None:
        """Add `amount` (>= 0) to a counter."""
        with self._lock:
            found = self._spec(short, "counter", labels)
            if found is None or amount < 0 or not math.isfinite(amount):
                return
            spec, key = found
            fam = self._values.setdefault(spec.name, {})
            fam[key] = fam.get(key, 0.0) + amount

    def sync_total(self, short: str, total: float, **labels: object) -> None:
        """Raise a counter to a cumulative `total` kept elsewhere (never lowers it)."""
        with self._lock:
            found = self._spec(short, "counter", labels)
            if found is None:
                return
            spec, key = found
            fam = self._values.setdefault(spec.name, {})
            fam[key] = max(fam.get(key, 0.0), float(total))

    def set(self, short: str, value: float, **labels: object) -> None:
        """Set a gauge."""
        with self._lock:
            found = self._spec(short, "gauge", labels)
            if found is None:
                return
            spec, key = found
            self._values.setdefault(spec.name, {})[key] = float(value)

    def observe(self, short: str, value: float, **labels: object) -> None:
        """Record one histogram observation (seconds)."""
        with self._lock:
            found = self._spec(short, "histogram", labels)
            if found is None or not math.isfinite(value):
                return
            spec, key = found
            fam = self._hists.setdefault(spec.name, {})
            hist = fam.get(key)
            if hist is None:
                hist = fam[key] = _Histogram(spec.buckets)
            hist.observe(float(value))

    def value(self, short: str, **labels: object) -> float:
        """Current counter/gauge value (0 when never set); for tests and status."""
        spec = self.catalogue[short]
        key = tuple(sorted((k, str(v)) for k, v in labels.items()))
        with self._lock:
            return self._values.get(spec.name, {}).get(key, 0.0)

    def render(self) -> str:
        """The Prometheus text exposition of every metric."""
        lines: list[str] = []
        with self._lock:
            for spec in sorted(self.catalogue.values(), key=lambda s: s.name):
                lines.append(f"# HELP {spec.name} {_escape_help(spec.help)}")
                lines.append(f"# TYPE {spec.name} {spec.kind}")
                if spec.kind == "histogram":
                    for key, h in sorted(self._hists.get(spec.name, {}).items()):
                        for bound, n in zip(h.buckets, h.counts, strict=True):  # cumulative
                            le = _labels(key, ("le", _num(bound)))
                            lines.append(f"{spec.name}_bucket{le} {n}")
                        lines.append(f"{spec.name}_bucket{_labels(key, ('le', '+Inf'))} {h.count}")
                        lines.append(f"{spec.name}_sum{_labels(key)} {_num(h.total)}")
                        lines.append(f"{spec.name}_count{_labels(key)} {h.count}")
                else:
                    values = self._values.get(spec.name, {})
                    if not values and not spec.labels:
                        lines.append(f"{spec.name} 0")
                    for key, v in sorted(values.items()):
                        lines.append(f"{spec.name}{_labels(key)} {_num(v)}")
        return "\n".join(lines) + "\n"


def _num(v: float) -> str:
    if v == math.inf:
        return "+Inf"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(key: LabelKey, extra: tuple[str, str] | None = None) -> str:
    pairs: Sequence[tuple[str, str]] = list(key) + ([extra] if extra else [])
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in pairs) + "}"


def error_class(exc: BaseException) -> str:
    """'429', '4xx', '5xx', 'transport', 'parse' or 'other' for an HTTP failure."""
    from wire.errors import ApiError, ParseError, RateLimitError, TransportError

    if isinstance(exc, RateLimitError):
        return "429"
    if isinstance(exc, ApiError):
        return "5xx" if exc.status >= 500 else "4xx"
    if isinstance(exc, TransportError):
        return "transport"
    if isinstance(exc, ParseError):
        return "parse"
    return "other"


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
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404, "only /metrics here")
            return
        body = self.registry.render().encode()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
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
