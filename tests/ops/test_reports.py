"""P&L reports: hand-checked average-cost numbers, slippage, unrealized at mid, CSV/JSON/chart."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal as D
from pathlib import Path

import httpx
import pytest
import respx
from sqlalchemy.orm import Session

from models import CopyStatus, Follower, FollowerFill, Market, MarketTokenRow
from ops.inputs import parse_day
from ops.reports import (
    PriceSource,
    Report,
    build_report,
    cumulative_series,
    day_window,
    money,
    render_csv,
    signed_usd,
    slippage_of,
)
from tests.ops.test_admin import counts, env, run  # noqa: F401 - env is a fixture
from tests.support import factories as fx
from tests.support.dbfixtures import Database

CLOB = "http://clob.test"
COND_A = "0x" + "a" * 64
COND_B = "0x" + "b" * 64


def _fill(s: Session, co_id: int, follow_id: int, follower_id: int, token: str, side: str,
          size: str, price: str, fee: str, when: datetime, paper: bool = False) -> FollowerFill:
    ff = FollowerFill(copy_order_id=co_id, follower_id=follower_id, follow_id=follow_id,
                      trade_id=f"t-{co_id}-{when.isoformat()}", order_hash="0x" + f"{co_id:064x}",
                      token_id=token, side=side, size=D(size), price=D(price), fee=D(fee),
                      trade_status="CONFIRMED", paper=paper, filled_at=when)
    s.add(ff)
    s.flush()
    return ff


def seed_fills(db: Database) -> dict[str, str]:
    """Follower 1 copies trader A (buy, partial sell, full sell, a fee) and trader B (paper buy).

    Returns the wallets. Hand-computed (average cost, buy fee in the cost basis):
      A1 BUY  100 @ 0.50 fee 0.50 → cost 50.50, avg 0.505
      A2 SELL  40 @ 0.60 fee 0.24 → (0.60 − 0.505) × 40 − 0.24 = +3.56
      A3 SELL  60 @ 0.45 fee 0    → (0.45 − 0.505) × 60       = −3.30
      B1 BUY   10 @ 0.30 (paper)  → open; at mid 0.35 unrealized +0.50
    """
    with db.session() as s:
        f = fx.follower(s, 1)
        ta, tb = fx.trader(s, 1), fx.trader(s, 2)
        fa, fb = fx.follow(s, f, ta), fx.follow(s, f, tb)
        s.add(Market(condition_id=COND_A, question="Will A happen?", version="v1",
                     tick_size=D("0.01"), min_size=D("5")))
        s.flush()
        s.add(MarketTokenRow(token_id="111", condition_id=COND_A, outcome="Yes", outcome_index=0))
        plan = [
            # key, follow, token, cond, side, size, price, fee, trader_price, day, paper, title
            ("a1", fa, "111", COND_A, "BUY", "100", "0.50", "0.50", "0.48", 2, False, "A"),
            ("a2", fa, "111", COND_A, "SELL", "40", "0.60", "0.24", "0.62", 3, False, "A"),
            ("a3", fa, "111", COND_A, "SELL", "60", "0.45", "0", "0.45", 4, False, "A"),
            ("b1", fb, "222", COND_B, "BUY", "10", "0.30", "0", "0.30", 5, True,
             "=HYPERLINK(\"x\")"),
        ]
        for key, fo, token, cond, side, size, price, fee, tp, day, paper, title in plan:
            trader = ta if fo is fa else tb
            tf = fx.trader_fill(s, trader, key=key, token_id=token, condition_id=cond, side=side,
                                price=D(tp), title=title, outcome="No" if token == "222" else "")
            co = fx.copy_order(s, tf, fo, side=side, status=CopyStatus.FILLED, paper=paper,
                               queued_at=datetime(2024, 1, day, 9, 59, tzinfo=UTC))
            _fill(s, co.id, fo.id, f.id, token, side, size, price, fee,
                  datetime(2024, 1, day, 10, 0, tzinfo=UTC), paper)
        s.commit()
        return {"follower": f.funder_address, "a": ta.wallet, "b": tb.wallet}


def mids(table: dict[str, str]) -> PriceSource:
    """A price source from a dict."""
    return lambda token: D(table[token]) if token in table else None


def _report(db: Database, start: date | None, end: date | None, prices: PriceSource | None = None,
            by_trader: bool = True) -> Report:
    lo, hi = day_window(start, end, datetime(2024, 2, 1, tzinfo=UTC))
    with db.session() as s:
        follower = s.get(Follower, s.query(Follower.id).scalar())
        assert follower is not None
        return build_report(s, follower, lo, hi, prices, by_trader=by_trader)


def _scope(rep: Report, name: str) -> dict[str, object]:
    return next(r for r in rep.summary_rows() if r["scope"] == name)


def test_average_cost_realized_pnl_matches_the_hand_computation(database: Database) -> None:
    """Buy with fee, partial sell, full sell: realized +3.56 and −3.30, total +0.26."""
    w = seed_fills(database)
    rep = _report(database, date(2024, 1, 1), date(2024, 1, 31), mids({"222": "0.35"}))
    rows = rep.fill_rows()
    assert [(r["side"], r["realized_pnl"]) for r in rows] == [
        ("BUY", "0"), ("SELL", "3.56"), ("SELL", "-3.3"), ("BUY", "0")]
    assert [r["slippage"] for r in rows] == ["0.02", "0.02", "0", "0"]
    assert [r["slippage_pct"] for r in rows] == ["4.1667", "3.2258", "0", "0"]
    assert [r["paper"] for r in rows] == ["false", "false", "false", "true"]
    assert rows[0]["market"] == "Will A happen?" and rows[0]["outcome"] == "Yes"
    everything = _scope(rep, "all")
    assert everything == {
        "scope": "all", "fills": 4, "buys": 2, "sells": 2, "resolutions": 0, "volume_usd": "104",
        "fees_usd": "0.74", "realized_pnl_usd": "0.26", "unrealized_pnl_usd": "0.5",
        "net_pnl_usd": "0.76", "open_positions": 1, "win_rate": "0.5",
        "avg_slippage": "0.013333", "avg_slippage_pct": "2.5986", "attribution": ""}
    assert (_scope(rep, "live")["realized_pnl_usd"], _scope(rep, "live")["volume_usd"]) == ("0.26", "101")
    assert (_scope(rep, "paper")["unrealized_pnl_usd"], _scope(rep, "paper")["fills"]) == ("0.5", 1)
    a = _scope(rep, f"trader:{w['a']}")
    assert a["realized_pnl_usd"] == "0.26" and a["open_positions"] == 0
    assert a["attribution"] == (f"copying {w['a']} made you +$0.26 (realized +$0.26, "
                                "unrealized +$0.00)")
    attribution = _scope(rep, f"trader:{w['b']}")["attribution"]
    assert isinstance(attribution, str) and attribution.startswith(f"copying {w['b']} made you +$0.50")


def test_range_start_keeps_the_cost_basis_of_earlier_buys(database: Database) -> None:
    """A report starting after the buy still realizes the sells against avg cost 0.505."""
    seed_fills(database)
    rep = _report(database, date(2024, 1, 3), date(2024, 1, 4), None)
    assert [r["realized_pnl"] for r in rep.fill_rows()] == ["3.56", "-3.3"]
    assert _scope(rep, "all")["volume_usd"] == "51"
    # the paper buy of Jan 5 is after --end: no open position at the end of the range
    assert _scope(rep, "all")["open_positions"] == 0 and _scope(rep, "all")["unrealized_pnl_usd"] == "0"


def test_missing_price_marks_unrealized_na_not_zero(database: Database) -> None:
    """Without a mid for an open position, unrealized and net are 'n/a'; realized still shows."""
    seed_fills(database)
    rep = _report(database, date(2024, 1, 1), None, mids({}))
    assert _scope(rep, "all")["unrealized_pnl_usd"] == "n/a"
    assert _scope(rep, "all")["net_pnl_usd"] == "n/a"
    assert _scope(rep, "all")["realized_pnl_usd"] == "0.26"
    assert _scope(rep, "live")["unrealized_pnl_usd"] == "0"

    def broken(_token: str) -> D:
        raise RuntimeError("network down")

    rep = _report(database, date(2024, 1, 1), None, broken)
    assert _scope(rep, "paper")["unrealized_pnl_usd"] == "n/a"


def test_report_agrees_with_the_ledger(database: Database) -> None:
    """Fills recorded through ledger.record_fill store the realized P&L the report computes."""
    from copying import ledger
    with database.session() as s:
        f = fx.follower(s, 1)
        t = fx.trader(s, 1)
        fo = fx.follow(s, f, t)
        for i, (side, size, price, fee) in enumerate([("BUY", "30", "0.41", "0.123"),
                                                      ("BUY", "7", "0.37", "0"),
                                                      ("SELL", "11", "0.52", "0.05"),
                                                      ("SELL", "26", "0.33", "0.01")]):
            tf = fx.trader_fill(s, t, key=f"k{i}", side=side, price=D(price))
            co = fx.copy_order(s, tf, fo, side=side, status=CopyStatus.LIVE)
            ledger.record_fill(s, co, ledger.FillRecord(
                trade_id=f"t{i}", order_hash="0x" + f"{i:064x}", size=D(size), price=D(price),
                fee=D(fee), status="CONFIRMED", filled_at=datetime(2024, 1, 2 + i, tzinfo=UTC)))
        s.commit()
        stored = [ff.realized_pnl for ff in s.query(FollowerFill).order_by(FollowerFill.filled_at)]
    rep = _report(database, date(2024, 1, 1), None, None)
    # equal to the micro-dollar: PostgreSQL stores avg_cost as NUMERIC(38, 18), the replay keeps
    # 28 significant digits, so they may differ in the 18th decimal of a repeating quotient
    assert [money(ln.realized_pnl) for ln in rep.lines] == [money(x) for x in stored]
    assert money(stored[2]) == "1.206676"


def test_pure_helpers() -> None:
    """Slippage is adverse-positive on both sides; dates parse strictly; signs format."""
    assert slippage_of("BUY", D("0.52"), D("0.50")) == (D("0.02"), D("4"))
    assert slippage_of("SELL", D("0.52"), D("0.50")) == (D("-0.02"), D("-4"))
    assert slippage_of("BUY", D("0.5"), D("0"))[1] is None
    assert parse_day("2024-02-29", "--start") == date(2024, 2, 29)
    for bad in ("2024-02-30", "yesterday", "2024/01/01", ""):
        with pytest.raises(ValueError):
            parse_day(bad, "--start")
    lo, hi = day_window(date(2024, 1, 1), date(2024, 1, 1), datetime(2025, 1, 1, tzinfo=UTC))
    assert (lo, hi) == (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC))
    with pytest.raises(ValueError):
        day_window(date(2024, 1, 2), date(2024, 1, 1), datetime(2025, 1, 1, tzinfo=UTC))
    assert (signed_usd(D("-3.304")), signed_usd(D("0.005")), signed_usd(None)) == (
        "-$3.30", "+$0.00", "n/a")


def test_csv_neutralises_formulas_and_has_a_summary_block(database: Database) -> None:
    """A market title starting with '=' is quoted as text; the summary follows a blank line."""
    seed_fills(database)
    text = render_csv(_report(database, date(2024, 1, 1), None, mids({"222": "0.35"})))
    fills_part, summary_part = text.split("\n\n")
    rows = list(csv.DictReader(io.StringIO(fills_part)))
    assert rows[3]["market"].startswith("'=HYPERLINK")
    summary = list(csv.DictReader(io.StringIO(summary_part)))
    assert [r["scope"] for r in summary][:3] == ["all", "live", "paper"]


def test_cumulative_series_per_trader(database: Database) -> None:
    """The chart data is each trader's running realized P&L after each of its fills."""
    w = seed_fills(database)
    series = cumulative_series(_report(database, date(2024, 1, 1), None).lines)
    assert [v for _, v in series[w["a"]]] == [D(0), D("3.56"), D("0.26")]
    assert [v for _, v in series[w["b"]]] == [D(0)]


# --- the CLI --------------------------------------------------------------------------------

@pytest.fixture
def ops_env(env: Database, monkeypatch: pytest.MonkeyPatch) -> Database:  # noqa: F811
    """The admin test environment with a local CLOB URL (mocked with respx)."""
    monkeypatch.setenv("POLYMARKET_CLOB_API_URL", CLOB)
    return env


def test_cli_report_to_file_with_summary_file_and_trader_attribution(
        ops_env: Database, tmp_path: Path) -> None:
    """report --output/--summary-file/--by-trader writes two private CSVs; mids come from the CLOB."""
    w = seed_fills(ops_env)
    out, summ = tmp_path / "r.csv", tmp_path / "s.csv"
    with respx.mock(assert_all_called=True) as mock:
        mock.get(f"{CLOB}/midpoint", params={"token_id": "222"}).mock(
            return_value=httpx.Response(200, json={"mid_price": "0.35"}))
        r = run("report", "--wallet", w["follower"], "--start", "2024-01-01", "--end",
                "2024-01-31", "--output", str(out), "--summary-file", str(summ), "--by-trader")
    assert r.exit_code == 0, r.output
    assert r.stdout == ""
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 4 and "\n\n" not in out.read_text()
    summary = {x["scope"]: x for x in csv.DictReader(io.StringIO(summ.read_text()))}
    assert summary["all"]["net_pnl_usd"] == "0.76"
    assert "made you +$0.26" in summary[f"trader:{w['a']}"]["attribution"]
    assert oct(out.stat().st_mode)[-3:] == "600"


def test_cli_report_survives_a_clob_outage(ops_env: Database) -> None:
    """A connection error on /midpoint gives 'n/a' unrealized, exit 0, CSV on stdout."""
    w = seed_fills(ops_env)
    with respx.mock() as mock:
        mock.get(f"{CLOB}/midpoint").mock(side_effect=httpx.ConnectError("refused"))
        r = run("report", "--wallet", w["follower"], "--start", "2024-01-01")
    assert r.exit_code == 0, r.output
    summary = list(csv.DictReader(io.StringIO(r.stdout.split("\n\n")[1])))
    assert summary[0]["unrealized_pnl_usd"] == "n/a" and summary[0]["realized_pnl_usd"] == "0.26"


def test_cli_report_json_and_chart(ops_env: Database, tmp_path: Path) -> None:
    """--json prints fills + summary; --chart writes a PNG."""
    pytest.importorskip("matplotlib")
    w = seed_fills(ops_env)
    chart = tmp_path / "pnl.png"
    r = run("report", "--wallet", w["follower"], "--start", "2024-01-01", "--no-prices",
            "--json", "--chart", str(chart))
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert len(data["fills"]) == 4 and data["summary"][0]["realized_pnl_usd"] == "0.26"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


REPORT_INVALID = [
    ("missing start", ["report", "--wallet", "0x" + "0" * 39 + "1"]),
    ("bad start", ["report", "--wallet", "0x" + "0" * 39 + "1", "--start", "01/02/2024"]),
    ("impossible date", ["report", "--wallet", "0x" + "0" * 39 + "1", "--start", "2024-02-30"]),
    ("end before start", ["report", "--wallet", "0x" + "0" * 39 + "1", "--start", "2024-02-01",
                          "--end", "2024-01-01"]),
    ("start in future", ["report", "--wallet", "0x" + "0" * 39 + "1", "--start", "2999-01-01"]),
    ("unknown wallet", ["report", "--wallet", "0x" + "0" * 39 + "9", "--start", "2024-01-01"]),
    ("malformed wallet", ["report", "--wallet", "alice", "--start", "2024-01-01"]),
    ("chart not png", ["report", "--wallet", "0x" + "0" * 39 + "1", "--start", "2024-01-01",
                       "--chart", "pnl.jpg"]),
    ("output dir missing", ["report", "--wallet", "0x" + "0" * 39 + "1", "--start", "2024-01-01",
                            "--output", "/nonexistent/dir/r.csv"]),
    ("output is a directory", ["report", "--wallet", "0x" + "0" * 39 + "1", "--start",
                               "2024-01-01", "--output", "/tmp"]),
    ("summary dir missing", ["report", "--wallet", "0x" + "0" * 39 + "1", "--start", "2024-01-01",
                             "--summary-file", "/nonexistent/s.csv"]),
    ("performance bad date", ["performance", "--start", "soon"]),
    ("performance unknown wallet", ["performance", "--wallet", "0x" + "0" * 39 + "9"]),
]


@pytest.mark.parametrize(("case", "args"), REPORT_INVALID, ids=[c for c, _ in REPORT_INVALID])
def test_invalid_report_invocations_exit_2(ops_env: Database, case: str, args: list[str]) -> None:
    """Each bad report/performance invocation: exit 2, one 'error:' line, nothing written."""
    seed_fills(ops_env)
    before = counts(ops_env)
    r = run(*args)
    assert r.exit_code == 2, (case, r.output)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (case, r.stderr)
    assert counts(ops_env) == before
