"""The executor's shared steps: context, market/book/credential caches, signing one order into
its copy row, recording what the venue answered, and the single-order post/refresh used by
reconciliation and repricing. The batch submit path is `copy_batch.submit_batch`.

Invariant (DESIGN.md promise 1): a body is POSTed only after the row holding exactly that body
and its locally computed order hash was committed as SIGNED; a crash between the commit and the
recorded outcome leaves a SIGNED or IN_DOUBT row that `reconcile` settles by hash (or re-posts
the same bytes); nothing ever re-signs an order whose outcome is in doubt.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from copying.ledger import FillRecord, record_fill
from copying.markets import load_market, upsert_market
from copying.sizing import MIN_NOTIONAL_USD
from copying.states import can_move, transition
from copying.venues import OrderRefresh, OrderSpec, Venue
from crypto import KeyRing, signing_key
from infra import metrics
from infra.config import Settings
from infra.db import session_scope, utcnow
from models import (
    CopyOrder,
    CopyStatus,
    Follower,
    FollowerFill,
    Market,
    TraderFill,
    TraderPositionSnapshot,
)
from smart_pricing import PriceAction, PriceDecision
from wire.amounts import OrderMathError, limit_order_amounts, market_buy_amounts, market_sell_amounts, to_base_units
from wire.records import Accepted, Duplicate, InDoubt, PostOutcome, RateLimited, Rejected, RejectKind
from wire.signing import OrderRequest, TimestampSource, exchange_for, post_order_body, sign_order
from wire.types import ApiCreds, MarketInfo, OrderBook, OrderType, Side, SignatureType

log = logging.getLogger("pmct.executor")
ZERO = Decimal(0)
MIN_NOTIONAL_BASE = to_base_units(MIN_NOTIONAL_USD)  # base units (micro-dollars)
MARKET_MAX_AGE = timedelta(minutes=10)


def _env_crash_hook(point: str) -> None:
    if os.environ.get("PMCT_CRASH_AT") == point:
        log.error("PMCT_CRASH_AT=%s: simulating a crash", point)
        os._exit(137)


@dataclass
class ExecutorContext:
    """Everything one executor process needs."""

    settings: Settings
    factory: sessionmaker[Session]
    client: Any  # polymarket_client.PolymarketClient (books, markets, balances)
    venue: Venue
    keyring: KeyRing | None
    owner: str
    clock: Callable[[], datetime] = utcnow
    timestamps: TimestampSource = field(default_factory=TimestampSource)
    crash_hook: Callable[[str], None] = _env_crash_hook
    balance_cache: dict[int, Decimal] = field(default_factory=dict)  # until new_cycle()
    creds_cache: dict[int, ApiCreds | None] = field(default_factory=dict)  # until new_cycle()
    market_cache: dict[str, tuple[float, MarketInfo]] = field(default_factory=dict)
    book_cache: dict[str, tuple[float, OrderBook | None]] = field(default_factory=dict)
    market_ttl: float = 60.0
    book_ttl: float = 1.0
    # Requests in flight at once (a batch's POSTs, its input reads, the management pass). Measured
    # against the simulator: httpx spends 0.86 ms of CPU per POST /order at 4 in flight and 1.9 ms
    # at 32 (its pool walks every connection per request), so a few suffice; the venue's own
    # per-IP limits (API.md §5.9) cap a process far below what 8 in flight can send.
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


class SkipCopy(Exception):
    """This copy must end SKIPPED with `reason`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


class RetryLater(Exception):
    """A transient problem: give the claim back and try in a later cycle."""


# --- reading state -----------------------------------------------------------------------

def order_shares(body: bytes | None) -> Decimal:
    """Shares of the venue order in a stored POST body (BUY: taker amount, SELL: maker amount)."""
    if not body:
        return ZERO
    order = json.loads(body)["order"]
    raw = order["takerAmount"] if order["side"] == "BUY" else order["makerAmount"]
    return Decimal(raw) / Decimal(1_000_000)


def filled_by_hash(session: Session, copy_id: int, order_hash: str | None) -> Decimal:
    """Shares recorded for one venue order of a copy."""
    if order_hash is None:
        return ZERO
    sizes = session.scalars(select(FollowerFill.size).where(
        FollowerFill.copy_order_id == copy_id, FollowerFill.order_hash == order_hash))
    return sum(sizes, ZERO)


def trader_shares_before(session: Session, fill: TraderFill) -> Decimal | None:
    """The trader's holding in the token just before `fill`: last snapshot + fills since."""
    snap = session.execute(
        select(TraderPositionSnapshot.taken_at, TraderPositionSnapshot.size)
        .where(TraderPositionSnapshot.trader_id == fill.trader_id,
               TraderPositionSnapshot.taken_at <= fill.occurred_at)
        .order_by(TraderPositionSnapshot.taken_at.desc()).limit(1)).first()
    if snap is None:
        return None
    taken_at = snap[0]
    size = session.scalar(select(TraderPositionSnapshot.size).where(
        TraderPositionSnapshot.trader_id == fill.trader_id,
        TraderPositionSnapshot.token_id == fill.token_id,
        TraderPositionSnapshot.taken_at == taken_at)) or ZERO
    later = session.execute(select(TraderFill.side, TraderFill.size).where(
        TraderFill.trader_id == fill.trader_id, TraderFill.token_id == fill.token_id,
        TraderFill.activity_type == "TRADE", TraderFill.occurred_at > taken_at,
        TraderFill.occurred_at <= fill.occurred_at, TraderFill.id != fill.id)).all()
    for side, sz in later:
        size += sz if side == "BUY" else -sz
    return max(size, ZERO)


# --- the steps ------------------------------------------------------------------------------

async def market_for(ctx: ExecutorContext, token_id: str, condition_id: str) -> MarketInfo:
    """Cached market info (memory, then database), refreshed from Polymarket when missing or old."""
    hit = ctx.market_cache.get(token_id)
    if hit is not None and time.monotonic() - hit[0] < ctx.market_ttl:
        return hit[1]
    info = await _market_from_db_or_api(ctx, token_id, condition_id)
    ctx.market_cache[token_id] = (time.monotonic(), info)
    return info


def forget_market(ctx: ExecutorContext, condition_id: str) -> None:
    """Drop a market from the in-memory cache (after a tick-size rejection)."""
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


def order_amounts(side: Side, decision: PriceDecision, shares: Decimal, tick: Decimal) -> tuple[int, int]:
    """Maker/taker base units for a limit (GTC) or market (FAK) order."""
    assert decision.price is not None
    if decision.action is PriceAction.MARKET:
        if side is Side.BUY:
            assert decision.spend_price is not None
            a = market_buy_amounts(shares * decision.spend_price, decision.price, tick)
        else:
            a = market_sell_amounts(shares, decision.price, tick)
    else:
        a = limit_order_amounts(side, decision.price, shares, tick)
    return a.maker_amount, a.taker_amount


@dataclass(frozen=True)
class OrderPlan:
    """A venue order worked out for a copy but not signed yet."""

    request: OrderRequest
    exchange: Any  # order_signing.Exchange
    decision: PriceDecision
    shares: Decimal

    @property
    def venue_size(self) -> Decimal:
        """Shares of the venue order (BUY: taker amount, SELL: maker amount)."""
        raw = self.request.taker_amount if self.request.side is Side.BUY else self.request.maker_amount
        return Decimal(raw) / Decimal(1_000_000)


def plan_order(ctx: ExecutorContext, co: CopyOrder, follower: Follower, market: MarketInfo,
               decision: PriceDecision, shares: Decimal) -> OrderPlan:
    """Amounts, maker/signer and exchange of the venue order for `shares` (SkipCopy if impossible)."""
    assert decision.price is not None and decision.order_type
    side = Side(co.side)
    try:
        maker_amount, taker_amount = order_amounts(side, decision, shares, market.tick_size)
    except OrderMathError as exc:
        raise SkipCopy("invalid_amounts", str(exc)) from None
    if decision.action is PriceAction.MARKET and side is Side.BUY and maker_amount < MIN_NOTIONAL_BASE:
        # the venue refuses a marketable BUY under $1 (maker amount = the dollars it spends)
        spend = Decimal(maker_amount).scaleb(-6)
        raise SkipCopy("below_min_notional", f"{shares} shares at the best ask is {spend} USD")
    sig_type = SignatureType(follower.signature_type)
    order_signer = follower.funder_address if sig_type == SignatureType.POLY_1271 else follower.signer_address
    req = OrderRequest(maker=follower.funder_address, signer=order_signer, token_id=co.token_id,
                       maker_amount=maker_amount, taker_amount=taker_amount, side=side,
                       signature_type=sig_type)
    return OrderPlan(req, exchange_for(market.version, market.neg_risk, ctx.settings.chain_id), decision, shares)


def sign_planned(ctx: ExecutorContext, s: Session, co: CopyOrder, plan: OrderPlan, key: str,
                 creds: ApiCreds | None, event: str) -> None:
    """Sign `plan` with the decrypted `key` and store it on `co` (caller commits: SIGNED)."""
    decision = plan.decision
    assert decision.price is not None and decision.order_type
    signed = sign_order(plan.request, key, plan.exchange, ctx.settings.chain_id, timestamps=ctx.timestamps)
    owner = creds.api_key if creds is not None else "paper"
    co.signed_payload = post_order_body(signed, owner, decision.order_type)
    co.order_hash = signed.order_hash
    co.venue_size = plan.venue_size
    co.intended_price = decision.price
    co.order_type = decision.order_type.value
    co.attempts = (co.attempts or 0) + 1
    co.signed_at = ctx.clock()
    co.posted_at = co.acked_at = None
    co.lease_owner = co.lease_expires_at = None
    transition(s, co, CopyStatus.SIGNED, event, detail={
        "price": str(decision.price), "shares": str(plan.shares), "order_type": decision.order_type.value,
        "stage": decision.stage.value, "exchange": plan.exchange.address})


def sign_into(ctx: ExecutorContext, s: Session, co: CopyOrder, follower: Follower,
              market: MarketInfo, decision: PriceDecision, shares: Decimal,
              creds: ApiCreds | None, event: str) -> None:
    """Sign a venue order for `shares` and store it on `co` (caller commits: SIGNED)."""
    assert ctx.keyring is not None
    plan = plan_order(ctx, co, follower, market, decision, shares)
    with signing_key(ctx.keyring, follower.encrypted_private_key, follower.signer_address) as key:
        sign_planned(ctx, s, co, plan, key, creds, event)


def spec_for(ctx: ExecutorContext, s: Session, co: CopyOrder, follower: Follower,
             market: MarketInfo, creds: ApiCreds | None) -> OrderSpec:
    """The venue view of the copy's current signed order."""
    assert co.order_hash and co.signed_payload and co.intended_price is not None
    return OrderSpec(
        order_hash=co.order_hash, body=co.signed_payload, token_id=co.token_id,
        condition_id=co.condition_id, side=Side(co.side), price=co.intended_price,
        shares=order_shares(co.signed_payload), order_type=OrderType(co.order_type or "GTC"),
        creds=creds, signer_address=follower.signer_address, funder_address=follower.funder_address,
        fee_rate=market.fee_rate, fee_exponent=market.fee_exponent,
        posted_at=co.posted_at or co.signed_at,  # a batch records posted_at after its POSTs
        already_filled=filled_by_hash(s, co.id, co.order_hash))


def move(s: Session, co: CopyOrder, target: CopyStatus, event: str, *,
         reason: str | None = None, detail: dict[str, Any] | None = None) -> None:
    """transition() unless already there (PARTIAL→PARTIAL is a real move: more fills)."""
    if co.status == target and target != CopyStatus.PARTIAL:
        return
    if co.status == target == CopyStatus.PARTIAL and event != "fill":
        return
    if can_move(co.status, target):
        transition(s, co, target, event, reason=reason, detail=detail)
    else:
        log.warning("copy %s: ignoring %s -> %s (%s)", co.id, co.status.value, target.value, event)


def apply_outcome(ctx: ExecutorContext, s: Session, co: CopyOrder, outcome: PostOutcome) -> None:
    """Record what POST /order answered (fills come from `apply_refresh`)."""
    now = ctx.clock()
    if isinstance(outcome, Accepted):
        co.posted_at = co.posted_at or now
        co.acked_at = now
        co.exchange_order_id = outcome.order_id
        if outcome.order_id.lower() != (co.order_hash or "").lower():
            log.error("copy %s: venue order id %s differs from the local hash %s", co.id,
                      outcome.order_id, co.order_hash)
        move(s, co, CopyStatus.LIVE, "accepted", detail={"status": outcome.status})
    elif isinstance(outcome, Rejected):
        move(s, co, CopyStatus.REJECTED, "rejected", reason=outcome.kind.value,
             detail={"message": outcome.reason[:500], "http": outcome.http_status})
        co.reason_detail = outcome.reason[:500]
    else:
        reason = {Duplicate: "duplicate", InDoubt: "in_doubt", RateLimited: "rate_limited"}.get(
            type(outcome), "restricted")
        co.posted_at = co.posted_at or now
        move(s, co, CopyStatus.IN_DOUBT, "post_unresolved", reason=reason,
             detail={"outcome": type(outcome).__name__})


def apply_refresh(s: Session, co: CopyOrder, refresh: OrderRefresh, now: datetime | None = None) -> None:
    """Record new fills and move the copy to what the venue says about its current order."""
    new = 0
    for f in refresh.fills:
        new += record_fill(s, co, f)
    intended = co.intended_size or ZERO
    if refresh.state == "unknown":
        return
    if co.status in (CopyStatus.SIGNED, CopyStatus.IN_DOUBT) and refresh.state in ("live", "filled", "canceled"):
        move(s, co, CopyStatus.LIVE if refresh.state == "live" else co.status, "found")
    if refresh.state == "live":
        if (co.filled_size or ZERO) > 0:
            move(s, co, CopyStatus.PARTIAL, "fill" if new else "refresh")
        return
    if refresh.state == "filled" and (co.filled_size or ZERO) >= intended:
        move(s, co, CopyStatus.FILLED, "filled")
        return
    if co.status == CopyStatus.CANCELING:
        return  # the manager decides what follows a confirmed cancel
    if refresh.state in ("filled", "canceled"):
        if (co.filled_size or ZERO) >= intended:
            move(s, co, CopyStatus.FILLED, "filled")
            return
        if refresh.size_matched > filled_by_hash(s, co.id, co.order_hash) and not _fills_overdue(co, now):
            # the venue matched more than the trades we could read so far (they lag): keep the
            # copy open so the next refresh records them, rather than close it short
            if co.status in (CopyStatus.SIGNED, CopyStatus.IN_DOUBT):
                move(s, co, CopyStatus.LIVE, "found")
            log.info("copy %s: venue matched %s, trades not all visible yet", co.id, refresh.size_matched)
            return
        reason = "unfilled_remainder" if (co.filled_size or ZERO) > 0 else "canceled_at_venue"
        move(s, co, CopyStatus.CANCELED, "venue_closed", reason=reason)


FILLS_GRACE = timedelta(hours=1)


def _fills_overdue(co: CopyOrder, now: datetime | None) -> bool:
    """True when trades the venue reported matched have been missing for too long to wait."""
    since = co.acked_at or co.posted_at or co.signed_at
    return since is not None and (now or utcnow()) - since > FILLS_GRACE


def record_post_outcome(ctx: ExecutorContext, s: Session, co: CopyOrder, outcome: PostOutcome,
                        fills: tuple[FillRecord, ...]) -> None:
    """Record one POST answer and the fills known with it (paper); tick-size refusals drop the cache."""
    apply_outcome(ctx, s, co, outcome)
    if fills:
        apply_refresh(s, co, OrderRefresh("live" if co.status == CopyStatus.LIVE else "unknown",
                                          ZERO, fills))
        if co.order_type in ("FOK", "FAK") or (co.filled_size or ZERO) >= (co.intended_size or ZERO):
            apply_refresh(s, co, OrderRefresh("filled", co.filled_size, ()))
    if isinstance(outcome, Rejected) and outcome.kind == RejectKind.TICK_SIZE:
        invalidate = getattr(ctx.client, "invalidate_market", None)
        if invalidate:
            invalidate(condition_id=co.condition_id)
        forget_market(ctx, co.condition_id)
        row = s.get(Market, co.condition_id)
        if row is not None:
            row.fetched_at = datetime(1970, 1, 1, tzinfo=UTC)


async def post_and_record(ctx: ExecutorContext, co_id: int, market: MarketInfo) -> CopyStatus:
    """POST one copy's stored body once and record the outcome (reconciliation and repricing)."""
    with session_scope(ctx.factory) as s:
        co = s.get(CopyOrder, co_id)
        follower = s.get(Follower, co.follower_id) if co else None
        assert co is not None and follower is not None
        creds = creds_of(ctx, follower)
        spec = spec_for(ctx, s, co, follower, market, creds)
        co.posted_at = ctx.clock()
    outcome, fills = await ctx.venue.post(spec)
    ctx.crash_hook("after_post")
    with session_scope(ctx.factory) as s:
        co = s.get(CopyOrder, co_id, with_for_update=True)
        assert co is not None
        if co.order_hash != spec.order_hash:
            return co.status  # somebody (reconcile) moved on already
        record_post_outcome(ctx, s, co, outcome, fills)
        status = co.status
    if isinstance(outcome, Accepted) and outcome.status != "live" and not ctx.venue.paper:
        await refresh_copy(ctx, co_id, market)  # matched/delayed: read the fills now
        with session_scope(ctx.factory) as s:
            status = s.get(CopyOrder, co_id).status  # type: ignore[union-attr]
    return status


async def refresh_copy(ctx: ExecutorContext, co_id: int, market: MarketInfo) -> OrderRefresh | None:
    """Ask the venue about the copy's current order and record what changed."""
    with session_scope(ctx.factory) as s:
        co = s.get(CopyOrder, co_id)
        assert co is not None
        if co.order_hash is None:
            return None
        follower = s.get(Follower, co.follower_id)
        assert follower is not None
        spec = spec_for(ctx, s, co, follower, market, creds_of(ctx, follower))
    refresh = await ctx.venue.refresh(spec)
    with session_scope(ctx.factory) as s:
        co = s.get(CopyOrder, co_id, with_for_update=True)
        assert co is not None
        if co.order_hash == spec.order_hash:
            apply_refresh(s, co, refresh, ctx.clock())
    return refresh


async def process_claimed(ctx: ExecutorContext, co_id: int) -> str:
    """Size, price, sign, submit one claimed copy (a batch of one); a short label of what happened."""
    from copying.copy_batch import submit_batch

    return (await submit_batch(ctx, [co_id]))[co_id]


def skip_copy(s: Session, co: CopyOrder, skip: SkipCopy) -> None:
    """End a claimed copy SKIPPED with the reason (the caller commits)."""
    metrics.inc("copies_skipped", reason=skip.reason[:64])
    co.reason_detail = skip.detail[:500] if skip.detail else None
    co.lease_owner = co.lease_expires_at = None
    transition(s, co, CopyStatus.SKIPPED, "skip", reason=skip.reason[:64])

