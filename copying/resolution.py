"""Resolved markets: detected from Gamma, open copies there stopped, payouts booked.

A market counts as resolved when Gamma reports it `closed` with outcome prices that are a payout
vector (each in [0, 1], summing to 1) and either `umaResolutionStatus: "resolved"` or every price
exactly 0 or 1 (a closed market still trading at 0.9995/0.0005 is not resolved yet). The payout
of a share is its outcome's price (1 or 0; 0.5 each for a 50-50 resolution).

Settling one market is one transaction: the market row gets `resolved_at` and each token its
payout; queued copies there are stopped (`market_resolved`); every follow's position there
(paper and live, each kept apart) is closed at the payout — realized P&L += (payout − average
cost) × size, a `position_settlements` row, target 0 — paper followers' balances are credited at
once (no transaction), and each live follower holding winning shares gets one redemption intent
(`copying.redeem` sends it, exactly once). Copies resting at the venue there are then cancelled.

Invariant: a market is settled once (`resolved_at` is set in the same transaction, and a
position is settled once: unique (follow, token, paper)); money is Decimal throughout.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Numeric, cast, select
from sqlalchemy.orm import Session

from copying.context import ExecutorContext, forget_market
from copying.outbox import resolution_payout
from copying.states import OPEN_AT_VENUE, UNRESOLVED, Event, transition
from infra.db import session_scope
from models import (
    CopyOrder,
    CopyStatus,
    Follower,
    FollowerPosition,
    Market,
    MarketTokenRow,
    PositionSettlement,
    Redemption,
    RedemptionStatus,
)
from wire.records import GammaMarket

log = logging.getLogger("pmct.executor")
ZERO = Decimal(0)
ONE = Decimal(1)
CHECKS_PER_PASS = 50  # Gamma /markets allows 300 requests / 10 s; a pass stays far below


def payouts_of(gamma: GammaMarket) -> dict[str, Decimal] | None:
    """Per-token payouts of a resolved market, or None while it is not resolved (see module)."""
    prices = gamma.outcome_prices
    if not gamma.closed or not gamma.tokens or len(prices) != len(gamma.tokens):
        return None
    if any(p < ZERO or p > ONE for p in prices) or sum(prices) != ONE:
        return None
    if gamma.resolution_status != "resolved" and not all(p in (ZERO, ONE) for p in prices):
        return None
    return {t.token_id: p for t, p in zip(gamma.tokens, prices, strict=True)}


@dataclass
class Settled:
    """What settling one market did."""

    condition_id: str
    positions: int = 0
    stopped: int = 0
    paid_paper: Decimal = ZERO
    redemptions: int = 0
    to_cancel: list[int] = field(default_factory=list)


def conditions_to_check(s: Session) -> list[str]:
    """Markets followers hold (or have open copies in) that are not known to be resolved."""
    held = set(s.scalars(select(FollowerPosition.condition_id)
                         .where(cast(FollowerPosition.size, Numeric) > 0).distinct()))
    open_copies = set(s.scalars(select(CopyOrder.condition_id).where(
        CopyOrder.status.in_([CopyStatus.QUEUED, *UNRESOLVED, *OPEN_AT_VENUE])).distinct()))
    candidates = held | open_copies
    if not candidates:
        return []
    resolved = set(s.scalars(select(Market.condition_id).where(
        Market.condition_id.in_(sorted(candidates)), Market.resolved_at.is_not(None))))
    return sorted(candidates - resolved)


def settle_market(s: Session, condition_id: str, payouts: dict[str, Decimal], now: datetime) -> Settled:
    """Book one resolved market (see module); the caller commits, then cancels `to_cancel`."""
    out = Settled(condition_id)
    market = s.get(Market, condition_id, with_for_update=True)
    if market is not None:
        if market.resolved_at is not None:
            return out
        market.resolved_at, market.closed, market.accepting_orders = now, True, False
        for tok in s.scalars(select(MarketTokenRow).where(MarketTokenRow.condition_id == condition_id)):
            if tok.token_id in payouts:
                tok.payout = payouts[tok.token_id]
    for co in s.scalars(select(CopyOrder).where(
            CopyOrder.condition_id == condition_id, CopyOrder.status == CopyStatus.QUEUED)
            .order_by(CopyOrder.id).with_for_update()):
        transition(s, co, Event.STOP, reason="market_resolved")
        out.stopped += 1
    out.to_cancel = list(s.scalars(select(CopyOrder.id).where(
        CopyOrder.condition_id == condition_id,
        CopyOrder.status.in_([CopyStatus.LIVE, CopyStatus.PARTIAL])).order_by(CopyOrder.id)))
    winners: dict[int, tuple[Decimal, Decimal]] = defaultdict(lambda: (ZERO, ZERO))
    positions = s.scalars(select(FollowerPosition).where(
        FollowerPosition.condition_id == condition_id,
        cast(FollowerPosition.size, Numeric) > 0).order_by(FollowerPosition.id).with_for_update())
    for pos in positions:
        payout = payouts.get(pos.token_id)
        if payout is None:
            log.error("market %s: no payout for token %s; position left open", condition_id, pos.token_id)
            continue
        size, avg = pos.size, pos.avg_cost
        realized = (payout - avg) * size
        s.add(PositionSettlement(follower_id=pos.follower_id, follow_id=pos.follow_id,
                                 token_id=pos.token_id, condition_id=condition_id, paper=pos.paper,
                                 size=size, avg_cost=avg, payout=payout, realized_pnl=realized,
                                 settled_at=now))
        resolution_payout(s, pos.follower_id, condition_id=condition_id, token_id=pos.token_id,
                          shares=size, payout_usd=size * payout, realized_pnl=realized,
                          paper=pos.paper)
        pos.realized_pnl = pos.realized_pnl + realized
        pos.size = pos.target_size = pos.avg_cost = ZERO
        out.positions += 1
        if pos.paper:
            follower = s.get(Follower, pos.follower_id, with_for_update=True)
            assert follower is not None
            follower.paper_balance = (follower.paper_balance or ZERO) + size * payout
            out.paid_paper += size * payout
        elif payout > 0:
            shares, amount = winners[pos.follower_id]
            winners[pos.follower_id] = (shares + size, amount + size * payout)
    for follower_id, (shares, amount) in sorted(winners.items()):
        existing = s.scalar(select(Redemption).where(Redemption.follower_id == follower_id,
                                                     Redemption.condition_id == condition_id))
        if existing is not None:
            continue
        s.add(Redemption(follower_id=follower_id, condition_id=condition_id, method="pending",
                         status=RedemptionStatus.PENDING, shares=shares, amount=amount, attempts=0,
                         created_at=now, updated_at=now))
        out.redemptions += 1
    s.flush()
    return out


async def check_resolutions(ctx: ExecutorContext, conditions: list[str] | None = None) -> list[Settled]:
    """Ask Gamma about the markets followers hold; settle those resolved (one transaction each)."""
    from copying.manage import cancel_copies

    if conditions is None:
        with session_scope(ctx.factory) as s:
            conditions = conditions_to_check(s)
    done: list[Settled] = []
    for condition_id in conditions[:CHECKS_PER_PASS]:
        try:
            gamma = await ctx.client.find_gamma_market(condition_id=condition_id)
        except Exception as exc:  # noqa: BLE001 - try again at the next pass
            log.warning("market %s: resolution check failed: %s", condition_id, exc)
            continue
        payouts = payouts_of(gamma) if gamma is not None else None
        if payouts is None:
            continue
        with session_scope(ctx.factory) as s:
            settled = settle_market(s, condition_id, payouts, ctx.clock())
        forget_market(ctx, condition_id)
        log.info("market %s resolved: %d position(s) settled, %d queued copies stopped, "
                 "%d redemption(s) to send", condition_id, settled.positions, settled.stopped,
                 settled.redemptions)
        try:  # batched cancels, confirmed and recorded (the venue also cancels on resolution)
            await cancel_copies(ctx, {co_id: "market_resolved" for co_id in settled.to_cancel})
        except Exception as exc:  # noqa: BLE001 - the stop sweep sees the closed market too
            log.warning("market %s: cancelling its open copies failed: %s", condition_id, exc)
        done.append(settled)
    return done
