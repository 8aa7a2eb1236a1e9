"""Cancel many venue orders at once, confirm, record, and re-sign the remainders that go on.

One call takes a plan per copy: stop it (a reason: it ends CANCELED) or reprice it (a pricing
decision: the remainder gets a new signed order). The steps, for the whole set:
1. one transaction per chunk: LIVE/PARTIAL → CANCELING (CANCEL with the stop reason, or
   REPRICE_CANCEL); a copy already CANCELING keeps its state (asked again);
2. per follower, `DELETE /orders` with every hash of that follower (chunks within the per-signer
   cancel burst), followers concurrently. An order the venue cancelled, or says it cannot find
   (already cancelled or matched), is confirmed gone; anything else stays CANCELING and is asked
   again at the next wake;
3. the confirmed copies' new fills are read per follower (trades since the cursor); for a reprice
   the order's matched size is known too (from the open-order listing the caller read just
   before, else read per order), and the trades are read REPRICE_SETTLE after the confirmation,
   so that a fill whose trade is not listed yet is not bought twice;
4. one transaction per chunk: FILLED when the fills complete the copy, CANCELED (reason) for a
   stop, else a new signed order for the remainder (CANCELING → SIGNED, REPRICE), or CANCELED
   when the remainder is under the market's minimum;
5. the new orders are posted (a follower's together), recorded and read back like a batch.

Invariant (promise 1): a remainder is re-signed only after the venue confirmed its previous order
gone and its fills are recorded, so at no moment are two venue orders of one copy live. A stop
request is honoured before step 4 signs anything: the copies then stay CANCELING, and whatever
signed is always posted and recorded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from copying.claims import Job, lock_copies
from copying.context import ExecutorContext, account_of, creds_of
from copying.fills import refresh_fills
from copying.orders import SkipCopy, plan_order, sign_planned, spec_for
from copying.sizing import MIN_NOTIONAL_USD
from copying.states import Event, transition
from copying.submit import post_batch, read_back, record_batch
from copying.venues import CancelReport, LiveVenue, VenueAccount
from crypto import signer_for
from infra import metrics
from infra.db import session_scope
from models import CopyOrder, CopyStatus, Follow, Follower, FollowerFill, TraderFill
from smart_pricing import PriceAction, PriceDecision
from wire.types import MarketInfo

log = logging.getLogger("pmct.executor")
ZERO = Decimal(0)
CHUNK = 200


@dataclass(frozen=True)
class Plan:
    """What becomes of one open copy once its venue order is confirmed gone."""

    reason: str | None = None  # stop: end CANCELED with this reason
    decision: PriceDecision | None = None  # reprice: a new order for the remainder
    market: MarketInfo | None = None  # with the decision: the market it was priced in


@dataclass
class CancelStats:
    """What one call did (the executor's `orders_*` counts)."""

    requested: int = 0
    confirmed: int = 0
    unconfirmed: int = 0
    canceled: int = 0
    filled: int = 0
    repriced: int = 0
    waiting: int = 0  # confirmed gone, no new order now (the decision was to wait)
    jobs: list[Job] = field(default_factory=list)


def _mark(ctx: ExecutorContext, plans: dict[int, Plan], ids: list[int]) -> dict[int, tuple[VenueAccount, str]]:
    """Step 1 for a chunk: the copies' cancels asked for; copy id → (follower account, hash)."""
    targets: dict[int, tuple[VenueAccount, str]] = {}
    with session_scope(ctx.factory) as s:
        cos = lock_copies(s, ids)
        owners = {f.id: f for f in s.scalars(select(Follower).where(
            Follower.id.in_(sorted({co.follower_id for co in cos.values()}))))}
        for cid in ids:
            co, plan = cos.get(cid), plans[cid]
            if co is None or co.paper is not ctx.paper or co.order_hash is None:
                continue
            if co.status in (CopyStatus.LIVE, CopyStatus.PARTIAL):
                if plan.reason is not None:
                    transition(s, co, Event.CANCEL, reason=plan.reason[:64])
                else:
                    transition(s, co, Event.REPRICE_CANCEL)
            elif co.status == CopyStatus.CANCELING:
                if plan.reason is not None and co.reason is None:
                    co.reason = plan.reason[:64]
            else:
                continue
            targets[cid] = (account_of(ctx, owners[co.follower_id]), co.order_hash.lower())
    return targets


async def _delete(ctx: ExecutorContext, targets: dict[int, tuple[VenueAccount, str]]) -> set[str]:
    """Step 2: DELETE per follower, followers concurrently; the hashes confirmed gone."""
    by_follower: dict[int, tuple[VenueAccount, list[str]]] = {}
    for account, h in targets.values():
        by_follower.setdefault(account.follower_id, (account, []))[1].append(h)
    sem = asyncio.Semaphore(max(1, ctx.post_concurrency))

    async def one(account: VenueAccount, hashes: list[str]) -> CancelReport:
        async with sem:
            return await ctx.venue.cancel_many(account, hashes)

    reports = await asyncio.gather(*(one(a, hs) for a, hs in by_follower.values()))
    confirmed: set[str] = set()
    for report in reports:
        confirmed |= report.confirmed
        for h, why in report.unconfirmed.items():
            log.warning("cancel of %s not confirmed yet (%s); asked again at the next wake", h, why)
    metrics.inc("cancels", len(confirmed), outcome="confirmed")
    metrics.inc("cancels", len(targets) - len(confirmed), outcome="unconfirmed")
    return confirmed


async def _matched_sizes(ctx: ExecutorContext, targets: dict[int, tuple[VenueAccount, str]],
                         ids: list[int], listed: dict[int, Decimal]) -> dict[int, Decimal]:
    """Step 3 for reprices: each order's matched size at the venue (live only). An order the
    caller saw in the follower's open-order listing just before uses that size (trades matched
    since then are in the trades read after the confirmed cancel); any other is read one by one
    (rare: an order already gone, e.g. a marketable remainder)."""
    if not isinstance(ctx.venue, LiveVenue) or not ids:
        return {}
    known = {cid: listed[cid] for cid in ids if cid in listed}
    ids = [cid for cid in ids if cid not in listed]
    sem = asyncio.Semaphore(max(1, ctx.post_concurrency))

    async def one(cid: int) -> tuple[int, Decimal | None]:
        account, h = targets[cid]
        assert account.creds is not None
        async with sem:
            try:
                order = await ctx.client.get_order(h, account.creds, account.signer_address)
            except Exception as exc:  # noqa: BLE001 - not repriced this time
                log.warning("copy %s: reading its cancelled order failed: %s", cid, exc)
                return cid, None
        return cid, (order.size_matched if order is not None else ZERO)

    read = {cid: m for cid, m in await asyncio.gather(*(one(c) for c in ids)) if m is not None}
    return {**known, **read}


def _too_small(co: CopyOrder, market: MarketInfo, decision: PriceDecision, left: Decimal) -> bool:
    """True when the remainder cannot be placed (under the min size or, market BUY, under $1)."""
    assert decision.price is not None
    return left < market.min_size or (
        co.side == "BUY" and decision.action is PriceAction.MARKET
        and left * (decision.spend_price or decision.price) < MIN_NOTIONAL_USD)


def _recorded_by_order(s: Session, cos: Iterable[CopyOrder]) -> dict[int, Decimal]:
    """Shares recorded for each copy's current venue order (one query for the whole chunk)."""
    current = {co.id: co.order_hash for co in cos if co.order_hash}
    out: dict[int, Decimal] = defaultdict(Decimal)
    if current:
        for cid, h, size in s.execute(select(FollowerFill.copy_order_id, FollowerFill.order_hash,
                                             FollowerFill.size)
                                      .where(FollowerFill.copy_order_id.in_(sorted(current)))):
            if h == current[cid]:
                out[cid] += size
    return out


def _settle(ctx: ExecutorContext, plans: dict[int, Plan], ids: list[int], matched: dict[int, Decimal],
            stats: CancelStats, *, may_sign: bool) -> None:
    """Step 4 for a chunk: FILLED, CANCELED, or a new signed order for the remainder."""
    with session_scope(ctx.factory) as s:
        cos = lock_copies(s, ids)
        recorded = _recorded_by_order(s, cos.values())
        to_sign: dict[int, list[tuple[CopyOrder, Decimal, Plan]]] = defaultdict(list)
        for cid in ids:
            co, plan = cos.get(cid), plans[cid]
            if co is None or co.status != CopyStatus.CANCELING:
                continue  # filled meanwhile (the fills read settled it)
            here = recorded.get(co.id, ZERO)
            intended = co.intended_size or ZERO
            if (co.filled_size or ZERO) >= intended:
                transition(s, co, Event.FILLED)
                stats.filled += 1
            elif co.reason is not None:
                transition(s, co, Event.CANCELED, reason=co.reason)
                stats.canceled += 1
            elif (plan.decision is None or plan.market is None or not may_sign
                  or (isinstance(ctx.venue, LiveVenue) and cid not in matched)):
                stats.waiting += 1  # stays CANCELING: re-planned at the next pass
            else:
                before = (co.filled_size or ZERO) - here
                left = max(intended - before - max(here, matched.get(cid, ZERO)), ZERO)
                if left <= 0 or _too_small(co, plan.market, plan.decision, left):
                    transition(s, co, Event.CANCELED,
                               reason="remainder_below_min" if left > 0 else "filled_by_cancel_race")
                    stats.canceled += 1
                else:
                    to_sign[co.follower_id].append((co, left, plan))
        if not to_sign:
            return
        followers = {f.id: f for f in s.scalars(select(Follower).where(Follower.id.in_(sorted(to_sign)))
                                                .with_for_update())}
        signing = [co for items in to_sign.values() for co, _, _ in items]
        trader_fills = {f.id: f for f in s.scalars(
            select(TraderFill).where(TraderFill.id.in_({co.trader_fill_id for co in signing
                                                        if co.trader_fill_id is not None}))
            .options(defer(TraderFill.raw), defer(TraderFill.title)))}
        follows = {f.id: f for f in s.scalars(select(Follow).where(Follow.id.in_({co.follow_id for co in signing})))}
        assert ctx.keyring is not None
        for fid, items in sorted(to_sign.items()):
            follower = followers[fid]
            creds = creds_of(ctx, follower)
            with signer_for(ctx.keyring, follower.encrypted_private_key, follower.signer_address) as key:
                for co, left, plan in items:
                    assert plan.decision is not None and plan.market is not None
                    try:
                        order_plan = plan_order(ctx, co, follower, plan.market, plan.decision, left)
                    except SkipCopy as skip:
                        transition(s, co, Event.CANCELED, reason=skip.reason[:64])
                        stats.canceled += 1
                        continue
                    sign_planned(ctx, s, co, order_plan, key, creds, Event.REPRICE)
                    fill = trader_fills.get(co.trader_fill_id) if co.trader_fill_id is not None else None
                    follow = follows[co.follow_id]
                    job = Job(co, fill, follow, follower, market=plan.market, decision=plan.decision,
                              creds=creds)
                    job.spec = spec_for(co, follower, plan.market, creds)
                    stats.jobs.append(job)
                    stats.repriced += 1


REPRICE_SETTLE = 0.3  # s between the cancel answers and the trades read before a re-sign


async def cancel_and_settle(ctx: ExecutorContext, plans: dict[int, Plan],
                            stop: asyncio.Event | None = None,
                            listed: dict[int, Decimal] | None = None) -> CancelStats:
    """Cancel the copies' venue orders in batches, confirm, record, settle; re-sign remainders.

    `listed`: copy id → the matched size of its order in the follower's open-order listing the
    caller read just before (spares a read per order)."""
    stats = CancelStats()
    ids = sorted(plans)
    targets: dict[int, tuple[VenueAccount, str]] = {}
    for i in range(0, len(ids), CHUNK):
        targets.update(_mark(ctx, plans, ids[i:i + CHUNK]))
    stats.requested = len(targets)
    if not targets:
        return stats
    confirmed_hashes = await _delete(ctx, targets)
    answered = time.monotonic()
    confirmed = sorted(cid for cid, (_, h) in targets.items() if h in confirmed_hashes)
    stats.confirmed, stats.unconfirmed = len(confirmed), len(targets) - len(confirmed)
    if not confirmed:
        return stats
    followers = {targets[cid][0].follower_id for cid in confirmed}
    reprices = [cid for cid in confirmed if plans[cid].reason is None and plans[cid].decision is not None]
    if reprices and isinstance(ctx.venue, LiveVenue):  # a trade matched just before the cancel is
        await asyncio.sleep(max(0.0, REPRICE_SETTLE - (time.monotonic() - answered)))  # listed by now
    _, matched = await asyncio.gather(refresh_fills(ctx, followers),
                                      _matched_sizes(ctx, targets, reprices, listed or {}))
    may_sign = stop is None or not stop.is_set()
    for i in range(0, len(confirmed), CHUNK):
        _settle(ctx, plans, confirmed[i:i + CHUNK], matched, stats, may_sign=may_sign)
    if stats.jobs:
        ctx.crash_hook("after_signed")
        await post_batch(ctx, stats.jobs)
        ctx.crash_hook("after_post")
        record_batch(ctx, stats.jobs)
        await read_back(ctx, stats.jobs)
    return stats
