"""`admin performance`: per follower and trader, win rate, slippage and P&L attribution.

Built on reports.py (same average-cost convention, same unrealized-at-mid rule), one row per
(follower, trader) with fills or resolved positions in the window, plus each follower's 'all'
row. The win rate counts resolved positions as closes (won when the payout beat the cost).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Follower
from ops.reports import PriceSource, Replayed, build_report

COLUMNS = ["follower", "scope", "fills", "resolutions", "volume_usd", "fees_usd", "realized_pnl_usd",
           "unrealized_pnl_usd", "win_rate", "avg_slippage_pct", "attribution"]


def performance_rows(session: Session, followers: list[Follower] | None, start: datetime | None,
                     end: datetime, prices: PriceSource | None,
                     progress: Callable[[int], None] | None = None,
                     replayed: Callable[[Follower], Replayed] | None = None
                     ) -> list[dict[str, object]]:
    """Rows for every follower (or the given ones) that has fills in [start, end).

    `replayed(follower)`: every fill before `end` already replayed (see build_report)."""
    if followers is None:
        followers = list(session.scalars(select(Follower).order_by(Follower.id)))
    rows: list[dict[str, object]] = []
    for follower in followers:
        report = build_report(session, follower, start, end, prices, by_trader=True,
                              progress=progress,
                              replayed=replayed(follower) if replayed is not None else None)
        for totals in report.totals:
            if totals.scope in ("live", "paper"):
                continue
            if totals.fills == 0 and totals.open_positions == 0 and totals.resolutions == 0:
                continue
            row = totals.row()
            rows.append({"follower": follower.funder_address,
                         **{k: row[k] for k in COLUMNS if k in row}})
    return rows
