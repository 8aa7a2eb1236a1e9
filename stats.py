"""Aggregate counts for `admin stats`."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import CopyOrder, Follow, Follower, FollowStatus, Trader, TraderFill


def collect_stats(session: Session) -> dict[str, object]:
    """Followers, follows, traders, trader fills and copy orders by status."""
    by_status = dict(
        session.execute(select(CopyOrder.status, func.count()).group_by(CopyOrder.status)).all()
    )
    return {
        "followers": session.scalar(select(func.count()).select_from(Follower)) or 0,
        "follows_active": session.scalar(
            select(func.count()).select_from(Follow).where(Follow.status == FollowStatus.ACTIVE)
        ) or 0,
        "traders": session.scalar(select(func.count()).select_from(Trader)) or 0,
        "trader_fills": session.scalar(select(func.count()).select_from(TraderFill)) or 0,
        "copy_orders": {s.value: n for s, n in sorted(by_status.items(), key=lambda kv: kv[0].value)},
    }
