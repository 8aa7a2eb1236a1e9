"""The executor's context: settings, database, venue, keys, and the short-lived caches every
step reads through (market info, books, balances, decrypted credentials).

Caches never hold anything whose staleness could move money wrongly: balances and credentials
live until `new_cycle()`; books for `book_ttl` seconds (a burst of copies of one token); market
info for `market_ttl` seconds in memory, then `copying.markets` in the database, refreshed from
Polymarket when older than `MARKET_MAX_AGE` or after the venue refused a stale tick.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from copying.markets import load_market, upsert_market
from copying.ports import ExchangeClient
from copying.venues import Venue
from crypto import KeyRing
from infra.config import Settings
from infra.db import session_scope, utcnow
from models import Follow, Follower
from wire.signing import TimestampSource
from wire.types import ApiCreds, MarketInfo, OrderBook, SignatureType

log = logging.getLogger("pmct.executor")
MARKET_MAX_AGE = timedelta(minutes=10)


def env_crash_hook(point: str) -> None:
    """`PMCT_CRASH_AT=<point>` kills the process there (crash tests of the exactly-once promise)."""
    if os.environ.get("PMCT_CRASH_AT") == point:
        log.error("PMCT_CRASH_AT=%s: simulating a crash", point)
        os._exit(137)


class RetryLater(Exception):  # noqa: N818 - control flow inside a batch, never raised out of it
    """A transient problem: give the claim back and try in a later cycle."""


@dataclass
class ExecutorContext:
    """Everything one executor process needs."""

    settings: Settings
    factory: sessionmaker[Session]
    client: ExchangeClient  # books, markets, balances (and, through the venue, orders)
    venue: Venue
    keyring: KeyRing | None
    owner: str
    clock: Callable[[], datetime] = utcnow
    timestamps: TimestampSource = field(default_factory=TimestampSource)
    crash_hook: Callable[[str], None] = env_crash_hook
    balance_cache: dict[int, Decimal] = field(default_factory=dict)  # until new_cycle()
    creds_cache: dict[int, ApiCreds | None] = field(default_factory=dict)  # until new_cycle()
    market_cache: dict[str, tuple[float, MarketInfo]] = field(default_factory=dict)
    book_cache: dict[str, tuple[float, OrderBook | None]] = field(default_factory=dict)
    market_ttl: float = 60.0
    book_ttl: float = 1.0
    # Requests in flight at once (a batch's POSTs, its input reads, the management pass). Measured
    # against the simulator: httpx spends 0.86 ms of CPU per POST /order at 4 in flight and 1.9 ms
    # at 32 (its pool walks every connection per request), so a few suffice; the venue's own
    # per-IP limits (docs/POLYMARKET.md §5.9) cap a process far below what 8 in flight can send.
    post_concurrency: int = 8
    post_orders_batches: bool = True  # a follower's orders of one batch go as one POST /orders

    def new_cycle(self) -> None:
        """Forget balances and decrypted credentials (read again when next needed)."""
        self.balance_cache.clear()
        self.creds_cache.clear()

    @property
    def lease(self) -> timedelta:
        """How long a claim is held before another executor may take it back."""
        return timedelta(seconds=self.settings.claim_lease_seconds)

    @property
    def paper(self) -> bool:
        """True when this executor's venue never posts (EXECUTION_MODE=paper)."""
        return self.venue.paper

    def max_slippage(self, follow: Follow) -> Decimal:
        """The follow's slippage limit vs the trader's price: its own, else the deployment's default."""
        return follow.max_slippage if follow.max_slippage is not None else self.settings.default_max_slippage


async def market_for(ctx: ExecutorContext, token_id: str, condition_id: str) -> MarketInfo:
    """Cached market info (memory, then database), refreshed from Polymarket when missing or old."""
    hit = ctx.market_cache.get(token_id)
    if hit is not None and time.monotonic() - hit[0] < ctx.market_ttl:
        return hit[1]
    info = await _market_from_db_or_api(ctx, token_id, condition_id)
    ctx.market_cache[token_id] = (time.monotonic(), info)
    return info


def forget_market(ctx: ExecutorContext, condition_id: str) -> None:
    """Drop a market from the in-memory caches, ours and the client's (after a tick-size rejection)."""
    ctx.client.invalidate_market(condition_id=condition_id)
    for token, (_, info) in list(ctx.market_cache.items()):
        if info.condition_id == condition_id:
            del ctx.market_cache[token]


async def book_for(ctx: ExecutorContext, token_id: str) -> OrderBook | None:
    """The order book, reused for at most `book_ttl` seconds (bursts of copies of one token)."""
    hit = ctx.book_cache.get(token_id)
    if hit is not None and time.monotonic() - hit[0] < ctx.book_ttl:
        return hit[1]
    book = await ctx.client.get_book(token_id)
    ctx.book_cache[token_id] = (time.monotonic(), book)
    return book


async def _market_from_db_or_api(ctx: ExecutorContext, token_id: str, condition_id: str) -> MarketInfo:
    with session_scope(ctx.factory) as s:
        info = load_market(s, token_id=token_id, max_age=MARKET_MAX_AGE, now=ctx.clock())
    if info is not None:
        return info
    try:
        info = await ctx.client.get_market_info(condition_id, fresh=True)
    except Exception as exc:
        raise RetryLater(f"market {condition_id}: {exc}") from exc
    with session_scope(ctx.factory) as s:
        upsert_market(s, info, ctx.clock())
    return info


async def live_balance(ctx: ExecutorContext, follower: Follower, creds: ApiCreds) -> Decimal:
    """The follower's pUSD balance (one read per cycle per follower)."""
    if follower.id not in ctx.balance_cache:
        ba = await ctx.client.get_balance_allowance(
            creds, follower.signer_address, "COLLATERAL",
            signature_type=SignatureType(follower.signature_type))
        ctx.balance_cache[follower.id] = ba.balance
    return ctx.balance_cache[follower.id]


def creds_of(ctx: ExecutorContext, follower: Follower) -> ApiCreds | None:
    """Decrypted L2 credentials (kept for one cycle), or None (paper mode without credentials)."""
    if follower.encrypted_api_creds is None or ctx.keyring is None:
        return None
    if follower.id not in ctx.creds_cache:
        ctx.creds_cache[follower.id] = ctx.keyring.decrypt_api_creds(follower.encrypted_api_creds)
    return ctx.creds_cache[follower.id]
