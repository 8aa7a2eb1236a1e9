"""Sizing against the follower's own limits (daily USD cap and open exposure, across its follows)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from copying.sizing import (
    CapReason,
    FollowerState,
    FollowRules,
    LeaderFill,
    SizedOrder,
    Skip,
    SkipReason,
    size_copy,
)
from wire.types import MarketInfo, MarketToken, MarketVersion, Side

YES = "111"
MARKET = MarketInfo(
    condition_id="0xabc", question="Will it?",
    tokens=(MarketToken(YES, "Yes", 0), MarketToken("222", "No", 1)),
    tick_size=D("0.01"), min_size=D("5"), neg_risk=False, version=MarketVersion.V1,
    accepting_orders=True, closed=False, fee_rate=D("0"), fee_exponent=D("1"),
)
RICH = FollowerState(available_usd=D("100000"))
BUY_200_AT_HALF = LeaderFill(Side.BUY, D("200"), D("0.50"), YES)  # 10 % → 20 shares, 10 USD


def rules(**kw: D | None) -> FollowRules:
    return FollowRules(copy_pct=D("10"), max_usd_per_trade=D("1000"), **kw)  # type: ignore[arg-type]


def test_no_follower_limits_leaves_the_size_alone() -> None:
    order = size_copy(BUY_200_AT_HALF, rules(), MARKET, RICH)
    assert isinstance(order, SizedOrder)
    assert (order.shares, order.reason_capped) == (D("20.00"), None)


def test_follower_daily_cap_reduces_the_size_and_names_itself() -> None:
    order = size_copy(BUY_200_AT_HALF, rules(follower_daily_cap_usd=D("20"),
                                             follower_spent_today_usd=D("14")), MARKET, RICH)
    assert isinstance(order, SizedOrder)
    assert (order.shares, order.reason_capped) == (D("12.00"), CapReason.FOLLOWER_DAILY_CAP)


def test_follower_daily_cap_spent_skips_with_its_own_reason() -> None:
    result = size_copy(BUY_200_AT_HALF, rules(follower_daily_cap_usd=D("20"),
                                              follower_spent_today_usd=D("20")), MARKET, RICH)
    assert isinstance(result, Skip)
    assert result.reason is SkipReason.FOLLOWER_DAILY_CAP_REACHED
    assert "all follows" in result.detail


def test_follower_exposure_cap_reached_skips_with_its_own_reason() -> None:
    result = size_copy(BUY_200_AT_HALF, rules(follower_exposure_cap_usd=D("50"),
                                              follower_exposure_usd=D("50.5")), MARKET, RICH)
    assert isinstance(result, Skip)
    assert result.reason is SkipReason.FOLLOWER_EXPOSURE_CAP_REACHED


def test_follower_cap_pushing_under_the_minimum_names_the_follower_cap() -> None:
    # 2 USD left buys 4 shares: under the market's 5-share minimum, so a skip naming the cap
    result = size_copy(BUY_200_AT_HALF, rules(follower_exposure_cap_usd=D("30"),
                                              follower_exposure_usd=D("28")), MARKET, RICH)
    assert isinstance(result, Skip)
    assert result.reason is SkipReason.FOLLOWER_EXPOSURE_CAP_REACHED
    assert "under the minimum" in result.detail


@pytest.mark.parametrize(("kw", "binding"), [
    ({"daily_cap_usd": D("4"), "follower_daily_cap_usd": D("6")}, CapReason.DAILY_CAP),
    ({"daily_cap_usd": D("6"), "follower_daily_cap_usd": D("4")}, CapReason.FOLLOWER_DAILY_CAP),
    ({"exposure_cap_usd": D("6"), "follower_exposure_cap_usd": D("4")},
     CapReason.FOLLOWER_EXPOSURE_CAP),
])
def test_the_tightest_limit_is_the_one_named(kw: dict[str, D], binding: CapReason) -> None:
    order = size_copy(BUY_200_AT_HALF, rules(**kw), MARKET, RICH)
    assert isinstance(order, SizedOrder)
    assert (order.shares, order.reason_capped) == (D("8.00"), binding)


def test_follower_limits_never_restrict_a_sell() -> None:
    sell = LeaderFill(Side.SELL, D("100"), D("0.50"), YES)
    held = FollowerState(available_usd=D("0"), held_shares=D("50"), trader_shares_before=D("100"))
    order = size_copy(sell, rules(follower_daily_cap_usd=D("0"), follower_exposure_cap_usd=D("0"),
                                  follower_exposure_usd=D("99")), MARKET, held)
    assert isinstance(order, SizedOrder)
    assert order.shares == D("50.00")


def test_negative_follower_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="follower_daily_cap_usd"):
        rules(follower_daily_cap_usd=D("-1"))
    with pytest.raises(ValueError, match="≥ 0"):
        rules(follower_exposure_usd=D("-1"))
