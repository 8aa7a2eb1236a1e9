"""`eth_subscribe` over a websocket (the `websockets` library): newHeads, and logs filters.

`Subscriber.run(stop)` connects, subscribes, hands every notification to the callbacks and, when
the connection drops or a subscription is refused, reconnects after an exponential backoff with
jitter (reset after a connection that delivered something). `on_connect` runs after each
successful (re)subscription so the caller can backfill what it may have missed over HTTP:
notifications are only sent for new events, never for the past.

Invariant: a callback's exception is logged and does not kill the connection; `stop` ends
`run()` promptly (the socket is closed). Nothing Polymarket-specific here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from wire.rpc import BlockHeader, RpcError, RpcErrorKind, error_from_object

log = logging.getLogger("pmct.rpc.ws")

HeadCallback = Callable[[BlockHeader], Awaitable[None]]
LogCallback = Callable[[Mapping[str, Any]], Awaitable[None]]


class Subscriber:
    """A self-healing websocket subscription to newHeads (+ optional logs filters)."""

    def __init__(self, url: str, *, on_head: HeadCallback, on_log: LogCallback | None = None,
                 log_filters: Sequence[Mapping[str, Any]] = (),
                 on_connect: Callable[[], Awaitable[None]] | None = None,
                 base_delay: float = 0.5, max_delay: float = 30.0, open_timeout: float = 10.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.url = url
        self._on_head = on_head
        self._on_log = on_log
        self._log_filters = list(log_filters)
        self._on_connect = on_connect
        self._base = base_delay
        self._max = max_delay
        self._open_timeout = open_timeout
        self._sleep = sleep
        self.connected = False
        self.connects = 0
        self.failures = 0
        self.last_error: str | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Stay subscribed until `stop` is set."""
        attempt = 0
        while not stop.is_set():
            delivered = False
            try:
                delivered = await self._session(stop)
            except (OSError, TimeoutError, WebSocketException, RpcError, ValueError) as exc:
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
                log.warning("websocket %s: %s", _safe(self.url), self.last_error)
            finally:
                self.connected = False
            if stop.is_set():
                break
            attempt = 0 if delivered else attempt + 1
            delay = min(self._max, self._base * (2 ** attempt))
            await _sleep_or_stop(random.uniform(delay / 2, delay), stop, self._sleep)

    async def _session(self, stop: asyncio.Event) -> bool:
        delivered = False
        async with connect(self.url, open_timeout=self._open_timeout, compression=None,
                           max_size=2**24, ping_interval=20, ping_timeout=20) as ws:
            kinds = await self._subscribe(ws)
            self.connected = True
            self.connects += 1
            if self._on_connect is not None:
                await self._on_connect()
            stopper = asyncio.ensure_future(stop.wait())
            try:
                while not stop.is_set():
                    receiver = asyncio.ensure_future(ws.recv())
                    done, _ = await asyncio.wait({receiver, stopper},
                                                 return_when=asyncio.FIRST_COMPLETED)
                    if receiver not in done:
                        receiver.cancel()
                        with contextlib.suppress(asyncio.CancelledError, WebSocketException):
                            await receiver
                        break
                    await self._dispatch(receiver.result(), kinds)
                    delivered = True
            finally:
                stopper.cancel()
        return delivered

    async def _subscribe(self, ws: ClientConnection) -> dict[str, str]:
        requests: list[tuple[str, list[Any]]] = [("newHeads", ["newHeads"])]
        requests += [("logs", ["logs", dict(f)]) for f in self._log_filters]
        kinds: dict[str, str] = {}
        for i, (kind, params) in enumerate(requests, start=1):
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": i, "method": "eth_subscribe",
                                      "params": params}))
            while True:  # notifications of an earlier subscription may arrive first
                answer = json.loads(await asyncio.wait_for(ws.recv(), self._open_timeout))
                if answer.get("id") == i:
                    break
                await self._dispatch_obj(answer, kinds)
            if answer.get("error"):
                raise error_from_object(answer["error"])
            sub = answer.get("result")
            if not isinstance(sub, str):
                raise RpcError(RpcErrorKind.OTHER, "eth_subscribe returned no subscription id")
            kinds[sub] = kind
        return kinds

    async def _dispatch(self, message: str | bytes, kinds: Mapping[str, str]) -> None:
        try:
            obj = json.loads(message)
        except ValueError:
            log.warning("websocket: a message that is not JSON was ignored")
            return
        await self._dispatch_obj(obj, kinds)

    async def _dispatch_obj(self, obj: Any, kinds: Mapping[str, str]) -> None:
        if not isinstance(obj, Mapping) or obj.get("method") != "eth_subscription":
            return
        params = obj.get("params")
        if not isinstance(params, Mapping):
            return
        kind = kinds.get(str(params.get("subscription")))
        result = params.get("result")
        try:
            if kind == "newHeads":
                await self._on_head(BlockHeader.from_json(result))
            elif kind == "logs" and self._on_log is not None and isinstance(result, Mapping):
                await self._on_log(result)
        except Exception:  # noqa: BLE001 - one bad callback must not drop the subscription
            log.exception("websocket: notification handler failed")


async def _sleep_or_stop(seconds: float, stop: asyncio.Event,
                         sleep: Callable[[float], Awaitable[None]]) -> None:
    if sleep is not asyncio.sleep:
        await sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def _safe(url: str) -> str:
    """The URL without its path (provider keys often live in the path)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/…" if rest else url
