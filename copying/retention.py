"""Data retention: what grows with time is pruned in small batches, so a year of 1,000 traders
keeps the hot queries fast (see README, "Data growth").

Settings (days, 0 = keep forever):
- RETENTION_SNAPSHOT_DAYS: trader position snapshots and position events older than this go,
  except each trader's latest snapshot (what the next one is compared with, and what an exit's
  target is computed from); the watcher prunes them (`prune_positions`), it owns that data;
- RETENTION_EVENT_DAYS: the event history (`copy_order_events`) of copies closed that long ago
  (the copy row keeps its final status, reason and times);
- RETENTION_RAW_DAYS: the raw Data API payload of trader fills seen that long ago becomes `{}`
  (every field PMCT uses is a column of its own);
- RETENTION_PAYLOAD_DAYS: the signed body of copies closed that long ago (it is needed only while
  an order may still be posted or reconciled).

Invariants: nothing an open copy needs is touched (only closed copies, old snapshots, old raw
payloads); each step runs in batches of BATCH rows in short transactions, and resumes from a
mark kept in `system_flags`, so a prune never scans a whole table again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from infra.config import Settings
from infra.db import session_scope
from models import (
    CopyOrder,
    CopyOrderEvent,
    SystemFlag,
    Trader,
    TraderFill,
    TraderPositionEvent,
    TraderPositionSnapshot,
)

log = logging.getLogger("pmct.retention")
BATCH = 5000
MAX_BATCHES = 40  # per step and call: a long backlog is worked off over several calls
RAW_MARK = "retention:raw_fill_id"
EVENTS_MARK = "retention:events_closed_until"
PAYLOAD_MARK = "retention:payload_closed_until"


def _count(result: object) -> int:
    """Rows a DML statement touched."""
    return int(getattr(result, "rowcount", 0) or 0)


def _get(s: Session, name: str) -> str | None:
    row = s.get(SystemFlag, name)
    return row.value if row is not None else None


def _set(s: Session, name: str, value: str, now: datetime) -> None:
    row = s.get(SystemFlag, name)
    if row is None:
        s.add(SystemFlag(name=name, value=value, updated_at=now))
    else:
        row.value, row.updated_at = value, now


def prune_positions(factory: sessionmaker[Session], cutoff: datetime) -> tuple[int, int]:
    """The watcher's part: old snapshots (each trader's latest kept) and old position events;
    (snapshots, events) deleted."""
    snapshots = prune_snapshots(factory, cutoff)
    with session_scope(factory) as s:
        events = _count(s.execute(delete(TraderPositionEvent).where(TraderPositionEvent.detected_at < cutoff)))
    return snapshots, events


def prune_snapshots(factory: sessionmaker[Session], cutoff: datetime) -> int:
    """Delete each trader's snapshots older than `cutoff`, keeping its latest one."""
    with session_scope(factory) as s:
        traders = list(s.scalars(select(Trader.id).order_by(Trader.id)))
    gone = 0
    for tid in traders:
        with session_scope(factory) as s:
            latest = s.scalar(select(func.max(TraderPositionSnapshot.taken_at))
                              .where(TraderPositionSnapshot.trader_id == tid))
            if latest is None:
                continue
            if isinstance(latest, str):  # SQLite MAX() bypasses the column type
                latest = datetime.fromisoformat(latest).replace(tzinfo=cutoff.tzinfo)
            bound = min(cutoff, latest)
            gone += _count(s.execute(delete(TraderPositionSnapshot).where(
                TraderPositionSnapshot.trader_id == tid, TraderPositionSnapshot.taken_at < bound)))
    return gone


def prune_raw(factory: sessionmaker[Session], cutoff: datetime, now: datetime) -> int:
    """Empty the raw payload of trader fills seen before `cutoff` (resumes from the last id done)."""
    done = 0
    for _ in range(MAX_BATCHES):
        with session_scope(factory) as s:
            last = int(_get(s, RAW_MARK) or 0)
            rows = s.execute(select(TraderFill.id, TraderFill.first_seen_at).where(TraderFill.id > last)
                             .order_by(TraderFill.id).limit(BATCH)).all()
            old = []
            for fid, seen in rows:
                if seen >= cutoff:
                    break
                old.append(fid)
            if old:
                s.execute(update(TraderFill).where(TraderFill.id.in_(old)).values(raw={}))
                _set(s, RAW_MARK, str(old[-1]), now)
                done += len(old)
            if len(old) < BATCH:
                break
    return done


def _closed_window(s: Session, mark: str, cutoff: datetime) -> datetime | None:
    """Where the previous prune of this step stopped (None: from the beginning)."""
    value = _get(s, mark)
    if value is None:
        return None
    start = datetime.fromisoformat(value)
    return start if start < cutoff else cutoff


def _closed_batches(factory: sessionmaker[Session], mark: str, cutoff: datetime, now: datetime,
                    pending: Any, act: Callable[[Session, list[int]], int]) -> int:
    """Walk the copies closed before `cutoff` (from the mark on) that still have something to
    prune (`pending`), BATCH at a time, applying `act`; the mark follows the last one done."""
    done = 0
    for _ in range(MAX_BATCHES):
        with session_scope(factory) as s:
            start = _closed_window(s, mark, cutoff)
            q = select(CopyOrder.id, CopyOrder.closed_at).where(CopyOrder.closed_at < cutoff, pending)
            if start is not None:
                q = q.where(CopyOrder.closed_at >= start)
            rows = s.execute(q.order_by(CopyOrder.closed_at).limit(BATCH)).all()
            if not rows:
                _set(s, mark, cutoff.isoformat(), now)
                break
            done += act(s, [r[0] for r in rows])
            last = rows[-1][1]
            assert last is not None
            _set(s, mark, last.isoformat(), now)
    return done


def prune_events(factory: sessionmaker[Session], cutoff: datetime, now: datetime) -> int:
    """Delete the event history of copies closed before `cutoff`."""
    has_events = select(CopyOrderEvent.id).where(CopyOrderEvent.copy_order_id == CopyOrder.id).exists()
    return _closed_batches(factory, EVENTS_MARK, cutoff, now, has_events, lambda s, ids: _count(
        s.execute(delete(CopyOrderEvent).where(CopyOrderEvent.copy_order_id.in_(ids)))))


def prune_payloads(factory: sessionmaker[Session], cutoff: datetime, now: datetime) -> int:
    """Drop the signed body of copies closed before `cutoff`."""
    return _closed_batches(factory, PAYLOAD_MARK, cutoff, now, CopyOrder.signed_payload.is_not(None),
                           lambda s, ids: _count(s.execute(
                               update(CopyOrder).where(CopyOrder.id.in_(ids)).values(signed_payload=None))))


def prune(factory: sessionmaker[Session], settings: Settings, now: datetime) -> Counter[str]:
    """Run the executor's retention steps the settings enable (events, raw payloads, signed
    bodies; snapshots are the watcher's, `prune_positions`); rows affected per step."""
    counts: Counter[str] = Counter()
    try:
        if settings.retention_raw_days:
            counts["pruned_raw"] = prune_raw(factory, now - timedelta(days=settings.retention_raw_days), now)
        if settings.retention_event_days:
            counts["pruned_events"] = prune_events(
                factory, now - timedelta(days=settings.retention_event_days), now)
        if settings.retention_payload_days:
            counts["pruned_payloads"] = prune_payloads(
                factory, now - timedelta(days=settings.retention_payload_days), now)
    except Exception:  # noqa: BLE001 - retention must never stop the executor; tried again later
        log.exception("retention prune failed; tried again in an hour")
    if sum(counts.values()):
        log.info("retention: %s", dict(counts))
    return +counts
