"""Copy-trading actions and views shared by `admin` and the HTTP API: one implementation each.

| action / view | admin command                                   | HTTP route                          |
|---------------|-------------------------------------------------|-------------------------------------|
| enable        | `add-follow` (new follow)                       | POST /api/copy-trading/enable       |
| disable       | `disable --wallet W --follow T`                 | POST /api/copy-trading/disable      |
| status        | `status`                                        | GET  /api/copy-trading/status       |
| history       | `history`                                       | GET  /api/copy-trading/history      |
| performance   | `performance`                                   | GET  /api/copy-trading/performance  |

Invariants: tier limits are checked by `copying.tiers` (the same functions the CLI always
used), after the change is flushed and before the caller commits, so a refused change writes
nothing. A disable is the kill switch of one follow (`copying.killswitch.disable_follow`): no
new copies, and the executor cancels the follow's open venue orders in its open-order pass.
Callers own the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from copying import killswitch as ks
from copying.tiers import enforce_new_follow, limits_of
from infra.errors import InputError
from models import CopyStatus, Follow, Follower, FollowStatus, Trader
from ops.accounts import (
    FollowLimits,
    add_follow,
    find_follow,
    find_follower,
    normalize_address,
)
from ops.inputs import PERCENT, POSITIVE, parse_decimal, parse_text
from ops.views import HistoryFilter, Intervals, status_data

HISTORY_STATUSES = tuple(s.value for s in CopyStatus)
NO_LIMITS = FollowLimits()


def add_follow_within_tier(session: Session, *, follower_wallet: str, trader_wallet: str,
                           copy_pct: Decimal, max_usd_per_trade: Decimal,
                           limits: FollowLimits = NO_LIMITS, label: str | None = None,
                           now: datetime | None = None) -> Follow:
    """Add a follow (or re-follow a removed one) and refuse it when the tier does not allow it."""
    follow = add_follow(session, follower_wallet=follower_wallet, trader_wallet=trader_wallet,
                        copy_pct=copy_pct, max_usd_per_trade=max_usd_per_trade, limits=limits,
                        label=label, now=now)
    enforce_new_follow(session, follow)  # raising rolls the whole add back
    return follow


def open_follow(session: Session, follower: Follower, trader_wallet: str,
                what: str = "--follow") -> Follow | None:
    """The follower's follow of this trader that is not removed, or None."""
    addr = normalize_address(trader_wallet, what)
    return session.scalar(
        select(Follow).join(Trader, Trader.id == Follow.trader_id)
        .where(Follow.follower_id == follower.id, Trader.wallet == addr, Follow.shadow_of.is_(None),
               Follow.status != FollowStatus.REMOVED))


def enable_copying(session: Session, *, follower_wallet: str, trader_wallet: str,
                   copy_pct: Decimal, max_usd_per_trade: Decimal,
                   label: str | None = None) -> Follow:
    """Start copying a trader, or switch an existing follow back on with these parameters.

    A new follow goes through `add_follow_within_tier`; an existing one (paused, or disabled by
    its kill switch) gets the new copy % and max trade, its kill-switch flag lifted and status
    ACTIVE, then the same tier check. A follower disabled as a whole stays disabled (only an
    admin's `admin enable --wallet` lifts that).
    """
    copy_pct = parse_decimal(copy_pct, "copy_percentage", PERCENT)
    max_usd_per_trade = parse_decimal(max_usd_per_trade, "max_trade", POSITIVE)
    follower = find_follower(session, follower_wallet)
    existing = open_follow(session, follower, trader_wallet, "target_trader")
    if existing is None:
        return add_follow_within_tier(session, follower_wallet=follower_wallet,
                                      trader_wallet=trader_wallet, copy_pct=copy_pct,
                                      max_usd_per_trade=max_usd_per_trade, label=label)
    existing.copy_pct = copy_pct
    existing.max_usd_per_trade = max_usd_per_trade
    ks.enable_follow(session, existing)
    existing.status = FollowStatus.ACTIVE
    if label and not existing.trader.label:
        existing.trader.label = label[:200]
    session.flush()
    enforce_new_follow(session, existing)
    return existing


def disable_copying(session: Session, *, follower_wallet: str, trader_wallet: str,
                    reason: str | None = None) -> Follow:
    """Stop copying a trader: the follow's kill switch (no new copies; the executor cancels its
    open orders at the venue). Its configuration stays for a later enable."""
    follow = find_follow(session, follower_wallet, trader_wallet)
    ks.disable_follow(session, follow, reason)
    return follow


def tier_info(follower: Follower) -> dict[str, Any]:
    """What the follower's tier allows (for the configuration form and the API)."""
    lim = limits_of(follower.tier)
    return {"tier": follower.tier.value, "copying": lim.copying,
            "max_follows": lim.max_follows, "max_copy_pct": str(lim.max_copy_pct)}


# --- views --------------------------------------------------------------------------------------

def copy_status(session: Session, now: datetime, intervals: Intervals,
                follower: Follower | None = None) -> dict[str, Any]:
    """`admin status` data; with `follower`, only that follower's follows and orders (the
    deployment's daemons, shard leases and kill switches are then left out)."""
    if follower is None:
        return status_data(session, now, intervals)
    data = status_data(session, now, intervals, follower_id=follower.id)
    for key in ("daemons", "shard_leases", "kill_switch", "fill_sources"):
        data.pop(key, None)
    return data


def day_bound(day: date | None, end: bool) -> datetime | None:
    """00:00 UTC of `day` (of the next day for an inclusive `end`)."""
    if day is None:
        return None
    start = datetime.combine(day, time(0), UTC)
    return start + timedelta(days=1) if end else start


def history_filter(session: Session, *, follower_id: int | None, trader: str | None,
                   start: date | None, end: date | None, market: str | None,
                   statuses: Iterable[str] = (), limit: int = 100, flag: str = "--",
                   offset: int = 0) -> HistoryFilter:
    """Validate `admin history` / GET history filters into a HistoryFilter (InputError if bad).

    `flag` prefixes parameter names in messages ('--' for the CLI, '' for the HTTP API).
    """
    if start is not None and end is not None and end < start:
        raise InputError(f"{flag}end must not be before {flag}start")
    if market is not None:
        market = parse_text(market, f"{flag}market", 500)
    trader_id = None
    if trader is not None:
        addr = normalize_address(trader, f"{flag}trader")
        trader_id = session.scalar(select(Trader.id).where(Trader.wallet == addr))
        if trader_id is None:
            raise InputError(f"no followed trader {addr}")
    wanted = []
    for raw in statuses:
        value = str(raw).strip().upper()
        if value not in HISTORY_STATUSES:
            raise InputError(f"{flag}status must be one of "
                             f"{', '.join(s.lower() for s in HISTORY_STATUSES)}, got {raw!r}")
        wanted.append(CopyStatus(value))
    return HistoryFilter(follower_id=follower_id, trader_id=trader_id,
                         start=day_bound(start, False), end=day_bound(end, True),
                         market=market, statuses=tuple(wanted), limit=limit, offset=offset)
