"""clob_auth: L1 ClobAuth signatures and L2 HMAC headers reproduce the published vectors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.paths import POLYMARKET, ROOT
from wire import auth as clob_auth
from wire.types import ApiCreds

POLY = POLYMARKET
VECTORS = json.loads((POLY / "vectors.json").read_text())["vectors"]
HARDHAT_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
HARDHAT_ADDR = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
SECRET_0_31 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def _of_kind(kind: str) -> list[dict]:
    return [v for v in VECTORS if v["kind"] == kind]


@pytest.mark.parametrize("vec", _of_kind("l1_clob_auth"), ids=lambda v: v["id"])
def test_l1_vectors(vec: dict) -> None:
    """Every l1_clob_auth vector gives the published address and signature."""
    i, e = vec["inputs"], vec["expected"]
    h = clob_auth.l1_headers(i["private_key"], i["chain_id"], int(i["timestamp"]), i["nonce"])
    assert h == {
        "POLY_ADDRESS": e["address"],
        "POLY_SIGNATURE": e["signature"],
        "POLY_TIMESTAMP": i["timestamp"],
        "POLY_NONCE": str(i["nonce"]),
    }


def test_l1_api_md_worked_example() -> None:
    """§4.2 worked example: chain 137, ts 1795253614, nonce 0 (default)."""
    h = clob_auth.l1_headers(HARDHAT_KEY, 137, 1795253614)
    assert h["POLY_SIGNATURE"] == (
        "0x13acc273127ff6bdc31d635a6da077bcf9505a69404c46b4a246731146656cd9"
        "2110246a515f371383bd78b0231f32fd9d977dd4926763950c0478ed5125447b1c"
    )
    assert h["POLY_NONCE"] == "0" and h["POLY_ADDRESS"] == HARDHAT_ADDR


@pytest.mark.parametrize("ts,nonce,chain", [(0, 0, 137), (1795253614, 7, 137), (5, 2**40, 80002)])
def test_l1_digest_matches_eth_account_typed_data(ts: int, nonce: int, chain: int) -> None:
    """The hand-rolled ClobAuth digest equals eth_account's generic EIP-712 encoder."""
    typed = {
        "domain": {"name": "ClobAuthDomain", "version": "1", "chainId": chain},
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"},
                             {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"}],
            "ClobAuth": [{"name": "address", "type": "address"},
                         {"name": "timestamp", "type": "string"},
                         {"name": "nonce", "type": "uint256"},
                         {"name": "message", "type": "string"}],
        },
        "primaryType": "ClobAuth",
        "message": {"address": HARDHAT_ADDR, "timestamp": str(ts), "nonce": nonce,
                    "message": clob_auth.CLOB_AUTH_MESSAGE},
    }
    signed = Account.sign_message(encode_typed_data(full_message=typed), HARDHAT_KEY)
    assert clob_auth.clob_auth_digest(HARDHAT_ADDR, chain, ts, nonce) == bytes(signed.message_hash)
    assert clob_auth.l1_headers(HARDHAT_KEY, chain, ts, nonce)["POLY_SIGNATURE"] == (
        "0x" + bytes(signed.signature).hex()
    )


@pytest.mark.parametrize("vec", _of_kind("l2_hmac"), ids=lambda v: v["id"])
def test_l2_hmac_vectors(vec: dict) -> None:
    """Every l2_hmac vector: exact body bytes, method as given, padded base64url output."""
    i = vec["inputs"]
    body = i["body"] or None
    got = clob_auth.l2_signature(i["secret"], i["timestamp"], i["method"], i["path"], body)
    assert got == vec["expected"]["signature"]
    # bytes and str bodies sign identically
    if body:
        assert clob_auth.l2_signature(
            i["secret"], i["timestamp"], i["method"], i["path"], body.encode()
        ) == got


DELETE_BODY = '{"orderID":"0x3f1c9c1d2b5a7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b"}'


def _fixture_post_body() -> bytes:
    raw = json.loads((POLY / "fixtures" / "clob_post_order_request.json").read_text())
    return json.dumps(raw, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    "method,path,body,expected",
    [
        ("GET", "/data/orders", None, "Bj8ZW38lN-JDPH7BbA8_VHZm4cA5nTHq6fnrCbszWXA="),
        ("DELETE", "/order", DELETE_BODY, "0PeoyKVw5akWbrZvPMVHfbBspYQuQy_QSQXQ_CDbhL0="),
        ("POST", "/order", "fixture", "AP77skgw0WFhbK3GUnimcr_s45DEV4ZQQc0WCDKCiTE="),
    ],
)
def test_l2_api_md_worked_examples(method: str, path: str, body: str | None, expected: str) -> None:
    """§4.2 worked examples with the 0..31 secret at ts 1795253614."""
    wire = _fixture_post_body() if body == "fixture" else (body.encode() if body else None)
    if body == "fixture":
        assert wire is not None and len(wire) == 742
    assert clob_auth.l2_signature(SECRET_0_31, "1795253614", method, path, wire) == expected


def test_l2_headers_shape_and_signature() -> None:
    """l2_headers: checksummed EOA, key, passphrase, ts string, HMAC over the upper-cased METHOD."""
    creds = ApiCreds(api_key="k-uuid", secret=SECRET_0_31, passphrase="pp")
    h = clob_auth.l2_headers(creds, HARDHAT_ADDR.lower(), "delete", "/order",
                             DELETE_BODY.encode(), 1795253614)
    assert h == {
        "POLY_ADDRESS": HARDHAT_ADDR,
        "POLY_API_KEY": "k-uuid",
        "POLY_PASSPHRASE": "pp",
        "POLY_TIMESTAMP": "1795253614",
        "POLY_SIGNATURE": "0PeoyKVw5akWbrZvPMVHfbBspYQuQy_QSQXQ_CDbhL0=",
    }


def test_l2_secret_without_padding_is_restored() -> None:
    """A secret delivered without '=' padding signs the same as the padded one."""
    padded = clob_auth.l2_signature(SECRET_0_31, "1", "GET", "/", None)
    assert clob_auth.l2_signature(SECRET_0_31.rstrip("="), "1", "GET", "/", None) == padded


def test_l2_headers_rejects_query_string() -> None:
    """The signed path never carries a query string."""
    creds = ApiCreds(api_key="k", secret=SECRET_0_31, passphrase="p")
    with pytest.raises(ValueError, match="query string"):
        clob_auth.l2_headers(creds, HARDHAT_ADDR, "GET", "/data/orders?market=1", None, 1)


def test_bad_secret_message_does_not_echo_it() -> None:
    """An invalid secret raises ValueError without revealing the secret."""
    with pytest.raises(ValueError) as err:
        clob_auth.l2_signature("not*base64!!", "1", "GET", "/", None)
    assert "not*base64" not in str(err.value)


def test_address_of_and_key_errors_never_leak_key() -> None:
    """address_of checksums; malformed keys raise InvalidPrivateKey without echoing the key."""
    assert clob_auth.address_of(HARDHAT_KEY) == HARDHAT_ADDR
    assert clob_auth.address_of(HARDHAT_KEY[2:].upper()) == HARDHAT_ADDR
    for bad in (HARDHAT_KEY[:-2], HARDHAT_KEY[:-1] + "z", "0x" + "00" * 32, "0x" + "ff" * 32):
        with pytest.raises(clob_auth.InvalidPrivateKey) as err:
            clob_auth.address_of(bad)
        assert bad[2:20] not in str(err.value)


def test_signing_key_repr_hides_key() -> None:
    """SigningKey's repr shows the address only and it refuses to pickle."""
    import pickle

    key = clob_auth.SigningKey(HARDHAT_KEY)
    assert HARDHAT_KEY[2:] not in repr(key) and HARDHAT_ADDR in repr(key)
    with pytest.raises(TypeError):
        pickle.dumps(key)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(min_size=20, max_size=20), upper=st.booleans())
def test_checksum_address_matches_eth_utils(raw: bytes, upper: bool) -> None:
    """checksum_address is EIP-55, whatever the input case."""
    text = "0x" + (raw.hex().upper() if upper else raw.hex())
    assert clob_auth.checksum_address(text) == to_checksum_address(text)


@pytest.mark.parametrize("bad", ["0x123", "f39Fd6e51aad88F6F4ce6aB8827279cffFb92266ab",
                                 "0x" + "g" * 40])
def test_checksum_address_rejects_malformed(bad: str) -> None:
    """Malformed addresses raise ValueError."""
    with pytest.raises(ValueError):
        clob_auth.checksum_address(bad)


def test_pure_python_backend_path_gives_same_results() -> None:
    """With ECC_BACKEND_CLASS=NativeECCBackend the eth_keys path reproduces the same vectors."""
    code = (
        "import json\nfrom wire import auth as clob_auth\n"
        "from wire.signing import Exchange, OrderRequest, sign_order\n"
        "from wire.types import Side, SignatureType\n"
        "assert clob_auth.ecc_backend_name() == 'NativeECCBackend'\n"
        f"h = clob_auth.l1_headers({HARDHAT_KEY!r}, 137, 1795253614)\n"
        f"req = OrderRequest({HARDHAT_ADDR!r}, {HARDHAT_ADDR!r}, '7', 7033800, 12340000,"
        " Side.BUY, SignatureType.EOA, salt=935062534457, timestamp_ms=1795253614004)\n"
        f"o = sign_order(req, {HARDHAT_KEY!r}, "
        "Exchange('0xE111180000d2663C0091e4f400237545B87B996B', '2'), 137)\n"
        "print(json.dumps([h['POLY_SIGNATURE'], clob_auth.address_of("
        f"{HARDHAT_KEY!r}), o.signature]))\n"
    )
    env = {**os.environ, "ECC_BACKEND_CLASS": "eth_keys.backends.NativeECCBackend"}
    out = subprocess.run(  # noqa: S603 (fixed argv: this interpreter and our own code)
        [sys.executable, "-c", code], cwd=ROOT,
        env=env, check=True, capture_output=True, text=True,
    )
    sig, addr, order_sig = json.loads(out.stdout.strip().splitlines()[-1])
    assert addr == HARDHAT_ADDR
    assert sig == clob_auth.l1_headers(HARDHAT_KEY, 137, 1795253614)["POLY_SIGNATURE"]
    from wire.signing import Exchange, OrderRequest, sign_order
    from wire.types import Side, SignatureType

    req = OrderRequest(HARDHAT_ADDR, HARDHAT_ADDR, "7", 7033800, 12340000, Side.BUY,
                       SignatureType.EOA, salt=935062534457, timestamp_ms=1795253614004)
    assert order_sig == sign_order(
        req, HARDHAT_KEY, Exchange("0xE111180000d2663C0091e4f400237545B87B996B", "2"), 137
    ).signature
