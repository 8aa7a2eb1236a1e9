"""Fan-out benchmark on PostgreSQL against the simulator (its own process): one leader fill copied
by N followers (each its own signer), executor daemons idle on LISTEN.

Measures, per run, the time from the watcher's commit of the fill (its N QUEUED copies and the
NOTIFY, one transaction) to the first and the last copy's POST leaving an executor (`posted_at`)
and to the simulator receiving the last one. Target: detection → last order posted ≤ 2 s with
one executor; the speed-up with 2 and 3 executors. Each run also prints `admin stats --latency`
style stage percentiles of its copies.

Run: `.venv/bin/python bench/bench_fanout.py [--followers 500] [--executors 1,2,3] [--runs 3]
[--venue-latency 50] [--post-concurrency 32]`. `--venue-latency` makes the simulator answer each
order POST of the measured runs that many ms later (the real venue is a round trip away, the
simulator is on loopback): then the requests in flight, not the CPU, bound the fan-out.

`--crowding` (README "Copy quality"): the same fan-out on a thin book. Each follower asks for 60
shares (10 % of a 600-share BUY at 0.30); the book offers 24 shares per follower at 0.30
(room for 2 in 5) and a wall at 0.40, beyond every follower's 5 % limit. Prints per round the
total matched at the venue (the simulator's orders) vs the depth, the allocation's spread in lots
(all followers ask alike, so a fair allocation is within one lot), and whether the same
follower was last in the plan's order twice in a row; `--no-crowding-control` runs it with
CROWDING_CONTROL=off for the before numbers; `--room 60` gives every follower its full size.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from common import ROOT, fresh_pg, percentile, quiet_scenario_file, simulator_process, stop_all
from cryptography.fernet import Fernet
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from copying.intake import store_fills
from crypto import KeyRing, address_of_key
from infra.db import make_engine, make_sessionmaker, session_scope
from models import CopyOrder, CrowdPlan, Follower, Tier, TraderFill
from ops.accounts import add_follow, add_follower
from ops.latency import latency_table
from wire.types import Activity, ApiCreds, Side, SignatureType

TRADER = "0x0d6cf071dbddb6780f4b6912b49d683b8f234395"
FED_YES = "45202227256710257521935388599371620715578063998808294012969308187257000919017"
FED = "0x649b6fd3f386ef1bf5f7955fa76fa7545c94e2ad5938be41b00eb08d50d7a4c2"


def bench_key(i: int) -> str:
    """A deterministic throwaway private key (never funded anywhere real)."""
    return "0x" + hashlib.sha256(f"pmct-fanout-follower-{i}".encode()).hexdigest()


CROWD_SHARES, CROWD_PRICE, CROWD_ROOM = Decimal(600), Decimal("0.30"), Decimal(24)  # 24 of 60 per follower


def wait_for_balances(factory: sessionmaker[Session], followers: int, timeout: float = 120) -> None:
    """Until the executors have read every follower's balance (they do so in the background)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with session_scope(factory) as s:
            warm = s.scalar(select(func.count()).select_from(Follower)
                            .where(Follower.venue_balance_at.is_not(None))) or 0
        if warm >= followers:
            return
        time.sleep(0.5)


def seed(url: str, sim: dict, fernet: str, n: int, max_trade: Decimal = Decimal(5)) -> int:
    """N followers of TRADER with simulator credentials and pUSD; returns the trader id."""
    ring = KeyRing(fernet)
    factory = make_sessionmaker(make_engine(url))
    trader_id = 0
    with session_scope(factory) as s:
        for i in range(n):
            key = bench_key(i)
            address = address_of_key(key)
            raw = sim["remote"].create_api_key(address=address)
            sim["remote"].fund(address=address, pusd="1000000")
            f = add_follower(s, ring, name=f"fan-{i}", email=f"f{i}@x.io", private_key=key,
                             signature_type=SignatureType.EOA, funder=None, tier=Tier.WHALE)
            f.encrypted_api_creds = ring.encrypt_api_creds(ApiCreds(raw["apiKey"], raw["secret"], raw["passphrase"]))
            fo = add_follow(s, follower_wallet=address, trader_wallet=TRADER, copy_pct=Decimal(10),
                            max_usd_per_trade=max_trade, now=datetime.now(UTC) - timedelta(minutes=5))
            trader_id = fo.trader_id
    return trader_id


def env_for(url: str, sim: dict, fernet: str, post_concurrency: int | None = None) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": url, "ENCRYPTION_KEY": fernet, "EXECUTION_MODE": "live",
           "PMCT_ENV_FILE": "/nonexistent/.env", "LOG_LEVEL": "WARNING",
           "POLYMARKET_DATA_API_URL": sim["data"], "POLYMARKET_GAMMA_API_URL": sim["gamma"],
           "POLYMARKET_CLOB_API_URL": sim["clob"], "EXECUTOR_POLL_INTERVAL": "5"}
    if post_concurrency is not None:
        env["EXECUTOR_POST_CONCURRENCY"] = str(post_concurrency)
    return env


def commit_fill(factory: object, trader_id: int, n: int, size: Decimal = Decimal(60)) -> float:
    """The watcher's commit of one BUY (its copies QUEUED + NOTIFY); returns the commit time."""
    row = Activity(proxy_wallet=TRADER, timestamp=datetime.now(UTC), type="TRADE", condition_id=FED,
                   token_id=FED_YES, side=Side.BUY, size=size, price=Decimal("0.30"),
                   usdc_size=size * Decimal("0.30"), transaction_hash=f"0x{n:064x}", outcome="Yes", outcome_index=0,
                   title="", slug="", event_slug="", is_combo=False, raw={})
    with session_scope(factory) as s:  # type: ignore[arg-type]
        store_fills(s, trader_id, [row], now=datetime.now(UTC), max_copy_delay=timedelta(seconds=120))
    return time.time()


def run(sim: dict, followers: int, executors: int, runs: int, *, latency_ms: float = 0,
        post_concurrency: int | None = None) -> dict[str, float]:
    """One configuration: `executors` daemons, `runs` fills of `followers` copies each; with
    `latency_ms`, the simulator answers each order POST of the measured runs that much later
    (a venue across the internet), and `post_concurrency` sets EXECUTOR_POST_CONCURRENCY."""
    with fresh_pg("pmct_bench_fanout") as url:
        fernet = Fernet.generate_key().decode()
        trader_id = seed(url, sim, fernet, followers)
        factory = make_sessionmaker(make_engine(url))
        env = env_for(url, sim, fernet, post_concurrency)
        procs = [subprocess.Popen([sys.executable, "executor.py"], cwd=ROOT, env=env,  # noqa: S603
                                  stderr=subprocess.PIPE, text=True) for _ in range(executors)]
        try:
            wait_for_balances(factory, followers)
            commit_fill(factory, trader_id, 10**6)  # warm-up: connections, market cache
            time.sleep(3)
            lasts, firsts, sims = [], [], []
            for r in range(runs):
                if latency_ms:
                    sim["remote"].inject_fault(method="POST", path="/order*", kind="delay", count=followers,
                                               delay=latency_ms / 1000)
                t0 = commit_fill(factory, trader_id, r + 1)
                with session_scope(factory) as s:
                    fill_id = s.scalar(select(func.max(TraderFill.id)))
                deadline = time.time() + 60
                while time.time() < deadline:
                    with session_scope(factory) as s:
                        left = s.scalar(select(func.count()).select_from(CopyOrder).where(
                            CopyOrder.trader_fill_id == fill_id, CopyOrder.posted_at.is_(None))) or 0
                    if not left:
                        break
                    time.sleep(0.05)
                with session_scope(factory) as s:
                    first, last = s.execute(select(func.min(CopyOrder.posted_at), func.max(CopyOrder.posted_at))
                                            .where(CopyOrder.trader_fill_id == fill_id)).one()
                received = [q["time"] for q in sim["remote"].requests(service="clob")
                            if q["time"] >= t0 and q["method"] == "POST" and q["path"] in ("/order", "/orders")]
                assert first is not None and last is not None
                firsts.append(first.timestamp() - t0)
                lasts.append(last.timestamp() - t0)
                sims.append((max(received) - t0) if received else float("nan"))
                sim["remote"].clear_faults()
                time.sleep(2)
            with session_scope(factory) as s:
                table = latency_table(s, datetime.now(UTC), 1)
        finally:
            stop_all(procs, timeout=60)
    setting = "" if post_concurrency is None else f", {post_concurrency} POSTs in flight"
    print(f"fan-out {followers} followers, {executors} executor(s){setting}, "
          f"venue latency {latency_ms:.0f} ms, {runs} runs: "
          f"detection → first POST {statistics.median(firsts) * 1000:.0f} ms, "
          f"→ last POST {statistics.median(lasts) * 1000:.0f} ms (median; best {min(lasts) * 1000:.0f}, "
          f"worst {max(lasts) * 1000:.0f}), last received by the venue {statistics.median(sims) * 1000:.0f} ms; "
          f"{followers / statistics.median(lasts):.0f} orders/s")
    print("  stage            copies   p50 ms   p95 ms   p99 ms")
    for row in table:
        print(f"  {row['stage']:<15} {row['copies']:>7} {row['p50_ms'] or '-':>8} {row['p95_ms'] or '-':>8} "
              f"{row['p99_ms'] or '-':>8}")
    return {"last_ms": statistics.median(lasts) * 1000, "p99_last": percentile(lasts, 99) * 1000}


def wait_settled(factory: object, fill_id: int, timeout: float = 90) -> None:
    """Until every copy of the fill is posted or skipped and none is waiting on the venue's answer."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with session_scope(factory) as s:  # type: ignore[arg-type]
            left = s.scalar(select(func.count()).select_from(CopyOrder).where(
                CopyOrder.trader_fill_id == fill_id, CopyOrder.status.in_(("QUEUED", "CLAIMED", "SIGNED")))) or 0
        if not left:
            return
        time.sleep(0.1)


def crowding_run(sim: dict, followers: int, executors: int, runs: int, control: bool,
                 room: Decimal = CROWD_ROOM) -> None:
    """`runs` fills of `followers` copies on a thin book (module docstring); prints the numbers."""
    depth = room * followers
    with fresh_pg("pmct_bench_crowd") as url:
        fernet = Fernet.generate_key().decode()
        trader_id = seed(url, sim, fernet, followers, max_trade=Decimal(50))
        factory = make_sessionmaker(make_engine(url))
        env = {**env_for(url, sim, fernet), "CROWDING_CONTROL": "on" if control else "off"}
        procs = [subprocess.Popen([sys.executable, "executor.py"], cwd=ROOT, env=env,  # noqa: S603
                                  stderr=subprocess.PIPE, text=True) for _ in range(executors)]
        lasts: list[int] = []
        try:
            wait_for_balances(factory, followers)
            for r in range(runs):
                sim["remote"].set_book(token_id=FED_YES, bids=[["0.2", "50000"]],
                                       asks=[[str(CROWD_PRICE), str(depth)], ["0.4", "1000000"]])
                t0 = commit_fill(factory, trader_id, 2 * 10**6 + r, size=CROWD_SHARES)
                with session_scope(factory) as s:
                    fill_id = s.scalar(select(func.max(TraderFill.id)))
                assert fill_id is not None
                wait_settled(factory, fill_id)
                time.sleep(1)
                matched = {o["id"]: Decimal(str(o["size_matched"])) for o in sim["remote"].orders()
                           if o["asset_id"] == FED_YES}  # what the venue matched, per order hash
                with session_scope(factory) as s:
                    rows = [(cid, fid, st, size, matched.get(h or "", Decimal(0)), at) for cid, fid, st, size, h, at
                            in s.execute(select(CopyOrder.id, CopyOrder.follower_id, CopyOrder.status,
                                                CopyOrder.intended_size, CopyOrder.order_hash, CopyOrder.posted_at)
                                         .where(CopyOrder.trader_fill_id == fill_id))]
                    plan = s.scalar(select(CrowdPlan).where(CrowdPlan.trader_fill_id == fill_id))
                    last = None
                    if plan is not None:
                        last_copy = plan.order[-1]
                        last = next(fid for cid, fid, *_ in rows if cid == last_copy)
                filled = sum((f or Decimal(0) for *_, f, _p in rows), Decimal(0))
                asked = sum((i or Decimal(0) for *_, i, _f, _p in rows), Decimal(0))
                sizes = [i for _c, _f, st, i, _fl, _p in rows if i]
                got = [fl for *_, fl, _p in rows]
                skipped = sum(1 for _c, _f, st, *_ in rows if st == "SKIPPED")
                spread = (max(sizes) - min(sizes)) / Decimal("0.01") if sizes else Decimal(0)
                posted = [p for *_, p in rows if p is not None]
                span = (max(posted).timestamp() - t0) * 1000 if posted else float("nan")
                repeat = last is not None and bool(lasts) and lasts[-1] == last
                if last is not None:
                    lasts.append(last)
                starved = sum(1 for g in got if not g)
                print(f"  round {r + 1}: asked {asked} shares of a {depth}-share book, filled {filled} "
                      f"({'≤' if filled <= depth else '>'} depth); allocation spread "
                      f"{spread:.0f} lot(s); {starved} follower(s) got nothing, {skipped} skipped; "
                      f"last follower {'repeated' if repeat else 'new'}; last POST {span:.0f} ms")
                time.sleep(1)
        finally:
            stop_all(procs, timeout=60)
    twice = any(a == b for a, b in zip(lasts, lasts[1:], strict=False))
    print(f"crowding {'on' if control else 'off'}, {followers} followers, {executors} executor(s): "
          f"follower last twice in a row: {'yes' if twice else 'no'} ({len(lasts)} plans)")


def main() -> None:
    """Run the fan-out benchmark for each executor count."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--followers", type=int, default=500)
    parser.add_argument("--executors", default="1,2,3")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--venue-latency", type=float, default=0,
                        help="ms the simulator waits before answering each order POST of the measured runs")
    parser.add_argument("--post-concurrency", type=int, default=None,
                        help="EXECUTOR_POST_CONCURRENCY for the executors (default: the setting's)")
    parser.add_argument("--crowding", action="store_true", help="thin book: depth, fairness, rotation")
    parser.add_argument("--no-crowding-control", action="store_true", help="with --crowding: CROWDING_CONTROL=off")
    parser.add_argument("--room", type=Decimal, default=CROWD_ROOM,
                        help="with --crowding: shares on offer per follower (each asks for 60)")
    args = parser.parse_args()
    if args.crowding:
        with tempfile.TemporaryDirectory() as tmp, simulator_process(quiet_scenario_file(Path(tmp))) as sim:
            for k in [int(x) for x in args.executors.split(",")]:
                crowding_run(sim, args.followers, k, args.runs, not args.no_crowding_control, args.room)
        return
    with tempfile.TemporaryDirectory() as tmp, simulator_process(quiet_scenario_file(Path(tmp))) as sim:
        base = None
        for k in [int(x) for x in args.executors.split(",")]:
            res = run(sim, args.followers, k, args.runs, latency_ms=args.venue_latency,
                      post_concurrency=args.post_concurrency)
            base = base or res["last_ms"]
            print(f"  speed-up vs 1 executor: {base / res['last_ms']:.2f}×")


if __name__ == "__main__":
    main()
