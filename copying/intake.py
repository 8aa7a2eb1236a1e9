"""Store each trader fill once and queue one copy order per active follow, in one transaction.

Invariants:
- identity: there is no trade id, so a fill is keyed on (type, tx hash, token, side, size,
  price) plus an occurrence ordinal among byte-identical rows of one poll; re-polling an
  overlapping window produces the same keys and inserts nothing (INSERT … ON CONFLICT DO NOTHING);
- fan-out: only newly inserted fills get copy orders, one per (fill, follow), bulk inserted in
  the same transaction as the fill and the trader's cursor; a fill before a follow started, or
  first seen more than MAX_COPY_DELAY after it happened, gets a SKIPPED copy with the reason
  (`before_follow` / `stale`), never a QUEUED one; combo rows are stored and skipped (`combo`);
  SPLIT/MERGE/REDEEM/CONVERSION rows are stored for the position view and queue nothing;
- the stale and combo skips get their notifications (notify/outbox.py) in the same transaction.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import case, literal, null, select, text
from sqlalchemy.orm import Session

from infra.db import DecimalType, UTCDateTime, canonical_decimal, insert_ignore
from models import CopyOrder, CopyStatus, Follow, Follower, FollowerStatus, FollowStatus, TraderFill
from notify.outbox import copies_skipped_at_intake
from wire.types import Activity

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


def fill_level_skip(fill: dict[str, Any], max_delay: timedelta) -> str | None:
    """A reason that skips the copies of every follow (combo, stale), or None."""
    if fill["is_combo"]:
        return "combo"
    if fill["first_seen_at"] - fill["occurred_at"] > max_delay:
        return "stale"
    return None


def before_follow_threshold(fill: dict[str, Any]) -> datetime:
    """A follow that started at or after this instant began after the fill.

    Block times are whole seconds: the fill is before the follow iff occurred_at is earlier
    than the follow's start truncated to the second, i.e. iff started_at ≥ occurred_at + 1 s.
    """
    return fill["occurred_at"] + timedelta(seconds=1)


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
    queued = skipped = 0
    for fill in new_fills:
        if fill["activity_type"] == "TRADE" and fill["side"]:
            q, k = fan_out(session, trader_id, fill, max_copy_delay, now)
            queued, skipped = queued + q, skipped + k
    if queued and dialect == "postgresql":
        session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
    return StoreResult(len(new_fills), queued, skipped)


def fan_out(session: Session, trader_id: int, fill: dict[str, Any], max_delay: timedelta,
            now: datetime) -> tuple[int, int]:
    """One INSERT … SELECT: a copy order per active follow of an active follower; (queued, skipped)."""
    table = CopyOrder.__table__
    fixed_reason = fill_level_skip(fill, max_delay)
    if fixed_reason is not None:
        status: Any = literal(CopyStatus.SKIPPED.value)
        reason: Any = literal(fixed_reason)
        closed: Any = literal(now, UTCDateTime())
    else:
        late_follow = Follow.started_at >= literal(before_follow_threshold(fill), UTCDateTime())
        status = case((late_follow, literal(CopyStatus.SKIPPED.value)), else_=literal(CopyStatus.QUEUED.value))
        reason = case((late_follow, literal("before_follow")), else_=null())
        closed = case((late_follow, literal(now, UTCDateTime())), else_=null())
    source = (
        select(Follow.id, literal(fill["id"]), Follow.follower_id, literal(fill["side"]),
               literal(fill["token_id"]), literal(fill["condition_id"]),
               literal(fill["price"], DecimalType()), status, reason,
               literal(Decimal(0), DecimalType()), literal(0), literal(False),
               literal(now, UTCDateTime()), closed, literal(now, UTCDateTime()))
        .join(Follower, Follower.id == Follow.follower_id)
        .where(Follow.trader_id == trader_id, Follow.status == FollowStatus.ACTIVE,
               Follower.status == FollowerStatus.ACTIVE)
    )
    columns = ["follow_id", "trader_fill_id", "follower_id", "side", "token_id", "condition_id",
               "trader_price", "status", "reason", "filled_size", "attempts", "paper", "queued_at",
               "closed_at", "updated_at"]
    dialect = session.get_bind().dialect.name
    stmt = insert_ignore(table, dialect).from_select(columns, source).returning(
        table.c.id, table.c.follower_id, table.c.status, table.c.reason)
    rows = session.execute(stmt).all()
    skipped = [(cid, fid, why) for cid, fid, st, why in rows if st != CopyStatus.QUEUED]
    if skipped:
        copies_skipped_at_intake(session, skipped, fill)
    return len(rows) - len(skipped), len(skipped)
