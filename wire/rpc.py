"""A small JSON-RPC 2.0 client for a Polygon node over HTTP (httpx POST), with batches.

Provider errors are classified (`RpcErrorKind`): a block range too large, too many results, rate
limited, or other, from the error code, the message wording the common providers use (Infura,
Alchemy, QuickNode, BlockPI, thirdweb, geth/erigon-style nodes) and the HTTP status. A provider's
suggested range or limit, when its message carries one, is parsed into `RpcError.suggested_to` /
`RpcError.limit` so a caller can shrink the next query at once.

Invariants: every call goes through one client-side token bucket (a batch of N calls takes N
tokens: providers bill each call), so this process never exceeds the configured rate; nothing
is retried here (the caller decides: a chain follower backs off, a query too large is split);
a malformed answer is an `RpcError(kind=OTHER)`, never a crash. Nothing Polymarket-specific
lives here except what callers pass in. This client never uses the watcher's GET-only keep-alive
transport: JSON-RPC is POST.
"""

from __future__ import annotations

import asyncio
import enum
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from infra.errors import VenueError
from wire.transport import BucketSpec, Clock, Sleep, TokenBucket

DEFAULT_RPC_TIMEOUT = httpx.Timeout(10.0, connect=5.0, pool=5.0)


class RpcErrorKind(enum.StrEnum):
    """What a failed JSON-RPC call means for the caller."""

    RANGE_TOO_LARGE = "range_too_large"  # shrink the block range
    TOO_MANY_RESULTS = "too_many_results"  # shrink the range, then the address list
    RATE_LIMITED = "rate_limited"  # back off
    TRANSPORT = "transport"  # no usable answer (connect/read failure, timeout, 5xx)
    OTHER = "other"


class RpcError(VenueError):
    """A JSON-RPC failure, classified; message never carries request bodies or URLs' secrets."""

    def __init__(self, kind: RpcErrorKind, message: str, *, code: int | None = None,
                 http_status: int | None = None, retry_after: float | None = None,
                 limit: int | None = None, suggested_to: int | None = None) -> None:
        self.kind = kind
        self.message = message
        self.code = code
        self.http_status = http_status
        self.retry_after = retry_after
        self.limit = limit
        self.suggested_to = suggested_to
        bits = [kind.value]
        if http_status is not None:
            bits.append(f"HTTP {http_status}")
        if code is not None:
            bits.append(f"code {code}")
        super().__init__(f"{' '.join(bits)}: {message[:300]}")


    @property
    def already_known(self) -> bool:
        """eth_sendRawTransaction: the node has this very transaction already (the same bytes again)."""
        return any(text in self.message.lower() for text in _ALREADY_KNOWN)

    @property
    def nonce_too_low(self) -> bool:
        """eth_sendRawTransaction: the sender's nonce moved past this one (mined, or replaced)."""
        return any(text in self.message.lower() for text in _NONCE_TOO_LOW)


_ALREADY_KNOWN = ("already known", "known transaction", "already imported")
_NONCE_TOO_LOW = ("nonce too low", "nonce is too low")

# Wording of provider errors (lower-case substrings), most specific first.
_RANGE_PATTERNS = (
    "block range", "range is too large", "range too large", "exceeds limit of",
    "exceeds max block range", "query exceeds max block range", "is limited to",
    "maximum allowed number of requested blocks", "ranges over", "range too high",
    "too wide", "bigger than", "block range is too wide", "up to a",
)
_RESULT_PATTERNS = (
    "query returned more than", "response size exceeded", "log response size",
    "max results", "too many results", "result window", "logs matched by query exceeds",
    "response is too big", "response size should not",
)
_RATE_PATTERNS = (
    "rate limit", "too many requests", "request rate", "exceeded project rate",
    "over rate limit", "capacity", "throughput", "daily request count", "compute units",
)
_HEX_RANGE = re.compile(r"\[\s*(0x[0-9a-fA-F]+)\s*,\s*(0x[0-9a-fA-F]+)\s*\]")
_DEC_RANGE = re.compile(r"range\s+(\d+)\s*-\s*(\d+)")
_LIMIT_NUMBER = re.compile(
    r"(?:max(?:imum)?(?: block range)?(?: is)?|limit(?:ed)? (?:of|to)(?: a)?|up to a|"
    r"requested blocks is|ranges over|maximum)\s*([\d,]+)\s*(k)?",
)


def classify_rpc_error(code: int | None, message: str, data: Any = None,
                       http_status: int | None = None) -> RpcErrorKind:
    """Classify a provider error from its JSON-RPC code, message, data and HTTP status."""
    text = f"{message} {json.dumps(data) if data is not None else ''}".lower()
    if http_status == 429 or code in (-32029, -32016, 429):
        return RpcErrorKind.RATE_LIMITED
    if any(p in text for p in _RATE_PATTERNS):
        return RpcErrorKind.RATE_LIMITED
    if any(p in text for p in _RESULT_PATTERNS):
        return RpcErrorKind.TOO_MANY_RESULTS
    if any(p in text for p in _RANGE_PATTERNS) and ("range" in text or "blocks" in text):
        return RpcErrorKind.RANGE_TOO_LARGE
    if code == -32005 and "limit" in text:  # Infura's "limit exceeded" family
        return RpcErrorKind.RATE_LIMITED
    if http_status is not None and http_status >= 500:
        return RpcErrorKind.TRANSPORT
    return RpcErrorKind.OTHER


def suggested_range_end(message: str, data: Any = None) -> int | None:
    """The end block of a range the provider suggests ("[0x…, 0x…]" or "range a-b"), if any."""
    if isinstance(data, Mapping) and isinstance(data.get("to"), str):
        try:
            return int(str(data["to"]), 16)
        except ValueError:
            pass
    found = _HEX_RANGE.search(message)
    if found:
        return int(found.group(2), 16)
    found = _DEC_RANGE.search(message.lower())
    if found:
        return int(found.group(2))
    return None


def range_limit(message: str) -> int | None:
    """The block-range cap a provider's message states ("max is 1k blocks" → 1000), if any."""
    found = _LIMIT_NUMBER.search(message.lower())
    if not found:
        return None
    value = int(found.group(1).replace(",", ""))
    return value * 1000 if found.group(2) else value


def _retry_after(headers: httpx.Headers | None, data: Any) -> float | None:
    if isinstance(data, Mapping):
        rate = data.get("rate")
        if isinstance(rate, Mapping) and isinstance(rate.get("backoff_seconds"), int | float):
            return float(rate["backoff_seconds"])
        if isinstance(data.get("backoff_seconds"), int | float):
            return float(data["backoff_seconds"])
    if headers is not None:
        text = headers.get("retry-after")
        if text and text.strip().isdigit():
            return float(text.strip())
    return None


def error_from_object(error: Any, http_status: int | None = None,
                      headers: httpx.Headers | None = None) -> RpcError:
    """An `RpcError` from a JSON-RPC `error` member."""
    if not isinstance(error, Mapping):
        return RpcError(RpcErrorKind.OTHER, f"malformed error member {str(error)[:100]}",
                        http_status=http_status)
    code = error.get("code") if isinstance(error.get("code"), int) else None
    message = str(error.get("message", ""))
    data = error.get("data")
    if isinstance(data, Mapping) and isinstance(data.get("payload"), str):
        message = f"{message} {data['payload']}"
    kind = classify_rpc_error(code, message, data, http_status)
    limit = range_limit(message) if kind is RpcErrorKind.RANGE_TOO_LARGE else None
    if kind is RpcErrorKind.TOO_MANY_RESULTS and isinstance(data, Mapping) and isinstance(
            data.get("limit"), int):
        limit = int(data["limit"])
    return RpcError(kind, message, code=code, http_status=http_status,
                    retry_after=_retry_after(headers, data), limit=limit,
                    suggested_to=suggested_range_end(message, data))


@dataclass(frozen=True)
class BlockHeader:
    """The fields of a block the chain follower needs."""

    number: int
    hash: str
    parent_hash: str
    timestamp: int

    @classmethod
    def from_json(cls, block: Any) -> BlockHeader:
        """Parse an eth_getBlockByNumber / newHeads object (RpcError when malformed)."""
        try:
            return cls(number=int(block["number"], 16), hash=str(block["hash"]).lower(),
                       parent_hash=str(block["parentHash"]).lower(),
                       timestamp=int(block["timestamp"], 16))
        except (KeyError, TypeError, ValueError):
            raise RpcError(RpcErrorKind.OTHER, f"malformed block {str(block)[:120]}") from None


def hex_quantity(value: int) -> str:
    """An int as a JSON-RPC quantity."""
    return hex(value)


@dataclass(frozen=True)
class Call:
    """One JSON-RPC call of a batch; `params_json` is pre-serialized JSON (cheap to resend)."""

    method: str
    params_json: str

    @classmethod
    def of(cls, method: str, params: Sequence[Any]) -> Call:
        """Build from Python params."""
        return cls(method, json.dumps(list(params), separators=(",", ":")))


class JsonRpcClient:
    """Async JSON-RPC over HTTP POST: single calls and batches, rate-limited, errors classified."""

    def __init__(self, url: str, *, client: httpx.AsyncClient | None = None,
                 timeout: httpx.Timeout = DEFAULT_RPC_TIMEOUT, max_rps: float = 10.0,
                 burst: float | None = None, monotonic: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.url = url
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=timeout, follow_redirects=False,
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=4, keepalive_expiry=30),
            headers={"Content-Type": "application/json"})
        cap = burst if burst is not None else max(1.0, max_rps)
        self._bucket = TokenBucket(BucketSpec(capacity=cap, rate=max_rps), clock=monotonic,
                                   sleep=sleep)
        self._next_id = 1
        self.calls_sent = 0
        self.requests_sent = 0

    async def aclose(self) -> None:
        """Close the connection pool if this client made it."""
        if self._owns_client:
            await self._client.aclose()

    async def _post(self, body: bytes, cost: int) -> Any:
        await self._bucket.acquire(min(float(cost), self._bucket.spec.capacity))
        self.requests_sent += 1
        self.calls_sent += cost
        try:
            response = await self._client.post(self.url, content=body,
                                               headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            raise RpcError(RpcErrorKind.TRANSPORT, type(exc).__name__) from exc
        status = response.status_code
        try:
            payload = json.loads(response.content) if response.content else None
        except ValueError:
            payload = None
        if status != 200:
            if isinstance(payload, Mapping) and isinstance(payload.get("error"), Mapping):
                raise error_from_object(payload["error"], status, response.headers)
            kind = (RpcErrorKind.RATE_LIMITED if status == 429 else
                    RpcErrorKind.TRANSPORT if status >= 500 else RpcErrorKind.OTHER)
            raise RpcError(kind, f"HTTP {status}", http_status=status,
                           retry_after=_retry_after(response.headers, None))
        if payload is None:
            raise RpcError(RpcErrorKind.OTHER, "answer is not JSON")
        return payload

    def _ids(self, n: int) -> range:
        first = self._next_id
        self._next_id += n
        return range(first, first + n)

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        """One call; returns its result or raises RpcError."""
        return (await self.batch([Call.of(method, params)], raise_errors=True))[0]

    async def batch(self, calls: Sequence[Call], *, raise_errors: bool = False) -> list[Any]:
        """Send calls as one JSON-RPC batch (one call: a plain request); results in order.

        A failed call's slot holds its RpcError (or it is raised with `raise_errors`). A batch
        the provider refuses as a whole raises.
        """
        if not calls:
            return []
        ids = self._ids(len(calls))
        parts = [f'{{"jsonrpc":"2.0","id":{i},"method":"{c.method}","params":{c.params_json}}}'
                 for i, c in zip(ids, calls, strict=True)]
        single = len(calls) == 1
        body = (parts[0] if single else "[" + ",".join(parts) + "]").encode()
        payload = await self._post(body, len(calls))
        answers = [payload] if single and isinstance(payload, Mapping) else payload
        if isinstance(payload, Mapping) and not single:
            # a batch answered with one error object: the provider refused the whole batch
            raise error_from_object(payload.get("error"))
        if not isinstance(answers, list):
            raise RpcError(RpcErrorKind.OTHER, "batch answer is not a list")
        by_id: dict[Any, Any] = {a.get("id"): a for a in answers if isinstance(a, Mapping)}
        out: list[Any] = []
        for i in ids:
            answer = by_id.get(i)
            if answer is None:
                result: Any = RpcError(RpcErrorKind.OTHER, f"no answer for call {i}")
            elif "error" in answer and answer["error"] is not None:
                result = error_from_object(answer["error"])
            elif "result" not in answer:
                result = RpcError(RpcErrorKind.OTHER, "answer has neither result nor error")
            else:
                result = answer["result"]
            if raise_errors and isinstance(result, RpcError):
                raise result
            out.append(result)
        return out

    async def chain_id(self) -> int:
        """eth_chainId."""
        return _int(await self.call("eth_chainId"), "eth_chainId")

    async def block_number(self) -> int:
        """eth_blockNumber."""
        return _int(await self.call("eth_blockNumber"), "eth_blockNumber")

    async def block(self, number: int | str = "latest") -> BlockHeader | None:
        """eth_getBlockByNumber (header only); None when the node does not have it."""
        tag = hex_quantity(number) if isinstance(number, int) else number
        found = await self.call("eth_getBlockByNumber", [tag, False])
        return None if found is None else BlockHeader.from_json(found)

    async def get_logs(self, flt: Mapping[str, Any]) -> list[dict[str, Any]]:
        """eth_getLogs with a filter object (addresses, topics, fromBlock/toBlock or blockHash)."""
        result = await self.call("eth_getLogs", [dict(flt)])
        if not isinstance(result, list):
            raise RpcError(RpcErrorKind.OTHER, "eth_getLogs result is not a list")
        return result


def _int(value: Any, what: str) -> int:
    if not isinstance(value, str):
        raise RpcError(RpcErrorKind.OTHER, f"{what} answered {str(value)[:60]}")
    try:
        return int(value, 16)
    except ValueError:
        raise RpcError(RpcErrorKind.OTHER, f"{what} answered {value[:60]}") from None


def logs_filter_json(addresses: Sequence[str], topics: Sequence[Any]) -> str:
    """The constant part of an eth_getLogs filter, pre-serialized (without the block range)."""
    return json.dumps({"address": [a.lower() for a in addresses], "topics": list(topics)},
                      separators=(",", ":"))[1:-1]


def logs_call(filter_json: str, from_block: int, to_block: int) -> Call:
    """An eth_getLogs call from a pre-serialized filter body and a block range."""
    return Call("eth_getLogs", f'[{{"fromBlock":"{hex(from_block)}","toBlock":"{hex(to_block)}",'
                               f'{filter_json}}}]')
