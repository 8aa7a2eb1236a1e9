"""Dashboard / API server time per page with 10,000 history rows and 1,000 open orders.

One follower (ELITE, 5 traders) with N_HISTORY filled copies (each with its trader fill and its
follower fill, BUYs and SELLs so realized P&L exists) and N_OPEN resting copies (LIVE / PARTIAL,
each with its SIGNED event). The app runs in-process (Starlette's TestClient: the time measured is
the ASGI app's, no socket); unrealized P&L is valued by a fixed price function (no network).
Each page: 2 warm-up requests, then REPEAT timed requests; the first request of a page is
reported apart (it includes the one-off replay of every fill, cached afterwards until a fill
is added). Target: p95 <= 200 ms per page.
Run: `.venv/bin/python bench/bench_web.py [--db sqlite|postgresql|both] [--repeat N]`.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from common import fresh_pg, percentile
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from infra.config import Settings
from infra.db import make_engine, make_sessionmaker, session_scope
from infra.migrate import upgrade_to_head
from models import (
    CopyOrder,
    CopyOrderEvent,
    CopyStatus,
    Follow,
    Follower,
    FollowerFill,
    Market,
    Tier,
    Trader,
    TraderFill,
)
from ops.users import add_user
from webapp.app import create_app
from webapp.market_data import LeaderboardView

N_HISTORY = 10_000
N_OPEN = 1_000
PASSWORD = "bench password 123"  # noqa: S105 - a throwaway login of the bench database
PAGES = ["/follows", "/configure", "/orders", "/orders/rows", "/history",
         "/history?market=market+7&status=filled", "/performance", "/operations",
         "/api/copy-trading/status", "/api/copy-trading/history",
         "/api/copy-trading/performance"]
D = Decimal


class Board:
    """A fixed leaderboard (no network)."""

    def get(self, *args: object) -> LeaderboardView:
        """An empty board."""
        return LeaderboardView(())


def seed(url: str) -> None:
    """The follower, its traders and follows, the history and the open orders."""
    factory = make_sessionmaker(make_engine(url))
    rng = random.Random(7)
    now = datetime.now(UTC)
    with session_scope(factory) as s:
        f = Follower(name="Bench", email="b@x.io", signer_address="0x" + "1" * 40,
                     funder_address="0x" + "1" * 40, signature_type=0,
                     encrypted_private_key="gAAAA-fake", tier=Tier.ELITE)
        s.add(f)
        s.flush()
        traders = [Trader(wallet=f"0x{0xbe0000 + i:040x}", label=f"trader {i}") for i in range(5)]
        s.add_all(traders)
        s.flush()
        follows = [Follow(follower_id=f.id, trader_id=t.id, copy_pct=D(5), max_usd_per_trade=D(50),
                          started_at=now - timedelta(days=60)) for t in traders]
        s.add_all(follows)
        s.flush()
        markets = [{"condition_id": f"0x{i:064x}", "question": f"Bench market {i}?", "version": "v1",
                    "tick_size": D("0.01"), "min_size": D(5), "neg_risk": False,
                    "fetched_at": now} for i in range(40)]
        s.execute(insert(Market), markets)
        add_user(s, username="admin", role="admin", password=PASSWORD)
        follower_id, follow_ids = f.id, [(fo.id, fo.trader_id) for fo in follows]
    total = N_HISTORY + N_OPEN
    fills, copies, ffills, events = [], [], [], []
    for i in range(total):
        follow_id, trader_id = follow_ids[i % len(follow_ids)]
        market = i % 40
        token = str(10**70 + market * 2)
        side = "BUY" if (i // len(follow_ids)) % 2 == 0 else "SELL"
        price = D(rng.randint(20, 80)) / 100
        at = now - timedelta(minutes=(total - i) * 5)
        fills.append({"id": i + 1, "trader_id": trader_id, "fill_key": f"{i:064x}", "occurrence": 0,
                      "activity_type": "TRADE", "transaction_hash": f"0x{i:064x}",
                      "condition_id": f"0x{market:064x}", "token_id": token, "side": side,
                      "size": D(100), "price": price, "outcome": "Yes", "title": f"market {market}",
                      "slug": "", "event_slug": "", "is_combo": False, "occurred_at": at,
                      "first_seen_at": at + timedelta(seconds=1), "raw": {}})
        ours = price + D(rng.randint(-1, 2)) / 100
        is_open = i >= N_HISTORY
        status = (CopyStatus.PARTIAL if i % 3 == 0 else CopyStatus.LIVE) if is_open \
            else CopyStatus.FILLED
        filled = D(0) if status == CopyStatus.LIVE else (D(2) if is_open else D(5))
        copies.append({"id": i + 1, "follow_id": follow_id, "trader_fill_id": i + 1,
                       "follower_id": follower_id, "side": side, "token_id": token,
                       "condition_id": f"0x{market:064x}", "trader_price": price, "status": status,
                       "intended_size": D(5), "intended_price": ours, "filled_size": filled,
                       "avg_fill_price": ours if filled else None, "attempts": 1, "paper": False,
                       "order_hash": f"0x{i + 1:064x}", "queued_at": at + timedelta(seconds=1),
                       "posted_at": at + timedelta(seconds=2), "updated_at": at,
                       "closed_at": None if is_open else at + timedelta(seconds=3)})
        if filled:
            ffills.append({"copy_order_id": i + 1, "follower_id": follower_id,
                           "follow_id": follow_id, "trade_id": f"t{i}", "order_hash": f"0x{i + 1:064x}",
                           "token_id": token, "side": side, "size": filled, "price": ours,
                           "fee": D(0), "trade_status": "CONFIRMED", "paper": False,
                           "realized_pnl": D(rng.randint(-50, 60)) / 100 if side == "SELL" else D(0),
                           "filled_at": at + timedelta(seconds=3)})
        if is_open:
            events.append({"copy_order_id": i + 1, "event": "sign", "from_status": "CLAIMED",
                           "to_status": "SIGNED", "detail": {"price": str(price)},
                           "created_at": at})
    with session_scope(factory) as s:
        for table, rows in ((TraderFill, fills), (CopyOrder, copies), (FollowerFill, ffills),
                            (CopyOrderEvent, events)):
            for k in range(0, len(rows), 2000):
                s.execute(insert(table), rows[k:k + 2000])
    with session_scope(factory) as s:
        assert s.scalar(select(CopyOrder.id).order_by(CopyOrder.id.desc()).limit(1)) == total


def measure(url: str, repeat: int) -> dict[str, tuple[float, float, float, float]]:
    """page → (first ms, p50 ms, p95 ms, max ms)."""
    settings = Settings(database_url=url, web_session_secret="b" * 40)
    app = create_app(settings, make_sessionmaker(make_engine(url)),
                     prices=lambda token: Decimal("0.5"), leaderboard=Board(), market_data=False)
    out = {}
    with TestClient(app) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        r = client.post("/login", data={"csrf_token": token.group(1), "username": "admin",
                                        "password": PASSWORD}, follow_redirects=False)
        assert r.status_code == 303
        wallet = "0x" + "1" * 40
        for path in PAGES:
            full = path + ("&" if "?" in path else "?") + f"wallet={wallet}"
            times = []
            for n in range(repeat + 3):
                t0 = time.perf_counter()
                r = client.get(full)
                elapsed = (time.perf_counter() - t0) * 1000
                assert r.status_code == 200, (full, r.status_code, r.text[:300])
                if n == 0:
                    first = elapsed
                elif n >= 3:
                    times.append(elapsed)
            out[path] = (first, percentile(times, 50), percentile(times, 95), max(times))
    return out


def report(name: str, results: dict[str, tuple[float, float, float, float]]) -> None:
    """A table of the timings."""
    print(f"\n{name}: {N_HISTORY:,} history rows, {N_OPEN:,} open orders")
    print(f"{'page':48} {'first':>8} {'p50':>8} {'p95':>8} {'max':>8}  (ms)")
    for path, (first, p50, p95, top) in results.items():
        flag = "" if p95 <= 200 else "  > 200 ms"
        print(f"{path:48} {first:8.1f} {p50:8.1f} {p95:8.1f} {top:8.1f}{flag}")


def main() -> int:
    """Seed, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    worst = 0.0
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            upgrade_to_head(url)
            seed(url)
            res = measure(url, args.repeat)
            report("SQLite", res)
            worst = max(worst, *(v[2] for v in res.values()))
    if args.db in ("postgresql", "both"):
        with fresh_pg("pmct_bench_web") as url:
            seed(url)
            res = measure(url, args.repeat)
            report("PostgreSQL", res)
            worst = max(worst, *(v[2] for v in res.values()))
    print(f"\nworst p95: {worst:.1f} ms (target <= 200 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
