"""Event-level risk: a follower's USD at risk per event, category and resolution-date window,
and its realized loss of the day (the inputs of the caps and the stop in `copying.sizing`).

- USD at risk in a market = the cost of the follower's positions there plus its open BUY
  remainders (all its follows, this mode), the same measure as `max_open_exposure`;
- an event is the neg-risk market id (a neg-risk event's outcomes are mutually exclusive, so its
  markets are one risk), else Gamma's event id, else the market alone (`markets.event_key`);
- a category is Gamma's `category`; a market without one is counted in no category;
- the window of a market resolving at time t is [t − W, t + W] (W = RESOLUTION_WINDOW_HOURS):
  every market whose end date falls in it counts; a market without an end date in none;
- the day's realized loss: the follower's realized P&L since 00:00 UTC (sales in its fills,
  resolutions in its settlements, this mode), when negative; the stop blocks new BUYs until
  midnight UTC, never exits.
Every skip names the binding limit (`event_cap_reached`, `category_cap_reached`,
`window_cap_reached`, `daily_loss_stop`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Follower, FollowerFill, Market, PositionSettlement
from wire.types import MarketInfo

ZERO = Decimal(0)


@dataclass(frozen=True)
class MarketMeta:
    """What event-level risk needs to know about a market."""

    event_key: str  # "" when unknown: the market is its own event
    category: str
    end_date: datetime | None


@dataclass(frozen=True)
class RiskUse:
    """USD already at risk in one market's event, category and window."""

    event: Decimal
    category: Decimal
    window: Decimal


def has_event_limits(follower: Follower) -> bool:
    """True when any of the follower's event-level limits is set."""
    return any(v is not None for v in (follower.event_cap, follower.category_cap,
                                       follower.window_cap, follower.daily_loss_stop))


def market_meta(s: Session, conditions: Iterable[str]) -> dict[str, MarketMeta]:
    """The cached markets' event, category and end date (one query)."""
    ids = sorted(set(conditions))
    if not ids:
        return {}
    return {cond: MarketMeta(ev or "", cat or "", end) for cond, ev, cat, end in s.execute(
        select(Market.condition_id, Market.event_key, Market.category, Market.end_date)
        .where(Market.condition_id.in_(ids)))}


def meta_of(info: MarketInfo) -> MarketMeta:
    """The meta of a market the executor holds (fresher than the cache)."""
    return MarketMeta(info.event_key, info.category, info.end_date)


def risk_use(by_condition: dict[str, Decimal], metas: dict[str, MarketMeta], condition: str,
             this: MarketMeta, window: timedelta) -> RiskUse:
    """USD at risk in the event, category and resolution window of market `condition`."""
    event = this.event_key or condition
    ev = cat = win = ZERO
    for cond, usd in by_condition.items():
        meta = this if cond == condition else metas.get(cond, MarketMeta("", "", None))
        if (meta.event_key or cond) == event:
            ev += usd
        if this.category and meta.category == this.category:
            cat += usd
        if this.end_date is not None and meta.end_date is not None \
                and abs(meta.end_date - this.end_date) <= window:
            win += usd
    return RiskUse(ev, cat, win)


def realized_loss_today(s: Session, follower_ids: Iterable[int], paper: bool, day: datetime) -> dict[int, Decimal]:
    """Each follower's realized loss since `day` (00:00 UTC), ≥ 0 (two aggregate queries)."""
    ids = sorted(set(follower_ids))
    total = {fid: ZERO for fid in ids}
    if not ids:
        return total
    for fid, pnl in s.execute(select(FollowerFill.follower_id, FollowerFill.realized_pnl).where(
            FollowerFill.follower_id.in_(ids), FollowerFill.paper == paper, FollowerFill.filled_at >= day)):
        total[fid] += pnl or ZERO
    for fid, pnl in s.execute(select(PositionSettlement.follower_id, PositionSettlement.realized_pnl).where(
            PositionSettlement.follower_id.in_(ids), PositionSettlement.paper == paper,
            PositionSettlement.settled_at >= day)):
        total[fid] += pnl or ZERO
    return {fid: max(-v, ZERO) for fid, v in total.items()}
