"""Copy fidelity against the stateful fake exchange, on SQLite and PostgreSQL: a follower's holding
follows the leader's through exits of every kind, in the leader's order, to resolution."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from copying.killswitch import disable_all, disable_follower, enable_all
from copying.leader import expand_row, holding_before
from copying.ordering import BLOCKS, blocked_clause, blocks, superseded_clause
from copying.position_watch import Holding, audit_decreases, record_snapshot
from copying.resolution import payouts_of
from copying.retention import prune_positions
from copying.states import Event, created
from copying.targets import queue_closes
from executor import CycleClock, executor_cycle
from infra.db import session_scope, utcnow
from models import (
    CopyOrder,
    CopyOrderEvent,
    CopyOrigin,
    CopyStatus,
    Follow,
    Follower,
    FollowerPosition,
    FollowStatus,
    Market,
    MarketTokenRow,
    PositionSettlement,
    Redemption,
    RedemptionStatus,
    TraderPositionEvent,
    TraderPositionSnapshot,
)
from ops.performance import performance_rows
from ops.reports import build_report
from tests.support.dbfixtures import Database
from tests.support.fake_exchange import CONDITION, NO, YES, book
from tests.support.harness import T0, Harness
from wire.records import GammaMarket
from wire.types import Activity, MarketToken, MarketVersion, Side

D = Decimal


def position(h: Harness, token: str = YES) -> FollowerPosition:
    with h.db.session() as s:
        pos = s.scalar(select(FollowerPosition).where(FollowerPosition.token_id == token))
        assert pos is not None
        return pos


def snapshot(h: Harness, sizes: dict[str, str], minutes: float = 0) -> None:
    """The leader's positions at `now + minutes` (the watcher's snapshot)."""
    with session_scope(h.db.factory) as s:
        record_snapshot(s, h.trader_id, [Holding(t, CONDITION, D(v)) for t, v in sizes.items()],
                        h.clock.now + timedelta(minutes=minutes))


def buy_filled(h: Harness, size: str = "100", price: str = "0.58") -> CopyOrder:
    """The leader buys; the follower's copy fills at once (marketable book)."""
    h.fx.books[YES] = book(YES, [("0.57", "500")], [(price, "500")])
    h.trader_fill(Side.BUY, size, price)
    h.cycle()
    co = h.copies()[-1]
    assert co.status == CopyStatus.FILLED, (co.status, co.reason, co.reason_detail)
    return co


def later(h: Harness, minutes: float = 1) -> None:
    h.clock.now += timedelta(minutes=minutes)


@pytest.fixture
def h(database: Database, fernet_key: str) -> Harness:
    """An EOA follower copying 10 % of the leader, live venue (the fake exchange)."""
    return Harness(database, fernet_key)


# --- the order within a follow and token (the measured bug first) -------------------------------

def test_buy_and_sell_of_one_token_in_one_batch_sells_what_the_buy_got(h: Harness) -> None:
    """The issue's measured bug: a leader BUY and his SELL of the same token queued together used
    to be sized in one batch, the SELL first against an empty holding (skipped `no_holdings`) and
    the BUY filling after it. Now the SELL waits for the BUY and is sized on the 10 shares it got."""
    h.fx.books[YES] = book(YES, [("0.57", "500")], [("0.58", "500")])
    h.trader_fill(Side.BUY, "100", "0.58")
    h.trader_fill(Side.SELL, "100", "0.58")
    h.cycle()
    h.cycle()
    buy, sell = h.copies()
    assert (buy.status, buy.filled_size) == (CopyStatus.FILLED, D("10"))
    assert sell.status == CopyStatus.LIVE, (sell.status, sell.reason, sell.reason_detail)
    assert sell.intended_size == D("10") and sell.reason != "no_holdings"
    assert position(h).target_size == 0


def test_a_buy_filled_while_resting_is_recorded_before_the_sell_is_sized(h: Harness) -> None:
    """A resting BUY copy filled at the venue but not recorded yet: the later SELL cancels it (a
    confirmed cancel records its fills) and is then placed for the shares the BUY got."""
    h.trader_fill(Side.BUY, "100", "0.58")
    h.cycle()
    buy = h.only()
    assert buy.status == CopyStatus.LIVE
    h.fx.fill_resting(buy.order_hash, "6")  # type: ignore[arg-type]  # not refreshed by us
    later(h)
    h.trader_fill(Side.SELL, "100", "0.58")
    h.cycle()  # the open-order pass cancels the BUY (its fills recorded); the SELL still waits
    h.cycle()  # now nothing blocks the SELL
    buy, sell = h.copies()
    assert buy.status == CopyStatus.CANCELED and buy.filled_size == D("6")
    assert buy.reason == "trader_exited"  # the stop sweep saw the trader's SELL first
    assert sell.intended_size == D("6") and sell.status in (CopyStatus.LIVE, CopyStatus.FILLED)


def test_a_sell_waits_for_an_earlier_buy_in_flight_and_is_not_skipped(h: Harness) -> None:
    """While the BUY is signed but unresolved, the SELL is not claimed (no `no_holdings` skip)."""
    h.fx.books[YES] = book(YES, [("0.57", "500")], [("0.58", "500")])
    h.fx.next_post = ["accept_then_error"]  # the BUY ends IN_DOUBT
    h.trader_fill(Side.BUY, "100", "0.58")
    h.trader_fill(Side.SELL, "100", "0.58")
    asyncio.run(executor_cycle(h.ctx, asyncio.Event(), CycleClock(3600)))
    buy, sell = h.copies()
    assert buy.status == CopyStatus.IN_DOUBT and sell.status == CopyStatus.QUEUED
    h.cycle()  # reconciliation finds the BUY filled; the SELL goes
    buy, sell = h.copies()
    assert buy.status == CopyStatus.FILLED and sell.intended_size == D("10")


@pytest.mark.parametrize("later_side", ["BUY", "SELL"])
@pytest.mark.parametrize("earlier_side", ["BUY", "SELL"])
def test_ordering_rule_in_sql_agrees_with_the_table(database: Database, later_side: str,
                                                    earlier_side: str) -> None:
    """`blocked_clause` (SQL, both databases) gives the same answers as `blocks` for every status."""
    with session_scope(database.factory) as s:
        from tests.support import factories as fx

        t, f = fx.trader(s), fx.follower(s)
        fo = fx.follow(s, f, t)
        for n, status in enumerate(CopyStatus):
            e_fill = fx.trader_fill(s, t, key=f"e{n}")
            l_fill = fx.trader_fill(s, t, key=f"l{n}")
            fx.copy_order(s, e_fill, fo, side=earlier_side, status=status, token_id=f"tok{n}")
            fx.copy_order(s, l_fill, fo, side=later_side, status=CopyStatus.QUEUED, token_id=f"tok{n}")
    with database.session() as s:
        blocked = set(s.scalars(select(CopyOrder.token_id).where(
            CopyOrder.side == later_side, CopyOrder.status == CopyStatus.QUEUED, blocked_clause())))
        later_ids = dict(s.execute(select(CopyOrder.token_id, CopyOrder.id).where(
            CopyOrder.side == later_side)).all())
    for n, status in enumerate(CopyStatus):
        token = f"tok{n}"
        if later_side == earlier_side and status == CopyStatus.QUEUED:
            # the later copy of a QUEUED pair is also "earlier" than nothing: only check the rule
            pass
        expected = blocks(later_side, earlier_side, status)
        assert (token in blocked) == expected, (later_side, earlier_side, status, later_ids[token])
    assert BLOCKS[("BUY", "BUY")] == ()  # entries never wait for entries


@pytest.mark.parametrize("earlier_side", ["BUY", "SELL"])
def test_ordering_rule_in_sql_agrees_for_a_close(database: Database, earlier_side: str) -> None:
    """A close (`--close-positions`) waits, in SQL as in `blocks`, for every earlier copy that is
    not sized yet or may still trade, whatever its side; and for no other."""
    with session_scope(database.factory) as s:
        from tests.support import factories as fx

        t, f = fx.trader(s), fx.follower(s)
        fo = fx.follow(s, f, t)
        for n, status in enumerate(CopyStatus):
            fx.copy_order(s, fx.trader_fill(s, t, key=f"e{n}"), fo, side=earlier_side, status=status,
                          token_id=f"tok{n}")
            fx.copy_order(s, fx.trader_fill(s, t, key=f"l{n}"), fo, side="SELL", status=CopyStatus.QUEUED,
                          token_id=f"tok{n}", origin=CopyOrigin.CLOSE)
    with database.session() as s:
        blocked = set(s.scalars(select(CopyOrder.token_id).where(
            CopyOrder.origin == CopyOrigin.CLOSE, blocked_clause())))
    assert blocked == {f"tok{n}" for n, status in enumerate(CopyStatus)
                       if blocks("SELL", earlier_side, status, later_close=True)}
    assert len(blocked) == 7  # QUEUED, CLAIMED, SIGNED, IN_DOUBT, LIVE, PARTIAL, CANCELING


def test_superseded_clause_picks_resting_buys_before_a_queued_exit(database: Database) -> None:
    """Only a resting BUY (LIVE/PARTIAL) with a later SELL not sized yet is cancelled for it."""
    with session_scope(database.factory) as s:
        from tests.support import factories as fx

        t, f = fx.trader(s), fx.follower(s)
        fo = fx.follow(s, f, t)
        rows = [("a", CopyStatus.LIVE, "BUY", CopyStatus.QUEUED, True),
                ("b", CopyStatus.PARTIAL, "BUY", CopyStatus.CLAIMED, True),
                ("c", CopyStatus.LIVE, "BUY", CopyStatus.LIVE, False),
                ("d", CopyStatus.LIVE, "SELL", CopyStatus.QUEUED, False),
                ("e", CopyStatus.SIGNED, "BUY", CopyStatus.QUEUED, False)]
        for key, first, side, second, _ in rows:
            fx.copy_order(s, fx.trader_fill(s, t, key=key + "1"), fo, side=side, status=first, token_id=key)
            fx.copy_order(s, fx.trader_fill(s, t, key=key + "2"), fo, side="SELL", status=second,
                          token_id=key)
    with database.session() as s:
        picked = set(s.scalars(select(CopyOrder.token_id).where(superseded_clause())))
    assert picked == {key for key, *_, want in rows if want}


# --- proportional exits and remainders ----------------------------------------------------------

def test_plan_example_sells_four_and_keeps_one(database: Database, fernet_key: str) -> None:
    """The plan: copying 5 % of a leader who holds 100 and sells 80 @ 0.85 → a 4-share sale (a
    marketable one: under the min size of 5, worth $3.40), 1 share kept; target 1."""
    h = Harness(database, fernet_key, pct="5")
    buy_filled(h)
    assert position(h).size == D("5") and position(h).target_size == D("5")
    snapshot(h, {YES: "100"}, minutes=1)
    later(h, 2)
    h.fx.books[YES] = book(YES, [("0.85", "500")], [("0.87", "500")])
    h.trader_fill(Side.SELL, "80", "0.85")
    h.cycle()
    sell = h.copies()[-1]
    assert (sell.status, sell.intended_size, sell.order_type) == (CopyStatus.FILLED, D("4"), "FAK")
    pos = position(h)
    assert (pos.size, pos.target_size) == (D("1"), D("1"))


def test_a_remainder_under_one_dollar_is_kept_then_sold_once_worth_a_dollar(
        database: Database, fernet_key: str) -> None:
    """10 % of a leader holding 400 (40 held); he sells 20 → 2 to sell, $0.80 at the bid: kept
    (target 38). Once the bid is 0.55 the open-order pass sells those 2 as a marketable remainder."""
    h = Harness(database, fernet_key, pct="10")
    h.ctx.settings = replace(h.ctx.settings, default_max_slippage=D("0.5"))
    buy_filled(h, size="400", price="0.58")
    snapshot(h, {YES: "400"}, minutes=1)
    later(h, 2)
    h.fx.books[YES] = book(YES, [("0.40", "500")], [("0.60", "500")])
    h.trader_fill(Side.SELL, "20", "0.40")
    h.cycle()
    sell = h.copies()[-1]
    assert (sell.status, sell.reason) == (CopyStatus.SKIPPED, "remainder_kept")
    assert (position(h).size, position(h).target_size) == (D("40"), D("38"))
    h.fx.books[YES] = book(YES, [("0.55", "500")], [("0.60", "500")])
    h.cycle()  # the pass queues the remainder
    h.cycle()  # and it is sold
    rem = h.copies()[-1]
    assert rem.origin == CopyOrigin.REMAINDER and rem.trader_fill_id is None
    assert (rem.status, rem.intended_size, rem.order_type) == (CopyStatus.FILLED, D("2"), "FAK")
    assert position(h).size == D("38")
    with h.db.session() as s:
        first = s.scalar(select(CopyOrderEvent).where(CopyOrderEvent.copy_order_id == rem.id)
                         .order_by(CopyOrderEvent.id))
        assert first is not None and first.event == Event.QUEUE_TARGET.value
    h.cycle()
    assert len(h.copies()) == 3  # nothing more to sell: no new remainder


def test_the_whole_holding_is_sold_only_when_the_leader_closes(h: Harness) -> None:
    """10 % holding 10; the leader sells 30 of 100 (3 sold, limit) then the last 70 (all 7 sold)."""
    buy_filled(h)
    snapshot(h, {YES: "100"}, minutes=1)
    later(h, 2)
    h.fx.books[YES] = book(YES, [("0.58", "500")], [("0.60", "500")])
    h.trader_fill(Side.SELL, "30", "0.58")
    h.cycle()
    first = h.copies()[-1]
    assert (first.intended_size, first.order_type) == (D("3"), "FAK")  # under 5 shares: marketable
    later(h)
    h.trader_fill(Side.SELL, "70", "0.58")
    h.cycle()
    second = h.copies()[-1]
    assert second.intended_size == D("7") and position(h).size == 0


# --- who mirrors exits: paused, disabled, removed; late exits -----------------------------------

def test_a_paused_follow_mirrors_an_exit_but_copies_no_entry(h: Harness) -> None:
    """Pause stops entries; the leader's SELL is still mirrored on what the follow holds."""
    buy_filled(h)
    with session_scope(h.db.factory) as s:
        s.get(Follow, h.follow_id).status = FollowStatus.PAUSED  # type: ignore[union-attr]
    later(h)
    h.trader_fill(Side.BUY, "50", "0.58")
    assert len(h.copies()) == 1  # no entry queued
    h.fx.books[YES] = book(YES, [("0.58", "500")], [("0.60", "500")])
    h.trader_fill(Side.SELL, "150", "0.58")
    h.cycle()
    sell = h.copies()[-1]
    assert sell.side == "SELL" and sell.intended_size == D("10") and position(h).size == 0


def test_disabled_and_removed_follows_mirror_exits_the_kill_switch_holds_them(h: Harness) -> None:
    """A disabled follower and a removed follow still sell on the leader's exit; under the global
    kill switch the exit waits in the queue and goes once the switch is lifted."""
    buy_filled(h)
    with session_scope(h.db.factory) as s:
        follower = s.get(Follower, h.follower_id)
        assert follower is not None
        disable_follower(s, follower, "test")
        s.get(Follow, h.follow_id).status = FollowStatus.REMOVED  # type: ignore[union-attr]
        disable_all(s, "test")
    later(h)
    h.fx.books[YES] = book(YES, [("0.58", "500")], [("0.60", "500")])
    h.trader_fill(Side.SELL, "50", "0.58")
    h.cycle()
    sell = h.copies()[-1]
    assert sell.status in (CopyStatus.QUEUED, CopyStatus.CLAIMED) and h.fx.posts[-1:] != []
    assert position(h).size == D("10")
    with session_scope(h.db.factory) as s:
        enable_all(s)
    later(h, 10)  # the hold's lease runs out
    h.cycle()
    h.cycle()
    sell = h.copies()[-1]
    assert sell.intended_size == D("5") and position(h).size == D("5")


@pytest.mark.parametrize("mirror", [True, False])
def test_a_late_exit_is_mirrored_unless_the_follow_turned_it_off(database: Database, fernet_key: str,
                                                                 mirror: bool) -> None:
    """A SELL first seen 5 minutes after it happened (MAX_COPY_DELAY 120 s) is still copied; a
    late BUY never is; `mirror_late_exits = False` skips the late exit as stale."""
    h = Harness(database, fernet_key)
    buy_filled(h)
    with session_scope(h.db.factory) as s:
        s.get(Follow, h.follow_id).mirror_late_exits = mirror  # type: ignore[union-attr]
    later(h, 10)
    h.fx.books[YES] = book(YES, [("0.58", "500")], [("0.60", "500")])
    h.trader_fill(Side.BUY, "100", "0.58", at=h.clock.now - timedelta(minutes=5))
    h.trader_fill(Side.SELL, "100", "0.58", at=h.clock.now - timedelta(minutes=5))
    late_buy, late_sell = h.copies()[-2:]
    assert (late_buy.status, late_buy.reason) == (CopyStatus.SKIPPED, "stale")
    h.cycle()
    late_sell = h.copies()[-1]
    if mirror:
        assert late_sell.intended_size == D("10") and late_sell.status != CopyStatus.SKIPPED
    else:
        assert (late_sell.status, late_sell.reason) == (CopyStatus.SKIPPED, "stale")


def test_close_positions_sells_everything_at_market(h: Harness) -> None:
    """`--close-positions`: the target becomes 0 and a FAK sale of all 10 shares at the bid."""
    buy_filled(h)
    h.fx.books[YES] = book(YES, [("0.57", "500")], [("0.60", "500")])
    with session_scope(h.db.factory) as s:
        follow = s.get(Follow, h.follow_id)
        assert follow is not None
        closes = queue_closes(s, follow, paper=False, now=h.clock.now)
        assert len(closes) == 1
    h.cycle()
    close = h.copies()[-1]
    assert (close.origin, close.status, close.order_type, close.intended_size) == (
        CopyOrigin.CLOSE, CopyStatus.FILLED, "FAK", D("10"))
    assert close.trader_price == D("0.57") and position(h).size == 0


# --- the leader's position: merges, snapshots ----------------------------------------------------

def _activity(kind: str, size: str, token: str = "", side: Side | None = None) -> Activity:
    return Activity(proxy_wallet="0xabc", timestamp=T0, type=kind, condition_id=CONDITION,
                    token_id=token, side=side, size=D(size), price=D(0), usdc_size=None,
                    transaction_hash="0x" + "5" * 64, outcome="", outcome_index=None, title="",
                    slug="", event_slug="", is_combo=False, raw={})


def test_merge_split_conversion_rows_are_stored_per_outcome() -> None:
    """MERGE → a SELL of each outcome, SPLIT → a BUY of each, CONVERSION → a SELL of NO."""
    tokens = (MarketToken(YES, "Yes", 0), MarketToken(NO, "No", 1))
    merge = expand_row(_activity("MERGE", "20"), tokens)
    assert [(r.token_id, r.side) for r in merge] == [(YES, Side.SELL), (NO, Side.SELL)]
    assert [(r.token_id, r.side) for r in expand_row(_activity("SPLIT", "5"), tokens)] == [
        (YES, Side.BUY), (NO, Side.BUY)]
    assert [(r.token_id, r.side) for r in expand_row(_activity("CONVERSION", "5"), tokens)] == [
        (NO, Side.SELL)]
    trade = _activity("TRADE", "5", YES, Side.BUY)
    assert expand_row(trade, tokens) == [trade]


def test_a_leader_merge_brings_both_outcomes_down(h: Harness) -> None:
    """The leader holds 100 YES and 100 NO and merges 50: the follower sells half of each."""
    buy_filled(h)
    h.fx.books[NO] = book(NO, [("0.41", "500")], [("0.42", "500")])
    h.trader_fill(Side.BUY, "100", "0.42", token=NO)
    h.cycle()
    snapshot(h, {YES: "100", NO: "100"}, minutes=1)
    later(h, 2)
    h.fx.books[YES] = book(YES, [("0.58", "500")], [("0.60", "500")])
    from copying.intake import store_fills
    tokens = (MarketToken(YES, "Yes", 0), MarketToken(NO, "No", 1))
    rows = expand_row(_activity("MERGE", "50"), tokens)
    rows = [replace(r, timestamp=h.clock.now) for r in rows]
    with session_scope(h.db.factory) as s:
        result = store_fills(s, h.trader_id, rows, now=h.clock.now, max_copy_delay=timedelta(seconds=120))
        assert result.queued == 2
    h.cycle()
    exits = [c for c in h.copies() if c.side == "SELL"]
    assert sorted((c.token_id, c.intended_size) for c in exits) == [(YES, D("5")), (NO, D("5"))]
    assert all(c.trader_price > 0 for c in exits)  # priced against the bid (a merge has no price)


def test_an_unexplained_snapshot_decrease_becomes_an_exit_once(h: Harness) -> None:
    """The leader's holding falls from 100 to 40 with no row to explain it: after the grace a
    SNAPSHOT exit of 60 is stored and fanned out; a decrease a SELL row explains is not."""
    buy_filled(h)
    snapshot(h, {YES: "100"}, minutes=1)
    snapshot(h, {YES: "40"}, minutes=6)
    grace = timedelta(seconds=120)
    with session_scope(h.db.factory) as s:
        assert audit_decreases(s, h.trader_id, h.clock.now + timedelta(minutes=6), grace) == []
        rows = audit_decreases(s, h.trader_id, h.clock.now + timedelta(minutes=9), grace)
        assert [(r.type, r.side, r.size) for r in rows] == [("SNAPSHOT", Side.SELL, D("60"))]
        assert audit_decreases(s, h.trader_id, h.clock.now + timedelta(minutes=20), grace) == []
        with_before = holding_before(s, h.trader_id, YES, rows[0].timestamp, rows[0].timestamp)
        assert with_before == D("100")
    # explained: a SELL of 30 between two snapshots
    later(h, 10)
    h.trader_fill(Side.SELL, "30", "0.58", at=h.clock.now + timedelta(minutes=1))
    snapshot(h, {YES: "10"}, minutes=2)
    with session_scope(h.db.factory) as s:
        assert audit_decreases(s, h.trader_id, h.clock.now + timedelta(minutes=30), grace) == []


def test_old_snapshots_are_pruned_but_each_traders_latest_is_kept(h: Harness) -> None:
    """Retention deletes snapshots and events older than the cutoff, never a trader's latest."""
    snapshot(h, {YES: "100"}, minutes=-60 * 24 * 10)
    snapshot(h, {YES: "50"}, minutes=-60 * 24 * 9)
    snaps, events = prune_positions(h.db.factory, h.clock.now - timedelta(days=7))
    assert (snaps, events) == (1, 1)
    with session_scope(h.db.factory) as s:
        assert s.scalar(select(TraderPositionSnapshot.size)) == D("50")
        assert s.scalar(select(TraderPositionEvent.id)) is None


# --- resolution ----------------------------------------------------------------------------------

def gamma(closed: bool, prices: tuple[str, str], status: str = "resolved") -> GammaMarket:
    return GammaMarket(id="1", condition_id=CONDITION, question="Will it?", slug="q",
                       version=MarketVersion.V1, tokens=(MarketToken(YES, "Yes", 0), MarketToken(NO, "No", 1)),
                       neg_risk=False, active=not closed, closed=closed, archived=False,
                       accepting_orders=not closed, enable_order_book=True, tick_size=D("0.01"),
                       min_size=D(5), end_date=None, fees_enabled=False, fee_rate=None,
                       fee_exponent=None, fee_takers_only=True, seconds_delay=0, raw={},
                       outcome_prices=tuple(D(p) for p in prices), resolution_status=status)


@pytest.mark.parametrize(("g", "expected"), [
    (gamma(True, ("1", "0")), {YES: D(1), NO: D(0)}),
    (gamma(True, ("0", "1"), status=""), {YES: D(0), NO: D(1)}),
    (gamma(True, ("0.5", "0.5")), {YES: D("0.5"), NO: D("0.5")}),
    (gamma(True, ("0.9995", "0.0005"), status="proposed"), None),
    (gamma(False, ("1", "0")), None),
    (gamma(True, ("0.6", "0.6")), None),
])
def test_payouts_only_for_a_closed_market_with_a_payout_vector(g: GammaMarket,
                                                              expected: dict[str, D] | None) -> None:
    """Closed + prices that are a payout vector (+ resolved status, or exact 0/1)."""
    assert payouts_of(g) == expected


def test_resolution_books_the_payout_and_win_rate(database: Database, fernet_key: str) -> None:
    """YES resolves 1: the 10-share position (cost 5.80) closes at 1 → realized +4.20, target 0,
    a redemption intent of $10; report and performance count the resolved position as a win."""
    h = Harness(database, fernet_key)
    h.clock.now = utcnow()  # the fake venue stamps its fills with the real time
    buy_filled(h)
    h.fx.books[YES] = book(YES, [("0.55", "500")], [("0.60", "500")])
    h.trader_fill(Side.BUY, "100", "0.58")  # rests; cancelled when the market resolves
    h.fx.gamma = gamma(True, ("1", "0"))
    h.ctx.settings = replace(h.ctx.settings, auto_redeem="off")
    later(h, 1)
    h.cycle()
    with h.db.session() as s:
        pos = s.scalar(select(FollowerPosition))
        st = s.scalar(select(PositionSettlement))
        red = s.scalar(select(Redemption))
        market = s.get(Market, CONDITION)
        payouts = dict(s.execute(select(MarketTokenRow.token_id, MarketTokenRow.payout)).all())
        assert pos is not None and st is not None and red is not None and market is not None
        assert (pos.size, pos.target_size, pos.realized_pnl) == (0, 0, D("4.2"))
        assert (st.size, st.payout, st.realized_pnl) == (D("10"), D("1"), D("4.2"))
        assert (red.status, red.amount, red.shares) == (RedemptionStatus.PENDING, D("10"), D("10"))
        assert market.resolved_at is not None and payouts == {YES: D(1), NO: D(0)}
        follower = s.get(Follower, h.follower_id)
        assert follower is not None
        end = h.clock.now + timedelta(days=1)
        rep = build_report(s, follower, None, end, None)
        perf = performance_rows(s, [follower], None, end, None)
    stopped = h.copies()[-1]
    assert (stopped.status, stopped.reason) == (CopyStatus.CANCELED, "market_resolved")
    assert h.fx.live_orders() == []
    lines = rep.fill_rows()
    assert [r["side"] for r in lines] == ["BUY", "RESOLVE"] and lines[1]["realized_pnl"] == "4.2"
    everything = next(r for r in rep.summary_rows() if r["scope"] == "all")
    assert (everything["resolutions"], everything["win_rate"], everything["realized_pnl_usd"]) == (
        1, "1", "4.2")
    assert everything["open_positions"] == 0
    assert next(r for r in perf if r["scope"] == "all")["win_rate"] == "1"
    h.cycle()  # settled once
    with h.db.session() as s:
        assert len(s.scalars(select(PositionSettlement)).all()) == 1
        from models import Notification, NotificationKind
        told = s.scalars(select(Notification).where(
            Notification.kind == NotificationKind.RESOLUTION_PAYOUT)).all()
        assert len(told) == 1 and told[0].follower_id == h.follower_id  # once, in the booking's transaction
        assert (told[0].payload["shares"], told[0].payload["payout_usd"]) == ("10", "10")


def test_paper_resolution_pays_the_balance_without_a_transaction(database: Database,
                                                                 fernet_key: str) -> None:
    """Paper: the losing side pays 0, the balance is what the BUY left; no redemption row."""
    h = Harness(database, fernet_key, paper=True)
    h.fx.books[YES] = book(YES, [("0.55", "500")], [("0.58", "500")])
    h.trader_fill()
    h.cycle()
    h.fx.gamma = gamma(True, ("0", "1"))
    h.cycle()
    with h.db.session() as s:
        st = s.scalar(select(PositionSettlement))
        follower = s.get(Follower, h.follower_id)
        assert st is not None and follower is not None
        assert (st.payout, st.realized_pnl, st.paper) == (0, D("-5.8"), True)
        assert follower.paper_balance == D("1000") - D("5.8")
        assert s.scalar(select(Redemption)) is None


def test_creation_event_of_a_target_sale(database: Database) -> None:
    """`created` gives a new copy its INITIAL status and one creation row; moves stay illegal."""
    from copying.states import transition
    from infra.errors import IllegalTransition
    from tests.support import factories as fx

    with session_scope(database.factory) as s:
        t, f = fx.trader(s), fx.follower(s)
        fo = fx.follow(s, f, t)
        co = CopyOrder(follow_id=fo.id, follower_id=f.id, side="SELL", token_id="1", condition_id="0x1",
                       trader_price=D(0), status=CopyStatus.QUEUED, origin=CopyOrigin.REMAINDER)
        s.add(co)
        s.flush()
        row = created(s, co, Event.QUEUE_TARGET, reason="remainder")
        assert (row.event, row.from_status, row.to_status) == ("queue_target", None, "QUEUED")
        with pytest.raises(IllegalTransition):
            created(s, co, Event.CLAIM)
        with pytest.raises(IllegalTransition):
            transition(s, co, Event.QUEUE_TARGET)


def test_exit_fan_out_reaches_only_follows_that_mirror(database: Database) -> None:
    """A leader SELL reaches active and paused follows and removed ones still holding the token."""
    from copying.intake import store_fills
    from tests.support import factories as fx

    with session_scope(database.factory) as s:
        t = fx.trader(s)
        follows = {}
        for n, status in enumerate(["active", "paused", "removed_holding", "removed_empty"], start=1):
            fo = fx.follow(s, fx.follower(s, n), t)
            fo.status = {"active": FollowStatus.ACTIVE, "paused": FollowStatus.PAUSED}.get(
                status, FollowStatus.REMOVED)
            follows[status] = fo.id
            if status == "removed_holding":
                s.add(FollowerPosition(follower_id=fo.follower_id, follow_id=fo.id, token_id="123",
                                       condition_id="0x" + "2" * 64, size=D("3"), target_size=D("3")))
        s.flush()
        row = Activity(proxy_wallet="0xabc", timestamp=T0, type="TRADE", condition_id="0x" + "2" * 64,
                       token_id="123", side=Side.SELL, size=D("10"), price=D("0.5"), usdc_size=None,
                       transaction_hash="0x" + "7" * 64, outcome="", outcome_index=None, title="",
                       slug="", event_slug="", is_combo=False, raw={})
        store_fills(s, t.id, [row], now=T0 + timedelta(hours=2), max_copy_delay=timedelta(seconds=120))
    with database.session() as s:
        got = {fid: (st, reason) for fid, st, reason in s.execute(
            select(CopyOrder.follow_id, CopyOrder.status, CopyOrder.reason))}
    assert set(got) == {follows["active"], follows["paused"], follows["removed_holding"]}
    assert all(v == (CopyStatus.QUEUED, None) for v in got.values())  # late but an exit


def test_no_sql_left_behind(database: Database) -> None:
    """The new tables exist and are empty on a fresh database."""
    with database.session() as s:
        for table in ("position_settlements", "redemptions"):
            assert s.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar() == 0  # noqa: S608

