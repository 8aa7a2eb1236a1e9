"""Admin logic for a follow's holdings: closing them at market, and redeeming resolved markets.

`--close-positions` (disable, remove-follow) queues, for each token a follow holds, one sale of
everything at market within the slippage limit (`copying.targets.queue_closes`); the executor
places it. `admin redeem` checks the follower's markets for resolution (settling them) and then
sends or reconciles its redemptions (`copying.redeem`), or with `--dry-run` only says what it
would send. Nothing here talks to the CLOB; a redemption goes to the chain or the relayer.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, cast, select
from sqlalchemy.orm import Session, sessionmaker

from copying.targets import close_preview, queue_closes
from infra.config import Settings
from models import CopyOrder, Follow, Follower, FollowerPosition, FollowStatus, Market


@dataclass(frozen=True)
class CloseLine:
    """One holding `--close-positions` would sell."""

    follow_id: int
    trader: str
    market: str
    token_id: str
    shares: Decimal


def follows_of(session: Session, follower: Follower, trader_wallet: str | None) -> list[Follow]:
    """The follower's follows (or the one of `trader_wallet`), removed ones included."""
    follows = [fo for fo in follower.follows if trader_wallet is None
               or fo.trader.wallet == trader_wallet.strip().lower()]
    return sorted(follows, key=lambda fo: fo.id)


def close_lines(session: Session, follows: list[Follow], paper: bool) -> list[CloseLine]:
    """What `--close-positions` would sell, per follow and token."""
    out: list[CloseLine] = []
    for fo in follows:
        for token, cond, shares in close_preview(session, fo, paper):
            question = session.scalar(select(Market.question).where(Market.condition_id == cond))
            out.append(CloseLine(fo.id, fo.trader.wallet, question or cond, token, shares))
    return out


def close_positions(session: Session, follows: list[Follow], paper: bool, now: datetime) -> list[CopyOrder]:
    """Queue the close sales of these follows (caller commits)."""
    out: list[CopyOrder] = []
    for fo in follows:
        out.extend(queue_closes(session, fo, paper, now))
    return out


def held_conditions(session: Session, follower_id: int) -> list[str]:
    """Markets a follower holds shares of (any mode)."""
    return sorted(set(session.scalars(select(FollowerPosition.condition_id).where(
        FollowerPosition.follower_id == follower_id, cast(FollowerPosition.size, Numeric) > 0))))


def active_follows(follows: list[Follow]) -> list[Follow]:
    """Follows not removed."""
    return [fo for fo in follows if fo.status != FollowStatus.REMOVED]


def redeem(settings: Settings, factory: sessionmaker[Session], follower_id: int, *,
           dry_run: bool) -> dict[str, Any]:
    """`admin redeem`: settle the follower's resolved markets, then redeem (or plan) them."""
    return asyncio.run(_redeem(settings, factory, follower_id, dry_run=dry_run))


async def _redeem(settings: Settings, factory: sessionmaker[Session], follower_id: int, *,
                  dry_run: bool) -> dict[str, Any]:
    from copying.context import ExecutorContext
    from copying.redeem import Redeemer, plans
    from copying.resolution import check_resolutions
    from copying.venues import LiveVenue, PaperVenue
    from crypto import KeyRing
    from infra.db import session_scope, utcnow
    from polymarket_client import PolymarketClient

    client = PolymarketClient.from_settings(settings)
    venue: Any = LiveVenue(client) if settings.is_live else PaperVenue(client, utcnow)
    ctx = ExecutorContext(settings=settings, factory=factory, client=client, venue=venue,
                          keyring=KeyRing(settings.encryption_key) if settings.encryption_key else None,
                          owner=f"admin:{socket.gethostname()}:{os.getpid()}")
    try:
        with session_scope(factory) as s:
            conditions = held_conditions(s, follower_id)
        settled = [] if dry_run else await check_resolutions(ctx, conditions)
        with session_scope(factory) as s:
            todo = plans(s, follower_id=follower_id, relayer=settings.has_relayer_credentials)
            planned = [{"condition_id": p.condition_id, "method": p.method, "shares": str(p.shares),
                        "amount": str(p.amount), "calls": [{"to": c.to, "data": c.data} for c in p.calls],
                        "why_manual": p.why_manual} for p in todo]
        outcome: dict[str, int] = {}
        if not dry_run and not ctx.paper and todo:
            redeemer = Redeemer(ctx)
            try:
                outcome = await redeemer.run(follower_id)
            finally:
                await redeemer.aclose()
        return {"paper": ctx.paper, "markets_settled": [x.condition_id for x in settled],
                "redemptions": planned, "outcome": outcome, "dry_run": dry_run}
    finally:
        await client.aclose()
