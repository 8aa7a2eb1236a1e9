"""Notification text: each outbox row becomes a block (a title and lines), blocks become one
message per channel (Telegram HTML, Discord Markdown) within the channel's length limit.

Pure functions of the payload and a few looked-up labels: rendering the same rows twice gives
the same text, so a message re-sent after an interruption is recognisable. Every piece of text
that comes from outside (market titles, reasons, venue messages) is escaped for the channel,
and Discord mentions are disabled by the sender, so a title can never ping a channel.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from models import NotificationKind, NotifyChannel

K = NotificationKind
# Telegram allows 4096 characters after entity parsing, Discord 2000: keep a margin
LIMITS = {NotifyChannel.TELEGRAM: 3900, NotifyChannel.DISCORD: 1900}
REPEAT_NOTE = "Sent again after an interruption: part of this may repeat an earlier message."
SKIP_EXAMPLES = 5


@dataclass(frozen=True)
class Block:
    """One message part: a bold title and plain lines."""

    title: str
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Labels:
    """What rendering looks up in the database: market labels per copy order, wallets."""

    markets: Mapping[int, tuple[str, str]] = field(default_factory=dict)  # copy id → (title, outcome)
    wallets: Mapping[int, str] = field(default_factory=dict)  # follower id → funder address


# --- numbers ------------------------------------------------------------------------------

def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def num(value: Any) -> str:
    """A share count or price as plain text ('n/a' when missing)."""
    d = _dec(value)
    if d is None:
        return "n/a"
    text = format(d.normalize(), "f")
    return text if "." not in text else text.rstrip("0").rstrip(".") or "0"


def usd(value: Any, signed: bool = False) -> str:
    """Dollars to the cent: '12.34 USD', or '+$1.23' / '-$0.50' with `signed`."""
    d = _dec(value)
    if d is None:
        return "n/a"
    q = d.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    if signed:
        return f"{'-' if q < 0 else '+'}${format(abs(q), 'f')}"
    return f"{format(q, 'f')} USD"


def slippage(side: str, price: Any, leader: Any) -> str:
    """Adverse slippage vs the leader: '+0.01 (+1.56%)' (positive = worse than the leader)."""
    p, t = _dec(price), _dec(leader)
    if p is None or t is None:
        return "n/a"
    slip = p - t if side == "BUY" else t - p
    pct = f" ({'+' if slip >= 0 else ''}{(slip / t * 100).quantize(Decimal('0.01'))}%)" if t > 0 else ""
    return f"{'+' if slip >= 0 else ''}{num(slip)}{pct}"


def short_wallet(wallet: str | None) -> str:
    """'0x7099…79C8'."""
    if not wallet:
        return "?"
    return wallet if len(wallet) < 12 else f"{wallet[:6]}…{wallet[-4:]}"


# --- blocks per kind ---------------------------------------------------------------------

def _market(payload: Mapping[str, Any], labels: Labels) -> str:
    title, outcome = labels.markets.get(int(payload.get("copy_order_id") or 0), ("", ""))
    title = title or str(payload.get("title") or "") or str(payload.get("condition_id") or "")[:14]
    outcome = outcome or str(payload.get("outcome") or "")
    return f"{title} — {outcome}" if outcome else title


def _wallet_line(follower_id: int | None, labels: Labels) -> str | None:
    if follower_id is None:
        return None
    return f"wallet {short_wallet(labels.wallets.get(follower_id))}"


def _lines(*items: str | None) -> tuple[str, ...]:
    return tuple(i for i in items if i)


def block_for(kind: NotificationKind, payload: Mapping[str, Any], follower_id: int | None,
              labels: Labels) -> Block:
    """The block of one notification (COPY_SKIPPED rows are grouped by `skip_digest` instead)."""
    p = payload
    paper = " (paper)" if p.get("paper") else ""
    wallet = _wallet_line(follower_id, labels)
    side = str(p.get("side") or "")
    if kind is K.COPY_FILLED:
        realized = _dec(p.get("realized_pnl"))
        return Block(f"Copy filled: {side} {num(p.get('size'))} @ {num(p.get('price'))}{paper}", _lines(
            _market(p, labels),
            f"leader price {num(p.get('trader_price'))}, slippage "
            f"{slippage(side, p.get('price'), p.get('trader_price'))}",
            f"filled {num(p.get('filled_size'))} of {num(p.get('intended_size'))}, fee {usd(p.get('fee'))}",
            f"realized P&L {usd(realized, signed=True)}" if side == "SELL" and realized is not None else None,
            wallet))
    if kind is K.COPY_REJECTED:
        return Block(f"Copy rejected: {side} {num(p.get('intended_size'))} @ "
                     f"{num(p.get('intended_price'))}{paper}", _lines(
            _market(p, labels),
            f"reason: {p.get('reason') or '?'}" + (f" — {p.get('detail')}" if p.get("detail") else ""),
            wallet))
    if kind is K.COPY_IN_DOUBT:
        return Block(f"Copy order outcome in doubt: {side} {num(p.get('intended_size'))} @ "
                     f"{num(p.get('intended_price'))}{paper}", _lines(
            _market(p, labels),
            f"why: {p.get('reason') or '?'}; the executor settles it by its order hash and signs "
            "nothing new for this copy meanwhile",
            wallet))
    if kind in (K.KILL_SWITCH_ON, K.KILL_SWITCH_OFF):
        on = kind is K.KILL_SWITCH_ON
        scope = str(p.get("scope") or "global")
        what = {"global": "everything", "follower": f"follower {short_wallet(p.get('subject'))}",
                "follow": f"the follow of {short_wallet(p.get('subject'))}"}.get(scope, scope)
        if on:
            return Block(f"Kill switch ON: {what}", _lines(
                f"reason: {p.get('reason')}" if p.get("reason") else None,
                "no new copies; open orders are being cancelled",
                wallet if scope != "global" else None))
        return Block(f"Kill switch OFF: {what}", _lines(
            "copying resumes", wallet if scope != "global" else None))
    if kind is K.DAEMON_STALE:
        return Block(f"Daemon {p.get('name')} looks stopped", _lines(
            f"last cycle {p.get('age')} ago (at {p.get('last_cycle_at') or 'never'})",
            f"host {p.get('host')}, pid {p.get('pid')}"))
    if kind is K.DAEMON_RECOVERED:
        return Block(f"Daemon {p.get('name')} is running again", _lines(
            f"last cycle at {p.get('last_cycle_at')}"))
    if kind is K.RESOLUTION_PAYOUT:
        realized = p.get("realized_pnl")
        return Block(f"Market resolved: payout {usd(p.get('payout_usd'))}{paper}", _lines(
            f"{p.get('title') or p.get('condition_id')}" + (f" — {p.get('outcome')}" if p.get("outcome") else ""),
            f"{num(p.get('shares'))} shares redeemed",
            f"realized P&L {usd(realized, signed=True)}" if realized is not None else None,
            wallet))
    if kind is K.FOLLOW_AUTO_PAUSED:
        return Block(f"Follow #{p.get('follow_id')} paused: copied edge {p.get('edge_pct')} points", _lines(
            f"over its last {p.get('trades')} closed trades our P&L % trailed the leader's",
            "`admin resume` starts it again", wallet))
    if kind is K.DAILY_DIGEST:
        return digest_block(p, labels.wallets.get(follower_id or 0))
    if kind is K.COMMAND_REPLY:
        return Block(str(p.get("title") or ""), tuple(str(x) for x in p.get("lines") or ()))
    return Block(kind.value, ())


def digest_block(p: Mapping[str, Any], wallet: str | None = None) -> Block:
    """The daily P&L digest (payload from notify/digest.py)."""
    title = f"Daily P&L {p.get('day')} (UTC)" + (" so far" if p.get("partial") else "")
    lines: list[str] = [f"wallet {short_wallet(wallet or p.get('wallet'))}"]
    for sc in p.get("scopes") or ():
        tag = "" if sc.get("scope") == "live" else f"[{sc.get('scope')}] "
        lines.append(f"{tag}realized {usd(sc.get('realized_pnl_usd'), signed=True)}, unrealized "
                     f"{usd(sc.get('unrealized_pnl_usd'), signed=True)}, net "
                     f"{usd(sc.get('net_pnl_usd'), signed=True)}")
        lines.append(f"{tag}{sc.get('fills')} fill(s) ({sc.get('buys')} buy, {sc.get('sells')} sell), "
                     f"volume {usd(sc.get('volume_usd'))}, fees {usd(sc.get('fees_usd'))}, "
                     f"{sc.get('open_positions')} open position(s)")
    if not p.get("scopes"):
        lines.append("no fills and no open positions")
    copies = p.get("copies") or {}
    if copies:
        lines.append("copies: " + ", ".join(f"{k.lower()} {v}" for k, v in sorted(copies.items())))
    if p.get("in_doubt_now"):
        lines.append(f"{p.get('in_doubt_now')} copy order(s) in doubt right now")
    return Block(title, tuple(lines))


def skip_digest(rows: Sequence[tuple[Mapping[str, Any], int | None]], labels: Labels) -> Block:
    """Skipped copies grouped into one block: counts per reason, then a few examples."""
    reasons = Counter(str(p.get("reason") or "?") for p, _ in rows)
    n = len(rows)
    lines = ["reasons: " + ", ".join(f"{r} ×{c}" for r, c in reasons.most_common())]
    for p, _ in rows[:SKIP_EXAMPLES]:
        detail = f": {p.get('detail')}" if p.get("detail") else ""
        lines.append(f"{p.get('side') or ''} {_market(p, labels)} ({p.get('reason')}{detail})")
    if n > SKIP_EXAMPLES:
        lines.append(f"…and {n - SKIP_EXAMPLES} more")
    wallets = sorted({short_wallet(labels.wallets.get(f)) for _, f in rows if f is not None})
    if wallets:
        lines.append("wallet " + ", ".join(wallets))
    return Block(f"{n} cop{'y' if n == 1 else 'ies'} skipped", tuple(lines))


# --- formatting per channel --------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\*_~`|>#\[\]()-])")


def _md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def format_block(block: Block, channel: NotifyChannel) -> str:
    """One block as channel text (escaped)."""
    if channel is NotifyChannel.TELEGRAM:
        head = f"<b>{html.escape(block.title, quote=False)}</b>"
        return "\n".join([head, *(html.escape(x, quote=False) for x in block.lines)])
    return "\n".join([f"**{_md(block.title)}**", *(_md(x) for x in block.lines)])


def truncate_block(block: Block, channel: NotifyChannel, limit: int) -> Block:
    """`block` with lines dropped (and shortened) until its text fits `limit`."""
    lines = list(block.lines)
    while lines and len(format_block(Block(block.title, tuple(lines)), channel)) > limit:
        lines.pop()
    title = block.title
    if len(format_block(Block(title, tuple(lines)), channel)) > limit:
        title = title[: max(10, limit // 3)] + "…"
        lines = []
    return Block(title, tuple(lines) + (("…",) if len(lines) < len(block.lines) else ()))


def compose(blocks: Sequence[Block], channel: NotifyChannel, repeat: bool = False) -> str:
    """The message text of `blocks` (the caller keeps the total under `LIMITS[channel]`)."""
    parts = [format_block(b, channel) for b in blocks]
    if repeat:
        note = f"<i>{REPEAT_NOTE}</i>" if channel is NotifyChannel.TELEGRAM else f"_{REPEAT_NOTE}_"
        parts.insert(0, note)
    return "\n\n".join(parts)
