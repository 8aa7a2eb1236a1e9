"""Operator cancels: `admin disable` waits for the executor's confirmed cancels, and
`admin cancel-open --live|--paper` cancels open copy orders itself (at the venue for live ones).

`cancel-open --live` is what an operator runs before switching a deployment to paper (a paper
executor refuses to start while live copies may be at the venue): with the live executor
stopped, it cancels every live copy still open, in batches (`copying.cancels`), waits for the
venue's confirmation and records each one (CANCELED `canceled_by_admin`, fills included). A
signed copy whose POST never reached the venue is closed NOT_PLACED, so that nothing ever posts
it later; one signed less than SIGNED_GRACE ago is left to the executor that may be posting it.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from copying.cancels import Plan, cancel_and_settle
from copying.context import ExecutorContext, market_for
from copying.modes import MAY_BE_AT_VENUE, OpenCopyLine, close_paper_copies, open_copies_of_mode
from copying.outcomes import VenueState
from copying.reconcile import SIGNED_GRACE
from copying.states import UNRESOLVED, Event, transition
from copying.venue_io import refresh_copy
from infra.config import Settings
from infra.db import session_scope
from models import CopyOrder, CopyStatus, DaemonHeartbeat, Follower

BY_ADMIN = "canceled_by_admin"
WAITED = (*MAY_BE_AT_VENUE, CopyStatus.CLAIMED)


def still_open(s: Session, *, follower_id: int | None = None, follow_id: int | None = None,
               side: str | None = None) -> list[OpenCopyLine]:
    """Copies of any mode that may still be at a venue (or about to be: claimed), in a scope
    (`side="BUY"`: the entries only, as a follower's or follow's disable stops no exit)."""
    q = (select(CopyOrder.id, Follower.funder_address, CopyOrder.status, CopyOrder.side,
                CopyOrder.token_id, CopyOrder.intended_price, CopyOrder.order_hash, CopyOrder.signed_at)
         .join(Follower, Follower.id == CopyOrder.follower_id)
         .where(CopyOrder.status.in_(WAITED)).order_by(CopyOrder.id))
    if follower_id is not None:
        q = q.where(CopyOrder.follower_id == follower_id)
    if follow_id is not None:
        q = q.where(CopyOrder.follow_id == follow_id)
    if side is not None:
        q = q.where(CopyOrder.side == side)
    return [OpenCopyLine(cid, w, st.value, side, tok, price, h, at)
            for cid, w, st, side, tok, price, h, at in s.execute(q)]


def wait_for_cancels(factory: sessionmaker[Session], timeout: float, *, follower_id: int | None = None,
                     follow_id: int | None = None, side: str | None = None,
                     poll: float = 0.1) -> tuple[float, list[OpenCopyLine]]:
    """Wait until no copy of the scope may be at a venue, or `timeout`; (seconds waited, left)."""
    started = time.monotonic()
    while True:
        with session_scope(factory) as s:
            left = still_open(s, follower_id=follower_id, follow_id=follow_id, side=side)
        waited = time.monotonic() - started
        if not left or waited >= timeout:
            return waited, left
        time.sleep(poll)


def executor_alive(s: Session, now: datetime, poll_interval: float) -> DaemonHeartbeat | None:
    """An executor's heartbeat when one looks alive (a cycle in the last 3 poll intervals);
    `executor` or any `executor-<instance>`."""
    fresh = now - timedelta(seconds=3 * poll_interval + 5)
    return s.scalar(select(DaemonHeartbeat).where(
        (DaemonHeartbeat.name == "executor") | DaemonHeartbeat.name.like("executor-%"),
        DaemonHeartbeat.last_cycle_at > fresh).order_by(DaemonHeartbeat.last_cycle_at.desc()).limit(1))


@dataclass
class CancelOpenResult:
    """What `cancel-open` did."""

    canceled: int = 0  # confirmed gone at the venue (or paper copies closed)
    not_placed: int = 0  # signed but never at the venue
    filled: int = 0  # filled before the cancel took
    left: list[OpenCopyLine] | None = None  # still open at the timeout
    seconds: float = 0.0


def close_paper(factory: sessionmaker[Session], follower_id: int | None) -> CancelOpenResult:
    """Close every open paper copy (of the scope); nothing is at any venue."""
    started = time.monotonic()
    with session_scope(factory) as s:
        n = close_paper_copies(s, follower_id=follower_id, pinned_too=True, reason=BY_ADMIN)
    return CancelOpenResult(canceled=n, left=[], seconds=time.monotonic() - started)


def live_context(settings: Settings, factory: sessionmaker[Session], client: object) -> ExecutorContext:
    """An executor context for the live venue, owned by this admin process."""
    from copying.venues import LiveVenue
    from crypto import KeyRing

    return ExecutorContext(settings=replace(settings, execution_mode="live"), factory=factory,
                           client=client, venue=LiveVenue(client),  # type: ignore[arg-type]
                           keyring=KeyRing(settings.encryption_key or ""),
                           owner=f"admin:{os.getpid()}")


async def _settle_unresolved(ctx: ExecutorContext, ids: list[int], result: CancelOpenResult) -> None:
    """A signed or in-doubt copy: found at the venue → it is cancelled next; never there (and
    older than SIGNED_GRACE) → NOT_PLACED, so that nothing posts it later."""
    for cid in ids:
        with session_scope(ctx.factory) as s:
            co = s.get(CopyOrder, cid)
            if co is None or co.status not in UNRESOLVED:
                continue
            token, cond, signed_at = co.token_id, co.condition_id, co.signed_at
        if signed_at is not None and ctx.clock() - signed_at < SIGNED_GRACE:
            continue  # an executor may be posting it right now: looked at again shortly
        market = await market_for(ctx, token, cond)
        refresh = await refresh_copy(ctx, cid, market)
        if refresh is not None and refresh.state != VenueState.UNKNOWN:
            continue
        with session_scope(ctx.factory) as s:
            co = s.get(CopyOrder, cid, with_for_update=True)
            if co is not None and co.status in UNRESOLVED:
                transition(s, co, Event.NOT_PLACED, reason=BY_ADMIN)
                result.not_placed += 1


async def cancel_live(ctx: ExecutorContext, follower_id: int | None, timeout: float) -> CancelOpenResult:
    """Cancel at the venue every live copy still open (of the scope), confirmed and recorded."""
    started = time.monotonic()
    result = CancelOpenResult()
    while True:
        with session_scope(ctx.factory) as s:
            lines = open_copies_of_mode(s, False, wallet_follower_id=follower_id)
        result.left = lines
        if not lines or time.monotonic() - started >= timeout:
            break
        unresolved = [c.id for c in lines if c.status in ("SIGNED", "IN_DOUBT")]
        if unresolved:
            await _settle_unresolved(ctx, unresolved, result)
        resting = [c.id for c in lines if c.status in ("LIVE", "PARTIAL", "CANCELING")]
        if resting:
            stats = await cancel_and_settle(ctx, {cid: Plan(reason=BY_ADMIN) for cid in resting})
            result.canceled += stats.canceled
            result.filled += stats.filled
            if stats.unconfirmed:
                await asyncio.sleep(0.5)
        elif unresolved:
            await asyncio.sleep(1.0)
    result.seconds = time.monotonic() - started
    return result

