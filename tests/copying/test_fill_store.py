"""Each trader fill stored once; one copy order per active follow; stale/early/combo skipped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from copying.intake import fill_keys, store_fills
from models import Base, CopyOrder, CopyStatus, FollowerStatus, FollowStatus, TraderFill
from tests.support import factories as fx
from tests.support.dbfixtures import Database
from wire.types import Activity, Side

T = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
DELAY = timedelta(seconds=120)
World = tuple[Database, int]  # the database and the trader's id


def act(n: int = 1, *, tx: str | None = None, size: str = "10", price: str = "0.5",
        side: Side | None = Side.BUY, kind: str = "TRADE", at: datetime = T,
        combo: bool = False, token: str = "111") -> Activity:
    """An activity row."""
    return Activity(
        proxy_wallet="0xabc", timestamp=at, type=kind, condition_id="0x" + "ab" * 32,
        token_id=token, side=side, size=Decimal(size), price=Decimal(price),
        usdc_size=Decimal(size) * Decimal(price), transaction_hash=tx or f"0x{n:064x}",
        outcome="Yes", outcome_index=0, title="Q", slug="q", event_slug="e", is_combo=combo,
        raw={"n": n})


def count(s: Session, model: type[Base], *where: ColumnElement[bool]) -> int:
    return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


@pytest.fixture
def world(database: Database) -> World:
    """A trader with three follows: two active, one paused; follows started at T - 1 h."""
    with database.session() as s:
        t = fx.trader(s)
        fos = [fx.follow(s, fx.follower(s, i), t) for i in (1, 2, 3)]
        for fo in fos:
            fo.started_at = T - timedelta(hours=1)
        fos[2].status = FollowStatus.PAUSED
        s.commit()
        return database, t.id


def test_fill_keys_distinguish_identical_rows_by_occurrence() -> None:
    """Two byte-identical rows in one tx get different keys; re-computing gives the same keys."""
    rows = [act(1, tx="0x" + "1" * 64), act(1, tx="0x" + "1" * 64)]
    k1, k2 = fill_keys(rows)
    assert k1 != k2 and fill_keys(rows) == [k1, k2]


def test_new_fill_queues_one_copy_per_active_follow(world: World) -> None:
    """A fresh BUY makes exactly one QUEUED copy per active follow (paused follows get none)."""
    db, tid = world
    with db.session() as s:
        r = store_fills(s, tid, [act()], now=T + timedelta(seconds=5), max_copy_delay=DELAY)
        s.commit()
        assert (r.new_fills, r.queued, r.skipped) == (1, 2, 0)
        assert count(s, CopyOrder, CopyOrder.status == CopyStatus.QUEUED) == 2


def test_replayed_page_and_overlapping_windows_insert_nothing_twice(world: World) -> None:
    """The same rows polled again, or a window overlapping the last one, add no rows."""
    db, tid = world
    first = [act(1), act(2, at=T + timedelta(seconds=1))]
    second = [act(2, at=T + timedelta(seconds=1)), act(3, at=T + timedelta(seconds=2))]
    with db.session() as s:
        store_fills(s, tid, first, now=T + timedelta(seconds=5), max_copy_delay=DELAY)
        again = store_fills(s, tid, first, now=T + timedelta(seconds=6), max_copy_delay=DELAY)
        overlap = store_fills(s, tid, second, now=T + timedelta(seconds=7), max_copy_delay=DELAY)
        s.commit()
        assert (again.new_fills, again.queued) == (0, 0)
        assert (overlap.new_fills, overlap.queued) == (1, 2)
        assert count(s, TraderFill) == 3 and count(s, CopyOrder) == 6


def test_three_fills_in_one_transaction_are_three_rows(world: World) -> None:
    """Different fills sharing a tx hash are kept apart (tx hash is not an id)."""
    db, tid = world
    tx = "0x" + "7" * 64
    rows = [act(tx=tx, size="5"), act(tx=tx, size="6"), act(tx=tx, size="7", side=Side.SELL)]
    with db.session() as s:
        assert store_fills(s, tid, rows, now=T, max_copy_delay=DELAY).new_fills == 3
        assert store_fills(s, tid, rows, now=T, max_copy_delay=DELAY).new_fills == 0
        s.commit()
        assert count(s, TraderFill) == 3


def test_two_identical_rows_in_one_transaction_are_two_fills(world: World) -> None:
    """Byte-identical rows (two equal maker fills in one tx) are both kept, once each."""
    db, tid = world
    tx = "0x" + "8" * 64
    rows = [act(tx=tx), act(tx=tx)]
    with db.session() as s:
        store_fills(s, tid, rows, now=T, max_copy_delay=DELAY)
        store_fills(s, tid, rows, now=T + timedelta(seconds=3), max_copy_delay=DELAY)
        s.commit()
        assert count(s, TraderFill) == 2 and count(s, CopyOrder) == 4


def test_stale_fill_is_stored_but_never_queued(world: World) -> None:
    """A fill first seen more than MAX_COPY_DELAY after it happened is SKIPPED(stale)."""
    db, tid = world
    with db.session() as s:
        r = store_fills(s, tid, [act()], now=T + DELAY + timedelta(seconds=1), max_copy_delay=DELAY)
        s.commit()
        assert (r.new_fills, r.queued, r.skipped) == (1, 0, 2)
        assert {c.reason for c in s.scalars(select(CopyOrder))} == {"stale"}
        assert count(s, CopyOrder, CopyOrder.status == CopyStatus.QUEUED) == 0


def test_fill_before_the_follow_started_is_not_copied(world: World) -> None:
    """History from before a follow's start is SKIPPED(before_follow)."""
    db, tid = world
    early = T - timedelta(hours=2)
    with db.session() as s:
        r = store_fills(s, tid, [act(at=early)], now=early + timedelta(seconds=1), max_copy_delay=DELAY)
        s.commit()
        assert r.queued == 0
        assert {c.reason for c in s.scalars(select(CopyOrder))} == {"before_follow"}


def test_combo_and_non_trade_rows(world: World) -> None:
    """Combo trades are stored and skipped; SPLIT/MERGE/REDEEM are stored and queue nothing."""
    db, tid = world
    rows = [act(1, combo=True), act(2, kind="SPLIT", side=None), act(3, kind="REDEEM", side=None)]
    with db.session() as s:
        r = store_fills(s, tid, rows, now=T, max_copy_delay=DELAY)
        s.commit()
        assert r.new_fills == 3 and r.queued == 0
        assert {c.reason for c in s.scalars(select(CopyOrder))} == {"combo"}


def test_paused_follower_gets_no_copy(world: World) -> None:
    """A paused follower's follows queue nothing."""
    db, tid = world
    from models import Follower
    with db.session() as s:
        follower = s.scalars(select(Follower)).first()
        assert follower is not None
        follower.status = FollowerStatus.PAUSED
        s.commit()
        r = store_fills(s, tid, [act()], now=T, max_copy_delay=DELAY)
        s.commit()
        assert r.queued == 1
