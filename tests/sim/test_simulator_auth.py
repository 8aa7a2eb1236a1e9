"""L1 key creation/derivation and L2 checks on the simulator's CLOB."""

from __future__ import annotations

import time

import httpx
from py_clob_client_v2.headers.headers import create_level_1_headers
from py_clob_client_v2.signer import Signer

from sim import Simulator
from tests.support.simfixtures import (
    FED_YES,
    HARDHAT_ADDRESSES,
    HARDHAT_KEYS,
    SimClient,
    account,
    l2_headers,
    sdk_limit_body,
)


def l1(index: int, nonce: int = 0) -> dict[str, str]:
    """L1 headers made by py-clob-client-v2 for a Hardhat key."""
    return create_level_1_headers(Signer(HARDHAT_KEYS[index], 137), nonce=nonce)


def test_l1_round_trip(simulator: Simulator) -> None:
    """create → same creds on derive and re-create; new nonce → new key; creds work for L2."""
    with httpx.Client(base_url=simulator.clob_url) as clob:
        created = clob.post("/auth/api-key", headers=l1(1)).json()
        assert set(created) == {"apiKey", "secret", "passphrase"}
        assert clob.get("/auth/derive-api-key", headers=l1(1)).json() == created
        assert clob.post("/auth/api-key", headers=l1(1)).json() == created
        assert (
            clob.post("/auth/api-key", headers=l1(1, nonce=1)).json()["apiKey"] != created["apiKey"]
        )
    assert simulator.create_api_key(HARDHAT_ADDRESSES[1]) == created
    client = SimClient(simulator.clob_url, created, HARDHAT_ADDRESSES[1])
    try:
        keys = client.get("/auth/api-keys").json()["apiKeys"]
        assert created["apiKey"] in keys and len(keys) == 2
    finally:
        client.close()


def test_derive_before_create_refused(simulator: Simulator) -> None:
    """Deriving a key that was never created → 400 Could not derive api key!."""
    with httpx.Client(base_url=simulator.clob_url) as clob:
        resp = clob.get("/auth/derive-api-key", headers=l1(2))
    assert (resp.status_code, resp.json()) == (400, {"error": "Could not derive api key!"})


def test_bad_l1_refused(simulator: Simulator) -> None:
    """L1 signed by another key, stale, for another chain, or missing → 401 Invalid L1 headers."""
    forged = {**l1(1), "POLY_ADDRESS": HARDHAT_ADDRESSES[2]}
    stale = create_level_1_headers(Signer(HARDHAT_KEYS[1], 137), timestamp=int(time.time()) - 7200)
    other_chain = create_level_1_headers(Signer(HARDHAT_KEYS[1], 80002))
    with httpx.Client(base_url=simulator.clob_url) as clob:
        for headers in (forged, stale, other_chain, {}):
            resp = clob.post("/auth/api-key", headers=headers)
            assert (resp.status_code, resp.json()) == (401, {"error": "Invalid L1 Request headers"})


def test_l2_checks(simulator: Simulator) -> None:
    """Unknown key, stale timestamp, wrong passphrase → 401; a deleted key stops working."""
    c = account(simulator, 1)
    assert c.get("/auth/ban-status/closed-only").json() == {"closed_only": False}
    stale = l2_headers(c.creds, c.address, "GET", "/data/orders", timestamp=int(time.time()) - 3600)
    assert c.http.get("/data/orders", headers=stale).status_code == 401
    unknown = l2_headers(
        {**c.creds, "apiKey": "00000000-0000-4000-8000-000000000000"},
        c.address,
        "GET",
        "/data/orders",
    )
    assert c.http.get("/data/orders", headers=unknown).status_code == 401
    signed_path = l2_headers(c.creds, c.address, "GET", "/data/trades")
    assert c.http.get("/data/orders", headers=signed_path).status_code == 401
    assert c.request("DELETE", "/auth/api-key").status_code == 200
    resp = c.get("/data/orders")
    assert (resp.status_code, resp.json()) == (401, {"error": "Unauthorized/Invalid api key"})


def test_query_string_is_not_signed(simulator: Simulator) -> None:
    """L2 signs the path without the query string, as the SDKs do."""
    c = account(simulator, 1)
    assert c.get("/data/orders", market="0xabc", next_cursor="MA==").status_code == 200


def test_closed_only_mode(simulator: Simulator) -> None:
    """An EOA in closed-only mode sees closed_only true and cannot open positions."""
    c = account(simulator, 1)
    simulator.set_account_flags(HARDHAT_ADDRESSES[1], closed_only=True)
    assert c.get("/auth/ban-status/closed-only").json() == {"closed_only": True}
    body = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 10, "BUY", "0.01", True)
    resp = c.post_order(body)
    assert resp.json()["error"] == f"'{HARDHAT_ADDRESSES[1].lower()}' address in closed only mode"
