"""Server-rendered pages: login, configuration, follows, pending orders, history, performance,
operations (admins). Every form carries the session's CSRF token; every write goes through the
same ops functions as the API and the CLI, in one transaction (a refused form writes nothing).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from copying import killswitch as ks
from copying.tiers import limits_of
from infra.db import utcnow
from infra.errors import InputError
from models import Follower, FollowStatus
from ops.accounts import normalize_address, parse_decimal
from ops.copytrading import disable_copying, enable_copying, history_filter, open_follow, tier_info
from ops.inputs import parse_day
from ops.operations import latency_stats, problem_counts, recent_problems
from ops.users import LoginResult, check_login, session_stamp
from ops.views import daemon_rows, history_rows, history_totals, kill_switch_view
from webapp.auth import (
    SESSION_STAMP,
    SESSION_USER,
    CsrfError,
    Principal,
    Unauthorized,
    principal_from_session,
    require_admin,
    scoped_follower,
)
from webapp.security import csrf_token, csrf_valid
from webapp.state import AppState, redirect, state_of
from webapp.views import follows_of, pending_orders, trader_totals

router = APIRouter(include_in_schema=False)
FORM_LIMITS = {"max_files": 0, "max_fields": 50, "max_part_size": 16 * 1024}
UI_MAX_PCT = Decimal(20)  # the plan's slider: 0.1 - 20 %, further capped by the tier
UI_MIN_PCT = Decimal("0.1")
HISTORY_PAGE = 100
PERIODS = ("day", "week", "month", "all")


# --- helpers ----------------------------------------------------------------------------------

def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a template with the request, the CSRF token and the flash message."""
    st = state_of(request)
    context.setdefault("principal", None)
    html = st.templates.get_template(template).render(
        request=request, csrf=csrf_token(request.session),
        flash=request.session.pop("flash", None), **context)
    return HTMLResponse(html, status_code=status)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """A plain error page (no detail beyond the one-line message)."""
    return render(request, "error.html", status=status, status_code=status, message=message)


def login_redirect(request: Request) -> Response:
    """To the login form (fragments get 401: htmx then leaves the page as it is)."""
    if request.headers.get("hx-request"):
        return JSONResponse({"error": "log in again"}, status_code=401)
    return RedirectResponse("/login", status_code=303)


def page_user(request: Request, s: Any, *, write: bool = False,
              form: dict[str, Any] | None = None) -> Principal:
    """The logged-in principal (Unauthorized → login); a write needs the form's CSRF token."""
    principal = principal_from_session(s, request.session)
    if principal is None:
        raise Unauthorized("log in")
    if write and not csrf_valid(request.session, (form or {}).get("csrf_token")):
        raise CsrfError("the form's security token is missing or wrong; reload the page")
    return principal


def followers_for(s: Any, principal: Principal) -> list[Follower]:
    """Followers an admin may pick from (a follower user: none, its wallet is fixed)."""
    if not principal.is_admin:
        return []
    return list(s.scalars(select(Follower).order_by(Follower.id)))


def base_context(s: Any, principal: Principal, follower: Follower | None,
                 active: str) -> dict[str, Any]:
    """What every page's layout needs."""
    return {"principal": principal, "follower": follower, "active": active,
            "followers": followers_for(s, principal),
            "wallet": follower.funder_address if follower else ""}


def with_query(path: str, **params: Any) -> str:
    """`path?k=v…` without empty values."""
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return path + ("?" + urlencode(clean) if clean else "")


async def read_form(request: Request) -> dict[str, Any]:
    """The form fields as a dict of strings (limited size, no files)."""
    form = await request.form(**FORM_LIMITS)
    return {k: v for k, v in form.items() if isinstance(v, str)}


# --- login --------------------------------------------------------------------------------------

@router.get("/healthz")
def healthz() -> JSONResponse:
    """Liveness for a reverse proxy or systemd (no data, no authentication)."""
    return JSONResponse({"status": "ok"})


@router.get("/favicon.ico")
def favicon() -> Response:
    """No icon (an empty answer instead of a 404 in every browser's console)."""
    return Response(status_code=204)


@router.get("/")
def home(request: Request) -> Response:
    """The dashboard starts at the follows page."""
    return RedirectResponse("/follows", status_code=303)


@router.get("/login")
def login_form(request: Request) -> Response:
    """The login form."""
    return render(request, "login.html")


@router.post("/login")
async def login_submit(request: Request) -> Response:
    """Check the password (rate limit per client, lockout per account); start a fresh session."""
    form = await read_form(request)
    return await run_in_threadpool(_login, request, form)


def _login(request: Request, form: dict[str, Any]) -> Response:
    st = state_of(request)
    username = str(form.get("username", ""))[:64]
    if not csrf_valid(request.session, form.get("csrf_token")):
        return render(request, "login.html", 403, username=username,
                      error="the form expired; please try again")
    client = request.client.host if request.client else "unknown"
    if not st.limiter.allow(client):
        wait = st.limiter.retry_after(client)
        response = render(request, "login.html", 429, username=username,
                          error=f"too many login attempts; wait {wait} s")
        response.headers["Retry-After"] = str(wait)
        return response
    with st.session() as s:
        outcome = check_login(s, username, str(form.get("password", "")))
        uid = stamp = None
        if outcome.result is LoginResult.OK and outcome.user is not None:
            uid, stamp = outcome.user.id, session_stamp(outcome.user)
    if outcome.result is LoginResult.LOCKED:
        until = outcome.locked_until.strftime("%H:%M UTC") if outcome.locked_until else "later"
        return render(request, "login.html", 403, username=username,
                      error=f"too many wrong passwords: this account is locked until {until}")
    if uid is None:
        return render(request, "login.html", 401, username=username,
                      error="wrong username or password")
    request.session.clear()  # a new session: nothing from before the login survives
    request.session[SESSION_USER] = uid
    request.session[SESSION_STAMP] = stamp
    csrf_token(request.session)
    return redirect("/follows")


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (CSRF-checked, so another site cannot log you out)."""
    form = await read_form(request)
    if not csrf_valid(request.session, form.get("csrf_token")):
        raise CsrfError("the form's security token is missing or wrong")
    request.session.clear()
    return redirect("/login")


# --- configuration --------------------------------------------------------------------------------

def _slider_max(follower: Follower | None) -> Decimal:
    if follower is None:
        return UI_MAX_PCT
    return min(UI_MAX_PCT, limits_of(follower.tier).max_copy_pct)


def _configure_context(request: Request, st: AppState, s: Any, principal: Principal,
                       follower: Follower | None, params: dict[str, Any]) -> dict[str, Any]:
    period = params.get("period") if params.get("period") in PERIODS else "week"
    sort = "VOLUME" if str(params.get("sort", "")).upper() == "VOLUME" else "PNL"
    board = st.leaderboard.get(period, sort, "overall", 25) if st.leaderboard else None
    trader = str(params.get("target_trader") or params.get("trader") or "").strip()
    existing = None
    if follower is not None and trader:
        try:
            existing = open_follow(s, follower, trader, "trader")
        except InputError:
            existing = None
    slider_max = _slider_max(follower)
    default_pct = existing.copy_pct if existing is not None else min(Decimal(5), slider_max)
    return {
        **base_context(s, principal, follower, "configure"),
        "tier": tier_info(follower) if follower else None,
        "slider_min": UI_MIN_PCT, "slider_max": slider_max,
        "copy_pct": params.get("copy_percentage") or str(default_pct),
        "max_trade": params.get("max_trade") or (
            str(existing.max_usd_per_trade) if existing is not None else "25"),
        "target_trader": trader, "existing": existing,
        "board": board, "period": period, "sort": sort, "periods": PERIODS,
    }


@router.get("/configure")
def configure(request: Request, wallet: str | None = None, trader: str | None = None,
              period: str | None = None, sort: str | None = None) -> Response:
    """Pick a trader (leaderboard or address), copy %, max trade, on/off."""
    st = state_of(request)
    with st.session() as s:
        principal = page_user(request, s)
        follower = scoped_follower(s, principal, wallet, required=False)
        if follower is None:
            follower = next(iter(followers_for(s, principal)), None)
        ctx = _configure_context(request, st, s, principal, follower,
                                 {"trader": trader, "period": period, "sort": sort})
        return render(request, "configure.html", **ctx)


@router.post("/configure")
async def configure_submit(request: Request) -> Response:
    """Enable (or switch off) copying of the chosen trader with the chosen settings."""
    form = await read_form(request)
    return await run_in_threadpool(_configure_submit, request, form)


def _configure_submit(request: Request, form: dict[str, Any]) -> Response:
    st = state_of(request)
    with st.session() as s:
        principal = page_user(request, s, write=True, form=form)
        follower = scoped_follower(s, principal, form.get("wallet"), required=True)
        assert follower is not None
        wallet = follower.funder_address
    try:
        with st.session() as s:
            trader = normalize_address(str(form.get("target_trader", "")), "trader address")
            if form.get("copying") == "on":
                pct = parse_decimal(str(form.get("copy_percentage", "")), "copy %")
                max_trade = parse_decimal(str(form.get("max_trade", "")), "max trade")
                follow = enable_copying(s, follower_wallet=wallet, trader_wallet=trader,
                                        copy_pct=pct, max_usd_per_trade=max_trade)
                message = (f"copying {follow.trader.wallet} at {follow.copy_pct} % "
                           f"(max ${follow.max_usd_per_trade} per trade)")
            else:
                disable_copying(s, follower_wallet=wallet, trader_wallet=trader,
                                reason=f"switched off by {principal.username} (web)")
                message = f"copying {trader} is off; its open orders get cancelled"
    except InputError as exc:
        with st.session() as s:
            follower = scoped_follower(s, principal, wallet, required=True)
            ctx = _configure_context(request, st, s, principal, follower, form)
            return render(request, "configure.html", 400, error=str(exc), **ctx)
    request.session["flash"] = message
    return redirect(with_query("/follows", wallet=wallet if principal.is_admin else None))


# --- follows --------------------------------------------------------------------------------------

@router.get("/follows")
def follows(request: Request, wallet: str | None = None) -> Response:
    """Active follows: per trader P&L, pending and open order counts, switch off."""
    st = state_of(request)
    with st.session() as s:
        principal = page_user(request, s)
        follower = scoped_follower(s, principal, wallet, required=False)
        shown = [follower] if follower is not None else [
            f for f in followers_for(s, principal)
            if any(fo.status != FollowStatus.REMOVED for fo in f.follows)]
        groups = [{"follower": f, "tier": tier_info(f),
                   "rows": follows_of(s, f, st.replays, st.prices)} for f in shown]
        return render(request, "follows.html", groups=groups,
                      **base_context(s, principal, follower, "follows"))


@router.post("/follows/disable")
async def follows_disable(request: Request) -> Response:
    """Switch one follow off (its kill switch; open orders get cancelled at the venue)."""
    form = await read_form(request)
    return await run_in_threadpool(_follows_disable, request, form)


def _follows_disable(request: Request, form: dict[str, Any]) -> Response:
    st = state_of(request)
    with st.session() as s:
        principal = page_user(request, s, write=True, form=form)
        follower = scoped_follower(s, principal, form.get("wallet"), required=True)
        assert follower is not None
        follow = disable_copying(s, follower_wallet=follower.funder_address,
                                 trader_wallet=str(form.get("target_trader", "")),
                                 reason=f"switched off by {principal.username} (web)")
        message = (f"copying {follow.trader.wallet} is off; its open orders get cancelled "
                   "at the venue")
        wallet = follower.funder_address
    request.session["flash"] = message
    return redirect(with_query("/follows", wallet=wallet if principal.is_admin else None))


# --- pending orders -------------------------------------------------------------------------------

def _orders_context(st: AppState, s: Any, principal: Principal,
                    wallet: str | None) -> dict[str, Any]:
    follower = scoped_follower(s, principal, wallet, required=False)
    rows = pending_orders(s, utcnow(), follower.id if follower else None)
    return {"rows": rows, "show_follower": follower is None,
            **base_context(s, principal, follower, "orders")}


@router.get("/orders")
def orders(request: Request, wallet: str | None = None) -> Response:
    """Pending orders with the repricing countdowns; the table refreshes itself (htmx)."""
    st = state_of(request)
    with st.session() as s:
        principal = page_user(request, s)
        return render(request, "orders.html", **_orders_context(st, s, principal, wallet))


@router.get("/orders/rows")
def orders_rows(request: Request, wallet: str | None = None) -> Response:
    """The pending-orders table body alone (polled every few seconds)."""
    st = state_of(request)
    with st.session() as s:
        principal = page_user(request, s)
        return render(request, "_orders_rows.html", **_orders_context(st, s, principal, wallet))


# --- history --------------------------------------------------------------------------------------

@router.get("/history")
def history(request: Request, wallet: str | None = None, trader: str | None = None,
            market: str | None = None, start: str | None = None, end: str | None = None,
            status: str | None = None, page: int = 1) -> Response:
    """Copied trades with the leader's price vs ours, slippage and P&L; filters; totals."""
    st = state_of(request)
    with st.session() as s:
        principal = page_user(request, s)
        follower = scoped_follower(s, principal, wallet, required=False)
        page = max(1, min(page, 100_000))
        filters = {"trader": (trader or "").strip() or None, "market": (market or "").strip() or None,
                   "start": (start or "").strip() or None, "end": (end or "").strip() or None,
                   "status": (status or "").strip().lower() or None}
        error = None
        rows: list[dict[str, object]] = []
        totals: dict[str, object] | None = None
        try:
            filt = history_filter(
                s, follower_id=follower.id if follower else None, trader=filters["trader"],
                start=parse_day(filters["start"], "start") if filters["start"] else None,
                end=parse_day(filters["end"], "end") if filters["end"] else None,
                market=filters["market"], statuses=[filters["status"]] if filters["status"] else [],
                limit=HISTORY_PAGE + 1, flag="", offset=(page - 1) * HISTORY_PAGE)
            rows = history_rows(s, filt)
            totals = history_totals(s, filt)
        except InputError as exc:
            error = str(exc)
        more = len(rows) > HISTORY_PAGE
        wallet_q = follower.funder_address if (follower and principal.is_admin) else None
        nav = {k: v for k, v in filters.items() if v}
        return render(
            request, "history.html", 400 if error else 200, rows=rows[:HISTORY_PAGE],
            totals=totals, error=error, filters=filters, page=page,
            prev_url=with_query("/history", wallet=wallet_q, page=page - 1, **nav) if page > 1 else None,
            next_url=with_query("/history", wallet=wallet_q, page=page + 1, **nav) if more else None,
            statuses=[x.lower() for x in ("FILLED", "PARTIAL", "LIVE", "CANCELED", "SKIPPED",
                                          "REJECTED", "QUEUED", "NOT_PLACED", "EXPIRED")],
            show_follower=follower is None, **base_context(s, principal, follower, "history"))


# --- performance ----------------------------------------------------------------------------------

@router.get("/performance")
def performance(request: Request, wallet: str | None = None) -> Response:
    """'copying 0x… made you +$X', win rate, slippage; cumulative and daily P&L charts."""
    st = state_of(request)
    with st.session() as s:
        principal = page_user(request, s)
        follower = scoped_follower(s, principal, wallet, required=False)
        if follower is None:
            follower = next(iter(followers_for(s, principal)), None)
        traders: list[dict[str, Any]] = []
        overall = None
        chart: dict[str, Any] = {"traders": [], "cumulative": [[]], "daily": [[], []]}
        if follower is not None:
            lines, positions = st.replays.replayed(s, follower)
            totals = trader_totals(lines, positions, st.prices)
            overall = totals.get("all")
            for scope, t in sorted(totals.items()):
                if scope.startswith("trader:"):
                    traders.append({"trader": scope.split(":", 1)[1], "t": t,
                                    "row": t.row()})
            chart = st.replays.chart(s, follower)
        return render(request, "performance.html", traders=traders, overall=overall,
                      overall_row=overall.row() if overall else None, chart=chart,
                      **base_context(s, principal, follower, "performance"))


# --- operations (admins) ----------------------------------------------------------------------------

def _ops_context(st: AppState, s: Any, principal: Principal) -> dict[str, Any]:
    now = utcnow()
    return {"daemons": daemon_rows(s, now, st.intervals), "now": now,
            **base_context(s, principal, None, "operations")}


@router.get("/operations")
def operations(request: Request) -> Response:
    """Daemon heartbeats, the kill switch, recent errors and skip reasons, latency."""
    st = state_of(request)
    with st.session() as s:
        principal = page_user(request, s)
        require_admin(principal)
        now = utcnow()
        since = now - timedelta(hours=24)
        return render(request, "operations.html", kill=kill_switch_view(s),
                      problems=problem_counts(s, since), recent=recent_problems(s, since),
                      latency=latency_stats(s, now), **_ops_context(st, s, principal))


@router.get("/copyability")
def copyability(request: Request, mode: str = "all") -> Response:
    """Copy quality per trader from our own fills (as `admin performance --by-trader`), admins."""
    from ops.copyability import COLUMNS, copyability_rows

    st = state_of(request)
    with st.session() as s:
        principal = page_user(request, s)
        require_admin(principal)
        if mode not in ("all", "live", "paper"):
            return error_page(request, 400, "mode must be all, live or paper")
        rows = copyability_rows(s, None, utcnow(), mode=mode)
        return render(request, "copyability.html", rows=rows, columns=COLUMNS, mode=mode,
                      **base_context(s, principal, None, "copyability"))


@router.get("/operations/daemons")
def operations_daemons(request: Request) -> Response:
    """The heartbeat table alone (polled)."""
    st = state_of(request)
    with st.session() as s:
        principal = page_user(request, s)
        require_admin(principal)
        return render(request, "_daemons.html", **_ops_context(st, s, principal))


@router.post("/operations/kill-switch")
async def kill_switch(request: Request) -> Response:
    """Turn the global kill switch on (with a reason) or off, as `admin disable|enable --all`."""
    form = await read_form(request)
    return await run_in_threadpool(_kill_switch, request, form)


def _kill_switch(request: Request, form: dict[str, Any]) -> Response:
    st = state_of(request)
    with st.session() as s:
        principal = page_user(request, s, write=True, form=form)
        require_admin(principal)
        action = form.get("action")
        if action == "on":
            reason = str(form.get("reason", "")).strip()
            ks.disable_all(s, f"{reason or 'kill switch'} ({principal.username}, web)")
            message = "kill switch ON: no new copies; the executor cancels every open order"
        elif action == "off":
            was = ks.enable_all(s)
            message = "kill switch OFF: copying resumes" if was else "kill switch was already off"
        else:
            raise InputError("action must be on or off")
    request.session["flash"] = message
    return redirect("/operations")
