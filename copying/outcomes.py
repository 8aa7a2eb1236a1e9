"""What the venue said, recorded: a POST's answer, an order's refresh (state + new fills), a skip.

Each answer is turned into events of the copy order's life (`copying.states.Event`) by pure
functions (`outcome_event`, `refresh_events`) and applied through `transition()`, so every
status change is a lookup in the one table. Fills are recorded (once per trade and order, in
`copying.ledger`) before the status moves, in the same transaction.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from copying.context import ExecutorContext, forget_market
from copying.ledger import FillRecord, record_fill
from copying.orders import SkipCopy
from copying.states import UNRESOLVED, Event, transition
from copying.venues import OrderRefresh
from infra import metrics
from infra.db import utcnow
from models import CopyOrder, CopyOrderEvent, FollowerFill, Market
from models import CopyStatus as S
from wire.records import Accepted, Duplicate, InDoubt, PostOutcome, RateLimited, Rejected, RejectKind

log = logging.getLogger("pmct.executor")
ZERO = Decimal(0)
FILLS_GRACE = timedelta(hours=1)  # how long trades the venue reported matched may lag /data/trades


class VenueState(StrEnum):
    """What the venue says about a copy's current order (`OrderRefresh.state`)."""

    LIVE = "live"
    FILLED = "filled"
    CANCELED = "canceled"
    UNKNOWN = "unknown"  # not found (yet): reconciliation decides


def filled_by_hash(session: Session, copy_id: int, order_hash: str | None) -> Decimal:
    """Shares recorded for one venue order of a copy."""
    if order_hash is None:
        return ZERO
    sizes = session.scalars(select(FollowerFill.size).where(
        FollowerFill.copy_order_id == copy_id, FollowerFill.order_hash == order_hash))
    return sum(sizes, ZERO)


NO_MATCH_KINDS = frozenset({RejectKind.FAK_NO_MATCH, RejectKind.FOK_NOT_FILLED})
STALE_MARKET_KINDS = frozenset({RejectKind.TICK_SIZE, RejectKind.MIN_SIZE})


def outcome_event(outcome: PostOutcome, *, replanned: bool = False) -> tuple[Event, str | None]:
    """The event a POST answer is, with its reason (a rejection's kind, why it is unresolved).

    A marketable order that matched nothing is not the end of the copy: NO_MATCH (tried again
    later, until the give-up time). A refusal for a stale tick or min size is re-planned once
    (STALE_MARKET) unless the copy was already `replanned`; anything else refused is final.
    """
    if isinstance(outcome, Accepted):
        return Event.ACCEPTED, None
    if isinstance(outcome, Rejected):
        if outcome.kind in NO_MATCH_KINDS:
            return Event.NO_MATCH, outcome.kind.value
        if outcome.kind in STALE_MARKET_KINDS and not replanned:
            return Event.STALE_MARKET, outcome.kind.value
        return Event.REJECTED, outcome.kind.value
    reason = {Duplicate: "duplicate", InDoubt: "in_doubt", RateLimited: "rate_limited"}.get(
        type(outcome), "restricted")
    return Event.POST_UNRESOLVED, reason


def refresh_events(status: S, venue: VenueState, filled: Decimal, intended: Decimal, *,
                   new_fills: bool, trades_lagging: bool, marketable: bool = False) -> list[Event]:
    """The events a refresh means for a copy in `status` (pure; [] when nothing changed).

    `filled`/`intended`: the copy's shares so far (new fills included) and what it wants;
    `trades_lagging`: the venue reports more matched than the trades we could read, not for long;
    `marketable`: the current order is a FAK/FOK, whose unfilled remainder the venue kills at
    once: the copy is not over, its remainder is ordered again later (REMAINDER).
    """
    if venue is VenueState.UNKNOWN:
        return []
    events: list[Event] = []
    if status in UNRESOLVED and venue is VenueState.LIVE:
        events.append(Event.FOUND)
        status = S.LIVE
    if venue is VenueState.LIVE:
        if filled > 0 and new_fills:
            events.append(Event.FILL)
        elif filled > 0 and status in (S.LIVE, S.CANCELING):
            events.append(Event.REFRESH)
        return events
    if filled >= intended:
        return [*events, Event.FILLED]
    if status is S.CANCELING:
        return events  # the manager decides what follows a confirmed cancel
    if trades_lagging:
        # keep the copy open so the next refresh records the trades, rather than close it short
        return [*events, Event.FOUND] if status in UNRESOLVED else events
    if marketable:
        return [*events, Event.REMAINDER]
    return [*events, Event.VENUE_CLOSED]


def _fills_overdue(co: CopyOrder, now: datetime) -> bool:
    """True when trades the venue reported matched have been missing for too long to wait."""
    since = co.acked_at or co.posted_at or co.signed_at
    return since is not None and now - since > FILLS_GRACE


def apply_refresh(s: Session, co: CopyOrder, refresh: OrderRefresh, now: datetime | None = None) -> None:
    """Record new fills and move the copy to what the venue says about its current order."""
    new = sum(record_fill(s, co, f) for f in refresh.fills)
    filled = co.filled_size or ZERO
    intended = co.intended_size or ZERO
    venue = VenueState(refresh.state)
    lagging = (venue is not VenueState.LIVE and filled < intended
               and refresh.size_matched > filled_by_hash(s, co.id, co.order_hash)
               and not _fills_overdue(co, now or utcnow()))
    if lagging and co.status is not S.CANCELING:
        log.info("copy %s: venue matched %s, trades not all visible yet", co.id, refresh.size_matched)
    for event in refresh_events(co.status, venue, filled, intended, new_fills=new > 0,
                                trades_lagging=lagging, marketable=co.order_type in ("FAK", "FOK")):
        reason = None
        if event is Event.VENUE_CLOSED:
            reason = "unfilled_remainder" if filled > 0 else "canceled_at_venue"
        transition(s, co, event, reason=reason)


def apply_outcome(ctx: ExecutorContext, s: Session, co: CopyOrder, outcome: PostOutcome) -> None:
    """Record what POST /order answered (fills come from `apply_refresh`).

    The answer applies to a copy still SIGNED or IN_DOUBT; if a refresh already settled it (a
    slow POST overtaken by reconciliation), the venue's later word stands and this is only logged.
    """
    if co.status not in UNRESOLVED:
        log.info("copy %s: POST answer %s arrived after the copy became %s; kept as is",
                 co.id, type(outcome).__name__, co.status.value)
        return
    now = ctx.clock()
    replanned = isinstance(outcome, Rejected) and outcome.kind in STALE_MARKET_KINDS and bool(
        s.scalar(select(CopyOrderEvent.id).where(CopyOrderEvent.copy_order_id == co.id,
                                                 CopyOrderEvent.event == Event.STALE_MARKET.value)
                 .limit(1)))
    event, reason = outcome_event(outcome, replanned=replanned)
    if isinstance(outcome, Accepted):
        co.posted_at = co.posted_at or now
        co.acked_at = now
        co.exchange_order_id = outcome.order_id
        if outcome.order_id.lower() != (co.order_hash or "").lower():
            log.error("copy %s: venue order id %s differs from the local hash %s", co.id,
                      outcome.order_id, co.order_hash)
        transition(s, co, event, detail={"status": outcome.status})
    elif isinstance(outcome, Rejected):
        co.reason_detail = outcome.reason[:500]
        terminal = event is Event.REJECTED
        transition(s, co, event, reason=reason if terminal else None,
                   detail={"message": outcome.reason[:500], "http": outcome.http_status,
                           "kind": outcome.kind.value})
    else:
        co.posted_at = co.posted_at or now
        transition(s, co, event, reason=reason, detail={"outcome": type(outcome).__name__})


def record_post_outcome(ctx: ExecutorContext, s: Session, co: CopyOrder, outcome: PostOutcome,
                        fills: tuple[FillRecord, ...]) -> None:
    """Record one POST answer and the fills known with it (paper); tick-size refusals drop the cache."""
    apply_outcome(ctx, s, co, outcome)
    if fills:
        state = VenueState.LIVE if co.status == S.LIVE else VenueState.UNKNOWN
        apply_refresh(s, co, OrderRefresh(state.value, ZERO, fills))
        if co.order_type in ("FOK", "FAK") or (co.filled_size or ZERO) >= (co.intended_size or ZERO):
            apply_refresh(s, co, OrderRefresh(VenueState.FILLED.value, co.filled_size or ZERO, ()))
    if isinstance(outcome, Rejected) and outcome.kind in STALE_MARKET_KINDS:
        forget_market(ctx, co.condition_id)
        row = s.get(Market, co.condition_id)
        if row is not None:
            row.fetched_at = datetime(1970, 1, 1, tzinfo=UTC)


def skip_copy(s: Session, co: CopyOrder, skip: SkipCopy) -> None:
    """End a claimed copy SKIPPED with the reason (the caller commits)."""
    metrics.inc("copies_skipped", reason=skip.reason[:64])
    co.reason_detail = skip.detail[:500] if skip.detail else None
    co.lease_owner = co.lease_expires_at = None
    transition(s, co, Event.SKIP, reason=skip.reason[:64])
