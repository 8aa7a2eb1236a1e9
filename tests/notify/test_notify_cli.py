"""`admin set-notify` / `list-notify`: destinations stored (webhooks encrypted, never printed),
bad input refused with exit 2 and nothing written, `--test` through the local fakes, rotation."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet
from sqlalchemy import select

from crypto import KeyRing
from models import NotifyDestination, Tier
from ops.cli import cli
from sim.discord import FakeDiscord
from sim.telegram import FakeTelegram
from tests.support import factories
from tests.support.dbfixtures import Database
from tests.support.notify_support import BOT_TOKEN, CHAT_A, HOOK_ID, HOOK_TOKEN, HOOK_URL

WALLET = "0x" + f"{1:040x}"


@pytest.fixture
def env(database: Database, fernet_key: str, monkeypatch: pytest.MonkeyPatch,
        telegram_fake: FakeTelegram, discord_fake: FakeDiscord) -> Database:
    """The CLI on the test database, the fakes as Telegram and Discord, one PRO follower."""
    monkeypatch.setenv("DATABASE_URL", database.url)
    monkeypatch.setenv("ENCRYPTION_KEY", fernet_key)
    monkeypatch.setenv("PMCT_ENV_FILE", "/nonexistent/.env")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("TELEGRAM_API_URL", telegram_fake.url)
    monkeypatch.setenv("DISCORD_API_URL", discord_fake.url + "/api")
    for var in ("LOG_LEVEL", "LOG_FORMAT"):
        monkeypatch.delenv(var, raising=False)
    with database.session() as s:
        factories.follower(s, 1)
        s.commit()
    return database


def run(*args: str, input: str | None = None) -> Result:
    """The admin CLI in-process."""
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def _dests(db: Database) -> list[NotifyDestination]:
    with db.session() as s:
        return list(s.scalars(select(NotifyDestination).order_by(NotifyDestination.id)))


def test_telegram_destination_and_test_message(env: Database, telegram_fake: FakeTelegram) -> None:
    """--telegram-chat stores the chat; --test delivers a test message to the fake."""
    r = run("set-notify", "--wallet", WALLET, "--telegram-chat", str(CHAT_A), "--test")
    assert r.exit_code == 0, r.output
    assert f"go to telegram chat {CHAT_A}" in r.stdout and "test message to telegram chat" in r.stdout
    (msg,) = telegram_fake.messages(CHAT_A)
    assert "PMCT test message" in msg["text"]
    r = run("set-notify", "--wallet", WALLET, "--telegram-chat", "5003", "--events", "copy_filled,daily_digest")
    assert r.exit_code == 0, r.output
    (dest,) = _dests(env)  # a follower has one Telegram destination: replaced
    assert dest.telegram_chat_id == 5003 and dest.events == ["copy_filled", "daily_digest"]


def test_webhook_is_encrypted_and_never_printed(env: Database, discord_fake: FakeDiscord,
                                                fernet_key: str) -> None:
    """The URL comes from stdin, is stored as a Fernet token, and no output shows its token."""
    r = run("set-notify", "--admin", "--discord-webhook", "-", "--test", input=HOOK_URL + "\n")
    assert r.exit_code == 0, r.output
    assert HOOK_TOKEN not in r.output and "discord webhook …8899" in r.stdout
    (dest,) = _dests(env)
    assert dest.encrypted_webhook_url and HOOK_TOKEN not in dest.encrypted_webhook_url
    assert KeyRing(fernet_key).decrypt(dest.encrypted_webhook_url).reveal() == HOOK_URL
    assert len(discord_fake.messages(HOOK_ID)) == 1
    listed = run("list-notify", "--json")
    assert HOOK_TOKEN not in listed.output
    rows = json.loads(listed.stdout)
    assert rows[0]["scope"] == "admin" and rows[0]["target"] == "discord webhook …8899"


@pytest.mark.parametrize(("args", "message"), [
    (["--wallet", WALLET, "--discord-webhook", HOOK_URL.replace("discord.com", "evil.example")],
     "is not a Discord webhook URL"),
    (["--wallet", WALLET, "--telegram-chat", "abc"], "numeric Telegram chat id"),
    (["--wallet", WALLET, "--telegram-chat", "1", "--events", "daemon_stale"], "unknown event"),
    (["--telegram-chat", "1"], "exactly one of --wallet or --admin"),
    (["--wallet", WALLET], "give --telegram-chat or --discord-webhook"),
    (["--wallet", "0x" + "9" * 40, "--telegram-chat", "1"], "no follower"),
])
def test_bad_input_exits_2_and_writes_nothing(env: Database, args: list[str], message: str) -> None:
    """One line on stderr, exit 2, no destination; a bad webhook URL is not echoed."""
    r = run("set-notify", *args)
    assert r.exit_code == 2 and message in r.stderr, r.output
    assert HOOK_TOKEN not in r.output and "evil.example" not in r.output
    assert _dests(env) == []


def test_free_tier_gets_no_alerts(env: Database) -> None:
    """Real-time alerts are a PRO feature: a FREE follower's destination is refused."""
    with env.session() as s:
        f = s.scalars(select(factories.Follower)).one()
        f.tier = Tier.FREE
        s.commit()
    r = run("set-notify", "--wallet", WALLET, "--telegram-chat", "1")
    assert r.exit_code == 2 and "pro or above" in r.stderr
    assert _dests(env) == []


def test_remove_and_failed_test(env: Database, telegram_fake: FakeTelegram) -> None:
    """--test on a chat the bot cannot reach exits 1 with Telegram's reason; --remove disables."""
    assert run("set-notify", "--wallet", WALLET, "--telegram-chat", "424242").exit_code == 0
    r = run("set-notify", "--wallet", WALLET, "--test")
    assert r.exit_code == 1 and "chat not found" in r.stdout
    r = run("set-notify", "--wallet", WALLET, "--telegram-chat", "424242", "--remove")
    assert r.exit_code == 0 and "no longer go to telegram chat 424242" in r.stdout
    (dest,) = _dests(env)
    assert not dest.enabled and dest.disabled_reason == "removed by admin"


def test_rotate_keys_reencrypts_webhooks(env: Database, monkeypatch: pytest.MonkeyPatch,
                                         fernet_key: str) -> None:
    """After `gen-key --rotate`-style key lists, rotate-keys moves webhook URLs to the new key."""
    with env.session() as s:  # the follower's key must decrypt for rotate-keys to run
        s.scalars(select(factories.Follower)).one().encrypted_private_key = \
            KeyRing(fernet_key).encrypt("0x" + "11" * 32)
        s.commit()
    assert run("set-notify", "--admin", "--discord-webhook", HOOK_URL).exit_code == 0
    new = Fernet.generate_key().decode()
    monkeypatch.setenv("ENCRYPTION_KEY", f"{new},{fernet_key}")
    r = run("rotate-keys")
    assert r.exit_code == 0 and "rotated 1 webhook URL(s)" in r.stdout, r.output
    (dest,) = _dests(env)
    assert KeyRing(new).is_current(dest.encrypted_webhook_url or "")
