"""Dashboard security: CSRF refused, login rate limit and lockout, headers and CSP, no inline
script or style, no secret in any page, cookie flags, sessions end on a password change,
follower users confined to their own wallet (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from copying import killswitch as ks
from crypto import KeyRing
from infra.db import session_scope, utcnow
from models import Follow, Follower, FollowStatus, Tier, WebUser
from ops.users import MAX_FAILED_LOGINS
from tests.support.keys import TEST_KEY
from tests.support.webfixtures import (
    CSRF_RE,
    PASSWORD,
    TRADER_A,
    TRADER_B,
    USERNAMES,
    Web,
    csrf_of,
    login,
    snapshot,
)
from wire.types import ApiCreds

PAGES = ["/follows", "/configure", "/orders", "/orders/rows", "/history", "/performance",
         "/operations", "/operations/daemons", "/api/docs"]


# --- CSRF ---------------------------------------------------------------------------------------

def _forms(web: Web, wallet: str) -> list[tuple[str, dict[str, str]]]:
    return [
        ("/configure", {"wallet": wallet, "target_trader": TRADER_B, "copy_percentage": "3",
                        "max_trade": "10", "copying": "on"}),
        ("/follows/disable", {"wallet": wallet, "target_trader": TRADER_A}),
        ("/operations/kill-switch", {"action": "on", "reason": "csrf test"}),
        ("/logout", {}),
    ]


@pytest.mark.parametrize("token", [None, "", "wrong" * 9])
def test_every_form_without_its_csrf_token_is_refused_and_writes_nothing(web: Web,
                                                                         token: str | None) -> None:
    """configure, turn off, kill switch, logout: 403 without the session's token; no row changes
    and the session survives."""
    client = web.client()
    login(client, "admin")
    before = snapshot(web.db)
    for path, data in _forms(web, web.wallets["f1"]):
        body = dict(data) if token is None else {**data, "csrf_token": token}
        r = client.post(path, data=body, follow_redirects=False)
        assert r.status_code == 403, (path, r.status_code, r.text[:300])
        assert snapshot(web.db) == before, path
    assert client.get("/follows", follow_redirects=False).status_code == 200  # still logged in


def test_a_token_from_another_session_is_refused(web: Web) -> None:
    """Admin's valid token replayed in another user's session: 403."""
    admin = web.client()
    other = web.client()
    admin_csrf = login(admin, "admin")
    login(other, "f1")
    before = snapshot(web.db)
    r = other.post("/follows/disable", data={"csrf_token": admin_csrf,
                                             "target_trader": TRADER_A}, follow_redirects=False)
    assert r.status_code == 403 and snapshot(web.db) == before


def test_login_form_needs_its_csrf_token(web: Web) -> None:
    """A login POST without the token from the login page is refused (no session starts)."""
    client = web.client()
    r = client.post("/login", data={"username": "admin", "password": PASSWORD},
                    follow_redirects=False)
    assert r.status_code == 403
    assert client.get("/follows", follow_redirects=False).status_code == 303


def test_forms_with_their_token_work(web: Web) -> None:
    """The same forms with the token: configure enables, turn-off disables (kill switch of the
    follow), the kill switch toggles; each redirects with a message."""
    client = web.client()
    csrf = login(client, "admin")
    wallet = web.wallets["f1"]
    r = client.post("/configure", data={"csrf_token": csrf, "wallet": wallet,
                                        "target_trader": TRADER_B, "copy_percentage": "3.5",
                                        "max_trade": "10", "copying": "on"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text[:500]
    page = client.get(r.headers["location"])
    assert f"copying {TRADER_B} at 3.5 %" in page.text and TRADER_B in page.text
    r = client.post("/follows/disable", data={"csrf_token": csrf, "wallet": wallet,
                                              "target_trader": TRADER_B}, follow_redirects=False)
    assert r.status_code == 303
    with session_scope(web.db.factory) as s:
        fo = s.scalars(select(Follow).join(Follow.trader).where(
            Follow.follower.has(Follower.funder_address == wallet))
            .where(Follow.trader.has(wallet=TRADER_B))).one()
        assert fo.status == FollowStatus.PAUSED
        assert ks.KillSwitchState.load(s).copying_allowed(fo.follower, fo)[1] == "follow_disabled"
    r = client.post("/operations/kill-switch", data={"csrf_token": csrf, "action": "on",
                                                     "reason": "maintenance"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert "ON" in client.get("/operations").text
    with session_scope(web.db.factory) as s:
        assert ks.is_globally_disabled(s)


def test_configure_form_bad_input_and_tier_write_nothing(web: Web) -> None:
    """Bad address, text percentage, over the tier, FREE tier: 400 page with the reason."""
    client = web.client()
    csrf = login(client, "f1")
    base = {"csrf_token": csrf, "target_trader": TRADER_B, "copy_percentage": "3",
            "max_trade": "10", "copying": "on"}
    before = snapshot(web.db)
    for change, message in ((({"target_trader": "0x12"}), "trader address"),
                            (({"copy_percentage": "abc"}), "copy % must be a number"),
                            (({"copy_percentage": "21"}), "tier elite allows"),
                            (({"max_trade": "0"}), "max_trade must be greater than 0")):
        r = client.post("/configure", data={**base, **change}, follow_redirects=False)
        assert r.status_code == 400 and message in r.text, (change, r.text[:400])
    assert snapshot(web.db) == before
    with session_scope(web.db.factory) as s:
        s.scalars(select(Follower).where(Follower.funder_address == web.wallets["f1"])).one() \
            .tier = Tier.FREE
    page = client.get("/configure")
    assert "not included" in page.text and re.search(r'<button type="submit" disabled', page.text)
    before = snapshot(web.db)
    r = client.post("/configure", data=base, follow_redirects=False)
    assert r.status_code == 400 and "does not include automatic copying" in r.text
    assert snapshot(web.db) == before


# --- login: rate limit and lockout ----------------------------------------------------------------

def _try(client: object, username: str, password: str) -> int:
    page = client.get("/login")  # type: ignore[attr-defined]
    token = CSRF_RE.search(page.text)
    assert token is not None
    r = client.post("/login", data={"csrf_token": token.group(1), "username": username,  # type: ignore[attr-defined]
                                    "password": password}, follow_redirects=False)
    return int(r.status_code)


def test_lockout_after_repeated_wrong_passwords(web: Web) -> None:
    """MAX_FAILED_LOGINS wrong passwords lock the account: even the right one is refused until
    the lock expires; a success resets the count."""
    client = web.client()
    name = USERNAMES["f1"]
    codes = [_try(client, name, "wrong password!!") for _ in range(MAX_FAILED_LOGINS)]
    assert codes[:-1] == [401] * (MAX_FAILED_LOGINS - 1) and codes[-1] == 403
    assert _try(client, name, PASSWORD) == 403
    assert "locked until" in client.post("/login", data={
        "csrf_token": CSRF_RE.search(client.get("/login").text).group(1),  # type: ignore[union-attr]
        "username": name, "password": PASSWORD}).text
    with session_scope(web.db.factory) as s:
        user = s.scalars(select(WebUser).where(WebUser.username == name)).one()
        assert user.locked_until is not None and user.locked_until > utcnow()
        user.locked_until = utcnow() - timedelta(seconds=1)
    assert _try(web.client(), name, PASSWORD) == 303
    with session_scope(web.db.factory) as s:
        user = s.scalars(select(WebUser).where(WebUser.username == name)).one()
        assert user.failed_logins == 0 and user.locked_until is None


def test_login_attempts_are_rate_limited_per_client(web: Web) -> None:
    """The 11th attempt within a minute from one address is 429 with Retry-After, whatever the
    username (unknown names included)."""
    client = web.client()
    codes = [_try(client, f"nobody{i}", "whatever password") for i in range(10)]
    assert codes == [401] * 10
    page = client.get("/login")
    token = CSRF_RE.search(page.text).group(1)  # type: ignore[union-attr]
    r = client.post("/login", data={"csrf_token": token, "username": "admin",
                                    "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_wrong_login_reveals_nothing(web: Web) -> None:
    """Unknown user and wrong password get the same answer; the password is never echoed."""
    client = web.client()
    token = CSRF_RE.search(client.get("/login").text).group(1)  # type: ignore[union-attr]
    r1 = client.post("/login", data={"csrf_token": token, "username": "ghost",
                                     "password": "secret-guess-1"})
    r2 = client.post("/login", data={"csrf_token": token, "username": "admin",
                                     "password": "secret-guess-2"})
    assert r1.status_code == r2.status_code == 401
    assert "wrong username or password" in r1.text and "wrong username or password" in r2.text
    assert "secret-guess" not in r1.text + r2.text


# --- headers, CSP, cookies -----------------------------------------------------------------------

def _check_headers(headers: object, html: bool) -> None:
    h = {k.lower(): v for k, v in headers.items()}  # type: ignore[attr-defined]
    csp = h["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["base-uri"] == "'none'"
    assert "unsafe" not in csp
    assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer" and "camera=()" in h["permissions-policy"]
    assert h["cross-origin-opener-policy"] == "same-origin"
    if html:
        assert h["cache-control"] == "no-store"


def test_security_headers_on_every_kind_of_response(web: Web) -> None:
    """Pages, fragments, API answers, errors, static files and redirects carry the headers."""
    client = web.client()
    for r, html in ((client.get("/login"), True), (client.get("/nope"), True),
                    (client.get("/api/copy-trading/status"), True),
                    (client.get("/follows", follow_redirects=False), True),
                    (client.get("/static/app.js"), False), (client.get("/healthz"), True)):
        _check_headers(r.headers, html)
    login(client, "admin")
    for path in PAGES:
        r = client.get(path)
        assert r.status_code == 200, path
        _check_headers(r.headers, True)
    assert "strict-transport-security" not in client.get("/login").headers


def test_hsts_behind_https(web: Web) -> None:
    """Served over https (directly or via a trusted proxy): Strict-Transport-Security is sent."""
    client = web.client(base_url="https://dashboard.example")
    assert "max-age=" in client.get("/login").headers["strict-transport-security"]


class _InlineFinder(HTMLParser):
    """Collects anything a strict CSP would block: inline scripts, style tags or attributes,
    event-handler attributes, javascript: URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"{tag} {name}=")
            if name == "style":
                self.problems.append(f"{tag} style=")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith(
                    "javascript:"):
                self.problems.append(f"{tag} {name}=javascript:")
        if tag == "style":
            self.problems.append("<style>")
        if tag == "script" and not a.get("src") and a.get("type") != "application/json":
            self.problems.append("inline <script>")
        if tag == "script" and (a.get("src") or "").startswith(("http:", "https:", "//")):
            self.problems.append("external script")


def test_pages_have_no_inline_script_or_style(web: Web) -> None:
    """Every page as admin and as a follower: nothing the CSP would have to allow inline."""
    for user in ("admin", "f1"):
        client = web.client()
        login(client, user)
        for path in ["/login", *PAGES]:
            r = client.get(path)
            if r.status_code == 403:
                continue
            finder = _InlineFinder()
            finder.feed(r.text)
            assert finder.problems == [], (user, path, finder.problems)


def test_session_cookie_flags(web: Web) -> None:
    """HttpOnly, SameSite=strict, Path=/, a lifetime; Secure when WEB_COOKIE_SECURE is true."""
    from dataclasses import replace

    from fastapi.testclient import TestClient

    from tests.support.webfixtures import NoLeaderboard
    from webapp.app import create_app

    cookie = web.client().get("/login").headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert "max-age=" in cookie and "secure" not in cookie.replace("samesite", "")
    secure = replace(web.settings, web_cookie_secure="true")
    app = create_app(secure, web.db.factory, prices=lambda t: None, leaderboard=NoLeaderboard(),
                     market_data=False)
    with TestClient(app, base_url="https://dashboard.example") as client:
        assert "; secure" in client.get("/login").headers["set-cookie"].lower()


def test_a_tampered_cookie_is_no_session(web: Web) -> None:
    """A session cookie changed by the client fails its signature: back to the login form."""
    client = web.client()
    login(client, "admin")
    value = client.cookies.get("pmct_session")
    assert value
    assert client.get("/follows", follow_redirects=False).status_code == 200
    fresh = web.client()
    tampered = value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB")
    r = fresh.get("/follows", headers={"Cookie": f"pmct_session={tampered}"},
                  follow_redirects=False)
    assert r.status_code == 303
    r = fresh.get("/follows", headers={"Cookie": f"pmct_session={value}"}, follow_redirects=False)
    assert r.status_code == 200  # the untouched cookie is a session (so the check above means it)


def test_a_password_change_ends_older_sessions(web: Web) -> None:
    """Sessions carry a stamp of the password's age: a changed password logs everyone out."""
    client = web.client()
    login(client, "f1")
    assert client.get("/follows", follow_redirects=False).status_code == 200
    with session_scope(web.db.factory) as s:
        user = s.scalars(select(WebUser).where(WebUser.username == USERNAMES["f1"])).one()
        user.password_changed_at = utcnow()
    assert client.get("/follows", follow_redirects=False).status_code == 303


# --- roles -------------------------------------------------------------------------------------

def test_follower_pages_are_confined_to_its_wallet(web: Web) -> None:
    """A follower user: operations 403; another follower's wallet 403 on every page; its own
    pages never show the other follower's wallet."""
    client = web.client()
    login(client, "f1")
    assert client.get("/operations").status_code == 403
    assert client.get("/operations/daemons").status_code == 403
    other = web.wallets["f2"]
    for path in ("/follows", "/configure", "/orders", "/orders/rows", "/history", "/performance"):
        assert client.get(f"{path}?wallet={other}").status_code == 403, path
        page = client.get(path)
        assert page.status_code == 200 and other not in page.text, path
    csrf = csrf_of(client)
    before = snapshot(web.db)
    r = client.post("/follows/disable", data={"csrf_token": csrf, "wallet": other,
                                              "target_trader": TRADER_A}, follow_redirects=False)
    assert r.status_code == 403 and snapshot(web.db) == before
    r = client.post("/operations/kill-switch", data={"csrf_token": csrf, "action": "on"},
                    follow_redirects=False)
    assert r.status_code == 403 and snapshot(web.db) == before


# --- secrets ------------------------------------------------------------------------------------

def test_no_secret_in_any_page_or_answer(web: Web, fernet_key: str) -> None:
    """A follower with an encrypted private key and CLOB credentials: no page or API answer, for
    an admin or a follower, holds the key, the credentials, their ciphertexts, a password, a
    password hash, an API token or the session key."""
    ring = KeyRing(fernet_key)
    creds = ApiCreds(api_key="11111111-2222-3333-4444-555555555555",
                     secret="c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=",
                     passphrase="pass-phrase-0123456789abcdef0123456789abcdef")
    with session_scope(web.db.factory) as s:
        f = s.scalars(select(Follower).where(Follower.funder_address == web.wallets["f1"])).one()
        f.encrypted_private_key = ring.encrypt(TEST_KEY)
        f.encrypted_api_creds = ring.encrypt_api_creds(creds)
        stored = [f.encrypted_private_key, f.encrypted_api_creds]
        hashes = list(s.scalars(select(WebUser.password_hash)))
    secrets = [TEST_KEY, TEST_KEY[2:], fernet_key, creds.secret, creds.passphrase, PASSWORD,
               web.settings.web_session_secret or "", *stored, *hashes, *web.tokens.values(),
               "$argon2"]
    bodies: list[tuple[str, str]] = []
    for user in ("admin", "f1"):
        client = web.client()
        login(client, user)
        for path in ["/login", *PAGES, "/api/copy-trading/status", "/api/copy-trading/history",
                     "/api/copy-trading/performance", "/api/openapi.json"]:
            r = client.get(path)
            bodies.append((f"{user} {path}", r.text))
        bodies.append((f"{user} cookies", str(dict(client.cookies))))
    for where, body in bodies:
        for secret in secrets:
            assert secret not in body, f"a secret leaked into {where}"
