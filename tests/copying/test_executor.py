"""Executor against a stateful fake exchange, on SQLite and PostgreSQL: each copy placed once."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from copying.claims import Label, claim_jobs
from copying.context import ExecutorContext
from copying.reconcile import reconcile_unresolved
from copying.submit import submit_jobs
from executor import CycleClock, executor_cycle
from infra.db import session_scope
from models import (
    CopyOrder,
    CopyStatus,
    FollowerFill,
    FollowerPosition,
    PositionEventKind,
    SystemFlag,
    Tier,
    TraderPositionEvent,
)
from tests.support.dbfixtures import Database
from tests.support.fake_exchange import CONDITION, YES, book, market
from tests.support.harness import DEPOSIT_WALLET, T0, Crash, Harness, add_second_follower
from wire.types import MarketInfo, MarketVersion, OrderBook, Side, SignatureType

D = Decimal


@pytest.fixture
def h(database: Database, fernet_key: str) -> Harness:
    """Default harness: EOA follower, live venue, standard market."""
    return Harness(database, fernet_key)


def test_buy_is_copied_once_at_the_right_size_price_and_signature(h: Harness) -> None:
    """Trader BUY 100 @ 0.58, copy 10 % → one GTC BUY 10 @ 0.58 resting; more cycles add nothing."""
    h.trader_fill()
    h.cycle()
    co = h.only()
    assert co.status == CopyStatus.LIVE
    assert (co.intended_size, co.intended_price, co.order_type) == (D("10"), D("0.58"), "GTC")
    order = h.venue_order()
    assert (order["makerAmount"], order["takerAmount"], order["side"]) == ("5800000", "10000000", "BUY")
    assert order["maker"] == order["signer"] == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert order["signatureType"] == 0
    assert json.loads(co.signed_payload)["owner"] == "key-1"  # type: ignore[arg-type]
    assert co.order_hash == next(iter(h.fx.orders))
    for _ in range(3):
        h.cycle()
    assert len(h.fx.posts) == 1 and len(h.copies()) == 1


@pytest.mark.parametrize(("sig_type", "info"), [
    (SignatureType.POLY_1271, market()),
    (SignatureType.EOA, market(neg_risk=True)),
    (SignatureType.EOA, market(tick="0.001")),
    (SignatureType.POLY_1271, market(version=MarketVersion.V2, tick="0.001")),
])
def test_wallet_types_exchanges_and_ticks(database: Database, fernet_key: str,
                                          sig_type: SignatureType, info: MarketInfo) -> None:
    """Deposit wallets, neg-risk, tick 0.001 and Protocol-V2 markets are signed for the right exchange."""
    h = Harness(database, fernet_key, sig_type=sig_type, info=info)
    h.trader_fill(price="0.583" if info.tick_size == D("0.001") else "0.58")
    h.cycle()
    co = h.only()
    assert co.status == CopyStatus.LIVE, (co.status, co.reason, co.reason_detail)
    order = h.venue_order()
    assert order["signatureType"] == int(sig_type)
    if sig_type == SignatureType.POLY_1271:
        assert order["maker"] == order["signer"] == DEPOSIT_WALLET
    assert co.intended_price == (D("0.583") if info.tick_size == D("0.001") else D("0.58"))


def test_max_trade_cap(database: Database, fernet_key: str) -> None:
    """10 % of 1000 shares @ 0.5 is $50; a $20 cap gives 40 shares (capped at the slippage limit)."""
    h = Harness(database, fernet_key, max_trade="20", max_slippage="0")
    h.fx.books[YES] = book(YES, [("0.49", "500")], [("0.52", "500")])
    h.trader_fill(size="1000", price="0.5")
    h.cycle()
    assert h.only().intended_size == D("40")


@pytest.mark.parametrize(("size", "price", "reason"), [
    ("10", "0.58", "below_min_size"),     # 1 share < min size 5
    ("60", "0.015", "below_min_notional"),  # 6 shares × 0.015 < $1
])
def test_small_copies_are_skipped_with_a_reason(database: Database, fernet_key: str,
                                                size: str, price: str, reason: str) -> None:
    """Copies under the market's min size or the $1 floor are SKIPPED with the reason kept."""
    h = Harness(database, fernet_key)
    h.fx.books[YES] = book(YES, [("0.01", "500")], [("0.60", "500")])
    h.trader_fill(size=size, price=price)
    h.cycle()
    co = h.only()
    assert co.status == CopyStatus.SKIPPED and co.reason == reason
    assert h.fx.posts == []


def test_proportional_sell(h: Harness) -> None:
    """Follower holds 10 shares; the trader sells half of its 100 → the follower sells 5."""
    h.fx.books[YES] = book(YES, [("0.58", "500")], [("0.70", "500")])
    h.trader_fill(size="100", price="0.60")
    h.cycle()
    buy = h.only()
    h.fx.fill_resting(buy.order_hash, "10")  # type: ignore[arg-type]
    h.cycle()
    with h.db.session() as s:
        from copying.position_watch import Holding, record_snapshot
        record_snapshot(s, h.trader_id, [Holding(YES, CONDITION, D("100"))], h.clock.now)
        s.commit()
        assert s.scalar(select(FollowerPosition.size)) == D("10")
    h.clock.now += timedelta(minutes=1)
    h.trader_fill(side=Side.SELL, size="50", price="0.58")
    h.cycle()
    sell = h.copies()[1]
    assert sell.side == "SELL" and sell.intended_size == D("5"), (sell.status, sell.reason)


def test_sell_never_exceeds_holdings(h: Harness) -> None:
    """Without any holding, a trader SELL is skipped (no_holdings), never sold short."""
    h.trader_fill(side=Side.SELL, size="100", price="0.58")
    h.cycle()
    co = h.only()
    assert co.status == CopyStatus.SKIPPED and co.reason == "no_holdings"


def test_accept_then_error_is_in_doubt_then_one_order_after_reconcile(h: Harness) -> None:
    """POST placed the order but answered 500: IN_DOUBT, then found by hash → LIVE, never re-posted."""
    h.fx.next_post = ["accept_then_error"]
    h.trader_fill()
    asyncio.run(executor_cycle(h.ctx, asyncio.Event(), CycleClock(3600)))
    assert h.only().status == CopyStatus.IN_DOUBT
    h.cycle()
    assert h.only().status == CopyStatus.LIVE
    assert len(h.fx.orders) == 1 and len(h.fx.posts) == 1


def test_unsent_post_is_reposted_with_the_same_bytes(h: Harness) -> None:
    """A POST that never left is IN_DOUBT; reconciliation re-posts the identical bytes once."""
    h.fx.next_post = ["timeout_unsent"]
    h.trader_fill()
    h.cycle()
    assert h.only().status == CopyStatus.IN_DOUBT
    h.cycle()
    assert len(h.fx.posts) == 2 and h.fx.posts[0] == h.fx.posts[1]
    assert h.only().status == CopyStatus.LIVE and len(h.fx.orders) == 1


def test_in_doubt_too_old_becomes_not_placed(h: Harness) -> None:
    """An order not found after the re-post window is closed NOT_PLACED (never re-signed)."""
    h.fx.next_post = ["timeout_unsent"]
    h.trader_fill()
    asyncio.run(executor_cycle(h.ctx, asyncio.Event(), CycleClock(3600)))
    h.clock.now += timedelta(hours=1)
    h.fx.next_post = []
    asyncio.run(reconcile_unresolved(h.ctx))
    assert h.only().status == CopyStatus.NOT_PLACED
    assert len(h.fx.posts) == 1


@pytest.mark.parametrize("point", ["after_signed", "after_post"])
def test_crash_points_end_with_one_venue_order(h: Harness, point: str) -> None:
    """A crash after the SIGNED commit or after the POST is settled by start-up reconciliation."""
    h.trader_fill()
    h.crash_at = point
    with pytest.raises(Crash):
        asyncio.run(executor_cycle(h.ctx, asyncio.Event(), CycleClock(3600)))
    assert h.only().status == CopyStatus.SIGNED
    h.crash_at = None
    asyncio.run(reconcile_unresolved(h.ctx, startup=True))
    h.cycle()
    co = h.only()
    assert co.status == CopyStatus.LIVE and len(h.fx.orders) == 1
    assert all(p == h.fx.posts[0] for p in h.fx.posts)


def test_reprice_at_6h_and_24h_cancels_first(h: Harness) -> None:
    """The schedule moves the price; each reprice cancels before placing; never two live orders."""
    h.fx.info = market(tick="0.001")
    h.fx.books[YES] = book(YES, [("0.585", "500")], [("0.595", "500")], tick="0.001")
    h.trader_fill()
    h.cycle()
    first = h.only()
    assert first.intended_price == D("0.58")
    h.clock.now = T0 + timedelta(hours=6)
    h.cycle()
    second = h.only()
    assert second.intended_price == D("0.581") and second.order_hash != first.order_hash
    assert h.fx.orders[first.order_hash].status == "CANCELED"  # type: ignore[index]
    h.clock.now = T0 + timedelta(hours=18)
    h.cycle()
    assert h.only().intended_price == D("0.59")
    assert max(h.fx.live_history) == 1
    assert len(h.fx.live_orders()) == 1


def test_partial_fill_remainder_is_worked(h: Harness) -> None:
    """4 of 10 shares fill; after a reprice the new order is for the remaining 6 only."""
    h.fx.info = market(tick="0.001")
    h.fx.books[YES] = book(YES, [("0.585", "500")], [("0.595", "500")], tick="0.001")
    h.trader_fill()
    h.cycle()
    co = h.only()
    h.fx.fill_resting(co.order_hash, "4")  # type: ignore[arg-type]
    h.cycle()
    assert h.only().status == CopyStatus.PARTIAL and h.only().filled_size == D("4")
    h.clock.now = T0 + timedelta(hours=6)
    h.cycle()
    live = h.fx.live_orders()
    assert len(live) == 1 and live[0].size == D("6")
    with h.db.session() as s:
        assert sum(s.scalars(select(FollowerFill.size))) == D("4")


def test_cancel_when_the_trader_exits(h: Harness) -> None:
    """A POSITION_CLOSED event of the trader cancels the pending BUY copy."""
    h.trader_fill()
    h.cycle()
    with h.db.session() as s:
        s.add(TraderPositionEvent(trader_id=h.trader_id, token_id=YES, kind=PositionEventKind.POSITION_CLOSED,
                                  old_size=D("100"), new_size=D("0"), detected_at=h.clock.now + timedelta(seconds=1)))
        s.commit()
    h.clock.now += timedelta(minutes=5)
    h.cycle()
    co = h.only()
    assert co.status == CopyStatus.CANCELED and co.reason == "trader_exited"
    assert h.fx.live_orders() == []


def test_market_conversion_is_stopped_by_the_slippage_limit(h: Harness) -> None:
    """At 36 h, with the ask far beyond trader × (1 + 5 %), no market order is sent: the copy waits."""
    h.trader_fill()
    h.cycle()
    first = h.only()
    h.fx.books[YES] = book(YES, [("0.68", "500")], [("0.70", "500")])
    h.clock.now = T0 + timedelta(hours=37)
    posts = len(h.fx.posts)
    h.cycle()
    co = h.only()
    assert all(json.loads(p)["orderType"] != "FAK" for p in h.fx.posts[posts:])
    assert co.intended_price is not None and co.intended_price <= D("0.609")
    assert co.status in (CopyStatus.LIVE, CopyStatus.PARTIAL)
    assert first.order_hash is not None


def test_market_conversion_within_the_limit_fills(h: Harness) -> None:
    """At 36 h with the ask at 0.60 (inside the 5 % limit) a FAK order takes it."""
    h.fx.books[YES] = book(YES, [("0.50", "500")], [("0.62", "500")])
    h.trader_fill()
    h.cycle()
    h.fx.books[YES] = book(YES, [("0.55", "500")], [("0.60", "500")])
    h.clock.now = T0 + timedelta(hours=37)
    h.cycle()
    co = h.only()
    assert co.status == CopyStatus.FILLED, (co.status, co.reason)
    assert json.loads(h.fx.posts[-1])["orderType"] == "FAK"


def test_paper_mode_never_posts_and_records_fills(database: Database, fernet_key: str) -> None:
    """Paper: no POST reaches the exchange; marketable copies fill against the book, marked paper."""
    h = Harness(database, fernet_key, paper=True)
    h.fx.books[YES] = book(YES, [("0.55", "500")], [("0.58", "500")])
    h.trader_fill()
    h.cycle()
    co = h.only()
    assert h.fx.posts == []
    assert co.status == CopyStatus.FILLED and co.paper
    with h.db.session() as s:
        fill = s.scalar(select(FollowerFill))
        assert fill is not None and fill.paper and fill.size == D("10") and fill.price == D("0.58")
        from models import Follower
        assert s.scalar(select(Follower.paper_balance)) == D("1000") - D("5.8")


def test_paper_resting_order_fills_when_the_book_trades_through(database: Database, fernet_key: str) -> None:
    """A resting paper order fills at its limit once a later book crosses it."""
    h = Harness(database, fernet_key, paper=True)
    h.trader_fill()
    h.cycle()
    assert h.only().status == CopyStatus.LIVE
    h.fx.books[YES] = book(YES, [("0.50", "500")], [("0.58", "3")])
    h.cycle()
    assert h.only().status == CopyStatus.PARTIAL and h.only().filled_size == D("3")
    assert h.fx.posts == []


def test_no_over_spend_across_copies_of_one_follower(h: Harness) -> None:
    """Balance $12: three $5.80 copies → two placed, the third skipped for balance."""
    h.fx.balance = D("12")
    for _ in range(3):
        h.trader_fill()
    h.cycle()
    statuses = [c.status for c in h.copies()]
    assert statuses.count(CopyStatus.LIVE) == 2
    third = h.copies()[2]
    assert third.status == CopyStatus.SKIPPED and third.reason == "insufficient_balance"
    total = sum(o.price * o.size for o in h.fx.orders.values())
    assert total <= D("12")


def test_kill_switch_skips_new_copies(h: Harness) -> None:
    """With the global kill switch on, queued copies are cancelled or skipped, nothing is posted."""
    with h.db.session() as s:
        s.add(SystemFlag(name="kill_switch", value="on"))
        s.commit()
    h.trader_fill()
    h.cycle()
    assert h.only().status in (CopyStatus.SKIPPED, CopyStatus.CANCELED)
    assert h.fx.posts == []


def test_rejected_order_is_final(h: Harness) -> None:
    """A venue rejection ends the copy REJECTED with the kind kept, and it is never re-sent."""
    h.fx.next_post = ["reject"]
    h.trader_fill()
    h.cycle()
    h.cycle()
    co = h.only()
    assert co.status == CopyStatus.REJECTED and co.reason == "balance"
    assert len(h.fx.posts) == 1


def test_claim_is_exclusive(h: Harness) -> None:
    """A copy claimed by one executor cannot be processed by another."""
    h.trader_fill()
    jobs = claim_jobs(h.ctx, 10)
    other = ExecutorContext(**{**h.ctx.__dict__, "owner": "someone-else"})
    assert asyncio.run(submit_jobs(other, jobs)) == {jobs[0].id: Label.LOST_CLAIM}
    assert h.fx.posts == []
    with h.db.session() as s:
        assert s.scalar(select(func.count()).select_from(CopyOrder)
                        .where(CopyOrder.status == CopyStatus.CLAIMED)) == 1


def test_disabling_a_follower_cancels_its_open_orders(h: Harness) -> None:
    """`admin disable --wallet` (follower DISABLED): the executor cancels its live venue order."""
    from copying import killswitch
    from models import Follower
    h.trader_fill()
    h.cycle()
    assert h.only().status == CopyStatus.LIVE
    with session_scope(h.db.factory) as s:
        follower = s.get(Follower, h.follower_id)
        assert follower is not None
        killswitch.disable_follower(s, follower, "test")
    h.cycle()
    co = h.only()
    assert co.status == CopyStatus.CANCELED and co.reason == "disabled"
    assert h.fx.live_orders() == []


def test_free_tier_is_not_copied(h: Harness) -> None:
    """A FREE-tier follower's copies are skipped with the tier reason at copy time."""
    from models import Follower
    with session_scope(h.db.factory) as s:
        s.get(Follower, h.follower_id).tier = Tier.FREE  # type: ignore[union-attr]
    h.trader_fill()
    h.cycle()
    co = h.only()
    assert co.status == CopyStatus.SKIPPED and co.reason.startswith("tier")  # type: ignore[union-attr]
    assert h.fx.posts == []


# --- batches ---------------------------------------------------------------------------------

def test_one_batch_never_spends_more_than_a_followers_balance(h: Harness) -> None:
    """Balance $30, two followers, 6 fills → 12 copies sized in ONE batch: each follower gets five
    $5.80 orders ($29), its sixth is skipped insufficient_balance; nothing reserved beyond $30."""
    second = add_second_follower(h)
    h.fx.balance = D("30")
    for _ in range(6):
        h.trader_fill()
    from executor import FIRST_BATCH
    assert len(h.copies()) == 12 <= FIRST_BATCH * 2
    jobs = claim_jobs(h.ctx, 12)
    assert len(jobs) == 12
    asyncio.run(submit_jobs(h.ctx, jobs))
    for follower_id in (h.follower_id, second):
        mine = [c for c in h.copies() if c.follower_id == follower_id]
        assert [c.status for c in mine] == [CopyStatus.LIVE] * 5 + [CopyStatus.SKIPPED]
        assert mine[-1].reason == "insufficient_balance"
        reserved = sum((o.price * o.size for o in h.fx.orders.values()
                        if o.body["owner"] == ("key-1" if follower_id == h.follower_id else "key-2")), D(0))
        assert reserved == D("29") <= D("30")
    assert sorted(h.fx.batch_posts) == [5, 5]  # each follower's orders went as one POST /orders


def test_a_batch_respects_what_earlier_batches_reserved(h: Harness) -> None:
    """Two batches of one follower: the second sees the first one's open orders as spent."""
    h.fx.balance = D("20")
    for _ in range(2):
        h.trader_fill()
    h.cycle()
    for _ in range(2):
        h.trader_fill()
    h.cycle()
    statuses = [c.status for c in h.copies()]
    assert statuses == [CopyStatus.LIVE] * 3 + [CopyStatus.SKIPPED]
    assert sum(o.price * o.size for o in h.fx.orders.values()) == D("17.4")


def test_reservations_sum_unfilled_shares_at_the_limit_price(h: Harness) -> None:
    """Open BUY reservations = Σ (venue size − fills of the current order) × limit price, computed
    the same way on SQLite (rows) and PostgreSQL (one aggregate)."""
    from copying.reservations import open_copies, reserved_buy_by_follower
    for _ in range(3):
        h.trader_fill()
    h.cycle()
    h.fx.fill_resting(h.copies()[1].order_hash, "4")  # type: ignore[arg-type]
    h.cycle()
    assert [c.status for c in h.copies()] == [CopyStatus.LIVE, CopyStatus.PARTIAL, CopyStatus.LIVE]
    with h.db.session() as s:
        reserved = reserved_buy_by_follower(s, [h.follower_id], False)
        rows = open_copies(s, False, follower_ids=[h.follower_id])
    assert reserved == {h.follower_id: D("5.8") + D("3.48") + D("5.8")}
    assert sorted(c.remaining for _, c in rows) == [D("6"), D("10"), D("10")]


def test_crash_after_a_batch_signed_then_restart_gives_one_order_per_copy(h: Harness) -> None:
    """Crash after the SIGNED commit of a 6-copy batch (nothing posted): start-up reconciliation
    re-posts each stored body once; every copy ends with exactly one venue order."""
    add_second_follower(h)
    for _ in range(3):
        h.trader_fill()
    h.crash_at = "after_signed"
    with pytest.raises(Crash):
        h.cycle()
    signed = h.copies()
    assert len(signed) == 6 and all(c.status == CopyStatus.SIGNED for c in signed)
    assert h.fx.posts == []
    h.crash_at = None
    asyncio.run(reconcile_unresolved(h.ctx, startup=True))
    h.cycle()
    copies = h.copies()
    assert all(c.status == CopyStatus.LIVE for c in copies)
    assert sorted(h.fx.orders) == sorted(c.order_hash for c in copies)  # type: ignore[type-var]
    assert sorted(h.fx.posts) == sorted(c.signed_payload for c in signed)  # type: ignore[type-var]


def test_crash_after_a_batch_posted_then_restart_finds_every_order(h: Harness) -> None:
    """Crash after a batch's POSTs, before recording: reconciliation finds each order by hash and
    posts nothing again."""
    add_second_follower(h)
    for _ in range(3):
        h.trader_fill()
    h.crash_at = "after_post"
    with pytest.raises(Crash):
        h.cycle()
    assert all(c.status == CopyStatus.SIGNED for c in h.copies())
    posted = len(h.fx.posts)  # every body sent, alone or inside a POST /orders
    assert posted == len(h.fx.orders) == 6
    h.crash_at = None
    asyncio.run(reconcile_unresolved(h.ctx, startup=True))
    h.cycle()
    assert all(c.status == CopyStatus.LIVE for c in h.copies())
    assert len(h.fx.orders) == 6 and len(h.fx.posts) == posted


def test_stop_before_a_batch_signs_gives_its_claims_back(h: Harness) -> None:
    """SIGTERM arriving while a batch gathers its inputs: nothing is signed, the claims return to
    QUEUED, and the next start copies them."""
    for _ in range(3):
        h.trader_fill()
    stop = asyncio.Event()
    real_get_book = h.fx.get_book

    async def get_book_then_stop(token_id: str) -> OrderBook | None:
        stop.set()
        return await real_get_book(token_id)

    h.fx.get_book = get_book_then_stop  # type: ignore[method-assign]
    asyncio.run(executor_cycle(h.ctx, stop, h.manage))
    assert [c.status for c in h.copies()] == [CopyStatus.QUEUED] * 3
    assert all(c.order_hash is None for c in h.copies()) and h.fx.posts == []
    h.fx.get_book = real_get_book  # type: ignore[method-assign]
    h.cycle()
    assert [c.status for c in h.copies()] == [CopyStatus.LIVE] * 3


def test_paper_batch_spends_the_paper_balance_once(database: Database, fernet_key: str) -> None:
    """Paper, $20 paper balance, four marketable $5.80 copies in one batch: three fill, the fourth
    is skipped; the paper balance ends at 20 − 3 × 5.80."""
    h = Harness(database, fernet_key, paper=True)
    h.fx.books[YES] = book(YES, [("0.55", "500")], [("0.58", "500")])
    from models import Follower
    with session_scope(h.db.factory) as s:
        s.get(Follower, h.follower_id).paper_balance = D("20")  # type: ignore[union-attr]
    for _ in range(4):
        h.trader_fill()
    h.cycle()
    assert [c.status for c in h.copies()] == [CopyStatus.FILLED] * 3 + [CopyStatus.SKIPPED]
    assert h.copies()[3].reason == "insufficient_balance"
    with h.db.session() as s:
        assert s.scalar(select(Follower.paper_balance)) == D("20") - 3 * D("5.8")
    assert h.fx.posts == []


def test_matched_order_with_lagging_trades_stays_open_until_they_show(h: Harness) -> None:
    """The venue says matched but /data/trades lags: the copy is not closed short; it fills later."""
    h.fx.books[YES] = book(YES, [("0.55", "500")], [("0.58", "500")])  # marketable at 0.58
    h.fx.hide_trades = True
    h.trader_fill()
    h.cycle()
    co = h.only()
    assert co.status in (CopyStatus.LIVE, CopyStatus.IN_DOUBT, CopyStatus.PARTIAL), (co.status, co.reason)
    assert co.status != CopyStatus.CANCELED
    h.fx.hide_trades = False
    h.cycle()
    co = h.only()
    assert co.status == CopyStatus.FILLED and co.filled_size == D("10")
