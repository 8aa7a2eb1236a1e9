"""Follower fills → copy order progress, follower positions and realized P&L (average cost).

Invariants: a venue trade is recorded once per order (unique (trade_id, order_hash), inserted
with ON CONFLICT DO NOTHING), so re-reading the same trades changes nothing; a position never
goes negative (a SELL fill larger than the holding is clamped and logged: that would be a bug
upstream, never silently negative); paper fills move the follower's paper balance; a BUY fill
adds to the follow's target holding (`target_size`), a SELL fill never takes the holding below
it unnoticed (the target is kept ≤ the holding);
each new fill adds its notification (copying/outbox.py) to the same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from copying import latency
from copying.outbox import copy_filled
from infra.db import insert_ignore, utcnow
from models import CopyOrder, Follower, FollowerFill, FollowerPosition

log = logging.getLogger("pmct.ledger")
ZERO = Decimal(0)


@dataclass(frozen=True)
class FillRecord:
    """One fill of one of our venue (or paper) orders."""

    trade_id: str
    order_hash: str
    size: Decimal
    price: Decimal
    fee: Decimal
    status: str
    filled_at: datetime


def position_for(session: Session, order: CopyOrder, for_update: bool = False) -> FollowerPosition:
    """The (follow, token, paper) position row, created empty if needed."""
    q = select(FollowerPosition).where(
        FollowerPosition.follow_id == order.follow_id,
        FollowerPosition.token_id == order.token_id,
        FollowerPosition.paper == bool(order.paper),
    )
    if for_update:
        q = q.with_for_update()
    pos = session.scalar(q)
    if pos is None:
        pos = FollowerPosition(follower_id=order.follower_id, follow_id=order.follow_id,
                               token_id=order.token_id, condition_id=order.condition_id,
                               paper=bool(order.paper), size=ZERO, avg_cost=ZERO, realized_pnl=ZERO,
                               fees_paid=ZERO)
        session.add(pos)
        session.flush()
    return pos


def record_fill(session: Session, order: CopyOrder, fill: FillRecord) -> bool:
    """Record one fill against `order` (idempotent); True when it was new."""
    dialect = session.get_bind().dialect.name
    stmt = insert_ignore(FollowerFill.__table__, dialect).returning(FollowerFill.__table__.c.id)
    values = {
        "copy_order_id": order.id, "follower_id": order.follower_id, "follow_id": order.follow_id,
        "trade_id": fill.trade_id, "order_hash": fill.order_hash, "token_id": order.token_id,
        "side": order.side, "size": fill.size, "price": fill.price, "fee": fill.fee,
        "trade_status": fill.status, "paper": bool(order.paper), "realized_pnl": ZERO,
        "filled_at": fill.filled_at,
    }
    new_id = session.execute(stmt, [values]).scalar()
    if new_id is None:
        return False
    old_filled = order.filled_size or ZERO
    if old_filled == 0 and order.attempts <= 1:
        latency.observe("first_fill", order.acked_at or order.posted_at, fill.filled_at)
    latency.observe("fill_seen", fill.filled_at, utcnow())
    total = old_filled + fill.size
    if total > 0:
        old_avg = order.avg_fill_price or ZERO
        order.avg_fill_price = (old_avg * old_filled + fill.price * fill.size) / total
    order.filled_size = total
    realized = _apply_to_position(session, order, fill)
    if realized != 0:
        row = session.get(FollowerFill, new_id)
        assert row is not None
        row.realized_pnl = realized
    if order.paper:
        _apply_to_paper_balance(session, order, fill)
    copy_filled(session, order, fill_id=new_id, size=fill.size, price=fill.price, fee=fill.fee,
                realized_pnl=realized, filled_at=fill.filled_at)
    session.flush()
    return True


def _apply_to_position(session: Session, order: CopyOrder, fill: FillRecord) -> Decimal:
    pos = position_for(session, order, for_update=True)
    pos.fees_paid = pos.fees_paid + fill.fee
    if order.side == "BUY":
        new_size = pos.size + fill.size
        cost = pos.avg_cost * pos.size + fill.price * fill.size + fill.fee
        pos.avg_cost = cost / new_size if new_size > 0 else ZERO
        pos.size = new_size
        pos.target_size = (pos.target_size or ZERO) + fill.size
        return ZERO
    sold = fill.size
    if sold > pos.size:
        log.error("copy order %s: sell fill %s exceeds holding %s; clamped", order.id, sold, pos.size)
        sold = pos.size
    realized = (fill.price - pos.avg_cost) * sold - fill.fee
    pos.size = pos.size - sold
    pos.target_size = min(pos.target_size or ZERO, pos.size)
    pos.realized_pnl = pos.realized_pnl + realized
    if pos.size == 0:
        pos.avg_cost = ZERO
    return realized


def _apply_to_paper_balance(session: Session, order: CopyOrder, fill: FillRecord) -> None:
    follower = session.get(Follower, order.follower_id, with_for_update=True)
    assert follower is not None
    notional = fill.price * fill.size
    delta = -(notional + fill.fee) if order.side == "BUY" else notional - fill.fee
    follower.paper_balance = (follower.paper_balance or ZERO) + delta
