"""Live-money safety end to end: the daemons (and ./admin) as processes against the simulator (the
shared rig), on SQLite and PostgreSQL. Mode switches both ways, the kill switch cancelling resting
orders at the venue at the default ORDER_MANAGE_INTERVAL, a trader's exit within one cycle, a marketable
remainder filled later, a tick change between two copies, a per-follower daily cap across two
follows, three executors that never over-spend, SIGTERM during a large open-order backlog."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from copying.context import SUBMIT_BOOK_AGE
from models import CopyOrder, CopyOrderEvent, CopyStatus, Follower
from tests.support.dbfixtures import Database
from tests.support.rig import Rig, wait_until
from tests.support.simfixtures import FED_YES, HARDHAT_ADDRESSES, TRADER_CAR, TRADER_QUIET

pytestmark = pytest.mark.e2e
D = Decimal


@pytest.fixture
def procs(database: Database, make_rig: Callable[..., Rig]) -> Rig:
    """Live mode, follower Hardhat #1 copying 10 % of TRADER_QUIET; daemons stopped at teardown."""
    d = make_rig(database)
    d.add_follower(1)
    d.watch()
    return d


def rest_buys(d: Rig, n: int, price: str = "0.62") -> None:
    """The trader buys `n` times below the ask: each copy rests at the venue."""
    for _ in range(n):
        d.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "100", price)
    d.watch()


# --- the kill switch ---------------------------------------------------------------------------------

def test_kill_switch_cancels_resting_orders_at_the_venue_within_seconds(procs: Rig) -> None:
    """Three live orders resting, the executor running with ORDER_MANAGE_INTERVAL at its default
    (300 s): `admin disable --all` returns once the venue confirmed every cancel."""
    ex = procs.start("executor.py")
    rest_buys(procs, 3)
    assert wait_until(lambda: len(procs.resting()) == 3), procs.statuses()
    out = procs.admin("disable", "--all", "--reason", "incident", "--wait", "30")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all 3 open order(s) cancelled and confirmed" in out.stdout
    assert procs.resting() == []
    assert procs.statuses() == [(CopyStatus.CANCELED, "kill_switch")] * 3
    assert all(o["status"] == "CANCELED" for o in procs.sim.orders())
    deletes = [r for r in procs.sim.requests(service="clob", path="/orders") if r["method"] == "DELETE"]
    assert len(deletes) == 1  # the three cancels went as one DELETE /orders
    rc, err = procs.stop(ex)
    assert rc == 0, err


def test_disable_says_what_is_still_pending_when_no_executor_runs(procs: Rig) -> None:
    """No executor: `admin disable --all --wait 2` lists the order left open and exits 1."""
    rest_buys(procs, 1)
    done = procs.once()
    assert done.returncode == 0, done.stderr
    out = procs.admin("disable", "--all", "--wait", "2")
    assert out.returncode == 1 and "still pending" in out.stderr and "cancel-open --live" in out.stderr


# --- a trader's exit ---------------------------------------------------------------------------------

def test_trader_exit_cancels_the_open_buy_within_one_cycle(procs: Rig) -> None:
    """Watcher and executor running (snapshots hourly): the trader sells its whole position and the
    resting BUY copy is cancelled at the venue by the next wake, not by a snapshot."""
    procs.start("watcher.py", POSITION_SNAPSHOT_INTERVAL="3600")
    procs.start("executor.py")
    procs.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "100", "0.62")
    assert wait_until(lambda: len(procs.resting()) == 1), procs.statuses()
    procs.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "SELL", "350", "0.63")
    assert wait_until(lambda: (CopyStatus.CANCELED, "trader_exited") in procs.statuses()), procs.statuses()
    assert procs.resting() == []


# --- modes -------------------------------------------------------------------------------------------

def test_going_live_closes_paper_copies_without_posting_them(procs: Rig) -> None:
    """A paper executor leaves a copy resting on paper; a live executor then starts: the paper
    copy is closed (mode_changed) and never posted; new copies are live."""
    rest_buys(procs, 1)
    paper = procs.once(EXECUTION_MODE="paper")
    assert paper.returncode == 0, paper.stderr
    assert procs.statuses() == [(CopyStatus.LIVE, None)] and procs.copies()[0].paper
    ex = procs.start("executor.py", EXECUTION_MODE="live")
    assert wait_until(lambda: procs.statuses()[0] == (CopyStatus.CANCELED, "mode_changed"))
    assert procs.posts() == 0
    rest_buys(procs, 1)
    assert wait_until(lambda: len(procs.resting()) == 1)
    assert procs.copies()[1].paper is False
    rc, err = procs.stop(ex)
    assert rc == 0, err


def test_going_paper_with_live_orders_is_refused_until_they_are_cancelled(procs: Rig) -> None:
    """A live order rests; a paper executor refuses to start (exit 2) and names the command;
    `admin cancel-open --live --yes` cancels it at the venue; then the paper executor starts."""
    rest_buys(procs, 1)
    assert procs.once().returncode == 0
    assert len(procs.resting()) == 1
    refused = procs.once(EXECUTION_MODE="paper")
    assert refused.returncode == 2
    assert "admin cancel-open --live" in refused.stderr and f"copy #{procs.copies()[0].id}" in refused.stderr
    assert len(procs.resting()) == 1  # untouched
    out = procs.admin("cancel-open", "--live", "--yes")
    assert out.returncode == 0, out.stdout + out.stderr
    assert procs.resting() == [] and procs.statuses() == [(CopyStatus.CANCELED, "canceled_by_admin")]
    assert procs.once(EXECUTION_MODE="paper").returncode == 0


# --- marketable remainders ---------------------------------------------------------------------------

def test_a_partial_market_order_remainder_is_filled_later(procs: Rig) -> None:
    """At 36 h the market order finds 3 of 10 shares: the copy waits between orders; when the book
    refills, the next scheduled pass buys the 7 left (ORDER_MANAGE_INTERVAL=1 here)."""
    ex = procs.start("executor.py", ORDER_MANAGE_INTERVAL="1")
    rest_buys(procs, 1)
    assert wait_until(lambda: len(procs.resting()) == 1)
    procs.sim.set_book(FED_YES, bids=[["0.55", "500"]], asks=[["0.65", "3"], ["0.90", "500"]])
    procs.age_fills(37)
    assert wait_until(lambda: procs.copies()[0].filled_size == D(3)), procs.statuses()
    assert wait_until(lambda: procs.statuses()[0][0] == CopyStatus.CANCELING)
    procs.sim.set_book(FED_YES, asks=[["0.65", "500"]])
    assert wait_until(lambda: procs.statuses()[0][0] == CopyStatus.FILLED), procs.statuses()
    co = procs.copies()[0]
    assert co.filled_size == D(10)
    fak = [o for o in procs.sim.orders() if o["order_type"] == "FAK"]
    assert len(fak) == 2 and procs.resting() == []
    rc, err = procs.stop(ex)
    assert rc == 0, err


# --- ticks -------------------------------------------------------------------------------------------

def test_a_tick_change_between_two_copies(procs: Rig) -> None:
    """The market's tick goes 0.01 → 0.001 between two copies: the second is priced 0.585 on the
    new grid and accepted, not snapped to the cached 0.01 grid."""
    procs.start("watcher.py")
    procs.start("executor.py")
    procs.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "100", "0.58")
    assert wait_until(lambda: len(procs.resting()) == 1)
    procs.sim.set_market("fed", tick_size="0.001")
    # new copies share a book (tick included) for up to SUBMIT_BOOK_AGE: the order pass may have
    # read one just before the change; a copy after that window must see the new grid
    time.sleep(SUBMIT_BOOK_AGE * 2)
    procs.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "100", "0.585")
    assert wait_until(lambda: len(procs.resting()) == 2), (procs.statuses(), procs.sim.rejections())
    prices = sorted(D(str(o["price"])) for o in procs.resting())
    assert prices == [D("0.58"), D("0.585")], (procs.statuses(), prices)
    assert procs.sim.rejections() == []


# --- per-follower limits -----------------------------------------------------------------------------

def test_follower_daily_cap_across_two_follows(procs: Rig) -> None:
    """Follower cap $8 a day over two traders: the first copy ($6.20) rests; the second, of the
    other trader, would go over the cap and is skipped naming the follower's cap."""
    wallet = HARDHAT_ADDRESSES[1]
    assert procs.admin("set-tier", "--wallet", wallet, "--tier", "elite").returncode == 0
    out = procs.admin("add-follow", "--wallet", wallet, "--follow", TRADER_CAR, "--copy-pct", "10",
                      "--max-trade", "50")
    assert out.returncode == 0, out.stderr
    out = procs.admin("set-follower-limits", "--wallet", wallet, "--daily-cap", "8")
    assert out.returncode == 0 and "daily cap 8 USD" in out.stdout, out.stderr
    procs.start("watcher.py")
    procs.start("executor.py")
    procs.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "100", "0.62")
    assert wait_until(lambda: len(procs.resting()) == 1)
    procs.sim.add_trader_fill(TRADER_CAR, "fed", "Yes", "BUY", "100", "0.62")
    assert wait_until(lambda: len(procs.copies()) == 2 and procs.statuses()[1][0] == CopyStatus.SKIPPED)
    assert procs.statuses()[1] == (CopyStatus.SKIPPED, "follower_daily_cap_reached")
    assert len(procs.resting()) == 1


# --- scale-out and stop --------------------------------------------------------------------------

@pytest.mark.postgres
def test_three_executors_never_overspend_a_follower(pg_database: Database,
                                                    make_rig: Callable[..., Rig]) -> None:
    """Three executor processes on one PostgreSQL over 300 copies: each copy claimed once, all three
    take part, and the follower holding 150 pUSD never has more than that in orders."""
    d = make_rig(pg_database)
    d.add_follower(1, pct="10", max_trade="50")
    d.add_follower(2, pct="10", max_trade="50")  # Hardhat #2 holds only 150 pUSD
    d.watch()
    for _ in range(150):
        d.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "60", "0.60")
    d.watch()
    assert len(d.copies()) == 300
    for route in ("/order", "/orders"):
        # each POST takes 1 s, so one executor's doubling batches take several seconds: the
        # processes, started together, all find copies to claim however slowly each one starts
        d.sim.inject_fault("POST", route, "delay", count=300, delay=1.0)
    runs = [d.start("executor.py", "--once") for _ in range(3)]
    for p in runs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    with d.db.session() as s:
        claims = s.execute(select(CopyOrderEvent.copy_order_id, func.count())
                           .where(CopyOrderEvent.event == "claim").group_by(CopyOrderEvent.copy_order_id)).all()
        owners = {e["owner"] for (e,) in s.execute(select(CopyOrderEvent.detail)
                                                   .where(CopyOrderEvent.event == "claim"))}
        wallets = {f.name: f.funder_address.lower() for f in s.scalars(select(Follower))}
    assert len(claims) == 300 and all(n == 1 for _, n in claims)
    assert len(owners) == 3
    spent: dict[str, Decimal] = {}
    for o in d.sim.orders():
        spent[o["maker"].lower()] = spent.get(o["maker"].lower(), D(0)) + D(str(o["price"])) * D(
            str(o["original_size"]))
    assert D(0) < spent[wallets["F2"]] <= D(150)
    skipped = [c for c in d.copies() if c.follower_id != d.copies()[0].follower_id
               and c.status == CopyStatus.SKIPPED]
    assert skipped and all(c.reason == "insufficient_balance" for c in skipped)


def test_sigterm_during_a_large_open_order_backlog_exits_promptly(procs: Rig) -> None:
    """400 orders resting and a slow venue (1 s per trades read): SIGTERM while the scheduled pass
    works through them is honoured between chunks; the executor exits 0 well before the pass ends."""
    procs.sim.fund(address=HARDHAT_ADDRESSES[1], pusd="100000")
    rest_buys(procs, 400)
    first = procs.once(ORDER_MANAGE_INTERVAL="3600")
    assert first.returncode == 0, first.stderr
    assert len(procs.resting()) == 400
    procs.sim.inject_fault("GET", "/data/trades", "delay", count=1000, delay=1.0)
    procs.sim.inject_fault("GET", "/data/order/*", "delay", count=1000, delay=1.0)
    before = len(procs.sim.requests(service="clob", path="/data/orders"))
    ex = procs.start("executor.py")
    assert wait_until(lambda: len(procs.sim.requests(service="clob", path="/data/orders")) > before)
    # a pass reading each order (the old way) would need 400 s / 8 in flight here: a stop that
    # waited for it would miss this bound
    rc, err = procs.stop(ex, timeout=20)
    assert rc == 0, err
    assert "executor stopped" in err
    with procs.db.session() as s:
        assert s.scalar(select(func.count()).select_from(CopyOrder)
                        .where(CopyOrder.status == CopyStatus.LIVE)) == 400


@pytest.fixture(autouse=True)
def _no_stray_env() -> Iterator[None]:
    """Settings of one test never leak into another's processes."""
    before = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(before)


# --- a closed market, the dead-man switch ----------------------------------------------------------

def test_a_closing_market_cancels_its_resting_orders(procs: Rig) -> None:
    """The market closes: the executor reads the open copies' markets again (here every second)
    and cancels the resting order (market_closed) at the next wake."""
    ex = procs.start("executor.py", MARKET_REFRESH_INTERVAL="1")
    rest_buys(procs, 1)
    assert wait_until(lambda: len(procs.resting()) == 1)
    procs.sim.set_market("fed", closed=True)
    assert wait_until(lambda: procs.statuses() == [(CopyStatus.CANCELED, "market_closed")]), procs.statuses()
    assert procs.resting() == []
    rc, err = procs.stop(ex)
    assert rc == 0, err


def test_the_dead_man_switch_cancels_orders_of_a_dead_executor(procs: Rig) -> None:
    """CLOB_HEARTBEAT=on: the executor dies (kill -9) with an order resting; ten seconds without a
    heartbeat and the venue cancels it; the restarted executor records it closed."""
    ex = procs.start("executor.py", CLOB_HEARTBEAT="on")
    rest_buys(procs, 1)
    assert wait_until(lambda: len(procs.resting()) == 1 and bool(procs.sim.heartbeats()))
    ex.kill()
    ex.communicate(timeout=30)
    assert len(procs.resting()) == 1
    procs.sim.set_clock(advance=11)
    assert [(o["status"], o["status_reason"]) for o in procs.sim.orders()] == [("CANCELED", "heartbeat_timeout")]
    done = procs.once()
    assert done.returncode == 0, done.stderr
    assert procs.statuses() == [(CopyStatus.CANCELED, "canceled_at_venue")]
