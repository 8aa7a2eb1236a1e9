"""Watcher benchmarks: our CPU per trader poll (N = 100 / 1,000) and fan-out of 1 fill × 10,000 follows.

Run: `.venv/bin/python bench/bench_watcher.py` (needs PostgreSQL at 127.0.0.1:5432).
The simulator runs in its own process, so `time.process_time()` here counts only the watcher's
CPU (HTTP client, parsing, database work). Targets: ≤ 1 ms CPU per poll; fan-out ≤ 0.5 s.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from common import fresh_pg, quiet_scenario_file, simulator_process

from copying.intake import store_fills
from infra.config import Settings
from infra.db import make_engine, make_sessionmaker, session_scope
from models import Follow, Follower, Tier, Trader
from watcher import Shard, WatcherContext, release_lease, watch_cycle, watcher_client
from wire.types import Activity, Side


def _seed(url: str, n_traders: int, follows_per_trader: int = 1) -> list[str]:
    factory = make_sessionmaker(make_engine(url))
    wallets = [f"0x{0xbeef0000 + i:040x}" for i in range(n_traders)]
    start = datetime.now(UTC) - timedelta(minutes=1)
    with session_scope(factory) as s:
        followers = [Follower(name=f"b{i}", email=f"b{i}@x.io", signer_address=f"0x{0xf0000000 + i:040x}",
                              funder_address=f"0x{0xf0000000 + i:040x}", signature_type=0,
                              encrypted_private_key="gAAAA-bench", tier=Tier.WHALE)
                     for i in range(follows_per_trader)]
        s.add_all(followers)
        s.flush()
        for w in wallets:
            t = Trader(wallet=w)
            s.add(t)
            s.flush()
            s.add_all(Follow(follower_id=f.id, trader_id=t.id, copy_pct=Decimal(10),
                             max_usd_per_trade=Decimal(50), started_at=start) for f in followers)
    return wallets


async def _cycles(settings: Settings, url: str, count: int,
                  between: Callable[[int], None] = lambda i: None) -> list[tuple[float, float, dict[str, int]]]:
    """`count` watcher cycles with one context, as the daemon runs them; CPU and wall per cycle."""
    factory = make_sessionmaker(make_engine(url))
    client = watcher_client(settings)
    ctx = WatcherContext(settings=settings, factory=factory, client=client, owner="bench")
    out = []
    try:
        for i in range(count):
            between(i)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            stats = await watch_cycle(ctx, asyncio.Event())
            out.append((time.process_time() - cpu0, time.perf_counter() - wall0, stats.counts))
        return out
    finally:
        release_lease(factory, Shard(), "bench")
        await client.aclose()


def bench_polls(sim: dict, n: int) -> None:
    """CPU per trader poll for N traders: steady-state cycles, then one where each has a new fill.

    Cycle 0 seeds the cursors; cycles 1-3 find nothing new (with N = 1,000, the first 100
    traders still re-read the fill the N = 100 run gave them, inside their overlap window);
    before cycle 4 every trader gets a new fill.
    """
    with fresh_pg("pmct_bench_poll") as url:
        wallets = _seed(url, n)
        settings = Settings(database_url=url, data_api_url=sim["data"], gamma_api_url=sim["gamma"],
                            clob_api_url=sim["clob"], position_snapshot_interval=10**9)

        def add_fills(i: int) -> None:
            if i == 4:
                for w in wallets:
                    sim["remote"].add_trader_fill(trader=w, market="fed", outcome="Yes", side="BUY",
                                                  size="50", price="0.64")

        runs = asyncio.run(_cycles(settings, url, 5, add_fills))
        steady, busy = runs[1:4], runs[4]
        cpu_steady = statistics.median(c for c, _, _ in steady) / n * 1000
        wall_steady = statistics.median(w for _, w, _ in steady)
        print(f"polls N={n:>5}: steady {cpu_steady:.3f} ms CPU/poll (cycle {wall_steady:.2f} s wall); "
              f"with 1 new fill each {busy[0] / n * 1000:.3f} ms CPU/poll "
              f"(cycle {busy[1]:.2f} s, new_fills={busy[2].get('new_fills')}, queued={busy[2].get('queued')})")


def bench_fan_out(follows: int = 10_000) -> None:
    """One new fill of a trader followed 10,000 times: insert fill + 10,000 copy orders, commit."""
    with fresh_pg("pmct_bench_fanout") as url:
        _seed(url, 1, follows_per_trader=follows)
        factory = make_sessionmaker(make_engine(url))
        times = []
        for i in range(5):
            row = Activity(proxy_wallet=f"0x{0xbeef0000:040x}", timestamp=datetime.now(UTC), type="TRADE",
                           condition_id="0x" + "ab" * 32, token_id="123", side=Side.BUY, size=Decimal(100),
                           price=Decimal("0.5"), usdc_size=Decimal(50), transaction_hash=f"0x{i + 1:064x}",
                           outcome="Yes", outcome_index=0, title="", slug="", event_slug="", is_combo=False,
                           raw={})
            with session_scope(factory) as s:
                trader_id = s.query(Trader.id).scalar()
            t0 = time.perf_counter()
            with session_scope(factory) as s:
                result = store_fills(s, trader_id, [row], now=datetime.now(UTC),
                                     max_copy_delay=timedelta(seconds=120))
            times.append(time.perf_counter() - t0)
            assert result.queued == follows, result
        print(f"fan-out 1 fill x {follows} follows on PostgreSQL: median {statistics.median(times):.3f} s, "
              f"min {min(times):.3f} s, max {max(times):.3f} s (target <= 0.5 s)")


def main() -> None:
    """Run both benchmarks and print one line each."""
    with tempfile.TemporaryDirectory() as tmp:
        with simulator_process(quiet_scenario_file(Path(tmp))) as sim:
            for n in (100, 1000):
                bench_polls(sim, n)
    bench_fan_out()


if __name__ == "__main__":
    main()
