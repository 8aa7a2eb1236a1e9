"""Followed traders' position snapshots and the four change events of the dashboard plan.

A snapshot stores every position of a trader at one time; the next snapshot is diffed against
it into NEW_POSITION, SIZE_INCREASE, SIZE_DECREASE and POSITION_CLOSED events. The first
snapshot of a trader is a baseline and raises no event. The executor reads POSITION_CLOSED /
SIZE_DECREASE events to cancel pending copies that no longer make sense.

A decrease no stored row explains (a missed fill, a transfer, anything the activity feed did not
show) becomes an exit: `audit_decreases` looks at each decrease once `SNAPSHOT_EXIT_GRACE` has
passed (late activity rows get that long to explain it), and turns the unexplained part into a
SNAPSHOT row (side SELL) that the intake fans out like a leader SELL. As in `copying.leader`, a
snapshot reflects the rows stored before it was taken; a decrease first seen later that happened
before the snapshot (indexed late) is taken as in it too, so late rows explain decreases rather
than turn them into exits (a late increase is left out: the audit can only under-state an
unexplained decrease). The SNAPSHOT row is stored as first seen just before its snapshot. A REDEEM row of the market
in the window explains a decrease (resolution settles it). Each decrease is audited once
(`handled_at`). Old snapshots and events are pruned (`prune`), each trader's latest kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from copying.leader import signed_size
from models import PositionEventKind, Trader, TraderFill, TraderPositionEvent, TraderPositionSnapshot
from wire.types import Activity, Side

SNAPSHOT_ROW = "SNAPSHOT"
UNEXPLAINED_DUST = Decimal("0.01")  # decreases smaller than a lot are rounding, not exits
SNAPSHOT_ROW_OFFSET = timedelta(milliseconds=1)  # a SNAPSHOT row sits just before its snapshot


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


def _unhandled_decreases(now: datetime, grace: timedelta) -> Any:
    return and_(TraderPositionEvent.handled_at.is_(None),
                TraderPositionEvent.kind.in_([PositionEventKind.SIZE_DECREASE,
                                              PositionEventKind.POSITION_CLOSED]),
                TraderPositionEvent.detected_at <= now - grace)


def pending_decreases(session: Session, trader_ids: list[int], now: datetime,
                      grace: timedelta) -> set[int]:
    """The traders among `trader_ids` with a decrease `audit_decreases` would look at now."""
    if not trader_ids:
        return set()
    return set(session.scalars(select(TraderPositionEvent.trader_id).distinct().where(
        TraderPositionEvent.trader_id.in_(trader_ids), _unhandled_decreases(now, grace))))


def audit_decreases(session: Session, trader_id: int, now: datetime,
                    grace: timedelta) -> list[Activity]:
    """SNAPSHOT rows for the unexplained part of each decrease older than `grace` (see module)."""
    events = session.scalars(select(TraderPositionEvent).where(
        TraderPositionEvent.trader_id == trader_id, _unhandled_decreases(now, grace))
        .order_by(TraderPositionEvent.id)).all()
    if not events:
        return []
    wallet = session.scalar(select(Trader.wallet).where(Trader.id == trader_id)) or ""
    out: list[Activity] = []
    for ev in events:
        ev.handled_at = now
        prev = session.execute(
            select(TraderPositionSnapshot.taken_at, TraderPositionSnapshot.condition_id)
            .where(TraderPositionSnapshot.trader_id == trader_id,
                   TraderPositionSnapshot.token_id == ev.token_id,
                   TraderPositionSnapshot.taken_at < ev.detected_at)
            .order_by(TraderPositionSnapshot.taken_at.desc()).limit(1)).first()
        if prev is None:
            continue
        since, condition_id = prev
        # stored before the snapshot (so in it); or a decrease that happened before it and was
        # indexed late (block times are whole seconds: an increase of that same second may
        # come after the snapshot, so late increases are left out: that can only under-state)
        in_window = or_(TraderFill.first_seen_at <= ev.detected_at,
                        and_(TraderFill.side == "SELL", TraderFill.occurred_at <= ev.detected_at))
        rows = session.execute(select(TraderFill.activity_type, TraderFill.side, TraderFill.size).where(
            TraderFill.trader_id == trader_id, TraderFill.token_id == ev.token_id,
            TraderFill.activity_type != SNAPSHOT_ROW, TraderFill.first_seen_at > since,
            in_window)).all()
        redeemed = session.scalar(select(TraderFill.id).where(
            TraderFill.trader_id == trader_id, TraderFill.activity_type == "REDEEM",
            TraderFill.condition_id == condition_id, TraderFill.occurred_at > since,
            TraderFill.occurred_at <= ev.detected_at).limit(1))
        if redeemed is not None:
            continue
        expected = ev.old_size + sum((signed_size(k, sd, sz) for k, sd, sz in rows), Decimal(0))
        unexplained = expected - ev.new_size
        if unexplained < UNEXPLAINED_DUST:
            continue
        when = ev.detected_at - SNAPSHOT_ROW_OFFSET
        key = f"snapshot|{trader_id}|{ev.token_id}|{ev.id}|{ev.detected_at.isoformat()}"
        out.append(Activity(
            proxy_wallet=wallet, timestamp=when, type=SNAPSHOT_ROW, condition_id=condition_id,
            token_id=ev.token_id, side=Side.SELL, size=unexplained, price=Decimal(0), usdc_size=None,
            transaction_hash="0x" + hashlib.sha256(key.encode()).hexdigest(), outcome="",
            outcome_index=None, title="", slug="", event_slug="", is_combo=False,
            raw={"type": SNAPSHOT_ROW, "event_id": ev.id, "old_size": str(ev.old_size),
                 "new_size": str(ev.new_size), "expected": str(expected)}))
    session.flush()
    return out
