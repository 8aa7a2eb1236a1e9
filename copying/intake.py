"""Store each trader fill once and queue one copy order per active follow, in one transaction.

Invariants:
- identity: there is no trade id, so a fill is keyed on (type, tx hash, token, side, size,
  price) plus an occurrence ordinal among byte-identical rows of one poll; re-polling an
  overlapping window produces the same keys and inserts nothing (INSERT … ON CONFLICT DO NOTHING);
- one fill, one row, whichever source sees it first: a TRADE also carries a match key, (tx hash,
  token, side, size to 6 decimals) plus an occurrence ordinal among the trader's fills of that
  transaction with the same four values. The chain's log (one per order filled, identity tx hash
  + log index) and the Data API's row of the same fill compute the same match key (price is left
  out: the API's float price and the chain's amount ratio differ in the last digits). A row that
  matches no key but has a counterpart from the other source in the same (tx, token, side) that
  this source has not seen, within SIZE_TOLERANCE shares, is the same fill too (rounding of the
  API's sizes); both sightings are recorded (`seen_by_chain_at`, `seen_by_data_api_at`);
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
- the stale and combo skips get their notifications (copying/outbox.py) in the same transaction.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import Numeric, and_, case, cast, exists, literal, not_, null, or_, select, text, update
from sqlalchemy.orm import Session

from copying.leader import is_exit
from copying.outbox import copies_skipped_at_intake
from copying.states import INITIAL, Event
from infra.db import DecimalType, UTCDateTime, insert_ignore
from infra.decimals import canonical_decimal
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

NOTIFY_CHANNEL = "pmct_copy_orders"  # new copies were queued: the executor claims them
CONTROL_CHANNEL = "pmct_control"  # an admin command changed what may trade: act on open orders now
SOURCES = ("chain", "data_api")
SIZE_QUANTUM = Decimal("0.000001")  # shares have 6 decimals on chain
SIZE_TOLERANCE = Decimal("0.01")  # shares: beyond it, two sightings are two different fills
log = logging.getLogger("pmct.intake")


@dataclass(frozen=True)
class ChainRef:
    """Where a chain-sourced fill's log sits (the latest sighting)."""

    block_number: int
    block_hash: str
    log_index: int


def match_identity(transaction_hash: str, token_id: str, side: str, size: Decimal) -> tuple[str, ...]:
    """The cross-source identity of a trade (without the occurrence ordinal)."""
    return (transaction_hash.lower(), token_id, side,
            canonical_decimal(size.quantize(SIZE_QUANTUM, rounding=ROUND_HALF_EVEN)))


def match_keys(rows: Sequence[Activity]) -> list[str | None]:
    """Per row, the match key (None for rows that are not trades with a side)."""
    seen: Counter[tuple[str, ...]] = Counter()
    out: list[str | None] = []
    for row in rows:
        if row.type != "TRADE" or row.side is None:
            out.append(None)
            continue
        ident = match_identity(row.transaction_hash, row.token_id, row.side.value, row.size)
        occurrence = seen[ident]
        seen[ident] += 1
        out.append(hashlib.sha256("|".join(("match", *ident, str(occurrence))).encode()).hexdigest())
    return out


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
    """What one store call did (`matched`: rows another source had already stored)."""

    new_fills: int
    queued: int
    skipped: int
    matched: int = 0
    new_ids: tuple[int, ...] = ()


def _fill_values(trader_id: int, rows: Sequence[Activity], now: datetime, source: str,
                 chain_refs: Sequence[ChainRef | None] | None) -> list[dict[str, Any]]:
    keys, occs, mkeys = fill_keys(rows), _occurrences(rows), match_keys(rows)
    refs: Sequence[ChainRef | None] = chain_refs if chain_refs is not None else [None] * len(rows)
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
            "match_key": mkey,
            "seen_by_chain_at": now if source == "chain" else None,
            "seen_by_data_api_at": now if source == "data_api" else None,
            "block_number": ref.block_number if ref else None,
            "block_hash": ref.block_hash if ref else None,
            "log_index": ref.log_index if ref else None,
        }
        for r, key, occ, mkey, ref in zip(rows, keys, occs, mkeys, refs, strict=True)
    ]


@dataclass
class _Known:
    """A stored fill of one of the transactions being stored."""

    id: int
    fill_key: str
    match_key: str | None
    token_id: str
    side: str | None
    size: Decimal
    seen: datetime | None  # by the source storing now
    block_hash: str | None


def _known_fills(session: Session, trader_id: int, txs: set[str], source: str) -> list[_Known]:
    t = TraderFill.__table__.c
    seen_col = t.seen_by_chain_at if source == "chain" else t.seen_by_data_api_at
    rows = session.execute(
        select(t.id, t.fill_key, t.match_key, t.token_id, t.side, t.size, seen_col, t.block_hash)
        .where(t.trader_id == trader_id, t.transaction_hash.in_(sorted(txs)))
    ).all()
    return [_Known(*r) for r in rows]


def _classify(values: list[dict[str, Any]], known: list[_Known],
              source: str) -> tuple[list[dict[str, Any]], list[tuple[_Known, dict[str, Any]]]]:
    """Split values into (new fills, (stored fill, value) pairs already stored by some source)."""
    by_fill = {k.fill_key: k for k in known}
    by_match = {k.match_key: k for k in known if k.match_key}
    claimed: set[int] = set()
    hits: list[tuple[_Known, dict[str, Any]]] = []
    rest: list[dict[str, Any]] = []
    for v in values:
        hit = by_fill.get(v["fill_key"]) or (by_match.get(v["match_key"]) if v["match_key"] else None)
        if hit is not None:
            claimed.add(hit.id)
            hits.append((hit, v))
        else:
            rest.append(v)
    fresh: list[dict[str, Any]] = []
    for v in rest:
        candidates = [k for k in known if k.id not in claimed and k.seen is None
                      and v["match_key"] is not None and k.match_key is not None
                      and (k.token_id, k.side) == (v["token_id"], v["side"])
                      and abs(k.size - v["size"]) <= SIZE_TOLERANCE]
        if not candidates:
            fresh.append(v)
            continue
        best = min(candidates, key=lambda k: (abs(k.size - v["size"]), k.id))
        log.info("fill %s (tx %s): %s size %s matched the stored size %s within tolerance",
                 best.id, v["transaction_hash"], source, v["size"], best.size)
        claimed.add(best.id)
        hits.append((best, v))
    return fresh, hits


def _record_sightings(session: Session, hits: list[tuple[_Known, dict[str, Any]]], source: str,
                      now: datetime) -> None:
    if source == "data_api":
        ids = [k.id for k, _ in hits if k.seen is None]
        if ids:
            session.execute(update(TraderFill).where(TraderFill.id.in_(ids),
                                                     TraderFill.seen_by_data_api_at.is_(None))
                            .values(seen_by_data_api_at=now))
        return
    for k, v in hits:
        if k.seen is None or k.block_hash != v["block_hash"]:
            values: dict[str, Any] = {"block_number": v["block_number"], "block_hash": v["block_hash"],
                                      "log_index": v["log_index"], "chain_removed_at": None}
            if k.seen is None:
                values["seen_by_chain_at"] = now
            session.execute(update(TraderFill).where(TraderFill.id == k.id).values(**values))


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
    source: str = "data_api",
    chain_refs: Sequence[ChainRef | None] | None = None,
    committed: frozenset[str] = frozenset(),
) -> StoreResult:
    """Insert unseen fills and their copy orders; the caller commits (with the cursor move).

    `source` is "data_api" or "chain" (then `chain_refs` gives each row's log). A row another
    source already stored is not inserted again: its sighting by this source is recorded.
    `committed`: fill keys the caller knows are stored already (its previous poll's); they are
    not sent again (the keys are still computed over every row: occurrence ordinals need them).
    """
    if source not in SOURCES:
        raise ValueError(f"unknown fill source {source!r}")
    if not rows:
        return StoreResult(0, 0, 0)
    values = [v for v in _fill_values(trader_id, rows, now, source, chain_refs)
              if v["fill_key"] not in committed]
    known = _known_fills(session, trader_id, {v["transaction_hash"] for v in values}, source)
    values, hits = _classify(values, known, source) if known else (values, [])
    if hits:
        _record_sightings(session, hits, source, now)
    dialect = session.get_bind().dialect.name
    stmt = insert_ignore(TraderFill.__table__, dialect).returning(
        TraderFill.__table__.c.id, TraderFill.__table__.c.fill_key
    )
    inserted = {key: fid for fid, key in session.execute(stmt, values).all()} if values else {}
    if not inserted:
        return StoreResult(0, 0, 0, matched=len(hits))
    new_fills = [dict(v, id=inserted[v["fill_key"]]) for v in values if v["fill_key"] in inserted]
    queued = skipped = 0
    for fill in new_fills:
        if copyable(fill):
            q, k = fan_out(session, trader_id, fill, max_copy_delay, now)
            queued, skipped = queued + q, skipped + k
    if queued and dialect == "postgresql":
        session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
    return StoreResult(len(new_fills), queued, skipped, matched=len(hits),
                       new_ids=tuple(f["id"] for f in new_fills))


def _pinned_paper() -> Any:
    """A copy's mode at birth: the follow's pinned mode, else NULL (decided at the claim)."""
    return case((Follow.mode == "paper", literal(True)), (Follow.mode == "live", literal(False)),
                else_=null())


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
        any_skip = or_(*(cond for cond, _ in skips))
        status = case((any_skip, literal(skipped_status)), else_=literal(queued_status))
        reason = case(*skips, else_=null())
        closed = case((any_skip, literal(now, UTCDateTime())), else_=null())
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
               literal(Decimal(0), DecimalType()), literal(0), _pinned_paper(),
               literal(now, UTCDateTime()), closed, literal(now, UTCDateTime()))
        .join(Follower, Follower.id == Follow.follower_id)
        .where(Follow.trader_id == trader_id, concerned)
    )
    columns = ["follow_id", "trader_fill_id", "follower_id", "side", "token_id", "condition_id",
               "trader_price", "status", "reason", "filled_size", "attempts", "paper", "queued_at",
               "closed_at", "updated_at"]
    dialect = session.get_bind().dialect.name
    stmt = insert_ignore(table, dialect).from_select(columns, source).returning(
        table.c.id, table.c.follower_id, table.c.status, table.c.reason)
    rows = session.execute(stmt).all()
    skipped_rows = [(cid, fid, why) for cid, fid, st, why in rows if st != CopyStatus.QUEUED]
    if skipped_rows:
        copies_skipped_at_intake(session, skipped_rows, fill)
    return len(rows) - len(skipped_rows), len(skipped_rows)
