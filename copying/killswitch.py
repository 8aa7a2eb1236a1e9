"""The kill switch: deployment-wide, per follower and per follow, and the one question daemons ask.

Storage (no schema change needed):
- global: `SystemFlag('kill_switch')` = 'on' | 'off'; the reason in
  `SystemFlag('kill_switch:reason')`;
- follower: `Follower.status = DISABLED`; reason in `SystemFlag('kill_switch:follower:<id>')`;
- follow: `Follow.status = PAUSED` plus `SystemFlag('kill_switch:follow:<id>')` holding the
  reason. The flag is what makes it a kill-switch disable rather than a plain pause: `resume`
  does not lift it, only `admin enable` does.

Meaning for the daemons: a disabled scope queues/submits no new copies AND its open venue
orders are cancelled by the executor within seconds (`must_cancel_open_orders`, asked by
`copying.stops` at every wake of the open-order loop; the change NOTIFYs the executors on
PostgreSQL). A plain pause
(follower PAUSED or follow PAUSED without flag) only stops new copies.

Invariant: `copying_allowed` is the single answer to "may this follow copy now?"; it checks,
in order, the global switch, the follower, the follow and the tier, and returns a short reason
code (<= 64 chars, fits copy_orders.reason) when the answer is no. Every switch that actually
changes state adds its KILL_SWITCH_ON/OFF notification (copying/outbox.py) to the caller's
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from copying.outbox import kill_switch_changed
from infra.db import utcnow
from models import Follow, Follower, FollowerStatus, FollowStatus, SystemFlag

GLOBAL_FLAG = "kill_switch"
GLOBAL_REASON_FLAG = "kill_switch:reason"
FOLLOWER_PREFIX = "kill_switch:follower:"
FOLLOW_PREFIX = "kill_switch:follow:"

REASON_GLOBAL = "kill_switch"
REASON_FOLLOWER_DISABLED = "follower_disabled"
REASON_FOLLOWER_PAUSED = "follower_paused"
REASON_FOLLOW_DISABLED = "follow_disabled"
REASON_FOLLOW_PAUSED = "follow_paused"
REASON_FOLLOW_REMOVED = "follow_removed"


@dataclass(frozen=True)
class KillSwitchState:
    """A snapshot of every kill-switch flag (one query), for checking many copies at once."""

    global_on: bool = False
    global_reason: str | None = None
    global_since: datetime | None = None
    follower_reasons: dict[int, str] = field(default_factory=dict)
    follow_reasons: dict[int, str] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session) -> KillSwitchState:
        """Read all kill-switch flags."""
        rows = session.scalars(select(SystemFlag).where(SystemFlag.name.like("kill_switch%")))
        global_on, reason, since = False, None, None
        followers: dict[int, str] = {}
        follows: dict[int, str] = {}
        for row in rows:
            if row.name == GLOBAL_FLAG:
                global_on, since = row.value == "on", row.updated_at
            elif row.name == GLOBAL_REASON_FLAG:
                reason = row.value
            elif row.name.startswith(FOLLOWER_PREFIX):
                followers[_id_of(row.name, FOLLOWER_PREFIX)] = row.value
            elif row.name.startswith(FOLLOW_PREFIX):
                follows[_id_of(row.name, FOLLOW_PREFIX)] = row.value
        return cls(global_on, reason if global_on else None, since if global_on else None,
                   followers, follows)

    def copying_allowed(self, follower: Follower, follow: Follow) -> tuple[bool, str | None]:
        """(True, None) when `follow` may copy now, else (False, reason code)."""
        if self.global_on:
            return False, REASON_GLOBAL
        if follower.status == FollowerStatus.DISABLED:
            return False, REASON_FOLLOWER_DISABLED
        if follower.status == FollowerStatus.PAUSED:
            return False, REASON_FOLLOWER_PAUSED
        if follow.id in self.follow_reasons:
            return False, REASON_FOLLOW_DISABLED
        if follow.status == FollowStatus.REMOVED:
            return False, REASON_FOLLOW_REMOVED
        if follow.status == FollowStatus.PAUSED:
            return False, REASON_FOLLOW_PAUSED
        from copying.tiers import copy_allowed

        return copy_allowed(follower.tier, follow.copy_pct)

    def must_cancel_open_orders(self, follower: Follower, follow: Follow | None = None) -> bool:
        """True when open venue orders of this follower (or follow) must be cancelled now."""
        if self.global_on or follower.status == FollowerStatus.DISABLED:
            return True
        return follow is not None and follow.id in self.follow_reasons


def _id_of(name: str, prefix: str) -> int:
    try:
        return int(name[len(prefix):])
    except ValueError:
        return -1


def is_globally_disabled(session: Session) -> bool:
    """True when the deployment-wide kill switch is on."""
    row = session.get(SystemFlag, GLOBAL_FLAG)
    return row is not None and row.value == "on"


def copying_allowed(session: Session, follower: Follower,
                    follow: Follow) -> tuple[bool, str | None]:
    """(True, None) when `follow` may copy now, else (False, reason code). Two small queries."""
    if is_globally_disabled(session):
        return False, REASON_GLOBAL
    follow_flag = session.get(SystemFlag, f"{FOLLOW_PREFIX}{follow.id}")
    state = KillSwitchState(follow_reasons={follow.id: follow_flag.value} if follow_flag else {})
    return state.copying_allowed(follower, follow)


def notify_executors(session: Session) -> None:
    """On PostgreSQL, wake the executors' open-order loops when `session` commits (NOTIFY is
    delivered at commit): a disable, a removed follow, a cancel request is acted on at once
    rather than at their next ORDER_WAKE_INTERVAL."""
    from copying.intake import CONTROL_CHANNEL

    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CONTROL_CHANNEL}"))


def _set_flag(session: Session, name: str, value: str) -> None:
    row = session.get(SystemFlag, name)
    if row is None:
        session.add(SystemFlag(name=name, value=value[:200], updated_at=utcnow()))
    else:
        row.value = value[:200]
        row.updated_at = utcnow()


def _drop_flag(session: Session, name: str) -> None:
    session.execute(delete(SystemFlag).where(SystemFlag.name == name))


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    return text or "disabled by admin"


def disable_all(session: Session, reason: str | None = None) -> None:
    """Turn the global kill switch on."""
    was_on = is_globally_disabled(session)
    _set_flag(session, GLOBAL_FLAG, "on")
    _set_flag(session, GLOBAL_REASON_FLAG, _reason(reason))
    if not was_on:
        kill_switch_changed(session, True, scope="global", reason=_reason(reason))
    notify_executors(session)


def enable_all(session: Session) -> bool:
    """Turn the global kill switch off; False when it was not on."""
    was_on = is_globally_disabled(session)
    _set_flag(session, GLOBAL_FLAG, "off")
    _drop_flag(session, GLOBAL_REASON_FLAG)
    if was_on:
        kill_switch_changed(session, False, scope="global")
    return was_on


def disable_follower(session: Session, follower: Follower, reason: str | None = None) -> None:
    """Disable a follower (no new copies, open orders cancelled by the executor)."""
    if follower.status != FollowerStatus.DISABLED:
        kill_switch_changed(session, True, scope="follower", follower_id=follower.id,
                            reason=_reason(reason), subject=follower.funder_address)
    follower.status = FollowerStatus.DISABLED
    _set_flag(session, f"{FOLLOWER_PREFIX}{follower.id}", _reason(reason))
    notify_executors(session)


def enable_follower(session: Session, follower: Follower) -> bool:
    """Re-activate a disabled follower; False when it was not disabled."""
    was = follower.status == FollowerStatus.DISABLED
    if was:
        follower.status = FollowerStatus.ACTIVE
        kill_switch_changed(session, False, scope="follower", follower_id=follower.id,
                            subject=follower.funder_address)
    _drop_flag(session, f"{FOLLOWER_PREFIX}{follower.id}")
    return was


def disable_follow(session: Session, follow: Follow, reason: str | None = None) -> None:
    """Disable one follow: PAUSED plus the kill-switch flag (open orders get cancelled)."""
    if session.get(SystemFlag, f"{FOLLOW_PREFIX}{follow.id}") is None:
        kill_switch_changed(session, True, scope="follow", follower_id=follow.follower_id,
                            reason=_reason(reason), subject=follow.trader.wallet)
    follow.status = FollowStatus.PAUSED
    _set_flag(session, f"{FOLLOW_PREFIX}{follow.id}", _reason(reason))
    notify_executors(session)


def enable_follow(session: Session, follow: Follow) -> bool:
    """Lift a follow's kill-switch disable and make it ACTIVE; False when it was not disabled."""
    was = session.get(SystemFlag, f"{FOLLOW_PREFIX}{follow.id}") is not None
    if was:
        follow.status = FollowStatus.ACTIVE
        _drop_flag(session, f"{FOLLOW_PREFIX}{follow.id}")
        kill_switch_changed(session, False, scope="follow", follower_id=follow.follower_id,
                            subject=follow.trader.wallet)
    return was
