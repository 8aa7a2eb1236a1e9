"""A local Telegram Bot API: sendMessage, getUpdates (long polling), getMe, with the real shapes.

Answers as the Bot API does: `{"ok": true, "result": …}` or `{"ok": false, "error_code": N,
"description": "…", "parameters": {…}}` with the HTTP status equal to the error code — 401
for a wrong token, 400 "chat not found" / "message is too long" / "can't parse entities" (the
HTML parse mode is checked: only Telegram's tags, balanced), 403 "bot was blocked by the user",
429 "Too Many Requests: retry after N" with `parameters.retry_after`, 400 with
`parameters.migrate_to_chat_id` for a group that became a supergroup, 409 when a second
getUpdates replaces one in progress. Rate limits as the bot FAQ describes them: per chat about
one message a second (short bursts allowed), 20 a minute in a group, about 30 a second in all.

Test controls (in-process, or `POST /_fake/<name>`): add_chat, user_says, messages, attempts,
rate_limit_next, block, migrate, hold_sends, release_sends.
"""

from __future__ import annotations

import math
import re
import threading
import time
from html.parser import HTMLParser
from typing import Any

from sim.fakehttp import FakeServer, Reply, Request

TOKEN_RE = re.compile(r"^[0-9]{3,20}:[A-Za-z0-9_-]{20,80}$")
ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
                "span", "tg-spoiler", "blockquote", "tg-emoji"}
BOT = {"id": 7000000001, "is_bot": True, "first_name": "PMCT", "username": "pmct_test_bot"}


class _TagChecker(HTMLParser):
    """Telegram's HTML mode: known tags only, properly nested."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.error: str | None = None
        self.text_len = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.error = self.error or f"Unsupported start tag \"{tag}\""
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.error = self.error or f"Can't find end tag corresponding to start tag \"{tag}\""
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text_len += len(data)


def _error(code: int, description: str, **parameters: Any) -> Reply:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Reply(code, body)


class _Bucket:
    def __init__(self, capacity: float, rate: float) -> None:
        self.capacity, self.rate, self.tokens, self.at = capacity, rate, capacity, time.monotonic()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one is there."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class FakeTelegram(FakeServer):
    """The Bot API for one bot (`token`; None accepts any well-formed token)."""

    CONTROL = frozenset({"add_chat", "user_says", "messages", "attempts", "rate_limit_next",
                         "block", "migrate", "hold_sends", "release_sends"})

    def __init__(self, token: str | None = None, port: int = 0, *, max_long_poll: float = 5.0,
                 enforce_limits: bool = True) -> None:
        super().__init__(port)
        self.token = token
        self.max_long_poll = max_long_poll
        self.enforce_limits = enforce_limits
        self.chats: dict[int, dict[str, Any]] = {}
        self.blocked: set[int] = set()
        self.migrated: dict[int, int] = {}
        self.sent: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []  # every sendMessage attempt: chat, status, time
        self.updates: list[dict[str, Any]] = []
        self.next_update_id = 100
        self.next_message_id = 1
        self.forced: list[dict[str, Any]] = []
        self.poll_generation = 0
        self.hold = False
        self.released = threading.Event()
        self._chat_buckets: dict[int, _Bucket] = {}
        self._global = _Bucket(30, 30.0)

    # --- controls -------------------------------------------------------------------------

    def add_chat(self, chat_id: int, kind: str = "private", title: str = "") -> dict[str, Any]:
        """Make a chat known (a user who pressed Start, or a group with the bot in it)."""
        with self.changed:
            chat = {"id": chat_id, "type": kind}
            if kind == "private":
                chat["first_name"] = title or f"user{chat_id}"
            else:
                chat["title"] = title or f"group{chat_id}"
            self.chats[chat_id] = chat
            return chat

    def user_says(self, chat_id: int, text: str, from_id: int | None = None) -> int:
        """A person writes `text` in `chat_id`; returns the update id."""
        with self.changed:
            chat = self.chats.get(chat_id) or self.add_chat(chat_id, "private" if chat_id > 0 else "group")
            uid = self.next_update_id
            self.next_update_id += 1
            msg: dict[str, Any] = {
                "message_id": self.next_message_id, "date": int(time.time()), "chat": chat,
                "from": {"id": from_id or abs(chat_id), "is_bot": False, "first_name": "Someone"},
                "text": text}
            self.next_message_id += 1
            if text.startswith("/"):
                msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
            self.updates.append({"update_id": uid, "message": msg})
            self.changed.notify_all()
            return uid

    def messages(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Messages the bot sent (accepted), oldest first."""
        with self.lock:
            return [dict(m) for m in self.sent if chat_id is None or m["chat_id"] == chat_id]

    def attempts(self) -> list[dict[str, Any]]:
        """Every sendMessage request with its status and arrival time (time.monotonic)."""
        with self.lock:
            return [dict(a) for a in self.log]

    def rate_limit_next(self, retry_after: int = 2, count: int = 1, chat_id: int | None = None) -> None:
        """Answer the next `count` sendMessage calls (to `chat_id`, or any) with a 429."""
        with self.lock:
            self.forced.append({"retry_after": retry_after, "count": count, "chat_id": chat_id})

    def block(self, chat_id: int) -> None:
        """The user blocked the bot: sends to the chat get 403."""
        with self.lock:
            self.blocked.add(chat_id)

    def migrate(self, chat_id: int, new_chat_id: int) -> None:
        """The group became a supergroup with a new id."""
        with self.lock:
            self.migrated[chat_id] = new_chat_id
            self.add_chat(new_chat_id, "supergroup")

    def hold_sends(self) -> None:
        """From now on, record each sendMessage and then never answer it (until release)."""
        with self.lock:
            self.hold = True
            self.released.clear()

    def release_sends(self) -> None:
        """Answer sends normally again."""
        with self.lock:
            self.hold = False
        self.released.set()

    # --- the API --------------------------------------------------------------------------

    def route(self, req: Request) -> Reply | None:
        m = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", req.path)
        if not m:
            return Reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        token, method = m.group(1), m.group(2)
        if not TOKEN_RE.match(token) or (self.token is not None and token != self.token):
            return _error(401, "Unauthorized")
        params = self._params(req)
        if method == "getMe":
            return Reply(200, {"ok": True, "result": BOT})
        if method == "sendMessage":
            return self._send(params)
        if method == "getUpdates":
            return self._get_updates(params)
        if method in ("deleteWebhook", "setMyCommands"):
            return Reply(200, {"ok": True, "result": True})
        return _error(404, "Not Found: method not found")

    @staticmethod
    def _params(req: Request) -> dict[str, Any]:
        data = req.json()
        if isinstance(data, dict):
            return data
        from urllib.parse import parse_qs

        form = parse_qs(req.body.decode(errors="replace")) if req.body else {}
        merged = {**{k: v[-1] for k, v in req.query.items()}, **{k: v[-1] for k, v in form.items()}}
        return merged

    def _send(self, p: dict[str, Any]) -> Reply | None:
        now = time.monotonic()
        try:
            chat_id = int(p.get("chat_id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return _error(400, "Bad Request: chat_id is empty")
        text = p.get("text")
        with self.lock:
            entry = {"chat_id": chat_id, "at": now, "status": 0}
            self.log.append(entry)
            status_reply = self._check_send(chat_id, text, p.get("parse_mode"))
            if status_reply is not None:
                entry["status"] = status_reply.status
                return status_reply
            entry["status"] = 200
            msg = {"message_id": self.next_message_id, "from": BOT, "chat": self.chats[chat_id],
                   "date": int(time.time()), "text": text}
            self.next_message_id += 1
            self.sent.append({"chat_id": chat_id, "text": text, "parse_mode": p.get("parse_mode"),
                              "at": now, "message_id": msg["message_id"]})
            self.changed.notify_all()
            hold = self.hold
        if hold:  # delivered, but the answer never comes (the sender is killed meanwhile)
            self.released.wait(timeout=600)
            if self.stopping.is_set():
                return None
        return Reply(200, {"ok": True, "result": msg})

    def _check_send(self, chat_id: int, text: Any, parse_mode: Any) -> Reply | None:
        for f in self.forced:
            if f["count"] > 0 and f["chat_id"] in (None, chat_id):
                f["count"] -= 1
                return _error(429, f"Too Many Requests: retry after {f['retry_after']}",
                              retry_after=f["retry_after"])
        if chat_id in self.migrated:
            return _error(400, "Bad Request: group chat was upgraded to a supergroup chat",
                          migrate_to_chat_id=self.migrated[chat_id])
        if chat_id not in self.chats:
            return _error(400, "Bad Request: chat not found")
        if chat_id in self.blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "Bad Request: message text is empty")
        length = len(text)
        if parse_mode == "HTML":
            checker = _TagChecker()
            checker.feed(text)
            checker.close()
            if checker.error or checker.stack:
                return _error(400, f"Bad Request: can't parse entities: {checker.error or 'unclosed tag'}")
            length = checker.text_len
        if length > 4096:
            return _error(400, "Bad Request: message is too long")
        if self.enforce_limits:
            bucket = self._chat_buckets.get(chat_id)
            if bucket is None:
                bucket = self._chat_buckets[chat_id] = (
                    _Bucket(3, 1.0) if chat_id > 0 else _Bucket(3, 20 / 60))
            wait = max(bucket.take(), self._global.take())
            if wait > 0:
                retry = max(1, math.ceil(wait))
                return _error(429, f"Too Many Requests: retry after {retry}", retry_after=retry)
        return None

    def _get_updates(self, p: dict[str, Any]) -> Reply | None:
        try:
            offset = int(p["offset"]) if p.get("offset") is not None else None
            limit = max(1, min(100, int(p.get("limit") or 100)))
            timeout = max(0.0, min(float(p.get("timeout") or 0), self.max_long_poll))
        except (TypeError, ValueError):
            return _error(400, "Bad Request: invalid parameters")
        with self.changed:
            self.poll_generation += 1
            mine = self.poll_generation
            self.changed.notify_all()
            if offset is not None and offset > 0:
                self.updates = [u for u in self.updates if u["update_id"] >= offset]  # confirmed
            def ready() -> bool:
                return bool(self._pending(offset)) or self.poll_generation != mine
            self.changed.wait_for(lambda: ready() or self.stopping.is_set(), timeout=timeout)
            if self.poll_generation != mine:
                return _error(409, "Conflict: terminated by other getUpdates request; make sure "
                                   "that only one bot instance is running")
            return Reply(200, {"ok": True, "result": self._pending(offset)[:limit]})

    def _pending(self, offset: int | None) -> list[dict[str, Any]]:
        if offset is not None and offset < 0:
            return self.updates[offset:]
        return [u for u in self.updates if offset is None or u["update_id"] >= offset]
