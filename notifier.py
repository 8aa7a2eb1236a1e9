#!/usr/bin/env python3
"""notifier: delivers the outbox to Telegram and Discord, answers Telegram commands, and raises
the alerts nobody else can (a stale daemon, the daily P&L digest).

`python notifier.py` runs until SIGTERM/SIGINT; `--once` handles pending Telegram commands,
routes and sends everything due, and exits. Each cycle (NOTIFY_POLL_INTERVAL, sooner when a
command arrives): route new notifications → re-queue sends a crash interrupted → stale-daemon
check → daily digests when due → send (rate limited per chat / webhook) → prune old rows.
Commands are long-polled (getUpdates) by a task beside the cycle. Run one notifier per bot:
Telegram allows one getUpdates poller at a time. Exactly-once rules: notify/sender.py.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
import time
import uuid
from decimal import Decimal
from typing import Any

from copying.heartbeats import record_heartbeat
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

log = logging.getLogger("pmct.notifier")
NAME = "notifier"
HEARTBEAT_CHECK_INTERVAL = 30.0
DIGEST_CHECK_INTERVAL = 60.0
PRUNE_INTERVAL = 3600.0


def _env_crash_hook(point: str) -> None:
    if os.environ.get("PMCT_CRASH_AT") == f"notify_{point}":
        log.error("PMCT_CRASH_AT=notify_%s: simulating a crash", point)
        os._exit(137)


class Every:
    """True at the first call and then once per `interval` seconds."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last: float | None = None

    def due(self) -> bool:
        """Whether the slower job should run now."""
        now = time.monotonic()
        if self.last is None or now - self.last >= self.interval:
            self.last = now
            return True
        return False


def mid_fetcher(client: Any) -> Any:
    """An async `tokens → {token: mid or None}` over the CLOB (a failure is None: 'n/a')."""
    async def fetch(tokens: set[str]) -> dict[str, Decimal | None]:
        async def one(token: str) -> tuple[str, Decimal | None]:
            try:
                return token, await client.get_midpoint(token)
            except Exception:  # noqa: BLE001 - a missing price is shown as n/a
                return token, None
        return dict(await asyncio.gather(*(one(t) for t in sorted(tokens))))
    return fetch


async def notifier_cycle(ctx: Any, clocks: dict[str, Every], fetch: Any, intervals: Any) -> CycleStats:
    """One pass: route, recover, alerts, digests, send, prune."""
    from sqlalchemy import select

    from notify import alerts, sender
    from notify.digest import due_day, open_tokens

    stats = CycleStats()
    c = stats.counts
    routed = delivered = 0
    while True:
        n, d = sender.route(ctx)
        routed, delivered = routed + n, delivered + d
        if n < sender.ROUTE_BATCH:
            break
    c["resent"], c["gave_up"] = sender.recover_interrupted(ctx)
    if clocks["heartbeats"].due():
        with session_scope(ctx.factory) as s:
            c["stale"], c["recovered"] = alerts.check_heartbeats(s, ctx.clock(), intervals, NAME)
    if clocks["digest"].due():
        day = due_day(ctx.clock(), ctx.settings.notify_digest_hour)
        with session_scope(ctx.factory) as s:
            todo = [f.id for f in alerts.digest_followers(s) if not alerts.digest_done(s, f.id, day)]
            tokens = open_tokens(s, todo)
        prices = (await fetch(tokens)).get if tokens and fetch is not None else None
        made = 0
        for fid in todo:
            with session_scope(ctx.factory) as s:
                from models import Follower

                follower = s.scalar(select(Follower).where(Follower.id == fid))
                if follower is not None:
                    made += alerts.enqueue_digest(s, follower, day, prices, ctx.clock())
        c["digests"] = made
    if c.get("stale") or c.get("recovered") or c.get("digests"):
        n, d = sender.route(ctx)
        routed, delivered = routed + n, delivered + d
    c["routed"], c["deliveries"] = routed, delivered
    for label, n in (await sender.send_due(ctx)).items():
        c[f"send_{label}"] = n
    if clocks["prune"].due():
        c["pruned"] = sender.prune(ctx)
    return stats


async def _amain(args: argparse.Namespace, settings: Settings) -> int:
    from crypto import KeyRing
    from notify.channels import DiscordApi, Limits, TelegramApi
    from notify.commands import CommandBot
    from notify.sender import SenderContext
    from ops.views import Intervals
    from polymarket_client import PolymarketClient

    require_migrated(settings.database_url)
    engine = make_engine(settings.database_url)
    factory = make_sessionmaker(engine)
    limits = Limits()
    telegram = (TelegramApi(settings.telegram_api_url, settings.telegram_bot_token)
                if settings.telegram_bot_token else None)
    discord = DiscordApi(settings.discord_api_url)
    keyring = KeyRing(settings.encryption_key) if settings.encryption_key else None
    client = PolymarketClient.from_settings(settings)
    fetch = mid_fetcher(client)
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    ctx = SenderContext(settings=settings, factory=factory, owner=owner, telegram=telegram,
                        discord=discord, keyring=keyring, limits=limits,
                        crash_hook=_env_crash_hook)
    intervals = Intervals(settings.watcher_poll_interval, settings.executor_poll_interval)
    wake = asyncio.Event()
    bot = (CommandBot(factory, telegram, intervals, limits, fetch_mids=fetch, wake=wake.set)
           if telegram is not None else None)
    clocks = {"heartbeats": Every(HEARTBEAT_CHECK_INTERVAL), "digest": Every(DIGEST_CHECK_INTERVAL),
              "prune": Every(PRUNE_INTERVAL)}
    stop = asyncio.Event()
    install_signal_handlers(stop)
    started = utcnow()
    poller: asyncio.Task[None] | None = None
    if telegram is None:
        log.warning("TELEGRAM_BOT_TOKEN is not set: no Telegram messages or commands")
    log.info("notifier starting: %s", settings.redacted())

    async def startup(ev: asyncio.Event) -> None:
        nonlocal poller
        if bot is not None and args.once:
            from notify.channels import ChatApiError

            try:
                await bot.poll_once(0)
            except ChatApiError as exc:
                log.warning("pending telegram commands not read: %s", exc)
        elif bot is not None:
            poller = asyncio.create_task(bot.run(ev, settings.telegram_poll_timeout))

    async def cycle(ev: asyncio.Event) -> CycleStats:
        wake.clear()
        return await notifier_cycle(ctx, clocks, fetch, intervals)

    async def wait_for_work(timeout: float, ev: asyncio.Event) -> None:
        waiters = {asyncio.ensure_future(ev.wait()), asyncio.ensure_future(wake.wait())}
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    def on_cycle(st: CycleStats) -> None:
        record_heartbeat(factory, NAME, st, started)

    try:
        return await run_loop(NAME, cycle, interval=settings.notify_poll_interval, stop=stop,
                              notifier=SystemdNotifier(), startup=startup, once=args.once,
                              wait_for_work=wait_for_work, on_cycle=on_cycle)
    finally:
        if poller is not None:
            poller.cancel()
            try:
                await poller
            except asyncio.CancelledError:
                pass
        if telegram is not None:
            await telegram.aclose()
        await discord.aclose()
        await client.aclose()
        engine.dispose()


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true",
                        help="handle pending commands, send everything due, then exit")


def main(argv: list[str] | None = None) -> int:
    """Entry point (`infra.daemon.daemon_main`): exit 2 on bad flags or settings, 1 on failure."""
    return daemon_main(argv, prog="notifier.py", description=(__doc__ or "").splitlines()[0],
                       add_arguments=_add_arguments, run=_amain, logger=log)


if __name__ == "__main__":
    sys.exit(main())
