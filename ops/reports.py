"""Follower P&L reports: fill lines, average-cost realized P&L, unrealized at mid, attribution.

Conventions (the same as ledger.py, so a report and the stored positions agree):
- average cost per (follow, token, paper): a BUY adds price × size + fee to the cost basis;
  a SELL realizes (price − avg_cost) × size − fee (a sell above the holding is clamped);
- unrealized = (current mid − avg_cost) × size for every position still open at the end of the
  range, valued at the *current* mid; when any mid is unavailable the total is None ('n/a'),
  never a guess, and a network failure never breaks the report;
- slippage is adverse-positive: BUY price − trader price, SELL trader price − price;
  averages are size-weighted;
- a market's resolution closes each position there at the payout (1 or 0 per share): a RESOLVE
  line (`position_settlements`) realizes (payout − avg_cost) × size; it is not a fill (no
  volume, no slippage) and counts in `resolutions`;
- win rate = closes with positive realized P&L / closes, a close being a SELL fill or a
  resolved position;
- volume = Σ price × size; paper and live fills are both included and marked.

Money and prices are Decimal throughout; sums and comparisons are done in Python (SQLite
stores decimals as text). Dates are UTC days: --start is inclusive from 00:00, --end inclusive
to 24:00.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from infra.decimals import canonical_decimal
from infra.errors import InputError
from models import (
    CopyOrder,
    Follow,
    Follower,
    FollowerFill,
    Market,
    MarketTokenRow,
    PositionSettlement,
    Trader,
    TraderFill,
)

ZERO = Decimal(0)
MONEY = Decimal("0.000001")
RATE = Decimal("0.0001")
PriceSource = Callable[[str], Decimal | None]

FILL_COLUMNS = ["time", "follower", "trader", "market", "outcome", "side", "size", "price", "fee",
                "trader_price", "slippage", "slippage_pct", "realized_pnl", "paper",
                "copy_order_id"]
SUMMARY_COLUMNS = ["scope", "fills", "buys", "sells", "resolutions", "volume_usd", "fees_usd",
                   "realized_pnl_usd", "unrealized_pnl_usd", "net_pnl_usd", "open_positions",
                   "win_rate", "avg_slippage", "avg_slippage_pct", "attribution"]
RESOLVE = "RESOLVE"  # the side of a position closed by its market's resolution


# --- dates ----------------------------------------------------------------------------------

def day_window(start: date | None, end: date | None,
               now: datetime) -> tuple[datetime | None, datetime]:
    """[start 00:00 UTC, end+1 day 00:00 UTC); end defaults to now. InputError if reversed."""
    lo = datetime.combine(start, time(0), UTC) if start else None
    hi = datetime.combine(end, time(0), UTC) + timedelta(days=1) if end else now
    if lo is not None and lo >= hi:
        raise InputError("--end must not be before --start" if end else "--start is in the future")
    return lo, hi


# --- values ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class FillFact:
    """One follower fill with what a report needs about it (read from the database)."""

    fill_id: int
    filled_at: datetime
    follower: str
    trader: str
    follow_id: int
    copy_order_id: int | None  # None for a RESOLVE line
    token_id: str
    side: str
    size: Decimal
    price: Decimal
    fee: Decimal
    trader_price: Decimal
    paper: bool
    market: str
    outcome: str


@dataclass(frozen=True)
class ReportLine:
    """A fill with its slippage and average-cost realized P&L."""

    fact: FillFact
    slippage: Decimal
    slippage_pct: Decimal | None
    realized_pnl: Decimal

    @property
    def notional(self) -> Decimal:
        """price × size."""
        return self.fact.price * self.fact.size


@dataclass
class Position:
    """Average-cost state of one (follow, token, paper) holding."""

    trader: str
    token_id: str
    paper: bool
    size: Decimal = ZERO
    avg_cost: Decimal = ZERO


def slippage_of(side: str, price: Decimal, trader_price: Decimal) -> tuple[Decimal, Decimal | None]:
    """Adverse slippage vs the trader (BUY: ours − his; SELL: his − ours; price units) and as %
    of the trader's price (None when his price is not positive)."""
    slip = price - trader_price if side == "BUY" else trader_price - price
    pct = slip / trader_price * 100 if trader_price > 0 else None
    return slip, pct


def slippage_bps(side: str, price: Decimal, trader_price: Decimal) -> Decimal:
    """`slippage_of` in basis points of the trader's price (his price must be positive)."""
    _, pct = slippage_of(side, price, trader_price)
    assert pct is not None, "slippage in bps needs a positive trader price"
    return pct * 100


def replay(facts: Iterable[FillFact], progress: Callable[[int], None] | None = None
           ) -> tuple[list[ReportLine], dict[tuple[int, str, bool], Position]]:
    """Apply fills in time order with the average-cost rule; lines and the final positions."""
    positions: dict[tuple[int, str, bool], Position] = {}
    lines: list[ReportLine] = []
    for n, f in enumerate(sorted(facts, key=lambda x: (x.filled_at, x.side == RESOLVE, x.fill_id)),
                          start=1):
        key = (f.follow_id, f.token_id, f.paper)
        pos = positions.get(key)
        if pos is None:
            pos = positions[key] = Position(f.trader, f.token_id, f.paper)
        if f.side == "BUY":
            new_size = pos.size + f.size
            cost = pos.avg_cost * pos.size + f.price * f.size + f.fee
            pos.avg_cost = cost / new_size if new_size > 0 else ZERO
            pos.size = new_size
            realized = ZERO
        else:
            sold = min(f.size, pos.size)
            realized = (f.price - pos.avg_cost) * sold - f.fee
            pos.size = pos.size - sold
            if pos.size == 0:
                pos.avg_cost = ZERO
        slip, pct = slippage_of(f.side, f.price, f.trader_price)
        lines.append(ReportLine(f, slip, pct, realized))
        if progress is not None and n % 200 == 0:
            progress(200)
    return lines, positions


@dataclass
class Totals:
    """Aggregates of one scope (all, live, paper or one trader)."""

    scope: str
    fills: int = 0
    buys: int = 0
    sells: int = 0
    resolutions: int = 0
    wins: int = 0
    volume: Decimal = ZERO
    fees: Decimal = ZERO
    realized: Decimal = ZERO
    unrealized: Decimal | None = ZERO
    open_positions: int = 0
    slip_size: Decimal = ZERO
    slip_weighted: Decimal = ZERO
    slip_pct_size: Decimal = ZERO
    slip_pct_weighted: Decimal = ZERO

    def add_line(self, line: ReportLine) -> None:
        """Count one fill (or one resolved position: realized P&L and a close, not a fill)."""
        f = line.fact
        if f.side == RESOLVE:
            self.resolutions += 1
            self.realized += line.realized_pnl
            if line.realized_pnl > 0:
                self.wins += 1
            return
        self.fills += 1
        self.volume += line.notional
        self.fees += f.fee
        self.realized += line.realized_pnl
        if f.side == "BUY":
            self.buys += 1
        else:
            self.sells += 1
            if line.realized_pnl > 0:
                self.wins += 1
        self.slip_size += f.size
        self.slip_weighted += line.slippage * f.size
        if line.slippage_pct is not None:
            self.slip_pct_size += f.size
            self.slip_pct_weighted += line.slippage_pct * f.size

    def add_position(self, value: Decimal | None) -> None:
        """Count one open position valued at `value` (None = no price)."""
        self.open_positions += 1
        if value is None or self.unrealized is None:
            self.unrealized = None
        else:
            self.unrealized += value

    @property
    def win_rate(self) -> Decimal | None:
        """Winning closes / closes (SELL fills and resolved positions; None without any)."""
        closes = self.sells + self.resolutions
        return Decimal(self.wins) / Decimal(closes) if closes else None

    @property
    def avg_slippage(self) -> Decimal | None:
        """Size-weighted mean slippage in price units."""
        return self.slip_weighted / self.slip_size if self.slip_size else None

    @property
    def avg_slippage_pct(self) -> Decimal | None:
        """Size-weighted mean slippage in % of the trader's price."""
        return self.slip_pct_weighted / self.slip_pct_size if self.slip_pct_size else None

    @property
    def net(self) -> Decimal | None:
        """realized + unrealized (None when unrealized is unknown)."""
        return None if self.unrealized is None else self.realized + self.unrealized

    def attribution(self) -> str:
        """'copying 0x… made you +$1.23' for a trader scope (empty for other scopes)."""
        if not self.scope.startswith("trader:"):
            return ""
        who = self.scope.split(":", 1)[1]
        if self.net is not None:
            return (f"copying {who} made you {signed_usd(self.net)} (realized "
                    f"{signed_usd(self.realized)}, unrealized {signed_usd(self.unrealized)})")
        return (f"copying {who} made you {signed_usd(self.realized)} realized "
                "(unrealized n/a)")

    def row(self) -> dict[str, object]:
        """The scope as display strings (money to 6 dp, rates to 4 dp, n/a when unknown)."""
        return {
            "scope": self.scope,
            "fills": self.fills,
            "buys": self.buys,
            "sells": self.sells,
            "resolutions": self.resolutions,
            "volume_usd": money(self.volume),
            "fees_usd": money(self.fees),
            "realized_pnl_usd": money(self.realized),
            "unrealized_pnl_usd": money(self.unrealized),
            "net_pnl_usd": money(self.net),
            "open_positions": self.open_positions,
            "win_rate": rate(self.win_rate),
            "avg_slippage": money(self.avg_slippage),
            "avg_slippage_pct": rate(self.avg_slippage_pct),
            "attribution": self.attribution(),
        }


def money(value: Decimal | None) -> str:
    """Money/price text rounded to 6 decimals ('n/a' for None)."""
    if value is None:
        return "n/a"
    return canonical_decimal(value.quantize(MONEY, rounding=ROUND_HALF_EVEN))


def rate(value: Decimal | None) -> str:
    """A ratio or percentage rounded to 4 decimals ('n/a' for None)."""
    if value is None:
        return "n/a"
    return canonical_decimal(value.quantize(RATE, rounding=ROUND_HALF_EVEN))


def signed_usd(value: Decimal | None) -> str:
    """'+$1.23' / '-$0.5' / 'n/a'."""
    if value is None:
        return "n/a"
    q = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    return f"{'-' if q < 0 else '+'}${format(abs(q), 'f')}"


@dataclass
class Report:
    """A follower's fills in a date range, the positions open at its end, and the totals."""

    follower: str
    start: datetime | None
    end: datetime
    lines: list[ReportLine]
    totals: list[Totals]
    positions: list[Position] = field(default_factory=list)

    def summary_rows(self) -> list[dict[str, object]]:
        """One display row per scope."""
        return [t.row() for t in self.totals]

    def fill_rows(self) -> list[dict[str, object]]:
        """One display row per fill."""
        return [fill_row(line) for line in self.lines]


def fill_row(line: ReportLine) -> dict[str, object]:
    """A report line as display strings."""
    f = line.fact
    return {
        "time": f.filled_at.astimezone(UTC).isoformat(timespec="seconds"),
        "follower": f.follower,
        "trader": f.trader,
        "market": f.market,
        "outcome": f.outcome,
        "side": f.side,
        "size": canonical_decimal(f.size),
        "price": canonical_decimal(f.price),
        "fee": canonical_decimal(f.fee),
        "trader_price": canonical_decimal(f.trader_price),
        "slippage": money(line.slippage),
        "slippage_pct": rate(line.slippage_pct),
        "realized_pnl": money(line.realized_pnl),
        "paper": "true" if f.paper else "false",
        "copy_order_id": "" if f.copy_order_id is None else f.copy_order_id,
    }


# --- building -------------------------------------------------------------------------------

def load_facts(session: Session, follower_ids: list[int] | None, before: datetime
               ) -> list[FillFact]:
    """Every fill and resolved position of these followers (None = all) before `before`, with
    market labels.

    Reads plain columns (no ORM objects): a report over 10,000 fills stays a fraction of a
    second.
    """
    q = (select(FollowerFill.id, FollowerFill.filled_at, FollowerFill.follow_id,
                FollowerFill.token_id, FollowerFill.side, FollowerFill.size, FollowerFill.price,
                FollowerFill.fee, FollowerFill.paper, CopyOrder.id, CopyOrder.condition_id,
                CopyOrder.trader_price, Trader.wallet, Follower.funder_address,
                TraderFill.title, TraderFill.outcome)
         .join(CopyOrder, CopyOrder.id == FollowerFill.copy_order_id)
         .join(Follow, Follow.id == FollowerFill.follow_id)
         .join(Trader, Trader.id == Follow.trader_id)
         .join(Follower, Follower.id == FollowerFill.follower_id)
         .outerjoin(TraderFill, TraderFill.id == CopyOrder.trader_fill_id)
         .where(FollowerFill.filled_at < before))
    if follower_ids is not None:
        q = q.where(FollowerFill.follower_id.in_(follower_ids))
    rows = session.execute(q).all()
    questions = _questions(session, {r[10] for r in rows})
    outcomes = _outcomes(session, {r[3] for r in rows})
    facts = []
    for (fill_id, filled_at, follow_id, token_id, side, size, price, fee, paper, co_id, cond,
         trader_price, trader, follower, title, outcome) in rows:
        facts.append(FillFact(
            fill_id=fill_id, filled_at=filled_at, follower=follower, trader=trader,
            follow_id=follow_id, copy_order_id=co_id, token_id=token_id, side=side,
            size=size, price=price, fee=fee or ZERO, trader_price=trader_price,
            paper=bool(paper), market=questions.get(cond) or title or cond,
            outcome=outcomes.get(token_id) or outcome or ""))
    return facts + load_settlements(session, follower_ids, before)


def load_settlements(session: Session, follower_ids: list[int] | None, before: datetime
                     ) -> list[FillFact]:
    """Positions closed by their market's resolution, as RESOLVE facts at the payout."""
    q = (select(PositionSettlement, Trader.wallet, Follower.funder_address)
         .join(Follow, Follow.id == PositionSettlement.follow_id)
         .join(Trader, Trader.id == Follow.trader_id)
         .join(Follower, Follower.id == PositionSettlement.follower_id)
         .where(PositionSettlement.settled_at < before))
    if follower_ids is not None:
        q = q.where(PositionSettlement.follower_id.in_(follower_ids))
    rows = session.execute(q).all()
    questions = _questions(session, {st.condition_id for st, *_ in rows})
    outcomes = _outcomes(session, {st.token_id for st, *_ in rows})
    return [FillFact(fill_id=st.id, filled_at=st.settled_at, follower=follower, trader=trader,
                     follow_id=st.follow_id, copy_order_id=None, token_id=st.token_id, side=RESOLVE,
                     size=st.size, price=st.payout, fee=ZERO, trader_price=st.payout,
                     paper=bool(st.paper), market=questions.get(st.condition_id) or st.condition_id,
                     outcome=outcomes.get(st.token_id) or "")
            for st, trader, follower in rows]


def _chunks(items: set[str], n: int = 500) -> Iterator[list[str]]:
    seq = sorted(items)
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _questions(session: Session, cond_ids: set[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for chunk in _chunks(cond_ids):
        out.update({c: q for c, q in session.execute(
            select(Market.condition_id, Market.question).where(Market.condition_id.in_(chunk)))
            if q})
    return out


def _outcomes(session: Session, token_ids: set[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for chunk in _chunks(token_ids):
        out.update({t: o for t, o in session.execute(
            select(MarketTokenRow.token_id, MarketTokenRow.outcome)
            .where(MarketTokenRow.token_id.in_(chunk))) if o})
    return out


def compute_totals(lines: list[ReportLine], positions: Iterable[Position],
                   prices: PriceSource | None, by_trader: bool) -> list[Totals]:
    """Totals for all / live / paper (and each trader), unrealized valued with `prices`."""
    scopes: dict[str, Totals] = {"all": Totals("all"), "live": Totals("live"),
                                 "paper": Totals("paper")}

    def targets(trader: str, paper: bool) -> list[Totals]:
        out = [scopes["all"], scopes["paper" if paper else "live"]]
        if by_trader:
            out.append(scopes.setdefault(f"trader:{trader}", Totals(f"trader:{trader}")))
        return out

    for line in lines:
        for t in targets(line.fact.trader, line.fact.paper):
            t.add_line(line)
    mids: dict[str, Decimal | None] = {}
    for pos in positions:
        if pos.size <= 0:
            continue
        if pos.token_id not in mids:
            mids[pos.token_id] = _safe_price(prices, pos.token_id)
        mid = mids[pos.token_id]
        value = None if mid is None else (mid - pos.avg_cost) * pos.size
        for t in targets(pos.trader, pos.paper):
            t.add_position(value)
    ordered = [scopes.pop("all"), scopes.pop("live"), scopes.pop("paper")]
    return ordered + [scopes[k] for k in sorted(scopes)]


def _safe_price(prices: PriceSource | None, token_id: str) -> Decimal | None:
    if prices is None:
        return None
    try:
        return prices(token_id)
    except Exception:  # noqa: BLE001 - a price lookup must never break a report
        return None


Replayed = tuple[list[ReportLine], list[Position]]


def build_report(session: Session, follower: Follower, start: datetime | None, end: datetime,
                 prices: PriceSource | None, *, by_trader: bool = False,
                 progress: Callable[[int], None] | None = None,
                 replayed: Replayed | None = None) -> Report:
    """The report of one follower for [start, end).

    `replayed`: the (lines, open positions) of replaying every fill before `end`, when the
    caller already has them (the dashboard caches them); otherwise they are read and replayed.
    """
    if replayed is None:
        lines, positions = replay(load_facts(session, [follower.id], end), progress)
        open_positions = [p for p in positions.values() if p.size > 0]
    else:
        lines, open_positions = replayed
    in_range = [ln for ln in lines if start is None or ln.fact.filled_at >= start]
    totals = compute_totals(in_range, open_positions, prices, by_trader)
    return Report(follower.funder_address, start, end, in_range, totals, open_positions)


def count_fills(session: Session, follower_ids: list[int] | None, before: datetime) -> int:
    """How many fills a report over these followers will replay (for a progress bar)."""
    from sqlalchemy import func

    q = select(func.count()).select_from(FollowerFill).where(FollowerFill.filled_at < before)
    r = select(func.count()).select_from(PositionSettlement).where(PositionSettlement.settled_at < before)
    if follower_ids is not None:
        q = q.where(FollowerFill.follower_id.in_(follower_ids))
        r = r.where(PositionSettlement.follower_id.in_(follower_ids))
    return int(session.scalar(q) or 0) + int(session.scalar(r) or 0)


# --- output ---------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    """Neutralise spreadsheet formulas in free text (market titles come from outside)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _is_number(value):
        return "'" + value
    return value


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
        return True
    except ArithmeticError:
        return False


def write_fills_csv(report: Report, fh: IO[str]) -> None:
    """The fill table as CSV."""
    w = csv.DictWriter(fh, fieldnames=FILL_COLUMNS, lineterminator="\n")
    w.writeheader()
    for row in report.fill_rows():
        w.writerow({k: _cell(v) for k, v in row.items()})


def write_summary_csv(report: Report, fh: IO[str]) -> None:
    """The per-scope totals as CSV."""
    w = csv.DictWriter(fh, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    w.writeheader()
    for row in report.summary_rows():
        w.writerow({k: _cell(v) for k, v in row.items()})


def render_csv(report: Report, with_summary: bool = True) -> str:
    """Fill table, then (after a blank line) the summary block."""
    buf = io.StringIO()
    write_fills_csv(report, buf)
    if with_summary:
        buf.write("\n")
        write_summary_csv(report, buf)
    return buf.getvalue()


def report_json(report: Report) -> dict[str, Any]:
    """The report as a JSON-safe dict."""
    return {
        "follower": report.follower,
        "start": report.start.isoformat() if report.start else None,
        "end": report.end.isoformat(),
        "fills": report.fill_rows(),
        "summary": report.summary_rows(),
    }


# --- chart ----------------------------------------------------------------------------------

def cumulative_series(lines: Iterable[ReportLine]) -> dict[str, list[tuple[datetime, Decimal]]]:
    """Per trader: (time, cumulative realized P&L) after each of its fills, in time order."""
    out: dict[str, list[tuple[datetime, Decimal]]] = {}
    running: dict[str, Decimal] = {}
    for line in sorted(lines, key=lambda ln: (ln.fact.filled_at, ln.fact.fill_id)):
        t = line.fact.trader
        running[t] = running.get(t, ZERO) + line.realized_pnl
        out.setdefault(t, []).append((line.fact.filled_at, running[t]))
    return out


def draw_chart(series: dict[str, list[tuple[datetime, Decimal]]], path: str, title: str) -> None:
    """Write a PNG of cumulative realized P&L per trader (matplotlib, imported here only)."""
    try:
        import matplotlib
    except ImportError:
        raise InputError("--chart needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5))
    try:
        for trader, points in sorted(series.items()):
            xs = [p[0] for p in points]
            ys = [float(p[1]) for p in points]  # plotting only: never used for money arithmetic
            ax.step(xs, ys, where="post", label=trader)  # type: ignore[arg-type]
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_title(title)
        ax.set_ylabel("cumulative realized P&L (pUSD)")
        if series:
            ax.legend(fontsize="small")
        fig.autofmt_xdate()
        fig.savefig(path, format="png", dpi=100)
    finally:
        plt.close(fig)
