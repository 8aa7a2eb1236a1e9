"""A local Discord webhook endpoint: Execute Webhook with Discord's answers and rate limits.

`POST /api[/vN]/webhooks/{id}/{token}[?wait=true]` with a JSON body: 204 (or 200 and the
message object with `wait=true`); 404 `{"message": "Unknown Webhook", "code": 10015}`; 401
`{"message": "Invalid Webhook Token", "code": 50027}`; 400 for an empty message (50006) or
content over 2000 characters (50035, "Invalid Form Body"). Each webhook has a bucket of 5
requests per 2 s announced in `X-RateLimit-Limit/-Remaining/-Reset/-Reset-After/-Bucket`;
beyond it a 429 `{"message": "You are being rate limited.", "retry_after": <seconds, float>,
"global": false}` with `Retry-After` (whole seconds) and `X-RateLimit-Scope`.

Test controls (in-process, or `POST /_fake/<name>`): add_webhook, delete_webhook, messages,
attempts, rate_limit_next, hold_sends, release_sends.
"""

from __future__ import annotations

import math
import re
import threading
import time
from typing import Any

from sim.fakehttp import FakeServer, Reply, Request

PATH_RE = re.compile(r"/api(?:/v[0-9]{1,2})?/webhooks/([0-9]+)/([A-Za-z0-9_\-]+)/?")


class FakeDiscord(FakeServer):
    """Webhooks registered with `add_webhook`; `accept_any` also takes any unknown webhook."""

    CONTROL = frozenset({"add_webhook", "delete_webhook", "messages", "attempts",
                         "rate_limit_next", "hold_sends", "release_sends"})

    def __init__(self, port: int = 0, *, limit: int = 5, window: float = 2.0,
                 accept_any: bool = False) -> None:
        super().__init__(port)
        self.limit, self.window, self.accept_any = limit, window, accept_any
        self.webhooks: dict[str, str] = {}
        self.sent: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []
        self.forced: list[dict[str, Any]] = []
        self.windows: dict[str, tuple[float, int]] = {}
        self.next_id = 1_200_000_000_000_000_000
        self.hold = False
        self.released = threading.Event()

    # --- controls -------------------------------------------------------------------------

    def add_webhook(self, webhook_id: str, token: str) -> None:
        """A webhook exists with this id and token."""
        with self.lock:
            self.webhooks[str(webhook_id)] = token

    def delete_webhook(self, webhook_id: str) -> None:
        """The webhook was deleted in Discord."""
        with self.lock:
            self.webhooks.pop(str(webhook_id), None)
            self.accept_any = False

    def messages(self, webhook_id: str | None = None) -> list[dict[str, Any]]:
        """Messages posted (accepted), oldest first."""
        with self.lock:
            return [dict(m) for m in self.sent if webhook_id is None or m["webhook_id"] == str(webhook_id)]

    def attempts(self) -> list[dict[str, Any]]:
        """Every execute request with its status and arrival time (time.monotonic)."""
        with self.lock:
            return [dict(a) for a in self.log]

    def rate_limit_next(self, retry_after: float = 1.5, count: int = 1, global_: bool = False) -> None:
        """Answer the next `count` executions with a 429 of `retry_after` seconds."""
        with self.lock:
            self.forced.append({"retry_after": retry_after, "count": count, "global": global_})

    def hold_sends(self) -> None:
        """Record each message, then never answer (until release)."""
        with self.lock:
            self.hold = True
            self.released.clear()

    def release_sends(self) -> None:
        """Answer normally again."""
        with self.lock:
            self.hold = False
        self.released.set()

    # --- the API --------------------------------------------------------------------------

    def route(self, req: Request) -> Reply | None:
        m = PATH_RE.fullmatch(req.path)
        if not m:
            return Reply(404, {"message": "404: Not Found", "code": 0})
        if req.method != "POST":
            return Reply(405, {"message": "405: Method Not Allowed", "code": 0})
        hook_id, token = m.group(1), m.group(2)
        now = time.monotonic()
        with self.lock:
            entry = {"webhook_id": hook_id, "at": now, "status": 0}
            self.log.append(entry)
            reply = self._execute(req, hook_id, token, now)
            entry["status"] = reply.status
            hold = self.hold and reply.status in (200, 204)
        if hold:
            self.released.wait(timeout=600)
            if self.stopping.is_set():
                return None
        return reply

    def _execute(self, req: Request, hook_id: str, token: str, now: float) -> Reply:
        known = self.webhooks.get(hook_id)
        if known is None and not self.accept_any:
            return Reply(404, {"message": "Unknown Webhook", "code": 10015})
        if known is not None and known != token:
            return Reply(401, {"message": "Invalid Webhook Token", "code": 50027})
        for f in self.forced:
            if f["count"] > 0:
                f["count"] -= 1
                return self._limited(f["retry_after"], f["global"], hook_id)
        start, used = self.windows.get(hook_id, (now, 0))
        if now - start >= self.window:
            start, used = now, 0
        if used >= self.limit:
            return self._limited(round(self.window - (now - start), 3), False, hook_id)
        body = req.json()
        if not isinstance(body, dict):
            return Reply(400, {"message": "Cannot send an empty message", "code": 50006})
        content = body.get("content") or ""
        if not content and not body.get("embeds"):
            return Reply(400, {"message": "Cannot send an empty message", "code": 50006})
        if len(content) > 2000:
            return Reply(400, {"message": "Invalid Form Body", "code": 50035, "errors": {
                "content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH",
                                         "message": "Must be 2000 or fewer in length."}]}}})
        used += 1
        self.windows[hook_id] = (start, used)
        reset_after = round(self.window - (now - start), 3)
        headers = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.limit - used),
                   "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
                   "X-RateLimit-Reset-After": str(reset_after), "X-RateLimit-Bucket": f"wh{hook_id[-6:]}"}
        msg_id = str(self.next_id)
        self.next_id += 1
        self.sent.append({"webhook_id": hook_id, "content": content, "username": body.get("username"),
                          "allowed_mentions": body.get("allowed_mentions"), "at": now, "id": msg_id})
        self.changed.notify_all()
        if req.param("wait") == "true":
            return Reply(200, {"id": msg_id, "type": 0, "content": content, "channel_id": "1",
                               "webhook_id": hook_id, "author": {"id": hook_id, "username":
                               body.get("username") or "Webhook", "bot": True},
                               "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                               "mentions": [], "embeds": [], "attachments": []}, headers)
        return Reply(204, None, headers)

    @staticmethod
    def _limited(retry_after: float, global_: bool, hook_id: str) -> Reply:
        headers = {"Retry-After": str(max(1, math.ceil(retry_after))),
                   "X-RateLimit-Scope": "global" if global_ else "shared"}
        if global_:
            headers["X-RateLimit-Global"] = "true"
        else:
            headers.update({"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                            "X-RateLimit-Reset-After": str(retry_after),
                            "X-RateLimit-Bucket": f"wh{hook_id[-6:]}"})
        return Reply(429, {"message": "You are being rate limited.", "retry_after": retry_after,
                           "global": global_}, headers)
