"""Admin operations: auth-follower (on the simulator), stats/status/history/performance views,
kill switch, tiers, progress bars, and ≥ 30 invalid invocations that exit 2 writing nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import httpx
import pytest
import respx
from click.testing import Result
from sqlalchemy import select

from crypto import KeyRing
from infra.db import utcnow
from models import (
    Base,
    CopyOrderEvent,
    CopyStatus,
    DaemonHeartbeat,
    Follow,
    Follower,
    FollowerStatus,
    FollowStatus,
    ShardLease,
    SystemFlag,
    Tier,
)
from ops import cli as admin_cli
from sim import Simulator
from tests.ops.test_admin import TRADER, TRADER_2, add_alice, counts, env, run  # noqa: F401
from tests.ops.test_reports import seed_fills
from tests.support import factories as fx
from tests.support.dbfixtures import Database
from tests.support.keys import TEST_ADDRESS, TEST_KEY
from tests.support.simfixtures import simulator, simulator_factory  # noqa: F401 - fixtures

TRADER_3 = "0x00000000000000000000000000000000000000bb"


def follow(wallet: str, trader: str, pct: str = "5") -> Result:
    """add-follow through the CLI."""
    return run("add-follow", "--wallet", wallet, "--follow", trader, "--copy-pct", pct,
               "--max-trade", "20")


# --- auth-follower --------------------------------------------------------------------------

def test_auth_follower_stores_encrypted_creds_and_prints_only_the_key_id(
        env: Database, simulator: Simulator, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        fernet_key: str) -> None:
    """L1 create-or-derive on the simulator; creds stored encrypted; secret never printed; re-run derives."""
    monkeypatch.setenv("POLYMARKET_CLOB_API_URL", simulator.clob_url)
    assert add_alice().exit_code == 0
    r = run("auth-follower", "--wallet", TEST_ADDRESS.lower())
    assert r.exit_code == 0, r.output
    expected = simulator.create_api_key(TEST_ADDRESS)  # same nonce → the same key
    assert expected["apiKey"] in r.stdout
    for secret in (expected["secret"], expected["passphrase"], TEST_KEY[2:]):
        assert secret not in r.output
    with env.session() as s:
        f = s.scalar(select(Follower))
        assert f is not None and f.api_key_id == expected["apiKey"]
        assert f.encrypted_api_creds is not None and expected["secret"] not in f.encrypted_api_creds
        creds = KeyRing(fernet_key).decrypt_api_creds(f.encrypted_api_creds)
    assert (creds.api_key, creds.secret, creds.passphrase) == (
        expected["apiKey"], expected["secret"], expected["passphrase"])
    again = run("auth-follower", "--wallet", TEST_ADDRESS)
    assert again.exit_code == 0 and expected["apiKey"] in again.stdout
    assert json.loads(run("list-followers", "--json").stdout)[0]["l2_credentials"] is True


def test_auth_follower_refused_by_the_clob_is_exit_1_and_writes_nothing(
        env: Database, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """A CLOB that refuses both create and derive: exit 1, one line, no credentials stored."""
    monkeypatch.setenv("POLYMARKET_CLOB_API_URL", "http://clob.test")
    add_alice()
    before = counts(env)
    with respx.mock() as mock:
        mock.post("http://clob.test/auth/api-key").mock(
            return_value=httpx.Response(401, json={"error": "Invalid L1 Request headers"}))
        mock.get("http://clob.test/auth/derive-api-key").mock(
            return_value=httpx.Response(401, json={"error": "Invalid L1 Request headers"}))
        r = run("auth-follower", "--wallet", TEST_ADDRESS)
    assert r.exit_code == 1 and len(r.stderr.strip().splitlines()) == 1, r.output
    assert "Invalid L1" in r.stderr
    assert counts(env) == before
    with env.session() as s:
        assert s.scalar(select(Follower.encrypted_api_creds)) is None


# --- stats / status / history / performance --------------------------------------------------

def test_stats_counts_and_money(env: Database) -> None:  # noqa: F811
    """stats: followers, follows by status, fills, copies by status, volume/fees/P&L per mode."""
    seed_fills(env)
    data = json.loads(run("stats", "--json").stdout)
    assert data["followers"] == 1 and data["follows"] == {"active": 2}
    assert data["trader_fills"] == 4 and data["copy_orders"] == {"FILLED": 4}
    assert data["volume_usd"] == {"live": "101", "paper": "3"}
    assert data["fees_usd"] == {"live": "0.74", "paper": "0"}
    assert data["follower_fills"] == {"live": 3, "paper": 1}
    assert data["kill_switch"] == "off"
    text = run("stats").stdout
    assert "volume_usd:" in text and "live: 101" in text


def test_status_shows_orders_heartbeats_leases_and_kill_switch(env: Database) -> None:  # noqa: F811
    """status: open order with age and initial vs current price, pending order, stale daemon, lease."""
    now = utcnow()
    with env.session() as s:
        f = fx.follower(s, 1)
        t = fx.trader(s, 1)
        fo = fx.follow(s, f, t)
        live = fx.copy_order(s, fx.trader_fill(s, t, key="k1"), fo, status=CopyStatus.LIVE,
                             intended_price=D("0.6"), intended_size=D("10"),
                             queued_at=now - timedelta(hours=7))
        s.add(CopyOrderEvent(copy_order_id=live.id, event="sign", from_status="CLAIMED",
                             to_status="SIGNED", detail={"price": "0.58"}))
        fx.copy_order(s, fx.trader_fill(s, t, key="k2"), fo, queued_at=now - timedelta(seconds=30))
        s.add(DaemonHeartbeat(name="watcher-0/2", pid=1, host="h", started_at=now - timedelta(days=1),
                              last_cycle_at=now - timedelta(hours=1), last_cycle_ms=50))
        s.add(DaemonHeartbeat(name="executor", pid=2, host="h", started_at=now,
                              last_cycle_at=now, last_cycle_ms=20))
        s.add(ShardLease(shard="0/2", owner="h:1", expires_at=now - timedelta(minutes=1)))
        s.commit()
    assert run("disable", "--all", "--reason", "maintenance", "--wait", "0").exit_code == 0
    data = json.loads(run("status", "--json").stdout)
    assert data["kill_switch"]["global"] == "on" and data["kill_switch"]["reason"] == "maintenance"
    (o,) = data["open_orders"]
    assert (o["status"], o["age"], o["trader_price"], o["initial_price"], o["current_price"]) == (
        "LIVE", "7h00m", "0.58", "0.58", "0.6")
    assert [p["status"] for p in data["pending_orders"]] == ["QUEUED"]
    assert {d["name"]: d["stale"] for d in data["daemons"]} == {"executor": False, "watcher-0/2": True}
    assert data["shard_leases"][0]["expired"] is True
    assert data["traders"][0]["active_follows"] == 1
    text = run("status").stdout
    assert "kill switch: ON" in text and "maintenance" in text and "7h00m" in text
    assert data["fill_sources"][0]["source"] == "data_api"  # the chain source never ran
    assert data["fill_sources"][0]["last_error"] == "chain source never ran"


def test_status_shows_the_chain_source_health(env: Database) -> None:  # noqa: F811
    """A fresh healthy cursor: Data API in backfill; a stale one with an error: full speed."""
    from models import ChainCursor

    now = utcnow()
    with env.session() as s:
        s.add(ChainCursor(shard="0/2", block_number=100, block_hash="0x" + "a" * 64, head_number=103,
                          head_seen_at=now, mode="ws", healthy=True, updated_at=now))
        s.add(ChainCursor(shard="1/2", block_number=90, block_hash="0x" + "b" * 64, head_number=95,
                          head_seen_at=now - timedelta(minutes=10), mode="poll", healthy=False,
                          last_error="RpcError: rate_limited HTTP 429", updated_at=now))
        s.commit()
    data = json.loads(run("status", "--json").stdout)
    ok, bad = data["fill_sources"]
    assert (ok["healthy"], ok["mode"], ok["lag_blocks"], ok["data_api"]) == (True, "ws", 3, "backfill (slow)")
    assert (bad["healthy"], bad["data_api"]) == (False, "full speed") and "429" in bad["last_error"]
    text = run("status").stdout
    assert "fill sources:" in text and "backfill (slow)" in text and "full speed" in text


def test_history_filters_and_skip_reasons(env: Database) -> None:  # noqa: F811
    """history filters by trader, status, market words, dates; shows skip reasons."""
    w = seed_fills(env)
    with env.session() as s:
        f = s.scalar(select(Follower))
        fo = s.scalar(select(Follow).order_by(Follow.id))
        assert f is not None and fo is not None
        tf = fx.trader_fill(s, fo.trader, key="skip1", title="Lakers win?")
        fx.copy_order(s, tf, fo, status=CopyStatus.SKIPPED, reason="below_min_size",
                      reason_detail="0.4 shares < 5", queued_at=datetime(2024, 3, 1, tzinfo=UTC))
        s.commit()
    rows = json.loads(run("history", "--json", "--status", "skipped").stdout)
    assert [(r["reason"], r["reason_detail"]) for r in rows] == [("below_min_size", "0.4 shares < 5")]
    assert len(json.loads(run("history", "--json", "--trader", w["a"]).stdout)) == 4
    assert len(json.loads(run("history", "--json", "--market", "lakers").stdout)) == 1
    assert len(json.loads(run("history", "--json", "--market", "0x" + "a" * 64).stdout)) == 3
    assert len(json.loads(run("history", "--json", "--start", "2024-03-01").stdout)) == 1
    assert len(json.loads(run("history", "--json", "--start", "2024-01-03", "--end", "2024-01-04",
                              "--status", "FILLED", "--status", "skipped").stdout)) == 2
    assert len(json.loads(run("history", "--json", "--limit", "2").stdout)) == 2
    assert "below_min_size" in run("history", "--wallet", w["follower"]).stdout


def test_performance_attribution_without_network(env: Database) -> None:  # noqa: F811
    """performance --no-prices: one row per trader and an 'all' row; attribution sentence printed."""
    w = seed_fills(env)
    rows = json.loads(run("performance", "--json", "--no-prices").stdout)
    by_scope = {r["scope"]: r for r in rows}
    assert by_scope["all"]["realized_pnl_usd"] == "0.26"
    assert by_scope[f"trader:{w['a']}"]["win_rate"] == "0.5"
    assert by_scope[f"trader:{w['b']}"]["unrealized_pnl_usd"] == "n/a"
    text = run("performance", "--no-prices", "--wallet", w["follower"]).stdout
    assert f"copying {w['a']} made you +$0.26" in text


# --- kill switch ----------------------------------------------------------------------------

def test_disable_and_enable_each_scope(env: Database) -> None:  # noqa: F811
    """disable/enable --all, a follower, one follow; resume cannot lift a kill-switch disable."""
    from copying import killswitch as ks

    add_alice()
    assert follow(TEST_ADDRESS, TRADER).exit_code == 0
    assert run("disable", "--wallet", TEST_ADDRESS, "--follow", TRADER, "--reason", "odd").exit_code == 0
    with env.session() as s:
        f, fo = s.scalar(select(Follower)), s.scalar(select(Follow))
        assert f is not None and fo is not None and fo.status == FollowStatus.PAUSED
        assert ks.copying_allowed(s, f, fo) == (False, "follow_disabled")
    assert run("resume", "--wallet", TEST_ADDRESS, "--follow", TRADER).exit_code == 0
    with env.session() as s:
        f, fo = s.scalar(select(Follower)), s.scalar(select(Follow))
        assert f is not None and fo is not None
        assert ks.copying_allowed(s, f, fo) == (False, "follow_disabled")
    assert "enabled" in run("enable", "--wallet", TEST_ADDRESS, "--follow", TRADER).stdout
    assert run("disable", "--wallet", TEST_ADDRESS).exit_code == 0
    with env.session() as s:
        f = s.scalar(select(Follower))
        assert f is not None and f.status == FollowerStatus.DISABLED
        fo = s.scalar(select(Follow))
        assert fo is not None
        assert ks.copying_allowed(s, f, fo) == (False, "follower_disabled")
    assert run("enable", "--wallet", TEST_ADDRESS).exit_code == 0
    assert run("disable", "--all").exit_code == 0
    with env.session() as s:
        assert ks.is_globally_disabled(s)
        assert s.get(SystemFlag, "kill_switch").value == "on"  # type: ignore[union-attr]
    assert "OFF" in run("enable", "--all").stdout
    assert "already off" in run("enable", "--all").stdout
    with env.session() as s:
        f, fo = s.scalar(select(Follower)), s.scalar(select(Follow))
        assert f is not None and fo is not None
        assert ks.copying_allowed(s, f, fo) == (True, None)
        assert not ks.KillSwitchState.load(s).must_cancel_open_orders(f, fo)


def test_copying_allowed_order_of_checks(database: Database) -> None:
    """Global beats follower beats follow beats tier; paused only stops copies, disable also cancels."""
    from copying import killswitch as ks

    with database.session() as s:
        f = fx.follower(s, 1)
        fo = fx.follow(s, f, fx.trader(s, 1), pct="15")
        state = ks.KillSwitchState.load(s)
        assert state.copying_allowed(f, fo) == (False, "tier_copy_pct_limit")  # PRO allows 10 %
        f.tier = Tier.ELITE
        assert state.copying_allowed(f, fo) == (True, None)
        fo.status = FollowStatus.PAUSED
        assert state.copying_allowed(f, fo) == (False, "follow_paused")
        assert not state.must_cancel_open_orders(f, fo)
        f.status = FollowerStatus.PAUSED
        assert state.copying_allowed(f, fo) == (False, "follower_paused")
        ks.disable_follower(s, f, "fraud check")
        assert ks.KillSwitchState.load(s).must_cancel_open_orders(f)
        ks.disable_all(s)
        s.flush()
        loaded = ks.KillSwitchState.load(s)
        assert loaded.copying_allowed(f, fo) == (False, "kill_switch")
        assert loaded.follower_reasons == {f.id: "fraud check"}
        s.rollback()


# --- tiers ----------------------------------------------------------------------------------

def test_add_follow_enforces_tiers_and_set_tier_refuses_violating_downgrades(env: Database) -> None:  # noqa: F811
    """PRO: 1 trader ≤ 10 %; ELITE: many ≤ 20 %; FREE: none; a violating downgrade is refused."""
    add_alice()
    assert follow(TEST_ADDRESS, TRADER, "10").exit_code == 0
    r = follow(TEST_ADDRESS, TRADER_2, "5")
    assert r.exit_code == 2 and "allows 1 followed trader" in r.stderr
    assert run("set-tier", "--wallet", TEST_ADDRESS, "--tier", "elite").exit_code == 0
    assert follow(TEST_ADDRESS, TRADER_2, "20").exit_code == 0
    r = follow(TEST_ADDRESS, TRADER_3, "20.01")
    assert r.exit_code == 2 and "up to 20" in r.stderr
    r = run("set-tier", "--wallet", TEST_ADDRESS, "--tier", "pro")
    assert r.exit_code == 2 and "2 follows" in r.stderr and "copies 20%" in r.stderr
    with env.session() as s:
        assert s.scalar(select(Follower.tier)) == Tier.ELITE
    assert run("set-tier", "--wallet", TEST_ADDRESS, "--tier", "whale").exit_code == 0
    assert follow(TEST_ADDRESS, TRADER_3, "100").exit_code == 0
    for t in (TRADER, TRADER_2, TRADER_3):
        run("remove-follow", "--wallet", TEST_ADDRESS, "--follow", t)
    assert run("set-tier", "--wallet", TEST_ADDRESS, "--tier", "free").exit_code == 0
    r = follow(TEST_ADDRESS, TRADER, "1")
    assert r.exit_code == 2 and "does not include automatic copying" in r.stderr


# --- progress -------------------------------------------------------------------------------

def test_progress_bar_only_on_a_terminal(env: Database, fernet_key: str,  # noqa: F811
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """rotate-keys draws a progress bar on stderr only when stderr is a TTY."""
    from cryptography.fernet import Fernet

    add_alice()
    monkeypatch.setenv("ENCRYPTION_KEY", f"{Fernet.generate_key().decode()},{fernet_key}")
    r = run("rotate-keys")
    assert r.exit_code == 0 and "re-encrypting" not in r.stderr
    monkeypatch.setattr(admin_cli, "_stderr_is_tty", lambda: True)
    r = run("rotate-keys")
    assert r.exit_code == 0 and "re-encrypting" in r.stderr and "rotated 0" in r.stdout


# --- invalid invocations --------------------------------------------------------------------

ZERO1 = "0x" + "0" * 39 + "1"
INVALID_OPS = [
    ("auth unknown wallet", ["auth-follower", "--wallet", ZERO1]),
    ("auth malformed wallet", ["auth-follower", "--wallet", "0xabc"]),
    ("auth missing wallet", ["auth-follower"]),
    ("auth negative nonce", ["auth-follower", "--wallet", TEST_ADDRESS, "--nonce", "-1"]),
    ("history bad status", ["history", "--status", "done"]),
    ("history bad start", ["history", "--start", "2024-13-01"]),
    ("history end before start", ["history", "--start", "2024-02-01", "--end", "2024-01-01"]),
    ("history unknown trader", ["history", "--trader", TRADER_2]),
    ("history malformed trader", ["history", "--trader", "bob"]),
    ("history unknown wallet", ["history", "--wallet", ZERO1]),
    ("history limit 0", ["history", "--limit", "0"]),
    ("history empty market", ["history", "--market", " "]),
    ("status extra arg", ["status", "now"]),
    ("stats bad option", ["stats", "--csv"]),
    ("disable nothing", ["disable"]),
    ("disable all and wallet", ["disable", "--all", "--wallet", TEST_ADDRESS]),
    ("disable follow without wallet", ["disable", "--follow", TRADER]),
    ("disable unknown follow", ["disable", "--wallet", TEST_ADDRESS, "--follow", TRADER_2]),
    ("disable unknown wallet", ["disable", "--wallet", ZERO1]),
    ("disable empty reason", ["disable", "--all", "--reason", "  "]),
    ("enable nothing", ["enable"]),
    ("enable with reason", ["enable", "--all", "--reason", "x"]),
    ("enable malformed wallet", ["enable", "--wallet", "nope"]),
    ("set-tier bad tier", ["set-tier", "--wallet", TEST_ADDRESS, "--tier", "gold"]),
    ("set-tier missing tier", ["set-tier", "--wallet", TEST_ADDRESS]),
    ("set-tier unknown wallet", ["set-tier", "--wallet", ZERO1, "--tier", "elite"]),
    ("set-tier violating downgrade", ["set-tier", "--wallet", TEST_ADDRESS, "--tier", "free"]),
    ("add-follow second trader on pro", ["add-follow", "--wallet", TEST_ADDRESS, "--follow",
                                         TRADER_2, "--copy-pct", "1", "--max-trade", "5"]),
    ("history limit text", ["history", "--limit", "many"]),
    ("performance end before start", ["performance", "--start", "2024-02-01", "--end",
                                      "2024-01-01"]),
    ("doctor malformed wallet", ["doctor", "--offline", "--wallet", "0x12"]),
    ("doctor unknown wallet", ["doctor", "--offline", "--wallet", ZERO1]),
    ("report bad end", ["report", "--wallet", TEST_ADDRESS, "--start", "2024-01-01", "--end",
                        "tomorrow"]),
]


@pytest.mark.parametrize(("case", "args"), INVALID_OPS, ids=[c for c, _ in INVALID_OPS])
def test_invalid_ops_invocations_exit_2_with_one_line_and_write_nothing(
        env: Database, case: str, args: list[str]) -> None:  # noqa: F811
    """Each bad invocation: exit 2, one 'error:' line on stderr, no traceback, no row changed."""
    assert add_alice().exit_code == 0
    assert follow(TEST_ADDRESS, TRADER, "10").exit_code == 0
    before = counts(env)
    r = run(*args)
    assert r.exit_code == 2, (case, r.output)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (case, r.stderr)
    assert "Traceback" not in r.output and TEST_KEY[2:] not in r.output
    assert counts(env) == before, case
    assert Base is not None  # the tables counted are the models' tables
