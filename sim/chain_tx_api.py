"""The simulated node's transaction methods: what an EOA needs to redeem, with node semantics.

`sim.rpc_api` (the one JSON-RPC endpoint, POST /) answers the chain reads itself and hands
these methods here: eth_gasPrice, eth_maxPriorityFeePerGas, eth_getTransactionCount (pending
nonce), eth_estimateGas, eth_sendRawTransaction, eth_getTransactionReceipt, eth_getBalance.

`eth_sendRawTransaction` decodes an EIP-1559 transaction, recovers its sender from the signature,
checks the chain id and the sender's next nonce ("nonce too low" / "nonce too high" as a node
says it; the very same bytes again: "already known"), and runs it: the collateral adapters'
`redeemPositions(pUSD, 0, condition, [1, 2])` and the Protocol V2 Router's `redeem(condition,
index, amount)` pay the sender's winning shares out in pUSD (`sim.settlement.redeem`); the CTF's
own `redeemPositions` with pUSD as collateral succeeds and pays nothing (the trap
docs/POLYMARKET.md §8.2 describes). Anything else reverts. A transaction is mined at once (status 1, or 0 for a revert)
unless `SimConfig.tx_mining == "manual"` (then it waits for `Simulator.mine_transactions`).

Invariant: a nonce is used once per sender; a transaction pays out at most once.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from eth_abi import decode as abi_decode
from eth_hash.auto import keccak

from sim.settlement import Revert, redeem
from sim.verify import checksum

if TYPE_CHECKING:
    from sim.state import World

PUSD = "0xc011a7e12a19f7b1f670d46f03b03f3342e82dfb"
CTF = "0x4d97dcd97ec945f40cf65f87097ace5ea0476045"
COLLATERAL_ADAPTER = "0xada100db00ca00073811820692005400218fce1f"
NEG_RISK_COLLATERAL_ADAPTER = "0xada2005600dec949baf300f4c6120000bdb6eaab"
ROUTER = "0x12121212006e4cd160d18e3f00711da5c3372600"
REDEEM_POSITIONS = keccak(b"redeemPositions(address,bytes32,bytes32,uint256[])")[:4]
ROUTER_REDEEM = keccak(b"redeem(bytes31,uint256,uint256)")[:4]
GAS_PRICE = 30 * 10**9
BASE_FEE = 25 * 10**9
GAS_USED = 120_000


class RpcFault(Exception):
    """A JSON-RPC error answer."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _hex(n: int) -> str:
    return hex(n)


def execute_call(world: World, sender: str, to: str, data: bytes, *, via: str) -> None:
    """Run one call from `sender` (an EOA, a Safe or a deposit wallet); raises Revert."""
    to = to.lower()
    selector, args = data[:4], data[4:]
    if to in (COLLATERAL_ADAPTER, NEG_RISK_COLLATERAL_ADAPTER, CTF) and selector == REDEEM_POSITIONS:
        collateral, _parent, condition, index_sets = abi_decode(
            ["address", "bytes32", "bytes32", "uint256[]"], args)
        market = world.market_by_condition("0x" + bytes(condition).hex())
        if market is None or market.version != "v1":
            raise Revert("unknown condition")
        if sorted(index_sets) != [1, 2]:
            raise Revert("bad index sets")
        if to == CTF:
            if str(collateral).lower() == PUSD:
                return  # the trap: positions keyed to pUSD do not exist; nothing burned or paid
            raise Revert("collateral not supported by the simulator")
        if str(collateral).lower() != PUSD:
            raise Revert("the collateral adapters take pUSD")
        if (to == NEG_RISK_COLLATERAL_ADAPTER) != market.neg_risk:
            raise Revert("wrong adapter for this market")
        redeem(world, sender, market, via=via)
        return
    if to == ROUTER and selector == ROUTER_REDEEM:
        condition31, index, amount = abi_decode(["bytes31", "uint256", "uint256"], args)
        market = world.market_by_condition("0x" + bytes(condition31).hex())
        if market is None or market.version != "v2":
            raise Revert("unknown condition")
        redeem(world, sender, market, outcome_index=int(index), amount=int(amount), via=via)
        return
    raise Revert("the simulator only runs redeem calls")


def _decode(raw_hex: str) -> tuple[dict[str, Any], str, str, bytes]:
    from eth_account import Account
    from eth_account.typed_transactions import TypedTransaction
    from hexbytes import HexBytes

    try:
        raw = bytes.fromhex(raw_hex[2:] if raw_hex.startswith("0x") else raw_hex)
        fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
        sender = Account.recover_transaction(raw)
    except Exception as exc:  # malformed bytes, bad signature
        raise RpcFault(-32602, f"invalid transaction: {type(exc).__name__}") from exc
    return fields, checksum(sender), "0x" + keccak(raw).hex(), raw


def send_raw(world: World, raw_hex: str) -> str:
    """eth_sendRawTransaction (see module)."""
    fields, sender, tx_hash, raw = _decode(raw_hex)
    if tx_hash in world.chain_txs:
        raise RpcFault(-32000, "already known")
    if int(fields.get("chainId", 0)) != world.config.chain_id:
        raise RpcFault(-32000, "invalid chain id for signer")
    expected = world.chain_nonces.get(sender.lower(), 0)
    nonce = int(fields["nonce"])
    if nonce < expected:
        raise RpcFault(-32000, f"nonce too low: next nonce {expected}, tx nonce {nonce}")
    if nonce > expected:
        raise RpcFault(-32000, f"nonce too high: next nonce {expected}, tx nonce {nonce}")
    to = fields.get("to")
    to_hex = "0x" + (bytes(to).hex() if isinstance(to, bytes | bytearray) else str(to).lower().removeprefix("0x"))
    data = fields.get("data", b"")
    data = bytes(data) if isinstance(data, bytes | bytearray) else bytes.fromhex(str(data).removeprefix("0x"))
    world.chain_nonces[sender.lower()] = nonce + 1
    record = {"raw": raw, "sender": sender, "nonce": nonce, "to": to_hex, "data": data,
              "receipt": None}
    world.chain_txs[tx_hash] = record
    if world.config.tx_mining == "instant":
        mine(world, tx_hash)
    return tx_hash


def mine(world: World, tx_hash: str) -> dict[str, Any]:
    """Execute a pending transaction and give it a receipt."""
    record = world.chain_txs[tx_hash]
    if record["receipt"] is not None:
        return dict(record["receipt"])
    try:
        execute_call(world, record["sender"], record["to"], record["data"], via=f"tx:{tx_hash}")
        status = 1
    except Revert as exc:
        record["revert"] = str(exc)
        status = 0
    head = world.chain.head
    receipt: dict[str, Any] = {
        "transactionHash": tx_hash, "status": _hex(status), "blockNumber": _hex(head),
        "blockHash": world.chain.block_hash(head),
        "gasUsed": _hex(GAS_USED), "cumulativeGasUsed": _hex(GAS_USED),
        "effectiveGasPrice": _hex(GAS_PRICE), "from": record["sender"].lower(), "to": record["to"],
        "logs": [], "type": "0x2", "contractAddress": None}
    record["receipt"] = receipt
    return dict(receipt)


TRANSACTION_METHODS = frozenset({
    "eth_gasPrice", "eth_maxPriorityFeePerGas", "eth_getBalance", "eth_getTransactionCount",
    "eth_estimateGas", "eth_sendRawTransaction", "eth_getTransactionReceipt"})


def transaction_call(world: World, method: str, params: list[Any]) -> Any:
    """One of TRANSACTION_METHODS (RpcFault on error)."""
    if method == "eth_gasPrice":
        return _hex(GAS_PRICE)
    if method == "eth_maxPriorityFeePerGas":
        return _hex(GAS_PRICE - BASE_FEE)
    if method == "eth_getBalance":
        return _hex(10**20)  # every account has gas (POL) in the simulator
    if method == "eth_getTransactionCount":
        if not params or not isinstance(params[0], str):
            raise RpcFault(-32602, "missing address")
        return _hex(world.chain_nonces.get(params[0].lower(), 0))
    if method == "eth_estimateGas":
        call = params[0] if params and isinstance(params[0], dict) else {}
        to, data = str(call.get("to", "")).lower(), str(call.get("data", "0x"))
        if to not in (COLLATERAL_ADAPTER, NEG_RISK_COLLATERAL_ADAPTER, CTF, ROUTER):
            raise RpcFault(3, "execution reverted")
        if not data.startswith("0x") or len(data) < 10:
            raise RpcFault(3, "execution reverted")
        return _hex(GAS_USED)
    if method == "eth_sendRawTransaction":
        if not params or not isinstance(params[0], str):
            raise RpcFault(-32602, "missing raw transaction")
        return send_raw(world, params[0])
    if method == "eth_getTransactionReceipt":
        if not params or not isinstance(params[0], str):
            raise RpcFault(-32602, "missing transaction hash")
        record = world.chain_txs.get(params[0].lower())
        return None if record is None or record["receipt"] is None else dict(record["receipt"])
    raise RpcFault(-32601, f"the method {method} does not exist/is not available")


def payouts_total(world: World, holder: str) -> Decimal:
    """pUSD paid to `holder` by redemptions so far (tests)."""
    return sum((Decimal(r["paid"]) / 10**6 for r in world.redemptions if r["holder"] == holder.lower()),
               Decimal(0))
