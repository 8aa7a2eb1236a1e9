"""`notifier.py` as a process against the local Telegram and Discord fakes: delivered once across
a kill -9 between claim and send, at most one repeat when killed after the message left, and no
bot token or webhook URL in its DEBUG output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from copying.outbox import enqueue
from crypto import KeyRing
from models import DaemonHeartbeat, DeliveryStatus, NotificationDelivery, NotificationKind
from notify import destinations as nd
from notify.render import REPEAT_NOTE
from sim.discord import FakeDiscord
from sim.telegram import FakeTelegram
from tests.support import factories
from tests.support.dbfixtures import Database
from tests.support.notify_support import BOT_TOKEN, CHAT_A, CHAT_B, HOOK_ID, HOOK_TOKEN, HOOK_URL
from tests.support.paths import ROOT
from tests.support.rig import Programs

pytestmark = pytest.mark.e2e


def _env(db: Database, key: str, tg: FakeTelegram, dc: FakeDiscord, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMCT_", "TELEGRAM_", "NOTIFY_"))}
    env.update({
        "DATABASE_URL": db.url, "ENCRYPTION_KEY": key, "PMCT_ENV_FILE": "/nonexistent/.env",
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_API_URL": tg.url,
        "DISCORD_API_URL": dc.url + "/api", "POLYMARKET_CLOB_API_URL": "http://127.0.0.1:9",
        "NOTIFY_POLL_INTERVAL": "0.2", "NOTIFY_LEASE_SECONDS": "2", "TELEGRAM_POLL_TIMEOUT": "1",
        "LOG_LEVEL": "DEBUG"})
    env.update(extra)
    return env


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Programs]:
    """The notifier processes (the rig's `Programs`), stopped at the end whatever happens."""
    programs = Programs({}, tmp_path)
    yield programs
    programs.close()


def _start(env: dict[str, str], procs: Programs, log: Path) -> subprocess.Popen[str]:
    procs.base_env = env
    return procs.start("notifier.py", log=log)


def _stop(procs: Programs, p: subprocess.Popen[str]) -> str:
    """SIGTERM, wait for a clean exit (0), return the log."""
    code, text = procs.stop(p)
    assert code == 0, text[-3000:]
    return text


def _wait(cond: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def _rows(db: Database) -> list[NotificationDelivery]:
    with db.session() as s:
        return list(s.scalars(select(NotificationDelivery).order_by(NotificationDelivery.id)))


def _one_fill(db: Database, keyring: KeyRing, chat: int = CHAT_A, n: int = 1) -> None:
    with db.session() as s:
        f = factories.follower(s, n)
        nd.set_destination(s, keyring, follower=f, chat_id=chat, events=["copy_filled"])
        enqueue(s, NotificationKind.COPY_FILLED, f.id, {
            "copy_order_id": 0, "side": "BUY", "size": "10", "price": "0.5", "trader_price": "0.49",
            "fee": "0", "filled_size": "10", "intended_size": "10", "title": f"Market {n}"})
        s.commit()


def test_killed_between_claim_and_send_delivers_once(database: Database, fernet_key: str,
                                                     telegram_fake: FakeTelegram,
                                                     discord_fake: FakeDiscord,
                                                     procs: Programs, tmp_path: Path) -> None:
    """PMCT_CRASH_AT=notify_after_claim: the process dies (exit 137) with the row claimed and
    nothing sent; restarted, it sends the row once after the lease, and never again."""
    keyring = KeyRing(fernet_key)
    log = tmp_path / "notifier.log"
    _one_fill(database, keyring)
    env = _env(database, fernet_key, telegram_fake, discord_fake)
    first = _start({**env, "PMCT_CRASH_AT": "notify_after_claim"}, procs, log)
    assert first.wait(timeout=60) == 137
    (row,) = _rows(database)
    assert row.status is DeliveryStatus.SENDING and telegram_fake.messages() == []
    second = _start(env, procs, log)
    _wait(lambda: len(telegram_fake.messages(CHAT_A)) == 1)
    _wait(lambda: _rows(database)[0].status is DeliveryStatus.SENT)
    _one_fill(database, keyring, CHAT_B, 2)  # later work flows; the first row is not sent again
    _wait(lambda: len(telegram_fake.messages(CHAT_B)) == 1)
    _stop(procs, second)
    (msg,) = telegram_fake.messages(CHAT_A)
    assert "Market 1" in msg["text"]
    with database.session() as s:
        assert s.get(DaemonHeartbeat, "notifier") is not None


def test_killed_after_the_message_left_repeats_at_most_once(database: Database, fernet_key: str,
                                                            telegram_fake: FakeTelegram,
                                                            discord_fake: FakeDiscord,
                                                            procs: Programs, tmp_path: Path) -> None:
    """The fake records the message and holds its answer; SIGKILL; the restarted notifier sends
    it once more, marked as a possible repeat; a third copy never comes."""
    keyring = KeyRing(fernet_key)
    log = tmp_path / "notifier.log"
    _one_fill(database, keyring)
    env = _env(database, fernet_key, telegram_fake, discord_fake)
    telegram_fake.hold_sends()
    first = _start(env, procs, log)
    _wait(lambda: len(telegram_fake.messages(CHAT_A)) == 1)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    telegram_fake.release_sends()
    assert _rows(database)[0].status is DeliveryStatus.SENDING
    second = _start(env, procs, log)
    _wait(lambda: len(telegram_fake.messages(CHAT_A)) == 2)
    _wait(lambda: _rows(database)[0].status is DeliveryStatus.SENT)
    _one_fill(database, keyring, CHAT_B, 2)
    _wait(lambda: len(telegram_fake.messages(CHAT_B)) == 1)
    _stop(procs, second)
    original, repeat = telegram_fake.messages(CHAT_A)
    assert REPEAT_NOTE not in original["text"] and REPEAT_NOTE in repeat["text"]
    assert "Market 1" in repeat["text"]


def test_no_secret_in_debug_logs(database: Database, fernet_key: str, telegram_fake: FakeTelegram,
                                 discord_fake: FakeDiscord, procs: Programs, tmp_path: Path) -> None:
    """At DEBUG, with sends to Telegram and Discord, a 429, a command, a refused stranger and a
    webhook that disappears: the output never holds the bot token or a webhook URL/token."""
    keyring = KeyRing(fernet_key)
    log = tmp_path / "notifier.log"
    _one_fill(database, keyring)
    with database.session() as s:
        nd.set_destination(s, keyring, follower=None, webhook=nd.parse_webhook_url(HOOK_URL),
                           events=["copy_filled"])
        s.commit()
    telegram_fake.rate_limit_next(retry_after=1, count=1)
    discord_fake.rate_limit_next(retry_after=0.5)
    proc = _start(_env(database, fernet_key, telegram_fake, discord_fake), procs, log)
    _wait(lambda: len(telegram_fake.messages(CHAT_A)) == 1 and len(discord_fake.messages()) == 1)
    telegram_fake.user_says(CHAT_A, "/status")
    telegram_fake.user_says(9999, "/pause")
    _wait(lambda: len(telegram_fake.messages(CHAT_A)) == 2 and len(telegram_fake.messages(9999)) == 1)
    discord_fake.delete_webhook(HOOK_ID)
    _one_fill(database, keyring, CHAT_B, 2)
    with database.session() as s:
        enqueue(s, NotificationKind.COPY_FILLED, None, {"side": "BUY"})  # admin-only: to the webhook
        s.commit()
    _wait(lambda: any(r.status is DeliveryStatus.FAILED for r in _rows(database)))
    out = _stop(procs, proc)
    assert " DEBUG " in out and "rate limited" in out and "Unknown Webhook" in out
    for secret in (BOT_TOKEN, BOT_TOKEN.split(":")[1], HOOK_TOKEN, HOOK_URL, fernet_key):
        assert secret not in out, "a secret leaked into the notifier's log"
    with database.session() as s:
        errors = " ".join(r.last_error or "" for r in s.scalars(select(NotificationDelivery)))
        assert HOOK_TOKEN not in errors and BOT_TOKEN not in errors


def test_once_sends_what_is_due_and_exits(database: Database, fernet_key: str,
                                          telegram_fake: FakeTelegram, discord_fake: FakeDiscord) -> None:
    """`notifier.py --once`: pending commands read, due rows sent, exit 0."""
    _one_fill(database, KeyRing(fernet_key))
    telegram_fake.user_says(CHAT_A, "/status")
    done = subprocess.run([sys.executable, str(ROOT / "notifier.py"), "--once"], cwd=ROOT,  # noqa: S603
                          env=_env(database, fernet_key, telegram_fake, discord_fake),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    texts = [m["text"] for m in telegram_fake.messages(CHAT_A)]
    assert len(texts) == 1 and "Copy filled" in texts[0] and "Status" in texts[0]


def test_bad_token_is_a_config_error(tmp_path: Path) -> None:
    """A malformed TELEGRAM_BOT_TOKEN: exit 2 with a line naming the variable, not its value."""
    env = {**os.environ, "PMCT_ENV_FILE": "/nonexistent/.env", "TELEGRAM_BOT_TOKEN": "oops-secret-value",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    done = subprocess.run([sys.executable, str(ROOT / "notifier.py")], cwd=ROOT, env=env,  # noqa: S603
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "TELEGRAM_BOT_TOKEN" in done.stderr
    assert "oops-secret-value" not in done.stderr + done.stdout
