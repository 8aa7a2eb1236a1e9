"""The followers' own fills, read per follower and since a cursor, so they are known within seconds.

Live: one `GET /data/trades?after=<cursor>` per follower (not one read per order) returns every
trade of that follower since its cursor; the trades of our orders (taker or maker, by order
hash) are recorded in the ledger and move their copies (FILL / FILLED). The cursor then moves to
the time the read started, minus FILL_OVERLAP (trades listed a little late are read again and
recorded once: the ledger is idempotent). Paper: resting paper orders are matched against the
token's current book, one book read per token.

Invariants:
- a fill is recorded for the copy that owns the order hash, whatever that copy's status (a late
  fill of an order already cancelled still belongs to the ledger); only the copy's current order
  moves its status, and a CANCELING copy is never moved back to PARTIAL by a fill (its cancel is
  in flight: the cancel path settles it);
- every database step is one short transaction per chunk, without an await inside.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from copying.claims import lock_copies
from copying.context import ExecutorContext, account_of, book_for, creds_of
from copying.ledger import FillRecord
from copying.markets import load_market
from copying.orders import spec_for
from copying.outcomes import VenueState, apply_refresh, filled_by_hash
from copying.states import OPEN_AT_VENUE, TERMINAL
from copying.venues import LiveVenue, OrderRefresh, PaperVenue, fills_of, order_hashes_in
from infra.db import session_scope
from models import CopyOrder, CopyOrderEvent, Follower, FollowerFill
from models import CopyStatus as S
from wire.records import ClobTrade
from wire.types import OrderBook

log = logging.getLogger("pmct.executor")
ZERO = Decimal(0)
FILL_OVERLAP = 15  # s: the next read starts this long before the previous one did
CATCH_UP = timedelta(minutes=5)  # a follower read for the first time: from its oldest open order
RECORDED_MEMORY = 20_000  # (trade id, order hash) pairs remembered, to skip re-reads cheaply
CHUNK = 200


def followers_with_open_orders(s: Session, paper: bool) -> dict[int, datetime | None]:
    """Followers of this mode with copies resting at the venue → their oldest posting time."""
    rows = s.execute(select(CopyOrder.follower_id,
                            func.min(func.coalesce(CopyOrder.posted_at, CopyOrder.signed_at)))
                     .where(CopyOrder.status.in_(OPEN_AT_VENUE), CopyOrder.paper == paper)
                     .group_by(CopyOrder.follower_id))
    out: dict[int, datetime | None] = {}
    for fid, oldest in rows:
        if isinstance(oldest, str):  # SQLite MIN() bypasses the column type
            oldest = datetime.fromisoformat(oldest)
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        out[fid] = oldest
    return out


def due_followers(ctx: ExecutorContext, candidates: dict[int, datetime | None]) -> list[int]:
    """Followers whose fills are due now (FILL_REFRESH_INTERVAL since their last read)."""
    now = time.monotonic()
    return sorted(fid for fid in candidates if ctx.fills_due.get(fid, 0.0) <= now)


async def refresh_fills(ctx: ExecutorContext, follower_ids: Iterable[int],
                        oldest: dict[int, datetime | None] | None = None, *, background: bool = False) -> int:
    """Read the new fills of these followers and record them; returns how many were new.

    With `background` (the open-order loop's round of due followers), a follower whose turn
    comes while new copies are going out (`ctx.submitting`) is not read: it stays due for the
    next wake, so a fan-out never shares the event loop with these reads.
    """
    ids = sorted(set(follower_ids))
    if not ids:
        return 0
    if isinstance(ctx.venue, PaperVenue):
        return await _refresh_paper(ctx, ctx.venue, ids)
    assert isinstance(ctx.venue, LiveVenue)
    venue = ctx.venue
    with session_scope(ctx.factory) as s:
        followers = {f.id: f for f in s.scalars(select(Follower).where(Follower.id.in_(ids)))}
        if oldest is None:
            oldest = followers_with_open_orders(s, ctx.paper)
    sem = asyncio.Semaphore(max(1, ctx.post_concurrency))
    started = ctx.clock()

    async def one(fid: int) -> list[ClobTrade]:
        follower = followers.get(fid)
        if follower is None or creds_of(ctx, follower) is None:
            return []
        after = ctx.fill_cursors.get(fid)
        if after is None:
            since = oldest.get(fid) or started
            after = int((since - CATCH_UP).timestamp())
        async with sem:
            if background and ctx.submitting:
                return []  # still due: read at a later wake
            read_at = ctx.clock()
            try:
                trades = await venue.trades_since(account_of(ctx, follower), after)
            except Exception as exc:  # noqa: BLE001 - tried again at its next turn
                log.warning("follower %s: reading its trades failed: %s", fid, exc)
                return []
        ctx.fill_cursors[fid] = max(after, int(read_at.timestamp()) - FILL_OVERLAP)
        ctx.fills_due[fid] = time.monotonic() + ctx.settings.fill_refresh_interval
        return trades

    listings = await asyncio.gather(*(one(fid) for fid in ids))
    return record_trades(ctx, [t for listing in listings for t in listing])


def _copies_by_hash(s: Session, hashes: set[str]) -> dict[str, int]:
    """Order hash → copy id, for current orders and (through the event history) earlier ones."""
    if not hashes:
        return {}
    wanted = sorted(hashes)
    found = {h.lower(): cid for cid, h in s.execute(
        select(CopyOrder.id, CopyOrder.order_hash).where(CopyOrder.order_hash.in_(wanted))) if h}
    rest = [h for h in wanted if h not in found]
    if rest:
        for cid, h in s.execute(select(CopyOrderEvent.copy_order_id, CopyOrderEvent.order_hash)
                                .where(CopyOrderEvent.order_hash.in_(rest)).distinct()):
            if h:
                found.setdefault(h.lower(), cid)
    return found


def record_trades(ctx: ExecutorContext, trades: list[ClobTrade]) -> int:
    """Record the fills these trades hold for our orders (one transaction per chunk of copies)."""
    fresh = [t for t in trades if not all(k in ctx.recorded_trades for k in _keys(t))]
    if not fresh:
        return 0
    with session_scope(ctx.factory) as s:
        owners = _copies_by_hash(s, order_hashes_in(fresh))
    by_copy: dict[int, set[str]] = defaultdict(set)
    for h, cid in owners.items():
        by_copy[cid].add(h)
    new = 0
    ids = sorted(by_copy)
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i:i + CHUNK]
        with session_scope(ctx.factory) as s:
            cos = lock_copies(s, chunk)
            for cid in chunk:
                co = cos.get(cid)
                if co is not None:
                    new += _record_for_copy(ctx, s, co, by_copy[cid], fresh)
    for t in fresh:
        for key in _keys(t):
            ctx.recorded_trades[key] = None
    while len(ctx.recorded_trades) > RECORDED_MEMORY:
        ctx.recorded_trades.pop(next(iter(ctx.recorded_trades)))
    return new


def _keys(t: ClobTrade) -> list[tuple[str, str]]:
    return [(t.id, t.taker_order_id.lower()), *((t.id, m.order_id.lower()) for m in t.maker_orders)]


def _record_for_copy(ctx: ExecutorContext, s: Session, co: CopyOrder, hashes: set[str],
                     trades: list[ClobTrade]) -> int:
    """Record one copy's fills from the listing; move it only for its current order."""
    market = load_market(s, token_id=co.token_id)
    fee_rate = market.fee_rate if market is not None else ZERO
    fee_exp = market.fee_exponent if market is not None else Decimal(1)
    current = (co.order_hash or "").lower()
    new = 0
    for h in sorted(hashes):
        fills = tuple(fills_of(trades, co.order_hash if h == current and co.order_hash else h,
                               fee_rate, fee_exp, co.posted_at or co.signed_at or ctx.clock()))
        unseen = [f for f in fills if not _stored(s, f)]
        if not unseen:
            continue
        state = _state_after(s, co, unseen) if h == current else VenueState.UNKNOWN
        apply_refresh(s, co, OrderRefresh(state.value, ZERO, tuple(unseen)), ctx.clock())
        new += len(unseen)
    return new


def _state_after(s: Session, co: CopyOrder, unseen: list[FillRecord]) -> VenueState:
    """What new fills of the copy's current order say: FILLED when they complete the order, LIVE
    for a resting order that keeps resting, UNKNOWN otherwise (unresolved, cancel in flight,
    marketable or closed: reconciliation and the cancel path decide)."""
    if co.status in TERMINAL:
        return VenueState.UNKNOWN
    total = filled_by_hash(s, co.id, co.order_hash) + sum((f.size for f in unseen), ZERO)
    if co.venue_size is not None and total >= co.venue_size:
        return VenueState.FILLED
    if co.status in (S.LIVE, S.PARTIAL) and co.order_type not in ("FAK", "FOK"):
        return VenueState.LIVE
    return VenueState.UNKNOWN


def _stored(s: Session, fill: FillRecord) -> bool:
    return s.scalar(select(FollowerFill.id).where(FollowerFill.trade_id == fill.trade_id,
                                                 FollowerFill.order_hash == fill.order_hash)) is not None


async def _refresh_paper(ctx: ExecutorContext, venue: PaperVenue, follower_ids: list[int]) -> int:
    """Resting paper copies of these followers matched against their tokens' current books."""
    with session_scope(ctx.factory) as s:
        rows = list(s.execute(select(CopyOrder, Follower).join(Follower, Follower.id == CopyOrder.follower_id)
                              .where(CopyOrder.follower_id.in_(follower_ids),
                                     CopyOrder.status.in_((S.LIVE, S.PARTIAL)), CopyOrder.paper.is_(True))
                              .order_by(CopyOrder.id)).all())
        specs = {}
        for co, follower in rows:
            market = load_market(s, token_id=co.token_id)
            if market is None or co.order_hash is None:
                continue
            specs[co.id] = spec_for(co, follower, market, None,
                                    already_filled=filled_by_hash(s, co.id, co.order_hash))
    now = time.monotonic()
    for fid in follower_ids:
        ctx.fills_due[fid] = now + ctx.settings.fill_refresh_interval
    books: dict[str, OrderBook | None] = {}
    for token in sorted({spec.token_id for spec in specs.values()}):
        try:
            books[token] = await book_for(ctx, token)
        except Exception as exc:  # noqa: BLE001 - tried again at the next turn
            log.warning("paper fills: book of %s unavailable: %s", token, exc)
    refreshes: dict[int, OrderRefresh] = {}
    for cid, spec in specs.items():
        book = books.get(spec.token_id)
        if book is not None:
            refreshes[cid] = await venue.refresh(spec, book)
    new = 0
    with session_scope(ctx.factory) as s:
        cos = lock_copies(s, list(refreshes))
        for cid, refresh in refreshes.items():
            locked = cos.get(cid)
            if locked is None or locked.status not in (S.LIVE, S.PARTIAL) or not refresh.fills:
                continue
            apply_refresh(s, locked, refresh, ctx.clock())
            new += len(refresh.fills)
    return new
