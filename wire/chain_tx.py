"""Polygon transactions from an EOA: build, sign (eth-account) and send them over JSON-RPC.

The smallest set of JSON-RPC calls a redemption needs: `eth_chainId`, `eth_getTransactionCount`
(the pending nonce), `eth_estimateGas`, `eth_maxPriorityFeePerGas`, `eth_getBlockByNumber`
(the base fee), `eth_sendRawTransaction` and `eth_getTransactionReceipt`. (A JSON-RPC client for
`eth_getLogs` lives elsewhere; these are kept apart on purpose, in their own module.)

Invariants: a transaction is signed once (EIP-1559, type 2) and its hash is known before it is
sent, so a caller can store the exact signed bytes and the hash first and then re-send those
same bytes as often as needed: the node sees one transaction, never two. Errors never carry a
private key (only the node's message and the method name).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from wire.errors import ParseError
from wire.rpc import JsonRpcClient, RpcError

GAS_MARGIN = Decimal("1.3")  # the estimate times this, for state changing between estimate and mine
DEFAULT_PRIORITY_FEE = 30 * 10**9  # 30 gwei when the node has no eth_maxPriorityFeePerGas


@dataclass(frozen=True)
class Receipt:
    """What `eth_getTransactionReceipt` says about a mined transaction."""

    tx_hash: str
    success: bool
    block_number: int
    gas_used: int


@dataclass(frozen=True)
class SignedTx:
    """A signed transaction: the exact bytes to send and their hash."""

    raw: bytes
    tx_hash: str
    nonce: int


def _quantity(value: Any, what: str) -> int:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ParseError(f"{what}: expected a hex quantity, got {value!r}")
    try:
        return int(value, 16)
    except ValueError:
        raise ParseError(f"{what}: expected a hex quantity, got {value!r}") from None


def parse_receipt(body: Any) -> Receipt | None:
    """A receipt object (None while the transaction is not mined)."""
    if body is None:
        return None
    if not isinstance(body, dict):
        raise ParseError("eth_getTransactionReceipt: expected an object or null")
    return Receipt(tx_hash=str(body.get("transactionHash", "")).lower(),
                   success=_quantity(body.get("status"), "receipt.status") == 1,
                   block_number=_quantity(body.get("blockNumber"), "receipt.blockNumber"),
                   gas_used=_quantity(body.get("gasUsed", "0x0"), "receipt.gasUsed"))


class ChainClient:
    """The transaction calls an EOA's redemption needs, over the node's JSON-RPC client
    (`wire.rpc.JsonRpcClient`: the same client, rate limit and error classes as the chain source)."""

    def __init__(self, rpc: str | JsonRpcClient, *, max_rps: float = 10.0) -> None:
        self._owned = isinstance(rpc, str)
        self.rpc = JsonRpcClient(rpc, max_rps=max_rps) if isinstance(rpc, str) else rpc

    async def aclose(self) -> None:
        """Close the JSON-RPC client (if this one made it)."""
        if self._owned:
            await self.rpc.aclose()

    async def call(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC call; its `result`, or `wire.rpc.RpcError`."""
        return await self.rpc.call(method, params)

    async def chain_id(self) -> int:
        """eth_chainId."""
        return _quantity(await self.call("eth_chainId", []), "eth_chainId")

    async def pending_nonce(self, address: str) -> int:
        """The next nonce of `address`, pending transactions included."""
        return _quantity(await self.call("eth_getTransactionCount", [address, "pending"]),
                         "eth_getTransactionCount")

    async def estimate_gas(self, sender: str, to: str, data: str) -> int:
        """eth_estimateGas of a call."""
        return _quantity(await self.call("eth_estimateGas", [{"from": sender, "to": to, "data": data}]),
                         "eth_estimateGas")

    async def fees(self) -> tuple[int, int]:
        """(maxFeePerGas, maxPriorityFeePerGas): twice the latest base fee plus the tip."""
        try:
            tip = _quantity(await self.call("eth_maxPriorityFeePerGas", []), "eth_maxPriorityFeePerGas")
        except RpcError:
            tip = DEFAULT_PRIORITY_FEE
        block = await self.call("eth_getBlockByNumber", ["latest", False])
        if not isinstance(block, dict):
            raise ParseError("eth_getBlockByNumber: expected a block object")
        base = _quantity(block.get("baseFeePerGas", "0x0"), "block.baseFeePerGas")
        return 2 * base + tip, tip

    async def send_raw(self, raw: bytes) -> str:
        """eth_sendRawTransaction; the transaction hash the node reports."""
        result = await self.call("eth_sendRawTransaction", ["0x" + raw.hex()])
        if not isinstance(result, str):
            raise ParseError("eth_sendRawTransaction: expected a transaction hash")
        return result.lower()

    async def receipt(self, tx_hash: str) -> Receipt | None:
        """eth_getTransactionReceipt (None while not mined)."""
        return parse_receipt(await self.call("eth_getTransactionReceipt", [tx_hash]))


def sign_transaction(private_key: str, *, chain_id: int, nonce: int, to: str, data: str, gas: int,
                     max_fee: int, priority_fee: int) -> SignedTx:
    """An EIP-1559 transaction signed with eth-account (the key is used here and not kept)."""
    from eth_account import Account

    signed = Account.sign_transaction({
        "type": 2, "chainId": chain_id, "nonce": nonce, "to": to, "value": 0, "data": data,
        "gas": gas, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": priority_fee,
    }, private_key)
    return SignedTx(raw=bytes(signed.raw_transaction), tx_hash="0x" + bytes(signed.hash).hex(),
                    nonce=nonce)


def with_margin(gas: int) -> int:
    """The gas limit to sign: the estimate with a margin."""
    return int(Decimal(gas) * GAS_MARGIN)
