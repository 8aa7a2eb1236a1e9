"""`admin set-notify --test`: one message now, straight to a destination, to prove it works.

It goes around the outbox on purpose (the admin wants the answer now, at the prompt) but through
the same API clients, so the same errors show: a wrong chat id, a blocked bot, a deleted webhook.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from crypto import KeyRing
from infra.config import Settings
from infra.errors import ConfigError
from models import NotifyChannel, NotifyDestination
from notify.channels import DiscordApi, SendResult, TelegramApi
from notify.destinations import webhook_of
from notify.render import Block, compose


@dataclass(frozen=True)
class TrialResult:
    """What happened to the test message of one destination."""

    label: str
    ok: bool
    detail: str


def trial_text(channel: NotifyChannel, who: str) -> str:
    """The test message."""
    return compose([Block("PMCT test message", (
        f"Notifications for {who} will arrive here.",
        "Telegram chats may also send /status, /positions, /pause, /resume, /digest."))], channel)


async def _send(settings: Settings, keyring: KeyRing | None, dest: NotifyDestination,
                who: str) -> SendResult:
    text = trial_text(dest.channel, who)
    if dest.channel is NotifyChannel.TELEGRAM:
        if not settings.telegram_bot_token:
            raise ConfigError("TELEGRAM_BOT_TOKEN is not set: the test message cannot be sent")
        api = TelegramApi(settings.telegram_api_url, settings.telegram_bot_token)
        try:
            assert dest.telegram_chat_id is not None
            return await api.send_message(dest.telegram_chat_id, text)
        finally:
            await api.aclose()
    if keyring is None:
        raise ConfigError("ENCRYPTION_KEY is not set: the webhook URL cannot be decrypted")
    hook = webhook_of(keyring, dest)
    discord = DiscordApi(settings.discord_api_url)
    try:
        return await discord.execute(hook.webhook_id, hook.token, text)
    finally:
        await discord.aclose()


def send_tests(settings: Settings, keyring: KeyRing | None, dests: list[NotifyDestination],
               who: str) -> list[TrialResult]:
    """Send one test message to each destination; what happened to each."""
    async def run() -> list[TrialResult]:
        out = []
        for d in dests:
            res = await _send(settings, keyring, d, who)
            out.append(TrialResult(d.label, res.sent, "delivered" if res.sent else res.detail))
        return out

    return asyncio.run(run())
