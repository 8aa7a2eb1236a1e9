"""The pieces around the executor's safety work: CLOB heartbeats and builder trades (client on
respx bodies, simulator routes), the simulator's tick change, retention, and the admin commands
(set-follower-limits, stats --latency and the builder volume, cancel-open --paper)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import httpx
import pytest
import respx
from sqlalchemy import func, select

from copying.retention import prune, prune_positions
from infra.config import Settings
from models import CopyOrder, CopyOrderEvent, CopyStatus, Follower, TraderFill, TraderPositionSnapshot
from polymarket_client import PolymarketClient
from sim import Simulator
from tests.ops.test_admin import add_alice, env, run  # noqa: F401 - env is a fixture
from tests.support import factories as fx
from tests.support.dbfixtures import Database
from tests.support.keys import TEST_ADDRESS
from tests.support.rig import Rig, quiet_scenario
from tests.support.simfixtures import FED_YES, account, sdk_limit_body
from wire.errors import ParseError
from wire.records import BuilderTrade
from wire.types import ApiCreds

CLOB = "http://clob.test"
CREDS = ApiCreds("f4f247b7-4ac7-ff29-a152-04fda0a8755a", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "pp")
BUILDER = "0x" + "ab" * 32
BUILDER_TRADES_PAGE = {
    "limit": 300, "next_cursor": "LTE=", "count": 2,
    "data": [
        {"id": "b0d2f1f8-5c1e-4e0a-9d3c-7f2c1a4e9b10", "tradeType": "TAKER",
         "takerOrderHash": "0x" + "12" * 32, "builder": BUILDER, "market": "0x" + "c1" * 32,
         "assetId": FED_YES, "side": "BUY", "size": "10", "sizeUsdc": "6.4", "price": "0.64",
         "status": "TRADE_STATUS_CONFIRMED", "outcome": "Yes", "outcomeIndex": 0, "owner": "key-1",
         "maker": "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", "transactionHash": "0x" + "34" * 32,
         "matchTime": "1795253614", "bucketIndex": 0, "fee": "0.01", "feeUsdc": "0.01",
         "err_msg": None, "createdAt": "2026-11-21T12:00:01Z", "updatedAt": "2026-11-21T12:00:05Z"},
        {"id": "c9e1a2b3-0000-4e0a-9d3c-7f2c1a4e9b11", "tradeType": "MAKER",
         "takerOrderHash": "0x" + "56" * 32, "builder": BUILDER, "market": "0x" + "c1" * 32,
         "assetId": FED_YES, "side": "SELL", "size": "5", "sizeUsdc": "3.1", "price": "0.62",
         "status": "TRADE_STATUS_MINED", "outcome": "Yes", "outcomeIndex": 0, "owner": "key-1",
         "maker": "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", "transactionHash": "",
         "matchTime": "2026-11-21T12:05:00Z", "bucketIndex": 0, "fee": "0", "feeUsdc": "0",
         "err_msg": None, "createdAt": None, "updatedAt": None},
    ]}


def client() -> PolymarketClient:
    return PolymarketClient(clob_url=CLOB, http2=False, clock=lambda: 1795253614.0)


# --- the client -----------------------------------------------------------------------------------

@respx.mock
def test_heartbeat_sends_the_id_and_retries_once_with_the_expected_one() -> None:
    """POST /v1/heartbeats: a stale id gets 400 with the expected id, sent again at once."""
    route = respx.post(f"{CLOB}/v1/heartbeats").mock(side_effect=[
        httpx.Response(400, json={"error_msg": "Invalid Heartbeat ID", "heartbeat_id": "hb-2"}),
        httpx.Response(200, json={"heartbeat_id": "hb-3", "status": "ok"}),
    ])

    async def go() -> str:
        c = client()
        try:
            return await c.post_heartbeat(CREDS, TEST_ADDRESS, "hb-1")
        finally:
            await c.aclose()

    assert asyncio.run(go()) == "hb-3"
    sent = [json.loads(call.request.content) for call in route.calls]
    assert sent == [{"heartbeat_id": "hb-1"}, {"heartbeat_id": "hb-2"}]
    headers = route.calls[0].request.headers
    assert headers["POLY_API_KEY"] == CREDS.api_key and "POLY_SIGNATURE" in headers


@respx.mock
def test_heartbeat_answer_without_an_id_is_a_parse_error() -> None:
    """A 2xx body with no heartbeat_id is refused, not trusted."""
    respx.post(f"{CLOB}/v1/heartbeats").mock(return_value=httpx.Response(200, json={"status": "ok"}))

    async def go() -> None:
        c = client()
        try:
            await c.post_heartbeat(CREDS, TEST_ADDRESS, "")
        finally:
            await c.aclose()

    with pytest.raises(ParseError):
        asyncio.run(go())


@respx.mock
def test_builder_trades_are_read_with_builder_headers_and_parsed() -> None:
    """GET /builder/trades?builder_code=: POLY_BUILDER_* headers, decimal sizes, both time forms."""
    route = respx.get(f"{CLOB}/builder/trades").mock(return_value=httpx.Response(200, json=BUILDER_TRADES_PAGE))

    async def go() -> list[BuilderTrade]:
        c = client()
        try:
            return await c.get_builder_trades(BUILDER, ("bkey", "c2VjcmV0LXNlY3JldA==", "bpass"))
        finally:
            await c.aclose()

    trades = asyncio.run(go())
    assert [(t.size_usdc, t.fee_usdc, t.status) for t in trades] == [
        (D("6.4"), D("0.01"), "CONFIRMED"), (D("3.1"), D(0), "MINED")]
    assert trades[0].match_time == datetime.fromtimestamp(1795253614, UTC)
    assert trades[1].match_time == datetime(2026, 11, 21, 12, 5, tzinfo=UTC)
    request = route.calls[0].request
    assert request.url.params["builder_code"] == BUILDER
    assert request.headers["POLY_BUILDER_API_KEY"] == "bkey" and "POLY_API_KEY" not in request.headers
    assert "bpass" == request.headers["POLY_BUILDER_PASSPHRASE"]


# --- the simulator --------------------------------------------------------------------------------

def test_sim_heartbeat_arms_the_dead_man_switch(simulator_factory: Callable[..., Simulator]) -> None:
    """First send arms it; a wrong id gets 400 with the expected one; ten seconds of silence
    cancel every open order of the key."""
    sim = simulator_factory(quiet_scenario())
    acct = account(sim, 1)
    body = sdk_limit_body(acct.creds["apiKey"], 1, FED_YES, 0.30, 10, "BUY", "0.01", True)
    assert acct.post_order(body).status_code == 200
    first = acct.request("POST", "/v1/heartbeats", {"heartbeat_id": ""})
    assert first.status_code == 200
    hb = first.json()["heartbeat_id"]
    wrong = acct.request("POST", "/v1/heartbeats", {"heartbeat_id": "nope"})
    assert wrong.status_code == 400 and wrong.json() == {"error_msg": "Invalid Heartbeat ID", "heartbeat_id": hb}
    assert acct.request("POST", "/v1/heartbeats", {"heartbeat_id": hb}).status_code == 200
    sim.set_clock(advance=5)
    assert [o["status"] for o in sim.orders()] == ["LIVE"]
    sim.set_clock(advance=11)
    orders = sim.orders()
    assert [(o["status"], o["status_reason"]) for o in orders] == [("CANCELED", "heartbeat_timeout")]
    assert sim.heartbeats() == {}


def test_sim_builder_trades_attribute_the_signed_builder_code(simulator_factory: Callable[..., Simulator]) -> None:
    """An order signed with a builder code that trades is listed by /builder/trades for that code
    (builder credentials required); other codes see nothing."""
    from wire.auth import builder_headers

    sim = simulator_factory(quiet_scenario())
    acct = account(sim, 1)
    body = sdk_limit_body(acct.creds["apiKey"], 1, FED_YES, 0.70, 10, "BUY", "0.01", True)
    body["order"]["builder"] = BUILDER  # not re-signed: the simulator must refuse it
    assert acct.post_order(body).status_code == 400
    creds = sim.create_builder_key(builder_code=BUILDER)
    headers = builder_headers(creds["key"], creds["secret"], creds["passphrase"], "GET", "/builder/trades",
                              None, int(datetime.now(UTC).timestamp()))
    page = httpx.get(f"{sim.clob_url}/builder/trades", params={"builder_code": BUILDER}, headers=headers)
    assert page.status_code == 200 and page.json()["data"] == []
    assert httpx.get(f"{sim.clob_url}/builder/trades", params={"builder_code": BUILDER}).status_code == 401


def test_sim_tick_change_refuses_the_old_grid_with_the_real_message(
        simulator_factory: Callable[..., Simulator]) -> None:
    """set_market(tick_size=…) moves the book's tick; an order on the old finer grid is refused
    with the venue's text."""
    sim = simulator_factory(quiet_scenario())
    acct = account(sim, 1)
    sim.set_market("btc", tick_size="0.01")
    btc = sim.token_id("btc", "Yes")
    assert sim.book(btc)["tick_size"] == "0.01"
    body = sdk_limit_body(acct.creds["apiKey"], 1, btc, 0.063, 100, "BUY", "0.001", False)
    answer = acct.post_order(body)
    assert answer.status_code == 400 and "breaks minimum tick size rule: 0.01" in answer.json()["error"]


def test_the_executor_signs_the_builder_code_and_the_sim_attributes_it(
        database: Database, make_rig: Callable[..., Rig]) -> None:
    """End to end: a copy signed with POLYMARKET_BUILDER_CODE trades; /builder/trades lists it."""
    from tests.support.simfixtures import TRADER_QUIET

    d = make_rig(database, builder_code=BUILDER)
    d.add_follower(1)
    d.watch()
    d.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "100", "0.65")  # marketable
    d.watch()
    d.execute()
    (order,) = d.sim.orders()
    assert order["builder"] == BUILDER
    creds = d.sim.create_builder_key(builder_code=BUILDER)
    settings = Settings(**{**d.settings.__dict__, "builder_api_key": creds["key"],
                           "builder_secret": creds["secret"], "builder_passphrase": creds["passphrase"]})
    from ops.stats import builder_volume
    from polymarket_client import SyncPolymarketClient

    with SyncPolymarketClient.from_settings(settings, http2=False) as sync:
        volume = builder_volume(settings, sync)
    assert volume["trades"] == 1 and D(str(volume["volume_usd"])) == D("6.5")


# --- retention ------------------------------------------------------------------------------------

def test_retention_prunes_only_what_is_old_and_closed(database: Database) -> None:
    """Old snapshots go (each trader's latest stays), old raw payloads empty, the events and signed
    bodies of long-closed copies go; open copies and recent rows are untouched; a second run
    resumes from its marks and changes nothing."""
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=400), now - timedelta(hours=1)
    with database.session() as s:
        t, f = fx.trader(s), fx.follower(s)
        fo = fx.follow(s, f, t)
        old_fill = fx.trader_fill(s, t, key="old", occurred_at=old, first_seen_at=old, raw={"big": 1})
        new_fill = fx.trader_fill(s, t, key="new", occurred_at=recent, first_seen_at=recent, raw={"big": 2})
        closed = fx.copy_order(s, old_fill, fo, status=CopyStatus.FILLED, closed_at=old,
                               signed_payload=b"body", order_hash="0x" + "01" * 32)
        live = fx.copy_order(s, new_fill, fo, status=CopyStatus.LIVE, signed_payload=b"live",
                             order_hash="0x" + "02" * 32)
        for co in (closed, live):
            s.add(CopyOrderEvent(copy_order_id=co.id, event="claim", from_status="QUEUED",
                                 to_status="CLAIMED", created_at=old))
        for when in (old, old + timedelta(days=1), recent):
            s.add(TraderPositionSnapshot(trader_id=t.id, token_id="1", condition_id="c", size=D(1), taken_at=when))
        s.commit()
        ids = (closed.id, live.id, old_fill.id, new_fill.id)
    counts = prune(database.factory, Settings(), now)
    assert counts == {"pruned_raw": 1, "pruned_events": 1, "pruned_payloads": 1}
    assert prune_positions(database.factory, now - timedelta(days=Settings().retention_snapshot_days)) == (2, 0)
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(TraderPositionSnapshot)) == 1
        assert s.get(TraderFill, ids[2]).raw == {} and s.get(TraderFill, ids[3]).raw == {"big": 2}  # type: ignore[union-attr]
        assert s.get(CopyOrder, ids[0]).signed_payload is None  # type: ignore[union-attr]
        assert s.get(CopyOrder, ids[1]).signed_payload == b"live"  # type: ignore[union-attr]
        assert [e.copy_order_id for e in s.scalars(select(CopyOrderEvent))] == [ids[1]]
    assert prune(database.factory, Settings(), now) == {}
    assert prune_positions(database.factory, now - timedelta(days=7)) == (0, 0)


def test_retention_zero_keeps_everything(database: Database) -> None:
    """Every retention set to 0 days: nothing is pruned."""
    keep = Settings(retention_snapshot_days=0, retention_event_days=0, retention_raw_days=0,
                    retention_payload_days=0)
    with database.session() as s:
        t = fx.trader(s)
        s.add(TraderPositionSnapshot(trader_id=t.id, token_id="1", condition_id="c", size=D(1),
                                     taken_at=datetime(2020, 1, 1, tzinfo=UTC)))
        s.commit()
    assert prune(database.factory, keep, datetime.now(UTC)) == {}


# --- admin ----------------------------------------------------------------------------------------

def test_set_follower_limits(env: Database) -> None:  # noqa: F811
    """Set, show, clear; a negative value exits 2 and changes nothing."""
    assert add_alice().exit_code == 0
    r = run("set-follower-limits", "--wallet", TEST_ADDRESS, "--daily-cap", "250", "--max-exposure", "1000")
    assert r.exit_code == 0 and "daily cap 250 USD" in r.stdout and "max open exposure 1000 USD" in r.stdout
    rows = json.loads(run("list-followers", "--json").stdout)
    assert (rows[0]["daily_cap_usd"], rows[0]["max_open_exposure_usd"]) == ("250", "1000")
    bad = run("set-follower-limits", "--wallet", TEST_ADDRESS, "--daily-cap", "-1")
    assert bad.exit_code == 2
    assert run("set-follower-limits", "--wallet", TEST_ADDRESS).exit_code == 2
    assert run("set-follower-limits", "--wallet", TEST_ADDRESS, "--daily-cap", "none").exit_code == 0
    with env.session() as s:
        f = s.scalar(select(Follower))
        assert f is not None and f.daily_usd_cap is None and f.max_open_exposure == D(1000)


def test_stats_latency_table(env: Database) -> None:  # noqa: F811
    """stats --latency: p50/p95/p99 per stage from the copies' own times."""
    now = datetime.now(UTC)
    with env.session() as s:
        t, f = fx.trader(s), fx.follower(s)
        fo = fx.follow(s, f, t)
        for i in range(10):
            seen = now - timedelta(minutes=10) + timedelta(seconds=i)
            fill = fx.trader_fill(s, t, key=f"k{i}", occurred_at=seen - timedelta(seconds=2), first_seen_at=seen)
            fx.copy_order(s, fill, fo, status=CopyStatus.LIVE, attempts=1, queued_at=seen,
                          claimed_at=seen + timedelta(milliseconds=5), signed_at=seen + timedelta(milliseconds=10 + i),
                          posted_at=seen + timedelta(milliseconds=12 + i), acked_at=seen + timedelta(milliseconds=20 + i))
        s.commit()
    rows = {r["stage"]: r for r in json.loads(run("stats", "--latency", "--json").stdout)}
    assert rows["claim"]["copies"] == 10 and rows["claim"]["p50_ms"] == "5.0"
    assert rows["sign"]["p99_ms"] == "14.0" and rows["detect"]["p50_ms"] == "2000.0"
    assert rows["first_fill"]["copies"] == 0
    assert "P95_MS" in run("stats", "--latency").stdout


def test_cancel_open_paper_closes_paper_copies(env: Database) -> None:  # noqa: F811
    """cancel-open --paper --yes: every open paper copy closed (canceled_by_admin); live ones kept."""
    with env.session() as s:
        t, f = fx.trader(s), fx.follower(s)
        fo = fx.follow(s, f, t)
        fx.copy_order(s, fx.trader_fill(s, t, key="a"), fo, status=CopyStatus.LIVE, paper=True,
                      order_hash="0x" + "0a" * 32)
        fx.copy_order(s, fx.trader_fill(s, t, key="b"), fo, status=CopyStatus.LIVE, paper=False,
                      order_hash="0x" + "0b" * 32)
        s.commit()
    assert run("cancel-open").exit_code == 2
    r = run("cancel-open", "--paper", "--yes")
    assert r.exit_code == 0 and "paper: 1 cancelled" in r.stdout
    with env.session() as s:
        rows = sorted((c.paper, c.status, c.reason) for c in s.scalars(select(CopyOrder)))
    assert rows == [(False, CopyStatus.LIVE, None), (True, CopyStatus.CANCELED, "canceled_by_admin")]
    assert "no open paper copy order" in run("cancel-open", "--paper", "--yes").stdout


def test_cancel_open_live_without_confirmation_off_a_terminal_is_refused(env: Database) -> None:  # noqa: F811
    """Not a terminal and no --yes: exit 2, nothing cancelled."""
    with env.session() as s:
        t, f = fx.trader(s), fx.follower(s)
        fx.copy_order(s, fx.trader_fill(s, t), fx.follow(s, f, t), status=CopyStatus.LIVE,
                      order_hash="0x" + "0c" * 32)
        s.commit()
    r = run("cancel-open", "--live")
    assert r.exit_code == 2
    with env.session() as s:
        assert s.scalar(select(CopyOrder.status)) == CopyStatus.LIVE


def test_stats_shows_builder_volume_when_configured(env: Database,  # noqa: F811
                                                    simulator_factory: Callable[..., Simulator],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """With the builder API credentials set, `admin stats` adds the attributed volume (0 here)."""
    sim = simulator_factory(quiet_scenario())
    creds = sim.create_builder_key(builder_code=BUILDER)
    for var, value in (("POLYMARKET_CLOB_API_URL", sim.clob_url), ("POLYMARKET_BUILDER_CODE", BUILDER),
                       ("POLYMARKET_BUILDER_API_KEY", creds["key"]), ("POLYMARKET_BUILDER_SECRET", creds["secret"]),
                       ("POLYMARKET_BUILDER_PASSPHRASE", creds["passphrase"])):
        monkeypatch.setenv(var, value)
    data = json.loads(run("stats", "--json").stdout)
    assert data["builder"]["trades"] == 0 and data["builder"]["builder_code"] == BUILDER
    text = run("stats").stdout
    assert creds["secret"] not in text and creds["passphrase"] not in text
