"""The errors raised by the Polymarket HTTP client where an outcome value does not fit.

    PolymarketError
     ├── TransportError      no usable HTTP response (connect/read/write failure, timeout)
     ├── ApiError            an HTTP error status; .status .code .message .retryable .trace_id
     │    ├── RateLimitError   429 (or a client-side refusal to wait longer than allowed)
     │    └── RestrictedError  425 engine restarting / 503 halted, cancel-only, post-only
     └── ParseError          a success response whose body is not the documented shape

Order placement (`post_order`) never raises these for venue answers: it returns a
`PostOutcome` (see pm_records). Error messages carry the route and the server's text,
never request headers, credentials or signatures.
"""

from __future__ import annotations

from infra.errors import VenueError


class PolymarketError(VenueError):
    """Base class for every error raised by the Polymarket client."""


class TransportError(PolymarketError):
    """No usable HTTP response: connection, read/write failure or timeout."""

    def __init__(self, message: str, *, request_sent: bool = True) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class ApiError(PolymarketError):
    """The server answered with an error status (4xx/5xx)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        retryable: bool | None = None,
        trace_id: str | None = None,
        parameter: str | None = None,
        retry_after: float | None = None,
        route: str = "",
    ) -> None:
        self.status = status
        self.message = message
        self.code = code
        self.retryable = retryable
        self.trace_id = trace_id
        self.parameter = parameter
        self.retry_after = retry_after
        self.route = route
        parts = [f"HTTP {status}"]
        if route:
            parts.append(route)
        if code:
            parts.append(f"[{code}]")
        parts.append(message)
        if trace_id:
            parts.append(f"(trace {trace_id})")
        super().__init__(" ".join(parts))


class RateLimitError(ApiError):
    """HTTP 429, or a wait the client refuses because Retry-After exceeds its cap."""


class RestrictedError(ApiError):
    """Trading restriction: kind is restarting (425), halted, cancel_only or post_only (503)."""

    def __init__(self, status: int, message: str, *, kind: str, **kwargs: object) -> None:
        self.kind = kind
        super().__init__(status, message, **kwargs)  # type: ignore[arg-type]


class ParseError(PolymarketError):
    """A response body that does not have the documented shape."""


def error_class(exc: BaseException) -> str:
    """'429', '4xx', '5xx', 'transport', 'parse' or 'other' for an HTTP failure (a metric label)."""
    if isinstance(exc, RateLimitError):
        return "429"
    if isinstance(exc, ApiError):
        return "5xx" if exc.status >= 500 else "4xx"
    if isinstance(exc, TransportError):
        return "transport"
    if isinstance(exc, ParseError):
        return "parse"
    return "other"


class HeartbeatRejected(PolymarketError):
    """POST /v1/heartbeats refused the id; `expected` is the id the venue wants next (the caller
    sends again with it: an answer to act on, not a failure)."""

    def __init__(self, expected: str) -> None:
        super().__init__("Invalid Heartbeat ID")
        self.expected = expected
