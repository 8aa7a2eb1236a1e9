"""Store each trader fill once and queue one copy order per active follow, in one transaction.

Invariants:
- identity: there is no trade id, so a fill is keyed on (type, tx hash, token, side, size,
  price) plus an occurrence ordinal among byte-identical rows of one poll; re-polling an
  overlapping window produces the same keys and inserts nothing (INSERT … ON CONFLICT DO NOTHING);
- fan-out: only newly inserted fills get copy orders, one per (fill, follow), bulk inserted in
  the same transaction as the fill and the trader's cursor; a fill before a follow started, or
  first seen more than MAX_COPY_DELAY after it happened, gets a SKIPPED copy with the reason
  (`before_follow` / `stale`), never a QUEUED one; combo rows are stored and skipped (`combo`);
  SPLIT/MERGE/REDEEM/CONVERSION rows are stored for the position view and queue nothing.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from db import canonical_decimal, insert_ignore
from models import CopyOrder, CopyStatus, Follow, Follower, FollowerStatus, FollowStatus, TraderFill
from pm_types import Activity

NOTIFY_CHANNEL = "pmct_copy_orders"


def fill_identity(row: Activity) -> tuple[str, ...]:
    """The fields that identify a fill (without the occurrence ordinal)."""
    return (
        row.type,
        row.transaction_hash.lower(),
        row.token_id,
        row.side.value if row.side else "",
        canonical_decimal(row.size),
        canonical_decimal(row.price),
    )


def fill_keys(rows: Sequence[Activity]) -> list[str]:
    """A stable key per row: identity + occurrence ordinal among identical rows, hashed."""
    seen: Counter[tuple[str, ...]] = Counter()
    keys = []
    for row in rows:
        ident = fill_identity(row)
        occurrence = seen[ident]
        seen[ident] += 1
        keys.append(hashlib.sha256("|".join((*ident, str(occurrence))).encode()).hexdigest())
    return keys


def _occurrences(rows: Sequence[Activity]) -> list[int]:
    seen: Counter[tuple[str, ...]] = Counter()
    out = []
    for row in rows:
        ident = fill_identity(row)
        out.append(seen[ident])
        seen[ident] += 1
    return out


@dataclass(frozen=True)
class StoreResult:
    """What one store call did."""

    new_fills: int
    queued: int
    skipped: int


def _fill_values(trader_id: int, rows: Sequence[Activity], now: datetime) -> list[dict[str, Any]]:
    keys, occs = fill_keys(rows), _occurrences(rows)
    return [
        {
            "trader_id": trader_id,
            "fill_key": key,
            "occurrence": occ,
            "activity_type": r.type,
            "transaction_hash": r.transaction_hash.lower(),
            "condition_id": r.condition_id,
            "token_id": r.token_id,
            "side": r.side.value if r.side else None,
            "size": r.size,
            "price": r.price,
            "usdc_size": r.usdc_size,
            "outcome": r.outcome,
            "outcome_index": r.outcome_index,
            "title": r.title,
            "slug": r.slug,
            "event_slug": r.event_slug,
            "is_combo": r.is_combo,
            "occurred_at": r.timestamp,
            "first_seen_at": now,
            "raw": r.raw,
        }
        for r, key, occ in zip(rows, keys, occs, strict=True)
    ]


def active_follows(session: Session, trader_id: int) -> list[tuple[int, int, datetime]]:
    """(follow id, follower id, started_at) of every follow that should copy this trader now."""
    q = (
        select(Follow.id, Follow.follower_id, Follow.started_at)
        .join(Follower, Follower.id == Follow.follower_id)
        .where(Follow.trader_id == trader_id, Follow.status == FollowStatus.ACTIVE,
               Follower.status == FollowerStatus.ACTIVE)
    )
    return [(a, b, c) for a, b, c in session.execute(q).all()]


def copy_decision(fill: dict[str, Any], started_at: datetime,
                  max_delay: timedelta) -> tuple[CopyStatus, str | None]:
    """QUEUED, or SKIPPED with the reason, for one (fill, follow)."""
    if fill["is_combo"]:
        return CopyStatus.SKIPPED, "combo"
    if fill["occurred_at"] < started_at.replace(microsecond=0):  # block times are whole seconds
        return CopyStatus.SKIPPED, "before_follow"
    if fill["first_seen_at"] - fill["occurred_at"] > max_delay:
        return CopyStatus.SKIPPED, "stale"
    return CopyStatus.QUEUED, None


def store_fills(
    session: Session,
    trader_id: int,
    rows: Sequence[Activity],
    *,
    now: datetime,
    max_copy_delay: timedelta,
) -> StoreResult:
    """Insert unseen fills and their copy orders; the caller commits (with the cursor move)."""
    if not rows:
        return StoreResult(0, 0, 0)
    values = _fill_values(trader_id, rows, now)
    dialect = session.get_bind().dialect.name
    stmt = insert_ignore(TraderFill.__table__, dialect).returning(
        TraderFill.__table__.c.id, TraderFill.__table__.c.fill_key
    )
    inserted = {key: fid for fid, key in session.execute(stmt, values).all()} if values else {}
    if not inserted:
        return StoreResult(0, 0, 0)
    new_fills = [dict(v, id=inserted[v["fill_key"]]) for v in values if v["fill_key"] in inserted]
    copyable = [f for f in new_fills if f["activity_type"] == "TRADE" and f["side"]]
    follows = active_follows(session, trader_id) if copyable else []
    orders = list(_copy_rows(copyable, follows, max_copy_delay, now))
    queued = sum(1 for o in orders if o["status"] == CopyStatus.QUEUED)
    if orders:
        session.execute(insert_ignore(CopyOrder.__table__, dialect), orders)
        if queued and dialect == "postgresql":
            session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
    return StoreResult(len(new_fills), queued, len(orders) - queued)


def _copy_rows(fills: Iterable[dict[str, Any]], follows: Sequence[tuple[int, int, datetime]],
               max_delay: timedelta, now: datetime) -> Iterable[dict[str, Any]]:
    for fill in fills:
        for follow_id, follower_id, started_at in follows:
            status, reason = copy_decision(fill, started_at, max_delay)
            yield {
                "follow_id": follow_id,
                "trader_fill_id": fill["id"],
                "follower_id": follower_id,
                "side": fill["side"],
                "token_id": fill["token_id"],
                "condition_id": fill["condition_id"],
                "trader_price": fill["price"],
                "status": status,
                "reason": reason,
                "filled_size": 0,
                "attempts": 0,
                "paper": False,
                "queued_at": now,
                "closed_at": now if status == CopyStatus.SKIPPED else None,
                "updated_at": now,
            }

