"""Event-level risk: caps per event, category and resolution window, and the daily loss stop,
as pure sizing and through the executor's signing transaction (fake exchange, both databases)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from copying.event_risk import MarketMeta, risk_use
from copying.sizing import CapReason, FollowerState, FollowRules, LeaderFill, SizedOrder, Skip, SkipReason, size_copy
from infra.db import session_scope
from models import CopyStatus, Follower, FollowerFill, FollowerPosition, Market
from tests.support.dbfixtures import Database
from tests.support.fake_exchange import market
from tests.support.harness import T0, Harness
from wire.types import MarketInfo, MarketToken, MarketVersion, Side

D = Decimal
YES = "111"
MARKET = MarketInfo(condition_id="0xabc", question="Q", tokens=(MarketToken(YES, "Yes", 0),),
                    tick_size=D("0.01"), min_size=D(5), neg_risk=True, version=MarketVersion.V1,
                    accepting_orders=True, closed=False)
RICH = FollowerState(available_usd=D(100000))
BUY = LeaderFill(Side.BUY, D(200), D("0.50"), YES)  # 10 % → 20 shares, 10 USD


def rules(**kw: object) -> FollowRules:
    return FollowRules(copy_pct=D(10), max_usd_per_trade=D(1000), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("cap", "used", "reason", "capped"), [
    ("event_cap_usd", "event_exposure_usd", SkipReason.EVENT_CAP_REACHED, CapReason.EVENT_CAP),
    ("category_cap_usd", "category_exposure_usd", SkipReason.CATEGORY_CAP_REACHED, CapReason.CATEGORY_CAP),
    ("window_cap_usd", "window_exposure_usd", SkipReason.WINDOW_CAP_REACHED, CapReason.WINDOW_CAP),
])
def test_each_event_level_cap_shrinks_then_skips_naming_itself(cap: str, used: str, reason: SkipReason,
                                                             capped: CapReason) -> None:
    """6 USD left under the cap → 12 shares; nothing left → skipped with the cap's own reason;
    a cap that pushes the size under the minimum is named too."""
    shrunk = size_copy(BUY, rules(**{cap: D(20), used: D(14)}), MARKET, RICH)
    assert isinstance(shrunk, SizedOrder) and (shrunk.shares, shrunk.reason_capped) == (D(12), capped)
    full = size_copy(BUY, rules(**{cap: D(20), used: D(20)}), MARKET, RICH)
    assert isinstance(full, Skip) and full.reason is reason and reason.value in full.detail
    tiny = size_copy(BUY, rules(**{cap: D(20), used: D(18)}), MARKET, RICH)
    assert isinstance(tiny, Skip) and tiny.reason is reason


def test_daily_loss_stop_blocks_buys_but_not_sells() -> None:
    """A realized loss at the stop skips BUYs (daily_loss_stop); under it they go through."""
    stop = size_copy(BUY, rules(daily_loss_stop_usd=D(50), realized_loss_today_usd=D(50)), MARKET, RICH)
    assert isinstance(stop, Skip) and stop.reason is SkipReason.DAILY_LOSS_STOP
    assert "00:00 UTC" in stop.detail
    ok = size_copy(BUY, rules(daily_loss_stop_usd=D(50), realized_loss_today_usd=D(49)), MARKET, RICH)
    assert isinstance(ok, SizedOrder)
    sell = size_copy(LeaderFill(Side.SELL, D(100), D("0.5"), YES),
                     rules(daily_loss_stop_usd=D(1), realized_loss_today_usd=D(99)), MARKET,
                     FollowerState(available_usd=D(0), held_shares=D(20), trader_shares_before=D(200)))
    assert isinstance(sell, SizedOrder)


def test_risk_use_groups_by_event_category_and_window() -> None:
    """Two outcomes of one neg-risk event are one risk; category and end date group across events."""
    end = datetime(2026, 12, 31, tzinfo=UTC)
    metas = {
        "a": MarketMeta("nr-1", "Politics", end),
        "b": MarketMeta("nr-1", "Politics", end + timedelta(hours=30)),
        "c": MarketMeta("event:9", "Sports", end + timedelta(hours=2)),
        "d": MarketMeta("", "", None),
    }
    usd = {"a": D(10), "b": D(5), "c": D(7), "d": D(100)}
    use = risk_use(usd, metas, "a", metas["a"], timedelta(hours=24))
    assert (use.event, use.category, use.window) == (D(15), D(15), D(17))
    alone = risk_use(usd, metas, "d", metas["d"], timedelta(hours=24))
    assert (alone.event, alone.category, alone.window) == (D(100), D(0), D(0))


# --- through the executor ------------------------------------------------------------------------

EVENT = "0x" + "ee" * 32
END = T0 + timedelta(days=3)


def rigged(database: Database, fernet_key: str) -> Harness:
    """The executor harness on a neg-risk market of event EVENT in category Politics."""
    info = replace(market(neg_risk=True), event_key=EVENT, category="Politics", end_date=END)
    return Harness(database, fernet_key, info=info)


def sibling_position(h: Harness, usd: str) -> None:
    """The follower already holds `usd` of cost in another outcome market of the same event."""
    with session_scope(h.db.factory) as s:
        s.add(Market(condition_id="0x" + "c2" * 32, question="Other outcome", version="v1",
                     tick_size=D("0.01"), min_size=D(5), neg_risk=True, event_key=EVENT,
                     category="Politics", end_date=END, fetched_at=T0))
        s.add(FollowerPosition(follower_id=h.follower_id, follow_id=h.follow_id, token_id="2001",
                               condition_id="0x" + "c2" * 32, paper=False, size=D(100),
                               avg_cost=D(usd) / 100, target_size=D(100)))


def set_limits(h: Harness, **limits: str) -> None:
    with session_scope(h.db.factory) as s:
        f = s.get(Follower, h.follower_id)
        assert f is not None
        for k, v in limits.items():
            setattr(f, k, D(v))


def test_event_cap_counts_the_other_outcomes_of_a_neg_risk_event(database: Database, fernet_key: str) -> None:
    """45 USD in a sibling outcome, event cap 50 USD: the 5.8 USD copy is cut to 5 USD worth;
    at 50 it is skipped, and the skip names the event cap."""
    h = rigged(database, fernet_key)
    sibling_position(h, "45")
    set_limits(h, event_cap="50")
    h.trader_fill()  # BUY 100 @ 0.58 → 10 shares (5.80 USD at the trader's price)
    h.cycle()
    co = h.only()
    assert co.status != CopyStatus.SKIPPED, co.reason_detail
    assert co.intended_size is not None and co.intended_price is not None
    assert co.intended_size * co.intended_price <= D(5)
    assert co.intended_size < D(10) and co.crowd_note is None


def test_event_cap_reached_skips_with_the_binding_limit(database: Database, fernet_key: str) -> None:
    """At the event cap the copy is SKIPPED event_cap_reached, its detail naming the event."""
    h = rigged(database, fernet_key)
    sibling_position(h, "50")
    set_limits(h, event_cap="50", category_cap="1000", window_cap="1000")
    h.trader_fill()
    h.cycle()
    co = h.only()
    assert (co.status, co.reason) == (CopyStatus.SKIPPED, "event_cap_reached")
    assert "event" in (co.reason_detail or "")


def test_category_and_window_caps_bind_across_events(database: Database, fernet_key: str) -> None:
    """A position in ANOTHER event of the same category resolving the same day: the category cap
    (then the window cap) is the binding limit named in the skip."""
    h = rigged(database, fernet_key)
    with session_scope(h.db.factory) as s:
        s.add(Market(condition_id="0x" + "c3" * 32, question="Elsewhere", version="v1", tick_size=D("0.01"),
                     min_size=D(5), neg_risk=False, event_key="event:77", category="Politics",
                     end_date=END + timedelta(hours=5), fetched_at=T0))
        s.add(FollowerPosition(follower_id=h.follower_id, follow_id=h.follow_id, token_id="3001",
                               condition_id="0x" + "c3" * 32, paper=False, size=D(100), avg_cost=D("0.3"),
                               target_size=D(100)))
    set_limits(h, event_cap="1000", category_cap="30")
    h.trader_fill()
    h.cycle()
    assert (h.only().status, h.only().reason) == (CopyStatus.SKIPPED, "category_cap_reached")
    set_limits(h, category_cap="1000", window_cap="30")
    h.clock.now += timedelta(seconds=1)
    h.trader_fill(price="0.59")
    h.cycle()
    last = h.copies()[-1]
    assert (last.status, last.reason) == (CopyStatus.SKIPPED, "window_cap_reached")


def test_daily_loss_stop_skips_new_buys_until_midnight(database: Database, fernet_key: str) -> None:
    """A realized loss of 30 USD today with a 25 USD stop: the BUY copy is SKIPPED daily_loss_stop;
    the same loss yesterday stops nothing."""
    h = rigged(database, fernet_key)
    with session_scope(h.db.factory) as s:
        s.add(FollowerFill(copy_order_id=_a_copy(h), follower_id=h.follower_id, follow_id=h.follow_id,
                           trade_id="t-loss", order_hash="0x" + "ab" * 32, token_id="1001", side="SELL",
                           size=D(100), price=D("0.2"), trade_status="CONFIRMED", paper=False,
                           realized_pnl=D(-30), filled_at=T0 - timedelta(hours=1)))
    set_limits(h, daily_loss_stop="25")
    h.trader_fill()
    h.cycle()
    last = h.copies()[-1]
    assert (last.status, last.reason) == (CopyStatus.SKIPPED, "daily_loss_stop")
    h.clock.now = T0 + timedelta(days=1)  # a new UTC day
    h.trader_fill(price="0.58")
    h.cycle()
    assert h.copies()[-1].status != CopyStatus.SKIPPED


def _a_copy(h: Harness) -> int:
    """A copy order id to hang a follower fill on (a first BUY copied normally)."""
    h.trader_fill()
    h.cycle()
    return h.copies()[-1].id
