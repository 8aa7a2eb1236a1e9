"""Open-order management against the simulator: repricing over time, partial fills, trader exits,
Protocol-V2 markets — with the executor's clock moved forward, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from executor import CycleClock, build_context, executor_cycle
from models import CopyStatus
from sim import Simulator
from tests.e2e.test_executor_e2e import Deployment
from tests.e2e.test_watcher_e2e import quiet_scenario
from tests.support.dbfixtures import Database
from tests.support.simfixtures import FED_YES, TRADER_QUIET

pytestmark = pytest.mark.e2e
D = Decimal


class Clocked(Deployment):
    """A deployment where time passes for the copies: their trader fills are made older."""

    def age(self, hours: float) -> None:
        """Move every stored trader fill `hours` into the past (as if that much time had passed)."""
        from sqlalchemy import select

        from models import TraderFill
        with self.db.session() as s:
            for fill in s.scalars(select(TraderFill)):
                fill.occurred_at = fill.occurred_at - timedelta(hours=hours)
            s.commit()

    def execute(self) -> dict[str, int]:
        """One executor cycle with the open-order pass and no book reuse."""
        async def go(client: Any) -> dict[str, int]:
            ctx = build_context(self.settings, self.db.factory, client)
            ctx.book_ttl = 0.0
            return (await executor_cycle(ctx, asyncio.Event(), CycleClock(0), force_manage=True)).counts
        return self.run(go)

    def live_orders(self) -> list[dict[str, Any]]:
        return [o for o in self.sim.orders() if o["status"] == "LIVE"]


@pytest.fixture
def dep(database: Database, simulator_factory: Callable[..., Simulator], fernet_key: str) -> Clocked:
    """Follower Hardhat #1 copying 10 % of TRADER_QUIET; snapshots every watcher cycle."""
    d = Clocked(database, simulator_factory(quiet_scenario()), fernet_key)
    d.settings = d.settings.__class__(**{**d.settings.__dict__, "position_snapshot_interval": 0.001})
    d.add_follower(1)
    d.watch()
    return d


def test_protocol_v2_market_is_signed_for_exchange_v3(dep: Clocked) -> None:
    """A copy on a Protocol-V2 market (positionIds, tick 0.005) goes to ExchangeV3, domain "3"."""
    dep.sim.add_trader_fill(TRADER_QUIET, "lakers", "Lakers", "BUY", "100", "0.42")
    dep.watch()
    dep.execute()
    orders = dep.sim.orders()
    assert len(orders) == 1, dep.sim.rejections()
    assert orders[0]["exchange"].lower() == "0xe3333700ca9d93003f00f0f71f8515005f6c00aa"
    assert str(orders[0]["domain_version"]) == "3"


def test_reprice_over_time_keeps_one_live_order(dep: Clocked) -> None:
    """Trader BUY @ 0.62 (book 0.64/0.65): rests at 0.62; at 18 h the mid (0.64); at 30 h the ask fills."""
    dep.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "100", "0.62")
    dep.watch()
    dep.execute()
    first = dep.copies()[0]
    assert first.intended_price == D("0.62") and len(dep.live_orders()) == 1
    dep.age(6)  # 15 % of the way to the mid floors back to 0.62: nothing to do
    dep.execute()
    assert dep.copies()[0].order_hash == first.order_hash
    dep.age(12)  # 18 h old
    dep.execute()
    second = dep.copies()[0]
    assert second.intended_price == D("0.64") and second.order_hash != first.order_hash
    live = dep.live_orders()
    assert len(live) == 1 and live[0]["id"] == second.order_hash
    dep.age(12)  # 30 h old
    dep.execute()
    final = dep.copies()[0]
    assert final.status == CopyStatus.FILLED and final.filled_size == D("10"), (
        final.status, final.reason, final.filled_size, dep.sim.orders(), dep.sim.trades())
    assert dep.live_orders() == []


def test_partial_fill_then_reprice_for_the_remainder(dep: Clocked) -> None:
    """4 of 10 shares fill while resting; the 18 h reprice posts an order for the other 6 only."""
    dep.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "100", "0.62")
    dep.watch()
    dep.execute()
    dep.sim.set_book(FED_YES, bids=[["0.61", "500"]], asks=[["0.62", "4"], ["0.66", "500"]])  # 4 cross our bid
    dep.execute()
    co = dep.copies()[0]
    assert co.status == CopyStatus.PARTIAL and co.filled_size == D("4")
    dep.age(18)
    dep.execute()
    live = dep.live_orders()
    assert len(live) == 1 and D(str(live[0]["original_size"])) == D("6")
    assert D(str(live[0]["price"])) == D("0.64")  # mid of our own 0.62 bid and the 0.66 ask


def test_trader_exit_cancels_the_pending_copy(dep: Clocked) -> None:
    """The trader sells its whole position: the next snapshot sees it closed and the copy is cancelled."""
    dep.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "100", "0.62")
    dep.watch()  # stores the fill and takes the baseline snapshot
    dep.execute()
    assert len(dep.live_orders()) == 1
    held = D("350")  # the trader's whole fed-Yes position: 250 of history + 100 now
    dep.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "SELL", str(held), "0.63")
    dep.watch()
    dep.execute()
    buy = dep.copies()[0]
    assert buy.status == CopyStatus.CANCELED and buy.reason == "trader_exited"
    assert dep.live_orders() == []
