"""Control & inspection API over HTTP, on the CLOB port under /_sim/.

`POST /_sim/<method>` with a JSON object of keyword arguments calls `Simulator.<method>`;
`GET /_sim/<method>?k=v` does the same with query arguments (strings). The answer is
`{"result": ...}`, or 400 `{"error": ...}` when the arguments are wrong. `RemoteSimulator`
is the client for a simulator running in another process.

Invariant: only methods marked `@controlled` (plus the fault methods) are reachable; nothing
here bypasses the world lock.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from sim.http import HttpError, Request, Response, Router

if TYPE_CHECKING:
    from sim.core import Simulator

# Names of the Simulator methods reachable over HTTP; sim.core's `@controlled` fills it.
CONTROL_METHODS: set[str] = set()


def _call(sim: Simulator, req: Request, method: str) -> Response:
    if method not in CONTROL_METHODS:
        raise HttpError(404, {"error": f"unknown control method {method!r}"})
    if req.method == "GET":
        kwargs: dict[str, Any] = {k: v[-1] for k, v in req.query.items()}
    else:
        body = req.json()
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise HttpError(400, {"error": "control calls take a JSON object of keyword arguments"})
        kwargs = body
    try:
        result = getattr(sim, method)(**kwargs)
    except (TypeError, ValueError, KeyError) as exc:
        raise HttpError(400, {"error": f"{type(exc).__name__}: {exc}"}) from exc
    return Response(200, {"result": result})


def add_routes(router: Router) -> Router:
    """Attach /_sim/<method> (GET and POST) to a router."""
    router.add("GET", r"/_sim/(?P<method>[a-z_]+)", _call)
    router.add("POST", r"/_sim/(?P<method>[a-z_]+)", _call)
    return router


class RemoteSimulator:
    """Drive a simulator in another process: `remote.fund(address=..., pusd="100")` etc."""

    def __init__(
        self, clob_url: str, data_url: str = "", gamma_url: str = "", timeout: float = 10.0
    ) -> None:
        self.clob_url = clob_url.rstrip("/")
        self.data_url = data_url
        self.gamma_url = gamma_url
        self.timeout = timeout

    def call(self, method: str, /, **kwargs: Any) -> Any:
        """Invoke a control method and return its result (raises RuntimeError on a 4xx/5xx).
        `method` is positional-only: `inject_fault` takes a `method` argument of its own."""
        data = json.dumps(kwargs).encode()
        if not self.clob_url.startswith(("http://", "https://")):
            raise ValueError("the control URL must be http(s)")
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            f"{self.clob_url}/_sim/{method}",
            data=data,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:  # noqa: S310 - loopback URL
                return json.loads(resp.read())["result"]
        except urllib.error.HTTPError as exc:
            raise RuntimeError(
                f"control call {method} failed: {exc.code} {exc.read().decode()}"
            ) from exc

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_"):
            raise AttributeError(method)
        return lambda **kwargs: self.call(method, **kwargs)
