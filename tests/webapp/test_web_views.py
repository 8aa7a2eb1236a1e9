"""Dashboard building blocks: the repricing countdowns (from smart_pricing's schedule), chart
series, the cached fill replay, the cached midpoints and leaderboard, the login rate limiter,
the slider's tier cap."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from sqlalchemy import select

import smart_pricing as sp
from infra.db import session_scope, utcnow
from models import CopyStatus, Follow, Follower, FollowerFill, Tier
from ops.reports import FillFact, replay
from ops.views import schedule_view
from tests.support import factories as fx
from tests.support.webfixtures import Web, login
from webapp.market_data import LeaderboardCache, MidpointCache
from webapp.security import LoginRateLimiter
from webapp.views import MAX_CHART_POINTS, ReplayCache, chart_data, display_status
from wire.errors import ApiError, TransportError
from wire.records import LeaderboardEntry, Page

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("age", "stage", "next_step", "market_in"), [
    (timedelta(0), "trader", sp.TOWARD_MID_AFTER, sp.MARKET_AFTER),
    (timedelta(hours=5, minutes=59), "trader", timedelta(minutes=1),
     sp.MARKET_AFTER - timedelta(hours=5, minutes=59)),
    (sp.TOWARD_MID_AFTER, "toward_mid", sp.MID_AFTER - sp.TOWARD_MID_AFTER,
     sp.MARKET_AFTER - sp.TOWARD_MID_AFTER),
    (sp.BEST_OPPOSITE_AFTER + timedelta(hours=1), "best_opposite",
     sp.MARKET_AFTER - sp.BEST_OPPOSITE_AFTER - timedelta(hours=1),
     sp.MARKET_AFTER - sp.BEST_OPPOSITE_AFTER - timedelta(hours=1)),
    (sp.MARKET_AFTER + timedelta(hours=3), "market", None, timedelta(0)),
])
def test_schedule_view_follows_smart_pricing(age: timedelta, stage: str,
                                             next_step: timedelta | None,
                                             market_in: timedelta) -> None:
    """Stage and countdowns come from smart_pricing's boundaries, counted from the trader's fill."""
    view = schedule_view(T0, T0 + age)
    assert view["stage"] == stage == sp.stage_for(age).value
    assert view["next_step_in"] == (None if next_step is None else int(next_step.total_seconds()))
    assert view["market_order_in"] == int(market_in.total_seconds())


@pytest.mark.parametrize(("status", "filled", "shown"), [
    ("QUEUED", "0", "pending"), ("LIVE", "0", "pending"), ("LIVE", "2", "partial"),
    ("PARTIAL", "2", "partial"), ("FILLED", "10", "filled"), ("SIGNED", None, "pending")])
def test_display_status(status: str, filled: str | None, shown: str) -> None:
    """pending / partial / filled as the pending-orders table shows them."""
    assert display_status(status, filled) == shown


def _fact(i: int, trader: str, side: str, price: str, at: datetime) -> FillFact:
    return FillFact(fill_id=i, filled_at=at, follower="0xf", trader=trader, follow_id=1 if trader == "a" else 2,
                    copy_order_id=i, token_id="t" + trader, side=side, size=D(10), price=D(price),
                    fee=D(0), trader_price=D(price), paper=False, market="m", outcome="Yes")


def test_chart_data_is_aligned_cumulative_and_daily() -> None:
    """One x axis for every trader (None before a trader's first fill), cumulative realized P&L,
    and realized P&L summed per UTC day."""
    facts = [_fact(1, "a", "BUY", "0.50", T0), _fact(2, "b", "BUY", "0.40", T0 + timedelta(hours=1)),
             _fact(3, "a", "SELL", "0.60", T0 + timedelta(hours=2)),
             _fact(4, "b", "SELL", "0.30", T0 + timedelta(days=1))]
    lines, _ = replay(facts)
    data = chart_data(lines)
    assert data["traders"] == ["a", "b"]
    xs, a, b = data["cumulative"]
    assert xs == [int((T0 + timedelta(hours=h)).timestamp()) for h in (0, 1, 2, 24)]
    assert a == [0.0, 0.0, 1.0, 1.0] and b == [None, 0.0, 0.0, -1.0]
    assert data["daily"] == [[int(datetime(2026, 11, 20, tzinfo=UTC).timestamp()),
                              int(datetime(2026, 11, 21, tzinfo=UTC).timestamp())], [1.0, -1.0]]


def test_chart_data_is_thinned_to_a_bounded_number_of_points() -> None:
    """10,000 fills become at most MAX_CHART_POINTS points, the last one kept exactly."""
    facts = [_fact(i, "a", "BUY" if i % 2 == 0 else "SELL", "0.5" if i % 2 == 0 else "0.51",
                   T0 + timedelta(minutes=i)) for i in range(10_000)]
    lines, _ = replay(facts)
    xs, ys = chart_data(lines)["cumulative"]
    assert len(xs) <= MAX_CHART_POINTS and xs == sorted(xs)
    assert xs[-1] == int(facts[-1].filled_at.timestamp())
    assert ys[-1] == pytest.approx(0.1 * 5000)


def test_replay_cache_is_reused_until_a_fill_is_added(web: Web) -> None:
    """Same follower, no new fill: the same replay object; a new fill: a new replay."""
    cache = ReplayCache()
    with session_scope(web.db.factory) as s:
        fo = s.scalars(select(Follow).order_by(Follow.id)).first()
        assert fo is not None
        follower = fo.follower
        first = cache.replayed(s, follower)
        assert cache.replayed(s, follower) is first and first == ([], [])
        co = fx.copy_order(s, fx.trader_fill(s, fo.trader, key="x"), fo, status=CopyStatus.FILLED)
        s.add(FollowerFill(copy_order_id=co.id, follower_id=fo.follower_id, follow_id=fo.id,
                           trade_id="t", order_hash="0x" + "a" * 64, token_id="123", side="BUY",
                           size=D(5), price=D("0.5"), fee=D(0), trade_status="CONFIRMED",
                           filled_at=utcnow()))
        s.flush()
        second = cache.replayed(s, follower)
        assert second is not first and len(second[0]) == 1 and second[1][0].size == D(5)
        assert cache.chart(s, follower) is cache.chart(s, follower)


class _Client:
    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.calls = 0

    def get_midpoint(self, token_id: str) -> D:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return D(answer)

    def get_leaderboard(self, **kwargs: Any) -> Page[LeaderboardEntry]:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return Page(items=tuple(answer), next_cursor=None)


class _Shared:
    def __init__(self, client: _Client) -> None:
        self.client = client
        self.lock = threading.Lock()

    def get(self) -> _Client:
        return self.client


def test_midpoints_are_cached_and_an_unreachable_clob_is_not_asked_again() -> None:
    """TTL cache per token; an API error is n/a (cached); a transport error backs off."""
    now = [100.0]
    client = _Client(["0.5", ApiError(404, "no book"), TransportError("down")])
    prices = MidpointCache(_Shared(client), ttl=30, backoff=60, clock=lambda: now[0])  # type: ignore[arg-type]
    assert prices("a") == D("0.5") and prices("a") == D("0.5") and client.calls == 1
    assert prices("b") is None and prices("b") is None and client.calls == 2
    assert prices("c") is None and client.calls == 3
    assert prices("d") is None and client.calls == 3  # backing off
    now[0] += 31
    assert prices("a") is None and client.calls == 3  # expired, but still backing off
    now[0] += 30
    client.answers.append("0.6")
    assert prices("a") == D("0.6") and client.calls == 4


def test_leaderboard_cache_and_its_failure_view() -> None:
    """A board is cached; a failure is a view with a message, retried after 10 s."""
    now = [0.0]
    entry = LeaderboardEntry(1, "0x" + "a" * 40, "x", "", False, D(1), D(2), "", {})
    client = _Client([[entry], TransportError("down"), [entry]])
    board = LeaderboardCache(_Shared(client), ttl=60, clock=lambda: now[0])  # type: ignore[arg-type]
    assert board.get("week").entries == (entry,) and board.get("week").entries == (entry,)
    assert client.calls == 1
    failed = board.get("day")
    assert failed.entries == () and failed.error and board.get("day") is failed
    now[0] += 11
    assert board.get("day").entries == (entry,) and client.calls == 3
    assert board.get("year").error  # refused before any request
    assert client.calls == 3


def test_login_rate_limiter_window() -> None:
    """N attempts per window per client; the window slides; other clients are independent."""
    now = [0.0]
    limiter = LoginRateLimiter(attempts=3, window=60, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b") and limiter.retry_after("a") > 0
    now[0] += 61
    assert limiter.allow("a") and limiter.retry_after("a") == 0


def test_slider_maximum_is_the_tiers_cap(web: Web) -> None:
    """PRO: 0.1–10; ELITE: 0.1–20; WHALE: still 0.1–20 (the plan's slider range)."""
    client = web.client()
    login(client, "f1")
    for tier, top in ((Tier.PRO, "10"), (Tier.ELITE, "20"), (Tier.WHALE, "20")):
        with session_scope(web.db.factory) as s:
            s.scalars(select(Follower).where(Follower.funder_address == web.wallets["f1"])).one() \
                .tier = tier
        page = client.get("/configure").text
        assert f'min="0.1" max="{top}" step="0.1"' in page, (tier, page[page.find("range"):][:200])
