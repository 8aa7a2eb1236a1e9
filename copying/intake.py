"""Store each trader fill once and queue one copy order per active follow, in one transaction.

Invariants:
- identity: there is no trade id, so a fill is keyed on (type, tx hash, token, side, size,
  price) plus an occurrence ordinal among byte-identical rows of one poll; re-polling an
  overlapping window produces the same keys and inserts nothing (INSERT … ON CONFLICT DO NOTHING);
- fan-out: only newly inserted fills get copy orders, one per (fill, follow), bulk inserted in
  the same transaction as the fill and the trader's cursor; a fill before a follow started gets
  a SKIPPED copy (`before_follow`); combo rows are stored and skipped (`combo`);
- entries (TRADE BUY) go to active follows of active followers; one first seen more than
  MAX_COPY_DELAY after it happened gets SKIPPED copies (`stale`), never QUEUED ones;
- exits (TRADE SELL, and the per-outcome MERGE / CONVERSION / SNAPSHOT rows, see
  `copying.leader`) go to every follow that is active or paused, whatever its follower's status,
  and to any other follow (disabled, removed) that still holds the token: a paused, disabled or
  removed follow is never left holding what the leader sold. A late exit is still QUEUED unless
  the follow turned late exits off (`follows.mirror_late_exits`: SKIPPED `stale`); a SNAPSHOT row
  is late by construction and never counts as stale;
- SPLIT and REDEEM rows are stored for the position view and queue nothing.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, and_, case, cast, exists, literal, not_, null, or_, select, text
from sqlalchemy.orm import Session

from copying.leader import is_exit
from copying.states import INITIAL, Event
from infra.db import DecimalType, UTCDateTime, canonical_decimal, insert_ignore
from models import (
    CopyOrder,
    CopyStatus,
    Follow,
    Follower,
    FollowerPosition,
    FollowerStatus,
    FollowStatus,
    TraderFill,
)
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


def seen_late(fill: dict[str, Any], max_delay: timedelta) -> bool:
    """True when the row was first seen more than `max_delay` after it happened (SNAPSHOT rows,
    late by construction, never are)."""
    if fill["activity_type"] == "SNAPSHOT":
        return False
    late: bool = fill["first_seen_at"] - fill["occurred_at"] > max_delay
    return late


def fill_level_skip(fill: dict[str, Any], max_delay: timedelta) -> str | None:
    """A reason that skips the copies of every follow (combo; a stale entry), or None."""
    if fill["is_combo"]:
        return "combo"
    if not is_exit(fill["activity_type"], fill["side"]) and seen_late(fill, max_delay):
        return "stale"
    return None


def copyable(fill: dict[str, Any]) -> bool:
    """True for rows that queue copies: TRADE rows with a side, and exit rows."""
    return bool(fill["side"]) and (fill["activity_type"] == "TRADE"
                                   or is_exit(fill["activity_type"], fill["side"]))


def before_follow_threshold(fill: dict[str, Any]) -> datetime:
    """A follow that started at or after this instant began after the fill.

    Block times are whole seconds: the fill is before the follow iff occurred_at is earlier
    than the follow's start truncated to the second, i.e. iff started_at ≥ occurred_at + 1 s.
    """
    occurred: datetime = fill["occurred_at"]
    return occurred + timedelta(seconds=1)


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
        if copyable(fill):
            q, k = fan_out(session, trader_id, fill, max_copy_delay, now)
            queued, skipped = queued + q, skipped + k
    if queued and dialect == "postgresql":
        session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
    return StoreResult(len(new_fills), queued, skipped)


def fan_out(session: Session, trader_id: int, fill: dict[str, Any], max_delay: timedelta,
            now: datetime) -> tuple[int, int]:
    """One INSERT … SELECT: a copy order per follow the row concerns (see module); (queued, skipped).

    The copies are born QUEUED or SKIPPED as `copying.states.INITIAL` says for their creation
    event; no event rows are written for a creation (see `copying.states`).
    """
    table = CopyOrder.__table__
    queued_status, skipped_status = INITIAL[Event.QUEUE].value, INITIAL[Event.SKIP_AT_INTAKE].value
    exit_row = is_exit(fill["activity_type"], fill["side"])
    fixed_reason = fill_level_skip(fill, max_delay)
    late_follow = Follow.started_at >= literal(before_follow_threshold(fill), UTCDateTime())
    if fixed_reason is not None:
        status: Any = literal(skipped_status)
        reason: Any = literal(fixed_reason)
        closed: Any = literal(now, UTCDateTime())
    else:
        skips: list[tuple[Any, Any]] = [(late_follow, literal("before_follow"))]
        if exit_row and seen_late(fill, max_delay):
            skips.append((not_(Follow.mirror_late_exits), literal("stale")))
        skipped = or_(*(cond for cond, _ in skips))
        status = case((skipped, literal(skipped_status)), else_=literal(queued_status))
        reason = case(*skips, else_=null())
        closed = case((skipped, literal(now, UTCDateTime())), else_=null())
    if exit_row:
        holds_token = exists().where(
            FollowerPosition.follow_id == Follow.id,
            FollowerPosition.token_id == fill["token_id"],
            cast(FollowerPosition.size, Numeric) > 0)
        concerned: Any = or_(Follow.status.in_([FollowStatus.ACTIVE, FollowStatus.PAUSED]),
                             holds_token)
    else:
        concerned = and_(Follow.status == FollowStatus.ACTIVE, Follower.status == FollowerStatus.ACTIVE)
    source = (
        select(Follow.id, literal(fill["id"]), Follow.follower_id, literal(fill["side"]),
               literal(fill["token_id"]), literal(fill["condition_id"]),
               literal(fill["price"], DecimalType()), status, reason,
               literal(Decimal(0), DecimalType()), literal(0), literal(False),
               literal(now, UTCDateTime()), closed, literal(now, UTCDateTime()))
        .join(Follower, Follower.id == Follow.follower_id)
        .where(Follow.trader_id == trader_id, concerned)
    )
    columns = ["follow_id", "trader_fill_id", "follower_id", "side", "token_id", "condition_id",
               "trader_price", "status", "reason", "filled_size", "attempts", "paper", "queued_at",
               "closed_at", "updated_at"]
    dialect = session.get_bind().dialect.name
    stmt = insert_ignore(table, dialect).from_select(columns, source).returning(table.c.status)
    statuses = session.execute(stmt).scalars().all()
    queued = sum(1 for st in statuses if st == CopyStatus.QUEUED)
    return queued, len(statuses) - queued
