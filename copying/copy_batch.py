"""A batch of claimed copy orders → venue orders, each exactly once (DESIGN.md promise 1).

The order of steps is the invariant, for the whole batch at once:
1. claim and load in one short transaction: the copies with their fills, follows and followers
   (one query, `FOR UPDATE OF copy_orders SKIP LOCKED`) and the kill switch (one query); gate.
   Then, with no lock held and nothing written: markets and books per distinct token, balances
   per follower (memory caches first, the rest fetched concurrently); price.
2. one transaction: lock the batch's followers and copies in (follower id, copy id) order, so
   two executors never deadlock on followers; re-check every claim; read the followers' open
   reservations once (one aggregate on PostgreSQL); size each copy in copy id order against what
   is left after the open copies AND the copies sized before it in this batch (kept in memory);
   sign (each follower's key decrypted once, plaintext only inside `crypto.signing_key`); store
   the exact body + its locally computed order hash, CLAIMED → SIGNED; write skips and releases;
   commit. Then `crash_hook("after_signed")`.
3. POST exactly those bytes, once each: a follower's orders together as one POST /orders (≤ 15,
   each body byte for byte), a bounded number of requests in flight. SIGTERM is not looked at
   between 2 and 4: a batch that signed is always posted and recorded.
4. `crash_hook("after_post")`; one transaction records every outcome (LIVE / PARTIAL / FILLED /
   REJECTED / IN_DOUBT) and any paper fills; matched or delayed answers are read back per order.
A crash between 2 and 4 leaves SIGNED rows that `order_work.reconcile_unresolved` settles by
hash (or re-posts the same bytes); nothing ever re-signs an order whose outcome is in doubt.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import Numeric, and_, bindparam, func, select, type_coerce
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, defer

from copying.copy_submit import (
    ExecutorContext,
    OrderPlan,
    SkipCopy,
    book_for,
    creds_of,
    live_balance,
    market_for,
    plan_order,
    record_post_outcome,
    refresh_copy,
    sign_planned,
    skip_copy,
    trader_shares_before,
)
from copying.killswitch import KillSwitchState
from copying.order_work import mark_claimed
from copying.sizing import FollowerState, FollowRules, LeaderFill, Skip, size_copy
from copying.states import OPEN_STATES, transition
from copying.venues import OrderRefresh, OrderSpec
from crypto import signing_key
from infra import metrics
from infra.db import DecimalType, session_scope
from models import CopyOrder, CopyStatus, Follow, Follower, FollowerFill, FollowerPosition, TraderFill
from smart_pricing import PriceAction, PriceDecision, price_copy, slippage_limit
from wire.parse import MAX_BATCH_ORDERS
from wire.records import Accepted, PostOutcome
from wire.types import ApiCreds, MarketInfo, OrderBook, OrderType, Side

log = logging.getLogger("pmct.executor")
ZERO = Decimal(0)
TX_ATTEMPTS = 3
_RETRYABLE_PGCODES = {"40P01", "40001"}  # deadlock detected, serialization failure
T = TypeVar("T")


@dataclass
class Job:
    """One claimed copy on its way through a batch."""

    co: CopyOrder
    fill: TraderFill
    follow: Follow
    follower: Follower
    label: str = ""  # final word on this copy (set once decided)
    action: tuple[str, Any] | None = None  # ("skip", SkipCopy) | ("release", why) | ("hold", why)
    market: MarketInfo | None = None
    decision: PriceDecision | None = None
    creds: ApiCreds | None = None
    spec: OrderSpec | None = None
    sent_at: datetime | None = None
    outcome: PostOutcome | None = None
    fills: tuple[Any, ...] = ()

    @property
    def id(self) -> int:
        """The copy order id."""
        return self.co.id

    def decide(self, kind: str, what: Any, label: str) -> None:
        """Settle this copy without signing it (written in the signing transaction)."""
        self.action, self.label = (kind, what), label


# --- reservations: loaded once per batch, then kept current in memory -------------------------

@dataclass(frozen=True)
class OpenCopy:
    """A follower's copy that may still trade: its unfilled shares at its limit price."""

    id: int
    follow_id: int
    side: str
    token_id: str
    condition_id: str
    price: Decimal
    remaining: Decimal
    signed_at: datetime | None


def open_copies(session: Session, paper: bool, *, follower_ids: Iterable[int] = (),
                follow_ids: Iterable[int] = ()) -> list[tuple[int, OpenCopy]]:
    """(follower id, open copy) for every open copy of these followers or follows (one query)."""
    followers, follows = sorted(set(follower_ids)), sorted(set(follow_ids))
    if not followers and not follows:
        return []
    who = CopyOrder.follower_id.in_(followers) if followers else CopyOrder.follow_id.in_(follows)
    rows = session.execute(select(
        CopyOrder.id, CopyOrder.follower_id, CopyOrder.follow_id, CopyOrder.side, CopyOrder.token_id,
        CopyOrder.condition_id, CopyOrder.intended_price, CopyOrder.venue_size, CopyOrder.signed_at,
        FollowerFill.size,
    ).outerjoin(FollowerFill, and_(FollowerFill.copy_order_id == CopyOrder.id,
                                   FollowerFill.order_hash == CopyOrder.order_hash))
        .where(who, CopyOrder.paper == paper, CopyOrder.status.in_(OPEN_STATES))).all()
    filled: dict[int, Decimal] = defaultdict(Decimal)
    copies: dict[int, tuple[Any, ...]] = {}
    for *row, fill_size in rows:  # one row per fill of the current venue order (or one without)
        copies[row[0]] = tuple(row)
        if fill_size is not None:
            filled[row[0]] += fill_size
    return [(fid, OpenCopy(cid, follow_id, side, token, cond, price or ZERO,
                           max((venue or ZERO) - filled[cid], ZERO), signed))
            for cid, fid, follow_id, side, token, cond, price, venue, signed in copies.values()]


def reserved_buy_by_follower(session: Session, follower_ids: Iterable[int], paper: bool) -> dict[int, Decimal]:
    """pUSD held back by each follower's open BUY copies: Σ unfilled shares × limit price.

    PostgreSQL sums in exact NUMERIC (one aggregate row per follower, however many copies are
    open); SQLite stores decimals as text, so its copies are read and summed here in Decimal.
    """
    ids = sorted(set(follower_ids))
    out = {fid: ZERO for fid in ids}
    if not ids:
        return out
    if session.get_bind().dialect.name != "postgresql":
        for fid, c in open_copies(session, paper, follower_ids=ids):
            if c.side == "BUY":
                out[fid] += c.remaining * c.price
        return out
    rows = session.execute(_reserved_statement(), {"follower_ids": ids, "paper": paper})
    for fid, total in rows:
        out[fid] = total or ZERO
    return out


@lru_cache(maxsize=1)
def _reserved_statement() -> Any:
    """The PostgreSQL aggregate behind `reserved_buy_by_follower` (built once: ~0.3 ms each time)."""
    def num(col: Any) -> Any:  # the NUMERIC column as SQL arithmetic sees it
        return func.coalesce(type_coerce(col, Numeric()), 0)

    filled = (select(func.coalesce(func.sum(type_coerce(FollowerFill.size, Numeric())), 0))
              .where(FollowerFill.copy_order_id == CopyOrder.id,
                     FollowerFill.order_hash == CopyOrder.order_hash)
              .correlate(CopyOrder).scalar_subquery())
    remaining = func.greatest(num(CopyOrder.venue_size) - filled, 0)
    usd = type_coerce(func.sum(remaining * num(CopyOrder.intended_price)), DecimalType())
    return (select(CopyOrder.follower_id, usd)
            .where(CopyOrder.follower_id.in_(bindparam("follower_ids", expanding=True)),
                   CopyOrder.paper == bindparam("paper"), CopyOrder.side == "BUY",
                   CopyOrder.status.in_(OPEN_STATES))
            .group_by(CopyOrder.follower_id))


@dataclass
class Reservations:
    """What sizing must subtract, for the followers and follows of one batch.

    Read once under the followers' row locks (one query in the common case: no daily or exposure
    cap and no SELL); every copy signed in the batch is then added with `reserve`, so the next
    copy of the same follower sees it exactly as if it had been committed before.
    """

    day: datetime
    reserved: dict[int, Decimal]  # follower id → USD held back by open BUY copies
    open_by_follow: dict[int, list[OpenCopy]]  # only for follows whose sizing needs the detail
    filled_today: dict[int, Decimal]  # follow id → USD filled by its BUY copies signed today
    positions: dict[tuple[int, str], tuple[str, Decimal, Decimal]]  # (follow, token) → (cond, size, avg)

    @classmethod
    def load(cls, s: Session, jobs: list[Job], paper: bool, now: datetime) -> Reservations:
        """Read every reservation the jobs' sizing needs (caller holds the follower locks).

        Per-follow detail (open copies, today's fills, positions) is read only for follows with
        a daily cap, a market exposure cap or a SELL to size: sizing ignores it otherwise.
        """
        day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        reserved = reserved_buy_by_follower(s, (j.follower.id for j in jobs), paper)
        capped = sorted({j.follow.id for j in jobs if j.follow.daily_usd_cap is not None})
        positioned = sorted({j.follow.id for j in jobs
                             if j.follow.market_exposure_cap is not None or j.co.side == "SELL"})
        detailed = sorted(set(capped) | set(positioned))
        open_by: dict[int, list[OpenCopy]] = {fid: [] for fid in detailed}
        for _, c in open_copies(s, paper, follow_ids=detailed):
            open_by[c.follow_id].append(c)
        filled: dict[int, Decimal] = defaultdict(Decimal)
        positions: dict[tuple[int, str], tuple[str, Decimal, Decimal]] = {}
        if capped:
            for follow_id, size, avg in s.execute(select(
                    CopyOrder.follow_id, CopyOrder.filled_size, CopyOrder.avg_fill_price).where(
                    CopyOrder.follow_id.in_(capped), CopyOrder.side == "BUY",
                    CopyOrder.id.not_in([j.id for j in jobs]), CopyOrder.signed_at.is_not(None),
                    CopyOrder.signed_at >= day)):
                filled[follow_id] += (size or ZERO) * (avg or ZERO)
        if positioned:
            for follow_id, token, cond, size, avg in s.execute(select(
                    FollowerPosition.follow_id, FollowerPosition.token_id, FollowerPosition.condition_id,
                    FollowerPosition.size, FollowerPosition.avg_cost).where(
                    FollowerPosition.follow_id.in_(positioned), FollowerPosition.paper == paper)):
                positions[(follow_id, token)] = (cond, size, avg)
        return cls(day, reserved, open_by, filled, positions)

    def reserved_buy_usd(self, follower_id: int) -> Decimal:
        """pUSD held back by the follower's open BUY copies (unfilled shares × limit price)."""
        return self.reserved.get(follower_id, ZERO)

    def spent_today_usd(self, follow_id: int) -> Decimal:
        """USD committed today (UTC) by this follow's BUY copies: fills plus open remainders."""
        return self.filled_today.get(follow_id, ZERO) + sum(
            (c.remaining * c.price for c in self.open_by_follow.get(follow_id, ())
             if c.side == "BUY" and c.signed_at is not None and c.signed_at >= self.day), ZERO)

    def exposure_usd(self, follow_id: int, condition_id: str) -> Decimal:
        """This follow's cost basis in one market plus its open BUY remainders there."""
        total = sum((size * avg for (fid, _), (cond, size, avg) in self.positions.items()
                     if fid == follow_id and cond == condition_id), ZERO)
        return total + sum((c.remaining * c.price for c in self.open_by_follow.get(follow_id, ())
                            if c.side == "BUY" and c.condition_id == condition_id), ZERO)

    def held_shares(self, follow_id: int, token_id: str) -> Decimal:
        """Shares held through this follow, minus those already offered by open SELLs."""
        size = self.positions.get((follow_id, token_id), ("", ZERO, ZERO))[1]
        size -= sum((c.remaining for c in self.open_by_follow.get(follow_id, ())
                     if c.side == "SELL" and c.token_id == token_id), ZERO)
        return max(size, ZERO)

    def reserve(self, follower_id: int, co: CopyOrder, price: Decimal, venue_size: Decimal,
                now: datetime) -> None:
        """Count a copy sized in this batch as open: `venue_size` shares at limit `price`."""
        copy = OpenCopy(co.id, co.follow_id, co.side, co.token_id, co.condition_id, price, venue_size, now)
        self.open_by_follow.setdefault(co.follow_id, []).append(copy)
        if co.side == "BUY":
            self.reserved[follower_id] = self.reserved_buy_usd(follower_id) + venue_size * price


# --- step 1: load, gate, inputs ------------------------------------------------------------------

def _job_query() -> Any:
    """Copies joined with their fill, follow and follower (the fill's raw JSON left behind)."""
    return (select(CopyOrder, TraderFill, Follow, Follower)
            .join(TraderFill, TraderFill.id == CopyOrder.trader_fill_id)
            .join(Follow, Follow.id == CopyOrder.follow_id)
            .join(Follower, Follower.id == CopyOrder.follower_id)
            .options(defer(TraderFill.raw), defer(TraderFill.title)))


def _gate(s: Session, ctx: ExecutorContext, rows: list[Any], ids: list[int]) -> tuple[list[Job], dict[int, str]]:
    """Jobs for the rows this executor holds, gated by the kill switch (one query) and credentials;
    the other ids are labelled lost_claim."""
    labels: dict[int, str] = {}
    switches = KillSwitchState.load(s)
    live = not ctx.venue.paper
    jobs: list[Job] = []
    for co, fill, follow, follower in rows:
        if co.status != CopyStatus.CLAIMED or co.lease_owner != ctx.owner:
            labels[co.id] = "lost_claim"
            continue
        job = Job(co, fill, follow, follower)
        allowed, reason = switches.copying_allowed(follower, follow)
        if not allowed:
            job.decide("skip", SkipCopy(reason or "not_allowed"), f"skipped:{reason or 'not_allowed'}")
        elif live and follower.encrypted_api_creds is None:
            job.decide("skip", SkipCopy("no_credentials", "run `admin auth-follower` for this follower"),
                       "skipped:no_credentials")
        jobs.append(job)
    found = {j.id for j in jobs} | set(labels)
    labels.update({co_id: "lost_claim" for co_id in ids if co_id not in found})
    return jobs, labels


def load_jobs(ctx: ExecutorContext, ids: list[int]) -> tuple[list[Job], dict[int, str]]:
    """Copies claimed earlier by this executor, loaded for a batch."""
    with session_scope(ctx.factory) as s:
        rows = list(s.execute(_job_query().where(CopyOrder.id.in_(ids)).order_by(CopyOrder.id)).all())
        return _gate(s, ctx, rows, ids)


def claim_jobs(ctx: ExecutorContext, limit: int) -> tuple[list[Job], dict[int, str]]:
    """Claim up to `limit` QUEUED copies (oldest first) and load them, in one short transaction.

    On PostgreSQL only the copy rows are locked (`FOR UPDATE OF copy_orders SKIP LOCKED`), so two
    executors claim disjoint sets without waiting for each other.
    """
    with session_scope(ctx.factory) as s:
        q = _job_query().where(CopyOrder.status == CopyStatus.QUEUED).order_by(CopyOrder.id).limit(limit)
        if s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(of=CopyOrder, skip_locked=True)
        rows = list(s.execute(q).all())
        if not rows:
            return [], {}
        mark_claimed(s, ctx, [r[0] for r in rows])
        return _gate(s, ctx, rows, [r[0].id for r in rows])


async def _market_and_book(ctx: ExecutorContext, sem: asyncio.Semaphore, token: str,
                           cond: str) -> tuple[Any, Any]:
    async with sem:
        return await _market_and_book_now(ctx, token, cond)


async def _market_and_book_now(ctx: ExecutorContext, token: str, cond: str) -> tuple[Any, Any]:
    try:
        market: Any = await market_for(ctx, token, cond)
    except Exception as exc:  # noqa: BLE001 - RetryLater or network trouble: try again next cycle
        return exc, None
    try:
        book: Any = await book_for(ctx, token)
    except Exception as exc:  # noqa: BLE001
        return market, exc
    return market, book


async def _balance(ctx: ExecutorContext, sem: asyncio.Semaphore, follower: Follower,
                   creds: ApiCreds) -> Decimal | Exception:
    try:
        async with sem:
            return await live_balance(ctx, follower, creds)
    except Exception as exc:  # noqa: BLE001 - give those copies back for a later cycle
        return exc


async def gather_inputs(ctx: ExecutorContext, jobs: list[Job]) -> dict[int, Decimal]:
    """Markets and books (per distinct token) and live balances (per BUYing follower), all at
    once; then price each copy. Returns the balances read."""
    now = ctx.clock()
    todo: list[Job] = []
    for job in jobs:
        if job.action is not None:
            continue
        try:
            job.creds = creds_of(ctx, job.follower)
        except Exception as exc:  # noqa: BLE001 - e.g. a key ring that cannot decrypt: retry later
            log.exception("copy %s: credentials unusable", job.id)
            job.decide("release", f"credentials: {type(exc).__name__}", "retry")
            continue
        todo.append(job)
    tokens = sorted({(j.co.token_id, j.co.condition_id) for j in todo})
    buyers = list({j.follower.id: j for j in todo
                   if not ctx.venue.paper and Side(j.co.side) is Side.BUY}.values())
    sem = asyncio.Semaphore(max(1, ctx.post_concurrency))  # requests in flight, as for the POSTs
    got, read = await asyncio.gather(
        asyncio.gather(*(_market_and_book(ctx, sem, t, c) for t, c in tokens)),
        asyncio.gather(*(_balance(ctx, sem, j.follower, j.creds) for j in buyers)))  # type: ignore[arg-type]
    balances: dict[int, Decimal] = {}
    failed: dict[int, Exception] = {}
    for job, result in zip(buyers, read, strict=True):
        if isinstance(result, Exception):
            failed[job.follower.id] = result
        else:
            balances[job.follower.id] = result
    inputs = {t: g for (t, _), g in zip(tokens, got, strict=True)}
    for job in todo:
        market, book = inputs[job.co.token_id]
        if isinstance(market, Exception) or isinstance(book, Exception):
            err = market if isinstance(market, Exception) else book
            job.decide("release", f"{type(err).__name__}: {err}", "retry")
        elif book is None:
            job.decide("skip", SkipCopy("no_orderbook"), "skipped:no_orderbook")
        elif job.co.side == "BUY" and job.follower.id in failed:
            job.decide("release", f"balance read failed: {failed[job.follower.id]}", "retry")
        else:
            job.market = market
            _price(ctx, job, book, now)
    return balances


def _price(ctx: ExecutorContext, job: Job, book: OrderBook, now: datetime) -> bool:
    """Price one copy against the book; False when it was settled (skip or wait) instead."""
    assert job.market is not None
    max_slip = job.follow.max_slippage if job.follow.max_slippage is not None else ctx.settings.default_max_slippage
    decision = price_copy(Side(job.co.side), job.co.trader_price, book, job.market.tick_size,
                          now - job.fill.occurred_at, max_slip)
    if decision.action is PriceAction.SKIP:
        job.decide("skip", SkipCopy(f"pricing_{decision.reason.value or 'skip'}"), "skipped:pricing")
        return False
    if decision.action is PriceAction.WAIT:
        job.decide("hold", f"pricing wait: {decision.reason.value}", "wait")
        return False
    job.decision = decision
    return True


# --- step 2: size and sign, one transaction ------------------------------------------------------

def _size(ctx: ExecutorContext, s: Session, job: Job, co: CopyOrder, follower: Follower,
          book: Reservations, balances: dict[int, Decimal]) -> Skip | Decimal:
    """Sizing of one copy against what is left for its follower; shares or a Skip."""
    assert job.market is not None and job.decision is not None
    side, follow, fill, market = Side(co.side), job.follow, job.fill, job.market
    paper = ctx.venue.paper
    available = (follower.paper_balance if paper else balances.get(follower.id)) or ZERO
    if side is Side.BUY:
        available -= book.reserved_buy_usd(follower.id)
    rules = FollowRules(
        copy_pct=follow.copy_pct, max_usd_per_trade=follow.max_usd_per_trade,
        min_price=follow.price_min, max_price=follow.price_max, daily_cap_usd=follow.daily_usd_cap,
        spent_today_usd=book.spent_today_usd(follow.id),
        exposure_cap_usd=follow.market_exposure_cap,
        exposure_usd=book.exposure_usd(follow.id, co.condition_id))
    state = FollowerState(
        available_usd=max(available, ZERO),
        held_shares=book.held_shares(follow.id, co.token_id) if side is Side.SELL else ZERO,
        trader_shares_before=trader_shares_before(s, fill) if side is Side.SELL else None)
    max_slip = follow.max_slippage if follow.max_slippage is not None else ctx.settings.default_max_slippage
    cap_price = slippage_limit(side, co.trader_price, market.tick_size, max_slip)
    price = job.decision.price
    sized = size_copy(LeaderFill(side, fill.size, fill.price, co.token_id, fill.is_combo), rules, market,
                      state, price=max(cap_price, price or cap_price) if side is Side.BUY else price)
    return sized if isinstance(sized, Skip) else sized.shares


def _lock_copies(s: Session, ids: Iterable[int]) -> dict[int, CopyOrder]:
    """The copies, re-read and row-locked in ascending id order."""
    q = (select(CopyOrder).where(CopyOrder.id.in_(sorted(set(ids)))).order_by(CopyOrder.id)
         .with_for_update().execution_options(populate_existing=True))
    return {co.id: co for co in s.scalars(q)}


def sign_batch(ctx: ExecutorContext, jobs: list[Job], balances: dict[int, Decimal]) -> list[Job]:
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
        mine = {cid for cid, co in cos.items()
                if co.status == CopyStatus.CLAIMED and co.lease_owner == ctx.owner}
        book = Reservations.load(s, to_size, ctx.venue.paper, now) if to_size else None
        plans: dict[int, list[tuple[Job, OrderPlan]]] = {}  # follower id → its orders, in id order
        for job in jobs:  # sizing in copy id order: earlier copies are served first
            if job.id not in mine:
                job.label = "lost_claim"
                continue
            co = cos[job.id]
            if job.action is not None:
                _settle(ctx, s, co, job, now)
                continue
            assert book is not None and job.market is not None and job.decision is not None
            follower = followers[job.follower.id]
            co.paper = ctx.venue.paper
            if ctx.venue.paper and follower.paper_balance is None:
                follower.paper_balance = ctx.settings.paper_balance_usd
            try:
                sized = _size(ctx, s, job, co, follower, book, balances)
                if isinstance(sized, Skip):
                    raise SkipCopy(sized.reason.value, sized.detail)
                plan = plan_order(ctx, co, follower, job.market, job.decision, sized)
            except SkipCopy as skip:
                skip_copy(s, co, skip)
                job.label = f"skipped:{skip.reason}"
                continue
            co.intended_size = sized
            assert plan.decision.price is not None
            book.reserve(follower.id, co, plan.decision.price, plan.venue_size, now)
            job.co, job.follower = co, follower
            plans.setdefault(follower.id, []).append((job, plan))
        assert not plans or ctx.keyring is not None
        for fid, planned in plans.items():  # one decryption of each follower's key per batch
            follower = followers[fid]
            with signing_key(ctx.keyring, follower.encrypted_private_key,  # type: ignore[arg-type]
                             follower.signer_address) as key:
                for job, plan in planned:
                    sign_planned(ctx, s, job.co, plan, key, job.creds, "sign")
                    assert job.market is not None
                    job.spec = _spec(job.co, follower, job.market, job.creds)
                    signed.append(job)
        return sorted(signed, key=lambda j: j.id)

    return _retrying(ctx, work)


def _settle(ctx: ExecutorContext, s: Session, co: CopyOrder, job: Job, now: datetime) -> None:
    """Write a decision taken before sizing: skip, release now, or hold until later."""
    assert job.action is not None
    kind, what = job.action
    if kind == "skip":
        skip_copy(s, co, what)
    elif kind == "hold":
        co.lease_expires_at = now + timedelta(seconds=ctx.settings.order_manage_interval)
    else:
        co.lease_owner = co.lease_expires_at = None
        transition(s, co, CopyStatus.QUEUED, "release", detail={"why": str(what)[:300]})
        log.info("copy %s released for a later cycle: %s", co.id, what)


def _spec(co: CopyOrder, follower: Follower, market: MarketInfo, creds: ApiCreds | None) -> OrderSpec:
    """The venue view of an order signed a moment ago (nothing of it can have filled yet)."""
    assert co.order_hash and co.signed_payload and co.intended_price is not None
    assert co.venue_size is not None
    return OrderSpec(
        order_hash=co.order_hash, body=co.signed_payload, token_id=co.token_id,
        condition_id=co.condition_id, side=Side(co.side), price=co.intended_price,
        shares=co.venue_size, order_type=OrderType(co.order_type or "GTC"), creds=creds,
        signer_address=follower.signer_address, funder_address=follower.funder_address,
        fee_rate=market.fee_rate, fee_exponent=market.fee_exponent, posted_at=None)


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
            try:
                answers = await ctx.venue.post_many([job.spec for job in group])  # type: ignore[misc]
            except Exception:  # noqa: BLE001 - outcome unknown: stays SIGNED, reconciled by hash
                log.exception("copies %s: POST failed unexpectedly; they will be reconciled",
                              [job.id for job in group])
                return
            for job, (outcome, fills) in zip(group, answers, strict=True):
                job.outcome, job.fills = outcome, fills

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
        cos = _lock_copies(s, (j.id for j in jobs))
        # by follower: paper fills lock follower rows, taken here in the order signing takes them
        for job in sorted(jobs, key=lambda j: (j.follower.id, j.id)):
            assert job.spec is not None
            co = cos.get(job.id)
            if co is None or co.order_hash != job.spec.order_hash:
                job.label = co.status.value.lower() if co is not None else "lost_claim"
                continue  # somebody (reconcile) moved on already
            co.posted_at = co.posted_at or job.sent_at
            if job.outcome is not None:
                record_post_outcome(ctx, s, co, job.outcome, job.fills)
            job.label = co.status.value.lower()
            job.co = co

    _retrying(ctx, work)


async def read_back(ctx: ExecutorContext, jobs: list[Job]) -> None:
    """Matched or delayed answers: read the order and its fills now (per order, concurrently)."""
    todo = [j for j in jobs if isinstance(j.outcome, Accepted) and j.outcome.status != "live"
            and not ctx.venue.paper and j.co.order_hash == (j.spec.order_hash if j.spec else None)]
    if not todo:
        return
    sem = asyncio.Semaphore(max(1, ctx.post_concurrency))

    async def one(job: Job) -> OrderRefresh | None:
        assert job.market is not None
        async with sem:
            try:
                return await refresh_copy(ctx, job.id, job.market)
            except Exception as exc:  # noqa: BLE001 - the manager reads it again later
                log.warning("copy %s: read-back failed: %s", job.id, exc)
                return None

    refreshes = await asyncio.gather(*(one(j) for j in todo))
    for job, refresh in zip(todo, refreshes, strict=True):
        if refresh is not None and job.co.side == "BUY" and job.follower.id in ctx.balance_cache:
            # the balance read this cycle predates these fills: spend them from it
            spent = sum((f.size * f.price + f.fee for f in refresh.fills), ZERO)
            ctx.balance_cache[job.follower.id] -= spent
    with session_scope(ctx.factory) as s:
        status = dict(s.execute(select(CopyOrder.id, CopyOrder.status)
                                .where(CopyOrder.id.in_([j.id for j in todo]))).all())
    for job in todo:
        if job.id in status:
            job.label = status[job.id].value.lower()


# --- the whole batch ---------------------------------------------------------------------------

def release_claims(ctx: ExecutorContext, ids: list[int], why: str) -> int:
    """Give claims back (only copies still CLAIMED by this executor); returns how many."""
    if not ids:
        return 0
    n = 0
    with session_scope(ctx.factory) as s:
        for co in _lock_copies(s, ids).values():
            if co.status == CopyStatus.CLAIMED and co.lease_owner == ctx.owner:
                co.lease_owner = co.lease_expires_at = None
                transition(s, co, CopyStatus.QUEUED, "release", detail={"why": why[:300]})
                n += 1
    return n


async def submit_jobs(ctx: ExecutorContext, jobs: list[Job], stop: asyncio.Event | None = None) -> dict[int, str]:
    """Price, size, sign and submit loaded jobs (steps 1-4); a short label per copy id.

    With `stop` set before signing, every claim is given back and nothing is signed; once the
    batch has signed, its POSTs and their recording always run to the end.
    """
    balances = await gather_inputs(ctx, jobs)
    if stop is not None and stop.is_set():
        release_claims(ctx, [j.id for j in jobs], "shutdown")
        return {j.id: "released" for j in jobs}
    signed = sign_batch(ctx, jobs, balances)
    if signed:
        ctx.crash_hook("after_signed")
        await post_batch(ctx, signed)
        ctx.crash_hook("after_post")
        record_batch(ctx, signed)
        await read_back(ctx, signed)
        end = ctx.clock()
        for job in signed:
            metrics.observe("copy_overhead_seconds", (end - job.fill.occurred_at).total_seconds())
    return {j.id: j.label for j in jobs}


async def submit_batch(ctx: ExecutorContext, ids: list[int], stop: asyncio.Event | None = None) -> dict[int, str]:
    """Submit copies this executor claimed earlier; a short label per copy id."""
    jobs, labels = load_jobs(ctx, ids)
    labels.update(await submit_jobs(ctx, jobs, stop))
    return labels
