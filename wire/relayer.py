"""Polymarket's relayer (gasless transactions of Safe and deposit wallets), for redemptions.

Routes (docs `api-reference/relayer`, and Polymarket's py-sdk `actions/relayer/*`):
- `GET /v1/account/transactions/params?address=<owner>&type=SAFE|WALLET` → `{address, nonce}`;
- `POST /submit` (auth: the Builder API key headers `POLY_BUILDER_API_KEY`, `_TIMESTAMP`,
  `_PASSPHRASE`, `_SIGNATURE`, the signature being the CLOB L2 HMAC over
  `timestamp + method + path + body`) → `{transactionID, state: STATE_NEW}`;
- `GET /transaction?id=<transactionID>` → `[{transactionID, transactionHash, state, …}]`, states
  STATE_NEW → STATE_EXECUTED → STATE_MINED → STATE_CONFIRMED, or STATE_INVALID / STATE_FAILED.

Payloads (py-sdk `gasless.py`): SAFE — the owner signs the Safe's EIP-712 `SafeTx` digest with
`eth_sign` (the 65-byte signature's v raised by 4, the Safe's convention for eth_sign), one call,
operation CALL; WALLET (deposit wallet) — the owner signs an EIP-712 `Batch` (domain
`DepositWallet` v1, verifying contract = the wallet) of calls with a deadline, submitted to the
deposit-wallet factory; PROXY (Magic proxy wallets) — the calls wrapped in the proxy factory's
`proxy((uint8,address,uint256,bytes)[])`, the owner `eth_sign`s keccak("rlx:" ‖ from ‖ to ‖ data ‖
relayer fee ‖ gas price ‖ gas limit ‖ nonce ‖ relay hub ‖ relay), the relay address and nonce
from `GET /relay-payload`. UNCONFIRMED against the live relayer (no network here): the
Builder-key HMAC form for the relayer, `/v1/account/transactions/params` (the newer SDK route),
and the relay hub address (taken from a public SDK test, `PROXY_RELAY_HUB`).

Invariant: a signed payload carries the wallet's nonce, so the same payload can execute at most
once on chain; it is stored before it is submitted and re-submitted as it is after a crash.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from wire.auth import l2_signature
from wire.errors import ApiError, ParseError, TransportError
from wire.redeem_calls import ContractCall

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
DEPOSIT_WALLET_FACTORY = "0x00000000000Fb5C9ADea0298D729A0CB3823Cc07"
PROXY_FACTORY = "0xaB45c5A4B0c941a2F231C04C3f49182e1A254052"
PROXY_RELAY_HUB = "0xD216153c06E857cD7f72665E0aF1d7D82172F494"  # UNCONFIRMED (see module)
PROXY_GAS_LIMIT = 200_000  # when the node cannot estimate the proxy call
DEPOSIT_WALLET_DEADLINE = 600  # seconds a deposit-wallet batch stays valid
SUCCESS_STATES = frozenset({"STATE_CONFIRMED"})
FAILED_STATES = frozenset({"STATE_INVALID", "STATE_FAILED"})

_SAFE_TX_FIELDS = [
    {"name": "to", "type": "address"}, {"name": "value", "type": "uint256"},
    {"name": "data", "type": "bytes"}, {"name": "operation", "type": "uint8"},
    {"name": "safeTxGas", "type": "uint256"}, {"name": "baseGas", "type": "uint256"},
    {"name": "gasPrice", "type": "uint256"}, {"name": "gasToken", "type": "address"},
    {"name": "refundReceiver", "type": "address"}, {"name": "nonce", "type": "uint256"},
]
_BATCH_FIELDS = [
    {"name": "wallet", "type": "address"}, {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"}, {"name": "calls", "type": "Call[]"},
]
_CALL_FIELDS = [
    {"name": "target", "type": "address"}, {"name": "value", "type": "uint256"},
    {"name": "data", "type": "bytes"},
]


@dataclass(frozen=True)
class BuilderCreds:
    """The deployment's Builder API key for the relayer; repr hides the secret parts."""

    api_key: str
    secret: str
    passphrase: str

    def __repr__(self) -> str:
        return f"BuilderCreds(api_key={self.api_key!r}, secret=***, passphrase=***)"


@dataclass(frozen=True)
class RelayerTx:
    """A relayer transaction's state."""

    transaction_id: str
    state: str
    transaction_hash: str | None

    @property
    def confirmed(self) -> bool:
        """Mined with success."""
        return self.state in SUCCESS_STATES

    @property
    def failed(self) -> bool:
        """Refused or reverted for good."""
        return self.state in FAILED_STATES


def builder_headers(creds: BuilderCreds, method: str, path: str, body: bytes | None,
                    timestamp: int) -> dict[str, str]:
    """POLY_BUILDER_* headers: the CLOB L2 HMAC over `timestamp + METHOD + path + body`."""
    ts = str(int(timestamp))
    return {
        "POLY_BUILDER_API_KEY": creds.api_key,
        "POLY_BUILDER_PASSPHRASE": creds.passphrase,
        "POLY_BUILDER_TIMESTAMP": ts,
        "POLY_BUILDER_SIGNATURE": l2_signature(creds.secret, ts, method.upper(), path, body),
    }


def safe_typed_data(safe: str, call: ContractCall, nonce: int, chain_id: int) -> dict[str, Any]:
    """The Safe's EIP-712 `SafeTx` for one CALL with no gas refund."""
    return {
        "domain": {"chainId": chain_id, "verifyingContract": safe},
        "types": {"EIP712Domain": [{"name": "chainId", "type": "uint256"},
                                   {"name": "verifyingContract", "type": "address"}],
                  "SafeTx": _SAFE_TX_FIELDS},
        "primaryType": "SafeTx",
        "message": {"to": call.to, "value": 0, "data": bytes.fromhex(call.data[2:]), "operation": 0,
                    "safeTxGas": 0, "baseGas": 0, "gasPrice": 0, "gasToken": ZERO_ADDRESS,
                    "refundReceiver": ZERO_ADDRESS, "nonce": nonce},
    }


def safe_digest(safe: str, call: ContractCall, nonce: int, chain_id: int) -> bytes:
    """The SafeTx hash the owner signs."""
    from eth_account.messages import encode_typed_data
    from eth_hash.auto import keccak

    signable = encode_typed_data(full_message=safe_typed_data(safe, call, nonce, chain_id))
    return bytes(keccak(b"\x19" + signable.version + signable.header + signable.body))


def pack_safe_signature(signature: bytes) -> str:
    """An eth_sign signature in the Safe's form: v raised by 4 (27/28 → 31/32)."""
    if len(signature) != 65:
        raise ValueError("expected a 65-byte signature")
    v = signature[64]
    v = v + 31 if v in (0, 1) else v + 4 if v in (27, 28) else v
    return "0x" + signature[:64].hex() + format(v, "02x")


def safe_payload(private_key: str, owner: str, safe: str, call: ContractCall, nonce: int,
                 chain_id: int, metadata: str = "") -> dict[str, Any]:
    """A signed SAFE relayer request for one call from `safe` (owned by `owner`)."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    digest = safe_digest(safe, call, nonce, chain_id)
    signed = Account.sign_message(encode_defunct(primitive=digest), private_key)
    return {
        "type": "SAFE", "from": owner, "to": call.to, "proxyWallet": safe, "data": call.data,
        "nonce": str(nonce), "signature": pack_safe_signature(bytes(signed.signature)),
        "metadata": metadata,
        "signatureParams": {"baseGas": "0", "gasPrice": "0", "gasToken": ZERO_ADDRESS,
                            "operation": "0", "refundReceiver": ZERO_ADDRESS, "safeTxnGas": "0"},
    }


def deposit_wallet_typed_data(wallet: str, calls: Sequence[ContractCall], nonce: int,
                              deadline: int, chain_id: int) -> dict[str, Any]:
    """The deposit wallet's EIP-712 `Batch` of calls."""
    return {
        "domain": {"name": "DepositWallet", "version": "1", "chainId": chain_id,
                   "verifyingContract": wallet},
        "types": {"EIP712Domain": [{"name": "name", "type": "string"},
                                   {"name": "version", "type": "string"},
                                   {"name": "chainId", "type": "uint256"},
                                   {"name": "verifyingContract", "type": "address"}],
                  "Batch": _BATCH_FIELDS, "Call": _CALL_FIELDS},
        "primaryType": "Batch",
        "message": {"wallet": wallet, "nonce": nonce, "deadline": deadline,
                    "calls": [{"target": c.to, "value": 0, "data": bytes.fromhex(c.data[2:])}
                              for c in calls]},
    }


def deposit_wallet_payload(private_key: str, owner: str, wallet: str, calls: Sequence[ContractCall],
                           nonce: int, deadline: int, chain_id: int,
                           metadata: str = "") -> dict[str, Any]:
    """A signed WALLET relayer request: a batch of calls from a deposit wallet."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    typed = deposit_wallet_typed_data(wallet, calls, nonce, deadline, chain_id)
    signed = Account.sign_message(encode_typed_data(full_message=typed), private_key)
    return {
        "type": "WALLET", "from": owner, "to": DEPOSIT_WALLET_FACTORY, "nonce": str(nonce),
        "signature": "0x" + bytes(signed.signature).hex(), "metadata": metadata,
        "depositWalletParams": {"depositWallet": wallet, "deadline": str(deadline),
                                "calls": [{"target": c.to, "value": "0", "data": c.data}
                                          for c in calls]},
    }


def proxy_call_data(calls: Sequence[ContractCall]) -> str:
    """The proxy factory's `proxy((uint8 typeCode, address to, uint256 value, bytes data)[])`, CALLs."""
    from eth_abi import encode as abi_encode
    from eth_hash.auto import keccak

    selector = keccak(b"proxy((uint8,address,uint256,bytes)[])")[:4]
    encoded = abi_encode(["(uint8,address,uint256,bytes)[]"],
                         [[(1, c.to, 0, bytes.fromhex(c.data[2:])) for c in calls]])
    return "0x" + (selector + encoded).hex()


def proxy_hash(owner: str, data: str, gas_limit: int, nonce: int, relay: str) -> bytes:
    """keccak("rlx:" ‖ from ‖ proxy factory ‖ data ‖ fee 0 ‖ gas price 0 ‖ gas limit ‖ nonce ‖ hub ‖ relay)."""
    from eth_hash.auto import keccak

    def addr(a: str) -> bytes:
        return bytes.fromhex(a[2:])

    return bytes(keccak(b"rlx:" + addr(owner) + addr(PROXY_FACTORY) + bytes.fromhex(data[2:])
                        + (0).to_bytes(32, "big") + (0).to_bytes(32, "big")
                        + gas_limit.to_bytes(32, "big") + nonce.to_bytes(32, "big")
                        + addr(PROXY_RELAY_HUB) + addr(relay)))


def proxy_payload(private_key: str, owner: str, proxy_wallet: str, calls: Sequence[ContractCall],
                  nonce: int, relay: str, gas_limit: int = PROXY_GAS_LIMIT,
                  metadata: str = "") -> dict[str, Any]:
    """A signed PROXY relayer request: the calls through the owner's Polymarket proxy wallet."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    data = proxy_call_data(calls)
    signed = Account.sign_message(encode_defunct(primitive=proxy_hash(owner, data, gas_limit, nonce, relay)),
                                  private_key)
    return {
        "type": "PROXY", "from": owner, "to": PROXY_FACTORY, "proxyWallet": proxy_wallet, "data": data,
        "nonce": str(nonce), "signature": "0x" + bytes(signed.signature).hex(), "metadata": metadata,
        "signatureParams": {"gasLimit": str(gas_limit), "gasPrice": "0", "relay": relay,
                            "relayHub": PROXY_RELAY_HUB, "relayerFee": "0"},
    }


def parse_relayer_tx(body: Any) -> RelayerTx | None:
    """`GET /transaction` (a list, or one object) → the transaction, or None when absent."""
    if isinstance(body, list):
        body = body[0] if body else None
    if body is None:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("transactionID"), str):
        raise ParseError("relayer /transaction: expected an object with transactionID")
    tx_hash = body.get("transactionHash") or None
    return RelayerTx(body["transactionID"], str(body.get("state", "")),
                     str(tx_hash).lower() if tx_hash else None)


class RelayerClient:
    """HTTP client of the relayer (Builder API key auth)."""

    def __init__(self, url: str, creds: BuilderCreds, *, timeout: float = 10.0,
                 http: httpx.AsyncClient | None = None, clock: Callable[[], float] = time.time) -> None:
        self.url = url.rstrip("/")
        self.creds = creds
        self._http = http or httpx.AsyncClient(timeout=timeout)
        self._owned = http is None
        self._clock = clock

    async def aclose(self) -> None:
        """Close the connection pool (if this client made it)."""
        if self._owned:
            await self._http.aclose()

    async def _request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                       body: bytes | None = None) -> Any:
        headers = builder_headers(self.creds, method, path, body, int(self._clock()))
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = await self._http.request(method, self.url + path, params=params,
                                                content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TransportError(f"relayer {method} {path}: {type(exc).__name__}") from None
        if response.status_code >= 400:
            try:
                message = str(response.json().get("error", response.text))
            except (ValueError, AttributeError):
                message = response.text
            raise ApiError(response.status_code, message[:300], route=f"relayer {method} {path}")
        try:
            return response.json()
        except ValueError:
            raise ParseError(f"relayer {path}: the answer is not JSON") from None

    async def nonce(self, owner: str, kind: str) -> int:
        """The wallet's next relayer nonce for transactions of `kind` (SAFE or WALLET)."""
        body = await self._request("GET", "/v1/account/transactions/params",
                                   params={"address": owner, "type": kind})
        nonce = body.get("nonce") if isinstance(body, dict) else None
        if not isinstance(nonce, str | int) or not str(nonce).isdigit():
            raise ParseError("relayer params: missing or non-numeric nonce")
        return int(nonce)

    async def relay_payload(self, owner: str) -> tuple[str, int]:
        """(relay address, nonce) for a PROXY transaction of `owner` (GET /relay-payload)."""
        body = await self._request("GET", "/relay-payload", params={"address": owner, "type": "PROXY"})
        relay = body.get("address") if isinstance(body, dict) else None
        nonce = body.get("nonce") if isinstance(body, dict) else None
        if not isinstance(relay, str) or not isinstance(nonce, str | int) or not str(nonce).isdigit():
            raise ParseError("relayer /relay-payload: expected {address, nonce}")
        return relay, int(nonce)

    async def submit(self, payload: dict[str, Any]) -> str:
        """POST /submit; the relayer's transactionID."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        answer = await self._request("POST", "/submit", body=body)
        tx_id = answer.get("transactionID") if isinstance(answer, dict) else None
        if not isinstance(tx_id, str) or not tx_id:
            raise ParseError("relayer /submit: no transactionID")
        return tx_id

    async def transaction(self, transaction_id: str) -> RelayerTx | None:
        """GET /transaction?id=…; None when the relayer does not know it."""
        return parse_relayer_tx(await self._request("GET", "/transaction",
                                                    params={"id": transaction_id}))
