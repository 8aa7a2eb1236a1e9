"""The copy order state machine: one table of allowed moves and the only writer of `status`.

Invariant: every status change goes through `transition()`, which refuses moves not in
`ALLOWED` and adds a `CopyOrderEvent` row in the caller's transaction, so the history and the
status can never disagree; a move to REJECTED, IN_DOUBT or SKIPPED also adds its notification
(notify/outbox.py) to that same transaction. A signed order is reconciled, never re-queued or re-signed: no move
leads from SIGNED or IN_DOUBT back to QUEUED or CLAIMED.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from infra.db import utcnow
from infra.errors import IllegalTransition
from models import CopyOrder, CopyOrderEvent
from models import CopyStatus as S
from notify.outbox import STATUS_KINDS, copy_status_changed

TERMINAL = frozenset({S.FILLED, S.REJECTED, S.NOT_PLACED, S.CANCELED, S.EXPIRED, S.SKIPPED})
OPEN_AT_VENUE = frozenset({S.LIVE, S.PARTIAL, S.CANCELING})
UNRESOLVED = frozenset({S.SIGNED, S.IN_DOUBT})
# may still trade at the venue: what reservations of balance and holdings must count
OPEN_STATES: tuple[S, ...] = tuple(sorted(UNRESOLVED | OPEN_AT_VENUE, key=lambda st: st.value))

ALLOWED: dict[S, frozenset[S]] = {
    S.QUEUED: frozenset({S.CLAIMED, S.SKIPPED, S.CANCELED}),
    S.CLAIMED: frozenset({S.QUEUED, S.SIGNED, S.SKIPPED, S.CANCELED}),
    # SIGNED/IN_DOUBT -> CANCELED: reconciliation found the order already dead at the venue
    S.SIGNED: frozenset({S.LIVE, S.PARTIAL, S.FILLED, S.REJECTED, S.IN_DOUBT, S.NOT_PLACED,
                         S.CANCELED}),
    S.IN_DOUBT: frozenset({S.IN_DOUBT, S.LIVE, S.PARTIAL, S.FILLED, S.REJECTED, S.NOT_PLACED,
                           S.CANCELED}),
    S.LIVE: frozenset({S.PARTIAL, S.FILLED, S.CANCELING, S.CANCELED, S.EXPIRED}),
    S.PARTIAL: frozenset({S.PARTIAL, S.FILLED, S.CANCELING, S.CANCELED, S.EXPIRED}),
    # CANCELING -> SIGNED is a reprice: the cancel is confirmed and the remainder re-signed
    S.CANCELING: frozenset({S.CANCELING, S.CANCELED, S.FILLED, S.PARTIAL, S.LIVE, S.EXPIRED,
                            S.SIGNED}),
}


def can_move(current: S, target: S) -> bool:
    """True if `current → target` is an allowed move."""
    return target in ALLOWED.get(current, frozenset())


def transition(
    session: Session,
    order: CopyOrder,
    target: S,
    event: str,
    *,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> CopyOrderEvent:
    """Move `order` to `target`, recording the event row in the same transaction."""
    current = order.status
    if not can_move(current, target):
        raise IllegalTransition(f"copy order {order.id}: {current.value} -> {target.value} ({event})")
    order.status = target
    if reason is not None:
        order.reason = reason
    elif target in TERMINAL and target != S.FILLED and order.reason is None:
        order.reason = event
    if target in TERMINAL and order.closed_at is None:
        order.closed_at = utcnow()
    row = CopyOrderEvent(
        copy_order_id=order.id,
        event=event,
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
