"""Sales a follow makes without a leader row: to bring its holding down to its target.

- remainders (`queue_remainders`, the executor's open-order pass): a position holding more than
  its target (a remainder kept because it was under the market's minimum, the unfilled part of
  a marketable exit, an exit cancelled by the kill switch) with nothing of that follow and
  token in flight gets one sale (`CopyOrigin.REMAINDER`) once the excess is worth ≥ $1 at the
  best bid, or reaches the min size; at most one per follow and token per `REMAINDER_RETRY`;
- closes (`queue_closes`, `admin disable|remove-follow --close-positions`): the follow's target
  becomes 0 and each token it holds gets a sale of everything at market within the slippage
  limit (`CopyOrigin.CLOSE`), after its earlier copies (`copying.ordering`).

Both are ordinary copy orders from then on (claimed, sized by `copying.sizing.sell_down_to`,
priced, signed once, managed). Invariant: never more than one such sale of a follow and token
is open at a time, and never while another copy of that follow and token is not settled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from copying.context import ExecutorContext, book_for, market_for
from copying.sizing import MIN_NOTIONAL_USD, floor_lot
from copying.states import TERMINAL, Event, created
from infra.db import session_scope
from models import CopyOrder, CopyOrigin, CopyStatus, Follow, FollowerPosition, Market

log = logging.getLogger("pmct.executor")
ZERO = Decimal(0)
REMAINDER_RETRY = timedelta(hours=1)
_OPEN = tuple(sorted(set(CopyStatus) - TERMINAL, key=lambda st: st.value))


@dataclass(frozen=True)
class Excess:
    """A follow holding more of a token than its target."""

    follow_id: int
    follower_id: int
    token_id: str
    condition_id: str
    excess: Decimal


def busy_pairs(s: Session, follow_ids: list[int]) -> set[tuple[int, str]]:
    """(follow, token) pairs with a copy not settled yet."""
    if not follow_ids:
        return set()
    return set(s.execute(select(CopyOrder.follow_id, CopyOrder.token_id).where(
        CopyOrder.follow_id.in_(follow_ids), CopyOrder.status.in_(_OPEN))).all())


def excess_positions(s: Session, paper: bool, now: datetime) -> list[Excess]:
    """Positions above their target (≥ one lot), with nothing in flight, in unresolved markets."""
    rows = s.execute(select(FollowerPosition, Market.resolved_at)
                     .outerjoin(Market, Market.condition_id == FollowerPosition.condition_id)
                     .where(FollowerPosition.paper == paper)).all()
    candidates = [(p, resolved) for p, resolved in rows
                  if resolved is None and floor_lot(p.size - (p.target_size or ZERO)) > 0]
    if not candidates:
        return []
    follow_ids = sorted({p.follow_id for p, _ in candidates})
    busy = busy_pairs(s, follow_ids)
    # a remainder sale tried within the hour is not tried again yet, unless it never reached the
    # venue (NOT_PLACED: refused or lost in transit, for the whole re-post window)
    recent = set(s.execute(select(CopyOrder.follow_id, CopyOrder.token_id).where(
        CopyOrder.follow_id.in_(follow_ids), CopyOrder.origin == CopyOrigin.REMAINDER,
        CopyOrder.queued_at > now - REMAINDER_RETRY, CopyOrder.status != CopyStatus.NOT_PLACED)).all())
    return [Excess(p.follow_id, p.follower_id, p.token_id, p.condition_id,
                   floor_lot(p.size - (p.target_size or ZERO)))
            for p, _ in candidates
            if (p.follow_id, p.token_id) not in busy and (p.follow_id, p.token_id) not in recent]


def new_sale(s: Session, *, follow_id: int, follower_id: int, token_id: str, condition_id: str,
             origin: CopyOrigin, price: Decimal, now: datetime, detail: dict[str, str],
             paper: bool) -> CopyOrder:
    """A QUEUED sale of a follow's token without a leader row (its creation event recorded); it
    sells the `paper` (or live) position, so only an executor of that mode may claim it."""
    co = CopyOrder(follow_id=follow_id, trader_fill_id=None, follower_id=follower_id, side="SELL",
                   token_id=token_id, condition_id=condition_id, trader_price=price,
                   status=CopyStatus.QUEUED, origin=origin, filled_size=ZERO, attempts=0,
                   paper=paper, queued_at=now, updated_at=now)
    s.add(co)
    s.flush()
    created(s, co, Event.QUEUE_TARGET, reason=origin.value, detail=detail)
    return co


async def queue_remainders(ctx: ExecutorContext) -> int:
    """Queue a sale for every excess worth selling now (see module); how many were queued."""
    now = ctx.clock()
    with session_scope(ctx.factory) as s:
        excesses = excess_positions(s, ctx.paper, now)
    queued = 0
    for ex in excesses:
        try:
            market = await market_for(ctx, ex.token_id, ex.condition_id)
            book = await book_for(ctx, ex.token_id)
        except Exception as exc:  # noqa: BLE001 - try again at the next pass
            log.warning("follow %s token %s: remainder check failed: %s", ex.follow_id, ex.token_id, exc)
            continue
        bid = book.best_bid if book is not None else None
        if market.closed or bid is None:
            continue
        if ex.excess < market.min_size and ex.excess * bid < MIN_NOTIONAL_USD:
            continue  # kept: under the minimum and under $1 (sold later or redeemed)
        with session_scope(ctx.factory) as s:
            if (ex.follow_id, ex.token_id) in busy_pairs(s, [ex.follow_id]):
                continue
            co = new_sale(s, follow_id=ex.follow_id, follower_id=ex.follower_id,
                          token_id=ex.token_id, condition_id=ex.condition_id,
                          origin=CopyOrigin.REMAINDER, price=bid, now=now,
                          detail={"excess": str(ex.excess), "bid": str(bid)}, paper=ctx.paper)
            log.info("copy %s: remainder of %s shares queued (follow %s, token %s)", co.id,
                     ex.excess, ex.follow_id, ex.token_id)
        queued += 1
    return queued


def queue_closes(s: Session, follow: Follow, paper: bool, now: datetime) -> list[CopyOrder]:
    """`--close-positions`: target 0 and one close sale per token the follow holds (caller commits)."""
    out: list[CopyOrder] = []
    positions = s.scalars(select(FollowerPosition).where(
        FollowerPosition.follow_id == follow.id, FollowerPosition.paper == paper)
        .with_for_update()).all()
    for pos in positions:
        pos.target_size = ZERO
        if floor_lot(pos.size) <= 0:
            continue
        out.append(new_sale(s, follow_id=follow.id, follower_id=follow.follower_id,
                            token_id=pos.token_id, condition_id=pos.condition_id,
                            origin=CopyOrigin.CLOSE, price=ZERO, now=now,
                            detail={"size": str(pos.size)}, paper=paper))
    return out


def close_preview(s: Session, follow: Follow, paper: bool) -> list[tuple[str, str, Decimal]]:
    """(token, condition, shares) the follow would sell with `--close-positions`."""
    return [(p.token_id, p.condition_id, p.size) for p in s.scalars(select(FollowerPosition).where(
        FollowerPosition.follow_id == follow.id, FollowerPosition.paper == paper))
        if floor_lot(p.size) > 0]
