"""The scheduled open-order pass: refresh every open copy of this executor's mode, then reprice
it on the schedule (`smart_pricing`), convert it to a market order at 36 h, give it up at 72 h,
or re-order a remainder left without an order (CANCELING: a marketable order's unfilled part, a
FAK that found no match, an order refused for a stale tick).

Work is done in chunks of copies, never per copy: per follower one `GET /data/orders` for the
whole pass and one read of its trades since the cursor; one book per token; the decisions are
pure (`price_copy`); the cancels, confirmations, fills and new orders go through
`copying.cancels` in batches. Between chunks the caller's `between` hook runs (the stop sweep)
and a stop request ends the pass, so the executor stops within a few seconds whatever the backlog.

Only the global kill switch stops exits (SELL copies): a disabled or removed follow, like a
paused one, stops its entries (open BUYs are cancelled) but keeps mirroring the leader's exits.
A resting BUY that a later exit of its follow and token waits for (`copying.ordering`) is
cancelled at once (`cancel_superseded`, every executor cycle).

Invariant: a reprice is cancel → confirmed cancel → fills recorded → a new signed order for the
remainder only (`copying.cancels`), so at no moment are two venue orders of one copy live.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from copying.cancels import Plan, cancel_and_settle
from copying.context import (
    ExecutorContext,
    account_of,
    book_for,
    forget_market,
    market_for,
    with_book,
)
from copying.fills import refresh_fills
from copying.ordering import superseded_clause
from copying.states import OPEN_AT_VENUE
from copying.venue_io import refresh_copy
from copying.venues import LiveVenue
from infra.db import session_scope
from models import (
    CopyOrder,
    CopyStatus,
    Follow,
    Follower,
    Market,
    PositionEventKind,
    TraderFill,
    TraderPositionEvent,
)
from smart_pricing import PriceAction, PriceDecision, price_copy, reprice_due
from wire.records import OpenOrder
from wire.types import MarketInfo, OrderBook, Side

log = logging.getLogger("pmct.executor")
ZERO = Decimal(0)
MANAGE_CHUNK = 250


class Managed(StrEnum):
    """What the open-order pass did (the executor's `orders_*` counts)."""

    OPEN = "open"  # looked at
    REPRICED = "repriced"
    CANCELED = "canceled"
    CLOSED = "closed"  # the refresh found it filled or closed at the venue
    WAITING = "waiting"  # between orders, waiting for a better price


async def manage_open_orders(ctx: ExecutorContext, stop: asyncio.Event | None = None,
                             between: Callable[[], Awaitable[object]] | None = None) -> Counter[Managed]:
    """One scheduled pass over every copy of this mode that is open at the venue."""
    with session_scope(ctx.factory) as s:
        ids = list(s.scalars(select(CopyOrder.id).where(CopyOrder.status.in_(OPEN_AT_VENUE),
                                                        CopyOrder.paper == ctx.paper)
                             .order_by(CopyOrder.id)))
    counts: Counter[Managed] = Counter({Managed.OPEN: len(ids)})
    open_lists: dict[int, dict[str, OpenOrder] | None] = {}
    for i in range(0, len(ids), MANAGE_CHUNK):
        if stop is not None and stop.is_set():
            break
        if i and between is not None:
            await between()
        counts += await manage_chunk(ctx, ids[i:i + MANAGE_CHUNK], stop, open_lists=open_lists)
    return counts


async def _open_lists(ctx: ExecutorContext, followers: dict[int, Follower],
                      open_lists: dict[int, dict[str, OpenOrder] | None]) -> None:
    """Each follower's resting orders, read once per pass (None when the read failed)."""
    venue = ctx.venue
    assert isinstance(venue, LiveVenue)
    sem = asyncio.Semaphore(max(1, ctx.post_concurrency))
    todo = [f for fid, f in followers.items() if fid not in open_lists]

    async def one(f: Follower) -> None:
        account = account_of(ctx, f)
        if account.creds is None:
            open_lists[f.id] = None
            return
        async with sem:
            try:
                open_lists[f.id] = await venue.open_orders(account)
            except Exception as exc:  # noqa: BLE001 - this follower's copies are refreshed next pass
                log.warning("follower %s: reading its open orders failed: %s", f.id, exc)
                open_lists[f.id] = None

    await asyncio.gather(*(one(f) for f in todo))


async def refresh_chunk(ctx: ExecutorContext, rows: list[tuple[CopyOrder, Follower]],
                        open_lists: dict[int, dict[str, OpenOrder] | None]) -> int:
    """Bring the chunk's copies up to date with the venue; returns how many the venue closed."""
    followers = {f.id: f for _, f in rows}
    await refresh_fills(ctx, [fid for fid in followers if fid not in open_lists])  # once per pass
    if not isinstance(ctx.venue, LiveVenue):
        open_lists.update({fid: None for fid in followers})
        return 0
    await _open_lists(ctx, followers, open_lists)
    gone = [co for co, f in rows
            if co.status in (CopyStatus.LIVE, CopyStatus.PARTIAL) and co.order_hash is not None
            and open_lists.get(f.id) is not None and co.order_hash.lower() not in (open_lists[f.id] or {})]
    if not gone:
        return 0
    sem = asyncio.Semaphore(max(1, ctx.post_concurrency))

    async def one(co: CopyOrder) -> None:  # rare: the venue closed it (filled, cancelled, expired)
        async with sem:
            try:
                market = await market_for(ctx, co.token_id, co.condition_id)
                await refresh_copy(ctx, co.id, market)
            except Exception as exc:  # noqa: BLE001 - refreshed again next pass
                log.warning("copy %s: refresh failed: %s", co.id, exc)

    await asyncio.gather(*(one(co) for co in gone))
    return len(gone)


Inputs = dict[str, tuple[MarketInfo, OrderBook | None] | None]


async def _inputs(ctx: ExecutorContext, pairs: set[tuple[str, str]]) -> Inputs:
    """Market info and book per token (concurrently); None for a token whose inputs failed."""
    sem = asyncio.Semaphore(max(1, ctx.post_concurrency))

    async def one(token: str, cond: str) -> tuple[str, tuple[MarketInfo, OrderBook | None] | None]:
        async with sem:
            try:
                market = await market_for(ctx, token, cond)
                book = await book_for(ctx, token)
            except Exception as exc:  # noqa: BLE001 - decided next pass
                log.warning("token %s: market or book unavailable: %s", token, exc)
                return token, None
        if book is None:  # no order book: the market may have closed; read it afresh
            await refresh_market(ctx, token, cond)
            return token, (market, None)
        return token, (with_book(ctx, market, book), book)

    return dict(await asyncio.gather(*(one(t, c) for t, c in sorted(pairs))))


async def refresh_market(ctx: ExecutorContext, token_id: str, condition_id: str) -> None:
    """Read a market's info from Polymarket now (a closed market stops its copies at the next wake)."""
    forget_market(ctx, condition_id)
    with session_scope(ctx.factory) as s:
        row = s.get(Market, condition_id)
        if row is not None:
            row.fetched_at = datetime(1970, 1, 1, tzinfo=row.fetched_at.tzinfo)
    try:
        await market_for(ctx, token_id, condition_id)
    except Exception as exc:  # noqa: BLE001 - tried again later
        log.warning("market %s: refresh failed: %s", condition_id, exc)


def plan_for(co: CopyOrder, decision: PriceDecision, market: MarketInfo) -> Plan | None:
    """What the schedule says for one open copy (None: leave it as it is)."""
    if co.status == CopyStatus.CANCELING and co.reason is not None:
        return Plan(reason=co.reason)
    if decision.action is PriceAction.SKIP:
        return Plan(reason=f"pricing_{decision.reason.value or 'gave_up'}")
    if decision.action is PriceAction.WAIT:
        return None
    if co.status == CopyStatus.CANCELING or reprice_due(co.intended_price, decision):
        return Plan(decision=decision, market=market)
    return None


async def manage_chunk(ctx: ExecutorContext, ids: list[int], stop: asyncio.Event | None = None, *,
                       open_lists: dict[int, dict[str, OpenOrder] | None] | None = None,
                       refresh: bool = True) -> Counter[Managed]:
    """Refresh (unless `refresh` is False), decide and act for one chunk of open copies."""
    counts: Counter[Managed] = Counter()
    with session_scope(ctx.factory) as s:
        rows = list(s.execute(select(CopyOrder, Follower).join(Follower, Follower.id == CopyOrder.follower_id)
                              .where(CopyOrder.id.in_(ids)).order_by(CopyOrder.id)).all())
    if refresh:
        counts[Managed.CLOSED] += await refresh_chunk(ctx, [(co, f) for co, f in rows],
                                                      open_lists if open_lists is not None else {})
    with session_scope(ctx.factory) as s:
        current = list(s.execute(
            select(CopyOrder, TraderFill.occurred_at, Follow.max_slippage)
            .outerjoin(TraderFill, TraderFill.id == CopyOrder.trader_fill_id)  # remainders, closes: none
            .join(Follow, Follow.id == CopyOrder.follow_id)
            .where(CopyOrder.id.in_(ids), CopyOrder.status.in_(OPEN_AT_VENUE),
                   CopyOrder.paper == ctx.paper)).all())
    inputs = await _inputs(ctx, {(co.token_id, co.condition_id) for co, _, _ in current})
    now = ctx.clock()
    plans: dict[int, Plan] = {}
    for co, fill_at, slip in current:
        got = inputs.get(co.token_id)
        if got is None or got[1] is None:
            continue
        market, book = got
        assert book is not None
        max_slip = slip if slip is not None else ctx.settings.default_max_slippage
        since = fill_at if fill_at is not None else co.queued_at  # a sale down to target: its queue time
        decision = price_copy(Side(co.side), co.trader_price, book, market.tick_size, now - since, max_slip)
        plan = plan_for(co, decision, market)
        if plan is not None:
            plans[co.id] = plan
        elif co.status == CopyStatus.CANCELING:
            counts[Managed.WAITING] += 1
    if plans:
        listed: dict[int, Decimal] = {}
        for co, _, _ in current:
            orders = (open_lists or {}).get(co.follower_id) or {}
            if co.id in plans and co.order_hash and co.order_hash.lower() in orders:
                listed[co.id] = orders[co.order_hash.lower()].size_matched
        stats = await cancel_and_settle(ctx, plans, stop, listed)
        counts[Managed.REPRICED] += stats.repriced
        counts[Managed.CANCELED] += stats.canceled
        counts[Managed.WAITING] += stats.waiting
    return counts


# --- cancels for good, outside the scheduled pass ---------------------------------------------

def trader_exited(session: Session, co: CopyOrder) -> bool:
    """True when a position snapshot saw the trader close or reduce the position this BUY copies."""
    if co.side != "BUY":
        return False
    follow = session.get(Follow, co.follow_id)
    assert follow is not None
    ev = session.scalar(select(TraderPositionEvent.id).where(
        TraderPositionEvent.trader_id == follow.trader_id,
        TraderPositionEvent.token_id == co.token_id,
        TraderPositionEvent.kind.in_([PositionEventKind.POSITION_CLOSED, PositionEventKind.SIZE_DECREASE]),
        TraderPositionEvent.detected_at > co.queued_at).limit(1))
    return ev is not None


async def cancel_copies(ctx: ExecutorContext, reasons: dict[int, str],
                        stop: asyncio.Event | None = None) -> int:
    """Cancel these copies' venue orders for good, batched (`copying.cancels`); how many ended."""
    if not reasons:
        return 0
    stats = await cancel_and_settle(ctx, {cid: Plan(reason=why) for cid, why in reasons.items()}, stop)
    return stats.canceled + stats.filled


async def cancel_superseded(ctx: ExecutorContext) -> int:
    """Cancel resting copies a later exit (or close) of their follow and token waits for
    (`copying.ordering`): the exit is then sized on what they got. The reason is `trader_exited`
    when a snapshot saw the leader leave, else `superseded_by_exit`."""
    with session_scope(ctx.factory) as s:
        copies = s.scalars(select(CopyOrder).where(superseded_clause(), CopyOrder.paper == ctx.paper)
                           .order_by(CopyOrder.id)).all()
        reasons = {co.id: "trader_exited" if trader_exited(s, co) else "superseded_by_exit"
                   for co in copies}
    return await cancel_copies(ctx, reasons)
