"""The claim as one set-based statement: at most `limit`, oldest first, each claim recorded, and
two executors' open claims disjoint on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from copying.claims import claim_ids, claim_jobs
from copying.context import ExecutorContext
from copying.states import Event, record_moves
from copying.venues import PaperVenue
from infra.db import session_scope
from infra.errors import IllegalTransition
from models import CopyOrderEvent, CopyStatus, Follow
from tests.support.dbfixtures import Database
from tests.support.harness import Harness, add_second_follower


@pytest.fixture
def h(database: Database, fernet_key: str) -> Harness:
    """Default harness: EOA follower, live venue, standard market."""
    return Harness(database, fernet_key)


def events_of(h: Harness) -> list[tuple[int, str, str | None, str, object]]:
    """Every copy event: (copy id, event, from, to, detail), in order."""
    with h.db.session() as s:
        return [(e.copy_order_id, e.event, e.from_status, e.to_status, e.detail)
                for e in s.scalars(select(CopyOrderEvent).order_by(CopyOrderEvent.id))]


def test_claim_takes_at_most_the_limit_oldest_first_and_records_each_claim(h: Harness) -> None:
    """Six queued copies, a claim of four: the four oldest become CLAIMED under this executor's
    lease, each with one claim event; the other two stay QUEUED with none."""
    for _ in range(6):
        h.trader_fill()
    ids = sorted(c.id for c in h.copies())
    jobs = claim_jobs(h.ctx, 4)
    assert [j.id for j in jobs] == ids[:4]
    by_id = {c.id: c for c in h.copies()}
    for cid in ids[:4]:
        co = by_id[cid]
        assert co.status == CopyStatus.CLAIMED and co.lease_owner == h.ctx.owner and co.paper is False
        assert co.claimed_at is not None and co.lease_expires_at == co.claimed_at + h.ctx.lease
    assert [by_id[cid].status for cid in ids[4:]] == [CopyStatus.QUEUED] * 2
    assert events_of(h) == [(cid, "claim", "QUEUED", "CLAIMED", {"owner": h.ctx.owner}) for cid in ids[:4]]
    assert [j.id for j in claim_jobs(h.ctx, 10)] == ids[4:]
    assert claim_jobs(h.ctx, 10) == []


def test_claim_skips_follows_pinned_to_the_other_mode(h: Harness) -> None:
    """A live executor leaves the copies of a follow pinned to paper in the queue; the paper lane
    (pinned only) takes exactly those."""
    second = add_second_follower(h)
    with session_scope(h.db.factory) as s:
        follow = s.scalar(select(Follow).where(Follow.follower_id == second))
        assert follow is not None
        follow.mode = "paper"
    h.trader_fill()
    pinned = {c.id for c in h.copies() if c.follower_id == second}
    live = [j.id for j in claim_jobs(h.ctx, 10)]
    assert live and not set(live) & pinned
    lane = ExecutorContext(**{**h.ctx.__dict__, "owner": "lane", "venue": PaperVenue(h.fx, h.ctx.clock),
                              "pinned_only": True})
    assert lane.paper
    assert {j.id for j in claim_jobs(lane, 10)} == pinned


def test_record_moves_refuses_what_only_a_single_transition_may_write(h: Harness) -> None:
    """Bulk recording is for plain moves: an ending one (reasons, closed_at) or a notified one is
    refused before anything is written."""
    h.trader_fill()
    cid = h.only().id
    with h.db.session() as s:
        for current, event in ((CopyStatus.CLAIMED, Event.SKIP), (CopyStatus.QUEUED, Event.SIGN)):
            with pytest.raises(IllegalTransition):
                record_moves(s, [(cid, None)], current, event, at=h.ctx.clock())
    assert events_of(h) == []


def test_two_open_claims_take_disjoint_copies(pg_database: Database, fernet_key: str) -> None:
    """PostgreSQL: while one executor's claim is still uncommitted, a second one claims the rest at
    once (SKIP LOCKED) and never a copy the first holds."""
    h = Harness(pg_database, fernet_key)
    for _ in range(6):
        h.trader_fill()
    other = ExecutorContext(**{**h.ctx.__dict__, "owner": "executor-2"})
    with h.db.session() as first, h.db.session() as second:
        mine = claim_ids(first, h.ctx, 3)
        first.flush()
        second.execute(text("SET LOCAL lock_timeout = '5s'"))  # waiting on `first` would fail, not hang
        theirs = claim_ids(second, other, 10)
        assert len(mine) == 3 and len(theirs) == 3 and not set(mine) & set(theirs)
        first.commit()
        second.commit()
    owners = {c.id: c.lease_owner for c in h.copies()}
    assert {owners[i] for i in mine} == {h.ctx.owner} and {owners[i] for i in theirs} == {"executor-2"}
