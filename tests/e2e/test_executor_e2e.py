"""Executor end to end against the local simulator (live and paper; the shared rig), on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from models import CopyOrder, CopyOrderEvent, CopyStatus, Follower, FollowerFill
from tests.support.dbfixtures import Database
from tests.support.rig import Rig, wait_until
from tests.support.simfixtures import (
    DEPOSIT_WALLET_0,
    HARDHAT_ADDRESSES,
    TRADER_QUIET,
)
from wire.types import SignatureType

pytestmark = pytest.mark.e2e
D = Decimal


@pytest.fixture
def dep(database: Database, make_rig: Callable[..., Rig]) -> Rig:
    """Live mode, follower Hardhat #1 (EOA) copying 10 % of TRADER_QUIET."""
    d = make_rig(database)
    d.add_follower(1)
    d.watch()  # seed the cursor
    return d


def test_buy_copied_once_with_a_valid_signature(dep: Rig) -> None:
    """Trader BUY 100 Fed-Yes @ 0.64 → one verified GTC BUY of 10 @ 0.64 at the neg-risk exchange."""
    dep.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "100", "0.64")
    dep.watch()
    dep.execute()
    dep.execute()
    orders = dep.sim.orders()
    assert len(orders) == 1, orders
    o = orders[0]
    assert o["signer"].lower() == HARDHAT_ADDRESSES[1].lower() and o["signature_type"] == 0
    assert D(str(o["price"])) == D("0.64") and D(str(o["original_size"])) == D("10")
    assert o["exchange"].lower() == "0xe2222d279d744050d28e00520010520000310f59"
    co = dep.copies()[0]
    assert co.order_hash == o["id"] and co.status in (CopyStatus.LIVE, CopyStatus.PARTIAL, CopyStatus.FILLED)


def test_deposit_wallet_follower_signs_type_3(database: Database, make_rig: Callable[..., Rig]) -> None:
    """A deposit-wallet follower (type 3, maker = signer = wallet) is accepted by the simulator."""
    d = make_rig(database)
    d.add_follower(0, SignatureType.POLY_1271, funder=DEPOSIT_WALLET_0)
    d.watch()
    d.sim.add_trader_fill(TRADER_QUIET, "btc", "Yes", "BUY", "300", "0.063")
    d.watch()
    d.execute()
    orders = d.sim.orders()
    assert len(orders) == 1 and orders[0]["signature_type"] == 3, (orders, d.sim.rejections())
    assert orders[0]["maker"].lower() == orders[0]["signer"].lower() == DEPOSIT_WALLET_0.lower()


def test_accept_then_5xx_is_reconciled_into_one_order(dep: Rig) -> None:
    """The venue places the order but answers 500: IN_DOUBT, then found by hash; one order only."""
    dep.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "100", "0.62")
    dep.watch()
    dep.sim.inject_fault("POST", "/order", "accept_then_5xx")
    dep.execute()
    assert dep.copies()[0].status == CopyStatus.IN_DOUBT
    dep.execute()
    assert dep.copies()[0].status == CopyStatus.LIVE
    assert len(dep.sim.orders()) == 1


@pytest.mark.parametrize("point", ["after_signed", "after_post"])
def test_kill_9_at_a_crash_point_then_restart_gives_one_venue_order(dep: Rig, point: str) -> None:
    """The executor dies (os._exit) after the SIGNED commit or after the POST; a restart reconciles."""
    dep.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "100", "0.62")
    dep.watch()
    crashed = dep.once(timeout=60, PMCT_CRASH_AT=point)
    assert crashed.returncode == 137, crashed.stderr
    assert dep.copies()[0].status == CopyStatus.SIGNED
    done = dep.once(timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(dep.sim.orders()) == 1
    assert dep.copies()[0].status == CopyStatus.LIVE


@pytest.mark.parametrize("point", ["after_signed", "after_post"])
def test_kill_9_in_a_multi_copy_batch_then_restart_gives_one_order_per_copy(
        database: Database, make_rig: Callable[..., Rig], point: str) -> None:
    """Two followers, 6 fills → 12 copies; the executor dies at a crash point of its first batch
    (8 copies; the other 4 may be signed already, while the first batch posts); a restart settles
    the signed ones by hash (same bytes) and copies the rest: exactly one venue order per copy,
    none re-signed."""
    from executor import FIRST_BATCH

    d = make_rig(database)
    d.add_follower(1)
    d.add_follower(2)
    d.watch()
    for _ in range(6):
        d.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "60", "0.60")
    d.watch()
    assert len(d.copies()) == 12 and FIRST_BATCH == 8
    crashed = d.once(timeout=60, PMCT_CRASH_AT=point)
    assert crashed.returncode == 137, crashed.stderr
    statuses = [c.status for c in d.copies()]
    # the second batch is signed while the first one posts: after the first POST it may be SIGNED too
    signed = statuses.count(CopyStatus.SIGNED)
    assert signed == 8 if point == "after_signed" else signed in (8, 12)
    assert signed + statuses.count(CopyStatus.QUEUED) == 12
    bodies = {c.id: c.signed_payload for c in d.copies() if c.status == CopyStatus.SIGNED}
    assert len(d.sim.orders()) == (8 if point == "after_post" else 0)
    done = d.once(timeout=60)
    assert done.returncode == 0, done.stderr
    copies = d.copies()
    assert all(c.status == CopyStatus.LIVE for c in copies), [c.status for c in copies]
    assert sorted(o["id"] for o in d.sim.orders()) == sorted(c.order_hash for c in copies)  # type: ignore[type-var]
    assert all(c.signed_payload == bodies[c.id] for c in copies if c.id in bodies)


def test_paper_mode_never_posts_and_records_fills(database: Database, make_rig: Callable[..., Rig]) -> None:
    """Paper mode: no POST /order reaches the venue; the marketable copy fills on paper."""
    d = make_rig(database, mode="paper")
    d.add_follower(1)
    d.watch()
    d.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "100", "0.65")
    d.watch()
    d.execute()
    assert d.sim.requests(service="clob", path="/order") == []
    co = d.copies()[0]
    assert co.paper and co.status == CopyStatus.FILLED
    with d.db.session() as s:
        fills = list(s.scalars(select(FollowerFill)))
        assert sum(f.size for f in fills) == D("10") and all(f.paper for f in fills)
        assert fills[0].price == D("0.65")


def test_sigterm_exits_0_with_nothing_half_done(dep: Rig) -> None:
    """SIGTERM while copies are processed: exit 0; every copy is queued or fully recorded."""
    for _ in range(60):  # batches of 8, 16, 32, 4: the next batch signs while one posts
        dep.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "60", "0.60")
    dep.watch()
    for route in ("/order", "/orders"):  # a slow venue on both order routes (a batch uses /orders)
        dep.sim.inject_fault("POST", route, "delay", count=60, delay=0.2)
    proc = dep.start("executor.py")
    wait_until(lambda: dep.posts() >= 1, timeout=30, every=0.05)
    code, err = dep.stop(proc, timeout=60)
    assert code == 0, err
    statuses = {c.status for c in dep.copies()}
    assert statuses <= {CopyStatus.QUEUED, CopyStatus.LIVE, CopyStatus.PARTIAL, CopyStatus.FILLED,
                        CopyStatus.SKIPPED}, statuses
    assert CopyStatus.QUEUED in statuses  # it stopped early
    with dep.db.session() as s:
        placed = s.scalar(select(func.count()).select_from(CopyOrder)
                          .where(CopyOrder.order_hash.is_not(None))) or 0
    assert placed == len(dep.sim.orders())


@pytest.mark.postgres
def test_two_executors_race_on_200_copies(pg_database: Database, make_rig: Callable[..., Rig]) -> None:
    """Two executor processes on one PostgreSQL: each copy claimed once, no follower over-spent."""
    d = make_rig(pg_database)
    d.add_follower(1, pct="10", max_trade="50")
    d.add_follower(2, pct="10", max_trade="50")  # Hardhat #2 holds only 150 pUSD
    d.watch()
    for _ in range(100):
        d.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "60", "0.60")
    d.watch()
    assert len(d.copies()) == 200
    for route in ("/order", "/orders"):  # venue latency: neither executor can finish alone first
        d.sim.inject_fault("POST", route, "delay", count=200, delay=0.25)
    procs = [d.start("executor.py", "--once") for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    with d.db.session() as s:
        claims = s.execute(select(CopyOrderEvent.copy_order_id, func.count())
                           .where(CopyOrderEvent.event == "claim")
                           .group_by(CopyOrderEvent.copy_order_id)).all()
        assert len(claims) == 200 and all(n == 1 for _, n in claims)
        placed = list(s.scalars(select(CopyOrder).where(CopyOrder.order_hash.is_not(None))))
        followers = {f.name: f.funder_address for f in s.scalars(select(Follower))}
    orders = d.sim.orders()
    assert len(orders) == len(placed)
    assert len({o["id"] for o in orders}) == len(orders)
    spent: dict[str, Decimal] = {}
    for o in orders:
        spent[o["maker"].lower()] = spent.get(o["maker"].lower(), D(0)) + D(str(o["price"])) * D(str(o["original_size"]))
    assert spent[followers["F2"].lower()] <= D("150")
    assert spent[followers["F1"].lower()] <= D("1000")
    with d.db.session() as s:
        owners = [d["owner"] for (d,) in s.execute(
            select(CopyOrderEvent.detail).where(CopyOrderEvent.event == "claim")).all()]
    assert len(owners) == 200 and len(set(owners)) == 2  # both executors really took part
