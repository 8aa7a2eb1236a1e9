"""The simulated node's websocket endpoint: JSON-RPC plus `eth_subscribe` (newHeads, logs).

A ticker thread produces the automatic blocks on time (the clock is otherwise only looked at
when a request arrives) and broadcasts chain events to subscribers: `newHeads` get every new
header (after a reorg, the new headers of the replaced heights again), `logs` subscriptions get
the matching logs of every new block and, on a reorg, the old ones again with `removed: true`.

Invariants: chain events are taken under the world lock and sent outside it; a subscriber that
cannot be written to is dropped; during an RPC outage (`rpc_down`) new connections are refused
and open ones are closed.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from sim import engine, rpc_api

if TYPE_CHECKING:
    from sim.core import Simulator

log = logging.getLogger("pmct.sim.ws")
HOST = "127.0.0.1"


@dataclass(eq=False)
class _Client:
    conn: ServerConnection
    subs: dict[str, tuple[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, obj: Any) -> bool:
        try:
            with self.lock:
                self.conn.send(json.dumps(obj, separators=(",", ":")))
            return True
        except (ConnectionClosed, OSError, RuntimeError):
            return False


class WsNode:
    """The websocket server, its subscribers, and the block ticker."""

    def __init__(self, sim: Simulator, port: int = 0) -> None:
        self.sim = sim
        self._clients: set[_Client] = set()
        self._clients_lock = threading.Lock()
        self._stop = threading.Event()
        self._next_sub = 0
        self._server: Server = serve(self._handle, HOST, port, compression=None,
                                     max_size=2**24, ping_interval=None)
        self._server_thread = threading.Thread(target=self._server.serve_forever,
                                               name="sim-ws", daemon=True)
        self._ticker = threading.Thread(target=self._tick_forever, name="sim-chain", daemon=True)

    @property
    def url(self) -> str:
        """ws://127.0.0.1:PORT."""
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}"

    def start(self) -> None:
        """Serve and tick in the background."""
        self._server_thread.start()
        self._ticker.start()

    def stop(self) -> None:
        """Close every connection and stop both threads."""
        self._stop.set()
        self.sim.world.chain.wake.set()
        self.drop_all()
        self._server.shutdown()
        self._server_thread.join(timeout=5)
        self._ticker.join(timeout=5)

    def drop_all(self) -> None:
        """Close every subscriber connection (RPC outage)."""
        with self._clients_lock:
            clients = list(self._clients)
        for c in clients:
            try:
                c.conn.close()
            except (ConnectionClosed, OSError, RuntimeError):  # noqa: PERF203
                pass

    # ---- connections ---------------------------------------------------------------------------
    def _handle(self, conn: ServerConnection) -> None:
        if self.sim.world.config.rpc_down:
            conn.close(1013, "service unavailable")
            return
        client = _Client(conn)
        with self._clients_lock:
            self._clients.add(client)
        try:
            for message in conn:
                self._on_message(client, message)
        except ConnectionClosed:
            pass
        finally:
            with self._clients_lock:
                self._clients.discard(client)

    def _on_message(self, client: _Client, message: str | bytes) -> None:
        world = self.sim.world
        try:
            req = json.loads(message)
        except ValueError:
            client.send({"jsonrpc": "2.0", "id": None,
                         "error": {"code": -32700, "message": "parse error"}})
            return
        method = req.get("method") if isinstance(req, dict) else None
        if method == "eth_subscribe":
            client.send(self._subscribe(client, req))
            return
        if method == "eth_unsubscribe":
            params = req.get("params") or [None]
            found = client.subs.pop(str(params[0]), None) is not None
            client.send({"jsonrpc": "2.0", "id": req.get("id"), "result": found})
            return
        with world.lock:
            engine.refresh(world)
            out = rpc_api.handle_body(world, message if isinstance(message, bytes)
                                      else message.encode())
        client.send(out)

    def _subscribe(self, client: _Client, req: dict[str, Any]) -> dict[str, Any]:
        params = req.get("params") or []
        kind = params[0] if params else None
        rid = req.get("id")
        if kind == "newHeads":
            spec: Any = None
        elif kind == "logs":
            try:
                spec = rpc_api.compile_filter(params[1] if len(params) > 1 else {})
            except rpc_api.RpcFault as fault:
                return {"jsonrpc": "2.0", "id": rid, "error": fault.as_json()}
        else:
            return {"jsonrpc": "2.0", "id": rid,
                    "error": {"code": -32602, "message": f"unsupported subscription {kind!r}"}}
        with self._clients_lock:
            self._next_sub += 1
            sub_id = hex(0x5B000000 + self._next_sub)
        client.subs[sub_id] = (kind, spec)
        return {"jsonrpc": "2.0", "id": rid, "result": sub_id}

    # ---- ticker --------------------------------------------------------------------------------
    def _tick_forever(self) -> None:
        while not self._stop.is_set():
            world = self.sim.world
            chain = world.chain
            with world.lock:
                chain.wake.clear()
                engine.refresh(world)
                events = chain.drain()
                headers = {e.number: chain.header(e.number) for e in events if e.kind == "head"}
                wait = chain.seconds_to_next_block(world.clock.now())
                down = world.config.rpc_down
            if down:
                self.drop_all()
            elif events:
                self._broadcast(events, headers)
            chain.wake.wait(timeout=0.5 if wait is None else min(0.5, wait + 0.001))

    def _broadcast(self, events: list[Any], headers: dict[int, dict[str, Any]]) -> None:
        with self._clients_lock:
            clients = list(self._clients)
        for client in clients:
            for sub_id, (kind, spec) in list(client.subs.items()):
                for e in events:
                    if kind == "newHeads" and e.kind == "head":
                        result: Any = headers[e.number]
                    elif kind == "logs" and e.kind == "log" and rpc_api.log_matches(e.log, *spec):
                        result = e.log
                    else:
                        continue
                    ok = client.send({"jsonrpc": "2.0", "method": "eth_subscription",
                                      "params": {"subscription": sub_id, "result": result}})
                    if not ok:
                        break
