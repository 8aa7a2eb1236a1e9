"""The one end-to-end rig: the local simulator, a fresh database, followers with CLOB credentials
and their follows, the watcher and the executor run in-process (one cycle at a time) or as
processes (with ./admin, notifier.py and web.py), and the queries the end-to-end tests ask.

- `make_rig(db, sim=None, *, cls=Rig, **options)` (a fixture): a `Rig` over the quiet demo
  scenario unless `sim` is given; what it started is stopped at teardown.
- `Programs`: the project's programs as subprocesses under one environment (used by `Rig`, and
  on its own where no simulator is needed).
- `quiet_scenario()`, `wait_until()`, `free_port()`, `age_database()`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from crypto import KeyRing
from executor import CycleClock, build_context, executor_cycle
from infra.config import Settings
from infra.db import UTCDateTime, session_scope, utcnow
from models import (
    Base,
    CopyOrder,
    CopyStatus,
    FollowerPosition,
    FollowStatus,
    Tier,
    TraderFill,
)
from ops.accounts import add_follow, add_follower
from polymarket_client import PolymarketClient
from sim import Simulator
from tests.support.dbfixtures import Database
from tests.support.paths import ROOT
from tests.support.simfixtures import DEMO_SCENARIO, HARDHAT_KEYS, TRADER_QUIET
from watcher import Shard, WatcherContext, make_chain_source, release_lease, watch_cycle, watcher_client
from wire.types import SignatureType

D = Decimal
DEADLINE = 45.0  # a failure bound for wait_until, not a timing claim
# variables of the outer environment a program under test must not inherit
FOREIGN_ENV = ("PMCT_", "NOTIFY_", "WATCHDOG_", "WEB_", "TELEGRAM_")


def quiet_scenario() -> dict[str, Any]:
    """The demo markets, traders and funded Hardhat accounts, with the history fills but no
    scheduled future fills."""
    data = json.loads(DEMO_SCENARIO.read_text())
    data["fills"] = [f for f in data["fills"] if f["at"] < 0]
    data["activities"], data["combos"] = [], []
    return data


def wait_until(check: Callable[[], bool], timeout: float = DEADLINE, every: float = 0.1) -> bool:
    """Poll `check` until it holds or `timeout` passes; its last answer."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(every)
    return check()


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def age_database(db: Database, hours: float) -> None:
    """Time passes for PMCT: every timestamp it stored moves `hours` into the past."""
    if hours <= 0:
        return
    delta = timedelta(hours=hours)
    with session_scope(db.factory) as s:
        for mapper in Base.registry.mappers:
            cols = [c.key for c in mapper.columns if isinstance(c.type, UTCDateTime)]
            if not cols:
                continue
            for obj in s.scalars(select(mapper.class_)):
                for col in cols:
                    value = getattr(obj, col)
                    if value is not None:
                        setattr(obj, col, value - delta)


class Programs:
    """The project's programs (watcher.py, executor.py, notifier.py, web.py, ./admin) as
    subprocesses with one environment; `close()` stops whatever still runs."""

    def __init__(self, base_env: dict[str, str], tmp: Path | None = None) -> None:
        self.base_env = base_env
        self.tmp = tmp or Path(tempfile.mkdtemp(prefix="pmct-rig-"))
        self.procs: list[subprocess.Popen[str]] = []
        self.logs: dict[int, Path] = {}  # pid → log file, for programs started with one

    def env(self, **extra: str) -> dict[str, str]:
        """The programs' environment: ours over the outer one (minus PMCT/notify/web/Telegram
        variables), then `extra`."""
        outer = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV)}
        return {**outer, **self.base_env, **extra}

    def start(self, script: str, *args: str, log: Path | None = None, **extra: str) -> subprocess.Popen[str]:
        """Start `python SCRIPT ARGS` (stdout and stderr piped, or appended to `log`)."""
        if log is None:
            proc = subprocess.Popen([sys.executable, script, *args], cwd=ROOT,  # noqa: S603
                                    env=self.env(**extra), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        else:
            with log.open("a") as out:
                proc = subprocess.Popen([sys.executable, script, *args], cwd=ROOT,  # noqa: S603
                                        env=self.env(**extra), stdout=out, stderr=subprocess.STDOUT,
                                        text=True)
            self.logs[proc.pid] = log
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str]:
        """SIGTERM and wait; (exit code, its stderr, or its whole log when it has one)."""
        proc.send_signal(signal.SIGTERM)
        if proc.pid in self.logs:
            code = proc.wait(timeout=timeout)
            return code, self.logs[proc.pid].read_text(errors="replace")
        _, err = proc.communicate(timeout=timeout)
        return proc.returncode, err

    def once(self, script: str = "executor.py", *args: str, timeout: float = 300,
             **extra: str) -> subprocess.CompletedProcess[str]:
        """`python SCRIPT --once ARGS` run to its end."""
        return subprocess.run([sys.executable, script, "--once", *args], cwd=ROOT,  # noqa: S603
                              env=self.env(**extra), capture_output=True, text=True, timeout=timeout)

    def admin(self, *args: str, timeout: float = 120, **extra: str) -> subprocess.CompletedProcess[str]:
        """`./admin ARGS` as a process."""
        return subprocess.run([sys.executable, "admin", *args], cwd=ROOT,  # noqa: S603
                              env=self.env(**extra), capture_output=True, text=True, timeout=timeout)

    def start_web(self, **extra: str) -> str:
        """web.py on a free port (log in the rig's folder); its base URL once /healthz answers."""
        port = free_port()
        log = self.tmp / "web.log"
        self.start("web.py", "--port", str(port), log=log, **extra)
        base = f"http://127.0.0.1:{port}"
        if not wait_until(lambda: _answers(base + "/healthz"), timeout=30, every=0.2):
            raise AssertionError(log.read_text(errors="replace"))
        return base

    def close(self) -> None:
        """Stop what still runs: SIGTERM, then SIGKILL if it does not exit."""
        for proc in self.procs:
            if proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate(timeout=30)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback
            return True
    except OSError:
        return False


class Rig(Programs):
    """The simulator, a migrated database, followers (Hardhat accounts, credentials derived from
    the simulator) following TRADER_QUIET unless told otherwise; watcher and executor cycles
    in-process, the programs as processes, and queries of what happened."""

    def __init__(self, db: Database, sim: Simulator, fernet_key: str, *, mode: str = "live",
                 tier: Tier = Tier.PRO, book_ttl: float | None = None, tmp: Path | None = None,
                 **settings: Any) -> None:
        self.db, self.sim, self.fernet_key = db, sim, fernet_key
        base: dict[str, Any] = dict(
            database_url=db.url, data_api_url=sim.data_url, gamma_api_url=sim.gamma_url,
            clob_api_url=sim.clob_url, polygon_rpc=sim.rpc_url, relayer_url=sim.relayer_url,
            encryption_key=fernet_key, execution_mode=mode, max_copy_delay=120)
        self.settings = Settings(**{**base, **settings})
        self.ring = KeyRing(fernet_key)
        self.tier = tier  # of the followers add_follower creates
        self.book_ttl = book_ttl  # the executor's book reuse (None: the executor's default)
        self.offset = timedelta(0)  # how far the watcher's clock is ahead (an outage)
        self.funders: dict[int, str] = {}  # Hardhat index → funder address
        self.follower_ids: dict[int, int] = {}  # Hardhat index → follower id
        self.sleeps: list[float] = []  # backoffs and Retry-After waits of the in-process clients
        super().__init__({}, tmp)

    # ---- settings and clocks ----------------------------------------------------------------------
    def configure(self, **settings: Any) -> None:
        """Change settings of the in-process watcher and executor."""
        self.settings = replace(self.settings, **settings)

    def clock(self) -> datetime:
        """The watcher's clock: now, plus the outage offset."""
        return utcnow() + self.offset

    async def sleep(self, seconds: float) -> None:
        """Backoffs and Retry-After waits are recorded, not slept (rate-limit waits stay short)."""
        self.sleeps.append(seconds)
        await asyncio.sleep(min(seconds, 0.01))

    def env(self, **extra: str) -> dict[str, str]:
        """Environment of the programs: this rig's database, key, mode and simulator (every URL
        on loopback), quick watcher and executor wakes, INFO logs; then `extra`.

        Fills come from the Data API alone unless `extra` says FILL_SOURCES (the chain source
        has its own end-to-end tests, and the watcher's SIGTERM test runs both sources), so
        that each test's fills are seen by one source at a known moment."""
        self.base_env = {
            "DATABASE_URL": self.db.url, "PMCT_ENV_FILE": "/nonexistent/.env",
            "ENCRYPTION_KEY": self.fernet_key, "EXECUTION_MODE": self.settings.execution_mode,
            "POLYMARKET_DATA_API_URL": self.sim.data_url, "POLYMARKET_GAMMA_API_URL": self.sim.gamma_url,
            "POLYMARKET_CLOB_API_URL": self.sim.clob_url, "POLYGON_RPC": self.sim.rpc_url,
            "POLYMARKET_RELAYER_URL": self.sim.relayer_url, "FILL_SOURCES": "data_api",
            "WATCHER_POLL_INTERVAL": "0.5", "EXECUTOR_POLL_INTERVAL": "1", "LOG_LEVEL": "INFO"}
        return super().env(**extra)

    # ---- followers and follows -------------------------------------------------------------------
    def credentials(self, index: int) -> Any:
        """CLOB API credentials of Hardhat account `index`, created or derived at the simulator."""
        async def derive(client: PolymarketClient) -> Any:
            return await client.create_or_derive_api_key(HARDHAT_KEYS[index])
        return self.run(derive)

    def add_follower(self, index: int, sig: SignatureType = SignatureType.EOA, *, pct: str = "10",
                     max_trade: str = "50", funder: str | None = None, trader: str | None = TRADER_QUIET,
                     tier: Tier | None = None, name: str | None = None, creds: bool = True,
                     started: datetime | None = None, status: FollowStatus = FollowStatus.ACTIVE) -> str:
        """Hardhat account `index` as a follower (with CLOB credentials unless `creds=False`)
        following `trader` (none if None) from `started` (now); its funder address."""
        api = self.credentials(index) if creds else None
        with session_scope(self.db.factory) as s:
            f = add_follower(s, self.ring, name=name or f"F{index}", email=f"f{index}@x.io",
                             private_key=HARDHAT_KEYS[index], signature_type=sig, funder=funder,
                             tier=tier or self.tier)
            if api is not None:
                f.encrypted_api_creds, f.api_key_id = self.ring.encrypt_api_creds(api), api.api_key
            s.flush()
            self.funders[index], self.follower_ids[index] = f.funder_address, f.id
        if trader is not None:
            self.follow(index, trader, pct=pct, max_trade=max_trade, started=started, status=status)
        return self.funders[index]

    def follow(self, index: int, trader: str = TRADER_QUIET, *, pct: str = "10", max_trade: str = "50",
               started: datetime | None = None, status: FollowStatus = FollowStatus.ACTIVE) -> int:
        """Follower `index` follows `trader`; the follow's id."""
        with session_scope(self.db.factory) as s:
            fo = add_follow(s, follower_wallet=self.funders[index], trader_wallet=trader, copy_pct=D(pct),
                            max_usd_per_trade=D(max_trade), now=started or utcnow())
            fo.status = status
            s.flush()
            return fo.id

    def add_quiet_followers(self, started: datetime) -> None:
        """Hardhat #0 and #1 follow TRADER_QUIET (10 %, $50) from `started`, #2 paused; no CLOB
        credentials (the watcher needs none)."""
        for i in (0, 1, 2):
            self.add_follower(i, creds=False, started=started,
                              status=FollowStatus.PAUSED if i == 2 else FollowStatus.ACTIVE)

    # ---- the daemons' cycles, in-process --------------------------------------------------------
    def run(self, step: Callable[[PolymarketClient], Awaitable[Any]]) -> Any:
        """`step(client)` with a fresh client, in its own event loop."""
        async def go() -> Any:
            client = PolymarketClient.from_settings(self.settings, http2=False, sleep=self.sleep)
            try:
                return await step(client)
            finally:
                await client.aclose()
        return asyncio.run(go())

    @asynccontextmanager
    async def watcher(self, owner: str = "rig-w", *, client: Any = None, settings: Settings | None = None,
                      chain: bool = False, **options: Any) -> AsyncIterator[WatcherContext]:
        """A watcher context as the daemon builds it (its client, the chain source if `chain`);
        the lease released and the clients closed at the end."""
        settings = settings or self.settings
        client = client or watcher_client(settings, sleep=self.sleep)
        ctx = WatcherContext(settings=settings, factory=self.db.factory, client=client, owner=owner,
                             clock=self.clock, **options)
        if chain:
            ctx.chain = make_chain_source(settings, self.db.factory, client, Shard())
        try:
            yield ctx
        finally:
            release_lease(self.db.factory, Shard(), owner)
            if chain:
                await ctx.chain.rpc.aclose()
            await client.aclose()

    @asynccontextmanager
    async def executor(self) -> AsyncIterator[Any]:
        """An executor context as the daemon builds it (book reuse as `book_ttl` says)."""
        client = PolymarketClient.from_settings(self.settings, http2=False, sleep=self.sleep)
        ctx = build_context(self.settings, self.db.factory, client)
        if self.book_ttl is not None:
            ctx.book_ttl = self.book_ttl
        try:
            yield ctx
        finally:
            await client.aclose()

    def watch(self) -> dict[str, int]:
        """One watcher cycle; its counts."""
        async def go() -> dict[str, int]:
            async with self.watcher() as ctx:
                return (await watch_cycle(ctx, asyncio.Event())).counts
        return asyncio.run(go())

    def execute(self) -> dict[str, int]:
        """One executor cycle with the open-order pass; its counts."""
        async def go() -> dict[str, int]:
            async with self.executor() as ctx:
                return (await executor_cycle(ctx, asyncio.Event(), CycleClock(0), force_manage=True)).counts
        return asyncio.run(go())

    # ---- time passes ------------------------------------------------------------------------------
    def age_fills(self, hours: float) -> None:
        """Move every stored trader fill `hours` into the past (its copies are that much older)."""
        with session_scope(self.db.factory) as s:
            for fill in s.scalars(select(TraderFill)):
                fill.occurred_at = fill.occurred_at - timedelta(hours=hours)

    def age_everything(self, hours: float) -> None:
        """Move every timestamp PMCT stored `hours` into the past (see `age_database`)."""
        age_database(self.db, hours)

    # ---- what happened ----------------------------------------------------------------------------
    def copies(self, side: str | None = None) -> list[CopyOrder]:
        """Copy orders by id (of one side if given)."""
        with self.db.session() as s:
            q = select(CopyOrder).order_by(CopyOrder.id)
            if side:
                q = q.where(CopyOrder.side == side)
            return list(s.scalars(q))

    def statuses(self) -> list[tuple[CopyStatus, str | None]]:
        """(status, reason) of each copy order, by id."""
        return [(c.status, c.reason) for c in self.copies()]

    def trader_fills(self) -> list[TraderFill]:
        """Stored trader fills by id."""
        with self.db.session() as s:
            return list(s.scalars(select(TraderFill).order_by(TraderFill.id)))

    def count(self, model: Any, *where: Any) -> int:
        """Rows of `model` matching `where`."""
        with self.db.session() as s:
            return s.scalar(select(func.count()).select_from(model).where(*where)) or 0

    def resting(self) -> list[dict[str, Any]]:
        """The venue's live orders."""
        return [o for o in self.sim.orders() if o["status"] == "LIVE"]

    def posts(self) -> int:
        """Order POSTs the venue received (single and batch)."""
        return sum(len(self.sim.requests(service="clob", path=p)) for p in ("/order", "/orders"))

    def held(self, index: int, token: str) -> Decimal:
        """Shares of `token` follower `index` holds at the venue."""
        return D(self.sim.balances(self.funders[index])["tokens"].get(token, "0"))

    def pusd(self, index: int) -> Decimal:
        """pUSD follower `index` holds at the venue."""
        return D(self.sim.balances(self.funders[index])["pusd"])

    def position(self, token: str) -> FollowerPosition:
        """PMCT's (only) position in `token`."""
        with self.db.session() as s:
            pos = s.scalar(select(FollowerPosition).where(FollowerPosition.token_id == token))
            assert pos is not None
            return pos


@pytest.fixture
def make_rig(simulator_factory: Callable[..., Simulator], fernet_key: str,
             tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    """`make_rig(db, sim=None, *, cls=Rig, **options)`: a rig over the quiet scenario (or `sim`);
    the programs it started are stopped at teardown (before the simulators)."""
    rigs: list[Rig] = []

    def make(db: Database, sim: Simulator | None = None, *, cls: type[Rig] = Rig, **options: Any) -> Rig:
        rig = cls(db, sim or simulator_factory(quiet_scenario()), fernet_key,
                  tmp=tmp_path / f"rig{len(rigs)}", **options)
        rig.tmp.mkdir(parents=True, exist_ok=True)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.close()
