"""Contract of sizing.py: copy-order sizes, caps, minimums, sell fractions and the dust rule."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copying.sizing import (
    CapReason,
    FollowerState,
    FollowRules,
    LeaderFill,
    SizedOrder,
    Skip,
    SkipReason,
    floor_lot,
    remaining_cap,
    shares_affordable,
    size_copy,
)
from wire.fees import taker_fee
from wire.types import MarketInfo, MarketToken, MarketVersion, Side

YES, NO = "111", "222"


def market(min_size: str = "5", *, closed: bool = False, accepting: bool = True,
           fee_rate: str = "0", fee_exponent: str = "1") -> MarketInfo:
    return MarketInfo(
        condition_id="0xabc", question="Will it?",
        tokens=(MarketToken(YES, "Yes", 0), MarketToken(NO, "No", 1)),
        tick_size=D("0.01"), min_size=D(min_size), neg_risk=False, version=MarketVersion.V1,
        accepting_orders=accepting, closed=closed, fee_rate=D(fee_rate),
        fee_exponent=D(fee_exponent),
    )


def buy(shares: str, price: str, token: str = YES, combo: bool = False) -> LeaderFill:
    return LeaderFill(Side.BUY, D(shares), D(price), token, combo)


def sell(shares: str, price: str, token: str = YES) -> LeaderFill:
    return LeaderFill(Side.SELL, D(shares), D(price), token)


def rules(pct: str = "5", max_trade: str = "1000", **kw: D | None) -> FollowRules:
    return FollowRules(copy_pct=D(pct), max_usd_per_trade=D(max_trade), **kw)  # type: ignore[arg-type]


RICH = FollowerState(available_usd=D("100000"))


def sized(result: SizedOrder | Skip) -> SizedOrder:
    assert isinstance(result, SizedOrder), result
    return result


def skipped(result: SizedOrder | Skip) -> Skip:
    assert isinstance(result, Skip), result
    return result


# --- BUY -------------------------------------------------------------------------------------

def test_seed_example_buy_five_percent_of_100_at_058() -> None:
    """Seed: trader buys 100 @ 0.58, follower at 5 % buys 5 shares ($2.90), uncapped."""
    order = sized(size_copy(buy("100", "0.58"), rules("5"), market(), RICH))
    assert (order.shares, order.notional, order.reason_capped) == (D("5.00"), D("2.9000"), None)


def test_buy_size_is_floored_to_hundredths() -> None:
    """Proportional sizes are rounded down to the 0.01 lot, never up."""
    order = sized(size_copy(buy("123.456", "0.5"), rules("7"), market(), RICH))
    assert order.shares == D("8.64")  # 8.64192 floored


def test_buy_capped_by_max_usd_per_trade() -> None:
    """A BUY never spends more than max_usd_per_trade at the sizing price."""
    order = sized(size_copy(buy("1000", "0.5"), rules("10", "20"), market(), RICH))
    assert (order.shares, order.notional, order.reason_capped) == (
        D("40.00"), D("20.0000"), CapReason.MAX_TRADE)


def test_buy_max_trade_cap_rounds_down_on_awkward_prices() -> None:
    """Cap division rounds down so shares × price stays ≤ the cap (7 / 0.57 = 12.2807…)."""
    order = sized(size_copy(buy("1000", "0.57"), rules("10", "7"), market(), RICH))
    assert order.shares == D("12.28") and order.notional <= D("7")


def test_buy_capped_by_available_balance() -> None:
    """A BUY never spends more pUSD than the follower has."""
    order = sized(size_copy(buy("1000", "0.5"), rules("10"), market(),
                            FollowerState(available_usd=D("10"))))
    assert (order.shares, order.reason_capped) == (D("20.00"), CapReason.BALANCE)


def test_buy_balance_cap_keeps_headroom_for_taker_fee() -> None:
    """On a fee market the balance covers shares × price plus the worst-case taker fee."""
    m = market(fee_rate="0.05")
    follower = FollowerState(available_usd=D("10.25"))
    order = sized(size_copy(buy("1000", "0.5"), rules("10"), m, follower))
    assert order.shares == D("20.00")  # 20 × (0.5 + 0.05 × 0.25) = 10.25 exactly
    assert order.notional + taker_fee(order.shares, D("0.5"), D("0.05")) <= D("10.25")


def test_buy_capped_by_remaining_daily_cap() -> None:
    """A BUY fits in what is left of the daily USD cap."""
    r = rules("10", daily_cap_usd=D("100"), spent_today_usd=D("95"))
    order = sized(size_copy(buy("1000", "0.5"), r, market(), RICH))
    assert (order.shares, order.reason_capped) == (D("10.00"), CapReason.DAILY_CAP)


def test_buy_skipped_when_daily_cap_spent() -> None:
    """Once the daily cap is used up, BUYs are skipped with daily_cap_reached."""
    r = rules("10", daily_cap_usd=D("100"), spent_today_usd=D("100"))
    assert skipped(size_copy(buy("1000", "0.5"), r, market(), RICH)).reason == \
        SkipReason.DAILY_CAP_REACHED


def test_buy_capped_by_market_exposure() -> None:
    """A BUY fits in what is left of the per-market exposure cap."""
    r = rules("10", exposure_cap_usd=D("50"), exposure_usd=D("45"))
    order = sized(size_copy(buy("1000", "0.5"), r, market(), RICH))
    assert (order.shares, order.reason_capped) == (D("10.00"), CapReason.EXPOSURE_CAP)
    full = rules("10", exposure_cap_usd=D("50"), exposure_usd=D("50"))
    assert skipped(size_copy(buy("1000", "0.5"), full, market(), RICH)).reason == \
        SkipReason.EXPOSURE_CAP_REACHED


def test_tightest_cap_wins() -> None:
    """With several caps, the smallest one binds and is the one reported."""
    r = rules("10", "30", daily_cap_usd=D("100"), spent_today_usd=D("88"))
    order = sized(size_copy(buy("1000", "0.5"), r, market(),
                            FollowerState(available_usd=D("15"))))
    assert (order.shares, order.reason_capped) == (D("24.00"), CapReason.DAILY_CAP)


def test_buy_below_one_dollar_is_skipped() -> None:
    """Seed: a proportional BUY under $1 is ignored (below_min_notional); $1.02 passes."""
    result = skipped(size_copy(buy("30", "0.3"), rules("10"), market("1"), RICH))
    assert result.reason == SkipReason.BELOW_MIN_NOTIONAL  # 3 shares × 0.3 = $0.90
    assert sized(size_copy(buy("30", "0.34"), rules("10"), market("1"), RICH)).shares == D("3.00")


def test_buy_below_market_min_size_is_skipped() -> None:
    """A BUY under the market's min size (5 shares) is skipped even when worth over $1."""
    result = skipped(size_copy(buy("80", "0.9"), rules("5"), market("5"), RICH))
    assert result.reason == SkipReason.BELOW_MIN_SIZE and "4.00" in result.detail


def test_buy_that_rounds_to_zero_is_zero_size() -> None:
    """A proportional size that floors to 0 shares is skipped as zero_size."""
    assert skipped(size_copy(buy("0.1", "0.5"), rules("5"), market(), RICH)).reason == \
        SkipReason.ZERO_SIZE


def test_cap_that_pushes_under_minimum_is_named() -> None:
    """When the balance is what makes an otherwise valid BUY too small, say insufficient_balance."""
    result = skipped(size_copy(buy("1000", "0.5"), rules("10"), market(),
                               FollowerState(available_usd=D("1.5"))))
    assert result.reason == SkipReason.INSUFFICIENT_BALANCE
    none_left = skipped(size_copy(buy("1000", "0.5"), rules("10"), market(),
                                  FollowerState(available_usd=D("0"))))
    assert none_left.reason == SkipReason.INSUFFICIENT_BALANCE


def test_tiny_max_trade_setting_reports_min_size_with_cause() -> None:
    """A max_usd_per_trade too small for the min size skips as below_min_size and says why."""
    result = skipped(size_copy(buy("1000", "0.5"), rules("10", "2"), market(), RICH))
    assert result.reason == SkipReason.BELOW_MIN_SIZE and "max_usd_per_trade" in result.detail


def test_buy_price_band() -> None:
    """BUYs outside the follow's [min_price, max_price] band are skipped; edges are inside."""
    band = rules("10", min_price=D("0.1"), max_price=D("0.9"))
    assert skipped(size_copy(buy("1000", "0.95"), band, market(), RICH)).reason == \
        SkipReason.PRICE_OUT_OF_BAND
    assert skipped(size_copy(buy("1000", "0.05"), band, market(), RICH)).reason == \
        SkipReason.PRICE_OUT_OF_BAND
    assert isinstance(size_copy(buy("1000", "0.9"), band, market(), RICH), SizedOrder)


def test_sizing_price_override_keeps_caps_at_worst_price() -> None:
    """Caps and notional use the given sizing price (e.g. the slippage limit), not the trader's."""
    order = sized(size_copy(buy("1000", "0.5"), rules("10", "21"), market(), RICH,
                            price=D("0.525")))
    assert order.shares == D("40.00") and order.notional == D("21.00000")


@pytest.mark.parametrize(("fill", "m", "reason"), [
    (buy("100", "0.5", combo=True), market(), SkipReason.COMBO),
    (buy("100", "0.5"), market(closed=True), SkipReason.MARKET_CLOSED),
    (buy("100", "0.5"), market(accepting=False), SkipReason.NOT_ACCEPTING_ORDERS),
    (buy("100", "0.5", token="999"), market(), SkipReason.UNKNOWN_TOKEN),
    (buy("100", "1"), market(), SkipReason.INVALID_FILL),
    (buy("0", "0.5"), market(), SkipReason.INVALID_FILL),
    (sell("100", "0.5"), market(closed=True), SkipReason.MARKET_CLOSED),
])
def test_unsizable_fills_are_skipped(fill: LeaderFill, m: MarketInfo, reason: SkipReason) -> None:
    """Combo, closed, not-accepting, foreign-token and malformed fills are skipped by reason."""
    follower = FollowerState(available_usd=D("1000"), held_shares=D("100"))
    assert skipped(size_copy(fill, rules("50"), m, follower)).reason == reason


@pytest.mark.parametrize("kw", [
    {"copy_pct": D("0")}, {"copy_pct": D("100.01")}, {"copy_pct": D("-1")},
    {"max_usd_per_trade": D("0")},
    {"min_price": D("0.8"), "max_price": D("0.2")},
    {"daily_cap_usd": D("-1")},
])
def test_follow_rules_reject_bad_settings(kw: dict[str, D]) -> None:
    """copy_pct must be in (0, 100], max trade positive, band ordered, caps non-negative."""
    base = {"copy_pct": D("5"), "max_usd_per_trade": D("10")}
    with pytest.raises(ValueError):
        FollowRules(**(base | kw))


def test_copy_pct_of_100_is_allowed() -> None:
    """copy_pct = 100 copies the trader one for one."""
    assert sized(size_copy(buy("10", "0.5"), rules("100"), market(), RICH)).shares == D("10.00")


# --- SELL ------------------------------------------------------------------------------------

def test_sell_follows_trader_sold_fraction() -> None:
    """Trader sells 50 of 200 (25 %): follower holding 40 (20 %) sells 10."""
    f = FollowerState(available_usd=D("0"), held_shares=D("40"), trader_shares_before=D("200"))
    order = sized(size_copy(sell("50", "0.85"), rules("20"), market(), f))
    assert (order.shares, order.notional, order.reason_capped) == (D("10.00"), D("8.5000"), None)


def test_seed_example_sell_four_of_eighty() -> None:
    """Seed: trader sells 80 @ 0.85, position unknown, 5 % → follower sells 4 (min size 1)."""
    f = FollowerState(available_usd=D("0"), held_shares=D("5"))
    order = sized(size_copy(sell("80", "0.85"), rules("5"), market("1"), f))
    assert (order.shares, order.notional) == (D("4.00"), D("3.4000"))


def test_plan_example_sells_four_and_keeps_one() -> None:
    """The plan: 5 % of a leader who sells 80 of his 100 → sell 4 (marketable: under the min
    size 5 but worth $3.40), keep 1; the new target is 1."""
    f = FollowerState(available_usd=D("0"), held_shares=D("5"), trader_shares_before=D("100"),
                      target_shares=D("5"))
    order = sized(size_copy(sell("80", "0.85"), rules("5"), market("5"), f,
                            market_price=D("0.85")))
    assert (order.shares, order.marketable, order.target) == (D("4.00"), True, D("1"))


def test_issue_example_sells_eight_and_keeps_two() -> None:
    """10 held at 10 %, the leader sells 80 % → a limit sale of 8, 2 kept (not all 10)."""
    f = FollowerState(available_usd=D("0"), held_shares=D("10"), trader_shares_before=D("100"),
                      target_shares=D("10"))
    order = sized(size_copy(sell("80", "0.5"), rules("10"), market("5"), f, market_price=D("0.5")))
    assert (order.shares, order.marketable, order.target) == (D("8.00"), False, D("2"))


def test_sell_never_exceeds_holdings() -> None:
    """A fallback copy% sale larger than the holding is capped at what is held."""
    f = FollowerState(available_usd=D("0"), held_shares=D("40"))
    order = sized(size_copy(sell("10000", "0.5"), rules("5"), market(), f))
    assert (order.shares, order.reason_capped) == (D("40.00"), CapReason.HOLDINGS)


def test_sell_without_holdings_is_skipped() -> None:
    """Nothing held in this token for this follow → no_holdings."""
    f = FollowerState(available_usd=D("100"))
    assert skipped(size_copy(sell("10", "0.5"), rules("5"), market(), f)).reason == \
        SkipReason.NO_HOLDINGS
    dust = FollowerState(available_usd=D("100"), held_shares=D("0.004"))
    assert skipped(size_copy(sell("10", "0.5"), rules("5"), market(), dust)).reason == \
        SkipReason.NO_HOLDINGS


def test_trader_full_close_sells_everything_held() -> None:
    """When the trader sells their whole position the follower sells all it holds (floored)."""
    f = FollowerState(available_usd=D("0"), held_shares=D("10.123456"),
                      trader_shares_before=D("300"))
    order = sized(size_copy(sell("300", "0.4"), rules("5"), market(), f))
    assert (order.shares, order.reason_capped, order.target) == (D("10.12"), CapReason.CLOSE_OUT, 0)


def test_trader_sells_more_than_known_position_is_full_close() -> None:
    """A sale above the trader's known position (stale snapshot) counts as 100 %, not more."""
    f = FollowerState(available_usd=D("0"), held_shares=D("20"), trader_shares_before=D("100"))
    assert sized(size_copy(sell("150", "0.4"), rules("5"), market(), f)).shares == D("20.00")


def test_sell_ignores_buy_only_limits() -> None:
    """Band, daily cap, exposure cap, max trade and balance do not block an exit."""
    r = rules("100", "1", min_price=D("0.5"), max_price=D("0.6"), daily_cap_usd=D("1"),
              spent_today_usd=D("1"), exposure_cap_usd=D("1"), exposure_usd=D("5"))
    f = FollowerState(available_usd=D("0"), held_shares=D("100"), trader_shares_before=D("100"))
    order = sized(size_copy(sell("50", "0.95"), r, market(), f))
    assert order.shares == D("50.00")


def test_sell_below_one_dollar_is_allowed() -> None:
    """A limit SELL of at least the min size has no $1 floor (documented for marketable BUYs)."""
    f = FollowerState(available_usd=D("0"), held_shares=D("10"), trader_shares_before=D("10"))
    order = sized(size_copy(sell("10", "0.05"), rules("5"), market(), f))
    assert order.shares == D("10.00") and order.notional == D("0.5000") and not order.marketable


@pytest.mark.parametrize(("held", "before", "sold", "bid", "expected", "target"), [
    ("12", "100", "60", "0.5", "7.20", "4.8"),    # 7.2 ≥ 5: limit; 4.8 kept (the target)
    ("100", "100", "3", "0.5", None, "97"),       # 3 < 5, $1.50: marketable
    ("8", "100", "40", "0.5", None, "4.8"),       # 3.2 < 5 but $1.60: marketable
    ("8", "100", "40", "0.2", "kept", "4.8"),     # 3.2 × 0.2 = $0.64: kept
    ("4", "100", "100", "0.5", None, "0"),        # leader closed: 4 held < 5, $2: marketable
    ("4", "100", "100", "0.1", "kept", "0"),      # leader closed, worth $0.40: kept (redeem)
])
def test_remainders_under_the_minimum(held: str, before: str, sold: str, bid: str,
                                      expected: str | None, target: str) -> None:
    """A sale under the min size is marketable when worth ≥ $1, else kept; the target moves."""
    f = FollowerState(available_usd=D("0"), held_shares=D(held), trader_shares_before=D(before),
                      target_shares=D(held))
    result = size_copy(sell(sold, "0.5"), rules("100"), market("5"), f, market_price=D(bid))
    if expected == "kept":
        assert skipped(result).reason == SkipReason.REMAINDER_KEPT
        assert skipped(result).target == D(target)
        return
    order = sized(result)
    assert order.target == D(target)
    if expected is None:
        assert order.marketable and order.shares == floor_lot(D(held) - D(target))
    else:
        assert not order.marketable and order.shares == D(expected)


def test_owed_remainder_rides_with_the_next_sell() -> None:
    """A kept remainder (target 9.5 while 10 held) is sold with the leader's next sell."""
    f = FollowerState(available_usd=D("0"), held_shares=D("10"), trader_shares_before=D("190"),
                      target_shares=D("9.5"))
    order = sized(size_copy(sell("100", "0.5"), rules("5"), market("5"), f, market_price=D("0.5")))
    assert order.target == D("4.5") and order.shares == D("5.50")


def test_target_converges_to_copy_pct_of_the_leader() -> None:
    """A target above copy % of what the leader keeps (an exit missed earlier) is brought down."""
    f = FollowerState(available_usd=D("0"), held_shares=D("30"), trader_shares_before=D("100"),
                      target_shares=D("30"))
    order = sized(size_copy(sell("50", "0.5"), rules("10"), market("5"), f, market_price=D("0.5")))
    assert order.target == D("5") and order.shares == D("25.00")


def test_at_target_is_a_skip_with_the_target() -> None:
    """An exit that leaves the holding at or under its target sells nothing."""
    f = FollowerState(available_usd=D("0"), held_shares=D("2"), trader_shares_before=D("100"),
                      target_shares=D("10"))
    result = skipped(size_copy(sell("10", "0.5"), rules("10"), market("5"), f))
    assert result.reason == SkipReason.AT_TARGET and result.target == D("9")


def test_yes_and_no_hedge_are_independent_positions() -> None:
    """Seed: a trader hedging YES and NO gets both copied; selling NO leaves YES untouched."""
    m = market()
    yes = sized(size_copy(buy("200", "0.6", YES), rules("5"), m, RICH))
    no = sized(size_copy(buy("100", "0.4", NO), rules("5"), m, RICH))
    assert (yes.shares, no.shares) == (D("10.00"), D("5.00"))
    sell_no = sized(size_copy(sell("100", "0.45", NO), rules("5"), m,
                              FollowerState(D("0"), held_shares=no.shares,
                                            trader_shares_before=D("100"))))
    assert sell_no.reason_capped == CapReason.CLOSE_OUT
    assert sell_no.shares == D("5.00")
    yes_untouched = size_copy(sell("100", "0.45", NO), rules("5"), m,
                              FollowerState(D("0"), held_shares=D("0")))
    assert skipped(yes_untouched).reason == SkipReason.NO_HOLDINGS


def test_helpers() -> None:
    """floor_lot, shares_affordable and remaining_cap round down and never go negative."""
    assert floor_lot(D("1.999")) == D("1.99") and floor_lot(D("-1")) == D("0.00")
    assert shares_affordable(D("1"), D("3")) == D("0.33")
    assert shares_affordable(D("-5"), D("0.5")) == D("0.00")
    assert remaining_cap(None, D("5")) is None and remaining_cap(D("3"), D("5")) == 0


# --- properties ------------------------------------------------------------------------------

prices = st.decimals(min_value=D("0.001"), max_value=D("0.999"), places=3)
shares_st = st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2)
usd = st.decimals(min_value=D("0"), max_value=D("5000"), places=2)
pcts = st.decimals(min_value=D("0.01"), max_value=D("100"), places=2)
fee_rates = st.sampled_from(["0", "0.02", "0.05", "0.07"])
min_sizes = st.sampled_from(["1", "5", "15"])


@settings(max_examples=300, deadline=None)
@given(shares=shares_st, price=prices, pct=pcts, max_trade=st.decimals("0.01", "5000", places=2),
       balance=usd, daily=st.none() | usd, spent=usd, cap=st.none() | usd, exposure=usd,
       rate=fee_rates, min_size=min_sizes)
def test_buy_respects_every_limit(shares: D, price: D, pct: D, max_trade: D, balance: D,
                                  daily: D | None, spent: D, cap: D | None, exposure: D,
                                  rate: str, min_size: str) -> None:
    """A sized BUY is 2-dp, ≥ minimums, ≤ proportional, ≤ max trade, caps and balance incl. fee."""
    r = FollowRules(pct, max_trade, daily_cap_usd=daily, spent_today_usd=spent,
                    exposure_cap_usd=cap, exposure_usd=exposure)
    result = size_copy(buy(str(shares), str(price)), r, market(min_size, fee_rate=rate),
                       FollowerState(available_usd=balance))
    if isinstance(result, Skip):
        assert result.reason in set(SkipReason)
        return
    s = result.shares
    assert s == s.quantize(D("0.01")) and s >= D(min_size) and result.notional >= 1
    assert result.notional == s * price
    assert s <= shares * pct / 100
    assert s * price <= max_trade
    assert s * price + taker_fee(s, price, D(rate)) <= balance
    if daily is not None:
        assert s * price <= daily - spent
    if cap is not None:
        assert s * price <= cap - exposure


@settings(max_examples=300, deadline=None)
@given(sold=shares_st, price=prices, pct=pcts,
       held=st.decimals("0", "5000", places=6), before=st.none() | shares_st,
       min_size=min_sizes)
def test_sized_sell_within_holdings(sold: D, price: D, pct: D, held: D, before: D | None,
                                     min_size: str) -> None:
    """A sized SELL is 2-dp, ≤ held, never below the new target; under the min size only as a
    marketable order worth ≥ $1; the target never grows."""
    f = FollowerState(available_usd=D("0"), held_shares=held, trader_shares_before=before)
    result = size_copy(sell(str(sold), str(price)), rules(str(pct)), market(min_size), f,
                       market_price=price)
    assert result.target is not None and D(0) <= result.target <= held
    if isinstance(result, Skip):
        return
    s = result.shares
    assert s == s.quantize(D("0.01")) and D(0) < s <= held
    assert floor_lot(held) - s >= floor_lot(result.target) - D("0.01")
    assert s >= D(min_size) or (result.marketable and s * price >= 1)


def _size_of(result: SizedOrder | Skip) -> D:
    return result.shares if isinstance(result, SizedOrder) else D(0)


@settings(max_examples=300, deadline=None)
@given(shares=shares_st, price=prices, p1=pcts, p2=pcts, max_trade=st.decimals("1", "5000"),
       balance=usd, min_size=min_sizes)
def test_buy_monotone_in_copy_pct(shares: D, price: D, p1: D, p2: D, max_trade: D,
                                  balance: D, min_size: str) -> None:
    """A larger copy_pct never gives a smaller BUY (a skip counts as 0)."""
    lo, hi = sorted((p1, p2))
    m, f = market(min_size), FollowerState(available_usd=balance)
    fill = buy(str(shares), str(price))
    assert _size_of(size_copy(fill, FollowRules(lo, max_trade), m, f)) <= \
        _size_of(size_copy(fill, FollowRules(hi, max_trade), m, f))


@settings(max_examples=300, deadline=None)
@given(sold=shares_st, p1=pcts, p2=pcts, held=st.decimals("0", "500", places=2),
       min_size=min_sizes)
def test_fallback_sell_monotone_in_copy_pct(sold: D, p1: D, p2: D, held: D,
                                            min_size: str) -> None:
    """With the trader's position unknown, a larger copy_pct never sells less (skip = 0)."""
    lo, hi = sorted((p1, p2))
    m, f = market(min_size), FollowerState(available_usd=D("0"), held_shares=held)
    fill = sell(str(sold), "0.5")
    assert _size_of(size_copy(fill, rules(str(lo)), m, f)) <= \
        _size_of(size_copy(fill, rules(str(hi)), m, f))
