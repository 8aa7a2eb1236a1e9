"""The copy order's life as data: one `(state, event) → state` table and the only writer of `status`.

Invariants:
- every status change of an existing copy order goes through `transition()`, which looks the
  move up in `MOVES` and raises `IllegalTransition` for anything not in it (an illegal move is
  a bug, never ignored), and adds a `CopyOrderEvent` row in the caller's transaction, so the
  history and the status can never disagree; a move to REJECTED, IN_DOUBT or SKIPPED also adds
  its notification (copying/outbox.py) to that same transaction;
- a copy order is born in a status that `INITIAL` gives for its creation event: the watcher's
  fan-out inserts thousands of rows with one INSERT … SELECT and writes no event rows (the row
  itself, with `queued_at` and its reason, is the record of its creation; an event row per
  copy would double the cost of the fan-out); the few copies the executor creates itself
  (`QUEUE_TARGET`: a remainder, `--close-positions`) get their creation row (`created`);
- a signed order is reconciled, never re-queued or re-signed: no move leads from SIGNED or
  IN_DOUBT back to QUEUED or CLAIMED; a reprice re-signs only after a confirmed cancel
  (CANCELING → SIGNED);
- terminal states carry a reason (the event's name when the caller gives none);
- CANCELING means "between two venue orders": a cancel was asked for (and may be confirmed), or
  the venue order is already gone while the copy still wants shares (a marketable order's
  unfilled remainder, a FAK/FOK that matched nothing, an order refused for a stale tick or
  min size); the manager then re-signs the remainder (REPRICE) or ends the copy;
- a copy's mode (`CopyOrder.paper`) never changes once claimed; a paper copy is closed without
  any venue (PAPER_CLOSED) when the deployment goes live.

    QUEUED ─claim→ CLAIMED ─sign→ SIGNED ─accepted→ LIVE ─fill→ PARTIAL ─filled→ FILLED
      │              │ release/lease_expired→ QUEUED   │ post_unresolved→ IN_DOUBT ─found→ LIVE
      └ skip/stop    └ skip → SKIPPED                  │ rejected→ REJECTED, not_placed→ NOT_PLACED
    LIVE/PARTIAL ─cancel|reprice_cancel→ CANCELING ─canceled→ CANCELED | ─reprice→ SIGNED
    SIGNED/IN_DOUBT/LIVE/PARTIAL ─remainder|no_match|stale_market→ CANCELING (order gone, shares wanted)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from copying.outbox import STATUS_KINDS, copy_status_changed
from infra.db import utcnow
from infra.errors import IllegalTransition
from models import CopyOrder, CopyOrderEvent
from models import CopyStatus as S


class Event(StrEnum):
    """What happened to a copy order (the `event` column of its history)."""

    # creation (see INITIAL): the watcher's fan-out
    QUEUE = "queue"  # a copy to place
    SKIP_AT_INTAKE = "skip_at_intake"  # stale, before the follow, combo
    QUEUE_TARGET = "queue_target"  # a sale down to the follow's target (remainder, close-positions)
    # claims
    CLAIM = "claim"  # an executor took it under a lease
    RELEASE = "release"  # the executor gives it back (transient trouble, shutdown)
    LEASE_EXPIRED = "lease_expired"  # its executor died or hung
    SKIP = "skip"  # the executor decided not to place it (gates, sizing, pricing)
    STOP = "stop"  # kill switch, disable, removal or a trader exit before it was claimed
    # placement
    SIGN = "sign"  # signed body + order hash committed before the POST
    ACCEPTED = "accepted"  # the venue took the order
    REJECTED = "rejected"  # the venue refused it for good
    POST_UNRESOLVED = "post_unresolved"  # no clear answer: reconcile by hash
    NOT_PLACED = "not_placed"  # never found at the venue within the re-post window
    # what the venue says later
    FOUND = "found"  # reconciliation found the order resting (or trades still arriving)
    FILL = "fill"  # new fills, the order still rests
    REFRESH = "refresh"  # the venue order rests and the copy already holds fills (e.g. after a reprice)
    FILLED = "filled"  # the copy has all it intended
    VENUE_CLOSED = "venue_closed"  # the venue closed the order short (canceled, FAK remainder)
    # management
    CANCEL = "cancel"  # we ask the venue to cancel for good
    REPRICE_CANCEL = "reprice_cancel"  # we ask the venue to cancel in order to reprice
    CANCELED = "canceled"  # the cancel is confirmed; the copy ends
    REPRICE = "reprice"  # the cancel is confirmed; the remainder is signed anew
    # the venue order is gone but the copy still wants shares: the manager re-orders later
    REMAINDER = "remainder"  # a marketable (FAK) order filled part and the venue killed the rest
    NO_MATCH = "no_match"  # a FAK/FOK order found nothing to match within its limit
    STALE_MARKET = "stale_market"  # refused for a stale tick or min size: re-planned once
    # modes
    PAPER_CLOSED = "paper_closed"  # a paper copy closed without any venue (went live, admin)


INITIAL: dict[Event, S] = {Event.QUEUE: S.QUEUED, Event.SKIP_AT_INTAKE: S.SKIPPED,
                           Event.QUEUE_TARGET: S.QUEUED}

_SIGNED_OR_DOUBT = (S.SIGNED, S.IN_DOUBT)
_RESTING = (S.LIVE, S.PARTIAL)

MOVES: dict[tuple[S, Event], S] = {
    (S.QUEUED, Event.CLAIM): S.CLAIMED,
    (S.QUEUED, Event.SKIP): S.SKIPPED,
    (S.QUEUED, Event.STOP): S.CANCELED,
    (S.CLAIMED, Event.RELEASE): S.QUEUED,
    (S.CLAIMED, Event.LEASE_EXPIRED): S.QUEUED,
    (S.CLAIMED, Event.SKIP): S.SKIPPED,
    (S.CLAIMED, Event.SIGN): S.SIGNED,
    **{(st, Event.ACCEPTED): S.LIVE for st in _SIGNED_OR_DOUBT},
    **{(st, Event.REJECTED): S.REJECTED for st in _SIGNED_OR_DOUBT},
    **{(st, Event.POST_UNRESOLVED): S.IN_DOUBT for st in _SIGNED_OR_DOUBT},
    **{(st, Event.NOT_PLACED): S.NOT_PLACED for st in _SIGNED_OR_DOUBT},
    **{(st, Event.FOUND): S.LIVE for st in _SIGNED_OR_DOUBT},
    **{(st, Event.FILLED): S.FILLED for st in (*_SIGNED_OR_DOUBT, *_RESTING, S.CANCELING)},
    **{(st, Event.VENUE_CLOSED): S.CANCELED for st in (*_SIGNED_OR_DOUBT, *_RESTING)},
    # CANCELING + the venue still shows it resting: the cancel did not take, the order lives on
    **{(st, Event.FILL): S.PARTIAL for st in (*_RESTING, S.CANCELING)},
    (S.LIVE, Event.REFRESH): S.PARTIAL,
    (S.CANCELING, Event.REFRESH): S.PARTIAL,
    **{(st, Event.CANCEL): S.CANCELING for st in _RESTING},
    **{(st, Event.REPRICE_CANCEL): S.CANCELING for st in _RESTING},
    (S.CANCELING, Event.CANCELED): S.CANCELED,
    (S.CANCELING, Event.REPRICE): S.SIGNED,
    **{(st, Event.REMAINDER): S.CANCELING for st in (*_SIGNED_OR_DOUBT, *_RESTING)},
    **{(st, Event.NO_MATCH): S.CANCELING for st in _SIGNED_OR_DOUBT},
    **{(st, Event.STALE_MARKET): S.CANCELING for st in _SIGNED_OR_DOUBT},
    **{(st, Event.PAPER_CLOSED): S.CANCELED for st in (*_SIGNED_OR_DOUBT, *_RESTING, S.CANCELING)},
}

TERMINAL = frozenset({S.FILLED, S.REJECTED, S.NOT_PLACED, S.CANCELED, S.EXPIRED, S.SKIPPED})
OPEN_AT_VENUE = frozenset({S.LIVE, S.PARTIAL, S.CANCELING})
UNRESOLVED = frozenset({S.SIGNED, S.IN_DOUBT})
# may still trade at the venue: what reservations of balance and holdings must count
OPEN_STATES: tuple[S, ...] = tuple(sorted(UNRESOLVED | OPEN_AT_VENUE, key=lambda st: st.value))


def created(session: Session, order: CopyOrder, event: Event, *, reason: str | None = None,
            detail: dict[str, Any] | None = None) -> CopyOrderEvent:
    """Give a new copy order (flushed, with an id) its `INITIAL` status and its creation row."""
    target = INITIAL.get(event)
    if target is None:
        raise IllegalTransition(f"{event.value} does not create a copy order")
    order.status = target
    row = CopyOrderEvent(copy_order_id=order.id, event=event.value, from_status=None,
                         to_status=target.value, reason=reason, order_hash=None, detail=detail)
    session.add(row)
    return row


def target_of(current: S, event: Event) -> S | None:
    """Where `event` leads from `current`, or None when the table has no such move."""
    return MOVES.get((current, event))


def bulk_target(current: S, event: Event) -> S:
    """The status a set-based UPDATE moves copies in `current` to on `event`. Only a move that the
    table allows, that ends nothing and that notifies nobody may be made in bulk (`transition`
    does the rest: reasons, `closed_at`, the notification outbox); others raise."""
    target = MOVES.get((current, event))
    if target is None or target in TERMINAL or target in STATUS_KINDS:
        raise IllegalTransition(f"{event.value} from {current.value} cannot be made in bulk")
    return target


def record_moves(session: Session, moved: Sequence[tuple[int, str | None]], current: S, event: Event,
                 *, detail: dict[str, Any] | None = None, at: datetime) -> None:
    """Record `event` for copies a set-based UPDATE just moved from `current` to
    `bulk_target(current, event)` (ids with their order hashes), as one multi-row INSERT."""
    target = bulk_target(current, event)
    if moved:
        session.execute(insert(CopyOrderEvent), [
            {"copy_order_id": cid, "event": event.value, "from_status": current.value,
             "to_status": target.value, "reason": None, "order_hash": order_hash, "detail": detail,
             "created_at": at} for cid, order_hash in moved])


def transition(
    session: Session,
    order: CopyOrder,
    event: Event,
    *,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> CopyOrderEvent:
    """Apply `event` to `order` as the table says, recording the event row in the same transaction."""
    current = order.status
    target = MOVES.get((current, event))
    if target is None:
        raise IllegalTransition(f"copy order {order.id}: no move for {event.value} from {current.value}")
    order.status = target
    if target is S.CANCELING and current is not S.CANCELING:
        order.reason = reason  # a stop's reason, or None: the manager decides what follows
    elif reason is not None:
        order.reason = reason
    elif target in TERMINAL and target != S.FILLED and order.reason is None:
        order.reason = event.value
    if target in TERMINAL and order.closed_at is None:
        order.closed_at = utcnow()
    row = CopyOrderEvent(
        copy_order_id=order.id,
        event=event.value,
        from_status=current.value,
        to_status=target.value,
        reason=reason,
        order_hash=order.order_hash,
        detail=detail,
    )
    session.add(row)
    if target in STATUS_KINDS and target != current:
        copy_status_changed(session, order, target, detail)
    return row
