"""Soak: the watcher and the executor together against a random-walk simulator with faults, on
SQLite and PostgreSQL; at the end the money invariants must hold (copies = eligible fills × active
follows, one copy per venue order, fills ≤ sized, positions = what the venue holds, nothing stuck).
Copy fidelity rides along: leader exits during watcher outages (seen late), merges, a market
resolving (settled and redeemed through the simulator's chain and relayer); after every quiet
period each follower's holding must follow the leader's (`check_holdings_follow_the_leader`).

Time passes by moving every timestamp PMCT stored into the past (`Rig.age_everything`), so copies walk the
smart-pricing schedule (reprice → confirmed cancel → new order, market conversion, give-up) while
the simulator keeps its own clock. The random walk is stepped by hand (rate 0): fixed seed, fixed
sequence of trader fills and book moves.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from copying.leader import is_exit
from copying.states import OPEN_AT_VENUE, TERMINAL, UNRESOLVED
from executor import CycleClock, executor_cycle
from models import (
    CopyOrder,
    CopyOrderEvent,
    CopyStatus,
    Follow,
    Follower,
    FollowerFill,
    FollowerPosition,
    FollowStatus,
    PositionSettlement,
    Redemption,
    RedemptionStatus,
    Tier,
    Trader,
    TraderFill,
)
from sim import RandomWalkConfig, Simulator
from sim import engine as sim_engine
from tests.support.dbfixtures import Database
from tests.support.rig import Rig, quiet_scenario
from tests.support.simfixtures import DEPOSIT_WALLET_0, FED_YES, TRADER_QUIET
from watcher import WatcherContext, watch_cycle
from wire.types import SignatureType

pytestmark = pytest.mark.e2e
D = Decimal
ZERO = D(0)
SEED = 20260511
ROUNDS = 26
MAX_COPY_DELAY = 120
INITIAL_PUSD = {0: D(1000), 1: D(1000), 2: D(150)}  # quiet_scenario's Hardhat accounts

# (follower index, trader index, copy %, max USD per trade, follow status)
FOLLOWS = (
    (0, 0, "40", "40", FollowStatus.ACTIVE),
    (0, 2, "50", "30", FollowStatus.ACTIVE),
    (1, 0, "60", "50", FollowStatus.ACTIVE),
    (1, 1, "50", "40", FollowStatus.ACTIVE),
    (2, 0, "30", "20", FollowStatus.ACTIVE),  # starts late: the first fill is before it
    (2, 1, "40", "25", FollowStatus.ACTIVE),
    (2, 2, "50", "20", FollowStatus.PAUSED),  # never gets a copy
)
LATE_FOLLOW = (2, 0)

# (method, path, service, kind, count, status, retry_after)
FAULTS: tuple[tuple[str, str, str, str, int, int | None, int], ...] = (
    ("POST", "/order", "clob", "429", 1, None, 1),
    ("POST", "/order", "clob", "5xx", 1, 503, 1),
    ("POST", "/order", "clob", "accept_then_drop", 1, None, 1),
    ("POST", "/order", "clob", "accept_then_5xx", 1, None, 1),
    ("POST", "/orders", "clob", "accept_then_drop", 1, None, 1),
    ("POST", "/orders", "clob", "5xx", 1, 502, 1),
    ("POST", "/orders", "clob", "429", 1, None, 2),
    ("GET", "/book", "clob", "5xx", 2, 500, 1),
    ("GET", "/v2/activity", "data", "drop", 2, None, 1),
    ("GET", "/v2/activity", "data", "429", 2, None, 3),
    ("GET", "/v2/activity", "data", "5xx", 1, 503, 1),
    ("GET", "/v2/activity", "data", "drop", 5, None, 1),  # the poll fails: the fill comes a round later
    ("GET", "/v2/positions", "data", "5xx", 1, 500, 1),
)
OUTAGE_ROUNDS = (9, 17)  # the watcher is down: the leaders' fills of that round are seen late
MERGE_ROUNDS = (6, 14)
QUIET_CHECK_AFTER = (12,)  # a quiet period mid-run, then the fidelity check
RESOLVED_MARKET = "rw-1"
BUILDER = {"relayer_api_key": "soak-builder", "relayer_secret": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
           "relayer_passphrase": "soak-pass"}


class Soak(Rig):
    """The rig over a random-walk simulator: three followers with live CLOB credentials, one
    watcher and one executor context kept for the whole run (like the daemons)."""

    def __init__(self, db: Database, sim: Simulator, fernet_key: str, *, rng: random.Random,
                 **options: Any) -> None:
        sim.configure(**BUILDER)
        super().__init__(db, sim, fernet_key, tier=Tier.WHALE, book_ttl=0.0,  # books move between cycles
                         max_copy_delay=MAX_COPY_DELAY, watcher_overlap_seconds=600,
                         position_snapshot_interval=0.001, builder_api_key=BUILDER["relayer_api_key"],
                         builder_secret=BUILDER["relayer_secret"],
                         builder_passphrase=BUILDER["relayer_passphrase"], **options)
        self.rng = rng
        walk = self.sim.random_walk
        assert walk is not None
        self.walk = walk
        self.traders: list[str] = list(walk.traders)
        self.violations: list[str] = []  # seen by the checks between cycles
        self.fidelity: list[str] = []  # holdings off the leader's, per quiet check
        self.quiet_checks = self.late_exits = self.merges = 0
        self.started = datetime.now(UTC)

    # ---- setup ---------------------------------------------------------------------------------
    def setup(self) -> None:
        """Followers #0 (deposit wallet, type 3), #1 and #2 (EOA); their follows of the walkers."""
        self.add_follower(0, SignatureType.POLY_1271, funder=DEPOSIT_WALLET_0, trader=None)
        self.add_follower(1, trader=None)
        self.add_follower(2, trader=None)
        for fi, ti, pct, cap, status in FOLLOWS:
            start = self.started if (fi, ti) == LATE_FOLLOW else self.started - timedelta(hours=1)
            self.follow(fi, self.traders[ti], pct=pct, max_trade=cap, started=start, status=status)

    # ---- the world moves -------------------------------------------------------------------------
    def walk_steps(self, n: int) -> None:
        """`n` random-walk trader fills (each maybe with a one-tick book move)."""
        world = self.sim.world
        for _ in range(n):
            with world.lock:
                sim_engine.refresh(world)
                self.walk.step()

    def market_noise(self) -> None:
        """Book moves and synthetic sweeps that may cross (and fill) resting follower orders."""
        token = self.rng.choice(self.walk.tokens)
        roll = self.rng.random()
        if roll < 0.4:
            try:
                self.sim.shift_book(token, self.rng.choice((-2, -1, 1, 2)))
            except ValueError:
                pass  # would leave the price range
        elif roll < 0.7:
            book = self.sim.book(token)
            side = self.rng.choice(("BUY", "SELL"))
            levels = book["asks"] if side == "BUY" else book["bids"]
            if levels:
                best = D(levels[-1]["price"])  # /book lists the best level last
                tick = D(book["tick_size"])
                price = best + tick if side == "BUY" else best - tick
                if ZERO < price < 1:
                    self.sim.sweep(token, side, str(price), str(self.rng.randint(5, 60)))

    def holdings(self, wallet: str) -> dict[str, int]:
        with self.sim.world.lock:
            return dict(self.sim.world.ledger.tokens_of(wallet))

    def late_fills(self) -> None:
        """During an outage: leaders sell part of what they hold (and one buys); the watcher will
        see these rows 5 minutes late (`end_outage`)."""
        for trader in self.traders:
            held = {t: units for t, units in self.holdings(trader).items()
                    if t in self.walk.tokens and units >= 200_000}
            if not held:
                continue
            token = self.rng.choice(sorted(held))
            size = (D(held[token]) / 10**6 * D(self.rng.choice(("0.3", "0.5", "1")))).quantize(D("0.01"))
            market, outcome = self.token_market(token)
            self.sim.add_trader_fill(trader, market, outcome, "SELL", str(size), self.best_of(token, "SELL"))
            self.late_exits += 1
        t = self.rng.choice(self.traders)
        token = self.rng.choice(self.walk.tokens)
        market, outcome = self.token_market(token)
        self.sim.add_trader_fill(t, market, outcome, "BUY", "20", self.best_of(token, "BUY"))

    def end_outage(self) -> None:
        """The watcher comes back 5 minutes later: the simulated time and the watcher's clock both
        move on (the watcher's clock only ever moves forward: it orders rows against snapshots)."""
        self.sim.set_clock(advance=300)
        self.offset += timedelta(seconds=300)

    def merge_somewhere(self) -> None:
        """A leader holding both outcomes of a market merges half of the smaller side."""
        for trader in self.traders:
            held = self.holdings(trader)
            for m in self.sim.markets():
                if not m["key"].startswith("rw-"):
                    continue
                sizes = [held.get(t, 0) for t in m["tokens"].values()]
                if min(sizes) >= 2_000_000:
                    size = (D(min(sizes)) / 10**6 / 2).quantize(D("0.01"))
                    self.sim.add_activity(trader, "MERGE", m["key"], str(size))
                    self.merges += 1
                    return

    def token_market(self, token: str) -> tuple[str, str]:
        with self.sim.world.lock:
            market = self.sim.world.by_token[token]
            return market.key, market.outcome(token).label

    def best_of(self, token: str, side: str) -> str:
        book = self.sim.book(token)
        levels = book["asks"] if side == "BUY" else book["bids"]
        return str(levels[-1]["price"]) if levels else "0.5"

    def inject_some_faults(self) -> None:
        for method, path, service, kind, count, status, retry_after in self.rng.sample(FAULTS, 2):
            self.sim.inject_fault(method, path, kind, count=count, service=service, status=status,
                                  retry_after=retry_after)

    # ---- checks between cycles -------------------------------------------------------------------
    def hashes_by_copy(self) -> dict[str, int]:
        """Every order hash a copy ever signed → that copy's id (from the event history)."""
        out: dict[str, int] = {}
        with self.db.session() as s:
            rows = s.execute(select(CopyOrderEvent.order_hash, CopyOrderEvent.copy_order_id)
                             .where(CopyOrderEvent.order_hash.is_not(None))).all()
            current = s.execute(select(CopyOrder.order_hash, CopyOrder.id)
                                .where(CopyOrder.order_hash.is_not(None))).all()
        for h, cid in [*rows, *current]:
            assert h is not None
            key = h.lower()
            if out.setdefault(key, cid) != cid:
                self.violations.append(f"order hash {key} belongs to copies {out[key]} and {cid}")
        return out

    def check_venue(self, when: str) -> None:
        """At this moment: at most one live venue order per copy; matched shares ≤ sized."""
        by_hash = self.hashes_by_copy()
        with self.db.session() as s:
            intended = dict(s.execute(select(CopyOrder.id, CopyOrder.intended_size)).all())
        live: Counter[int] = Counter()
        matched: dict[int, Decimal] = defaultdict(Decimal)
        for o in self.sim.orders():
            cid = by_hash.get(o["id"].lower())
            if cid is None:
                self.violations.append(f"{when}: venue order {o['id']} belongs to no copy order")
                continue
            if o["status"] == "LIVE":
                live[cid] += 1
            matched[cid] += D(o["size_matched"])
        for cid, n in live.items():
            if n > 1:
                self.violations.append(f"{when}: copy {cid} has {n} live venue orders")
        for cid, m in matched.items():
            if m > (intended.get(cid) or ZERO):
                self.violations.append(f"{when}: copy {cid} matched {m} > sized {intended.get(cid)}")

    # ---- fidelity: a follower's holding follows the leader's ---------------------------------------
    def check_holdings_follow_the_leader(self, when: str) -> None:
        """Each follow's holding of each token, replayed from the leader's rows on the venue (their
        truth) and the follow's own BUY fills: T += what a BUY copy got, an exit scales T by the
        leader's kept fraction (never above copy % of what he keeps). The follower must hold T
        within lot rounding, plus what it still offers (open SELLs) and a kept remainder (under
        the min size); PMCT's stored target must be T; and never more than copy % of the leader
        beyond a kept remainder. Shortfalls against copy % come from recorded skips and caps."""
        self.quiet_checks += 1
        with self.db.session() as s:
            follows = {fo.id: fo for fo in s.scalars(select(Follow))}
            traders = {t.id: t.wallet.lower() for t in s.scalars(select(Trader))}
            copies = list(s.scalars(select(CopyOrder)))
            fills = {f.id: f for f in s.scalars(select(TraderFill))}
            positions = {(p.follow_id, p.token_id): p for p in s.scalars(
                select(FollowerPosition).where(FollowerPosition.paper.is_(False)))}
        resolved = {o for m in self.sim.markets() if m["closed"] for o in m["tokens"].values()}
        got: dict[tuple[int, int], Decimal] = defaultdict(Decimal)  # (fill, follow) → BUY filled
        offered: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
        for c in copies:
            if c.trader_fill_id is not None and c.side == "BUY":
                got[(c.trader_fill_id, c.follow_id)] += c.filled_size or ZERO
            if c.side == "SELL" and c.status in (*OPEN_AT_VENUE, *UNRESOLVED):
                offered[(c.follow_id, c.token_id)] += (c.venue_size or ZERO)
        by_identity = {(f.transaction_hash.lower(), f.token_id, f.side, f.size, f.price): f
                       for f in fills.values() if f.activity_type == "TRADE"}
        for fo in follows.values():
            wallet = traders[fo.trader_id]
            with self.sim.world.lock:
                rows = sorted(self.sim.world.rows_by_wallet.get(wallet, []), key=lambda r: (r.timestamp, r.seq))
                leader_rows = [(r.kind, r.side, r.token_id, r.condition_id, r.size, r.price,
                                r.transaction_hash.lower()) for r in rows]
                outcomes = {m.condition_id: [o.token_id for o in m.outcomes]
                            for m in self.sim.world.markets.values()}
            leader: dict[str, Decimal] = defaultdict(Decimal)
            model: dict[str, Decimal] = defaultdict(Decimal)
            events: Counter[str] = Counter()
            pct = fo.copy_pct / 100
            for kind, side, token, cond, size, price, tx in leader_rows:
                moves: list[tuple[str, str, Decimal]] = []
                if kind == "TRADE" and token:
                    moves = [(token, side, size)]
                elif kind == "MERGE":
                    moves = [(t, "SELL", size) for t in outcomes.get(cond, [])]
                for tok, sd, sz in moves:
                    before = leader[tok]
                    if sd == "BUY":
                        leader[tok] += sz
                        fill = by_identity.get((tx, tok, "BUY", sz, price))
                        if fill is not None:
                            model[tok] += got.get((fill.id, fo.id), ZERO)
                    else:
                        after = max(before - sz, ZERO)
                        leader[tok] = after
                        if before > 0:
                            model[tok] = min(model[tok] * after / before, pct * after)
                    events[tok] += 1
            for token in set(model) | {t for (fid, t) in positions if fid == fo.id}:
                if token in resolved:
                    continue
                pos = positions.get((fo.id, token))
                held = pos.size if pos is not None else ZERO
                target = pos.target_size if pos is not None else ZERO
                tol = D("0.01") * (events[token] + 1)
                expected = model[token]
                kept = D(5) + tol  # a remainder under the min size (all walk markets: 5)
                where = f"{when}: follow {fo.id} token {token[:8]}…"
                if held < expected - tol:
                    self.fidelity.append(f"{where}: holds {held} < model {expected} (over-sold)")
                if held > expected + offered[(fo.id, token)] + kept:
                    self.fidelity.append(f"{where}: holds {held} > model {expected} + offered "
                                         f"{offered[(fo.id, token)]} (an exit was missed)")
                if abs(target - expected) > tol:
                    self.fidelity.append(f"{where}: stored target {target} ≠ model {expected}")
                if held > pct * leader[token] + offered[(fo.id, token)] + kept:
                    self.fidelity.append(f"{where}: holds {held} > {fo.copy_pct} % of the leader's "
                                         f"{leader[token]}")

    # ---- the daemons, one cycle each ------------------------------------------------------------
    async def run_rounds(self, rounds: int) -> None:
        """The soak: `rounds` rounds of world moves, faults and watcher + executor cycles, then a
        quiet phase past give-up and a resolution."""
        async with self.watcher("soak-w") as wctx, self.executor() as ectx:
            ectx.clock = self.clock  # the simulator's time
            await self._rounds(wctx, ectx, rounds)

    async def _rounds(self, wctx: WatcherContext, ectx: Any, rounds: int) -> None:
        async def watch() -> None:
            await watch_cycle(wctx, asyncio.Event())

        async def execute() -> None:
            await executor_cycle(ectx, asyncio.Event(), CycleClock(0), force_manage=True)

        async def quiet(hours: tuple[float, ...]) -> None:
            self.sim.clear_faults()
            for h in hours:
                self.age_everything(h)
                await watch()
                await execute()
                self.check_venue(f"quiet +{h} h")

        await watch()  # seeds the cursors
        t0, t1, t2 = self.traders
        # a fill a few seconds before the late follow started: before_follow for it only
        self.sim.add_trader_fill(t0, "rw-0", "Yes", "BUY", "40", self.best(0, "BUY"),
                                 at=self.started.timestamp() - 5)
        for r in range(rounds):
            self.walk_steps(self.rng.randint(1, 3))
            if self.rng.random() < 0.5:
                self.market_noise()
            if r >= 2 and self.rng.random() < 0.6:
                self.inject_some_faults()
            if r == 5:  # a combo (never copyable) and a fill seen 5 minutes late (stale)
                self.sim.add_combo_fill(t2, "BUY", "20", "0.4")
                self.sim.add_trader_fill(t1, "rw-1", "Yes", "BUY", "30", self.best(2, "BUY"),
                                         at=self.sim.now() - 300)
            if r in MERGE_ROUNDS:
                self.merge_somewhere()
            if r in OUTAGE_ROUNDS:  # the watcher is down this round; its fills are seen late
                self.late_fills()
                await execute()
                continue
            if r - 1 in OUTAGE_ROUNDS:
                self.end_outage()
            await watch()
            self.check_venue(f"round {r} after watch")
            await execute()
            self.check_venue(f"round {r} after execute")
            if r >= 3:
                self.age_everything(self.rng.choice((0.0, 0.0, 0.5, 2.0, 4.0, 7.0)))
            if r in QUIET_CHECK_AFTER:  # a quiet period: then holdings must follow the leaders'
                await quiet((0.0, 0.0, 0.0))
                self.check_holdings_follow_the_leader(f"after round {r}")
        # quiet phase: no faults, no new fills; time runs past give-up (72 h)
        await quiet((0.0, 13.0, 13.0, 13.0, 40.0, 0.0))
        await execute()
        self.check_holdings_follow_the_leader("end")
        # a market resolves: settled at the payout and redeemed (EOA transactions, relayer)
        self.sim.resolve_market(RESOLVED_MARKET, winner=self.rng.choice(("Yes", "No")))
        await quiet((0.0, 0.0))
        await execute()

    def best(self, token_index: int, side: str) -> str:
        """The walk's best ask (BUY) or bid (SELL) on one of its tokens, as a trader price."""
        book = self.sim.book(self.walk.tokens[token_index])
        levels = book["asks"] if side == "BUY" else book["bids"]
        return str(levels[-1]["price"]) if levels else "0.5"


def run_soak(db: Database, make: Callable[..., Simulator], make_rig: Callable[..., Rig], seed: int) -> Soak:
    """The soak with this seed, run to its end."""
    sim = make(quiet_scenario(), random_walk=RandomWalkConfig(traders=3, markets=3, rate=0,
                                                              book_move_probability=0.4, seed=seed))
    soak = make_rig(db, sim, cls=Soak, rng=random.Random(seed))
    assert isinstance(soak, Soak)
    soak.setup()
    asyncio.run(soak.run_rounds(ROUNDS))
    return soak


# ---- the invariants --------------------------------------------------------------------------------

def check_one_copy_per_eligible_fill(soak: Soak) -> Counter[str]:
    """1. Every eligible trader fill has exactly one copy per follow it concerns: entries (BUY)
    active follows only, exits (SELL, MERGE per outcome, SNAPSHOT) the paused one too;
    ineligible ones only SKIPPED copies with the reason (a late exit is not stale); every copy has
    its fill, except the sales down to a follow's target (remainders)."""
    reasons: Counter[str] = Counter()
    with soak.db.session() as s:
        fills = {f.id: f for f in s.scalars(select(TraderFill))}
        follows = list(s.scalars(select(Follow)))
        copies = [c for c in s.scalars(select(CopyOrder)) if c.trader_fill_id is not None]
        per: Counter[tuple[int | None, int]] = Counter((c.trader_fill_id, c.follow_id) for c in copies)
        by_pair = {(c.trader_fill_id, c.follow_id): c for c in copies}
        delay = timedelta(seconds=MAX_COPY_DELAY)
        for c in copies:
            assert c.trader_fill_id is not None
            fill = fills.get(c.trader_fill_id)
            assert fill is not None, f"copy {c.id} has no trader fill"
            follow = next(fo for fo in follows if fo.id == c.follow_id)
            assert follow.trader_id == fill.trader_id and c.follower_id == follow.follower_id, c.id
            assert (c.side, c.token_id) == (fill.side, fill.token_id), c.id
        for fill in fills.values():
            exit_row = is_exit(fill.activity_type, fill.side)
            if not exit_row and (fill.activity_type != "TRADE" or not fill.side):
                continue
            for fo in follows:
                if fo.trader_id != fill.trader_id:
                    continue
                n = per[(fill.id, fo.id)]
                if fo.status != FollowStatus.ACTIVE and not exit_row:
                    assert n == 0, f"paused follow {fo.id} got a copy of entry {fill.id}"
                    continue
                assert n == 1, f"fill {fill.id} × follow {fo.id}: {n} copies"
                c = by_pair[(fill.id, fo.id)]
                if fill.is_combo:
                    expected: str | None = "combo"
                elif fill.first_seen_at - fill.occurred_at > delay and not exit_row:
                    expected = "stale"
                elif fo.started_at >= fill.occurred_at + timedelta(seconds=1):
                    expected = "before_follow"
                else:
                    expected = None
                if expected is not None:
                    assert (c.status, c.reason) == (CopyStatus.SKIPPED, expected), (c.id, c.status, c.reason)
                    reasons[expected] += 1
                else:
                    assert c.reason not in ("combo", "stale", "before_follow"), (c.id, c.reason)
                    reasons["eligible"] += 1
                    if exit_row and fill.first_seen_at - fill.occurred_at > delay:
                        reasons["late_exit"] += 1
                    if fill.activity_type == "MERGE":
                        reasons["merge_exit"] += 1
    # every fill the followed traders made at the venue since the follows started was stored once
    with soak.sim.world.lock:
        venue_rows = Counter(r.proxy_wallet.lower() for t in soak.traders
                             for r in soak.sim.world.rows_by_wallet.get(t.lower(), [])
                             if r.kind == "TRADE" and r.timestamp >= soak.started.timestamp() - 3600)
    with soak.db.session() as s:
        stored = Counter(w.lower() for (w,) in s.execute(
            select(Trader.wallet).join(TraderFill, TraderFill.trader_id == Trader.id)
            .where(TraderFill.activity_type == "TRADE")))
    assert stored == venue_rows, (stored, venue_rows)
    return reasons


def check_never_double_traded(soak: Soak) -> None:
    """2. Each venue order of a follower maps to exactly one copy; ≤ 1 live venue order per copy
    (checked after every cycle); fills per copy ≤ its sized size (venue and PMCT records)."""
    assert not soak.violations, "\n".join(soak.violations[:20])
    by_hash = soak.hashes_by_copy()
    assert not soak.violations, "\n".join(soak.violations[:20])
    funders = {a.lower() for a in soak.funders.values()}
    orders = soak.sim.orders()
    assert len({o["id"] for o in orders}) == len(orders)
    for o in orders:
        assert o["maker"].lower() in funders, o
        assert o["id"].lower() in by_hash, f"venue order {o['id']} has no copy order"
    with soak.db.session() as s:
        copies = {c.id: c for c in s.scalars(select(CopyOrder))}
        recorded: dict[int, Decimal] = defaultdict(Decimal)
        for f in s.scalars(select(FollowerFill)):
            recorded[f.copy_order_id] += f.size
    for cid, total in recorded.items():
        co = copies[cid]
        assert co.intended_size is not None and total <= co.intended_size, (cid, total, co.intended_size)
        assert co.filled_size == total, (cid, co.filled_size, total)
    venue_matched: dict[int, Decimal] = defaultdict(Decimal)
    for o in orders:
        venue_matched[by_hash[o["id"].lower()]] += D(o["size_matched"])
    assert ({cid: m for cid, m in venue_matched.items() if m}
            == {cid: m for cid, m in recorded.items() if m}), "PMCT's fills differ from the venue's"


def check_positions_match_the_venue(soak: Soak) -> None:
    """3. PMCT's positions per follower and token = the venue's balances; none negative; no SELL
    ever exceeded what was held (fills replayed in order, per follow); pUSD spent adds up."""
    with soak.db.session() as s:
        positions = list(s.scalars(select(FollowerPosition).where(FollowerPosition.paper.is_(False))))
        fills = list(s.scalars(select(FollowerFill).order_by(FollowerFill.filled_at, FollowerFill.id)))
        followers = {f.id: f for f in s.scalars(select(Follower))}
    ours: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for p in positions:
        assert p.size >= 0, (p.follow_id, p.token_id, p.size)
        if p.size:
            ours[followers[p.follower_id].funder_address.lower()][p.token_id] += p.size
    held: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    cash: dict[int, Decimal] = defaultdict(Decimal)
    for f in fills:
        key = (f.follow_id, f.token_id)
        held[key] += f.size if f.side == "BUY" else -f.size
        assert held[key] >= 0, f"follow {f.follow_id} sold {f.size} of {f.token_id} beyond its holding"
        cash[f.follower_id] += (-f.size * f.price if f.side == "BUY" else f.size * f.price) - f.fee
    paid: dict[str, Decimal] = defaultdict(Decimal)
    for r in soak.sim.redemptions():
        paid[r["holder"]] += D(r["paid"]) / 10**6
    with soak.sim.world.lock:  # a resolved market's losing shares stay where no winner was redeemed
        worthless = {t for m in soak.sim.world.markets.values() if m.payouts
                     for t, p in m.payouts.items() if p == 0}
    for index, funder in soak.funders.items():
        venue = soak.sim.balances(funder)
        theirs = {t: D(v) for t, v in venue["tokens"].items() if D(v) and t not in worthless}
        assert dict(ours[funder.lower()]) == theirs, (index, dict(ours[funder.lower()]), theirs)
        fid = soak.follower_ids[index]
        cash[fid] += paid[funder.lower()]
        # The venue debits pUSD in whole micro-dollars per match; PMCT's size × price per fill is
        # exact, so the two may differ below one micro-dollar per fill (seen with seed 4).
        slack = D("0.000001") * max(1, sum(1 for f in fills if f.follower_id == fid))
        assert abs(D(venue["pusd"]) - (INITIAL_PUSD[index] + cash[fid])) <= slack, (
            index, venue["pusd"], cash[fid])


def check_nothing_stuck(soak: Soak) -> Counter[CopyStatus]:
    """4. After the quiet phase (past give-up): no QUEUED, CLAIMED, SIGNED, IN_DOUBT or CANCELING
    copy; a copy open at the venue has exactly its one live order there."""
    with soak.db.session() as s:
        copies = list(s.scalars(select(CopyOrder)))
    statuses = Counter(c.status for c in copies)
    stuck = [(c.id, c.status.value, c.reason) for c in copies
             if c.status in UNRESOLVED or c.status in (CopyStatus.QUEUED, CopyStatus.CLAIMED, CopyStatus.CANCELING)]
    assert not stuck, stuck
    live = {o["id"].lower() for o in soak.sim.orders(status="LIVE")}
    for c in copies:
        if c.status in OPEN_AT_VENUE:
            assert c.order_hash is not None and c.order_hash.lower() in live, (c.id, c.status)
        else:
            assert c.status in TERMINAL, (c.id, c.status)
            assert c.order_hash is None or c.order_hash.lower() not in live, (c.id, c.status)
    return statuses


def test_soak_watcher_and_executor_keep_the_money_invariants(
        database: Database, simulator_factory: Callable[..., Simulator], make_rig: Callable[..., Rig]) -> None:
    """A random walk with faults, watcher and executor alternating: every money invariant holds."""
    soak = run_soak(database, simulator_factory, make_rig, SEED)
    reasons = check_one_copy_per_eligible_fill(soak)
    check_never_double_traded(soak)
    check_positions_match_the_venue(soak)
    statuses = check_nothing_stuck(soak)
    # the soak really went through the interesting paths (else it proves little)
    with soak.db.session() as s:
        events = Counter(e for (e,) in s.execute(select(CopyOrderEvent.event)))
        sells = s.scalars(select(FollowerFill.id).where(FollowerFill.side == "SELL")).first()
    assert reasons["eligible"] >= 20 and {"combo", "stale", "before_follow"} <= set(reasons), reasons
    assert statuses[CopyStatus.FILLED] >= 5, statuses
    assert events["post_unresolved"] >= 1 and events["reprice_cancel"] >= 1, events
    assert sells is not None, "no SELL copy ever filled"
    assert any(s_ >= 1 for s_ in soak.sleeps), "no Retry-After/backoff wait happened"
    check_resolution_settled_and_redeemed(soak)
    assert not soak.fidelity, "\n".join(soak.fidelity[:20])
    assert soak.quiet_checks == 2 and soak.late_exits >= 2 and soak.merges >= 1, (
        soak.quiet_checks, soak.late_exits, soak.merges)
    assert reasons["late_exit"] >= 1 and reasons["merge_exit"] >= 1, reasons


def check_resolution_settled_and_redeemed(soak: Soak) -> None:
    """5. The resolved market: every position there settled at the payout, each live follower's
    winning shares redeemed once (transaction or relayer), nothing of it left at the venue."""
    market = next(m for m in soak.sim.markets() if m["key"] == RESOLVED_MARKET)
    tokens = set(market["tokens"].values())
    with soak.db.session() as s:
        open_there = [p for p in s.scalars(select(FollowerPosition))
                      if p.token_id in tokens and p.size > 0]
        settled = list(s.scalars(select(PositionSettlement)))
        redemptions = list(s.scalars(select(Redemption)))
    assert open_there == [], [(p.follow_id, p.size) for p in open_there]
    assert all(r.status == RedemptionStatus.CONFIRMED for r in redemptions), [
        (r.follower_id, r.status, r.error) for r in redemptions]
    paid = soak.sim.redemptions()
    assert len(paid) == len(redemptions) == len({(r["holder"], r["condition_id"]) for r in paid})
    with soak.sim.world.lock:
        payouts = dict(soak.sim.world.markets[RESOLVED_MARKET].payouts or {})
    for funder in soak.funders.values():
        left = {t: v for t, v in soak.sim.balances(funder)["tokens"].items()
                if t in tokens and D(v) and payouts.get(t, 0) > 0}
        assert left == {}, (funder, left)  # winning shares all redeemed (losers may stay: worth 0)
    assert settled or not paid


@pytest.fixture
def rig(database: Database, make_rig: Callable[..., Rig]) -> Rig:
    """The smallest live deployment: follower Hardhat #1 copying 10 % (max $50) of TRADER_QUIET;
    no book reuse between executor cycles; the cursor seeded."""
    r = make_rig(database, book_ttl=0.0)
    r.add_follower(1)
    r.watch()
    return r


def test_market_conversion_never_buys_more_shares_than_sized(rig: Rig) -> None:
    """Found by the soak: a copy sized 10 shares, resting unfilled when it reaches the 36 h market
    stage (FAK at the 5 % slippage limit 0.65) while the best ask is 0.63, must not fill > 10.
    The venue spends a market BUY's dollars at the prices it finds, so the budget is counted at
    the best ask (10 × 0.63 = 6.30 pUSD), not at the limit (6.50 pUSD would buy 10.31746)."""
    rig.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "100", "0.62")
    rig.watch()
    rig.execute()  # rests: BUY 10 @ 0.62 (book 0.64 / 0.65)
    assert [c.status for c in rig.copies()] == [CopyStatus.LIVE]
    rig.sim.set_book(FED_YES, bids=[["0.60", "500"]], asks=[["0.63", "500"]])  # better than the limit
    rig.age_everything(37)
    rig.execute()  # market stage: cancel confirmed, FAK BUY at the slippage limit 0.65
    [co] = rig.copies()
    assert co.intended_size == D("10") and co.order_type == "FAK" and co.intended_price == D("0.65")
    assert co.filled_size <= co.intended_size, (co.status, co.order_type, co.filled_size)
    assert (co.status, co.filled_size) == (CopyStatus.FILLED, D("10"))
