"""Watcher end to end against the local simulator (the shared rig), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from models import CopyOrder, CopyStatus, Market, Trader, TraderFill
from tests.support.dbfixtures import Database
from tests.support.rig import Rig
from tests.support.simfixtures import TRADER_QUIET
from watcher import Shard, acquire_lease, watch_cycle

pytestmark = pytest.mark.e2e


@pytest.fixture
def world(database: Database, make_rig: Callable[..., Rig]) -> Rig:
    """Two active follows of TRADER_QUIET and one paused, started now."""
    rig = make_rig(database)
    rig.add_quiet_followers(datetime.now(UTC))
    return rig


def test_history_before_the_follow_is_not_copied(world: Rig) -> None:
    """The first poll only seeds the cursor: 2 h-old history is neither fetched nor copied."""
    counts = world.watch()
    assert counts["traders"] == 1 and counts["errors"] == 0
    assert world.count(CopyOrder) == 0 and world.count(TraderFill) == 0
    with world.db.session() as s:
        assert s.scalar(select(Trader.cursor_ts)) is not None


def test_a_new_fill_queues_one_copy_per_active_follow(world: Rig) -> None:
    """One new trader fill → exactly one QUEUED copy per active follow (the paused one gets none)."""
    world.watch()
    world.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
    counts = world.watch()
    assert counts["new_fills"] == 1 and counts["queued"] == 2
    assert world.statuses() == [("QUEUED", None), ("QUEUED", None)]
    with world.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Market)) == 1  # market info cached


def test_replays_overlaps_and_shared_transactions_store_each_fill_once(world: Rig) -> None:
    """Three fills in one tx and two identical rows in one tx: right counts after repeated polls
    (the three SELLs are exits: the paused follow mirrors them too)."""
    world.watch()
    world.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "SELL", "60", "0.64", role="maker",
                              parts=["10", "20", "30"])
    world.sim.add_trader_fill(TRADER_QUIET, "btc", "Yes", "BUY", "50", "0.065", role="maker",
                              parts=["25", "25"])
    for _ in range(3):  # each poll re-reads the overlap window
        world.watch()
    assert world.count(TraderFill) == 5
    assert world.count(CopyOrder) == 13
    assert world.count(CopyOrder, CopyOrder.status == CopyStatus.QUEUED) == 13
    assert world.count(CopyOrder, CopyOrder.side == "BUY") == 4  # entries: active follows only


def test_429_with_retry_after_is_honoured_and_the_fill_arrives(world: Rig) -> None:
    """Two 429s with Retry-After: 3 on /v2/activity: the client waits 3 s (recorded) and gets the fill."""
    world.watch()
    world.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
    world.sim.inject_fault("GET", "/v2/activity", "429", count=2, service="data", retry_after=3)
    counts = world.watch()
    assert counts["errors"] == 0 and counts["new_fills"] == 1
    assert world.sleeps.count(3.0) >= 2
    assert world.count(CopyOrder, CopyOrder.status == CopyStatus.QUEUED) == 2


def test_dropped_connections_and_5xx_still_deliver_the_fill_once(world: Rig) -> None:
    """Connections closed without an answer, then a 503: the same cycle still stores the fill once."""
    world.watch()
    world.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
    world.sim.inject_fault("GET", "/v2/activity", "drop", count=2, service="data")
    world.sim.inject_fault("GET", "/v2/activity", "5xx", count=1, service="data", status=503)
    counts = world.watch()
    assert counts["errors"] == 0 and counts["new_fills"] == 1
    assert len(world.sleeps) == 3  # one backoff per failed attempt (recorded, not slept)
    world.watch()
    assert world.count(TraderFill) == 1
    assert world.count(CopyOrder, CopyOrder.status == CopyStatus.QUEUED) == 2


def test_re_reading_stored_fills_needs_no_transaction_until_restart(world: Rig,
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
        async with world.watcher("t") as ctx:
            for i in range(n):
                between(i)
                await watch_cycle(ctx, asyncio.Event())

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


def test_a_stale_fill_is_stored_but_never_queued(database: Database, make_rig: Callable[..., Rig]) -> None:
    """A fill first seen 5 minutes after it happened (MAX_COPY_DELAY 120 s) is SKIPPED(stale)."""
    w = make_rig(database)
    w.add_quiet_followers(datetime.now(UTC) - timedelta(hours=1))
    w.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65", at=time.time() - 300)
    w.watch()
    assert w.count(TraderFill) == 1
    assert w.statuses() == [("SKIPPED", "stale"), ("SKIPPED", "stale")]


def test_a_fill_just_before_the_follow_started_is_skipped(database: Database,
                                                          make_rig: Callable[..., Rig]) -> None:
    """A fill inside the overlap window but before the follow started is SKIPPED(before_follow)."""
    w = make_rig(database)
    w.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65", at=time.time() - 30)
    w.add_quiet_followers(datetime.now(UTC))
    w.watch()
    assert w.statuses() == [("SKIPPED", "before_follow"), ("SKIPPED", "before_follow")]


def test_shard_lease_is_exclusive(world: Rig) -> None:
    """A live lease held by another watcher stops this one from polling its shard."""
    now = datetime.now(UTC)
    assert acquire_lease(world.db.factory, Shard(0, 1), "other", now, timedelta(minutes=5))
    counts = world.watch()  # its release only removes its own lease
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


def test_sigterm_mid_cycle_exits_0_and_loses_nothing(world: Rig) -> None:
    """SIGTERM while a poll hangs: exit 0; the next --once run stores the fill exactly once.

    Both sources run, as in production: the chain's first run starts at the head, after the
    fill, so only the Data API can see it, and it must not wait for the slow backfill."""
    both = {"FILL_SOURCES": "chain,data_api"}
    world.watch()
    world.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
    world.sim.inject_fault("GET", "/v2/activity", "delay", count=1, service="data", delay=4.0)
    before = len(world.sim.requests(service="data", path="/v2/activity"))
    proc = world.start("watcher.py", WATCHER_POLL_INTERVAL="1", FILL_SOURCES=both["FILL_SOURCES"])
    deadline = time.monotonic() + 20
    while (time.monotonic() < deadline
           and len(world.sim.requests(service="data", path="/v2/activity")) == before):
        time.sleep(0.1)
    time.sleep(0.5)
    code, err = world.stop(proc)
    assert code == 0, err
    assert "stopped" in err
    done = world.once("watcher.py", timeout=60, **both)
    assert done.returncode == 0, done.stderr
    assert world.count(TraderFill) == 1
    assert world.count(CopyOrder, CopyOrder.status == CopyStatus.QUEUED) == 2
