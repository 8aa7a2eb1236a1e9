"""Watcher end to end against the local simulator, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from crypto import KeyRing
from infra.config import Settings
from infra.db import session_scope
from models import CopyOrder, CopyStatus, FollowStatus, Market, Trader, TraderFill
from ops.accounts import add_follow, add_follower
from sim import Simulator
from tests.support.dbfixtures import Database
from tests.support.paths import ROOT
from tests.support.simfixtures import DEMO_SCENARIO, HARDHAT_KEYS, TRADER_QUIET
from watcher import Shard, WatcherContext, acquire_lease, release_lease, watch_cycle, watcher_client
from wire.types import SignatureType

pytestmark = pytest.mark.e2e


def quiet_scenario() -> dict[str, Any]:
    """The demo markets and traders, with the history fills but no scheduled future fills."""
    data = json.loads(DEMO_SCENARIO.read_text())
    data["fills"] = [f for f in data["fills"] if f["at"] < 0]
    data["activities"], data["combos"] = [], []
    return data


class World:
    """A simulator, a database with two active follows (and one paused) of TRADER_QUIET."""

    def __init__(self, db: Database, sim: Simulator, fernet_key: str, follow_start: datetime) -> None:
        self.db, self.sim = db, sim
        self.sleeps: list[float] = []
        ring = KeyRing(fernet_key)
        with session_scope(db.factory) as s:
            for i in (0, 1, 2):
                f = add_follower(s, ring, name=f"F{i}", email=f"f{i}@x.io", private_key=HARDHAT_KEYS[i],
                                 signature_type=SignatureType.EOA, funder=None, tier=__import__("models").Tier.PRO)
                fo = add_follow(s, follower_wallet=f.funder_address, trader_wallet=TRADER_QUIET,
                                copy_pct=Decimal(10), max_usd_per_trade=Decimal(50), now=follow_start)
                if i == 2:
                    fo.status = FollowStatus.PAUSED
        self.settings = Settings(database_url=db.url, data_api_url=sim.data_url,
                                 gamma_api_url=sim.gamma_url, clob_api_url=sim.clob_url,
                                 max_copy_delay=120, watcher_overlap_seconds=120)

        async def record_sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        self.record_sleep = record_sleep

    def cycle(self) -> dict[str, int]:
        """One watcher cycle with a fresh client (sleeps recorded, not slept)."""
        async def run() -> dict[str, int]:
            client = watcher_client(self.settings, sleep=self.record_sleep)
            try:
                ctx = WatcherContext(settings=self.settings, factory=self.db.factory, client=client,
                                     owner="test-watcher")
                return (await watch_cycle(ctx, asyncio.Event())).counts
            finally:
                release_lease(self.db.factory, Shard(), "test-watcher")
                await client.aclose()
        return asyncio.run(run())

    def count(self, model: Any, *where: Any) -> int:
        with self.db.session() as s:
            return s.scalar(select(func.count()).select_from(model).where(*where)) or 0

    def statuses(self) -> list[tuple[str, str | None]]:
        with self.db.session() as s:
            return sorted((c.status.value, c.reason) for c in s.scalars(select(CopyOrder)))


@pytest.fixture
def world(database: Database, simulator_factory: Callable[..., Simulator], fernet_key: str) -> World:
    """Follows that started now."""
    sim = simulator_factory(quiet_scenario())
    return World(database, sim, fernet_key, datetime.now(UTC))


def test_history_before_the_follow_is_not_copied(world: World) -> None:
    """The first poll only seeds the cursor: 2 h-old history is neither fetched nor copied."""
    counts = world.cycle()
    assert counts["traders"] == 1 and counts["errors"] == 0
    assert world.count(CopyOrder) == 0 and world.count(TraderFill) == 0
    with world.db.session() as s:
        assert s.scalar(select(Trader.cursor_ts)) is not None


def test_a_new_fill_queues_one_copy_per_active_follow(world: World) -> None:
    """One new trader fill → exactly one QUEUED copy per active follow (the paused one gets none)."""
    world.cycle()
    world.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
    counts = world.cycle()
    assert counts["new_fills"] == 1 and counts["queued"] == 2
    assert world.statuses() == [("QUEUED", None), ("QUEUED", None)]
    with world.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Market)) == 1  # market info cached


def test_replays_overlaps_and_shared_transactions_store_each_fill_once(world: World) -> None:
    """Three fills in one tx and two identical rows in one tx: right counts after repeated polls
    (the three SELLs are exits: the paused follow mirrors them too)."""
    world.cycle()
    world.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "SELL", "60", "0.64", role="maker",
                              parts=["10", "20", "30"])
    world.sim.add_trader_fill(TRADER_QUIET, "btc", "Yes", "BUY", "50", "0.065", role="maker",
                              parts=["25", "25"])
    for _ in range(3):  # each poll re-reads the overlap window
        world.cycle()
    assert world.count(TraderFill) == 5
    assert world.count(CopyOrder) == 13
    assert world.count(CopyOrder, CopyOrder.status == CopyStatus.QUEUED) == 13
    assert world.count(CopyOrder, CopyOrder.side == "BUY") == 4  # entries: active follows only


def test_429_with_retry_after_is_honoured_and_the_fill_arrives(world: World) -> None:
    """Two 429s with Retry-After: 3 on /v2/activity: the client waits 3 s (recorded) and gets the fill."""
    world.cycle()
    world.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
    world.sim.inject_fault("GET", "/v2/activity", "429", count=2, service="data", retry_after=3)
    counts = world.cycle()
    assert counts["errors"] == 0 and counts["new_fills"] == 1
    assert world.sleeps.count(3.0) >= 2
    assert world.count(CopyOrder, CopyOrder.status == CopyStatus.QUEUED) == 2


def test_dropped_connections_and_5xx_still_deliver_the_fill_once(world: World) -> None:
    """Connections closed without an answer, then a 503: the same cycle still stores the fill once."""
    world.cycle()
    world.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
    world.sim.inject_fault("GET", "/v2/activity", "drop", count=2, service="data")
    world.sim.inject_fault("GET", "/v2/activity", "5xx", count=1, service="data", status=503)
    counts = world.cycle()
    assert counts["errors"] == 0 and counts["new_fills"] == 1
    assert len(world.sleeps) == 3  # one backoff per failed attempt (recorded, not slept)
    world.cycle()
    assert world.count(TraderFill) == 1
    assert world.count(CopyOrder, CopyOrder.status == CopyStatus.QUEUED) == 2


def test_re_reading_stored_fills_needs_no_transaction_until_restart(world: World,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Within one process, a poll that only re-reads stored fills (overlap window) skips the
    database; a new fill, or a fresh process with an empty memory, goes through store_fills."""
    import watcher

    calls: list[int] = []
    real_store = watcher.store_fills

    def counting_store(*args: Any, **kwargs: Any) -> Any:
        result = real_store(*args, **kwargs)
        calls.append(result.new_fills)
        return result

    monkeypatch.setattr(watcher, "store_fills", counting_store)

    async def cycles(n: int, between: Callable[[int], None] = lambda i: None) -> None:
        client = watcher_client(world.settings, sleep=world.record_sleep)
        ctx = WatcherContext(settings=world.settings, factory=world.db.factory, client=client, owner="t")
        try:
            for i in range(n):
                between(i)
                await watch_cycle(ctx, asyncio.Event())
        finally:
            release_lease(world.db.factory, Shard(), "t")
            await client.aclose()

    def fills(i: int) -> None:
        if i in (1, 3):
            world.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")

    asyncio.run(cycles(5, fills))  # seed, fill, re-read, another fill, re-read both
    assert calls == [0, 1, 1]  # the seeding poll, then one transaction per new fill only
    with world.db.session() as s:
        polled = s.scalar(select(Trader.last_polled_at))
    assert polled is not None
    asyncio.run(cycles(1))  # a restarted watcher checks the window against the database once
    assert calls == [0, 1, 1, 0]
    assert world.count(TraderFill) == 2 and world.count(CopyOrder) == 4
    with world.db.session() as s:
        assert (s.scalar(select(Trader.last_polled_at)) or polled) > polled


def test_a_stale_fill_is_stored_but_never_queued(database: Database, simulator_factory: Callable[..., Simulator],
                                                 fernet_key: str) -> None:
    """A fill first seen 5 minutes after it happened (MAX_COPY_DELAY 120 s) is SKIPPED(stale)."""
    sim = simulator_factory(quiet_scenario())
    w = World(database, sim, fernet_key, datetime.now(UTC) - timedelta(hours=1))
    sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65", at=time.time() - 300)
    w.cycle()
    assert w.count(TraderFill) == 1
    assert w.statuses() == [("SKIPPED", "stale"), ("SKIPPED", "stale")]


def test_a_fill_just_before_the_follow_started_is_skipped(database: Database,
                                                          simulator_factory: Callable[..., Simulator],
                                                          fernet_key: str) -> None:
    """A fill inside the overlap window but before the follow started is SKIPPED(before_follow)."""
    sim = simulator_factory(quiet_scenario())
    sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65", at=time.time() - 30)
    w = World(database, sim, fernet_key, datetime.now(UTC))
    w.cycle()
    assert w.statuses() == [("SKIPPED", "before_follow"), ("SKIPPED", "before_follow")]


def test_shard_lease_is_exclusive(world: World) -> None:
    """A live lease held by another watcher stops this one from polling its shard."""
    now = datetime.now(UTC)
    assert acquire_lease(world.db.factory, Shard(0, 1), "other", now, timedelta(minutes=5))
    counts = world.cycle()  # its release only removes its own lease
    assert counts.get("lease_held_elsewhere") == 1 and "traders" not in counts
    assert not acquire_lease(world.db.factory, Shard(0, 1), "third", now, timedelta(minutes=5))
    assert acquire_lease(world.db.factory, Shard(0, 1), "third", now + timedelta(minutes=6), timedelta(minutes=5))


def test_shards_split_traders_stably() -> None:
    """Every wallet belongs to exactly one of N shards, always the same one."""
    wallets = [f"0x{i:040x}" for i in range(200)]
    for n in (2, 3, 7):
        owners = [[s for s in range(n) if Shard(s, n).owns(w)] for w in wallets]
        assert all(len(o) == 1 for o in owners)
        assert owners == [[s for s in range(n) if Shard(s, n).owns(w.upper().replace("0X", "0x"))] for w in wallets]
        assert len({o[0] for o in owners}) == n


def test_sigterm_mid_cycle_exits_0_and_loses_nothing(world: World) -> None:
    """SIGTERM while a poll hangs: exit 0; the next --once run stores the fill exactly once."""
    world.cycle()
    world.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
    world.sim.inject_fault("GET", "/v2/activity", "delay", count=1, service="data", delay=4.0)
    env = {**os.environ, "DATABASE_URL": world.db.url, "PMCT_ENV_FILE": "/nonexistent/.env",
           "POLYMARKET_DATA_API_URL": world.sim.data_url, "POLYMARKET_GAMMA_API_URL": world.sim.gamma_url,
           "POLYMARKET_CLOB_API_URL": world.sim.clob_url, "WATCHER_POLL_INTERVAL": "1",
           "POLYGON_RPC": world.sim.rpc_url,
           "LOG_LEVEL": "INFO"}
    before = len(world.sim.requests(service="data", path="/v2/activity"))
    proc = subprocess.Popen([sys.executable, "watcher.py"], cwd=ROOT, env=env,  # noqa: S603
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while (time.monotonic() < deadline
           and len(world.sim.requests(service="data", path="/v2/activity")) == before):
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped" in err
    done = subprocess.run([sys.executable, "watcher.py", "--once"], cwd=ROOT, env=env,  # noqa: S603
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert world.count(TraderFill) == 1
    assert world.count(CopyOrder, CopyOrder.status == CopyStatus.QUEUED) == 2
