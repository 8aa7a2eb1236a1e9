"""The outbox: a notification row is written in the same transaction as the event behind it.

Invariant: these functions only add rows to the caller's session. They never commit, never
talk to the network and never raise for a notification reason, so a notification exists
exactly when its event's transaction commits (roll the event back and the row is gone), and a
broken destination can never hold up trading. `notify/sender.py` routes and delivers the rows.

The engine calls in here from a few central places:
- `copying/states.transition` → `copy_status_changed` (every REJECTED, IN_DOUBT, SKIPPED move);
- `copying/ledger.record_fill` → `copy_filled` (every new fill of a copy, live or paper);
- `copying/intake.fan_out` → `copies_skipped_at_intake` (stale and combo skips, which are
  inserted in bulk without a transition);
- `copying/killswitch` disable/enable functions → `kill_switch_changed`.
`resolution_payout` is the entry point for the payout booking (not written yet).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from infra.db import insert_ignore, utcnow
from infra.decimals import canonical_decimal
from models import CopyOrder, CopyStatus, Notification, NotificationKind

# Copy order moves that are worth telling people about (FILLED is told by fills, one per trade).
STATUS_KINDS: dict[CopyStatus, NotificationKind] = {
    CopyStatus.REJECTED: NotificationKind.COPY_REJECTED,
    CopyStatus.IN_DOUBT: NotificationKind.COPY_IN_DOUBT,
    CopyStatus.SKIPPED: NotificationKind.COPY_SKIPPED,
}
# Intake skips that are not news: a fill from before the follow started was never to be copied.
QUIET_SKIP_REASONS = frozenset({"before_follow"})


def plain(value: Any) -> Any:
    """`value` as JSON: Decimal → canonical string, datetime → ISO 8601, Enum → its value."""
    if isinstance(value, Decimal):
        return canonical_decimal(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def enqueue(session: Session, kind: NotificationKind, follower_id: int | None,
            payload: Mapping[str, Any], *, destination_id: int | None = None) -> Notification:
    """Add one notification to the caller's transaction (nothing is flushed or committed here)."""
    row = Notification(kind=kind, follower_id=follower_id, destination_id=destination_id,
                       payload=plain(payload), created_at=utcnow())
    session.add(row)
    return row


def enqueue_once(session: Session, kind: NotificationKind, follower_id: int | None,
                 payload: Mapping[str, Any], dedupe_key: str) -> bool:
    """Add a notification unless one with `dedupe_key` exists; True when it was added."""
    dialect = session.get_bind().dialect.name
    stmt = insert_ignore(Notification.__table__, dialect).returning(Notification.__table__.c.id)
    new_id = session.execute(stmt, [{
        "kind": kind, "follower_id": follower_id, "destination_id": None,
        "payload": plain(payload), "dedupe_key": dedupe_key[:160], "created_at": utcnow(),
        "routed_at": None}]).scalar()
    return new_id is not None


def _copy_facts(order: CopyOrder) -> dict[str, Any]:
    return {
        "copy_order_id": order.id, "side": order.side, "token_id": order.token_id,
        "condition_id": order.condition_id, "trader_price": order.trader_price,
        "intended_size": order.intended_size, "intended_price": order.intended_price,
        "paper": bool(order.paper),
    }


def copy_status_changed(session: Session, order: CopyOrder, target: CopyStatus,
                        detail: Mapping[str, Any] | None = None) -> None:
    """A copy moved to REJECTED, IN_DOUBT or SKIPPED (called by `copying.states.transition`)."""
    kind = STATUS_KINDS.get(target)
    if kind is None:
        return
    payload = _copy_facts(order)
    payload["reason"] = order.reason
    if target == CopyStatus.SKIPPED:
        payload["detail"] = (order.reason_detail or "")[:300]
    elif detail:
        payload["detail"] = str(detail.get("message") or detail.get("outcome") or "")[:300]
        if detail.get("http") is not None:
            payload["http"] = detail.get("http")
    enqueue(session, kind, order.follower_id, payload)


def copy_filled(session: Session, order: CopyOrder, *, fill_id: int, size: Decimal,
                price: Decimal, fee: Decimal, realized_pnl: Decimal, filled_at: datetime) -> None:
    """One new fill of a copy (called by `copying.ledger.record_fill`, after the position moved)."""
    payload = _copy_facts(order)
    payload.update(follower_fill_id=fill_id, size=size, price=price, fee=fee,
                   realized_pnl=realized_pnl, filled_size=order.filled_size,
                   filled_at=filled_at)
    enqueue(session, NotificationKind.COPY_FILLED, order.follower_id, payload)


def copies_skipped_at_intake(session: Session, rows: Sequence[tuple[int, int, str | None]],
                             fill: Mapping[str, Any]) -> int:
    """Copies the watcher inserted SKIPPED (rows of (copy id, follower id, reason)); one INSERT."""
    now = utcnow()
    values = [{
        "kind": NotificationKind.COPY_SKIPPED, "follower_id": follower_id, "destination_id": None,
        "payload": plain({"copy_order_id": copy_id, "side": fill.get("side"),
                          "token_id": fill.get("token_id"), "condition_id": fill.get("condition_id"),
                          "trader_price": fill.get("price"), "reason": reason,
                          "title": fill.get("title") or "", "outcome": fill.get("outcome") or ""}),
        "dedupe_key": None, "created_at": now, "routed_at": None,
    } for copy_id, follower_id, reason in rows if reason not in QUIET_SKIP_REASONS]
    if values:
        session.execute(insert(Notification), values)
    return len(values)


def kill_switch_changed(session: Session, on: bool, *, scope: str, follower_id: int | None = None,
                        reason: str | None = None, subject: str | None = None) -> None:
    """The kill switch went on or off for `scope` ('global', 'follower' or 'follow')."""
    kind = NotificationKind.KILL_SWITCH_ON if on else NotificationKind.KILL_SWITCH_OFF
    enqueue(session, kind, follower_id, {"scope": scope, "reason": reason, "subject": subject})


def follow_auto_paused(session: Session, follower_id: int, *, follow_id: int, trader_id: int,
                       edge_pct: Decimal, trades: int, reason: str) -> None:
    """A follow was paused because its copied edge stayed negative (`copying.auto_pause`)."""
    enqueue(session, NotificationKind.FOLLOW_AUTO_PAUSED, follower_id, {
        "follow_id": follow_id, "trader_id": trader_id, "edge_pct": edge_pct, "trades": trades,
        "reason": reason})


def resolution_payout(session: Session, follower_id: int, *, condition_id: str, token_id: str,
                      shares: Decimal, payout_usd: Decimal, realized_pnl: Decimal | None = None,
                      paper: bool = False, title: str = "", outcome: str = "") -> None:
    """A resolved market paid the follower (to be called where payouts are booked)."""
    enqueue(session, NotificationKind.RESOLUTION_PAYOUT, follower_id, {
        "condition_id": condition_id, "token_id": token_id, "shares": shares,
        "payout_usd": payout_usd, "realized_pnl": realized_pnl, "paper": paper, "title": title,
        "outcome": outcome})

