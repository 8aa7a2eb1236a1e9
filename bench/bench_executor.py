"""Executor benchmarks on PostgreSQL against the simulator (live mode, real signing).

1. Copy overhead: time from the watcher's commit of a new fill (and its QUEUED copy) to the
   executor taking the POST /order off the wire (`posted_at`, set just before sending), with the
   executor idle on LISTEN. Targets: p50 <= 15 ms, p99 <= 50 ms.
2. Throughput: N queued copies, one `executor.py --once` process; orders posted per second.
   Target >= 500/s. The copies are a fan-out, as copy trading makes them: N / K trader fills,
   each copied by K followers (default 50). One signer is capped by Polymarket's per-signer
   order bucket (Standard tier: 40 orders/s, burst 60; docs/POLYMARKET.md §5.9), which the client honours,
   so a single follower (`--followers 1`) measures that bucket, not the executor.
Run: `.venv/bin/python bench/bench_executor.py [--overhead N] [--throughput N] [--followers K]`.
"""

from __future__ import annotations

import argparse
import asyncio
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
from sqlalchemy.orm import Session, sessionmaker

from copying.intake import store_fills
from crypto import KeyRing, address_of_key
from infra.config import Settings
from infra.db import make_engine, make_sessionmaker, session_scope
from models import CopyOrder, CopyStatus, Tier
from ops.accounts import add_follow, add_follower
from polymarket_client import PolymarketClient
from wire.types import Activity, ApiCreds, Side, SignatureType

KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # Hardhat #1 (public)
WALLET = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
TRADER = "0x0d6cf071dbddb6780f4b6912b49d683b8f234395"
FED_YES = "45202227256710257521935388599371620715578063998808294012969308187257000919017"
FED = "0x649b6fd3f386ef1bf5f7955fa76fa7545c94e2ad5938be41b00eb08d50d7a4c2"


def setup(url: str, sim: dict, fernet: str) -> tuple[Settings, int]:
    """A follower with real credentials following TRADER; returns settings and the trader id."""
    settings = Settings(database_url=url, data_api_url=sim["data"], gamma_api_url=sim["gamma"],
                        clob_api_url=sim["clob"], encryption_key=fernet, execution_mode="live")

    async def derive() -> ApiCreds:
        client = PolymarketClient.from_settings(settings, http2=False)
        try:
            return await client.create_or_derive_api_key(KEY)
        finally:
            await client.aclose()

    creds = asyncio.run(derive())
    ring = KeyRing(fernet)
    factory = make_sessionmaker(make_engine(url))
    with session_scope(factory) as s:
        f = add_follower(s, ring, name="bench", email="b@x.io", private_key=KEY,
                         signature_type=SignatureType.EOA, funder=None, tier=Tier.WHALE)
        f.encrypted_api_creds = ring.encrypt_api_creds(creds)
        fo = add_follow(s, follower_wallet=WALLET, trader_wallet=TRADER, copy_pct=Decimal(10),
                        max_usd_per_trade=Decimal(5), now=datetime.now(UTC) - timedelta(minutes=5))
        trader_id = fo.trader_id
    sim["remote"].fund(address=WALLET, pusd="1000000")
    return settings, trader_id


def bench_key(i: int) -> str:
    """A deterministic throwaway private key for bench follower `i` (never funded anywhere real)."""
    return "0x" + hashlib.sha256(f"pmct-bench-follower-{i}".encode()).hexdigest()


def add_followers(url: str, sim: dict, fernet: str, count: int) -> None:
    """`count` more followers of TRADER, each its own signer with simulator-issued credentials."""
    ring = KeyRing(fernet)
    factory = make_sessionmaker(make_engine(url))
    with session_scope(factory) as s:
        for i in range(count):
            key = bench_key(i)
            address = address_of_key(key)
            raw = sim["remote"].create_api_key(address=address)
            sim["remote"].fund(address=address, pusd="1000000")
            f = add_follower(s, ring, name=f"bench-{i}", email=f"b{i}@x.io", private_key=key,
                             signature_type=SignatureType.EOA, funder=None, tier=Tier.WHALE)
            f.encrypted_api_creds = ring.encrypt_api_creds(
                ApiCreds(raw["apiKey"], raw["secret"], raw["passphrase"]))
            add_follow(s, follower_wallet=address, trader_wallet=TRADER, copy_pct=Decimal(10),
                       max_usd_per_trade=Decimal(5), now=datetime.now(UTC) - timedelta(minutes=5))


def queue_fill(factory: sessionmaker[Session], trader_id: int, n: int) -> float:
    """Commit one new trader fill (→ one QUEUED copy); returns the commit time (epoch s)."""
    row = Activity(proxy_wallet=TRADER, timestamp=datetime.now(UTC), type="TRADE", condition_id=FED,
                   token_id=FED_YES, side=Side.BUY, size=Decimal(60), price=Decimal("0.30"),
                   usdc_size=Decimal(18), transaction_hash=f"0x{n:064x}", outcome="Yes", outcome_index=0,
                   title="", slug="", event_slug="", is_combo=False, raw={})
    with session_scope(factory) as s:
        store_fills(s, trader_id, [row], now=datetime.now(UTC), max_copy_delay=timedelta(seconds=120))
    return time.time()


def env_for(settings: Settings, url: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": url, "ENCRYPTION_KEY": settings.encryption_key or "",
            "EXECUTION_MODE": "live", "PMCT_ENV_FILE": "/nonexistent/.env", "LOG_LEVEL": "WARNING",
            "POLYMARKET_DATA_API_URL": settings.data_api_url,
            "POLYMARKET_GAMMA_API_URL": settings.gamma_api_url,
            "POLYMARKET_CLOB_API_URL": settings.clob_api_url,
            "EXECUTOR_POLL_INTERVAL": "5", "ORDER_MANAGE_INTERVAL": "3600"}


def bench_overhead(sim: dict, n: int) -> None:
    """Commit → POST latency with a LISTENing executor."""
    with fresh_pg("pmct_bench_exec") as url:
        settings, trader_id = setup(url, sim, Fernet.generate_key().decode())
        factory = make_sessionmaker(make_engine(url))
        proc = subprocess.Popen([sys.executable, "executor.py"], cwd=ROOT, env=env_for(settings, url),  # noqa: S603
                                stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(2.0)
            queue_fill(factory, trader_id, 10**6)  # warm-up: market cache, connections
            time.sleep(1.0)
            commits: dict[int, float] = {}
            for i in range(n):
                t = queue_fill(factory, trader_id, i + 1)
                with session_scope(factory) as s:
                    cid = s.scalar(select(func.max(CopyOrder.id)))
                assert cid is not None  # the fill just queued a copy
                commits[cid] = t
                time.sleep(0.03)
            deadline = time.time() + 30
            while time.time() < deadline:
                with session_scope(factory) as s:
                    left = s.scalar(select(func.count()).select_from(CopyOrder).where(
                        CopyOrder.status.in_([CopyStatus.QUEUED, CopyStatus.CLAIMED, CopyStatus.SIGNED])))
                if not left:
                    break
                time.sleep(0.2)
            with session_scope(factory) as s:
                rows = s.execute(select(CopyOrder.id, CopyOrder.claimed_at, CopyOrder.signed_at,
                                        CopyOrder.posted_at)
                                 .where(CopyOrder.id.in_(list(commits)))).all()
            posted = {r[0]: r[3] for r in rows}
            stages = {"commit → claimed": [(r[1].timestamp() - commits[r[0]]) * 1000 for r in rows if r[1]],
                      "claimed → signed": [(r[2] - r[1]).total_seconds() * 1000 for r in rows if r[1] and r[2]],
                      "signed → POST": [(r[3] - r[2]).total_seconds() * 1000 for r in rows if r[2] and r[3]]}
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)
        lat = [(p.timestamp() - t) * 1000 for c, t in commits.items() if (p := posted.get(c))]
        print(f"copy overhead (commit -> POST), n={len(lat)}: p50 {percentile(lat, 50):.1f} ms, "
              f"p99 {percentile(lat, 99):.1f} ms, mean {statistics.mean(lat):.1f} ms "
              f"(targets 15 / 50 ms)")
        print("  by stage, p50 / p99 ms: " + "; ".join(
            f"{name} {percentile(v, 50):.1f} / {percentile(v, 99):.1f}" for name, v in stages.items() if v))


def bench_throughput(sim: dict, n: int, followers: int) -> None:
    """N queued copies (N / K fills × K followers), one executor process: orders/s."""
    with fresh_pg("pmct_bench_tput") as url:
        fernet = Fernet.generate_key().decode()
        settings, trader_id = setup(url, sim, fernet)
        if followers > 1:
            add_followers(url, sim, fernet, followers - 1)
        factory = make_sessionmaker(make_engine(url))
        for i in range(-(-n // followers)):
            queue_fill(factory, trader_id, 2 * 10**6 + i)
        with session_scope(factory) as s:
            n = s.scalar(select(func.count()).select_from(CopyOrder)) or 0
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "executor.py", "--once"], cwd=ROOT,  # noqa: S603
                              env=env_for(settings, url), capture_output=True, text=True, timeout=1800)
        elapsed = time.perf_counter() - t0
        with session_scope(factory) as s:
            posted = s.scalar(select(func.count()).select_from(CopyOrder)
                              .where(CopyOrder.posted_at.is_not(None))) or 0
            first = s.scalar(select(func.min(CopyOrder.signed_at)))
            last = s.scalar(select(func.max(CopyOrder.posted_at)))
        span = (last - first).total_seconds() if first and last else float("nan")
        print(f"throughput: {posted}/{n} orders posted by one executor process in {elapsed:.1f} s wall "
              f"(incl. start-up and management pass) = {posted / elapsed:.0f} orders/s; "
              f"steady (first SIGNED → last POST) {posted / span:.0f} orders/s "
              f"(target >= 500); {followers} follower(s); rc={done.returncode}")
        if done.returncode != 0:
            print(done.stderr[-2000:])


def main() -> None:
    """Run both benchmarks."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--overhead", type=int, default=200)
    parser.add_argument("--throughput", type=int, default=1000)
    parser.add_argument("--followers", type=int, default=50,
                        help="followers sharing the throughput copies (each its own signer)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, simulator_process(quiet_scenario_file(Path(tmp))) as sim:
        if args.overhead:
            bench_overhead(sim, args.overhead)
        if args.throughput:
            bench_throughput(sim, args.throughput, max(1, args.followers))


if __name__ == "__main__":
    main()
