"""Polymarket's relayer, as far as redemptions need it: Safe and deposit-wallet transactions.

Routes: `GET /v1/account/transactions/params?address=&type=SAFE|WALLET` → `{address, nonce}`;
`GET /relay-payload?address=&type=PROXY` → `{address: <relay>, nonce}`;
`POST /submit` → `{transactionID, state: "STATE_NEW"}`; `GET /transaction?id=` → `[{…}]`
(states STATE_NEW → STATE_CONFIRMED, or STATE_FAILED for a reverted call).

Every route checks the Builder API key headers (`POLY_BUILDER_API_KEY`, `_TIMESTAMP`,
`_PASSPHRASE`, `_SIGNATURE` = the L2 HMAC over timestamp + method + path + body) against the key
configured with `Simulator.configure(relayer_api_key=…, relayer_secret=…, relayer_passphrase=…)`.
A SAFE request must be signed (eth_sign of the SafeTx EIP-712 hash, v + 4) by the owner of a
registered Safe; a WALLET request (EIP-712 `Batch`, domain DepositWallet v1) by an owner or
session signer of a registered deposit wallet, before its deadline; a PROXY request (eth_sign of
keccak("rlx:" ‖ from ‖ factory ‖ data ‖ 0 ‖ 0 ‖ gas limit ‖ nonce ‖ hub ‖ relay)) by the owner of a
registered proxy wallet, its data the factory's `proxy(...)` of CALLs. The nonce must be the
wallet's next one (a replay is refused: "nonce … does not match"). The hashes are computed
here from the EIP-712 text, independently of the project's signing code.

Invariant: a (wallet, nonce) executes at most once; calls run as the wallet (`sim.chain_tx_api`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_abi import encode as abi_encode
from eth_hash.auto import keccak

from sim.chain_tx_api import execute_call
from sim.http import HttpError, Request, Response, Router
from sim.settlement import Revert
from sim.verify import SignatureError, ecrecover, hex_bytes, l2_signature_ok

if TYPE_CHECKING:
    from sim.core import Simulator
    from sim.state import World

SAFE_TX_TYPEHASH = keccak(
    b"SafeTx(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,"
    b"uint256 baseGas,uint256 gasPrice,address gasToken,address refundReceiver,uint256 nonce)")
SAFE_DOMAIN_TYPEHASH = keccak(b"EIP712Domain(uint256 chainId,address verifyingContract)")
CALL_TYPEHASH = keccak(b"Call(address target,uint256 value,bytes data)")
BATCH_TYPEHASH = keccak(
    b"Batch(address wallet,uint256 nonce,uint256 deadline,Call[] calls)"
    b"Call(address target,uint256 value,bytes data)")
WALLET_DOMAIN_TYPEHASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
PROXY_SELECTOR = keccak(b"proxy((uint8,address,uint256,bytes)[])")[:4]
RELAY_ADDRESS = "0x" + "5e" * 20  # the relay the simulated relayer hands out


def _fail(status: int, message: str) -> HttpError:
    return HttpError(status, {"error": message})


def _auth(world: World, req: Request) -> None:
    cfg = world.config
    key = req.headers.get("POLY_BUILDER_API_KEY")
    if not cfg.relayer_api_key or key != cfg.relayer_api_key:
        raise _fail(401, "invalid builder api key")
    if req.headers.get("POLY_BUILDER_PASSPHRASE") != cfg.relayer_passphrase:
        raise _fail(401, "invalid builder credentials")
    ok = l2_signature_ok(cfg.relayer_secret, req.headers.get("POLY_BUILDER_TIMESTAMP", ""), req.method,
                         req.path, req.text, req.headers.get("POLY_BUILDER_SIGNATURE", ""))
    if not ok:
        raise _fail(401, "invalid builder signature")


def safe_tx_hash(chain_id: int, safe: str, to: str, data: bytes, nonce: int) -> bytes:
    """The Safe's EIP-712 hash of one CALL without gas refund."""
    domain = keccak(abi_encode(["bytes32", "uint256", "address"], [SAFE_DOMAIN_TYPEHASH, chain_id, safe]))
    struct = keccak(abi_encode(
        ["bytes32", "address", "uint256", "bytes32", "uint8", "uint256", "uint256", "uint256",
         "address", "address", "uint256"],
        [SAFE_TX_TYPEHASH, to, 0, keccak(data), 0, 0, 0, 0, "0x" + "00" * 20, "0x" + "00" * 20, nonce]))
    return keccak(b"\x19\x01" + domain + struct)


def batch_hash(chain_id: int, wallet: str, nonce: int, deadline: int,
               calls: list[tuple[str, bytes]]) -> bytes:
    """The deposit wallet's EIP-712 hash of a batch of calls (value 0)."""
    domain = keccak(abi_encode(["bytes32", "bytes32", "bytes32", "uint256", "address"],
                               [WALLET_DOMAIN_TYPEHASH, keccak(b"DepositWallet"), keccak(b"1"),
                                chain_id, wallet]))
    call_hashes = b"".join(keccak(abi_encode(["bytes32", "address", "uint256", "bytes32"],
                                             [CALL_TYPEHASH, to, 0, keccak(data)])) for to, data in calls)
    struct = keccak(abi_encode(["bytes32", "address", "uint256", "uint256", "bytes32"],
                               [BATCH_TYPEHASH, wallet, nonce, deadline, keccak(call_hashes)]))
    return keccak(b"\x19\x01" + domain + struct)


def get_params(sim: Simulator, req: Request) -> Response:
    """GET /v1/account/transactions/params."""
    world = sim.world
    _auth(world, req)
    address, kind = (req.param("address") or "").lower(), (req.param("type") or "").upper()
    if not address or kind not in ("SAFE", "WALLET"):
        raise _fail(400, "address and type (SAFE or WALLET) are required")
    return Response(200, {"address": address, "nonce": str(world.relayer_nonces.get((address, kind), 0))})


def get_relay_payload(sim: Simulator, req: Request) -> Response:
    """GET /relay-payload (PROXY)."""
    world = sim.world
    _auth(world, req)
    address = (req.param("address") or "").lower()
    if not address:
        raise _fail(400, "address is required")
    return Response(200, {"address": RELAY_ADDRESS,
                          "nonce": str(world.relayer_nonces.get((address, "PROXY"), 0))})


def _proxy_calls(data: bytes) -> list[tuple[str, bytes]]:
    from eth_abi import decode as abi_decode

    if data[:4] != PROXY_SELECTOR:
        raise _fail(400, "PROXY data must call the factory's proxy(...)")
    (calls,) = abi_decode(["(uint8,address,uint256,bytes)[]"], data[4:])
    if any(int(type_code) != 1 or int(value) != 0 for type_code, _, value, _ in calls):
        raise _fail(400, "only CALLs without value are relayed")
    return [(str(to), bytes(payload)) for _, to, _, payload in calls]


def _check_nonce(world: World, owner: str, kind: str, nonce: int) -> None:
    expected = world.relayer_nonces.get((owner.lower(), kind), 0)
    if nonce != expected:
        raise _fail(400, f"batch nonce {nonce} does not match on-chain nonce {expected}")


def submit(sim: Simulator, req: Request) -> Response:
    """POST /submit: verify, execute at once, remember the transaction."""
    world = sim.world
    _auth(world, req)
    body = req.json()
    if not isinstance(body, dict):
        raise _fail(400, "expected a JSON object")
    kind, owner = str(body.get("type", "")), str(body.get("from", ""))
    try:
        nonce = int(str(body.get("nonce")))
        signature = hex_bytes(str(body.get("signature", "")))
    except (TypeError, ValueError) as exc:
        raise _fail(400, "bad nonce or signature") from exc
    chain_id = world.config.chain_id
    try:
        if kind == "SAFE":
            safe = str(body.get("proxyWallet", ""))
            record = world.wallet(safe)
            if record is None or record.kind != "safe" or record.owner.lower() != owner.lower():
                raise _fail(400, "unknown Safe for this owner")
            to, data = str(body.get("to", "")), hex_bytes(str(body.get("data", "0x")))
            v = signature[64] - 4 if len(signature) == 65 and signature[64] in (31, 32) else -1
            if v < 0:
                raise _fail(400, "a Safe eth_sign signature has v = 31 or 32")
            digest = safe_tx_hash(chain_id, record.address, to, data, nonce)
            prefixed = keccak(b"\x19Ethereum Signed Message:\n32" + digest)
            if ecrecover(prefixed, signature[:64] + bytes([v])).lower() != owner.lower():
                raise _fail(400, "invalid Safe signature")
            _check_nonce(world, owner, kind, nonce)
            holder, calls = record.address, [(to, data)]
        elif kind == "WALLET":
            params = body.get("depositWalletParams") or {}
            wallet = str(params.get("depositWallet", ""))
            record = world.wallet(wallet)
            if record is None or record.kind != "deposit" or owner.lower() not in record.signers:
                raise _fail(400, "unknown deposit wallet for this signer")
            deadline = int(str(params.get("deadline", "0")))
            if deadline < world.clock.now():
                raise _fail(400, "batch deadline passed")
            calls = [(str(c["target"]), hex_bytes(str(c["data"]))) for c in params.get("calls", [])]
            digest = batch_hash(chain_id, record.address, nonce, deadline, calls)
            if ecrecover(digest, signature).lower() != owner.lower():
                raise _fail(400, "invalid deposit-wallet signature")
            _check_nonce(world, owner, kind, nonce)
            holder = record.address
        elif kind == "PROXY":
            proxy = str(body.get("proxyWallet", ""))
            record = world.wallet(proxy)
            if record is None or record.kind != "proxy" or record.owner.lower() != owner.lower():
                raise _fail(400, "unknown proxy wallet for this owner")
            params = body.get("signatureParams") or {}
            data = hex_bytes(str(body.get("data", "0x")))
            packed = (b"rlx:" + hex_bytes(owner) + hex_bytes(str(body.get("to", ""))) + data
                      + int(str(params.get("relayerFee", "0"))).to_bytes(32, "big")
                      + int(str(params.get("gasPrice", "0"))).to_bytes(32, "big")
                      + int(str(params.get("gasLimit", "0"))).to_bytes(32, "big")
                      + nonce.to_bytes(32, "big") + hex_bytes(str(params.get("relayHub", "")))
                      + hex_bytes(str(params.get("relay", ""))))
            prefixed = keccak(b"\x19Ethereum Signed Message:\n32" + keccak(packed))
            if ecrecover(prefixed, signature).lower() != owner.lower():
                raise _fail(400, "invalid proxy signature")
            _check_nonce(world, owner, kind, nonce)
            holder, calls = record.address, _proxy_calls(data)
        else:
            raise _fail(400, f"unsupported transaction type {kind!r}")
    except (SignatureError, KeyError, ValueError, TypeError) as exc:
        raise _fail(400, f"invalid request: {exc}") from exc
    world.relayer_nonces[(owner.lower(), kind)] = nonce + 1
    tx_id, tx_hash = world.new_uuid(), world.new_tx_hash()
    state = "STATE_CONFIRMED"
    try:
        for to, data in calls:
            execute_call(world, holder, to, data, via=f"relayer:{tx_id}")
    except Revert:
        state = "STATE_FAILED"
    world.relayer_txs[tx_id] = {"transactionID": tx_id, "transactionHash": tx_hash, "from": owner.lower(),
                                "proxyAddress": holder.lower(), "nonce": str(nonce), "state": state,
                                "type": kind, "metadata": str(body.get("metadata", ""))}
    return Response(200, {"transactionID": tx_id, "state": "STATE_NEW"})


def get_transaction(sim: Simulator, req: Request) -> Response:
    """GET /transaction?id=…: a one-element list (empty when unknown)."""
    _auth(sim.world, req)
    tx = sim.world.relayer_txs.get(req.param("id") or "")
    return Response(200, [dict(tx)] if tx else [])


def not_found(path: str) -> Response:
    """Any other route."""
    return Response(404, {"error": "not found"})


def build_router() -> Router:
    """The relayer's routes."""
    r = Router()
    r.add("GET", r"/v1/account/transactions/params", get_params)
    r.add("GET", r"/relay-payload", get_relay_payload)
    r.add("POST", r"/submit", submit)
    r.add("GET", r"/transaction", get_transaction)
    return r

