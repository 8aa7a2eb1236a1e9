"""Alerts the notifier raises itself: the daily P&L digest (against a hand-computed P&L) and
stale / recovered daemons, each generated once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from copying.ledger import FillRecord, record_fill
from crypto import KeyRing
from models import CopyOrder, CopyStatus, DaemonHeartbeat, Follower, Notification, NotificationKind
from notify import alerts
from notify import destinations as nd
from notify.digest import due_day
from notify.render import digest_block, format_block
from ops.views import Intervals
from sim.telegram import FakeTelegram
from tests.support import factories
from tests.support.dbfixtures import Database
from tests.support.notify_support import CHAT_A, make_ctx, make_settings, run_until

DAY = date(2026, 11, 20)


def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _fill(s: Session, follower: Follower, fo_id: int, trader_id: int, n: int, side: str,
          size: str, price: str, fee: str, when: datetime) -> CopyOrder:
    from models import Follow, Trader

    fo = s.get(Follow, fo_id)
    tr = s.get(Trader, trader_id)
    assert fo is not None and tr is not None
    tf = factories.trader_fill(s, tr, key=f"k{n}", side=side, price=Decimal(price) - Decimal("0.01"),
                               title="Will it rain?", outcome="Yes")
    co = factories.copy_order(s, tf, fo, side=side, status=CopyStatus.LIVE,
                              intended_size=Decimal(size), paper=False)
    record_fill(s, co, FillRecord(f"trade{n}", f"0x{n:064x}", Decimal(size), Decimal(price),
                                  Decimal(fee), "CONFIRMED", when))
    co.status, co.closed_at = CopyStatus.FILLED, when
    return co


def _history(s: Session) -> Follower:
    """D-1: BUY 5 @ 0.40; D: BUY 10 @ 0.50 (fee 0.01), SELL 4 @ 0.60 (fee 0.02); a skip on D."""
    f = factories.follower(s)
    f.created_at = _at(DAY - timedelta(days=2), 9)
    t = factories.trader(s)
    fo = factories.follow(s, f, t)
    _fill(s, f, fo.id, t.id, 1, "BUY", "5", "0.40", "0", _at(DAY - timedelta(days=1), 12))
    _fill(s, f, fo.id, t.id, 2, "BUY", "10", "0.50", "0.01", _at(DAY, 10))
    _fill(s, f, fo.id, t.id, 3, "SELL", "4", "0.60", "0.02", _at(DAY, 15))
    skipped = factories.copy_order(s, factories.trader_fill(s, t, key="k4"), fo,
                                   status=CopyStatus.SKIPPED)
    skipped.closed_at = _at(DAY, 16)
    return f


def test_daily_digest_matches_a_hand_computed_pnl(database: Database, keyring: KeyRing,
                                                  telegram_fake: FakeTelegram) -> None:
    """Average cost after D-1 and D's buy: (0.40×5 + 0.50×10 + 0.01) / 15 = 0.467333…;
    D's sell realizes (0.60 − 0.467333…) × 4 − 0.02 = 0.510667; 11 shares left at mid 0.55 are
    worth (0.55 − 0.467333…) × 11 = 0.909333 unrealized; net 1.42. D's volume 5.00 + 2.40."""
    with database.session() as s:
        f = _history(s)
        nd.set_destination(s, keyring, follower=f, chat_id=CHAT_A)
        s.commit()
        assert [x.id for x in alerts.digest_followers(s)] == [f.id]
        assert alerts.enqueue_digest(s, f, DAY, {"123": Decimal("0.55")}.get, _at(DAY, 23) + timedelta(hours=2))
        assert not alerts.enqueue_digest(s, f, DAY, None, _at(DAY, 23) + timedelta(hours=2))
        s.commit()
        (note,) = s.scalars(select(Notification).where(Notification.kind == NotificationKind.DAILY_DIGEST))
        p = note.payload
    (live,) = p["scopes"]
    assert (live["fills"], live["buys"], live["sells"]) == (2, 1, 1)
    assert live["volume_usd"] == "7.4" and live["fees_usd"] == "0.03"
    assert live["realized_pnl_usd"] == "0.510667" and live["unrealized_pnl_usd"] == "0.909333"
    assert live["net_pnl_usd"] == "1.42" and live["open_positions"] == 1
    assert p["copies"] == {"FILLED": 2, "SKIPPED": 1} and p["partial"] is False
    assert p["day"] == "2026-11-20"
    text = format_block(digest_block(p), nd.NotifyChannel.TELEGRAM)
    assert "realized +$0.51, unrealized +$0.91, net +$1.42" in text
    assert "2 fill(s) (1 buy, 1 sell), volume 7.40 USD, fees 0.03 USD, 1 open position(s)" in text
    assert "copies: filled 2, skipped 1" in text
    ctx = make_ctx(database, make_settings(database.url, telegram_fake), keyring)
    run_until(ctx, lambda: len(telegram_fake.messages(CHAT_A)) == 1)
    assert "Daily P&amp;L 2026-11-20 (UTC)" in telegram_fake.messages(CHAT_A)[0]["text"]


def test_digest_without_prices_says_na(database: Database, keyring: KeyRing) -> None:
    """No mid: unrealized and net are 'n/a', never a guess; realized is still exact."""
    with database.session() as s:
        f = _history(s)
        s.commit()
        from notify.digest import digest_payload

        p = digest_payload(s, f, DAY, None)
    assert p["scopes"][0]["unrealized_pnl_usd"] == "n/a" and p["scopes"][0]["net_pnl_usd"] == "n/a"
    assert p["scopes"][0]["realized_pnl_usd"] == "0.510667"


def test_no_digest_for_a_day_before_the_follower_existed(database: Database, keyring: KeyRing) -> None:
    """A follower added today gets no digest of yesterday."""
    with database.session() as s:
        f = factories.follower(s)
        f.created_at = _at(DAY, 18)
        assert not alerts.enqueue_digest(s, f, DAY - timedelta(days=1), None, _at(DAY, 19))
        assert alerts.enqueue_digest(s, f, DAY, None, _at(DAY + timedelta(days=1), 1))


def test_digest_due_day() -> None:
    """Day D's digest is due on D+1 at NOTIFY_DIGEST_HOUR; before that, D-1's is the latest."""
    assert due_day(_at(DAY, 0), 0) == DAY - timedelta(days=1)
    assert due_day(_at(DAY, 7), 8) == DAY - timedelta(days=2)
    assert due_day(_at(DAY, 8), 8) == DAY - timedelta(days=1)


def test_digest_goes_only_to_followers_who_want_it(database: Database, keyring: KeyRing) -> None:
    """No destination, a FREE tier, or a destination without daily_digest: no digest."""
    with database.session() as s:
        a, b = factories.follower(s, 1), factories.follower(s, 2)
        nd.set_destination(s, keyring, follower=a, chat_id=1, events=["copy_filled"])
        s.commit()
        assert alerts.digest_followers(s) == []
        nd.set_destination(s, keyring, follower=None, chat_id=2, events=["daily_digest"])
        s.commit()
        assert [f.id for f in alerts.digest_followers(s)] == [a.id, b.id]


def test_stale_daemon_alerts_once_and_recovery_once(database: Database) -> None:
    """An executor silent for 10 min: one DAEMON_STALE however often checked; beating again:
    one DAEMON_RECOVERED; the notifier's own heartbeat is not judged by itself."""
    now = _at(DAY, 12)
    with database.session() as s:
        for name in ("executor", "notifier"):
            s.add(DaemonHeartbeat(name=name, pid=1, host="h", started_at=now - timedelta(hours=1),
                                  last_cycle_at=now - timedelta(minutes=10), last_cycle_ms=5))
        s.commit()
        assert alerts.check_heartbeats(s, now, Intervals()) == (1, 0)
        s.commit()
        assert alerts.check_heartbeats(s, now + timedelta(minutes=1), Intervals()) == (0, 0)
        s.get(DaemonHeartbeat, "executor").last_cycle_at = now + timedelta(minutes=2)  # type: ignore[union-attr]
        s.commit()
        assert alerts.check_heartbeats(s, now + timedelta(minutes=2), Intervals()) == (0, 1)
        s.commit()
        assert alerts.check_heartbeats(s, now + timedelta(minutes=2), Intervals()) == (0, 0)
        assert alerts.check_heartbeats(s, now + timedelta(minutes=30), Intervals()) == (1, 0)
        s.commit()
        kinds = [(n.kind, n.payload["name"]) for n in s.scalars(select(Notification).order_by(Notification.id))]
    assert kinds == [(NotificationKind.DAEMON_STALE, "executor"),
                     (NotificationKind.DAEMON_RECOVERED, "executor"),
                     (NotificationKind.DAEMON_STALE, "executor")]
