"""Prometheus metrics: values recorded through the API are served on loopback and parse with
prometheus_client's own parsers; the catalogue (names, types, help, labels) is a contract; bad
updates never raise; registries are private (never the library's global one); only /metrics."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import prometheus_client
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from infra import metrics
from infra.metrics import Registry, start_server
from smart_pricing import PriceAction
from wire.errors import ApiError, ParseError, RateLimitError, TransportError, error_class
from wire.types import Side

# The exposition contract: family (as the parser names it) → (type, help, label names).
CONTRACT: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "pmct_fills_detected": ("counter", "Trader fills stored by the watcher.", ()),
    "pmct_copies_queued": ("counter", "Copy orders queued by the watcher.", ()),
    "pmct_copies": ("counter", "Copy orders reaching a status, by status.", ("status",)),
    "pmct_copies_skipped": ("counter", "Copy orders skipped, by reason.", ("reason",)),
    "pmct_cycle_seconds": ("histogram", "Duration of one daemon cycle.", ("daemon",)),
    "pmct_copy_overhead_seconds": ("histogram",
                                   "Time from the trader's fill to our order being acknowledged.", ()),
    "pmct_detection_delay_seconds": ("histogram",
                                     "Time from the trader's fill to the watcher storing it.", ()),
    "pmct_http_errors": ("counter", "Polymarket HTTP errors by class.", ("error_class",)),
    "pmct_rate_limit_waits": ("counter", "Requests that waited for a client-side token bucket.", ()),
    "pmct_open_copy_orders": ("gauge", "Copy orders open at the venue.", ()),
    "pmct_last_cycle_timestamp_seconds": ("gauge", "Unix time of the last completed cycle.", ("daemon",)),
    "pmct_kill_switch": ("gauge", "1 when the global kill switch is on.", ()),
    "pmct_copy_stage_seconds": ("histogram", "Per-stage latency of a copy: detect, queue, claim, sign, "
                                "post, ack, first_fill, fill_seen.", ("stage",)),
    "pmct_cancels": ("counter", "Venue orders the executor asked to cancel, by outcome.", ("outcome",)),
    "pmct_chain_healthy": ("gauge", "1 while the chain fill source is healthy.", ()),
    "pmct_chain_errors": ("counter", "Chain source failures by kind.", ("kind",)),
    "pmct_chain_reorgs": ("counter", "Reorganisations the chain source read again.", ()),
    "pmct_chain_fills_removed": ("counter", "Chain fills reorganised away and not found again.", ()),
    "pmct_fill_single_source": ("counter",
                                "Fills seen by one source only after the grace period, by that source.",
                                ("source",)),
}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def served() -> Iterator[tuple[Registry, str]]:
    """A fresh registry served on a free loopback port."""
    reg = Registry()
    server = start_server(0, registry=reg)
    assert server is not None
    assert server.server_address[0] == "127.0.0.1"
    try:
        yield reg, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def parse(text: str) -> tuple[dict[str, prometheus_client.Metric], Samples]:
    """Families by name, and every sample keyed by (name, labels), via the library's parser."""
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for f in families.values() for s in f.samples}
    return families, samples


def scrape(url: str) -> tuple[dict[str, prometheus_client.Metric], Samples]:
    """GET /metrics as a plain client (text format 0.0.4) and parse it."""
    r = httpx.get(url + "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(r.text)


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    """A sample key for `parse` results."""
    return name, frozenset(labels.items())


def test_scrape_returns_recorded_values(served: tuple[Registry, str]) -> None:
    """Counters, labelled counters, gauges and histograms appear as recorded."""
    reg, url = served
    reg.inc("fills_detected", 3)
    reg.inc("fills_detected")
    reg.inc("copies", status="FILLED")
    reg.inc("copies", 2, status="SKIPPED")
    reg.inc("http_errors", error_class="5xx")
    reg.sync_total("rate_limit_waits", 7)
    reg.sync_total("rate_limit_waits", 5)  # never lowers a counter
    reg.sync_total("rate_limit_waits", 9)
    reg.set("open_copy_orders", 12)
    reg.set("last_cycle_timestamp_seconds", 1_700_000_000.5, daemon="watcher")
    for v in (0.03, 0.2, 0.2, 4.0, 500.0):
        reg.observe("copy_overhead_seconds", v)
    reg.observe("cycle_seconds", 0.4, daemon="watcher")
    families, samples = scrape(url)
    assert samples[key("pmct_fills_detected_total")] == 4
    assert samples[key("pmct_copies_total", status="FILLED")] == 1
    assert samples[key("pmct_copies_total", status="SKIPPED")] == 2
    assert samples[key("pmct_http_errors_total", error_class="5xx")] == 1
    assert samples[key("pmct_rate_limit_waits_total")] == 9
    assert samples[key("pmct_open_copy_orders")] == 12
    assert samples[key("pmct_last_cycle_timestamp_seconds", daemon="watcher")] == 1_700_000_000.5
    assert samples[key("pmct_copy_overhead_seconds_bucket", le="0.05")] == 1
    assert samples[key("pmct_copy_overhead_seconds_bucket", le="0.25")] == 3
    assert samples[key("pmct_copy_overhead_seconds_bucket", le="5.0")] == 4
    assert samples[key("pmct_copy_overhead_seconds_bucket", le="120.0")] == 4
    assert samples[key("pmct_copy_overhead_seconds_bucket", le="+Inf")] == 5
    assert samples[key("pmct_copy_overhead_seconds_count")] == 5
    assert samples[key("pmct_copy_overhead_seconds_sum")] == pytest.approx(504.43)
    assert samples[key("pmct_cycle_seconds_count", daemon="watcher")] == 1
    assert families["pmct_cycle_seconds"].type == "histogram"
    assert not any(name.endswith("_created") for name, _ in samples)  # not part of the contract
    assert reg.value("rate_limit_waits") == 9 and reg.value("copies", status="SKIPPED") == 2


def test_exposition_matches_the_catalogue_contract(served: tuple[Registry, str]) -> None:
    """Each family has the contract's type, help text and label names, even before any update."""
    reg, url = served
    for short, spec in reg.catalogue.items():  # one update each, so every label set shows
        labels = {name: "x" for name in spec.labels}
        if spec.kind == "counter":
            reg.inc(short, 1, **labels)
        elif spec.kind == "gauge":
            reg.set(short, 1, **labels)
        else:
            reg.observe(short, 1, **labels)
    families, _ = scrape(url)
    ours = {name: f for name, f in families.items() if name.startswith("pmct_")}
    assert set(ours) == set(CONTRACT)
    for name, (kind, help_text, label_names) in CONTRACT.items():
        family = ours[name]
        assert (family.type, family.documentation) == (kind, help_text), name
        for sample in family.samples:
            assert set(sample.labels) - {"le"} == set(label_names), (name, sample)
    assert {s.name for s in reg.catalogue.values()} == {
        n + "_total" if CONTRACT[n][0] == "counter" else n for n in CONTRACT}


def test_unlabelled_families_show_zero_before_any_update() -> None:
    """A fresh registry exposes unlabelled counters, gauges and histograms at 0."""
    _, samples = parse(Registry(standard_collectors=False).render())
    assert samples[key("pmct_fills_detected_total")] == 0
    assert samples[key("pmct_kill_switch")] == 0
    assert samples[key("pmct_copy_overhead_seconds_count")] == 0
    assert not any(name.startswith("pmct_copies_total") for name, _ in samples)  # labelled: none yet


def test_openmetrics_when_the_scraper_asks(served: tuple[Registry, str]) -> None:
    """Prometheus' Accept header gets OpenMetrics (same samples), a plain GET gets text 0.0.4."""
    reg, url = served
    reg.inc("copies", status="FILLED")
    r = httpx.get(url + "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/openmetrics-text")
    families = {f.name: f for f in parse_openmetrics(r.text)}
    assert families["pmct_copies"].type == "counter"
    assert [(s.name, s.labels, s.value) for s in families["pmct_copies"].samples] == [
        ("pmct_copies_total", {"status": "FILLED"}, 1.0)]


def test_standard_collectors_and_only_metrics_path(served: tuple[Registry, str]) -> None:
    """The process registry carries process_* and python_* series; any other path is a 404."""
    _, url = served
    families, samples = scrape(url)
    assert families["process_resident_memory_bytes"].type == "gauge"
    assert samples[key("process_resident_memory_bytes")] > 0
    assert "python_info" in families
    assert httpx.get(url + "/").status_code == 404
    assert httpx.get(url + "/metrics/x").status_code == 404
    families, _ = parse(Registry(standard_collectors=False).render())
    assert not any(name.startswith(("process_", "python_")) for name in families)


def test_registries_are_private() -> None:
    """Two registries in one process are independent and the library's global one stays empty."""
    a, b = Registry(), Registry()
    a.inc("fills_detected", 5)
    assert (a.value("fills_detected"), b.value("fills_detected")) == (5, 0)
    assert prometheus_client.REGISTRY.get_sample_value("pmct_fills_detected_total") is None


def test_bad_updates_are_dropped_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """Unknown names, wrong kinds, wrong labels, negative or NaN amounts never raise."""
    reg = Registry(standard_collectors=False)
    with caplog.at_level(logging.ERROR, logger="pmct.metrics"):
        reg.inc("no_such_metric")
        reg.inc("no_such_metric")
        reg.observe("fills_detected", 1.0)
        reg.set("fills_detected", 1.0)
        reg.inc("copies")  # missing label
        reg.inc("copies", status="X", extra="y")  # extra label
        reg.inc("copies", status=["unhashable"])  # a label value's text is used
        reg.inc("fills_detected", -1)
        reg.inc("fills_detected", float("inf"))
        reg.observe("copy_overhead_seconds", float("nan"))
        reg.sync_total("rate_limit_waits", float("nan"))
        reg.set("open_copy_orders", "many")  # type: ignore[arg-type]  # wrong on purpose
    assert reg.value("fills_detected") == 0 and reg.value("rate_limit_waits") == 0
    assert reg.value("open_copy_orders") == 0
    assert sum("no_such_metric" in r.message for r in caplog.records) == 1
    assert any("is a counter, not a histogram" in r.message for r in caplog.records)
    _, samples = parse(reg.render())
    assert samples[key("pmct_copy_overhead_seconds_count")] == 0
    assert samples[key("pmct_copies_total", status="['unhashable']")] == 1  # text of the value


def test_enum_label_values_are_their_value() -> None:
    """An enum label (str mixin or not) is its value, and equal to the plain string's series."""
    reg = Registry(standard_collectors=False)
    reg.inc("copies", status=Side.BUY)
    reg.inc("copies", status="BUY")
    reg.inc("copies", status=PriceAction.WAIT)
    _, samples = parse(reg.render())
    assert samples[key("pmct_copies_total", status="BUY")] == 2
    assert samples[key("pmct_copies_total", status="wait")] == 1
    assert reg.value("copies", status=Side.BUY) == 2


def test_label_values_are_escaped() -> None:
    """Quotes, backslashes and newlines in label values are escaped per the text format."""
    reg = Registry(standard_collectors=False)
    reason = 'say "no"\\\n'
    reg.inc("copies_skipped", reason=reason)
    assert 'pmct_copies_skipped_total{reason="say \\"no\\"\\\\\\n"} 1.0' in reg.render()
    _, samples = parse(reg.render())
    assert samples[key("pmct_copies_skipped_total", reason=reason)] == 1


def test_error_classes_and_module_api() -> None:
    """error_class maps the client's error tree; the module-level API writes the process registry."""
    assert error_class(RateLimitError(429, "slow down")) == "429"
    assert error_class(ApiError(503, "down")) == "5xx"
    assert error_class(ApiError(400, "bad")) == "4xx"
    assert error_class(TransportError("reset")) == "transport"
    assert error_class(ParseError("junk")) == "parse"
    assert error_class(ValueError()) == "other"
    before = metrics.REGISTRY.value("fills_detected")
    metrics.inc("fills_detected", 2)
    assert metrics.REGISTRY.value("fills_detected") == before + 2
    metrics.set_gauge("kill_switch", 1)
    assert metrics.REGISTRY.value("kill_switch") == 1
    metrics.set_gauge("kill_switch", 0)
    metrics.observe("cycle_seconds", 0.1, daemon="test")
    assert metrics.REGISTRY.registry.get_sample_value("pmct_cycle_seconds_count", {"daemon": "test"}) == 1
    metrics.sync_total("http_errors", 3, error_class="test")
    assert metrics.REGISTRY.value("http_errors", error_class="test") == 3
    assert metrics.start_server(None) is None
