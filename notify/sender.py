"""The outbox sender: route notifications to destinations, then deliver each delivery row once.

A delivery row moves PENDING → SENDING → SENT | PENDING (retry) | FAILED:
1. route: every unrouted notification gets one delivery per destination that wants it (events
   filter, tier, follower scope), in one transaction with `routed_at` (unique pair: idempotent);
2. per destination, after its rate-limit buckets grant a token: claim its due rows (FOR UPDATE
   SKIP LOCKED on PostgreSQL) as SENDING with a lease, attempts + 1, and COMMIT — the claim is
   durable before the request leaves ("mark before send");
3. send one message (due rows of one destination are bundled up to the channel's length limit;
   pending skips ride along, so skips become a digest rather than one message each);
4. record the outcome (only rows still SENDING under this owner's lease).

Exactly once, bounded: a crash (kill -9) between 2 and 4 leaves SENDING rows whose lease
expires; neither Telegram nor Discord webhooks offer an idempotency key, so whether the message
arrived is unknown. Such a row is sent again once, marked `in_doubt` and prefixed with a "may
repeat" note; if that second send is interrupted too, the row is FAILED instead of being sent a
third time. A send that may have reached the server (read timeout, 504) counts the same way.
So a row is delivered at least once unless it gives up, and at most twice. 429s do not count as
attempts; other failures retry with exponential backoff (jitter) until NOTIFY_MAX_ATTEMPTS,
then FAILED with `last_error`. A dead destination (bot blocked, webhook deleted) is disabled
with the reason and its pending rows fail at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from crypto import KeyRing, Secret
from infra.config import Settings
from infra.db import insert_ignore, session_scope, utcnow
from infra.logs import mask_secrets
from models import (
    CopyOrder,
    DeliveryStatus,
    Follower,
    Notification,
    NotificationDelivery,
    NotificationKind,
    NotifyChannel,
    NotifyDestination,
    TraderFill,
)
from notify.channels import (
    DiscordApi,
    Limits,
    SendResult,
    TelegramApi,
    discord_claims,
    telegram_claims,
)
from notify.destinations import (
    ADMIN_SCOPE,
    BROADCAST_EVENTS,
    alerts_allowed,
    events_of,
    webhook_of,
)
from notify.render import LIMITS, Block, Labels, block_for, compose, skip_digest, truncate_block
from wire.transport import full_jitter_half

log = logging.getLogger("pmct.notify")
D = DeliveryStatus
K = NotificationKind
BACKOFF_BASE = 5.0  # seconds before the first retry; doubles per attempt
BACKOFF_CAP = 900.0
MAX_BUNDLE_ROWS = 40
ROUTE_BATCH = 500
SEND_CONCURRENCY = 8  # requests in flight at once (the buckets pace them further)


@dataclass
class SenderContext:
    """Everything the sender needs (one per notifier process)."""

    settings: Settings
    factory: sessionmaker[Session]
    owner: str
    telegram: TelegramApi | None = None
    discord: DiscordApi | None = None
    keyring: KeyRing | None = None
    limits: Limits = field(default_factory=Limits)
    clock: Callable[[], datetime] = utcnow
    jitter: Callable[[float], float] = full_jitter_half
    crash_hook: Callable[[str], None] = lambda point: None

    @property
    def lease(self) -> timedelta:
        """How long a claimed row stays ours before it counts as interrupted."""
        return timedelta(seconds=self.settings.notify_lease_seconds)

    def backoff(self, attempts: int) -> timedelta:
        """Delay before the retry after `attempts` failed attempts."""
        return timedelta(seconds=self.jitter(min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))))


def _pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# --- 1. routing ---------------------------------------------------------------------------

@dataclass
class Routes:
    """The enabled destinations, indexed once per routing batch (O(notifications + deliveries))."""

    by_id: dict[int, NotifyDestination]
    admins: list[tuple[NotifyDestination, frozenset[K]]]
    followers: dict[int, list[tuple[NotifyDestination, frozenset[K]]]]  # alert tiers only

    @classmethod
    def load(cls, s: Session) -> Routes:
        """Read the enabled destinations and their followers' tiers."""
        dests = list(s.scalars(select(NotifyDestination).where(NotifyDestination.enabled.is_(True))))
        fids = {d.follower_id for d in dests if d.follower_id is not None}
        allowed = {fid for fid, tier in s.execute(select(Follower.id, Follower.tier).where(
            Follower.id.in_(fids))) if alerts_allowed(tier)} if fids else set()
        admins: list[tuple[NotifyDestination, frozenset[K]]] = []
        followers: dict[int, list[tuple[NotifyDestination, frozenset[K]]]] = {}
        for d in dests:
            if d.scope == ADMIN_SCOPE:
                admins.append((d, events_of(d)))
            elif d.follower_id in allowed:
                followers.setdefault(d.follower_id, []).append((d, events_of(d)))
        return cls({d.id: d for d in dests}, admins, followers)

    def targets(self, note: Notification) -> list[NotifyDestination]:
        """Who receives `note`: its targeted chat, else by events filter, scope and tier."""
        if note.destination_id is not None:
            dest = self.by_id.get(note.destination_id)
            return [dest] if dest is not None else []
        if note.kind is K.COMMAND_REPLY:
            return []
        out = [d for d, events in self.admins if note.kind in events]
        if note.follower_id is not None:
            out += [d for d, events in self.followers.get(note.follower_id, ()) if note.kind in events]
        elif note.kind in BROADCAST_EVENTS:
            out += [d for pairs in self.followers.values() for d, events in pairs if note.kind in events]
        return out


def route(ctx: SenderContext, limit: int = ROUTE_BATCH) -> tuple[int, int]:
    """Create deliveries for unrouted notifications; returns (notifications, deliveries)."""
    with session_scope(ctx.factory) as s:
        q = select(Notification).where(Notification.routed_at.is_(None)).order_by(
            Notification.id).limit(limit)
        if _pg(s):
            q = q.with_for_update(skip_locked=True)
        notes = list(s.scalars(q))
        if not notes:
            return 0, 0
        now = ctx.clock()
        routes = Routes.load(s)
        skip_delay = timedelta(seconds=ctx.settings.notify_skip_digest_seconds)
        values: list[dict[str, Any]] = []
        for note in notes:
            due = (note.created_at or now) + skip_delay if note.kind is K.COPY_SKIPPED else now
            for dest in routes.targets(note):
                values.append({"notification_id": note.id, "destination_id": dest.id,
                               "kind": note.kind, "status": D.PENDING, "attempts": 0,
                               "in_doubt": False, "next_attempt_at": due, "created_at": now})
        s.execute(update(Notification).where(Notification.id.in_([n.id for n in notes]))
                  .values(routed_at=now).execution_options(synchronize_session=False))
        if values:
            s.execute(insert_ignore(NotificationDelivery.__table__, s.get_bind().dialect.name), values)
        return len(notes), len(values)


# --- crash recovery -----------------------------------------------------------------------

def recover_interrupted(ctx: SenderContext) -> tuple[int, int]:
    """SENDING rows whose lease expired: re-send once (in doubt), or FAILED if already in doubt."""
    now = ctx.clock()
    with session_scope(ctx.factory) as s:
        q = select(NotificationDelivery).where(NotificationDelivery.status == D.SENDING,
                                               NotificationDelivery.lease_expires_at < now)
        if _pg(s):
            q = q.with_for_update(skip_locked=True)
        resend = failed = 0
        for row in s.scalars(q):
            row.lease_owner = row.lease_expires_at = None
            if row.in_doubt:
                row.status = D.FAILED
                row.last_error = ("interrupted twice while sending: not sent a third time "
                                  "(it may have arrived once or twice)")
                failed += 1
            else:
                row.status, row.in_doubt, row.next_attempt_at = D.PENDING, True, now
                resend += 1
        if resend or failed:
            log.warning("notifications interrupted while sending: %d to re-send once (marked as "
                        "possible repeats), %d given up", resend, failed)
        return resend, failed


# --- 2. claiming a destination's rows -------------------------------------------------------

@dataclass
class Bundle:
    """One message to one destination: the claimed rows and the text."""

    destination_id: int
    channel: NotifyChannel
    chat_id: int | None
    webhook_id: str | None
    webhook_token: Secret | None
    row_ids: list[int]
    text: str

    @property
    def key(self) -> str:
        """The rate-limit key of the destination."""
        return f"tg:{self.chat_id}" if self.channel is NotifyChannel.TELEGRAM else f"dc:{self.webhook_id}"


def due_destinations(ctx: SenderContext, limit: int = 200) -> list[int]:
    """Destinations with at least one due PENDING row, oldest work first."""
    now = ctx.clock()
    with session_scope(ctx.factory) as s:
        rows = s.execute(
            select(NotificationDelivery.destination_id, func.min(NotificationDelivery.id))
            .where(NotificationDelivery.status == D.PENDING,
                   NotificationDelivery.next_attempt_at <= now)
            .group_by(NotificationDelivery.destination_id)
            .order_by(func.min(NotificationDelivery.id)).limit(limit)).all()
    return [int(d) for d, _ in rows]


def _labels(s: Session, notes: list[Notification]) -> Labels:
    copy_ids = {int(n.payload["copy_order_id"]) for n in notes
                if isinstance(n.payload, dict) and n.payload.get("copy_order_id")}
    markets: dict[int, tuple[str, str]] = {}
    if copy_ids:
        for cid, title, outcome in s.execute(
                select(CopyOrder.id, TraderFill.title, TraderFill.outcome)
                .join(TraderFill, TraderFill.id == CopyOrder.trader_fill_id)
                .where(CopyOrder.id.in_(copy_ids))):
            markets[int(cid)] = (title or "", outcome or "")
    fids = {n.follower_id for n in notes if n.follower_id is not None}
    wallets = {int(i): w for i, w in s.execute(
        select(Follower.id, Follower.funder_address).where(Follower.id.in_(fids)))} if fids else {}
    return Labels(markets, wallets)


def _fail_all(s: Session, dest_id: int, why: str) -> None:
    s.execute(update(NotificationDelivery).where(
        NotificationDelivery.destination_id == dest_id, NotificationDelivery.status == D.PENDING)
        .values(status=D.FAILED, last_error=why[:500]))


def claim(ctx: SenderContext, dest_id: int) -> Bundle | None:
    """Claim the destination's due rows (plus its pending skips) that fit one message; commit."""
    now = ctx.clock()
    with session_scope(ctx.factory) as s:
        dest = s.get(NotifyDestination, dest_id)
        if dest is None:
            return None
        if not dest.enabled:
            _fail_all(s, dest_id, f"destination disabled: {dest.disabled_reason or 'by admin'}")
            return None
        q = (select(NotificationDelivery).where(
            NotificationDelivery.destination_id == dest_id, NotificationDelivery.status == D.PENDING,
            or_(NotificationDelivery.next_attempt_at <= now, NotificationDelivery.kind == K.COPY_SKIPPED))
            .order_by(NotificationDelivery.id).limit(MAX_BUNDLE_ROWS))
        if _pg(s):
            q = q.with_for_update(skip_locked=True)
        rows = list(s.scalars(q))
        if not any(r.next_attempt_at <= now for r in rows):
            return None
        notes = {n.id: n for n in s.scalars(select(Notification).where(
            Notification.id.in_([r.notification_id for r in rows])))}
        try:
            target = _target(ctx, dest)
        except Exception as exc:  # noqa: BLE001 - a broken destination must not stop the others
            why = mask_secrets(f"{type(exc).__name__}: {exc}")[:300]
            _defer(ctx, rows, now, why)
            log.error("notification destination %s unusable: %s", dest.label, why)
            return None
        labels = _labels(s, list(notes.values()))
        limit = LIMITS[dest.channel]
        skips = [r for r in rows if r.kind is K.COPY_SKIPPED]
        others = [r for r in rows if r.kind is not K.COPY_SKIPPED]
        repeat = any(r.in_doubt for r in rows)
        chosen: list[NotificationDelivery] = []
        blocks: list[Block] = []
        budget = limit - (200 if repeat else 0)
        if skips:
            blk = truncate_block(skip_digest(
                [(notes[r.notification_id].payload, notes[r.notification_id].follower_id) for r in skips],
                labels), dest.channel, budget)
            blocks.append(blk)
            chosen.extend(skips)
        for r in others:
            note = notes[r.notification_id]
            blk = truncate_block(block_for(note.kind, note.payload, note.follower_id, labels),
                                 dest.channel, budget)
            if blocks and len(compose([*blocks, blk], dest.channel)) > budget:
                break
            blocks.append(blk)
            chosen.append(r)
        for r in chosen:
            r.status, r.attempts = D.SENDING, (r.attempts or 0) + 1
            r.lease_owner, r.lease_expires_at = ctx.owner, now + ctx.lease
        chat_id, webhook_id, token = target
        text = compose(blocks, dest.channel, repeat=any(r.in_doubt for r in chosen))
        return Bundle(dest.id, dest.channel, chat_id, webhook_id, token, [r.id for r in chosen], text)


def _target(ctx: SenderContext, dest: NotifyDestination) -> tuple[int | None, str | None, Secret | None]:
    if dest.channel is NotifyChannel.TELEGRAM:
        if ctx.telegram is None:
            raise RuntimeError("TELEGRAM_BOT_TOKEN is not set")
        return dest.telegram_chat_id, None, None
    if ctx.discord is None:
        raise RuntimeError("Discord sending is not configured")
    if ctx.keyring is None:
        raise RuntimeError("ENCRYPTION_KEY is not set: cannot decrypt the webhook URL")
    hook = webhook_of(ctx.keyring, dest)
    return None, hook.webhook_id, hook.token


def _defer(ctx: SenderContext, rows: list[NotificationDelivery], now: datetime, why: str) -> None:
    """A problem on our side (configuration): count an attempt, retry later or give up."""
    for r in rows:
        if r.next_attempt_at > now:
            continue
        r.attempts = (r.attempts or 0) + 1
        r.last_error = why[:500]
        if r.attempts >= ctx.settings.notify_max_attempts:
            r.status = D.FAILED
        else:
            r.next_attempt_at = now + ctx.backoff(r.attempts)


# --- 3. and 4. sending, recording ----------------------------------------------------------

async def send_bundle(ctx: SenderContext, bundle: Bundle) -> SendResult:
    """The HTTP call for one bundle (no database access)."""
    if bundle.channel is NotifyChannel.TELEGRAM:
        assert ctx.telegram is not None and bundle.chat_id is not None
        return await ctx.telegram.send_message(bundle.chat_id, bundle.text)
    assert ctx.discord is not None and bundle.webhook_id and bundle.webhook_token
    return await ctx.discord.execute(bundle.webhook_id, bundle.webhook_token, bundle.text)


def record(ctx: SenderContext, bundle: Bundle, result: SendResult) -> str:
    """Write the outcome on the bundle's rows still SENDING under our lease; returns a label."""
    now = ctx.clock()
    with session_scope(ctx.factory) as s:
        rows = list(s.scalars(select(NotificationDelivery).where(
            NotificationDelivery.id.in_(bundle.row_ids), NotificationDelivery.status == D.SENDING,
            NotificationDelivery.lease_owner == ctx.owner)))
        for r in rows:
            r.lease_owner = r.lease_expires_at = None
        if result.sent:
            for r in rows:
                r.status, r.sent_at, r.last_error = D.SENT, now, None
            if result.pause_after:
                ctx.limits.pause(bundle.key, result.pause_after)
            return "sent"
        detail = result.detail[:500]
        if result.outcome == "rate_limited":
            wait = result.retry_after or 1.0
            ctx.limits.pause("tg:*" if result.everything and bundle.channel is NotifyChannel.TELEGRAM
                             else "dc:*" if result.everything else bundle.key, wait)
            for r in rows:
                r.status, r.attempts, r.last_error = D.PENDING, max(0, r.attempts - 1), detail
                r.next_attempt_at = now + timedelta(seconds=wait)
            log.warning("%s rate limited: retry after %.1f s", bundle.channel.value, wait)
            return "rate_limited"
        if result.outcome == "moved" and result.new_chat_id is not None:
            dest = s.get(NotifyDestination, bundle.destination_id)
            if dest is not None:
                _move_chat(s, dest, result.new_chat_id)
            for r in rows:
                r.status, r.attempts, r.next_attempt_at = D.PENDING, max(0, r.attempts - 1), now
            return "moved"
        if result.outcome == "permanent":
            for r in rows:
                r.status, r.last_error = D.FAILED, detail
            if result.disable:
                dest = s.get(NotifyDestination, bundle.destination_id)
                if dest is not None:
                    dest.enabled, dest.disabled_reason = False, detail[:300]
                    log.warning("notification destination %s disabled: %s", dest.label, detail)
                _fail_all(s, bundle.destination_id, f"destination disabled: {detail}")
            else:
                log.warning("notification refused by %s: %s", bundle.channel.value, detail)
            return "failed"
        for r in rows:  # transient
            r.last_error = detail
            if result.maybe_delivered:
                if r.in_doubt:
                    r.status = D.FAILED
                    r.last_error = f"{detail}; outcome unknown twice: not sent a third time"[:500]
                    continue
                r.in_doubt = True
            if r.attempts >= ctx.settings.notify_max_attempts:
                r.status = D.FAILED
            else:
                r.status, r.next_attempt_at = D.PENDING, now + ctx.backoff(r.attempts)
        log.warning("notification to %s failed (will retry unless given up): %s",
                    bundle.channel.value, detail)
        return "retry"


def _move_chat(s: Session, dest: NotifyDestination, new_chat_id: int) -> None:
    import hashlib

    dest.telegram_chat_id = new_chat_id
    dest.target_hash = hashlib.sha256(f"telegram:{new_chat_id}".encode()).hexdigest()
    dest.label = f"telegram chat {new_chat_id}"
    log.info("telegram group migrated to supergroup %s; destination %s updated", new_chat_id, dest.id)


async def deliver(ctx: SenderContext, dest_id: int, gate: asyncio.Semaphore | None = None) -> str:
    """Wait for the destination's rate-limit tokens, claim, send, record; returns a label."""
    if gate is not None:
        async with gate:
            return await deliver(ctx, dest_id)
    with session_scope(ctx.factory) as s:
        dest = s.get(NotifyDestination, dest_id)
        if dest is None:
            return "gone"
        channel, chat_id = dest.channel, dest.telegram_chat_id
        hook_hint = dest.label
    if channel is NotifyChannel.TELEGRAM:
        keys = [f"tg:{chat_id}", "tg:*"]
        claims = telegram_claims(chat_id or 0)
    else:
        keys, claims = ["dc:*"], []
    if ctx.limits.paused_for(*keys) > 0:
        return "paused"
    if claims:
        await ctx.limits.take(claims)
    bundle = claim(ctx, dest_id)
    if bundle is None:
        return "nothing"
    if channel is NotifyChannel.DISCORD:
        if ctx.limits.paused_for(bundle.key) > 0:
            _release(ctx, bundle)
            return "paused"
        await ctx.limits.take(discord_claims(bundle.webhook_id or ""))
    ctx.crash_hook("after_claim")
    result = await send_bundle(ctx, bundle)
    ctx.crash_hook("after_send")
    label = record(ctx, bundle, result)
    log.debug("notification bundle of %d row(s) to %s: %s", len(bundle.row_ids), hook_hint, label)
    return label


def _release(ctx: SenderContext, bundle: Bundle) -> None:
    """Give claimed rows back untouched (nothing was sent)."""
    with session_scope(ctx.factory) as s:
        s.execute(update(NotificationDelivery).where(
            NotificationDelivery.id.in_(bundle.row_ids), NotificationDelivery.status == D.SENDING,
            NotificationDelivery.lease_owner == ctx.owner).values(
            status=D.PENDING, lease_owner=None, lease_expires_at=None,
            attempts=NotificationDelivery.attempts - 1))


async def send_due(ctx: SenderContext, stop: asyncio.Event | None = None) -> dict[str, int]:
    """Deliver to every destination with due rows (concurrently; buckets pace them)."""
    counts: dict[str, int] = {}
    dest_ids = due_destinations(ctx)
    if not dest_ids:
        return counts
    gate = asyncio.Semaphore(SEND_CONCURRENCY)
    results = await asyncio.gather(*(deliver(ctx, d, gate) for d in dest_ids), return_exceptions=True)
    for dest_id, res in zip(dest_ids, results, strict=True):
        if isinstance(res, BaseException):
            log.error("delivering to destination %s failed: %s", dest_id,
                      mask_secrets(f"{type(res).__name__}: {res}"))
            res = "error"
        counts[res] = counts.get(res, 0) + 1
    return counts


def prune(ctx: SenderContext) -> int:
    """Delete delivered/failed rows (and their notifications) older than NOTIFY_RETENTION_DAYS."""
    cutoff = ctx.clock() - timedelta(days=ctx.settings.notify_retention_days)
    with session_scope(ctx.factory) as s:
        done = s.execute(delete(NotificationDelivery).where(
            NotificationDelivery.status.in_([D.SENT, D.FAILED]),
            NotificationDelivery.created_at < cutoff))
        open_rows = select(NotificationDelivery.id).where(
            NotificationDelivery.notification_id == Notification.id)
        s.execute(delete(Notification).where(
            and_(Notification.routed_at.is_not(None), Notification.routed_at < cutoff,
                 ~open_rows.exists())))
        return int(getattr(done, "rowcount", 0) or 0)
