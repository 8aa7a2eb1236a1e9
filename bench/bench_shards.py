"""Watcher shards: the steady cycle time (every trader of a shard polled once) for N followed
traders, with 1, 2 and 3 shard daemons (`watcher.py --shard i/K`) on PostgreSQL, the simulator in
its own process.

Each process keeps the Data API budget of one IP (400 requests / 10 s on /v2/activity, which the
client enforces), so this is the case of shards on different hosts: on one host they would share
one IP's budget and gain nothing but CPU. Run: `.venv/bin/python bench/bench_shards.py [--traders 300]`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_watcher import _seed
from common import ROOT, fresh_pg, quiet_scenario_file, simulator_process, stop_all
from sqlalchemy import select


def run(sim: dict, traders: int, shards: int, cycles: int = 3) -> float:
    """Steady-state seconds for one full cycle of a shard (the mean over shards of their cycles
    after the first, whose request budget starts full)."""
    from infra.db import make_engine, make_sessionmaker, session_scope
    from models import DaemonHeartbeat

    with fresh_pg("pmct_bench_shards") as url:
        _seed(url, traders)
        env = {**os.environ, "DATABASE_URL": url, "PMCT_ENV_FILE": "/nonexistent/.env", "LOG_LEVEL": "WARNING",
               "POLYMARKET_DATA_API_URL": sim["data"], "POLYMARKET_GAMMA_API_URL": sim["gamma"],
               "POLYMARKET_CLOB_API_URL": sim["clob"], "POSITION_SNAPSHOT_INTERVAL": "1000000000",
               "WATCHER_POLL_INTERVAL": "0.1"}
        procs = [subprocess.Popen([sys.executable, "watcher.py", "--shard", f"{i}/{shards}"],  # noqa: S603
                                  cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True) for i in range(shards)]
        factory = make_sessionmaker(make_engine(url))
        seen: dict[str, list[tuple[object, int]]] = {}
        try:
            deadline = time.time() + 600
            while time.time() < deadline:
                with session_scope(factory) as s:
                    for hb in s.scalars(select(DaemonHeartbeat)):
                        runs = seen.setdefault(hb.name, [])
                        if not runs or runs[-1][0] != hb.last_cycle_at:
                            runs.append((hb.last_cycle_at, hb.last_cycle_ms or 0))
                if len(seen) == shards and all(len(r) >= cycles + 1 for r in seen.values()):
                    break
                time.sleep(0.2)
        finally:
            stop_all(procs, timeout=60)
        steady = [ms for runs in seen.values() for _, ms in runs[2:]]
        return sum(steady) / len(steady) / 1000


def main() -> None:
    """One line per shard count."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--traders", type=int, default=300)
    parser.add_argument("--shards", default="1,2,3")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, simulator_process(quiet_scenario_file(Path(tmp))) as sim:
        base = None
        for k in [int(x) for x in args.shards.split(",")]:
            wall = run(sim, args.traders, k)
            base = base or wall
            print(f"watcher, {args.traders} traders, {k} shard process(es): a steady cycle (every trader of "
                  f"a shard polled once) takes {wall:.1f} s; speed-up {base / wall:.2f}×")


if __name__ == "__main__":
    main()
