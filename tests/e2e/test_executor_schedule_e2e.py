"""Open-order management against the simulator: repricing over time, partial fills, trader exits,
Protocol-V2 markets — with the copies' trader fills made older (the shared rig), on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from models import CopyStatus
from tests.support.dbfixtures import Database
from tests.support.rig import Rig
from tests.support.simfixtures import FED_YES, TRADER_QUIET

pytestmark = pytest.mark.e2e
D = Decimal


@pytest.fixture
def dep(database: Database, make_rig: Callable[..., Rig]) -> Rig:
    """Follower Hardhat #1 copying 10 % of TRADER_QUIET; snapshots every watcher cycle; no book
    reuse between executor cycles (time passes between them: `age_fills`)."""
    d = make_rig(database, book_ttl=0.0, position_snapshot_interval=0.001)
    d.add_follower(1)
    d.watch()
    return d


def test_protocol_v2_market_is_signed_for_exchange_v3(dep: Rig) -> None:
    """A copy on a Protocol-V2 market (positionIds, tick 0.005) goes to ExchangeV3, domain "3"."""
    dep.sim.add_trader_fill(TRADER_QUIET, "lakers", "Lakers", "BUY", "100", "0.42")
    dep.watch()
    dep.execute()
    orders = dep.sim.orders()
    assert len(orders) == 1, dep.sim.rejections()
    assert orders[0]["exchange"].lower() == "0xe3333700ca9d93003f00f0f71f8515005f6c00aa"
    assert str(orders[0]["domain_version"]) == "3"


def test_reprice_over_time_keeps_one_live_order(dep: Rig) -> None:
    """Trader BUY @ 0.62 (book 0.64/0.65): rests at 0.62; at 18 h the mid (0.64); at 30 h the ask fills."""
    dep.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "100", "0.62")
    dep.watch()
    dep.execute()
    first = dep.copies()[0]
    assert first.intended_price == D("0.62") and len(dep.resting()) == 1
    dep.age_fills(6)  # 15 % of the way to the mid floors back to 0.62: nothing to do
    dep.execute()
    assert dep.copies()[0].order_hash == first.order_hash
    dep.age_fills(12)  # 18 h old
    dep.execute()
    second = dep.copies()[0]
    assert second.intended_price == D("0.64") and second.order_hash != first.order_hash
    live = dep.resting()
    assert len(live) == 1 and live[0]["id"] == second.order_hash
    dep.age_fills(12)  # 30 h old
    dep.execute()
    final = dep.copies()[0]
    assert final.status == CopyStatus.FILLED and final.filled_size == D("10"), (
        final.status, final.reason, final.filled_size, dep.sim.orders(), dep.sim.trades())
    assert dep.resting() == []


def test_partial_fill_then_reprice_for_the_remainder(dep: Rig) -> None:
    """4 of 10 shares fill while resting; the 18 h reprice posts an order for the other 6 only."""
    dep.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "100", "0.62")
    dep.watch()
    dep.execute()
    dep.sim.set_book(FED_YES, bids=[["0.61", "500"]], asks=[["0.62", "4"], ["0.66", "500"]])  # 4 cross our bid
    dep.execute()
    co = dep.copies()[0]
    assert co.status == CopyStatus.PARTIAL and co.filled_size == D("4")
    dep.age_fills(18)
    dep.execute()
    live = dep.resting()
    assert len(live) == 1 and D(str(live[0]["original_size"])) == D("6")
    assert D(str(live[0]["price"])) == D("0.64")  # mid of our own 0.62 bid and the 0.66 ask


def test_trader_exit_cancels_the_pending_copy(dep: Rig) -> None:
    """The trader sells its whole position: the next snapshot sees it closed and the copy is cancelled."""
    dep.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "100", "0.62")
    dep.watch()  # stores the fill and takes the baseline snapshot
    dep.execute()
    assert len(dep.resting()) == 1
    held = D("350")  # the trader's whole fed-Yes position: 250 of history + 100 now
    dep.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "SELL", str(held), "0.63")
    dep.watch()
    dep.execute()
    buy = dep.copies()[0]
    assert buy.status == CopyStatus.CANCELED and buy.reason == "trader_exited"
    assert dep.resting() == []
