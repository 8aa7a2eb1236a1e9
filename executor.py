#!/usr/bin/env python3
"""executor: claims queued copy orders, sizes, prices, signs and submits them exactly once;
reconciles unresolved orders; manages open ones (reprice, cancel, 36 h market conversion).

`python executor.py` runs until SIGTERM/SIGINT (checked only between safe steps); `--once`
runs one cycle (reconcile + claim/submit everything claimable + manage open orders) and exits.
`EXECUTION_MODE=paper` (the default) never posts an order: fills are simulated against the
live book. On PostgreSQL the executor LISTENs for the watcher's NOTIFY and wakes at once;
`EXECUTOR_POLL_INTERVAL` is the fallback (and the only way on SQLite, where one executor runs).

Two loops: the copies' (claim → price → size → sign → POST → record, nothing else on its path)
and the open-order loop beside it (`order_loop`: housekeeping — expired claims, reconciliation —
then stops, resting copies a later exit waits for, fills and management; sales of kept
remainders after each scheduled pass; resolved markets settled and redeemed on their clock).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import re
import select as select_mod
import socket
import sys
import time
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from copying.claims import Job, Label, claim_jobs
from copying.context import ExecutorContext
from copying.heartbeat import heartbeat_loop
from copying.heartbeats import record_heartbeat
from copying.intake import CONTROL_CHANNEL, NOTIFY_CHANNEL
from copying.ports import ExchangeClient
from copying.reconcile import begin_cycle, reconcile_unresolved
from copying.redeem import redeem_pass
from copying.resolution import check_resolutions
from copying.submit import post_signed, prepare_jobs, read_back
from copying.targets import queue_remainders
from copying.upkeep import give_way, open_order_pass
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
from infra.db import is_sqlite_url, make_engine, make_sessionmaker, session_scope, utcnow
from infra.errors import MissingKeyError

log = logging.getLogger("pmct.executor")
FIRST_BATCH = 8  # the first claim of a wake is small: its copies reach the venue sooner
CLAIM_BATCH = 256  # then batches double up to this (and the next one is signed while one posts)
HOUSEKEEPING_INTERVAL = 1.0  # s: the daemon's heartbeat row is written at most this often


class CycleClock:
    """Decides when the slower passes (open-order management) are due."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last: float | None = None

    def due(self, now: float | None = None) -> bool:
        """True at the first call and then once per `interval` seconds."""
        now = time.monotonic() if now is None else now
        if self.last is None or now - self.last >= self.interval:
            self.last = now
            return True
        return False


async def submit_pass(ctx: ExecutorContext, stop: asyncio.Event) -> Counter[Label]:
    """Claim and submit everything claimable, in doubling batches; returns the labels.

    While one batch's POSTs are in flight the next batch is claimed, priced and signed (a
    follower's balance and reservations are read under its lock, after the previous batch's
    copies were committed SIGNED: nothing is counted twice). Matched answers are read back at
    the end, so that no batch waits for them. SIGTERM is looked at before each batch signs; a
    batch that signed is always posted and recorded.
    """
    seen: list[Job] = []
    deferred: list[Job] = []
    posting: asyncio.Future[None] | None = None

    async def post_and_record(signed: list[Job]) -> None:
        try:
            await post_signed(ctx, signed, deferred=deferred)
        except Exception:  # noqa: BLE001 - SIGNED rows are reconciled by hash
            log.exception("posting a batch of %d copies failed; they will be reconciled", len(signed))

    size = FIRST_BATCH
    while not stop.is_set():
        jobs = claim_jobs(ctx, size)
        if not jobs:
            break
        seen.extend(jobs)
        drained = len(jobs) < size  # nothing more was queued: no empty claim to ask for later
        try:
            signed = await prepare_jobs(ctx, jobs, stop)
        except Exception:
            log.exception("a batch of %d copies failed; they will be reconciled or retried", len(jobs))
            for job in jobs:
                job.label = job.label or Label.ERROR
            continue
        if posting is not None:
            await posting
        posting = asyncio.ensure_future(post_and_record(signed)) if signed else None
        if posting is not None:
            await asyncio.sleep(0)  # let its POSTs leave before the next claim holds the loop
        if drained:
            break  # copies queued since then NOTIFY (or the poll interval) wake the next cycle
        size = min(size * 2, CLAIM_BATCH)
    if posting is not None:
        await posting
    if deferred:
        try:
            await read_back(ctx, deferred)
        except Exception:  # noqa: BLE001 - the open-order loop reads their fills anyway
            log.exception("reading back %d matched copies failed", len(deferred))
    return Counter(j.label or Label.ERROR for j in seen)


async def executor_cycle(ctx: ExecutorContext, stop: asyncio.Event, manage_clock: CycleClock,
                         *, force_manage: bool = False, housekeeping: bool = True,
                         order_work: bool = True, resolution_clock: CycleClock | None = None) -> CycleStats:
    """Reconcile (with `housekeeping`), claim and submit everything claimable in batches, then
    (with `order_work`) one pass of open-order work: stops, fills, management if due, remainder
    sales after it, and resolutions and redemptions when `resolution_clock` is due (always with
    `force_manage`).

    The daemon runs the open-order work in a loop of its own (`order_loop`), so that new copies
    never wait for it; `--once` and the tests run everything here, in that order.
    """
    stats = CycleStats()
    c = stats.counts
    if housekeeping:
        ctx.new_cycle()
        c.update(await housekeeping_pass(ctx))
    ctx.submitting = True  # the open-order loop defers its reads while copies go out
    try:
        submitted = await submit_pass(ctx, stop)
    finally:
        ctx.submitting = False
    c.update({f"copies_{label.value}": n for label, n in submitted.items()})
    shadow = shadow_lane(ctx)
    if shadow is not None and not stop.is_set():
        if housekeeping:
            c.update({f"shadow_{k}": v for k, v in (await housekeeping_pass(shadow)).items()})
        c.update({f"shadow_copies_{label.value}": n for label, n in (await submit_pass(shadow, stop)).items()})
    if order_work and not stop.is_set():
        manage = force_manage or manage_clock.due()
        c.update(await open_order_pass(ctx, stop, manage=manage))
        resolve = force_manage or (resolution_clock is not None and resolution_clock.due())
        c.update(await settlement_pass(ctx, stop, remainders=manage, resolutions=resolve))
        if shadow is not None and not stop.is_set():
            c.update({f"shadow_{k}": v for k, v in (await shadow_order_pass(shadow, stop, manage)).items()})
    return stats


def shadow_lane(ctx: ExecutorContext) -> ExecutorContext | None:
    """The live executor's paper lane, when some follow is pinned to paper (a shadow twin)."""
    if ctx.shadow is None:
        return None
    from copying.modes import has_pinned_paper

    with session_scope(ctx.factory) as s:
        return ctx.shadow if has_pinned_paper(s) else None


async def shadow_order_pass(shadow: ExecutorContext, stop: asyncio.Event, manage: bool) -> Counter[str]:
    """The paper lane's open-order work: its resting paper copies, stops, remainders (the live
    lane settles resolutions for both modes)."""
    counts = await open_order_pass(shadow, stop, manage=manage)
    counts.update(await settlement_pass(shadow, stop, remainders=manage, resolutions=False))
    return counts


async def settlement_pass(ctx: ExecutorContext, stop: asyncio.Event, *, remainders: bool,
                          resolutions: bool) -> dict[str, int]:
    """Kept remainders queued for sale (after a management pass), resolved markets settled and
    their winnings redeemed (on the resolution clock; paper never moves money)."""
    counts: dict[str, int] = {}
    if remainders and not stop.is_set():
        counts["remainders_queued"] = await queue_remainders(ctx)
    if remainders and ctx.settings.auto_pause_trades > 0 and not ctx.pinned_only and not stop.is_set():
        from copying.auto_pause import auto_pause

        with session_scope(ctx.factory) as s:
            counts["follows_auto_paused"] = len(auto_pause(s, ctx.settings.auto_pause_trades, ctx.clock()))
    if resolutions and not stop.is_set():
        counts["markets_resolved"] = len(await check_resolutions(ctx))
        if ctx.settings.redeems_automatically and not ctx.paper:
            for outcome, n in (await redeem_pass(ctx)).items():
                counts[f"redemptions_{outcome.lower()}"] = n
    return counts


async def housekeeping_pass(ctx: ExecutorContext) -> dict[str, int]:
    """Expired claims back to the queue, and unresolved copies reconciled by hash."""
    released, unresolved = begin_cycle(ctx)
    return {"lease_released": released, "reconciled": await reconcile_unresolved(ctx, ids=unresolved)}


async def order_loop(ctx: ExecutorContext, stop: asyncio.Event, manage_clock: CycleClock,
                     control: asyncio.Event, resolution_clock: CycleClock) -> None:
    """The open-order work every ORDER_WAKE_INTERVAL, or at once when an admin command NOTIFYs;
    the housekeeping (expired claims, reconciliation) too, so that the path of new copies holds
    nothing but claiming, signing and posting."""
    while not stop.is_set():
        started = time.monotonic()
        try:
            done = await housekeeping_pass(ctx)
            await give_way()  # each step below is database work that does not yield: copies first
            shadow = shadow_lane(ctx)
            await give_way()
            if shadow is not None:
                done.update({f"shadow_{k}": v for k, v in (await housekeeping_pass(shadow)).items()})
            if any(done.values()):
                log.info("housekeeping: %s", " ".join(f"{k}={v}" for k, v in done.items()))
            manage = manage_clock.due()
            counts = await open_order_pass(ctx, stop, manage=manage)
            record_gauges(ctx, counts)
            await give_way()
            counts.update(await settlement_pass(ctx, stop, remainders=manage,
                                                resolutions=resolution_clock.due()))
            if shadow is not None and not stop.is_set():
                counts.update({f"shadow_{k}": v for k, v in (await shadow_order_pass(shadow, stop, manage)).items()})
            if any(counts.values()):
                log.info("open orders: %s", " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
                for key, n in counts.items():
                    if key.startswith("orders_"):
                        metrics.inc("copies", n, status=key)
        except Exception:
            log.exception("open-order pass failed; tried again at the next wake")
        remaining = max(0.0, ctx.settings.order_wake_interval - (time.monotonic() - started))
        control.clear()
        waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(control.wait())}
        try:
            await asyncio.wait(waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()


def record_gauges(ctx: ExecutorContext, counts: Counter[str]) -> None:
    """The executor's gauges: the global kill switch, and the copies open at the venue (known
    after a management pass)."""
    from copying.killswitch import is_globally_disabled

    with session_scope(ctx.factory) as s:
        metrics.set_gauge("kill_switch", 1.0 if is_globally_disabled(s) else 0.0)
    if "orders_open" in counts:
        metrics.set_gauge("open_copy_orders", float(counts["orders_open"]))


class PgWaker:
    """LISTEN on the watcher's channel and the admin commands' one; sets `work` when copies were
    queued and `control` when an admin command asks the open-order loop to act now."""

    def __init__(self, url: str) -> None:
        import psycopg2

        from infra.db import driver_url

        dsn = driver_url(url).replace("postgresql+psycopg2://", "postgresql://")
        self.conn = psycopg2.connect(dsn)
        self.conn.set_session(autocommit=True)
        with self.conn.cursor() as cur:
            cur.execute(f"LISTEN {NOTIFY_CHANNEL}")
            cur.execute(f"LISTEN {CONTROL_CHANNEL}")
        self.work = asyncio.Event()
        self.control = asyncio.Event()
        self._reading = False

    def start(self) -> None:
        """Watch the connection from the running loop (call once the loop runs)."""
        asyncio.get_running_loop().add_reader(self.conn.fileno(), self._drain)
        self._reading = True
        self._drain()

    def _drain(self) -> None:
        if select_mod.select([self.conn], [], [], 0)[0]:
            self.conn.poll()
        for note in self.conn.notifies:
            (self.control if note.channel == CONTROL_CHANNEL else self.work).set()
        self.conn.notifies.clear()

    async def wait(self, timeout: float, stop: asyncio.Event) -> bool:
        """Sleep up to `timeout` s; True when woken by new copies."""
        self._drain()
        if not self.work.is_set():
            waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.work.wait())}
            try:
                await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
        got = self.work.is_set()
        self.work.clear()
        return got

    def close(self) -> None:
        """Close the LISTEN connection."""
        if self._reading:
            asyncio.get_running_loop().remove_reader(self.conn.fileno())
            self._reading = False
        self.conn.close()


def warn_if_second_sqlite_executor(factory: sessionmaker[Session], name: str, settings: Settings) -> None:
    """SQLite supports one executor: say so when another one seems alive."""
    from models import DaemonHeartbeat

    with session_scope(factory) as s:
        hb = s.get(DaemonHeartbeat, name)
        if hb is None or hb.last_cycle_at is None:
            return
        fresh = utcnow() - hb.last_cycle_at < timedelta(seconds=3 * settings.executor_poll_interval + 5)
        if fresh and (hb.pid != os.getpid() or hb.host != socket.gethostname()):
            log.warning("another executor (pid %s on %s) looks alive; SQLite supports only one "
                        "executor: stop one of them or move to PostgreSQL", hb.pid, hb.host)


def mode_check(factory: sessionmaker[Session], settings: Settings) -> bool:
    """Paper and live never mix (copying.modes): False (after printing why) when a paper executor
    must not start because live copies may still be at the venue; a live executor closes the
    paper copies still open."""
    from copying.modes import close_paper_copies, open_live_copies, refusal_message

    with session_scope(factory) as s:
        if not settings.is_live:
            lines = open_live_copies(s)
            if lines:
                print(refusal_message(lines), file=sys.stderr)
                return False
            return True
        closed = close_paper_copies(s)
    if closed:
        log.warning("going live: %d open paper copy order(s) closed (reason mode_changed), never posted",
                    closed)
    return True


def warm_up() -> None:
    """Take start-up objects out of GC before the first copy.

    `gc.freeze()` moves the objects alive now (modules, caches: hundreds of thousands) to the
    permanent generation, so the collections that batches of ORM objects trigger no longer walk
    them all (measured: a 128-copy flush 30-120 ms → 22-30 ms). Nothing on the copy path imports
    eth_account any more (keys are parsed with coincurve); only redemptions do, lazily.
    """
    gc.collect()
    gc.freeze()


def engine_options(url: str) -> dict[str, Any]:
    """PostgreSQL: send a batch's many-row UPDATEs in pages rather than one round trip per row."""
    if is_sqlite_url(url):
        return {}
    return {"executemany_mode": "values_plus_batch", "executemany_batch_page_size": 200}


def build_context(settings: Settings, factory: sessionmaker[Session], client: ExchangeClient) -> ExecutorContext:
    """Wire the venue for the configured mode (paper unless EXECUTION_MODE=live)."""
    from copying.venues import LiveVenue, PaperVenue
    from crypto import KeyRing

    venue = LiveVenue(client) if settings.is_live else PaperVenue(client, utcnow)
    keyring = KeyRing(settings.encryption_key) if settings.encryption_key else None
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    ctx = ExecutorContext(settings=settings, factory=factory, client=client, venue=venue,
                          keyring=keyring, owner=owner, post_concurrency=settings.executor_post_concurrency)
    if settings.is_live:  # shadow twins (follows pinned to paper) are paper-filled, never posted
        ctx.shadow = ExecutorContext(settings=settings, factory=factory, client=client,
                                     venue=PaperVenue(client, utcnow), keyring=keyring,
                                     owner=f"{owner}:paper", pinned_only=True,
                                     post_concurrency=settings.executor_post_concurrency)
    return ctx


async def _amain(args: argparse.Namespace, settings: Settings) -> int:
    from polymarket_client import PolymarketClient

    require_migrated(settings.database_url)
    if not settings.encryption_key:
        raise MissingKeyError("ENCRYPTION_KEY is not set; the executor cannot sign")
    engine = make_engine(settings.database_url, **engine_options(settings.database_url))
    factory = make_sessionmaker(engine)
    if not mode_check(factory, settings):
        engine.dispose()
        return 2
    client = PolymarketClient.from_settings(settings)
    ctx = build_context(settings, factory, client)
    name = daemon_name(args)
    if is_sqlite_url(settings.database_url):
        warn_if_second_sqlite_executor(factory, name, settings)
    waker = None if is_sqlite_url(settings.database_url) else PgWaker(settings.database_url)
    if waker is not None:
        waker.start()
    control = waker.control if waker is not None else asyncio.Event()
    tasks: list[asyncio.Future[None]] = []
    stop = asyncio.Event()
    install_signal_handlers(stop)
    manage_clock = CycleClock(settings.order_manage_interval)
    heartbeat_clock = CycleClock(HOUSEKEEPING_INTERVAL)
    resolution_clock = CycleClock(settings.resolution_check_interval)
    started = utcnow()
    metrics_server = metrics.start_server(settings.metrics_port)

    def on_cycle(st: CycleStats) -> None:
        if args.once or heartbeat_clock.due():  # one write a second at most, off the copies' path
            record_heartbeat(factory, name, st, started)
        for key, n in st.counts.items():
            if key.startswith("copies_"):
                metrics.inc("copies", n, status=key.removeprefix("copies_"))
        metrics.observe("cycle_seconds", st.elapsed_ms / 1000, daemon="executor")
        metrics.set_gauge("last_cycle_timestamp_seconds", time.time(), daemon="executor")
        metrics.sync_total("rate_limit_waits", client.rate_limit_waits)
    log.info("executor starting in %s mode: %s", settings.execution_mode, settings.redacted())

    async def startup(ev: asyncio.Event) -> None:
        warm_up()
        n = await reconcile_unresolved(ctx, startup=True)
        log.info("start-up reconciliation looked at %d unresolved copy order(s)", n)
        if not args.once:  # the open-order work runs beside the copies, never in their way
            tasks.append(asyncio.ensure_future(order_loop(ctx, ev, manage_clock, control,
                                                          resolution_clock)))
            if settings.clob_heartbeat and settings.is_live:
                tasks.append(asyncio.ensure_future(heartbeat_loop(ctx, ev)))

    async def cycle(ev: asyncio.Event) -> CycleStats:
        return await executor_cycle(ctx, ev, manage_clock, force_manage=args.once,
                                    housekeeping=args.once, order_work=args.once)

    try:
        return await run_loop(
            name, cycle, interval=settings.executor_poll_interval, stop=stop,
            notifier=SystemdNotifier(), startup=startup, once=args.once,
            wait_for_work=waker.wait if waker else None, on_cycle=on_cycle,
        )
    finally:
        stop.set()
        for task in tasks:
            try:
                await asyncio.wait_for(task, timeout=30)
            except Exception:  # noqa: BLE001 - shutting down: log and go on
                log.exception("a background task did not end cleanly")
        if metrics_server is not None:
            metrics_server.shutdown()
        if waker is not None:
            waker.close()
        await client.aclose()
        engine.dispose()


def _instance(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", text):
        raise argparse.ArgumentTypeError("letters, digits, '-' or '_' (at most 32)")
    return text


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true",
                        help="one cycle (reconcile + submit + manage open orders), then exit")
    parser.add_argument("--instance", type=_instance, default=None,
                        help="this executor's name among several (pmct-executor@INSTANCE): its "
                             "heartbeat row is executor-INSTANCE")


def daemon_name(args: argparse.Namespace) -> str:
    """The heartbeat row's name: `executor`, or `executor-<instance>` for one of several."""
    return f"executor-{args.instance}" if args.instance else "executor"


def main(argv: list[str] | None = None) -> int:
    """Entry point (`infra.daemon.daemon_main`): exit 2 on bad flags or settings, 1 on failure."""
    return daemon_main(argv, prog="executor.py", description=(__doc__ or "").splitlines()[0],
                       add_arguments=_add_arguments, run=_amain, logger=log)


if __name__ == "__main__":
    sys.exit(main())
