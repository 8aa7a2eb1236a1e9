"""Chain fill source benchmarks on PostgreSQL against the simulator (its own process).

1. Detection: block produced (the simulator's wall time of the block holding the leader's fill)
   → the copy's POST /order leaving the executor (`posted_at`), with watcher.py and executor.py
   running as processes, the Data API lagging an hour (so only the chain can see the fills).
   Websocket mode (target p50 ≤ 300 ms) and HTTP polling (target p50 ≤ poll interval + 300 ms).
2. Watcher CPU per block with 10, 1,000 and 10,000 followed wallets (target: flat, ≤ 20 ms at
   10,000): the chain step run in this process (`time.process_time()`), empty blocks and
   blocks with 2 leader fills (stored, one copy queued each).
3. Data API requests per minute at 1,000 followed traders: today (Data API only: every cycle
   polls every trader, paced by the 400 req/10 s budget) vs the chain source healthy (each
   trader every DATA_API_SLOW_INTERVAL). The chain mode runs its cycles on a simulated clock
   (10 s per cycle, as WATCHER_POLL_INTERVAL) so ten minutes take two.
4. The watcher's Data API HTTP cost with httpx's own transport, per request and per second at
   the backfill rate measured in 3 and at full speed (the chain source down).

Run: `.venv/bin/python bench/bench_chain.py [--only detection,cpu,rate,http] [--fills N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_executor import TRADER, env_for, setup
from bench_watcher import _seed
from common import ROOT, fresh_pg, percentile, quiet_scenario_file, simulator_process, stop_all
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from copying.chain_source import Followed
from infra.config import Settings
from infra.db import make_engine, make_sessionmaker, session_scope
from models import CopyOrder, Trader, TraderFill
from watcher import Shard, WatcherContext, make_chain_source, release_lease, watch_cycle, watcher_client

# ---- 1. detection latency ------------------------------------------------------------------------

def bench_detection(sim: dict[str, Any], mode: str, fills: int, poll_interval: float) -> None:
    """Block produced → POST leaving the executor, for `fills` leader fills."""
    with fresh_pg("pmct_bench_chain_det") as url:
        settings, _trader_id = setup(url, sim, Fernet.generate_key().decode())
        factory = make_sessionmaker(make_engine(url))
        env = {**env_for(settings, url), "POLYGON_RPC": sim["rpc"], "FILL_SOURCES": "chain,data_api",
               "WATCHER_POLL_INTERVAL": "10", "DATA_API_SLOW_INTERVAL": "3600",
               "CHAIN_POLL_INTERVAL": str(poll_interval), "POSITION_SNAPSHOT_INTERVAL": "3600"}
        if mode == "websocket":
            env["POLYGON_WS"] = sim["ws"]
        procs = [subprocess.Popen([sys.executable, script], cwd=ROOT, env=env,  # noqa: S603
                                  stderr=subprocess.PIPE, text=True)
                 for script in ("executor.py", "watcher.py")]
        try:
            time.sleep(5.0)  # both daemons up, the chain cursor at the head
            sim["remote"].add_trader_fill(trader=TRADER, market="fed", outcome="Yes", side="BUY",
                                          size="60", price="0.30")  # warm-up: market cache
            time.sleep(4.0)
            with session_scope(factory) as s:
                warm = {fid for (fid,) in s.execute(select(TraderFill.id))}
            for _ in range(fills):
                sim["remote"].add_trader_fill(trader=TRADER, market="fed", outcome="Yes", side="BUY",
                                              size="60", price="0.30")
                time.sleep(random.uniform(2.0, 3.2))  # fills land at every phase of a block
            deadline = time.time() + 30
            rows: list[Any] = []
            while time.time() < deadline:
                with session_scope(factory) as s:
                    rows = list(s.execute(select(TraderFill.id, TraderFill.block_number,
                                                 CopyOrder.posted_at)
                                          .join(CopyOrder, CopyOrder.trader_fill_id == TraderFill.id)))
                rows = [r for r in rows if r[0] not in warm]
                if len(rows) >= fills and all(r[2] is not None for r in rows):
                    break
                time.sleep(0.5)
        finally:
            stop_all(procs, timeout=30)
        made = sim["remote"].block_times(numbers=sorted({r[1] for r in rows if r[1] is not None}))
        lat = [(posted.timestamp() - made[str(block)]) * 1000 for _, block, posted in rows
               if posted is not None and block is not None and str(block) in made]
        print(f"detection ({mode}{'' if mode == 'websocket' else f', poll {poll_interval:g} s'}), "
              f"block produced -> POST leaving the executor, n={len(lat)}/{fills}: "
              f"p50 {percentile(lat, 50):.0f} ms, p99 {percentile(lat, 99):.0f} ms, "
              f"max {max(lat) if lat else float('nan'):.0f} ms", flush=True)


# ---- 2. CPU per block ------------------------------------------------------------------------------

def bench_cpu(sim: dict[str, Any], n: int, blocks: int) -> None:
    """The chain step's CPU per block with n followed wallets: empty blocks, then 2 fills each."""
    with fresh_pg("pmct_bench_chain_cpu") as url:
        wallets = _seed(url, n)
        settings = Settings(database_url=url, data_api_url=sim["data"], gamma_api_url=sim["gamma"],
                            clob_api_url=sim["clob"], polygon_rpc=sim["rpc"], fill_sources=("chain",),
                            chain_rpc_max_rps=10_000)
        factory = make_sessionmaker(make_engine(url))
        with session_scope(factory) as s:
            ids = dict(s.execute(select(Trader.wallet, Trader.id)).all())

        async def run() -> tuple[float, float, int, int]:
            client = watcher_client(settings)
            chain = make_chain_source(settings, factory, client, Shard())
            chain.set_followed(Followed(ids[w], w) for w in wallets)
            remote = sim["remote"]
            try:
                await chain.step()
                empty: list[float] = []
                busy: list[float] = []
                stored = calls = 0
                for i in range(2 * blocks):
                    with_fills = i >= blocks
                    if with_fills:
                        for w in random.sample(wallets, 2):
                            remote.add_trader_fill(trader=w, market="fed", outcome="Yes", side="BUY",
                                                   size="50", price="0.64")
                    head = remote.chain_head()["number"]
                    while True:  # a new block, holding the fills just added
                        now = remote.chain_head()
                        if now["number"] > head and not now["pending_logs"]:
                            break
                        await asyncio.sleep(0.05)
                    cpu0 = time.process_time()
                    step = await chain.step()
                    cost = (time.process_time() - cpu0) * 1000 / max(1, step.to_block - step.from_block + 1)
                    (busy if with_fills else empty).append(cost)
                    stored += step.new_fills if with_fills else 0
                    calls = step.calls
                return statistics.median(empty), statistics.median(busy), stored, calls
            finally:
                await chain.rpc.aclose()
                await client.aclose()

        empty, busy, stored, calls = asyncio.run(run())
        print(f"chain CPU per block, {n:>6} followed wallets: empty {empty:.2f} ms, with 2 fills "
              f"{busy:.2f} ms (median of {blocks}; {stored} fills stored; {calls} RPC calls per "
              f"step, wallet lists of {settings.chain_wallet_chunk})", flush=True)


# ---- 3. Data API requests per minute ---------------------------------------------------------------

def bench_rate(sim: dict[str, Any], n: int, sim_minutes: int) -> float:
    """Data API /v2/activity requests per minute at n traders: today vs chain healthy."""
    remote = sim["remote"]

    def activity_requests() -> int:
        return int(remote.request_counts().get("data GET /v2/activity", 0))

    with fresh_pg("pmct_bench_chain_rate") as url:
        _seed(url, n)
        base = Settings(database_url=url, data_api_url=sim["data"], gamma_api_url=sim["gamma"],
                        clob_api_url=sim["clob"], polygon_rpc=sim["rpc"],
                        position_snapshot_interval=10**9)
        factory = make_sessionmaker(make_engine(url))

        async def today() -> float:
            settings = replace(base, fill_sources=("data_api",))
            client = watcher_client(settings)
            ctx = WatcherContext(settings=settings, factory=factory, client=client, owner="bench")
            try:
                await watch_cycle(ctx, asyncio.Event())  # seeds the cursors
                before, t0 = activity_requests(), time.monotonic()
                for _ in range(2):
                    await watch_cycle(ctx, asyncio.Event())
                return (activity_requests() - before) / (time.monotonic() - t0) * 60
            finally:
                release_lease(factory, Shard(), "bench")
                await client.aclose()

        async def with_chain() -> tuple[float, int]:
            settings = replace(base, fill_sources=("chain", "data_api"))
            client = watcher_client(settings)
            now = [datetime.now(UTC)]
            ctx = WatcherContext(settings=settings, factory=factory, client=client, owner="bench",
                                 clock=lambda: now[0])
            ctx.chain = make_chain_source(settings, factory, client, Shard(), clock=lambda: now[0])
            try:
                await watch_cycle(ctx, asyncio.Event())  # seeds (the chain is not healthy yet)
                cycles = sim_minutes * 6
                warm = 2 * 6  # the first two simulated minutes
                counted = 0
                for i in range(cycles):
                    now[0] += timedelta(seconds=settings.watcher_poll_interval)
                    before = activity_requests()
                    stats = await watch_cycle(ctx, asyncio.Event())
                    assert stats.counts.get("chain_healthy") == 1, stats.counts
                    if i >= warm:
                        counted += activity_requests() - before
                return counted / (sim_minutes - 2), cycles
            finally:
                release_lease(factory, Shard(), "bench")
                await ctx.chain.rpc.aclose()
                await client.aclose()

        rate_today = asyncio.run(today())
        with session_scope(factory) as s:  # forget today's polls: the chain run seeds afresh
            s.execute(update(Trader).values(cursor_ts=None, last_polled_at=None))
        rate_chain, cycles = asyncio.run(with_chain())
        print(f"Data API /v2/activity requests per minute, {n} followed traders: today "
              f"{rate_today:.0f}/min (every trader every cycle, paced by 400 req/10 s); chain "
              f"healthy {rate_chain:.0f}/min (DATA_API_SLOW_INTERVAL={base.data_api_slow_interval:g} s; "
              f"{cycles} cycles of 10 simulated s); position snapshots, unchanged, come on top "
              f"({n} per POSITION_SNAPSHOT_INTERVAL)", flush=True)
        return rate_chain


# ---- 4. the watcher's HTTP transport ---------------------------------------------------------------

def bench_http(sim: dict[str, Any], backfill_per_minute: float) -> None:
    """CPU per Data API request with httpx's transport; per second at backfill and full speed."""
    from bench_http import _measure

    per_request = asyncio.run(_measure(sim["data"], None, 0.06))
    print(f"Data API GET CPU (httpx's transport, paced): {per_request:.3f} ms/request; "
          f"{per_request * backfill_per_minute / 60:.1f} ms CPU per second at the backfill rate "
          f"({backfill_per_minute:.0f}/min), {per_request * 40:.0f} ms per second at full speed "
          f"(40 req/s, chain source down)", flush=True)


def main() -> None:
    """Run the benchmarks and print one line each."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="detection,cpu,rate,http")
    parser.add_argument("--fills", type=int, default=40, help="leader fills per detection mode")
    parser.add_argument("--blocks", type=int, default=20, help="blocks per CPU measurement")
    parser.add_argument("--minutes", type=int, default=10, help="simulated minutes of the rate run")
    args = parser.parse_args()
    only = set(args.only.split(","))
    rate = 500.0
    with tempfile.TemporaryDirectory() as tmp:
        scenario = quiet_scenario_file(Path(tmp))
        if "detection" in only:
            with simulator_process(scenario, "--block-time", "2") as sim:
                sim["remote"].configure(data_api_lag=3600)
                bench_detection(sim, "websocket", args.fills, 1.0)
                bench_detection(sim, "polling", args.fills, 1.0)
        if "cpu" in only:
            with simulator_process(scenario, "--block-time", "0.5") as sim:
                for n in (10, 1000, 10_000):
                    bench_cpu(sim, n, args.blocks)
        if {"rate", "http"} & only:
            with simulator_process(scenario, "--block-time", "2") as sim:
                if "rate" in only:
                    rate = bench_rate(sim, 1000, args.minutes)
                if "http" in only:
                    bench_http(sim, rate)


if __name__ == "__main__":
    os.environ.setdefault("PMCT_ENV_FILE", "/nonexistent/.env")
    main()
