"""Data of the dashboard's pages, built from the ops views the CLI uses (nothing here writes).

P&L comes from ops.reports (the average-cost replay of `admin report` / `admin performance`).
The replay of a follower's fills is cached, keyed by (follower, fill count, newest fill id),
so a page view re-reads two numbers instead of every fill when nothing was filled since; the
unrealized part is valued at the current midpoints on every view.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from copying.killswitch import KillSwitchState
from models import CopyOrder, CopyStatus, Follow, Follower, FollowerFill, FollowStatus, Trader
from ops.reports import (
    Position,
    PriceSource,
    ReportLine,
    Totals,
    compute_totals,
    load_facts,
    money,
    rate,
    replay,
    signed_usd,
)
from ops.views import OPEN, PENDING, order_rows

MAX_CHART_POINTS = 1500
RECENTLY_FILLED = timedelta(hours=1)


class ReplayCache:
    """Per follower: the replayed fill lines and final positions, reused while no fill was added."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._data: OrderedDict[tuple[int, int, int],
                                tuple[list[ReportLine], list[Position]]] = OrderedDict()
        self._lock = threading.Lock()
        self._charts: dict[int, tuple[list[ReportLine], dict[str, Any]]] = {}

    def chart(self, session: Session, follower: Follower) -> dict[str, Any]:
        """chart_data of the follower's replayed lines, computed once per replay."""
        lines, _ = self.replayed(session, follower)
        with self._lock:
            hit = self._charts.get(id(lines))
            if hit is not None and hit[0] is lines:
                return hit[1]
        data = chart_data(lines)
        with self._lock:
            self._charts = {k: v for k, v in self._charts.items()
                            if any(v[0] is ln for ln, _ in self._data.values())}
            self._charts[id(lines)] = (lines, data)
        return data

    def replayed(self, session: Session, follower: Follower
                 ) -> tuple[list[ReportLine], list[Position]]:
        """(lines, open positions) of every fill of the follower so far."""
        count, newest = session.execute(
            select(func.count(), func.max(FollowerFill.id))
            .where(FollowerFill.follower_id == follower.id)).one()
        key = (follower.id, int(count or 0), int(newest or 0))
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
                return hit
        facts = load_facts(session, [follower.id], datetime.max.replace(tzinfo=UTC))
        lines, positions = replay(facts)
        value = (lines, [p for p in positions.values() if p.size > 0])
        with self._lock:
            for old in [k for k in self._data if k[0] == follower.id]:
                del self._data[old]
            self._data[key] = value
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value


def trader_totals(lines: list[ReportLine], positions: list[Position],
                  prices: PriceSource | None) -> dict[str, Totals]:
    """Totals per scope ('all', 'live', 'paper', 'trader:<wallet>')."""
    return {t.scope: t for t in compute_totals(lines, positions, prices, by_trader=True)}


def _totals_row(t: Totals | None) -> dict[str, Any]:
    if t is None:
        return {"realized": "0", "unrealized": "0", "net": "0", "win_rate": "n/a",
                "avg_slippage_pct": "n/a", "fills": 0, "volume": "0", "attribution": ""}
    return {"realized": money(t.realized), "unrealized": money(t.unrealized),
            "net": money(t.net), "win_rate": rate(t.win_rate),
            "avg_slippage_pct": rate(t.avg_slippage_pct), "fills": t.fills,
            "volume": money(t.volume), "attribution": t.attribution(),
            "net_signed": signed_usd(t.net if t.net is not None else t.realized)}


def order_counts(session: Session, follower_id: int) -> dict[int, dict[str, int]]:
    """follow id → {'pending': n, 'open': n} for the follower's copies on their way or resting."""
    out: dict[int, dict[str, int]] = {}
    rows = session.execute(
        select(CopyOrder.follow_id, CopyOrder.status, func.count())
        .where(CopyOrder.follower_id == follower_id, CopyOrder.status.in_(PENDING + OPEN))
        .group_by(CopyOrder.follow_id, CopyOrder.status))
    for follow_id, status, n in rows:
        kind = "pending" if status in PENDING else "open"
        bucket = out.setdefault(follow_id, {"pending": 0, "open": 0})
        bucket[kind] += int(n)
    return out


def follows_of(session: Session, follower: Follower, cache: ReplayCache,
               prices: PriceSource | None) -> list[dict[str, Any]]:
    """The follower's follows (not removed) with per-trader P&L and order counts."""
    follows = list(session.scalars(
        select(Follow).where(Follow.follower_id == follower.id,
                             Follow.status != FollowStatus.REMOVED).order_by(Follow.id)))
    lines, positions = cache.replayed(session, follower)
    totals = trader_totals(lines, positions, prices)
    counts = order_counts(session, follower.id)
    switches = KillSwitchState.load(session)
    rows = []
    for fo in follows:
        state = "disabled" if fo.id in switches.follow_reasons else fo.status.value
        c = counts.get(fo.id, {"pending": 0, "open": 0})
        rows.append({
            "id": fo.id, "trader": fo.trader.wallet, "label": fo.trader.label or "",
            "copy_pct": str(fo.copy_pct), "max_trade": str(fo.max_usd_per_trade),
            "state": state, "reason": switches.follow_reasons.get(fo.id, ""),
            "pending": c["pending"], "open": c["open"],
            **_totals_row(totals.get(f"trader:{fo.trader.wallet}")),
        })
    return rows


def display_status(status: str, filled: str | None) -> str:
    """pending / partial / filled, as the pending-orders table shows a copy order."""
    if status == CopyStatus.FILLED.value:
        return "filled"
    if status == CopyStatus.PARTIAL.value or (filled not in (None, "0")):
        return "partial"
    return "pending"


def pending_orders(session: Session, now: datetime,
                   follower_id: int | None) -> list[dict[str, Any]]:
    """Copies on their way, resting at the venue, or filled in the last hour (oldest first)."""
    rows = order_rows(session, PENDING + OPEN, now, follower_id)
    rows += order_rows(session, (CopyStatus.FILLED,), now, follower_id,
                       closed_since=now - RECENTLY_FILLED)
    for r in rows:
        r["display_status"] = display_status(str(r["status"]), r["filled"])  # type: ignore[arg-type]
    rows.sort(key=lambda r: (r["display_status"] == "filled", -int(r["age_seconds"])))  # type: ignore[call-overload]
    return rows


def _thin(points: list[tuple[int, list[float | None]]]) -> list[tuple[int, list[float | None]]]:
    """At most MAX_CHART_POINTS points: the last point of each of that many equal time buckets."""
    if len(points) <= MAX_CHART_POINTS:
        return points
    lo, hi = points[0][0], points[-1][0]
    width = max(1, (hi - lo) // MAX_CHART_POINTS + 1)
    kept: dict[int, tuple[int, list[float | None]]] = {}
    for p in points:
        kept[(p[0] - lo) // width] = p
    return [kept[k] for k in sorted(kept)]


def chart_data(lines: Iterable[ReportLine]) -> dict[str, Any]:
    """Cumulative realized P&L per trader over time (aligned for uPlot) and daily realized P&L.

    Numbers become floats here for drawing only; every figure shown as text comes from the
    Decimal totals.
    """
    ordered = sorted(lines, key=lambda ln: (ln.fact.filled_at, ln.fact.fill_id))
    traders = sorted({ln.fact.trader for ln in ordered})
    index = {t: i for i, t in enumerate(traders)}
    running = [Decimal(0)] * len(traders)
    seen = [False] * len(traders)
    points: list[tuple[int, list[float | None]]] = []
    daily: dict[int, Decimal] = {}
    for ln in ordered:
        i = index[ln.fact.trader]
        running[i] += ln.realized_pnl
        seen[i] = True
        ts = int(ln.fact.filled_at.timestamp())
        values = [float(running[j]) if seen[j] else None for j in range(len(traders))]
        if points and points[-1][0] == ts:
            points[-1] = (ts, values)
        else:
            points.append((ts, values))
        day = int(datetime.combine(ln.fact.filled_at.astimezone(UTC).date(), datetime.min.time(),
                                   UTC).timestamp())
        daily[day] = daily.get(day, Decimal(0)) + ln.realized_pnl
    points = _thin(points)
    days = sorted(daily)
    return {
        "traders": traders,
        "cumulative": [[p[0] for p in points]] + [[p[1][j] for p in points]
                                                   for j in range(len(traders))],
        "daily": [days, [float(daily[d]) for d in days]],
    }


def trader_labels(session: Session, wallets: Iterable[str]) -> dict[str, str]:
    """wallet → label of the traders that have one."""
    wanted = list(wallets)
    if not wanted:
        return {}
    return {w: label for w, label in session.execute(
        select(Trader.wallet, Trader.label).where(Trader.wallet.in_(wanted))) if label}
