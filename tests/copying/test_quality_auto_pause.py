"""Auto-pause of a follow whose copied edge stays negative (AUTO_PAUSE_TRADES, off by default):
the verdict over the last N closed trades, the pause, its log line and its notification."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from copying.auto_pause import auto_pause, edge_verdict
from copying.copy_edge import ClosedTrade
from models import Follow, FollowerPosition, FollowStatus, Notification, NotificationKind
from tests.support.dbfixtures import Database
from tests.support.fake_exchange import YES, book
from tests.support.harness import Harness
from wire.types import Side

D = Decimal
T = datetime(2026, 11, 21, tzinfo=UTC)


def trade(edge: str, minutes: int) -> ClosedTrade:
    return ClosedTrade(1, "t", True, D(edge), D(0), False, T + timedelta(minutes=minutes))


def test_verdict_needs_n_trades_after_the_last_change() -> None:
    """The mean of the last N edges after `since`; None with fewer than N."""
    trades = [trade("5", 1), trade("-1", 2), trade("-2", 3), trade("-3", 4)]
    assert edge_verdict(trades, T, 3) == D(-2)
    assert edge_verdict(trades, T, 4) == D("-0.25")
    assert edge_verdict(trades, T, 5) is None
    assert edge_verdict(trades, T + timedelta(minutes=2), 3) is None  # resumed since
    assert edge_verdict(trades, T, 0) is None


def losing_round_trip(h: Harness) -> None:
    """Paper: we buy 10 @ 0.58 with the leader, he sells @ 0.62; our sale is then booked lower."""
    h.fx.books[YES] = book(YES, [("0.55", "500")], [("0.58", "500")])
    h.trader_fill(Side.BUY, "100", "0.58")
    h.cycle()
    h.clock.now += timedelta(minutes=1)
    h.fx.books[YES] = book(YES, [("0.62", "500")], [("0.64", "500")])
    h.trader_fill(Side.SELL, "100", "0.62")
    h.cycle()
    h.cycle()
    with h.db.session() as s:
        pos = s.scalar(select(FollowerPosition))
        assert pos is not None and pos.size == 0
        pos.realized_pnl = D("-0.20")  # as if we had sold at 0.56 while he got 0.62
        s.commit()


def test_negative_edge_pauses_the_follow_logs_and_notifies(database: Database, fernet_key: str,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """One closed trade at −10.34 points with AUTO_PAUSE_TRADES=1: the executor's management
    pass pauses the follow, says why (log, pause_reason, a follow_auto_paused notification);
    off (0) by default it does nothing."""
    h = Harness(database, fernet_key, paper=True)
    with database.session() as s:  # the follow was last changed before its trades
        fo = s.get(Follow, h.follow_id)
        assert fo is not None
        fo.updated_at = h.clock.now - timedelta(minutes=1)
        s.commit()
    losing_round_trip(h)
    h.cycle()
    with database.session() as s:
        assert s.get(Follow, h.follow_id).status == FollowStatus.ACTIVE  # type: ignore[union-attr]
        assert auto_pause(s, 2, h.clock.now) == []  # only one closed trade
    h.ctx.settings = replace(h.ctx.settings, auto_pause_trades=1)
    with caplog.at_level(logging.WARNING, logger="pmct.executor"):
        h.cycle()
    with database.session() as s:
        fo = s.get(Follow, h.follow_id)
        assert fo is not None and fo.status == FollowStatus.PAUSED
        assert fo.pause_reason is not None and "-10.34" in fo.pause_reason
        [note] = list(s.scalars(select(Notification).where(
            Notification.kind == NotificationKind.FOLLOW_AUTO_PAUSED)))
        assert note.follower_id == h.follower_id and note.payload["follow_id"] == h.follow_id
    assert any("paused" in r.getMessage() and "auto_pause" in r.getMessage() for r in caplog.records)
