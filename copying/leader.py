"""A followed trader's (the leader's) position in one token, from his stored rows.

Rows that move a leader's position, per token (`trader_fills.activity_type`, `side`):
TRADE BUY +, TRADE SELL −, SPLIT + (expanded per outcome by the watcher), MERGE − (per outcome),
CONVERSION − (the converted NO outcome), SNAPSHOT − (a decrease a snapshot showed that no row
explained, see `copying.position_watch.audit_decreases`). REDEEM rows settle a resolved market
and are handled by resolution, not here.

Invariant: the holding before a row R is the latest snapshot taken before R was first seen,
plus every position-moving row first seen after that snapshot that happened before R (rows of
the same block time count in id order); None when no such snapshot exists (the caller falls
back to copy % sizing). A snapshot is taken to reflect exactly the rows the watcher had stored
when it was taken: each watcher cycle polls every trader before it takes snapshots, and
/v2/activity and /v2/positions are assumed to come from the same index (UNCONFIRMED; see README
"Copy fidelity"). Timestamps alone cannot order a row against a snapshot: block times are
whole seconds and the Data API indexes after the block. A SNAPSHOT row is stored as first seen
just before its snapshot (it is in it).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from models import TraderFill, TraderPositionSnapshot
from wire.types import Activity, MarketToken, Side

ZERO = Decimal(0)
# activity types that change a leader's position, and those whose decrease a follower mirrors
POSITION_TYPES = ("TRADE", "SPLIT", "MERGE", "CONVERSION", "SNAPSHOT")
EXIT_TYPES = ("TRADE", "MERGE", "CONVERSION", "SNAPSHOT")
EXPANDED_TYPES = ("SPLIT", "MERGE", "CONVERSION")  # rows per market, stored per outcome


def signed_size(activity_type: str, side: str | None, size: Decimal) -> Decimal:
    """The change a stored row makes to the leader's holding of its token (0 if none)."""
    if activity_type not in POSITION_TYPES or not side:
        return ZERO
    return size if side == "BUY" else -size


def is_exit(activity_type: str, side: str | None) -> bool:
    """True for rows a follower mirrors as an exit (its holding comes down to target)."""
    return side == "SELL" and activity_type in EXIT_TYPES


def expand_row(row: Activity, tokens: tuple[MarketToken, ...]) -> list[Activity]:
    """A SPLIT / MERGE / CONVERSION row of a market as per-outcome rows with a side.

    SPLIT adds `size` of every outcome (BUY), MERGE removes `size` of every outcome (SELL),
    CONVERSION removes `size` of the converted NO outcome (index 1) when the row does not name
    a token (UNCONFIRMED: the Data API's CONVERSION row shape; see README "Copy fidelity").
    Other rows, and rows that already name a token, come back unchanged.
    """
    if row.type not in EXPANDED_TYPES:
        return [row]
    side = Side.BUY if row.type == "SPLIT" else Side.SELL
    if row.token_id:
        return [replace(row, side=side)]
    if row.type == "CONVERSION":
        picked = [t for t in tokens if t.outcome_index == 1]
    else:
        picked = list(tokens)
    return [replace(row, token_id=t.token_id, side=side, outcome=t.outcome,
                    outcome_index=t.outcome_index) for t in picked]


def holding_before(session: Session, trader_id: int, token_id: str, at: datetime,
                   first_seen: datetime, fill_id: int | None = None) -> Decimal | None:
    """The leader's holding of `token_id` just before a row that happened at `at` and was first
    seen at `first_seen` (`fill_id`: the row itself, for same-time ordering; see module)."""
    taken_at = session.scalar(
        select(func.max(TraderPositionSnapshot.taken_at))
        .where(TraderPositionSnapshot.trader_id == trader_id, TraderPositionSnapshot.taken_at < first_seen))
    if taken_at is None:
        return None
    size = session.scalar(select(TraderPositionSnapshot.size).where(
        TraderPositionSnapshot.trader_id == trader_id, TraderPositionSnapshot.token_id == token_id,
        TraderPositionSnapshot.taken_at == taken_at)) or ZERO
    earlier = TraderFill.occurred_at < at
    if fill_id is not None:
        earlier = or_(earlier, and_(TraderFill.occurred_at == at, TraderFill.id < fill_id))
    rows = session.execute(select(TraderFill.activity_type, TraderFill.side, TraderFill.size).where(
        TraderFill.trader_id == trader_id, TraderFill.token_id == token_id,
        TraderFill.activity_type.in_(POSITION_TYPES), TraderFill.first_seen_at > taken_at,
        earlier)).all()
    for kind, side, sz in rows:
        size += signed_size(kind, side, sz)
    return max(size, ZERO)


def holding_before_fill(session: Session, fill: TraderFill) -> Decimal | None:
    """`holding_before` for a stored row."""
    return holding_before(session, fill.trader_id, fill.token_id, fill.occurred_at,
                          fill.first_seen_at, fill.id)
