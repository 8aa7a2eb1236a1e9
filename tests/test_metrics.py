"""Prometheus metrics: values recorded through the API are served on loopback in text format 0.0.4;
bad names never raise; histograms are cumulative; the endpoint serves only /metrics."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import httpx
import pytest

from infra import metrics
from infra.metrics import Registry, start_server
from wire.errors import ApiError, ParseError, RateLimitError, TransportError, error_class


@pytest.fixture
def served() -> Iterator[tuple[Registry, str]]:
    """A fresh registry served on a free loopback port."""
    reg = Registry()
    server = start_server(0, registry=reg)
    assert server is not None
    try:
        yield reg, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def scrape(url: str) -> dict[str, float]:
    """GET /metrics and parse `name{labels} value` samples."""
    r = httpx.get(url + "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out = {}
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value.replace("+Inf", "inf"))
    return out


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
    reg.set("open_copy_orders", 12)
    for v in (0.03, 0.2, 0.2, 4.0, 500.0):
        reg.observe("copy_overhead_seconds", v)
    reg.observe("cycle_seconds", 0.4, daemon="watcher")
    samples = scrape(url)
    assert samples["pmct_fills_detected_total"] == 4
    assert samples['pmct_copies_total{status="FILLED"}'] == 1
    assert samples['pmct_copies_total{status="SKIPPED"}'] == 2
    assert samples['pmct_http_errors_total{error_class="5xx"}'] == 1
    assert samples["pmct_rate_limit_waits_total"] == 7
    assert samples["pmct_open_copy_orders"] == 12
    assert samples['pmct_copy_overhead_seconds_bucket{le="0.05"}'] == 1
    assert samples['pmct_copy_overhead_seconds_bucket{le="0.25"}'] == 3
    assert samples['pmct_copy_overhead_seconds_bucket{le="5"}'] == 4
    assert samples['pmct_copy_overhead_seconds_bucket{le="+Inf"}'] == 5
    assert samples["pmct_copy_overhead_seconds_count"] == 5
    assert samples["pmct_copy_overhead_seconds_sum"] == pytest.approx(504.43)
    assert samples['pmct_cycle_seconds_count{daemon="watcher"}'] == 1


def test_every_family_has_help_and_type(served: tuple[Registry, str]) -> None:
    """Each catalogue metric is announced with # HELP and # TYPE, even before any update."""
    reg, url = served
    text = httpx.get(url + "/metrics").text
    for spec in reg.catalogue.values():
        assert f"# TYPE {spec.name} {spec.kind}" in text
        assert re.search(rf"^# HELP {spec.name} \S", text, re.M)
    assert httpx.get(url + "/").status_code == 404


def test_bad_updates_are_dropped_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """Unknown names, wrong kinds, wrong labels, negative or NaN amounts never raise."""
    reg = Registry()
    with caplog.at_level(logging.ERROR, logger="pmct.metrics"):
        reg.inc("no_such_metric")
        reg.inc("no_such_metric")
        reg.observe("fills_detected", 1.0)
        reg.inc("copies")  # missing label
        reg.inc("fills_detected", -1)
        reg.observe("copy_overhead_seconds", float("nan"))
    assert reg.value("fills_detected") == 0
    assert sum("no_such_metric" in r.message for r in caplog.records) == 1
    assert "pmct_copy_overhead_seconds_count" not in reg.render()


def test_label_values_are_escaped() -> None:
    """Quotes, backslashes and newlines in label values are escaped per the text format."""
    reg = Registry()
    reg.inc("copies_skipped", reason='say "no"\\\n')
    assert 'pmct_copies_skipped_total{reason="say \\"no\\"\\\\\\n"} 1' in reg.render()


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
    assert metrics.start_server(None) is None
