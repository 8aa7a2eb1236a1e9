"""Notifications the sender generates itself: stale daemons and daily P&L digests.

Both are idempotent (a `dedupe_key` per event), so a restart or two notifiers never send one
twice:
- a daemon whose heartbeat is stale (the same rule as `admin status`) → DAEMON_STALE once per
  silence (keyed on its last cycle time); when it beats again → DAEMON_RECOVERED once. The
  silence being reported is remembered in `SystemFlag('notify:stale:<name>')`;
- day D's digest is due on D+1 at NOTIFY_DIGEST_HOUR:00 UTC, one per follower that has a
  destination wanting it (keyed on follower and day); after downtime only the latest due day
  is sent, not a backlog.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from copying.outbox import enqueue_once
from infra.db import utcnow
from models import (
    DaemonHeartbeat,
    Follower,
    FollowerStatus,
    NotificationKind,
    NotifyDestination,
    SystemFlag,
)
from notify.destinations import ADMIN_SCOPE, alerts_allowed, events_of
from notify.digest import PriceSource, digest_payload
from ops.views import Intervals, daemon_rows, human_age

STALE_FLAG_PREFIX = "notify:stale:"


def check_heartbeats(session: Session, now: datetime, intervals: Intervals,
                     own_name: str = "notifier") -> tuple[int, int]:
    """Enqueue stale / recovered alerts; returns (stale alerts added, recoveries added)."""
    stale_added = recovered = 0
    flags = {r.name[len(STALE_FLAG_PREFIX):]: r for r in session.scalars(
        select(SystemFlag).where(SystemFlag.name.like(f"{STALE_FLAG_PREFIX}%")))}
    for row in daemon_rows(session, now, intervals):
        name = str(row["name"])
        if name == own_name:
            continue
        key_name = name[: 64 - len(STALE_FLAG_PREFIX)]
        last = row["last_cycle_at"] or "never"
        if row["stale"]:
            hb = session.get(DaemonHeartbeat, name)
            age = human_age((now - hb.last_cycle_at).total_seconds()) if hb and hb.last_cycle_at else "?"
            if enqueue_once(session, NotificationKind.DAEMON_STALE, None, {
                    "name": name, "last_cycle_at": row["last_cycle_at"], "age": age,
                    "host": row["host"], "pid": row["pid"]}, f"daemon_stale:{name}:{last}"):
                stale_added += 1
            flag = flags.get(key_name)
            if flag is None:
                session.add(SystemFlag(name=f"{STALE_FLAG_PREFIX}{key_name}", value=str(last)[:200],
                                       updated_at=now))
            elif flag.value != str(last)[:200]:
                flag.value, flag.updated_at = str(last)[:200], now
        elif key_name in flags:
            flag = flags[key_name]
            if enqueue_once(session, NotificationKind.DAEMON_RECOVERED, None, {
                    "name": name, "last_cycle_at": row["last_cycle_at"]},
                    f"daemon_recovered:{name}:{flag.value}"):
                recovered += 1
            session.execute(delete(SystemFlag).where(SystemFlag.name == flag.name))
    return stale_added, recovered


def digest_followers(session: Session) -> list[Follower]:
    """Followers whose digest someone receives (their own destination, or an admin's)."""
    dests = list(session.scalars(select(NotifyDestination).where(NotifyDestination.enabled.is_(True))))
    wanted = [d for d in dests if NotificationKind.DAILY_DIGEST in events_of(d)]
    if not wanted:
        return []
    q = select(Follower).where(Follower.status != FollowerStatus.DISABLED).order_by(Follower.id)
    if not any(d.scope == ADMIN_SCOPE for d in wanted):
        ids = {d.follower_id for d in wanted if d.follower_id is not None}
        q = q.where(Follower.id.in_(ids))
    return [f for f in session.scalars(q) if alerts_allowed(f.tier)]


def digest_done(session: Session, follower_id: int, day: date) -> bool:
    """True when this follower's digest for `day` was generated already."""
    from models import Notification

    return session.scalar(select(Notification.id).where(
        Notification.dedupe_key == digest_key(follower_id, day))) is not None


def digest_key(follower_id: int, day: date) -> str:
    """The dedupe key of one daily digest."""
    return f"daily_digest:{follower_id}:{day.isoformat()}"


def enqueue_digest(session: Session, follower: Follower, day: date,
                   prices: PriceSource | None, now: datetime | None = None) -> bool:
    """Generate one follower's digest of `day` unless done (or the follower is newer); True when added."""
    from notify.digest import day_bounds

    if follower.created_at is not None and follower.created_at >= day_bounds(day)[1]:
        return False  # nothing to say about a day before the follower existed
    payload = digest_payload(session, follower, day, prices, until=now or utcnow())
    return enqueue_once(session, NotificationKind.DAILY_DIGEST, follower.id, payload,
                        digest_key(follower.id, day))
