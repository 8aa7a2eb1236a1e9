"""What every request handler of the web app shares (`AppState`), and small response helpers.

Kept apart from `webapp.app` so that the routers (`webapp.api`, `webapp.pages`) can use it while
the app module imports them: no import cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker

from infra.config import Settings
from infra.db import session_scope
from ops.reports import PriceSource
from ops.views import Intervals
from webapp.security import LoginRateLimiter
from webapp.views import ReplayCache


@dataclass
class AppState:
    """Everything request handlers share."""

    settings: Settings
    factory: sessionmaker[Session]
    templates: Jinja2Templates
    prices: PriceSource | None
    leaderboard: Any  # .get(time_period, sort_by, category, limit) -> LeaderboardView
    intervals: Intervals
    limiter: LoginRateLimiter = field(default_factory=LoginRateLimiter)
    replays: ReplayCache = field(default_factory=ReplayCache)
    on_close: list[Callable[[], None]] = field(default_factory=list)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One database transaction (commit on success, rollback on any error)."""
        with session_scope(self.factory) as s:
            yield s


def state_of(request: Request) -> AppState:
    """The AppState of the app serving `request`."""
    state: AppState = request.app.state.pmct
    return state




def redirect(url: str) -> RedirectResponse:
    """303 See Other (after a POST)."""
    return RedirectResponse(url, status_code=303)
