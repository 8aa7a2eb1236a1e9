"""The simulator's independent verifier reproduces every shared vector and refuses forgeries."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sim.verify import (
    CTF_EXCHANGE_V2,
    EXCHANGE_V3,
    NEG_RISK_EXCHANGE_V2,
    DomainMismatch,
    OrderStruct,
    SignatureError,
    domain_separator,
    hex_bytes,
    identify_domain,
    l2_signature,
    order_digest,
    parse_deposit_signature,
    recover_clob_auth,
    recover_order_signer,
)
from tests.support.simfixtures import POLYMARKET

VECTORS = json.loads((POLYMARKET / "vectors.json").read_text())
SAMPLES = json.loads((POLYMARKET / "fixtures" / "v2_post_order_samples.json").read_text())["samples"]
ORDER_VECTORS = [v for v in VECTORS["vectors"] if v["kind"] == "order_v2"]


def struct_of(order: dict[str, Any]) -> OrderStruct:
    """The signed struct of a wire order."""
    return OrderStruct(
        salt=int(order["salt"]),
        maker=order["maker"],
        signer=order["signer"],
        token_id=int(order["tokenId"]),
        maker_amount=int(order["makerAmount"]),
        taker_amount=int(order["takerAmount"]),
        side=0 if order["side"] == "BUY" else 1,
        signature_type=int(order["signatureType"]),
        timestamp=int(order["timestamp"]),
        metadata=hex_bytes(order["metadata"]),
        builder=hex_bytes(order["builder"]),
    )


def test_vectors_file_has_order_vectors() -> None:
    """The shared vectors hold order_v2 cases of every signature type (no empty loop)."""
    types = {v["inputs"]["post_order_body"]["order"]["signatureType"] for v in ORDER_VECTORS}
    assert len(ORDER_VECTORS) >= 30 and types == {0, 1, 2, 3}


@pytest.mark.parametrize("vector", ORDER_VECTORS, ids=[v["id"] for v in ORDER_VECTORS])
def test_order_vector_recovers_expected_address(vector: dict[str, Any]) -> None:
    """Each order_v2 vector verifies under its domain to the expected recovered address."""
    inputs = vector["inputs"]
    order = inputs["post_order_body"]["order"]
    exchange = VECTORS["exchanges"][str(inputs["chain_id"])][vector["expected"]["exchange"]]
    recovered = recover_order_signer(
        struct_of(order),
        hex_bytes(order["signature"]),
        inputs["chain_id"],
        exchange,
        inputs["sdk_build"]["domain_version"],
    )
    assert recovered == vector["expected"]["recovered"]
    assert exchange == inputs["sdk_build"]["exchange"]


@pytest.mark.parametrize(
    "sample", SAMPLES, ids=[f"{s['produced_by'][:20]}-{s['signature_type']}" for s in SAMPLES]
)
def test_sdk_samples_recover_expected_address(sample: dict[str, Any]) -> None:
    """Bodies from both SDKs (incl. a deposit-wallet session key) verify to the expected signer."""
    order = sample["post_order_body"]["order"]
    name = sample["expected_exchange"]
    exchange = VECTORS["exchanges"]["137"][name]
    version = "3" if name == "exchange_v3" else "2"
    assert (
        recover_order_signer(
            struct_of(order), hex_bytes(order["signature"]), 137, exchange, version
        )
        == sample["expected_recovered"]
    )


def test_order_digest_matches_reference_vector() -> None:
    """The order hash of the fixture POST body equals docs/POLYMARKET.md §5.12 vector 2."""
    body = json.loads((POLYMARKET / "fixtures" / "clob_post_order_request.json").read_text())
    digest = order_digest(struct_of(body["order"]), 137, NEG_RISK_EXCHANGE_V2, "2")
    assert (
        "0x" + digest.hex() == "0x0df5efa7143ead1dd44006e8d0ab6b78519c1d17f3d03301cdc4e89d219e689b"
    )


def test_tampered_field_changes_recovered_signer() -> None:
    """Changing any signed amount makes an EOA signature recover to someone else."""
    order = dict(ORDER_VECTORS[1]["inputs"]["post_order_body"]["order"])
    order["makerAmount"] = str(int(order["makerAmount"]) + 1)
    recovered = recover_order_signer(
        struct_of(order), hex_bytes(order["signature"]), 137, CTF_EXCHANGE_V2, "2"
    )
    assert recovered != order["signer"]


def test_wrong_domain_version_does_not_verify() -> None:
    """An EOA signature checked under domain version 3 recovers a different address."""
    order = ORDER_VECTORS[1]["inputs"]["post_order_body"]["order"]
    recovered = recover_order_signer(
        struct_of(order), hex_bytes(order["signature"]), 137, CTF_EXCHANGE_V2, "3"
    )
    assert recovered != order["signer"]


def test_deposit_signature_for_other_domain_is_reported() -> None:
    """A type-3 signature checked for another exchange raises DomainMismatch naming its domain."""
    vec = next(v for v in ORDER_VECTORS if v["id"] == "order-gen-137-st3-buy-0.01-negrisk")
    order = vec["inputs"]["post_order_body"]["order"]
    with pytest.raises(DomainMismatch) as info:
        recover_order_signer(
            struct_of(order), hex_bytes(order["signature"]), 137, CTF_EXCHANGE_V2, "2"
        )
    assert identify_domain(info.value.found_separator, 137) == (NEG_RISK_EXCHANGE_V2, "2")


def test_deposit_signature_over_other_order_is_refused() -> None:
    """A type-3 trailer whose contents hash is another order's is refused."""
    vec = next(v for v in ORDER_VECTORS if v["id"] == "order-gen-137-st3-buy-0.01-std")
    order = dict(vec["inputs"]["post_order_body"]["order"])
    order["salt"] = int(order["salt"]) + 1
    with pytest.raises(SignatureError):
        recover_order_signer(
            struct_of(order), hex_bytes(order["signature"]), 137, CTF_EXCHANGE_V2, "2"
        )


def test_deposit_trailer_layout() -> None:
    """The parsed ERC-7739 trailer names the V2 Order type and the exchange's app domain."""
    vec = next(v for v in ORDER_VECTORS if v["id"] == "order-gen-137-st3-buy-0.01-std")
    parsed = parse_deposit_signature(
        hex_bytes(vec["inputs"]["post_order_body"]["order"]["signature"])
    )
    assert parsed.contents_type.startswith("Order(uint256 salt,address maker")
    assert parsed.app_domain_separator == domain_separator(137, CTF_EXCHANGE_V2, "2")
    assert parsed.session_signer is None


def test_truncated_signatures_raise() -> None:
    """Short or malformed signatures raise SignatureError rather than recovering anything."""
    order = ORDER_VECTORS[1]["inputs"]["post_order_body"]["order"]
    sig = hex_bytes(order["signature"])
    with pytest.raises(SignatureError):
        recover_order_signer(struct_of(order), sig[:64], 137, CTF_EXCHANGE_V2, "2")
    with pytest.raises(SignatureError):
        parse_deposit_signature(sig)
    with pytest.raises(SignatureError):
        recover_order_signer(struct_of(order), sig[:64] + b"\x05", 137, CTF_EXCHANGE_V2, "2")


def test_high_s_signature_is_refused() -> None:
    """The malleable twin (s → n − s, v flipped) of a valid signature is rejected, as on chain."""
    order = ORDER_VECTORS[1]["inputs"]["post_order_body"]["order"]
    sig = hex_bytes(order["signature"])
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(sig[32:64], "big")
    twin = sig[:32] + (n - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    with pytest.raises(SignatureError):
        recover_order_signer(struct_of(order), twin, 137, CTF_EXCHANGE_V2, "2")


@pytest.mark.parametrize(
    "vector", [v for v in VECTORS["vectors"] if v["kind"] == "l1_clob_auth"], ids=lambda v: v["id"]
)
def test_l1_clob_auth_vectors(vector: dict[str, Any]) -> None:
    """The L1 ClobAuth vectors recover to their address."""
    i, e = vector["inputs"], vector["expected"]
    assert (
        recover_clob_auth(e["address"], i["timestamp"], i["nonce"], e["signature"], i["chain_id"])
        == e["address"]
    )


def test_l1_signature_for_other_timestamp_fails() -> None:
    """An L1 signature does not verify for another timestamp."""
    v = next(x for x in VECTORS["vectors"] if x["kind"] == "l1_clob_auth")
    e = v["expected"]
    assert (
        recover_clob_auth(e["address"], "10000001", v["inputs"]["nonce"], e["signature"], 80002)
        != e["address"]
    )


@pytest.mark.parametrize(
    "vector", [v for v in VECTORS["vectors"] if v["kind"] == "l2_hmac"], ids=lambda v: v["id"]
)
def test_l2_hmac_vectors(vector: dict[str, Any]) -> None:
    """The L2 HMAC vectors (incl. a spaced body, which must not be re-serialised) reproduce."""
    i = vector["inputs"]
    assert (
        l2_signature(i["secret"], i["timestamp"], i["method"], i["path"], i["body"])
        == vector["expected"]["signature"]
    )


def test_api_md_l2_vectors() -> None:
    """docs/POLYMARKET.md §4.2 L2 vectors over GET /data/orders and DELETE /order reproduce."""
    secret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    assert (
        l2_signature(secret, "1795253614", "GET", "/data/orders", "")
        == "Bj8ZW38lN-JDPH7BbA8_VHZm4cA5nTHq6fnrCbszWXA="
    )
    body = '{"orderID":"0x3f1c9c1d2b5a7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b"}'
    assert (
        l2_signature(secret, "1795253614", "DELETE", "/order", body)
        == "0PeoyKVw5akWbrZvPMVHfbBspYQuQy_QSQXQ_CDbhL0="
    )


def test_exchange_v3_domain_differs() -> None:
    """The three exchange domains (and versions) have distinct separators."""
    seps = {
        domain_separator(137, e, v)
        for e, v in (
            (CTF_EXCHANGE_V2, "2"),
            (NEG_RISK_EXCHANGE_V2, "2"),
            (EXCHANGE_V3, "3"),
            (CTF_EXCHANGE_V2, "3"),
        )
    }
    assert len(seps) == 4
