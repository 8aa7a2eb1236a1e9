"""Fixtures and helpers for the notification tests: the local Telegram and Discord fakes, settings
pointing at them, a sender context, a movable clock, and a loop that runs the sender until a
condition holds (`from tests.support.notify_support import *` in a test module)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crypto import KeyRing
from infra.config import Settings, load_settings
from infra.db import utcnow
from notify.channels import DiscordApi, Limits, TelegramApi
from notify.sender import SenderContext, recover_interrupted, route, send_due
from sim.discord import FakeDiscord
from sim.telegram import FakeTelegram
from tests.support.dbfixtures import Database

# throwaway, never real: a bot token and a webhook of the right shapes
BOT_TOKEN = "987654321:AAFakeTokenForTestsOnly_abcdefghijklmn"
HOOK_ID = "112233445566778899"
HOOK_TOKEN = "hooktoken_" + "Zx9" * 20
HOOK_URL = f"https://discord.com/api/webhooks/{HOOK_ID}/{HOOK_TOKEN}"
CHAT_A, CHAT_B, CHAT_ADMIN, CHAT_STRANGER = 5001, 5002, 5999, 6666
NO_ENV = Path("/nonexistent/.env")

__all__ = ["BOT_TOKEN", "CHAT_A", "CHAT_ADMIN", "CHAT_B", "CHAT_STRANGER", "HOOK_ID", "HOOK_TOKEN",
           "HOOK_URL", "Clock", "close_clients", "discord_fake", "make_ctx", "make_settings", "run_until",
           "sender_pass", "telegram_fake"]


@pytest.fixture
def telegram_fake() -> Iterator[FakeTelegram]:
    """The local Bot API for BOT_TOKEN with the test chats known."""
    fake = FakeTelegram(BOT_TOKEN, max_long_poll=1.0).start()
    for chat in (CHAT_A, CHAT_B, CHAT_ADMIN, CHAT_STRANGER):
        fake.add_chat(chat)
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def discord_fake() -> Iterator[FakeDiscord]:
    """The local webhook endpoint with HOOK_ID registered."""
    fake = FakeDiscord().start()
    fake.add_webhook(HOOK_ID, HOOK_TOKEN)
    try:
        yield fake
    finally:
        fake.stop()


def make_settings(db_url: str, telegram: FakeTelegram | None = None,
                  discord: FakeDiscord | None = None, **extra: str) -> Settings:
    """Settings for `db_url` pointing at the fakes."""
    env = {"DATABASE_URL": db_url, "LOG_LEVEL": "DEBUG"}
    if telegram is not None:
        env.update(TELEGRAM_BOT_TOKEN=BOT_TOKEN, TELEGRAM_API_URL=telegram.url)
    if discord is not None:
        env["DISCORD_API_URL"] = discord.url + "/api"
    env.update(extra)
    return load_settings(env, env_file=NO_ENV)


@dataclass
class Clock:
    """A wall clock that tests can move forward."""

    offset: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        """Jump forward."""
        self.offset += timedelta(seconds=seconds)


def make_ctx(database: Database, settings: Settings, keyring: KeyRing | None = None,
             clock: Callable[[], datetime] | None = None, owner: str = "test-owner",
             **kw: Any) -> SenderContext:
    """A sender context on `database` with real API clients (no jitter in backoffs)."""
    telegram = (TelegramApi(settings.telegram_api_url, settings.telegram_bot_token, timeout=5.0)
                if settings.telegram_bot_token else None)
    return SenderContext(settings=settings, factory=database.factory, owner=owner,
                         telegram=telegram, discord=DiscordApi(settings.discord_api_url, timeout=5.0),
                         keyring=keyring, limits=Limits(), clock=clock or utcnow,
                         jitter=lambda d: d, **kw)


def _fresh_clients(ctx: SenderContext) -> None:
    """New HTTP clients and buckets for a new event loop (pauses are kept)."""
    s = ctx.settings
    ctx.telegram = (TelegramApi(s.telegram_api_url, s.telegram_bot_token, timeout=5.0)
                    if s.telegram_bot_token else None)
    ctx.discord = DiscordApi(s.discord_api_url, timeout=5.0)
    paused = ctx.limits._paused
    ctx.limits = Limits()
    ctx.limits._paused.update(paused)


def sender_pass(ctx: SenderContext) -> dict[str, int]:
    """route + recover + send once (what one notifier cycle does for deliveries)."""
    async def run() -> dict[str, int]:
        _fresh_clients(ctx)
        try:
            route(ctx)
            recover_interrupted(ctx)
            return await send_due(ctx)
        finally:
            await close_clients(ctx)
    return asyncio.run(run())


def run_until(ctx: SenderContext, done: Callable[[], bool], timeout: float = 20.0) -> None:
    """Run sender passes (as the daemon would, every 0.1 s) until `done()`; fail on timeout."""
    async def run() -> None:
        _fresh_clients(ctx)
        try:
            deadline = time.monotonic() + timeout
            while not done():
                assert time.monotonic() < deadline, "condition not reached in time"
                route(ctx)
                recover_interrupted(ctx)
                await send_due(ctx)
                await asyncio.sleep(0.1)
        finally:
            await close_clients(ctx)
    asyncio.run(run())


async def close_clients(ctx: SenderContext) -> None:
    """Close the context's HTTP clients (inside the loop that used them)."""
    if ctx.telegram is not None:
        await ctx.telegram.aclose()
    if ctx.discord is not None:
        await ctx.discord.aclose()
