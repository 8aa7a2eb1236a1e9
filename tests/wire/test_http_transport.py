"""http_transport: token-bucket spacing, read retries with backoff/Retry-After, writes sent once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import respx

from tests.support.fake_time import FakeTime
from wire.errors import ApiError, RateLimitError, RestrictedError, TransportError
from wire.transport import (
    BucketSpec,
    RateLimiter,
    RetryPolicy,
    TokenBucket,
    Transport,
    safe_url,
)

URL = "http://127.0.0.1:9000/prefix/thing"


def run(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    """Run one async test body to completion."""
    return asyncio.run(coro_fn())  # type: ignore[arg-type]


def make_transport(t: FakeTime, **kw: Any) -> Transport:
    """A transport on fake time with identity jitter (so backoff delays are exact)."""
    return Transport(sleep=t.sleep, jitter=lambda d: d, clock=t.clock, monotonic=t.monotonic, **kw)


# -- Token buckets ----------------------------------------------------------------------------


def test_bucket_admits_burst_then_spaces_by_refill_rate() -> None:
    """5 per 10 s: five requests pass at once, the 6th and 7th wait 2 s each (fake clock)."""
    t = FakeTime()
    bucket = TokenBucket(BucketSpec.per_window(5, 10), clock=t.monotonic, sleep=t.sleep)

    async def body() -> list[float]:
        return [await bucket.acquire() for _ in range(7)]

    waits = run(body)
    assert waits == [0, 0, 0, 0, 0, pytest.approx(2.0), pytest.approx(2.0)]
    assert t.sleeps == [pytest.approx(2.0), pytest.approx(2.0)]


def test_bucket_refills_while_idle_up_to_capacity() -> None:
    """After a long idle period the bucket holds at most its capacity."""
    t = FakeTime()
    bucket = TokenBucket(BucketSpec.per_window(2, 10), clock=t.monotonic, sleep=t.sleep)

    async def body() -> None:
        for _ in range(2):
            await bucket.acquire()
        t.mono += 1000  # idle
        for _ in range(2):
            assert await bucket.acquire() == 0
        assert await bucket.acquire() == pytest.approx(5.0)

    run(body)


def test_bucket_refuses_cost_above_capacity() -> None:
    """A request costing more than the burst can never be admitted: refused, not waited on."""
    t = FakeTime()
    bucket = TokenBucket(BucketSpec(60, 40), clock=t.monotonic, sleep=t.sleep)
    with pytest.raises(ValueError, match="capacity"):
        run(lambda: bucket.acquire(61))
    assert t.sleeps == []


def test_concurrent_waiters_are_spaced_not_stampeded() -> None:
    """Ten concurrent acquirers on a 2-per-second bucket finish at distinct, evenly spaced times."""
    t = FakeTime()
    bucket = TokenBucket(BucketSpec(2, 2), clock=t.monotonic, sleep=t.sleep)
    finished: list[float] = []

    async def one() -> None:
        await bucket.acquire()
        finished.append(t.mono - 500.0)

    async def body() -> None:
        await asyncio.gather(*(one() for _ in range(10)))

    run(body)
    assert finished == [pytest.approx(x) for x in (0, 0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4)]


def test_rate_limiter_multi_window_and_wait_counter() -> None:
    """POST /order has a 10 s burst and a 10 min window; waits are counted per class."""
    t = FakeTime()
    limiter = RateLimiter(
        clock=t.monotonic,
        sleep=t.sleep,
        limits={"post": (BucketSpec.per_window(3, 10), BucketSpec.per_window(4, 600))},
    )

    async def body() -> None:
        for _ in range(5):
            await limiter.acquire([("post", 1)])

    run(body)
    # 3 pass; the 4th waits for the 10 s bucket; the 5th waits for the 10 min bucket (150 s/token)
    assert limiter.waits == {"post": 2} and limiter.total_waits == 2
    assert sum(t.sleeps) == pytest.approx(t.mono - 500.0)
    assert t.mono - 500.0 == pytest.approx(150.0)  # 5th token of a 4-per-600 s window


def test_signer_buckets_are_per_address() -> None:
    """Per-signer order buckets (Standard: burst 60) are separate for each signer address."""
    t = FakeTime()
    limiter = RateLimiter(clock=t.monotonic, sleep=t.sleep)

    async def body() -> None:
        await limiter.acquire([("signer_orders:0xaaa", 60)])
        await limiter.acquire([("signer_orders:0xbbb", 60)])
        assert t.sleeps == []
        await limiter.acquire([("signer_orders:0xaaa", 1)])

    run(body)
    assert t.sleeps == [pytest.approx(1 / 40)]


# -- Reads ------------------------------------------------------------------------------------


@respx.mock
def test_read_retries_5xx_with_exponential_backoff() -> None:
    """503, 502 then 200: two retries after 0.25 s and 0.5 s (jitter disabled)."""
    route = respx.get(URL).mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(502),
            httpx.Response(200, json={"ok": True}),
        ]
    )
    t = FakeTime()
    tr = make_transport(t)
    resp = run(lambda: tr.read("GET", URL, route="GET /thing", limits=()))
    assert resp.json() == {"ok": True} and route.call_count == 3
    assert t.sleeps == [0.25, 0.5]


@respx.mock
def test_read_honours_retry_after_exactly_without_sleeping() -> None:
    """429 with Retry-After: 3 → the recorded sleep is exactly 3.0 s, then success."""
    route = respx.get(URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "3"}, json={"error": "Too Many Requests"}),
            httpx.Response(200, json=[]),
        ]
    )
    t = FakeTime()
    tr = make_transport(t)
    run(lambda: tr.read("GET", URL, route="GET /thing", limits=()))
    assert route.call_count == 2 and t.sleeps == [3.0]


@respx.mock
def test_retry_after_above_cap_gives_up_at_once() -> None:
    """A Retry-After beyond the cap raises RateLimitError carrying it, without waiting."""
    respx.get(URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "600"}))
    t = FakeTime()
    tr = make_transport(t, retry=RetryPolicy(retry_after_cap=30))
    with pytest.raises(RateLimitError) as info:
        run(lambda: tr.read("GET", URL, route="GET /thing", limits=()))
    assert info.value.retry_after == 600.0 and t.sleeps == []


@respx.mock
def test_read_425_retried_then_restricted_error() -> None:
    """425 (engine restarting) is retried; when it persists, RestrictedError(restarting)."""
    route = respx.get(URL).mock(return_value=httpx.Response(425))
    t = FakeTime()
    tr = make_transport(t, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(RestrictedError) as info:
        run(lambda: tr.read("GET", URL, route="GET /thing", limits=()))
    assert info.value.kind == "restarting" and route.call_count == 3
    assert t.sleeps == [0.25, 0.5]


@respx.mock
def test_read_network_errors_retried_then_transport_error() -> None:
    """Connect errors and read timeouts are retried; after max attempts a TransportError."""
    route = respx.get(URL).mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.ReadTimeout("slow"),
            httpx.ConnectError("refused"),
        ]
    )
    t = FakeTime()
    tr = make_transport(t, retry=RetryPolicy(max_attempts=3, base_delay=1, max_delay=1.5))
    with pytest.raises(TransportError) as info:
        run(lambda: tr.read("GET", URL, route="GET /thing", limits=()))
    assert route.call_count == 3 and t.sleeps == [1, 1.5]
    assert info.value.request_sent is False  # the last failure was a connect error


@respx.mock
def test_read_client_errors_not_retried() -> None:
    """A 400 is final: one call, ApiError with the Data API code."""
    route = respx.get(URL).mock(
        return_value=httpx.Response(
            400,
            json={"error": "bad", "code": "invalid_request", "retryable": False, "trace_id": "t"},
        )
    )
    t = FakeTime()
    tr = make_transport(t)
    with pytest.raises(ApiError) as info:
        run(lambda: tr.read("GET", URL, route="GET /thing", limits=()))
    assert route.call_count == 1 and info.value.code == "invalid_request" and t.sleeps == []


@respx.mock
def test_read_5xx_marked_not_retryable_is_not_retried() -> None:
    """A Data API 5xx body saying retryable:false is not retried."""
    route = respx.get(URL).mock(
        return_value=httpx.Response(
            500, json={"error": "x", "code": "internal", "retryable": False, "trace_id": "t"}
        )
    )
    tr = make_transport(FakeTime())
    with pytest.raises(ApiError):
        run(lambda: tr.read("GET", URL, route="GET /thing", limits=()))
    assert route.call_count == 1


@respx.mock
def test_read_headers_factory_called_per_attempt() -> None:
    """Signed headers are rebuilt for every attempt (fresh timestamp after a backoff)."""
    route = respx.get(URL).mock(side_effect=[httpx.Response(500), httpx.Response(200)])
    tr = make_transport(FakeTime())
    counter = iter(range(10))
    run(
        lambda: tr.read(
            "GET", URL, route="r", limits=(), headers=lambda: {"X-Attempt": str(next(counter))}
        )
    )
    assert [c.request.headers["X-Attempt"] for c in route.calls] == ["0", "1"]


@respx.mock
def test_accepted_status_returned_without_retry() -> None:
    """A status listed in `accept` (e.g. 404 for lookups) is returned, not raised or retried."""
    route = respx.get(URL).mock(return_value=httpx.Response(404, json={"error": "nope"}))
    tr = make_transport(FakeTime())
    resp = run(lambda: tr.read("GET", URL, route="r", limits=(), accept=frozenset({404})))
    assert resp.status_code == 404 and route.call_count == 1


# -- Writes -----------------------------------------------------------------------------------


@respx.mock
def test_write_never_retries_even_on_5xx() -> None:
    """A write answered 500 is returned as is after exactly one call, with no sleep."""
    route = respx.post(URL).mock(return_value=httpx.Response(500))
    t = FakeTime()
    tr = make_transport(t)
    resp = run(
        lambda: tr.write("POST", URL, route="POST /thing", limits=(), content=b"{}", headers=dict)
    )
    assert resp.status_code == 500 and route.call_count == 1 and t.sleeps == []


@respx.mock
def test_write_failures_say_whether_the_request_may_have_been_sent() -> None:
    """ConnectError → request_sent False; ReadTimeout after sending → request_sent True."""
    route = respx.post(URL).mock(
        side_effect=[httpx.ConnectError("refused"), httpx.ReadTimeout("slow")]
    )
    tr = make_transport(FakeTime())
    for expected in (False, True):
        with pytest.raises(TransportError) as info:
            run(lambda: tr.write("POST", URL, route="r", limits=(), content=b"{}", headers=dict))
        assert info.value.request_sent is expected
    assert route.call_count == 2


def test_safe_url_masks_sensitive_query_values() -> None:
    """Log URLs keep ids and addresses but mask anything that looks like a credential."""
    url = "https://clob.example/x?token_id=1&user=0xabc&secret=s3cr3t&passphrase=pp"
    out = safe_url(url)
    assert "s3cr3t" not in out and "pp" not in out.split("passphrase=")[1][:3]
    assert "token_id=1" in out and "user=0xabc" in out


def test_wake_batch_groups_waiters_without_raising_the_rate() -> None:
    """With wake_batch=4 a drained bucket lets waiters go 4 at a time, at the same average rate."""
    import asyncio

    from wire.transport import BucketSpec, TokenBucket

    now = [0.0]
    sleeps: list[float] = []

    async def sleep(d: float) -> None:
        sleeps.append(d)
        now[0] += d

    bucket = TokenBucket(BucketSpec(4, 40), clock=lambda: now[0], sleep=sleep, wake_batch=4)

    async def run() -> list[float]:
        times = []
        for _ in range(12):
            await bucket.acquire()
            times.append(now[0])
        return times

    times = asyncio.run(run())
    assert times[:4] == [0.0] * 4  # the burst
    assert times[4:8] == [times[4]] * 4 and times[8:] == [times[8]] * 4  # groups of 4
    assert abs(times[4] - 0.1) < 1e-9 and abs(times[8] - 0.2) < 1e-9  # 4 tokens / 40 per s
    assert len(sleeps) == 2


# -- Connection reuse ------------------------------------------------------------------------


def test_many_requests_in_flight_keep_their_connections_over_http11() -> None:
    """Two rounds of 32 concurrent writes over HTTP/1.1 (loopback): the second round reuses the
    first round's connections. (With httpcore's keep-alive cap at 20 the pool closed its idle
    connections once it held more than 20, and every round reconnected.)"""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    connections: list[int] = []
    arrived = threading.Barrier(32, timeout=10)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            connections.append(1)

        def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
            self.rfile.read(int(self.headers["Content-Length"]))
            arrived.wait()  # all 32 in flight at once: 32 connections
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 64  # 32 connections arrive at once

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/order"

    async def body() -> list[int]:
        transport = Transport(http2=False)
        counts = []
        try:
            for _ in range(2):
                await asyncio.gather(*(transport.write("POST", url, route="/order", limits=(), content=b"{}",
                                                       headers=dict)
                                       for _ in range(32)))
                counts.append(len(connections))
        finally:
            await transport.aclose()
        return counts

    try:
        assert run(body) == [32, 32]
    finally:
        server.shutdown()
        server.server_close()
