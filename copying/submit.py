"""A batch of claimed copy orders → venue orders, each exactly once (promise 1).

The order of steps is the invariant, for the whole batch at once:
1. (`copying.claims.claim_jobs`) claim and load in one short transaction, gated by the kill
   switch and credentials. Then, with no lock held and nothing written: markets and books per
   distinct token, balances per follower (memory caches first, the rest fetched concurrently);
   price each copy (`smart_pricing.price_copy`).
2. one transaction: lock the batch's followers and copies in (follower id, copy id) order, so
   two executors never deadlock on followers; re-check every claim; read the followers' open
   reservations once (`copying.reservations`); size each copy in copy id order against what is
   left after the open copies AND the copies sized before it in this batch; sign (each
   follower's key decrypted and parsed once, only inside `crypto.signer_for`); store the exact
   body + its locally computed order hash, CLAIMED → SIGNED; write skips and releases; commit.
   Then `crash_hook("after_signed")`.
3. POST exactly those bytes, once each: a follower's orders together as one POST /orders (≤ 15,
   each body byte for byte), a bounded number of requests in flight. SIGTERM is not looked at
   between 2 and 4: a batch that signed is always posted and recorded.
4. `crash_hook("after_post")`; one transaction records every outcome (LIVE / PARTIAL / FILLED /
   REJECTED / IN_DOUBT) and any paper fills; matched or delayed answers are read back per order.
A crash between 2 and 4 leaves SIGNED rows that `copying.reconcile` settles by hash (or re-posts
the same bytes); nothing ever re-signs an order whose outcome is in doubt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from copying.balances import ledger_balances, needs_reading, refresh_balances
from copying.claims import Job, JobAction, Label, holds_claim, lock_copies, release_claim, release_claims
from copying.context import SUBMIT_BOOK_AGE, ExecutorContext, book_for, creds_of, market_for, with_book
from copying.crowding import (
    SKIP_REASON as CROWDING_SKIP,
)
from copying.crowding import (
    CrowdBook,
    Demand,
    cap_of,
    existing_plan,
    load_or_write_plan,
    minimum_shares,
    plan_members,
    plan_places,
    proportional_demand,
    shrink_note,
    skip_detail,
)
from copying.event_risk import MarketMeta, has_event_limits, market_meta, meta_of, realized_loss_today, risk_use
from copying.latency import observe_stages
from copying.leader import holding_before_fill
from copying.ledger import position_for
from copying.orders import OrderPlan, SkipCopy, plan_order, sign_planned, spec_for
from copying.outcomes import record_post_outcome, skip_copy
from copying.reservations import Reservations
from copying.sizing import (
    CapReason,
    FollowerState,
    FollowRules,
    LeaderFill,
    SizedOrder,
    Skip,
    sell_down_to,
    size_copy,
)
from copying.states import Event
from copying.venue_io import refresh_copy
from crypto import signer_for
from infra.db import session_scope
from models import CopyOrder, CopyOrigin, CopyStatus, Follower
from smart_pricing import MARKET_AFTER, PriceAction, PriceDecision, price_copy, slippage_limit
from wire.parse import MAX_BATCH_ORDERS
from wire.records import Accepted
from wire.types import MarketInfo, OrderBook, Side

log = logging.getLogger("pmct.executor")
ZERO = Decimal(0)
TX_ATTEMPTS = 3
_RETRYABLE_PGCODES = {"40P01", "40001"}  # deadlock detected, serialization failure
T = TypeVar("T")


# --- step 1: inputs and prices (no lock held, nothing written) ----------------------------------

MarketAndBook = tuple[MarketInfo | Exception, OrderBook | Exception | None]


async def _market_and_book(ctx: ExecutorContext, sem: asyncio.Semaphore, token: str,
                           cond: str) -> MarketAndBook:
    async with sem:
        try:
            market = await market_for(ctx, token, cond)
        except Exception as exc:  # noqa: BLE001 - RetryLater or network trouble: try again next cycle
            return exc, None
        try:
            return market, await book_for(ctx, token, max_age=SUBMIT_BOOK_AGE)
        except Exception as exc:  # noqa: BLE001
            return market, exc


async def gather_inputs(ctx: ExecutorContext, jobs: list[Job]) -> set[int]:
    """Markets and books (per distinct token, concurrently); price each copy. Balances come from
    the ledger (`copying.balances`): the CLOB is read here only for a BUYing follower that was
    never read or whose reading is very old (the background refresh keeps the others fresh).
    Returns the followers whose balance could not be read (their BUY copies were released)."""
    now = ctx.clock()
    todo: list[Job] = []
    for job in jobs:
        if job.action is not None:
            continue
        try:
            job.creds = creds_of(ctx, job.follower)
        except Exception as exc:  # noqa: BLE001 - e.g. a key ring that cannot decrypt: retry later
            log.exception("copy %s: credentials unusable", job.id)
            job.release(f"credentials: {type(exc).__name__}")
            continue
        todo.append(job)
    tokens = sorted({(j.co.token_id, j.co.condition_id) for j in todo})
    buyers = {j.follower.id for j in todo if not ctx.paper and Side(j.co.side) is Side.BUY}
    sem = asyncio.Semaphore(max(1, ctx.post_concurrency))  # requests in flight, as for the POSTs
    unread = set(needs_reading(ctx, buyers)) if buyers else set()
    got, _ = await asyncio.gather(
        asyncio.gather(*(_market_and_book(ctx, sem, t, c) for t, c in tokens)),
        refresh_balances(ctx, unread) if unread else asyncio.sleep(0))
    failed = set(needs_reading(ctx, unread)) if unread else set()
    inputs = {t: g for (t, _), g in zip(tokens, got, strict=True)}
    for job in todo:
        market, book = inputs[job.co.token_id]
        if isinstance(market, Exception):
            job.release(f"{type(market).__name__}: {market}")
        elif isinstance(book, Exception):
            job.release(f"{type(book).__name__}: {book}")
        elif book is None:
            job.skip(SkipCopy("no_orderbook"))
        elif job.co.side == "BUY" and job.follower.id in failed:
            job.release("balance read failed")
        else:
            job.market = with_book(ctx, market, book)
            _price(ctx, job, book, now)
    return failed


def _price(ctx: ExecutorContext, job: Job, book: OrderBook, now: datetime) -> None:
    """Price one copy against the book: a decision to sign, or a skip or a wait.

    An exit without a leader price (a MERGE, CONVERSION or SNAPSHOT row, a remainder, a close)
    is priced against the best bid it first sees (`Job.reference_price`, stored as its
    `trader_price`), and a close sells at market within the slippage limit of that price.
    """
    assert job.market is not None
    job.book, job.best_bid = book, book.best_bid
    reference = job.co.trader_price
    if job.is_exit and reference <= 0:
        if book.best_bid is None:
            job.hold("no bid to sell an exit against yet")
            return
        reference = job.reference_price = book.best_bid
    elapsed = MARKET_AFTER if job.co.origin == CopyOrigin.CLOSE else now - job.reference_time
    decision = price_copy(Side(job.co.side), reference, book, job.market.tick_size, elapsed,
                          ctx.max_slippage(job.follow))
    if decision.action is PriceAction.SKIP:
        job.skip(SkipCopy(f"pricing_{decision.reason.value or 'skip'}"))
    elif decision.action is PriceAction.WAIT:
        job.hold(f"pricing wait: {decision.reason.value}")
    else:
        job.decision = decision


# --- step 2: size and sign, one transaction ------------------------------------------------------

@dataclass
class EventRisk:
    """What the batch's followers with event-level limits have at risk (`copying.event_risk`)."""

    metas: dict[str, MarketMeta] = field(default_factory=dict)
    loss_today: dict[int, Decimal] = field(default_factory=dict)
    window: timedelta = timedelta(hours=24)

    @classmethod
    def load(cls, ctx: ExecutorContext, s: Session, book: Reservations, followers: list[Follower],
             now: datetime) -> EventRisk:
        """Markets of their positions and open BUYs (one query), and the day's losses (two)."""
        risky = {f.id: f for f in followers if has_event_limits(f)}
        if not risky:
            return cls()
        conditions = {c for fid in risky for c in book.follower_usd_by_condition(fid)}
        stops = [fid for fid, f in risky.items() if f.daily_loss_stop is not None]
        return cls(market_meta(s, conditions), realized_loss_today(s, stops, ctx.paper, book.day),
                   timedelta(hours=ctx.settings.resolution_window_hours))

    def rules(self, book: Reservations, follower: Follower, market: MarketInfo) -> dict[str, Decimal | None]:
        """The FollowRules fields of the follower's event-level limits for a BUY in `market`."""
        if not has_event_limits(follower):
            return {}
        use = risk_use(book.follower_usd_by_condition(follower.id), self.metas, market.condition_id,
                       meta_of(market), self.window)
        return {"event_cap_usd": follower.event_cap, "event_exposure_usd": use.event,
                "category_cap_usd": follower.category_cap if market.category else None,
                "category_exposure_usd": use.category,
                "window_cap_usd": follower.window_cap if market.end_date is not None else None,
                "window_exposure_usd": use.window,
                "daily_loss_stop_usd": follower.daily_loss_stop,
                "realized_loss_today_usd": self.loss_today.get(follower.id, ZERO)}


def _size(ctx: ExecutorContext, s: Session, job: Job, co: CopyOrder, follower: Follower,
          book: Reservations, balances: dict[int, Decimal | None], risk: EventRisk) -> Skip | SizedOrder:
    """Sizing of one copy against what is left for its follower; the order or a Skip.

    An exit (SELL) is sized against the follow's target holding (`copying.sizing.size_copy`);
    a remainder sells what is held above the target, a close everything held.
    """
    assert job.market is not None and job.decision is not None
    side, follow, fill, market = Side(co.side), job.follow, job.fill, job.market
    if side is Side.SELL:
        held = book.held_shares(follow.id, co.token_id)
        target = book.target(follow.id, co.token_id)
        price = job.decision.price or co.trader_price
        if fill is None:  # a remainder keeps the target; a close sells everything held
            keep = target if co.origin == CopyOrigin.REMAINDER else ZERO
            return sell_down_to(held, keep, market, price, job.best_bid,
                                reason_capped=CapReason.CLOSE_OUT if keep == 0 else None)
        before = holding_before_fill(s, fill)
        state = FollowerState(available_usd=ZERO, held_shares=held, trader_shares_before=before,
                              target_shares=target)
        return size_copy(LeaderFill(side, fill.size, co.trader_price, co.token_id, fill.is_combo),
                         FollowRules(copy_pct=follow.copy_pct, max_usd_per_trade=follow.max_usd_per_trade),
                         market, state, price=price, market_price=job.best_bid)
    assert fill is not None
    available = (follower.paper_balance if ctx.paper else balances.get(follower.id)) or ZERO
    available -= book.reserved_buy_usd(follower.id)
    rules = FollowRules(
        copy_pct=follow.copy_pct, max_usd_per_trade=follow.max_usd_per_trade,
        min_price=follow.price_min, max_price=follow.price_max, daily_cap_usd=follow.daily_usd_cap,
        spent_today_usd=book.spent_today_usd(follow.id),
        exposure_cap_usd=follow.market_exposure_cap,
        exposure_usd=book.exposure_usd(follow.id, co.condition_id),
        follower_daily_cap_usd=follower.daily_usd_cap,
        follower_spent_today_usd=book.follower_spent_today_usd(follower.id),
        follower_exposure_cap_usd=follower.max_open_exposure,
        follower_exposure_usd=book.follower_exposure_usd(follower.id),
        **risk.rules(book, follower, market))  # type: ignore[arg-type]
    state = FollowerState(available_usd=max(available, ZERO))
    cap_price = slippage_limit(side, co.trader_price, market.tick_size, ctx.max_slippage(follow))
    decided = job.decision.price
    return size_copy(LeaderFill(side, fill.size, fill.price, co.token_id, fill.is_combo), rules, market,
                     state, price=max(cap_price, decided or cap_price))


def crowd_caps(ctx: ExecutorContext, s: Session, jobs: list[Job], now: datetime) -> CrowdBook:
    """The crowding plans of the batch's BUY copies of leader fills (`copying.crowding`), each
    read, or written by the first batch that needs it, under its row lock (taken after the
    followers' and copies' locks)."""
    crowd = CrowdBook()
    if not ctx.settings.crowding_control:
        return crowd
    by_fill: dict[int, list[Job]] = {}
    for job in jobs:
        if (job.action is None and job.fill is not None and job.co.side == "BUY"
                and job.co.origin == CopyOrigin.FILL and job.book is not None and job.market is not None):
            by_fill.setdefault(job.fill.id, []).append(job)
    for fill_id in sorted(by_fill):
        group = by_fill[fill_id]
        plan = existing_plan(s, fill_id, ctx.paper)
        if plan is None:
            members = plan_members(s, fill_id, ctx.paper, pinned_only=ctx.pinned_only)
            if len(members) < 2:
                continue
            first = group[0]
            assert first.fill is not None and first.market is not None and first.book is not None
            demands = []
            for m in members:
                limit = slippage_limit(Side.BUY, m.trader_price, first.market.tick_size, ctx.max_slippage(m))
                demands.append(Demand(m.copy_id, m.follow_id, proportional_demand(
                    first.fill.size, m.copy_pct, m.max_usd_per_trade, limit), limit,
                    minimum_shares(first.market.min_size, limit)))
            plan = load_or_write_plan(s, first.fill, ctx.paper, first.book.asks, demands, now)
        crowd.plans[fill_id] = plan
        places = plan_places(plan)
        for job in group:
            cap = cap_of(plan, job.id, places)
            if cap is not None:
                crowd.caps[job.id] = cap
            crowd.fill_of[job.id] = fill_id
            crowd.order[job.id] = places.get(job.id, len(places))
    return crowd


def apply_crowding(crowd: CrowdBook, co: CopyOrder, sized: SizedOrder, market: MarketInfo) -> SizedOrder:
    """A BUY within its share of the book: as sized, shrunk (noted on the copy), or SkipCopy."""
    cap = crowd.caps.get(co.id)
    if cap is None:
        return sized
    if sized.shares <= cap.shares:
        crowd.took(co.id, sized.shares)
        return sized
    unit = sized.notional / sized.shares
    minimum = minimum_shares(market.min_size, unit)
    if cap.shares < minimum:
        raise SkipCopy(CROWDING_SKIP, skip_detail(cap, sized.shares, minimum))
    co.crowd_note = shrink_note(cap, sized.shares)
    crowd.took(co.id, cap.shares)
    log.info("copy %s: %s", co.id, co.crowd_note)
    return replace(sized, shares=cap.shares, notional=cap.shares * unit, reason_capped=CapReason.CROWDING)


def marketable_exit(ctx: ExecutorContext, job: Job, co: CopyOrder) -> PriceDecision:
    """A FAK sale at the best bid within the slippage limit of the copy's reference price."""
    assert job.book is not None and job.market is not None
    return price_copy(Side.SELL, co.trader_price, job.book, job.market.tick_size, MARKET_AFTER,
                      ctx.max_slippage(job.follow))


def store_target(s: Session, co: CopyOrder, book: Reservations, sized: SizedOrder | Skip) -> None:
    """Write an exit's new target on the follow's position (also when nothing is sold)."""
    if sized.target is None:
        return
    pos = position_for(s, co, for_update=True)
    pos.target_size = sized.target
    book.set_target(co.follow_id, co.token_id, sized.target)


def _settle(ctx: ExecutorContext, s: Session, co: CopyOrder, job: Job, now: datetime) -> None:
    """Write a decision taken before sizing: skip, release now, or hold until later."""
    if job.action is JobAction.SKIP:
        assert job.skip_reason is not None
        skip_copy(s, co, job.skip_reason)
    elif job.action is JobAction.HOLD:
        co.lease_expires_at = now + timedelta(seconds=ctx.settings.order_manage_interval)
    else:
        release_claim(s, co, job.why)
        log.info("copy %s released for a later cycle: %s", co.id, job.why)


def sign_batch(ctx: ExecutorContext, jobs: list[Job]) -> list[Job]:
    """Write skips/releases and size + sign the rest in one transaction; returns the signed jobs.

    A deadlock rolls the whole transaction back (nothing of it was committed, so nothing was
    posted) and it is done again from the start, new signatures included.
    """
    now = ctx.clock()
    to_size = [j for j in jobs if j.action is None]

    def work(s: Session) -> list[Job]:
        signed: list[Job] = []
        # one statement locks the followers and the copies, in (follower id, copy id) order: a
        # follower's row is always taken before any other follower with a larger id
        cos: dict[int, CopyOrder] = {}
        followers: dict[int, Follower] = {}
        for co, follower in s.execute(
                select(CopyOrder, Follower).join(Follower, Follower.id == CopyOrder.follower_id)
                .where(CopyOrder.id.in_(sorted(j.id for j in jobs)))
                .order_by(Follower.id, CopyOrder.id).with_for_update()
                .execution_options(populate_existing=True)):
            cos[co.id], followers[follower.id] = co, follower
        mine = {cid for cid, co in cos.items() if holds_claim(ctx, co)}
        limited = [fid for fid, f in followers.items()
                   if f.daily_usd_cap is not None or f.max_open_exposure is not None]
        eventful = [fid for fid, f in followers.items() if has_event_limits(f)]
        book = Reservations.load(s, to_size, ctx.paper, now, limited, eventful) if to_size else None
        risk = EventRisk.load(ctx, s, book, [followers[j.follower.id] for j in to_size], now) \
            if to_size and book is not None else EventRisk()
        # the ledger is read under the followers' locks: every executor sees the same pUSD
        buying = {j.follower.id for j in to_size}
        balances = ledger_balances(s, [f for fid, f in followers.items() if fid in buying]) \
            if to_size and not ctx.paper else {}
        crowd = crowd_caps(ctx, s, [j for j in to_size if j.id in mine], now)
        plans: dict[int, list[tuple[Job, OrderPlan]]] = {}  # follower id → its orders, in id order
        for job in jobs:  # sizing in copy id order: earlier copies are served first
            if job.id not in mine:
                job.label = Label.LOST_CLAIM
                continue
            co = cos[job.id]
            if job.action is not None:
                _settle(ctx, s, co, job, now)
                continue
            assert book is not None and job.market is not None and job.decision is not None
            follower = followers[job.follower.id]
            co.paper = ctx.paper
            if ctx.paper and follower.paper_balance is None:
                follower.paper_balance = ctx.settings.paper_balance_usd
            if job.reference_price is not None:
                co.trader_price = job.reference_price
            sized = _size(ctx, s, job, co, follower, book, balances, risk)
            if isinstance(sized, SizedOrder) and (sized.marketable or co.origin == CopyOrigin.CLOSE):
                decision = marketable_exit(ctx, job, co)
                if decision.action is not PriceAction.MARKET:  # beyond the slippage limit: wait
                    job.hold(f"marketable exit waits: {decision.reason.value or decision.action.value}")
                    _settle(ctx, s, co, job, now)
                    continue
                job.decision = decision
            store_target(s, co, book, sized)
            try:
                if isinstance(sized, Skip):
                    raise SkipCopy(sized.reason.value, sized.detail)
                sized = apply_crowding(crowd, co, sized, job.market)
                plan = plan_order(ctx, co, follower, job.market, job.decision, sized.shares)
            except SkipCopy as skip:
                skip_copy(s, co, skip)
                job.skip(skip)
                continue
            co.intended_size = sized.shares
            assert plan.decision.price is not None
            book.reserve(follower.id, co, plan.decision.price, plan.venue_size, now)
            job.co, job.follower = co, follower
            plans.setdefault(follower.id, []).append((job, plan))
        keyring = ctx.keyring
        assert not plans or keyring is not None
        for fid, planned in plans.items():  # one decryption of each follower's key per batch
            follower = followers[fid]
            assert keyring is not None
            with signer_for(keyring, follower.encrypted_private_key, follower.signer_address) as signer:
                for job, plan in planned:
                    sign_planned(ctx, s, job.co, plan, signer, job.creds, Event.SIGN)
                    assert job.market is not None
                    job.spec = spec_for(job.co, follower, job.market, job.creds)
                    signed.append(job)
        # posting order: each fill's copies in its crowding plan's (rotated) order
        return sorted(signed, key=lambda j: (crowd.position(j.id), j.id))

    return _retrying(ctx, work)


# --- steps 3 and 4: post, record ----------------------------------------------------------------

def post_groups(jobs: list[Job], size: int) -> list[list[Job]]:
    """The batch's orders cut into POST units: per follower (one API key), at most `size` each."""
    by_follower: dict[int, list[Job]] = {}
    for job in jobs:
        by_follower.setdefault(job.follower.id, []).append(job)
    return [group[i:i + size] for group in by_follower.values() for i in range(0, len(group), size)]


async def post_batch(ctx: ExecutorContext, jobs: list[Job]) -> None:
    """POST every signed body once: a follower's orders together (POST /orders, ≤ 15), at most
    `ctx.post_concurrency` requests in flight."""
    sem = asyncio.Semaphore(max(1, ctx.post_concurrency))

    async def one(group: list[Job]) -> None:
        async with sem:
            sent = ctx.clock()
            for job in group:
                job.sent_at = sent
            specs = [job.spec for job in group if job.spec is not None]
            try:
                answers = await ctx.venue.post_many(specs)
            except Exception:  # noqa: BLE001 - outcome unknown: stays SIGNED, reconciled by hash
                log.exception("copies %s: POST failed unexpectedly; they will be reconciled",
                              [job.id for job in group])
                return
            answered = ctx.clock()
            for job, (outcome, fills) in zip(group, answers, strict=True):
                job.outcome, job.fills, job.answered_at = outcome, fills, answered

    size = MAX_BATCH_ORDERS if ctx.post_orders_batches else 1
    await asyncio.gather(*(one(group) for group in post_groups(jobs, size)))


def _retrying(ctx: ExecutorContext, work: Callable[[Session], T]) -> T:
    """Run `work` in one transaction, again from scratch after a deadlock (it must be idempotent)."""
    for attempt in range(1, TX_ATTEMPTS + 1):
        try:
            with session_scope(ctx.factory) as s:
                return work(s)
        except DBAPIError as exc:
            code = getattr(exc.orig, "pgcode", None)
            if code not in _RETRYABLE_PGCODES or attempt == TX_ATTEMPTS:
                raise
            log.warning("transaction rolled back (%s); retrying, attempt %d", code, attempt + 1)
    raise AssertionError("unreachable")


def record_batch(ctx: ExecutorContext, jobs: list[Job]) -> None:
    """Record every POST outcome (and paper fills) in one transaction."""
    def work(s: Session) -> None:
        cos = lock_copies(s, [j.id for j in jobs])
        # by follower: paper fills lock follower rows, taken here in the order signing takes them
        for job in sorted(jobs, key=lambda j: (j.follower.id, j.id)):
            assert job.spec is not None
            co = cos.get(job.id)
            if co is None or co.order_hash != job.spec.order_hash:
                job.label = Label.of(co.status) if co is not None else Label.LOST_CLAIM
                continue  # somebody (reconcile) moved on already
            co.posted_at = co.posted_at or job.sent_at
            if job.outcome is not None:
                record_post_outcome(ctx, s, co, job.outcome, job.fills)
                if isinstance(job.outcome, Accepted) and job.answered_at is not None:
                    co.acked_at = job.answered_at
                if co.status == CopyStatus.CANCELING:  # refused for a stale tick, or no match
                    ctx.resume_ids.add(co.id)
            job.label = Label.of(co.status)
            job.co = co

    _retrying(ctx, work)


async def read_back(ctx: ExecutorContext, jobs: list[Job]) -> None:
    """Matched or delayed answers: read the order and its fills now (per order, concurrently)."""
    todo = [j for j in jobs if isinstance(j.outcome, Accepted) and j.outcome.status != "live"
            and not ctx.paper and j.co.order_hash == (j.spec.order_hash if j.spec else None)]
    if not todo:
        return
    sem = asyncio.Semaphore(max(1, ctx.post_concurrency))

    async def one(job: Job) -> object:
        assert job.market is not None
        async with sem:
            try:
                return await refresh_copy(ctx, job.id, job.market)
            except Exception as exc:  # noqa: BLE001 - the manager reads it again later
                log.warning("copy %s: read-back failed: %s", job.id, exc)
                return None

    await asyncio.gather(*(one(j) for j in todo))
    with session_scope(ctx.factory) as s:
        status = dict(s.execute(select(CopyOrder.id, CopyOrder.status)
                                .where(CopyOrder.id.in_([j.id for j in todo]))).all())
    for job in todo:
        if job.id in status:
            job.label = Label.of(status[job.id])


# --- the whole batch ---------------------------------------------------------------------------

async def prepare_jobs(ctx: ExecutorContext, jobs: list[Job], stop: asyncio.Event | None = None) -> list[Job]:
    """Steps 1-2: inputs, prices, sizes and signatures committed; returns the signed jobs.

    With `stop` set before signing, every claim is given back and nothing is signed.
    """
    await gather_inputs(ctx, jobs)
    if stop is not None and stop.is_set():
        release_claims(ctx, [j.id for j in jobs], "shutdown")
        for job in jobs:
            job.label = Label.RELEASED
        return []
    signed = sign_batch(ctx, jobs)
    if signed:
        ctx.crash_hook("after_signed")
    return signed


async def post_signed(ctx: ExecutorContext, signed: list[Job], *, deferred: list[Job] | None = None) -> None:
    """Steps 3-4 for signed jobs: POST once, record; matched answers read back now, or appended
    to `deferred` for the caller to read back later."""
    if not signed:
        return
    await post_batch(ctx, signed)
    ctx.crash_hook("after_post")
    record_batch(ctx, signed)
    observe_stages(signed)
    if deferred is None:
        await read_back(ctx, signed)
    else:
        deferred.extend(signed)


async def submit_jobs(ctx: ExecutorContext, jobs: list[Job], stop: asyncio.Event | None = None,
                      *, deferred: list[Job] | None = None) -> dict[int, Label]:
    """Price, size, sign and submit claimed jobs (steps 1-4); the label of each copy id.

    With `stop` set before signing, every claim is given back and nothing is signed; once the
    batch has signed, its POSTs and their recording always run to the end.
    """
    signed = await prepare_jobs(ctx, jobs, stop)
    await post_signed(ctx, signed, deferred=deferred)
    return {j.id: j.label or Label.ERROR for j in jobs}
