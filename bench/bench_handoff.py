"""Hand-off benchmark, measured from outside: both daemons running as processes on PostgreSQL,
the simulator in its own process producing a steady stream of trader fills; for each copy, the
time from the watcher's commit of the fill to the simulator receiving the order.

The commit time is taken as the fill's `first_seen_at` (the watcher stamps it when the poll
answer is in, just before its one transaction), so the figure also holds the watcher's own
commit; the reception time is the simulator's (`created_at` of the order it accepted). Copies
rest (below the ask), so the open-order work has a growing book to look after while it runs.
Target: p99 ≤ 50 ms.

Run: `.venv/bin/python bench/bench_handoff.py [--fills 300] [--every 0.2] [--followers 5]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_fanout import seed
from common import ROOT, fresh_pg, percentile, quiet_scenario_file, simulator_process, stop_all
from cryptography.fernet import Fernet
from sqlalchemy import select

from infra.db import make_engine, make_sessionmaker, session_scope
from models import CopyOrder, TraderFill

TRADER = "0x0d6cf071dbddb6780f4b6912b49d683b8f234395"


def main() -> None:
    """Run the stream and print the hand-off percentiles."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--fills", type=int, default=300)
    parser.add_argument("--every", type=float, default=0.2, help="seconds between trader fills")
    parser.add_argument("--followers", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, simulator_process(quiet_scenario_file(Path(tmp))) as sim, \
            fresh_pg("pmct_bench_handoff") as url:
        fernet = Fernet.generate_key().decode()
        seed(url, sim, fernet, args.followers)
        env = {**os.environ, "DATABASE_URL": url, "ENCRYPTION_KEY": fernet, "EXECUTION_MODE": "live",
               "PMCT_ENV_FILE": "/nonexistent/.env", "LOG_LEVEL": "WARNING",
               "POLYMARKET_DATA_API_URL": sim["data"], "POLYMARKET_GAMMA_API_URL": sim["gamma"],
               "POLYMARKET_CLOB_API_URL": sim["clob"], "WATCHER_POLL_INTERVAL": "0.1",
               "EXECUTOR_POLL_INTERVAL": "5"}
        procs = [subprocess.Popen([sys.executable, script], cwd=ROOT, env=env,  # noqa: S603
                                  stderr=subprocess.PIPE, text=True) for script in ("watcher.py", "executor.py")]
        factory = make_sessionmaker(make_engine(url))
        try:
            time.sleep(8)  # start-up, first poll, balances read in the background
            for _ in range(args.fills):
                sim["remote"].add_trader_fill(trader=TRADER, market="fed", outcome="Yes", side="BUY",
                                              size="60", price="0.30")
                time.sleep(args.every)
            time.sleep(5)
            with session_scope(factory) as s:
                rows = s.execute(select(CopyOrder.order_hash, TraderFill.first_seen_at, CopyOrder.queued_at,
                                        CopyOrder.posted_at)
                                 .join(TraderFill, TraderFill.id == CopyOrder.trader_fill_id)
                                 .where(CopyOrder.order_hash.is_not(None))).all()
            placed = {o["id"]: o["accepted_at"] for o in sim["remote"].orders()}
            with session_scope(factory) as s:
                from datetime import UTC, datetime

                from ops.latency import latency_table
                table = latency_table(s, datetime.now(UTC), 1)
        finally:
            stop_all(procs, timeout=60)
    outside = [(placed[h] - seen.timestamp()) * 1000 for h, seen, _, _ in rows if h in placed]
    inside = [(posted - queued).total_seconds() * 1000 for _, _, queued, posted in rows if posted]
    print(f"hand-off, {args.fills} fills × {args.followers} followers every {args.every} s "
          f"(n={len(outside)} orders): watcher commit → order received by the venue p50 "
          f"{percentile(outside, 50):.1f} ms, p99 {percentile(outside, 99):.1f} ms, max {max(outside):.1f} ms; "
          f"queued → POST leaving (executor) p50 {percentile(inside, 50):.1f} ms, "
          f"p99 {percentile(inside, 99):.1f} ms; mean {statistics.mean(outside):.1f} ms (target p99 ≤ 50 ms)")
    for row in table:
        print(f"  {row['stage']:<12} {row['copies']:>6} p50 {row['p50_ms']} p95 {row['p95_ms']} p99 {row['p99_ms']} ms")


if __name__ == "__main__":
    main()
