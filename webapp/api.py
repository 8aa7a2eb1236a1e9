"""The HTTP API of the contract: /api/copy-trading/enable|disable|status|history|performance.

Each route calls the function `admin` uses (ops.copytrading, ops.views, ops.performance), in one
database transaction: a refused request (400, 401, 403) writes nothing. Bodies are parsed with
exact decimals (a JSON number never becomes a float). Answers are JSON; decimals are strings.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from infra.db import utcnow
from infra.errors import InputError
from models import Follower
from ops.accounts import follow_row, normalize_address, parse_decimal
from ops.copytrading import copy_status, disable_copying, enable_copying, history_filter, tier_info
from ops.inputs import parse_day
from ops.performance import performance_rows
from ops.reports import day_window
from ops.views import history_rows, history_totals
from webapp.auth import Principal, authenticate, scoped_follower
from webapp.state import state_of

MAX_BODY = 16 * 1024
bearer = HTTPBearer(auto_error=False, description="`admin create-api-token --username U`")
router = APIRouter(prefix="/api", tags=["copy-trading"], dependencies=[Depends(bearer)])


class EnableBody(BaseModel):
    """POST /api/copy-trading/enable body."""

    target_trader: str = Field(description="The trader's profile (proxy) wallet, 0x…")
    copy_percentage: Decimal = Field(description="Percent of the trader's shares to copy, "
                                                 "(0, 100], within the follower's tier")
    max_trade: Decimal = Field(description="Maximum USD per copied trade, > 0")
    wallet: str | None = Field(None, description="The follower's wallet (admins only; a "
                                                 "follower user acts on its own)")


class DisableBody(BaseModel):
    """POST /api/copy-trading/disable body."""

    target_trader: str = Field(description="The followed trader's wallet")
    wallet: str | None = Field(None, description="The follower's wallet (admins only)")


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": model.model_json_schema()}}}}


class JSON(Response):
    """application/json with decimals and datetimes as strings."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Compact JSON, UTF-8."""
        return json.dumps(content, default=str, separators=(",", ":")).encode()


def parse_body(raw: bytes, model: type[BaseModel]) -> dict[str, Any]:
    """A JSON object with only `model`'s fields and exact decimals; InputError otherwise."""
    if len(raw) > MAX_BODY:
        raise InputError(f"the body is larger than {MAX_BODY} bytes")
    try:
        data = json.loads(raw or b"null", parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise InputError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InputError("the body must be a JSON object")
    unknown = sorted(set(data) - set(model.model_fields))
    if unknown:
        raise InputError(f"unknown field {unknown[0]!r}")
    for name, info in model.model_fields.items():
        if info.is_required() and data.get(name) is None:
            raise InputError(f"{name} is required")
    return data


def text_field(data: dict[str, Any], name: str) -> str | None:
    """A string field (None when absent or null)."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string")
    return value


def number_field(data: dict[str, Any], name: str) -> Decimal:
    """A decimal from a JSON number or a numeric string (booleans refused)."""
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise InputError(f"{name} must be a number")
    return parse_decimal(value if isinstance(value, (Decimal, str)) else str(value), name)


def _who(request: Request, session: Any, write: bool) -> Principal:
    return authenticate(session, request.headers, request.session, write=write)


@router.post("/copy-trading/enable", openapi_extra=_body_schema(EnableBody),
             summary="Copy a trader (or switch a follow back on with new settings)")
async def enable(request: Request) -> Response:
    """Start copying `target_trader` at `copy_percentage` % up to `max_trade` USD per trade, within
    the follower's tier (same checks as `admin add-follow`). Answers the follow."""
    raw = await request.body()
    return await run_in_threadpool(_enable, request, raw)


def _enable(request: Request, raw: bytes) -> Response:
    st = state_of(request)
    with st.session() as s:
        who = _who(request, s, write=True)
        data = parse_body(raw, EnableBody)
        trader = text_field(data, "target_trader") or ""
        normalize_address(trader, "target_trader")
        pct = number_field(data, "copy_percentage")
        max_trade = number_field(data, "max_trade")
        follower = scoped_follower(s, who, text_field(data, "wallet"), required=True)
        assert follower is not None
        follow = enable_copying(s, follower_wallet=follower.funder_address, trader_wallet=trader,
                                copy_pct=pct, max_usd_per_trade=max_trade)
        out = {"follow": follow_row(follow), "tier": tier_info(follower)}
    return JSON(out)


@router.post("/copy-trading/disable", openapi_extra=_body_schema(DisableBody),
             summary="Stop copying a trader; its open copy orders are cancelled at the venue")
async def disable(request: Request) -> Response:
    """The follow's kill switch (same as `admin disable --wallet W --follow T`): no new copies;
    the executor cancels the follow's open orders at the venue in its next open-order pass."""
    raw = await request.body()
    return await run_in_threadpool(_disable, request, raw)


def _disable(request: Request, raw: bytes) -> Response:
    st = state_of(request)
    with st.session() as s:
        who = _who(request, s, write=True)
        data = parse_body(raw, DisableBody)
        trader = text_field(data, "target_trader") or ""
        normalize_address(trader, "target_trader")
        follower = scoped_follower(s, who, text_field(data, "wallet"), required=True)
        assert follower is not None
        follow = disable_copying(s, follower_wallet=follower.funder_address, trader_wallet=trader,
                                 reason=f"disabled by {who.username} (web)")
        out = {"follow": {**follow_row(follow), "status": "disabled"}}
    return JSON(out)


def _followers(s: Any, follower: Follower | None) -> list[Follower]:
    return [follower] if follower is not None else list(
        s.scalars(select(Follower).order_by(Follower.id)))


@router.get("/copy-trading/status", summary="Followed traders, open and pending copy orders, "
                                            "performance summary")
def status(request: Request, wallet: str | None = Query(None, description="Follower wallet "
                                                         "(admins: optional filter)")) -> Response:
    """What `admin status` shows (a follower user sees only its own follows and orders, without
    the deployment's daemons and kill switches), with each follow and P&L per trader."""
    st = state_of(request)
    with st.session() as s:
        who = _who(request, s, write=False)
        follower = scoped_follower(s, who, wallet, required=False)
        now = utcnow()
        data = copy_status(s, now, st.intervals, follower)
        followers = _followers(s, follower)
        data["follows"] = [follow_row(fo) for f in followers for fo in f.follows
                           if fo.status.value != "removed"]
        data["performance"] = performance_rows(s, followers, None, now, st.prices,
                                               replayed=lambda f: st.replays.replayed(s, f))
        if follower is not None:
            data["wallet"] = follower.funder_address
            data["tier"] = tier_info(follower)
    return JSON(data)


def _day(text: str | None, what: str) -> date | None:
    return None if text is None or not text.strip() else parse_day(text, what)


@router.get("/copy-trading/history", summary="Copied trades: leader's price vs ours, slippage, "
                                             "P&L, with totals")
def history(request: Request,
            wallet: str | None = Query(None, description="Follower wallet (admins: optional)"),
            trader: str | None = Query(None, description="Only copies of this trader"),
            market: str | None = Query(None, description="Condition id, or words of the title"),
            start: str | None = Query(None, description="Queued on/after this UTC day, "
                                                        "YYYY-MM-DD"),
            end: str | None = Query(None, description="Queued on/before this UTC day"),
            status: str | None = Query(None, description="Comma-separated copy statuses, "
                                                         "e.g. filled,partial"),
            limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)) -> Response:
    """`admin history` rows (newest first) plus totals over every matching copy."""
    st = state_of(request)
    with st.session() as s:
        who = _who(request, s, write=False)
        follower = scoped_follower(s, who, wallet, required=False)
        statuses = [x for x in (status or "").split(",") if x.strip()]
        filt = history_filter(s, follower_id=follower.id if follower else None, trader=trader,
                              start=_day(start, "start"), end=_day(end, "end"), market=market,
                              statuses=statuses, limit=limit, flag="", offset=offset)
        out = {"rows": history_rows(s, filt), "totals": history_totals(s, filt),
               "limit": limit, "offset": offset}
    return JSON(out)


@router.get("/copy-trading/performance", summary="Per trader: P&L (realized, unrealized), win "
                                                 "rate, average slippage, attribution")
def performance(request: Request,
                wallet: str | None = Query(None, description="Follower wallet (admins: optional)"),
                start: str | None = Query(None, description="First UTC day, YYYY-MM-DD"),
                end: str | None = Query(None, description="Last UTC day, inclusive"),
                prices: bool = Query(True, description="Value open positions at CLOB "
                                                       "midpoints (unrealized P&L)")) -> Response:
    """`admin performance` rows: one per (follower, trader) plus each follower's 'all' row."""
    st = state_of(request)
    with st.session() as s:
        who = _who(request, s, write=False)
        follower = scoped_follower(s, who, wallet, required=False)
        last = _day(end, "end")
        lo, hi = day_window(_day(start, "start"), last, utcnow())
        # up to now: every fill is in the cached replay; an earlier end replays up to that day
        rows = performance_rows(s, _followers(s, follower), lo, hi,
                                st.prices if prices else None,
                                replayed=None if last is not None
                                else (lambda f: st.replays.replayed(s, f)))
    return JSON({"rows": rows})


@router.get("/leaderboard", tags=["market data"],
            summary="The Polymarket trader leaderboard (Data API /v2/leaderboard, cached)")
def leaderboard(request: Request, time_period: str = Query("week", description="day, week, "
                                                           "month or all"),
                sort_by: str = Query("PNL", description="PNL or VOLUME"),
                category: str = Query("overall"), limit: int = Query(25, ge=1, le=100)) -> Response:
    """The first page of a board, for picking a trader to copy."""
    from wire.parse import build_leaderboard_params

    st = state_of(request)
    with st.session() as s:
        _who(request, s, write=False)
    try:
        build_leaderboard_params(time_period=time_period, sort_by=sort_by, category=category,
                                 limit=limit)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if st.leaderboard is None:
        return JSON({"rows": [], "error": "no leaderboard source configured"})
    view = st.leaderboard.get(time_period.lower(), sort_by.upper(), category.lower(), limit)
    rows = [{"rank": e.rank, "wallet": e.wallet, "user_name": e.user_name, "pnl": e.pnl,
             "volume": e.volume, "verified": e.verified} for e in view.entries]
    return JSON({"rows": rows, "error": view.error})


@router.get("/openapi.json", include_in_schema=False)
def openapi_json(request: Request) -> Response:
    """The OpenAPI document of this API (authenticated like every route)."""
    st = state_of(request)
    with st.session() as s:
        _who(request, s, write=False)
    return JSON(request.app.openapi())


@router.get("/docs", include_in_schema=False)
def docs(request: Request) -> Response:
    """Human-readable API reference rendered from the OpenAPI document (no external assets)."""
    st = state_of(request)
    with st.session() as s:
        _who(request, s, write=False)
    spec = request.app.openapi()
    routes = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            body = (op.get("requestBody", {}).get("content", {}).get("application/json", {})
                    .get("schema", {}))
            routes.append({"method": method.upper(), "path": path,
                           "summary": op.get("summary", ""),
                           "description": op.get("description", ""),
                           "params": op.get("parameters", []),
                           "body": body.get("properties", {}),
                           "required": body.get("required", [])})
    html = st.templates.get_template("api_docs.html").render(
        spec=spec, routes=routes, request=request)
    return HTMLResponse(html)
