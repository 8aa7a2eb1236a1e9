"""`admin stats --latency`: p50 / p95 / p99 of each stage of a copy, from the database.

The stages are those of `copying.latency` (the executor's `/metrics` histograms), computed here
from the times each copy keeps: the trader fill's `occurred_at` and `first_seen_at`, the copy's
`queued_at`, `claimed_at`, `signed_at`, `posted_at`, `acked_at`, and its first fill's match time.
Only a copy's first venue order counts (a reprice re-signs and overwrites the later marks).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from copying.latency import seconds
from models import CopyOrder, FollowerFill, TraderFill

STAGES = ("detect", "queue", "claim", "sign", "post", "ack", "first_fill")
MAX_COPIES = 20_000


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def stage_samples(s: Session, since: datetime) -> dict[str, list[float]]:
    """Seconds spent in each stage by the copies first posted since `since` (newest MAX_COPIES)."""
    first_fill = (select(func.min(FollowerFill.filled_at)).where(FollowerFill.copy_order_id == CopyOrder.id)
                  .correlate(CopyOrder).scalar_subquery())
    rows = s.execute(
        select(TraderFill.occurred_at, TraderFill.first_seen_at, CopyOrder.queued_at, CopyOrder.claimed_at,
               CopyOrder.signed_at, CopyOrder.posted_at, CopyOrder.acked_at, first_fill)
        .join(TraderFill, TraderFill.id == CopyOrder.trader_fill_id)
        .where(CopyOrder.queued_at >= since, CopyOrder.attempts == 1, CopyOrder.posted_at.is_not(None))
        .order_by(CopyOrder.queued_at.desc()).limit(MAX_COPIES)).all()
    out: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for occurred, seen, queued, claimed, signed, posted, acked, filled in rows:
        if isinstance(filled, str):  # SQLite MIN() bypasses the column type
            filled = datetime.fromisoformat(filled).replace(tzinfo=occurred.tzinfo)
        elif filled is not None and filled.tzinfo is None:
            filled = filled.replace(tzinfo=occurred.tzinfo)
        marks = (occurred, seen, queued, claimed, signed, posted, acked, filled)
        for stage, a, b in zip(STAGES, marks, marks[1:], strict=False):
            value = seconds(a, b)
            if value is not None:
                out[stage].append(value)
    return out


def latency_table(s: Session, now: datetime, hours: float) -> list[dict[str, Any]]:
    """One row per stage: copies counted, p50, p95, p99 (milliseconds)."""
    samples = stage_samples(s, now - timedelta(hours=hours))
    rows = []
    for stage in STAGES:
        values = samples[stage]

        def ms(p: float, values: list[float] = values) -> str | None:
            v = percentile(values, p)
            return None if v is None else f"{v * 1000:.1f}"

        rows.append({"stage": stage, "copies": len(values), "p50_ms": ms(50), "p95_ms": ms(95),
                     "p99_ms": ms(99)})
    return rows
