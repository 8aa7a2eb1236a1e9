"""The ASGI application: FastAPI with the JSON API, the server-rendered pages and static files.

Middleware order (outermost first): security headers → signed session cookie → routes.
Errors: `InputError` → 400, `Unauthorized` → 401 (pages: redirect to /login), `Forbidden`
→ 403; API answers are `{"error": "..."}`, one line, never a traceback or a secret.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from infra.config import Settings
from infra.errors import InputError
from ops.reports import PriceSource
from ops.views import Intervals, human_age
from webapp.auth import Forbidden, Unauthorized
from webapp.security import SecurityHeadersMiddleware
from webapp.state import AppState

log = logging.getLogger("pmct.web")
HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "pmct_session"
SESSION_MAX_AGE = int(timedelta(hours=8).total_seconds())


def is_api(request: Request) -> bool:
    """True for JSON API paths."""
    return request.url.path.startswith("/api/")


def error_json(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """`{"error": message}` with `status` (one line)."""
    return JSONResponse({"error": message.strip().splitlines()[0] if message.strip() else "error"},
                        status_code=status, headers=headers)


def create_app(settings: Settings, factory: sessionmaker[Session], *,
               prices: PriceSource | None = None, leaderboard: Any = None,
               market_data: bool = True) -> FastAPI:
    """Build the app. Without explicit `prices`/`leaderboard`, both come from Polymarket through
    polymarket_client (cached) unless `market_data` is False (then none: P&L shows n/a)."""
    from webapp import api, pages

    on_close: list[Callable[[], None]] = []

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        for fn in on_close:
            fn()

    app = FastAPI(lifespan=lifespan, title="PMCT dashboard and HTTP API", version="1",
                  description="Copy trading on Polymarket: enable/disable copying, status, "
                              "history, performance. Authenticate with `Authorization: Bearer "
                              "<token>` (`admin create-api-token`). Errors: "
                              '`{"error": "..."}` with 400 (bad input, nothing written), 401 '
                              "(no credentials), 403 (another follower's wallet, CSRF).",
                  docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["static_version"] = "1"
    templates.env.filters["duration"] = human_age
    if (prices is None or leaderboard is None) and market_data:
        from webapp.market_data import MarketData

        md = MarketData(settings)
        on_close.append(md.close)
        prices = prices if prices is not None else md.prices
        leaderboard = leaderboard if leaderboard is not None else md.leaderboard
    app.state.pmct = AppState(
        settings=settings, factory=factory, templates=templates, prices=prices,
        leaderboard=leaderboard,
        intervals=Intervals(settings.watcher_poll_interval, settings.executor_poll_interval),
        on_close=on_close)

    secret = settings.web_session_secret or secrets.token_urlsafe(48)
    if settings.web_session_secret is None:
        log.warning("WEB_SESSION_SECRET is not set: a random key signs sessions, so everyone "
                    "logs in again after web.py restarts")
    app.add_middleware(SessionMiddleware, secret_key=secret, session_cookie=SESSION_COOKIE,
                       max_age=SESSION_MAX_AGE, same_site="strict",
                       https_only=settings.secure_cookies)
    app.add_middleware(SecurityHeadersMiddleware)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    _install_error_handlers(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    from webapp.pages import error_page, login_redirect

    @app.exception_handler(InputError)
    async def bad_input(request: Request, exc: InputError) -> Response:
        if is_api(request):
            return error_json(400, str(exc))
        return error_page(request, 400, str(exc))

    @app.exception_handler(Unauthorized)
    async def unauthorized(request: Request, exc: Unauthorized) -> Response:
        if is_api(request):
            return error_json(401, str(exc) or "authentication required",
                              {"WWW-Authenticate": "Bearer"})
        return login_redirect(request)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        if is_api(request):
            return error_json(403, str(exc) or "forbidden")
        return error_page(request, 403, str(exc) or "forbidden")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x not in ("query", "body"))
        message = f"{where}: {first.get('msg', 'invalid input')}" if where else "invalid input"
        if is_api(request):
            return error_json(400, message)
        return error_page(request, 400, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if is_api(request) or exc.status_code == 405:
            return error_json(exc.status_code, str(exc.detail))
        return error_page(request, exc.status_code, str(exc.detail))
