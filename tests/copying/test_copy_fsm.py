"""The copy order's life as data: only the table's moves, an event row per move, no re-queue after signing."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from copying.outcomes import VenueState, refresh_events
from copying.states import INITIAL, MOVES, TERMINAL, Event, target_of, transition
from infra.errors import IllegalTransition
from models import CopyOrderEvent
from models import CopyStatus as S
from tests.support import factories as fx
from tests.support.dbfixtures import Database

D = Decimal


def test_terminal_states_have_no_exit() -> None:
    """FILLED, REJECTED, NOT_PLACED, CANCELED, EXPIRED, SKIPPED are final: no event leaves them."""
    for state, event in itertools.product(TERMINAL, Event):
        assert target_of(state, event) is None


def test_signed_or_in_doubt_never_goes_back_to_the_queue() -> None:
    """Promise 1: a signed order is reconciled, never re-queued, re-claimed or re-signed."""
    for (state, event), target in MOVES.items():
        if state in (S.SIGNED, S.IN_DOUBT, S.LIVE, S.PARTIAL, S.CANCELING):
            assert target not in (S.QUEUED, S.CLAIMED), (state, event)
        if target is S.SIGNED:  # signing happens only from a claim, or after a confirmed cancel
            assert (state, event) in ((S.CLAIMED, Event.SIGN), (S.CANCELING, Event.REPRICE))


def test_creation_events_are_not_moves() -> None:
    """The fan-out's creation events give the initial status and never appear as moves."""
    assert INITIAL == {Event.QUEUE: S.QUEUED, Event.SKIP_AT_INTAKE: S.SKIPPED,
                       Event.QUEUE_TARGET: S.QUEUED}
    assert not any(event in INITIAL for _, event in MOVES)


def test_every_state_but_the_terminal_ones_can_end() -> None:
    """From every non-terminal state some sequence of moves reaches a terminal state."""
    reach = {s for s in TERMINAL}
    changed = True
    while changed:
        changed = False
        for (state, _), target in MOVES.items():
            if target in reach and state not in reach:
                reach.add(state)
                changed = True
    assert reach == set(S)


def test_transition_writes_status_and_event_in_one_transaction(database: Database) -> None:
    """Each move updates the status and adds one event row with from/to/reason."""
    with database.session() as s:
        t, f = fx.trader(s), fx.follower(s)
        co = fx.copy_order(s, fx.trader_fill(s, t), fx.follow(s, f, t))
        transition(s, co, Event.CLAIM)
        transition(s, co, Event.SKIP, reason="below_min_notional")
        s.commit()
        events = s.scalars(select(CopyOrderEvent).order_by(CopyOrderEvent.id)).all()
        assert [(e.event, e.from_status, e.to_status, e.reason) for e in events] == [
            ("claim", "QUEUED", "CLAIMED", None), ("skip", "CLAIMED", "SKIPPED", "below_min_notional")]
        assert co.status == S.SKIPPED and co.reason == "below_min_notional"
        assert co.closed_at is not None


def test_illegal_move_raises_and_changes_nothing(database: Database) -> None:
    """FILLED from QUEUED is not in the table: IllegalTransition, status and history unchanged."""
    with database.session() as s:
        t, f = fx.trader(s), fx.follower(s)
        co = fx.copy_order(s, fx.trader_fill(s, t), fx.follow(s, f, t))
        with pytest.raises(IllegalTransition):
            transition(s, co, Event.FILLED)
        assert co.status == S.QUEUED
        assert s.scalars(select(CopyOrderEvent)).all() == []


def test_terminal_without_reason_records_the_event_name(database: Database) -> None:
    """Terminal states always carry a reason (the event name when none is given)."""
    with database.session() as s:
        t, f = fx.trader(s), fx.follower(s)
        co = fx.copy_order(s, fx.trader_fill(s, t), fx.follow(s, f, t))
        transition(s, co, Event.STOP)
        assert co.status == S.CANCELED and co.reason == "stop"


# --- what a venue refresh means ----------------------------------------------------------------

@pytest.mark.parametrize(("status", "venue", "filled", "new", "lagging", "expected"), [
    (S.SIGNED, VenueState.LIVE, "0", False, False, [Event.FOUND]),
    (S.IN_DOUBT, VenueState.LIVE, "3", True, False, [Event.FOUND, Event.FILL]),
    (S.LIVE, VenueState.LIVE, "0", False, False, []),
    (S.LIVE, VenueState.LIVE, "3", True, False, [Event.FILL]),
    (S.LIVE, VenueState.LIVE, "3", False, False, [Event.REFRESH]),  # fills of an earlier order
    (S.PARTIAL, VenueState.LIVE, "3", False, False, []),
    (S.PARTIAL, VenueState.LIVE, "5", True, False, [Event.FILL]),
    (S.LIVE, VenueState.FILLED, "10", True, False, [Event.FILLED]),
    (S.SIGNED, VenueState.FILLED, "10", True, False, [Event.FILLED]),
    (S.LIVE, VenueState.CANCELED, "4", False, False, [Event.VENUE_CLOSED]),
    (S.LIVE, VenueState.CANCELED, "4", False, True, []),  # trades still arriving: keep it open
    (S.SIGNED, VenueState.CANCELED, "4", False, True, [Event.FOUND]),
    (S.CANCELING, VenueState.CANCELED, "4", False, False, []),  # the manager decides
    (S.CANCELING, VenueState.CANCELED, "10", True, False, [Event.FILLED]),  # filled in the race
    (S.LIVE, VenueState.UNKNOWN, "0", False, False, []),
])
def test_refresh_events(status: S, venue: VenueState, filled: str, new: bool, lagging: bool,
                        expected: list[Event]) -> None:
    """A refresh (venue state, fills) becomes the events the table then applies."""
    assert refresh_events(status, venue, D(filled), D(10), new_fills=new, trades_lagging=lagging) == expected


@given(status=st.sampled_from(sorted(set(S) - TERMINAL - {S.QUEUED, S.CLAIMED}, key=lambda x: x.value)),
       venue=st.sampled_from(list(VenueState)), filled=st.integers(0, 12), new=st.booleans(),
       lagging=st.booleans(), marketable=st.booleans())
def test_every_refresh_decision_is_a_legal_sequence_of_moves(status: S, venue: VenueState, filled: int,
                                                             new: bool, lagging: bool,
                                                             marketable: bool) -> None:
    """Whatever the venue says about an order the copy has placed, the decided events are moves."""
    current = status
    for event in refresh_events(status, venue, D(filled), D(10), new_fills=new and filled > 0,
                                trades_lagging=lagging, marketable=marketable):
        target = target_of(current, event)
        assert target is not None, (current, event)
        current = target


# --- moves added for the executor's safety work ------------------------------------------------

@pytest.mark.parametrize(("state", "event", "target"), [
    (S.LIVE, Event.REMAINDER, S.CANCELING),  # a FAK filled part, the venue killed the rest
    (S.SIGNED, Event.REMAINDER, S.CANCELING),
    (S.SIGNED, Event.NO_MATCH, S.CANCELING),  # a FAK matched nothing: tried again later
    (S.IN_DOUBT, Event.STALE_MARKET, S.CANCELING),  # refused for a stale tick: re-planned once
    (S.LIVE, Event.PAPER_CLOSED, S.CANCELED),  # a paper copy closed when going live
    (S.CANCELING, Event.PAPER_CLOSED, S.CANCELED),
])
def test_new_moves(state: S, event: Event, target: S) -> None:
    """The copy's life keeps going after a marketable remainder, a no-match or a stale tick."""
    assert target_of(state, event) is target


def test_no_remainder_or_replan_from_a_terminal_or_queued_copy() -> None:
    """REMAINDER / NO_MATCH / STALE_MARKET only concern copies that signed an order."""
    for event in (Event.REMAINDER, Event.NO_MATCH, Event.STALE_MARKET, Event.PAPER_CLOSED):
        for state in (*TERMINAL, S.QUEUED, S.CLAIMED):
            assert target_of(state, event) is None, (state, event)


def test_a_marketable_order_closed_short_is_a_remainder_not_the_end() -> None:
    """refresh_events: a FAK's unfilled part (venue closed, 3 of 10) → REMAINDER; a GTC closed by
    the venue → VENUE_CLOSED as before."""
    assert refresh_events(S.LIVE, VenueState.CANCELED, D(3), D(10), new_fills=True, trades_lagging=False,
                          marketable=True) == [Event.REMAINDER]
    assert refresh_events(S.LIVE, VenueState.CANCELED, D(3), D(10), new_fills=True, trades_lagging=False,
                          marketable=False) == [Event.VENUE_CLOSED]
    assert refresh_events(S.CANCELING, VenueState.CANCELED, D(3), D(10), new_fills=False,
                          trades_lagging=False, marketable=True) == []


def test_post_answers_that_keep_the_copy_going() -> None:
    """A FAK/FOK no-match is NO_MATCH; a tick or min-size refusal STALE_MARKET once, then REJECTED."""
    from copying.outcomes import outcome_event
    from wire.records import Rejected, RejectKind

    no_match = Rejected("no orders found to match with FAK order", RejectKind.FAK_NO_MATCH, 400)
    tick = Rejected("breaks minimum tick size rule: 0.01", RejectKind.TICK_SIZE, 400)
    balance = Rejected("not enough balance / allowance", RejectKind.BALANCE, 400)
    assert outcome_event(no_match) == (Event.NO_MATCH, "fak_no_match")
    assert outcome_event(tick) == (Event.STALE_MARKET, "tick_size")
    assert outcome_event(tick, replanned=True) == (Event.REJECTED, "tick_size")
    assert outcome_event(balance) == (Event.REJECTED, "balance")


def test_entering_canceling_sets_or_clears_the_stop_reason(database: Database) -> None:
    """CANCEL carries the stop's reason onto the copy; REPRICE_CANCEL and REMAINDER clear any old
    reason (so that a stale 'in_doubt' is never read as a stop)."""
    with database.session() as s:
        t, f = fx.trader(s), fx.follower(s)
        co = fx.copy_order(s, fx.trader_fill(s, t), fx.follow(s, f, t), status=S.IN_DOUBT, reason="in_doubt")
        transition(s, co, Event.FOUND)
        transition(s, co, Event.REPRICE_CANCEL)
        assert co.status is S.CANCELING and co.reason is None
        co2 = fx.copy_order(s, fx.trader_fill(s, t, key="k2"), fx.follow(s, fx.follower(s, 2), t),
                            status=S.LIVE)
        transition(s, co2, Event.CANCEL, reason="kill_switch")
        assert co2.reason == "kill_switch"
        transition(s, co2, Event.CANCELED, reason=co2.reason)
        assert (co2.status, co2.reason) == (S.CANCELED, "kill_switch")
