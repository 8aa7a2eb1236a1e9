"""Fault injection: each kind misbehaves as declared, `count` times, then the route recovers."""

from __future__ import annotations

import httpx
import pytest

from sim import Simulator
from tests.support.simfixtures import (
    FED_YES,
    TRADER_QUIET,
    account,
    sdk_limit_body,
)


def test_429_with_retry_after_then_recovers(simulator: Simulator) -> None:
    """Two 429s carrying Retry-After, then the order goes through."""
    c = account(simulator, 1)
    simulator.inject_fault("POST", "/order", "429", count=2, retry_after=7)
    body = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 10, "BUY", "0.01", True)
    for _ in range(2):
        resp = c.post_order(body)
        assert (resp.status_code, resp.headers["Retry-After"], resp.json()) == (
            429,
            "7",
            {"error": "Too Many Requests"},
        )
    assert simulator.orders() == []
    assert c.post_order(body).status_code == 200


def test_5xx_with_chosen_status(simulator: Simulator) -> None:
    """A 503 fault answers 503 without placing anything; a 425 fault answers 425."""
    c = account(simulator, 1)
    body = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 10, "BUY", "0.01", True)
    simulator.inject_fault("POST", "/order", "5xx", status=503)
    assert c.post_order(body).status_code == 503
    simulator.inject_fault("POST", "/order", "5xx", status=425)
    assert c.post_order(body).status_code == 425
    assert simulator.orders() == []
    assert c.post_order(body).status_code == 200


def test_accept_then_5xx_places_the_order(simulator: Simulator) -> None:
    """The answer is a 500 but the order is live; re-posting the same bytes says Duplicated."""
    c = account(simulator, 1)
    body = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 10, "BUY", "0.01", True)
    simulator.inject_fault("POST", "/order", "accept_then_5xx")
    assert c.post_order(body).status_code == 500
    [order] = simulator.orders()
    assert order["status"] == "LIVE"
    again = c.post_order(body)
    assert again.status_code == 400 and again.json()["error"].endswith("is invalid. Duplicated.")
    assert c.get(f"/data/order/{order['id']}").json()["status"] == "LIVE"


def test_drop_closes_without_answer(simulator: Simulator) -> None:
    """A dropped connection is a protocol error; no order placed; the next call works."""
    c = account(simulator, 1)
    body = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 10, "BUY", "0.01", True)
    simulator.inject_fault("POST", "/order", "drop")
    with pytest.raises(httpx.RemoteProtocolError):
        c.post_order(body)
    assert simulator.orders() == []
    assert c.post_order(body).status_code == 200


def test_delay_outlasts_a_short_client_timeout(simulator: Simulator) -> None:
    """A 2 s delay trips a 0.2 s client read timeout; the route answers normally afterwards."""
    simulator.inject_fault("GET", "/book", "delay", delay=2.0)
    with httpx.Client(base_url=simulator.clob_url, timeout=0.2) as clob:
        with pytest.raises(httpx.ReadTimeout):
            clob.get("/book", params={"token_id": FED_YES})
    with httpx.Client(base_url=simulator.clob_url, timeout=5) as clob:
        assert clob.get("/book", params={"token_id": FED_YES}).status_code == 200


def test_data_api_429_uses_v2_error_body(simulator: Simulator) -> None:
    """On the Data API a 429 carries code rate_limited, retryable true and Retry-After."""
    simulator.inject_fault("GET", "/v2/activity", "429", service="data", retry_after=3)
    with httpx.Client(base_url=simulator.data_url) as data:
        resp = data.get("/v2/activity", params={"user": TRADER_QUIET})
        assert resp.status_code == 429 and resp.headers["Retry-After"] == "3"
        assert (resp.json()["code"], resp.json()["retryable"]) == ("rate_limited", True)
        assert data.get("/v2/activity", params={"user": TRADER_QUIET}).status_code == 200


def test_prefix_rule_and_other_routes_untouched(simulator: Simulator) -> None:
    """A `/data/order/*` rule hits order lookups only; other routes and services are unaffected."""
    c = account(simulator, 1)
    simulator.inject_fault("GET", "/data/order/*", "5xx", count=1)
    assert c.get("/data/orders").status_code == 200
    with httpx.Client(base_url=simulator.gamma_url) as gamma:
        assert gamma.get("/data/order/0x" + "1" * 64).status_code == 404  # gamma has no such route
    assert c.get("/data/order/0x" + "1" * 64).status_code == 500
    assert c.get("/data/order/0x" + "1" * 64).status_code == 200
    assert simulator.pending_faults() == []


def test_control_routes_are_never_faulted(simulator: Simulator) -> None:
    """Faults on /_sim/ paths do not fire; clear_faults disarms pending rules."""
    simulator.inject_fault("POST", "/_sim/now", "5xx")
    with httpx.Client(base_url=simulator.clob_url) as clob:
        assert clob.post("/_sim/now", json={}).status_code == 200
    simulator.clear_faults()
    assert simulator.pending_faults() == []


def test_invalid_fault_refused(simulator: Simulator) -> None:
    """Unknown kinds and nonsense parameters are refused."""
    with pytest.raises(ValueError):
        simulator.inject_fault("POST", "/order", "explode")
    with pytest.raises(ValueError):
        simulator.inject_fault("POST", "/order", "5xx", status=200)
    with pytest.raises(ValueError):
        simulator.inject_fault("GET", "/book", "delay")


def test_accept_then_drop_places_the_order(simulator: Simulator) -> None:
    """The connection dies without an answer but the order is live (the in-doubt case)."""
    c = account(simulator, 1)
    body = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 10, "BUY", "0.01", True)
    simulator.inject_fault("POST", "/order", "accept_then_drop")
    with pytest.raises(httpx.RemoteProtocolError):
        c.post_order(body)
    [order] = simulator.orders()
    assert c.get(f"/data/order/{order['id']}").json()["status"] == "LIVE"
