"""KeepAliveTransport against scripted loopback servers: framing, reuse, failures, TLS."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import inspect
import ipaddress
import json
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire.keepalive import KeepAliveTransport, env_proxy_configured
from wire.transport import Transport, TransportError

# A handler gets (connection index, request index on that connection, request head) and
# returns the bytes to send back as a list of pieces (ending with CLOSE to hang up after them),
# or None to close without answering.
Handler = Callable[[int, int, bytes], "list[bytes] | None | Awaitable[list[bytes] | None]"]


CLOSE = b"<close>"


def ok(body: bytes, *extra: bytes) -> list[bytes]:
    """A 200 with Content-Length."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"".join(h + b"\r\n" for h in extra)
    return [head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body]


def path_of(head: bytes) -> bytes:
    """The request target of a request head."""
    return head.split(b"\r\n", 1)[0].split(b" ")[1]


@dataclass
class Server:
    """A scripted HTTP/1.1 server on 127.0.0.1 (one per test, inside the test's event loop)."""

    handler: Handler
    tls: ssl.SSLContext | None = None
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def url(self) -> str:
        """The base URL."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = self.connections
        self.connections += 1
        n = 0
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.requests.append(head)
                reply = self.handler(index, n, head)
                pieces = await reply if inspect.isawaitable(reply) else reply
                n += 1
                if pieces is None:
                    return
                for piece in pieces:
                    if piece is CLOSE:
                        return
                    writer.write(piece)
                    await writer.drain()
                    if len(pieces) > 1:
                        await asyncio.sleep(0)
        finally:
            writer.close()


def run(coro: Awaitable[object]) -> object:
    """Run a coroutine in a fresh event loop."""
    return asyncio.run(coro)  # type: ignore[arg-type]


async def get(transport: KeepAliveTransport, url: str, **kw: object) -> httpx.Response:
    """One GET through an httpx client on `transport` (the client is not closed)."""
    client = httpx.AsyncClient(transport=transport, **kw)  # type: ignore[arg-type]
    return await client.get(url)


def test_keep_alive_reuses_one_connection_and_bodies_do_not_cross() -> None:
    async def main() -> None:
        async with Server(lambda c, n, head: ok(b'{"path": "%s"}' % path_of(head))) as srv:
            tr = KeepAliveTransport()
            async with httpx.AsyncClient(transport=tr) as client:
                for i in range(5):
                    r = await client.get(f"{srv.url}/v2/activity?user=0xab&start={i}")
                    assert r.status_code == 200
                    assert r.json() == {"path": f"/v2/activity?user=0xab&start={i}"}
            assert srv.connections == 1
            assert srv.requests[0].startswith(b"GET /v2/activity?user=0xab&start=0 HTTP/1.1\r\n")
            assert b"\r\nHost: 127.0.0.1:" in srv.requests[0]
    run(main())


def test_concurrent_requests_use_separate_connections_and_get_their_own_answers() -> None:
    async def slow(c: int, n: int, head: bytes) -> list[bytes]:
        await asyncio.sleep(0.01 * (int(path_of(head).rsplit(b"=", 1)[1]) % 3))
        return ok(path_of(head))

    async def main() -> None:
        async with Server(slow) as srv, httpx.AsyncClient(transport=KeepAliveTransport()) as client:
            for _ in range(3):
                replies = await asyncio.gather(*(client.get(f"{srv.url}/x?i={i}") for i in range(8)))
                assert [r.text for r in replies] == [f"/x?i={i}" for i in range(8)]
            assert srv.connections == 8  # 8 in flight at once, then all reused
    run(main())


def test_max_connections_per_origin_queues_the_rest() -> None:
    async def main() -> None:
        async with Server(lambda c, n, head: ok(path_of(head))) as srv:
            async with httpx.AsyncClient(transport=KeepAliveTransport(max_connections_per_origin=2)) as client:
                replies = await asyncio.gather(*(client.get(f"{srv.url}/y{i}") for i in range(10)))
            assert [r.text for r in replies] == [f"/y{i}" for i in range(10)]
            assert srv.connections == 2
    run(main())


def test_chunked_body_with_extensions_and_trailers() -> None:
    body = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"5;ext=1\r\nhello\r\n", b"1\r\n \r\n", b"5\r\nworld\r\n", b"0\r\nX-Trailer: t\r\n\r\n"]

    async def main() -> None:
        async with Server(lambda c, n, head: body) as srv, \
                httpx.AsyncClient(transport=KeepAliveTransport()) as client:
            assert (await client.get(srv.url + "/a")).text == "hello world"
            assert (await client.get(srv.url + "/b")).text == "hello world"
            assert srv.connections == 1
    run(main())


def test_gzip_body_is_decoded_by_the_client() -> None:
    payload = json.dumps([{"type": "TRADE", "size": "1.5"}]).encode()
    packed = gzip.compress(payload)

    async def main() -> None:
        async with Server(lambda c, n, head: ok(packed, b"Content-Encoding: gzip")) as srv, \
                httpx.AsyncClient(transport=KeepAliveTransport()) as client:
            r = await client.get(srv.url + "/g")
            assert r.json() == [{"type": "TRADE", "size": "1.5"}]
            assert b"accept-encoding: gzip" in srv.requests[0].lower()
    run(main())


def test_connection_close_and_http10_are_not_reused() -> None:
    replies = [ok(b"a", b"Connection: close"), [b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb"],
               ok(b"c")]

    async def main() -> None:
        async with Server(lambda c, n, head: replies[c]) as srv, \
                httpx.AsyncClient(transport=KeepAliveTransport()) as client:
            assert [(await client.get(srv.url)).text for _ in range(3)] == ["a", "b", "c"]
            assert srv.connections == 3
    run(main())


def test_body_without_length_is_read_until_close() -> None:
    async def main() -> None:
        async with Server(lambda c, n, head: [b"HTTP/1.1 200 OK\r\n\r\n", b"part one,", b" part two", CLOSE]) as srv, \
                httpx.AsyncClient(transport=KeepAliveTransport()) as client:
            assert (await client.get(srv.url)).text == "part one, part two"
            assert (await client.get(srv.url)).text == "part one, part two"
            assert srv.connections == 2
    run(main())


def test_interim_100_response_is_skipped_and_204_has_no_body() -> None:
    replies = [[b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
               [b"HTTP/1.1 204 No Content\r\n\r\n"], ok(b"after")]

    async def main() -> None:
        async with Server(lambda c, n, head: replies[n]) as srv, \
                httpx.AsyncClient(transport=KeepAliveTransport()) as client:
            assert (await client.get(srv.url)).text == "ok"
            r = await client.get(srv.url)
            assert (r.status_code, r.content) == (204, b"")
            assert (await client.get(srv.url)).text == "after"
            assert srv.connections == 1
    run(main())


def test_head_response_has_no_body_even_with_content_length() -> None:
    async def main() -> None:
        async with Server(lambda c, n, head: [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"] if n == 0
                          else ok(b"next")) as srv, \
                httpx.AsyncClient(transport=KeepAliveTransport()) as client:
            r = await client.head(srv.url)
            assert (r.status_code, r.content, r.headers["content-length"]) == (200, b"", "10")
            assert (await client.get(srv.url)).text == "next"
            assert srv.connections == 1
    run(main())


def test_idle_connection_closed_by_server_is_replaced_transparently() -> None:
    # Connection 0 answers once, then closes instead of answering the second request.
    async def main() -> None:
        async with Server(lambda c, n, head: ok(b"c%d" % c) if n == 0 else None) as srv, \
                httpx.AsyncClient(transport=KeepAliveTransport()) as client:
            assert (await client.get(srv.url)).text == "c0"
            assert (await client.get(srv.url)).text == "c1"
            assert (await client.get(srv.url)).text == "c2"
            assert srv.connections == 3
            assert len(srv.requests) == 5  # the two lost requests were resent once each
    run(main())


def test_fresh_connection_closed_without_answer_is_a_protocol_error() -> None:
    async def main() -> None:
        async with Server(lambda c, n, head: None) as srv, \
                httpx.AsyncClient(transport=KeepAliveTransport()) as client:
            with pytest.raises(httpx.RemoteProtocolError, match="without a response"):
                await client.get(srv.url)
            assert len(srv.requests) == 1  # a fresh connection's failure is not resent here
    run(main())


def test_connection_lost_mid_body_is_a_read_error_and_not_resent() -> None:
    async def main() -> None:
        async with Server(lambda c, n, head: [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly some", CLOSE]) as srv, \
                httpx.AsyncClient(transport=KeepAliveTransport()) as client:
            with pytest.raises(httpx.ReadError):
                await client.get(srv.url)
            assert len(srv.requests) == 1
    run(main())


@pytest.mark.parametrize("reply", [
    [b"HTPP/1.1 200 OK\r\n\r\n"],
    [b"HTTP/1.1 abc OK\r\n\r\n"],
    [b"HTTP/1.1 200 OK\r\nbroken header\r\n\r\n"],
    [b"HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n"],
    [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"],
    [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"],
    [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"],
    [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY"],
    [b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000],
])
def test_malformed_responses_raise_remote_protocol_error(reply: list[bytes]) -> None:
    async def main() -> None:
        async with Server(lambda c, n, head: reply if c == 0 else ok(b"fine")) as srv, \
                httpx.AsyncClient(transport=KeepAliveTransport()) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(srv.url)
            assert (await client.get(srv.url)).text == "fine"  # on a new connection
            assert srv.connections == 2
    run(main())


def test_bytes_after_the_response_stop_reuse() -> None:
    async def main() -> None:
        async with Server(lambda c, n, head: [ok(b"one")[0] + b"HTTP/1.1 200 OK\r\n"]) as srv, \
                httpx.AsyncClient(transport=KeepAliveTransport()) as client:
            assert (await client.get(srv.url)).text == "one"
            assert (await client.get(srv.url)).text == "one"
            assert srv.connections == 2
    run(main())


def test_read_timeout_closes_the_connection() -> None:
    async def stall(c: int, n: int, head: bytes) -> list[bytes]:
        if c == 0:
            await asyncio.sleep(1)
        return ok(b"late" if c == 0 else b"fresh")

    async def main() -> None:
        async with Server(stall) as srv, httpx.AsyncClient(transport=KeepAliveTransport(),
                                                           timeout=httpx.Timeout(0.1)) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(srv.url)
            assert (await client.get(srv.url)).text == "fresh"
            assert srv.connections == 2
    run(main())


def test_cancelled_request_does_not_leave_its_connection_in_the_pool() -> None:
    async def stall(c: int, n: int, head: bytes) -> list[bytes]:
        if c == 0:
            await asyncio.sleep(0.5)
        return ok(b"c%d" % c)

    async def main() -> None:
        async with Server(stall) as srv, httpx.AsyncClient(transport=KeepAliveTransport()) as client:
            task = asyncio.create_task(client.get(srv.url))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert (await client.get(srv.url)).text == "c1"
    run(main())


def test_connect_refused_is_a_connect_error() -> None:
    async def main() -> None:
        async with Server(lambda c, n, head: ok(b"")) as srv:
            url = srv.url
        async with httpx.AsyncClient(transport=KeepAliveTransport()) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(url)
    run(main())


def test_keepalive_expiry_drops_old_idle_connections() -> None:
    now = [0.0]

    async def main() -> None:
        async with Server(lambda c, n, head: ok(b"c%d" % c)) as srv, \
                httpx.AsyncClient(transport=KeepAliveTransport(keepalive_expiry=30, monotonic=lambda: now[0])) as client:
            assert (await client.get(srv.url)).text == "c0"
            now[0] = 29.0
            assert (await client.get(srv.url)).text == "c0"
            now[0] = 60.0
            assert (await client.get(srv.url)).text == "c1"
    run(main())


def test_writes_are_refused_and_reported_as_not_sent() -> None:
    async def main() -> None:
        async with Server(lambda c, n, head: ok(b"")) as srv:
            transport = Transport(http_transport=KeepAliveTransport())
            try:
                with pytest.raises(TransportError) as info:
                    await transport.write("POST", srv.url + "/order", route="POST /order", limits=(),
                                          content=b"{}", headers=dict)
                assert info.value.request_sent is False
                assert srv.requests == []
            finally:
                await transport.aclose()
    run(main())


def test_closed_transport_refuses_and_header_injection_is_refused() -> None:
    async def main() -> None:
        async with Server(lambda c, n, head: ok(b"x")) as srv:
            tr = KeepAliveTransport()
            client = httpx.AsyncClient(transport=tr)
            with pytest.raises(httpx.LocalProtocolError):
                await tr.handle_async_request(httpx.Request("GET", srv.url, headers={"X": "a\r\nEvil: 1"}))
            assert (await client.get(srv.url)).text == "x"
            await client.aclose()
            with pytest.raises(httpx.ConnectError, match="closed"):
                await tr.handle_async_request(httpx.Request("GET", srv.url))
            assert srv.requests[0].count(b"Evil") == 0 and len(srv.requests) == 1
    run(main())


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30),
       chunked=st.booleans())
def test_any_segmentation_of_the_stream_parses_the_same(cuts: list[int], chunked: bool) -> None:
    body = json.dumps({"rows": list(range(40))}).encode()
    if chunked:
        raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(
            b"%x\r\n%s\r\n" % (len(body[i:i + 17]), body[i:i + 17]) for i in range(0, len(body), 17)) + b"0\r\n\r\n"
    else:
        raw = ok(body)[0]
    pieces, at = [], 0
    for cut in cuts:
        if at < len(raw):
            pieces.append(raw[at:at + cut])
            at += cut
    pieces.append(raw[at:])

    async def main() -> None:
        async with Server(lambda c, n, head: pieces) as srv, \
                httpx.AsyncClient(transport=KeepAliveTransport()) as client:
            assert (await client.get(srv.url)).content == body
            assert (await client.get(srv.url)).content == body
            assert srv.connections == 1
    run(main())


def _self_signed(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


def test_https_with_verified_certificate_and_reuse(tmp_path: Path) -> None:
    server_ctx, client_ctx = _self_signed(tmp_path)

    async def main() -> None:
        async with Server(lambda c, n, head: ok(path_of(head)), tls=server_ctx) as srv:
            async with httpx.AsyncClient(transport=KeepAliveTransport(ssl_context=client_ctx)) as client:
                assert (await client.get(srv.url + "/v2/positions?user=0x1")).text == "/v2/positions?user=0x1"
                assert (await client.get(srv.url + "/again")).text == "/again"
            assert srv.connections == 1
            # The default trust store (certifi) does not know this certificate: refused.
            async with httpx.AsyncClient(transport=KeepAliveTransport()) as client:
                with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                    await client.get(srv.url)
    run(main())


def test_env_proxy_detection() -> None:
    assert env_proxy_configured({}) is False
    assert env_proxy_configured({"NO_PROXY": "*", "https_proxy": ""}) is False
    for name in ("HTTPS_PROXY", "http_proxy", "ALL_PROXY"):
        assert env_proxy_configured({name: "http://proxy.corp:3128"}) is True


def test_watcher_client_is_lean_unless_a_proxy_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.config import Settings
    from watcher import watcher_client

    def transport_of(client: object) -> object:
        return client._transport._client._transport  # type: ignore[attr-defined]

    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    client = watcher_client(Settings())
    assert isinstance(transport_of(client), KeepAliveTransport)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    client = watcher_client(Settings())
    assert not isinstance(transport_of(client), KeepAliveTransport)
