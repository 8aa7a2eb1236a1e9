"""A tiny threaded HTTP server on 127.0.0.1 for the chat fakes (sim/telegram.py, sim/discord.py).

Each request is one `Request`; a subclass answers it with `route()`. Control calls (the same
methods tests call in-process) are reachable as `POST /_fake/<method>` with JSON keyword
arguments, so a fake running in the simulator's process is driven like an in-process one.
A handler may block (long polling, held sends); `stop()` releases every wait.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

HOST = "127.0.0.1"


@dataclass
class Request:
    """One HTTP request as the fakes see it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON (None when empty or not JSON)."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    def param(self, name: str) -> str | None:
        """Last value of a query parameter."""
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass
class Reply:
    """A response: status, JSON body (or none), headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeServer:
    """Base class: serve `route()` and the control methods named in `CONTROL`."""

    CONTROL: frozenset[str] = frozenset()

    def __init__(self, port: int = 0) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.stopping = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                req = Request(self.command, parts.path, parse_qs(parts.query),
                              {k.lower(): v for k, v in self.headers.items()}, body)
                try:
                    reply = fake.dispatch(req)
                except Exception as exc:  # noqa: BLE001 - a fake's bug becomes a visible 500
                    reply = Reply(500, {"error": f"{type(exc).__name__}: {exc}"})
                if reply is None:  # the connection is to be dropped without an answer
                    self.close_connection = True
                    return
                payload = b"" if reply.body is None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                if reply.body is not None:
                    self.send_header("Content-Type", "application/json")
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if payload:
                    self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_PATCH = _serve  # noqa: N815

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # many clients connect at once (socketserver's default is 5)

        self._server = Server((HOST, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT."""
        return f"http://{HOST}:{self._server.server_address[1]}"

    def start(self) -> Self:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release blocked handlers."""
        self.stopping.set()
        with self.changed:
            self.changed.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def dispatch(self, req: Request) -> Reply | None:
        """Control calls, else `route`."""
        if req.path.startswith("/_fake/"):
            name = req.path.removeprefix("/_fake/")
            if name not in self.CONTROL:
                return Reply(404, {"error": f"no control method {name}"})
            kwargs = req.json() or {}
            return Reply(200, {"result": getattr(self, name)(**kwargs)})
        return self.route(req)

    def route(self, req: Request) -> Reply | None:
        """Answer one API request (subclasses)."""
        raise NotImplementedError

    def wait_until(self, predicate: Any, timeout: float) -> bool:
        """Wait (lock held between checks) until `predicate()` or timeout/stop; its last value."""
        with self.changed:
            return bool(self.changed.wait_for(lambda: predicate() or self.stopping.is_set(),
                                              timeout=timeout)) and not self.stopping.is_set()
