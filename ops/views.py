"""Read-only views behind `admin status` and `admin history` (the seed's dashboard endpoints).

status: traders followed, open and pending copy orders (age, trader / initial / current price),
daemon heartbeats, shard leases, the kill switch, and redemptions of resolved markets not
confirmed yet (amounts; "redeem by hand" where PMCT cannot redeem). history: copy orders with
filters and the reason each was skipped, rejected or cancelled. Nothing here writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from copying.killswitch import KillSwitchState
from copying.redeem import pending_summary
from infra.db import canonical_decimal
from models import (
    CopyOrder,
    CopyOrderEvent,
    CopyStatus,
    DaemonHeartbeat,
    Follow,
    Follower,
    FollowerStatus,
    FollowStatus,
    Market,
    ShardLease,
    Trader,
    TraderFill,
)

PENDING = (CopyStatus.QUEUED, CopyStatus.CLAIMED, CopyStatus.SIGNED, CopyStatus.IN_DOUBT)
OPEN = (CopyStatus.LIVE, CopyStatus.PARTIAL, CopyStatus.CANCELING)
_HEX_ID = re.compile(r"^0x[0-9a-fA-F]{62,64}$")


def human_age(seconds: float) -> str:
    """'45s', '12m', '3h05m', '2d04h'."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def _d(value: Any) -> str | None:
    return None if value is None else canonical_decimal(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")


def _short(text: str, n: int = 48) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# --- status ---------------------------------------------------------------------------------

def initial_prices(session: Session, order_ids: list[int]) -> dict[int, str]:
    """The price of each order's first SIGNED event (what it was first posted at)."""
    out: dict[int, str] = {}
    if not order_ids:
        return out
    rows = session.execute(
        select(CopyOrderEvent.copy_order_id, CopyOrderEvent.detail)
        .where(CopyOrderEvent.copy_order_id.in_(order_ids),
               CopyOrderEvent.to_status == CopyStatus.SIGNED.value)
        .order_by(CopyOrderEvent.id))
    for oid, detail in rows:
        if oid not in out and isinstance(detail, dict) and detail.get("price") is not None:
            out[oid] = str(detail["price"])
    return out


def order_rows(session: Session, statuses: tuple[CopyStatus, ...],
               now: datetime) -> list[dict[str, object]]:
    """Copy orders in these statuses, oldest first, with age and prices."""
    q = (select(CopyOrder, Follower.funder_address, Trader.wallet, TraderFill.title,
                Market.question)
         .join(Follower, Follower.id == CopyOrder.follower_id)
         .join(Follow, Follow.id == CopyOrder.follow_id)
         .join(Trader, Trader.id == Follow.trader_id)
         .outerjoin(TraderFill, TraderFill.id == CopyOrder.trader_fill_id)
         .outerjoin(Market, Market.condition_id == CopyOrder.condition_id)
         .where(CopyOrder.status.in_(statuses))
         .order_by(CopyOrder.queued_at, CopyOrder.id))
    rows = session.execute(q).all()
    first = initial_prices(session, [co.id for co, *_ in rows])
    out = []
    for co, follower, trader, title, question in rows:
        age = (now - co.queued_at).total_seconds()
        out.append({
            "id": co.id,
            "follower": follower,
            "trader": trader,
            "market": _short(question or title or co.condition_id),
            "side": co.side,
            "status": co.status.value,
            "age": human_age(age),
            "age_seconds": int(age),
            "trader_price": _d(co.trader_price),
            "initial_price": first.get(co.id),
            "current_price": _d(co.intended_price),
            "size": _d(co.intended_size),
            "filled": _d(co.filled_size),
            "paper": co.paper,
        })
    return out


def trader_rows(session: Session) -> list[dict[str, object]]:
    """Traders with at least one active follow, with how many followers copy them."""
    rows = session.execute(
        select(Trader, func.count(Follow.id))
        .join(Follow, Follow.trader_id == Trader.id)
        .join(Follower, Follower.id == Follow.follower_id)
        .where(Follow.status == FollowStatus.ACTIVE, Follower.status == FollowerStatus.ACTIVE)
        .group_by(Trader.id).order_by(Trader.id)).all()
    return [{"trader": t.wallet, "label": t.label, "active_follows": int(n),
             "last_polled_at": _iso(t.last_polled_at), "cursor_ts": t.cursor_ts}
            for t, n in rows]


@dataclass(frozen=True)
class Intervals:
    """Expected cycle intervals, to judge whether a heartbeat is stale."""

    watcher: float = 10.0
    executor: float = 5.0

    def stale_after(self, daemon: str) -> float:
        """Seconds without a cycle after which a daemon counts as stale."""
        base = self.watcher if daemon.startswith("watcher") else self.executor
        return max(60.0, 3 * base)


def daemon_rows(session: Session, now: datetime, intervals: Intervals) -> list[dict[str, object]]:
    """Heartbeats with the age of the last cycle and a stale flag."""
    out = []
    for hb in session.scalars(select(DaemonHeartbeat).order_by(DaemonHeartbeat.name)):
        last = hb.last_cycle_at
        age = None if last is None else (now - last).total_seconds()
        slack = (hb.last_cycle_ms or 0) / 1000
        out.append({
            "name": hb.name, "pid": hb.pid, "host": hb.host,
            "started_at": _iso(hb.started_at), "last_cycle_at": _iso(last),
            "last_cycle_age": None if age is None else human_age(age),
            "last_cycle_ms": hb.last_cycle_ms,
            "stale": age is None or age > intervals.stale_after(hb.name) + slack,
            "detail": hb.detail,
        })
    return out


def lease_rows(session: Session, now: datetime) -> list[dict[str, object]]:
    """Shard leases and whether each has expired."""
    return [{"shard": r.shard, "owner": r.owner, "acquired_at": _iso(r.acquired_at),
             "expires_at": _iso(r.expires_at), "expired": r.expires_at <= now}
            for r in session.scalars(select(ShardLease).order_by(ShardLease.shard))]


def kill_switch_view(session: Session) -> dict[str, object]:
    """Global switch, disabled followers and disabled follows, with reasons."""
    state = KillSwitchState.load(session)
    followers = session.scalars(select(Follower).where(Follower.status == FollowerStatus.DISABLED)
                                .order_by(Follower.id))
    disabled_followers = [{"follower": f.funder_address,
                           "reason": state.follower_reasons.get(f.id, "")} for f in followers]
    disabled_follows = []
    for fid, reason in sorted(state.follow_reasons.items()):
        fo = session.get(Follow, fid)
        if fo is not None:
            disabled_follows.append({"follower": fo.follower.funder_address,
                                     "trader": fo.trader.wallet, "reason": reason})
    return {"global": "on" if state.global_on else "off", "reason": state.global_reason,
            "since": _iso(state.global_since), "disabled_followers": disabled_followers,
            "disabled_follows": disabled_follows}


def status_data(session: Session, now: datetime, intervals: Intervals) -> dict[str, Any]:
    """Everything `admin status` shows."""
    return {
        "kill_switch": kill_switch_view(session),
        "traders": trader_rows(session),
        "open_orders": order_rows(session, OPEN, now),
        "pending_orders": order_rows(session, PENDING, now),
        "daemons": daemon_rows(session, now, intervals),
        "shard_leases": lease_rows(session, now),
        "redemptions": pending_summary(session, now),
    }


# --- history --------------------------------------------------------------------------------

@dataclass(frozen=True)
class HistoryFilter:
    """Filters of `admin history` (None = no filter)."""

    follower_id: int | None = None
    trader_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    market: str | None = None
    statuses: tuple[CopyStatus, ...] = ()
    limit: int = 100


def history_rows(session: Session, f: HistoryFilter) -> list[dict[str, object]]:
    """Copy orders matching `f`, newest first, with their skip/reject/cancel reasons."""
    follow = aliased(Follow)
    q = (select(CopyOrder, Follower.funder_address, Trader.wallet, TraderFill.title,
                Market.question)
         .join(Follower, Follower.id == CopyOrder.follower_id)
         .join(follow, follow.id == CopyOrder.follow_id)
         .join(Trader, Trader.id == follow.trader_id)
         .outerjoin(TraderFill, TraderFill.id == CopyOrder.trader_fill_id)
         .outerjoin(Market, Market.condition_id == CopyOrder.condition_id))
    if f.follower_id is not None:
        q = q.where(CopyOrder.follower_id == f.follower_id)
    if f.trader_id is not None:
        q = q.where(follow.trader_id == f.trader_id)
    if f.start is not None:
        q = q.where(CopyOrder.queued_at >= f.start)
    if f.end is not None:
        q = q.where(CopyOrder.queued_at < f.end)
    if f.statuses:
        q = q.where(CopyOrder.status.in_(f.statuses))
    if f.market:
        text = f.market.strip()
        if _HEX_ID.match(text):
            q = q.where(func.lower(CopyOrder.condition_id) == text.lower())
        else:
            needle = f"%{text.lower()}%"
            q = q.where(or_(func.lower(Market.question).like(needle),
                            func.lower(TraderFill.title).like(needle),
                            func.lower(TraderFill.slug).like(needle)))
    q = q.order_by(CopyOrder.queued_at.desc(), CopyOrder.id.desc()).limit(f.limit)
    out: list[dict[str, object]] = []
    for co, follower, trader, title, question in session.execute(q).all():
        out.append({
            "id": co.id,
            "queued_at": _iso(co.queued_at),
            "follower": follower,
            "trader": trader,
            "market": _short(question or title or co.condition_id),
            "side": co.side,
            "trader_price": _d(co.trader_price),
            "price": _d(co.avg_fill_price if co.avg_fill_price is not None else co.intended_price),
            "size": _d(co.intended_size),
            "filled": _d(co.filled_size),
            "status": co.status.value,
            "reason": co.reason,
            "reason_detail": co.reason_detail,
            "paper": co.paper,
        })
    return out
