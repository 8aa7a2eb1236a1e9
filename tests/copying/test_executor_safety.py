"""Executor safety against the stateful fake exchange, on SQLite and PostgreSQL: modes that never
mix, cancels at the next wake (batched), prompt fills, marketable remainders, tick changes,
per-follower limits, the builder code, the balance ledger."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from copying import killswitch
from copying.heartbeat import send_heartbeats
from copying.killswitch import KillSwitchState
from copying.upkeep import open_order_pass
from executor import CycleClock, executor_cycle, mode_check
from infra.config import Settings
from infra.db import session_scope
from models import CopyOrder, CopyOrderEvent, CopyStatus, Follow, Follower, Market, TraderFill
from ops.accounts import FollowLimits, add_follow
from tests.support.dbfixtures import Database
from tests.support.fake_exchange import YES, book, market
from tests.support.harness import T0, TRADER, Harness, add_second_follower
from wire.records import CancelResult, PostOutcome
from wire.types import Side

D = Decimal
TRADER_B = "0x1111111111111111111111111111111111111111"


@pytest.fixture(name="h")
def harness(database: Database, fernet_key: str) -> Harness:
    """EOA follower, live venue, standard market (as tests/support/harness.py builds it)."""
    return Harness(database, fernet_key)


def idle_cycle(h: Harness) -> None:
    """One executor cycle whose scheduled open-order pass is NOT due (only the wake's work)."""
    clock = CycleClock(3600)
    clock.due()
    asyncio.run(executor_cycle(h.ctx, asyncio.Event(), clock))


def events(h: Harness, copy_id: int) -> list[str]:
    with h.db.session() as s:
        return list(s.scalars(select(CopyOrderEvent.event).where(CopyOrderEvent.copy_order_id == copy_id)
                              .order_by(CopyOrderEvent.id)))


# --- modes ---------------------------------------------------------------------------------------

def test_mode_is_decided_at_the_claim_and_kept(h: Harness) -> None:
    """A QUEUED copy has no mode; the live executor that claims it stamps it live, for good."""
    h.trader_fill()
    assert h.only().paper is None
    h.cycle()
    co = h.only()
    assert co.paper is False and co.status == CopyStatus.LIVE


def test_an_executor_never_claims_a_follow_pinned_to_the_other_mode(h: Harness) -> None:
    """A follow pinned to paper (a shadow follow) is born paper and is left to a paper executor."""
    with session_scope(h.db.factory) as s:
        s.get(Follow, h.follow_id).mode = "paper"  # type: ignore[union-attr]
    h.trader_fill()
    assert h.only().paper is True
    h.cycle()
    assert h.only().status == CopyStatus.QUEUED and h.fx.posts == []


def test_going_live_closes_open_paper_copies_never_posting_them(database: Database, fernet_key: str) -> None:
    """Paper copy resting; the deployment goes live: it is closed (mode_changed), never posted."""
    h = Harness(database, fernet_key, paper=True)
    h.trader_fill()
    h.cycle()
    assert h.only().status == CopyStatus.LIVE and h.only().paper
    live = Settings(database_url=database.url, execution_mode="live", encryption_key=fernet_key)
    assert mode_check(h.db.factory, live)
    co = h.only()
    assert (co.status, co.reason) == (CopyStatus.CANCELED, "mode_changed")
    assert h.fx.posts == [] and h.fx.cancels == []


def test_going_paper_with_live_orders_open_is_refused(h: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    """Live order resting; a paper executor will not start and names the command that cancels it."""
    h.trader_fill()
    h.cycle()
    paper = Settings(database_url=h.db.url, execution_mode="paper", encryption_key="x")
    assert not mode_check(h.db.factory, paper)
    err = capsys.readouterr().err
    assert "admin cancel-open --live" in err and f"copy #{h.only().id}" in err
    assert h.only().status == CopyStatus.LIVE  # nothing changed, the order still rests


def test_a_paper_executor_ignores_live_copies(database: Database, fernet_key: str) -> None:
    """Each executor reconciles, refreshes and cancels only copies of its own mode."""
    h = Harness(database, fernet_key)
    h.trader_fill()
    h.cycle()
    paper = Harness.__new__(Harness)
    paper.__dict__.update(h.__dict__)
    from copying.venues import PaperVenue

    paper.ctx = type(h.ctx)(**{**h.ctx.__dict__, "venue": PaperVenue(h.fx, h.clock), "owner": "paper"})
    with session_scope(h.db.factory) as s:
        killswitch.disable_all(s, "test")
    idle_cycle(paper)
    assert h.only().status == CopyStatus.LIVE and h.fx.cancels == []


# --- cancels within seconds, batched -------------------------------------------------------------

def test_kill_switch_cancels_every_resting_order_at_the_next_wake_in_one_request(h: Harness) -> None:
    """Three live orders; kill switch on: the next wake (no scheduled pass) cancels them with one
    DELETE /orders, confirmed and recorded CANCELED (kill_switch); queued copies are stopped."""
    for _ in range(3):
        h.trader_fill()
    h.cycle()
    assert [c.status for c in h.copies()] == [CopyStatus.LIVE] * 3
    with session_scope(h.db.factory) as s:
        killswitch.disable_all(s, "incident")
    h.trader_fill()
    idle_cycle(h)
    statuses = [(c.status, c.reason) for c in h.copies()]
    assert statuses[:3] == [(CopyStatus.CANCELED, "kill_switch")] * 3
    assert statuses[3][0] in (CopyStatus.CANCELED, CopyStatus.SKIPPED)
    assert h.fx.cancel_requests == [3] and h.fx.live_orders() == []


def test_disabling_one_follower_cancels_only_its_orders(h: Harness) -> None:
    """Two followers; one disabled: its orders are cancelled, the other's keep resting."""
    second = add_second_follower(h)
    h.trader_fill()
    h.cycle()
    with session_scope(h.db.factory) as s:
        killswitch.disable_follower(s, s.get(Follower, second), "fraud")  # type: ignore[arg-type]
    idle_cycle(h)
    by_follower = {c.follower_id: (c.status, c.reason) for c in h.copies()}
    assert by_follower[second] == (CopyStatus.CANCELED, "disabled")
    assert by_follower[h.follower_id] == (CopyStatus.LIVE, None)
    assert len(h.fx.live_orders()) == 1


def test_a_removed_follow_cancels_its_orders(h: Harness) -> None:
    """remove-follow: its open order is cancelled at the next wake (follow_removed)."""
    from ops.accounts import remove_follow

    h.trader_fill()
    h.cycle()
    with session_scope(h.db.factory) as s:
        f = s.get(Follower, h.follower_id)
        assert f is not None
        remove_follow(s, f.funder_address, TRADER)
    idle_cycle(h)
    assert (h.only().status, h.only().reason) == (CopyStatus.CANCELED, "follow_removed")


def test_the_traders_sell_cancels_the_open_buy_within_one_cycle(h: Harness) -> None:
    """No snapshot needed: the trader's SELL of the token (stored by the watcher) stops the BUY copy."""
    h.trader_fill()
    h.cycle()
    h.clock.now += timedelta(minutes=1)
    h.trader_fill(side=Side.SELL, size="100", price="0.59")
    idle_cycle(h)
    buy = h.copies()[0]
    assert (buy.status, buy.reason) == (CopyStatus.CANCELED, "trader_exited")
    assert h.fx.live_orders() == []


def test_a_closed_market_cancels_its_orders(h: Harness) -> None:
    """The market cache says closed: the copy is cancelled at the next wake (market_closed)."""
    h.trader_fill()
    h.cycle()
    with session_scope(h.db.factory) as s:
        row = s.get(Market, h.only().condition_id)
        assert row is not None
        row.closed = True
    idle_cycle(h)
    assert (h.only().status, h.only().reason) == (CopyStatus.CANCELED, "market_closed")


def test_an_unconfirmed_cancel_is_asked_again(h: Harness) -> None:
    """DELETE /orders fails once: the copy stays CANCELING; the next wake confirms it."""
    h.trader_fill()
    h.cycle()
    real = h.fx.cancel_orders
    calls = {"n": 0}

    async def flaky(order_ids: Sequence[str], creds: Any, signer_address: str) -> CancelResult:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("reset")
        return await real(order_ids, creds, signer_address)

    h.fx.cancel_orders = flaky  # type: ignore[method-assign]
    with session_scope(h.db.factory) as s:
        killswitch.disable_all(s, "x")
    idle_cycle(h)
    assert h.only().status == CopyStatus.CANCELING and len(h.fx.live_orders()) == 1
    idle_cycle(h)
    assert (h.only().status, h.only().reason) == (CopyStatus.CANCELED, "kill_switch")


def test_a_stop_request_ends_the_pass_between_chunks(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """With SIGTERM set, the scheduled pass stops before its next chunk: nothing more is read."""
    import copying.manage as manage

    monkeypatch.setattr(manage, "MANAGE_CHUNK", 1)
    for _ in range(3):
        h.trader_fill()
    h.cycle()
    reads = h.fx.open_order_reads
    stop = asyncio.Event()

    async def between() -> None:
        stop.set()

    counts = asyncio.run(manage.manage_open_orders(h.ctx, stop, between))
    assert counts[manage.Managed.OPEN] == 3
    assert h.fx.open_order_reads == reads + 1  # the first chunk only


# --- fills within seconds ------------------------------------------------------------------------

def test_fills_of_a_resting_order_are_known_at_the_next_wake(h: Harness) -> None:
    """A counterparty hits our resting order: the next wake (no scheduled pass) records it."""
    h.trader_fill()
    h.cycle()
    h.fx.fill_resting(h.only().order_hash, "4")  # type: ignore[arg-type]
    h.ctx.fills_due.clear()
    idle_cycle(h)
    co = h.only()
    assert co.status == CopyStatus.PARTIAL and co.filled_size == D("4")
    h.fx.fill_resting(co.order_hash, "6")  # type: ignore[arg-type]
    h.ctx.fills_due.clear()
    idle_cycle(h)
    assert h.only().status == CopyStatus.FILLED and h.only().filled_size == D("10")


def test_background_reads_wait_while_copies_go_out(h: Harness) -> None:
    """A round of fill and balance reads whose turn comes during a fan-out (`ctx.submitting`)
    reads nothing and leaves each follower due; once the copies are out, the next round reads."""
    from copying.balances import refresh_balances
    from copying.fills import refresh_fills

    h.trader_fill()
    h.cycle()
    h.fx.fill_resting(h.only().order_hash, "4")  # type: ignore[arg-type]
    h.ctx.fills_due.clear()
    reads = h.fx.balance_reads
    h.ctx.submitting = True
    assert asyncio.run(refresh_fills(h.ctx, [h.follower_id], background=True)) == 0
    assert asyncio.run(refresh_balances(h.ctx, [h.follower_id], background=True)) == 0
    assert h.only().status == CopyStatus.LIVE and h.fx.balance_reads == reads
    assert h.follower_id not in h.ctx.fills_due  # still due
    assert asyncio.run(refresh_balances(h.ctx, [h.follower_id])) == 1  # the critical path's own reads go on
    h.ctx.submitting = False
    assert asyncio.run(refresh_fills(h.ctx, [h.follower_id], background=True)) == 1
    assert h.only().status == CopyStatus.PARTIAL and h.only().filled_size == D("4")


def test_the_open_order_pass_lets_new_copies_in_between_its_steps(h: Harness,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A submit pass that became ready during the stop sweep runs right after the sweep, not after
    the whole wake: each step of the pass is database work that does not yield by itself."""
    from collections import Counter

    import copying.upkeep as upkeep

    ran: list[str] = []
    woken: list[asyncio.Future[None]] = []

    async def copies() -> None:
        ran.append("copies")

    async def sweep(ctx: Any, stop: Any = None) -> Counter[str]:
        ran.append("sweep")
        woken.append(asyncio.ensure_future(copies()))  # a NOTIFY came in during the sweep
        return Counter()

    async def superseded(ctx: Any) -> int:
        ran.append("superseded")
        return 0

    monkeypatch.setattr(upkeep, "stop_sweep", sweep)
    monkeypatch.setattr(upkeep, "cancel_superseded", superseded)

    async def body() -> None:
        await upkeep.open_order_pass(h.ctx, asyncio.Event(), manage=False)
        await asyncio.gather(*woken)

    asyncio.run(body())
    assert ran[:3] == ["sweep", "copies", "superseded"]


# --- marketable remainders -----------------------------------------------------------------------

def test_a_partial_market_order_remainder_is_tried_again_until_filled(h: Harness) -> None:
    """At 36 h a FAK finds 3 of 10 shares: the copy is not closed; the next pass orders the 7 left."""
    h.fx.books[YES] = book(YES, [("0.50", "500")], [("0.62", "500")])
    h.trader_fill()
    h.cycle()
    h.fx.books[YES] = book(YES, [("0.55", "500")], [("0.60", "3")])
    h.clock.now = T0 + timedelta(hours=37)
    h.cycle()
    co = h.only()
    assert co.status == CopyStatus.CANCELING and co.filled_size == D("3"), (co.status, co.reason)
    assert "remainder" in events(h, co.id)
    h.fx.books[YES] = book(YES, [("0.55", "500")], [("0.60", "500")])
    h.clock.now = T0 + timedelta(hours=38)
    h.cycle()
    co = h.only()
    assert co.status == CopyStatus.FILLED and co.filled_size == D("10")
    fak = [json.loads(p) for p in h.fx.posts if json.loads(p)["orderType"] == "FAK"]
    assert len(fak) == 2 and h.fx.live_orders() == []


def test_a_market_order_with_no_match_waits_and_gives_up_at_72h(h: Harness) -> None:
    """A FAK that matches nothing is not REJECTED: the copy waits between orders and is tried
    again; once nothing is within the slippage limit after 72 h, it ends (pricing gave up)."""
    h.trader_fill()
    h.cycle()
    h.fx.books[YES] = book(YES, [("0.55", "500")], [("0.60", "500")])
    h.fx.next_post = []
    h.clock.now = T0 + timedelta(hours=37)
    real = h.fx.post_order

    async def no_match(body: bytes, creds: Any, signer_address: str) -> PostOutcome:
        from wire.records import Rejected, RejectKind
        if json.loads(body)["orderType"] == "FAK":
            return Rejected("no orders found to match with FAK order", RejectKind.FAK_NO_MATCH, 400)
        return await real(body, creds, signer_address)

    h.fx.post_order = no_match  # type: ignore[method-assign]
    h.cycle()
    assert h.only().status == CopyStatus.CANCELING
    h.clock.now = T0 + timedelta(hours=40)  # still nothing: it keeps waiting between orders
    h.cycle()
    assert h.only().status == CopyStatus.CANCELING
    h.fx.books[YES] = book(YES, [("0.55", "500")], [("0.70", "500")])  # beyond the 5 % limit
    h.clock.now = T0 + timedelta(hours=73)
    h.cycle()
    co = h.only()
    assert co.status == CopyStatus.CANCELED and co.reason is not None and co.reason.startswith("pricing_")


# --- ticks ---------------------------------------------------------------------------------------

def test_the_books_tick_wins_over_cached_market_info(database: Database, fernet_key: str) -> None:
    """The cache still says tick 0.01 but the market (and its book) moved to 0.001: a trader BUY at
    0.585 is copied at 0.585, not snapped to 0.58."""
    h = Harness(database, fernet_key, info=market(tick="0.001"))
    h.fx.books[YES] = book(YES, [("0.583", "500")], [("0.59", "500")])
    h.ctx.market_ttl = 3600
    h.ctx.market_cache[YES] = (time.monotonic(), market(tick="0.01"))
    h.trader_fill(price="0.585")
    h.cycle()
    co = h.only()
    assert co.status == CopyStatus.LIVE and co.intended_price == D("0.585")
    assert h.ctx.market_cache[YES][1].tick_size == D("0.001")  # the cache was corrected


def test_a_stale_tick_rejection_is_replanned_once_and_never_left_rejected(
        database: Database, fernet_key: str) -> None:
    """The venue refuses 0.585 (its tick is now 0.01, the book read just before said 0.001): the
    copy is re-planned with fresh market info and rests at 0.58."""
    h = Harness(database, fernet_key, info=market(tick="0.01"))
    h.fx.stale_book_tick = D("0.001")
    h.trader_fill(price="0.585")
    h.cycle()
    co = h.only()
    assert co.status == CopyStatus.LIVE and co.intended_price == D("0.58"), (co.status, co.reason)
    assert "stale_market" in events(h, co.id) and "rejected" not in events(h, co.id)
    assert len(h.fx.live_orders()) == 1


def test_a_second_stale_tick_rejection_is_final(database: Database, fernet_key: str) -> None:
    """Re-planned once only: refused again, the copy ends REJECTED (tick_size)."""
    h = Harness(database, fernet_key, info=market(tick="0.01"))
    h.fx.stale_book_tick = D("0.001")
    h.fx.stale_book_tick_times = 2
    h.trader_fill(price="0.585")
    h.cycle()
    co = h.only()
    assert (co.status, co.reason) == (CopyStatus.REJECTED, "tick_size")
    assert events(h, co.id).count("stale_market") == 1


# --- per-follower limits -------------------------------------------------------------------------

def follow_second_trader(h: Harness) -> int:
    """The same follower also follows TRADER_B; returns that trader's id."""
    with session_scope(h.db.factory) as s:
        f = s.get(Follower, h.follower_id)
        assert f is not None
        fo = add_follow(s, follower_wallet=f.funder_address, trader_wallet=TRADER_B, copy_pct=D(10),
                        max_usd_per_trade=D(50), now=T0 - timedelta(hours=1), limits=FollowLimits())
        return fo.trader_id


def fill_of(h: Harness, trader_id: int, n: int) -> None:
    """A BUY 100 @ 0.58 of another trader, stored like the watcher does."""
    from copying.intake import store_fills
    from tests.support.fake_exchange import CONDITION
    from wire.types import Activity

    row = Activity(proxy_wallet=TRADER_B, timestamp=h.clock.now, type="TRADE", condition_id=CONDITION,
                   token_id=YES, side=Side.BUY, size=D(100), price=D("0.58"), usdc_size=None,
                   transaction_hash=f"0x{1000 + n:064x}", outcome="Yes", outcome_index=0, title="Q",
                   slug="q", event_slug="e", is_combo=False, raw={})
    with session_scope(h.db.factory) as s:
        store_fills(s, trader_id, [row], now=h.clock.now, max_copy_delay=timedelta(seconds=120))


def test_follower_daily_cap_applies_across_its_follows(h: Harness) -> None:
    """Follower cap $12 a day, two follows: $5.80 + $5.80 fit, the third copy (other follow) is
    skipped naming the follower's cap."""
    other = follow_second_trader(h)
    with session_scope(h.db.factory) as s:
        s.get(Follower, h.follower_id).daily_usd_cap = D(12)  # type: ignore[union-attr]
    h.trader_fill()
    fill_of(h, other, 1)
    h.cycle()
    fill_of(h, other, 2)
    h.cycle()
    rows = [(c.follow_id, c.status, c.reason) for c in h.copies()]
    assert [r[1] for r in rows] == [CopyStatus.LIVE, CopyStatus.LIVE, CopyStatus.SKIPPED]
    assert rows[2][2] == "follower_daily_cap_reached" and rows[0][0] != rows[1][0]
    with h.db.session() as s:
        third = s.get(CopyOrder, h.copies()[2].id)
        assert third is not None and "daily cap" in (third.reason_detail or "")


def test_follower_open_exposure_cap(h: Harness) -> None:
    """Max open exposure $8: one $5.80 order rests, the next is capped to what is left ($2.20 →
    under the min size) and skipped naming the exposure cap."""
    with session_scope(h.db.factory) as s:
        s.get(Follower, h.follower_id).max_open_exposure = D(8)  # type: ignore[union-attr]
    h.trader_fill()
    h.trader_fill()
    h.cycle()
    statuses = [(c.status, c.reason) for c in h.copies()]
    assert statuses == [(CopyStatus.LIVE, None), (CopyStatus.SKIPPED, "follower_exposure_cap_reached")]


# --- builder code, ledger, heartbeats ------------------------------------------------------------

def test_the_builder_code_goes_into_every_signed_order(database: Database, fernet_key: str) -> None:
    """POLYMARKET_BUILDER_CODE is the `builder` field of the signed struct (the venue verifies it)."""
    h = Harness(database, fernet_key)
    code = "0x" + "ab" * 32
    h.ctx.settings = Settings(**{**h.ctx.settings.__dict__, "builder_code": code})
    h.trader_fill()
    h.cycle()
    assert h.venue_order()["builder"] == code and h.only().status == CopyStatus.LIVE


def test_balances_come_from_the_ledger_not_a_read_per_batch(h: Harness) -> None:
    """$12: read once; a marketable $5.80 copy fills and the ledger subtracts it: the next copy
    fits ($5.80 of $6.20), the third does not — with no second balance read."""
    h.fx.balance = D("12")
    h.fx.books[YES] = book(YES, [("0.55", "500")], [("0.58", "500")])
    h.trader_fill()
    h.cycle()
    assert h.only().status == CopyStatus.FILLED
    h.trader_fill()
    h.cycle()
    h.trader_fill()
    h.cycle()
    assert [c.status for c in h.copies()] == [CopyStatus.FILLED, CopyStatus.FILLED, CopyStatus.SKIPPED]
    assert h.copies()[2].reason == "insufficient_balance"
    assert h.fx.balance_reads == 1


def test_heartbeats_are_sent_for_every_live_follower(h: Harness) -> None:
    """CLOB_HEARTBEAT: one send per follower with credentials; the next id is kept."""
    add_second_follower(h)
    assert asyncio.run(send_heartbeats(h.ctx)) == 2
    assert len(h.ctx.heartbeat_ids) == 2 and h.fx.heartbeats == 2


def test_the_stop_sweep_reads_the_switches_once(h: Harness) -> None:
    """Many open copies, one kill-switch read: the sweep is a few queries whatever the count."""
    for _ in range(5):
        h.trader_fill()
    h.cycle()
    calls = {"n": 0}
    real = KillSwitchState.load

    def counting(session: Any) -> KillSwitchState:
        calls["n"] += 1
        return real(session)

    KillSwitchState.load = staticmethod(counting)  # type: ignore[method-assign]
    try:
        asyncio.run(open_order_pass(h.ctx, asyncio.Event(), manage=False))
    finally:
        KillSwitchState.load = real  # type: ignore[method-assign]
    assert calls["n"] == 1
    with h.db.session() as s:
        assert s.scalar(select(TraderFill.id).limit(1)) is not None
