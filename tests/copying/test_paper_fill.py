"""Contract of paper_fill.py: book walking, FOK/FAK/GTC semantics, resting fills."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copying.paper_fill import crossing_liquidity, fill_resting, simulate_fill
from tests.support.paths import FIXTURES
from wire.types import BookLevel, OrderBook, OrderType, Side

FIXTURES = FIXTURES


def fixture_book() -> OrderBook:
    """fixtures/clob_book.json normalised best-first (the wire sends worst-first)."""
    raw = json.loads((FIXTURES / "clob_book.json").read_text())

    def levels(rows: list[dict[str, str]]) -> tuple[BookLevel, ...]:
        return tuple(BookLevel(D(r["price"]), D(r["size"])) for r in reversed(rows))

    return OrderBook(token_id=raw["asset_id"], bids=levels(raw["bids"]),
                     asks=levels(raw["asks"]), tick_size=D(raw["tick_size"]),
                     min_size=D(raw["min_order_size"]), neg_risk=raw["neg_risk"])


BOOK = fixture_book()


def test_fixture_is_best_first() -> None:
    """The fixture's best bid is 0.64 and best ask 0.65 once normalised."""
    assert (BOOK.best_bid, BOOK.best_ask) == (D("0.64"), D("0.65"))


def test_buy_walks_asks_best_first_at_level_prices() -> None:
    """A BUY takes the cheapest asks up to its limit, each at the resting level's price."""
    f = simulate_fill(BOOK, Side.BUY, D("0.66"), D("500"), OrderType.GTC)
    assert f.fills == ((D("0.65"), D("288.62")), (D("0.66"), D("211.38")))
    assert (f.filled_shares, f.resting_shares) == (D("500.00"), D("0.00"))
    assert f.notional == D("327.1138") and f.avg_price == D("0.6542276")


def test_sell_walks_bids_best_first() -> None:
    """A SELL takes the highest bids down to its limit."""
    f = simulate_fill(BOOK, Side.SELL, D("0.63"), D("1000"), OrderType.FAK)
    assert f.fills == ((D("0.64"), D("402.17")), (D("0.63"), D("597.83")))
    assert f.filled_shares == D("1000.00") and f.resting_shares == 0


def test_gtc_rests_the_remainder() -> None:
    """GTC fills what crosses (1788.62 up to 0.66) and rests the rest."""
    f = simulate_fill(BOOK, Side.BUY, D("0.66"), D("2000"), OrderType.GTC)
    assert (f.filled_shares, f.resting_shares) == (D("1788.62"), D("211.38"))


def test_gtd_behaves_like_gtc() -> None:
    """GTD is a resting order too: same fill and remainder as GTC."""
    assert simulate_fill(BOOK, Side.BUY, D("0.66"), D("2000"), OrderType.GTD) == \
        simulate_fill(BOOK, Side.BUY, D("0.66"), D("2000"), OrderType.GTC)


def test_fak_cancels_the_remainder() -> None:
    """FAK fills what it can and rests nothing."""
    f = simulate_fill(BOOK, Side.BUY, D("0.66"), D("2000"), OrderType.FAK)
    assert (f.filled_shares, f.resting_shares) == (D("1788.62"), D("0"))


def test_fok_is_all_or_nothing() -> None:
    """FOK fills nothing unless the whole size crosses; exactly enough fills completely."""
    none = simulate_fill(BOOK, Side.BUY, D("0.66"), D("1788.63"), OrderType.FOK)
    assert (none.filled_shares, none.resting_shares, none.fills, none.avg_price) == (
        D("0"), D("0"), (), None)
    full = simulate_fill(BOOK, Side.BUY, D("0.66"), D("1788.62"), OrderType.FOK)
    assert full.filled_shares == D("1788.62") and full.resting_shares == 0


def test_non_crossing_limit() -> None:
    """A limit that does not cross fills nothing: GTC rests it all, FAK rests nothing."""
    gtc = simulate_fill(BOOK, Side.BUY, D("0.64"), D("10"), OrderType.GTC)
    assert (gtc.filled_shares, gtc.resting_shares, gtc.avg_price) == (D("0"), D("10"), None)
    fak = simulate_fill(BOOK, Side.SELL, D("0.65"), D("10"), OrderType.FAK)
    assert (fak.filled_shares, fak.resting_shares) == (D("0"), D("0"))


def test_empty_side_fills_nothing() -> None:
    """No asks: a BUY fills nothing."""
    empty = OrderBook("1", BOOK.bids, (), D("0.01"), D("5"))
    assert simulate_fill(empty, Side.BUY, D("0.99"), D("5"), OrderType.FAK).filled_shares == 0


def test_resting_buy_fills_at_its_own_price_when_asks_cross() -> None:
    """A resting paper BUY @ 0.66 fills at 0.66 (maker price) up to the size asked at ≤ 0.66."""
    f = fill_resting(BOOK, Side.BUY, D("0.66"), D("100"))
    assert (f.fills, f.resting_shares) == (((D("0.66"), D("100")),), D("0"))
    big = fill_resting(BOOK, Side.BUY, D("0.66"), D("2000"))
    assert (big.filled_shares, big.resting_shares, big.avg_price) == (
        D("1788.62"), D("211.38"), D("0.66"))


def test_resting_sell_and_untouched_orders() -> None:
    """A resting SELL fills when bids reach it; a limit the book does not reach stays whole."""
    f = fill_resting(BOOK, Side.SELL, D("0.64"), D("500"))
    assert (f.filled_shares, f.resting_shares, f.avg_price) == (
        D("402.17"), D("97.83"), D("0.64"))
    untouched = fill_resting(BOOK, Side.SELL, D("0.645"), D("50"))
    assert (untouched.filled_shares, untouched.resting_shares, untouched.fills) == (
        D("0"), D("50"), ())


def test_non_positive_size_is_an_error() -> None:
    """Zero or negative sizes are programming errors."""
    with pytest.raises(ValueError):
        simulate_fill(BOOK, Side.BUY, D("0.66"), D("0"), OrderType.GTC)
    with pytest.raises(ValueError):
        fill_resting(BOOK, Side.BUY, D("0.66"), D("-1"))


# --- properties ------------------------------------------------------------------------------

@st.composite
def books(draw: st.DrawFn) -> OrderBook:
    ks = sorted(draw(st.lists(st.integers(1, 99), unique=True, max_size=8)))
    split = draw(st.integers(0, len(ks)))
    size = st.decimals(min_value=D("0.01"), max_value=D("500"), places=2)
    bids = tuple(BookLevel(D(k) / 100, draw(size)) for k in reversed(ks[:split]))
    asks = tuple(BookLevel(D(k) / 100, draw(size)) for k in ks[split:])
    return OrderBook("1", bids, asks, D("0.01"), D("5"))


@settings(max_examples=400, deadline=None)
@given(b=books(), side=st.sampled_from([Side.BUY, Side.SELL]),
       limit=st.integers(1, 99).map(lambda k: D(k) / 100),
       shares=st.decimals(min_value=D("0.01"), max_value=D("2000"), places=2),
       order_type=st.sampled_from(list(OrderType)))
def test_fill_invariants(b: OrderBook, side: Side, limit: D, shares: D,
                         order_type: OrderType) -> None:
    """Fills respect the limit, go best-first, never exceed size or liquidity; TIF holds."""
    f = simulate_fill(b, side, limit, shares, order_type)
    assert f.filled_shares + f.resting_shares <= shares
    assert f.filled_shares <= crossing_liquidity(b, side, limit)
    assert f.filled_shares == sum((s for _, s in f.fills), D(0))
    prices = [p for p, _ in f.fills]
    for p in prices:
        assert (p <= limit) if side is Side.BUY else (p >= limit)
    assert prices == sorted(prices, reverse=side is Side.SELL)
    if order_type in (OrderType.FOK, OrderType.FAK):
        assert f.resting_shares == 0
    else:
        assert f.filled_shares + f.resting_shares == shares
    if order_type is OrderType.FOK:
        assert f.filled_shares in (D(0), shares)
    if f.filled_shares:
        assert f.avg_price is not None and min(prices) <= f.avg_price <= max(prices)


@settings(max_examples=300, deadline=None)
@given(b=books(), side=st.sampled_from([Side.BUY, Side.SELL]),
       limit=st.integers(1, 99).map(lambda k: D(k) / 100),
       remaining=st.decimals(min_value=D("0.01"), max_value=2000, places=2))
def test_resting_fill_invariants(b: OrderBook, side: Side, limit: D, remaining: D) -> None:
    """A resting fill is at the order's own price and conserves filled + resting = remaining."""
    f = fill_resting(b, side, limit, remaining)
    assert f.filled_shares + f.resting_shares == remaining
    assert f.filled_shares <= crossing_liquidity(b, side, limit)
    assert all(p == limit for p, _ in f.fills)
