"""Copyability per trader from our own fills (`admin performance --by-trader`, ops/copyability.py)
and the copied edge behind its tracking error (copying/copy_edge.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from copying.copy_edge import closed_trades
from infra.db import utcnow
from models import FollowerPosition
from ops.copyability import copyability_rows
from tests.ops.test_admin import env, run  # noqa: F401 - env is a fixture
from tests.support.dbfixtures import Database
from tests.support.fake_exchange import YES, book
from tests.support.harness import TRADER, Harness
from wire.types import Side

D = Decimal


def round_trip(h: Harness) -> None:
    """Paper: the leader buys 100 @ 0.58 (we buy 10 at the 0.58 ask), buys 10 more (our 1 share is
    under the min size: skipped), then sells 110 @ 0.62 (we sell 10 at the 0.62 bid)."""
    h.fx.books[YES] = book(YES, [("0.55", "500")], [("0.58", "500")])
    h.trader_fill(Side.BUY, "100", "0.58")
    h.cycle()
    h.clock.now += timedelta(minutes=1)
    h.trader_fill(Side.BUY, "10", "0.58")
    h.cycle()
    h.clock.now += timedelta(minutes=1)
    h.fx.books[YES] = book(YES, [("0.62", "500")], [("0.64", "500")])
    h.trader_fill(Side.SELL, "110", "0.62")
    h.cycle()
    h.cycle()


def test_copied_edge_of_a_round_trip(database: Database, fernet_key: str) -> None:
    """Ours +6.90 % (0.58 → 0.62), the leader's +6.90 %: edge 0; then a worse exit for us only."""
    h = Harness(database, fernet_key, paper=True)
    round_trip(h)
    with database.session() as s:
        [trade] = closed_trades(s, [h.follow_id])
    assert trade.ours_pct.quantize(D("0.01")) == D("6.90")
    assert trade.leader_pct.quantize(D("0.01")) == D("6.90")
    assert trade.edge_pct == 0 and trade.resolved is False
    with database.session() as s:  # had we sold at 0.56 instead: −3.45 % against his +6.90 %
        pos = s.scalar(select(FollowerPosition))
        assert pos is not None
        pos.realized_pnl = D("-0.20")
        s.commit()
        [worse] = closed_trades(s, [h.follow_id])
    assert worse.edge_pct.quantize(D("0.01")) == D("-10.34")


def test_by_trader_report(env: Database, fernet_key: str) -> None:  # noqa: F811
    """One row for the trader: 3 seen, 2 copied, the skip named, slippage weighted by shares,
    one closed trade; `admin performance --by-trader --json` prints the same."""
    h = Harness(env, fernet_key, paper=True)
    round_trip(h)
    with env.session() as s:
        [row] = copyability_rows(s, None, utcnow() + timedelta(days=3650))
    assert row["trader"] == TRADER
    assert (row["seen"], row["copied"], row["copy_rate"]) == (3, 2, "0.667")
    assert row["skip_mix"] == "below_min_size×1"
    assert row["slippage_bps"] == "0.0"
    assert (row["closed_trades"], row["edge_pct"], row["tracking_error_pct"]) == (1, "0.00", "0.00")
    assert row["hold_to_resolution"] == "0.000"
    assert row["detection_ms"] is not None and row["execution_ms"] is not None
    with env.session() as s:
        assert copyability_rows(s, None, utcnow() + timedelta(days=3650), mode="live") == []
    out = run("performance", "--by-trader", "--json", "--start", "2026-01-01", "--end", "2036-01-01")
    assert out.exit_code == 0, out.output
    [cli_row] = json.loads(out.output)
    assert cli_row["copy_rate"] == "0.667" and cli_row["edge_pct"] == "0.00"
    assert run("performance", "--mode", "paper").exit_code == 2
