#!/usr/bin/env python3
"""watcher: learns followed traders' fills (chain logs and/or the Data API), stores each once,
queues the copies.

`python watcher.py` runs until SIGTERM/SIGINT; `--once` runs one cycle and exits (0, or 1 on
failure); `--shard i/N` watches only the traders whose stable address hash falls in shard i, under
a lease row so two processes never watch one shard. With `FILL_SOURCES` holding `chain`, a chain
follower (copying.chain_source) runs beside the cycles and reads the shard's wallets' fills from
every block; the Data API poll then runs per trader every `DATA_API_SLOW_INTERVAL` (backfill and
cross-check) while the chain source is healthy, and every cycle when it is not. A trader's Data
API cursor (last fill time seen) and the chain's block cursor each advance in the same
transaction as the fills they cover, so a crash or SIGTERM at any point loses nothing, and the
fill identity makes any re-read insert nothing twice, whichever source reads it.

SPLIT / MERGE / CONVERSION rows are stored per outcome (`copying.leader.expand_row`; the market's
tokens from the cache, else fetched first), so a MERGE queues an exit of each outcome. Position
snapshots run concurrently (at most `concurrency` at once, within the client's rate budget) and,
in the daemon, in the background: a slow snapshot round never delays the next poll. A decrease a
snapshot shows and no row explains becomes an exit after `SNAPSHOT_EXIT_GRACE`
(`copying.position_watch.audit_decreases`); snapshots older than `RETENTION_SNAPSHOT_DAYS` are
pruned (each trader's latest kept).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from copying.heartbeats import record_heartbeat
from copying.intake import fill_keys, store_fills
from copying.leader import EXPANDED_TYPES, expand_row
from copying.markets import known_tokens, load_market, upsert_market
from copying.position_watch import Holding, audit_decreases, pending_decreases, record_snapshot
from copying.retention import prune_positions
from copying.source_audit import audit_single_source
from infra import metrics
from infra.config import Settings
from infra.daemon import (
    CycleStats,
    SystemdNotifier,
    daemon_main,
    install_signal_handlers,
    require_migrated,
    run_loop,
)
from infra.db import make_engine, make_sessionmaker, session_scope, utcnow
from infra.errors import InputError
from models import Follow, Follower, FollowerPosition, FollowerStatus, FollowStatus, ShardLease, Trader
from wire.errors import error_class

log = logging.getLogger("pmct.watcher")
CACHE_BUST_SECONDS = 86400


@dataclass(frozen=True)
class Shard:
    """Shard i of n (0-based); `0/1` is everything."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        """Parse `i/N` (0 ≤ i < N); InputError with a clear message otherwise."""
        try:
            i_text, n_text = text.split("/")
            index, count = int(i_text), int(n_text)
        except ValueError:
            raise InputError(f"--shard must look like i/N (e.g. 0/4), got {text!r}") from None
        if count < 1 or not 0 <= index < count:
            raise InputError(f"--shard {text}: need 0 <= i < N")
        return cls(index, count)

    @property
    def name(self) -> str:
        """`i/N`."""
        return f"{self.index}/{self.count}"

    def owns(self, wallet: str) -> bool:
        """True if this shard polls `wallet` (stable hash of the lowercase address)."""
        if self.count == 1:
            return True
        digest = hashlib.sha256(wallet.lower().encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index


# Polls in flight: enough to keep the Data API's 40 requests/s budget busy at ~100 ms round
# trips, and rate-limited waiters leave in groups this size (fewer, CPU-costly wake-ups).
POLL_CONCURRENCY = 8
PRUNE_EVERY = timedelta(hours=1)


def watcher_client(settings: Settings, **kwargs: Any) -> Any:
    """The Polymarket client as the watcher uses it (httpx's own transport).

    Rate-limited waiters wake in groups of POLL_CONCURRENCY rather than one by one. With the
    chain source the Data API poll is a backfill (~500 requests/min at 1,000 traders instead of
    ~2,400), so httpx's transport fits the CPU budget (README, "Fill sources").
    """
    from polymarket_client import PolymarketClient

    return PolymarketClient.from_settings(settings, rate_wake_batch=POLL_CONCURRENCY, **kwargs)


@dataclass
class WatcherContext:
    """Everything one watcher process needs."""

    settings: Settings
    factory: sessionmaker[Session]
    client: Any  # polymarket_client.PolymarketClient
    shard: Shard = field(default_factory=Shard)
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}")
    clock: Callable[[], datetime] = utcnow
    concurrency: int = POLL_CONCURRENCY
    page_limit: int = 500
    max_pages: int = 20
    # Per trader, the fill keys of the last committed poll: a re-poll that only re-reads them
    # (the overlap window) needs no database transaction. Filled only after a commit.
    stored_keys: dict[int, frozenset[str]] = field(default_factory=dict)
    chain: Any = None  # copying.chain_source.ChainSource when FILL_SOURCES has chain
    lease_held: bool = False
    last_audit: float = 0.0  # monotonic time of the last single-source audit
    # The daemon runs snapshot rounds in the background (never delaying polls); tests and
    # `--once` wait for them within the cycle.
    background_snapshots: bool = False
    snapshot_task: asyncio.Task[int] | None = None
    last_prune: datetime | None = None

    @property
    def lease_ttl(self) -> timedelta:
        """How long a shard lease lives without renewal."""
        return timedelta(seconds=max(30.0, 3 * self.settings.watcher_poll_interval + 10))


@dataclass(frozen=True)
class TraderToPoll:
    """A trader row's fields needed for one poll."""

    id: int
    wallet: str
    cursor_ts: int | None
    first_follow_start: datetime
    last_snapshot_at: datetime | None
    last_polled_at: datetime | None = None


def acquire_lease(factory: sessionmaker[Session], shard: Shard, owner: str, now: datetime,
                  ttl: timedelta) -> bool:
    """Take or renew the lease of `shard`; False when another live process holds it."""
    try:
        with session_scope(factory) as s:
            row = s.get(ShardLease, shard.name, with_for_update=True)
            if row is None:
                s.add(ShardLease(shard=shard.name, owner=owner, expires_at=now + ttl, acquired_at=now))
                s.flush()
                return True
            if row.owner != owner and row.expires_at > now:
                return False
            if row.owner != owner:
                log.warning("taking over shard %s from %s (lease expired %s)", shard.name,
                            row.owner, row.expires_at.isoformat())
                row.acquired_at = now
            row.owner, row.expires_at = owner, now + ttl
            return True
    except IntegrityError:
        return False


def release_lease(factory: sessionmaker[Session], shard: Shard, owner: str) -> None:
    """Give the shard lease back (only if we hold it)."""
    with session_scope(factory) as s:
        s.execute(delete(ShardLease).where(ShardLease.shard == shard.name, ShardLease.owner == owner))


def traders_to_poll(session: Session, shard: Shard) -> list[TraderToPoll]:
    """Traders of this shard that a follow still mirrors: an active follow of an active follower
    (entries and exits), a paused follow or a disabled follower's follow (exits), or any follow
    still holding a token of the trader's (exits; a removed follow included)."""
    from sqlalchemy import Numeric, and_, cast, exists, func, or_

    holds = exists().where(FollowerPosition.follow_id == Follow.id,
                           cast(FollowerPosition.size, Numeric) > 0)
    mirrored = or_(and_(Follow.status == FollowStatus.ACTIVE, Follower.status == FollowerStatus.ACTIVE),
                   Follow.status == FollowStatus.PAUSED,
                   and_(Follow.status == FollowStatus.ACTIVE, Follower.status != FollowerStatus.ACTIVE),
                   holds)
    rows = session.execute(
        select(Trader.id, Trader.wallet, Trader.cursor_ts, func.min(Follow.started_at),
               Trader.last_snapshot_at, Trader.last_polled_at)
        .join(Follow, Follow.trader_id == Trader.id)
        .join(Follower, Follower.id == Follow.follower_id)
        .where(mirrored)
        .group_by(Trader.id, Trader.wallet, Trader.cursor_ts, Trader.last_snapshot_at,
                  Trader.last_polled_at)
        .order_by(Trader.id)
    ).all()
    out = []
    for tid, wallet, cursor_ts, first_start, snap_at, polled_at in rows:
        if shard.owns(wallet):
            if first_start.tzinfo is None:  # SQLite MIN() bypasses the column type
                first_start = datetime.fromisoformat(str(first_start)).replace(tzinfo=UTC)
            out.append(TraderToPoll(tid, wallet, cursor_ts, first_start, snap_at, polled_at))
    return out


def data_api_due(ctx: WatcherContext, traders: list[TraderToPoll]) -> list[TraderToPoll]:
    """The traders whose Data API poll is due: all of them unless the chain source is healthy,
    then those never polled or not polled for DATA_API_SLOW_INTERVAL (backfill)."""
    if not ctx.settings.data_api_enabled:
        return []
    if ctx.chain is None or not ctx.chain.healthy:
        return traders
    slow = timedelta(seconds=ctx.settings.data_api_slow_interval)
    now = ctx.clock()
    return [t for t in traders if t.cursor_ts is None or t.last_polled_at is None
            or now - t.last_polled_at >= slow]


@dataclass
class PollResult:
    """What polling one trader did."""

    fetched: int = 0
    new_fills: int = 0
    queued: int = 0
    skipped: int = 0
    rejected_rows: int = 0
    failed: bool = False
    quiet: bool = False
    new_markets: set[tuple[str, str]] = field(default_factory=set)


async def poll_trader(ctx: WatcherContext, trader: TraderToPoll) -> PollResult:
    """Fetch one trader's activity since its cursor and store it (one transaction)."""
    from wire.parse import DEFAULT_ACTIVITY_TYPES, ActivityQuery

    overlap = ctx.settings.watcher_overlap_seconds
    seed = int(trader.first_follow_start.timestamp())
    cursor = trader.cursor_ts if trader.cursor_ts is not None else seed
    now = ctx.clock()
    query = ActivityQuery(user=trader.wallet, types=DEFAULT_ACTIVITY_TYPES,
                          start=max(0, cursor - overlap), end=int(now.timestamp()) + CACHE_BUST_SECONDS,
                          limit=ctx.page_limit, sort_direction="ASC")
    page = await ctx.client.fetch_activity(query, max_pages=ctx.max_pages)
    rows = [r for r in page.items if r.proxy_wallet.lower() == trader.wallet]
    result = PollResult(fetched=len(rows), rejected_rows=len(page.rejected))
    if page.rejected:
        log.warning("trader %s: %d activity row(s) could not be parsed and were ignored",
                    trader.wallet, len(page.rejected))
    if page.next_cursor is not None:
        log.warning("trader %s: more than %d rows since the cursor; the rest comes next cycle",
                    trader.wallet, len(rows))
    rows = await expand_position_rows(ctx, rows)
    seen_at = ctx.clock()
    newest = max((int(r.timestamp.timestamp()) for r in rows), default=cursor)
    keys = frozenset(fill_keys(rows))
    if trader.cursor_ts is not None and keys <= ctx.stored_keys.get(trader.id, frozenset()):
        result.quiet = True  # nothing new: only last_polled_at to write (batched per cycle)
        return result
    with session_scope(ctx.factory) as s:
        stored = store_fills(s, trader.id, rows, now=seen_at,
                             max_copy_delay=timedelta(seconds=ctx.settings.max_copy_delay),
                             committed=ctx.stored_keys.get(trader.id, frozenset()))
        s.execute(update(Trader).where(Trader.id == trader.id).values(
            cursor_ts=max(cursor, newest), last_polled_at=seen_at,
            **({"seeded_at": seen_at} if trader.cursor_ts is None else {})))
    ctx.stored_keys[trader.id] = keys
    result.new_fills, result.queued, result.skipped = stored.new_fills, stored.queued, stored.skipped
    if stored.new_fills:
        result.new_markets = {(r.condition_id, r.token_id) for r in rows
                              if r.type == "TRADE" and not r.is_combo and r.token_id}
    return result


async def expand_position_rows(ctx: WatcherContext, rows: list[Any]) -> list[Any]:
    """SPLIT / MERGE / CONVERSION rows of a market as rows per outcome (market fetched if needed).

    A market that cannot be fetched makes the poll fail (it is retried next cycle from the same
    cursor), so a MERGE is never stored without its per-outcome exits.
    """
    need = sorted({r.condition_id for r in rows
                   if r.type in EXPANDED_TYPES and not r.token_id and r.condition_id})
    tokens: dict[str, Any] = {}
    for condition_id in need:
        with session_scope(ctx.factory) as s:
            info = load_market(s, condition_id=condition_id)
        if info is None or not info.tokens:
            info = await ctx.client.get_market_info(condition_id)
            with session_scope(ctx.factory) as s:
                upsert_market(s, info, ctx.clock())
        tokens[condition_id] = info.tokens
    if not tokens:
        return rows
    out: list[Any] = []
    for r in rows:
        known = tokens.get(r.condition_id)
        out.extend(expand_row(r, known) if known else [r])
    return out


async def snapshot_trader(ctx: WatcherContext, trader: TraderToPoll) -> int:
    """Snapshot one trader's positions; returns the number of change events."""
    page = await ctx.client.fetch_positions(trader.wallet)
    if page.next_cursor is not None:  # a partial snapshot would invent POSITION_CLOSED events
        log.warning("trader %s: too many positions for one snapshot; skipped", trader.wallet)
        return 0
    holdings = [Holding(p.token_id, p.condition_id, p.current_size, p.avg_price)
                for p in page.items]
    now = ctx.clock()
    with session_scope(ctx.factory) as s:
        events = record_snapshot(s, trader.id, holdings, now)
        row = s.get(Trader, trader.id)
        assert row is not None
        row.last_snapshot_at = now
    return len(events)


async def snapshot_round(ctx: WatcherContext, due: list[TraderToPoll], stop: asyncio.Event) -> int:
    """Snapshot every due trader, `ctx.concurrency` at a time; the number of change events."""
    sem = asyncio.Semaphore(ctx.concurrency)

    async def one(t: TraderToPoll) -> int:
        async with sem:
            if stop.is_set():
                return 0
            try:
                return await snapshot_trader(ctx, t)
            except Exception as exc:  # noqa: BLE001 - one trader must not stop the others
                log.warning("trader %s: position snapshot failed: %s", t.wallet, exc)
                return 0

    return sum(await asyncio.gather(*(one(t) for t in due)))


def audit_snapshots(ctx: WatcherContext, trader_ids: list[int]) -> tuple[int, int]:
    """Turn unexplained snapshot decreases into exit rows (one transaction per trader);
    (rows stored, copies queued)."""
    grace = timedelta(seconds=ctx.settings.snapshot_exit_grace)
    delay = timedelta(seconds=ctx.settings.max_copy_delay)
    stored = queued = 0
    with session_scope(ctx.factory) as s:  # one query finds the few traders with work to do
        pending = pending_decreases(s, trader_ids, ctx.clock(), grace)
    for trader_id in [t for t in trader_ids if t in pending]:
        now = ctx.clock()
        with session_scope(ctx.factory) as s:
            for row in audit_decreases(s, trader_id, now, grace):
                # first seen "just before its snapshot": the snapshot reflects it (copying.leader)
                result = store_fills(s, trader_id, [row], now=row.timestamp, max_copy_delay=delay)
                stored, queued = stored + result.new_fills, queued + result.queued
    return stored, queued


def prune_if_due(ctx: WatcherContext) -> tuple[int, int]:
    """Prune old snapshots and position events (RETENTION_SNAPSHOT_DAYS; 0 = keep forever) at
    most once an hour; (snapshots, events) deleted."""
    now = ctx.clock()
    days = ctx.settings.retention_snapshot_days
    if not days or (ctx.last_prune is not None and now - ctx.last_prune < PRUNE_EVERY):
        return 0, 0
    ctx.last_prune = now
    return prune_positions(ctx.factory, now - timedelta(days=days))


async def cache_markets(ctx: WatcherContext, pairs: set[tuple[str, str]]) -> int:
    """Fetch and store market info for tokens not cached yet; returns how many were added."""
    with session_scope(ctx.factory) as s:
        have = known_tokens(s, {t for _, t in pairs})
    todo = {c for c, t in pairs if t not in have}
    added = 0
    for condition_id in sorted(todo):
        try:
            info = await ctx.client.get_market_info(condition_id)
        except Exception as exc:  # noqa: BLE001 - the executor fetches it again if needed
            log.warning("market %s: could not fetch its parameters: %s", condition_id, exc)
            continue
        with session_scope(ctx.factory) as s:
            upsert_market(s, info, ctx.clock())
        added += 1
    return added


async def watch_cycle(ctx: WatcherContext, stop: asyncio.Event) -> CycleStats:
    """One full poll: every trader of this shard, then due snapshots, then new markets."""
    stats = CycleStats()
    ctx.lease_held = acquire_lease(ctx.factory, ctx.shard, ctx.owner, ctx.clock(), ctx.lease_ttl)
    if not ctx.lease_held:
        log.warning("shard %s is held by another live watcher; not polling", ctx.shard.name)
        stats.counts["lease_held_elsewhere"] = 1
        return stats
    with session_scope(ctx.factory) as s:
        all_traders = traders_to_poll(s, ctx.shard)
    counts = stats.counts
    if ctx.chain is not None:
        await chain_part(ctx, all_traders, counts)
    traders = data_api_due(ctx, all_traders)
    sem = asyncio.Semaphore(ctx.concurrency)

    async def guarded(t: TraderToPoll) -> PollResult | None:
        async with sem:
            if stop.is_set():
                return None
            try:
                return await poll_trader(ctx, t)
            except Exception as exc:  # noqa: BLE001 - one trader must not stop the others
                log.warning("trader %s: poll failed: %s", t.wallet, exc)
                metrics.inc("http_errors", error_class=error_class(exc))
                return PollResult(failed=True)

    polled = await asyncio.gather(*(guarded(t) for t in traders))
    results = [r for r in polled if r is not None]
    quiet_ids = [t.id for t, r in zip(traders, polled, strict=True) if r is not None and r.quiet]
    if quiet_ids:
        with session_scope(ctx.factory) as s:
            s.execute(update(Trader).where(Trader.id.in_(quiet_ids)).values(last_polled_at=ctx.clock()))
    counts["traders"] = len(all_traders)
    counts["polled"] = len(results)
    counts["errors"] = sum(1 for r in results if r.failed)
    counts["fetched"] = sum(r.fetched for r in results)
    counts["new_fills"] = sum(r.new_fills for r in results)
    counts["queued"] = sum(r.queued for r in results)
    counts["skipped"] = sum(r.skipped for r in results)
    if stop.is_set():
        return stats
    if ctx.settings.chain_enabled and ctx.settings.data_api_enabled:
        now_mono = time.monotonic()
        if now_mono - ctx.last_audit >= 60.0:
            ctx.last_audit = now_mono
            counts["single_source"] = audit_single_source(
                ctx.factory, [t.id for t in all_traders], ctx.clock(),
                timedelta(seconds=ctx.settings.fill_source_grace))
    counts["snapshots"], counts["position_events"] = await run_snapshots(ctx, all_traders, stop)
    counts["snapshot_exits"], counts["snapshot_exit_copies"] = audit_snapshots(ctx, [t.id for t in all_traders])
    counts["snapshots_pruned"], _ = prune_if_due(ctx)
    pairs: set[tuple[str, str]] = set().union(*(r.new_markets for r in results)) if results else set()
    if pairs and not stop.is_set():
        counts["new_markets"] = await cache_markets(ctx, pairs)
    return stats


async def chain_part(ctx: WatcherContext, traders: list[TraderToPoll], counts: dict[str, int]) -> None:
    """Hand the shard's wallets to the chain source; without its own task, read up to the head."""
    from copying.chain_source import Followed

    chain = ctx.chain
    chain.set_followed(Followed(t.id, t.wallet) for t in traders)
    if not chain.running:  # --once and tests: one catch-up step inside the cycle
        try:
            step = await chain.step()
        except Exception as exc:  # noqa: BLE001 - the Data API poll below still runs
            chain._failed(exc)
            counts["chain_errors"] = 1
        else:
            counts["chain_new_fills"] = step.new_fills
            counts["chain_queued"] = step.queued
    counts["chain_healthy"] = int(chain.healthy)


def make_chain_source(settings: Settings, factory: sessionmaker[Session], client: Any,
                      shard: Shard, **kwargs: Any) -> Any:
    """The chain source of this shard (its RPC client and, with POLYGON_WS, its subscriber)."""
    from copying.chain_source import ChainSource
    from wire.rpc import JsonRpcClient
    from wire.rpc_ws import Subscriber

    rpc = kwargs.pop("rpc", None) or JsonRpcClient(settings.polygon_rpc,
                                                   max_rps=settings.chain_rpc_max_rps)
    return ChainSource(settings, factory, client, rpc, shard.name, subscriber_factory=Subscriber,
                       **kwargs)


async def run_snapshots(ctx: WatcherContext, traders: list[TraderToPoll],
                        stop: asyncio.Event) -> tuple[int, int]:
    """Start a snapshot round for the due traders (unless one is still running); wait for it
    unless `ctx.background_snapshots`. (traders in the round started, events of rounds finished)."""
    events = 0
    task = ctx.snapshot_task
    if task is not None and task.done():
        ctx.snapshot_task = None
        if not task.cancelled() and task.exception() is None:
            events = task.result()
    if ctx.snapshot_task is not None:
        return 0, events
    interval = timedelta(seconds=ctx.settings.position_snapshot_interval)
    due = [t for t in traders if t.last_snapshot_at is None or ctx.clock() - t.last_snapshot_at >= interval]
    if not due:
        return 0, events
    ctx.snapshot_task = asyncio.ensure_future(snapshot_round(ctx, due, stop))
    if not ctx.background_snapshots:
        events += await ctx.snapshot_task
        ctx.snapshot_task = None
    return len(due), events


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true", help="run one cycle, then exit")
    parser.add_argument("--shard", default="0/1", help="poll only shard i of N (default 0/1)")


async def _amain(args: argparse.Namespace, settings: Settings) -> int:
    shard = Shard.parse(args.shard)
    require_migrated(settings.database_url)
    engine = make_engine(settings.database_url)
    factory = make_sessionmaker(engine)
    client = watcher_client(settings)
    ctx = WatcherContext(settings=settings, factory=factory, client=client, shard=shard,
                         background_snapshots=not args.once)
    stop = asyncio.Event()
    install_signal_handlers(stop)
    chain_task: asyncio.Task[None] | None = None
    if settings.chain_enabled:
        ctx.chain = make_chain_source(settings, factory, client, shard)
        if not args.once:
            chain_task = asyncio.create_task(ctx.chain.run(stop, may_run=lambda: ctx.lease_held))
    name = "watcher" if shard.count == 1 else f"watcher-{shard.name}"
    started = utcnow()
    metrics_server = metrics.start_server(settings.metrics_port)

    def on_cycle(st: CycleStats) -> None:
        record_heartbeat(factory, name, st, started)
        metrics.inc("fills_detected", st.counts.get("new_fills", 0))
        metrics.inc("copies_queued", st.counts.get("queued", 0))
        metrics.observe("cycle_seconds", st.elapsed_ms / 1000, daemon="watcher")
        metrics.set_gauge("last_cycle_timestamp_seconds", time.time(), daemon="watcher")
        metrics.sync_total("rate_limit_waits", client.rate_limit_waits)
        if ctx.chain is not None:
            metrics.set_gauge("chain_healthy", float(ctx.chain.healthy))
    log.info("watcher starting: shard %s, settings %s", shard.name, settings.redacted())

    async def cycle(ev: asyncio.Event) -> CycleStats:
        return await watch_cycle(ctx, ev)

    try:
        return await run_loop(
            name, cycle, interval=settings.watcher_poll_interval, stop=stop,
            notifier=SystemdNotifier(), once=args.once, on_cycle=on_cycle,
        )
    finally:
        stop.set()
        if chain_task is not None:
            await chain_task
        if ctx.chain is not None:
            await ctx.chain.rpc.aclose()
        if ctx.snapshot_task is not None:
            ctx.snapshot_task.cancel()
            await asyncio.gather(ctx.snapshot_task, return_exceptions=True)
        if metrics_server is not None:
            metrics_server.shutdown()
        release_lease(factory, shard, ctx.owner)
        await client.aclose()
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """Entry point (`infra.daemon.daemon_main`): exit 2 on bad flags or settings, 1 on failure."""
    return daemon_main(argv, prog="watcher.py", description=(__doc__ or "").splitlines()[0],
                       add_arguments=_add_arguments, run=_amain, logger=log)


if __name__ == "__main__":
    sys.exit(main())
