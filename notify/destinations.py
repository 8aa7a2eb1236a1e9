"""Where notifications go: Telegram chats and Discord webhooks, per follower and for the admins.

Invariants:
- a webhook URL is a secret: it is validated without ever being echoed, stored only as a
  Fernet token (`crypto.KeyRing`), and shown only as a label ('discord webhook …5678');
- a follower has at most one destination per channel (a new one replaces it); the admins may
  have several;
- real-time alerts are the plan's PRO feature: a FREE follower (no copying) gets none;
- bad input raises `InputError` before anything is written.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from copying.tiers import TierLimitError, limits_of
from crypto import KeyRing, Secret
from infra.db import utcnow
from infra.errors import InputError
from infra.logs import register_secret
from models import Follower, NotificationKind, NotifyChannel, NotifyDestination, Tier

K = NotificationKind
ADMIN_SCOPE = "admin"
# what a follower's destination may receive, and receives unless --events says otherwise
FOLLOWER_EVENTS: tuple[K, ...] = (
    K.COPY_FILLED, K.COPY_SKIPPED, K.COPY_REJECTED, K.COPY_IN_DOUBT, K.KILL_SWITCH_ON,
    K.KILL_SWITCH_OFF, K.RESOLUTION_PAYOUT, K.DAILY_DIGEST, K.FOLLOW_AUTO_PAUSED)
# what an admin destination receives unless --events says otherwise (it may ask for any kind)
ADMIN_DEFAULT_EVENTS: tuple[K, ...] = (
    K.COPY_REJECTED, K.COPY_IN_DOUBT, K.KILL_SWITCH_ON, K.KILL_SWITCH_OFF, K.DAEMON_STALE,
    K.DAEMON_RECOVERED, K.FOLLOW_AUTO_PAUSED)
ADMIN_EVENTS: tuple[K, ...] = tuple(k for k in K if k is not K.COMMAND_REPLY)
# events without a follower that still go to every subscribed follower destination
BROADCAST_EVENTS = frozenset({K.KILL_SWITCH_ON, K.KILL_SWITCH_OFF})

_WEBHOOK_RE = re.compile(
    r"^https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api(?:/v[0-9]{1,2})?/webhooks/"
    r"([0-9]{5,25})/([A-Za-z0-9_\-]{20,100})/?$")
_WEBHOOK_HELP = "a Discord webhook URL looks like https://discord.com/api/webhooks/ID/TOKEN"


@dataclass(frozen=True)
class Webhook:
    """A parsed Discord webhook: its id (not secret) and token (secret)."""

    webhook_id: str
    token: Secret

    @property
    def url(self) -> Secret:
        """The canonical URL (a secret)."""
        return Secret(f"https://discord.com/api/webhooks/{self.webhook_id}/{self.token.reveal()}")

    @property
    def label(self) -> str:
        """What may be shown: the last digits of the id."""
        return f"discord webhook …{self.webhook_id[-4:]}"


def parse_webhook_url(raw: str, what: str = "--discord-webhook") -> Webhook:
    """A Discord webhook from its URL; InputError (never holding the URL) otherwise."""
    text = raw.strip()
    m = _WEBHOOK_RE.match(text)
    if not m:
        raise InputError(f"{what} is not a Discord webhook URL ({_WEBHOOK_HELP})")
    register_secret(m.group(2))
    return Webhook(m.group(1), Secret(m.group(2)))


def parse_chat_id(raw: str | int, what: str = "--telegram-chat") -> int:
    """A Telegram chat id (a user's positive id, a group's negative one); InputError otherwise."""
    text = str(raw).strip()
    if not re.fullmatch(r"-?[0-9]{1,20}", text) or int(text) == 0 or abs(int(text)) >= 2**63:
        raise InputError(f"{what} must be a numeric Telegram chat id (the bot's /start reply "
                         f"or the notifier's log shows it), got {text!r}")
    return int(text)


def parse_events(raw: str | None, admin: bool) -> list[str] | None:
    """`--events a,b` as kind values (None = the defaults); InputError on an unknown or forbidden one."""
    if raw is None or raw.strip().lower() in ("", "default"):
        return None
    allowed = ADMIN_EVENTS if admin else FOLLOWER_EVENTS
    if raw.strip().lower() == "all":
        return [k.value for k in allowed]
    names = [n.strip().lower() for n in raw.split(",") if n.strip()]
    out: list[str] = []
    for name in names:
        if name not in {k.value for k in allowed}:
            raise InputError(f"--events: unknown event {name!r} for {'an admin' if admin else 'a follower'}"
                             f" destination (choose from {', '.join(k.value for k in allowed)}, or all)")
        if name not in out:
            out.append(name)
    if not out:
        raise InputError("--events must name at least one event")
    return out


def scope_of(follower: Follower | None) -> str:
    """'admin' or 'follower:<id>'."""
    return ADMIN_SCOPE if follower is None else f"follower:{follower.id}"


def alerts_allowed(tier: Tier | str) -> bool:
    """Real-time alerts come with automatic copying (PRO and above in the plan)."""
    return limits_of(tier).copying


def events_of(dest: NotifyDestination) -> frozenset[K]:
    """The kinds this destination receives."""
    if dest.events is not None:
        return frozenset(K(v) for v in dest.events if v in {k.value for k in K})
    return frozenset(ADMIN_DEFAULT_EVENTS if dest.scope == ADMIN_SCOPE else FOLLOWER_EVENTS)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _target(chat_id: int | None, webhook: Webhook | None) -> tuple[NotifyChannel, str, str]:
    if chat_id is not None:
        return NotifyChannel.TELEGRAM, _hash(f"telegram:{chat_id}"), f"telegram chat {chat_id}"
    assert webhook is not None
    return (NotifyChannel.DISCORD, _hash(f"discord:{webhook.webhook_id}:{webhook.token.reveal()}"),
            webhook.label)


def set_destination(session: Session, keyring: KeyRing | None, *, follower: Follower | None,
                    chat_id: int | None = None, webhook: Webhook | None = None,
                    events: list[str] | None = None) -> NotifyDestination:
    """Create or replace a destination (a follower: one per channel); returns it (flushed)."""
    if (chat_id is None) == (webhook is None):
        raise InputError("give exactly one of --telegram-chat or --discord-webhook")
    if follower is not None and not alerts_allowed(follower.tier):
        raise TierLimitError(f"follower {follower.funder_address} is on the {follower.tier.value} "
                             "tier: real-time alerts come with copying (pro or above); "
                             "see `admin set-tier`")
    channel, target_hash, label = _target(chat_id, webhook)
    encrypted = None
    if webhook is not None:
        if keyring is None:
            raise InputError("ENCRYPTION_KEY is not set: a webhook URL is stored encrypted")
        encrypted = keyring.encrypt(webhook.url.reveal())
    scope = scope_of(follower)
    q = select(NotifyDestination).where(NotifyDestination.scope == scope,
                                        NotifyDestination.channel == channel)
    if follower is None:
        q = q.where(NotifyDestination.target_hash == target_hash)
    dest = session.scalars(q.with_for_update()).first()
    if dest is None:
        dest = NotifyDestination(scope=scope, follower_id=follower.id if follower else None,
                                 channel=channel)
        session.add(dest)
    dest.telegram_chat_id = chat_id
    dest.encrypted_webhook_url = encrypted
    dest.target_hash = target_hash
    dest.label = label
    dest.events = events
    dest.enabled = True
    dest.disabled_reason = None
    dest.updated_at = utcnow()
    session.flush()
    return dest


def remove_destination(session: Session, *, follower: Follower | None, chat_id: int | None = None,
                       webhook: Webhook | None = None) -> NotifyDestination | None:
    """Disable the matching destination for good (history kept); None when there is none."""
    channel, target_hash, _ = _target(chat_id, webhook)
    dest = session.scalars(select(NotifyDestination).where(
        NotifyDestination.scope == scope_of(follower), NotifyDestination.channel == channel,
        NotifyDestination.target_hash == target_hash)).first()
    if dest is None:
        return None
    dest.enabled = False
    dest.disabled_reason = "removed by admin"
    dest.updated_at = utcnow()
    return dest


def destinations(session: Session, follower: Follower | None = None, *,
                 everything: bool = False, enabled_only: bool = False) -> list[NotifyDestination]:
    """A follower's destinations, the admins' (follower None), or all (`everything`)."""
    q = select(NotifyDestination).order_by(NotifyDestination.id)
    if not everything:
        q = q.where(NotifyDestination.scope == scope_of(follower))
    if enabled_only:
        q = q.where(NotifyDestination.enabled.is_(True))
    return list(session.scalars(q))


def destination_row(dest: NotifyDestination, wallet: str | None = None) -> dict[str, object]:
    """A destination as a JSON-safe dict with no secret in it."""
    return {
        "id": dest.id,
        "scope": "admin" if dest.scope == ADMIN_SCOPE else (wallet or dest.scope),
        "channel": dest.channel.value,
        "target": dest.label,
        "events": ",".join(sorted(k.value for k in events_of(dest))),
        "enabled": dest.enabled,
        "disabled_reason": dest.disabled_reason,
    }


def webhook_of(keyring: KeyRing, dest: NotifyDestination) -> Webhook:
    """The decrypted webhook of a Discord destination (registered with the log masking)."""
    assert dest.encrypted_webhook_url is not None
    url = keyring.decrypt(dest.encrypted_webhook_url)
    return parse_webhook_url(url.reveal(), "stored webhook")


def chats_of(dests: Iterable[NotifyDestination]) -> set[int]:
    """The Telegram chat ids among `dests`."""
    return {d.telegram_chat_id for d in dests
            if d.channel == NotifyChannel.TELEGRAM and d.telegram_chat_id is not None}


def rotate_webhooks(session: Session, keyring: KeyRing) -> tuple[int, int]:
    """Re-encrypt stored webhook URLs under the first key; (rotated, already current)."""
    rotated = current = 0
    for dest in session.scalars(select(NotifyDestination).where(
            NotifyDestination.encrypted_webhook_url.is_not(None)).with_for_update()):
        token = dest.encrypted_webhook_url
        assert token is not None
        if keyring.is_current(token):
            current += 1
        else:
            dest.encrypted_webhook_url = keyring.rotate(token)
            rotated += 1
    return rotated, current
