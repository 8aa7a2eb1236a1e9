"""Fan-out benchmark on PostgreSQL against the simulator (its own process): one leader fill copied
by N followers (each its own signer), executor daemons idle on LISTEN.

Measures, per run, the time from the watcher's commit of the fill (its N QUEUED copies and the
NOTIFY, one transaction) to the first and the last copy's POST leaving an executor (`posted_at`)
and to the simulator receiving the last one. Target: detection → last order posted ≤ 2 s with
one executor; the speed-up with 2 and 3 executors. Each run also prints `admin stats --latency`
style stage percentiles of its copies.

Run: `.venv/bin/python bench/bench_fanout.py [--followers 500] [--executors 1,2,3] [--runs 3]`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from common import ROOT, fresh_pg, percentile, quiet_scenario_file, simulator_process
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from copying.intake import store_fills
from crypto import KeyRing, address_of_key
from infra.db import make_engine, make_sessionmaker, session_scope
from models import CopyOrder, Follower, Tier, TraderFill
from ops.accounts import add_follow, add_follower
from ops.latency import latency_table
from wire.types import Activity, ApiCreds, Side, SignatureType

TRADER = "0x0d6cf071dbddb6780f4b6912b49d683b8f234395"
FED_YES = "45202227256710257521935388599371620715578063998808294012969308187257000919017"
FED = "0x649b6fd3f386ef1bf5f7955fa76fa7545c94e2ad5938be41b00eb08d50d7a4c2"


def bench_key(i: int) -> str:
    """A deterministic throwaway private key (never funded anywhere real)."""
    return "0x" + hashlib.sha256(f"pmct-fanout-follower-{i}".encode()).hexdigest()


def seed(url: str, sim: dict, fernet: str, n: int) -> int:
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
                            max_usd_per_trade=Decimal(5), now=datetime.now(UTC) - timedelta(minutes=5))
            trader_id = fo.trader_id
    return trader_id


def env_for(url: str, sim: dict, fernet: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": url, "ENCRYPTION_KEY": fernet, "EXECUTION_MODE": "live",
            "PMCT_ENV_FILE": "/nonexistent/.env", "LOG_LEVEL": "WARNING",
            "POLYMARKET_DATA_API_URL": sim["data"], "POLYMARKET_GAMMA_API_URL": sim["gamma"],
            "POLYMARKET_CLOB_API_URL": sim["clob"], "EXECUTOR_POLL_INTERVAL": "5"}


def commit_fill(factory: object, trader_id: int, n: int) -> float:
    """The watcher's commit of one BUY (its copies QUEUED + NOTIFY); returns the commit time."""
    row = Activity(proxy_wallet=TRADER, timestamp=datetime.now(UTC), type="TRADE", condition_id=FED,
                   token_id=FED_YES, side=Side.BUY, size=Decimal(60), price=Decimal("0.30"),
                   usdc_size=Decimal(18), transaction_hash=f"0x{n:064x}", outcome="Yes", outcome_index=0,
                   title="", slug="", event_slug="", is_combo=False, raw={})
    with session_scope(factory) as s:  # type: ignore[arg-type]
        store_fills(s, trader_id, [row], now=datetime.now(UTC), max_copy_delay=timedelta(seconds=120))
    return time.time()


def run(sim: dict, followers: int, executors: int, runs: int) -> dict[str, float]:
    """One configuration: `executors` daemons, `runs` fills of `followers` copies each."""
    with fresh_pg("pmct_bench_fanout") as url:
        fernet = Fernet.generate_key().decode()
        trader_id = seed(url, sim, fernet, followers)
        factory = make_sessionmaker(make_engine(url))
        procs = [subprocess.Popen([sys.executable, "executor.py"], cwd=ROOT, env=env_for(url, sim, fernet),  # noqa: S603
                                  stderr=subprocess.PIPE, text=True) for _ in range(executors)]
        try:
            deadline = time.time() + 120  # the executors read every follower's balance in the background
            while time.time() < deadline:
                with session_scope(factory) as s:
                    warm = s.scalar(select(func.count()).select_from(Follower)
                                    .where(Follower.venue_balance_at.is_not(None))) or 0
                if warm >= followers:
                    break
                time.sleep(0.5)
            commit_fill(factory, trader_id, 10**6)  # warm-up: connections, market cache
            time.sleep(3)
            lasts, firsts, sims = [], [], []
            for r in range(runs):
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
                time.sleep(2)
            with session_scope(factory) as s:
                table = latency_table(s, datetime.now(UTC), 1)
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.communicate(timeout=60)
    print(f"fan-out {followers} followers, {executors} executor(s), {runs} runs: "
          f"detection → first POST {statistics.median(firsts) * 1000:.0f} ms, "
          f"→ last POST {statistics.median(lasts) * 1000:.0f} ms (median; best {min(lasts) * 1000:.0f}, "
          f"worst {max(lasts) * 1000:.0f}), last received by the venue {statistics.median(sims) * 1000:.0f} ms; "
          f"{followers / statistics.median(lasts):.0f} orders/s")
    print("  stage            copies   p50 ms   p95 ms   p99 ms")
    for row in table:
        print(f"  {row['stage']:<15} {row['copies']:>7} {row['p50_ms'] or '-':>8} {row['p95_ms'] or '-':>8} "
              f"{row['p99_ms'] or '-':>8}")
    return {"last_ms": statistics.median(lasts) * 1000, "p99_last": percentile(lasts, 99) * 1000}


def main() -> None:
    """Run the fan-out benchmark for each executor count."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--followers", type=int, default=500)
    parser.add_argument("--executors", default="1,2,3")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, simulator_process(quiet_scenario_file(Path(tmp))) as sim:
        base = None
        for k in [int(x) for x in args.executors.split(",")]:
            res = run(sim, args.followers, k, args.runs)
            base = base or res["last_ms"]
            print(f"  speed-up vs 1 executor: {base / res['last_ms']:.2f}×")


if __name__ == "__main__":
    main()
