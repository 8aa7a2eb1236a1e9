"""The HTTP API: 401 without credentials, 403 on another follower's wallet, 400 with nothing
written, and the same enable/disable/status/history/performance logic as `admin` (SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import select

from copying import killswitch as ks
from infra.db import session_scope, utcnow
from models import ApiToken, CopyStatus, Follow, FollowerFill, Trader
from tests.support import factories as fx
from tests.support.webfixtures import (
    TRADER_A,
    TRADER_B,
    Web,
    counts,
    login,
    snapshot,
)

ROUTES = [("POST", "/api/copy-trading/enable"), ("POST", "/api/copy-trading/disable"),
          ("GET", "/api/copy-trading/status"), ("GET", "/api/copy-trading/history"),
          ("GET", "/api/copy-trading/performance"), ("GET", "/api/leaderboard"),
          ("GET", "/api/openapi.json"), ("GET", "/api/docs")]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_is_401_without_credentials(web: Web, method: str, path: str) -> None:
    """No token and no session: 401 with a JSON error and a WWW-Authenticate challenge."""
    client = web.client()
    before = counts(web.db)
    r = client.request(method, path, json={"target_trader": TRADER_B, "copy_percentage": 1,
                                           "max_trade": 5} if method == "POST" else None)
    assert r.status_code == 401, r.text
    assert r.json()["error"] and r.headers["www-authenticate"] == "Bearer"
    assert counts(web.db) == before


@pytest.mark.parametrize("header", ["Bearer pmct_notarealtoken", "Bearer ", "Basic YWRtaW46eA==",
                                    "Token abc"])
def test_a_wrong_or_malformed_token_is_401(web: Web, header: str) -> None:
    """Unknown token, empty bearer, other schemes: 401, nothing written."""
    before = snapshot(web.db)
    r = web.client().post("/api/copy-trading/enable", headers={"Authorization": header},
                          json={"target_trader": TRADER_B, "copy_percentage": 1, "max_trade": 5})
    assert r.status_code == 401, r.text
    assert snapshot(web.db) == before


def test_a_revoked_token_is_401(web: Web) -> None:
    """A token whose row is revoked stops working at once."""
    client = web.client()
    assert client.get("/api/copy-trading/status", headers=web.bearer("f1")).status_code == 200
    with session_scope(web.db.factory) as s:
        for row in s.scalars(select(ApiToken)):
            row.revoked_at = utcnow()
    assert client.get("/api/copy-trading/status", headers=web.bearer("f1")).status_code == 401


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/api/copy-trading/enable", {"target_trader": TRADER_B, "copy_percentage": 1,
                                          "max_trade": 5, "wallet": "f2"}),
    ("POST", "/api/copy-trading/disable", {"target_trader": TRADER_A, "wallet": "f2"}),
    ("GET", "/api/copy-trading/status?wallet=f2", None),
    ("GET", "/api/copy-trading/history?wallet=f2", None),
    ("GET", "/api/copy-trading/performance?wallet=f2", None),
    ("GET", "/api/copy-trading/status?wallet=0x00000000000000000000000000000000000000ee", None),
])
def test_another_followers_wallet_is_403_and_writes_nothing(web: Web, method: str, path: str,
                                                            body: dict[str, object] | None) -> None:
    """Follower user f1 naming f2's wallet (or any wallet not its own): 403, nothing written."""
    path = path.replace("wallet=f2", f"wallet={web.wallets['f2']}")
    if body is not None and body.get("wallet") == "f2":
        body = {**body, "wallet": web.wallets["f2"]}
    before = snapshot(web.db)
    r = web.client().request(method, path, json=body, headers=web.bearer("f1"))
    assert r.status_code == 403, r.text
    assert "another follower" in r.json()["error"]
    assert snapshot(web.db) == before


def test_a_follower_user_acts_on_its_own_wallet_without_naming_it(web: Web) -> None:
    """f1 enables a second trader with no `wallet`: it lands on f1, never on f2."""
    r = web.client().post("/api/copy-trading/enable", headers=web.bearer("f1"),
                          json={"target_trader": TRADER_B, "copy_percentage": 2.5,
                                "max_trade": 10})
    assert r.status_code == 200, r.text
    follow = r.json()["follow"]
    assert follow["follower"] == web.wallets["f1"] and follow["trader"] == TRADER_B
    assert follow["copy_pct"] == "2.5" and follow["max_trade_usd"] == "10"
    status = web.client().get("/api/copy-trading/status", headers=web.bearer("f2")).json()
    assert [f["trader"] for f in status["follows"]] == [TRADER_A]
    assert "daemons" not in status and "kill_switch" not in status


BAD_ENABLE = [
    ("not json", b"{target_trader:", "not valid JSON"),
    ("a list", b"[1, 2]", "JSON object"),
    ("missing trader", {"copy_percentage": 1, "max_trade": 5}, "target_trader is required"),
    ("missing pct", {"target_trader": TRADER_B, "max_trade": 5}, "copy_percentage is required"),
    ("malformed trader", {"target_trader": "0x123", "copy_percentage": 1, "max_trade": 5},
     "target_trader"),
    ("zero address", {"target_trader": "0x" + "0" * 40, "copy_percentage": 1, "max_trade": 5},
     "zero address"),
    ("pct zero", {"target_trader": TRADER_B, "copy_percentage": 0, "max_trade": 5}, "(0, 100]"),
    ("pct over 100", {"target_trader": TRADER_B, "copy_percentage": 101, "max_trade": 5},
     "(0, 100]"),
    ("pct over tier", {"target_trader": TRADER_B, "copy_percentage": 25, "max_trade": 5},
     "tier elite allows"),
    ("pct text", {"target_trader": TRADER_B, "copy_percentage": "lots", "max_trade": 5},
     "must be a number"),
    ("pct bool", {"target_trader": TRADER_B, "copy_percentage": True, "max_trade": 5},
     "must be a number"),
    ("pct NaN", {"target_trader": TRADER_B, "copy_percentage": "NaN", "max_trade": 5}, "finite"),
    ("max trade negative", {"target_trader": TRADER_B, "copy_percentage": 1, "max_trade": -1},
     "max_trade"),
    ("unknown field", {"target_trader": TRADER_B, "copy_percentage": 1, "max_trade": 5,
                       "leverage": 10}, "unknown field"),
    ("own wallet", {"target_trader": "WALLET_F1", "copy_percentage": 1, "max_trade": 5},
     "its own wallet"),
    ("trader not a string", {"target_trader": 12, "copy_percentage": 1, "max_trade": 5},
     "must be a string"),
]


@pytest.mark.parametrize(("case", "body", "message"), BAD_ENABLE, ids=[c for c, _, _ in BAD_ENABLE])
def test_bad_enable_bodies_are_400_and_write_nothing(web: Web, case: str, body: object,
                                                     message: str) -> None:
    """Each bad body: 400 `{"error": ...}` naming the problem in one line; no row changes."""
    if isinstance(body, dict) and body.get("target_trader") == "WALLET_F1":
        body = {**body, "target_trader": web.wallets["f1"]}
    before = snapshot(web.db)
    client = web.client()
    if isinstance(body, bytes):
        r = client.post("/api/copy-trading/enable", content=body, headers=web.bearer("f1"))
    else:
        r = client.post("/api/copy-trading/enable", json=body, headers=web.bearer("f1"))
    assert r.status_code == 400, (case, r.text)
    error = r.json()["error"]
    assert message in error and "\n" not in error, (case, error)
    assert snapshot(web.db) == before, case


def test_admin_must_name_a_known_wallet(web: Web) -> None:
    """An admin without `wallet`, or with an unknown one: 400, nothing written."""
    before = snapshot(web.db)
    client = web.client()
    body = {"target_trader": TRADER_B, "copy_percentage": 1, "max_trade": 5}
    r = client.post("/api/copy-trading/enable", json=body, headers=web.bearer("admin"))
    assert r.status_code == 400 and "wallet is required" in r.json()["error"]
    r = client.post("/api/copy-trading/enable", headers=web.bearer("admin"),
                    json={**body, "wallet": "0x" + "e" * 40})
    assert r.status_code == 400 and "no follower" in r.json()["error"]
    assert snapshot(web.db) == before


def test_pro_tier_allows_one_trader_only(web: Web) -> None:
    """A PRO follower with one follow cannot enable a second trader (the CLI's tier check)."""
    with session_scope(web.db.factory) as s:
        from models import Follower, Tier

        s.scalars(select(Follower).where(Follower.funder_address == web.wallets["f1"])).one() \
            .tier = Tier.PRO
    before = snapshot(web.db)
    r = web.client().post("/api/copy-trading/enable", headers=web.bearer("f1"),
                          json={"target_trader": TRADER_B, "copy_percentage": 1, "max_trade": 5})
    assert r.status_code == 400 and "allows 1 followed trader" in r.json()["error"]
    assert snapshot(web.db) == before


def test_disable_then_enable_round_trip(web: Web) -> None:
    """disable = the follow's kill switch (copying refused, orders to cancel); enable with new
    settings lifts it and updates the follow in place."""
    client = web.client()
    r = client.post("/api/copy-trading/disable", headers=web.bearer("f1"),
                    json={"target_trader": TRADER_A})
    assert r.status_code == 200 and r.json()["follow"]["status"] == "disabled", r.text
    with session_scope(web.db.factory) as s:
        fo = s.scalars(select(Follow).join(Trader).where(Trader.wallet == TRADER_A)
                       .order_by(Follow.id)).first()
        assert fo is not None
        state = ks.KillSwitchState.load(s)
        assert state.copying_allowed(fo.follower, fo) == (False, "follow_disabled")
        assert state.must_cancel_open_orders(fo.follower, fo)
        follow_id = fo.id
    r = client.post("/api/copy-trading/disable", headers=web.bearer("f1"),
                    json={"target_trader": TRADER_B})
    assert r.status_code == 400 and "does not follow" in r.json()["error"]
    r = client.post("/api/copy-trading/enable", headers=web.bearer("f1"),
                    json={"target_trader": TRADER_A.upper().replace("0X", "0x"),
                          "copy_percentage": "7.25", "max_trade": 12})
    assert r.status_code == 200, r.text
    assert r.json()["follow"]["id"] == follow_id and r.json()["follow"]["status"] == "active"
    with session_scope(web.db.factory) as s:
        fo = s.get(Follow, follow_id)
        assert fo is not None and fo.copy_pct == D("7.25") and fo.max_usd_per_trade == D(12)
        assert ks.KillSwitchState.load(s).copying_allowed(fo.follower, fo) == (True, None)


def test_status_history_and_performance_show_the_clis_numbers(web: Web) -> None:
    """A filled copy with a leader price of 0.58 and ours 0.60: slippage 0.02, realized P&L from
    the ledger, totals; performance has the 'copying 0x… made you' attribution."""
    now = utcnow()
    with session_scope(web.db.factory) as s:
        fo = s.scalars(select(Follow).order_by(Follow.id)).first()
        assert fo is not None
        buy = fx.copy_order(s, fx.trader_fill(s, fo.trader, key="b"), fo, status=CopyStatus.FILLED,
                            intended_size=D(10), intended_price=D("0.60"), filled_size=D(10),
                            avg_fill_price=D("0.60"), queued_at=now - timedelta(hours=2))
        sell = fx.copy_order(s, fx.trader_fill(s, fo.trader, key="s", side="SELL",
                                               price=D("0.70")), fo, side="SELL",
                             trader_price=D("0.70"), status=CopyStatus.FILLED,
                             intended_size=D(10), filled_size=D(10), avg_fill_price=D("0.69"),
                             queued_at=now - timedelta(hours=1))
        fx.copy_order(s, fx.trader_fill(s, fo.trader, key="q"), fo, queued_at=now)
        for co, side, price, pnl, at in ((buy, "BUY", "0.60", "0", 2), (sell, "SELL", "0.69", "0.9", 1)):
            s.add(FollowerFill(copy_order_id=co.id, follower_id=fo.follower_id, follow_id=fo.id,
                               trade_id=f"t{co.id}", order_hash=f"0x{co.id:064x}", token_id="123",
                               side=side, size=D(10), price=D(price), fee=D(0),
                               trade_status="CONFIRMED", realized_pnl=D(pnl),
                               filled_at=now - timedelta(hours=at)))
        wallet = fo.follower.funder_address
    user = "f1" if wallet == web.wallets["f1"] else "f2"
    client = web.client()
    status = client.get("/api/copy-trading/status", headers=web.bearer(user)).json()
    assert [o["status"] for o in status["pending_orders"]] == ["QUEUED"]
    assert status["pending_orders"][0]["stage"] in ("trader", "toward_mid", "mid", "best_opposite",
                                                   "market")
    assert status["wallet"] == wallet and status["tier"]["tier"] == "elite"
    hist = client.get("/api/copy-trading/history?status=filled", headers=web.bearer(user)).json()
    rows = {r["side"]: r for r in hist["rows"]}
    assert rows["BUY"]["slippage"] == "0.02" and rows["BUY"]["trader_price"] == "0.58"
    assert rows["SELL"]["slippage"] == "0.01" and rows["SELL"]["realized_pnl"] == "0.9"
    assert hist["totals"] == {"copies": 2, "filled_copies": 2, "volume_usd": "12.9",
                              "avg_slippage": "0.015", "realized_pnl_usd": "0.9"}
    assert client.get(f"/api/copy-trading/history?trader={TRADER_B}",
                      headers=web.bearer(user)).status_code == 400
    assert client.get("/api/copy-trading/history?start=2024-02-30",
                      headers=web.bearer(user)).status_code == 400
    perf = client.get("/api/copy-trading/performance", headers=web.bearer(user)).json()["rows"]
    scopes = {r["scope"]: r for r in perf}
    trader = scopes[f"trader:{TRADER_A}"]
    assert trader["realized_pnl_usd"] == "0.9" and trader["win_rate"] == "1"
    assert trader["attribution"].startswith(f"copying {TRADER_A} made you")
    bad = client.get("/api/copy-trading/performance?start=2025-02-01&end=2025-01-01",
                     headers=web.bearer(user))
    assert bad.status_code == 400 and "before" in bad.json()["error"]


def test_cookie_writes_need_the_csrf_header(web: Web) -> None:
    """A browser session may call the API; its writes need X-CSRF-Token, reads do not."""
    client = web.client()
    csrf = login(client, "f1")
    assert client.get("/api/copy-trading/status").status_code == 200
    before = snapshot(web.db)
    body = {"target_trader": TRADER_B, "copy_percentage": 1, "max_trade": 5}
    r = client.post("/api/copy-trading/enable", json=body)
    assert r.status_code == 403 and "CSRF" in r.json()["error"]
    r = client.post("/api/copy-trading/enable", json=body, headers={"X-CSRF-Token": "x" * 43})
    assert r.status_code == 403
    assert snapshot(web.db) == before
    r = client.post("/api/copy-trading/enable", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text


def test_openapi_document_and_docs_page(web: Web) -> None:
    """The OpenAPI document lists the contract's five routes with their bodies; /api/docs renders."""
    client = web.client()
    spec = client.get("/api/openapi.json", headers=web.bearer("f1")).json()
    for path in ("/api/copy-trading/enable", "/api/copy-trading/disable",
                 "/api/copy-trading/status", "/api/copy-trading/history",
                 "/api/copy-trading/performance"):
        assert path in spec["paths"], path
    body = spec["paths"]["/api/copy-trading/enable"]["post"]["requestBody"]
    assert set(body["content"]["application/json"]["schema"]["required"]) == {
        "target_trader", "copy_percentage", "max_trade"}
    assert "/login" not in spec["paths"]
    docs = client.get("/api/docs", headers=web.bearer("f1"))
    assert docs.status_code == 200 and "copy_percentage" in docs.text


def test_leaderboard_route_validates_and_serves_the_source(web: Web) -> None:
    """/api/leaderboard: bad period 400; rows from the configured source."""
    from webapp.market_data import LeaderboardView
    from wire.records import LeaderboardEntry

    class Board:
        def get(self, *args: object) -> LeaderboardView:
            return LeaderboardView((LeaderboardEntry(1, TRADER_B, "Car", "", True, D("123.5"),
                                                     D(1000), "", {}),))

    client = web.client(leaderboard=Board())
    r = client.get("/api/leaderboard?time_period=year", headers=web.bearer("f1"))
    assert r.status_code == 400 and "time_period" in r.json()["error"]
    rows = client.get("/api/leaderboard", headers=web.bearer("f1")).json()["rows"]
    assert rows == [{"rank": 1, "wallet": TRADER_B, "user_name": "Car", "pnl": "123.5",
                     "volume": "1000", "verified": True}]
