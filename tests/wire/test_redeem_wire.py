"""The redeem wire layer: calldata (adapters, Router, never the CTF), EIP-1559 signing, JSON-RPC
answers (respx), relayer requests whose signatures recover to the owner."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes

from tests.support.keys import TEST_ADDRESS, TEST_KEY
from wire.chain_tx import ChainClient, parse_receipt, sign_transaction, with_margin
from wire.errors import ParseError
from wire.redeem_calls import (
    COLLATERAL_ADAPTER,
    CONDITIONAL_TOKENS,
    NEG_RISK_COLLATERAL_ADAPTER,
    PROTOCOL_V2_ROUTER,
    PUSD,
    REDEEM_POSITIONS,
    ROUTER_REDEEM,
    ctf_redeem_call,
    redeem_calls,
    router_redeem_call,
)
from wire.relayer import (
    BuilderCreds,
    RelayerClient,
    builder_headers,
    deposit_wallet_payload,
    deposit_wallet_typed_data,
    pack_safe_signature,
    parse_relayer_tx,
    proxy_call_data,
    proxy_hash,
    proxy_payload,
    safe_digest,
    safe_payload,
)
from wire.rpc import RpcError, RpcErrorKind

RPC = "http://127.0.0.1:8545"
RELAYER = "http://127.0.0.1:9999"
CONDITION = "0x" + "ab" * 32
V2_CONDITION = "0x01" + "cd" * 30
SAFE = "0xd93B25cb943D14d0d34FBaF01Fc93a0f8b5F6E47"
CREDS = BuilderCreds("key", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "pass")


def test_ctf_markets_redeem_through_the_collateral_adapters_with_pusd() -> None:
    """redeemPositions(pUSD, 0, condition, [1, 2]) on the adapter (neg-risk: its own adapter)."""
    for neg_risk, target in ((False, COLLATERAL_ADAPTER), (True, NEG_RISK_COLLATERAL_ADAPTER)):
        call = ctf_redeem_call(CONDITION, neg_risk=neg_risk)
        data = bytes.fromhex(call.data[2:])
        assert call.to == target and data[:4] == REDEEM_POSITIONS == bytes.fromhex("01b7037c")
        collateral, parent, condition, sets = abi_decode(["address", "bytes32", "bytes32", "uint256[]"], data[4:])
        assert (collateral.lower(), parent, "0x" + condition.hex(), list(sets)) == (
            PUSD.lower(), b"\x00" * 32, CONDITION, [1, 2])
    calls = redeem_calls(CONDITION, version="v1", neg_risk=False, balances={})
    assert [c.to for c in calls] == [COLLATERAL_ADAPTER] and CONDITIONAL_TOKENS not in {c.to for c in calls}


def test_protocol_v2_markets_redeem_per_outcome_on_the_router() -> None:
    """redeem(bytes31 condition, index, amount) per outcome with a balance; a 32-byte id's
    outcome byte is dropped; bad input refused."""
    calls = redeem_calls(V2_CONDITION, version="v2", neg_risk=False, balances={0: 7_000_000, 1: 0})
    assert len(calls) == 1 and calls[0].to == PROTOCOL_V2_ROUTER
    data = bytes.fromhex(calls[0].data[2:])
    assert data[:4] == ROUTER_REDEEM
    condition, index, amount = abi_decode(["bytes31", "uint256", "uint256"], data[4:])
    assert ("0x" + condition.hex(), index, amount) == (V2_CONDITION, 0, 7_000_000)
    assert router_redeem_call(V2_CONDITION + "00", 1, 5).data == router_redeem_call(V2_CONDITION, 1, 5).data
    with pytest.raises(ValueError):
        router_redeem_call(V2_CONDITION, 2, 5)
    with pytest.raises(ValueError):
        ctf_redeem_call("0x1234", neg_risk=False)


def test_a_signed_transaction_is_eip1559_from_the_key_and_its_hash_known_first() -> None:
    """The signed bytes decode to exactly what was asked, recover to the key's address, and the
    hash is keccak of those bytes (stored before sending)."""
    signed = sign_transaction(TEST_KEY, chain_id=137, nonce=4, to=COLLATERAL_ADAPTER, data="0x01b7037c",
                              gas=with_margin(100_000), max_fee=60 * 10**9, priority_fee=30 * 10**9)
    fields = TypedTransaction.from_bytes(HexBytes(signed.raw)).as_dict()
    assert (fields["type"], fields["chainId"], fields["nonce"], fields["gas"]) == (2, 137, 4, 130_000)
    assert "0x" + bytes(fields["to"]).hex() == COLLATERAL_ADAPTER.lower()
    assert Account.recover_transaction(signed.raw) == TEST_ADDRESS
    from eth_hash.auto import keccak
    assert signed.tx_hash == "0x" + keccak(signed.raw).hex()


@respx.mock
def test_json_rpc_answers_and_errors() -> None:
    """Results parse; node errors keep their meaning (already known, nonce too low); garbage and
    HTTP errors are typed errors, never a silent None."""
    answers: dict[str, dict[str, Any]] = {
        "eth_getTransactionCount": {"result": "0x5"},
        "eth_estimateGas": {"result": "0x1d4c0"},
        "eth_maxPriorityFeePerGas": {"error": {"code": -32601, "message": "method not found"}},
        "eth_getBlockByNumber": {"result": {"baseFeePerGas": "0x3b9aca00", "number": "0x10"}},
        "eth_getTransactionReceipt": {"result": None},
        "eth_sendRawTransaction": {"error": {"code": -32000, "message": "already known"}},
    }

    def reply(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], **answers[body["method"]]})

    respx.post(RPC).mock(side_effect=reply)

    async def go() -> None:
        c = ChainClient(RPC)
        try:
            assert await c.pending_nonce(TEST_ADDRESS) == 5
            assert await c.estimate_gas(TEST_ADDRESS, COLLATERAL_ADAPTER, "0x") == 120_000
            assert await c.fees() == (2 * 10**9 + 30 * 10**9, 30 * 10**9)  # default tip
            assert await c.receipt("0x" + "1" * 64) is None
            with pytest.raises(RpcError) as err:
                await c.send_raw(b"\x02")
            assert err.value.already_known and not err.value.nonce_too_low
        finally:
            await c.aclose()

    asyncio.run(go())


@respx.mock
def test_json_rpc_transport_and_shape_failures() -> None:
    """A dropped connection and a non-JSON body are classified RpcErrors; a bad quantity a ParseError."""
    route = respx.post(RPC)

    async def call() -> object:
        c = ChainClient(RPC)
        try:
            return await c.chain_id()
        finally:
            await c.aclose()

    route.mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(RpcError) as err:
        asyncio.run(call())
    assert err.value.kind is RpcErrorKind.TRANSPORT
    route.mock(return_value=httpx.Response(200, content=b"<html>"))
    with pytest.raises(RpcError) as err:
        asyncio.run(call())
    assert err.value.kind is RpcErrorKind.OTHER
    route.mock(return_value=httpx.Response(200, json={"jsonrpc": "2.0", "id": 1, "result": "12"}))
    with pytest.raises(ParseError):
        asyncio.run(call())


def test_receipts() -> None:
    """status 0x1 → success; 0x0 → reverted; a malformed receipt is refused."""
    ok = parse_receipt({"transactionHash": "0xAB", "status": "0x1", "blockNumber": "0x10", "gasUsed": "0x5"})
    assert ok is not None and ok.success and ok.block_number == 16 and ok.tx_hash == "0xab"
    bad = parse_receipt({"transactionHash": "0xab", "status": "0x0", "blockNumber": "0x11"})
    assert bad is not None and not bad.success
    with pytest.raises(ParseError):
        parse_receipt({"status": 1, "blockNumber": "0x1"})


def test_safe_request_is_signed_by_the_owner_with_v_plus_4() -> None:
    """The SAFE request's signature is eth_sign over the SafeTx hash with v raised by 4."""
    call = ctf_redeem_call(CONDITION, neg_risk=True)
    request = safe_payload(TEST_KEY, TEST_ADDRESS, SAFE, call, 3, 137, "m")
    sig = bytes.fromhex(request["signature"][2:])
    assert sig[64] in (31, 32)
    restored = sig[:64] + bytes([sig[64] - 4])
    digest = safe_digest(SAFE, call, 3, 137)
    assert Account.recover_message(encode_defunct(primitive=digest), signature=restored) == TEST_ADDRESS
    assert (request["type"], request["proxyWallet"], request["nonce"], request["to"]) == (
        "SAFE", SAFE, "3", call.to)
    assert pack_safe_signature(b"\x00" * 64 + b"\x01")[-2:] == "20"


def test_deposit_wallet_batch_and_proxy_requests_recover_to_the_owner() -> None:
    """The WALLET batch (EIP-712 `Batch`) and the PROXY ("rlx:" hash) recover to the owner."""
    call = ctf_redeem_call(CONDITION, neg_risk=False)
    wallet = "0xBc0fF067b7740Eff76C1ca93c875Ba6B890d6B50"
    request = deposit_wallet_payload(TEST_KEY, TEST_ADDRESS, wallet, [call], 9, 1_900_000_000, 137)
    typed = deposit_wallet_typed_data(wallet, [call], 9, 1_900_000_000, 137)
    assert Account.recover_message(encode_typed_data(full_message=typed),
                                   signature=request["signature"]) == TEST_ADDRESS
    assert request["depositWalletParams"]["calls"] == [{"target": call.to, "value": "0", "data": call.data}]
    relay = "0x" + "5e" * 20
    proxy = proxy_payload(TEST_KEY, TEST_ADDRESS, "0x365f0CA36Ae1f641E02fE3B7743673da42A13A70", [call], 2, relay)
    digest = proxy_hash(TEST_ADDRESS, proxy_call_data([call]), 200_000, 2, relay)
    assert Account.recover_message(encode_defunct(primitive=digest), signature=proxy["signature"]) == TEST_ADDRESS


def test_builder_headers_are_the_l2_hmac() -> None:
    """POLY_BUILDER_SIGNATURE = base64url(HMAC-SHA256(secret, ts + METHOD + path + body))."""
    from sim.verify import l2_signature_ok

    h = builder_headers(CREDS, "post", "/submit", b'{"a":1}', 1_800_000_000)
    assert h["POLY_BUILDER_API_KEY"] == "key" and h["POLY_BUILDER_TIMESTAMP"] == "1800000000"
    assert l2_signature_ok(CREDS.secret, "1800000000", "POST", "/submit", '{"a":1}', h["POLY_BUILDER_SIGNATURE"])
    assert "AAEC" not in repr(CREDS)


@respx.mock
def test_relayer_client_routes() -> None:
    """nonce, submit and transaction state, parsed; an error status is an ApiError."""
    respx.get(f"{RELAYER}/v1/account/transactions/params").mock(
        return_value=httpx.Response(200, json={"address": TEST_ADDRESS, "nonce": "12"}))
    respx.post(f"{RELAYER}/submit").mock(
        return_value=httpx.Response(200, json={"transactionID": "tx-1", "state": "STATE_NEW"}))
    respx.get(f"{RELAYER}/transaction").mock(return_value=httpx.Response(200, json=[
        {"transactionID": "tx-1", "transactionHash": "0xAB", "state": "STATE_CONFIRMED"}]))

    async def go() -> None:
        r = RelayerClient(RELAYER, CREDS)
        try:
            assert await r.nonce(TEST_ADDRESS, "SAFE") == 12
            assert await r.submit({"type": "SAFE"}) == "tx-1"
            tx = await r.transaction("tx-1")
            assert tx is not None and tx.confirmed and tx.transaction_hash == "0xab"
        finally:
            await r.aclose()

    asyncio.run(go())
    assert parse_relayer_tx([]) is None
    failed = parse_relayer_tx({"transactionID": "x", "state": "STATE_FAILED"})
    assert failed is not None and failed.failed and not failed.confirmed
    with pytest.raises(ParseError):
        parse_relayer_tx({"state": "STATE_NEW"})
    assert Decimal(1) > 0
