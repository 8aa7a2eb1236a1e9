"""HTTP transport for Polymarket: client-side token buckets, timeouts, and retries for reads only.

Invariant: `write()` sends a request exactly once — it never retries, whatever happens — and
tells the caller whether the request may have reached the server (`TransportError.request_sent`).
`read()` retries transient failures (connect/read errors, timeouts, 5xx, 429, 425) with capped
exponential backoff and jitter, and honours Retry-After up to a cap (beyond it, it gives up
rather than hammer the server). Every request first takes a token from each bucket of its
endpoint class (Polymarket's published limits), so this process never exceeds them; the waits
are counted for metrics. Sleep, jitter and both clocks are injected so tests never wait.
Logs carry method, URL (sensitive query values masked), status and timing — never headers.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx

from wire.errors import ApiError
from wire.errors import TransportError as TransportError  # re-exported for callers
from wire.parse import parse_error_response
from wire.types import QueryParams

log = logging.getLogger("pmct.polymarket.http")

Sleep = Callable[[float], Awaitable[None]]
Jitter = Callable[[float], float]
Clock = Callable[[], float]
HeaderFactory = Callable[[], Mapping[str, str]]

_SENSITIVE_QUERY_KEYS = frozenset(
    {"secret", "passphrase", "signature", "api_key", "apikey", "key", "private_key", "token"}
)


def h2_available() -> bool:
    """True when the optional `h2` package is importable (HTTP/2 support in httpx)."""
    try:
        import h2  # noqa: F401
    except ImportError:
        return False
    return True


def safe_url(url: httpx.URL | str) -> str:
    """The URL for logs: scheme, host, path and query with sensitive values masked."""
    parsed = httpx.URL(str(url))
    if not parsed.query:
        return str(parsed)
    params: list[tuple[str, str | int | float | bool | None]] = [
        (k, "***" if k.lower() in _SENSITIVE_QUERY_KEYS else v)
        for k, v in parsed.params.multi_items()
    ]
    return str(parsed.copy_with(query=None).copy_merge_params(params))


def full_jitter_half(delay: float) -> float:
    """Default jitter: a uniform delay in [delay/2, delay]."""
    return random.uniform(delay / 2, delay)


# ---------------------------------------------------------------------------------------------
# Token buckets


@dataclass(frozen=True)
class BucketSpec:
    """A token bucket: up to `capacity` requests at once, refilled at `rate` tokens per second."""

    capacity: float
    rate: float

    @classmethod
    def per_window(cls, requests: int, seconds: float) -> BucketSpec:
        """Polymarket's "N requests per S seconds" as a bucket."""
        return cls(capacity=float(requests), rate=requests / seconds)


def _w(requests: int, seconds: float) -> BucketSpec:
    return BucketSpec.per_window(requests, seconds)


# Published Cloudflare limits (docs/POLYMARKET.md §1.6, §2, §3, §5.9). A request takes one token from every
# bucket of its class. Values marked (*) are not published for v2 or are third-party figures.
POLYMARKET_LIMITS: dict[str, tuple[BucketSpec, ...]] = {
    "data": (_w(1000, 10),),
    "data_activity": (_w(400, 10),),  # (*) measured, not published
    "data_trades": (_w(200, 10),),
    "data_positions": (_w(150, 10),),
    "gamma": (_w(4000, 10),),
    "gamma_markets": (_w(300, 10),),
    "clob": (_w(9000, 10),),
    "clob_book": (_w(1500, 10),),
    "clob_price": (_w(1500, 10),),
    "clob_midpoint": (_w(1500, 10),),
    "clob_tick_size": (_w(200, 10),),
    "clob_post_order": (_w(3500, 10), _w(36000, 600)),
    "clob_post_orders": (_w(1000, 10), _w(15000, 600)),
    "clob_cancel_order": (_w(3000, 10), _w(30000, 600)),
    "clob_cancel_orders": (_w(1000, 10),),  # (*) "lower" than DELETE /order; value unpublished
    "clob_cancel_all": (_w(250, 10),),  # (*) third-party figure
    "clob_ledger": (_w(900, 10),),
    "clob_data_orders": (_w(500, 10),),
    "clob_data_trades": (_w(500, 10),),
    "clob_balance": (_w(200, 10),),
    "clob_balance_update": (_w(50, 10),),
    "clob_auth": (_w(100, 10),),
    "clob_heartbeat": (_w(3000, 10),),  # (*) unpublished; one send per API key every ~5 s
    "clob_builder": (_w(500, 10),),  # (*) unpublished; read as the other ledger routes
}

# Per-signer order/cancel buckets (docs/POLYMARKET.md §5.9), Standard tier; keys are "<class>:<address>".
SIGNER_TIERS: dict[str, dict[str, BucketSpec]] = {
    "standard": {"signer_orders": BucketSpec(60, 40), "signer_cancels": BucketSpec(120, 80)},
    "copper": {"signer_orders": BucketSpec(90, 60), "signer_cancels": BucketSpec(180, 120)},
    "bronze": {"signer_orders": BucketSpec(120, 80), "signer_cancels": BucketSpec(240, 160)},
    "silver": {"signer_orders": BucketSpec(300, 200), "signer_cancels": BucketSpec(600, 400)},
}


_TOKEN_EPSILON = 1e-9


class TokenBucket:
    """An async token bucket on an injected monotonic clock; waiters are served in order."""

    def __init__(self, spec: BucketSpec, *, clock: Clock, sleep: Sleep, wake_batch: int = 1) -> None:
        if spec.capacity <= 0 or spec.rate <= 0:
            raise ValueError("bucket capacity and rate must be positive")
        if wake_batch < 1:
            raise ValueError("wake_batch must be at least 1")
        self.spec = spec
        # When a waiter must sleep, it sleeps until `wake_batch` tokens are there, so queued
        # requests leave together: the same rate, fewer (CPU-costly) sparse wake-ups.
        self._wake_tokens = min(float(wake_batch), spec.capacity)
        self._clock = clock
        self._sleep = sleep
        self._tokens = spec.capacity
        self._updated = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.spec.capacity, self._tokens + elapsed * self.spec.rate)
        self._updated = now

    async def acquire(self, cost: float = 1.0) -> float:
        """Take `cost` tokens, sleeping until they are available; returns the seconds waited."""
        if cost > self.spec.capacity:
            raise ValueError(
                f"cost {cost} exceeds bucket capacity {self.spec.capacity}: "
                "such a request can never be admitted"
            )
        waited = 0.0
        async with self._lock:
            while True:
                self._refill()
                if self._tokens + _TOKEN_EPSILON >= cost:  # float refill may land a hair short
                    self._tokens = max(0.0, self._tokens - cost)
                    return waited
                delay = (max(cost, self._wake_tokens) - self._tokens) / self.spec.rate
                waited += delay
                await self._sleep(delay)


class RateLimiter:
    """Named token buckets (endpoint classes and per-signer buckets) with wait counters."""

    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        limits: Mapping[str, Sequence[BucketSpec]] | None = None,
        signer_tier: str = "standard",
        wake_batch: int = 1,
    ) -> None:
        self._clock = clock
        self._wake_batch = wake_batch
        self._sleep = sleep
        self._limits = dict(POLYMARKET_LIMITS if limits is None else limits)
        self._signer_specs = SIGNER_TIERS[signer_tier]
        self._buckets: dict[str, list[TokenBucket]] = {}
        self.waits: dict[str, int] = {}
        self.waited_seconds: dict[str, float] = {}

    @property
    def total_waits(self) -> int:
        """How many (request, class) acquisitions had to wait, over all classes."""
        return sum(self.waits.values())

    def _buckets_for(self, key: str) -> list[TokenBucket]:
        buckets = self._buckets.get(key)
        if buckets is None:
            base = key.split(":", 1)[0]
            if ":" in key and base in self._signer_specs:
                specs: Sequence[BucketSpec] = (self._signer_specs[base],)
            else:
                specs = self._limits.get(key, ())
            buckets = [TokenBucket(s, clock=self._clock, sleep=self._sleep, wake_batch=self._wake_batch)
                       for s in specs]
            self._buckets[key] = buckets
        return buckets

    async def acquire(self, claims: Sequence[tuple[str, float]]) -> float:
        """Take tokens from each bucket named in `claims` ((key, cost)); returns seconds waited."""
        total = 0.0
        for key, cost in claims:
            waited = 0.0
            for bucket in self._buckets_for(key):
                waited += await bucket.acquire(cost)
            if waited > 0:
                self.waits[key] = self.waits.get(key, 0) + 1
                self.waited_seconds[key] = self.waited_seconds.get(key, 0.0) + waited
                log.debug("rate limit wait %.3fs on %s", waited, key.split(":", 1)[0])
            total += waited
        return total


# ---------------------------------------------------------------------------------------------
# Transport


@dataclass(frozen=True)
class RetryPolicy:
    """Read retries: attempts in total, exponential backoff bounds, and the Retry-After cap."""

    max_attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 8.0
    retry_after_cap: float = 30.0

    def backoff(self, retry_index: int) -> float:
        """The un-jittered delay before retry number `retry_index` (0-based)."""
        return min(self.max_delay, self.base_delay * 2.0**retry_index)


DEFAULT_READ_TIMEOUT = httpx.Timeout(10.0, connect=5.0, pool=5.0)
DEFAULT_WRITE_TIMEOUT = httpx.Timeout(15.0, connect=5.0, pool=5.0)

_NOT_SENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)
_RETRYABLE_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


def _is_retryable_status(status: int) -> bool:
    return status in (425, 429) or status >= 500


class Transport:
    """Sends Polymarket requests: `read()` with retries, `write()` exactly once."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
        read_timeout: httpx.Timeout = DEFAULT_READ_TIMEOUT,
        write_timeout: httpx.Timeout = DEFAULT_WRITE_TIMEOUT,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        sleep: Sleep = asyncio.sleep,
        jitter: Jitter = full_jitter_half,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
        http2: bool = True,
    ) -> None:
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            transport=http_transport,
            http2=http2 and h2_available(),
            # keep-alive for every connection: httpcore 1.0 closes idle connections whenever the
            # pool holds more than `max_keepalive_connections` in all, so a lower number made
            # 32 requests in flight over HTTP/1.1 reconnect again and again
            limits=httpx.Limits(
                max_connections=100, max_keepalive_connections=100, keepalive_expiry=30
            ),
            follow_redirects=False,
        )
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or RateLimiter(clock=monotonic, sleep=sleep)
        self._sleep = sleep
        self._jitter = jitter
        self._clock = clock
        self._monotonic = monotonic

    async def aclose(self) -> None:
        """Close the underlying httpx client if this transport created it."""
        if self._owns_client:
            await self._client.aclose()

    async def _send(
        self,
        method: str,
        url: str,
        *,
        params: QueryParams | None,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        timeout: httpx.Timeout,
    ) -> httpx.Response:
        request = self._client.build_request(
            method,
            url,
            params=params,
            content=content,
            headers=dict(headers or {}),
            timeout=timeout,
        )
        started = self._monotonic()
        try:
            response = await self._client.send(request)
        except httpx.HTTPError as exc:
            log.warning(
                "%s %s failed after %.0f ms: %s",
                method,
                safe_url(request.url),
                (self._monotonic() - started) * 1000,
                type(exc).__name__,
            )
            raise
        if log.isEnabledFor(logging.DEBUG):  # building the masked URL costs ~0.5 ms
            log.debug(
                "%s %s -> %d in %.0f ms",
                method,
                safe_url(request.url),
                response.status_code,
                (self._monotonic() - started) * 1000,
            )
        return response

    async def read(
        self,
        method: str,
        url: str,
        *,
        route: str,
        limits: Sequence[tuple[str, float]],
        params: QueryParams | None = None,
        headers: HeaderFactory | None = None,
        content: bytes | None = None,
        accept: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        """An idempotent request with retries; returns a 2xx (or `accept`ed) response, else raises.

        `headers` is called once per attempt, so signed headers carry a fresh timestamp.
        """
        policy = self.retry
        attempt = 0
        while True:
            await self.limiter.acquire(limits)
            try:
                response = await self._send(
                    method,
                    url,
                    params=params,
                    content=content,
                    headers=headers() if headers else None,
                    timeout=self.read_timeout,
                )
            except _RETRYABLE_ERRORS as exc:
                if attempt + 1 >= policy.max_attempts:
                    raise TransportError(
                        f"{method} {route}: {type(exc).__name__} after {attempt + 1} attempts",
                        request_sent=not isinstance(exc, _NOT_SENT_ERRORS),
                    ) from exc
                delay = self._jitter(policy.backoff(attempt))
            except httpx.HTTPError as exc:
                raise TransportError(
                    f"{method} {route}: {type(exc).__name__}",
                    request_sent=not isinstance(exc, _NOT_SENT_ERRORS),
                ) from exc
            else:
                status = response.status_code
                if 200 <= status < 300 or status in accept:
                    return response
                error = parse_error_response(
                    status, response.content, response.headers, now=self._clock(), route=route
                )
                if not self._should_retry(error, attempt):
                    raise error
                if error.retry_after is not None:
                    delay = error.retry_after  # honour the server exactly (already ≤ cap)
                else:
                    delay = self._jitter(policy.backoff(attempt))
                log.info(
                    "%s %s: HTTP %d, retry %d in %.2fs", method, route, status, attempt + 1, delay
                )
            attempt += 1
            await self._sleep(delay)

    def _should_retry(self, error: ApiError, attempt: int) -> bool:
        if not _is_retryable_status(error.status):
            return False
        if attempt + 1 >= self.retry.max_attempts:
            return False
        if error.status >= 500 and error.retryable is False:
            return False
        if error.retry_after is not None and error.retry_after > self.retry.retry_after_cap:
            return False
        return True

    async def write(
        self,
        method: str,
        url: str,
        *,
        route: str,
        limits: Sequence[tuple[str, float]],
        content: bytes | None,
        headers: HeaderFactory,
        params: QueryParams | None = None,
    ) -> httpx.Response:
        """A state-changing request sent exactly once; returns the response whatever its status.

        `headers` is called after any rate-limit wait, so a signature's timestamp is fresh.
        Raises TransportError(request_sent=False) only when nothing can have reached the server
        (connection never established), TransportError(request_sent=True) otherwise.
        """
        await self.limiter.acquire(limits)
        try:
            return await self._send(
                method,
                url,
                params=params,
                content=content,
                headers=headers(),
                timeout=self.write_timeout,
            )
        except _NOT_SENT_ERRORS as exc:
            raise TransportError(
                f"{method} {route}: {type(exc).__name__} (not sent)", request_sent=False
            ) from exc
        except httpx.HTTPError as exc:
            raise TransportError(
                f"{method} {route}: {type(exc).__name__} (may have been sent)", request_sent=True
            ) from exc
