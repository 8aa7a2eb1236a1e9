"""Copy-fidelity costs on PostgreSQL: the claim query with the ordering rule, and an exit's
leader-holding lookup.

1. Claim query: 256 QUEUED copies taken (oldest first, `FOR UPDATE SKIP LOCKED`) out of a table
   of 100,000 copies over 2,000 follows, with and without the per-follow-and-token ordering
   clause (`copying.ordering.blocked_clause`). Rolled back after each run: it measures the
   query, not the status writes. Then the executor's whole claim statement
   (`copying.claims.claim_ids`: the pick, the UPDATE to CLAIMED and the 256 claim events),
   rolled back the same way.
2. `holding_before` of a leader SELL with 50 snapshots and 2,000 rows of the trader stored.
Run: `.venv/bin/python bench/bench_fidelity.py`.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from common import claim_context, fresh_pg
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from copying.claims import claim_ids
from copying.leader import holding_before
from copying.ordering import blocked_clause
from infra.db import make_engine, make_sessionmaker
from models import CopyOrder, CopyStatus, Follow, Follower, Tier, Trader, TraderFill, TraderPositionSnapshot

T0 = datetime(2026, 11, 1, tzinfo=UTC)
D = Decimal


def seed(s: Session, follows: int = 2000, copies: int = 100_000) -> int:
    """Traders, followers, follows, fills and copies in bulk; returns a trader id."""
    trader = Trader(wallet="0x" + "ab" * 20)
    s.add(trader)
    s.flush()
    s.execute(insert(Follower), [dict(name=f"f{i}", email=f"f{i}@x.io", signer_address=f"0x{i:040x}",
                                      funder_address=f"0x{i:040x}", signature_type=0,
                                      encrypted_private_key="x", tier=Tier.WHALE) for i in range(1, follows + 1)])
    s.execute(insert(Follow), [dict(follower_id=i, trader_id=trader.id, copy_pct=D(10),
                                    max_usd_per_trade=D(50), started_at=T0) for i in range(1, follows + 1)])
    fills = copies // follows
    s.execute(insert(TraderFill), [dict(trader_id=trader.id, fill_key=f"k{n}", activity_type="TRADE",
                                        transaction_hash="0x" + f"{n:064x}", condition_id="0x" + "1" * 64,
                                        token_id=str(n % 20), side="BUY" if n % 3 else "SELL", size=D(100),
                                        price=D("0.5"), occurred_at=T0 + timedelta(seconds=n),
                                        first_seen_at=T0 + timedelta(seconds=n), raw={})
                                   for n in range(fills)])
    statuses = [CopyStatus.FILLED] * 6 + [CopyStatus.SKIPPED, CopyStatus.LIVE, CopyStatus.QUEUED,
                                          CopyStatus.CANCELED]
    rows = []
    for n in range(fills):
        for f in range(1, follows + 1):
            rows.append(dict(follow_id=f, trader_fill_id=n + 1, follower_id=f,
                             side="BUY" if n % 3 else "SELL", token_id=str(n % 20),
                             condition_id="0x" + "1" * 64, trader_price=D("0.5"),
                             status=statuses[(n + f) % len(statuses)], filled_size=D(0), attempts=0,
                             paper=False, queued_at=T0))
    for i in range(0, len(rows), 10_000):
        s.execute(insert(CopyOrder), rows[i:i + 10_000])
    s.execute(insert(TraderPositionSnapshot), [dict(trader_id=trader.id, token_id=str(t), condition_id="0x1",
                                                    size=D(100), taken_at=T0 + timedelta(minutes=5 * k))
                                               for k in range(50) for t in range(20)])
    return trader.id


def timed(s: Session, with_rule: bool, runs: int = 30) -> list[float]:
    out = []
    for _ in range(runs):
        q = select(CopyOrder.id).where(CopyOrder.status == CopyStatus.QUEUED)
        if with_rule:
            q = q.where(~blocked_clause())
        q = q.order_by(CopyOrder.id).limit(256).with_for_update(skip_locked=True)
        t = time.perf_counter()
        s.execute(q).all()
        out.append((time.perf_counter() - t) * 1000)
        s.rollback()
    return out


def timed_claim(s: Session, runs: int = 30) -> list[float]:
    """The executor's claim of 256 (pick, UPDATE, events), rolled back after each run."""
    ctx = claim_context()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        ids = claim_ids(s, ctx, 256)
        out.append((time.perf_counter() - t) * 1000)
        assert len(ids) == 256
        s.rollback()
    return out


def main() -> None:
    with fresh_pg("pmct_bench_fid") as url:
        engine = make_engine(url)
        factory = make_sessionmaker(engine)
        with factory() as s:
            trader_id = seed(s)
            s.commit()
            s.execute(select(1))
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        with factory() as s:
            plain, ruled, claimed = timed(s, False), timed(s, True), timed_claim(s)
            holding = []
            for n in range(30):
                t = time.perf_counter()
                holding_before(s, trader_id, str(n % 20), T0 + timedelta(hours=3), T0 + timedelta(hours=3), None)
                holding.append((time.perf_counter() - t) * 1000)
        print(f"claim 256 of 100,000 copies: without the ordering clause median {statistics.median(plain):.2f} ms, "
              f"with it {statistics.median(ruled):.2f} ms; the executor's claim statement (pick, UPDATE, "
              f"events) {statistics.median(claimed):.2f} ms")
        print(f"holding_before (50 snapshots, 2,000 rows): median {statistics.median(holding):.2f} ms")
        engine.dispose()


if __name__ == "__main__":
    main()
