"""One copy's current venue order, one call at a time: post its stored bytes, read it back,
cancel it; each answer recorded in a short transaction of its own (no await inside one).

Used by reconciliation and open-order management; the batch path (`copying.submit`) posts
many copies at once and records them together, and reads matched orders back through
`refresh_copy`. A call whose copy moved on meanwhile (another order hash) records nothing.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from sqlalchemy.orm import Session

from copying.context import ExecutorContext, creds_of
from copying.orders import spec_for
from copying.outcomes import apply_refresh, filled_by_hash, record_post_outcome
from copying.states import Event, transition
from copying.venues import OrderRefresh, OrderSpec
from infra.db import session_scope
from models import CopyOrder, CopyStatus, Follower
from wire.records import Accepted
from wire.types import MarketInfo

log = logging.getLogger("pmct.executor")
ZERO = Decimal(0)


def _current_spec(ctx: ExecutorContext, s: Session, co: CopyOrder, market: MarketInfo) -> OrderSpec:
    """The spec of the copy's current venue order, with the shares already recorded for it."""
    follower = s.get(Follower, co.follower_id)
    assert follower is not None
    return spec_for(co, follower, market, creds_of(ctx, follower),
                    already_filled=filled_by_hash(s, co.id, co.order_hash))


def _locked(s: Session, co_id: int) -> CopyOrder:
    co = s.get(CopyOrder, co_id, with_for_update=True)
    assert co is not None
    return co


async def post_and_record(ctx: ExecutorContext, co_id: int, market: MarketInfo) -> CopyStatus:
    """POST one copy's stored body once and record the outcome (reconciliation and repricing)."""
    with session_scope(ctx.factory) as s:
        co = s.get(CopyOrder, co_id)
        assert co is not None
        spec = _current_spec(ctx, s, co, market)
        co.posted_at = ctx.clock()
    outcome, fills = await ctx.venue.post(spec)
    ctx.crash_hook("after_post")
    with session_scope(ctx.factory) as s:
        co = _locked(s, co_id)
        if co.order_hash != spec.order_hash:
            return co.status  # somebody (reconcile) moved on already
        record_post_outcome(ctx, s, co, outcome, fills)
        status = co.status
    if isinstance(outcome, Accepted) and outcome.status != "live" and not ctx.paper:
        await refresh_copy(ctx, co_id, market)  # matched/delayed: read the fills now
        with session_scope(ctx.factory) as s:
            status = _locked(s, co_id).status
    return status


async def refresh_copy(ctx: ExecutorContext, co_id: int, market: MarketInfo) -> OrderRefresh | None:
    """Ask the venue about the copy's current order and record what changed."""
    with session_scope(ctx.factory) as s:
        co = s.get(CopyOrder, co_id)
        assert co is not None
        if co.order_hash is None:
            return None
        spec = _current_spec(ctx, s, co, market)
    refresh = await ctx.venue.refresh(spec)
    with session_scope(ctx.factory) as s:
        co = _locked(s, co_id)
        if co.order_hash == spec.order_hash:
            apply_refresh(s, co, refresh, ctx.clock())
    return refresh


async def cancel_and_settle(ctx: ExecutorContext, co_id: int, market: MarketInfo,
                            event: Event) -> Decimal | None:
    """LIVE/PARTIAL → CANCELING (`event`) → venue cancel → confirmed → fills recorded.

    Returns the copy's shares still wanted (0 when it filled in the meantime), or None when the
    cancel is not confirmed yet (the copy stays CANCELING and is tried again next pass).
    """
    with session_scope(ctx.factory) as s:
        co = _locked(s, co_id)
        if co.status in (CopyStatus.LIVE, CopyStatus.PARTIAL):
            transition(s, co, event)
        elif co.status != CopyStatus.CANCELING:
            return None
        spec = _current_spec(ctx, s, co, market)
    if not await ctx.venue.cancel(spec):
        log.warning("copy %s: cancel of %s not confirmed yet; will retry", co_id, spec.order_hash)
        return None
    refresh = await ctx.venue.refresh(spec)
    with session_scope(ctx.factory) as s:
        co = _locked(s, co_id)
        apply_refresh(s, co, refresh, ctx.clock())
        if co.status != CopyStatus.CANCELING:
            return ZERO  # it filled completely in the meantime
        filled_here = max(filled_by_hash(s, co.id, co.order_hash), refresh.size_matched)
        filled_before = (co.filled_size or ZERO) - filled_by_hash(s, co.id, co.order_hash)
        return max((co.intended_size or ZERO) - filled_before - filled_here, ZERO)
