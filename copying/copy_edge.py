"""Copied edge: our P&L % on a closed position against the leader's on the same position.

A closed trade is a follow's position in one token (and mode) that was bought and is now flat
(sold, or settled at resolution). Ours: realized P&L (fees included) / the cost of its BUY fills.
The leader's: from the leader's fills we copied into that position, his average entry (the BUY
fills) to his average exit (the SELL fills we copied), or to the payout when he held to
resolution; a position whose leader neither sold nor saw a resolution is not closed for him and
is left out. Edge = ours − his (percentage points): what copying him cost or earned us.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import CopyOrder, FollowerFill, FollowerPosition, MarketTokenRow, PositionSettlement, TraderFill

ZERO = Decimal(0)
HUNDRED = Decimal(100)
PCT = Decimal("0.000001")  # returns are kept to a millionth of a percent
Key = tuple[int, str, bool]  # (follow id, token id, paper)


@dataclass(frozen=True)
class ClosedTrade:
    """One closed position of a follow: our return, the leader's, how and when it closed."""

    follow_id: int
    token_id: str
    paper: bool
    ours_pct: Decimal
    leader_pct: Decimal
    resolved: bool  # closed by resolution (held to the end) rather than by selling
    closed_at: datetime

    @property
    def edge_pct(self) -> Decimal:
        """Our return minus the leader's, in percentage points."""
        return self.ours_pct - self.leader_pct


def _avg(pairs: list[tuple[Decimal, Decimal]]) -> Decimal | None:
    size = sum((s for s, _ in pairs), ZERO)
    return sum((s * p for s, p in pairs), ZERO) / size if size > 0 else None


def closed_trades(s: Session, follow_ids: Iterable[int]) -> list[ClosedTrade]:
    """The closed trades of these follows, oldest close first (four queries)."""
    ids = sorted(set(follow_ids))
    if not ids:
        return []
    flat = {(fid, tok, paper): pnl for fid, tok, paper, pnl in s.execute(
        select(FollowerPosition.follow_id, FollowerPosition.token_id, FollowerPosition.paper,
               FollowerPosition.realized_pnl).where(FollowerPosition.follow_id.in_(ids), FollowerPosition.size == 0))}
    if not flat:
        return []
    cost: dict[Key, Decimal] = defaultdict(Decimal)
    last: dict[Key, datetime] = {}
    for fid, tok, paper, side, size, price, fee, at in s.execute(
            select(FollowerFill.follow_id, FollowerFill.token_id, FollowerFill.paper, FollowerFill.side,
                   FollowerFill.size, FollowerFill.price, FollowerFill.fee, FollowerFill.filled_at)
            .where(FollowerFill.follow_id.in_(ids))):
        key = (fid, tok, paper)
        if side == "BUY":
            cost[key] += size * price + (fee or ZERO)
        last[key] = max(last.get(key, at), at)
    leader: dict[Key, dict[str, list[tuple[Decimal, Decimal]]]] = defaultdict(lambda: {"BUY": [], "SELL": []})
    for fid, tok, copy_paper, leader_side, size, price in s.execute(
            select(CopyOrder.follow_id, CopyOrder.token_id, CopyOrder.paper, TraderFill.side, TraderFill.size,
                   TraderFill.price).join(TraderFill, TraderFill.id == CopyOrder.trader_fill_id)
            .where(CopyOrder.follow_id.in_(ids), CopyOrder.filled_size > 0)):
        if leader_side in ("BUY", "SELL") and price and price > 0:
            leader[(fid, tok, bool(copy_paper))][str(leader_side)].append((size, price))
    settled: dict[Key, tuple[Decimal, datetime]] = {
        (fid, tok, paper): (payout, at) for fid, tok, paper, payout, at in s.execute(
            select(PositionSettlement.follow_id, PositionSettlement.token_id, PositionSettlement.paper,
                   PositionSettlement.payout, PositionSettlement.settled_at)
            .where(PositionSettlement.follow_id.in_(ids)))}
    payouts = {tok: p for tok, p in s.execute(select(MarketTokenRow.token_id, MarketTokenRow.payout).where(
        MarketTokenRow.token_id.in_(sorted({k[1] for k in flat})), MarketTokenRow.payout.is_not(None)))}
    out: list[ClosedTrade] = []
    for key, realized in flat.items():
        spent = cost.get(key, ZERO)
        entry = _avg(leader[key]["BUY"]) if key in leader else None
        if spent <= 0 or entry is None:
            continue
        exit_price = _avg(leader[key]["SELL"])
        resolved = key in settled
        if exit_price is None:
            exit_price = settled[key][0] if resolved else payouts.get(key[1])
        if exit_price is None:
            continue
        closed_at = max(t for t in (last.get(key), settled[key][1] if resolved else None) if t is not None)
        out.append(ClosedTrade(key[0], key[1], key[2], (realized / spent * HUNDRED).quantize(PCT),
                               ((exit_price / entry - 1) * HUNDRED).quantize(PCT), resolved, closed_at))
    return sorted(out, key=lambda t: (t.closed_at, t.follow_id, t.token_id))
