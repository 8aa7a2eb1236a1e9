"""The copy-order state machine: only allowed moves, an event row per move, no re-queue after signing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from copying.states import ALLOWED, TERMINAL, IllegalTransition, can_move, transition
from models import CopyOrderEvent
from models import CopyStatus as S
from tests import factories as fx
from tests.dbfixtures import Database


def test_terminal_states_have_no_exit() -> None:
    """FILLED, REJECTED, NOT_PLACED, CANCELED, EXPIRED, SKIPPED are final."""
    for state in TERMINAL:
        assert state not in ALLOWED
        assert not any(can_move(state, t) for t in S)


def test_signed_or_in_doubt_never_goes_back_to_the_queue() -> None:
    """Promise 1: a signed order is reconciled, never re-queued or re-claimed."""
    for state in (S.SIGNED, S.IN_DOUBT, S.LIVE, S.PARTIAL, S.CANCELING):
        assert not can_move(state, S.QUEUED) and not can_move(state, S.CLAIMED)
    assert not can_move(S.IN_DOUBT, S.SIGNED)


def test_transition_writes_status_and_event_in_one_transaction(database: Database) -> None:
    """Each move updates the status and adds one event row with from/to/reason."""
    with database.session() as s:
        t, f = fx.trader(s), fx.follower(s)
        co = fx.copy_order(s, fx.trader_fill(s, t), fx.follow(s, f, t))
        transition(s, co, S.CLAIMED, "claim")
        transition(s, co, S.SKIPPED, "size", reason="below_min_notional")
        s.commit()
        events = s.scalars(select(CopyOrderEvent).order_by(CopyOrderEvent.id)).all()
        assert [(e.from_status, e.to_status, e.reason) for e in events] == [
            ("QUEUED", "CLAIMED", None), ("CLAIMED", "SKIPPED", "below_min_notional")]
        assert co.status == S.SKIPPED and co.reason == "below_min_notional"
        assert co.closed_at is not None


def test_illegal_move_raises_and_changes_nothing(database: Database) -> None:
    """QUEUED → FILLED is refused; the status and event log stay as they were."""
    with database.session() as s:
        t, f = fx.trader(s), fx.follower(s)
        co = fx.copy_order(s, fx.trader_fill(s, t), fx.follow(s, f, t))
        with pytest.raises(IllegalTransition):
            transition(s, co, S.FILLED, "fill")
        assert co.status == S.QUEUED
        assert s.scalars(select(CopyOrderEvent)).all() == []


def test_terminal_without_reason_records_the_event_name(database: Database) -> None:
    """Terminal states always carry a reason (the event name when none is given)."""
    with database.session() as s:
        t, f = fx.trader(s), fx.follower(s)
        co = fx.copy_order(s, fx.trader_fill(s, t), fx.follow(s, f, t))
        transition(s, co, S.CANCELED, "trader_exited")
        assert co.reason == "trader_exited"
