#!/usr/bin/env python3
"""executor: claims queued copy orders, sizes, prices, signs and submits them exactly once;
reconciles unresolved orders; manages open ones (reprice, cancel, 36 h market conversion).

`python executor.py` runs until SIGTERM/SIGINT (checked only between safe steps); `--once`
runs one cycle (reconcile + claim/submit everything claimable + manage open orders) and exits.
`EXECUTION_MODE=paper` (the default) never posts an order: fills are simulated against the
live book. On PostgreSQL the executor LISTENs for the watcher's NOTIFY and wakes at once;
`EXECUTOR_POLL_INTERVAL` is the fallback (and the only way on SQLite, where one executor runs).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import select as select_mod
import socket
import sys
import time
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from copying.claims import Label, claim_jobs
from copying.context import ExecutorContext
from copying.heartbeats import record_heartbeat
from copying.intake import NOTIFY_CHANNEL
from copying.manage import cancel_superseded, manage_open_orders
from copying.ports import ExchangeClient
from copying.reconcile import begin_cycle, reconcile_unresolved
from copying.redeem import redeem_pass
from copying.resolution import check_resolutions
from copying.submit import submit_jobs
from copying.targets import queue_remainders
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
FIRST_BATCH = 8  # the first claim of a cycle is small: its copies reach the venue sooner
CLAIM_BATCH = 256  # then batches double up to this
HOUSEKEEPING_INTERVAL = 1.0  # s: expired leases and reconciliation at most this often (a daemon
# woken by NOTIFY for every new fill would otherwise redo them before every copy)


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


async def executor_cycle(ctx: ExecutorContext, stop: asyncio.Event, manage_clock: CycleClock,
                         *, force_manage: bool = False, housekeeping: bool = True,
                         resolution_clock: CycleClock | None = None) -> CycleStats:
    """Reconcile (with `housekeeping`), then claim and submit everything claimable in batches,
    then manage open orders if due (and queue remainder sales), then check held markets for
    resolution and redeem (when `resolution_clock` is due, or with `force_manage`).

    Housekeeping also cancels resting copies a later exit of their follow and token waits for
    (`copying.ordering`), so the exit is sized on what they got within a cycle or two.

    Balances and decrypted credentials are read again at every housekeeping cycle and after
    every pass that records fills outside the batches (reconciliation, management); the cycles
    a NOTIFY wakes in between reuse them (the balance endpoint allows 20 reads/s).
    """
    stats = CycleStats()
    c = stats.counts
    if housekeeping:
        ctx.new_cycle()
        c["lease_released"], unresolved = begin_cycle(ctx)
        c["reconciled"] = await reconcile_unresolved(ctx, ids=unresolved)
        c["superseded"] = await cancel_superseded(ctx)
    submitted: Counter[Label] = Counter()
    size = FIRST_BATCH
    while not stop.is_set():  # SIGTERM is looked at between batches and before a batch signs
        jobs = claim_jobs(ctx, size)
        if not jobs:
            break
        try:
            labels = await submit_jobs(ctx, jobs, stop)
        except Exception:
            log.exception("a batch of %d copies failed; they will be reconciled or retried", len(jobs))
            labels = {job.id: Label.ERROR for job in jobs}
        submitted.update(labels.values())
        size = min(size * 2, CLAIM_BATCH)
    c.update({f"copies_{label.value}": n for label, n in submitted.items()})
    if not stop.is_set() and (force_manage or manage_clock.due()):
        for what, n in (await manage_open_orders(ctx)).items():
            c[f"orders_{what.value}"] = n
        c["remainders_queued"] = await queue_remainders(ctx)
        ctx.new_cycle()  # fills recorded by the manager are not in the balances read before
    if not stop.is_set() and (force_manage or (resolution_clock is not None and resolution_clock.due())):
        c["markets_resolved"] = len(await check_resolutions(ctx))
        if ctx.settings.redeems_automatically and not ctx.paper:  # paper never moves money
            for outcome, n in (await redeem_pass(ctx)).items():
                c[f"redemptions_{outcome.lower()}"] = n
    return stats


class PgWaker:
    """LISTEN on the watcher's channel; `wait` returns early when a NOTIFY arrives."""

    def __init__(self, url: str) -> None:
        import psycopg2

        from infra.db import driver_url

        dsn = driver_url(url).replace("postgresql+psycopg2://", "postgresql://")
        self.conn = psycopg2.connect(dsn)
        self.conn.set_session(autocommit=True)
        with self.conn.cursor() as cur:
            cur.execute(f"LISTEN {NOTIFY_CHANNEL}")

    async def wait(self, timeout: float, stop: asyncio.Event) -> bool:
        """Sleep up to `timeout` s; True when woken by a NOTIFY."""
        loop = asyncio.get_running_loop()
        woke = asyncio.Event()
        fd = self.conn.fileno()
        loop.add_reader(fd, woke.set)
        stopper = asyncio.ensure_future(stop.wait())
        waiter = asyncio.ensure_future(woke.wait())
        try:
            self._drain()
            if self.conn.notifies:
                self.conn.notifies.clear()
                return True
            await asyncio.wait({stopper, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            self._drain()
            got = bool(self.conn.notifies)
            self.conn.notifies.clear()
            return got
        finally:
            loop.remove_reader(fd)
            for t in (stopper, waiter):
                t.cancel()

    def _drain(self) -> None:
        if select_mod.select([self.conn], [], [], 0)[0]:
            self.conn.poll()

    def close(self) -> None:
        """Close the LISTEN connection."""
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


def warm_up() -> None:
    """Load what the first copy would otherwise wait for, then take start-up objects out of GC.

    `crypto.address_of_key` imports eth_account lazily; that first import takes about half a
    second, which would otherwise land on the first copy after a start. `gc.freeze()` moves the
    objects alive now (modules, caches: hundreds of thousands) to the permanent generation, so
    the collections that batches of ORM objects trigger no longer walk them all (measured: a
    128-copy flush 30-120 ms → 22-30 ms).
    """
    import eth_account  # noqa: F401

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
    return ExecutorContext(settings=settings, factory=factory, client=client, venue=venue,
                           keyring=keyring, owner=owner)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true",
                        help="one cycle (reconcile + submit + manage open orders), then exit")


async def _amain(args: argparse.Namespace, settings: Settings) -> int:
    from polymarket_client import PolymarketClient

    require_migrated(settings.database_url)
    if not settings.encryption_key:
        raise MissingKeyError("ENCRYPTION_KEY is not set; the executor cannot sign")
    engine = make_engine(settings.database_url, **engine_options(settings.database_url))
    factory = make_sessionmaker(engine)
    client = PolymarketClient.from_settings(settings)
    ctx = build_context(settings, factory, client)
    name = "executor"
    if is_sqlite_url(settings.database_url):
        warn_if_second_sqlite_executor(factory, name, settings)
    waker = None if is_sqlite_url(settings.database_url) else PgWaker(settings.database_url)
    stop = asyncio.Event()
    install_signal_handlers(stop)
    manage_clock = CycleClock(settings.order_manage_interval)
    resolution_clock = CycleClock(settings.resolution_check_interval)
    housekeeping_clock = CycleClock(HOUSEKEEPING_INTERVAL)
    started = utcnow()
    metrics_server = metrics.start_server(settings.metrics_port)

    def on_cycle(st: CycleStats) -> None:
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

    async def cycle(ev: asyncio.Event) -> CycleStats:
        return await executor_cycle(ctx, ev, manage_clock, force_manage=args.once,
                                    housekeeping=housekeeping_clock.due(),
                                    resolution_clock=resolution_clock)

    try:
        return await run_loop(
            name, cycle, interval=settings.executor_poll_interval, stop=stop,
            notifier=SystemdNotifier(), startup=startup, once=args.once,
            wait_for_work=waker.wait if waker else None, on_cycle=on_cycle,
        )
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
        if waker is not None:
            waker.close()
        await client.aclose()
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """Entry point (`infra.daemon.daemon_main`): exit 2 on bad flags or settings, 1 on failure."""
    return daemon_main(argv, prog="executor.py", description=(__doc__ or "").splitlines()[0],
                       add_arguments=_add_arguments, run=_amain, logger=log)


if __name__ == "__main__":
    sys.exit(main())
