"""The chain fill source end to end against the simulator's node, on SQLite and PostgreSQL.

Blocks are mined by hand (`block_time = 0`) unless a test runs the follower on its own: each
test says exactly which block holds the leader's fill.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from copying.chain_source import ChainSource
from infra.db import session_scope
from models import ChainCursor, CopyOrder, CopyStatus, TraderFill
from sim import SimConfig, Simulator
from tests.support.dbfixtures import Database
from tests.support.rig import Rig, quiet_scenario
from tests.support.simfixtures import TRADER_QUIET
from watcher import WatcherContext, watch_cycle

pytestmark = pytest.mark.e2e


class ChainRig(Rig):
    """The rig with the chain source switched on and one watcher context kept across cycles
    (two active follows of TRADER_QUIET, one paused)."""

    ctx: WatcherContext | None = None

    async def __aenter__(self) -> ChainRig:
        self.stack = AsyncExitStack()
        self.ctx = await self.stack.enter_async_context(self.watcher("test-watcher", chain=True))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stack.aclose()

    @property
    def chain(self) -> ChainSource:
        assert self.ctx is not None
        return self.ctx.chain

    async def acycle(self) -> dict[str, int]:
        """One watcher cycle (chain step + due Data API polls)."""
        assert self.ctx is not None
        return (await watch_cycle(self.ctx, asyncio.Event())).counts

    def fill_tx(self, rows: list[dict[str, Any]]) -> str:
        return str(rows[0]["transaction_hash"])


@pytest.fixture
def manual_sim(simulator_factory: Callable[..., Simulator]) -> Simulator:
    """The quiet demo world with blocks mined by hand."""
    return simulator_factory(quiet_scenario(), config=SimConfig(block_time=0))


def chain_rig(make_rig: Callable[..., Rig], database: Database, sim: Simulator,
              started: datetime | None = None, **settings: Any) -> ChainRig:
    """The chain rig; follows started 5 seconds ago unless `started`."""
    values: dict[str, Any] = {"fill_sources": ("chain", "data_api"), "polygon_rpc": sim.rpc_url,
                              "chain_poll_interval": 0.05, "chain_stale_seconds": 30.0}
    rig = make_rig(database, sim, cls=ChainRig, **{**values, **settings})
    assert isinstance(rig, ChainRig)
    rig.add_quiet_followers(started or datetime.now(UTC) - timedelta(seconds=5))
    return rig


def test_a_leader_buy_is_copied_from_the_chain_while_the_data_api_shows_nothing(
        database: Database, manual_sim: Simulator, make_rig: Callable[..., Rig]) -> None:
    """Data API indexing lags: the chain's log alone queues one copy per active follow; when
    the Data API row comes later it is recognised as the same fill: stored once, copied once."""
    w = chain_rig(make_rig, database, manual_sim, data_api_slow_interval=0.001)

    async def scenario() -> None:
        async with w:
            await w.acycle()  # seeds: the chain cursor starts at the head
            manual_sim.configure(data_api_lag=3600)
            rows = manual_sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
            manual_sim.mine_blocks(1)
            counts = await w.acycle()
            assert counts["chain_new_fills"] == 1 and counts["chain_queued"] == 2
            assert counts["new_fills"] == 0  # the Data API had nothing new
            assert w.statuses() == [("QUEUED", None), ("QUEUED", None)]
            [fill] = w.trader_fills()
            assert fill.transaction_hash == w.fill_tx(rows)
            assert fill.seen_by_chain_at is not None and fill.seen_by_data_api_at is None
            assert (fill.side, fill.size, fill.price) == ("BUY", Decimal(50), Decimal("0.65"))
            assert fill.log_index is not None and fill.block_number == manual_sim.chain_head()["number"]
            manual_sim.configure(data_api_lag=0)
            counts = await w.acycle()
            assert counts["new_fills"] == 0 and counts["fetched"] == 1
            [fill] = w.trader_fills()
            assert fill.seen_by_data_api_at is not None
            assert w.count(TraderFill) == 1 and w.count(CopyOrder) == 2

    asyncio.run(scenario())


def test_rpc_down_the_data_api_still_copies_and_the_chain_agrees_later(
        database: Database, manual_sim: Simulator, make_rig: Callable[..., Rig]) -> None:
    """RPC outage: the chain step fails, the source is unhealthy, the Data API polls every cycle
    and copies; when the node is back its log of the same fill adds a sighting, not a fill."""
    w = chain_rig(make_rig, database, manual_sim)

    async def scenario() -> None:
        async with w:
            await w.acycle()
            manual_sim.set_outage("rpc", True)
            manual_sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
            manual_sim.mine_blocks(1)
            counts = await w.acycle()
            assert counts.get("chain_errors") == 1 and counts["chain_healthy"] == 0
            assert counts["new_fills"] == 1 and counts["queued"] == 2
            manual_sim.set_outage("rpc", False)
            w.chain.health.backoff_until = 0
            await w.acycle()
            counts = await w.acycle()
            assert counts["chain_healthy"] == 1
            [fill] = w.trader_fills()
            assert fill.seen_by_chain_at is not None and fill.seen_by_data_api_at is not None
            assert w.count(CopyOrder, CopyOrder.status == CopyStatus.QUEUED) == 2

    asyncio.run(scenario())


def test_a_reorg_that_moves_the_fill_keeps_one_fill(
        database: Database, manual_sim: Simulator, make_rig: Callable[..., Rig]) -> None:
    """The fill's block is replaced and its transaction lands one block later: same fill."""
    w = chain_rig(make_rig, database, manual_sim, fill_sources=("chain",))

    async def scenario() -> None:
        async with w:
            await w.acycle()
            rows = manual_sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
            manual_sim.mine_blocks(1)
            await w.acycle()
            [before] = w.trader_fills()
            old_block = before.block_number
            moved = manual_sim.reorg(w.fill_tx(rows), later=1)
            manual_sim.mine_blocks(1)
            counts = await w.acycle()
            assert counts["chain_new_fills"] == 0
            assert w.chain.totals.get("reorgs") == 1
            [after] = w.trader_fills()
            assert after.id == before.id and after.block_number == moved["fork_block"] + 1 != old_block
            assert after.block_hash != before.block_hash and after.chain_removed_at is None
            assert w.count(CopyOrder) == 2

    asyncio.run(scenario())


def test_a_reorg_that_drops_the_fill_marks_it(
        database: Database, manual_sim: Simulator, make_rig: Callable[..., Rig]) -> None:
    """Reorganised away and never mined again: the row is marked, nothing new is queued."""
    w = chain_rig(make_rig, database, manual_sim, fill_sources=("chain",))

    async def scenario() -> None:
        async with w:
            await w.acycle()
            rows = manual_sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
            manual_sim.mine_blocks(1)
            await w.acycle()
            manual_sim.reorg(w.fill_tx(rows), drop=True)
            manual_sim.mine_blocks(2)
            await w.acycle()
            [fill] = w.trader_fills()
            assert fill.chain_removed_at is not None
            assert w.chain.totals.get("removed") == 1 and w.count(CopyOrder) == 2

    asyncio.run(scenario())


def test_a_range_error_splits_the_query(
        database: Database, manual_sim: Simulator, make_rig: Callable[..., Rig]) -> None:
    """A provider capping ranges at 3 blocks: the catch-up is split and the fill still found."""
    w = chain_rig(make_rig, database, manual_sim, fill_sources=("chain",), chain_max_block_range=1000)

    async def scenario() -> None:
        async with w:
            await w.acycle()
            manual_sim.configure(rpc_max_block_range=3, rpc_error_style="infura")
            manual_sim.mine_blocks(7)
            manual_sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
            manual_sim.mine_blocks(3)
            counts = await w.acycle()
            assert counts["chain_new_fills"] == 1
            assert w.chain.range_cap == 3 and w.chain.totals.get("range_splits", 0) >= 1
            with w.db.session() as s:
                assert s.scalar(select(ChainCursor.block_number)) == manual_sim.chain_head()["number"]

    asyncio.run(scenario())


def test_too_many_results_splits_the_wallet_list(
        database: Database, manual_sim: Simulator, make_rig: Callable[..., Rig]) -> None:
    """One block with more matching logs than the provider returns: the wallet list is halved."""
    w = chain_rig(make_rig, database, manual_sim, fill_sources=("chain",), chain_wallet_chunk=4)

    async def scenario() -> None:
        async with w:
            await w.acycle()
            w.chain.set_followed([*[type(f)(f.trader_id, f.wallet) for f in _followed(w)],
                                  *[_fake(i) for i in range(3)]])
            manual_sim.configure(rpc_max_results=1)
            manual_sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65",
                                       role="maker", parts=["20", "30"])
            manual_sim.mine_blocks(1)
            with pytest.raises(Exception, match="too many logs"):
                await w.chain.step()  # two logs of one wallet in one block: cannot be split
            manual_sim.configure(rpc_max_results=2)
            await w.chain.step()
            assert w.chain.chunk_size == 1
            assert w.count(TraderFill) == 2

    asyncio.run(scenario())


def _followed(w: ChainRig) -> list[Any]:
    from copying.chain_source import Followed

    return [Followed(tid, wallet) for wallet, tid in w.chain.followed.items()]


def _fake(i: int) -> Any:
    from copying.chain_source import Followed

    return Followed(10_000 + i, f"0x{i + 1:040x}")


def test_staleness_is_judged_on_the_block_time(
        database: Database, manual_sim: Simulator, make_rig: Callable[..., Rig]) -> None:
    """A block read 5 minutes after it was produced (MAX_COPY_DELAY 120 s): SKIPPED(stale),
    though the watcher has just seen it; a block read at once: QUEUED."""
    w = chain_rig(make_rig, database, manual_sim, datetime.now(UTC) - timedelta(hours=1),
                  fill_sources=("chain",))

    async def scenario() -> None:
        async with w:
            assert w.ctx is not None
            await w.acycle()
            manual_sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
            manual_sim.mine_blocks(1)

            def late() -> datetime:
                return datetime.now(UTC) + timedelta(seconds=300)

            w.ctx.clock = w.chain.clock = late  # the watcher reads that block 5 minutes later
            await w.acycle()
            assert w.statuses() == [("SKIPPED", "stale"), ("SKIPPED", "stale")]
            [fill] = w.trader_fills()
            assert (fill.first_seen_at - fill.occurred_at).total_seconds() > 290
            w.ctx.clock = w.chain.clock = lambda: datetime.now(UTC)
            manual_sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "40", "0.66")
            manual_sim.mine_blocks(1)
            await w.acycle()
            assert w.count(CopyOrder, CopyOrder.status == CopyStatus.QUEUED) == 2

    asyncio.run(scenario())


def test_a_taker_buy_share_count_is_cross_checked(
        database: Database, manual_sim: Simulator, make_rig: Callable[..., Rig]) -> None:
    """The unverified layout (taker BUY reporting pUSD as its shares): the makers' total wins,
    and the Data API's row of the fill is the same fill."""
    w = chain_rig(make_rig, database, manual_sim, data_api_slow_interval=0.001)

    async def scenario() -> None:
        async with w:
            await w.acycle()
            manual_sim.configure(chain_taker_buy_reports_usdc=True, data_api_lag=3600)
            manual_sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
            manual_sim.mine_blocks(1)
            await w.acycle()
            [fill] = w.trader_fills()
            assert fill.size == Decimal(50) and fill.price == Decimal("0.65")
            assert w.chain.totals.get("taker_rows_corrected") == 1
            manual_sim.configure(data_api_lag=0)
            await w.acycle()
            assert w.count(TraderFill) == 1 and w.count(CopyOrder) == 2

    asyncio.run(scenario())


def _wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("mode", ["websocket", "polling"])
def test_the_follower_copies_in_websocket_and_polling_modes(
        database: Database, simulator_factory: Callable[..., Simulator], make_rig: Callable[..., Rig],
        mode: str) -> None:
    """The follower task on its own (blocks every 0.3 s): a fill is queued within a few blocks,
    with the Data API lagging an hour; the websocket mode reads heads pushed by the node."""
    sim = simulator_factory(quiet_scenario(), config=SimConfig(block_time=0.3, data_api_lag=3600))
    extra: dict[str, Any] = {"polygon_ws": sim.ws_url} if mode == "websocket" else {}
    w = chain_rig(make_rig, database, sim, chain_poll_interval=0.1, **extra)

    async def scenario() -> None:
        async with w:
            await w.acycle()
            stop = asyncio.Event()
            task = asyncio.create_task(w.chain.run(stop))
            try:
                await asyncio.sleep(0.5)
                sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
                loop = asyncio.get_running_loop()
                found = await loop.run_in_executor(None, lambda: _wait_for(
                    lambda: w.count(CopyOrder, CopyOrder.status == CopyStatus.QUEUED) == 2))
                assert found
                assert w.chain.mode == ("ws" if mode == "websocket" else "poll")
                assert w.chain.healthy
            finally:
                stop.set()
                await task

    asyncio.run(scenario())


def test_data_api_slows_down_while_the_chain_is_healthy_and_not_otherwise(
        database: Database, manual_sim: Simulator, make_rig: Callable[..., Rig]) -> None:
    """Healthy chain: a trader polled recently is not polled again; chain down: polled every cycle."""
    w = chain_rig(make_rig, database, manual_sim, data_api_slow_interval=600)

    async def scenario() -> None:
        async with w:
            await w.acycle()
            manual_sim.mine_blocks(1)
            counts = await w.acycle()
            assert counts["chain_healthy"] == 1 and counts["polled"] == 0
            manual_sim.set_outage("rpc", True)
            counts = await w.acycle()
            assert counts["chain_healthy"] == 0 and counts["polled"] == 1

    asyncio.run(scenario())


def test_single_source_fills_are_counted_after_the_grace(
        database: Database, manual_sim: Simulator, make_rig: Callable[..., Rig]) -> None:
    """A chain-only fill older than FILL_SOURCE_GRACE is reported once."""
    from copying.source_audit import audit_single_source

    w = chain_rig(make_rig, database, manual_sim)

    async def scenario() -> None:
        async with w:
            await w.acycle()
            manual_sim.configure(data_api_lag=3600)
            manual_sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
            manual_sim.mine_blocks(1)
            await w.acycle()

    asyncio.run(scenario())
    with session_scope(database.factory) as s:
        tid = s.scalar(select(TraderFill.trader_id))
        assert tid is not None
    later = datetime.now(UTC) + timedelta(hours=1)
    assert audit_single_source(database.factory, [tid], datetime.now(UTC), timedelta(hours=1)) == 0
    assert audit_single_source(database.factory, [tid], later, timedelta(seconds=600)) == 1
    assert audit_single_source(database.factory, [tid], later, timedelta(seconds=600)) == 0
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(TraderFill)
                        .where(TraderFill.sources_checked_at.isnot(None))) == 1


def test_with_confirmations_a_fill_reorganised_away_is_never_queued(
        database: Database, manual_sim: Simulator, make_rig: Callable[..., Rig]) -> None:
    """CHAIN_CONFIRMATIONS=1: the head block is not read yet; dropped before it is buried, the
    fill never reaches the store; a buried one is queued."""
    w = chain_rig(make_rig, database, manual_sim, fill_sources=("chain",), chain_confirmations=1)

    async def scenario() -> None:
        async with w:
            await w.acycle()
            rows = manual_sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
            manual_sim.mine_blocks(1)
            await w.acycle()
            assert w.count(TraderFill) == 0  # one block deep needed
            manual_sim.reorg(w.fill_tx(rows), drop=True)
            manual_sim.mine_blocks(2)
            await w.acycle()
            assert w.count(TraderFill) == 0 and w.count(CopyOrder) == 0
            manual_sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "40", "0.66")
            manual_sim.mine_blocks(2)
            await w.acycle()
            assert w.count(CopyOrder, CopyOrder.status == CopyStatus.QUEUED) == 2

    asyncio.run(scenario())


def test_data_api_down_the_chain_still_copies(
        database: Database, manual_sim: Simulator, make_rig: Callable[..., Rig]) -> None:
    """Data API outage: its polls fail, the chain's log queues the copies."""
    w = chain_rig(make_rig, database, manual_sim, data_api_slow_interval=0.001)

    async def scenario() -> None:
        async with w:
            await w.acycle()
            manual_sim.set_outage("data", True)
            manual_sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
            manual_sim.mine_blocks(1)
            counts = await w.acycle()
            assert counts["errors"] == 1 and counts["chain_new_fills"] == 1
            assert w.count(CopyOrder, CopyOrder.status == CopyStatus.QUEUED) == 2

    asyncio.run(scenario())
