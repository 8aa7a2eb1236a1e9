"""Reconciliation: SIGNED and IN_DOUBT copies settled by their order hash (promise 1).

Invariant: found at the venue → its state (live, filled, closed) and its fills; not found and
young → the very same signed bytes re-posted (a 'Duplicated' answer means it was placed); not
found after the re-post window → NOT_PLACED. Nothing here ever signs: a new signature would be
a new order, and the old one might still be live.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from copying.claims import release_expired
from copying.context import ExecutorContext, market_for
from copying.outcomes import VenueState
from copying.states import UNRESOLVED, Event, transition
from copying.venue_io import post_and_record, refresh_copy
from infra.db import session_scope
from models import CopyOrder, CopyStatus

log = logging.getLogger("pmct.executor")
SIGNED_GRACE = timedelta(seconds=30)  # leave a fresh SIGNED row to the process posting it


def begin_cycle(ctx: ExecutorContext) -> tuple[int, list[int]]:
    """One short transaction: expired claims back to QUEUED, and the copies to reconcile now."""
    with session_scope(ctx.factory) as s:
        released = release_expired(s, ctx)
        return released, unresolved_ids(s, ctx.clock(), startup=False, paper=ctx.paper)


def unresolved_ids(s: Session, now: datetime, *, startup: bool, paper: bool) -> list[int]:
    """This mode's SIGNED and IN_DOUBT copies due for reconciliation (fresh SIGNED ones are left
    alone)."""
    q = select(CopyOrder.id).where(CopyOrder.status.in_(UNRESOLVED), CopyOrder.paper == paper)
    if not startup:
        q = q.where((CopyOrder.status == CopyStatus.IN_DOUBT) | (CopyOrder.signed_at < now - SIGNED_GRACE))
    return list(s.scalars(q.order_by(CopyOrder.id)))


async def reconcile_unresolved(ctx: ExecutorContext, *, startup: bool = False,
                               ids: list[int] | None = None) -> int:
    """Settle SIGNED and IN_DOUBT copies by order hash (`ids` if given); returns how many were looked at."""
    if ids is None:
        with session_scope(ctx.factory) as s:
            ids = unresolved_ids(s, ctx.clock(), startup=startup, paper=ctx.paper)
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
        if co is None or co.status not in UNRESOLVED:
            return
        token, cond, signed_at = co.token_id, co.condition_id, co.signed_at
    market = await market_for(ctx, token, cond)
    refresh = await refresh_copy(ctx, co_id, market)
    if refresh is None or refresh.state != VenueState.UNKNOWN:
        return
    if signed_at is not None and ctx.clock() - signed_at > repost_window(ctx):
        with session_scope(ctx.factory) as s:
            co = s.get(CopyOrder, co_id, with_for_update=True)
            if co is not None and co.status in UNRESOLVED:
                transition(s, co, Event.NOT_PLACED, reason="not_found_after_window")
        return
    log.info("copy %s: not found at the venue; re-posting the same signed bytes", co_id)
    await post_and_record(ctx, co_id, market)
