"""The outbox hooks in the engine: each event writes its notification in its own transaction
(rolled back together), at the central places (transition, record_fill, intake, kill switch)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from copying import killswitch as ks
from copying.intake import fan_out
from copying.ledger import FillRecord, record_fill
from copying.outbox import enqueue, enqueue_once
from copying.states import Event, transition
from models import CopyOrder, CopyStatus, Notification, NotificationKind
from tests.support import factories
from tests.support.dbfixtures import Database

K = NotificationKind


def _notes(s: Session, kind: NotificationKind | None = None) -> list[Notification]:
    q = select(Notification).order_by(Notification.id)
    if kind is not None:
        q = q.where(Notification.kind == kind)
    return list(s.scalars(q))


def _copy(s: Session, status: CopyStatus = CopyStatus.QUEUED) -> CopyOrder:
    f = factories.follower(s)
    t = factories.trader(s)
    fo = factories.follow(s, f, t)
    fill = factories.trader_fill(s, t, title="Will it rain?", outcome="Yes")
    return factories.copy_order(s, fill, fo, status=status)


def test_skip_writes_its_notification_and_a_rollback_removes_both(database: Database) -> None:
    """QUEUED → SKIPPED adds a COPY_SKIPPED row; rolling the move back leaves neither."""
    with database.session() as s:
        co = _copy(s)
        s.commit()
        cid = co.id
    with database.session() as s:
        got = s.get(CopyOrder, cid)
        assert got is not None
        got.reason_detail = "0.4 USD is under the $1 minimum"
        transition(s, got, Event.SKIP, reason="below_min_notional")
        s.flush()
        assert len(_notes(s, K.COPY_SKIPPED)) == 1
        s.rollback()
    with database.session() as s:
        assert s.get(CopyOrder, cid).status == CopyStatus.QUEUED  # type: ignore[union-attr]
        assert _notes(s) == []
        again = s.get(CopyOrder, cid)
        assert again is not None
        again.reason_detail = "0.4 USD is under the $1 minimum"
        transition(s, again, Event.SKIP, reason="below_min_notional")
        s.commit()
    with database.session() as s:
        (note,) = _notes(s)
        assert note.kind is K.COPY_SKIPPED and note.follower_id == co.follower_id
        assert note.payload["reason"] == "below_min_notional"
        assert note.payload["detail"] == "0.4 USD is under the $1 minimum"
        assert note.payload["copy_order_id"] == cid and note.routed_at is None


@pytest.mark.parametrize(("target", "kind", "detail"), [
    (CopyStatus.REJECTED, K.COPY_REJECTED, {"message": "not enough balance", "http": 400}),
    (CopyStatus.IN_DOUBT, K.COPY_IN_DOUBT, {"outcome": "InDoubt"}),
])
def test_rejected_and_in_doubt_are_told(database: Database, target: CopyStatus,
                                        kind: NotificationKind, detail: dict[str, object]) -> None:
    """SIGNED → REJECTED / IN_DOUBT each add one row (IN_DOUBT → IN_DOUBT adds none)."""
    with database.session() as s:
        co = _copy(s, CopyStatus.SIGNED)
        co.intended_size, co.intended_price = Decimal("12.5"), Decimal("0.61")
        event = Event.REJECTED if target == CopyStatus.REJECTED else Event.POST_UNRESOLVED
        transition(s, co, event, reason="balance" if target == CopyStatus.REJECTED
                   else "in_doubt", detail=detail)
        if target == CopyStatus.IN_DOUBT:
            transition(s, co, Event.POST_UNRESOLVED)  # still in doubt: no news
        s.commit()
        (note,) = _notes(s)
        assert note.kind is kind
        assert note.payload["intended_size"] == "12.5" and note.payload["intended_price"] == "0.61"
        if target == CopyStatus.REJECTED:
            assert note.payload["detail"] == "not enough balance" and note.payload["http"] == 400


def test_no_notification_for_ordinary_moves(database: Database) -> None:
    """CLAIMED, SIGNED, LIVE are not news."""
    with database.session() as s:
        co = _copy(s)
        transition(s, co, Event.CLAIM)
        transition(s, co, Event.SIGN)
        transition(s, co, Event.ACCEPTED)
        s.commit()
        assert _notes(s) == []


def test_fill_is_told_in_the_ledger_transaction(database: Database) -> None:
    """record_fill adds COPY_FILLED with size, price, leader price and realized P&L; a re-read
    of the same trade adds nothing; a rollback removes the fill and its notification."""
    fill = FillRecord("t1", "0x" + "a" * 64, Decimal("10"), Decimal("0.50"), Decimal("0.01"),
                      "MATCHED", factories.T0)
    with database.session() as s:
        co = _copy(s, CopyStatus.LIVE)
        co.intended_size = Decimal("10")
        s.commit()
        cid = co.id
    with database.session() as s:
        got = s.get(CopyOrder, cid)
        assert got is not None and record_fill(s, got, fill)
        s.rollback()
    with database.session() as s:
        assert _notes(s) == []
        again = s.get(CopyOrder, cid)
        assert again is not None
        assert record_fill(s, again, fill) and not record_fill(s, again, fill)
        s.commit()
        (note,) = _notes(s)
        p = note.payload
        assert note.kind is K.COPY_FILLED
        assert (p["size"], p["price"], p["fee"], p["trader_price"]) == ("10", "0.5", "0.01", "0.58")
        assert p["filled_size"] == "10" and p["realized_pnl"] == "0" and p["side"] == "BUY"


def test_intake_skips_are_told_but_not_before_follow(database: Database) -> None:
    """fan_out: a stale fill's SKIPPED copies get notifications; a before-follow skip does not."""
    with database.session() as s:
        f1, f2 = factories.follower(s, 1), factories.follower(s, 2)
        t = factories.trader(s)
        factories.follow(s, f1, t)
        late = factories.follow(s, f2, t)
        fill = factories.trader_fill(s, t)
        values = {"id": fill.id, "activity_type": "TRADE", "side": "BUY", "token_id": "123", "condition_id": "0x" + "2" * 64,
                  "price": Decimal("0.58"), "is_combo": False, "title": "Rain?", "outcome": "Yes",
                  "occurred_at": factories.T0, "first_seen_at": factories.T0 + timedelta(minutes=10)}
        queued, skipped = fan_out(s, t.id, values, timedelta(seconds=120), factories.T0)
        assert (queued, skipped) == (0, 2)
        notes = _notes(s, K.COPY_SKIPPED)
        assert sorted(n.follower_id or 0 for n in notes) == [f1.id, f2.id]
        assert {n.payload["reason"] for n in notes} == {"stale"}
        assert notes[0].payload["title"] == "Rain?"
        # the same fill seen in time, but the second follow started after it
        late.started_at = factories.T0 + timedelta(seconds=30)
        fill2 = factories.trader_fill(s, t, key="k2")
        values2 = dict(values, id=fill2.id, first_seen_at=factories.T0)
        assert fan_out(s, t.id, values2, timedelta(seconds=120), factories.T0) == (1, 1)
        assert len(_notes(s, K.COPY_SKIPPED)) == 2  # before_follow is not news
        s.rollback()
    with database.session() as s:
        assert _notes(s) == []


def test_kill_switch_tells_changes_only(database: Database) -> None:
    """Global/follower/follow disable and enable add ON/OFF once per real change."""
    with database.session() as s:
        f = factories.follower(s)
        fo = factories.follow(s, f, factories.trader(s))
        ks.disable_all(s, "maintenance")
        ks.disable_all(s, "again")  # already on: no second alert
        assert ks.enable_all(s) and not ks.enable_all(s)
        ks.disable_follower(s, f, "risk")
        ks.enable_follower(s, f)
        ks.disable_follow(s, fo, None)
        ks.enable_follow(s, fo)
        s.commit()
        got = [(n.kind, n.payload["scope"], n.follower_id) for n in _notes(s)]
    assert got == [(K.KILL_SWITCH_ON, "global", None), (K.KILL_SWITCH_OFF, "global", None),
                   (K.KILL_SWITCH_ON, "follower", f.id), (K.KILL_SWITCH_OFF, "follower", f.id),
                   (K.KILL_SWITCH_ON, "follow", f.id), (K.KILL_SWITCH_OFF, "follow", f.id)]


def test_enqueue_once_is_idempotent(database: Database) -> None:
    """A dedupe key admits one row; enqueue writes nothing until the caller commits."""
    with database.session() as s:
        assert enqueue_once(s, K.DAEMON_STALE, None, {"name": "executor"}, "k1")
        assert not enqueue_once(s, K.DAEMON_STALE, None, {"name": "executor"}, "k1")
        enqueue(s, K.COMMAND_REPLY, None, {"title": "x", "lines": []})
        s.commit()
        assert s.scalar(select(func.count()).select_from(Notification)) == 2
