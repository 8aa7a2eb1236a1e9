"""Shadow twins: a paper follow beside a live one, seeing the same fills, with the same or other
settings, and `admin compare` putting the two side by side (README "Copy quality").

A shadow is a follow of the same follower and trader, pinned to paper (`mode='paper'`,
`shadow_of` = the live follow): the watcher queues one copy per active follow, so it gets a copy
of every fill its twin gets; a live executor sizes it against the follower's paper balance and
fills it against the real book, never posting it (`copying.modes`). It does not count against
the follower's number of follows, but its copy % must be one the tier allows (else it could
only try what its twin can never use); it goes when its twin is removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from copying.tiers import TierLimitError, copy_allowed
from infra.db import utcnow
from infra.errors import InputError
from models import CopyOrder, CopyStatus, Follow, FollowerFill, FollowerPosition, FollowStatus, PositionSettlement
from ops.accounts import FollowLimits
from ops.inputs import PERCENT, POSITIVE, parse_decimal
from ops.reports import slippage_bps

ZERO = Decimal(0)


def add_shadow(session: Session, live_id: int, *, copy_pct: Decimal | None = None,
               max_usd_per_trade: Decimal | None = None, limits: FollowLimits | None = None,
               now: datetime | None = None) -> Follow:
    """A paper twin of follow `live_id`: its settings unless given here; copies from `now` on."""
    live = session.get(Follow, live_id)
    if live is None or live.status == FollowStatus.REMOVED:
        raise InputError(f"--shadow-of: no follow #{live_id} (see `admin list-follows`)")
    if live.shadow_of is not None:
        raise InputError(f"--shadow-of: follow #{live_id} is itself a shadow of #{live.shadow_of}")
    if live.mode == "paper":
        raise InputError(f"--shadow-of: follow #{live_id} is pinned to paper already")
    if limits is not None:
        limits.validate()
    twin = Follow(follower_id=live.follower_id, trader_id=live.trader_id, mode="paper", shadow_of=live.id,
                  started_at=now or utcnow(), status=FollowStatus.ACTIVE,
                  copy_pct=parse_decimal(copy_pct, "--copy-pct", PERCENT) if copy_pct is not None else live.copy_pct,
                  max_usd_per_trade=parse_decimal(max_usd_per_trade, "--max-trade", POSITIVE)
                  if max_usd_per_trade is not None else live.max_usd_per_trade,
                  mirror_late_exits=live.mirror_late_exits)
    given = limits or FollowLimits()
    for attr, value in (("max_slippage", given.max_slippage), ("daily_usd_cap", given.daily_usd_cap),
                        ("market_exposure_cap", given.market_exposure_cap), ("price_min", given.price_min),
                        ("price_max", given.price_max)):
        setattr(twin, attr, value if value is not None else getattr(live, attr))
    allowed, reason = copy_allowed(live.follower.tier, twin.copy_pct)
    if not allowed:
        raise TierLimitError(f"--copy-pct {twin.copy_pct}: the follower's tier {live.follower.tier.value} "
                             f"does not allow it ({reason}); a shadow tries settings its twin could use")
    session.add(twin)
    session.flush()
    return twin


@dataclass
class FollowSummary:
    """One follow's copies in the comparison window."""

    follow_id: int
    mode: str
    settings: str
    copies: int = 0
    filled: int = 0
    skipped: int = 0
    expected_slippage_bps: Decimal | None = None  # at the price it was signed at
    realized_slippage_bps: Decimal | None = None  # at the prices it filled at
    volume_usd: Decimal = ZERO
    realized_pnl_usd: Decimal = ZERO
    open_cost_usd: Decimal = ZERO

    def row(self) -> dict[str, object]:
        """JSON-safe."""
        def d(x: Decimal | None) -> str | None:
            return None if x is None else str(x.quantize(Decimal("0.01")))
        return {"follow": self.follow_id, "mode": self.mode, "settings": self.settings, "copies": self.copies,
                "filled": self.filled, "skipped": self.skipped,
                "expected_slippage_bps": d(self.expected_slippage_bps),
                "realized_slippage_bps": d(self.realized_slippage_bps), "volume_usd": d(self.volume_usd),
                "realized_pnl_usd": d(self.realized_pnl_usd), "open_cost_usd": d(self.open_cost_usd)}


def _settings(fo: Follow) -> str:
    parts = [f"{fo.copy_pct}%", f"max ${fo.max_usd_per_trade}"]
    if fo.max_slippage is not None:
        parts.append(f"slippage {fo.max_slippage}")
    return " ".join(parts)


def follow_summary(session: Session, fo: Follow, start: datetime | None, end: datetime) -> FollowSummary:
    """One follow's copies of leader fills in [start, end): counts, slippage, P&L."""
    summary = FollowSummary(fo.id, fo.mode or "deployment", _settings(fo))
    q = select(CopyOrder).where(CopyOrder.follow_id == fo.id, CopyOrder.queued_at < end,
                                CopyOrder.trader_fill_id.is_not(None))
    if start is not None:
        q = q.where(CopyOrder.queued_at >= start)
    exp_w = exp_n = real_w = real_n = ZERO
    for co in session.scalars(q):
        summary.copies += 1
        if co.status == CopyStatus.SKIPPED:
            summary.skipped += 1
            continue
        leader = co.trader_price
        if leader <= 0:
            continue
        size = co.intended_size or ZERO
        if co.intended_price is not None and size > 0:
            exp_w += slippage_bps(co.side, co.intended_price, leader) * size
            exp_n += size
        if co.filled_size > 0 and co.avg_fill_price is not None:
            summary.filled += 1
            real_w += slippage_bps(co.side, co.avg_fill_price, leader) * co.filled_size
            real_n += co.filled_size
            summary.volume_usd += co.filled_size * co.avg_fill_price
    summary.expected_slippage_bps = exp_w / exp_n if exp_n else None
    summary.realized_slippage_bps = real_w / real_n if real_n else None
    fills = select(FollowerFill.realized_pnl).where(FollowerFill.follow_id == fo.id, FollowerFill.filled_at < end)
    settled = select(PositionSettlement.realized_pnl).where(PositionSettlement.follow_id == fo.id,
                                                            PositionSettlement.settled_at < end)
    if start is not None:
        fills = fills.where(FollowerFill.filled_at >= start)
        settled = settled.where(PositionSettlement.settled_at >= start)
    summary.realized_pnl_usd = sum((p or ZERO for p in session.scalars(fills)), ZERO) + \
        sum((p or ZERO for p in session.scalars(settled)), ZERO)
    summary.open_cost_usd = sum((size * avg for size, avg in session.execute(
        select(FollowerPosition.size, FollowerPosition.avg_cost).where(FollowerPosition.follow_id == fo.id))), ZERO)
    return summary


def compare(session: Session, follow_id: int, start: datetime | None, end: datetime) -> list[FollowSummary]:
    """The live follow and every shadow of it (given either's id), side by side."""
    fo = session.get(Follow, follow_id)
    if fo is None:
        raise InputError(f"--follow-id: no follow #{follow_id}")
    live = session.get(Follow, fo.shadow_of) if fo.shadow_of is not None else fo
    assert live is not None
    twins = list(session.scalars(select(Follow).where(Follow.shadow_of == live.id).order_by(Follow.id)))
    if not twins:
        raise InputError(f"follow #{live.id} has no shadow twin "
                         f"(add one with `admin add-follow --shadow-of {live.id}`)")
    return [follow_summary(session, f, start, end) for f in (live, *twins)]
