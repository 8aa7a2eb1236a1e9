"""The simulator's Data API, Gamma and public CLOB routes serve the real shapes, orders, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sim import Simulator
from sim.scenario import RandomWalk, RandomWalkConfig
from tests.support.simfixtures import (
    BTC_YES,
    FED_CONDITION,
    FED_NO,
    FED_YES,
    HARDHAT_ADDRESSES,
    LAKERS,
    POLYMARKET,
    TRADER_CAR,
    TRADER_QUIET,
    account,
    sdk_market_body,
)

FIXTURE_TRADE_KEYS = list(
    json.loads((POLYMARKET / "fixtures" / "data_trades.json").read_text())["data"][0]
)
ACTIVITY_KEYS = [
    "proxy_wallet",
    "timestamp",
    "condition_id",
    "type",
    "size",
    "usdc_size",
    "transaction_hash",
    "price",
    "token_id",
    "side",
    "outcome_index",
    "title",
    "slug",
    "icon",
    "event_slug",
    "outcome",
    "name",
    "pseudonym",
    "bio",
    "profile_image",
    "profile_image_optimized",
]
FIXTURE_POSITION_KEYS = set(
    json.loads((POLYMARKET / "fixtures" / "data_positions.json").read_text())["data"][0]
)


@pytest.fixture
def data(simulator: Simulator) -> Iterator[httpx.Client]:
    """HTTP client on the Data API, with the whole demo script already in the past."""
    simulator.set_clock(advance=300)
    with httpx.Client(base_url=simulator.data_url) as client:
        yield client


@pytest.fixture
def gamma(simulator: Simulator) -> Iterator[httpx.Client]:
    """HTTP client on Gamma."""
    with httpx.Client(base_url=simulator.gamma_url) as client:
        yield client


@pytest.fixture
def clob(simulator: Simulator) -> Iterator[httpx.Client]:
    """HTTP client on the public CLOB routes."""
    with httpx.Client(base_url=simulator.clob_url) as client:
        yield client


def walk(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    """Follow next_cursor to the end (same filters each page), checking every envelope."""
    rows: list[dict[str, Any]] = []
    page = client.get(path, params=params).json()
    while True:
        assert set(page) == {"data", "pagination"}
        assert page["pagination"]["has_more"] == (page["pagination"]["next_cursor"] is not None)
        rows += page["data"]
        if not page["pagination"]["has_more"]:
            return rows
        page = client.get(
            path, params={**params, "cursor": page["pagination"]["next_cursor"]}
        ).json()


# ---- /v2/trades and /v2/activity ---------------------------------------------------------------


def test_trades_rows_match_fixture_fields(data: httpx.Client) -> None:
    """/v2/trades rows carry exactly the fixture's snake_case fields, in its order."""
    resp = data.get("/v2/trades", params={"user": TRADER_QUIET})
    assert resp.status_code == 200 and resp.headers["x-trace-id"]
    rows = resp.json()["data"]
    assert rows and all(list(r) == FIXTURE_TRADE_KEYS for r in rows)
    assert rows[0]["name"] == "quietcompounder" and rows[0]["pseudonym"] == "Gleaming-Ledger"


def test_trades_taker_only_default_hides_maker_fills(data: httpx.Client) -> None:
    """taker_only defaults to true; false adds the maker rows (two sharing one tx hash)."""
    taker = data.get("/v2/trades", params={"user": TRADER_QUIET}).json()["data"]
    everything = data.get(
        "/v2/trades", params={"user": TRADER_QUIET, "taker_only": "false"}
    ).json()["data"]
    makers = [r for r in everything if r not in taker]
    assert len(makers) == 2 and {r["size"] for r in makers} == {60, 40}
    assert makers[0]["transaction_hash"] == makers[1]["transaction_hash"]
    assert all(r["side"] == "SELL" for r in makers)


def test_taker_fill_shares_tx_with_counterparties(data: httpx.Client) -> None:
    """The global feed shows a taker fill's maker rows in the same transaction, sizes adding up."""
    quiet = data.get("/v2/trades", params={"user": TRADER_QUIET, "side": "BUY"}).json()["data"][0]
    rows = walk(data, "/v2/trades", taker_only="false", limit=50)
    same_tx = [r for r in rows if r["transaction_hash"] == quiet["transaction_hash"]]
    makers = [r for r in same_tx if r["proxy_wallet"] != TRADER_QUIET]
    assert len(same_tx) >= 3 and sum(r["size"] for r in makers) == quiet["size"]
    assert all(r["side"] == "SELL" for r in makers)


def test_newest_first_and_cursor_walk(data: httpx.Client) -> None:
    """Pages of one row walk the whole feed newest first with no repeat or gap."""
    everything = data.get("/v2/activity", params={"user": TRADER_CAR, "limit": 1000}).json()["data"]
    walked = walk(data, "/v2/activity", user=TRADER_CAR, limit=1)
    assert walked == everything and len(walked) >= 5
    stamps = [r["timestamp"] for r in walked]
    assert stamps == sorted(stamps, reverse=True)


def test_activity_ascending_cursor(data: httpx.Client) -> None:
    """sort_direction=ASC walks oldest first; the cursor keeps the direction."""
    walked = walk(data, "/v2/activity", user=TRADER_CAR, limit=2, sort_direction="ASC")
    stamps = [r["timestamp"] for r in walked]
    assert stamps == sorted(stamps) and len(walked) >= 5


def test_activity_rows_and_combo_flag(data: httpx.Client) -> None:
    """Activity rows carry usdc_size/type; is_combo only on combos; SPLIT rows have no side."""
    rows = data.get("/v2/activity", params={"user": TRADER_QUIET}).json()["data"]
    combos = [r for r in rows if r.get("is_combo")]
    assert (
        len(combos) == 1
        and combos[0]["condition_id"].startswith("0x03")
        and len(combos[0]["condition_id"]) == 64
    )
    assert all(list(r) == ACTIVITY_KEYS for r in rows if not r.get("is_combo"))
    trade = next(r for r in rows if r["size"] == 113.5)
    assert trade["usdc_size"] == pytest.approx(73.775) and trade["type"] == "TRADE"
    split = data.get("/v2/activity", params={"user": TRADER_CAR, "type": "SPLIT"}).json()["data"]
    assert [(r["type"], r["side"], r["usdc_size"]) for r in split] == [("SPLIT", "", 50)]


def test_scheduled_fills_appear_with_the_clock(simulator: Simulator) -> None:
    """A fill scheduled 20 s after start is invisible before, visible once the clock passes it."""
    with httpx.Client(base_url=simulator.data_url) as data:
        before = data.get("/v2/activity", params={"user": TRADER_QUIET}).json()["data"]
        assert [r["size"] for r in before] == [250]
        simulator.set_clock(advance=21)
        after = data.get("/v2/activity", params={"user": TRADER_QUIET}).json()["data"]
        assert [r["size"] for r in after] == [113.5, 250]


def test_add_trader_fill_now_is_served(simulator: Simulator) -> None:
    """A fill added through the control API shows on /v2/activity at once."""
    simulator.add_trader_fill(TRADER_CAR, "fed", "No", "BUY", "12", "0.36")
    with httpx.Client(base_url=simulator.data_url) as data:
        row = data.get("/v2/activity", params={"user": TRADER_CAR}).json()["data"][0]
    assert (row["token_id"], row["size"], row["price"], row["outcome"]) == (FED_NO, 12, 0.36, "No")


def test_time_window(data: httpx.Client, simulator: Simulator) -> None:
    """start/end (inclusive, epoch s) bound the rows; omitted start floors at three years back."""
    rows = data.get("/v2/trades", params={"user": TRADER_QUIET}).json()["data"]
    oldest = min(r["timestamp"] for r in rows)
    newer = data.get("/v2/trades", params={"user": TRADER_QUIET, "start": oldest + 1}).json()[
        "data"
    ]
    assert len(newer) == len(rows) - 1
    only_old = data.get("/v2/trades", params={"user": TRADER_QUIET, "end": oldest}).json()["data"]
    assert [r["timestamp"] for r in only_old] == [oldest]


@pytest.mark.parametrize(
    "params,parameter",
    [
        ({"user": TRADER_QUIET, "offset": "10"}, "offset"),
        ({"user": TRADER_QUIET, "side": "buy"}, "side"),
        ({"user": "0x123"}, "user"),
        ({"user": TRADER_QUIET, "limit": "1001"}, "limit"),
        ({"user": TRADER_QUIET, "cursor": "bm9wZQ"}, "cursor"),
    ],
)
def test_v2_errors(data: httpx.Client, params: dict[str, str], parameter: str) -> None:
    """Bad parameters → 400 with the v2 error body naming the parameter and a trace id."""
    resp = data.get("/v2/trades", params=params)
    assert resp.status_code == 400
    body = resp.json()
    assert set(body) == {"error", "code", "retryable", "trace_id", "parameter"}
    assert (body["code"], body["retryable"], body["parameter"]) == (
        "invalid_request",
        False,
        parameter,
    )
    assert resp.headers["x-trace-id"] == body["trace_id"]


def test_activity_requires_user(data: httpx.Client) -> None:
    """/v2/activity without user → 400 parameter user."""
    assert data.get("/v2/activity").json()["parameter"] == "user"


def test_positions_follow_fills(data: httpx.Client) -> None:
    """quiet bought 250 + 113.5 and sold 100 of fed Yes: 263.5 held at average 0.6312..."""
    rows = data.get("/v2/positions", params={"user": TRADER_QUIET}).json()["data"]
    fed = next(r for r in rows if r["token_id"] == FED_YES)
    assert set(fed) == FIXTURE_POSITION_KEYS | {"first_entry_at"}
    assert fed["current_size"] == 263.5 and fed["total_size"] == 363.5
    assert fed["avg_price"] == pytest.approx((250 * 0.62 + 113.5 * 0.65) / 363.5, abs=1e-4)
    assert fed["opposite_token_id"] == FED_NO and fed["status"] == "OPEN"
    values = [r["current_value"] for r in rows]
    assert values == sorted(values, reverse=True)


def test_positions_include_follower_clob_fills(simulator: Simulator) -> None:
    """A follower's mined CLOB fill shows in its /v2/positions."""
    c = account(simulator, 1)
    c.post_order(sdk_market_body(c.creds["apiKey"], 1, FED_YES, 10, "BUY", 0.65, "0.01", True))
    simulator.set_clock(advance=30)
    with httpx.Client(base_url=simulator.data_url) as data:
        [pos] = data.get("/v2/positions", params={"user": HARDHAT_ADDRESSES[1]}).json()["data"]
    assert pos["current_size"] == 15.384615 and pos["avg_price"] == 0.65


def test_positions_need_an_anchor(data: httpx.Client) -> None:
    """/v2/positions with neither user nor condition → 400."""
    assert data.get("/v2/positions").status_code == 400


def test_tokens_route(data: httpx.Client) -> None:
    """/v2/tokens classifies CTF tokens and Protocol V2 positions."""
    rows = data.get("/v2/tokens", params={"token_id": f"{FED_YES},{LAKERS}"}).json()["data"]
    assert [(r["module"], r["outcome"]) for r in rows] == [("v1_ctf", "Yes"), ("binary", "Lakers")]
    assert data.get("/v2/tokens").status_code == 400


def test_unknown_data_route_is_v2_404(data: httpx.Client) -> None:
    """Unknown routes answer the v2 not_found body."""
    assert data.get("/v2/nope").json()["code"] == "not_found"


# ---- Gamma -----------------------------------------------------------------------------------


def test_gamma_repeated_condition_ids(gamma: httpx.Client) -> None:
    """Repeated condition_ids params select several markets; JSON-string fields decode."""
    btc_cid = "0x740484aa42857ba0d5725c4dddcfa789812bd435f2860f82f3dace9455c9aadf"
    markets = gamma.get(
        "/markets", params=[("condition_ids", FED_CONDITION), ("condition_ids", btc_cid)]
    ).json()
    assert {m["conditionId"] for m in markets} == {FED_CONDITION, btc_cid}
    fed = next(m for m in markets if m["conditionId"] == FED_CONDITION)
    assert json.loads(fed["outcomes"]) == ["Yes", "No"]
    assert json.loads(fed["clobTokenIds"]) == [FED_YES, FED_NO]
    assert (fed["negRisk"], fed["orderPriceMinTickSize"], fed["orderMinSize"], fed["version"]) == (
        True,
        0.01,
        5,
        "v1",
    )
    assert fed["acceptingOrders"] is True and "positionIds" not in fed
    assert (
        gamma.get("/markets", params={"condition_ids": f"{FED_CONDITION},{btc_cid}"}).json() == []
    )


def test_gamma_protocol_v2_market(gamma: httpx.Client) -> None:
    """A v2 market is found by position_ids: positionIds array, fees, no clobTokenIds."""
    [m] = gamma.get("/markets", params={"position_ids": LAKERS}).json()
    assert m["version"] == "v2" and m["positionIds"][0] == LAKERS and "clobTokenIds" not in m
    assert m["feeSchedule"] == {
        "exponent": 1,
        "rate": "0.05",
        "takerOnly": True,
        "rebateRate": "0.15",
    }
    assert gamma.get("/markets", params={"clob_token_ids": LAKERS}).json() == []


def test_gamma_hides_closed_unless_asked(gamma: httpx.Client, simulator: Simulator) -> None:
    """A closed market is absent without closed=, present with closed=true."""
    old_yes = simulator.token_id("old", "Yes")
    assert gamma.get("/markets", params={"clob_token_ids": old_yes}).json() == []
    [m] = gamma.get("/markets", params={"clob_token_ids": old_yes, "closed": "true"}).json()
    assert m["closed"] is True and m["acceptingOrders"] is False
    assert gamma.get(f"/markets/{m['id']}").json()["slug"] == m["slug"]


# ---- public CLOB -------------------------------------------------------------------------------


def test_book_orders_worst_to_best(clob: httpx.Client) -> None:
    """Bids ascend, asks descend (best last), as in fixtures/clob_book.json."""
    book = clob.get("/book", params={"token_id": FED_YES}).json()
    fixture = json.loads((POLYMARKET / "fixtures" / "clob_book.json").read_text())
    assert set(book) == set(fixture)
    assert book["bids"] == fixture["bids"] and book["asks"] == fixture["asks"]
    assert (book["tick_size"], book["min_order_size"], book["neg_risk"]) == ("0.01", "5", True)


def test_price_side_semantics(clob: httpx.Client) -> None:
    """/price side=BUY is the best bid, side=SELL the best ask; mid and spread follow."""
    assert clob.get("/price", params={"token_id": FED_YES, "side": "BUY"}).json() == {
        "price": "0.64"
    }
    assert clob.get("/price", params={"token_id": FED_YES, "side": "SELL"}).json() == {
        "price": "0.65"
    }
    assert clob.get("/midpoint", params={"token_id": FED_YES}).json() == {"mid_price": "0.645"}
    assert clob.get("/spread", params={"token_id": FED_YES}).json() == {"spread": "0.01"}
    assert clob.post("/prices", json=[{"token_id": BTC_YES, "side": "SELL"}]).json() == {
        BTC_YES: {"SELL": "0.065"}
    }


def test_market_parameter_routes(clob: httpx.Client) -> None:
    """tick-size, neg-risk, clob-markets (31-byte id, SDK-padded) and markets-by-token."""
    assert clob.get("/tick-size", params={"token_id": BTC_YES}).json() == {
        "minimum_tick_size": 0.001
    }
    assert clob.get(f"/neg-risk/{FED_YES}").json() == {"neg_risk": True}
    padded = "0x0172d880170c4126597dfb630e478dd32e147b0000000000000000e93e16de00"
    info = clob.get(f"/clob-markets/{padded}").json()
    assert (
        info["t"][0] == {"t": LAKERS, "o": "Lakers"}
        and info["mts"] == 0.005
        and info["fd"]["to"] is True
    )
    assert clob.get(f"/markets-by-token/{FED_YES}").json()["condition_id"] == FED_CONDITION
    assert clob.get("/tick-size", params={"token_id": "1"}).status_code == 404


def test_time_version_ok(clob: httpx.Client, simulator: Simulator) -> None:
    """/time is a plain integer of simulated seconds; /version and /ok answer."""
    simulator.set_clock(advance=3600)
    t = clob.get("/time").json()
    assert isinstance(t, int) and abs(t - simulator.now()) < 5
    assert clob.get("/version").json() == {"version": 2}
    assert clob.get("/ok").json() == "OK"


def test_book_errors(clob: httpx.Client, simulator: Simulator) -> None:
    """Unknown token → 404 no orderbook; bad id → 400; closed market → 404; bad side → 400."""
    assert clob.get("/book", params={"token_id": "123"}).json() == {
        "error": "No orderbook exists for the requested token id"
    }
    assert clob.get("/book", params={"token_id": "abc"}).status_code == 400
    assert (
        clob.get("/book", params={"token_id": simulator.token_id("old", "Yes")}).status_code == 404
    )
    assert clob.get("/price", params={"token_id": FED_YES, "side": "buy"}).status_code == 400
    assert clob.get("/no-such-route").status_code == 404
    assert clob.post("/book").status_code == 405


def test_random_walk_generates_fills(simulator: Simulator) -> None:
    """Random-walk steps create markets, traders and fills served by the Data API."""
    walker = RandomWalk(simulator, RandomWalkConfig(traders=2, markets=2, rate=0))
    with simulator.world.lock:
        for _ in range(20):
            walker.step()
    with httpx.Client(base_url=simulator.data_url) as data:
        rows = [
            r
            for t in walker.traders
            for r in data.get("/v2/activity", params={"user": t}).json()["data"]
        ]
    assert len(rows) == 20
    assert {r["token_id"] for r in rows} <= set(walker.tokens)
