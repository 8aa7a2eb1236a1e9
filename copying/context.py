"""The executor's context: settings, database, venue, keys, and the short-lived caches every
step reads through (market info, books, balances, decrypted credentials).

Caches never hold anything whose staleness could move money wrongly: decrypted credentials live
until `new_cycle()`; books for `book_ttl` seconds (a burst of copies of one token); market info
for `market_ttl` seconds in memory, then `copying.markets` in the database, refreshed from
Polymarket when older than `MARKET_MAX_AGE` or after the venue refused a stale tick. The tick
and min size of the book just fetched win over any cached market info (`with_book`). Balances
are not cached here: they come from the database ledger (`copying.balances`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from copying.markets import load_market, upsert_market
from copying.ports import ExchangeClient
from copying.venues import Venue, VenueAccount
from crypto import KeyRing
from infra.config import Settings
from infra.db import session_scope, utcnow
from models import Follower, Market
from wire.signing import TimestampSource
from wire.types import ApiCreds, MarketInfo, OrderBook

log = logging.getLogger("pmct.executor")
MARKET_MAX_AGE = timedelta(minutes=10)


def env_crash_hook(point: str) -> None:
    """`PMCT_CRASH_AT=<point>` kills the process there (crash tests of the exactly-once promise)."""
    if os.environ.get("PMCT_CRASH_AT") == point:
        log.error("PMCT_CRASH_AT=%s: simulating a crash", point)
        os._exit(137)


class RetryLater(Exception):  # noqa: N818 - control flow inside a batch, never raised out of it
    """A transient problem: give the claim back and try in a later cycle."""


class HasSlippage(Protocol):
    """A follow, or a row read from one, with its own slippage limit (None: the default)."""

    @property
    def max_slippage(self) -> Decimal | None:
        """The follow's slippage limit vs the trader's price."""


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
    creds_cache: dict[str, ApiCreds] = field(default_factory=dict)  # by ciphertext
    market_cache: dict[str, tuple[float, MarketInfo]] = field(default_factory=dict)
    book_cache: dict[str, tuple[float, OrderBook | None]] = field(default_factory=dict)
    market_ttl: float = 60.0
    book_ttl: float = 1.0
    # Requests in flight at once (a batch's POSTs, its input reads, the management pass):
    # EXECUTOR_POST_CONCURRENCY. Against a venue tens of ms away this bounds a fan-out at about
    # (in flight / round trip) orders a second: 500 followers, venue 50 ms away, 4.0 s at 8 in
    # flight, 1.7 s at 32 (`bench/bench_fanout.py --venue-latency 50`). Over HTTP/1.1 (the local
    # simulator) httpx's pool walks every connection per request, so more in flight costs CPU
    # there; the real CLOB speaks HTTP/2, one connection.
    post_concurrency: int = 32
    post_orders_batches: bool = True  # a follower's orders of one batch go as one POST /orders
    # open-order work: per follower, the trades cursor (epoch s) and when its fills are due next
    fill_cursors: dict[int, int] = field(default_factory=dict)
    fills_due: dict[int, float] = field(default_factory=dict)
    recorded_trades: dict[tuple[str, str], None] = field(default_factory=dict)  # recent (trade, order)
    resume_ids: set[int] = field(default_factory=set)  # CANCELING copies to re-plan at the next wake
    retention_due_at: float = field(default_factory=lambda: time.monotonic() + 300.0)
    balances_due_at: float = 0.0
    markets_due_at: float = 0.0
    heartbeat_ids: dict[int, str] = field(default_factory=dict)  # follower → next heartbeat id
    balance_read_at: dict[int, datetime] = field(default_factory=dict)  # last CLOB balance reading
    submitting: bool = False  # new copies are being claimed and posted: background reads wait
    # the stop sweep's memory: (time of the last full sweep, fingerprint), when it last ran, and
    # whether a cancel could not be confirmed (then the next sweep looks at everything again)
    stop_state: tuple[float, tuple[object, ...]] | None = None
    stop_since: datetime = field(default_factory=utcnow)
    stop_last_fill: int = 0
    sweep_again: bool = False
    # shadow twins in a live executor (README "Copy quality"): `shadow` is a paper lane beside the
    # live one that claims only the copies of follows pinned to paper (`pinned_only`)
    pinned_only: bool = False
    shadow: ExecutorContext | None = None

    def new_cycle(self) -> None:
        """Forget what a cycle may not reuse (credentials stay: keyed by their ciphertext)."""
        if len(self.creds_cache) > 100_000:
            self.creds_cache.clear()

    @property
    def lease(self) -> timedelta:
        """How long a claim is held before another executor may take it back."""
        return timedelta(seconds=self.settings.claim_lease_seconds)

    @property
    def paper(self) -> bool:
        """True when this executor's venue never posts (EXECUTION_MODE=paper)."""
        return self.venue.paper

    def max_slippage(self, follow: HasSlippage) -> Decimal:
        """The follow's slippage limit vs the trader's price: its own, else the deployment's default."""
        return follow.max_slippage if follow.max_slippage is not None else self.settings.default_max_slippage


def with_book(ctx: ExecutorContext, market: MarketInfo, book: OrderBook) -> MarketInfo:
    """Market info with the tick and min size of the book just fetched (the freshest source).

    When they differ from the cache (Polymarket changes a market's tick while it trades), the
    caches are corrected too, so the next copy of that market does not price on the old grid.
    """
    if book.tick_size == market.tick_size and book.min_size == market.min_size:
        return market
    if not (book.tick_size > 0 and book.min_size > 0):
        return market
    log.info("market %s: the book says tick %s / min size %s (cached %s / %s); using the book",
             market.condition_id, book.tick_size, book.min_size, market.tick_size, market.min_size)
    fresh = replace(market, tick_size=book.tick_size, min_size=book.min_size)
    for token in [t for t, (_, info) in ctx.market_cache.items()
                  if info.condition_id == market.condition_id]:
        ctx.market_cache[token] = (time.monotonic(), fresh)
    with session_scope(ctx.factory) as s:
        row = s.get(Market, market.condition_id)
        if row is not None:
            row.tick_size, row.min_size = fresh.tick_size, fresh.min_size
    return fresh


def account_of(ctx: ExecutorContext, follower: Follower) -> VenueAccount:
    """The follower at the venue: decrypted credentials (None in paper mode without any) and signer."""
    return VenueAccount(follower.id, creds_of(ctx, follower), follower.signer_address)


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


SUBMIT_BOOK_AGE = 0.25  # s: new copies price on a book (tick included) at most this old


async def book_for(ctx: ExecutorContext, token_id: str, *, max_age: float | None = None) -> OrderBook | None:
    """The order book, reused for at most `book_ttl` seconds (open-order work) or `max_age`
    (new copies: the book of this moment, tick and min size included, shared by a burst)."""
    hit = ctx.book_cache.get(token_id)
    ttl = ctx.book_ttl if max_age is None else min(max_age, ctx.book_ttl)
    if hit is not None and time.monotonic() - hit[0] < ttl:
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


def creds_of(ctx: ExecutorContext, follower: Follower) -> ApiCreds | None:
    """Decrypted L2 credentials, or None (paper mode without credentials).

    Kept warm by their ciphertext: new credentials (`admin auth-follower`) or a re-encryption
    (`admin rotate-keys`) change the ciphertext, so a stale entry is never used.
    """
    token = follower.encrypted_api_creds
    if token is None or ctx.keyring is None:
        return None
    creds = ctx.creds_cache.get(token)
    if creds is None:
        creds = ctx.creds_cache[token] = ctx.keyring.decrypt_api_creds(token)
    return creds
