"""Open-order benchmarks on PostgreSQL against the simulator (its own process): 1,000 live orders
resting for 50 followers (20 each).

1. The scheduled open-order pass over them (in this process, as the executor runs it): nothing
   to change (refresh only), then every order repriced (cancel → confirmed → new order).
   Target ≤ 2 s.
2. `admin disable --all` with them resting and an executor daemon running (default
   ORDER_MANAGE_INTERVAL): from the kill switch's commit to the last cancel request received by
   the venue and to the last cancel confirmed and recorded. Targets ≤ 2 s / ≤ 5 s.

Run: `.venv/bin/python bench/bench_orders.py [--followers 50] [--per-follower 20]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bench_fanout import seed
from common import ROOT, fresh_pg, quiet_scenario_file, simulator_process
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from copying.intake import store_fills
from executor import build_context, engine_options
from infra.config import Settings
from infra.db import make_engine, make_sessionmaker, session_scope
from models import CopyOrder, CopyOrderEvent, CopyStatus, SystemFlag, TraderFill
from wire.types import Activity, Side

TRADER = "0x0d6cf071dbddb6780f4b6912b49d683b8f234395"
FED_YES = "45202227256710257521935388599371620715578063998808294012969308187257000919017"
FED = "0x649b6fd3f386ef1bf5f7955fa76fa7545c94e2ad5938be41b00eb08d50d7a4c2"


def env_for(url: str, sim: dict, fernet: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": url, "ENCRYPTION_KEY": fernet, "EXECUTION_MODE": "live",
            "PMCT_ENV_FILE": "/nonexistent/.env", "LOG_LEVEL": "WARNING",
            "POLYMARKET_DATA_API_URL": sim["data"], "POLYMARKET_GAMMA_API_URL": sim["gamma"],
            "POLYMARKET_CLOB_API_URL": sim["clob"]}


def place(url: str, sim: dict, fernet: str, trader_id: int, fills: int) -> int:
    """`fills` trader BUYs below the ask, copied by every follower: orders resting at the venue."""
    factory = make_sessionmaker(make_engine(url))
    rows = [Activity(proxy_wallet=TRADER, timestamp=datetime.now(UTC), type="TRADE", condition_id=FED,
                     token_id=FED_YES, side=Side.BUY, size=Decimal(60), price=Decimal("0.30"),
                     usdc_size=Decimal(18), transaction_hash=f"0x{n + 1:064x}", outcome="Yes",
                     outcome_index=0, title="", slug="", event_slug="", is_combo=False, raw={})
            for n in range(fills)]
    with session_scope(factory) as s:
        store_fills(s, trader_id, rows, now=datetime.now(UTC), max_copy_delay=timedelta(seconds=120))
    done = subprocess.run([sys.executable, "executor.py", "--once"], cwd=ROOT,  # noqa: S603
                          env={**env_for(url, sim, fernet), "ORDER_MANAGE_INTERVAL": "3600"},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    with session_scope(factory) as s:
        return s.scalar(select(func.count()).select_from(CopyOrder).where(CopyOrder.status == CopyStatus.LIVE)) or 0


def bench_pass(url: str, sim: dict, fernet: str) -> None:
    """The scheduled pass in this process: steady, then with every order repriced."""
    from copying.manage import Managed, manage_open_orders
    from polymarket_client import PolymarketClient

    settings = Settings(database_url=url, data_api_url=sim["data"], gamma_api_url=sim["gamma"],
                        clob_api_url=sim["clob"], encryption_key=fernet, execution_mode="live")
    factory = make_sessionmaker(make_engine(url, **engine_options(url)))

    async def go() -> None:
        client = PolymarketClient.from_settings(settings)
        ctx = build_context(settings, factory, client)
        try:
            for label in ("steady (first: fills caught up since the orders were placed)", "steady", "steady"):
                t = time.perf_counter()
                counts = await manage_open_orders(ctx)
                print(f"open-order pass, {label}: {time.perf_counter() - t:.2f} s for {counts[Managed.OPEN]} "
                      f"open orders ({dict(counts)})")
            with session_scope(factory) as s:  # 7 h later: the schedule moves every order toward the mid
                for fill in s.scalars(select(TraderFill)):
                    fill.occurred_at = fill.occurred_at - timedelta(hours=7)
            t = time.perf_counter()
            counts = await manage_open_orders(ctx)
            print(f"open-order pass, every order repriced: {time.perf_counter() - t:.2f} s ({dict(counts)})")
        finally:
            await client.aclose()

    asyncio.run(go())


def bench_disable(url: str, sim: dict, fernet: str, resting: int) -> None:
    """`admin disable --all` with an executor daemon running: kill switch → last cancel request /
    last confirmation."""
    factory = make_sessionmaker(make_engine(url))
    env = env_for(url, sim, fernet)
    ex = subprocess.Popen([sys.executable, "executor.py"], cwd=ROOT, env=env,  # noqa: S603
                          stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(10)  # start-up, its first scheduled pass over the resting orders, balances
        out = subprocess.run([sys.executable, "admin", "disable", "--all", "--reason", "bench", "--wait", "60"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        with session_scope(factory) as s:
            switched = s.get(SystemFlag, "kill_switch")
            assert switched is not None
            t0 = switched.updated_at.timestamp()
            confirmed = s.scalar(select(func.max(CopyOrderEvent.created_at)).where(
                CopyOrderEvent.event == "canceled"))
            assert confirmed is not None
            n = s.scalar(select(func.count()).select_from(CopyOrder).where(CopyOrder.reason == "kill_switch"))
        deletes = [r["time"] for r in sim["remote"].requests(service="clob")
                   if r["method"] == "DELETE" and r["time"] >= t0 - 1]
        print(f"admin disable --all with {resting} live orders resting: {n} cancelled; last cancel request "
              f"received {max(deletes) - t0:.2f} s after the switch ({len(deletes)} DELETE requests), last "
              f"confirmation recorded {confirmed.timestamp() - t0:.2f} s after it (targets 2 / 5 s); "
              f"admin said: {out.stdout.strip().splitlines()[-1]}")
    finally:
        ex.send_signal(signal.SIGTERM)
        ex.communicate(timeout=60)


def main() -> None:
    """Set up the resting orders, then run both benchmarks."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--followers", type=int, default=50)
    parser.add_argument("--per-follower", type=int, default=20)
    parser.add_argument("--only", choices=("pass", "disable"), default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, simulator_process(quiet_scenario_file(Path(tmp))) as sim:
        for which in [args.only] if args.only else ("pass", "disable"):
            with fresh_pg("pmct_bench_orders") as url:
                fernet = Fernet.generate_key().decode()
                trader_id = seed(url, sim, fernet, args.followers)
                resting = place(url, sim, fernet, trader_id, args.per_follower)
                if which == "pass":
                    bench_pass(url, sim, fernet)
                else:
                    bench_disable(url, sim, fernet, resting)


if __name__ == "__main__":
    main()
