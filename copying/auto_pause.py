"""Auto-pause (AUTO_PAUSE_TRADES=N, 0 = off): a follow whose copied edge stays negative is paused.

The copied edge of a closed trade is our P&L % minus the leader's on the same position
(`copying.copy_edge`). When a follow's last N closed trades, counted since the follow was last
changed (created, resumed, edited: `follows.updated_at`), average a negative edge, the follow
is PAUSED with `pause_reason` saying why, a warning is logged, and a `follow_auto_paused`
notification goes out in the same transaction (`copying.outbox`). Its open BUYs are then
cancelled by the stop sweep like any paused follow's; `admin resume` starts it again (and the
count starts over). Runs on the executor's management clock.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from copying.copy_edge import ClosedTrade, closed_trades
from copying.outbox import follow_auto_paused
from models import Follow, FollowStatus

log = logging.getLogger("pmct.executor")
ZERO = Decimal(0)


def edge_verdict(trades: list[ClosedTrade], since: datetime, n: int) -> Decimal | None:
    """The mean edge of the last `n` trades closed after `since`, or None (fewer than n)."""
    recent = [t for t in trades if t.closed_at > since]
    if n <= 0 or len(recent) < n:
        return None
    last = recent[-n:]
    return sum((t.edge_pct for t in last), ZERO) / n


def auto_pause(s: Session, n: int, now: datetime) -> list[int]:
    """In `s`: pause the active follows whose copied edge stayed negative; their ids."""
    if n <= 0:
        return []
    follows = {f.id: f for f in s.scalars(select(Follow).where(Follow.status == FollowStatus.ACTIVE))}
    by_follow: dict[int, list[ClosedTrade]] = defaultdict(list)
    for t in closed_trades(s, follows):
        by_follow[t.follow_id].append(t)
    paused: list[int] = []
    for fid, trades in sorted(by_follow.items()):
        fo = follows[fid]
        edge = edge_verdict(trades, fo.updated_at, n)
        if edge is None or edge >= 0:
            continue
        fo.status = FollowStatus.PAUSED
        fo.pause_reason = (f"auto_pause: copied edge {edge.quantize(Decimal('0.01'))} points on average over "
                           f"the last {n} closed trades (AUTO_PAUSE_TRADES)")[:300]
        fo.updated_at = now
        log.warning("follow %s (follower %s, trader %s) paused: %s", fo.id, fo.follower_id, fo.trader_id,
                    fo.pause_reason)
        follow_auto_paused(s, fo.follower_id, follow_id=fo.id, trader_id=fo.trader_id, edge_pct=edge,
                           trades=n, reason=fo.pause_reason)
        paused.append(fo.id)
    return paused
