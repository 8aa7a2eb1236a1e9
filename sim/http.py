"""HTTP plumbing: one keep-alive `ThreadingHTTPServer` per service on 127.0.0.1, regex routing,
fault injection at the socket edge, and single-write JSON responses.

Invariants:
- servers bind 127.0.0.1 only;
- a handler runs with the world lock held and after `engine.refresh`, so it sees the simulated
  clock's due events applied; faults are decided before the lock (a delay never blocks others);
- each response is written with one `sendall` (status line, headers and body) with Nagle off,
  so keep-alive clients never wait on delayed ACKs;
- an unexpected exception becomes a 500 and is kept in `errors` for tests to assert on.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, urlsplit

from sim import engine
from sim.faults import Fault, fault_reply

if TYPE_CHECKING:
    from sim.core import Simulator

HOST = "127.0.0.1"


@dataclass
class Request:
    """One parsed HTTP request."""

    service: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes

    def param(self, name: str) -> str | None:
        """Last value of a query parameter, or None."""
        values = self.query.get(name)
        return values[-1] if values else None

    def params(self, name: str) -> list[str]:
        """All values of a repeated query parameter."""
        return list(self.query.get(name, []))

    @property
    def text(self) -> str:
        """The body as text (utf-8)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (raises `HttpError` 400 when it is not JSON)."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError as exc:
            raise HttpError(400, {"error": "Invalid payload"}) from exc


@dataclass
class Response:
    """A JSON (or raw) HTTP response."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None

    def payload(self) -> bytes:
        """The bytes of the body."""
        if self.raw is not None:
            return self.raw
        return json.dumps(self.body, separators=(",", ":")).encode()


class HttpError(Exception):
    """Raised by a handler to answer with an error response."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(str(body))
        self.response = Response(status, body, headers or {})


Handler = Callable[..., Response]
METHOD_NOT_ALLOWED = object()


class Router:
    """Method + regex path → handler(sim, request, **path_groups)."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        """Register a route; `pattern` must match the whole path."""
        self._routes.append((method, re.compile(pattern + r"\Z"), handler))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | object | None:
        """The handler and path groups, METHOD_NOT_ALLOWED, or None when no path matches."""
        path_known = False
        for m, rx, handler in self._routes:
            found = rx.match(path)
            if found:
                if m == method:
                    return handler, found.groupdict()
                path_known = True
        return METHOD_NOT_ALLOWED if path_known else None


@dataclass
class ServiceApp:
    """One service (data, gamma or clob): its router and error-body style."""

    name: str
    router: Router
    sim: Simulator
    not_found: Callable[[str], Response]

    def handle(self, req: Request) -> Response:
        """Route, lock the world, apply due events, run the handler."""
        found = self.router.match(req.method, req.path)
        if found is None:
            return self.not_found(req.path)
        if found is METHOD_NOT_ALLOWED:
            return Response(405, {"error": "method not allowed"})
        handler, groups = cast(tuple[Handler, dict[str, str]], found)
        world = self.sim.world
        if getattr(world.config, f"{self.name}_down", False) and not req.path.startswith("/_sim/"):
            return Response(503, {"error": f"{self.name} unavailable (simulated outage)"})
        with world.lock:
            try:
                engine.refresh(world)
                resp = handler(self.sim, req, **groups)
            except HttpError as exc:
                resp = exc.response
            except Exception:  # a simulator bug: answer 500 and keep the traceback for tests
                self.sim.errors.append(traceback.format_exc())
                resp = Response(500, {"error": "internal simulator error"})
            key = f"{self.name} {req.method} {req.path}"
            world.request_counts[key] = world.request_counts.get(key, 0) + 1
            world.requests.append(
                {
                    "time": world.clock.now(),
                    "service": self.name,
                    "method": req.method,
                    "path": req.path,
                    "status": resp.status,
                }
            )
        return resp


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pmct-sim"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence per-request logging (the world keeps a request log)."""

    def _dispatch(self) -> None:
        app = self.server.app
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        url = urlsplit(self.path)
        req = Request(
            app.name,
            self.command,
            url.path,
            parse_qs(url.query, keep_blank_values=True),
            self.headers,
            body,
        )
        fault: Fault | None = None
        if not url.path.startswith("/_sim/"):
            fault = app.sim.faults.take(app.name, self.command, url.path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.kind == "drop":
                self._drop()
                return
            if fault.kind in ("429", "5xx"):
                self._send(Response(*fault_reply(fault, app.name)))
                return
        resp = app.handle(req)
        if fault is not None and fault.kind == "accept_then_drop":
            self._drop()
            return
        if fault is not None and fault.kind == "accept_then_5xx":
            resp = Response(*fault_reply(fault, app.name))
        self._send(resp)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _dispatch

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, resp: Response) -> None:
        payload = resp.payload()
        try:
            phrase = HTTPStatus(resp.status).phrase
        except ValueError:
            phrase = ""
        lines = [
            f"HTTP/1.1 {resp.status} {phrase}",
            "Content-Type: application/json",
            f"Content-Length: {len(payload)}",
        ]
        lines += [f"{k}: {v}" for k, v in resp.headers.items()]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + payload)
        except OSError:
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, port: int, app: ServiceApp) -> None:
        self.app = app
        super().__init__((HOST, port), _Handler)


class ServiceServer:
    """A running service server in a background thread."""

    def __init__(self, app: ServiceApp, port: int = 0) -> None:
        self.app = app
        self._server = _Server(port, app)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"sim-{app.name}",
            daemon=True,
        )

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:54321."""
        host, port = self._server.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{host_text}:{port}"

    def start(self) -> None:
        """Serve in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
