"""Operator views for the dashboard's operations page: recent problems and copy latency.

Read-only. Latency is measured on the copies queued in a recent window:
- detection: trader fill on chain (`occurred_at`) → first seen by the watcher (`first_seen_at`);
- submission: first seen → our order posted at the venue (`posted_at`);
- end to end: trader fill → our order posted.
Percentiles are nearest-rank over at most `limit` copies (newest first).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import CopyOrder, CopyStatus, Follower, TraderFill

PROBLEM_STATUSES = (CopyStatus.REJECTED, CopyStatus.SKIPPED, CopyStatus.NOT_PLACED,
                    CopyStatus.CANCELED, CopyStatus.EXPIRED, CopyStatus.IN_DOUBT)


def problem_counts(session: Session, since: datetime) -> list[dict[str, Any]]:
    """(status, reason) → count for copies queued since `since` that were not (fully) placed."""
    rows = session.execute(
        select(CopyOrder.status, CopyOrder.reason, func.count())
        .where(CopyOrder.queued_at >= since, CopyOrder.status.in_(PROBLEM_STATUSES))
        .group_by(CopyOrder.status, CopyOrder.reason)).all()
    out = [{"status": st.value, "reason": reason or "", "count": int(n)} for st, reason, n in rows]
    return sorted(out, key=lambda r: (-int(r["count"]), str(r["status"]), str(r["reason"])))


def recent_problems(session: Session, since: datetime, limit: int = 25) -> list[dict[str, Any]]:
    """The newest copies since `since` that were rejected, skipped or cancelled, with details."""
    q = (select(CopyOrder.id, CopyOrder.queued_at, CopyOrder.status, CopyOrder.reason,
                CopyOrder.reason_detail, Follower.funder_address, TraderFill.title)
         .join(Follower, Follower.id == CopyOrder.follower_id)
         .join(TraderFill, TraderFill.id == CopyOrder.trader_fill_id)
         .where(CopyOrder.queued_at >= since, CopyOrder.status.in_(PROBLEM_STATUSES))
         .order_by(CopyOrder.queued_at.desc(), CopyOrder.id.desc()).limit(limit))
    return [{"id": cid, "queued_at": queued.isoformat(timespec="seconds"), "status": st.value,
             "reason": reason or "", "detail": (detail or "")[:300], "follower": follower,
             "market": (title or "")[:60]}
            for cid, queued, st, reason, detail, follower, title in session.execute(q)]


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of `values` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _stats(values: list[float]) -> dict[str, Any]:
    return {"count": len(values),
            "p50_s": _round(percentile(values, 50)), "p95_s": _round(percentile(values, 95)),
            "max_s": _round(max(values) if values else None)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def latency_stats(session: Session, now: datetime, window: timedelta = timedelta(hours=24),
                  limit: int = 5000) -> dict[str, Any]:
    """Detection, submission and end-to-end latency of the copies queued in the window."""
    rows = session.execute(
        select(TraderFill.occurred_at, TraderFill.first_seen_at, CopyOrder.posted_at)
        .join(TraderFill, TraderFill.id == CopyOrder.trader_fill_id)
        .where(CopyOrder.queued_at >= now - window)
        .order_by(CopyOrder.queued_at.desc()).limit(limit)).all()
    detect: list[float] = []
    submit: list[float] = []
    total: list[float] = []
    for occurred, seen, posted in rows:
        if seen is not None:
            detect.append(max(0.0, (seen - occurred).total_seconds()))
        if posted is not None and seen is not None:
            submit.append(max(0.0, (posted - seen).total_seconds()))
        if posted is not None:
            total.append(max(0.0, (posted - occurred).total_seconds()))
    return {"window_hours": window.total_seconds() / 3600, "detection": _stats(detect),
            "submission": _stats(submit), "end_to_end": _stats(total)}
