"""Polymarket reads the dashboard needs (CLOB midpoints, the Data API leaderboard), cached.

Both go through polymarket_client (the only HTTP to Polymarket), one shared blocking client
behind a lock (request handlers run in worker threads). A failure never breaks a page: a
missing midpoint makes unrealized P&L 'n/a' (never a guess), a missing leaderboard shows a
message, and after a transport failure the venue is not asked again for `backoff` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from wire.records import LeaderboardEntry

log = logging.getLogger("pmct.web")


class _SharedClient:
    """One SyncPolymarketClient, created on first use, used under a lock."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.lock = threading.Lock()
        self._client: Any = None

    def get(self) -> Any:
        """The client (call with `lock` held)."""
        if self._client is None:
            from polymarket_client import SyncPolymarketClient
            from wire.transport import RetryPolicy

            self._client = SyncPolymarketClient.from_settings(
                self.settings, retry=RetryPolicy(max_attempts=1), read_timeout=3.0, http2=False)
        return self._client

    def close(self) -> None:
        """Close the client if it was created."""
        with self.lock:
            if self._client is not None:
                self._client.close()
                self._client = None


class MidpointCache:
    """A `PriceSource` (token id → mid or None) with a TTL cache and a back-off when the CLOB is
    unreachable."""

    def __init__(self, shared: _SharedClient, ttl: float = 30.0, backoff: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.shared, self.ttl, self.backoff, self.clock = shared, ttl, backoff, clock
        self._cache: dict[str, tuple[float, Decimal | None]] = {}
        self._down_until = 0.0

    def __call__(self, token_id: str) -> Decimal | None:
        """The CLOB midpoint of `token_id`, or None when it cannot be had now."""
        from wire.errors import TransportError

        now = self.clock()
        hit = self._cache.get(token_id)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        if now < self._down_until:
            return None
        with self.shared.lock:
            try:
                value: Decimal | None = self.shared.get().get_midpoint(token_id)
            except TransportError:
                self._down_until = now + self.backoff
                return None
            except Exception as exc:  # noqa: BLE001 - a missing price is reported as n/a
                log.debug("midpoint of %s unavailable: %s", token_id, exc)
                value = None
        self._cache[token_id] = (now, value)
        return value


@dataclass(frozen=True)
class LeaderboardView:
    """The leaderboard as the configuration page shows it (entries, or why there are none)."""

    entries: tuple[LeaderboardEntry, ...]
    error: str | None = None


class LeaderboardCache:
    """`/v2/leaderboard` first pages, cached per (period, sort, category) for `ttl` seconds."""

    def __init__(self, shared: _SharedClient, ttl: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.shared, self.ttl, self.clock = shared, ttl, clock
        self._cache: dict[tuple[str, str, str, int], tuple[float, LeaderboardView]] = {}

    def get(self, time_period: str = "week", sort_by: str = "PNL", category: str = "overall",
            limit: int = 25) -> LeaderboardView:
        """The board's first page; a failure becomes a view with `error` set (cached briefly)."""
        from wire.parse import build_leaderboard_params

        try:  # refused before any request (and before the cache)
            build_leaderboard_params(time_period=time_period, sort_by=sort_by, category=category,
                                     limit=limit)
        except ValueError as exc:
            return LeaderboardView((), str(exc))
        key = (time_period, sort_by, category, limit)
        now = self.clock()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        with self.shared.lock:
            try:
                page = self.shared.get().get_leaderboard(
                    time_period=time_period, sort_by=sort_by, category=category, limit=limit)
                view = LeaderboardView(page.items)
            except Exception as exc:  # noqa: BLE001 - the page still works without it
                log.warning("leaderboard unavailable: %s", exc)
                view = LeaderboardView((), "the Polymarket leaderboard is unavailable right now")
                self._cache[key] = (now - self.ttl + 10, view)  # retry in 10 s
                return view
        self._cache[key] = (now, view)
        return view


class MarketData:
    """The dashboard's Polymarket reads: `prices` (midpoints) and `leaderboard`."""

    def __init__(self, settings: Any) -> None:
        self._shared = _SharedClient(settings)
        self.prices = MidpointCache(self._shared)
        self.leaderboard = LeaderboardCache(self._shared)

    def close(self) -> None:
        """Close the HTTP client."""
        self._shared.close()
