"""Claims, reconciliation and open-order management of the executor.

Invariants:
- claims: QUEUED rows are claimed in short transactions (`FOR UPDATE SKIP LOCKED` on
  PostgreSQL) with a lease; an expired lease returns a CLAIMED row to QUEUED; a SIGNED or
  IN_DOUBT row is never re-queued;
- reconciliation settles SIGNED / IN_DOUBT rows by their order hash: found → its state; not
  found and young → re-post the very same bytes (a 'Duplicated' answer means placed); not found
  and old → NOT_PLACED;
- repricing is cancel → confirmed cancel → fills recorded → a new signed order for the
  remainder, so at no moment are two venue orders of one copy live, and fills never exceed the
  intended size.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from copying.copy_submit import (
    ExecutorContext,
    SkipCopy,
    apply_refresh,
    book_for,
    creds_of,
    filled_by_hash,
    market_for,
    move,
    post_and_record,
    sign_into,
    spec_for,
)
from copying.killswitch import KillSwitchState
from copying.sizing import MIN_NOTIONAL_USD
from copying.states import transition
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
SIGNED_GRACE = timedelta(seconds=30)  # leave a fresh SIGNED row to the process posting it


def _locking(q: Select[Any], session: Session) -> Select[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return q.with_for_update(skip_locked=True)
    return q


# --- claims ---------------------------------------------------------------------------------

def release_expired_in(s: Session, ctx: ExecutorContext) -> int:
    """In `s`: CLAIMED rows whose lease ran out go back to QUEUED."""
    now = ctx.clock()
    rows = s.scalars(_locking(select(CopyOrder).where(
        CopyOrder.status == CopyStatus.CLAIMED, CopyOrder.lease_expires_at < now), s)).all()
    for co in rows:
        co.lease_owner = co.lease_expires_at = None
        transition(s, co, CopyStatus.QUEUED, "lease_expired")
    return len(rows)


def mark_claimed(s: Session, ctx: ExecutorContext, rows: list[CopyOrder]) -> None:
    """In `s`: QUEUED rows locked by the caller become CLAIMED under this executor's lease."""
    now = ctx.clock()
    for co in rows:
        co.lease_owner = ctx.owner
        co.lease_expires_at = now + ctx.lease
        co.claimed_at = now
        transition(s, co, CopyStatus.CLAIMED, "claim", detail={"owner": ctx.owner})


def claim_rows(s: Session, ctx: ExecutorContext, limit: int) -> list[CopyOrder]:
    """In `s`: claim up to `limit` QUEUED copies (oldest first) under this executor's lease."""
    rows = list(s.scalars(_locking(select(CopyOrder).where(CopyOrder.status == CopyStatus.QUEUED)
                                   .order_by(CopyOrder.id).limit(limit), s)).all())
    mark_claimed(s, ctx, rows)
    return rows


def claim_batch(ctx: ExecutorContext, limit: int) -> list[int]:
    """Claim up to `limit` QUEUED copies (oldest first) under this executor's lease."""
    with session_scope(ctx.factory) as s:
        return [co.id for co in claim_rows(s, ctx, limit)]


def begin_cycle(ctx: ExecutorContext) -> tuple[int, list[int]]:
    """One short transaction: expired claims back to QUEUED, and the copies to reconcile now."""
    with session_scope(ctx.factory) as s:
        released = release_expired_in(s, ctx)
        return released, unresolved_ids(s, ctx.clock(), startup=False)


# --- reconciliation -------------------------------------------------------------------------

def unresolved_ids(s: Session, now: datetime, *, startup: bool) -> list[int]:
    """SIGNED and IN_DOUBT copies due for reconciliation (fresh SIGNED ones are left alone)."""
    q = select(CopyOrder.id).where(CopyOrder.status.in_([CopyStatus.SIGNED, CopyStatus.IN_DOUBT]))
    if not startup:
        q = q.where((CopyOrder.status == CopyStatus.IN_DOUBT) | (CopyOrder.signed_at < now - SIGNED_GRACE))
    return list(s.scalars(q.order_by(CopyOrder.id)))


async def reconcile_unresolved(ctx: ExecutorContext, *, startup: bool = False,
                               ids: list[int] | None = None) -> int:
    """Settle SIGNED and IN_DOUBT copies by order hash (`ids` if given); returns how many were looked at."""
    if ids is None:
        with session_scope(ctx.factory) as s:
            ids = unresolved_ids(s, ctx.clock(), startup=startup)
    for co_id in ids:
        try:
            await reconcile_one(ctx, co_id)
        except Exception as exc:  # noqa: BLE001 - try again next cycle
            log.warning("copy %s: reconciliation failed: %s", co_id, exc)
    return len(ids)


def repost_window(ctx: ExecutorContext) -> timedelta:
    """How long after signing a not-found order may still be re-posted (same bytes)."""
    return timedelta(seconds=max(ctx.settings.max_copy_delay, 60))


async def reconcile_one(ctx: ExecutorContext, co_id: int) -> None:
    """Look one unresolved copy up by hash; re-post its bytes or close it as NOT_PLACED."""
    with session_scope(ctx.factory) as s:
        co = s.get(CopyOrder, co_id)
        if co is None or co.status not in (CopyStatus.SIGNED, CopyStatus.IN_DOUBT):
            return
        token, cond, signed_at = co.token_id, co.condition_id, co.signed_at
    market = await market_for(ctx, token, cond)
    from copying.copy_submit import refresh_copy

    refresh = await refresh_copy(ctx, co_id, market)
    if refresh is None or refresh.state != "unknown":
        return
    if signed_at is not None and ctx.clock() - signed_at > repost_window(ctx):
        with session_scope(ctx.factory) as s:
            co = s.get(CopyOrder, co_id, with_for_update=True)
            if co is not None and co.status in (CopyStatus.SIGNED, CopyStatus.IN_DOUBT):
                move(s, co, CopyStatus.NOT_PLACED, "reconcile", reason="not_found_after_window")
        return
    log.info("copy %s: not found at the venue; re-posting the same signed bytes", co_id)
    await post_and_record(ctx, co_id, market)


# --- open-order management --------------------------------------------------------------------

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
    """Why this open copy must be cancelled now (kill switch, removal, trader exit), or None."""
    switches = switches or KillSwitchState.load(session)
    follower = session.get(Follower, co.follower_id)
    follow = session.get(Follow, co.follow_id)
    assert follower is not None and follow is not None
    if switches.must_cancel_open_orders(follower, follow):
        return "kill_switch" if switches.global_on else "disabled"
    if follow.status == FollowStatus.REMOVED:
        return "follow_removed"
    if trader_exited(session, co):
        return "trader_exited"
    return None


def cancel_queued_for_exits(ctx: ExecutorContext) -> int:
    """QUEUED BUY copies whose trader has already exited, or that the kill switch stops."""
    n = 0
    with session_scope(ctx.factory) as s:
        switches = KillSwitchState.load(s)
        for co in s.scalars(_locking(select(CopyOrder).where(CopyOrder.status == CopyStatus.QUEUED), s)):
            reason = stop_reason(s, co, switches)
            if reason is not None:
                transition(s, co, CopyStatus.CANCELED, "stop", reason=reason)
                n += 1
    return n


async def manage_open_orders(ctx: ExecutorContext) -> dict[str, int]:
    """Refresh, reprice, convert or cancel every copy that is open at the venue."""
    counts = {"open": 0, "repriced": 0, "canceled": 0}
    counts["canceled"] += cancel_queued_for_exits(ctx)
    with session_scope(ctx.factory) as s:
        ids = list(s.scalars(select(CopyOrder.id).where(CopyOrder.status.in_(
            [CopyStatus.LIVE, CopyStatus.PARTIAL, CopyStatus.CANCELING])).order_by(CopyOrder.id)))
    counts["open"] = len(ids)
    # Each copy is handled on its own, several at once (their venue round trips overlap); every
    # database step of `manage_one` is a short transaction with no await inside, so two copies'
    # steps never interleave within one transaction.
    sem = asyncio.Semaphore(max(1, ctx.post_concurrency))

    async def one(co_id: int) -> str | None:
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


async def manage_one(ctx: ExecutorContext, co_id: int) -> str:
    """One open copy: refresh; then cancel, reprice or convert as the schedule says."""
    with session_scope(ctx.factory) as s:
        co = s.get(CopyOrder, co_id)
        assert co is not None
        token, cond = co.token_id, co.condition_id
    market = await market_for(ctx, token, cond)
    from copying.copy_submit import refresh_copy

    await refresh_copy(ctx, co_id, market)
    with session_scope(ctx.factory) as s:
        co = s.get(CopyOrder, co_id)
        assert co is not None
        if co.status not in (CopyStatus.LIVE, CopyStatus.PARTIAL, CopyStatus.CANCELING):
            return "closed"
        reason = stop_reason(s, co)
        fill = s.get(TraderFill, co.trader_fill_id)
        follow = s.get(Follow, co.follow_id)
        assert fill is not None and follow is not None
        fill_time, live_price = fill.occurred_at, co.intended_price
        max_slip = follow.max_slippage if follow.max_slippage is not None else ctx.settings.default_max_slippage
        was_canceling = co.status == CopyStatus.CANCELING
    if reason is not None:
        await cancel_copy(ctx, co_id, market, reason)
        return "canceled"
    book = await book_for(ctx, token)
    if book is None:
        return "open"
    decision = price_copy(Side(co.side), co.trader_price, book, market.tick_size,
                          ctx.clock() - fill_time, max_slip)
    if decision.action is PriceAction.SKIP:
        await cancel_copy(ctx, co_id, market, f"pricing_{decision.reason.value or 'gave_up'}")
        return "canceled"
    if not was_canceling and not reprice_due(live_price, decision):
        return "open"
    if decision.action is PriceAction.WAIT:
        return "open"
    await reprice(ctx, co_id, market, decision)
    return "repriced"


async def _cancel_and_settle(ctx: ExecutorContext, co_id: int, market: MarketInfo,
                             event: str) -> Decimal | None:
    """CANCELING → venue cancel → confirmed → fills recorded; returns shares left, None if not confirmed."""
    with session_scope(ctx.factory) as s:
        co = s.get(CopyOrder, co_id, with_for_update=True)
        assert co is not None
        if co.status in (CopyStatus.LIVE, CopyStatus.PARTIAL):
            transition(s, co, CopyStatus.CANCELING, event)
        elif co.status != CopyStatus.CANCELING:
            return None
        follower = s.get(Follower, co.follower_id)
        assert follower is not None
        spec = spec_for(ctx, s, co, follower, market, creds_of(ctx, follower))
    confirmed = await ctx.venue.cancel(spec)
    if not confirmed:
        log.warning("copy %s: cancel of %s not confirmed yet; will retry", co_id, spec.order_hash)
        return None
    refresh = await ctx.venue.refresh(spec)
    with session_scope(ctx.factory) as s:
        co = s.get(CopyOrder, co_id, with_for_update=True)
        assert co is not None
        apply_refresh(s, co, refresh, ctx.clock())
        if co.status != CopyStatus.CANCELING:
            return ZERO  # it filled completely in the meantime
        filled_here = max(filled_by_hash(s, co.id, co.order_hash), refresh.size_matched)
        filled_before = (co.filled_size or ZERO) - filled_by_hash(s, co.id, co.order_hash)
        return max((co.intended_size or ZERO) - filled_before - filled_here, ZERO)


async def cancel_copy(ctx: ExecutorContext, co_id: int, market: MarketInfo, reason: str) -> bool:
    """Cancel a copy's live order for good (kill switch, trader exit, gave up)."""
    left = await _cancel_and_settle(ctx, co_id, market, "cancel")
    if left is None:
        return False
    with session_scope(ctx.factory) as s:
        co = s.get(CopyOrder, co_id, with_for_update=True)
        assert co is not None
        if co.status == CopyStatus.CANCELING:
            transition(s, co, CopyStatus.CANCELED, "canceled", reason=reason)
    return True


async def reprice(ctx: ExecutorContext, co_id: int, market: MarketInfo, decision: PriceDecision) -> None:
    """Replace the live order: confirmed cancel first, then a new signed order for the remainder."""
    assert decision.price is not None, "only LIMIT and MARKET decisions reprice; both carry a price"
    left = await _cancel_and_settle(ctx, co_id, market, "reprice_cancel")
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
            transition(s, co, CopyStatus.CANCELED, "canceled",
                       reason="remainder_below_min" if left > 0 else "filled_by_cancel_race")
            return
        try:
            sign_into(ctx, s, co, follower, market, decision, left, creds_of(ctx, follower), "reprice")
        except SkipCopy as skip:
            transition(s, co, CopyStatus.CANCELED, "canceled", reason=skip.reason[:64])
            return
    ctx.crash_hook("after_signed")
    await post_and_record(ctx, co_id, market)

