"""order_math: §5.3 amounts match every vector and keep their rounding invariants on all inputs.

Properties proved by hypothesis (for every tick in the table, on-grid prices in [tick, 1 − tick],
sizes/dollars from 0.01 to 10^7 with up to 6 decimals):

  P1  returned price is on the tick grid and inside [tick, 1 − tick]
  P2  shares have ≤ 2 decimals and 0 < shares ≤ requested size (size − shares < 0.01);
      market-BUY shares have ≤ `amount` decimals instead
  P3  usd has ≤ `amount` decimals; maker/taker are ints with Decimal(base) == value × 10^6 exactly
  P4  limit: usd == shares × price exactly, so a BUY's maker/taker == price (never above the
      limit) and a SELL's taker/maker == price (never below it)
  P5  market BUY: usd = floor(dollars, cents) ≤ dollars; price = floor to grid ≤ input price;
      shares × price ≤ usd < (shares + 10^-amount) × price, i.e. spend covers the shares at the
      limit and rounding gives up less than one amount-unit of shares
  P6  market SELL: shares = floor(shares, 2); usd == shares × price exactly
  P7  agrees with py-clob-client-v2's float builder whenever that builder's share count is right
      (it drops 0.01 share in 6.6 % of random whole-cent sizes, `bench/sdk_share_loss.py`; every other amount is identical)
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from py_clob_client_v2.clob_types import RoundConfig as SdkRoundConfig
from py_clob_client_v2.order_builder.builder import ROUNDING_CONFIG, OrderBuilder

from tests.support.paths import POLYMARKET
from wire.amounts import (
    ROUNDING,
    OrderAmounts,
    OrderMathError,
    decimal_places,
    limit_order_amounts,
    market_buy_amounts,
    market_sell_amounts,
    round_amount,
    to_base_units,
)
from wire.ticks import TICK_SIZES, is_on_tick
from wire.types import Side

POLY = POLYMARKET
AMOUNT_VECTORS = [v for v in json.loads((POLY / "vectors.json").read_text())["vectors"]
                  if v["kind"] == "order_amounts"]
MILLION = Decimal(10) ** 6

ticks = st.sampled_from(sorted(ROUNDING))


@st.composite
def tick_and_price(draw):
    tick = draw(ticks)
    steps = int(1 / tick)
    return tick, draw(st.integers(1, steps - 1)) * tick


quantities = st.builds(lambda n, e: Decimal(n).scaleb(-e), st.integers(1, 10**13),
                       st.integers(0, 6))
quantities = quantities.filter(lambda q: Decimal("0.01") <= q <= 10**7)


def _exact_units(amounts: OrderAmounts, side: Side) -> None:
    maker_val, taker_val = (amounts.usd, amounts.shares) if side is Side.BUY else (
        amounts.shares, amounts.usd)
    assert isinstance(amounts.maker_amount, int) and isinstance(amounts.taker_amount, int)
    assert Decimal(amounts.maker_amount) == maker_val * MILLION
    assert Decimal(amounts.taker_amount) == taker_val * MILLION


# ----------------------------------------------------------------------------- vectors


def test_table_matches_tick_list() -> None:
    """The rounding table covers exactly the known tick sizes (§5.3)."""
    assert set(ROUNDING) == set(TICK_SIZES)
    assert {str(k): (v.price, v.size, v.amount) for k, v in ROUNDING.items()} == {
        k: (v.price, v.size, v.amount) for k, v in ROUNDING_CONFIG.items()}


@pytest.mark.parametrize("vec", AMOUNT_VECTORS, ids=lambda v: v["id"])
def test_order_amount_vectors(vec: dict) -> None:
    """Every order_amounts vector gives the published maker/taker amounts."""
    i = vec["inputs"]
    got = limit_order_amounts(Side(i["side"]), Decimal(i["price"]), Decimal(i["size"]),
                              Decimal(i["tick"]))
    assert (str(got.maker_amount), str(got.taker_amount)) == (
        vec["expected"]["makerAmount"], vec["expected"]["takerAmount"])


def test_vector_count() -> None:
    """All 40 amount vectors are exercised."""
    assert len(AMOUNT_VECTORS) == 40


def test_api_md_worked_example() -> None:
    """§5.3: BUY 12.345 @ 0.57, tick 0.01 → 12.34 shares, 7.0338 pUSD."""
    a = limit_order_amounts(Side.BUY, Decimal("0.57"), Decimal("12.345"), Decimal("0.01"))
    assert a == OrderAmounts(7033800, 12340000, Decimal("0.57"), Decimal("12.34"),
                             Decimal("7.0338"))


def test_market_examples() -> None:
    """Market BUY floors dollars to cents, price to the grid and shares to amount decimals."""
    a = market_buy_amounts(Decimal("10.999"), Decimal("0.537"), Decimal("0.005"))
    assert (a.usd, a.price, a.shares) == (Decimal("10.99"), Decimal("0.535"), Decimal("20.54205"))
    assert (a.maker_amount, a.taker_amount) == (10990000, 20542050)
    b = market_buy_amounts(Decimal("1"), Decimal("0.03"), Decimal("0.01"))
    assert b.shares == Decimal("33.3333")  # 33.3333… floored, never rounded up
    s = market_sell_amounts(Decimal("10.999"), Decimal("0.537"), Decimal("0.005"))
    assert (s.maker_amount, s.taker_amount) == (10990000, 5879650)


def test_to_base_units_half_even() -> None:
    """Base units round half-even at the 6th decimal."""
    assert to_base_units(Decimal("0.0000005")) == 0
    assert to_base_units(Decimal("0.0000015")) == 2
    assert to_base_units(Decimal("1.2345675")) == 1234568
    assert to_base_units(Decimal("7.0338")) == 7033800
    assert to_base_units(3) == 3_000_000  # type: ignore[arg-type]  # a plain int is accepted too


def test_round_amount_rule() -> None:
    """The SDK leg rule: round up at amount+4 decimals, then floor to amount."""
    assert round_amount(Decimal("7.0338"), 4) == Decimal("7.0338")
    assert round_amount(Decimal("7.03379999999"), 4) == Decimal("7.0338")  # float noise healed
    assert round_amount(Decimal("7.03371"), 4) == Decimal("7.0337")
    assert decimal_places(Decimal("1.2300")) == 2 and decimal_places(Decimal("100")) == 0


# ----------------------------------------------------------------------------- rejections


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: limit_order_amounts(Side.BUY, Decimal("0.5"), Decimal("0"), Decimal("0.01")),
         "positive"),
        (lambda: limit_order_amounts(Side.BUY, Decimal("0.5"), Decimal("-3"), Decimal("0.01")),
         "positive"),
        (lambda: limit_order_amounts(Side.SELL, Decimal("0.5"), Decimal("0.009"), Decimal("0.01")),
         "floors to 0"),
        (lambda: limit_order_amounts(Side.BUY, Decimal("0.5"), Decimal("5"), Decimal("0.02")),
         "unknown tick"),
        (lambda: limit_order_amounts(Side.BUY, Decimal("0.555"), Decimal("5"), Decimal("0.01")),
         "tick grid"),
        (lambda: limit_order_amounts(Side.BUY, Decimal("0.5025"), Decimal("5"), Decimal("0.005")),
         "tick grid"),
        (lambda: limit_order_amounts(Side.BUY, Decimal("0.45"), Decimal("5"), Decimal("0.1")),
         "tick grid"),
        (lambda: limit_order_amounts(Side.BUY, Decimal("0.99"), Decimal("5"), Decimal("0.1")),
         "outside"),
        (lambda: limit_order_amounts(Side.BUY, Decimal("0"), Decimal("5"), Decimal("0.01")),
         "outside"),
        (lambda: limit_order_amounts(Side.BUY, Decimal("1"), Decimal("5"), Decimal("0.01")),
         "outside"),
        (lambda: limit_order_amounts(Side.BUY, 0.5, Decimal("5"), Decimal("0.01")),  # type: ignore[arg-type]
         "float"),
        (lambda: limit_order_amounts(Side.BUY, Decimal("0.5"), Decimal("NaN"), Decimal("0.01")),
         "finite"),
        (lambda: limit_order_amounts("BUY", Decimal("0.5"), Decimal("5"), Decimal("0.01")),  # type: ignore[arg-type]
         "side"),
        (lambda: market_buy_amounts(Decimal("0.009"), Decimal("0.5"), Decimal("0.01")),
         "floors to 0"),
        (lambda: market_buy_amounts(Decimal("-1"), Decimal("0.5"), Decimal("0.01")), "positive"),
        (lambda: market_buy_amounts(Decimal("5"), Decimal("0.004"), Decimal("0.01")), "outside"),
        (lambda: market_buy_amounts(Decimal("5"), Decimal("1.2"), Decimal("0.01")), "outside"),
        (lambda: market_sell_amounts(Decimal("0.001"), Decimal("0.5"), Decimal("0.01")),
         "floors to 0"),
        (lambda: market_sell_amounts(Decimal("5"), Decimal("0.5"), Decimal("0.3")),
         "unknown tick"),
    ],
)
def test_rejections_name_the_problem(call, match: str) -> None:
    """Bad sizes, prices, ticks and types raise OrderMathError (a ValueError) naming the problem."""
    with pytest.raises(OrderMathError, match=match):
        call()
    assert issubclass(OrderMathError, ValueError)


# ----------------------------------------------------------------------------- properties


@settings(max_examples=400, deadline=None)
@given(tp=tick_and_price(), size=quantities, side=st.sampled_from(list(Side)))
def test_limit_properties(tp, size: Decimal, side: Side) -> None:
    """P1–P4 for limit orders."""
    tick, price = tp
    cfg = ROUNDING[tick]
    a = limit_order_amounts(side, price, size, tick)
    assert a.price == price and is_on_tick(a.price, tick) and tick <= a.price <= 1 - tick
    assert decimal_places(a.shares) <= 2 and 0 < a.shares <= size and size - a.shares < Decimal(
        "0.01")
    assert decimal_places(a.usd) <= cfg.amount
    assert a.usd == a.shares * a.price
    _exact_units(a, side)
    if side is Side.BUY:
        assert Decimal(a.maker_amount) / Decimal(a.taker_amount) == price
    else:
        assert Decimal(a.taker_amount) / Decimal(a.maker_amount) == price


@settings(max_examples=400, deadline=None)
@given(tick=ticks, price=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("0.9999"),
                                     places=6), usd=quantities)
def test_market_buy_properties(tick: Decimal, price: Decimal, usd: Decimal) -> None:
    """P1, P3, P5 for market BUYs (any input price, floored onto the grid)."""
    cfg = ROUNDING[tick]
    assume(tick <= price and (price // tick) * tick <= 1 - tick)
    a = market_buy_amounts(usd, price, tick)
    assert is_on_tick(a.price, tick) and tick <= a.price <= price and price - a.price < tick
    assert a.usd <= usd and usd - a.usd < Decimal("0.01") and decimal_places(a.usd) <= 2
    assert decimal_places(a.shares) <= cfg.amount and a.shares > 0
    unit = Decimal(1).scaleb(-cfg.amount)
    assert a.shares * a.price <= a.usd < (a.shares + unit) * a.price
    assert Decimal(a.maker_amount) / Decimal(a.taker_amount) >= a.price
    _exact_units(a, Side.BUY)


@settings(max_examples=300, deadline=None)
@given(tick=ticks, price=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("0.9999"),
                                     places=6), shares=quantities)
def test_market_sell_properties(tick: Decimal, price: Decimal, shares: Decimal) -> None:
    """P1, P2, P3, P6 for market SELLs."""
    assume(tick <= price and (price // tick) * tick <= 1 - tick)
    a = market_sell_amounts(shares, price, tick)
    assert is_on_tick(a.price, tick) and a.price <= price
    assert decimal_places(a.shares) <= 2 and 0 < a.shares <= shares
    assert a.usd == a.shares * a.price and decimal_places(a.usd) <= ROUNDING[tick].amount
    _exact_units(a, Side.SELL)


def _sdk_config(tick: Decimal) -> SdkRoundConfig:
    return ROUNDING_CONFIG[str(tick)]


@settings(max_examples=400, deadline=None)
@given(tp=tick_and_price(), size=quantities.filter(lambda q: q <= 100_000),
       side=st.sampled_from(list(Side)))
def test_limit_matches_sdk_except_float_share_loss(tp, size: Decimal, side: Side) -> None:
    """P7: equal to the SDK's float builder, except where its float floor loses 0.01 share."""
    tick, price = tp
    ours = limit_order_amounts(side, price, size, tick)
    _, maker, taker = OrderBuilder.get_order_amounts(None, side.value, float(size), float(price),
                                                     _sdk_config(tick))
    sdk_shares = taker if side is Side.BUY else maker
    our_shares = ours.taker_amount if side is Side.BUY else ours.maker_amount
    if sdk_shares == our_shares:
        assert (maker, taker) == (ours.maker_amount, ours.taker_amount)
    else:
        assert our_shares - sdk_shares == 10_000  # the SDK dropped exactly one 0.01 share


def test_sdk_float_path_drops_a_cent_share() -> None:
    """Why we compute amounts ourselves: the SDK turns 0.29 shares into 0.28, we keep 0.29."""
    _, maker, taker = OrderBuilder.get_order_amounts(None, "BUY", 0.29, 0.5, _sdk_config(
        Decimal("0.01")))
    ours = limit_order_amounts(Side.BUY, Decimal("0.5"), Decimal("0.29"), Decimal("0.01"))
    assert taker == 280_000 and ours.taker_amount == 290_000
