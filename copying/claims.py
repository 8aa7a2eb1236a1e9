"""Claims: QUEUED copy orders taken by one executor under a lease, loaded as `Job`s, gated.

Invariants:
- a claim is one short transaction: the copies (oldest first) with their fill, follow and
  follower in one query, locked `FOR UPDATE OF copy_orders SKIP LOCKED` on PostgreSQL so
  several executors claim disjoint sets without waiting; QUEUED → CLAIMED under this executor's
  lease, and the kill switch and credentials gate each copy in the same transaction;
- a copy that an earlier copy of its follow and token still blocks (`copying.ordering`) is not
  claimed: it waits in the queue, so it is never sized against a holding still changing;
- exits (SELL copies) are not stopped by a pause, a disable, a removal or the tier: only the
  global kill switch holds them (they stay queued and are mirrored once it is lifted);
- an executor claims only copies its mode may take (`copying.modes.claimable_by`) and stamps each
  with its mode (`CopyOrder.paper`) in the claim transaction; that mode never changes after;
- an expired lease returns a CLAIMED copy to QUEUED (its executor died or hung); only the
  lease's owner releases a claim; a SIGNED or IN_DOUBT copy is never re-queued (the state
  table has no such move).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import Integer, Select, Update, bindparam, select, update
from sqlalchemy.orm import Session, defer

from copying.context import ExecutorContext
from copying.killswitch import KillSwitchState
from copying.ledger import FillRecord
from copying.modes import claimable_by
from copying.ordering import blocked_clause
from copying.orders import SkipCopy
from copying.states import Event, bulk_target, record_moves, transition
from copying.venues import OrderSpec
from infra.db import session_scope
from models import CopyOrder, CopyStatus, Follow, Follower, TraderFill
from smart_pricing import PriceDecision
from wire.records import PostOutcome
from wire.types import ApiCreds, MarketInfo, OrderBook

log = logging.getLogger("pmct.executor")


class JobAction(StrEnum):
    """A decision taken about a claimed copy before sizing, written in the signing transaction."""

    SKIP = "skip"  # end it SKIPPED with the reason
    RELEASE = "release"  # give the claim back now: transient trouble, a later cycle retries
    HOLD = "hold"  # keep the claim until the lease runs out: the pricing says wait


class Label(StrEnum):
    """What one pass of the submit path did with a copy (metrics `copies{status=…}`, logs)."""

    LOST_CLAIM = "lost_claim"  # another executor holds it now
    RELEASED = "released"  # given back before signing (shutdown)
    RETRY = "retry"  # given back for a later cycle (JobAction.RELEASE)
    WAIT = "wait"  # held until its lease runs out (JobAction.HOLD)
    ERROR = "error"  # the batch failed unexpectedly; reconciled or retried
    SKIPPED = "skipped"
    SIGNED = "signed"
    LIVE = "live"
    PARTIAL = "partial"
    CANCELING = "canceling"
    FILLED = "filled"
    REJECTED = "rejected"
    IN_DOUBT = "in_doubt"
    NOT_PLACED = "not_placed"
    CANCELED = "canceled"
    QUEUED = "queued"
    CLAIMED = "claimed"
    EXPIRED = "expired"

    @classmethod
    def of(cls, status: CopyStatus) -> Label:
        """The label of a copy that ended the pass in `status`."""
        return cls(status.value.lower())


@dataclass
class Job:
    """One claimed copy on its way through a batch."""

    co: CopyOrder
    fill: TraderFill | None  # None for a sale down to the follow's target (remainder, close)
    follow: Follow
    follower: Follower
    label: Label | None = None  # final word on this copy (set once decided)
    action: JobAction | None = None
    skip_reason: SkipCopy | None = None  # with JobAction.SKIP
    why: str = ""  # with JobAction.RELEASE / HOLD
    market: MarketInfo | None = None
    decision: PriceDecision | None = None
    creds: ApiCreds | None = None
    reference_price: Decimal | None = None  # an exit without a leader price: the best bid
    best_bid: Decimal | None = None  # for a marketable sale under the min size
    book: OrderBook | None = None
    spec: OrderSpec | None = None  # once signed
    sent_at: datetime | None = None  # when its POST left
    answered_at: datetime | None = None  # when the venue's answer came back
    outcome: PostOutcome | None = None
    fills: tuple[FillRecord, ...] = field(default=())

    @property
    def id(self) -> int:
        """The copy order id."""
        return self.co.id

    @property
    def is_exit(self) -> bool:
        """True for a SELL copy: it brings the follow's holding down to its target."""
        return self.co.side == "SELL"

    @property
    def reference_time(self) -> datetime:
        """When the leader acted (the copy's age counts from it); the queue time without a fill."""
        return self.fill.occurred_at if self.fill is not None else self.co.queued_at

    def skip(self, skip: SkipCopy) -> None:
        """Decide to end this copy SKIPPED (written in the signing transaction)."""
        self.action, self.skip_reason, self.label = JobAction.SKIP, skip, Label.SKIPPED

    def release(self, why: str) -> None:
        """Decide to give the claim back for a later cycle."""
        self.action, self.why, self.label = JobAction.RELEASE, why, Label.RETRY

    def hold(self, why: str) -> None:
        """Decide to keep the claim until the lease runs out (then it is tried again)."""
        self.action, self.why, self.label = JobAction.HOLD, why, Label.WAIT


def _locking(q: Select[Any], session: Session) -> Select[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return q.with_for_update(skip_locked=True)
    return q


def _job_query() -> Select[CopyOrder, TraderFill, Follow, Follower]:
    """Copies joined with their fill (if any), follow and follower (the fill's raw JSON left behind)."""
    return (select(CopyOrder, TraderFill, Follow, Follower)
            .outerjoin(TraderFill, TraderFill.id == CopyOrder.trader_fill_id)
            .join(Follow, Follow.id == CopyOrder.follow_id)
            .join(Follower, Follower.id == CopyOrder.follower_id)
            .options(defer(TraderFill.raw), defer(TraderFill.title)))


def _gate(s: Session, ctx: ExecutorContext,
          rows: Sequence[tuple[CopyOrder, TraderFill, Follow, Follower]]) -> list[Job]:
    """Jobs for the claimed rows, gated by the kill switch (one query) and credentials."""
    switches = KillSwitchState.load(s)
    jobs: list[Job] = []
    for co, fill, follow, follower in rows:
        job = Job(co, fill, follow, follower)
        reason: str | None
        if job.is_exit:
            allowed, reason = not switches.global_on, "kill switch on: the exit waits"
        else:
            allowed, reason = switches.copying_allowed(follower, follow)
        if not allowed and job.is_exit:
            job.hold(reason or "waiting")
        elif not allowed:
            job.skip(SkipCopy(reason or "not_allowed"))
        elif not ctx.paper and follower.encrypted_api_creds is None:
            job.skip(SkipCopy("no_credentials", "run `admin auth-follower` for this follower"))
        jobs.append(job)
    return jobs


@functools.cache
def _claim_statement(paper: bool, pinned_only: bool, postgres: bool) -> Update:
    """The claim's `UPDATE … RETURNING` for one lane and dialect, built once: building it walks
    the ordering rule (`copying.ordering`), a few ms a claim; its values are bound per call."""
    picked = (select(CopyOrder.id)
              .where(CopyOrder.status == CopyStatus.QUEUED, ~blocked_clause(),
                     claimable_by(paper, pinned_only=pinned_only))
              .order_by(CopyOrder.id).limit(bindparam("claim_limit", type_=Integer)))
    if postgres:
        picked = picked.with_for_update(of=CopyOrder, skip_locked=True)
    cte = picked.cte("picked")
    if postgres:
        cte = cte.prefix_with("MATERIALIZED")
    now = bindparam("claim_now", type_=CopyOrder.__table__.c.claimed_at.type)
    return (update(CopyOrder).where(CopyOrder.id.in_(select(cte.c.id)))
            .values(status=bulk_target(CopyStatus.QUEUED, Event.CLAIM), lease_owner=bindparam("claim_owner"),
                    lease_expires_at=bindparam("claim_expires", type_=CopyOrder.__table__.c.lease_expires_at.type),
                    claimed_at=now, paper=paper, updated_at=now)  # the copy's mode, decided here once
            .returning(CopyOrder.id, CopyOrder.order_hash)
            .execution_options(synchronize_session=False))


def claim_ids(s: Session, ctx: ExecutorContext, limit: int) -> list[int]:
    """In `s`: up to `limit` QUEUED copies (oldest first, none blocked, of this executor's mode)
    become CLAIMED under its lease in one UPDATE, with their claim events in one INSERT; returns
    their ids in ascending order.

    On PostgreSQL the rows are picked `FOR UPDATE OF copy_orders SKIP LOCKED` in a materialized
    CTE (evaluated once, so never more than `limit` rows), so several executors claim disjoint
    sets without waiting; SQLite has one writer at a time.
    """
    now = ctx.clock()
    statement = _claim_statement(ctx.paper, ctx.pinned_only, s.get_bind().dialect.name == "postgresql")
    moved: list[tuple[int, str | None]] = sorted((cid, order_hash) for cid, order_hash in s.execute(
        statement, {"claim_limit": limit, "claim_owner": ctx.owner, "claim_expires": now + ctx.lease,
                    "claim_now": now}))
    if len(moved) > limit:
        raise AssertionError(f"claimed {len(moved)} copies, asked for {limit}")
    record_moves(s, moved, CopyStatus.QUEUED, Event.CLAIM, detail={"owner": ctx.owner}, at=now)
    return [cid for cid, _ in moved]


def claim_in(s: Session, ctx: ExecutorContext, limit: int) -> list[Job]:
    """In `s`: claim up to `limit` QUEUED copies (`claim_ids`) and load them as gated `Job`s."""
    ids = claim_ids(s, ctx, limit)
    if not ids:
        return []
    rows = list(s.execute(_job_query().where(CopyOrder.id.in_(ids)).order_by(CopyOrder.id)).all())
    return _gate(s, ctx, rows)


def claim_jobs(ctx: ExecutorContext, limit: int) -> list[Job]:
    """Claim up to `limit` QUEUED copies (oldest first) and load them, in one short transaction."""
    with session_scope(ctx.factory) as s:
        return claim_in(s, ctx, limit)


def lock_copies(s: Session, ids: list[int] | set[int]) -> dict[int, CopyOrder]:
    """The copies, re-read and row-locked in ascending id order."""
    q = (select(CopyOrder).where(CopyOrder.id.in_(sorted(set(ids)))).order_by(CopyOrder.id)
         .with_for_update().execution_options(populate_existing=True))
    return {co.id: co for co in s.scalars(q)}


def holds_claim(ctx: ExecutorContext, co: CopyOrder) -> bool:
    """True while this executor still holds its claim on `co`."""
    return co.status == CopyStatus.CLAIMED and co.lease_owner == ctx.owner


def release_claim(s: Session, co: CopyOrder, why: str) -> None:
    """In `s`: give one claim back to the queue (the caller checked it holds it)."""
    co.lease_owner = co.lease_expires_at = None
    transition(s, co, Event.RELEASE, detail={"why": why[:300]})


def release_claims(ctx: ExecutorContext, ids: list[int], why: str) -> int:
    """Give claims back (only copies still CLAIMED by this executor); returns how many."""
    if not ids:
        return 0
    n = 0
    with session_scope(ctx.factory) as s:
        for co in lock_copies(s, ids).values():
            if holds_claim(ctx, co):
                release_claim(s, co, why)
                n += 1
    return n


def release_expired(s: Session, ctx: ExecutorContext) -> int:
    """In `s`: CLAIMED rows whose lease ran out go back to QUEUED; returns how many."""
    rows = s.scalars(_locking(select(CopyOrder).where(
        CopyOrder.status == CopyStatus.CLAIMED, CopyOrder.lease_expires_at < ctx.clock()), s)).all()
    for co in rows:
        co.lease_owner = co.lease_expires_at = None
        transition(s, co, Event.LEASE_EXPIRED)
    return len(rows)
