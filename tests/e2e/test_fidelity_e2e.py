"""Copy fidelity end to end: watcher and executor against the simulator (live mode), on SQLite and
PostgreSQL — exits seen late, paused follows, merges, the plan's 5 % example, the BUY+SELL race,
resolution booked in report and performance, and redemptions exactly once (EOA transactions,
the relayer, a kill -9 between the stored intent and the receipt). On the shared rig."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from sqlalchemy import select

from copying.redeem import Redeemer
from executor import build_context
from infra.config import Settings
from infra.db import session_scope, utcnow
from models import (
    CopyStatus,
    Follower,
    FollowerPosition,
    FollowStatus,
    PositionSettlement,
    Redemption,
    RedemptionStatus,
    Tier,
    TraderFill,
)
from ops.accounts import add_follower, set_pause
from ops.performance import performance_rows
from ops.reports import build_report
from ops.views import Intervals, status_data
from polymarket_client import PolymarketClient
from sim import Simulator
from tests.support.dbfixtures import Database
from tests.support.rig import Rig, quiet_scenario
from tests.support.simfixtures import (
    DEPOSIT_WALLET_0,
    FED_CONDITION,
    FED_YES,
    HARDHAT_ADDRESSES,
    HARDHAT_KEYS,
    SAFE_WALLET_0,
    TRADER_QUIET,
)
from watcher import watch_cycle
from wire.types import SignatureType

pytestmark = pytest.mark.e2e
D = Decimal
BUILDER = {"relayer_api_key": "builder-key-1", "relayer_secret": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
           "relayer_passphrase": "builder-pass"}


def fidelity_rig(make_rig: Callable[..., Rig], db: Database, sim: Simulator | None = None,
                 **settings: Any) -> Rig:
    """The rig as the fidelity tests want it: WHALE followers, a snapshot every watcher cycle,
    a 10-minute overlap window, no book reuse between executor cycles."""
    return make_rig(db, sim, tier=Tier.WHALE, book_ttl=0.0, position_snapshot_interval=0.001,
                    watcher_overlap_seconds=600, **settings)


def leader_buys_and_follower_gets(r: Rig, index: int, shares: str, market: str = "fed",
                                  outcome: str = "Yes", price: str = "0.65", size: str = "100") -> str:
    """The leader buys; the follower's copy fills; returns the token."""
    token = r.sim.token_id(market, outcome)
    r.sim.add_trader_fill(TRADER_QUIET, market, outcome, "BUY", size, price)
    r.watch()
    r.execute()
    assert r.held(index, token) == D(shares), (r.copies(), r.sim.rejections())
    return token


@pytest.fixture
def rig(database: Database, make_rig: Callable[..., Rig]) -> Rig:
    """Follower Hardhat #1 (EOA) copying 10 % of TRADER_QUIET; the cursor seeded."""
    r = fidelity_rig(make_rig, database)
    r.add_follower(1)
    r.watch()
    return r


def test_an_exit_during_a_watcher_outage_is_mirrored_when_it_returns(rig: Rig) -> None:
    """The leader buys (copied), then during a 5-minute watcher outage (MAX_COPY_DELAY 120 s) he
    buys more and sells everything: on return the late BUY is skipped as stale, the late SELL is
    mirrored: the follower sells its 10 shares, once."""
    token = leader_buys_and_follower_gets(rig, 1, "10", "lakers", "Lakers", "0.42")
    rig.sim.add_trader_fill(TRADER_QUIET, "lakers", "Lakers", "BUY", "50", "0.42")
    rig.sim.add_trader_fill(TRADER_QUIET, "lakers", "Lakers", "SELL", "150", "0.41")
    rig.sim.set_clock(advance=300)
    rig.offset = timedelta(seconds=300)  # the watcher comes back 5 minutes later
    rig.watch()
    late_buy = rig.copies("BUY")[-1]
    assert (late_buy.status, late_buy.reason) == (CopyStatus.SKIPPED, "stale")
    rig.execute()
    rig.execute()
    sells = rig.copies("SELL")
    assert len(sells) == 1 and sells[0].intended_size == D("10"), sells
    assert rig.held(1, token) == 0 and rig.position(token).size == 0
    rig.watch()  # the snapshot shows the decrease: the SELL row explains it, no second exit
    rig.offset += timedelta(seconds=600)
    rig.watch()
    assert len(rig.copies("SELL")) == 1


def test_a_paused_follow_mirrors_an_exit(rig: Rig) -> None:
    """`admin pause`: no new entries, but the leader's SELL of half is mirrored (5 of 10)."""
    token = leader_buys_and_follower_gets(rig, 1, "10", "lakers", "Lakers", "0.42")
    with session_scope(rig.db.factory) as s:
        set_pause(s, rig.funders[1], TRADER_QUIET, True)
    rig.sim.add_trader_fill(TRADER_QUIET, "lakers", "Lakers", "BUY", "100", "0.42")
    rig.sim.add_trader_fill(TRADER_QUIET, "lakers", "Lakers", "SELL", "100", "0.41")
    rig.watch()
    assert len(rig.copies("BUY")) == 1  # the paused follow copied no entry
    rig.execute()
    rig.execute()
    assert rig.held(1, token) == D("5") and rig.copies("SELL")[0].intended_size == D("5")
    with rig.db.session() as s:
        assert s.scalar(select(FollowerPosition.target_size)) == D("5")


def test_a_leader_merge_exits_the_merged_amount(rig: Rig) -> None:
    """The leader holds 1000 Yes and 100 No and merges 50 pairs: the follower (10 %) sells 5 of
    its 100 Yes and 5 of its 10 No."""
    yes = leader_buys_and_follower_gets(rig, 1, "100", "btc", "Yes", "0.065", size="1000")
    no = leader_buys_and_follower_gets(rig, 1, "10", "btc", "No", "0.937")
    rig.watch()  # a snapshot with both positions
    rig.sim.add_activity(TRADER_QUIET, "MERGE", "btc", "50")
    counts = rig.watch()
    assert counts["new_fills"] == 2 and counts["queued"] == 2, counts  # one row, two outcomes
    rig.execute()
    rig.execute()
    exits = {c.token_id: c for c in rig.copies("SELL")}
    assert {t: c.intended_size for t, c in exits.items()} == {yes: D("5"), no: D("5")}
    assert (rig.held(1, yes), rig.held(1, no)) == (D("95"), D("5"))
    with rig.db.session() as s:
        kinds = {k for (k,) in s.execute(select(TraderFill.activity_type))}
    assert "MERGE" in kinds


def test_plan_example_five_percent_sells_four_and_keeps_one(
        database: Database, make_rig: Callable[..., Rig]) -> None:
    """5 % of a leader holding 100 who sells 80: one 4-share sale (marketable), 1 share kept."""
    r = fidelity_rig(make_rig, database)
    r.add_follower(1, pct="5")
    r.watch()
    token = leader_buys_and_follower_gets(r, 1, "5", "lakers", "Lakers", "0.42")
    r.watch()  # the leader's 100 in a snapshot
    r.sim.add_trader_fill(TRADER_QUIET, "lakers", "Lakers", "SELL", "80", "0.41")
    r.watch()
    r.execute()
    sells = r.copies("SELL")
    assert [(c.intended_size, c.order_type, c.status) for c in sells] == [
        (D("4"), "FAK", CopyStatus.FILLED)]
    assert r.held(1, token) == D("1") and r.position(token).target_size == D("1")
    venue = [o for o in r.sim.orders() if o["side"] == "SELL"]
    assert len(venue) == 1 and D(str(venue[0]["original_size"])) == D("4")


def test_buy_and_sell_of_one_token_in_one_poll_sells_what_the_buy_got(rig: Rig) -> None:
    """The leader buys and sells within one poll: the follower's SELL is placed for the 10 shares
    its BUY got, never skipped for `no_holdings`."""
    token = rig.sim.token_id("lakers", "Lakers")
    rig.sim.add_trader_fill(TRADER_QUIET, "lakers", "Lakers", "BUY", "100", "0.42")
    rig.sim.add_trader_fill(TRADER_QUIET, "lakers", "Lakers", "SELL", "100", "0.41")
    rig.watch()
    rig.execute()
    rig.execute()
    buy, sell = rig.copies()
    assert (buy.status, buy.filled_size) == (CopyStatus.FILLED, D("10"))
    assert sell.intended_size == D("10") and sell.reason != "no_holdings"
    assert rig.held(1, token) == 0


def test_resolution_is_booked_and_redeemed_once(rig: Rig) -> None:
    """Fed resolves Yes: the position closes at 1 (realized +3.50 on a 6.50 cost), report and
    performance count it as a won close, and the EOA follower's shares are redeemed through the
    collateral adapter once: +10 pUSD, no shares left, a second pass sends nothing."""
    leader_buys_and_follower_gets(rig, 1, "10")
    before = rig.pusd(1)
    rig.sim.resolve_market("fed", winner="Yes")
    counts = rig.execute()
    assert counts.get("markets_resolved") == 1 and counts.get("redemptions_confirmed") == 1, counts
    assert rig.pusd(1) == before + 10 and rig.held(1, FED_YES) == 0
    rig.execute()
    assert len(rig.sim.redemptions()) == 1
    txs = rig.sim.chain_transactions()
    assert len(txs) == 1 and txs[0]["status"] == 1
    assert txs[0]["to"].lower() == "0xada2005600dec949baf300f4c6120000bdb6eaab"  # fed is neg-risk
    with rig.db.session() as s:
        red = s.scalar(select(Redemption))
        st = s.scalar(select(PositionSettlement))
        follower = s.scalar(select(Follower))
        assert red is not None and st is not None and follower is not None
        assert (red.status, red.tx_hash) == (RedemptionStatus.CONFIRMED, txs[0]["hash"])
        assert st.realized_pnl == D("3.5")
        rep = build_report(s, follower, None, utcnow() + timedelta(days=1), None)
        perf = performance_rows(s, [follower], None, utcnow() + timedelta(days=1), None)
        status = status_data(s, utcnow(), Intervals())
    everything = next(r for r in rep.summary_rows() if r["scope"] == "all")
    assert (everything["realized_pnl_usd"], everything["resolutions"], everything["win_rate"]) == (
        "3.5", 1, "1")
    assert next(r for r in perf if r["scope"] == "all")["win_rate"] == "1"
    assert status["redemptions"] == []  # confirmed: nothing left to redeem


def _relayer_rig(database: Database, simulator_factory: Callable[..., Simulator],
                 make_rig: Callable[..., Rig]) -> Rig:
    sim = simulator_factory(quiet_scenario())
    sim.configure(**BUILDER)
    return fidelity_rig(make_rig, database, sim, builder_api_key=BUILDER["relayer_api_key"],
                        builder_secret=BUILDER["relayer_secret"], builder_passphrase=BUILDER["relayer_passphrase"])


def test_the_relayer_redeems_a_deposit_wallet_follower(
        database: Database, simulator_factory: Callable[..., Simulator], make_rig: Callable[..., Rig]) -> None:
    """With Builder API credentials a deposit-wallet follower's winning shares are redeemed
    through the relayer (a signed WALLET batch the simulator verifies), once."""
    r = _relayer_rig(database, simulator_factory, make_rig)
    r.add_follower(0, SignatureType.POLY_1271, funder=DEPOSIT_WALLET_0)
    r.watch()
    leader_buys_and_follower_gets(r, 0, "10")
    before = r.pusd(0)
    r.sim.resolve_market("fed", winner="Yes")
    counts = r.execute()
    assert counts.get("redemptions_confirmed") == 1, counts
    assert r.held(0, FED_YES) == 0 and r.pusd(0) == before + 10
    assert [(t["type"], t["state"]) for t in r.sim.relayer_transactions()] == [("WALLET", "STATE_CONFIRMED")]
    r.execute()
    assert [x["holder"] for x in r.sim.redemptions()] == [DEPOSIT_WALLET_0.lower()]


PROXY_WALLET_0 = "0x365f0CA36Ae1f641E02fE3B7743673da42A13A70"


@pytest.mark.parametrize(("sig", "wallet", "kind"), [
    (SignatureType.POLY_GNOSIS_SAFE, SAFE_WALLET_0, "SAFE"),
    (SignatureType.POLY_PROXY, PROXY_WALLET_0, "PROXY"),
])
def test_the_relayer_redeems_safe_and_proxy_followers(
        database: Database, simulator_factory: Callable[..., Simulator], make_rig: Callable[..., Rig],
        sig: SignatureType, wallet: str, kind: str) -> None:
    """A Safe or proxy follower (its shares and redemption intent seeded directly) is redeemed
    through the relayer: a SafeTx (eth_sign, v + 4) or a proxy-factory call over the "rlx:" hash,
    signed by the owner and verified by the simulator; the wallet gets the pUSD, once."""
    r = _relayer_rig(database, simulator_factory, make_rig)
    r.sim.fund(wallet, pusd="0", tokens={FED_YES: "7"})
    r.sim.resolve_market("fed", winner="Yes")
    with session_scope(r.db.factory) as s:
        f = add_follower(s, r.ring, name="W", email="w@x.io", private_key=HARDHAT_KEYS[0],
                         signature_type=sig, funder=wallet, tier=Tier.WHALE)
        s.add(Redemption(follower_id=f.id, condition_id=FED_CONDITION, method="pending",
                         status=RedemptionStatus.PENDING, shares=D(7), amount=D(7), attempts=0))
    r.funders[0] = wallet

    async def go(client: PolymarketClient) -> dict[str, int]:
        ctx = build_context(r.settings, r.db.factory, client)
        redeemer = Redeemer(ctx)
        try:
            first = await redeemer.run()
            second = await redeemer.run()
        finally:
            await redeemer.aclose()
        return {**first, **{f"again_{k}": v for k, v in second.items()}}

    counts = r.run(go)
    assert counts == {"CONFIRMED": 1}, counts  # the second pass had nothing open
    assert r.pusd(0) == D(7) and r.held(0, FED_YES) == 0
    assert [(t["type"], t["state"]) for t in r.sim.relayer_transactions()] == [(kind, "STATE_CONFIRMED")]


@pytest.mark.parametrize("point", ["redeem_signed", "redeem_sent"])
def test_auto_redeem_exactly_once_through_a_kill_9(rig: Rig, point: str) -> None:
    """`python executor.py --once` killed (exit 137, as by kill -9) right after the signed redeem
    transaction is stored, or right after it was sent: the restarted executor reconciles it by
    hash (re-sending the same bytes if needed) and the follower is paid exactly once."""
    leader_buys_and_follower_gets(rig, 1, "10")
    rig.sim.resolve_market("fed", winner="Yes")
    before = rig.pusd(1)
    crashed = rig.once(timeout=120, PMCT_CRASH_AT=point)
    assert crashed.returncode == 137, crashed.stderr[-2000:]
    with rig.db.session() as s:
        red = s.scalar(select(Redemption))
        assert red is not None and red.status == RedemptionStatus.SIGNED and red.tx_hash
    sent = rig.sim.chain_transactions()
    assert len(sent) == (1 if point == "redeem_sent" else 0)
    done = rig.once(timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    with rig.db.session() as s:
        red = s.scalar(select(Redemption))
        assert red is not None and red.status == RedemptionStatus.CONFIRMED
    assert len(rig.sim.chain_transactions()) == 1 and len(rig.sim.redemptions()) == 1
    assert rig.pusd(1) == before + 10


def test_without_relayer_credentials_a_wallet_follower_redeems_by_hand(
        database: Database, make_rig: Callable[..., Rig]) -> None:
    """No relayer credentials: a deposit-wallet follower's redemption is MANUAL and `admin
    status` lists it with the amount, as "redeem by hand"."""
    r = fidelity_rig(make_rig, database)
    r.add_follower(0, SignatureType.POLY_1271, funder=DEPOSIT_WALLET_0)
    r.watch()
    leader_buys_and_follower_gets(r, 0, "10")
    r.sim.resolve_market("fed", winner="Yes")
    r.execute()
    with r.db.session() as s:
        red = s.scalar(select(Redemption))
        assert red is not None and red.status == RedemptionStatus.MANUAL
        rows = status_data(s, utcnow(), Intervals())["redemptions"]
    assert [(x["status"], x["amount"], x["condition_id"]) for x in rows] == [
        ("redeem by hand", "10", FED_CONDITION)]
    assert r.sim.redemptions() == []


def test_settings_are_what_the_rig_uses() -> None:
    """The rig's settings differ from the defaults only where the tests need it."""
    s = Settings()
    assert s.redeems_automatically is False and replace(s, execution_mode="live").redeems_automatically
    assert not s.has_relayer_credentials
    assert HARDHAT_ADDRESSES[1] and FollowStatus.ACTIVE


class GatedClient(PolymarketClient):
    """A client whose position snapshots wait for a gate (polls go through at once)."""

    gate: asyncio.Event

    async def fetch_positions(self, user: str, **kw: Any) -> Any:
        await self.gate.wait()
        return await super().fetch_positions(user, **kw)


def test_snapshots_never_delay_fill_detection_and_old_ones_are_pruned(rig: Rig) -> None:
    """With background snapshots a round that has not finished does not hold the next poll: a new
    fill is stored and queued while the snapshot round still waits; once it finishes its events
    are counted. Snapshots older than the retention are pruned, each trader's latest kept."""
    from models import TraderPositionSnapshot

    async def go() -> tuple[dict[str, int], dict[str, int], bool, dict[str, int]]:
        client = cast(GatedClient, GatedClient.from_settings(client_settings, http2=False))
        client.gate = asyncio.Event()
        async with rig.watcher("bg", client=client, settings=client_settings,
                               background_snapshots=True) as ctx:
            first = (await watch_cycle(ctx, asyncio.Event())).counts
            rig.sim.add_trader_fill(TRADER_QUIET, "lakers", "Lakers", "BUY", "100", "0.42")
            second = (await watch_cycle(ctx, asyncio.Event())).counts
            pending = ctx.snapshot_task is not None and not ctx.snapshot_task.done()
            client.gate.set()
            assert ctx.snapshot_task is not None
            await ctx.snapshot_task
            third = (await watch_cycle(ctx, asyncio.Event())).counts
            return first, second, pending, third

    client_settings = replace(rig.settings, retention_snapshot_days=1e-9)
    first, second, pending, third = asyncio.run(go())
    assert first["snapshots"] == 1 and second["snapshots"] == 0  # the round is still running
    assert pending and second["new_fills"] == 1 and second["queued"] == 1
    assert third["snapshots"] == 1  # the next round started once the first finished
    with rig.db.session() as s:
        times = set(s.scalars(select(TraderPositionSnapshot.taken_at)))
    assert len(times) <= 2  # older snapshots pruned; the trader's latest kept
