"""POST /order on the simulator: takes what py-clob-client-v2 signs, refuses what the CLOB does."""

from __future__ import annotations

import json
from typing import Any

from py_clob_client_v2.order_utils import ExchangeOrderBuilderV2, Side, SignatureTypeV2
from py_clob_client_v2.order_utils.model.order_data_v2 import OrderDataV2, order_to_json_v2
from py_clob_client_v2.signer import Signer

from sim import Simulator
from sim.verify import CTF_EXCHANGE_V2, EXCHANGE_V3, NEG_RISK_EXCHANGE_V2
from tests.support.simfixtures import (
    BTC_YES,
    DEPOSIT_WALLET_0,
    FED_YES,
    HARDHAT_ADDRESSES,
    HARDHAT_KEYS,
    LAKERS,
    SAFE_WALLET_0,
    SimClient,
    account,
    l2_headers,
    sdk_limit_body,
    sdk_market_body,
)


def raw_body(
    owner: str,
    index: int,
    exchange: str,
    token: str,
    maker_amount: int,
    taker_amount: int,
    side: str = "BUY",
    order_type: str = "GTC",
    version: str = "2",
    maker: str | None = None,
    signature_type: int = 0,
    expiration: str = "0",
) -> dict[str, Any]:
    """A body with arbitrary amounts, signed by the SDK's ExchangeOrderBuilderV2."""
    signer = Signer(HARDHAT_KEYS[index], 137)
    builder = ExchangeOrderBuilderV2(exchange, 137, signer, domain_version=version)
    data = OrderDataV2(
        maker=maker or signer.address(),
        tokenId=token,
        makerAmount=str(maker_amount),
        takerAmount=str(taker_amount),
        side=Side.BUY if side == "BUY" else Side.SELL,
        signer=maker if signature_type == 3 else signer.address(),
        signatureType=SignatureTypeV2(signature_type),
        expiration=expiration,
    )
    return order_to_json_v2(builder.build_signed_order(data), owner, order_type)


def sdk_order_hash(body: dict[str, Any], exchange: str, version: str = "2") -> str:
    """The order hash as py-clob-client-v2 computes it."""
    from py_clob_client_v2.order_utils.model.order_data_v2 import OrderV2

    o = body["order"]
    order = OrderV2(
        salt=str(o["salt"]),
        maker=o["maker"],
        signer=o["signer"],
        tokenId=o["tokenId"],
        makerAmount=o["makerAmount"],
        takerAmount=o["takerAmount"],
        side=Side.BUY if o["side"] == "BUY" else Side.SELL,
        signatureType=SignatureTypeV2(o["signatureType"]),
        timestamp=o["timestamp"],
        metadata=o["metadata"],
        builder=o["builder"],
        expiration=o["expiration"],
    )
    b = ExchangeOrderBuilderV2(exchange, 137, Signer(HARDHAT_KEYS[0], 137), domain_version=version)
    return b.build_order_hash(b.build_order_typed_data(order))


def error_of(resp: Any) -> str:
    """The `error` text of a JSON error body."""
    return str(resp.json()["error"])


# ---- accepted ------------------------------------------------------------------------------------


def test_sdk_limit_order_eoa_accepted_with_order_hash_id(simulator: Simulator) -> None:
    """A resting EOA limit order from the SDK is accepted; its id is the SDK's order hash."""
    c = account(simulator, 1)
    body = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.60, 10, "BUY", "0.01", True)
    resp = c.post_order(body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["success"] is True and out["status"] == "live" and out["errorMsg"] == ""
    assert out["makingAmount"] == "" and out["takingAmount"] == "" and out["tradeIDs"] == []
    assert out["transactionsHashes"] == []
    assert out["orderID"] == sdk_order_hash(body, NEG_RISK_EXCHANGE_V2)
    [seen] = simulator.orders()
    assert (seen["exchange"], seen["domain_version"], seen["signature_type"]) == (
        NEG_RISK_EXCHANGE_V2,
        "2",
        0,
    )
    assert (
        seen["signer"] == HARDHAT_ADDRESSES[1] and seen["recovered_signer"] == HARDHAT_ADDRESSES[1]
    )
    assert (seen["price"], seen["original_size"], seen["size_matched"], seen["status"]) == (
        "0.6",
        "10",
        "0",
        "LIVE",
    )


def test_sdk_market_order_eoa_fills(simulator: Simulator) -> None:
    """An SDK market BUY of $10 fills at the best ask: spends $10, receives 10/0.65 shares."""
    c = account(simulator, 1)
    body = sdk_market_body(c.creds["apiKey"], 1, FED_YES, 10, "BUY", 0.65, "0.01", True)
    out = c.post_order(body).json()
    assert out["status"] == "matched", out
    assert (out["makingAmount"], out["takingAmount"]) == ("10", "15.384615")
    assert len(out["tradeIDs"]) == 1
    [seen] = simulator.orders()
    assert seen["order_type"] == "FOK" and seen["status"] == "MATCHED"


def test_sdk_deposit_wallet_order_accepted(simulator: Simulator) -> None:
    """A POLY_1271 order (maker = signer = deposit wallet, ERC-7739) by its owner is accepted."""
    c = account(simulator, 0)
    body = sdk_limit_body(
        c.creds["apiKey"],
        0,
        FED_YES,
        0.55,
        20,
        "BUY",
        "0.01",
        True,
        signature_type=3,
        funder=DEPOSIT_WALLET_0,
    )
    resp = c.post_order(body)
    assert resp.status_code == 200, resp.text
    [seen] = simulator.orders()
    assert seen["maker"] == DEPOSIT_WALLET_0 == seen["signer"]
    assert seen["recovered_signer"] == HARDHAT_ADDRESSES[0] and seen["signature_type"] == 3


def test_sdk_safe_wallet_order_accepted(simulator: Simulator) -> None:
    """A Safe (type 2) order signed by the owner EOA for its registered Safe is accepted."""
    c = account(simulator, 0)
    body = sdk_limit_body(
        c.creds["apiKey"],
        0,
        BTC_YES,
        0.05,
        10,
        "BUY",
        "0.001",
        False,
        signature_type=2,
        funder=SAFE_WALLET_0,
    )
    assert c.post_order(body).status_code == 200
    assert simulator.orders()[0]["exchange"] == CTF_EXCHANGE_V2


def test_protocol_v2_market_uses_exchange_v3(simulator: Simulator) -> None:
    """An order on a Protocol V2 market (positionId) verifies under ExchangeV3, domain version 3."""
    c = account(simulator, 1)
    body = sdk_limit_body(
        c.creds["apiKey"], 1, LAKERS, 0.4, 10, "BUY", "0.005", False, position=True
    )
    assert c.post_order(body).status_code == 200
    [seen] = simulator.orders()
    assert (seen["exchange"], seen["domain_version"], seen["exchange_name"]) == (
        EXCHANGE_V3,
        "3",
        "exchange_v3",
    )


def test_spaced_body_accepted_when_hmac_covers_those_bytes(simulator: Simulator) -> None:
    """The HMAC is checked over the exact bytes received, whatever their JSON spacing."""
    c = account(simulator, 1)
    body = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 10, "BUY", "0.01", True)
    assert c.request("POST", "/order", raw=json.dumps(body)).status_code == 200


# ---- refused: auth and signature ---------------------------------------------------------------


def test_bad_hmac_refused(simulator: Simulator) -> None:
    """HMAC over other bytes, wrong passphrase, or another POLY_ADDRESS → 401 Invalid api key."""
    c = account(simulator, 1)
    body = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 10, "BUY", "0.01", True)
    compact = json.dumps(body, separators=(",", ":"))
    headers = l2_headers(c.creds, c.address, "POST", "/order", compact)
    spaced = c.http.post("/order", content=json.dumps(body).encode(), headers=headers)
    assert (spaced.status_code, error_of(spaced)) == (401, "Unauthorized/Invalid api key")
    bad_pass = c.http.post(
        "/order", content=compact.encode(), headers={**headers, "POLY_PASSPHRASE": "x"}
    )
    assert bad_pass.status_code == 401
    other = c.http.post(
        "/order",
        content=compact.encode(),
        headers={**headers, "POLY_ADDRESS": HARDHAT_ADDRESSES[2]},
    )
    assert other.status_code == 401
    assert simulator.orders() == []


def test_tampered_signature_refused(simulator: Simulator) -> None:
    """Changing a signed field after signing → 400 invalid signature, nothing stored."""
    c = account(simulator, 1)
    body = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 10, "BUY", "0.01", True)
    body["order"]["takerAmount"] = str(int(body["order"]["takerAmount"]) + 10000)
    resp = c.post_order(body)
    assert (resp.status_code, error_of(resp)) == (400, "invalid signature")
    assert simulator.orders() == [] and simulator.rejections()[-1]["error"] == "invalid signature"


def test_wrong_domain_version_refused(simulator: Simulator) -> None:
    """Signed with domain version 3 for a CTF market → 400 order_version_mismatch."""
    c = account(simulator, 1)
    body = raw_body(
        c.creds["apiKey"], 1, NEG_RISK_EXCHANGE_V2, FED_YES, 6_000_000, 10_000_000, version="3"
    )
    resp = c.post_order(body)
    assert (resp.status_code, error_of(resp)) == (400, "order_version_mismatch")


def test_v1_order_refused_as_version_mismatch(simulator: Simulator) -> None:
    """A V1-format order (nonce/feeRateBps/taker, no timestamp) → 400 order_version_mismatch."""
    c = account(simulator, 1)
    body = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 10, "BUY", "0.01", True, version=1)
    resp = c.post_order(body)
    assert (resp.status_code, error_of(resp)) == (400, "order_version_mismatch")


def test_wrong_exchange_refused(simulator: Simulator) -> None:
    """A neg-risk market order signed for the standard exchange → 400 invalid signature."""
    c = account(simulator, 1)
    body = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 10, "BUY", "0.01", neg_risk=False)
    resp = c.post_order(body)
    assert (resp.status_code, error_of(resp)) == (400, "invalid signature")


def test_deposit_signature_for_wrong_exchange_refused(simulator: Simulator) -> None:
    """A deposit-wallet signature for the standard exchange on a neg-risk market → invalid."""
    c = account(simulator, 0)
    body = sdk_limit_body(
        c.creds["apiKey"],
        0,
        FED_YES,
        0.55,
        20,
        "BUY",
        "0.01",
        False,
        signature_type=3,
        funder=DEPOSIT_WALLET_0,
    )
    assert error_of(c.post_order(body)) == "invalid signature"


def test_signer_must_be_api_key_address(simulator: Simulator) -> None:
    """An order signed by account 1 posted with account 2's key → signer error."""
    c2 = account(simulator, 2)
    body = sdk_limit_body(c2.creds["apiKey"], 1, FED_YES, 0.6, 10, "BUY", "0.01", True)
    resp = c2.post_order(body)
    assert (resp.status_code, error_of(resp)) == (
        400,
        "the order signer address has to be the address of the API KEY",
    )


def test_owner_field_must_be_api_key(simulator: Simulator) -> None:
    """A body whose `owner` is not the calling API key → owner error."""
    c = account(simulator, 1)
    body = sdk_limit_body(
        "00000000-0000-0000-0000-000000000000", 1, FED_YES, 0.6, 10, "BUY", "0.01", True
    )
    assert error_of(c.post_order(body)) == "the order owner has to be the owner of the API KEY"


def test_unregistered_wallets_refused(simulator: Simulator) -> None:
    """Type 3 for an unknown deposit wallet → signer error; another's Safe → owner error."""
    c = account(simulator, 1)
    dep = sdk_limit_body(
        c.creds["apiKey"],
        1,
        FED_YES,
        0.6,
        10,
        "BUY",
        "0.01",
        True,
        signature_type=3,
        funder=DEPOSIT_WALLET_0,
    )
    assert (
        error_of(c.post_order(dep))
        == "the order signer address has to be the address of the API KEY"
    )
    safe = sdk_limit_body(
        c.creds["apiKey"],
        1,
        FED_YES,
        0.6,
        10,
        "BUY",
        "0.01",
        True,
        signature_type=2,
        funder=SAFE_WALLET_0,
    )
    assert error_of(c.post_order(safe)) == "the order owner has to be the owner of the API KEY"


def test_deposit_wallet_flow_enforced_per_account(simulator: Simulator) -> None:
    """An EOA flagged for the deposit-wallet flow cannot trade as type 0."""
    simulator.set_account_flags(HARDHAT_ADDRESSES[1], require_deposit_wallet=True)
    c = account(simulator, 1)
    body = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 10, "BUY", "0.01", True)
    assert (
        error_of(c.post_order(body))
        == "maker address not allowed, please use the deposit wallet flow"
    )


# ---- refused: order rules ------------------------------------------------------------------------


def test_off_tick_price_refused(simulator: Simulator) -> None:
    """0.605 on a 0.01-tick market → the tick-size message with the order id."""
    c = account(simulator, 1)
    body = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.605, 10, "BUY", "0.001", True)
    resp = c.post_order(body)
    oid = sdk_order_hash(body, NEG_RISK_EXCHANGE_V2)
    assert (resp.status_code, error_of(resp)) == (
        400,
        f"order {oid} is invalid. Price (0.605) breaks minimum tick size rule: 0.01",
    )


def test_size_under_minimum_refused(simulator: Simulator) -> None:
    """3 shares when the minimum is 5 → the min-size message."""
    c = account(simulator, 1)
    body = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 3, "BUY", "0.01", True)
    oid = sdk_order_hash(body, NEG_RISK_EXCHANGE_V2)
    assert (
        error_of(c.post_order(body))
        == f"order {oid} is invalid. Size (3) lower than the minimum: 5"
    )


def test_share_precision_refused(simulator: Simulator) -> None:
    """Shares with more than 2 decimals → lot-size error."""
    c = account(simulator, 1)
    body = raw_body(c.creds["apiKey"], 1, NEG_RISK_EXCHANGE_V2, FED_YES, 6_000_600, 10_001_000)
    assert "Maximum lot size is 2" in error_of(c.post_order(body))


def test_market_buy_precision_refused(simulator: Simulator) -> None:
    """A FOK BUY spending $10.123 (3 decimals) → market-buy accuracy error."""
    c = account(simulator, 1)
    body = raw_body(
        c.creds["apiKey"],
        1,
        NEG_RISK_EXCHANGE_V2,
        FED_YES,
        10_123_000,
        15_000_000,
        order_type="FOK",
    )
    assert error_of(c.post_order(body)) == (
        "invalid amounts, the market buy orders maker amount supports a max "
        "accuracy of 2 decimals, taker amount a max of 4 decimals"
    )


def test_marketable_buy_under_one_dollar_refused(simulator: Simulator) -> None:
    """A crossing BUY of 10 shares at 0.065 ($0.65) → the $1 marketable minimum."""
    c = account(simulator, 1)
    body = sdk_limit_body(c.creds["apiKey"], 1, BTC_YES, 0.065, 10, "BUY", "0.001", False)
    assert (
        error_of(c.post_order(body))
        == "invalid amount for a marketable BUY order ($0.65), min size: 1"
    )


def test_duplicate_refused(simulator: Simulator) -> None:
    """The same signed bytes posted twice → Duplicated the second time."""
    c = account(simulator, 1)
    body = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 10, "BUY", "0.01", True)
    first = c.post_order(body).json()["orderID"]
    resp = c.post_order(body)
    assert (resp.status_code, error_of(resp)) == (400, f"order {first} is invalid. Duplicated.")
    assert len(simulator.orders()) == 1


def test_balance_checked_including_resting_orders(simulator: Simulator) -> None:
    """Account 2 holds $150: a $120 bid rests, a second $60 bid is refused (funds committed)."""
    c = account(simulator, 2)
    ok = c.post_order(sdk_limit_body(c.creds["apiKey"], 2, FED_YES, 0.6, 200, "BUY", "0.01", True))
    assert ok.status_code == 200
    resp = c.post_order(
        sdk_limit_body(c.creds["apiKey"], 2, FED_YES, 0.6, 100, "BUY", "0.01", True)
    )
    assert resp.status_code == 400
    assert (
        error_of(resp)
        == "not enough balance / allowance: the balance is not enough -> balance: 30000000"
    )


def test_sell_without_shares_refused(simulator: Simulator) -> None:
    """Selling shares the maker does not hold → balance error."""
    c = account(simulator, 1)
    body = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.7, 10, "SELL", "0.01", True)
    assert error_of(c.post_order(body)).startswith("not enough balance / allowance")


def test_missing_allowance_refused(simulator: Simulator) -> None:
    """pUSD without an approval of the neg-risk exchange → allowance error."""
    simulator.set_allowance(HARDHAT_ADDRESSES[1], "COLLATERAL", NEG_RISK_EXCHANGE_V2, 0)
    c = account(simulator, 1)
    body = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 10, "BUY", "0.01", True)
    assert "the allowance is not enough" in error_of(c.post_order(body))


def test_post_only_crossing_refused_and_resting_accepted(simulator: Simulator) -> None:
    """postOnly at the ask crosses → refused; postOnly below the ask rests."""
    c = account(simulator, 1)
    crossing = sdk_limit_body(
        c.creds["apiKey"], 1, FED_YES, 0.65, 10, "BUY", "0.01", True, post_only=True
    )
    assert error_of(c.post_order(crossing)) == "invalid post-only order: order crosses book"
    resting = sdk_limit_body(
        c.creds["apiKey"], 1, FED_YES, 0.61, 10, "BUY", "0.01", True, post_only=True
    )
    assert c.post_order(resting).json()["status"] == "live"


def test_fok_not_fully_fillable_refused(simulator: Simulator) -> None:
    """A $900 FOK at ≤0.65 (only $187.60 offered there) is killed and the book is untouched."""
    c = account(simulator, 1)
    before = simulator.book(FED_YES)["asks"]
    body = sdk_market_body(c.creds["apiKey"], 1, FED_YES, 900, "BUY", 0.65, "0.01", True)
    assert (
        error_of(c.post_order(body))
        == "order couldn't be fully filled. FOK orders are fully filled or killed."
    )
    assert simulator.book(FED_YES)["asks"] == before and simulator.orders() == []


def test_fak_without_match_refused(simulator: Simulator) -> None:
    """A FAK BUY below the best ask finds nothing → the FAK message."""
    c = account(simulator, 1)
    body = sdk_market_body(
        c.creds["apiKey"], 1, FED_YES, 10, "BUY", 0.5, "0.01", True, order_type="FAK"
    )
    assert error_of(c.post_order(body)) == (
        "no orders found to match with FAK order. FAK orders are partially "
        "filled or killed if no match is found."
    )


def test_closed_and_paused_markets_refused(simulator: Simulator) -> None:
    """A closed market and a market not accepting orders refuse new orders."""
    c = account(simulator, 1)
    old_yes = simulator.token_id("old", "Yes")
    closed = sdk_limit_body(c.creds["apiKey"], 1, old_yes, 0.5, 10, "BUY", "0.01", False)
    assert error_of(c.post_order(closed)) == "the market is closed"
    simulator.set_market("fed", accepting_orders=False)
    paused = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 10, "BUY", "0.01", True)
    assert error_of(c.post_order(paused)) == "the market is not yet ready to process new orders"


def test_expiration_rules(simulator: Simulator) -> None:
    """GTD needs an expiration more than 60 s ahead; GTC must carry expiration 0."""
    c = account(simulator, 1)
    now = int(simulator.now())
    soon = sdk_limit_body(
        c.creds["apiKey"],
        1,
        FED_YES,
        0.6,
        10,
        "BUY",
        "0.01",
        True,
        order_type="GTD",
        expiration=now + 30,
    )
    assert error_of(c.post_order(soon)) == "invalid expiration"
    gtc = sdk_limit_body(
        c.creds["apiKey"], 1, FED_YES, 0.6, 10, "BUY", "0.01", True, expiration=now + 3600
    )
    assert error_of(c.post_order(gtc)) == "invalid expiration"
    later = sdk_limit_body(
        c.creds["apiKey"],
        1,
        FED_YES,
        0.6,
        10,
        "BUY",
        "0.01",
        True,
        order_type="GTD",
        expiration=now + 3600,
    )
    assert c.post_order(later).json()["status"] == "live"


def test_unknown_token_is_not_found(simulator: Simulator) -> None:
    """An order for a token no market has → 404 market not found."""
    c = account(simulator, 1)
    body = raw_body(c.creds["apiKey"], 1, CTF_EXCHANGE_V2, "123456789", 6_000_000, 10_000_000)
    resp = c.post_order(body)
    assert (resp.status_code, error_of(resp)) == (404, "market not found")


def test_malformed_payload_refused(simulator: Simulator) -> None:
    """A body without the order object, or with a non-numeric amount, → 400."""
    c = account(simulator, 1)
    assert c.post_order({"owner": c.creds["apiKey"]}).status_code == 400
    body = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 10, "BUY", "0.01", True)
    body["order"]["makerAmount"] = "6e6"
    assert c.post_order(body).status_code == 400


def test_trading_modes(simulator: Simulator) -> None:
    """cancel-only answers 503 to new orders; post-only mode refuses other orders with its code."""
    c = account(simulator, 1)
    simulator.configure(trading_mode="cancel_only")
    body = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 10, "BUY", "0.01", True)
    resp = c.post_order(body)
    assert resp.status_code == 503 and "cancel-only" in error_of(resp)
    simulator.configure(trading_mode="post_only")
    resp = c.post_order(body)
    assert resp.status_code == 503 and resp.json()["code"] == "post_only_mode"


# ---- batch ---------------------------------------------------------------------------------------


def test_batch_of_sixteen_refused(simulator: Simulator) -> None:
    """POST /orders with 16 entries → 400 naming the 15 maximum; nothing stored."""
    c = account(simulator, 1)
    bodies = [
        sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 10, "BUY", "0.01", True)
        for _ in range(16)
    ]
    resp = c.request("POST", "/orders", bodies)
    assert (resp.status_code, error_of(resp)) == (
        400,
        "Too many orders in payload: 16, max allowed: 15",
    )
    assert simulator.orders() == []


def test_batch_reports_each_order(simulator: Simulator) -> None:
    """A batch answers 200 with one entry per order: successes and per-order errors."""
    c = account(simulator, 1)
    good = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 10, "BUY", "0.01", True)
    small = sdk_limit_body(c.creds["apiKey"], 1, FED_YES, 0.6, 2, "BUY", "0.01", True)
    resp = c.request("POST", "/orders", [good, small])
    assert resp.status_code == 200
    first, second = resp.json()
    assert first["success"] is True and first["status"] == "live"
    assert second["success"] is False and "lower than the minimum" in second["errorMsg"]
    assert len(simulator.orders()) == 1


def test_official_client_places_and_cancels(simulator: Simulator) -> None:
    """py-clob-client-v2 ClobClient: L1 create/derive, post a resting order, read, cancel it."""
    from py_clob_client_v2.client import ClobClient
    from py_clob_client_v2.clob_types import OrderArgsV2, OrderPayload, PartialCreateOrderOptions

    client = ClobClient(simulator.clob_url, chain_id=137, key=HARDHAT_KEYS[1])
    creds = client.create_or_derive_api_key()
    client.set_api_creds(creds)
    resp = client.create_and_post_order(
        OrderArgsV2(token_id=FED_YES, price=0.6, size=10, side="BUY"),
        PartialCreateOrderOptions(tick_size="0.01", neg_risk=True),
    )
    assert resp["success"] is True and resp["status"] == "live"
    assert client.get_order(resp["orderID"])["status"] == "LIVE"
    assert [o["id"] for o in client.get_open_orders()] == [resp["orderID"]]
    cancel = client.cancel_order(OrderPayload(orderID=resp["orderID"]))
    assert cancel == {"canceled": [resp["orderID"]], "not_canceled": {}}
    assert SimClient is not None  # helper imported for type context


def test_commitments_follow_fills_and_cancels(simulator: Simulator) -> None:
    """Funds committed by a resting bid shrink as it fills and come back when it is cancelled."""
    c = account(simulator, 2)
    oid = c.post_order(sdk_limit_body(c.creds["apiKey"], 2, FED_YES, 0.6, 200, "BUY", "0.01", True))
    simulator.sweep(FED_YES, "SELL", "0.6", str(402.17 + 1210.33 + 845 + 3120.5 + 100))
    assert simulator.balances(HARDHAT_ADDRESSES[2])["pusd"] == "90"  # paid 60, 60 still committed
    exact = sdk_limit_body(c.creds["apiKey"], 2, FED_YES, 0.6, 50, "BUY", "0.01", True)
    assert c.post_order(exact).status_code == 200
    over = sdk_limit_body(c.creds["apiKey"], 2, FED_YES, 0.6, 5, "BUY", "0.01", True)
    assert c.post_order(over).status_code == 400
    c.request("DELETE", "/order", {"orderID": oid.json()["orderID"]})
    assert c.post_order(over).status_code == 200
