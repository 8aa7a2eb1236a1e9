"""Contract of smart_pricing.py: the 36 h schedule, spread classes, slippage limits, never chase."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smart_pricing import (
    DEFAULT_MAX_SLIPPAGE,
    PriceAction,
    PriceDecision,
    PriceReason,
    Stage,
    price_copy,
    reprice_due,
    slippage_limit,
    spread_class,
)
from wire.ticks import in_price_range
from wire.types import BookLevel, OrderBook, OrderType, Side

H = timedelta(hours=1)
T001 = D("0.001")


def book(bids: list[str], asks: list[str], tick: str = "0.001") -> OrderBook:
    """A best-first book from price lists (best first), 100 shares per level."""
    return OrderBook(
        token_id="1",
        bids=tuple(BookLevel(D(p), D("100")) for p in bids),
        asks=tuple(BookLevel(D(p), D("100")) for p in asks),
        tick_size=D(tick), min_size=D("5"),
    )


SEED_BOOK = book(["0.585", "0.58"], ["0.595", "0.6"])


def limit_at(side: Side, trader: str, b: OrderBook, hours: float, tick: D = T001,
             **kw: D) -> D:
    decision = price_copy(side, D(trader), b, tick, hours * H, **kw)
    assert decision.action is PriceAction.LIMIT, decision
    assert decision.order_type is OrderType.GTC and decision.price is not None
    return decision.price


def test_seed_example_schedule() -> None:
    """Seed: BUY @ 0.58 on 0.585/0.595 (normal): 0.58 → 0.581 at 6 h → 0.59 mid → ask → market."""
    assert spread_class(SEED_BOOK) == "normal"
    assert limit_at(Side.BUY, "0.58", SEED_BOOK, 0) == D("0.580")
    assert limit_at(Side.BUY, "0.58", SEED_BOOK, 5.99) == D("0.580")
    assert limit_at(Side.BUY, "0.58", SEED_BOOK, 6) == D("0.581")  # 0.5815 floored
    assert limit_at(Side.BUY, "0.58", SEED_BOOK, 11.9) == D("0.581")
    assert limit_at(Side.BUY, "0.58", SEED_BOOK, 12) == D("0.590")
    assert limit_at(Side.BUY, "0.58", SEED_BOOK, 23.9) == D("0.590")
    assert limit_at(Side.BUY, "0.58", SEED_BOOK, 24) == D("0.595")
    market = price_copy(Side.BUY, D("0.58"), SEED_BOOK, T001, 36 * H)
    assert (market.action, market.order_type, market.stage) == (
        PriceAction.MARKET, OrderType.FAK, Stage.MARKET)
    assert market.price == D("0.609")  # floor(0.58 × 1.05) — the protective limit
    assert market.price <= D("0.58") * (1 + DEFAULT_MAX_SLIPPAGE)
    # The dollars are counted at the best ask, so the venue cannot fill more shares than sized.
    assert (market.budget_price, market.spend_price) == (D("0.595"), D("0.595"))


def test_market_buy_amounts_never_buy_more_shares_than_sized() -> None:
    """10 shares at the market stage: 5.95 pUSD (10 × best ask 0.595), signed at the limit 0.609."""
    from copying.orders import order_amounts

    market = price_copy(Side.BUY, D("0.58"), SEED_BOOK, T001, 36 * H)
    maker, taker = order_amounts(Side.BUY, market, D("10"), T001)
    assert maker == 5_950_000  # what the venue spends: at any ask ≥ 0.595 that is ≤ 10 shares
    assert taker == 9_770_110  # the least it may return: 5.95 / 0.609, floored — the price guard
    limit = PriceDecision(PriceAction.LIMIT, D("0.58"), OrderType.GTC, Stage.TRADER, "normal")
    assert limit.spend_price == D("0.58")


def test_sell_schedule_is_the_mirror_image() -> None:
    """SELL @ 0.60: trader price, then down toward the mid (ceil), mid, best bid, market."""
    assert limit_at(Side.SELL, "0.60", SEED_BOOK, 0) == D("0.600")
    assert limit_at(Side.SELL, "0.60", SEED_BOOK, 6) == D("0.599")  # 0.5985 ceiled
    assert limit_at(Side.SELL, "0.60", SEED_BOOK, 12) == D("0.590")
    assert limit_at(Side.SELL, "0.60", SEED_BOOK, 24) == D("0.585")
    market = price_copy(Side.SELL, D("0.60"), SEED_BOOK, T001, 40 * H)
    assert (market.action, market.price) == (PriceAction.MARKET, D("0.570"))
    assert market.budget_price is None and market.spend_price == D("0.570")  # SELLs count shares


@pytest.mark.parametrize(("bids", "asks", "expected"), [
    (["0.599"], ["0.601"], "tight"),     # 0.33 %
    (["0.5985"], ["0.6015"], "normal"),  # exactly 0.5 %: boundary is normal
    (["0.585"], ["0.595"], "normal"),    # 1.69 %
    (["0.594"], ["0.606"], "normal"),    # exactly 2 %: boundary is normal
    (["0.55"], ["0.65"], "wide"),        # 16.7 %
    ([], ["0.65"], "wide"),              # one-sided: no measurable spread
    ([], [], "wide"),
])
def test_spread_class(bids: list[str], asks: list[str], expected: str) -> None:
    """Relative spread: tight < 0.5 % ≤ normal ≤ 2 % < wide; one-sided books are wide."""
    assert spread_class(book(bids, asks)) == expected


@pytest.mark.parametrize(("bids", "asks", "expected"), [
    (["0.599"], ["0.601"], "0.582"),  # tight: 10 % of 0.02
    (["0.594"], ["0.606"], "0.583"),  # normal: 15 % of 0.02
    (["0.55"], ["0.65"], "0.584"),    # wide: 20 % of 0.02
])
def test_toward_mid_fraction_depends_on_spread(bids: list[str], asks: list[str],
                                               expected: str) -> None:
    """6–12 h: patient (10 %) on tight books, 15 % on normal, aggressive (20 %) on wide."""
    assert limit_at(Side.BUY, "0.58", book(bids, asks), 7) == D(expected)


def test_target_beyond_slippage_is_clamped() -> None:
    """A mid beyond the slippage limit is replaced by the limit itself, and said so."""
    b = book(["0.69"], ["0.71"])
    d = price_copy(Side.BUY, D("0.50"), b, T001, 12 * H)
    assert (d.action, d.price, d.reason) == (
        PriceAction.LIMIT, D("0.525"), PriceReason.CLAMPED_TO_SLIPPAGE_LIMIT)
    s = price_copy(Side.SELL, D("0.80"), b, T001, 24 * H)
    assert (s.price, s.reason) == (D("0.760"), PriceReason.CLAMPED_TO_SLIPPAGE_LIMIT)


def test_market_stage_never_chases() -> None:
    """≥ 36 h with the whole book beyond the limit: WAIT, then SKIP from 72 h."""
    b = book(["0.59"], ["0.60"])
    wait = price_copy(Side.BUY, D("0.50"), b, T001, 36 * H)
    assert (wait.action, wait.price, wait.reason) == (
        PriceAction.WAIT, None, PriceReason.BEYOND_SLIPPAGE_LIMIT)
    assert wait.order_type is None
    give_up = price_copy(Side.BUY, D("0.50"), b, T001, 72 * H)
    assert (give_up.action, give_up.reason) == (
        PriceAction.SKIP, PriceReason.BEYOND_SLIPPAGE_LIMIT)


def test_market_stage_without_liquidity_waits() -> None:
    """≥ 36 h with no opposite side at all: WAIT (no_liquidity), SKIP from 72 h."""
    b = book(["0.50"], [])
    assert price_copy(Side.BUY, D("0.50"), b, T001, 40 * H).reason == PriceReason.NO_LIQUIDITY
    assert price_copy(Side.BUY, D("0.50"), b, T001, 80 * H).action is PriceAction.SKIP


def test_buy_never_lowered_below_trader_price_by_a_lower_mid() -> None:
    """If the market fell below the trader's BUY price, the schedule keeps the trader's price."""
    b = book(["0.54"], ["0.56"])
    for hours in (0, 6, 12, 24):
        assert limit_at(Side.BUY, "0.60", b, hours) == D("0.600")


def test_one_sided_book_keeps_earlier_price() -> None:
    """No mid: 6–24 h stays at the trader's price; the best ask still applies from 24 h."""
    b = book([], ["0.59"])
    assert limit_at(Side.BUY, "0.58", b, 6) == D("0.580")
    assert limit_at(Side.BUY, "0.58", b, 12) == D("0.580")
    assert limit_at(Side.BUY, "0.58", b, 24) == D("0.590")


def test_off_grid_trader_price_snaps_safely() -> None:
    """An off-grid trader price is floored for a BUY and ceiled for a SELL."""
    b = book(["0.55"], ["0.65"], "0.01")
    tick = D("0.01")
    assert limit_at(Side.BUY, "0.5815", b, 0, tick) == D("0.58")
    assert limit_at(Side.SELL, "0.5815", b, 0, tick) == D("0.59")


def test_no_valid_grid_price_waits() -> None:
    """A BUY @ 0.005 after the tick became 0.01: no price ≤ trader on the grid → WAIT."""
    b = book(["0.01"], ["0.02"], "0.01")
    d = price_copy(Side.BUY, D("0.005"), b, D("0.01"), 0 * H)
    assert (d.action, d.reason) == (PriceAction.WAIT, PriceReason.NO_VALID_PRICE)
    s = price_copy(Side.SELL, D("0.995"), b, D("0.01"), 0 * H)
    assert (s.action, s.reason) == (PriceAction.WAIT, PriceReason.NO_VALID_PRICE)


def test_invalid_inputs() -> None:
    """Trader prices outside (0, 1) skip; a bad tick or slippage is a programming error."""
    assert price_copy(Side.BUY, D("1"), SEED_BOOK, T001, H).action is PriceAction.SKIP
    assert price_copy(Side.BUY, D("0"), SEED_BOOK, T001, H).reason == \
        PriceReason.INVALID_TRADER_PRICE
    with pytest.raises(ValueError):
        price_copy(Side.BUY, D("0.5"), SEED_BOOK, D("0.02"), H)
    with pytest.raises(ValueError):
        price_copy(Side.BUY, D("0.5"), SEED_BOOK, T001, H, max_slippage=D("1"))


def test_negative_age_counts_as_zero() -> None:
    """Clock skew giving a negative age prices at the trader's price."""
    d = price_copy(Side.BUY, D("0.58"), SEED_BOOK, T001, -H)
    assert (d.stage, d.price) == (Stage.TRADER, D("0.580"))


def test_zero_slippage_never_pays_more_than_trader() -> None:
    """max_slippage = 0: every stage, market conversion included, is at the trader's price."""
    for hours in (0, 6, 12, 24):
        assert limit_at(Side.BUY, "0.58", SEED_BOOK, hours, max_slippage=D(0)) == D("0.580")
    b = book(["0.57"], ["0.58"])
    m = price_copy(Side.BUY, D("0.58"), b, T001, 36 * H, max_slippage=D(0))
    assert (m.action, m.price) == (PriceAction.MARKET, D("0.580"))


def test_slippage_limit_snaps_inward_and_clamps_to_range() -> None:
    """The limit is floored (BUY) / ceiled (SELL) so it never exceeds the allowed slippage."""
    assert slippage_limit(Side.BUY, D("0.58"), T001) == D("0.609")
    assert slippage_limit(Side.SELL, D("0.58"), T001) == D("0.551")
    d = price_copy(Side.BUY, D("0.98"), book(["0.98"], ["0.99"], "0.01"), D("0.01"), 36 * H)
    assert (d.action, d.price) == (PriceAction.MARKET, D("0.99"))  # 1.029 → 1 − tick


@pytest.mark.parametrize(("live", "decision", "due"), [
    (D("0.58"), PriceDecision(PriceAction.LIMIT, D("0.58"), OrderType.GTC, Stage.TRADER,
                              "normal"), False),
    (D("0.58"), PriceDecision(PriceAction.LIMIT, D("0.581"), OrderType.GTC, Stage.TOWARD_MID,
                              "normal"), True),
    (None, PriceDecision(PriceAction.LIMIT, D("0.58"), OrderType.GTC, Stage.TRADER,
                         "normal"), True),
    (D("0.59"), PriceDecision(PriceAction.MARKET, D("0.609"), OrderType.FAK, Stage.MARKET,
                              "normal"), True),
    (D("0.59"), PriceDecision(PriceAction.WAIT, None, None, Stage.MARKET, "normal",
                              PriceReason.BEYOND_SLIPPAGE_LIMIT), False),
    (D("0.59"), PriceDecision(PriceAction.SKIP, None, None, Stage.MARKET, "normal",
                              PriceReason.BEYOND_SLIPPAGE_LIMIT), False),
])
def test_reprice_due(live: D | None, decision: PriceDecision, due: bool) -> None:
    """Replace only for a changed limit price or a market conversion."""
    assert reprice_due(live, decision) is due


# --- properties ------------------------------------------------------------------------------

TICKS = [D("0.01"), D("0.001"), D("0.005"), D("0.0025")]


@st.composite
def tick_and_book(draw: st.DrawFn) -> tuple[D, OrderBook]:
    tick = draw(st.sampled_from(TICKS))
    n = int(1 / tick)
    ks = sorted(draw(st.lists(st.integers(1, n - 1), unique=True, max_size=6)))
    split = draw(st.integers(0, len(ks)))
    bids = [str(k * tick) for k in reversed(ks[:split])]
    asks = [str(k * tick) for k in ks[split:]]
    return tick, book(bids, asks, str(tick))


ages = st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), min_size=2, max_size=8)


@settings(max_examples=400, deadline=None)
@given(tb=tick_and_book(), side=st.sampled_from([Side.BUY, Side.SELL]),
       trader=st.decimals(min_value=D("0.0001"), max_value=D("0.9999"), places=4),
       slip=st.decimals(min_value=D("0"), max_value=D("0.2"), places=3), hours=ages)
def test_schedule_invariants(tb: tuple[D, OrderBook], side: Side, trader: D, slip: D,
                             hours: list[float]) -> None:
    """On tick, in range, within slippage, no worse than the trader before 6 h, monotone in age."""
    tick, b = tb
    bound = trader * (1 + slip) if side is Side.BUY else trader * (1 - slip)
    previous: D | None = None
    for h in sorted(hours):
        d = price_copy(side, trader, b, tick, timedelta(hours=h), slip)
        if d.action in (PriceAction.WAIT, PriceAction.SKIP):
            assert d.price is None
            assert d.stage is Stage.MARKET or d.reason is PriceReason.NO_VALID_PRICE
            continue
        p = d.price
        assert p is not None and in_price_range(p, tick)
        if side is Side.BUY:
            assert p <= bound
            if h < 6:
                assert p <= trader
            assert previous is None or p >= previous
        else:
            assert p >= bound
            if h < 6:
                assert p >= trader
            assert previous is None or p <= previous
        if d.action is PriceAction.MARKET:
            assert d.order_type is OrderType.FAK and h >= 36
        previous = p


def test_market_buy_under_one_dollar_at_the_best_ask_is_skipped_not_sent() -> None:
    """1.6 shares × best ask 0.595 = 0.95 pUSD: the venue would refuse it, so no order is planned."""
    from types import SimpleNamespace

    from copying.orders import SkipCopy, plan_order
    from infra.config import Settings
    from tests.support.fake_exchange import YES
    from tests.support.fake_exchange import market as binary_market

    market = price_copy(Side.BUY, D("0.58"), SEED_BOOK, T001, 36 * H)
    ctx = SimpleNamespace(settings=Settings())
    co = SimpleNamespace(side="BUY", token_id=YES)
    follower = SimpleNamespace(signature_type=0, funder_address="0x" + "11" * 20, signer_address="0x" + "11" * 20)
    info = binary_market(tick="0.001", min_size="1")
    with pytest.raises(SkipCopy) as info_skip:
        plan_order(ctx, co, follower, info, market, D("1.6"))  # type: ignore[arg-type]
    assert info_skip.value.reason == "below_min_notional"
    plan = plan_order(ctx, co, follower, info, market, D("1.7"))  # type: ignore[arg-type]  # 1.01 pUSD
    assert plan.request.maker_amount == 1_010_000
