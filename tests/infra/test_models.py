"""The database enforces the promises: fills once, one copy per (fill, follow), unique hashes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from models import CopyOrder, CopyStatus, Follow, FollowerPosition, TraderFill
from tests.support import factories as fx
from tests.support.dbfixtures import Database


def test_duplicate_trader_fill_is_refused(database: Database) -> None:
    """Two fills with the same (trader, fill_key) cannot both exist."""
    with database.session() as s:
        t = fx.trader(s)
        fx.trader_fill(s, t, "same")
        s.commit()
        with pytest.raises(IntegrityError):
            fx.trader_fill(s, t, "same")
        s.rollback()
        assert s.scalar(select(func.count()).select_from(TraderFill)) == 1


def test_same_fill_key_for_two_traders_is_allowed(database: Database) -> None:
    """The identity is per trader: the same tx seen from two followed wallets is two fills."""
    with database.session() as s:
        fx.trader_fill(s, fx.trader(s, 1), "same")
        fx.trader_fill(s, fx.trader(s, 2), "same")
        s.commit()
        assert s.scalar(select(func.count()).select_from(TraderFill)) == 2


def test_one_copy_order_per_fill_and_follow(database: Database) -> None:
    """A second copy order for the same (fill, follow) is refused."""
    with database.session() as s:
        t, f = fx.trader(s), fx.follower(s)
        fo, fill = fx.follow(s, f, t), fx.trader_fill(s, t)
        fx.copy_order(s, fill, fo)
        s.commit()
        with pytest.raises(IntegrityError):
            fx.copy_order(s, fill, fo)
        s.rollback()
        assert s.scalar(select(func.count()).select_from(CopyOrder)) == 1


def test_order_hash_is_unique(database: Database) -> None:
    """Two copy orders cannot carry the same venue order hash."""
    h = "0x" + "cd" * 32
    with database.session() as s:
        t = fx.trader(s)
        fo1, fo2 = fx.follow(s, fx.follower(s, 1), t), fx.follow(s, fx.follower(s, 2), t)
        fill = fx.trader_fill(s, t)
        fx.copy_order(s, fill, fo1, order_hash=h)
        s.commit()
        with pytest.raises(IntegrityError):
            fx.copy_order(s, fill, fo2, order_hash=h)
        s.rollback()


def test_duplicate_follow_is_refused(database: Database) -> None:
    """One follow per (follower, trader)."""
    with database.session() as s:
        t, f = fx.trader(s), fx.follower(s)
        fx.follow(s, f, t)
        s.commit()
        with pytest.raises(IntegrityError):
            fx.follow(s, f, t)
        s.rollback()


@pytest.mark.parametrize("pct", ["0", "-1", "100.01"])
def test_copy_pct_range_is_checked_by_the_database(database: Database, pct: str) -> None:
    """copy_pct outside (0, 100] violates a CHECK constraint."""
    with database.session() as s:
        t, f = fx.trader(s), fx.follower(s)
        s.commit()
        with pytest.raises(IntegrityError):
            fx.follow(s, f, t, pct=pct)
        s.rollback()


def test_status_outside_the_enum_is_refused(database: Database) -> None:
    """A raw UPDATE to an unknown status violates the enum CHECK constraint."""
    with database.session() as s:
        t, f = fx.trader(s), fx.follower(s)
        fx.copy_order(s, fx.trader_fill(s, t), fx.follow(s, f, t))
        s.commit()
        with pytest.raises(IntegrityError):
            s.execute(text("UPDATE copy_orders SET status = 'BOGUS'"))
            s.flush()
        s.rollback()


def test_negative_position_is_refused(database: Database) -> None:
    """A follower position can never go below zero shares."""
    with database.session() as s:
        t, f = fx.trader(s), fx.follower(s)
        fo = fx.follow(s, f, t)
        s.add(FollowerPosition(follower_id=f.id, follow_id=fo.id, token_id="1",
                               condition_id="0x1", size=Decimal("-0.01")))
        with pytest.raises(IntegrityError):
            s.flush()
        s.rollback()


def test_decimals_round_trip_exactly(database: Database) -> None:
    """Money columns return exactly the Decimal written (no float drift)."""
    values = ["0.1", "12.345678", "0.000001", "123456789.123456789", "100"]
    with database.session() as s:
        t = fx.trader(s)
        ids = [fx.trader_fill(s, t, f"k{i}", size=Decimal(v), price=Decimal("0.58")).id
               for i, v in enumerate(values)]
        s.commit()
    with database.session() as s:
        got = [s.get(TraderFill, i).size for i in ids]  # type: ignore[union-attr]
    assert got == [Decimal(v) for v in values]
    assert [str(g) for g in got] == values


def test_float_money_is_refused(database: Database) -> None:
    """Writing a float into a money column is an error, not a silent rounding."""
    with database.session() as s:
        t, f = fx.trader(s), fx.follower(s)
        s.add(Follow(follower_id=f.id, trader_id=t.id, copy_pct=10.0,  # a float, on purpose
                     max_usd_per_trade=Decimal("5")))
        with pytest.raises(StatementError):
            s.flush()
        s.rollback()


def test_datetimes_are_utc_aware_and_naive_is_refused(database: Database) -> None:
    """Datetimes come back tz-aware UTC; naive datetimes cannot be written."""
    with database.session() as s:
        t = fx.trader(s)
        fill = fx.trader_fill(s, t)
        s.commit()
        fid = fill.id
    with database.session() as s:
        back = s.get(TraderFill, fid)
        assert back is not None and back.occurred_at == fx.T0
        assert (offset := back.occurred_at.utcoffset()) is not None and offset.total_seconds() == 0
        back.occurred_at = datetime(2026, 1, 1)  # noqa: DTZ001 - the point of the test
        with pytest.raises(StatementError):
            s.flush()
        s.rollback()


def test_copy_status_enum_values_are_stable() -> None:
    """The status vocabulary other tools rely on."""
    assert [c.value for c in CopyStatus] == [
        "QUEUED", "CLAIMED", "SIGNED", "LIVE", "PARTIAL", "CANCELING", "FILLED", "REJECTED",
        "IN_DOUBT", "NOT_PLACED", "CANCELED", "EXPIRED", "SKIPPED"]


@pytest.mark.parametrize("pct", ["5", "0.5", "100", "99.99"])
def test_valid_copy_pct_passes_the_check(database: Database, pct: str) -> None:
    """Numeric CHECKs compare numbers, not text (SQLite stores decimals as text)."""
    with database.session() as s:
        fx.follow(s, fx.follower(s), fx.trader(s), pct=pct)
        s.commit()
