"""The executor's open-order work, done at every wake of its open-order loop (off the path of new
copies): stops first, then replans, fills, the scheduled pass, balances, mode and retention.

One `open_order_pass`:
Steps 2-6 wait for a later wake while the executor is posting new copies (the critical path
never shares the event loop, the database or the venue's budgets with background reads); a
round of fill, market or balance reads that began before the copies did stops at its next
request and leaves the rest due.

1. stops (`copying.stops`): QUEUED copies that must not be placed are ended (STOP); open ones
   are cancelled at the venue in batches and settled (`copying.cancels`) — within seconds of a
   kill switch, a disable, a removed follow, a trader's exit or a closed market;
2. replans: copies left without an order by a stale tick or min size, re-planned at once;
3. fills: the followers whose fills are due (FILL_REFRESH_INTERVAL) read theirs since their cursor;
   the markets of open copies read afresh when older than MARKET_REFRESH_INTERVAL (a market
   that closed stops its copies at the next sweep);
4. the scheduled pass (`copying.manage`) when due (ORDER_MANAGE_INTERVAL), in chunks with the stop
   sweep between them;
5. a live executor closes the paper copies still open (`copying.modes`);
6. a few followers' balances read again (`copying.balances`), and the retention prune hourly.
A stop request is looked at between every step and every chunk, and new copies get the event
loop between every two steps (`give_way`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from datetime import timedelta

from sqlalchemy import or_, select

from copying.balances import due_for_refresh, refresh_balances
from copying.cancels import Plan, cancel_and_settle
from copying.claims import lock_copies
from copying.context import ExecutorContext, forget_market
from copying.fills import due_followers, followers_with_open_orders, refresh_fills
from copying.manage import cancel_superseded, manage_chunk, manage_open_orders
from copying.markets import upsert_market
from copying.modes import close_paper_copies
from copying.retention import prune
from copying.states import OPEN_AT_VENUE, Event, transition
from copying.stops import find_stops, stop_fingerprint
from infra.db import session_scope
from models import CopyOrder, CopyStatus, Market

log = logging.getLogger("pmct.executor")
BALANCES_PER_WAKE = 50  # balances read in one go: the CLOB allows 20 a second, 200 in a burst
BALANCE_EVERY = 5.0  # s between two of those rounds
FILLS_PER_WAKE = 25  # followers whose trades are read in one wake: half the venue's 50/s budget
MARKETS_PER_WAKE = 10  # market infos read afresh in one wake (Gamma + CLOB: 2 requests each)
RETENTION_EVERY = 3600.0  # s


FULL_SWEEP_EVERY = 30.0  # s: the whole set is looked at this often even when nothing changed
NEW_COPY_WINDOW = timedelta(seconds=10)  # an incremental sweep looks back this far (slow commits)


async def stop_sweep(ctx: ExecutorContext, stop: asyncio.Event | None = None) -> Counter[str]:
    """End or cancel every copy that must stop now; counts by what happened.

    Every open copy is looked at when something the rules depend on changed (a switch, a
    follower, a follow, a market, a trader's SELL or position event, `stop_fingerprint`), after
    a cancel that was not confirmed, and every FULL_SWEEP_EVERY; otherwise only the copies
    queued since the previous sweep, so that a wake costs little with thousands of open copies.
    """
    counts: Counter[str] = Counter()
    now, tick = ctx.clock(), time.monotonic()
    with session_scope(ctx.factory) as s:
        fingerprint, newest = stop_fingerprint(s, ctx.stop_last_fill)
        full = (ctx.stop_state is None or ctx.sweep_again or fingerprint != ctx.stop_state[1]
                or tick - ctx.stop_state[0] >= FULL_SWEEP_EVERY)
        since = None if full else ctx.stop_since - NEW_COPY_WINDOW
        reasons = find_stops(s, ctx.paper, since)
    ctx.stop_since, ctx.stop_last_fill = now, newest
    if full:
        ctx.stop_state, ctx.sweep_again = (tick, fingerprint), False
    if not reasons:
        return counts
    with session_scope(ctx.factory) as s:
        queued = []
        for co in lock_copies(s, [cid for cid in reasons]).values():
            if co.status == CopyStatus.QUEUED:
                transition(s, co, Event.STOP, reason=reasons[co.id])
                queued.append(co.id)
    counts["stopped_queued"] = len(queued)
    plans = {cid: Plan(reason=why) for cid, why in reasons.items() if cid not in queued}
    if plans:
        stats = await cancel_and_settle(ctx, plans, stop)
        ctx.sweep_again = ctx.sweep_again or stats.unconfirmed > 0
        counts["cancel_requested"] = stats.requested
        counts["cancel_confirmed"] = stats.confirmed
        counts["canceled"] = stats.canceled
        if stats.requested:
            log.info("stops: %d cancel(s) asked, %d confirmed, %d copies ended", stats.requested,
                     stats.confirmed, stats.canceled)
    return counts


async def give_way() -> None:
    """Let the event loop run whatever is ready, new copies first (a NOTIFY wakes the submit pass):
    called between two steps of the open-order work, each a few ms of database work that does not
    yield, so that a copy waits for one step, never for a whole wake."""
    await asyncio.sleep(0)


async def open_order_pass(ctx: ExecutorContext, stop: asyncio.Event, *, manage: bool) -> Counter[str]:
    """One wake of the open-order loop (see the module docstring); counts for the cycle log."""
    counts: Counter[str] = Counter()
    counts += await stop_sweep(ctx, stop)
    await give_way()
    if not stop.is_set():  # after the stops: a copy the trader's exit stopped says so
        counts["superseded"] += await cancel_superseded(ctx)
        await give_way()
    if stop.is_set() or (ctx.submitting and not manage):
        return counts  # new copies are going out: fills, replans and balances wait a wake
    if ctx.resume_ids:
        ids, ctx.resume_ids = sorted(ctx.resume_ids), set()
        for what, n in (await manage_chunk(ctx, ids, stop, refresh=False)).items():
            counts[f"replan_{what.value}"] += n
    if stop.is_set():
        return counts
    await give_way()
    with session_scope(ctx.factory) as s:
        open_followers = followers_with_open_orders(s, ctx.paper)
    await give_way()
    due = due_followers(ctx, open_followers)[:FILLS_PER_WAKE]
    if due:
        counts["fills"] += await refresh_fills(ctx, due, open_followers, background=True)
        await give_way()
    now = time.monotonic()
    if now >= ctx.markets_due_at and not stop.is_set():
        ctx.markets_due_at = now + 1.0
        counts["markets_refreshed"] += await refresh_open_markets(ctx)
    if manage and not stop.is_set():
        async def between() -> None:
            counts.update(await stop_sweep(ctx, stop))

        for what, n in (await manage_open_orders(ctx, stop, between)).items():
            counts[f"orders_{what.value}"] += n
    if stop.is_set():
        return counts
    if not ctx.paper:
        await give_way()
        with session_scope(ctx.factory) as s:
            closed = close_paper_copies(s)
        if closed:
            log.warning("%d paper copy order(s) closed: this executor is live (reason mode_changed)", closed)
            counts["paper_closed"] = closed
        now = time.monotonic()
        if now >= ctx.balances_due_at:  # a few followers every BALANCE_EVERY, within the 20/s budget
            ctx.balances_due_at = now + BALANCE_EVERY
            await _balances(ctx, counts)
    now = time.monotonic()
    if now >= ctx.retention_due_at:
        await give_way()
        ctx.retention_due_at = now + RETENTION_EVERY
        counts.update(prune(ctx.factory, ctx.settings, ctx.clock()))
    return counts


async def refresh_open_markets(ctx: ExecutorContext, limit: int = MARKETS_PER_WAKE) -> int:
    """Read afresh the markets of this mode's open copies whose cached info is older than
    MARKET_REFRESH_INTERVAL (a few per wake): a market that closed stops its copies at the next
    sweep (`market_closed`). Returns how many were read."""
    cutoff = ctx.clock() - timedelta(seconds=ctx.settings.market_refresh_interval)
    with session_scope(ctx.factory) as s:
        rows = s.execute(select(CopyOrder.condition_id).outerjoin(
            Market, Market.condition_id == CopyOrder.condition_id)
            .where(CopyOrder.status.in_(OPEN_AT_VENUE), CopyOrder.paper == ctx.paper,
                   or_(Market.fetched_at.is_(None), Market.fetched_at < cutoff))
            .group_by(CopyOrder.condition_id, Market.fetched_at)
            .order_by(Market.fetched_at.asc().nulls_first()).limit(limit)).all()
    sem = asyncio.Semaphore(max(1, ctx.post_concurrency))

    async def one(condition_id: str) -> bool:
        async with sem:
            if ctx.submitting:
                return False  # new copies are going out: read at a later wake
            try:
                info = await ctx.client.get_market_info(condition_id, fresh=True)
            except Exception as exc:  # noqa: BLE001 - read again at a later wake
                log.warning("market %s: refresh failed: %s", condition_id, exc)
                return False
        forget_market(ctx, condition_id)
        with session_scope(ctx.factory) as s:
            upsert_market(s, info, ctx.clock())
        return True

    return sum(await asyncio.gather(*(one(cond) for (cond,) in rows)))


async def _balances(ctx: ExecutorContext, counts: Counter[str]) -> None:
    """Read again the balances that are old or that fills changed (a few per wake)."""
    with session_scope(ctx.factory) as s:
        due = due_for_refresh(s, ctx.clock(), timedelta(seconds=ctx.settings.balance_refresh_interval),
                              BALANCES_PER_WAKE)
    if due:
        counts["balances_read"] = await refresh_balances(ctx, due, background=True)
