"""order_signing: V2 orders signed byte-identically to the SDK vectors, hashes, bodies, guards."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from typing import Any

import pytest
from eth_hash.auto import keccak
from eth_keys.backends import NativeECCBackend
from eth_keys.datatypes import PrivateKey, Signature
from hypothesis import given, settings
from hypothesis import strategies as st

# Imported at collection time: the SDK's import chain (py_ecc) raises the recursion limit,
# which hypothesis reports as an error if it happens inside a test.
from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2
from py_clob_client_v2.order_utils.model.order_data_v2 import OrderDataV2
from py_clob_client_v2.order_utils.model.side import Side as SdkSide
from py_clob_client_v2.order_utils.model.signature_type_v2 import SignatureTypeV2
from py_clob_client_v2.signer import Signer

from tests.support.paths import POLYMARKET
from wire import auth as clob_auth
from wire import signing as osg
from wire.signing import (
    Exchange,
    OrderRequest,
    OrderSigningError,
    TimestampSource,
    exchange_for,
    post_order_body,
    recover_order_signer,
    sign_order,
    signed_order_from_json,
)
from wire.types import MarketVersion, OrderType, Side, SignatureType

POLY = POLYMARKET
VECTORS_DOC = json.loads((POLY / "vectors.json").read_text())
VECTORS = VECTORS_DOC["vectors"]
ORDER_VECTORS = [v for v in VECTORS if v["kind"] == "order_v2"]
FIXTURE_RAW = (POLY / "fixtures" / "clob_post_order_request.json").read_text()
FIXTURE = json.loads(FIXTURE_RAW)
SAMPLES = json.loads((POLY / "fixtures" / "v2_post_order_samples.json").read_text())["samples"]

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
EOA = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
WALLETS = VECTORS_DOC["derived_wallets_for_key"]
TOKEN_1 = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
TOKEN_2 = "45202227256710257521935388599371620715578063998808294012969308187257000919017"
STD = Exchange("0xE111180000d2663C0091e4f400237545B87B996B", "2")
NEG = Exchange("0xe2222d279d744050d28e00520010520000310F59", "2")
V3 = Exchange("0xe3333700cA9d93003F00f0F71f8515005F6c00Aa", "3")
_EXCHANGE_KEYS = {"ctf_exchange_v2": ("standard", "2"), "neg_risk_ctf_exchange_v2": ("neg", "2"),
                  "exchange_v3": ("v3", "3")}


def _request_from_wire(o: dict) -> OrderRequest:
    return OrderRequest(
        maker=o["maker"], signer=o["signer"], token_id=o["tokenId"],
        maker_amount=int(o["makerAmount"]), taker_amount=int(o["takerAmount"]),
        side=Side(o["side"]), signature_type=SignatureType(o["signatureType"]),
        expiration=int(o["expiration"]), metadata=o["metadata"], builder=o["builder"],
        salt=int(o["salt"]), timestamp_ms=int(o["timestamp"]),
    )


def _exchange_named(name: str, chain_id: int) -> Exchange:
    return Exchange(VECTORS_DOC["exchanges"][str(chain_id)][name], _EXCHANGE_KEYS[name][1])


def _common_req(**kw: Any) -> OrderRequest:
    base: dict[str, Any] = dict(maker=EOA, signer=EOA, token_id=TOKEN_1, maker_amount=7033800,
                                taker_amount=12340000, side=Side.BUY, signature_type=SignatureType.EOA,
                                salt=935062534457, timestamp_ms=1795253614004)
    base.update(kw)
    return OrderRequest(**base)


# ----------------------------------------------------------------------------- vectors


@pytest.mark.parametrize("vec", ORDER_VECTORS, ids=lambda v: v["id"])
def test_order_v2_vectors(vec: dict) -> None:
    """Every order_v2 vector: same signature, same wire order object, recovers to the key's EOA."""
    i, e = vec["inputs"], vec["expected"]
    wire = i["post_order_body"]["order"]
    exchange = Exchange(i["sdk_build"]["exchange"], i["sdk_build"]["domain_version"])
    assert exchange == _exchange_named(e["exchange"], i["chain_id"])
    signed = sign_order(_request_from_wire(wire), i["private_key"], exchange, i["chain_id"])
    assert signed.signature == e["signature"]
    assert signed.to_json() == wire
    assert recover_order_signer(signed, exchange, i["chain_id"]) == e["recovered"]
    if signed.signature_type is not SignatureType.POLY_1271:
        # plain ECDSA over the order hash recovers to the signer field itself
        assert e["recovered"] == signed.signer


def test_vector_set_covers_types_exchanges_chains() -> None:
    """The vector table exercises all four signature types, both exchanges and both chains."""
    assert {v["inputs"]["post_order_body"]["order"]["signatureType"] for v in ORDER_VECTORS} == {
        0, 1, 2, 3}
    assert {v["expected"]["exchange"] for v in ORDER_VECTORS} == {
        "ctf_exchange_v2", "neg_risk_ctf_exchange_v2"}
    assert {v["inputs"]["chain_id"] for v in ORDER_VECTORS} == {137, 80002}
    assert len(ORDER_VECTORS) == 33


def test_api_md_vector_1_digest_and_signature() -> None:
    """§5.12 vector 1 (EOA, standard exchange): digest and signature as published."""
    signed = sign_order(_common_req(), KEY, STD, 137)
    assert signed.order_hash == "0x86a0ab4af5b91ab1fa77da7a4c7c4baa7c9013c96fd2b68ce88c2207c20a7d9f"
    assert signed.signature == (
        "0x9013c0b251293060089dfa08990fc357cd3bc1c68db35f1623dec206201070e5"
        "5a9d9abb1e41180c1d1ecd12f9245abf113cb633a21f3b01ef4d243df214514b1c")


def test_fixture_2_rebuilt_byte_for_byte() -> None:
    """§5.12 vector 2: rebuilding the fixture order gives its digest and its exact compact bytes."""
    wire = FIXTURE["order"]
    signed = sign_order(_request_from_wire(wire), KEY, NEG, 137)
    assert signed.order_hash == "0x0df5efa7143ead1dd44006e8d0ab6b78519c1d17f3d03301cdc4e89d219e689b"
    assert signed.signature == wire["signature"]
    body = post_order_body(signed, FIXTURE["owner"], OrderType.GTC)
    assert body == json.dumps(FIXTURE, separators=(",", ":")).encode()
    assert len(body) == 742
    assert clob_auth.l2_signature(
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "1795253614", "POST", "/order", body
    ) == "AP77skgw0WFhbK3GUnimcr_s45DEV4ZQQc0WCDKCiTE="


def test_api_md_vector_3_deposit_wallet() -> None:
    """§5.12 vector 3 (type 3, neg-risk): ERC-7739 wrapper with the published prefix, 636 hex chars.

    65 + 32 + 32 + 186 + 2 = 317 bytes (docs/POLYMARKET.md §5.1 says 318; its own 636-char count is right).
    """
    wallet = "0x0153EC9D5375107Ae94aaBCCce9C1558a7787E70"
    req = _common_req(maker=wallet, signer=wallet, token_id=TOKEN_2,
                      signature_type=SignatureType.POLY_1271)
    signed = sign_order(req, KEY, NEG, 137)
    sig = signed.signature
    assert len(sig) == 636 and len(bytes.fromhex(sig[2:])) == 317
    assert sig.startswith(
        "0x12e393f108b30fec3b22261c0fd78d9faa89d327766c968c508bda0be499b69a"
        "71e8b8f7a6afed39e5e4346f6cb819145d34a220f950ac38e89453b5e8c887461b9b858f53")
    assert sig.endswith(osg.ORDER_TYPE_STRING.encode().hex() + "00ba")
    assert recover_order_signer(signed, NEG, 137) == EOA


@pytest.mark.parametrize("vec", [v for v in ORDER_VECTORS
                                 if v["inputs"]["post_order_body"]["order"]["signatureType"] == 3],
                         ids=lambda v: v["id"])
def test_type3_wrapper_reconstructs_order_hash(vec: dict) -> None:
    """ERC-7739: keccak(0x1901 ‖ appSeparator ‖ contents) from the wrapper == the order hash."""
    i = vec["inputs"]
    exchange = Exchange(i["sdk_build"]["exchange"], i["sdk_build"]["domain_version"])
    signed = sign_order(_request_from_wire(i["post_order_body"]["order"]), i["private_key"],
                        exchange, i["chain_id"])
    raw = bytes.fromhex(signed.signature[2:])
    assert "0x" + keccak(b"\x19\x01" + raw[65:97] + raw[97:129]).hex() == signed.order_hash
    # and the order hash is what a type-0 order with the same fields would hash to
    assert signed.order_hash == "0x" + osg.order_digest(signed, exchange, i["chain_id"]).hex()


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s["produced_by"][:40])
def test_sdk_samples_parse_and_recover(sample: dict) -> None:
    """Both SDKs' sample bodies (incl. a domain-3 one) verify against our hashes and signatures."""
    wire = sample["post_order_body"]["order"]
    name = sample["expected_exchange"]
    exchange = _exchange_named(name, 137)
    parsed = signed_order_from_json(wire, exchange, 137)
    assert parsed.to_json() == wire
    raw = bytes.fromhex(wire["signature"][2:])
    if raw.endswith(bytes.fromhex("6492" * 16)):
        # 0x6492-suffixed envelope abi.encode(sessionKey, 0, bytes inner) around the session
        # key's ERC-7739 signature: check the nested separator/contents and the ECDSA.
        assert int.from_bytes(raw[64:96], "big") == 0x60
        inner_len = int.from_bytes(raw[96:128], "big")
        inner = raw[128:128 + inner_len]
        assert inner_len == 317 and inner.endswith(osg._ERC7739_TRAILER)
        assert inner[65:97] == osg.domain_separator(exchange, 137)
        digest = osg._typed_data_sign_digest(inner[65:97], inner[97:129], parsed.signer, 137)
        assert "0x" + keccak(b"\x19\x01" + inner[65:97] + inner[97:129]).hex() == parsed.order_hash
        rec = Signature(inner[:64] + bytes((inner[64] - 27,))).recover_public_key_from_msg_hash(
            digest).to_checksum_address()
        assert rec == sample["expected_recovered"]
        return
    assert recover_order_signer(parsed, exchange, 137) == sample["expected_recovered"]
    resigned = sign_order(_request_from_wire(wire), KEY, exchange, 137)
    assert resigned.signature == wire["signature"]


# ----------------------------------------------------------------------------- SDK differential

def _sdk_sign(req: OrderRequest, exchange: Exchange, chain_id: int) -> tuple[str, str]:
    builder = ExchangeOrderBuilderV2(exchange.address, chain_id, Signer(KEY, chain_id),
                                     generate_salt=lambda: str(req.salt),
                                     domain_version=exchange.domain_version)
    data = OrderDataV2(maker=req.maker, tokenId=req.token_id, makerAmount=str(req.maker_amount),
                       takerAmount=str(req.taker_amount), side=SdkSide[req.side.value],
                       signer=req.signer, signatureType=SignatureTypeV2(int(req.signature_type)),
                       timestamp=str(req.timestamp_ms), metadata=req.metadata,
                       builder=req.builder, expiration=str(req.expiration))
    order = builder.build_order(data)
    typed = builder.build_order_typed_data(order)
    return builder.build_order_signature(typed), builder.build_order_hash(typed)


_MAKERS = {SignatureType.EOA: EOA, SignatureType.POLY_PROXY: WALLETS["POLY_PROXY"],
           SignatureType.POLY_GNOSIS_SAFE: WALLETS["GNOSIS_SAFE"],
           SignatureType.POLY_1271: WALLETS["DEPOSIT_WALLET"]}


@settings(max_examples=60, deadline=None)
@given(
    sig_type=st.sampled_from(list(SignatureType)),
    version=st.sampled_from(list(MarketVersion)),
    neg_risk=st.booleans(),
    chain_id=st.sampled_from([137, 80002]),
    side=st.sampled_from(list(Side)),
    salt=st.integers(0, osg.MAX_SALT),
    ts=st.integers(1, 2**63),
    token=st.integers(0, 2**256 - 1),
    maker_amount=st.integers(1, 2**64),
    taker_amount=st.integers(1, 2**64),
    builder=st.binary(min_size=32, max_size=32),
)
def test_matches_sdk_builder(sig_type, version, neg_risk, chain_id, side, salt, ts, token,
                             maker_amount, taker_amount, builder) -> None:
    """Random orders (all types, domains 2 and 3, both chains): same signature and hash as SDK."""
    maker = _MAKERS[sig_type]
    signer = maker if sig_type is SignatureType.POLY_1271 else EOA
    req = OrderRequest(maker=maker, signer=signer, token_id=str(token), maker_amount=maker_amount,
                       taker_amount=taker_amount, side=side, signature_type=sig_type,
                       builder="0x" + builder.hex(), salt=salt, timestamp_ms=ts)
    exchange = exchange_for(version, neg_risk, chain_id)
    ours = sign_order(req, KEY, exchange, chain_id)
    sdk_sig, sdk_hash = _sdk_sign(req, exchange, chain_id)
    assert ours.signature == sdk_sig
    assert ours.order_hash == sdk_hash
    assert recover_order_signer(ours, exchange, chain_id) == EOA


def test_native_backend_signs_identically() -> None:
    """eth_keys' pure-Python backend gives the same (low-s, RFC 6979) signature as coincurve."""
    digest = keccak(b"pmct")
    native = NativeECCBackend().ecdsa_sign(digest, PrivateKey(bytes.fromhex(KEY[2:]),
                                                              backend=NativeECCBackend()))
    assert clob_auth.SigningKey(KEY).sign_digest(digest)[:64] == native.to_bytes()[:64]
    assert clob_auth.ecc_backend_name() == "CoinCurveECCBackend"


# ----------------------------------------------------------------------------- exchanges


def test_exchange_for() -> None:
    """v1 markets: standard / neg-risk exchange, domain "2"; v2 markets: ExchangeV3, domain "3"."""
    assert exchange_for(MarketVersion.V1, False, 137) == STD
    assert exchange_for(MarketVersion.V1, True, 137) == NEG
    assert exchange_for(MarketVersion.V2, False, 137) == V3
    assert exchange_for(MarketVersion.V2, True, 137) == V3
    assert exchange_for(MarketVersion.V2, True, 80002) == Exchange(
        "0x9fE6e61422AdB6F610d8597F9684b16912D50C3D", "3")
    assert exchange_for(MarketVersion.V1, True, 80002) == NEG
    with pytest.raises(OrderSigningError, match="chain 1"):
        exchange_for(MarketVersion.V1, False, 1)


# ----------------------------------------------------------------------------- guards


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(signature_type=SignatureType.POLY_1271, maker=WALLETS["DEPOSIT_WALLET"], signer=EOA),
         "maker == signer"),
        (dict(signature_type=SignatureType.POLY_1271), "deposit wallet, not the key"),
        (dict(signature_type=SignatureType.EOA, maker=WALLETS["POLY_PROXY"]), "maker == signer"),
        (dict(signature_type=SignatureType.POLY_PROXY), "proxy/safe"),
        (dict(signature_type=SignatureType.POLY_GNOSIS_SAFE, maker=WALLETS["GNOSIS_SAFE"],
              signer=WALLETS["POLY_PROXY"]), "not the address of the signing key"),
        (dict(signer="0x" + "11" * 20, maker="0x" + "11" * 20),
         "not the address of the signing key"),
        (dict(maker_amount=0), "maker_amount"),
        (dict(taker_amount=-1), "taker_amount"),
        (dict(token_id="0x12"), "token_id"),
        (dict(token_id="007"), "token_id"),
        (dict(salt=2**53), "salt"),
        (dict(maker="0x1234"), "maker"),
        (dict(metadata="0x00"), "metadata"),
        (dict(expiration=-5), "expiration"),
    ],
)
def test_inconsistent_inputs_refused(kw: dict, match: str) -> None:
    """Inconsistent wallet/key/field combinations raise OrderSigningError (a ValueError)."""
    with pytest.raises(OrderSigningError, match=match):
        sign_order(_common_req(**kw), KEY, STD, 137)
    assert issubclass(OrderSigningError, ValueError)


def test_errors_never_contain_the_key() -> None:
    """A refused order's message never contains the private key."""
    with pytest.raises(OrderSigningError) as err:
        sign_order(_common_req(signature_type=SignatureType.POLY_PROXY), KEY, STD, 137)
    assert KEY[2:] not in str(err.value) and KEY[10:30] not in repr(err.value)


# ----------------------------------------------------------------------------- body


def test_post_only_rules_and_body_keys() -> None:
    """postOnly only with GTC/GTD (appended last when true); GTD needs an expiration."""
    signed = sign_order(_common_req(), KEY, STD, 137)
    body = json.loads(post_order_body(signed, "owner-uuid", OrderType.GTC, post_only=True))
    assert list(body) == ["deferExec", "order", "orderType", "owner", "postOnly"]
    assert body["postOnly"] is True
    for ot in (OrderType.FOK, OrderType.FAK):
        with pytest.raises(OrderSigningError, match="postOnly"):
            post_order_body(signed, "owner-uuid", ot, post_only=True)
        assert json.loads(post_order_body(signed, "o", ot))["orderType"] == ot.value
    with pytest.raises(OrderSigningError, match="expiration"):
        post_order_body(signed, "o", OrderType.GTD)
    gtd = sign_order(_common_req(expiration=1795300000), KEY, STD, 137)
    assert gtd.order_hash == signed.order_hash  # expiration is not signed
    assert gtd.signature == signed.signature
    assert json.loads(post_order_body(gtd, "o", OrderType.GTD, post_only=True))["order"][
        "expiration"] == "1795300000"
    with pytest.raises(OrderSigningError, match="expiration 0"):
        post_order_body(gtd, "o", OrderType.GTC)
    with pytest.raises(OrderSigningError, match="owner"):
        post_order_body(signed, "", OrderType.GTC)


@pytest.mark.parametrize("vec", ORDER_VECTORS, ids=lambda v: v["id"])
def test_body_round_trip(vec: dict) -> None:
    """Parsing a vector's wire order and re-serialising gives the same order object and hash."""
    i = vec["inputs"]
    exchange = Exchange(i["sdk_build"]["exchange"], i["sdk_build"]["domain_version"])
    parsed = signed_order_from_json(i["post_order_body"]["order"], exchange, i["chain_id"])
    signed = sign_order(_request_from_wire(i["post_order_body"]["order"]), i["private_key"],
                        exchange, i["chain_id"])
    assert parsed == signed
    body = json.loads(post_order_body(parsed, i["post_order_body"]["owner"], OrderType.GTC))
    assert body["order"] == i["post_order_body"]["order"]
    assert body["owner"] == i["post_order_body"]["owner"] and body["orderType"] == "GTC"


def test_body_is_deterministic_bytes() -> None:
    """The same signed order always serialises to identical bytes (safe re-post after doubt)."""
    signed = sign_order(_common_req(), KEY, STD, 137)
    assert post_order_body(signed, "o", OrderType.FAK) == post_order_body(
        replace(signed), "o", OrderType.FAK)


# ----------------------------------------------------------------------------- salt and clock


def test_fresh_salt_and_timestamp_filled_in() -> None:
    """Without salt/timestamp the order gets a 53-bit salt and the source's next timestamp."""
    ts = TimestampSource(clock=lambda: 1_000)
    a = sign_order(_common_req(salt=None, timestamp_ms=None), KEY, STD, 137, timestamps=ts)
    b = sign_order(_common_req(salt=None, timestamp_ms=None), KEY, STD, 137, timestamps=ts)
    assert 0 <= a.salt <= osg.MAX_SALT and a.salt != b.salt
    assert (a.timestamp_ms, b.timestamp_ms) == (1_000, 1_001)
    assert a.order_hash != b.order_hash
    salts = {osg.new_salt() for _ in range(200)}
    assert len(salts) == 200 and max(salts) < 2**53


def test_timestamps_strictly_increase_per_signer() -> None:
    """Per signer: strictly increasing even if the clock stalls or steps back; signers separate."""
    now = [5_000]
    src = TimestampSource(clock=lambda: now[0])
    seq = [src.next(EOA) for _ in range(3)]
    assert seq == [5_000, 5_001, 5_002]
    now[0] = 4_000  # clock steps back
    assert src.next(EOA.lower()) == 5_003
    assert src.next(WALLETS["DEPOSIT_WALLET"]) == 4_000
    now[0] = 9_000
    assert src.next(EOA) == 9_000


def test_timestamps_thread_safe() -> None:
    """Concurrent callers never receive the same timestamp for one signer."""
    import threading

    src = TimestampSource(clock=lambda: 7)
    out: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        got = [src.next(EOA) for _ in range(200)]
        with lock:
            out.extend(got)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == len(set(out)) == 1600


def test_random_orders_recover_and_hash_is_order_only() -> None:
    """Signatures recover to the key for every type; the hash ignores the signature type wrapper."""
    rng = random.Random(7)
    for _ in range(20):
        t = rng.choice(list(SignatureType))
        maker = _MAKERS[t]
        signer = maker if t is SignatureType.POLY_1271 else EOA
        req = _common_req(maker=maker, signer=signer, signature_type=t,
                          salt=rng.randrange(2**53), maker_amount=rng.randrange(1, 10**12))
        s = sign_order(req, KEY, V3, 137)
        assert recover_order_signer(s, V3, 137) == EOA
        tampered = replace(s, maker_amount=s.maker_amount + 1)
        if t is SignatureType.POLY_1271:
            with pytest.raises(OrderSigningError, match="does not match"):
                recover_order_signer(tampered, V3, 137)
        else:
            assert recover_order_signer(tampered, V3, 137) != EOA
