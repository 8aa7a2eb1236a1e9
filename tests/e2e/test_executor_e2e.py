"""Executor end to end against the local simulator (live and paper), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from crypto import KeyRing
from executor import CycleClock, build_context, executor_cycle
from infra.config import Settings
from infra.db import session_scope
from models import CopyOrder, CopyOrderEvent, CopyStatus, Follower, FollowerFill, Tier
from ops.accounts import add_follow, add_follower
from polymarket_client import PolymarketClient
from sim import Simulator
from tests.e2e.test_watcher_e2e import quiet_scenario
from tests.support.dbfixtures import Database
from tests.support.paths import ROOT
from tests.support.simfixtures import (
    DEPOSIT_WALLET_0,
    HARDHAT_ADDRESSES,
    HARDHAT_KEYS,
    TRADER_QUIET,
)
from watcher import Shard, WatcherContext, release_lease, watch_cycle
from wire.types import SignatureType

pytestmark = pytest.mark.e2e
D = Decimal


class Deployment:
    """A simulator, a database, followers with real CLOB credentials, watcher + executor."""

    def __init__(self, db: Database, sim: Simulator, fernet_key: str, *, mode: str = "live") -> None:
        self.db, self.sim, self.fernet_key = db, sim, fernet_key
        self.settings = Settings(database_url=db.url, data_api_url=sim.data_url,
                                 gamma_api_url=sim.gamma_url, clob_api_url=sim.clob_url,
                                 encryption_key=fernet_key, execution_mode=mode, max_copy_delay=120)
        self.ring = KeyRing(fernet_key)

    def add_follower(self, index: int, sig_type: SignatureType = SignatureType.EOA, *,
                     pct: str = "10", max_trade: str = "50", funder: str | None = None) -> None:
        """A follower (Hardhat account `index`) with credentials derived from the simulator."""
        client = PolymarketClient.from_settings(self.settings, http2=False)

        async def derive() -> Any:
            try:
                return await client.create_or_derive_api_key(HARDHAT_KEYS[index])
            finally:
                await client.aclose()

        creds = asyncio.run(derive())
        with session_scope(self.db.factory) as s:
            f = add_follower(s, self.ring, name=f"F{index}", email=f"f{index}@x.io",
                             private_key=HARDHAT_KEYS[index], signature_type=sig_type, funder=funder,
                             tier=Tier.PRO)
            f.encrypted_api_creds = self.ring.encrypt_api_creds(creds)
            f.api_key_id = creds.api_key
            add_follow(s, follower_wallet=f.funder_address, trader_wallet=TRADER_QUIET,
                       copy_pct=D(pct), max_usd_per_trade=D(max_trade), now=datetime.now(UTC))

    def run(self, coro_factory: Callable[[Any], Any]) -> Any:
        async def go() -> Any:
            client = PolymarketClient.from_settings(self.settings, http2=False)
            try:
                return await coro_factory(client)
            finally:
                await client.aclose()
        return asyncio.run(go())

    def watch(self) -> dict[str, int]:
        """One watcher cycle."""
        async def go(client: Any) -> dict[str, int]:
            ctx = WatcherContext(settings=self.settings, factory=self.db.factory, client=client, owner="w")
            try:
                return (await watch_cycle(ctx, asyncio.Event())).counts
            finally:
                release_lease(self.db.factory, Shard(), "w")
        return self.run(go)

    def execute(self) -> dict[str, int]:
        """One executor cycle with the open-order pass."""
        async def go(client: Any) -> dict[str, int]:
            ctx = build_context(self.settings, self.db.factory, client)
            return (await executor_cycle(ctx, asyncio.Event(), CycleClock(0), force_manage=True)).counts
        return self.run(go)

    def copies(self) -> list[CopyOrder]:
        with self.db.session() as s:
            return list(s.scalars(select(CopyOrder).order_by(CopyOrder.id)))

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for daemon subprocesses."""
        return {**os.environ, "DATABASE_URL": self.db.url, "PMCT_ENV_FILE": "/nonexistent/.env",
                "ENCRYPTION_KEY": self.fernet_key, "EXECUTION_MODE": self.settings.execution_mode,
                "POLYMARKET_DATA_API_URL": self.sim.data_url,
                "POLYMARKET_GAMMA_API_URL": self.sim.gamma_url,
                "POLYMARKET_CLOB_API_URL": self.sim.clob_url, **extra}


@pytest.fixture
def dep(database: Database, simulator_factory: Callable[..., Simulator], fernet_key: str) -> Deployment:
    """Live mode, follower Hardhat #1 (EOA) copying 10 % of TRADER_QUIET."""
    d = Deployment(database, simulator_factory(quiet_scenario()), fernet_key)
    d.add_follower(1)
    d.watch()  # seed the cursor
    return d


def test_buy_copied_once_with_a_valid_signature(dep: Deployment) -> None:
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


def test_deposit_wallet_follower_signs_type_3(database: Database, simulator_factory: Callable[..., Simulator],
                                              fernet_key: str) -> None:
    """A deposit-wallet follower (type 3, maker = signer = wallet) is accepted by the simulator."""
    d = Deployment(database, simulator_factory(quiet_scenario()), fernet_key)
    d.add_follower(0, SignatureType.POLY_1271, funder=DEPOSIT_WALLET_0)
    d.watch()
    d.sim.add_trader_fill(TRADER_QUIET, "btc", "Yes", "BUY", "300", "0.063")
    d.watch()
    d.execute()
    orders = d.sim.orders()
    assert len(orders) == 1 and orders[0]["signature_type"] == 3, (orders, d.sim.rejections())
    assert orders[0]["maker"].lower() == orders[0]["signer"].lower() == DEPOSIT_WALLET_0.lower()


def test_accept_then_5xx_is_reconciled_into_one_order(dep: Deployment) -> None:
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
def test_kill_9_at_a_crash_point_then_restart_gives_one_venue_order(dep: Deployment, point: str) -> None:
    """The executor dies (os._exit) after the SIGNED commit or after the POST; a restart reconciles."""
    dep.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "100", "0.62")
    dep.watch()
    crashed = subprocess.run([sys.executable, "executor.py", "--once"], cwd=ROOT,  # noqa: S603
                             env=dep.env(PMCT_CRASH_AT=point), capture_output=True, text=True, timeout=60)
    assert crashed.returncode == 137, crashed.stderr
    assert dep.copies()[0].status == CopyStatus.SIGNED
    done = subprocess.run([sys.executable, "executor.py", "--once"], cwd=ROOT,  # noqa: S603
                          env=dep.env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(dep.sim.orders()) == 1
    assert dep.copies()[0].status == CopyStatus.LIVE


@pytest.mark.parametrize("point", ["after_signed", "after_post"])
def test_kill_9_in_a_multi_copy_batch_then_restart_gives_one_order_per_copy(
        database: Database, simulator_factory: Callable[..., Simulator], fernet_key: str, point: str) -> None:
    """Two followers, 6 fills → 12 copies; the executor dies at a crash point of its first batch
    (8 copies; the other 4 may be signed already, while the first batch posts); a restart settles
    the signed ones by hash (same bytes) and copies the rest: exactly one venue order per copy,
    none re-signed."""
    from executor import FIRST_BATCH

    d = Deployment(database, simulator_factory(quiet_scenario()), fernet_key)
    d.add_follower(1)
    d.add_follower(2)
    d.watch()
    for _ in range(6):
        d.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "60", "0.60")
    d.watch()
    assert len(d.copies()) == 12 and FIRST_BATCH == 8
    crashed = subprocess.run([sys.executable, "executor.py", "--once"], cwd=ROOT,  # noqa: S603
                             env=d.env(PMCT_CRASH_AT=point), capture_output=True, text=True, timeout=60)
    assert crashed.returncode == 137, crashed.stderr
    statuses = [c.status for c in d.copies()]
    # the second batch is signed while the first one posts: after the first POST it may be SIGNED too
    signed = statuses.count(CopyStatus.SIGNED)
    assert signed == 8 if point == "after_signed" else signed in (8, 12)
    assert signed + statuses.count(CopyStatus.QUEUED) == 12
    bodies = {c.id: c.signed_payload for c in d.copies() if c.status == CopyStatus.SIGNED}
    assert len(d.sim.orders()) == (8 if point == "after_post" else 0)
    done = subprocess.run([sys.executable, "executor.py", "--once"], cwd=ROOT,  # noqa: S603
                          env=d.env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    copies = d.copies()
    assert all(c.status == CopyStatus.LIVE for c in copies), [c.status for c in copies]
    assert sorted(o["id"] for o in d.sim.orders()) == sorted(c.order_hash for c in copies)  # type: ignore[type-var]
    assert all(c.signed_payload == bodies[c.id] for c in copies if c.id in bodies)


def test_paper_mode_never_posts_and_records_fills(database: Database,
                                                   simulator_factory: Callable[..., Simulator],
                                                   fernet_key: str) -> None:
    """Paper mode: no POST /order reaches the venue; the marketable copy fills on paper."""
    d = Deployment(database, simulator_factory(quiet_scenario()), fernet_key, mode="paper")
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


def test_sigterm_exits_0_with_nothing_half_done(dep: Deployment) -> None:
    """SIGTERM while copies are processed: exit 0; every copy is queued or fully recorded."""
    for _ in range(60):  # batches of 8, 16, 32, 4: the next batch signs while one posts
        dep.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "60", "0.60")
    dep.watch()
    for route in ("/order", "/orders"):  # a slow venue on both order routes (a batch uses /orders)
        dep.sim.inject_fault("POST", route, "delay", count=60, delay=0.2)
    proc = subprocess.Popen([sys.executable, "executor.py"], cwd=ROOT, env=dep.env(),  # noqa: S603
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def order_requests() -> int:
        return sum(len(dep.sim.requests(service="clob", path=route)) for route in ("/order", "/orders"))

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and order_requests() < 1:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    statuses = {c.status for c in dep.copies()}
    assert statuses <= {CopyStatus.QUEUED, CopyStatus.LIVE, CopyStatus.PARTIAL, CopyStatus.FILLED,
                        CopyStatus.SKIPPED}, statuses
    assert CopyStatus.QUEUED in statuses  # it stopped early
    with dep.db.session() as s:
        placed = s.scalar(select(func.count()).select_from(CopyOrder)
                          .where(CopyOrder.order_hash.is_not(None))) or 0
    assert placed == len(dep.sim.orders())


@pytest.mark.postgres
def test_two_executors_race_on_200_copies(pg_database: Database,
                                          simulator_factory: Callable[..., Simulator],
                                          fernet_key: str) -> None:
    """Two executor processes on one PostgreSQL: each copy claimed once, no follower over-spent."""
    d = Deployment(pg_database, simulator_factory(quiet_scenario()), fernet_key)
    d.add_follower(1, pct="10", max_trade="50")
    d.add_follower(2, pct="10", max_trade="50")  # Hardhat #2 holds only 150 pUSD
    d.watch()
    for _ in range(100):
        d.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "60", "0.60")
    d.watch()
    assert len(d.copies()) == 200
    for route in ("/order", "/orders"):  # venue latency: neither executor can finish alone first
        d.sim.inject_fault("POST", route, "delay", count=200, delay=0.25)
    procs = [subprocess.Popen([sys.executable, "executor.py", "--once"], cwd=ROOT, env=d.env(),  # noqa: S603
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
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
