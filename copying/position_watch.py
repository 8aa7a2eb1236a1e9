"""Followed traders' position snapshots and the four change events of the dashboard plan.

A snapshot stores every position of a trader at one time; the next snapshot is diffed against
it into NEW_POSITION, SIZE_INCREASE, SIZE_DECREASE and POSITION_CLOSED events. The first
snapshot of a trader is a baseline and raises no event. The executor reads unhandled
POSITION_CLOSED / SIZE_DECREASE events to cancel pending copies that no longer make sense.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import PositionEventKind, TraderPositionEvent, TraderPositionSnapshot


@dataclass(frozen=True)
class Holding:
    """A trader's size in one token."""

    token_id: str
    condition_id: str
    size: Decimal
    avg_price: Decimal | None = None


def diff_positions(old: Mapping[str, Decimal],
                   new: Mapping[str, Decimal]) -> list[tuple[str, PositionEventKind, Decimal, Decimal]]:
    """(token, kind, old size, new size) for every token whose size changed."""
    out = []
    zero = Decimal(0)
    for token in sorted(set(old) | set(new)):
        before, after = old.get(token, zero), new.get(token, zero)
        if before == after:
            continue
        if before == 0:
            kind = PositionEventKind.NEW_POSITION
        elif after == 0:
            kind = PositionEventKind.POSITION_CLOSED
        elif after > before:
            kind = PositionEventKind.SIZE_INCREASE
        else:
            kind = PositionEventKind.SIZE_DECREASE
        out.append((token, kind, before, after))
    return out


def last_snapshot(session: Session, trader_id: int) -> dict[str, Decimal] | None:
    """Sizes per token at the trader's latest snapshot, or None before the first one."""
    latest = session.scalar(select(func.max(TraderPositionSnapshot.taken_at))
                            .where(TraderPositionSnapshot.trader_id == trader_id))
    if latest is None:
        return None
    rows = session.execute(
        select(TraderPositionSnapshot.token_id, TraderPositionSnapshot.size)
        .where(TraderPositionSnapshot.trader_id == trader_id,
               TraderPositionSnapshot.taken_at == latest)
    ).all()
    return {token: size for token, size in rows if size > 0}


def record_snapshot(session: Session, trader_id: int, holdings: Sequence[Holding],
                    now: datetime) -> list[TraderPositionEvent]:
    """Store a snapshot and the events since the previous one (none for the first)."""
    previous = last_snapshot(session, trader_id)
    current = {h.token_id: h.size for h in holdings if h.size > 0}
    rows = [TraderPositionSnapshot(trader_id=trader_id, token_id=h.token_id,
                                   condition_id=h.condition_id, size=h.size,
                                   avg_price=h.avg_price, taken_at=now)
            for h in holdings if h.size > 0]
    if not rows:  # an empty snapshot still marks the time (everything closed)
        rows = [TraderPositionSnapshot(trader_id=trader_id, token_id="", condition_id="",
                                       size=Decimal(0), taken_at=now)]
    session.add_all(rows)
    events: list[TraderPositionEvent] = []
    if previous is not None:
        for token, kind, before, after in diff_positions(previous, current):
            events.append(TraderPositionEvent(trader_id=trader_id, token_id=token, kind=kind,
                                              old_size=before, new_size=after, detected_at=now))
        session.add_all(events)
    session.flush()
    return events
