"""Fault injection: the next N requests to a route misbehave in a chosen way.

Kinds: `429` (with Retry-After), `5xx` (status of your choice), `accept_then_5xx` (the request
is fully processed — an order IS placed — but the answer is a 500), `delay` (answer normally
after `delay` seconds), `drop` (close the socket without answering, nothing processed) and
`accept_then_drop` (processed, then the socket closes without an answer). Any kind may also
carry a `delay` applied first.

Invariant: each injected rule fires exactly `count` times, on the first matching requests, in
the order rules were added; control routes (/_sim/...) are never faulted.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import asdict, dataclass
from typing import Any

KINDS = ("429", "5xx", "accept_then_5xx", "delay", "drop", "accept_then_drop")


@dataclass
class Fault:
    """One injected fault rule."""

    service: str  # "clob" | "data" | "gamma"
    method: str
    path: str  # exact path, or a prefix ending in "*"
    kind: str
    remaining: int
    status: int
    retry_after: int
    delay: float
    id: str = ""

    def matches(self, service: str, method: str, path: str) -> bool:
        """True when this rule applies to the request."""
        if service != self.service or method != self.method:
            return False
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path


class FaultRegistry:
    """Thread-safe list of pending fault rules."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []

    def add(
        self,
        method: str,
        path: str,
        kind: str,
        count: int = 1,
        service: str = "clob",
        status: int | None = None,
        retry_after: int = 1,
        delay: float = 0.0,
    ) -> Fault:
        """Make the next `count` matching requests fail as `kind`."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {KINDS}")
        if service not in ("clob", "data", "gamma", "rpc"):
            raise ValueError("service must be clob, data, gamma or rpc")
        if count < 1:
            raise ValueError("count must be at least 1")
        if kind == "delay" and delay <= 0:
            raise ValueError("a delay fault needs delay > 0")
        if status is None:
            status = {"429": 429, "5xx": 500, "accept_then_5xx": 500}.get(kind, 0)
        if kind == "5xx" and not (425 <= status <= 599):
            raise ValueError("5xx faults take a status from 425 to 599")
        rule = Fault(
            service,
            method.upper(),
            path,
            kind,
            count,
            status,
            retry_after,
            float(delay),
            uuid.uuid4().hex,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def take(self, service: str, method: str, path: str) -> Fault | None:
        """The rule that fires for this request (consuming one use), or None."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(service, method, path):
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                    return rule
        return None

    def clear(self) -> None:
        """Remove every pending rule."""
        with self._lock:
            self._rules.clear()

    def pending(self) -> list[dict[str, Any]]:
        """The rules still armed."""
        with self._lock:
            return [asdict(r) for r in self._rules]


def fault_reply(fault: Fault, service: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, JSON body and headers of the error a fault produces, in the service's own style.

    sim.http wraps them in its Response (this module does not import sim.http: no cycle).
    """
    headers: dict[str, str] = {}
    if fault.kind == "429" or fault.status in (503,):
        headers["Retry-After"] = str(fault.retry_after)
    if service == "data":
        code = {429: "rate_limited", 503: "dependency_unavailable"}.get(fault.status, "internal")
        trace = uuid.uuid4().hex[:16]
        headers["x-trace-id"] = trace
        body: dict[str, Any] = {
            "error": "Too Many Requests" if fault.status == 429 else "internal error",
            "code": code,
            "retryable": fault.status in (429, 503, 500),
            "trace_id": trace,
        }
    elif fault.status == 429:
        body = {"error": "Too Many Requests"}
    elif fault.status == 425:
        body = {"error": "matching engine is restarting"}
    elif fault.status == 503:
        body = {"error": "Trading is currently disabled. Check polymarket.com for updates"}
    else:
        body = {"error": "Internal Server Error"}
    return fault.status, body, headers
