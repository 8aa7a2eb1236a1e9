"""Matching, settlement, cancels, expiry, trade lifecycle and CLOB read routes of the simulator."""

from __future__ import annotations

import base64
from collections.abc import Callable
from decimal import Decimal

import pytest

from sim import SimConfig, Simulator
from sim.matching import Resting, TokenBook
from tests.support.simfixtures import (
    BTC_YES,
    DEMO_SCENARIO,
    FED_CONDITION,
    FED_YES,
    HARDHAT_ADDRESSES,
    LAKERS,
    account,
    sdk_limit_body,
    sdk_market_body,
)

ALICE = HARDHAT_ADDRESSES[1]


def manual(simulator_factory: Callable[..., Simulator]) -> Simulator:
    """The demo scenario with trade statuses moved only by the control API."""
    return simulator_factory(
        DEMO_SCENARIO, SimConfig(seed=20261121, mined_after=None, confirmed_after=None)
    )


# ---- the book as a data structure ----------------------------------------------------------------


def test_book_plan_respects_limit_and_fifo() -> None:
    """A plan takes the best price first, FIFO within a level, and stops at the limit."""
    book = TokenBook("1")
    book.add("SELL", Resting(seq=1, price=Decimal("0.5"), remaining=3_000_000, order_id="a"))
    book.add("SELL", Resting(seq=2, price=Decimal("0.5"), remaining=3_000_000, order_id="b"))
    book.add("SELL", Resting(seq=3, price=Decimal("0.6"), remaining=9_000_000, order_id="c"))
    fills = book.plan("BUY", Decimal("0.5"), shares=4_000_000)
    assert [(f.entry.order_id, f.shares) for f in fills] == [("a", 3_000_000), ("b", 1_000_000)]
    assert book.plan("BUY", Decimal("0.49"), shares=1_000_000) == []


def test_book_budget_plan_never_overspends() -> None:
    """In budget mode the cost of the fills never exceeds the budget."""
    book = TokenBook("1")
    book.put_synthetic("SELL", Decimal("0.33"), 100_000_000, seq=1, identity=0)
    fills = book.plan("BUY", Decimal("0.33"), budget=10_000_000)
    assert sum(f.cost for f in fills) <= 10_000_000
    assert 10_000_000 - sum(f.cost for f in fills) <= 1


def test_book_apply_drops_empty_levels() -> None:
    """Applying a plan removes exhausted entries and levels."""
    book = TokenBook("1")
    book.put_synthetic("BUY", Decimal("0.4"), 5_000_000, seq=1, identity=0)
    book.apply("SELL", book.plan("SELL", Decimal("0.4"), shares=5_000_000))
    assert book.bids == {} and book.best_bid() is None


# ---- matching through POST /order ----------------------------------------------------------------


def test_marketable_limit_takes_resting_prices_across_levels(simulator: Simulator) -> None:
    """A BUY 300 @0.66 takes 288.62 @0.65 then 11.38 @0.66: two trades at the makers' prices."""
    c = account(simulator, 1)
    out = c.post_order(
        sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.66, 300, "BUY", "0.01", True)
    ).json()
    assert out["status"] == "matched" and len(out["tradeIDs"]) == 2
    assert (out["makingAmount"], out["takingAmount"]) == ("195.1138", "300")
    asks = simulator.book(FED_YES)["asks"]
    assert asks[-1] == {"price": "0.66", "size": "1488.62"}
    bal = simulator.balances(ALICE)
    assert bal["pusd"] == "804.8862" and bal["tokens"][FED_YES] == "300"
    assert simulator.orders()[0]["status"] == "MATCHED"


def test_partial_fill_rests_remainder(simulator: Simulator) -> None:
    """A BUY 400 @0.65 fills 288.62 and rests 111.38 as the new best bid."""
    c = account(simulator, 1)
    out = c.post_order(
        sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.65, 400, "BUY", "0.01", True)
    ).json()
    assert out["status"] == "matched" and out["takingAmount"] == "288.62"
    order = c.get(f"/data/order/{out['orderID']}").json()
    assert (order["status"], order["size_matched"], order["original_size"]) == (
        "LIVE",
        "288.62",
        "400",
    )
    assert order["associate_trades"] == out["tradeIDs"]
    assert simulator.book(FED_YES)["bids"][-1] == {"price": "0.65", "size": "111.38"}


def test_resting_order_fills_when_book_moves_through_it(simulator: Simulator) -> None:
    """New synthetic asks below a resting bid fill it at the bid price; the user is the MAKER."""
    c = account(simulator, 1)
    oid = c.post_order(
        sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 50, "BUY", "0.01", True)
    ).json()["orderID"]
    trade_ids = simulator.set_book(
        FED_YES, bids=[["0.55", "100"]], asks=[["0.58", "30"], ["0.6", "40"], ["0.7", "5"]]
    )
    assert len(trade_ids) == 2
    order = c.get(f"/data/order/{oid}").json()
    assert (order["status"], order["size_matched"]) == ("MATCHED", "50")
    trades = c.get("/data/trades").json()["data"]
    assert {t["trader_side"] for t in trades} == {"MAKER"}
    assert sorted(t["maker_orders"][0]["matched_amount"] for t in trades) == ["20", "30"]
    assert all(t["price"] == "0.6" and t["maker_orders"][0]["order_id"] == oid for t in trades)
    assert simulator.book(FED_YES)["asks"][-1] == {"price": "0.6", "size": "20"}
    assert simulator.balances(ALICE) == {"address": ALICE, "pusd": "970", "tokens": {FED_YES: "50"}}


def test_shift_book_fills_resting_sell(simulator: Simulator) -> None:
    """Shifting the book up two ticks brings bids to 0.66 and fills a resting SELL there."""
    simulator.fund(ALICE, tokens={FED_YES: "40"})
    c = account(simulator, 1)
    oid = c.post_order(
        sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.66, 40, "SELL", "0.01", True)
    ).json()["orderID"]
    assert len(simulator.shift_book(FED_YES, 2)) == 1
    assert c.get(f"/data/order/{oid}").json()["status"] == "MATCHED"
    assert simulator.balances(ALICE)["pusd"] == "1026.4"


def test_sweep_partially_fills_resting_order(simulator: Simulator) -> None:
    """A synthetic sweep down to 0.61 takes the book, then 60 of a 100-share user bid."""
    c = account(simulator, 1)
    oid = c.post_order(
        sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.61, 100, "BUY", "0.01", True)
    ).json()["orderID"]
    simulator.sweep(FED_YES, "SELL", "0.61", str(402.17 + 1210.33 + 845 + 60))
    order = c.get(f"/data/order/{oid}").json()
    assert (order["status"], order["size_matched"]) == ("LIVE", "60")


def test_fak_fills_what_it_can(simulator: Simulator) -> None:
    """A FAK SELL of 500 at ≥0.64 fills the 402.17 there and kills the rest."""
    simulator.fund(ALICE, tokens={FED_YES: "500"})
    c = account(simulator, 1)
    out = c.post_order(
        sdk_market_body(
            c.creds["apiKey"], 1, FED_YES, 500, "SELL", 0.64, "0.01", True, order_type="FAK"
        )
    ).json()
    assert (out["status"], out["makingAmount"], out["takingAmount"]) == (
        "matched",
        "402.17",
        "257.3888",
    )
    assert simulator.book(FED_YES)["bids"][-1]["price"] == "0.63"
    assert (
        c.get(f"/data/order/{out['orderID']}").json() is None
    )  # FOK/FAK orders are not served there
    assert (
        c.get("/data/trades", id=out["tradeIDs"][0]).json()["data"][0]["taker_order_id"]
        == out["orderID"]
    )


def test_fok_sell_fills_fully_across_levels(simulator: Simulator) -> None:
    """A FOK SELL of 500 at ≥0.63 fills 402.17 @0.64 and 97.83 @0.63."""
    simulator.fund(ALICE, tokens={FED_YES: "500"})
    c = account(simulator, 1)
    out = c.post_order(
        sdk_market_body(c.creds["apiKey"], 1, FED_YES, 500, "SELL", 0.63, "0.01", True)
    ).json()
    assert (out["makingAmount"], out["takingAmount"]) == ("500", "319.0217")
    assert simulator.balances(ALICE)["tokens"] == {}


def test_taker_fee_charged_on_fee_market(simulator: Simulator) -> None:
    """On a 5% sports market a taker BUY of 10 @0.42 pays 4.2 + 10×0.05×0.42×0.58 = 0.1218 fee."""
    c = account(simulator, 1)
    out = c.post_order(
        sdk_limit_body(c.creds["apiKey"], 1, LAKERS, 0.42, 10, "BUY", "0.005", False, position=True)
    ).json()
    assert out["makingAmount"] == "4.2"
    assert simulator.balances(ALICE)["pusd"] == "995.6782"
    assert c.get("/data/trades").json()["data"][0]["fee_rate_bps"] == "500"


def test_two_users_trade_with_each_other(simulator: Simulator) -> None:
    """Account 2 hits account 1's resting ask: shares and pUSD move between them exactly once."""
    simulator.fund(ALICE, tokens={BTC_YES: "100"})
    seller, buyer = account(simulator, 1), account(simulator, 2)
    ask = seller.post_order(
        sdk_limit_body(seller.creds["apiKey"], 1, BTC_YES, 0.064, 100, "SELL", "0.001", False)
    )
    assert ask.json()["status"] == "live"
    out = buyer.post_order(
        sdk_limit_body(buyer.creds["apiKey"], 2, BTC_YES, 0.064, 50, "BUY", "0.001", False)
    ).json()
    assert out["takingAmount"] == "50" and out["makingAmount"] == "3.2"
    assert simulator.balances(ALICE)["pusd"] == "1003.2"
    assert simulator.balances(HARDHAT_ADDRESSES[2])["tokens"] == {BTC_YES: "50"}
    [maker_view] = seller.get("/data/trades").json()["data"]
    [taker_view] = buyer.get("/data/trades").json()["data"]
    assert maker_view["id"] == taker_view["id"]
    assert (maker_view["trader_side"], taker_view["trader_side"]) == ("MAKER", "TAKER")
    assert maker_view["maker_orders"][0]["owner"] == seller.creds["apiKey"]


# ---- cancels and expiry --------------------------------------------------------------------------


def test_cancel_routes(simulator: Simulator) -> None:
    """DELETE /order, /orders and /cancel-all cancel only the caller's live orders."""
    c, other = account(simulator, 1), account(simulator, 2)
    ids = [
        c.post_order(
            sdk_limit_body(c.creds["apiKey"], 1, FED_YES, p, 10, "BUY", "0.01", True)
        ).json()["orderID"]
        for p in (0.5, 0.51, 0.52, 0.53)
    ]
    assert c.request("DELETE", "/order", {"orderID": ids[0]}).json() == {
        "canceled": [ids[0]],
        "not_canceled": {},
    }
    again = c.request("DELETE", "/order", {"orderID": ids[0]}).json()
    assert again == {
        "canceled": [],
        "not_canceled": {ids[0]: "order can't be found - already canceled or matched"},
    }
    assert other.request("DELETE", "/order", {"orderID": ids[1]}).json()["canceled"] == []
    assert c.request("DELETE", "/orders", ids[1:3]).json()["canceled"] == ids[1:3]
    assert c.request("DELETE", "/cancel-all").json()["canceled"] == [ids[3]]
    assert c.get("/data/orders").json()["data"] == []
    assert all(
        lv["price"] not in ("0.5", "0.51", "0.52", "0.53") for lv in simulator.book(FED_YES)["bids"]
    )


def test_cancel_market_orders(simulator: Simulator) -> None:
    """DELETE /cancel-market-orders cancels the caller's orders of one market only."""
    c = account(simulator, 1)
    fed = c.post_order(
        sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.5, 10, "BUY", "0.01", True)
    ).json()["orderID"]
    btc = c.post_order(
        sdk_limit_body(c.creds["apiKey"], 1, BTC_YES, 0.05, 30, "BUY", "0.001", False)
    ).json()["orderID"]
    out = c.request("DELETE", "/cancel-market-orders", {"market": FED_CONDITION}).json()
    assert out["canceled"] == [fed]
    assert [o["id"] for o in c.get("/data/orders").json()["data"]] == [btc]


def test_gtd_expires_by_simulated_clock(simulator: Simulator) -> None:
    """A GTD order rests until the simulated clock passes its expiration, then it is gone."""
    c = account(simulator, 1)
    exp = int(simulator.now()) + 120
    oid = c.post_order(
        sdk_limit_body(
            c.creds["apiKey"],
            1,
            FED_YES,
            0.61,
            10,
            "BUY",
            "0.01",
            True,
            order_type="GTD",
            expiration=exp,
        )
    ).json()["orderID"]
    assert c.get(f"/data/order/{oid}").json()["expiration"] == str(exp)
    simulator.set_clock(advance=200)
    assert c.get(f"/data/order/{oid}").json()["status"] == "CANCELED"
    assert c.get("/data/orders").json()["data"] == []
    assert simulator.book(FED_YES)["bids"][-1]["price"] == "0.64"


# ---- reads: orders, trades, balances ----------------------------------------------------------


def test_data_orders_cursor_paging(simulator: Simulator) -> None:
    """/data/orders pages from MA== to the LTE= sentinel without repeating or skipping an order."""
    simulator.configure(clob_page_size=2)
    c = account(simulator, 1)
    ids = {
        c.post_order(
            sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.5 + i / 100, 10, "BUY", "0.01", True)
        ).json()["orderID"]
        for i in range(5)
    }
    seen, cursor, pages = [], "MA==", 0
    while cursor != "LTE=":
        page = c.get("/data/orders", next_cursor=cursor).json()
        assert page["limit"] == 2 and page["count"] == len(page["data"])
        seen += [o["id"] for o in page["data"]]
        cursor, pages = page["next_cursor"], pages + 1
    assert pages == 3 and len(seen) == 5 and set(seen) == ids
    assert base64.b64decode("Mg==") == b"2"


def test_order_view_fields(simulator: Simulator) -> None:
    """GET /data/order returns the OpenOrder fields of the fixture."""
    c = account(simulator, 1)
    oid = c.post_order(
        sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 12.5, "BUY", "0.01", True)
    ).json()["orderID"]
    order = c.get(f"/data/order/{oid}").json()
    assert set(order) == {
        "id",
        "status",
        "owner",
        "maker_address",
        "market",
        "asset_id",
        "side",
        "original_size",
        "size_matched",
        "price",
        "outcome",
        "expiration",
        "order_type",
        "associate_trades",
        "created_at",
    }
    assert (order["owner"], order["maker_address"], order["market"]) == (
        c.creds["apiKey"],
        ALICE.lower(),
        FED_CONDITION,
    )
    assert (order["original_size"], order["outcome"], order["order_type"]) == ("12.5", "Yes", "GTC")
    assert isinstance(order["created_at"], int)
    other = account(simulator, 2)
    assert other.get(f"/data/order/{oid}").json() is None


def test_trade_status_lifecycle_manual(simulator_factory: Callable[..., Simulator]) -> None:
    """MATCHED (no tx hash) → MINED (tx hash, Data API rows appear) → CONFIRMED, REST-prefixed."""
    sim = manual(simulator_factory)
    c = account(sim, 1)
    out = c.post_order(
        sdk_market_body(c.creds["apiKey"], 1, FED_YES, 10, "BUY", 0.65, "0.01", True)
    ).json()
    [tid] = out["tradeIDs"]
    trade = c.get("/data/trades", id=tid).json()["data"][0]
    assert (trade["status"], trade["transaction_hash"]) == ("TRADE_STATUS_MATCHED", "")
    activity = "/v2/activity"
    import httpx

    with httpx.Client(base_url=sim.data_url) as data:
        assert data.get(activity, params={"user": ALICE}).json()["data"] == []
        sim.advance_trades(tid)
        trade = c.get("/data/trades", id=tid).json()["data"][0]
        assert trade["status"] == "TRADE_STATUS_MINED" and trade["transaction_hash"].startswith(
            "0x"
        )
        [row] = data.get(activity, params={"user": ALICE}).json()["data"]
        assert (row["transaction_hash"], row["side"], row["size"]) == (
            trade["transaction_hash"],
            "BUY",
            15.384615,
        )
    sim.advance_trades(tid)
    assert c.get("/data/trades", id=tid).json()["data"][0]["status"] == "TRADE_STATUS_CONFIRMED"
    with pytest.raises(ValueError):
        sim.advance_trades(tid)


def test_trade_can_fail(simulator_factory: Callable[..., Simulator]) -> None:
    """MATCHED → RETRYING → FAILED; a failed trade never shows a transaction hash."""
    sim = manual(simulator_factory)
    c = account(sim, 1)
    [tid] = c.post_order(
        sdk_market_body(c.creds["apiKey"], 1, FED_YES, 10, "BUY", 0.65, "0.01", True)
    ).json()["tradeIDs"]
    sim.advance_trades(tid, to="RETRYING")
    sim.advance_trades(tid)
    trade = c.get("/data/trades", id=tid).json()["data"][0]
    assert (trade["status"], trade["transaction_hash"]) == ("TRADE_STATUS_FAILED", "")


def test_trade_statuses_advance_with_clock(simulator: Simulator) -> None:
    """With automatic delays, jumping the clock confirms matched trades."""
    c = account(simulator, 1)
    [tid] = c.post_order(
        sdk_market_body(c.creds["apiKey"], 1, FED_YES, 10, "BUY", 0.65, "0.01", True)
    ).json()["tradeIDs"]
    simulator.set_clock(advance=60)
    [trade] = simulator.trades()
    assert trade["id"] == tid and [s for s, _ in trade["history"]] == [
        "MATCHED",
        "MINED",
        "CONFIRMED",
    ]


def test_data_trades_paging_and_filters(simulator: Simulator) -> None:
    """/data/trades lists the caller's trades newest first, filters by market, and pages."""
    simulator.configure(clob_page_size=1)
    c = account(simulator, 1)
    for _ in range(2):
        c.post_order(sdk_market_body(c.creds["apiKey"], 1, FED_YES, 5, "BUY", 0.65, "0.01", True))
    first = c.get("/data/trades", next_cursor="MA==").json()
    second = c.get("/data/trades", next_cursor=first["next_cursor"]).json()
    assert first["count"] == second["count"] == 1 and second["next_cursor"] == "LTE="
    assert first["data"][0]["id"] != second["data"][0]["id"]
    assert c.get("/data/trades", market="0x" + "0" * 64).json()["data"] == []


def test_balance_allowance_route(simulator: Simulator) -> None:
    """/balance-allowance reports base-unit balances and an allowance per exchange spender."""
    c = account(simulator, 1)
    col = c.get("/balance-allowance", asset_type="COLLATERAL", signature_type=0).json()
    assert col["balance"] == "1000000000"
    assert set(col["allowances"]) == {
        "0xE111180000d2663C0091e4f400237545B87B996B",
        "0xe2222d279d744050d28e00520010520000310F59",
        "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa",
    }
    c.post_order(sdk_market_body(c.creds["apiKey"], 1, FED_YES, 10, "BUY", 0.65, "0.01", True))
    tok = c.get(
        "/balance-allowance", asset_type="CONDITIONAL", token_id=FED_YES, signature_type=0
    ).json()
    assert tok["balance"] == "15384615"
    assert (
        c.get("/balance-allowance/update", asset_type="COLLATERAL", signature_type=0).json()[
            "balance"
        ]
        == "990000000"
    )
    v2_wrong_ledger = c.get(
        "/balance-allowance", asset_type="CONDITIONAL", token_id=LAKERS, signature_type=0
    ).json()
    assert v2_wrong_ledger["balance"] == "0"
    assert c.get("/balance-allowance", asset_type="USDC", signature_type=0).status_code == 400


def test_deposit_wallet_balance_by_signature_type(simulator: Simulator) -> None:
    """signature_type=3 reports the deposit wallet's balance for the owner's key."""
    simulator.fund("0xBc0fF067b7740Eff76C1ca93c875Ba6B890d6B50", pusd="42")
    c = account(simulator, 0)
    assert (
        c.get("/balance-allowance", asset_type="COLLATERAL", signature_type=3).json()["balance"]
        == "42000000"
    )
    assert (
        c.get("/balance-allowance", asset_type="COLLATERAL", signature_type=1).json()["balance"]
        == "1000000000"
    )
