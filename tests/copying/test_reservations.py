"""Per-follower reservations (`copying.reservations`): today's BUYs and the cost held are exact
sums on both databases (a NUMERIC aggregate on PostgreSQL, Decimal sums on SQLite), and the
cost per market is read only for followers with event-level limits."""

from __future__ import annotations

from decimal import Decimal

import pytest

from copying.reservations import Reservations
from infra.db import session_scope
from models import CopyOrder, FollowerPosition
from tests.support.dbfixtures import Database
from tests.support.harness import T0, Harness

D = Decimal


def test_follower_sums_are_exact_and_the_market_detail_is_read_on_request(database: Database,
                                                                          fernet_key: str) -> None:
    """One copy signed today with 7.5 filled at 0.5813, two positions in two markets: the sums
    are exact; the cost per market is there only when asked for (else a KeyError, never 0)."""
    h = Harness(database, fernet_key)
    h.trader_fill()
    h.cycle()
    copy = h.only()
    with session_scope(h.db.factory) as s:
        co = s.get(CopyOrder, copy.id)
        assert co is not None
        co.filled_size, co.avg_fill_price = D("7.5"), D("0.5813")
        for cond, size, avg in (("0xaaa", D("10.25"), D("0.333333")), ("0xbbb", D("3"), D("0.71"))):
            s.add(FollowerPosition(follower_id=h.follower_id, follow_id=h.follow_id, token_id=cond + "1",
                                   condition_id=cond, paper=False, size=size, avg_cost=avg))
    with session_scope(h.db.factory) as s:
        book = Reservations.load(s, [], False, T0, [h.follower_id])
        assert book.follower_filled_today[h.follower_id] == D("7.5") * D("0.5813")
        assert book.follower_cost[h.follower_id] == D("10.25") * D("0.333333") + D("3") * D("0.71")
        with pytest.raises(KeyError):
            book.follower_usd_by_condition(h.follower_id)
        detailed = Reservations.load(s, [], False, T0, (), [h.follower_id])
        by_market = detailed.follower_usd_by_condition(h.follower_id)
        assert by_market["0xaaa"] == D("10.25") * D("0.333333") and by_market["0xbbb"] == D("2.13")
        assert detailed.follower_cost == book.follower_cost  # an event-limited follower gets the rest too
