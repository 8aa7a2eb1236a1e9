"""Telegram commands over the local Bot API: authorization, a follower's chat limited to its own
follows, the admin chat, replies through the outbox, and exactly-once handling of updates."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from crypto import KeyRing
from infra.db import utcnow
from models import (
    Follow,
    Follower,
    FollowerPosition,
    FollowerStatus,
    FollowStatus,
    Notification,
    NotificationKind,
    SystemFlag,
)
from notify import destinations as nd
from notify.channels import Limits, TelegramApi
from notify.commands import OFFSET_FLAG, CommandBot, parse_command
from ops.views import Intervals
from sim.telegram import FakeTelegram
from tests.support import factories
from tests.support.dbfixtures import Database
from tests.support.notify_support import (
    BOT_TOKEN,
    CHAT_A,
    CHAT_ADMIN,
    CHAT_B,
    CHAT_STRANGER,
    make_ctx,
    make_settings,
    run_until,
)


@pytest.fixture
def world(database: Database, keyring: KeyRing) -> dict[str, Any]:
    """Followers A and B (both follow trader T), their chats, and an admin chat."""
    with database.session() as s:
        a, b = factories.follower(s, 1), factories.follower(s, 2)
        t = factories.trader(s)
        t.label = "whale"
        fa, fb = factories.follow(s, a, t), factories.follow(s, b, t)
        nd.set_destination(s, keyring, follower=a, chat_id=CHAT_A)
        nd.set_destination(s, keyring, follower=b, chat_id=CHAT_B)
        nd.set_destination(s, keyring, follower=None, chat_id=CHAT_ADMIN)
        s.add(FollowerPosition(follower_id=a.id, follow_id=fa.id, token_id="123",
                               condition_id="0x" + "2" * 64, paper=False, size=Decimal("25"),
                               avg_cost=Decimal("0.4"), realized_pnl=Decimal(0), fees_paid=Decimal(0)))
        factories.trader_fill(s, t, title="Will it rain?", outcome="Yes")
        s.commit()
        return {"a": a, "b": b, "trader": t.wallet, "fa": fa.id, "fb": fb.id}


def _update(uid: int, chat_id: int, text: str, is_bot: bool = False) -> dict[str, Any]:
    return {"update_id": uid, "message": {
        "message_id": uid, "date": 0, "text": text, "chat": {"id": chat_id, "type": "private"},
        "from": {"id": chat_id, "is_bot": is_bot, "first_name": "x"}}}


def _run(database: Database, fake: FakeTelegram, steps: Callable[[CommandBot], Any]) -> Any:
    async def go() -> Any:
        api = TelegramApi(fake.url, BOT_TOKEN, timeout=5.0)
        bot = CommandBot(database.factory, api, Intervals(), Limits())
        try:
            return await steps(bot)
        finally:
            await api.aclose()
    return asyncio.run(go())


def _handle(database: Database, fake: FakeTelegram, *updates: dict[str, Any]) -> list[str]:
    async def steps(bot: CommandBot) -> list[str]:
        return [await bot.handle(u) for u in updates]
    return _run(database, fake, steps)


def _replies(database: Database) -> list[dict[str, Any]]:
    with database.session() as s:
        return [n.payload for n in s.scalars(select(Notification).where(
            Notification.kind == NotificationKind.COMMAND_REPLY).order_by(Notification.id))]


def _status(database: Database, follower: Follower) -> FollowerStatus:
    with database.session() as s:
        f = s.get(Follower, follower.id)
        assert f is not None
        return f.status


def test_parse_command() -> None:
    """Commands with arguments and a @BotName suffix; plain text is not a command."""
    assert parse_command("/pause@pmct_bot 0xAB") == ("pause", ["0xAB"])
    assert parse_command("  /Status ") == ("status", [])
    assert parse_command("hello /pause") is None and parse_command("/") is None


def test_an_unauthorized_chat_is_refused(database: Database, telegram_fake: FakeTelegram,
                                         world: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    """A stranger's /pause changes nothing and queues no reply; it is logged with the chat id and
    answered directly at most once per 10 minutes."""
    caplog.set_level(logging.WARNING, "pmct.notify.commands")
    got = _handle(database, telegram_fake, _update(1, CHAT_STRANGER, "/pause"),
                  _update(2, CHAT_STRANGER, f"/pause {world['a'].funder_address}"),
                  _update(3, CHAT_STRANGER, "/status"))
    assert got == ["refused", "refused", "refused"]
    assert _status(database, world["a"]) == FollowerStatus.ACTIVE
    assert _status(database, world["b"]) == FollowerStatus.ACTIVE
    assert _replies(database) == []
    (answer,) = telegram_fake.messages(CHAT_STRANGER)
    assert "not authorized" in answer["text"] and str(CHAT_STRANGER) in answer["text"]
    assert f"unauthorized telegram chat {CHAT_STRANGER}" in caplog.text
    with database.session() as s:
        assert s.get(SystemFlag, OFFSET_FLAG).value == "4"  # type: ignore[union-attr]


def test_a_follower_chat_cannot_pause_another_follower(database: Database,
                                                       telegram_fake: FakeTelegram,
                                                       world: dict[str, Any]) -> None:
    """A's chat: /pause <B's wallet> is read as a trader A does not follow → refused, B untouched;
    /pause pauses A only (through set_pause); /resume undoes it."""
    b_wallet = world["b"].funder_address
    got = _handle(database, telegram_fake, _update(1, CHAT_A, f"/pause {b_wallet}"))
    assert got == ["ran /pause (refused: bad input)"]
    assert _status(database, world["b"]) == FollowerStatus.ACTIVE
    assert _status(database, world["a"]) == FollowerStatus.ACTIVE
    assert "does not follow" in _replies(database)[-1]["lines"][0]
    _handle(database, telegram_fake, _update(2, CHAT_A, "/pause"))
    assert _status(database, world["a"]) == FollowerStatus.PAUSED
    assert _status(database, world["b"]) == FollowerStatus.ACTIVE
    assert _replies(database)[-1]["title"] == "Paused"
    _handle(database, telegram_fake, _update(3, CHAT_A, f"/pause {world['trader']}"),
            _update(4, CHAT_A, "/resume"))
    assert _status(database, world["a"]) == FollowerStatus.ACTIVE
    with database.session() as s:
        assert s.get(Follow, world["fa"]).status == FollowStatus.PAUSED  # type: ignore[union-attr]
        assert s.get(Follow, world["fb"]).status == FollowStatus.ACTIVE  # type: ignore[union-attr]


def test_a_follower_chat_sees_only_its_own(database: Database, telegram_fake: FakeTelegram,
                                           world: dict[str, Any]) -> None:
    """/status and /positions in B's chat show B only; A's show A's position."""
    _handle(database, telegram_fake, _update(1, CHAT_B, "/status"),
            _update(2, CHAT_B, "/positions"), _update(3, CHAT_A, "/positions"))
    status_b, pos_b, pos_a = _replies(database)
    text_b = " ".join(status_b["lines"] + pos_b["lines"])
    assert "0x0000…0002" in text_b and "0x0000…0001" not in text_b
    assert "0 open position(s)" in text_b
    assert any("Will it rain? — ?: 25 @ avg 0.4" in ln for ln in pos_a["lines"])


def test_the_admin_chat_names_the_follower(database: Database, telegram_fake: FakeTelegram,
                                           world: dict[str, Any]) -> None:
    """Admin: /pause 0xB pauses B; /pause alone is refused; /status alone is the admin view."""
    b_wallet = world["b"].funder_address
    got = _handle(database, telegram_fake, _update(1, CHAT_ADMIN, "/pause"),
                  _update(2, CHAT_ADMIN, f"/pause {b_wallet}"), _update(3, CHAT_ADMIN, "/status"))
    assert got[0].endswith("(refused: bad input)") and got[1] == "ran /pause"
    assert _status(database, world["b"]) == FollowerStatus.PAUSED
    assert _status(database, world["a"]) == FollowerStatus.ACTIVE
    admin_status = _replies(database)[-1]
    assert admin_status["title"] == "Status (admin)"
    assert any(ln.startswith("kill switch: off") for ln in admin_status["lines"])


def test_an_update_runs_once(database: Database, telegram_fake: FakeTelegram,
                             world: dict[str, Any]) -> None:
    """The same update delivered again (a crash before Telegram saw the new offset) is skipped;
    bots' messages and plain text only move the offset."""
    got = _handle(database, telegram_fake, _update(10, CHAT_A, "/pause"), _update(10, CHAT_A, "/pause"),
                  _update(11, CHAT_A, "hello"), _update(12, CHAT_A, "/resume", is_bot=True))
    assert got == ["ran /pause", "old", "ignored", "ignored"]
    assert len(_replies(database)) == 1
    with database.session() as s:
        assert s.get(SystemFlag, OFFSET_FLAG).value == "13"  # type: ignore[union-attr]


def test_long_polling_and_the_reply_reach_the_chat(database: Database, telegram_fake: FakeTelegram,
                                                   world: dict[str, Any], keyring: KeyRing) -> None:
    """getUpdates brings the user's /status; the reply goes out through the outbox to that chat;
    the next poll confirms the update (offset) so it is not fetched again."""
    telegram_fake.user_says(CHAT_A, "/status")

    async def steps(bot: CommandBot) -> tuple[int, int]:
        return await bot.poll_once(1), await bot.poll_once(0)
    assert _run(database, telegram_fake, steps) == (1, 0)
    ctx = make_ctx(database, make_settings(database.url, telegram_fake), keyring)
    run_until(ctx, lambda: len(telegram_fake.messages(CHAT_A)) == 1)
    text = telegram_fake.messages(CHAT_A)[0]["text"]
    assert "<b>Status</b>" in text and "copies whale" in text


def test_digest_command(database: Database, telegram_fake: FakeTelegram, world: dict[str, Any]) -> None:
    """/digest answers in A's chat with A's day so far (no fills recorded: says so)."""
    _handle(database, telegram_fake, _update(1, CHAT_A, "/digest"))
    (reply,) = _replies(database)
    assert reply["title"].startswith(f"Daily P&L {utcnow().date().isoformat()}")
    assert reply["title"].endswith("so far")
    assert reply["lines"][:2] == ["wallet 0x0000…0001", "no fills and no open positions"]


def test_removed_destination_loses_its_rights(database: Database, telegram_fake: FakeTelegram,
                                              world: dict[str, Any]) -> None:
    """After `set-notify --remove`, A's chat is a stranger."""
    with database.session() as s:
        a = s.get(Follower, world["a"].id)
        nd.remove_destination(s, follower=a, chat_id=CHAT_A)
        s.commit()
    assert _handle(database, telegram_fake, _update(1, CHAT_A, "/pause")) == ["refused"]
    assert _status(database, world["a"]) == FollowerStatus.ACTIVE
    with database.session() as s:
        assert s.scalars(select(Follower)).first() is not None
