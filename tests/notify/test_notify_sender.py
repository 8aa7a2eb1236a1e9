"""The sender against the local Telegram and Discord fakes: routing, once-only delivery, 429s,
skip digests, bundling, retries and giving up, dead destinations, the in-doubt bound."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from copying.outbox import enqueue
from crypto import KeyRing
from models import (
    DeliveryStatus,
    Follower,
    NotificationDelivery,
    NotificationKind,
    NotifyDestination,
    Tier,
)
from notify import destinations as nd
from notify.render import REPEAT_NOTE
from notify.sender import claim, recover_interrupted, route
from sim.discord import FakeDiscord
from sim.telegram import FakeTelegram
from tests.support import factories
from tests.support.dbfixtures import Database
from tests.support.notify_support import (
    CHAT_A,
    CHAT_B,
    HOOK_ID,
    HOOK_URL,
    Clock,
    close_clients,
    make_ctx,
    make_settings,
    run_until,
    sender_pass,
)

K = NotificationKind
D = DeliveryStatus


def _fill_payload(copy_id: int = 0, **kw: object) -> dict[str, object]:
    p: dict[str, object] = {"copy_order_id": copy_id, "side": "BUY", "size": "10", "price": "0.50",
                            "trader_price": "0.49", "fee": "0", "filled_size": "10",
                            "intended_size": "10", "title": "Will it rain?", "outcome": "Yes"}
    p.update(kw)
    return p


def _setup(s: Session, keyring: KeyRing) -> tuple[Follower, Follower]:
    a, b = factories.follower(s, 1), factories.follower(s, 2)
    nd.set_destination(s, keyring, follower=a, chat_id=CHAT_A)
    nd.set_destination(s, keyring, follower=b, chat_id=CHAT_B)
    nd.set_destination(s, keyring, follower=None, webhook=nd.parse_webhook_url(HOOK_URL))
    return a, b


def _rows(database: Database) -> list[NotificationDelivery]:
    with database.session() as s:
        return list(s.scalars(select(NotificationDelivery).order_by(NotificationDelivery.id)))


def test_routing_respects_scope_events_and_tier(database: Database, telegram_fake: FakeTelegram,
                                                discord_fake: FakeDiscord, keyring: KeyRing) -> None:
    """A's fill goes to A only; a rejection also to the admins; a global kill switch to all; a
    FREE follower's destination gets nothing; --events narrows a destination."""
    settings = make_settings(database.url, telegram_fake, discord_fake)
    with database.session() as s:
        a, b = _setup(s, keyring)
        c = factories.follower(s, 3)
        nd.set_destination(s, keyring, follower=c, chat_id=7003, events=["copy_rejected"])
        s.commit()
        enqueue(s, K.COPY_FILLED, a.id, _fill_payload())
        enqueue(s, K.COPY_REJECTED, b.id, {"side": "BUY", "reason": "balance"})
        enqueue(s, K.COPY_FILLED, c.id, _fill_payload())
        enqueue(s, K.KILL_SWITCH_ON, None, {"scope": "global", "reason": "x"})
        enqueue(s, K.DAEMON_STALE, None, {"name": "executor"})
        c.tier = Tier.FREE  # downgraded after setting the destination: no alerts any more
        s.commit()
        dests = {d.id: d.label for d in s.scalars(select(NotifyDestination))}
    ctx = make_ctx(database, settings, keyring)
    assert route(ctx) == (5, 7)
    got = sorted((r.kind.value, dests[r.destination_id]) for r in _rows(database))
    admin = "discord webhook …8899"
    assert got == sorted([
        ("copy_filled", f"telegram chat {CHAT_A}"),
        ("copy_rejected", f"telegram chat {CHAT_B}"), ("copy_rejected", admin),
        ("kill_switch_on", f"telegram chat {CHAT_A}"), ("kill_switch_on", f"telegram chat {CHAT_B}"),
        ("kill_switch_on", admin), ("daemon_stale", admin)])
    assert route(ctx) == (0, 0)


def test_each_row_is_delivered_once(database: Database, telegram_fake: FakeTelegram,
                                    discord_fake: FakeDiscord, keyring: KeyRing) -> None:
    """Telegram (valid HTML, escaped) and Discord (mentions off) each get their message once."""
    settings = make_settings(database.url, telegram_fake, discord_fake)
    with database.session() as s:
        a, _ = _setup(s, keyring)
        enqueue(s, K.COPY_FILLED, a.id, _fill_payload(title="<b>Rain</b> & @everyone?"))
        enqueue(s, K.COPY_REJECTED, a.id, {"side": "SELL", "reason": "balance",
                                           "detail": "not enough <balance>"})
        s.commit()
    ctx = make_ctx(database, settings, keyring)
    run_until(ctx, lambda: all(r.status is D.SENT for r in _rows(database)) and bool(_rows(database)))
    for _ in range(3):
        assert sender_pass(ctx) == {}
    (tg,) = telegram_fake.messages(CHAT_A)  # both rows in one message to A
    assert "Copy filled: BUY 10 @ 0.5" in tg["text"] and "&lt;b&gt;Rain&lt;/b&gt; &amp;" in tg["text"]
    assert "slippage +0.01 (+2.04%)" in tg["text"] and "Copy rejected" in tg["text"]
    (dc,) = discord_fake.messages(HOOK_ID)  # the admins: the rejection only (default events)
    assert "Copy rejected" in dc["content"] and "Copy filled" not in dc["content"]
    assert dc["allowed_mentions"] == {"parse": []}
    assert all(r.attempts == 1 and r.sent_at is not None for r in _rows(database))


def test_telegram_429_is_honoured(database: Database, telegram_fake: FakeTelegram,
                                  keyring: KeyRing) -> None:
    """A 429 with retry_after=2: the next try to that chat comes ≥ 2 s later; 429s are not
    counted as attempts; the message arrives once."""
    settings = make_settings(database.url, telegram_fake)
    with database.session() as s:
        a = factories.follower(s)
        nd.set_destination(s, keyring, follower=a, chat_id=CHAT_A)
        enqueue(s, K.COPY_FILLED, a.id, _fill_payload())
        s.commit()
    telegram_fake.rate_limit_next(retry_after=2, count=1, chat_id=CHAT_A)
    ctx = make_ctx(database, settings, keyring)
    run_until(ctx, lambda: len(telegram_fake.messages(CHAT_A)) == 1)
    tries = [t for t in telegram_fake.attempts() if t["chat_id"] == CHAT_A]
    assert [t["status"] for t in tries] == [429, 200]
    assert tries[1]["at"] - tries[0]["at"] >= 2.0 - 0.01
    (row,) = _rows(database)
    assert row.status is D.SENT and row.attempts == 1


def test_discord_429_retry_after_seconds_is_honoured(database: Database, discord_fake: FakeDiscord,
                                                     keyring: KeyRing) -> None:
    """Discord's 429 body says retry_after 1.5 (seconds, a float): the retry waits for it."""
    settings = make_settings(database.url, None, discord_fake)
    with database.session() as s:
        nd.set_destination(s, keyring, follower=None, webhook=nd.parse_webhook_url(HOOK_URL))
        enqueue(s, K.DAEMON_STALE, None, {"name": "executor", "age": "5m"})
        s.commit()
    discord_fake.rate_limit_next(retry_after=1.5)
    ctx = make_ctx(database, settings, keyring)
    run_until(ctx, lambda: len(discord_fake.messages()) == 1)
    tries = discord_fake.attempts()
    assert [t["status"] for t in tries] == [429, 200]
    assert tries[1]["at"] - tries[0]["at"] >= 1.5 - 0.01


def test_per_chat_rate_stays_under_the_fakes_limit(database: Database, telegram_fake: FakeTelegram,
                                                   keyring: KeyRing) -> None:
    """Many command replies to one chat (each its own message): sent at ≤ 1 per second, so the
    fake (which allows short bursts) never answers 429."""
    settings = make_settings(database.url, telegram_fake)
    with database.session() as s:
        a = factories.follower(s)
        dest = nd.set_destination(s, keyring, follower=a, chat_id=CHAT_A)
        s.commit()
        dest_id = dest.id
    ctx = make_ctx(database, settings, keyring)
    long_lines = ["x" * 3000]
    with database.session() as s:
        for i in range(5):  # each is too long to share a message with another
            enqueue(s, K.COMMAND_REPLY, None, {"title": f"reply {i}", "lines": long_lines},
                    destination_id=dest_id)
        s.commit()
    run_until(ctx, lambda: len(telegram_fake.messages(CHAT_A)) == 5, timeout=30)
    tries = telegram_fake.attempts()
    assert all(t["status"] == 200 for t in tries)
    gaps = [b["at"] - a_["at"] for a_, b in zip(tries, tries[1:], strict=False)]
    assert all(g >= 0.95 for g in gaps), gaps


def test_skips_are_grouped_into_one_digest(database: Database, telegram_fake: FakeTelegram,
                                           keyring: KeyRing) -> None:
    """Skips wait NOTIFY_SKIP_DIGEST_SECONDS, then go out as one message with counts per reason."""
    settings = make_settings(database.url, telegram_fake, NOTIFY_SKIP_DIGEST_SECONDS="600")
    clock = Clock()
    with database.session() as s:
        a = factories.follower(s)
        nd.set_destination(s, keyring, follower=a, chat_id=CHAT_A)
        for reason in ("stale", "stale", "below_min_notional", "stale"):
            enqueue(s, K.COPY_SKIPPED, a.id, {"side": "BUY", "reason": reason, "title": "Rain?",
                                              "outcome": "Yes"})
        s.commit()
    ctx = make_ctx(database, settings, keyring, clock=clock)
    assert sender_pass(ctx) == {}
    assert telegram_fake.messages() == []
    clock.advance(601)
    sender_pass(ctx)
    (msg,) = telegram_fake.messages(CHAT_A)
    assert "4 copies skipped" in msg["text"]
    assert "reasons: stale ×3, below_min_notional ×1" in msg["text"]
    assert all(r.status is D.SENT for r in _rows(database))


def test_pending_skips_ride_along_with_a_fill(database: Database, telegram_fake: FakeTelegram,
                                              keyring: KeyRing) -> None:
    """A fill due now takes the not-yet-due skips of the same chat into its message."""
    settings = make_settings(database.url, telegram_fake)
    with database.session() as s:
        a = factories.follower(s)
        nd.set_destination(s, keyring, follower=a, chat_id=CHAT_A)
        enqueue(s, K.COPY_SKIPPED, a.id, {"side": "BUY", "reason": "stale"})
        enqueue(s, K.COPY_FILLED, a.id, _fill_payload())
        s.commit()
    ctx = make_ctx(database, settings, keyring)
    sender_pass(ctx)
    (msg,) = telegram_fake.messages(CHAT_A)
    assert "1 copy skipped" in msg["text"] and "Copy filled" in msg["text"]


def test_transient_failures_back_off_then_give_up(database: Database, keyring: KeyRing) -> None:
    """Telegram unreachable: retried with growing delays, FAILED after NOTIFY_MAX_ATTEMPTS with
    the reason kept."""
    settings = make_settings(database.url, None, TELEGRAM_BOT_TOKEN="987654321:AAFakeTokenForTestsOnly_abcdefghijklmn",
                             TELEGRAM_API_URL="http://127.0.0.1:9", NOTIFY_MAX_ATTEMPTS="3")
    clock = Clock()
    with database.session() as s:
        a = factories.follower(s)
        nd.set_destination(s, keyring, follower=a, chat_id=CHAT_A)
        enqueue(s, K.COPY_FILLED, a.id, _fill_payload())
        s.commit()
    ctx = make_ctx(database, settings, keyring, clock=clock)
    delays = []
    for _ in range(3):
        before = clock()
        sender_pass(ctx)
        (row,) = _rows(database)
        if row.status is D.PENDING:
            delays.append((row.next_attempt_at - before).total_seconds())
            clock.advance(3600)
    assert row.status is D.FAILED and row.attempts == 3
    assert row.last_error is not None and "ConnectError" in row.last_error
    assert len(delays) == 2 and delays[1] > delays[0] >= 4


def test_dead_destinations_are_disabled(database: Database, telegram_fake: FakeTelegram,
                                        discord_fake: FakeDiscord, keyring: KeyRing) -> None:
    """A blocked bot (403) and a deleted webhook (404): rows FAILED, destinations disabled with
    the reason, later notifications not routed to them."""
    settings = make_settings(database.url, telegram_fake, discord_fake)
    with database.session() as s:
        a = factories.follower(s)
        nd.set_destination(s, keyring, follower=a, chat_id=CHAT_A)
        nd.set_destination(s, keyring, follower=None, webhook=nd.parse_webhook_url(HOOK_URL),
                           events=["copy_filled"])
        enqueue(s, K.COPY_FILLED, a.id, _fill_payload())
        s.commit()
    telegram_fake.block(CHAT_A)
    discord_fake.delete_webhook(HOOK_ID)
    ctx = make_ctx(database, settings, keyring)
    sender_pass(ctx)
    rows = _rows(database)
    assert [r.status for r in rows] == [D.FAILED, D.FAILED]
    with database.session() as s:
        reasons = sorted(d.disabled_reason or "" for d in s.scalars(select(NotifyDestination)))
        assert not any(d.enabled for d in s.scalars(select(NotifyDestination)))
        enqueue(s, K.COPY_FILLED, a.id, _fill_payload())
        s.commit()
    assert "403 Forbidden: bot was blocked by the user" in reasons[1]
    assert "404 Unknown Webhook" in reasons[0]
    assert route(ctx)[1] == 0


def test_group_migrated_to_supergroup_follows_the_new_id(database: Database,
                                                         telegram_fake: FakeTelegram,
                                                         keyring: KeyRing) -> None:
    """400 with migrate_to_chat_id: the destination moves to the new chat and the message goes there."""
    settings = make_settings(database.url, telegram_fake)
    telegram_fake.add_chat(-4001, "group")
    telegram_fake.migrate(-4001, -1004001)
    with database.session() as s:
        a = factories.follower(s)
        nd.set_destination(s, keyring, follower=a, chat_id=-4001)
        enqueue(s, K.COPY_FILLED, a.id, _fill_payload())
        s.commit()
    ctx = make_ctx(database, settings, keyring)
    run_until(ctx, lambda: len(telegram_fake.messages(-1004001)) == 1)
    with database.session() as s:
        (dest,) = s.scalars(select(NotifyDestination))
        assert dest.telegram_chat_id == -1004001


def test_an_interrupted_send_is_repeated_once_then_given_up(database: Database,
                                                            telegram_fake: FakeTelegram,
                                                            keyring: KeyRing) -> None:
    """Claimed (SENDING) and never recorded: after the lease, sent once more with the repeat
    note; interrupted again: FAILED, never a third send."""
    settings = make_settings(database.url, telegram_fake, NOTIFY_LEASE_SECONDS="30")
    clock = Clock()
    with database.session() as s:
        a = factories.follower(s)
        dest = nd.set_destination(s, keyring, follower=a, chat_id=CHAT_A)
        enqueue(s, K.COPY_FILLED, a.id, _fill_payload())
        s.commit()
        dest_id = dest.id
    ctx = make_ctx(database, settings, keyring, clock=clock)
    route(ctx)
    assert claim(ctx, dest_id) is not None  # a process claimed it, then died
    assert recover_interrupted(ctx) == (0, 0)  # lease still running: not ours to take
    clock.advance(31)
    assert recover_interrupted(ctx) == (1, 0)
    bundle = claim(ctx, dest_id)  # the re-send is claimed... and interrupted again
    assert bundle is not None and REPEAT_NOTE in bundle.text
    clock.advance(31)
    assert recover_interrupted(ctx) == (0, 1)
    (row,) = _rows(database)
    assert row.status is D.FAILED and "not sent a third time" in (row.last_error or "")
    assert sender_pass(ctx) == {} and telegram_fake.messages() == []


def test_maybe_delivered_counts_toward_the_bound(database: Database, telegram_fake: FakeTelegram,
                                                 keyring: KeyRing) -> None:
    """A read timeout after the request left: one re-send with the note, then delivered."""
    settings = make_settings(database.url, telegram_fake)
    clock = Clock()
    with database.session() as s:
        a = factories.follower(s)
        nd.set_destination(s, keyring, follower=a, chat_id=CHAT_A)
        enqueue(s, K.COPY_FILLED, a.id, _fill_payload())
        s.commit()
    ctx = make_ctx(database, settings, keyring, clock=clock)

    async def first_try() -> None:
        from notify.channels import TelegramApi
        from notify.sender import send_due

        ctx.telegram = TelegramApi(settings.telegram_api_url, settings.telegram_bot_token or "",
                                   timeout=0.5)
        telegram_fake.hold_sends()
        route(ctx)
        await send_due(ctx)
        telegram_fake.release_sends()
        await close_clients(ctx)
    asyncio.run(first_try())
    (row,) = _rows(database)
    assert row.status is D.PENDING and row.in_doubt and "ReadTimeout" in (row.last_error or "")
    clock.advance(3600)
    sender_pass(ctx)
    first, second = telegram_fake.messages(CHAT_A)
    assert REPEAT_NOTE not in first["text"] and REPEAT_NOTE in second["text"]
    assert _rows(database)[0].status is D.SENT


def test_long_payloads_fit_the_channel_limits(database: Database, telegram_fake: FakeTelegram,
                                              discord_fake: FakeDiscord, keyring: KeyRing) -> None:
    """40 long rows: split over several messages, each accepted (≤ 4096 / ≤ 2000 characters)."""
    settings = make_settings(database.url, telegram_fake, discord_fake)
    with database.session() as s:
        a = factories.follower(s)
        nd.set_destination(s, keyring, follower=a, chat_id=CHAT_A)
        nd.set_destination(s, keyring, follower=None, webhook=nd.parse_webhook_url(HOOK_URL),
                           events=["copy_filled"])
        for i in range(40):
            enqueue(s, K.COPY_FILLED, a.id, _fill_payload(title=f"{i} " + "long title " * 30,
                                                          size=str(Decimal(i) + 1)))
        s.commit()
    ctx = make_ctx(database, settings, keyring)
    run_until(ctx, lambda: len(_rows(database)) == 80
              and all(r.status is D.SENT for r in _rows(database)), timeout=60)
    assert 2 <= len(telegram_fake.messages()) < 40 and 2 <= len(discord_fake.messages()) < 40
    assert all(t["status"] in (200, 204) for t in discord_fake.attempts()
               if t["status"] != 429)


def test_prune_keeps_recent_and_pending_rows(database: Database, telegram_fake: FakeTelegram,
                                             keyring: KeyRing) -> None:
    """After NOTIFY_RETENTION_DAYS, sent rows and their notifications go; pending ones stay."""
    from models import Notification
    from notify.sender import prune

    settings = make_settings(database.url, telegram_fake, NOTIFY_RETENTION_DAYS="1")
    clock = Clock()
    with database.session() as s:
        a, b = factories.follower(s, 1), factories.follower(s, 2)
        nd.set_destination(s, keyring, follower=a, chat_id=CHAT_A)
        nd.set_destination(s, keyring, follower=b, chat_id=CHAT_B)
        enqueue(s, K.COPY_FILLED, a.id, _fill_payload())
        enqueue(s, K.COPY_SKIPPED, b.id, {"side": "BUY", "reason": "stale"})  # B's waits 15 min
        s.commit()
    ctx = make_ctx(database, settings, keyring, clock=clock)
    sender_pass(ctx)
    assert [r.status for r in _rows(database)] == [D.SENT, D.PENDING]
    assert prune(ctx) == 0
    clock.advance(2 * 86400)
    assert prune(ctx) == 1
    assert [r.status for r in _rows(database)] == [D.PENDING]
    with database.session() as s:
        assert [n.kind for n in s.scalars(select(Notification))] == [K.COPY_SKIPPED]
