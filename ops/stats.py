"""Aggregate counts and money totals for `admin stats`.

Counts are done in SQL; decimal sums are done in Python (SQLite stores decimals as text, so
SQL SUM would be wrong there). Money totals come from the fills the ledger recorded
(follower_fills, realized P&L as stored by ledger.py), split live / paper.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import (
    CopyOrder,
    Follow,
    Follower,
    FollowerFill,
    FollowStatus,
    SystemFlag,
    Trader,
    TraderFill,
)

ZERO = Decimal(0)


def _by(session: Session, column: Any) -> dict[str, int]:
    rows = session.execute(select(column, func.count()).group_by(column)).all()
    return {getattr(k, "value", str(k)): int(n) for k, n in sorted(rows, key=lambda kv: str(
        getattr(kv[0], "value", kv[0])))}


def money_totals(session: Session) -> dict[str, dict[str, str]]:
    """Volume, fees and realized P&L of all follower fills, per mode (live/paper)."""
    acc = {mode: {"volume_usd": ZERO, "fees_usd": ZERO, "realized_pnl_usd": ZERO}
           for mode in ("live", "paper")}
    fills = {"live": 0, "paper": 0}
    q = select(FollowerFill.size, FollowerFill.price, FollowerFill.fee, FollowerFill.realized_pnl,
               FollowerFill.paper)
    for size, price, fee, realized, paper in session.execute(q.execution_options(yield_per=5000)):
        mode = "paper" if paper else "live"
        fills[mode] += 1
        acc[mode]["volume_usd"] += price * size
        acc[mode]["fees_usd"] += fee or ZERO
        acc[mode]["realized_pnl_usd"] += realized or ZERO
    from ops.reports import money

    out: dict[str, dict[str, str]] = {}
    for key in ("volume_usd", "fees_usd", "realized_pnl_usd"):
        out[key] = {mode: money(acc[mode][key]) for mode in ("live", "paper")}
    out["follower_fills"] = {mode: str(n) for mode, n in fills.items()}
    return out


def collect_stats(session: Session) -> dict[str, object]:
    """Followers, follows, traders, fills detected, copies by status, volume and P&L."""
    copies = _by(session, CopyOrder.status)
    flag = session.get(SystemFlag, "kill_switch")
    money = money_totals(session)
    fills_by_mode = money.pop("follower_fills")
    return {
        "followers": session.scalar(select(func.count()).select_from(Follower)) or 0,
        "followers_by_status": _by(session, Follower.status),
        "followers_by_tier": _by(session, Follower.tier),
        "follows_active": session.scalar(
            select(func.count()).select_from(Follow).where(Follow.status == FollowStatus.ACTIVE)
        ) or 0,
        "follows": _by(session, Follow.status),
        "traders": session.scalar(select(func.count()).select_from(Trader)) or 0,
        "trader_fills": session.scalar(select(func.count()).select_from(TraderFill)) or 0,
        "copy_orders": copies,
        "copy_orders_total": sum(copies.values()),
        "follower_fills": {k: int(v) for k, v in fills_by_mode.items()},
        **money,
        "kill_switch": "on" if flag is not None and flag.value == "on" else "off",
    }


def builder_volume(settings: Any, client: Any) -> dict[str, object]:
    """Volume attributed to POLYMARKET_BUILDER_CODE (`GET /builder/trades`, every page).

    `client` is a SyncPolymarketClient; the builder API credentials come from the settings.
    """
    from ops.reports import money

    creds = settings.builder_credentials
    assert creds is not None
    trades = client.get_builder_trades(settings.builder_code, creds)
    volume = sum((t.size_usdc for t in trades), ZERO)
    fees = sum((t.fee_usdc for t in trades), ZERO)
    times = [t.match_time for t in trades if t.match_time is not None]
    return {
        "builder_code": settings.builder_code,
        "trades": len(trades),
        "volume_usd": money(volume),
        "fees_usd": money(fees),
        "first_trade_at": min(times).isoformat() if times else None,
        "last_trade_at": max(times).isoformat() if times else None,
    }
