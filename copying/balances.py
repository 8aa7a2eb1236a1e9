"""The followers' pUSD from a local ledger, so that no balance read sits on a copy's critical path.

A follower's known balance = the pUSD the CLOB last reported (`Follower.venue_balance`, read at
`venue_balance_at`) − the cost of the BUY fills recorded since + the proceeds of the SELL fills
recorded since (fees included). Sizing then subtracts the open BUY reservations as before
(`copying.reservations`). The balance is read again from the CLOB in the background
(`refresh_balances`, every BALANCE_REFRESH_INTERVAL, and sooner for followers with new fills),
and on the critical path only when a follower has never been read or its reading is very old.

Invariants:
- the ledger lives in the database and is computed in the signing transaction, under the
  follower's row lock, so several executors see the same number and never over-spend together;
- a fill whose match time is within LEDGER_MARGIN of the reading counts as not included in it
  (it is subtracted again): the error is always on the safe side (too little pUSD, never too
  much);
- paper followers use `Follower.paper_balance`, which paper fills move directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from copying.context import ExecutorContext, creds_of
from infra.db import session_scope
from models import Follow, Follower, FollowerFill, FollowerStatus, FollowStatus
from wire.types import SignatureType

log = logging.getLogger("pmct.executor")
ZERO = Decimal(0)
LEDGER_MARGIN = timedelta(seconds=10)  # fills this close to a reading count as not in it
STALE_FACTOR = 10  # a reading older than this × BALANCE_REFRESH_INTERVAL is read again before use


def ledger_balances(s: Session, followers: Iterable[Follower]) -> dict[int, Decimal | None]:
    """Known pUSD of each live follower (None when the CLOB was never read for it); the rows
    are those the caller locked."""
    anchors = {f.id: (f.venue_balance, f.venue_balance_at) for f in followers}
    ids = sorted(anchors)
    if not ids:
        return {}
    out: dict[int, Decimal | None] = {fid: None for fid in ids}
    cutoffs = {fid: at - LEDGER_MARGIN for fid, (bal, at) in anchors.items()
               if bal is not None and at is not None}
    for fid, (bal, _) in anchors.items():
        if fid in cutoffs:
            out[fid] = bal
    if not cutoffs:
        return out
    rows = s.execute(select(FollowerFill.follower_id, FollowerFill.side, FollowerFill.size,
                            FollowerFill.price, FollowerFill.fee, FollowerFill.filled_at)
                     .where(FollowerFill.follower_id.in_(sorted(cutoffs)),
                            FollowerFill.paper.is_(False),
                            FollowerFill.filled_at > min(cutoffs.values())))
    for fid, side, size, price, fee, filled_at in rows:
        if filled_at <= cutoffs[fid]:
            continue
        current = out[fid]
        assert current is not None
        delta = size * price
        out[fid] = current - delta - fee if side == "BUY" else current + delta - fee
    return out


def due_for_refresh(s: Session, now: datetime, max_age: timedelta, limit: int) -> list[int]:
    """Live followers with credentials and an active follow whose reading is missing or older
    than `max_age`, or who have fills recorded since it (oldest reading first)."""
    active = (select(Follow.follower_id).where(Follow.status == FollowStatus.ACTIVE)
              .distinct().scalar_subquery())
    fresh_fill = (select(func.max(FollowerFill.filled_at))
                  .where(FollowerFill.follower_id == Follower.id, FollowerFill.paper.is_(False))
                  .correlate(Follower).scalar_subquery())
    q = (select(Follower.id, Follower.venue_balance_at, fresh_fill)
         .where(Follower.encrypted_api_creds.is_not(None), Follower.status == FollowerStatus.ACTIVE,
                Follower.id.in_(active))
         .order_by(Follower.venue_balance_at.asc().nulls_first(), Follower.id))
    out: list[int] = []
    for fid, at, last_fill in s.execute(q):
        if at is None or now - at >= max_age or (last_fill is not None and _after(last_fill, at)):
            out.append(fid)
            if len(out) >= limit:
                break
    return out


def _after(a: object, b: datetime) -> bool:
    """a > b for a datetime that SQLite's MAX() may hand back as text."""
    if isinstance(a, str):
        a = datetime.fromisoformat(a).replace(tzinfo=b.tzinfo)
    assert isinstance(a, datetime)
    return a > b


def needs_reading(ctx: ExecutorContext, follower_ids: Iterable[int]) -> list[int]:
    """Of these followers, those whose known balance cannot be used without a CLOB reading.

    The times of the readings are remembered in memory (`ctx.balance_read_at`), so the common
    case costs no query; a follower not seen yet by this process is looked up once.
    """
    now = ctx.clock()
    too_old = timedelta(seconds=ctx.settings.balance_refresh_interval * STALE_FACTOR)
    ids = sorted(set(follower_ids))
    unknown = [fid for fid in ids if fid not in ctx.balance_read_at]
    if unknown:
        with session_scope(ctx.factory) as s:
            for fid, at in s.execute(select(Follower.id, Follower.venue_balance_at)
                                     .where(Follower.id.in_(unknown))):
                if at is not None:
                    ctx.balance_read_at[fid] = at
    return [fid for fid in ids
            if (at := ctx.balance_read_at.get(fid)) is None or now - at > too_old]


async def refresh_balances(ctx: ExecutorContext, follower_ids: Iterable[int], *, background: bool = False) -> int:
    """Read these followers' pUSD from the CLOB (a few at once) and store each reading; returns
    how many were stored. A failed read keeps the previous reading. With `background` (the
    open-order loop's refresh), a read whose turn comes while new copies are going out
    (`ctx.submitting`) is left for a later wake."""
    ids = sorted(set(follower_ids))
    if not ids:
        return 0
    with session_scope(ctx.factory) as s:
        followers = list(s.scalars(select(Follower).where(Follower.id.in_(ids))))
    sem = asyncio.Semaphore(max(1, ctx.post_concurrency))

    async def one(f: Follower) -> tuple[int, Decimal, datetime] | None:
        creds = creds_of(ctx, f)
        if creds is None:
            return None
        async with sem:
            if background and ctx.submitting:
                return None  # the old reading stays, still due
            at = ctx.clock()
            try:
                ba = await ctx.client.get_balance_allowance(
                    creds, f.signer_address, "COLLATERAL", signature_type=SignatureType(f.signature_type))
            except Exception as exc:  # noqa: BLE001 - the previous reading stays; tried again later
                log.warning("follower %s: balance read failed: %s", f.id, exc)
                return None
        return f.id, ba.balance, at

    readings = [r for r in await asyncio.gather(*(one(f) for f in followers)) if r is not None]
    if readings:
        with session_scope(ctx.factory) as s:
            for fid, balance, at in readings:
                row = s.get(Follower, fid)
                if row is not None and (row.venue_balance_at is None or row.venue_balance_at <= at):
                    row.venue_balance, row.venue_balance_at = balance, at
                    ctx.balance_read_at[fid] = at
    return len(readings)

