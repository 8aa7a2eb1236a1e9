"""A lean HTTP/1.1 keep-alive transport for httpx, for the watcher's many small GETs.

httpx's default transport (httpcore + anyio + h11) spends ~1 ms of CPU per request when requests
come a few at a time, as a rate-limited poller sends them; this one parses responses in a single
asyncio Protocol and costs a fraction of that. It serves idempotent requests (GET, HEAD) only:
anything else is refused, so orders and cancels always go through httpx's own transport. A
request that fails on a reused idle connection before any response byte arrived is retried once
on a fresh connection (the server closed the idle socket); every other failure surfaces as the
httpx exception the default transport would raise, so the caller's retry policy is unchanged.
The read timeout bounds the wait for the whole response (the watcher's responses are small).
Proxies are not supported (see `env_proxy_configured`); one instance serves one event loop.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx

IDEMPOTENT = frozenset({"GET", "HEAD"})
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024
_CRLF2 = b"\r\n\r\n"


class _ProtocolError(Exception):
    """The server's bytes are not a valid HTTP/1.1 response."""


@dataclass
class _Parsed:
    status: int = 0
    reason: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    keep_alive: bool = True


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; parses one response at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._waiter: asyncio.Future[_Parsed] | None = None
        self._head_only = False
        self._parsed: _Parsed | None = None
        self._length: int | None = None  # body bytes expected (Content-Length)
        self._chunked = False
        self._until_close = False
        self.closed = False
        self.received_any = False
        self.idle_since = 0.0

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # noqa: D102
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:  # noqa: D102
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: the connection can't be trusted any more
            return
        self.received_any = True
        self._buf += data
        try:
            self._advance()
        except _ProtocolError as exc:
            self._fail(exc)

    def eof_received(self) -> bool:  # noqa: D102
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: D102
        self.closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if self._until_close and self._parsed is not None:
                self._parsed.body = bytes(self._buf)
                self._parsed.keep_alive = False
                waiter.set_result(self._parsed)
            else:
                waiter.set_exception(ConnectionResetError("server closed the connection"))

    # -- requests ---------------------------------------------------------------------------

    def start(self, payload: bytes, *, head_only: bool) -> asyncio.Future[_Parsed]:
        """Send one request's bytes; the returned future resolves with the parsed response."""
        assert self.transport is not None
        self._buf.clear()
        self._parsed, self._length, self._chunked, self._until_close = None, None, False, False
        self._head_only = head_only
        self.received_any = False
        self._waiter = self._loop.create_future()
        self.transport.write(payload)
        return self._waiter

    def close(self) -> None:
        """Close the socket (idempotent)."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        self.close()

    def _advance(self) -> None:
        if self._parsed is None:
            end = self._buf.find(_CRLF2)
            if end < 0:
                if len(self._buf) > MAX_HEADER_BYTES:
                    raise _ProtocolError("response headers too large")
                return
            self._parsed = self._parse_head(bytes(self._buf[:end]))
            del self._buf[: end + 4]
            if 100 <= self._parsed.status < 200:  # interim response: wait for the real one
                self._parsed, self._length, self._chunked, self._until_close = None, None, False, False
                self._advance()
                return
        if self._chunked:
            self._advance_chunked()
        elif self._length is not None:
            if len(self._buf) >= self._length:
                self._finish(bytes(self._buf[: self._length]), extra=len(self._buf) > self._length)
        elif len(self._buf) > MAX_BODY_BYTES:
            raise _ProtocolError("response body too large")

    def _parse_head(self, head: bytes) -> _Parsed:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise _ProtocolError(f"bad status line {lines[0][:80]!r}")
        parsed = _Parsed(status=int(parts[1]), reason=parts[2] if len(parts) > 2 else b"")
        connection = b""
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise _ProtocolError(f"bad header line {line[:80]!r}")
            value = value.strip()
            parsed.headers.append((name, value))
            lname = name.lower()
            if lname == b"content-length":
                if not value.isdigit() or (self._length is not None and self._length != int(value)):
                    raise _ProtocolError("bad Content-Length")
                self._length = int(value)
            elif lname == b"transfer-encoding":
                if value.lower() != b"chunked":
                    raise _ProtocolError(f"unsupported Transfer-Encoding {value[:40]!r}")
                self._chunked = True
            elif lname == b"connection":
                connection = value.lower()
        if self._length is not None and self._length > MAX_BODY_BYTES:
            raise _ProtocolError("response body too large")
        parsed.keep_alive = parts[0] == b"HTTP/1.1" and b"close" not in connection
        no_body = self._head_only or parsed.status in (204, 304) or 100 <= parsed.status < 200
        if no_body:
            self._length, self._chunked = 0, False
        elif self._chunked:
            self._length = None
            self._chunk_body = bytearray()
        elif self._length is None:
            self._until_close = True
            parsed.keep_alive = False
        return parsed

    def _advance_chunked(self) -> None:
        buf = self._buf
        while True:
            eol = buf.find(b"\r\n")
            if eol < 0:
                if len(buf) > 1024:
                    raise _ProtocolError("bad chunk header")
                return
            size_text = bytes(buf[:eol]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _ProtocolError(f"bad chunk size {size_text[:20]!r}") from None
            if size == 0:
                trailer_end = buf.find(_CRLF2, eol) if buf[eol + 2: eol + 4] != b"\r\n" else eol
                if trailer_end < 0:
                    return
                self._finish(bytes(self._chunk_body), extra=len(buf) > trailer_end + 4)
                return
            if len(buf) < eol + 2 + size + 2:
                if len(self._chunk_body) + size > MAX_BODY_BYTES:
                    raise _ProtocolError("response body too large")
                return
            if buf[eol + 2 + size: eol + 4 + size] != b"\r\n":
                raise _ProtocolError("bad chunk terminator")
            self._chunk_body += buf[eol + 2: eol + 2 + size]
            del buf[: eol + 4 + size]

    def _finish(self, body: bytes, *, extra: bool) -> None:
        parsed = self._parsed
        assert parsed is not None and self._waiter is not None
        parsed.body = body
        if extra:  # bytes past the response: never reuse this connection
            parsed.keep_alive = False
        self._waiter.set_result(parsed)


Clock = Callable[[], float]


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 keep-alive connections per origin, for idempotent requests (GET, HEAD)."""

    def __init__(
        self,
        *,
        max_connections_per_origin: int = 16,
        keepalive_expiry: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        monotonic: Clock = time.monotonic,
    ) -> None:
        self._max_per_origin = max_connections_per_origin
        self._expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._monotonic = monotonic
        self._idle: dict[tuple[bytes, bytes, int], list[_Connection]] = {}
        self._slots: dict[tuple[bytes, bytes, int], asyncio.Semaphore] = {}
        self._closed = False

    def _ssl(self) -> ssl.SSLContext:
        if self._ssl_context is None:  # the same trust store as httpx (certifi, SSL_CERT_FILE)
            self._ssl_context = httpx.create_ssl_context()
            self._ssl_context.set_alpn_protocols(["http/1.1"])
        return self._ssl_context

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` on a pooled connection and return the whole response."""
        if request.method not in IDEMPOTENT:
            raise httpx.UnsupportedProtocol(
                f"KeepAliveTransport serves GET/HEAD only, not {request.method}", request=request)
        if self._closed:
            raise httpx.ConnectError("transport is closed", request=request)
        url = request.url
        scheme = url.raw_scheme
        if scheme not in (b"http", b"https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}", request=request)
        port = url.port or (443 if scheme == b"https" else 80)
        origin = (scheme, url.raw_host, port)
        timeouts = request.extensions.get("timeout", {})
        body = b"".join([part async for part in request.stream])  # type: ignore[union-attr]
        payload = _request_bytes(request, body)
        slots = self._slots.get(origin)
        if slots is None:
            slots = self._slots[origin] = asyncio.Semaphore(self._max_per_origin)
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no free connection", request=request) from None
        try:
            parsed = await self._exchange(origin, request, payload, timeouts)
        finally:
            slots.release()
        return httpx.Response(
            parsed.status,
            headers=parsed.headers,
            stream=httpx.ByteStream(parsed.body),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": parsed.reason},
        )

    async def _exchange(self, origin: tuple[bytes, bytes, int], request: httpx.Request,
                        payload: bytes, timeouts: dict[str, float | None]) -> _Parsed:
        head_only = request.method == "HEAD"
        conn = self._take_idle(origin)
        if conn is not None:
            try:
                return await self._round_trip(conn, origin, request, payload, timeouts, head_only)
            except _StaleConnection:
                pass  # the server had closed the idle socket: once more on a new connection
        conn = await self._connect(origin, request, timeouts.get("connect"))
        try:
            return await self._round_trip(conn, origin, request, payload, timeouts, head_only)
        except _StaleConnection as exc:
            raise httpx.RemoteProtocolError("server closed the connection without a response",
                                            request=request) from exc.__cause__

    async def _round_trip(self, conn: _Connection, origin: tuple[bytes, bytes, int],
                          request: httpx.Request, payload: bytes,
                          timeouts: dict[str, float | None], head_only: bool) -> _Parsed:
        waiter = conn.start(payload, head_only=head_only)
        try:
            async with asyncio.timeout(timeouts.get("read")):
                parsed = await waiter
        except TimeoutError:
            conn.close()
            raise httpx.ReadTimeout("timed out waiting for the response", request=request) from None
        except _ProtocolError as exc:
            conn.close()
            raise httpx.RemoteProtocolError(str(exc), request=request) from None
        except OSError as exc:
            conn.close()
            if not conn.received_any:
                raise _StaleConnection() from exc
            raise httpx.ReadError(f"connection lost mid-response: {exc}", request=request) from None
        except BaseException:
            conn.close()  # cancelled mid-request: the connection's state is unknown
            raise
        if parsed.keep_alive and not conn.closed and not self._closed:
            conn.idle_since = self._monotonic()
            self._idle.setdefault(origin, []).append(conn)
        else:
            conn.close()
        return parsed

    def _take_idle(self, origin: tuple[bytes, bytes, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        now = self._monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self._expiry:
                return conn
            conn.close()
        return None

    async def _connect(self, origin: tuple[bytes, bytes, int], request: httpx.Request,
                       timeout: float | None) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        host_text = host.decode("ascii")
        tls = self._ssl() if scheme == b"https" else None
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop), host_text, port, ssl=tls,
                    server_hostname=host_text if tls else None)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connect to {host_text}:{port} timed out",
                                       request=request) from None
        except OSError as exc:
            raise httpx.ConnectError(f"connect to {host_text}:{port} failed: {exc}",
                                     request=request) from None
        return conn

    async def aclose(self) -> None:
        """Close every idle connection; later requests are refused."""
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()


def env_proxy_configured(environ: Mapping[str, str] | None = None) -> bool:
    """True when an HTTP(S)/ALL proxy variable is set; this transport does not speak proxies."""
    env = os.environ if environ is None else environ
    return any(env.get(name) for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
                                          "ALL_PROXY", "all_proxy"))


class _StaleConnection(Exception):
    """A reused connection died before any response byte: safe to resend an idempotent request."""


def _request_bytes(request: httpx.Request, body: bytes) -> bytes:
    url = request.url
    target = url.raw_path or b"/"
    lines = [request.method.encode("ascii") + b" " + target + b" HTTP/1.1"]
    has_host = False
    for name, value in request.headers.raw:
        lname = name.lower()
        if lname == b"host":
            has_host = True
        if lname in (b"connection", b"transfer-encoding", b"content-length"):
            continue
        if b"\r" in value or b"\n" in value:
            raise httpx.LocalProtocolError("header value holds a line break", request=request)
        lines.append(name + b": " + value)
    if not has_host:
        lines.insert(1, b"Host: " + url.netloc)
    if body:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + _CRLF2 + body
