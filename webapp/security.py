"""HTTP hardening of the dashboard: response headers, CSRF tokens, login rate limiting.

Invariants:
- every response carries a Content-Security-Policy that allows scripts and styles from this
  origin only (no inline script or style, no eval), denies framing, and the other usual
  headers; HTML and API answers are never cached;
- every state-changing request authenticated by the session cookie carries the session's CSRF
  token (form field `csrf_token` or header `X-CSRF-Token`), compared in constant time; bearer
  requests carry no ambient credential and need none;
- a client address gets at most LOGIN_ATTEMPTS login attempts per LOGIN_WINDOW seconds
  (per process; the per-account lockout in ops.users covers several processes).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, MutableMapping
from typing import Any

log = logging.getLogger("pmct.web")

CSP = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
])

BASE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
NO_STORE = (b"cache-control", b"no-store")
STATIC_CACHE = (b"cache-control", b"public, max-age=3600")

CSRF_SESSION_KEY = "csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

LOGIN_ATTEMPTS = 10
LOGIN_WINDOW = 60.0


class SecurityHeadersMiddleware:
    """Pure ASGI middleware adding the security headers (and cache policy) to every response.

    It also turns an unhandled exception into a plain 500 (with the same headers, no detail:
    the traceback goes to the log only).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Callable[..., Any],
                       send: Callable[..., Any]) -> None:
        """Wrap `send` so the response start message gets the headers."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        static = path.startswith("/static/")
        https = scope.get("scheme") == "https"
        started = False

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers.extend(h for h in BASE_HEADERS if h[0] not in present)
                if b"cache-control" not in present:
                    headers.append(STATIC_CACHE if static else NO_STORE)
                if https:
                    headers.append(HSTS)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("request %s %s failed", scope.get("method"), path)
            if started:
                raise
            api = path.startswith("/api/")
            body = (b'{"error":"internal error (see the server log)"}' if api
                    else b"<!doctype html><title>500</title><p>Internal error (see the server log).")
            await send_with_headers({"type": "http.response.start", "status": 500, "headers": [
                (b"content-type", b"application/json" if api else b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode())]})
            await send_with_headers({"type": "http.response.body", "body": body})


def csrf_token(session: MutableMapping[str, Any]) -> str:
    """The session's CSRF token, created on first use."""
    token = session.get(CSRF_SESSION_KEY)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session[CSRF_SESSION_KEY] = token
    return token


def csrf_valid(session: MutableMapping[str, Any], presented: str | None) -> bool:
    """True when `presented` is the session's CSRF token (constant-time comparison)."""
    expected = session.get(CSRF_SESSION_KEY)
    if not isinstance(expected, str) or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


class LoginRateLimiter:
    """Sliding-window limit of login attempts per client address (thread-safe, in memory)."""

    def __init__(self, attempts: int = LOGIN_ATTEMPTS, window: float = LOGIN_WINDOW,
                 clock: Callable[[], float] = time.monotonic, max_clients: int = 10_000) -> None:
        self.attempts, self.window, self.clock = attempts, window, clock
        self.max_clients = max_clients
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        """Record one attempt from `client`; False when it is over the limit."""
        now = self.clock()
        with self._lock:
            if len(self._hits) >= self.max_clients:
                self._prune(now)
            hits = self._hits.setdefault(client, deque())
            while hits and now - hits[0] > self.window:
                hits.popleft()
            if len(hits) >= self.attempts:
                return False
            hits.append(now)
            return True

    def retry_after(self, client: str) -> int:
        """Seconds until `client` may try again (0 when it may now)."""
        now = self.clock()
        with self._lock:
            hits = self._hits.get(client)
            if not hits or len(hits) < self.attempts:
                return 0
            return max(1, int(self.window - (now - hits[0])) + 1)

    def _prune(self, now: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or now - v[-1] > self.window]:
            del self._hits[key]
