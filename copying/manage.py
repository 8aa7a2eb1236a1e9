"""Open-order management: refresh every copy open at the venue; cancel it when it must stop
(kill switch, disable, removed follow, the trader's exit, the pricing gave up); reprice it on
the schedule (`smart_pricing`), including the 36 h market conversion.

Only the global kill switch stops exits (SELL copies): a disabled or removed follow, like a
paused one, stops its entries (open BUYs are cancelled) but keeps mirroring the leader's exits.
A resting BUY that a later exit of its follow and token waits for (`copying.ordering`) is
cancelled at once (`cancel_superseded`, every executor cycle).

Invariant: a reprice is cancel → confirmed cancel → fills recorded → a new signed order for the
remainder only, so at no moment are two venue orders of one copy live, and its fills never add
up to more than intended. Each copy is handled on its own, several at once; every database step
is a short transaction with no await inside.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from copying.context import ExecutorContext, book_for, creds_of, market_for
from copying.killswitch import KillSwitchState
from copying.ordering import superseded_clause
from copying.orders import SkipCopy, sign_into
from copying.sizing import MIN_NOTIONAL_USD
from copying.states import OPEN_AT_VENUE, Event, transition
from copying.venue_io import cancel_and_settle, post_and_record, refresh_copy
from infra.db import session_scope
from models import (
    CopyOrder,
    CopyStatus,
    Follow,
    Follower,
    FollowStatus,
    PositionEventKind,
    TraderFill,
    TraderPositionEvent,
)
from smart_pricing import PriceAction, PriceDecision, price_copy, reprice_due
from wire.types import MarketInfo, Side

log = logging.getLogger("pmct.executor")
ZERO = Decimal(0)


class Managed(StrEnum):
    """What the open-order pass did with one copy (the executor's `orders_*` counts)."""

    OPEN = "open"  # left as it is
    REPRICED = "repriced"
    CANCELED = "canceled"
    CLOSED = "closed"  # the refresh found it filled or closed at the venue


def trader_exited(session: Session, co: CopyOrder) -> bool:
    """True when the trader closed or reduced the position this BUY copy follows."""
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


def stop_reason(session: Session, co: CopyOrder, switches: KillSwitchState | None = None) -> str | None:
    """Why this copy must be cancelled now (kill switch, removal, trader exit), or None.

    Exits (SELL) stop only for the global kill switch; entries for any of the reasons.
    """
    switches = switches or KillSwitchState.load(session)
    if switches.global_on:
        return "kill_switch"
    if co.side == "SELL":
        return None
    follower = session.get(Follower, co.follower_id)
    follow = session.get(Follow, co.follow_id)
    assert follower is not None and follow is not None
    if switches.must_cancel_open_orders(follower, follow):
        return "disabled"
    if follow.status == FollowStatus.REMOVED:
        return "follow_removed"
    if trader_exited(session, co):
        return "trader_exited"
    return None


async def cancel_superseded(ctx: ExecutorContext) -> int:
    """Cancel resting copies a later exit (or close) of their follow and token waits for; how many.

    The reason is `trader_exited` when a snapshot saw the leader leave, else `superseded_by_exit`.

    The confirmed cancel records their fills, so the exit is then sized on what they got.
    """
    with session_scope(ctx.factory) as s:
        copies = s.scalars(select(CopyOrder).where(superseded_clause(), CopyOrder.paper == ctx.paper)
                           .order_by(CopyOrder.id)).all()
        rows = [(co.id, co.token_id, co.condition_id,
                 "trader_exited" if trader_exited(s, co) else "superseded_by_exit") for co in copies]
    n = 0
    for co_id, token, cond, reason in rows:
        try:
            market = await market_for(ctx, token, cond)
            if await cancel_copy(ctx, co_id, market, reason):
                n += 1
        except Exception as exc:  # noqa: BLE001 - one order must not stop the others; next cycle
            log.warning("copy %s: cancel for a later exit failed: %s", co_id, exc)
    return n


def cancel_queued_for_exits(ctx: ExecutorContext) -> int:
    """QUEUED entries that must not be placed any more (kill switch, removal, trader exit);
    queued exits are never stopped here (under the kill switch they wait in the queue)."""
    n = 0
    with session_scope(ctx.factory) as s:
        switches = KillSwitchState.load(s)
        q = select(CopyOrder).where(CopyOrder.status == CopyStatus.QUEUED, CopyOrder.side == "BUY")
        if s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        for co in s.scalars(q):
            reason = stop_reason(s, co, switches)
            if reason is not None:
                transition(s, co, Event.STOP, reason=reason)
                n += 1
    return n


async def manage_open_orders(ctx: ExecutorContext) -> dict[Managed, int]:
    """Refresh, reprice, convert or cancel every copy that is open at the venue."""
    counts = {Managed.OPEN: 0, Managed.REPRICED: 0, Managed.CANCELED: cancel_queued_for_exits(ctx)}
    with session_scope(ctx.factory) as s:
        ids = list(s.scalars(select(CopyOrder.id).where(CopyOrder.status.in_(OPEN_AT_VENUE))
                             .order_by(CopyOrder.id)))
    counts[Managed.OPEN] = len(ids)
    sem = asyncio.Semaphore(max(1, ctx.post_concurrency))

    async def one(co_id: int) -> Managed | None:
        async with sem:
            try:
                return await manage_one(ctx, co_id)
            except Exception as exc:  # noqa: BLE001 - one order must not stop the others
                log.warning("copy %s: management failed: %s", co_id, exc)
                return None

    for outcome in await asyncio.gather(*(one(co_id) for co_id in ids)):
        if outcome in counts:
            counts[outcome] += 1
    return counts


async def manage_one(ctx: ExecutorContext, co_id: int) -> Managed:
    """One open copy: refresh; then cancel, reprice or convert as the schedule says."""
    with session_scope(ctx.factory) as s:
        co = s.get(CopyOrder, co_id)
        assert co is not None
        token, cond = co.token_id, co.condition_id
    market = await market_for(ctx, token, cond)
    await refresh_copy(ctx, co_id, market)
    with session_scope(ctx.factory) as s:
        co = s.get(CopyOrder, co_id)
        assert co is not None
        if co.status not in OPEN_AT_VENUE:
            return Managed.CLOSED
        reason = stop_reason(s, co)
        fill = s.get(TraderFill, co.trader_fill_id) if co.trader_fill_id is not None else None
        follow = s.get(Follow, co.follow_id)
        assert follow is not None
        side, trader_price, live_price = Side(co.side), co.trader_price, co.intended_price
        fill_time = fill.occurred_at if fill is not None else co.queued_at
        max_slip = ctx.max_slippage(follow)
        was_canceling = co.status == CopyStatus.CANCELING
    if reason is not None:
        await cancel_copy(ctx, co_id, market, reason)
        return Managed.CANCELED
    book = await book_for(ctx, token)
    if book is None:
        return Managed.OPEN
    decision = price_copy(side, trader_price, book, market.tick_size, ctx.clock() - fill_time, max_slip)
    if decision.action is PriceAction.SKIP:
        await cancel_copy(ctx, co_id, market, f"pricing_{decision.reason.value or 'gave_up'}")
        return Managed.CANCELED
    if not was_canceling and not reprice_due(live_price, decision):
        return Managed.OPEN
    if decision.action is PriceAction.WAIT:
        return Managed.OPEN
    await reprice(ctx, co_id, market, decision)
    return Managed.REPRICED


async def cancel_copy(ctx: ExecutorContext, co_id: int, market: MarketInfo, reason: str) -> bool:
    """Cancel a copy's live order for good (kill switch, trader exit, gave up)."""
    left = await cancel_and_settle(ctx, co_id, market, Event.CANCEL)
    if left is None:
        return False
    with session_scope(ctx.factory) as s:
        co = s.get(CopyOrder, co_id, with_for_update=True)
        assert co is not None
        if co.status == CopyStatus.CANCELING:
            transition(s, co, Event.CANCELED, reason=reason)
    return True


async def reprice(ctx: ExecutorContext, co_id: int, market: MarketInfo, decision: PriceDecision) -> None:
    """Replace the live order: confirmed cancel first, then a new signed order for the remainder."""
    assert decision.price is not None, "only LIMIT and MARKET decisions reprice; both carry a price"
    left = await cancel_and_settle(ctx, co_id, market, Event.REPRICE_CANCEL)
    if left is None:
        return
    with session_scope(ctx.factory) as s:
        co = s.get(CopyOrder, co_id, with_for_update=True)
        assert co is not None
        if co.status != CopyStatus.CANCELING:
            return
        follower = s.get(Follower, co.follower_id, with_for_update=True)
        assert follower is not None
        too_small = left < market.min_size or (
            co.side == "BUY" and decision.action is PriceAction.MARKET
            and left * (decision.spend_price or decision.price) < MIN_NOTIONAL_USD)
        if left <= 0 or too_small:
            transition(s, co, Event.CANCELED,
                       reason="remainder_below_min" if left > 0 else "filled_by_cancel_race")
            return
        try:
            sign_into(ctx, s, co, follower, market, decision, left, creds_of(ctx, follower), Event.REPRICE)
        except SkipCopy as skip:
            transition(s, co, Event.CANCELED, reason=skip.reason[:64])
            return
    ctx.crash_hook("after_signed")
    await post_and_record(ctx, co_id, market)
