"""Turning one claimed copy order into exactly one venue order (DESIGN.md promise 1).

The order of steps is the invariant:
1. gather inputs (no lock), price against the live book;
2. in one transaction holding the follower's row lock: reserve balance (open orders of the same
   follower count against it), size, sign (key plaintext only inside `crypto.signing_key`),
   store the exact body + its locally computed order hash, move CLAIMED → SIGNED, commit;
3. POST exactly those bytes, once;
4. record the outcome (LIVE / PARTIAL / FILLED / REJECTED / IN_DOUBT) and any fills.
A crash between 2 and 4 leaves a SIGNED or IN_DOUBT row that `reconcile` settles by hash (or
re-posts the same bytes); nothing ever re-signs an order whose outcome is in doubt.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, sessionmaker

import metrics
from config import Settings
from copy_fsm import OPEN_AT_VENUE, UNRESOLVED, can_move, transition
from crypto import KeyRing, signing_key
from db import session_scope, utcnow
from ledger import record_fill
from market_store import load_market, upsert_market
from models import (
    CopyOrder,
    CopyStatus,
    Follow,
    Follower,
    FollowerFill,
    FollowerPosition,
    TraderFill,
    TraderPositionSnapshot,
)
from order_math import OrderMathError, limit_order_amounts, market_buy_amounts, market_sell_amounts
from order_signing import OrderRequest, TimestampSource, exchange_for, post_order_body, sign_order
from pm_records import Accepted, Duplicate, InDoubt, PostOutcome, RateLimited, Rejected, RejectKind
from pm_types import ApiCreds, MarketInfo, OrderBook, OrderType, Side, SignatureType
from sizing import FollowerState, FollowRules, LeaderFill, Skip, size_copy
from smart_pricing import PriceAction, PriceDecision, price_copy, slippage_limit
from venue import OrderRefresh, OrderSpec, Venue

log = logging.getLogger("pmct.executor")
ZERO = Decimal(0)
MARKET_MAX_AGE = timedelta(minutes=10)
OPEN_STATES = tuple(UNRESOLVED | OPEN_AT_VENUE)


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
    balance_cache: dict[int, Decimal] = field(default_factory=dict)  # per cycle
    creds_cache: dict[int, ApiCreds | None] = field(default_factory=dict)  # per cycle
    market_cache: dict[str, tuple[float, MarketInfo]] = field(default_factory=dict)
    book_cache: dict[str, tuple[float, OrderBook | None]] = field(default_factory=dict)
    market_ttl: float = 60.0
    book_ttl: float = 1.0

    def new_cycle(self) -> None:
        """Forget what may only be reused within one cycle (balances, decrypted credentials)."""
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


@dataclass(frozen=True)
class OpenCopy:
    """A follower's copy that may still trade: its unfilled shares at its limit price."""

    id: int
    follow_id: int
    side: str
    token_id: str
    condition_id: str
    price: Decimal
    remaining: Decimal
    signed_at: datetime | None


def open_copies_of(session: Session, follower_id: int, paper: bool, exclude: int) -> list[OpenCopy]:
    """Every open copy of a follower (two queries, whatever their number)."""
    open_filter = (CopyOrder.follower_id == follower_id, CopyOrder.paper == paper,
                   CopyOrder.status.in_(OPEN_STATES))
    rows = session.execute(select(
        CopyOrder.id, CopyOrder.follow_id, CopyOrder.side, CopyOrder.token_id, CopyOrder.condition_id,
        CopyOrder.intended_price, CopyOrder.venue_size, CopyOrder.signed_at,
    ).where(*open_filter, CopyOrder.id != exclude)).all()
    if not rows:
        return []
    filled: dict[int, Decimal] = defaultdict(Decimal)
    for cid, size in session.execute(
            select(FollowerFill.copy_order_id, FollowerFill.size)
            .join(CopyOrder, and_(CopyOrder.id == FollowerFill.copy_order_id,
                                  CopyOrder.order_hash == FollowerFill.order_hash))
            .where(*open_filter)):
        filled[cid] += size
    return [OpenCopy(cid, fid, side, token, cond, price or ZERO,
                     max((venue or ZERO) - filled[cid], ZERO), signed)
            for cid, fid, side, token, cond, price, venue, signed in rows]


def reserved_buy_usd(open_: list[OpenCopy]) -> Decimal:
    """pUSD held back by open BUY copies (unfilled shares × limit price)."""
    return sum((c.remaining * c.price for c in open_ if c.side == "BUY"), ZERO)


def held_shares(session: Session, follow_id: int, token_id: str, paper: bool,
                open_: list[OpenCopy]) -> Decimal:
    """Shares of `token_id` held through this follow, minus those already offered by open SELLs."""
    size = session.scalar(select(FollowerPosition.size).where(
        FollowerPosition.follow_id == follow_id, FollowerPosition.token_id == token_id,
        FollowerPosition.paper == paper)) or ZERO
    size -= sum((c.remaining for c in open_
                 if c.side == "SELL" and c.follow_id == follow_id and c.token_id == token_id), ZERO)
    return max(size, ZERO)


def spent_today_usd(session: Session, follow_id: int, now: datetime, exclude: int,
                    open_: list[OpenCopy]) -> Decimal:
    """USD committed today (UTC) by this follow's BUY copies: fills plus open remainders."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    total = ZERO
    for filled, avg in session.execute(select(CopyOrder.filled_size, CopyOrder.avg_fill_price).where(
            CopyOrder.follow_id == follow_id, CopyOrder.side == "BUY", CopyOrder.id != exclude,
            CopyOrder.signed_at.is_not(None), CopyOrder.signed_at >= day)):
        total += (filled or ZERO) * (avg or ZERO)
    total += sum((c.remaining * c.price for c in open_ if c.side == "BUY" and c.follow_id == follow_id
                  and c.signed_at is not None and c.signed_at >= day), ZERO)
    return total


def market_exposure_usd(session: Session, follow_id: int, condition_id: str, paper: bool,
                        open_: list[OpenCopy]) -> Decimal:
    """This follow's cost basis in one market plus its open BUY remainders there."""
    total = ZERO
    for size, avg in session.execute(select(FollowerPosition.size, FollowerPosition.avg_cost).where(
            FollowerPosition.follow_id == follow_id, FollowerPosition.condition_id == condition_id,
            FollowerPosition.paper == paper)):
        total += size * avg
    total += sum((c.remaining * c.price for c in open_ if c.side == "BUY" and c.follow_id == follow_id
                  and c.condition_id == condition_id), ZERO)
    return total


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


def gate(session: Session, follower: Follower, follow: Follow, live: bool) -> None:
    """Raise SkipCopy when this copy must not trade: kill switch, pause, tier, credentials."""
    from killswitch import copying_allowed

    allowed, reason = copying_allowed(session, follower, follow)
    if not allowed:
        raise SkipCopy(reason or "not_allowed")
    if live and follower.encrypted_api_creds is None:
        raise SkipCopy("no_credentials", "run `admin auth-follower` for this follower")


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
            a = market_buy_amounts(shares * decision.price, decision.price, tick)
        else:
            a = market_sell_amounts(shares, decision.price, tick)
    else:
        a = limit_order_amounts(side, decision.price, shares, tick)
    return a.maker_amount, a.taker_amount


def sign_into(ctx: ExecutorContext, s: Session, co: CopyOrder, follower: Follower,
              market: MarketInfo, decision: PriceDecision, shares: Decimal,
              creds: ApiCreds | None, event: str) -> None:
    """Sign a venue order for `shares` and store it on `co` (caller commits: SIGNED)."""
    assert ctx.keyring is not None and decision.price is not None and decision.order_type
    side = Side(co.side)
    try:
        maker_amount, taker_amount = order_amounts(side, decision, shares, market.tick_size)
    except OrderMathError as exc:
        raise SkipCopy("invalid_amounts", str(exc)) from None
    sig_type = SignatureType(follower.signature_type)
    order_signer = follower.funder_address if sig_type == SignatureType.POLY_1271 else follower.signer_address
    req = OrderRequest(maker=follower.funder_address, signer=order_signer, token_id=co.token_id,
                       maker_amount=maker_amount, taker_amount=taker_amount, side=side,
                       signature_type=sig_type)
    exchange = exchange_for(market.version, market.neg_risk, ctx.settings.chain_id)
    with signing_key(ctx.keyring, follower.encrypted_private_key, follower.signer_address) as key:
        signed = sign_order(req, key, exchange, ctx.settings.chain_id, timestamps=ctx.timestamps)
    owner = creds.api_key if creds is not None else "paper"
    co.signed_payload = post_order_body(signed, owner, decision.order_type)
    co.order_hash = signed.order_hash
    co.venue_size = Decimal(taker_amount if side is Side.BUY else maker_amount) / Decimal(1_000_000)
    co.intended_price = decision.price
    co.order_type = decision.order_type.value
    co.attempts = (co.attempts or 0) + 1
    co.signed_at = ctx.clock()
    co.posted_at = co.acked_at = None
    co.lease_owner = co.lease_expires_at = None
    transition(s, co, CopyStatus.SIGNED, event, detail={
        "price": str(decision.price), "shares": str(shares), "order_type": decision.order_type.value,
        "stage": decision.stage.value, "exchange": exchange.address})


def spec_for(ctx: ExecutorContext, s: Session, co: CopyOrder, follower: Follower,
             market: MarketInfo, creds: ApiCreds | None) -> OrderSpec:
    """The venue view of the copy's current signed order."""
    assert co.order_hash and co.signed_payload and co.intended_price is not None
    return OrderSpec(
        order_hash=co.order_hash, body=co.signed_payload, token_id=co.token_id,
        condition_id=co.condition_id, side=Side(co.side), price=co.intended_price,
        shares=order_shares(co.signed_payload), order_type=OrderType(co.order_type or "GTC"),
        creds=creds, signer_address=follower.signer_address, funder_address=follower.funder_address,
        fee_rate=market.fee_rate, fee_exponent=market.fee_exponent, posted_at=co.posted_at,
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


def apply_refresh(s: Session, co: CopyOrder, refresh: OrderRefresh, fills_done: bool = True) -> None:
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
        reason = "unfilled_remainder" if (co.filled_size or ZERO) > 0 else "canceled_at_venue"
        if (co.filled_size or ZERO) >= intended:
            move(s, co, CopyStatus.FILLED, "filled")
        else:
            move(s, co, CopyStatus.CANCELED, "venue_closed", reason=reason)


async def post_and_record(ctx: ExecutorContext, co_id: int, market: MarketInfo) -> CopyStatus:
    """POST the stored body once, record the outcome, then read back fills (steps 3-4)."""
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
        apply_outcome(ctx, s, co, outcome)
        if fills:
            apply_refresh(s, co, OrderRefresh("live" if co.status == CopyStatus.LIVE else "unknown",
                                              ZERO, fills))
            if co.order_type in ("FOK", "FAK") or (co.filled_size or ZERO) >= (co.intended_size or ZERO):
                apply_refresh(s, co, OrderRefresh("filled", co.filled_size, ()))
        status = co.status
        if isinstance(outcome, Rejected) and outcome.kind == RejectKind.TICK_SIZE:
            invalidate = getattr(ctx.client, "invalidate_market", None)
            if invalidate:
                invalidate(condition_id=co.condition_id)
            forget_market(ctx, co.condition_id)
            from models import Market
            row = s.get(Market, co.condition_id)
            if row is not None:
                row.fetched_at = datetime(1970, 1, 1, tzinfo=UTC)
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
            apply_refresh(s, co, refresh)
    return refresh


async def process_claimed(ctx: ExecutorContext, co_id: int) -> str:
    """Size, price, sign, submit one claimed copy; returns a short label of what happened."""
    now = ctx.clock()
    with session_scope(ctx.factory) as s:
        co = s.get(CopyOrder, co_id)
        if co is None or co.status != CopyStatus.CLAIMED or co.lease_owner != ctx.owner:
            return "lost_claim"
        fill = s.get(TraderFill, co.trader_fill_id)
        follow = s.get(Follow, co.follow_id)
        follower = s.get(Follower, co.follower_id)
        assert fill is not None and follow is not None and follower is not None
        try:
            gate(s, follower, follow, live=not ctx.venue.paper)
        except SkipCopy as skip:
            _skip(s, co, skip)
            return f"skipped:{skip.reason}"
    try:
        market = await market_for(ctx, co.token_id, co.condition_id)
        book = await book_for(ctx, co.token_id)
    except RetryLater as exc:
        _release(ctx, co_id, str(exc))
        return "retry"
    except Exception as exc:  # noqa: BLE001 - network trouble: try again next cycle
        _release(ctx, co_id, f"{type(exc).__name__}: {exc}")
        return "retry"
    if book is None:
        with session_scope(ctx.factory) as s:
            _skip(s, s.get(CopyOrder, co_id), SkipCopy("no_orderbook"))  # type: ignore[arg-type]
        return "skipped:no_orderbook"
    side = Side(co.side)
    max_slip = follow.max_slippage if follow.max_slippage is not None else ctx.settings.default_max_slippage
    decision = price_copy(side, co.trader_price, book, market.tick_size, now - fill.occurred_at, max_slip)
    if decision.action is PriceAction.SKIP:
        with session_scope(ctx.factory) as s:
            _skip(s, s.get(CopyOrder, co_id), SkipCopy(f"pricing_{decision.reason.value or 'skip'}"))  # type: ignore[arg-type]
        return "skipped:pricing"
    if decision.action is PriceAction.WAIT:
        _release(ctx, co_id, f"pricing wait: {decision.reason.value}",
                 hold=timedelta(seconds=ctx.settings.order_manage_interval))
        return "wait"
    creds = creds_of(ctx, follower)
    balance: Decimal | None = None
    if not ctx.venue.paper and side is Side.BUY:
        assert creds is not None
        try:
            balance = await live_balance(ctx, follower, creds)
        except Exception as exc:  # noqa: BLE001
            _release(ctx, co_id, f"balance read failed: {exc}")
            return "retry"
    with session_scope(ctx.factory) as s:
        follower = s.get(Follower, follower.id, with_for_update=True)  # serialises this follower
        co = s.get(CopyOrder, co_id, with_for_update=True)
        assert follower is not None and co is not None
        if co.status != CopyStatus.CLAIMED or co.lease_owner != ctx.owner:
            return "lost_claim"
        co.paper = ctx.venue.paper
        if ctx.venue.paper and follower.paper_balance is None:
            follower.paper_balance = ctx.settings.paper_balance_usd
        available = (follower.paper_balance if ctx.venue.paper else balance) or ZERO
        open_ = open_copies_of(s, follower.id, co.paper, co.id)
        if side is Side.BUY:
            available -= reserved_buy_usd(open_)
        rules = FollowRules(
            copy_pct=follow.copy_pct, max_usd_per_trade=follow.max_usd_per_trade,
            min_price=follow.price_min, max_price=follow.price_max,
            daily_cap_usd=follow.daily_usd_cap,
            spent_today_usd=spent_today_usd(s, follow.id, now, co.id, open_),
            exposure_cap_usd=follow.market_exposure_cap,
            exposure_usd=market_exposure_usd(s, follow.id, co.condition_id, co.paper, open_))
        state = FollowerState(
            available_usd=max(available, ZERO),
            held_shares=held_shares(s, follow.id, co.token_id, co.paper, open_) if side is Side.SELL else ZERO,
            trader_shares_before=trader_shares_before(s, fill) if side is Side.SELL else None)
        cap_price = slippage_limit(side, co.trader_price, market.tick_size, max_slip)
        sized = size_copy(LeaderFill(side, fill.size, fill.price, co.token_id, fill.is_combo),
                          rules, market, state,
                          price=max(cap_price, decision.price or cap_price) if side is Side.BUY else decision.price)
        if isinstance(sized, Skip):
            _skip(s, co, SkipCopy(sized.reason.value, sized.detail))
            return f"skipped:{sized.reason.value}"
        co.intended_size = sized.shares
        try:
            sign_into(ctx, s, co, follower, market, decision, sized.shares, creds, "sign")
        except SkipCopy as skip:
            _skip(s, co, skip)
            return f"skipped:{skip.reason}"
    ctx.crash_hook("after_signed")
    status = await post_and_record(ctx, co_id, market)
    metrics.observe("copy_overhead_seconds", (ctx.clock() - fill.occurred_at).total_seconds())
    return status.value


def _skip(s: Session, co: CopyOrder, skip: SkipCopy) -> None:
    metrics.inc("copies_skipped", reason=skip.reason[:64])
    co.reason_detail = skip.detail[:500] if skip.detail else None
    co.lease_owner = co.lease_expires_at = None
    transition(s, co, CopyStatus.SKIPPED, "skip", reason=skip.reason[:64])


def _release(ctx: ExecutorContext, co_id: int, why: str, hold: timedelta | None = None) -> None:
    """Give a claim back (now, or after `hold` by letting the lease run out)."""
    with session_scope(ctx.factory) as s:
        co = s.get(CopyOrder, co_id, with_for_update=True)
        if co is None or co.status != CopyStatus.CLAIMED or co.lease_owner != ctx.owner:
            return
        if hold is not None:
            co.lease_expires_at = ctx.clock() + hold
            return
        co.lease_owner = co.lease_expires_at = None
        transition(s, co, CopyStatus.QUEUED, "release", detail={"why": why[:300]})
    log.info("copy %s released for a later cycle: %s", co_id, why)


def count_open(session: Session, follower_id: int) -> int:
    """How many copies of a follower are open at the venue (for status displays)."""
    return session.scalar(select(func.count()).select_from(CopyOrder).where(
        CopyOrder.follower_id == follower_id, CopyOrder.status.in_(OPEN_STATES))) or 0
