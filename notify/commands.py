"""Telegram commands by long polling: /status, /positions, /pause, /resume, /digest (and /help).

Who may do what (checked on every update, from the database):
- a chat is authorized only when it is an enabled Telegram destination (`admin set-notify`);
  any other chat is refused: nothing runs, the refusal is logged with the chat id, and the
  chat gets at most one short answer per 10 minutes (so the id can be given to an admin);
- a follower's chat acts on its own follower(s) only: a wallet argument must be one of its own,
  anything else is read as a trader it follows, so it can never reach another follower;
- an admin chat names the follower (`/pause 0xWallet [0xTrader]`).
/pause and /resume call `ops.accounts.set_pause`, the same function as `admin pause/resume`.

Exactly once: a command's effect, its reply (a COMMAND_REPLY outbox row for that chat) and the
stored getUpdates offset are one transaction, so a crash either did all of it or none (the
update is then fetched and run again); an update below the stored offset is never run twice.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from copying.killswitch import KillSwitchState
from copying.outbox import enqueue
from infra.db import session_scope, utcnow
from infra.errors import InputError
from models import (
    CopyOrder,
    CopyStatus,
    Follow,
    Follower,
    FollowerFill,
    FollowerPosition,
    MarketTokenRow,
    NotificationKind,
    NotifyChannel,
    NotifyDestination,
    SystemFlag,
    Trader,
    TraderFill,
)
from notify.channels import ChatApiError, Limits, TelegramApi, telegram_claims
from notify.destinations import ADMIN_SCOPE
from notify.digest import open_tokens
from notify.render import Block, digest_block, num, short_wallet, usd
from ops.views import Intervals

log = logging.getLogger("pmct.notify.commands")
OFFSET_FLAG = "notify:telegram_offset"
HELP = ("/status — copying status, follows, today's fills",
        "/positions — open positions",
        "/pause [trader] — stop new copies (all follows, or one trader's)",
        "/resume [trader] — copy again",
        "/digest — today's P&L so far")
ADMIN_HELP = ("admin chat: /status; /positions, /pause, /resume, /digest take the follower's "
              "wallet first, e.g. /pause 0xWallet [0xTrader]",)
REFUSAL_INTERVAL = 600.0
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
OPEN = (CopyStatus.LIVE, CopyStatus.PARTIAL, CopyStatus.CANCELING)
PENDING = (CopyStatus.QUEUED, CopyStatus.CLAIMED, CopyStatus.SIGNED)
MidFetcher = Callable[[set[str]], Awaitable[dict[str, Decimal | None]]]


@dataclass(frozen=True)
class ChatAuth:
    """What one chat may do: admin, and/or act for these followers; where replies go."""

    chat_id: int
    admin: bool
    follower_ids: tuple[int, ...]
    reply_to: int | None

    @property
    def authorized(self) -> bool:
        """True when the chat is linked to the admins or to at least one follower."""
        return self.admin or bool(self.follower_ids)


def authorize(session: Session, chat_id: int) -> ChatAuth:
    """The rights of `chat_id`, from its enabled Telegram destinations."""
    dests = list(session.scalars(select(NotifyDestination).where(
        NotifyDestination.channel == NotifyChannel.TELEGRAM,
        NotifyDestination.telegram_chat_id == chat_id, NotifyDestination.enabled.is_(True))
        .order_by(NotifyDestination.id)))
    return ChatAuth(chat_id, any(d.scope == ADMIN_SCOPE for d in dests),
                    tuple(sorted({d.follower_id for d in dests if d.follower_id is not None})),
                    dests[0].id if dests else None)


def parse_command(text: str) -> tuple[str, list[str]] | None:
    """('/pause@Bot 0xabc' → ('pause', ['0xabc'])); None when the text is not a command."""
    parts = text.strip().split()
    if not parts or not parts[0].startswith("/") or len(parts[0]) < 2:
        return None
    return parts[0][1:].split("@", 1)[0].lower(), parts[1:]


# --- choosing whom a command acts on ----------------------------------------------------------

def _followers(session: Session, ids: tuple[int, ...]) -> list[Follower]:
    return list(session.scalars(select(Follower).where(Follower.id.in_(ids)).order_by(Follower.id)))


def subjects(session: Session, auth: ChatAuth, args: list[str]) -> tuple[list[Follower], list[str]]:
    """The followers a command acts on and the arguments left (InputError when none)."""
    from ops.accounts import find_follower

    own = _followers(session, auth.follower_ids)
    if args and _ADDRESS.match(args[0]):
        wanted = args[0].lower()
        mine = [f for f in own if wanted in (f.funder_address.lower(), f.signer_address.lower())]
        if mine:
            return mine, args[1:]
        if auth.admin:
            return [find_follower(session, args[0])], args[1:]
        return own, args  # a follower's chat: an address that is not its own is a trader
    if own:
        return own, args
    raise InputError("this admin chat must name the follower: /command 0xWallet …")


# --- the commands -------------------------------------------------------------------------

def _today_fills(session: Session, follower_id: int, now: datetime) -> tuple[int, Decimal]:
    start = datetime(now.year, now.month, now.day, tzinfo=UTC)
    rows = session.execute(select(FollowerFill.realized_pnl).where(
        FollowerFill.follower_id == follower_id, FollowerFill.filled_at >= start)).all()
    return len(rows), sum((r[0] or Decimal(0) for r in rows), Decimal(0))


def _count(session: Session, follower_id: int, statuses: tuple[CopyStatus, ...]) -> int:
    return int(session.scalar(select(func.count()).select_from(CopyOrder).where(
        CopyOrder.follower_id == follower_id, CopyOrder.status.in_(statuses))) or 0)


def status_block(session: Session, followers: list[Follower], now: datetime) -> Block:
    """/status for a follower's chat."""
    ks = KillSwitchState.load(session)
    lines = []
    if ks.global_on:
        lines.append(f"kill switch ON for everything ({ks.global_reason})")
    for f in followers:
        why = ks.follower_reasons.get(f.id)
        lines.append(f"wallet {short_wallet(f.funder_address)}: {f.tier.value}, {f.status.value}"
                     + (f" ({why})" if why else ""))
        follows = session.execute(select(Follow, Trader).join(Trader, Trader.id == Follow.trader_id)
                                  .where(Follow.follower_id == f.id).order_by(Follow.id)).all()
        for fo, tr in follows:
            if fo.status.value == "removed":
                continue
            state = "disabled" if fo.id in ks.follow_reasons else fo.status.value
            lines.append(f"  copies {tr.label or short_wallet(tr.wallet)} ({tr.wallet}) at "
                         f"{num(fo.copy_pct)}%, max {usd(fo.max_usd_per_trade)}: {state}")
        n, realized = _today_fills(session, f.id, now)
        lines.append(f"  today: {n} fill(s), realized {usd(realized, signed=True)}")
        lines.append(f"  orders: {_count(session, f.id, OPEN)} open, "
                     f"{_count(session, f.id, PENDING)} pending, "
                     f"{_count(session, f.id, (CopyStatus.IN_DOUBT,))} in doubt")
    return Block("Status", tuple(lines))


def admin_status_block(session: Session, now: datetime, intervals: Intervals) -> Block:
    """/status for an admin chat: kill switch, daemons, followers and orders."""
    from ops.views import daemon_rows

    ks = KillSwitchState.load(session)
    lines = [f"kill switch: {'ON (' + str(ks.global_reason) + ')' if ks.global_on else 'off'}"]
    for row in daemon_rows(session, now, intervals):
        lines.append(f"daemon {row['name']}: last cycle {row['last_cycle_age'] or 'never'} ago"
                     + (" — STALE" if row["stale"] else ""))
    by_status = dict(session.execute(select(Follower.status, func.count()).group_by(Follower.status)).all())
    lines.append("followers: " + (", ".join(f"{k.value} {v}" for k, v in sorted(
        by_status.items(), key=lambda kv: kv[0].value)) or "none"))
    orders = dict(session.execute(select(CopyOrder.status, func.count()).where(
        CopyOrder.status.in_([*OPEN, *PENDING, CopyStatus.IN_DOUBT])).group_by(CopyOrder.status)).all())
    lines.append(f"orders: {sum(orders.get(s, 0) for s in OPEN)} open, "
                 f"{sum(orders.get(s, 0) for s in PENDING)} pending, "
                 f"{orders.get(CopyStatus.IN_DOUBT, 0)} in doubt")
    return Block("Status (admin)", tuple(lines))


def positions_block(session: Session, followers: list[Follower], limit: int = 25) -> Block:
    """/positions: open positions with market labels."""
    lines: list[str] = []
    for f in followers:
        rows = session.execute(
            select(FollowerPosition, MarketTokenRow.outcome)
            .outerjoin(MarketTokenRow, MarketTokenRow.token_id == FollowerPosition.token_id)
            .where(FollowerPosition.follower_id == f.id, FollowerPosition.size > 0)
            .order_by(FollowerPosition.id)).all()
        lines.append(f"wallet {short_wallet(f.funder_address)}: {len(rows)} open position(s)")
        for pos, outcome in rows[:limit]:
            title = session.scalar(select(TraderFill.title).where(
                TraderFill.token_id == pos.token_id).order_by(TraderFill.id.desc()).limit(1)) or pos.condition_id[:14]
            lines.append(f"  {title} — {outcome or '?'}: {num(pos.size)} @ avg {num(pos.avg_cost)}"
                         + (" (paper)" if pos.paper else ""))
        if len(rows) > limit:
            lines.append(f"  …and {len(rows) - limit} more")
    return Block("Positions", tuple(lines))


def pause_block(session: Session, followers: list[Follower], args: list[str], paused: bool) -> Block:
    """/pause or /resume through ops.accounts.set_pause (the `admin pause/resume` logic)."""
    from ops.accounts import set_pause

    trader = args[0] if args else None
    done, errors = [], []
    for f in followers:
        try:  # set_pause checks everything before it writes: an error leaves nothing behind
            done.append(set_pause(session, f.funder_address, trader, paused))
        except InputError as exc:
            errors.append(str(exc))
    if not done:
        raise InputError("; ".join(errors) or "nothing to do")
    return Block("Paused" if paused else "Resumed", tuple(done))


def run_command(session: Session, auth: ChatAuth, cmd: str, args: list[str], *, now: datetime,
                intervals: Intervals, prices: Callable[[str], Decimal | None] | None = None) -> Block:
    """The reply to one command of an authorized chat (InputError for bad arguments)."""
    if cmd in ("help", "start"):
        return Block("PMCT commands", HELP + (ADMIN_HELP if auth.admin else ()))
    if cmd == "status":
        if auth.admin and not args and not auth.follower_ids:
            return admin_status_block(session, now, intervals)
        followers, _ = subjects(session, auth, args)
        return status_block(session, followers, now)
    if cmd == "positions":
        return positions_block(session, subjects(session, auth, args)[0])
    if cmd in ("pause", "resume"):
        followers, rest = subjects(session, auth, args)
        return pause_block(session, followers, rest, cmd == "pause")
    if cmd == "digest":
        from notify.digest import digest_payload

        followers, _ = subjects(session, auth, args)
        blocks = [digest_block(digest_payload(session, f, now.date(), prices, until=now))
                  for f in followers]
        return Block(blocks[0].title, tuple(x for b in blocks for x in b.lines))
    return Block(f"unknown command /{cmd}", HELP)


# --- polling ------------------------------------------------------------------------------

@dataclass
class CommandBot:
    """getUpdates long polling, one update at a time, each in one transaction with its offset."""

    factory: sessionmaker[Session]
    api: TelegramApi
    intervals: Intervals
    limits: Limits
    fetch_mids: MidFetcher | None = None
    wake: Callable[[], None] | None = None
    clock: Callable[[], datetime] = utcnow
    refused_at: dict[int, float] | None = None

    def offset(self) -> int | None:
        """The next update id to ask for (stored in the database)."""
        with session_scope(self.factory) as s:
            row = s.get(SystemFlag, OFFSET_FLAG)
            return int(row.value) if row is not None else None

    async def poll_once(self, timeout: int) -> int:
        """One getUpdates call and its updates; returns how many were handled."""
        updates = await self.api.get_updates(self.offset(), timeout)
        for update in sorted(updates, key=lambda u: int(u.get("update_id", 0))):
            await self.handle(update)
        return len(updates)

    async def run(self, stop: asyncio.Event, timeout: int) -> None:
        """Poll until `stop`; network and API errors back off and retry."""
        while not stop.is_set():
            try:
                await self.poll_once(timeout)
            except ChatApiError as exc:
                wait = exc.retry_after or (30.0 if exc.status in (401, 409) else 5.0)
                if exc.status == 409:
                    log.warning("%s: another process polls this bot; run one notifier", exc)
                else:
                    log.warning("%s; retrying in %.0f s", exc, wait)
                await _sleep_or_stop(wait, stop)
            except Exception:
                log.exception("telegram command polling failed")
                await _sleep_or_stop(5.0, stop)

    async def handle(self, update: dict[str, Any]) -> str:
        """Run one update (or skip it) and store the offset after it; returns what happened."""
        uid = int(update.get("update_id", 0))
        msg = update.get("message") if isinstance(update.get("message"), dict) else None
        chat = msg.get("chat") if msg else None
        text = msg.get("text") if msg else None
        sender = msg.get("from") if msg else None
        parsed = parse_command(text) if isinstance(text, str) else None
        if isinstance(sender, dict) and sender.get("is_bot"):
            parsed = None
        chat_id = int(chat["id"]) if isinstance(chat, dict) and isinstance(chat.get("id"), int) else None
        auth = None
        prices = None
        if parsed is not None and chat_id is not None:
            with session_scope(self.factory) as s:
                auth = authorize(s, chat_id)
                tokens = open_tokens(s, list(auth.follower_ids)) if parsed[0] == "digest" else set()
            if auth.authorized and tokens and self.fetch_mids is not None:
                mids = await self.fetch_mids(tokens)
                prices = mids.get
        run = parsed is not None and auth is not None and auth.authorized
        try:
            outcome = self._commit(uid, auth if run else None, parsed, prices, failure=None)
        except Exception as exc:  # the command failed: nothing it did is kept; say why instead
            if isinstance(exc, InputError):
                failure = str(exc)
            else:
                log.exception("telegram command %s failed", parsed[0] if parsed else "?")
                failure = "internal error (logged for the admins)"
            outcome = self._commit(uid, auth if run else None, parsed, prices, failure=failure)
        if outcome == "refused" and chat_id is not None and parsed is not None:
            log.warning("refused /%s from unauthorized telegram chat %s", parsed[0], chat_id)
            await self._refuse(chat_id)
        elif outcome.startswith("ran") and self.wake is not None:
            self.wake()
        return outcome

    def _commit(self, uid: int, auth: ChatAuth | None, parsed: tuple[str, list[str]] | None,
                prices: Callable[[str], Decimal | None] | None, failure: str | None) -> str:
        """One transaction: the command's effect and reply (or `failure`), then the offset."""
        with session_scope(self.factory) as s:
            stored = s.get(SystemFlag, OFFSET_FLAG)
            if stored is not None and uid < int(stored.value):
                return "old"
            outcome = "ignored" if parsed is None else "refused"
            if auth is not None and parsed is not None:
                cmd, args = parsed
                block = (Block(f"/{cmd}: not done", (failure,)) if failure is not None else
                         run_command(s, auth, cmd, args, now=self.clock(),
                                     intervals=self.intervals, prices=prices))
                enqueue(s, NotificationKind.COMMAND_REPLY, None,
                        {"title": block.title, "lines": list(block.lines), "command": cmd},
                        destination_id=auth.reply_to)
                outcome = f"ran /{cmd}" if failure is None else f"ran /{cmd} (refused: bad input)"
                log.info("telegram chat %s: /%s %s", auth.chat_id, cmd,
                         "done" if failure is None else "not done")
            if stored is None:
                s.add(SystemFlag(name=OFFSET_FLAG, value=str(uid + 1), updated_at=utcnow()))
            else:
                stored.value, stored.updated_at = str(uid + 1), utcnow()
            return outcome

    async def _refuse(self, chat_id: int) -> None:
        seen = self.refused_at if self.refused_at is not None else {}
        self.refused_at = seen
        now = time.monotonic()
        if now - seen.get(chat_id, -REFUSAL_INTERVAL) < REFUSAL_INTERVAL:
            return
        seen[chat_id] = now
        if self.limits.paused_for(f"tg:{chat_id}", "tg:*") > 0:
            return
        await self.limits.take(telegram_claims(chat_id))
        await self.api.send_message(chat_id, f"This chat is not authorized (chat id {chat_id}). "
                                             "An admin can link it with `admin set-notify`.")


async def _sleep_or_stop(seconds: float, stop: asyncio.Event) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass
