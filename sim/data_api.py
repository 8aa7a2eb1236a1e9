"""Data API v2 routes: /v2/trades, /v2/activity, /v2/positions, /v2/tokens, /v2/leaderboard,
/v2/status.

Envelopes, cursors and errors as docs/POLYMARKET.md §1: `{data, pagination{has_more, next_cursor}}`,
keyset cursors on (timestamp, sequence) newest first, snake_case rows exactly as
fixtures/data_trades.json, v2 error bodies `{error, code, retryable, trace_id, parameter?}` and
an `x-trace-id` header on every answer.

Invariants: a row is served only once the simulated clock has reached its timestamp; pages of
one walk never repeat or skip a row (the cursor anchors on the last row served);
`has_more` is true exactly when `next_cursor` is not null.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sim.feeds import ACTIVITY_TYPES
from sim.http import HttpError, Request, Response, Router
from sim.state import DataRow, Market, World
from sim.units import json_number
from sim.verify import ALL_EXCHANGES

if TYPE_CHECKING:
    from sim.core import Simulator

THREE_YEARS = 3 * 365 * 86400
ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}\Z")
CAMEL = {
    "takerOnly": "taker_only",
    "filterType": "filter_type",
    "filterAmount": "filter_amount",
    "eventId": "event_id",
    "conditionId": "condition",
    "condition_id": "condition",
    "sortBy": "sort_by",
    "sortDirection": "sort_direction",
    "tokenId": "token_id",
    "excludeDepositsWithdrawals": "exclude_deposits_withdrawals",
    "includeArchived": "include_archived",
}
PROTOCOL_ADDRESSES = {a.lower() for a in ALL_EXCHANGES}


def _trace() -> str:
    return uuid.uuid4().hex[:16]


def error(status: int, code: str, message: str, parameter: str | None = None) -> HttpError:
    """A v2 error as an exception carrying its response."""
    trace = _trace()
    body: dict[str, Any] = {
        "error": message,
        "code": code,
        "retryable": status in (429, 503),
        "trace_id": trace,
    }
    if parameter:
        body["parameter"] = parameter
    return HttpError(status, body, {"x-trace-id": trace})


def bad(parameter: str, message: str) -> HttpError:
    """400 invalid_request naming the parameter."""
    return error(400, "invalid_request", message, parameter)


def not_found(path: str) -> Response:
    """404 for an unknown Data API route."""
    trace = _trace()
    return Response(
        404,
        {"error": "route not found", "code": "not_found", "retryable": False, "trace_id": trace},
        {"x-trace-id": trace},
    )


def ok(body: Any) -> Response:
    """200 with the trace header."""
    return Response(200, body, {"x-trace-id": _trace()})


class Params:
    """Query parameters with camelCase aliases folded into snake_case."""

    def __init__(self, req: Request, allowed: set[str]) -> None:
        self.values: dict[str, str] = {}
        for name, vals in req.query.items():
            key = CAMEL.get(name, name)
            if key == "offset":
                raise bad("offset", "offset is not supported on v2 routes; use cursor")
            if key in allowed:
                self.values[key] = vals[-1]

    def get(self, name: str) -> str | None:
        """Value or None (an empty string counts as absent)."""
        v = self.values.get(name)
        return v if v not in (None, "") else None

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        """Integer parameter within [low, high]."""
        text = self.get(name)
        if text is None:
            return default
        if not re.fullmatch(r"-?\d+", text):
            raise bad(name, f"{name} must be an integer")
        value = int(text)
        if not low <= value <= high:
            raise bad(name, f"{name} must be between {low} and {high}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        """Boolean parameter (true/false)."""
        text = self.get(name)
        if text is None:
            return default
        if text.lower() not in ("true", "false"):
            raise bad(name, f"{name} must be true or false")
        return text.lower() == "true"

    def csv(self, name: str, limit: int) -> list[str]:
        """Comma-separated list parameter with a maximum length."""
        text = self.get(name)
        if text is None:
            return []
        items = [x.strip() for x in text.split(",") if x.strip()]
        if len(items) > limit:
            raise bad(name, f"{name} accepts at most {limit} values")
        return items

    def address(self, name: str) -> str | None:
        """Wallet address parameter (lower-cased)."""
        text = self.get(name)
        if text is None:
            return None
        if not ADDRESS.match(text):
            raise bad(name, f"{name} must be a 0x-prefixed 40-hex-digit address")
        if text.lower() in PROTOCOL_ADDRESSES:
            raise bad(name, f"{name} is a protocol contract address")
        return text.lower()


# ---- cursors -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """Decoded keyset cursor: the last row served, page size and direction."""

    route: str
    timestamp: int
    seq: int
    size: int
    direction: str


def encode_cursor(c: Cursor) -> str:
    """Opaque cursor text."""
    raw = f"v2:{c.route}:{c.timestamp}:{c.seq}:{c.size}:{c.direction}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str, route: str) -> Cursor:
    """Parse a cursor of this route (400 otherwise)."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        tag, name, ts, seq, size, direction = raw.split(":")
        if tag != "v2" or name != route or direction not in ("DESC", "ASC"):
            raise ValueError(raw)
        return Cursor(name, int(ts), int(seq), int(size), direction)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise bad("cursor", "invalid cursor") from exc


def _keyset_page(
    rows: list[DataRow],
    route: str,
    params: Params,
    default_limit: int,
    direction: str,
    render: Callable[[DataRow], dict[str, Any]],
) -> dict[str, Any]:
    cursor_text = params.get("cursor")
    if cursor_text is not None:
        cur = decode_cursor(cursor_text, route)
        size, direction = cur.size, cur.direction
        anchor = (cur.timestamp, cur.seq)
    else:
        size = params.integer("limit", default_limit, 0, 1000)
        anchor = None
    descending = direction == "DESC"
    rows.sort(key=lambda r: (r.timestamp, r.seq), reverse=descending)
    if anchor is not None:
        rows = [
            r
            for r in rows
            if ((r.timestamp, r.seq) < anchor if descending else (r.timestamp, r.seq) > anchor)
        ]
    page = rows[:size]
    more = len(rows) > size and size > 0
    nxt = (
        encode_cursor(Cursor(route, page[-1].timestamp, page[-1].seq, size, direction))
        if more and page
        else None
    )
    return {
        "data": [render(r) for r in page],
        "pagination": {"has_more": nxt is not None, "next_cursor": nxt},
    }


# ---- rows --------------------------------------------------------------------------------------


def _profile(world: World, wallet: str) -> dict[str, str]:
    p = world.profile(wallet)
    return {
        "name": p.name,
        "pseudonym": p.pseudonym,
        "bio": p.bio,
        "profile_image": p.profile_image,
        "profile_image_optimized": p.profile_image_optimized,
    }


def trade_row(world: World, r: DataRow) -> dict[str, Any]:
    """A /v2/trades row (field order as fixtures/data_trades.json)."""
    prof = _profile(world, r.proxy_wallet)
    return {
        "proxy_wallet": r.proxy_wallet,
        "side": r.side,
        "token_id": r.token_id,
        "condition_id": r.condition_id,
        "size": json_number(r.size),
        "price": json_number(r.price),
        "timestamp": r.timestamp,
        "title": r.title,
        "slug": r.slug,
        "icon": r.icon,
        "event_slug": r.event_slug,
        "outcome": r.outcome,
        "outcome_index": r.outcome_index,
        "name": prof["name"],
        "pseudonym": prof["pseudonym"],
        "bio": prof["bio"],
        "profile_image": prof["profile_image"],
        "profile_image_optimized": prof["profile_image_optimized"],
        "transaction_hash": r.transaction_hash,
    }


def activity_row(world: World, r: DataRow) -> dict[str, Any]:
    """A /v2/activity row (`is_combo` only on combo trades)."""
    prof = _profile(world, r.proxy_wallet)
    row: dict[str, Any] = {
        "proxy_wallet": r.proxy_wallet,
        "timestamp": r.timestamp,
        "condition_id": r.condition_id,
        "type": r.kind,
        "size": json_number(r.size),
        "usdc_size": json_number(r.usdc_size),
        "transaction_hash": r.transaction_hash,
        "price": json_number(r.price),
        "token_id": r.token_id,
        "side": r.side,
        "outcome_index": r.outcome_index,
        "title": r.title,
        "slug": r.slug,
        "icon": r.icon,
        "event_slug": r.event_slug,
        "outcome": r.outcome,
        **prof,
    }
    if r.is_combo:
        row["is_combo"] = True
    return row


def _visible(world: World, rows: list[DataRow]) -> list[DataRow]:
    now = world.clock.now() - world.config.data_api_lag
    return [r for r in rows if r.timestamp <= now]


def _window(params: Params, world: World) -> tuple[int, int]:
    now = int(world.clock.now())
    start = params.integer("start", 0, 0, 2**62)
    end = params.integer("end", 0, 0, 2**62)
    return (start if start else now - THREE_YEARS), (end if end else now + 86400)


def _min_size_filter(params: Params, default_amount: Decimal) -> Callable[[DataRow], bool]:
    kind = (params.get("filter_type") or "TOKENS").upper()
    if kind not in ("TOKENS", "CASH"):
        raise bad("filter_type", "filter_type must be CASH or TOKENS")
    text = params.get("filter_amount")
    try:
        amount = Decimal(text) if text is not None else default_amount
    except ArithmeticError as exc:
        raise bad("filter_amount", "filter_amount must be a number") from exc
    if kind == "CASH":
        return lambda r: r.usdc_size >= amount
    return lambda r: r.size >= amount


def _side(params: Params) -> str | None:
    side = params.get("side")
    if side is not None and side not in ("BUY", "SELL"):
        raise bad("side", "side must be BUY or SELL")
    return side


def _events_filter(world: World, params: Params) -> Callable[[DataRow], bool]:
    conditions = {c.lower() for c in params.csv("condition", 20)}
    events = set(params.csv("event_id", 20))
    if conditions and events:
        raise bad("event_id", "condition and event_id are mutually exclusive")

    def keep(r: DataRow) -> bool:
        if conditions and r.condition_id.lower() not in conditions:
            return False
        if events:
            market = world.by_condition.get(r.condition_id.lower())
            return market is not None and market.event_id in events
        return True

    return keep


def get_trades(sim: Simulator, req: Request) -> Response:
    """GET /v2/trades (taker_only defaults to true)."""
    world = sim.world
    params = Params(
        req,
        {
            "user",
            "limit",
            "cursor",
            "taker_only",
            "filter_type",
            "filter_amount",
            "start",
            "end",
            "condition",
            "event_id",
            "side",
        },
    )
    user = params.address("user")
    taker_only = params.boolean("taker_only", True)
    side = _side(params)
    size_ok = _min_size_filter(params, Decimal("0.01"))
    scope = _events_filter(world, params)
    source = world.rows_by_wallet.get(user, []) if user else world.rows
    start, end = _window(params, world) if user else (0, 2**62)
    if params.get("condition") or params.get("event_id"):
        start, end = int(world.clock.now()) - THREE_YEARS, 2**62
    rows = [
        r
        for r in _visible(world, source)
        if r.kind == "TRADE"
        and (r.taker or not taker_only)
        and (side is None or r.side == side)
        and start <= r.timestamp <= end
        and size_ok(r)
        and scope(r)
    ]
    return ok(_keyset_page(rows, "trades", params, 100, "DESC", lambda r: trade_row(world, r)))


def get_activity(sim: Simulator, req: Request) -> Response:
    """GET /v2/activity (user required; maker and taker fills; splits/merges/redeems)."""
    world = sim.world
    params = Params(
        req,
        {
            "user",
            "limit",
            "cursor",
            "type",
            "condition",
            "event_id",
            "side",
            "start",
            "end",
            "sort_by",
            "sort_direction",
            "exclude_deposits_withdrawals",
        },
    )
    user = params.address("user")
    if user is None:
        raise bad("user", "user is required")
    types = [t.upper() for t in params.csv("type", len(ACTIVITY_TYPES))]
    for t in types:
        if t not in ACTIVITY_TYPES:
            raise bad("type", f"unknown activity type {t}")
    if (params.get("sort_by") or "TIMESTAMP").upper() != "TIMESTAMP":
        raise bad("sort_by", "sort_by must be TIMESTAMP")
    direction = (params.get("sort_direction") or "DESC").upper()
    if direction not in ("DESC", "ASC"):
        raise bad("sort_direction", "sort_direction must be ASC or DESC")
    exclude_dw = params.boolean("exclude_deposits_withdrawals", True)
    side = _side(params)
    scope = _events_filter(world, params)
    start, end = _window(params, world)

    def wanted(r: DataRow) -> bool:
        if types:
            return r.kind in types
        if r.kind == "TIP":
            return False
        return not (exclude_dw and r.kind in ("DEPOSIT", "WITHDRAWAL"))

    rows = [
        r
        for r in _visible(world, world.rows_by_wallet.get(user, []))
        if wanted(r)
        and (side is None or r.side == side)
        and start <= r.timestamp <= end
        and scope(r)
    ]
    return ok(
        _keyset_page(rows, "activity", params, 100, direction, lambda r: activity_row(world, r))
    )


# ---- positions ---------------------------------------------------------------------------------


@dataclass
class _Position:
    size: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    total_bought: Decimal = Decimal(0)
    total_cost: Decimal = Decimal(0)
    realized: Decimal = Decimal(0)
    first_ts: int = 0
    last_ts: int = 0


def _current_price(world: World, token_id: str) -> Decimal:
    market = world.by_token[token_id]
    if market.payouts is not None:
        return market.payouts[token_id]
    book = world.books[token_id]
    bid, ask = book.best_bid(), book.best_ask()
    if bid is not None and ask is not None:
        return (bid + ask) / 2
    last = world.last_trade.get(token_id)
    if last is not None:
        return last[0]
    return bid if bid is not None else (ask if ask is not None else Decimal("0.5"))


def _reduce(p: _Position, size: Decimal) -> None:
    """Take `size` out of a position at its average cost (no realized P&L)."""
    gone = min(size, p.size)
    avg = p.cost / p.size if p.size else Decimal(0)
    p.cost -= avg * gone
    p.size -= gone


def _position_activity(world: World, out: dict[str, _Position], r: DataRow) -> None:
    """SPLIT / MERGE / CONVERSION / REDEEM rows: what they do to the wallet's holdings."""
    market = world.by_condition.get(r.condition_id.lower())
    if market is None:
        return
    if r.kind == "CONVERSION" and r.token_id in out:
        _reduce(out[r.token_id], r.size)
        return
    for o in market.outcomes:
        p = out.get(o.token_id)
        if r.kind == "SPLIT":
            p = out.setdefault(o.token_id, _Position(first_ts=r.timestamp))
            p.size += r.size
            p.cost += r.size / len(market.outcomes)
            p.last_ts = r.timestamp
        elif p is not None and r.kind == "MERGE":
            _reduce(p, r.size)
            p.last_ts = r.timestamp
        elif p is not None and r.kind == "REDEEM":
            payout = market.payouts.get(o.token_id, Decimal(0)) if market.payouts else Decimal(0)
            avg = p.cost / p.size if p.size else Decimal(0)
            p.realized += (payout - avg) * p.size
            p.size, p.cost, p.last_ts = Decimal(0), Decimal(0), r.timestamp


def positions_of(world: World, wallet: str) -> dict[str, _Position]:
    """Holdings per token from the wallet's visible rows (average-cost accounting): TRADE rows,
    and the SPLIT / MERGE / CONVERSION / REDEEM rows that move positions without a trade."""
    out: dict[str, _Position] = {}
    rows = sorted(
        _visible(world, world.rows_by_wallet.get(wallet, [])), key=lambda r: (r.timestamp, r.seq)
    )
    for r in rows:
        if r.kind in ("SPLIT", "MERGE", "CONVERSION", "REDEEM"):
            _position_activity(world, out, r)
            continue
        if r.kind != "TRADE" or r.is_combo or r.token_id not in world.by_token:
            continue
        p = out.setdefault(r.token_id, _Position(first_ts=r.timestamp))
        p.last_ts = r.timestamp
        if r.side == "BUY":
            p.cost += r.size * r.price
            p.size += r.size
            p.total_bought += r.size
            p.total_cost += r.size * r.price
        else:
            sold = min(r.size, p.size)
            avg = p.cost / p.size if p.size else Decimal(0)
            p.realized += (r.price - avg) * sold
            p.cost -= avg * sold
            p.size -= sold
    return out


def _q(x: Decimal, places: str = "0.000001") -> int | float:
    return json_number(x.quantize(Decimal(places)))


def position_row(world: World, wallet: str, token_id: str, p: _Position) -> dict[str, Any]:
    """A /v2/positions row."""
    market = world.by_token[token_id]
    outcome = market.outcome(token_id)
    opposite = market.opposite(token_id)
    price = _current_price(world, token_id)
    avg = p.cost / p.size if p.size else Decimal(0)
    value = p.size * price
    unrealized = value - p.cost
    total = unrealized + p.realized
    mergeable = (
        opposite is not None
        and positions_of(world, wallet).get(opposite.token_id, _Position()).size > 0
    )
    prof = world.profile(wallet)
    redeemable = bool(market.payouts and p.size > 0 and market.payouts.get(token_id, 0) > 0)
    return {
        "proxy_wallet": wallet,
        "token_id": token_id,
        "condition_id": market.condition_id,
        "current_size": _q(p.size),
        "avg_price": _q(avg, "0.0001"),
        "entry_cost_usdc": _q(p.cost),
        "entry_fees_usdc": 0.0,
        "total_cost_usdc": _q(p.total_cost),
        "current_price": _q(price, "0.0001"),
        "current_value": _q(value),
        "total_size": _q(p.total_bought),
        "realized_pnl": _q(p.realized),
        "unrealized_pnl": _q(unrealized),
        "total_pnl": _q(total),
        "percent_pnl": _q(total / p.total_cost * 100, "0.01") if p.total_cost else 0.0,
        "percent_realized_pnl": _q(p.realized / p.total_cost * 100, "0.01")
        if p.total_cost
        else 0.0,
        "status": "CLOSED" if p.size == 0 else ("REDEEMABLE" if redeemable else "OPEN"),
        "redeemable": redeemable,
        "mergeable": mergeable,
        "negative_risk": market.neg_risk,
        "archived": False,
        "title": market.question,
        "slug": market.slug,
        "icon": market.icon,
        "event_id": market.event_id,
        "event_slug": market.event_slug,
        "outcome": outcome.label,
        "outcome_index": outcome.index,
        "opposite_outcome": opposite.label if opposite else "",
        "opposite_token_id": opposite.token_id if opposite else "",
        "end_date": market.end_date[:10] if market.end_date else "",
        "last_event_at": p.last_ts,
        "first_entry_at": p.first_ts,
        "name": prof.name,
        "profile_image": prof.profile_image,
        "verified": False,
    }


POSITION_SORTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "CURRENT_VALUE": lambda r: r["current_value"],
    "TOKENS": lambda r: r["current_size"],
    "PRICE": lambda r: r["current_price"],
    "REALIZED_PNL": lambda r: r["realized_pnl"],
    "UNREALIZED_PNL": lambda r: r["unrealized_pnl"],
    "TOTAL_PNL": lambda r: r["total_pnl"],
    "TIMESTAMP": lambda r: r["last_event_at"],
}


def get_positions(sim: Simulator, req: Request) -> Response:
    """GET /v2/positions (user and/or condition; OPEN default, CLOSED supported)."""
    world = sim.world
    params = Params(
        req,
        {
            "user",
            "condition",
            "limit",
            "cursor",
            "status",
            "event_id",
            "title",
            "filter_type",
            "filter_amount",
            "include_archived",
            "sort_by",
            "sort_direction",
            "start",
            "end",
        },
    )
    user = params.address("user")
    conditions = {c.lower() for c in params.csv("condition", 20)}
    if user is None and not conditions:
        raise bad("user", "user or condition is required")
    if user is None and len(conditions) != 1:
        raise bad("condition", "exactly one condition is required without user")
    status = (params.get("status") or "OPEN").upper()
    if status not in ("OPEN", "REDEEMABLE", "REDEEMABLE_LOST", "MERGEABLE", "CLOSED"):
        raise bad("status", "invalid status")
    direction = (params.get("sort_direction") or "DESC").upper()
    sort_by = (
        params.get("sort_by") or ("REALIZED_PNL" if status == "CLOSED" else "CURRENT_VALUE")
    ).upper()
    if sort_by not in POSITION_SORTS:
        raise bad("sort_by", "invalid sort_by")
    kind = (params.get("filter_type") or "TOKENS").upper()
    amount = Decimal(params.get("filter_amount") or "0.1")
    wallets = [user] if user else sorted({r.proxy_wallet for r in world.rows})
    rows: list[dict[str, Any]] = []
    title = (params.get("title") or "").lower()
    for wallet in wallets:
        for token_id, p in positions_of(world, wallet).items():
            market = world.by_token[token_id]
            if conditions and market.condition_id.lower() not in conditions:
                continue
            if title and title not in market.question.lower():
                continue
            row = position_row(world, wallet, token_id, p)
            measure = p.size if kind == "TOKENS" else p.size * _current_price(world, token_id)
            if status == "OPEN" and measure < amount:
                continue
            if status == "CLOSED" and p.size != 0:
                continue
            if status == "REDEEMABLE" and not row["redeemable"]:
                continue
            if status == "REDEEMABLE_LOST" and not (
                    market.payouts is not None and p.size > 0 and not row["redeemable"]):
                continue
            if status == "MERGEABLE" and not row["mergeable"]:
                continue
            rows.append(row)
    rows.sort(key=POSITION_SORTS[sort_by], reverse=(direction == "DESC"))
    cursor = params.get("cursor")
    if cursor is not None:
        cur = decode_cursor(cursor, "positions")
        offset, size = cur.seq, cur.size
    else:
        offset, size = 0, params.integer("limit", 100, 0, 1000)
    page = rows[offset : offset + size]
    more = offset + size < len(rows) and size > 0
    nxt = encode_cursor(Cursor("positions", 0, offset + size, size, "DESC")) if more else None
    return ok({"data": page, "pagination": {"has_more": more, "next_cursor": nxt}})


# ---- leaderboard -------------------------------------------------------------------------------

LEADERBOARD_WINDOWS = {"day": 86400, "week": 7 * 86400, "month": 30 * 86400, "all": None}


@dataclass(frozen=True)
class _Standing:
    wallet: str
    pnl: Decimal
    volume: Decimal


def _standings(world: World, period: str, category: str) -> list[_Standing]:
    """Every wallet's PnL and volume over the window, from its visible TRADE rows.

    Finite windows: the marked equity change of the window's trades (cash flow + the shares
    bought or sold in it valued at the current price); `all`: realized only (average cost).
    Volume is both-sides shares, as upstream.
    """
    now = int(world.clock.now())
    span = LEADERBOARD_WINDOWS[period]
    out = []
    for wallet, all_rows in world.rows_by_wallet.items():
        if wallet in PROTOCOL_ADDRESSES:
            continue
        rows = []
        for r in _visible(world, all_rows):
            if r.kind != "TRADE" or r.is_combo or r.token_id not in world.by_token:
                continue
            if span is not None and r.timestamp < now - span:
                continue
            market = world.by_token[r.token_id]
            if category not in ("overall", "") and market.category.lower() != category:
                continue
            rows.append(r)
        if not rows:
            continue
        volume = sum((r.size for r in rows), Decimal(0))
        if span is None:
            pnl = sum((p.realized for p in positions_of(world, wallet).values()), Decimal(0))
        else:
            pnl = Decimal(0)
            for r in rows:
                signed = r.size if r.side == "BUY" else -r.size
                pnl += signed * (_current_price(world, r.token_id) - r.price)
        out.append(_Standing(wallet, pnl, volume))
    return out


def _leaderboard_row(world: World, rank: int, st: _Standing) -> dict[str, Any]:
    prof = world.profile(st.wallet)
    return {
        "rank": rank,
        "user_id": st.wallet,
        "user_name": prof.name or st.wallet,
        "x_username": "",
        "verified": False,
        "pnl": _q(st.pnl, "0.0001"),
        "volume": _q(st.volume, "0.0001"),
        "profile_image": prof.profile_image,
    }


def get_leaderboard(sim: Simulator, req: Request) -> Response:
    """GET /v2/leaderboard: the PNL or VOLUME board over day/week/month/all, competition ranks,
    offset cursors that pin their board; `?user=` answers one wallet's standing (both ranks)."""
    world = sim.world
    params = Params(req, {"time_period", "timePeriod", "category", "sort_by", "user", "limit",
                          "cursor"})
    cursor = params.get("cursor")
    period = (params.get("time_period") or params.get("timePeriod") or "day").lower()
    sort = (params.get("sort_by") or "PNL").upper()
    category = (params.get("category") or "overall").lower()
    offset = 0
    if cursor is not None:
        pinned = _decode_board_cursor(cursor)
        for name, given, value in (("time_period", params.get("time_period"), pinned[0]),
                                   ("category", params.get("category"), pinned[1]),
                                   ("sort_by", params.get("sort_by"), pinned[2])):
            if given is not None and given.lower() != value.lower():
                raise bad(name, f"{name} contradicts the cursor's board")
        period, category, sort, offset, size = pinned
    else:
        size = params.integer("limit", 25, 0, 1000)
    if period not in LEADERBOARD_WINDOWS:
        raise bad("time_period", "time_period must be day, week, month or all")
    if sort not in ("PNL", "VOLUME"):
        raise bad("sort_by", "sort_by must be PNL or VOLUME")
    standings = _standings(world, period, category)
    user = params.address("user")
    if user is not None:
        return ok({"data": _user_standing(world, standings, user)})

    def key(st: _Standing) -> Decimal:
        return st.pnl if sort == "PNL" else st.volume

    standings.sort(key=lambda st: (-key(st), st.wallet))
    ranked: list[tuple[int, _Standing]] = []
    for i, st in enumerate(standings):
        tied = ranked and key(ranked[-1][1]) == key(st)
        ranked.append((ranked[-1][0] if tied else i + 1, st))
    page = ranked[offset:offset + size]
    more = offset + size < len(ranked) and size > 0
    nxt = _encode_board_cursor(period, category, sort, offset + size, size) if more else None
    return ok({"data": [_leaderboard_row(world, rank, st) for rank, st in page],
               "pagination": {"limit": size, "offset": offset, "has_more": more,
                              "next_cursor": nxt}})


def _user_standing(world: World, standings: list[_Standing], user: str) -> dict[str, Any] | None:
    mine = next((st for st in standings if st.wallet == user), None)
    if mine is None:
        return None
    by_pnl = 1 + sum(1 for st in standings if st.pnl > mine.pnl)
    by_volume = 1 + sum(1 for st in standings if st.volume > mine.volume)
    row = _leaderboard_row(world, by_pnl, mine)
    del row["rank"]
    return {**row, "rank_pnl": by_pnl, "rank_volume": by_volume}


def _encode_board_cursor(period: str, category: str, sort: str, offset: int, size: int) -> str:
    raw = f"v2:leaderboard:{period}:{category}:{sort}:{offset}:{size}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_board_cursor(text: str) -> tuple[str, str, str, int, int]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        tag, route, period, category, sort, offset, size = raw.split(":")
        if tag != "v2" or route != "leaderboard":
            raise ValueError(raw)
        return period, category, sort, int(offset), int(size)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise bad("cursor", "invalid cursor") from exc


# ---- tokens & status ---------------------------------------------------------------------------


def token_row(market: Market, token_id: str) -> dict[str, Any]:
    """A /v2/tokens row."""
    o = market.outcome(token_id)
    opposite = market.opposite(token_id)
    module = "v1_ctf" if market.version == "v1" else ("neg_risk" if market.neg_risk else "binary")
    return {
        "token_id": token_id,
        "condition_id": market.condition_id,
        "structural_condition_id": market.condition_id if market.version == "v2" else None,
        "module": module,
        "outcome_index": o.index,
        "clob_index": o.index,
        "outcome": o.label,
        "opposite_token_id": opposite.token_id if opposite else None,
        "resolved": market.payouts is not None,
        "final_price": json_number(market.payouts[token_id]) if market.payouts else None,
        "title": market.question,
        "market_slug": market.slug,
        "closed": market.closed,
        "neg_risk": market.neg_risk,
        "neg_risk_market_id": market.neg_risk_market_id or None,
        "question_index": None,
        "event_id": market.event_id,
        "event_slug": market.event_slug,
    }


def get_tokens(sim: Simulator, req: Request) -> Response:
    """GET /v2/tokens?token_id=… (≤50) or ?condition=… (≤10): exactly one selector."""
    world = sim.world
    params = Params(req, {"token_id", "condition"})
    tokens = params.csv("token_id", 50)
    conditions = params.csv("condition", 10)
    if bool(tokens) == bool(conditions):
        raise bad("token_id", "give exactly one of token_id or condition")
    rows = []
    for t in tokens:
        market = world.by_token.get(t)
        if market is not None:
            rows.append(token_row(market, t))
    for c in conditions:
        found = world.market_by_condition(c)
        if found is not None:
            rows.extend(token_row(found, o.token_id) for o in found.outcomes)
    return ok({"data": rows})


def get_status(sim: Simulator, req: Request) -> Response:
    """GET /v2/status: the simulator never lags."""
    from datetime import UTC, datetime

    now = datetime.fromtimestamp(sim.world.clock.now(), tz=UTC).isoformat().replace("+00:00", "Z")
    return ok(
        {
            "data": {
                "computed_at": now,
                "age_seconds": 0,
                "serving": {
                    "lag_seconds": 0,
                    "worst": None,
                    "mechanisms": [{"name": "activity_feed", "age_seconds": 0}],
                },
                "ingestion": {},
            }
        }
    )


def build_router() -> Router:
    """All Data API routes."""
    r = Router()
    r.add("GET", r"/v2/trades", get_trades)
    r.add("GET", r"/v2/activity", get_activity)
    r.add("GET", r"/v2/positions", get_positions)
    r.add("GET", r"/v2/tokens", get_tokens)
    r.add("GET", r"/v2/leaderboard", get_leaderboard)
    r.add("GET", r"/v2/status", get_status)
    return r
