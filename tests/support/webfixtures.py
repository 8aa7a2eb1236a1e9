"""Helpers for dashboard / HTTP API tests: an app on the test database, users, tokens, logins."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from infra.config import Settings
from infra.db import session_scope
from models import Base, Tier
from ops.users import add_user, create_api_token
from tests.support import factories as fx
from tests.support.dbfixtures import Database
from webapp.app import create_app
from webapp.market_data import LeaderboardView

PASSWORD = "correct horse battery staple"
TRADER_A = "0x0d6cf071dbddb6780f4b6912b49d683b8f234395"
TRADER_B = "0x7c3db723f1d4d8cb9c550095203b686cb11e5c6b"
USERNAMES = {"admin": "admin", "f1": "follower1", "f2": "follower2"}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class NoLeaderboard:
    """A leaderboard source with nobody on it (tests that do not look at the board)."""

    def get(self, *args: Any, **kwargs: Any) -> LeaderboardView:
        """An empty board."""
        return LeaderboardView(())


@dataclass
class Web:
    """A test database with two followers, an admin and two follower users, and their tokens."""

    db: Database
    settings: Settings
    make: Callable[..., TestClient]
    wallets: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, **kw: Any) -> TestClient:
        """A new client (its own cookie jar)."""
        return self.make(**kw)

    def bearer(self, user: str) -> dict[str, str]:
        """Authorization header of a user's API token."""
        return {"Authorization": f"Bearer {self.tokens[user]}"}


def counts(db: Database) -> dict[str, int]:
    """Row count of every table (to prove a refused request wrote nothing)."""
    with db.engine.connect() as conn:
        return {t.name: conn.execute(text(f'SELECT COUNT(*) FROM "{t.name}"')).scalar_one()
                for t in Base.metadata.sorted_tables}


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables a write could touch (follows, traders, flags, followers)."""
    out = {}
    with db.engine.connect() as conn:
        for name in ("follows", "traders", "system_flags", "followers", "web_users", "api_tokens"):
            out[name] = [tuple(r) for r in conn.execute(text(f'SELECT * FROM "{name}" ORDER BY 1'))]
    return out


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Log in through the form (`username` may be a USERNAMES key); returns the CSRF token."""
    username = USERNAMES.get(username, username)
    page = client.get("/login")
    token = CSRF_RE.search(page.text)
    assert token is not None, page.text[:500]
    r = client.post("/login", data={"csrf_token": token.group(1), "username": username,
                                    "password": password}, follow_redirects=False)
    assert r.status_code == 303, (r.status_code, r.text[:500])
    return csrf_of(client)


def csrf_of(client: TestClient, path: str = "/follows") -> str:
    """The CSRF token of the logged-in session (read from a page's form)."""
    page = client.get(path)
    found = CSRF_RE.search(page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


def seed_web(db: Database, *, tier: Tier = Tier.ELITE) -> dict[str, Any]:
    """Two followers (1 and 2) with one follow each, and users admin / f1 / f2 with tokens."""
    out: dict[str, Any] = {"wallets": {}, "tokens": {}}
    with session_scope(db.factory) as s:
        t = fx.trader(s, 1)
        t.wallet = TRADER_A
        for n in (1, 2):
            f = fx.follower(s, n)
            f.tier = tier
            fx.follow(s, f, t, pct="5", max_trade="20")
            out["wallets"][f"f{n}"] = f.funder_address
        add_user(s, username="admin", role="admin", password=PASSWORD)
        for key in ("f1", "f2"):
            add_user(s, username=USERNAMES[key], role="follower", password=PASSWORD,
                     wallet=out["wallets"][key])
        for key in ("admin", "f1", "f2"):
            out["tokens"][key] = create_api_token(s, USERNAMES[key])
    return out


@pytest.fixture
def web(database: Database) -> Iterator[Web]:
    """The app on the test database (SQLite and PostgreSQL) with seeded users; no network."""
    settings = Settings(database_url=database.url, web_session_secret="x" * 40)
    seeded = seed_web(database)
    clients: list[TestClient] = []

    def make(prices: Any = None, leaderboard: Any = None, **kw: Any) -> TestClient:
        app = create_app(settings, database.factory, prices=prices or (lambda token: None),
                         leaderboard=leaderboard or NoLeaderboard(), market_data=False)
        client = TestClient(app, **kw)
        clients.append(client)
        return client

    yield Web(database, settings, make, seeded["wallets"], seeded["tokens"])
    for c in clients:
        c.close()


ZERO = Decimal(0)
