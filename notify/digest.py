"""The daily P&L digest of one follower: `admin report`'s numbers for one UTC day.

Built on `ops.reports.build_report` (the same average-cost realized P&L as the ledger and the
CSV report; unrealized valued at the current mid, 'n/a' when a mid is unknown, never guessed),
plus the copies closed that day by status. The payload is frozen when the digest is generated:
the message records the numbers of that moment.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import CopyOrder, CopyStatus, Follower, FollowerPosition
from ops.reports import build_report

PriceSource = Callable[[str], Decimal | None]


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[day 00:00 UTC, next day 00:00 UTC)."""
    lo = datetime.combine(day, time(0), UTC)
    return lo, lo + timedelta(days=1)


def open_tokens(session: Session, follower_ids: list[int]) -> set[str]:
    """Tokens the followers hold now (what needs a mid for unrealized P&L)."""
    if not follower_ids:
        return set()
    return set(session.scalars(select(FollowerPosition.token_id).where(
        FollowerPosition.follower_id.in_(follower_ids), FollowerPosition.size > 0).distinct()))


def digest_payload(session: Session, follower: Follower, day: date, prices: PriceSource | None,
                   *, until: datetime | None = None) -> dict[str, Any]:
    """The digest of `follower` for UTC `day` (up to `until` for a day still running)."""
    lo, hi = day_bounds(day)
    partial = until is not None and until < hi
    end = until if partial and until is not None else hi
    report = build_report(session, follower, lo, end, prices)
    scopes = []
    for totals in report.totals:
        if totals.scope not in ("live", "paper"):
            continue
        if totals.fills == 0 and totals.open_positions == 0:
            continue
        row = totals.row()
        scopes.append({k: row[k] for k in (
            "scope", "fills", "buys", "sells", "volume_usd", "fees_usd", "realized_pnl_usd",
            "unrealized_pnl_usd", "net_pnl_usd", "open_positions", "win_rate", "avg_slippage_pct")})
    copies = dict(session.execute(
        select(CopyOrder.status, func.count()).where(
            CopyOrder.follower_id == follower.id, CopyOrder.closed_at >= lo,
            CopyOrder.closed_at < end).group_by(CopyOrder.status)).all())
    in_doubt = session.scalar(select(func.count()).select_from(CopyOrder).where(
        CopyOrder.follower_id == follower.id, CopyOrder.status == CopyStatus.IN_DOUBT)) or 0
    return {
        "day": day.isoformat(), "wallet": follower.funder_address, "partial": partial,
        "scopes": scopes,
        "copies": {(s.value if isinstance(s, CopyStatus) else str(s)): int(n)
                   for s, n in copies.items()},
        "in_doubt_now": int(in_doubt),
    }


def due_day(now: datetime, hour: int) -> date:
    """The latest UTC day whose digest is due at `now` (day D is due on D+1 at `hour`:00 UTC)."""
    today = now.astimezone(UTC).date()
    due_today = datetime.combine(today, time(hour), UTC)
    return today - timedelta(days=1 if now >= due_today else 2)
