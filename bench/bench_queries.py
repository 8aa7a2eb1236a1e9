"""Hot queries on a year of synthetic data: seed PostgreSQL with a year of 1,000 followed traders
(their fills, the copies of two followers each, the copies' events and fills, position snapshots
and events, with the retention settings applied), then time each hot query of the daemons and
`admin` (the real code path, median of several runs) and print its plan (EXPLAIN ANALYZE of the
statements it sends). Target: each ≤ 10 ms.

The volumes (defaults): 1,000 traders × 10 fills a day × 365 days = 3.65 M trader fills; two
follows per trader (1,000 followers) = 7.3 M copies, 1,000 of them open; 3 events per copy of
the last RETENTION_EVENT_DAYS (180); a fill for each filled copy; a position snapshot of 5
positions per trader every 5 minutes over RETENTION_SNAPSHOT_DAYS (7): 10 M rows; 5 position
events per trader a day. Old copies have no signed body (RETENTION_PAYLOAD_DAYS) and old fills
no raw payload (RETENTION_RAW_DAYS), as the executor's retention leaves them.

Run: `.venv/bin/python bench/bench_queries.py [--per-day 10] [--days 365] [--keep URL-NAME]`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from common import claim_context, fresh_pg
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from infra.db import make_engine, make_sessionmaker

TRADERS = 1000
FOLLOWERS = 1000
MARKETS = 2000

SEED_SQL = """
INSERT INTO traders (id, wallet, cursor_ts, seeded_at, last_polled_at, last_snapshot_at, created_at)
SELECT g, '0x' || lpad(to_hex(g), 40, '0'), extract(epoch FROM now())::bigint, now(), now(), now(),
       now() - interval '1 year'
FROM generate_series(1, :traders) g;

INSERT INTO markets (condition_id, question, version, tick_size, min_size, neg_risk, accepting_orders,
                     closed, fee_rate, fee_exponent, fee_takers_only, fetched_at)
SELECT '0x' || md5('m' || g) || md5('n' || g), 'market ' || g, 'v1', 0.01, 5, false, true,
       (g % 10 = 0), 0, 1, true, now()
FROM generate_series(1, :markets) g;

INSERT INTO market_tokens (token_id, condition_id, outcome, outcome_index)
SELECT (1000000 + g * 2 + o)::text, '0x' || md5('m' || g) || md5('n' || g),
       CASE o WHEN 0 THEN 'Yes' ELSE 'No' END, o
FROM generate_series(1, :markets) g, generate_series(0, 1) o;

INSERT INTO followers (id, name, email, signer_address, funder_address, signature_type,
                       encrypted_private_key, encrypted_api_creds, tier, status, venue_balance,
                       venue_balance_at, created_at, updated_at)
SELECT g, 'f' || g, 'f' || g || '@x.io', '0xf' || lpad(to_hex(g), 39, '0'), '0xf' || lpad(to_hex(g), 39, '0'),
       0, 'x', 'x', 'whale', 'active', 1000, now() - interval '30 seconds', now(), now()
FROM generate_series(1, :followers) g;

INSERT INTO follows (id, follower_id, trader_id, copy_pct, max_usd_per_trade, status, started_at,
                     created_at, updated_at)
SELECT g, ((g - 1) % :followers) + 1, ((g - 1) / 2) % :traders + 1, 10, 50,
       CASE WHEN g % 50 = 0 THEN 'paused' ELSE 'active' END, now() - interval '1 year',
       now() - interval '1 year', now()
FROM generate_series(1, :traders * 2) g;

INSERT INTO trader_fills (id, trader_id, fill_key, occurrence, activity_type, transaction_hash,
                          condition_id, token_id, side, size, price, usdc_size, outcome, outcome_index,
                          title, slug, event_slug, is_combo, occurred_at, first_seen_at, raw)
SELECT n, (n % :traders) + 1, md5('k' || n) || md5('l' || n), 0, 'TRADE', '0x' || md5('t' || n) || md5('u' || n),
       '0x' || md5('m' || ((n % :markets) + 1)) || md5('n' || ((n % :markets) + 1)),
       (1000000 + ((n % :markets) + 1) * 2)::text, CASE WHEN n % 5 = 0 THEN 'SELL' ELSE 'BUY' END,
       100, 0.55, 55, 'Yes', 0, '', '', '', false,
       now() - interval '1 year' + (n * interval '1 year') / :fills,
       now() - interval '1 year' + (n * interval '1 year') / :fills + interval '2 seconds',
       CASE WHEN n > :fills - :fills / 12 THEN '{"proxyWallet": "0x..", "raw": true}'::json ELSE '{}'::json END
FROM generate_series(1, :fills) n;

INSERT INTO copy_orders (id, follow_id, trader_fill_id, follower_id, side, token_id, condition_id,
                         trader_price, status, reason, intended_size, intended_price, order_type,
                         signed_payload, order_hash, venue_size, filled_size, avg_fill_price, attempts,
                         paper, queued_at, claimed_at, signed_at, posted_at, acked_at, closed_at, updated_at)
SELECT id, follow_id, fill_id, follower_id, side, token_id, condition_id, price, st,
       CASE st WHEN 'SKIPPED' THEN 'below_min_size' WHEN 'CANCELED' THEN 'trader_exited' END,
       10, 0.55, 'GTC',
       CASE WHEN st <> 'SKIPPED' AND seen > now() - interval '7 days' THEN decode(repeat('ab', 700), 'hex') END,
       CASE WHEN st <> 'SKIPPED' THEN '0x' || md5('h' || id) || md5('i' || id) END,
       CASE WHEN st <> 'SKIPPED' THEN 10 END, CASE WHEN st = 'FILLED' THEN 10 ELSE 0 END,
       CASE WHEN st = 'FILLED' THEN 0.55 END, CASE WHEN st = 'SKIPPED' THEN 0 ELSE 1 END, false,
       seen, seen + interval '15 ms',
       CASE WHEN st <> 'SKIPPED' THEN seen + interval '30 ms' END,
       CASE WHEN st <> 'SKIPPED' THEN seen + interval '35 ms' END,
       CASE WHEN st <> 'SKIPPED' THEN seen + interval '45 ms' END,
       CASE WHEN st <> 'LIVE' THEN seen + interval '1 hour' END, seen
FROM (SELECT (f.id - 1) * 2 + k AS id, fo.id AS follow_id, f.id AS fill_id, fo.follower_id, f.side, f.token_id,
             f.condition_id, f.price, f.first_seen_at AS seen,
             CASE WHEN f.occurred_at > now() - interval '3 hours' AND ((f.id * 2 + k) % 3 = 0) THEN 'LIVE'
                  WHEN (f.id * 7 + k) % 10 < 3 THEN 'SKIPPED'
                  WHEN (f.id * 7 + k) % 10 < 5 THEN 'CANCELED' ELSE 'FILLED' END AS st
      FROM trader_fills f
      JOIN generate_series(1, 2) k ON true
      JOIN follows fo ON fo.id = (f.trader_id - 1) * 2 + k) c;

INSERT INTO copy_order_events (copy_order_id, event, from_status, to_status, order_hash, created_at)
SELECT c.id, e.name, e.from_s, e.to_s, c.order_hash, c.queued_at + e.lag
FROM copy_orders c
JOIN (VALUES ('claim', 'QUEUED', 'CLAIMED', interval '15 ms'), ('sign', 'CLAIMED', 'SIGNED', interval '30 ms'),
             ('accepted', 'SIGNED', 'LIVE', interval '45 ms')) AS e(name, from_s, to_s, lag) ON true
WHERE c.queued_at > now() - interval '180 days' AND c.status <> 'SKIPPED';

INSERT INTO follower_fills (copy_order_id, follower_id, follow_id, trade_id, order_hash, token_id, side,
                           size, price, fee, trade_status, paper, realized_pnl, filled_at)
SELECT c.id, c.follower_id, c.follow_id, md5('tr' || c.id), c.order_hash, c.token_id, c.side, 10, 0.55, 0,
       'CONFIRMED', false, 0, c.acked_at + interval '1 minute'
FROM copy_orders c WHERE c.status = 'FILLED';

INSERT INTO follower_positions (follower_id, follow_id, token_id, condition_id, paper, size, avg_cost,
                                realized_pnl, fees_paid, updated_at)
SELECT fo.follower_id, fo.id, (1000000 + ((fo.id * 31 + p) % :markets + 1) * 2)::text,
       '0x' || md5('m' || ((fo.id * 31 + p) % :markets + 1)) || md5('n' || ((fo.id * 31 + p) % :markets + 1)),
       false, 10, 0.55, 0, 0, now()
FROM follows fo, generate_series(0, 24) p;

INSERT INTO trader_position_snapshots (trader_id, token_id, condition_id, size, avg_price, taken_at)
SELECT t, (1000000 + ((t * 17 + p) % :markets + 1) * 2)::text, '', 100 + p, 0.5,
       date_trunc('minute', now()) - s * interval '5 minutes'
FROM generate_series(1, :traders) t, generate_series(0, :snapshots - 1) s, generate_series(0, 4) p;

INSERT INTO trader_position_events (trader_id, token_id, kind, old_size, new_size, detected_at)
SELECT (n % :traders) + 1, (1000000 + ((n % :markets) + 1) * 2)::text,
       CASE n % 4 WHEN 0 THEN 'NEW_POSITION' WHEN 1 THEN 'SIZE_INCREASE' WHEN 2 THEN 'SIZE_DECREASE'
                  ELSE 'POSITION_CLOSED' END, 100, 50,
       now() - interval '1 year' + (n * interval '1 year') / :events
FROM generate_series(1, :events) n;
"""

SEQUENCES = ("traders", "followers", "follows", "trader_fills", "copy_orders", "copy_order_events",
             "follower_fills", "follower_positions", "trader_position_snapshots", "trader_position_events")


def seed(url: str, per_day: int, days: int) -> dict[str, int]:
    """Fill a fresh database; row counts per table."""
    engine = make_engine(url)
    fills = TRADERS * per_day * days
    params = {"traders": TRADERS, "followers": FOLLOWERS, "markets": MARKETS, "fills": fills,
              "snapshots": 288 * 7, "events": TRADERS * 5 * days}
    with engine.begin() as conn:
        for statement in SEED_SQL.split(";\n"):
            if statement.strip():
                t = time.perf_counter()
                conn.execute(text(statement), {k: v for k, v in params.items() if f":{k}" in statement})
                print(f"  seeded {statement.split()[2]} in {time.perf_counter() - t:.0f} s", flush=True)
        for table in SEQUENCES:
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 - fixed names
                              f"(SELECT coalesce(max(id), 1) FROM {table}))"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() or 0  # noqa: S608 - fixed names
                  for t in SEQUENCES}
        size = conn.execute(text("SELECT pg_size_pretty(pg_database_size(current_database()))")).scalar()
    engine.dispose()
    print(f"  database size {size}: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    return counts


# --- the hot queries: each runs the project's own code on a session ------------------------------

def q_claim(s: Session) -> None:
    from copying.claims import claim_in

    claim_in(s, claim_context(), 256)  # the executor's claim: pick, UPDATE, events, load


def q_stop_sweep(s: Session) -> None:
    from copying.stops import find_stops

    find_stops(s, False)


def q_stop_fingerprint(s: Session) -> None:
    from copying.stops import stop_fingerprint

    stop_fingerprint(s, 10**9)


def q_open_copies(s: Session) -> None:
    from copying.states import OPEN_AT_VENUE
    from models import CopyOrder

    list(s.scalars(select(CopyOrder.id).where(CopyOrder.status.in_(OPEN_AT_VENUE), CopyOrder.paper.is_(False))
                   .order_by(CopyOrder.id)))


def q_reservations(s: Session) -> None:
    from copying.reservations import reserved_buy_by_follower

    reserved_buy_by_follower(s, range(1, 51), False)


def q_follower_spent_today(s: Session) -> None:
    from copying.reservations import Reservations
    from models import Follower

    followers = list(s.scalars(select(Follower).where(Follower.id <= 50)))
    book = Reservations.load(s, [], False, datetime.now(UTC), [f.id for f in followers])
    book.follower_spent_today_usd(1)


def q_ledger(s: Session) -> None:
    from copying.balances import ledger_balances
    from models import Follower

    ledger_balances(s, list(s.scalars(select(Follower).where(Follower.id <= 50))))


def q_trader_shares_before(s: Session) -> None:
    from copying.leader import holding_before_fill
    from models import TraderFill

    fill = s.get(TraderFill, s.scalar(select(TraderFill.id).order_by(TraderFill.id.desc()).limit(1)))
    assert fill is not None
    holding_before_fill(s, fill)


def q_last_snapshot(s: Session) -> None:
    from copying.position_watch import last_snapshot

    last_snapshot(s, 500)


def q_traders_to_poll(s: Session) -> None:
    from watcher import Shard, traders_to_poll

    traders_to_poll(s, Shard())


def q_fill_intake(s: Session) -> None:
    """The watcher storing a re-polled fill (an existing key: ON CONFLICT DO NOTHING)."""
    from copying.intake import store_fills
    from wire.types import Activity, Side

    tid = 7
    row = s.execute(text("SELECT occurred_at, transaction_hash, token_id, condition_id FROM trader_fills "
                         "WHERE trader_id = :t ORDER BY id DESC LIMIT 1"), {"t": tid}).one()
    act = Activity(proxy_wallet="0x", timestamp=row[0], type="TRADE", condition_id=row[3], token_id=row[2],
                   side=Side.BUY, size=__import__("decimal").Decimal(1), price=__import__("decimal").Decimal("0.5"),
                   usdc_size=None, transaction_hash=row[1], outcome="Yes", outcome_index=0, title="", slug="",
                   event_slug="", is_combo=False, raw={})
    store_fills(s, tid, [act], now=datetime.now(UTC), max_copy_delay=timedelta(seconds=120))


def q_followers_with_open_orders(s: Session) -> None:
    from copying.fills import followers_with_open_orders

    followers_with_open_orders(s, False)


def q_copies_by_hash(s: Session) -> None:
    from copying.fills import _copies_by_hash

    hashes = set(s.scalars(text("SELECT order_hash FROM copy_orders WHERE order_hash IS NOT NULL "
                                "ORDER BY id DESC LIMIT 50")))
    _copies_by_hash(s, hashes | {"0x" + "ee" * 32})


def q_history(s: Session) -> None:
    from ops.views import HistoryFilter, history_rows

    history_rows(s, HistoryFilter(follower_id=10, limit=100))


def q_status(s: Session) -> None:
    from ops.views import Intervals, status_data

    status_data(s, datetime.now(UTC), Intervals(10, 5))


def q_latency(s: Session) -> None:
    from ops.latency import latency_table

    latency_table(s, datetime.now(UTC), 1)


HOT: dict[str, Callable[[Session], None]] = {
    "executor: claim 256 queued copies (pick SKIP LOCKED, UPDATE, events, load)": q_claim,
    "executor: stop sweep over every open copy": q_stop_sweep,
    "executor: stop fingerprint (each wake)": q_stop_fingerprint,
    "executor: open copies for the scheduled pass": q_open_copies,
    "executor: open BUY reservations of 50 followers": q_reservations,
    "executor: today's spend + exposure of 50 followers": q_follower_spent_today,
    "executor: ledger balances of 50 followers": q_ledger,
    "executor: trader's shares before a SELL": q_trader_shares_before,
    "executor: followers with open orders (fills due)": q_followers_with_open_orders,
    "executor: copies of 51 order hashes (fills)": q_copies_by_hash,
    "watcher: store a re-polled fill (no insert)": q_fill_intake,
    "watcher: latest position snapshot of a trader": q_last_snapshot,
    "watcher: traders to poll": q_traders_to_poll,
    "admin history: a follower's last 100 copies": q_history,
    "admin status: traders, open and pending copies": q_status,
    "admin stats --latency: last hour": q_latency,
}


def measure(url: str, runs: int, plans: bool) -> list[tuple[str, float, float]]:
    """Median time of each hot query (the session rolled back after each run); plans printed."""
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    results = []
    for name, fn in HOT.items():
        times = []
        for i in range(runs):
            captured.clear()
            s = factory()
            try:
                t = time.perf_counter()
                fn(s)
                times.append((time.perf_counter() - t) * 1000)
            finally:
                s.rollback()
                s.close()
            if i == 0:
                statements = list(captured)
        median = statistics.median(times[1:] if len(times) > 1 else times)
        print(f"\n{name}: median {median:.2f} ms over {runs - 1} warm runs ({len(statements)} statement(s))")
        in_db = 0.0
        if plans:
            raw = engine.raw_connection()
            try:
                cur = raw.cursor()
                for statement, parameters in statements:
                    cur.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON) " + statement, parameters)
                    lines = [r[0] if len(r[0]) <= 160 else r[0][:157] + "…" for r in cur.fetchall()]
                    in_db += sum(float(ln.split(":")[1].split()[0]) for ln in lines
                                 if ln.strip().startswith("Execution Time"))
                    print("  " + "\n  ".join(lines[:25]) + ("\n  …" if len(lines) > 25 else ""))
                raw.rollback()
            finally:
                raw.close()
        results.append((name, median, in_db))
    event.remove(engine, "before_cursor_execute", capture)
    engine.dispose()
    return results


def main() -> None:
    """Seed (or reuse with --url), then measure."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-day", type=int, default=10, help="fills per trader per day")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--url", default=None, help="measure an already seeded database")
    parser.add_argument("--no-plans", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the seeded database (prints its URL)")
    args = parser.parse_args()
    if args.url:
        results = measure(args.url, args.runs, not args.no_plans)
    elif args.keep:
        from infra.migrate import upgrade_to_head
        from tests.support.dbfixtures import create_pg_database

        url = create_pg_database("pmct_bench_year")
        upgrade_to_head(url)
        print(f"seeding {url} (kept)")
        seed(url, args.per_day, args.days)
        results = measure(url, args.runs, not args.no_plans)
    else:
        with fresh_pg("pmct_bench_year") as url:
            t = time.perf_counter()
            seed(url, args.per_day, args.days)
            print(f"seeded in {time.perf_counter() - t:.0f} s")
            results = measure(url, args.runs, not args.no_plans)
    print("\nhot query (target ≤ 10 ms)                           code path ms   in the database ms")
    for name, ms, db_ms in results:
        print(f"  {name:<52} {ms:8.2f} {db_ms:12.2f}")


if __name__ == "__main__":
    main()
