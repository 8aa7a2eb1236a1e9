"""SmartPricingEngine: the plan's `calculate_optimal_price` runs as the plan writes it, agrees with
`price_copy` exactly, converts floats through their text (never float arithmetic), and refuses
bad input with InputError."""

from __future__ import annotations

import contextlib
import io
from datetime import timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.errors import InputError
from smart_pricing import SmartPricingEngine, price_copy
from wire.types import BookLevel, OrderBook, Side

PLAN_SNIPPET = """
from smart_pricing import SmartPricingEngine
engine = SmartPricingEngine()

# Test tight spread
result = engine.calculate_optimal_price(
    target_price=0.58,
    order_side='BUY',
    market_data={'best_bid': 0.58, 'best_ask': 0.59},
    hours_elapsed=0
)
print(f"Prix optimal: {result['price']}")
"""


def test_the_plans_snippet_runs_as_written() -> None:
    """The plan's "Test Smart Pricing" snippet prints the trader's price at 0 h."""
    out = io.StringIO()
    namespace: dict[str, object] = {}
    with contextlib.redirect_stdout(out):
        exec(PLAN_SNIPPET, namespace)  # noqa: S102 - the plan's own snippet, verbatim
    assert out.getvalue() == "Prix optimal: 0.58\n"
    result = namespace["result"]
    assert isinstance(result, dict)
    assert result["price"] == D("0.58") and isinstance(result["price"], D)
    assert (result["action"], result["order_type"], result["stage"], result["step"]) == (
        "limit", "GTC", "trader", 1)
    assert result["spread_class"] == "normal"  # 0.01 / 0.585 = 1.7 %: the plan's 0.5–2 % band
    assert (result["tick_size"], result["max_slippage"], result["reason"]) == (D("0.01"), D("0.05"), "")


def schedule(engine: SmartPricingEngine, side: str, trader: object, bid: object, ask: object,
             hours: object) -> tuple[D | None, str, str, int]:
    """(price, action, stage, step) on a 0.001 grid."""
    r = engine.calculate_optimal_price(target_price=trader, order_side=side, hours_elapsed=hours,
                                       market_data={"best_bid": bid, "best_ask": ask,
                                                    "tick_size": "0.001"})
    return r["price"], r["action"], r["stage"], r["step"]


def test_plan_schedule_on_the_seed_book() -> None:
    """Plan: BUY @ 0.58 → 0.581 after 6 h → mid → best ask after 24 h → market after 36 h."""
    e = SmartPricingEngine()
    assert schedule(e, "BUY", 0.58, 0.585, 0.595, 0) == (D("0.580"), "limit", "trader", 1)
    assert schedule(e, "BUY", 0.58, 0.585, 0.595, 6) == (D("0.581"), "limit", "toward_mid", 2)
    assert schedule(e, "BUY", 0.58, 0.585, 0.595, 12) == (D("0.590"), "limit", "mid", 3)
    assert schedule(e, "BUY", 0.58, 0.585, 0.595, 24) == (D("0.595"), "limit", "best_opposite", 4)
    assert schedule(e, "BUY", 0.58, 0.585, 0.595, 36) == (D("0.609"), "market", "market", 5)
    market = e.calculate_optimal_price(0.58, "BUY", {"best_bid": 0.585, "best_ask": 0.595,
                                                     "tick_size": 0.001}, 36)
    assert (market["order_type"], market["spend_price"]) == ("FAK", D("0.595"))


def test_plan_schedule_on_the_snippets_book() -> None:
    """Bid 0.58 / ask 0.59: 0.58 → 0.580 at 6 h (15 % of half a cent floors away) → mid 0.585 →
    ask 0.59 → market; hours are stage boundaries to the microsecond."""
    e = SmartPricingEngine()
    assert schedule(e, "BUY", 0.58, 0.58, 0.59, 0) == (D("0.580"), "limit", "trader", 1)
    assert schedule(e, "BUY", 0.58, 0.58, 0.59, 6) == (D("0.580"), "limit", "toward_mid", 2)
    assert schedule(e, "BUY", 0.58, 0.58, 0.59, 11.99) == (D("0.580"), "limit", "toward_mid", 2)
    assert schedule(e, "BUY", 0.58, 0.58, 0.59, 12) == (D("0.585"), "limit", "mid", 3)
    assert schedule(e, "BUY", 0.58, 0.58, 0.59, "23.9999") == (D("0.585"), "limit", "mid", 3)
    assert schedule(e, "BUY", 0.58, 0.58, 0.59, 24) == (D("0.590"), "limit", "best_opposite", 4)
    assert schedule(e, "BUY", 0.58, 0.58, 0.59, D("35.9999999")) == (
        D("0.590"), "limit", "best_opposite", 4)
    assert schedule(e, "BUY", 0.58, 0.58, 0.59, 36) == (D("0.609"), "market", "market", 5)
    assert schedule(e, "BUY", 0.58, 0.58, 0.59, 100) == (D("0.609"), "market", "market", 5)
    # SELL is the mirror image: the trader's price, then down to the mid and the best bid.
    assert schedule(e, "SELL", 0.59, 0.58, 0.59, 0) == (D("0.590"), "limit", "trader", 1)
    assert schedule(e, "SELL", 0.59, 0.58, 0.59, 12) == (D("0.585"), "limit", "mid", 3)
    assert schedule(e, "SELL", 0.59, 0.58, 0.59, 24) == (D("0.580"), "limit", "best_opposite", 4)


def test_spread_classes_and_options() -> None:
    """tight/normal/wide as the plan's bands; keyword options win over market_data's."""
    e = SmartPricingEngine()
    assert e.calculate_optimal_price("0.5", "BUY", {"best_bid": "0.499", "best_ask": "0.5"}, 0,
                                     tick_size="0.001")["spread_class"] == "tight"
    assert e.calculate_optimal_price("0.5", "BUY", {"best_bid": "0.48", "best_ask": "0.52"},
                                     0)["spread_class"] == "wide"
    # A 1 % slippage cap clamps the 24 h target (best ask 0.59 > 0.58 × 1.01 = 0.5858 → 0.585).
    r = e.calculate_optimal_price(0.58, "buy", {"best_bid": 0.58, "best_ask": 0.59, "tick_size": "0.01",
                                                "max_slippage": 0.5, "volume": 123}, 24,
                                  tick_size="0.001", max_slippage="0.01")
    assert (r["price"], r["reason"], r["tick_size"], r["max_slippage"]) == (
        D("0.585"), "clamped_to_slippage_limit", D("0.001"), D("0.01"))
    assert SmartPricingEngine(tick_size="0.001").calculate_optimal_price(
        0.58, "BUY", {"best_bid": 0.585, "best_ask": 0.595}, 6)["price"] == D("0.581")


def test_empty_side_waits_then_skips() -> None:
    """No ask at the market stage: wait (never chase); from 72 h on: skip. Missing = empty side."""
    e = SmartPricingEngine()
    r = e.calculate_optimal_price(0.58, "BUY", {"best_bid": 0.58, "best_ask": None}, 40)
    assert (r["price"], r["action"], r["reason"], r["order_type"]) == (None, "wait", "no_liquidity", None)
    r = e.calculate_optimal_price(0.58, "BUY", {"best_bid": 0.58}, 72)
    assert (r["action"], r["reason"]) == ("skip", "no_liquidity")
    r = e.calculate_optimal_price(0.58, "BUY", {}, 0)
    assert (r["price"], r["action"], r["spread_class"]) == (D("0.58"), "limit", "wide")


def test_floats_go_through_their_text() -> None:
    """0.1 + 0.2 style floats become the Decimal of their repr, never a binary expansion."""
    e = SmartPricingEngine(tick_size="0.0001")
    r = e.calculate_optimal_price(0.5801, "BUY", {"best_bid": 0.58, "best_ask": 0.59}, 0)
    assert r["price"] == D("0.5801") and str(r["price"]) == "0.5801"
    assert e.calculate_optimal_price(0.1 + 0.2, "BUY", {}, 0)["price"] == D("0.3")  # repr 0.30000000000000004


prices = st.decimals(min_value=D("0.01"), max_value=D("0.99"), places=3)


@settings(max_examples=200, deadline=None)
@given(trader=prices, bid=prices, spread=st.integers(1, 50), hours=st.integers(0, 80 * 60),
       side=st.sampled_from(["BUY", "SELL"]))
def test_facade_equals_price_copy(trader: D, bid: D, spread: int, hours: int, side: str) -> None:
    """Given floats (via str) or Decimals, the facade's answer is exactly `price_copy`'s.

    (Hours as a float are off by under a microsecond at most, and every stage boundary is a
    whole hour, which a float holds exactly.)"""
    ask = bid + spread * D("0.001")
    if ask >= 1:
        return
    tick = D("0.001")
    book = OrderBook("", (BookLevel(bid, D(0)),), (BookLevel(ask, D(0)),), tick, D(0))
    want = price_copy(Side(side), trader, book, tick, timedelta(minutes=hours))
    for r in (
        SmartPricingEngine().calculate_optimal_price(float(trader), side, {
            "best_bid": float(bid), "best_ask": float(ask), "tick_size": float(tick)}, hours / 60),
        SmartPricingEngine(tick_size=tick).calculate_optimal_price(trader, Side(side), {
            "best_bid": bid, "best_ask": ask}, D(hours) / 60),
    ):
        assert (r["price"], r["action"], r["stage"], r["spread_class"], r["reason"]) == (
            want.price, want.action.value, want.stage.value, want.spread, want.reason.value)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"order_side": "HOLD"}, "order_side must be BUY or SELL"),
    ({"order_side": None}, "order_side must be BUY or SELL"),
    ({"target_price": 0}, "target_price must be strictly between 0 and 1"),
    ({"target_price": 1}, "target_price must be strictly between 0 and 1"),
    ({"target_price": -0.2}, "target_price must be strictly between 0 and 1"),
    ({"target_price": "1.5"}, "target_price must be strictly between 0 and 1"),
    ({"target_price": "abc"}, "target_price must be a number"),
    ({"target_price": float("nan")}, "target_price must be finite"),
    ({"target_price": True}, "target_price must be a number"),
    ({"target_price": None}, "target_price must be a number"),
    ({"hours_elapsed": -1}, "hours_elapsed must be >= 0"),
    ({"hours_elapsed": "-0.001"}, "hours_elapsed must be >= 0"),
    ({"hours_elapsed": float("inf")}, "hours_elapsed must be finite"),
    ({"hours_elapsed": "1e999999"}, "hours_elapsed is too large"),
    ({"hours_elapsed": 1e300}, "hours_elapsed is too large"),
    ({"market_data": [0.58, 0.59]}, "market_data must be a mapping"),
    ({"market_data": {"best_bid": 1.2, "best_ask": 0.59}}, "best_bid must be strictly between 0 and 1"),
    ({"market_data": {"best_bid": 0.5, "best_ask": 0}}, "best_ask must be strictly between 0 and 1"),
    ({"market_data": {"best_bid": 0.59, "best_ask": 0.58}}, "crossed book"),
    ({"market_data": {"best_bid": 0.58, "best_ask": 0.58}}, "crossed book"),
    ({"market_data": {"best_bid": 0.58, "best_ask": 0.59, "tick_size": 0.03}}, "tick_size must be"),
    ({"tick_size": "0"}, "tick_size must be"),
    ({"max_slippage": 1}, "max_slippage must be in [0, 1)"),
    ({"max_slippage": -0.01}, "max_slippage must be in [0, 1)"),
])
def test_bad_input_is_an_input_error(kwargs: dict[str, object], message: str) -> None:
    """Each bad input raises InputError (exit 2 / HTTP 400 upstream) with a one-line message."""
    call: dict[str, object] = {"target_price": 0.58, "order_side": "BUY",
                               "market_data": {"best_bid": 0.58, "best_ask": 0.59}, "hours_elapsed": 0}
    call.update(kwargs)
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace(")", r"\)")) as err:
        SmartPricingEngine().calculate_optimal_price(**call)  # type: ignore[arg-type]  # bad on purpose
    assert "\n" not in str(err.value)


def test_bad_engine_defaults_are_input_errors() -> None:
    """The constructor validates its defaults too."""
    with pytest.raises(InputError, match="tick_size"):
        SmartPricingEngine(tick_size="0.02")
    with pytest.raises(InputError, match="max_slippage"):
        SmartPricingEngine(max_slippage="2")
