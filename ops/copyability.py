"""`admin performance --by-trader`: how copyable each trader is, measured from our own fills.

Per trader (over every follow of him, shadows included, optionally one mode):
- seen: copies queued of his fills; copied: those that filled at all; copy rate = copied / seen;
  skip mix: the most frequent skip reasons with their counts;
- slippage: what our fills paid over his price (BUY) or got under it (SELL), in basis points of
  his price, weighted by our filled shares (positive = worse than him);
- detection latency: his fill's time on chain/API → our first sight of it (median, ms);
  execution latency: our first sight → our order leaving (median, ms);
- tracking error: the root mean square of the copied edge (our P&L % − his on the same closed
  positions, `copying.copy_edge`), in percentage points; edge: its mean;
- hold to resolution: of those closed positions, the share closed by resolution, not by selling.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from copying.copy_edge import closed_trades
from models import CopyOrder, CopyStatus, Follow, Trader, TraderFill
from ops.reports import slippage_bps

ZERO = Decimal(0)
COLUMNS = ["trader", "label", "follows", "seen", "copied", "copy_rate", "skip_mix", "slippage_bps",
           "detection_ms", "execution_ms", "closed_trades", "edge_pct", "tracking_error_pct",
           "hold_to_resolution"]


@dataclass
class _Acc:
    follows: set[int] = field(default_factory=set)
    seen: int = 0
    copied: int = 0
    skips: Counter[str] = field(default_factory=Counter)
    slip_w: Decimal = ZERO
    slip_n: Decimal = ZERO
    detection: dict[int, float] = field(default_factory=dict)  # fill id → ms
    execution: list[float] = field(default_factory=list)


def _ms(a: datetime | None, b: datetime | None) -> float | None:
    return None if a is None or b is None else (b - a).total_seconds() * 1000


def _q(x: Decimal | None, places: str = "0.01") -> str | None:
    return None if x is None else str(x.quantize(Decimal(places)))


def copyability_rows(s: Session, start: datetime | None, end: datetime, *, mode: str = "all",
                     follower_id: int | None = None) -> list[dict[str, object]]:
    """One row per trader with copies queued in [start, end) (module docstring)."""
    q = (select(CopyOrder.follow_id, CopyOrder.status, CopyOrder.reason, CopyOrder.side, CopyOrder.trader_price,
                CopyOrder.filled_size, CopyOrder.avg_fill_price, CopyOrder.posted_at, TraderFill.id,
                TraderFill.occurred_at, TraderFill.first_seen_at, Follow.trader_id)
         .join(TraderFill, TraderFill.id == CopyOrder.trader_fill_id)
         .join(Follow, Follow.id == CopyOrder.follow_id)
         .where(CopyOrder.queued_at < end))
    if start is not None:
        q = q.where(CopyOrder.queued_at >= start)
    if mode != "all":
        q = q.where(CopyOrder.paper.is_(mode == "paper"))
    if follower_id is not None:
        q = q.where(CopyOrder.follower_id == follower_id)
    acc: dict[int, _Acc] = defaultdict(_Acc)
    for (follow_id, status, reason, side, leader, filled, avg, posted, fill_id, occurred, seen_at,
         trader_id) in s.execute(q):
        a = acc[trader_id]
        a.follows.add(follow_id)
        a.seen += 1
        if status == CopyStatus.SKIPPED:
            a.skips[reason or "unknown"] += 1
        if filled and filled > 0 and avg is not None and leader and leader > 0:
            a.copied += 1
            a.slip_w += slippage_bps(side, avg, leader) * filled
            a.slip_n += filled
        det = _ms(occurred, seen_at)
        if det is not None:
            a.detection[fill_id] = det
        ex = _ms(seen_at, posted)
        if ex is not None:
            a.execution.append(ex)
    if not acc:
        return []
    traders = {t.id: t for t in s.scalars(select(Trader).where(Trader.id.in_(sorted(acc))))}
    trades = closed_trades(s, {f for a in acc.values() for f in a.follows})
    trader_of = {fid: tid for fid, tid in s.execute(select(Follow.id, Follow.trader_id).where(
        Follow.id.in_(sorted({t.follow_id for t in trades}))))} if trades else {}
    by_trader: dict[int, list[Decimal]] = defaultdict(list)
    resolved: Counter[int] = Counter()
    for t in trades:
        if mode != "all" and t.paper != (mode == "paper"):
            continue
        by_trader[trader_of[t.follow_id]].append(t.edge_pct)
        resolved[trader_of[t.follow_id]] += 1 if t.resolved else 0
    rows: list[dict[str, object]] = []
    for trader_id, a in sorted(acc.items(), key=lambda kv: traders[kv[0]].wallet):
        edges = by_trader.get(trader_id, [])
        n = len(edges)
        rows.append({
            "trader": traders[trader_id].wallet, "label": traders[trader_id].label or "",
            "follows": len(a.follows), "seen": a.seen, "copied": a.copied,
            "copy_rate": _q(Decimal(a.copied) / Decimal(a.seen), "0.001") if a.seen else None,
            "skip_mix": ", ".join(f"{r}×{c}" for r, c in a.skips.most_common(3)),
            "slippage_bps": _q(a.slip_w / a.slip_n, "0.1") if a.slip_n else None,
            "detection_ms": round(statistics.median(a.detection.values())) if a.detection else None,
            "execution_ms": round(statistics.median(a.execution)) if a.execution else None,
            "closed_trades": n,
            "edge_pct": _q(sum(edges, ZERO) / n) if n else None,
            "tracking_error_pct": _q((sum((e * e for e in edges), ZERO) / n).sqrt()) if n else None,
            "hold_to_resolution": _q(Decimal(resolved[trader_id]) / n, "0.001") if n else None,
        })
    return rows
