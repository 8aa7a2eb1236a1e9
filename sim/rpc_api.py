"""Polygon JSON-RPC over HTTP (POST /): eth_chainId, eth_blockNumber, eth_getBlockByNumber,
eth_getBlockByHash, eth_getLogs, net_version, with batches.

Node semantics for eth_getLogs: `address` a string or a list (OR), `topics` positional with
`null` wildcards and lists (OR), `fromBlock`/`toBlock` quantities or tags (latest, earliest,
pending, safe, finalized) or `blockHash`; logs in chain order. The caps (block range, result
count, filter size) answer with the code and wording of a real provider (`rpc_error_style`).

Invariants: every call of a batch is answered (same ids, errors per call); a malformed call gets
-32600/-32602, an unknown method -32601; the handler runs under the world lock like every route.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sim import chain_tx_api
from sim.http import Request, Response, Router

if TYPE_CHECKING:
    from sim.core import Simulator
    from sim.state import World

TAGS = ("latest", "pending", "safe", "finalized")


class RpcFault(Exception):
    """A JSON-RPC error answer."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def as_json(self) -> dict[str, Any]:
        """The `error` member."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


def _block_ref(world: World, value: Any, name: str) -> int:
    chain = world.chain
    if value is None or value in TAGS:
        return chain.head
    if value == "earliest":
        return chain.first
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise RpcFault(-32602, f"invalid argument 0: hex string without 0x prefix or bad {name}")


def _range_error(world: World, lo: int, hi: int, cap: int) -> RpcFault:
    style = world.config.rpc_error_style
    if style == "infura":
        return RpcFault(-32602, f"range {hi - lo + 1} exceeds limit of {cap}")
    if style == "quicknode":
        return RpcFault(-32614, f"eth_getLogs is limited to a {cap:,} range")
    if style == "geth":
        return RpcFault(-32000, f"block range is too wide (maximum {cap})")
    return RpcFault(-32600, f"You can make eth_getLogs requests with up to a {cap} block range. "
                            f"Based on your parameters, this block range should work: "
                            f"[{hex(lo)}, {hex(lo + cap - 1)}]")


def _results_error(world: World, lo: int, hi: int, cap: int, fit_to: int) -> RpcFault:
    style = world.config.rpc_error_style
    if style == "infura":
        return RpcFault(-32005, f"query returned more than {cap} results. Try with this block range "
                                f"[{hex(lo)}, {hex(fit_to)}].",
                        {"from": hex(lo), "to": hex(fit_to), "limit": cap})
    if style == "geth":
        return RpcFault(-32602, f"query exceeds max results {cap}, retry with the range {lo}-{fit_to}")
    return RpcFault(-32602, "Log response size exceeded. You can make eth_getLogs requests with up "
                            "to a 2K block range and no limit on the response size, or you can "
                            f"request any block range with a cap of {cap // 1000}K logs in the "
                            f"response. Based on your parameters and the response size limit, this "
                            f"block range should work: [{hex(lo)}, {hex(fit_to)}]")


def _as_list(value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
        raise RpcFault(-32602, f"invalid {what}")
    return [x.lower() for x in items]


def compile_filter(flt: Mapping[str, Any]) -> tuple[set[str] | None, list[set[str] | None]]:
    """(addresses or None, per-position topic sets or None) of a logs filter."""
    addresses = _as_list(flt.get("address"), "address")
    topics_raw = flt.get("topics") or []
    if not isinstance(topics_raw, list) or len(topics_raw) > 4:
        raise RpcFault(-32602, "invalid topics")
    topics: list[set[str] | None] = []
    for t in topics_raw:
        values = _as_list(t, "topic")
        topics.append(None if values is None or not values else set(values))
    return (set(addresses) if addresses else None), topics


def log_matches(log: Mapping[str, Any], addresses: set[str] | None,
                topics: list[set[str] | None]) -> bool:
    """Node semantics: address in the list, each topic position in its set (None = any)."""
    if addresses is not None and str(log["address"]).lower() not in addresses:
        return False
    have = log["topics"]
    for i, wanted in enumerate(topics):
        if wanted is None:
            continue
        if i >= len(have) or have[i].lower() not in wanted:
            return False
    return True


def get_logs(world: World, flt: Any) -> list[dict[str, Any]]:
    """eth_getLogs."""
    if not isinstance(flt, Mapping):
        raise RpcFault(-32602, "invalid argument 0: filter must be an object")
    chain, cfg = world.chain, world.config
    addresses, topics = compile_filter(flt)
    values = (len(addresses) if addresses else 0) + sum(len(t) for t in topics if t)
    if cfg.rpc_max_filter_values and values > cfg.rpc_max_filter_values:
        raise RpcFault(-32602, f"too many parameters: {values} addresses and topics, "
                               f"maximum {cfg.rpc_max_filter_values}")
    if flt.get("blockHash") is not None:
        if "fromBlock" in flt or "toBlock" in flt:
            raise RpcFault(-32602, "cannot specify both BlockHash and FromBlock/ToBlock")
        number = chain.find_by_hash(str(flt["blockHash"]))
        if number is None:
            raise RpcFault(-32000, "unknown block")
        lo = hi = number
    else:
        lo = _block_ref(world, flt.get("fromBlock"), "fromBlock")
        hi = _block_ref(world, flt.get("toBlock"), "toBlock")
        if lo > hi:
            return []
        hi = min(hi, chain.head)
        lo = max(lo, chain.first)
        if lo > hi:
            return []
        cap = cfg.rpc_max_block_range
        if cap and hi - lo + 1 > cap:
            raise _range_error(world, lo, hi, cap)
    out: list[dict[str, Any]] = []
    for lg in chain.logs_in(lo, hi):
        obj = lg.as_json(chain)
        if log_matches(obj, addresses, topics):
            out.append(obj)
            if cfg.rpc_max_results and len(out) > cfg.rpc_max_results:
                fit_to = max(lo, (lg.block or lo) - 1)
                raise _results_error(world, lo, hi, cfg.rpc_max_results, fit_to)
    return out


def call(world: World, method: Any, params: Any) -> Any:
    """One JSON-RPC method (RpcFault on error)."""
    chain = world.chain
    params = params if isinstance(params, list) else ([] if params is None else None)
    if params is None:
        raise RpcFault(-32602, "params must be an array")
    if method == "eth_chainId":
        return hex(world.config.chain_id)
    if method == "net_version":
        return str(world.config.chain_id)
    if method == "eth_blockNumber":
        return hex(chain.head)
    if method in ("eth_getBlockByNumber", "eth_getBlockByHash"):
        if not params:
            raise RpcFault(-32602, "missing value for required argument 0")
        if method == "eth_getBlockByHash":
            number = chain.find_by_hash(str(params[0]))
            if number is None:
                return None
        else:
            number = _block_ref(world, params[0], "block number")
        return chain.header(number) if chain.has(number) else None
    if method == "eth_getLogs":
        if not params:
            raise RpcFault(-32602, "missing value for required argument 0")
        return get_logs(world, params[0])
    if method in chain_tx_api.TRANSACTION_METHODS:
        try:
            return chain_tx_api.transaction_call(world, method, params)
        except chain_tx_api.RpcFault as fault:
            raise RpcFault(fault.code, fault.message) from None
    raise RpcFault(-32601, f"the method {method} does not exist/is not available")


def answer(world: World, request: Any) -> dict[str, Any] | None:
    """The answer object to one request object (None for a notification without id)."""
    if not isinstance(request, Mapping) or request.get("jsonrpc") != "2.0" or "method" not in request:
        return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "invalid request"}}
    rid = request.get("id")
    try:
        result = call(world, request["method"], request.get("params"))
    except RpcFault as fault:
        return {"jsonrpc": "2.0", "id": rid, "error": fault.as_json()}
    return {"jsonrpc": "2.0", "id": rid, "result": result}


def handle_body(world: World, body: bytes) -> Any:
    """Answer a request body: one object or a batch (list)."""
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        return {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
    if isinstance(payload, list):
        if not payload:
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "empty batch"}}
        if world.config.rpc_max_batch and len(payload) > world.config.rpc_max_batch:
            return {"jsonrpc": "2.0", "id": None, "error": {
                "code": -32600, "message": f"batch too large (max {world.config.rpc_max_batch})"}}
        return [a for a in (answer(world, r) for r in payload) if a is not None]
    return answer(world, payload)


def post_root(sim: Simulator, req: Request) -> Response:
    """POST / : JSON-RPC."""
    return Response(200, handle_body(sim.world, req.body))


def not_found(path: str) -> Response:
    """Only POST / exists."""
    return Response(404, {"jsonrpc": "2.0", "id": None,
                          "error": {"code": -32601, "message": f"no route {path}"}})


def build_router() -> Router:
    """POST / (and POST /rpc, as some providers path their endpoint)."""
    router = Router()
    router.add("POST", r"/", post_root)
    router.add("POST", r"/rpc", post_root)
    return router
