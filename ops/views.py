"""Read-only views behind `admin status` and `admin history` (the seed's dashboard endpoints).

status: traders followed, open and pending copy orders (age, trader / initial / current price),
daemon heartbeats, shard leases, the fill sources' health, the kill switch, and redemptions of
resolved markets not confirmed yet (amounts; "redeem by hand" where PMCT cannot redeem).
history: copy orders with filters and the reason each was skipped, rejected or cancelled.
Nothing here writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from copying.killswitch import KillSwitchState
from copying.redeem import pending_summary
from infra.decimals import canonical_decimal
from models import (
    ChainCursor,
    CopyOrder,
    CopyOrderEvent,
    CopyStatus,
    DaemonHeartbeat,
    Follow,
    Follower,
    FollowerFill,
    FollowerStatus,
    FollowStatus,
    Market,
    ShardLease,
    Trader,
    TraderFill,
)
from ops.reports import slippage_of
from smart_pricing import BEST_OPPOSITE_AFTER, MARKET_AFTER, MID_AFTER, TOWARD_MID_AFTER, stage_for

PENDING = (CopyStatus.QUEUED, CopyStatus.CLAIMED, CopyStatus.SIGNED, CopyStatus.IN_DOUBT)
OPEN = (CopyStatus.LIVE, CopyStatus.PARTIAL, CopyStatus.CANCELING)
# The repricing schedule's step boundaries (ages of the trader fill), from smart_pricing.
REPRICE_STEPS = (TOWARD_MID_AFTER, MID_AFTER, BEST_OPPOSITE_AFTER, MARKET_AFTER)
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


def schedule_view(fill_time: datetime, now: datetime) -> dict[str, object]:
    """Where an order stands in the repricing schedule (its age counts from the trader's fill,
    as the executor counts it): stage, seconds to the next step and to the 36 h market order."""
    elapsed = now - fill_time
    upcoming = [step for step in REPRICE_STEPS if step > elapsed]
    return {
        "stage": stage_for(elapsed).value,
        "next_step_in": int((upcoming[0] - elapsed).total_seconds()) if upcoming else None,
        "market_order_in": max(0, int((MARKET_AFTER - elapsed).total_seconds())),
    }


def order_rows(session: Session, statuses: tuple[CopyStatus, ...],
               now: datetime, follower_id: int | None = None,
               closed_since: datetime | None = None) -> list[dict[str, object]]:
    """Copy orders in these statuses (of one follower, or all; closed since `closed_since` when
    given), oldest first, with age, prices and the repricing schedule."""
    q = (select(CopyOrder.id, CopyOrder.queued_at, CopyOrder.side, CopyOrder.status,
                CopyOrder.condition_id, CopyOrder.trader_price, CopyOrder.intended_price,
                CopyOrder.intended_size, CopyOrder.filled_size, CopyOrder.paper,
                Follower.funder_address, Trader.wallet, TraderFill.title, Market.question,
                TraderFill.occurred_at)
         .join(Follower, Follower.id == CopyOrder.follower_id)
         .join(Follow, Follow.id == CopyOrder.follow_id)
         .join(Trader, Trader.id == Follow.trader_id)
         .outerjoin(TraderFill, TraderFill.id == CopyOrder.trader_fill_id)
         .outerjoin(Market, Market.condition_id == CopyOrder.condition_id)
         .where(CopyOrder.status.in_(statuses))
         .order_by(CopyOrder.queued_at, CopyOrder.id))
    if follower_id is not None:
        q = q.where(CopyOrder.follower_id == follower_id)
    if closed_since is not None:
        q = q.where(CopyOrder.closed_at >= closed_since)
    rows = session.execute(q).all()
    first = initial_prices(session, [r[0] for r in rows])
    out = []
    for (oid, queued_at, side, status, condition_id, trader_price, intended_price, size, filled,
         paper, follower, trader, title, question, fill_time) in rows:
        age = (now - queued_at).total_seconds()
        out.append({
            "id": oid,
            "follower": follower,
            "trader": trader,
            "market": _short(question or title or condition_id),
            "side": side,
            "status": status.value,
            "age": human_age(age),
            "age_seconds": int(age),
            "trader_price": _d(trader_price),
            "initial_price": first.get(oid),
            "current_price": _d(intended_price),
            "size": _d(size),
            "filled": _d(filled),
            "paper": paper,
            **schedule_view(fill_time, now),
        })
    return out


def trader_rows(session: Session, follower_id: int | None = None) -> list[dict[str, object]]:
    """Traders with at least one active follow (of one follower, or of any), with how many
    followers copy them."""
    q = (select(Trader, func.count(Follow.id))
         .join(Follow, Follow.trader_id == Trader.id)
         .join(Follower, Follower.id == Follow.follower_id)
         .where(Follow.status == FollowStatus.ACTIVE, Follower.status == FollowerStatus.ACTIVE))
    if follower_id is not None:
        q = q.where(Follow.follower_id == follower_id)
    rows = session.execute(q.group_by(Trader.id).order_by(Trader.id)).all()
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


def source_rows(session: Session, now: datetime, sources: tuple[str, ...],
                chain_stale: float) -> list[dict[str, object]]:
    """Per watcher shard: the chain source's health and what the Data API poll does about it."""
    out: list[dict[str, object]] = []
    cursors = list(session.scalars(select(ChainCursor).order_by(ChainCursor.shard)))
    for c in cursors:
        seen = c.head_seen_at
        fresh = seen is not None and (now - seen).total_seconds() <= max(60.0, 3 * chain_stale)
        healthy = bool(c.healthy) and fresh and "chain" in sources
        out.append({
            "shard": c.shard, "source": "chain", "mode": c.mode,
            "healthy": healthy,
            "block": c.block_number, "head": c.head_number,
            "lag_blocks": None if c.head_number is None else max(0, c.head_number - c.block_number),
            "last_seen": None if seen is None else human_age((now - seen).total_seconds()) + " ago",
            "last_error": c.last_error if not healthy else None,
            "data_api": ("off" if "data_api" not in sources else
                         "backfill (slow)" if healthy else "full speed"),
        })
    if "chain" not in sources or not cursors:
        out.append({"shard": "*", "source": "data_api", "mode": "poll",
                    "healthy": "data_api" in sources, "block": None, "head": None,
                    "lag_blocks": None, "last_seen": None,
                    "last_error": None if "chain" not in sources else "chain source never ran",
                    "data_api": "full speed" if "data_api" in sources else "off"})
    return out


def status_data(session: Session, now: datetime, intervals: Intervals,
                follower_id: int | None = None, sources: tuple[str, ...] = ("chain", "data_api"),
                chain_stale: float = 30.0) -> dict[str, Any]:
    """Everything `admin status` shows (traders and orders of one follower with `follower_id`)."""
    return {
        "kill_switch": kill_switch_view(session),
        "traders": trader_rows(session, follower_id),
        "open_orders": order_rows(session, OPEN, now, follower_id),
        "pending_orders": order_rows(session, PENDING, now, follower_id),
        "daemons": daemon_rows(session, now, intervals),
        "shard_leases": lease_rows(session, now),
        "fill_sources": source_rows(session, now, sources, chain_stale),
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
    offset: int = 0


def _filtered(q: Any, f: HistoryFilter) -> Any:
    """Apply the filters of `f` to a query over copy orders (conditions on copy_orders only, with
    subqueries for the trader and the market words, so no join is needed to filter)."""
    if f.follower_id is not None:
        q = q.where(CopyOrder.follower_id == f.follower_id)
    if f.trader_id is not None:
        q = q.where(CopyOrder.follow_id.in_(select(Follow.id).where(Follow.trader_id == f.trader_id)))
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
            q = q.where(or_(
                CopyOrder.condition_id.in_(select(Market.condition_id)
                                           .where(func.lower(Market.question).like(needle))),
                CopyOrder.trader_fill_id.in_(select(TraderFill.id).where(or_(
                    func.lower(TraderFill.title).like(needle),
                    func.lower(TraderFill.slug).like(needle))))))
    return q


def realized_by_copy(session: Session, copy_ids: list[int]) -> dict[int, Decimal]:
    """Realized P&L the ledger recorded for each copy order (sum of its fills)."""
    out: dict[int, Decimal] = {}
    for i in range(0, len(copy_ids), 500):
        chunk = copy_ids[i:i + 500]
        for cid, pnl in session.execute(select(FollowerFill.copy_order_id, FollowerFill.realized_pnl)
                                        .where(FollowerFill.copy_order_id.in_(chunk))):
            out[cid] = out.get(cid, Decimal(0)) + (pnl or Decimal(0))
    return out


def adverse_slippage(side: str, price: Decimal | None,
                     trader_price: Decimal) -> tuple[Decimal | None, Decimal | None]:
    """Slippage against us (BUY: ours − leader's; SELL: leader's − ours) and as % of the
    leader's price; (None, None) without a fill price."""
    if price is None:
        return None, None
    return slippage_of(side, price, trader_price)


def history_rows(session: Session, f: HistoryFilter) -> list[dict[str, object]]:
    """Copy orders matching `f`, newest first, with their skip/reject/cancel reasons, our fill
    price against the leader's, slippage and the realized P&L the ledger recorded."""
    follow = aliased(Follow)
    q = (select(CopyOrder, Follower.funder_address, Trader.wallet, TraderFill.title,
                Market.question)
         .join(Follower, Follower.id == CopyOrder.follower_id)
         .join(follow, follow.id == CopyOrder.follow_id)
         .join(Trader, Trader.id == follow.trader_id)
         .outerjoin(TraderFill, TraderFill.id == CopyOrder.trader_fill_id)  # closes/remainders have none
         .outerjoin(Market, Market.condition_id == CopyOrder.condition_id))
    q = _filtered(q, f)
    q = q.order_by(CopyOrder.queued_at.desc(), CopyOrder.id.desc()).limit(f.limit)
    if f.offset:
        q = q.offset(f.offset)
    rows = session.execute(q).all()
    realized = realized_by_copy(session, [co.id for co, *_ in rows])
    out: list[dict[str, object]] = []
    for co, follower, trader, title, question in rows:
        slip, slip_pct = adverse_slippage(co.side, co.avg_fill_price, co.trader_price)
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
            "fill_price": _d(co.avg_fill_price),
            "slippage": None if slip is None else _rounded(slip, "0.000001"),
            "slippage_pct": None if slip_pct is None else _rounded(slip_pct, "0.0001"),
            "realized_pnl": _d(realized[co.id]) if co.id in realized else None,
        })
    return out


def _rounded(value: Decimal, places: str) -> str:
    return canonical_decimal(value.quantize(Decimal(places)))


def history_totals(session: Session, f: HistoryFilter) -> dict[str, object]:
    """Totals over every copy order matching `f` (not only one page): count, filled copies,
    filled volume, size-weighted average slippage and realized P&L.

    PostgreSQL sums its exact NUMERIC columns in SQL; SQLite stores decimals as text, so there
    the rows are summed in Python (the same Decimal arithmetic, the same results).
    """
    if session.get_bind().dialect.name == "postgresql":
        count, filled, volume, slip_weighted, slip_size, realized = _totals_in_sql(session, f)
    else:
        count = filled = 0
        volume = slip_weighted = slip_size = Decimal(0)
        q = _filtered(select(CopyOrder.side, CopyOrder.trader_price, CopyOrder.avg_fill_price,
                             CopyOrder.filled_size), f)
        for side, trader_price, price, size in session.execute(q):
            count += 1
            if price is None or not size:
                continue
            filled += 1
            volume += price * size
            slip, _ = adverse_slippage(side, price, trader_price)
            assert slip is not None
            slip_weighted += slip * size
            slip_size += size
        fills = select(FollowerFill.realized_pnl).join(
            CopyOrder, CopyOrder.id == FollowerFill.copy_order_id)
        realized = sum((pnl or Decimal(0) for (pnl,) in session.execute(_filtered(fills, f))),
                       Decimal(0))
    return {
        "copies": count,
        "filled_copies": filled,
        "volume_usd": _rounded(volume, "0.000001"),
        "avg_slippage": _rounded(slip_weighted / slip_size, "0.000001") if slip_size else None,
        "realized_pnl_usd": _rounded(realized, "0.000001"),
    }


def _totals_in_sql(session: Session, f: HistoryFilter
                   ) -> tuple[int, int, Decimal, Decimal, Decimal, Decimal]:
    from sqlalchemy import Numeric, and_, case, type_coerce

    price = type_coerce(CopyOrder.avg_fill_price, Numeric())  # NUMERIC on PostgreSQL
    leader = type_coerce(CopyOrder.trader_price, Numeric())
    size = type_coerce(CopyOrder.filled_size, Numeric())
    done = and_(CopyOrder.avg_fill_price.is_not(None), size > 0)
    slip = case((CopyOrder.side == "BUY", price - leader), else_=leader - price)
    zero = Decimal(0)
    count, filled, volume, weighted, sized = session.execute(_filtered(select(
        func.count(),
        func.count().filter(done),
        func.coalesce(func.sum(price * size).filter(done), zero),
        func.coalesce(func.sum(slip * size).filter(done), zero),
        func.coalesce(func.sum(size).filter(done), zero)), f)).one()
    realized = session.scalar(_filtered(
        select(func.coalesce(func.sum(type_coerce(FollowerFill.realized_pnl, Numeric())), zero))
        .join(CopyOrder, CopyOrder.id == FollowerFill.copy_order_id), f))
    return (int(count), int(filled), Decimal(volume), Decimal(weighted), Decimal(sized),
            Decimal(realized or 0))
