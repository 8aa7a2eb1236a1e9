"""The one module that speaks HTTP to Polymarket: Data API, Gamma, CLOB public, auth and trading.

Invariants (money is at stake):
- An order body is sent exactly as given (`content=body`), once, never retried; its L2
  signature covers those same bytes. Every answer becomes a `PostOutcome`; only `Rejected`
  means "definitively not placed"; anything that might have reached the matching engine
  without a definite answer is `InDoubt` (reconcile by order hash, never re-sign).
- Reads retry transient failures with capped backoff; writes (post, cancel) never do.
- Every L2 call signs with POLY_ADDRESS = the signer EOA bound to the API key.
- Nothing secret (private key, API secret, passphrase, L2 headers) is logged or put in an error.

Answers and errors:

    PostOutcome (returned by post_order / post_orders, never raised)
     ├── Accepted      order_id, status live|matched|delayed, making/taking amounts, trade_ids
     ├── Rejected      definitively not placed (4xx, or 200 success:false); .kind says why
     ├── Duplicate     "Duplicated": the venue already holds it — treat as placed
     ├── InDoubt       timeout/reset/5xx/unreadable body — may exist; .request_sent
     ├── RateLimited   429, .retry_after
     └── Restricted    restarting (425) | halted | cancel_only | post_only (503)

    PolymarketError (raised by every other call)
     ├── TransportError      no usable response (.request_sent)
     ├── ApiError            .status .code .message .retryable .trace_id .retry_after
     │    ├── RateLimitError
     │    └── RestrictedError   .kind
     └── ParseError          a 2xx body that is not the documented shape

Use `PolymarketClient` (async, for the daemons) or `SyncPolymarketClient` (CLI), which runs
the same client on a private event loop — one set of routes, two calling styles.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, TypedDict, TypeVar, Unpack

import httpx

from wire import auth as clob_auth
from wire.errors import (
    ApiError,
    HeartbeatRejected,
    ParseError,
    PolymarketError,
    RateLimitError,
    RestrictedError,
    TransportError,
)
from wire.parse import (
    CURSOR_START,
    ActivityQuery,
    TradesQuery,
    build_activity_params,
    build_balance_params,
    build_batch_body,
    build_cancel_body,
    build_cancel_market_body,
    build_cancel_orders_body,
    build_gamma_markets_params,
    build_heartbeat_body,
    build_leaderboard_params,
    build_ledger_params,
    build_positions_params,
    build_tokens_params,
    build_trades_params,
    classify_post_order,
    classify_post_orders,
    is_v2_position_id,
    load_json,
    pad_condition_id,
    parse_activity_page,
    parse_api_creds,
    parse_balance_allowance,
    parse_book,
    parse_builder_trade,
    parse_cancel_result,
    parse_clob_market,
    parse_clob_trade,
    parse_closed_only,
    parse_error_response,
    parse_gamma_markets,
    parse_heartbeat,
    parse_leaderboard_page,
    parse_ledger_page,
    parse_midpoint,
    parse_neg_risk,
    parse_open_order,
    parse_order_lookup,
    parse_positions_page,
    parse_server_time,
    parse_spread,
    parse_tick_size,
    parse_tokens,
    poll_activity_query,
)
from wire.records import (
    Accepted,
    BalanceAllowance,
    BuilderTrade,
    CancelResult,
    ClobMarketParams,
    ClobTrade,
    Duplicate,
    GammaMarket,
    InDoubt,
    LeaderboardEntry,
    OpenOrder,
    Page,
    Position,
    PostOutcome,
    RateLimited,
    Rejected,
    RejectedRow,
    RejectKind,
    Restricted,
    TokenInfo,
)
from wire.transport import (
    DEFAULT_READ_TIMEOUT,
    DEFAULT_WRITE_TIMEOUT,
    Clock,
    HeaderFactory,
    Jitter,
    RateLimiter,
    RetryPolicy,
    Sleep,
    Transport,
    full_jitter_half,
)
from wire.types import Activity, ApiCreds, MarketInfo, OrderBook, QueryParams, QueryValue, SignatureType

log = logging.getLogger("pmct.polymarket")

_Q = TypeVar("_Q")
_T = TypeVar("_T")


class Endpoints(Protocol):
    """What `from_settings` reads (infra.config.Settings has it)."""

    @property
    def data_api_url(self) -> str: ...  # noqa: D102
    @property
    def gamma_api_url(self) -> str: ...  # noqa: D102
    @property
    def clob_api_url(self) -> str: ...  # noqa: D102
    @property
    def chain_id(self) -> int: ...  # noqa: D102


class ClientOptions(TypedDict, total=False):
    """PolymarketClient's keyword arguments other than the endpoints (for typed forwarding)."""

    read_timeout: httpx.Timeout | float
    write_timeout: httpx.Timeout | float
    retry: RetryPolicy | None
    sleep: Sleep
    jitter: Jitter
    clock: Clock
    monotonic: Clock
    market_cache_ttl: float
    signer_tier: str
    rate_wake_batch: int
    http_client: httpx.AsyncClient | None
    http_transport: httpx.AsyncBaseTransport | None
    http2: bool


class ClientArgs(ClientOptions, total=False):
    """Every PolymarketClient keyword argument."""

    data_url: str
    gamma_url: str
    clob_url: str
    chain_id: int

__all__ = [
    "Accepted",
    "ActivityQuery",
    "ApiError",
    "BalanceAllowance",
    "CancelResult",
    "ClobTrade",
    "Duplicate",
    "GammaMarket",
    "InDoubt",
    "LeaderboardEntry",
    "MarketInfoCache",
    "OpenOrder",
    "Page",
    "ParseError",
    "PolymarketClient",
    "PolymarketError",
    "Position",
    "PostOutcome",
    "RateLimitError",
    "RateLimited",
    "Rejected",
    "RejectKind",
    "Restricted",
    "RestrictedError",
    "SyncPolymarketClient",
    "TokenInfo",
    "TradesQuery",
    "TransportError",
    "poll_activity_query",
]

DEFAULT_DATA_URL = "https://data-api.polymarket.com"
DEFAULT_GAMMA_URL = "https://gamma-api.polymarket.com"
DEFAULT_CLOB_URL = "https://clob.polymarket.com"
CANCEL_CHUNK = 100  # ids per DELETE /orders, below the Standard per-signer cancel burst (120)
_JSON = {"Content-Type": "application/json"}


def _same_condition(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    if a == b:
        return True
    try:
        return pad_condition_id(a) == pad_condition_id(b)
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------------
# Market-info cache


@dataclass(frozen=True)
class _CacheEntry:
    info: MarketInfo
    expires_at: float


class MarketInfoCache:
    """MarketInfo by condition id (and by token id) for `ttl` seconds of an injected clock."""

    def __init__(self, ttl: float, clock: Clock) -> None:
        self.ttl = ttl
        self._clock = clock
        self._by_condition: dict[str, _CacheEntry] = {}
        self._token_to_condition: dict[str, str] = {}

    def get(
        self, condition_id: str | None = None, token_id: str | None = None
    ) -> MarketInfo | None:
        """The cached info for a condition id or token id, or None if absent or expired."""
        key = condition_id.lower() if condition_id else self._token_to_condition.get(token_id or "")
        if key is None:
            return None
        entry = self._by_condition.get(key)
        if entry is None:
            return None
        if self._clock() >= entry.expires_at:
            self.invalidate(condition_id=key)
            return None
        return entry.info

    def put(self, info: MarketInfo) -> None:
        """Cache `info` under its condition id and each of its token ids."""
        key = info.condition_id.lower()
        self.invalidate(condition_id=key)
        self._by_condition[key] = _CacheEntry(info, self._clock() + self.ttl)
        for token in info.tokens:
            self._token_to_condition[token.token_id] = key

    def invalidate(self, condition_id: str | None = None, token_id: str | None = None) -> bool:
        """Forget a market (by condition id or any token id); True if it was cached."""
        key = condition_id.lower() if condition_id else self._token_to_condition.get(token_id or "")
        if key is None:
            return False
        entry = self._by_condition.pop(key, None)
        for tok in [t for t, c in self._token_to_condition.items() if c == key]:
            del self._token_to_condition[tok]
        return entry is not None

    def clear(self) -> None:
        """Forget everything."""
        self._by_condition.clear()
        self._token_to_condition.clear()


# ---------------------------------------------------------------------------------------------
# The client


class PolymarketClient:
    """Async Polymarket HTTP client: Data API, Gamma, CLOB market data, auth and trading."""

    def __init__(
        self,
        *,
        data_url: str = DEFAULT_DATA_URL,
        gamma_url: str = DEFAULT_GAMMA_URL,
        clob_url: str = DEFAULT_CLOB_URL,
        chain_id: int = 137,
        read_timeout: httpx.Timeout | float = DEFAULT_READ_TIMEOUT,
        write_timeout: httpx.Timeout | float = DEFAULT_WRITE_TIMEOUT,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        jitter: Jitter = full_jitter_half,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
        market_cache_ttl: float = 30.0,
        signer_tier: str = "standard",
        rate_wake_batch: int = 1,
        http_client: httpx.AsyncClient | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
        http2: bool = True,
    ) -> None:
        self.data_url = data_url.rstrip("/")
        self.gamma_url = gamma_url.rstrip("/")
        self.clob_url = clob_url.rstrip("/")
        self.chain_id = chain_id
        self._clock = clock
        self.rate_limiter = RateLimiter(clock=monotonic, sleep=sleep, signer_tier=signer_tier,
                                        wake_batch=rate_wake_batch)
        self._transport = Transport(
            client=http_client,
            http_transport=http_transport,
            read_timeout=read_timeout
            if isinstance(read_timeout, httpx.Timeout)
            else httpx.Timeout(read_timeout),
            write_timeout=write_timeout
            if isinstance(write_timeout, httpx.Timeout)
            else httpx.Timeout(write_timeout),
            retry=retry,
            limiter=self.rate_limiter,
            sleep=sleep,
            jitter=jitter,
            clock=clock,
            monotonic=monotonic,
            http2=http2,
        )
        self.market_cache = MarketInfoCache(market_cache_ttl, monotonic)

    @classmethod
    def from_settings(cls, settings: Endpoints, **kwargs: Unpack[ClientOptions]) -> PolymarketClient:
        """Build from a settings object with data/gamma/clob_api_url and chain_id attributes."""
        return cls(
            data_url=settings.data_api_url,
            gamma_url=settings.gamma_api_url,
            clob_url=settings.clob_api_url,
            chain_id=settings.chain_id,
            **kwargs,
        )

    async def aclose(self) -> None:
        """Close connections."""
        await self._transport.aclose()

    async def __aenter__(self) -> PolymarketClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def rate_limit_waits(self) -> int:
        """How many requests had to wait for a client-side token bucket (for metrics)."""
        return self.rate_limiter.total_waits

    # -- plumbing ------------------------------------------------------------------------------

    async def _get_json(
        self,
        base: str,
        path: str,
        *,
        route: str,
        limits: Sequence[tuple[str, float]],
        params: QueryParams | None = None,
        headers: HeaderFactory | None = None,
    ) -> object:
        """GET and decode JSON (not yet validated: the parse_* functions type it)."""
        response = await self._transport.read(
            "GET", base + path, route=route, limits=limits, params=params, headers=headers
        )
        return load_json(response.content, route)

    def _l2(
        self,
        creds: ApiCreds,
        signer_address: str,
        method: str,
        path: str,
        body: bytes | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> HeaderFactory:
        """A factory of fresh L2 headers (new timestamp per call) for `method path body`."""

        def make() -> dict[str, str]:
            headers = clob_auth.l2_headers(
                creds, signer_address, method, path, body, int(self._clock())
            )
            if extra:
                headers.update(extra)
            return headers

        return make

    async def _l2_write(
        self,
        method: str,
        path: str,
        *,
        route: str,
        creds: ApiCreds,
        signer_address: str,
        body: bytes | None,
        limits: Sequence[tuple[str, float]],
    ) -> httpx.Response:
        return await self._transport.write(
            method,
            self.clob_url + path,
            route=route,
            limits=limits,
            content=body,
            headers=self._l2(creds, signer_address, method, path, body, _JSON if body else None),
        )

    def _raise_for_status(self, response: httpx.Response, route: str) -> None:
        if not 200 <= response.status_code < 300:
            raise parse_error_response(
                response.status_code,
                response.content,
                response.headers,
                now=self._clock(),
                route=route,
            )

    # -- Data API ------------------------------------------------------------------------------

    async def get_activity_page(
        self, query: ActivityQuery, cursor: str | None = None
    ) -> Page[Activity]:
        """One `/v2/activity` page for a trader."""
        body = await self._get_json(
            self.data_url,
            "/v2/activity",
            route="GET /v2/activity",
            limits=(("data", 1), ("data_activity", 1)),
            params=build_activity_params(query, cursor),
        )
        return parse_activity_page(body, "/v2/activity")

    async def fetch_activity(
        self, query: ActivityQuery, *, cursor: str | None = None, max_pages: int = 20
    ) -> Page[Activity]:
        """Walk `/v2/activity` pages, identical filters; next_cursor set if max_pages cut it."""
        return await self._walk(self.get_activity_page, query, cursor, max_pages, "/v2/activity")

    async def poll_activity(
        self, user: str, *, start: int | None, limit: int = 100, max_pages: int = 20
    ) -> Page[Activity]:
        """Watcher poll: trades/splits/merges/redeems/conversions since `start`, cache-busted."""
        query = poll_activity_query(user, start=start, now=self._clock(), limit=limit)
        return await self.fetch_activity(query, max_pages=max_pages)

    async def get_trades_page(
        self, query: TradesQuery, cursor: str | None = None
    ) -> Page[Activity]:
        """One `/v2/trades?user=` page (taker_only=false unless the query says otherwise)."""
        body = await self._get_json(
            self.data_url,
            "/v2/trades",
            route="GET /v2/trades",
            limits=(("data", 1), ("data_trades", 1)),
            params=build_trades_params(query, cursor),
        )
        return parse_activity_page(body, "/v2/trades")

    async def fetch_trades(
        self, query: TradesQuery, *, cursor: str | None = None, max_pages: int = 20
    ) -> Page[Activity]:
        """Walk `/v2/trades` pages with identical filters."""
        return await self._walk(self.get_trades_page, query, cursor, max_pages, "/v2/trades")

    async def _walk(
        self,
        fetch_page: Callable[[_Q, str | None], Awaitable[Page[_T]]],
        query: _Q,
        cursor: str | None,
        max_pages: int,
        route: str,
    ) -> Page[_T]:
        items: list[_T] = []
        rejected: list[RejectedRow] = []
        seen: set[str] = set()
        for _ in range(max_pages):
            page = await fetch_page(query, cursor)
            items.extend(page.items)
            rejected.extend(page.rejected)
            cursor = page.next_cursor
            if cursor is None:
                break
            if cursor in seen:
                raise ParseError(f"{route}: cursor repeated; refusing to loop")
            seen.add(cursor)
        return Page(items=tuple(items), next_cursor=cursor, rejected=tuple(rejected))

    async def get_positions_page(
        self,
        user: str,
        *,
        condition_ids: Sequence[str] = (),
        status: str | None = None,
        limit: int = 500,
        cursor: str | None = None,
    ) -> Page[Position]:
        """One `/v2/positions` page (the user is resent with every cursor)."""
        params = build_positions_params(
            user, condition_ids=condition_ids, status=status, limit=limit, cursor=cursor
        )
        body = await self._get_json(
            self.data_url,
            "/v2/positions",
            route="GET /v2/positions",
            limits=(("data", 1), ("data_positions", 1)),
            params=params,
        )
        return parse_positions_page(body)

    async def fetch_positions(
        self,
        user: str,
        *,
        condition_ids: Sequence[str] = (),
        status: str | None = None,
        max_pages: int = 20,
    ) -> Page[Position]:
        """All `/v2/positions` pages of a wallet (next_cursor set if max_pages cut the walk)."""

        async def page(_: None, cursor: str | None) -> Page[Position]:
            return await self.get_positions_page(
                user, condition_ids=condition_ids, status=status, cursor=cursor
            )

        return await self._walk(page, None, None, max_pages, "/v2/positions")

    async def get_tokens(
        self, *, token_ids: Sequence[str] = (), condition_ids: Sequence[str] = ()
    ) -> list[TokenInfo]:
        """`/v2/tokens`: what each asset id is (module v1_ctf / binary / neg_risk / combo)."""
        body = await self._get_json(
            self.data_url,
            "/v2/tokens",
            route="GET /v2/tokens",
            limits=(("data", 1),),
            params=build_tokens_params(token_ids, condition_ids),
        )
        return parse_tokens(body)

    async def get_leaderboard(
        self,
        *,
        time_period: str = "day",
        category: str = "overall",
        sort_by: str = "PNL",
        limit: int = 25,
        cursor: str | None = None,
    ) -> Page[LeaderboardEntry]:
        """One page of the Data API trader leaderboard (`/v2/leaderboard`): PNL or VOLUME board
        over day/week/month/all; follow `next_cursor` (sent alone) for the next page."""
        body = await self._get_json(
            self.data_url,
            "/v2/leaderboard",
            route="GET /v2/leaderboard",
            limits=(("data", 1),),
            params=build_leaderboard_params(time_period=time_period, category=category,
                                            sort_by=sort_by, limit=limit, cursor=cursor),
        )
        return parse_leaderboard_page(body)

    # -- Gamma ---------------------------------------------------------------------------------

    async def get_gamma_markets(
        self,
        *,
        condition_ids: Sequence[str] = (),
        clob_token_ids: Sequence[str] = (),
        position_ids: Sequence[str] = (),
        closed: bool | None = None,
    ) -> list[GammaMarket]:
        """Gamma `/markets` filtered by repeated condition_ids / clob_token_ids / position_ids."""
        params = build_gamma_markets_params(
            condition_ids=condition_ids,
            clob_token_ids=clob_token_ids,
            position_ids=position_ids,
            closed=closed,
        )
        body = await self._get_json(
            self.gamma_url,
            "/markets",
            route="GET gamma /markets",
            limits=(("gamma", 1), ("gamma_markets", 1)),
            params=params,
        )
        return parse_gamma_markets(body)

    async def find_gamma_market(
        self, *, condition_id: str | None = None, token_id: str | None = None
    ) -> GammaMarket | None:
        """The Gamma market of a condition or trading id; retries closed=true before None."""
        if (condition_id is None) == (token_id is None):
            raise ValueError("give exactly one of condition_id or token_id")
        filters: list[dict[str, list[str]]]
        if condition_id is not None:
            filters = [{"condition_ids": [condition_id]}]
        else:
            assert token_id is not None
            by_token = {"clob_token_ids": [token_id]}
            by_position = {"position_ids": [token_id]}
            filters = (
                [by_position, by_token] if is_v2_position_id(token_id) else [by_token, by_position]
            )
        for filt in filters:
            for closed in (None, True):
                for market in await self.get_gamma_markets(closed=closed, **filt):
                    if condition_id is not None and _same_condition(
                        market.condition_id, condition_id
                    ):
                        return market
                    if token_id is not None and any(t.token_id == token_id for t in market.tokens):
                        return market
        return None

    # -- CLOB public ---------------------------------------------------------------------------

    async def get_clob_market(self, condition_id: str) -> ClobMarketParams | None:
        """`/clob-markets/{condition_id}` (31-byte ids padded with 00); None on 404."""
        path = f"/clob-markets/{pad_condition_id(condition_id)}"
        response = await self._transport.read(
            "GET",
            self.clob_url + path,
            route="GET /clob-markets",
            limits=(("clob", 1),),
            accept=frozenset({404}),
        )
        if response.status_code == 404:
            return None
        return parse_clob_market(load_json(response.content, "/clob-markets"))

    async def get_book(self, token_id: str) -> OrderBook | None:
        """`/book` best-first; None when no order book exists for the token (404)."""
        response = await self._transport.read(
            "GET",
            self.clob_url + "/book",
            route="GET /book",
            limits=(("clob", 1), ("clob_book", 1)),
            params={"token_id": token_id},
            accept=frozenset({404}),
        )
        if response.status_code == 404:
            return None
        return parse_book(load_json(response.content, "/book"))

    async def get_midpoint(self, token_id: str) -> Decimal:
        """`/midpoint` mid price."""
        body = await self._get_json(
            self.clob_url,
            "/midpoint",
            route="GET /midpoint",
            limits=(("clob", 1), ("clob_midpoint", 1)),
            params={"token_id": token_id},
        )
        return parse_midpoint(body)

    async def get_spread(self, token_id: str) -> Decimal:
        """`/spread` best ask − best bid."""
        body = await self._get_json(
            self.clob_url,
            "/spread",
            route="GET /spread",
            limits=(("clob", 1),),
            params={"token_id": token_id},
        )
        return parse_spread(body)

    async def get_tick_size(self, token_id: str) -> Decimal:
        """`/tick-size` current minimum tick (can change while a market trades)."""
        body = await self._get_json(
            self.clob_url,
            "/tick-size",
            route="GET /tick-size",
            limits=(("clob", 1), ("clob_tick_size", 1)),
            params={"token_id": token_id},
        )
        return parse_tick_size(body)

    async def get_neg_risk(self, token_id: str) -> bool:
        """`/neg-risk` flag of a token's market."""
        body = await self._get_json(
            self.clob_url,
            "/neg-risk",
            route="GET /neg-risk",
            limits=(("clob", 1),),
            params={"token_id": token_id},
        )
        return parse_neg_risk(body)

    async def get_server_time(self) -> int:
        """`/time`: the CLOB's Unix time in seconds."""
        body = await self._get_json(
            self.clob_url, "/time", route="GET /time", limits=(("clob", 1),)
        )
        return parse_server_time(body)

    async def get_market_info(
        self, condition_id: str | None = None, *, token_id: str | None = None, fresh: bool = False
    ) -> MarketInfo:
        """Gamma metadata + CLOB trading params for a market, cached for a short TTL.

        Raises ApiError(404) when Gamma knows no such market (open or closed), ParseError when
        Gamma and the CLOB disagree on the market's trading ids.
        """
        if not fresh:
            cached = self.market_cache.get(condition_id=condition_id, token_id=token_id)
            if cached is not None:
                return cached
        gamma = await self.find_gamma_market(condition_id=condition_id, token_id=token_id)
        if gamma is None:
            raise ApiError(
                404,
                f"no Gamma market for {condition_id or token_id}",
                code="not_found",
                route="GET gamma /markets",
            )
        if not gamma.condition_id:
            raise ParseError(f"Gamma market {gamma.id} has no condition id")
        clob = await self.get_clob_market(gamma.condition_id)
        info = combine_market_info(gamma, clob)
        self.market_cache.put(info)
        return info

    def invalidate_market(
        self, condition_id: str | None = None, *, token_id: str | None = None
    ) -> bool:
        """Drop cached market info (call after a tick-size rejection)."""
        return self.market_cache.invalidate(condition_id=condition_id, token_id=token_id)

    # -- Auth ----------------------------------------------------------------------------------

    async def create_or_derive_api_key(self, private_key: str, nonce: int = 0) -> ApiCreds:
        """L1: create API credentials (POST /auth/api-key), else derive the existing ones."""

        def l1() -> dict[str, str]:
            return clob_auth.l1_headers(private_key, self.chain_id, int(self._clock()), nonce)

        try:
            response = await self._transport.write(
                "POST",
                self.clob_url + "/auth/api-key",
                route="POST /auth/api-key",
                limits=(("clob", 1), ("clob_auth", 1)),
                content=None,
                headers=l1,
            )
            if 200 <= response.status_code < 300:
                return parse_api_creds(load_json(response.content, "/auth/api-key"))
            log.info("create api key answered HTTP %d; deriving instead", response.status_code)
        except (TransportError, ParseError) as exc:
            log.info("create api key failed (%s); deriving instead", type(exc).__name__)
        body = await self._get_json(
            self.clob_url,
            "/auth/derive-api-key",
            route="GET /auth/derive-api-key",
            limits=(("clob", 1), ("clob_auth", 1)),
            headers=l1,
        )
        return parse_api_creds(body)

    async def get_closed_only(self, creds: ApiCreds, signer_address: str) -> bool:
        """L2 `GET /auth/ban-status/closed-only`: True when the account may only close positions."""
        path = "/auth/ban-status/closed-only"
        body = await self._get_json(
            self.clob_url,
            path,
            route="GET " + path,
            limits=(("clob", 1), ("clob_auth", 1)),
            headers=self._l2(creds, signer_address, "GET", path),
        )
        return parse_closed_only(body)

    # -- Trading -------------------------------------------------------------------------------

    async def post_order(self, body: bytes, creds: ApiCreds, signer_address: str) -> PostOutcome:
        """POST /order with exactly `body`, once; the answer as a PostOutcome (never retried)."""
        if not isinstance(body, (bytes, bytearray)) or not body:
            raise TypeError("post_order needs the signed order body as non-empty bytes")
        body = bytes(body)
        signer = signer_address.lower()
        try:
            response = await self._l2_write(
                "POST",
                "/order",
                route="POST /order",
                creds=creds,
                signer_address=signer_address,
                body=body,
                limits=(("clob", 1), ("clob_post_order", 1), (f"signer_orders:{signer}", 1)),
            )
        except TransportError as exc:
            outcome: PostOutcome = InDoubt(reason=str(exc), request_sent=exc.request_sent)
        else:
            outcome = classify_post_order(
                response.status_code, response.content, response.headers, now=self._clock()
            )
        log.info("POST /order -> %s", _describe(outcome))
        return outcome

    async def post_orders(
        self, bodies: Sequence[bytes], creds: ApiCreds, signer_address: str
    ) -> list[PostOutcome]:
        """POST /orders (≤15 signed bodies, each sent byte for byte); one outcome per order."""
        body = build_batch_body([bytes(b) for b in bodies])
        signer = signer_address.lower()
        try:
            response = await self._l2_write(
                "POST",
                "/orders",
                route="POST /orders",
                creds=creds,
                signer_address=signer_address,
                body=body,
                limits=(
                    ("clob", 1),
                    ("clob_post_orders", 1),
                    (f"signer_orders:{signer}", len(bodies)),
                ),
            )
        except TransportError as exc:
            return [InDoubt(reason=str(exc), request_sent=exc.request_sent)] * len(bodies)
        outcomes = classify_post_orders(
            response.status_code,
            response.content,
            response.headers,
            count=len(bodies),
            now=self._clock(),
        )
        log.info("POST /orders -> %s", ", ".join(_describe(o) for o in outcomes))
        return outcomes

    async def _cancel(
        self,
        path: str,
        body: bytes | None,
        creds: ApiCreds,
        signer_address: str,
        limit_class: str,
        cost: int,
    ) -> CancelResult:
        route = "DELETE " + path
        response = await self._l2_write(
            "DELETE",
            path,
            route=route,
            creds=creds,
            signer_address=signer_address,
            body=body,
            limits=(
                ("clob", 1),
                (limit_class, 1),
                (f"signer_cancels:{signer_address.lower()}", cost),
            ),
        )
        self._raise_for_status(response, route)
        result = parse_cancel_result(load_json(response.content, route))
        log.info(
            "%s -> canceled %d, not canceled %d",
            route,
            len(result.canceled),
            len(result.not_canceled),
        )
        return result

    async def cancel_order(
        self, order_id: str, creds: ApiCreds, signer_address: str
    ) -> CancelResult:
        """DELETE /order (sent once; raises on transport failure or an error status)."""
        return await self._cancel(
            "/order", build_cancel_body(order_id), creds, signer_address, "clob_cancel_order", 1
        )

    async def cancel_orders(
        self, order_ids: Sequence[str], creds: ApiCreds, signer_address: str
    ) -> CancelResult:
        """DELETE /orders in chunks that fit the per-signer cancel burst; results merged."""
        canceled: list[str] = []
        not_canceled: dict[str, str] = {}
        ids = list(order_ids)
        for start in range(0, len(ids), CANCEL_CHUNK):
            chunk = ids[start : start + CANCEL_CHUNK]
            result = await self._cancel(
                "/orders",
                build_cancel_orders_body(chunk),
                creds,
                signer_address,
                "clob_cancel_orders",
                len(chunk),
            )
            canceled.extend(result.canceled)
            not_canceled.update(result.not_canceled)
        return CancelResult(canceled=tuple(canceled), not_canceled=not_canceled)

    async def cancel_all(self, creds: ApiCreds, signer_address: str) -> CancelResult:
        """DELETE /cancel-all: every open order of this API key."""
        return await self._cancel("/cancel-all", None, creds, signer_address, "clob_cancel_all", 1)

    async def cancel_market_orders(
        self,
        creds: ApiCreds,
        signer_address: str,
        *,
        market: str | None = None,
        asset_id: str | None = None,
    ) -> CancelResult:
        """DELETE /cancel-market-orders for a market and/or asset."""
        return await self._cancel(
            "/cancel-market-orders",
            build_cancel_market_body(market, asset_id),
            creds,
            signer_address,
            "clob_cancel_all",
            1,
        )

    async def get_order(
        self, order_id: str, creds: ApiCreds, signer_address: str
    ) -> OpenOrder | None:
        """`GET /data/order/{id}`; None when the venue does not know the order (404 or empty)."""
        path = f"/data/order/{order_id}"
        response = await self._transport.read(
            "GET",
            self.clob_url + path,
            route="GET /data/order",
            accept=frozenset({404}),
            limits=(("clob", 1), ("clob_ledger", 1)),
            headers=self._l2(creds, signer_address, "GET", path),
        )
        if response.status_code == 404:
            return None
        return parse_order_lookup(response.content)

    async def _ledger(
        self,
        path: str,
        limit_class: str,
        creds: ApiCreds,
        signer_address: str,
        filters: Mapping[str, QueryValue | None],
        max_pages: int,
    ) -> list[object]:
        rows: list[object] = []
        cursor: str | None = CURSOR_START
        seen: set[str] = set()
        pages = 0
        while cursor is not None:
            if pages >= max_pages:
                raise ParseError(f"{path}: more than {max_pages} pages")
            if cursor in seen:
                raise ParseError(f"{path}: cursor repeated; refusing to loop")
            seen.add(cursor)
            body = await self._get_json(
                self.clob_url,
                path,
                route="GET " + path,
                limits=(("clob", 1), (limit_class, 1)),
                params=build_ledger_params(cursor, **filters),
                headers=self._l2(creds, signer_address, "GET", path),
            )
            data, cursor = parse_ledger_page(body, path)
            rows.extend(data)
            pages += 1
        return rows

    async def get_open_orders(
        self,
        creds: ApiCreds,
        signer_address: str,
        *,
        order_id: str | None = None,
        market: str | None = None,
        asset_id: str | None = None,
        max_pages: int = 50,
    ) -> list[OpenOrder]:
        """`/data/orders`, all pages (MA== … LTE=)."""
        rows = await self._ledger(
            "/data/orders",
            "clob_data_orders",
            creds,
            signer_address,
            {"id": order_id, "market": market, "asset_id": asset_id},
            max_pages,
        )
        return [parse_open_order(r) for r in rows]

    async def get_clob_trades(
        self,
        creds: ApiCreds,
        signer_address: str,
        *,
        trade_id: str | None = None,
        market: str | None = None,
        asset_id: str | None = None,
        maker_address: str | None = None,
        before: int | None = None,
        after: int | None = None,
        max_pages: int = 50,
    ) -> list[ClobTrade]:
        """`/data/trades`, all pages; statuses with TRADE_STATUS_ stripped."""
        rows = await self._ledger(
            "/data/trades",
            "clob_data_trades",
            creds,
            signer_address,
            {
                "id": trade_id,
                "market": market,
                "asset_id": asset_id,
                "maker_address": maker_address,
                "before": before,
                "after": after,
            },
            max_pages,
        )
        return [parse_clob_trade(r) for r in rows]

    async def post_heartbeat(self, creds: ApiCreds, signer_address: str, heartbeat_id: str) -> str:
        """`POST /v1/heartbeats` once; returns the id to send next (docs/POLYMARKET.md §5.8).

        The first accepted send arms the venue's cancel-all-on-timeout for this API key. A stale
        id is answered 400 with the expected one: sent again once with it. Raises on failure.
        """
        path = "/v1/heartbeats"
        hb = heartbeat_id
        for _ in range(2):
            body = build_heartbeat_body(hb)
            response = await self._l2_write("POST", path, route="POST " + path, creds=creds,
                                            signer_address=signer_address, body=body,
                                            limits=(("clob", 1), ("clob_heartbeat", 1)))
            try:
                return parse_heartbeat(response.status_code, response.content)
            except HeartbeatRejected as exc:
                hb = exc.expected
        raise ParseError(f"{path}: the heartbeat id was refused twice")

    async def get_builder_trades(
        self,
        builder_code: str,
        credentials: tuple[str, str, str],
        *,
        after: int | None = None,
        before: int | None = None,
        max_pages: int = 200,
    ) -> list[BuilderTrade]:
        """`GET /builder/trades?builder_code=`: trades attributed to the code, all pages.

        `credentials` = (builder API key, secret, passphrase), sent as POLY_BUILDER_* headers.
        """
        path = "/builder/trades"
        api_key, secret, passphrase = credentials

        def headers() -> dict[str, str]:
            return clob_auth.builder_headers(api_key, secret, passphrase, "GET", path, None,
                                             int(self._clock()))

        rows: list[Any] = []
        cursor: str | None = CURSOR_START
        seen: set[str] = set()
        while cursor is not None:
            if len(seen) >= max_pages:
                raise ParseError(f"{path}: more than {max_pages} pages")
            if cursor in seen:
                raise ParseError(f"{path}: cursor repeated; refusing to loop")
            seen.add(cursor)
            body = await self._get_json(
                self.clob_url, path, route="GET " + path, limits=(("clob", 1), ("clob_builder", 1)),
                params=build_ledger_params(cursor, builder_code=builder_code, after=after,
                                           before=before),
                headers=headers)
            data, cursor = parse_ledger_page(body, path)
            rows.extend(data)
        return [parse_builder_trade(r) for r in rows]

    async def get_balance_allowance(
        self,
        creds: ApiCreds,
        signer_address: str,
        asset_type: str,
        *,
        signature_type: SignatureType | int,
        token_id: str | None = None,
    ) -> BalanceAllowance:
        """`/balance-allowance` for COLLATERAL / CONDITIONAL / CONDITIONAL-V2, in pUSD or shares."""
        path = "/balance-allowance"
        body = await self._get_json(
            self.clob_url,
            path,
            route="GET " + path,
            limits=(("clob", 1), ("clob_balance", 1)),
            params=build_balance_params(asset_type, token_id, int(signature_type)),
            headers=self._l2(creds, signer_address, "GET", path),
        )
        return parse_balance_allowance(body)

    async def update_balance_allowance(
        self,
        creds: ApiCreds,
        signer_address: str,
        asset_type: str,
        *,
        signature_type: SignatureType | int,
        token_id: str | None = None,
    ) -> None:
        """`GET /balance-allowance/update`: make the CLOB refresh its cached balance/allowance."""
        path = "/balance-allowance/update"
        await self._transport.read(
            "GET",
            self.clob_url + path,
            route="GET " + path,
            limits=(("clob", 1), ("clob_balance_update", 1)),
            params=build_balance_params(asset_type, token_id, int(signature_type)),
            headers=self._l2(creds, signer_address, "GET", path),
        )


def combine_market_info(gamma: GammaMarket, clob: ClobMarketParams | None) -> MarketInfo:
    """MarketInfo from Gamma metadata and CLOB trading params (the CLOB wins on tick/size/fees).

    Without CLOB params (the CLOB has no such market) Gamma's values are used and the market is
    reported as not accepting orders.
    """
    tokens = gamma.tokens
    if clob is not None and clob.tokens:
        gamma_ids = {t.token_id for t in gamma.tokens}
        clob_ids = {t.token_id for t in clob.tokens}
        if gamma_ids and gamma_ids != clob_ids:
            raise ParseError(
                f"market {gamma.condition_id}: Gamma ({gamma.version.value}) and CLOB "
                "disagree on trading ids"
            )
        if not tokens:
            tokens = clob.tokens
    if clob is not None:
        tick, min_size, neg_risk = clob.tick_size, clob.min_size, clob.neg_risk
        fee_rate, fee_exp, takers_only = clob.fee_rate, clob.fee_exponent, clob.fee_takers_only
        accepting = gamma.accepting_orders
    else:
        if gamma.tick_size is None or gamma.min_size is None:
            raise ParseError(
                f"market {gamma.condition_id}: no CLOB params and no Gamma tick/min size"
            )
        tick, min_size, neg_risk = gamma.tick_size, gamma.min_size, gamma.neg_risk
        fee_rate = (
            gamma.fee_rate if gamma.fees_enabled and gamma.fee_rate is not None else Decimal(0)
        )
        fee_exp = gamma.fee_exponent if gamma.fee_exponent is not None else Decimal(1)
        takers_only = gamma.fee_takers_only
        accepting = False
    return MarketInfo(
        condition_id=gamma.condition_id,
        question=gamma.question,
        tokens=tokens,
        tick_size=tick,
        min_size=min_size,
        neg_risk=neg_risk,
        version=gamma.version,
        accepting_orders=accepting,
        closed=gamma.closed,
        end_date=gamma.end_date,
        fee_rate=fee_rate,
        fee_exponent=fee_exp,
        fee_takers_only=takers_only,
        event_key=gamma.event_key,
        category=gamma.category,
    )


def _describe(outcome: PostOutcome) -> str:
    if isinstance(outcome, Accepted):
        return f"Accepted {outcome.order_id} {outcome.status}"
    if isinstance(outcome, Rejected):
        return f"Rejected[{outcome.kind.value}] HTTP {outcome.http_status}: {outcome.reason}"
    if isinstance(outcome, Duplicate):
        return f"Duplicate {outcome.order_id or ''}".rstrip()
    if isinstance(outcome, InDoubt):
        return f"InDoubt (sent={outcome.request_sent}): {outcome.reason}"
    if isinstance(outcome, RateLimited):
        return f"RateLimited retry_after={outcome.retry_after}"
    return f"Restricted[{outcome.kind}]: {outcome.reason}"


# ---------------------------------------------------------------------------------------------
# Sync facade


class SyncPolymarketClient:
    """Blocking facade for the CLI: the same PolymarketClient run on a private event loop.

    Every coroutine method of PolymarketClient is available here as a plain method. Do not use
    it from inside a running event loop (use PolymarketClient there).
    """

    def __init__(self, **kwargs: Unpack[ClientArgs]) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = PolymarketClient(**kwargs)

    @classmethod
    def from_settings(cls, settings: Endpoints, **kwargs: Unpack[ClientOptions]) -> SyncPolymarketClient:
        """Build from a settings object (see PolymarketClient.from_settings)."""
        return cls(
            data_url=settings.data_api_url,
            gamma_url=settings.gamma_api_url,
            clob_url=settings.clob_api_url,
            chain_id=settings.chain_id,
            **kwargs,
        )

    @property
    def async_client(self) -> PolymarketClient:
        """The wrapped async client."""
        return self._client

    def __getattr__(self, name: str) -> Any:  # Any: a dynamic proxy of every client method
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self._client, name)
        if inspect.iscoroutinefunction(attr):

            @functools.wraps(attr)
            def blocking(*args: Any, **kwargs: Any) -> Any:
                return self._loop.run_until_complete(attr(*args, **kwargs))

            return blocking
        return attr

    def close(self) -> None:
        """Close connections and the private loop."""
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._client.aclose())
            self._loop.close()

    def __enter__(self) -> SyncPolymarketClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
