"""The Telegram Bot API and Discord webhooks over httpx, with their rate limits.

Each send returns a `SendResult` value, never raises: sent; rate limited (retry after N s, for
this chat/webhook or for everything); transient (retry later; `maybe_delivered` when the
request may have reached the server, e.g. a read timeout); permanent (the row gives up;
`disable` when the destination itself is dead: bot blocked, chat or webhook gone); moved (a
Telegram group became a supergroup with a new id).

Limits (Telegram publishes no exact numbers; these are its bot FAQ's): about 1 message per
second per chat, 20 per minute per group, about 30 per second in all (we send at most 25);
Discord: the webhook's `X-RateLimit-*` headers (5 requests per 2 s is the usual webhook bucket, used until headers are
seen) and its 429 body's `retry_after` (seconds, a float) or `Retry-After` header. Buckets are
`wire.transport.TokenBucket`.

Secrets: the bot token sits in the URL path and a webhook's token in its URL; both are
registered with the log masking filter, no URL is ever logged, and error details are built
from status codes and API descriptions only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from crypto import Secret
from infra.errors import PMCTError
from infra.logs import mask_secrets, register_secret
from wire.transport import BucketSpec, TokenBucket

log = logging.getLogger("pmct.notify")

TELEGRAM_GLOBAL = BucketSpec(capacity=25, rate=25.0)  # "about 30 a second": keep a margin
TELEGRAM_PRIVATE_CHAT = BucketSpec(capacity=1, rate=1.0)
TELEGRAM_GROUP_CHAT = BucketSpec(capacity=1, rate=20 / 60)
DISCORD_WEBHOOK = BucketSpec(capacity=5, rate=2.5)
DEFAULT_RETRY_AFTER = 5.0
MAX_RETRY_AFTER = 3600.0


class ChatApiError(PMCTError):
    """getUpdates (or another call whose answer we need) failed; the message holds no secret."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


@dataclass(frozen=True)
class SendResult:
    """What one send achieved (see the module docstring)."""

    outcome: str  # "sent" | "rate_limited" | "transient" | "permanent" | "moved"
    detail: str = ""
    retry_after: float | None = None
    everything: bool = False  # the rate limit covers every destination of the channel
    maybe_delivered: bool = False
    disable: bool = False
    new_chat_id: int | None = None
    pause_after: float | None = None  # sent, but the bucket is empty for this long

    @property
    def sent(self) -> bool:
        """True when the message was accepted."""
        return self.outcome == "sent"


def _clip(seconds: float) -> float:
    return max(0.0, min(float(seconds), MAX_RETRY_AFTER))


def _exc_result(exc: httpx.HTTPError, who: str) -> SendResult:
    """A transport error: delivered for sure not (connect) or maybe (the request went out)."""
    name = type(exc).__name__
    not_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout,
                                httpx.UnsupportedProtocol))
    return SendResult("transient", f"{who}: {name}", maybe_delivered=not not_sent)


class TelegramApi:
    """sendMessage and getUpdates on the Bot API at `base_url` (TELEGRAM_API_URL)."""

    def __init__(self, base_url: str, token: str, client: httpx.AsyncClient | None = None,
                 timeout: float = 15.0) -> None:
        register_secret(token)
        register_secret(token.split(":", 1)[-1])
        self._token = Secret(token)
        self._base = base_url.rstrip("/")
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._owns_client = client is None
        self.timeout = timeout

    def _url(self, method: str) -> str:
        return f"{self._base}/bot{self._token.reveal()}/{method}"

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            await self._client.aclose()

    async def send_message(self, chat_id: int, text: str) -> SendResult:
        """POST sendMessage (HTML parse mode, no link previews)."""
        body = {"chat_id": chat_id, "text": text, "parse_mode": "HTML",
                "link_preview_options": {"is_disabled": True}}
        try:
            resp = await self._client.post(self._url("sendMessage"), json=body, timeout=self.timeout)
        except httpx.HTTPError as exc:
            return _exc_result(exc, "telegram")
        return telegram_result(resp.status_code, _json(resp))

    async def get_updates(self, offset: int | None, timeout: int) -> list[dict[str, Any]]:
        """Long-poll getUpdates (messages only); ChatApiError on any failure."""
        params: dict[str, Any] = {"timeout": timeout, "allowed_updates": ["message"]}
        if offset is not None:
            params["offset"] = offset
        try:
            resp = await self._client.post(self._url("getUpdates"), json=params,
                                           timeout=timeout + self.timeout)
        except httpx.HTTPError as exc:
            raise ChatApiError(f"telegram getUpdates: {type(exc).__name__}") from None
        data = _json(resp)
        if resp.status_code == 200 and isinstance(data, dict) and data.get("ok") is True \
                and isinstance(data.get("result"), list):
            return [u for u in data["result"] if isinstance(u, dict)]
        desc = _description(data) or f"HTTP {resp.status_code}"
        params_ = data.get("parameters") if isinstance(data, dict) else None
        retry = params_.get("retry_after") if isinstance(params_, dict) else None
        raise ChatApiError(f"telegram getUpdates: {resp.status_code} {desc}", resp.status_code,
                           float(retry) if isinstance(retry, (int, float)) else None)


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _description(data: Any) -> str:
    if isinstance(data, dict):
        return mask_secrets(str(data.get("description") or data.get("message") or ""))[:200]
    return ""


def telegram_result(status: int, data: Any) -> SendResult:
    """Interpret a Bot API answer to sendMessage."""
    if status == 200 and isinstance(data, dict) and data.get("ok") is True:
        return SendResult("sent")
    if not isinstance(data, dict):
        return SendResult("transient", f"telegram: HTTP {status} without a Bot API body",
                          maybe_delivered=status in (502, 504))
    desc = _description(data)
    code = data.get("error_code", status)
    raw_params = data.get("parameters")
    params: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
    detail = f"telegram: {code} {desc}".strip()
    if status == 429 or code == 429:
        retry = params.get("retry_after")
        return SendResult("rate_limited", detail, retry_after=_clip(
            retry if isinstance(retry, (int, float)) else DEFAULT_RETRY_AFTER))
    if isinstance(params.get("migrate_to_chat_id"), int):
        return SendResult("moved", detail, new_chat_id=int(params["migrate_to_chat_id"]))
    if status == 403:
        return SendResult("permanent", detail, disable=True)
    if status == 400:
        gone = any(w in desc.lower() for w in ("chat not found", "user is deactivated",
                                                 "bot was kicked", "group chat was deleted"))
        return SendResult("permanent", detail, disable=gone)
    if status == 401:
        return SendResult("transient", f"{detail} (check TELEGRAM_BOT_TOKEN)")
    return SendResult("transient", detail, maybe_delivered=status == 504)


class DiscordApi:
    """Execute a webhook at `base_url` (DISCORD_API_URL, normally https://discord.com/api)."""

    def __init__(self, base_url: str, client: httpx.AsyncClient | None = None,
                 timeout: float = 15.0, username: str = "PMCT") -> None:
        self._base = base_url.rstrip("/")
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._owns_client = client is None
        self.timeout = timeout
        self.username = username

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            await self._client.aclose()

    async def execute(self, webhook_id: str, token: Secret, text: str) -> SendResult:
        """POST the message (`wait=true`: the answer confirms it was saved); mentions disabled."""
        register_secret(token.reveal())
        url = f"{self._base}/webhooks/{webhook_id}/{token.reveal()}"
        body = {"content": text, "username": self.username, "allowed_mentions": {"parse": []}}
        try:
            resp = await self._client.post(url, params={"wait": "true"}, json=body,
                                           timeout=self.timeout)
        except httpx.HTTPError as exc:
            return _exc_result(exc, "discord")
        return discord_result(resp.status_code, resp.headers, _json(resp))


def _float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f and f >= 0 else None


def discord_result(status: int, headers: httpx.Headers | dict[str, str], data: Any) -> SendResult:
    """Interpret a webhook answer (status, rate-limit headers, JSON body)."""
    h = {k.lower(): v for k, v in dict(headers).items()}
    if status in (200, 204):
        pause = None
        if h.get("x-ratelimit-remaining") == "0":
            pause = _float(h.get("x-ratelimit-reset-after"))
        return SendResult("sent", pause_after=pause)
    desc = _description(data)
    detail = f"discord: {status} {desc}".strip()
    if status == 429:
        retry = _float(data.get("retry_after")) if isinstance(data, dict) else None
        if retry is None:
            retry = _float(h.get("retry-after"))
        everything = bool(isinstance(data, dict) and data.get("global")) or \
            h.get("x-ratelimit-global", "").lower() == "true" or h.get("x-ratelimit-scope") == "global"
        return SendResult("rate_limited", detail, retry_after=_clip(
            retry if retry is not None else DEFAULT_RETRY_AFTER), everything=everything)
    if status in (401, 403, 404):
        return SendResult("permanent", detail, disable=True)
    if 400 <= status < 500:
        return SendResult("permanent", detail)
    return SendResult("transient", detail, maybe_delivered=status == 504)


class Limits:
    """Token buckets per key ('tg:<chat>', 'dc:<webhook id>') plus Telegram's global one, and
    pauses set by 429 answers (in memory; the rows' next_attempt_at keeps them across restarts)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._clock, self._sleep = clock, sleep
        self._buckets: dict[str, TokenBucket] = {}
        self._paused: dict[str, float] = {}
        self.waits = 0

    def _bucket(self, key: str, spec: BucketSpec) -> TokenBucket:
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = TokenBucket(spec, clock=self._clock, sleep=self._sleep)
        return b

    def pause(self, key: str, seconds: float) -> None:
        """No sends on `key` for `seconds` (a 429 or an empty Discord bucket)."""
        until = self._clock() + seconds
        self._paused[key] = max(self._paused.get(key, 0.0), until)

    def paused_for(self, *keys: str) -> float:
        """Seconds left on the longest pause among `keys` (0 when none)."""
        now = self._clock()
        return max([0.0, *(self._paused.get(k, 0.0) - now for k in keys)])

    async def take(self, claims: list[tuple[str, BucketSpec]]) -> float:
        """Take a token from each (key, spec) bucket, waiting as needed; returns seconds waited."""
        waited = 0.0
        for key, spec in claims:
            waited += await self._bucket(key, spec).acquire()
        if waited > 0:
            self.waits += 1
        return waited


def telegram_claims(chat_id: int) -> list[tuple[str, BucketSpec]]:
    """The buckets one Telegram message takes from: its chat's, then the global one."""
    spec = TELEGRAM_GROUP_CHAT if chat_id < 0 else TELEGRAM_PRIVATE_CHAT
    return [(f"tg:{chat_id}", spec), ("tg:*", TELEGRAM_GLOBAL)]


def discord_claims(webhook_id: str) -> list[tuple[str, BucketSpec]]:
    """The bucket one webhook execution takes from."""
    return [(f"dc:{webhook_id}", DISCORD_WEBHOOK)]
