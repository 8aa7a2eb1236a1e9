"""Independent verification of Polymarket CLOB signatures (the simulator's referee).

Covers the V2 order EIP-712 digest and ECDSA recovery (signature types 0–2), the deposit-wallet
(POLY_1271, type 3) ERC-7739 `TypedDataSign` trailer and its ERC-6492-style session wrapper,
the L1 `ClobAuth` signature and the L2 HMAC. Written from the EIP-712 / ERC-7739 texts and
docs/POLYMARKET.md §4–§5 only: it never imports the project's signing code or an SDK, so a bug there
cannot hide itself here.

Invariant: a function returns a recovered address only when the bytes verify; anything
malformed raises `SignatureError` (never returns a guess).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache

import coincurve
from eth_hash.auto import keccak
from eth_utils import to_checksum_address

CHAIN_ID_POLYGON = 137

EXCHANGE_NAME = "Polymarket CTF Exchange"
CTF_EXCHANGE_V2 = "0xE111180000d2663C0091e4f400237545B87B996B"
NEG_RISK_EXCHANGE_V2 = "0xe2222d279d744050d28e00520010520000310F59"
EXCHANGE_V3 = "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa"
LEGACY_EXCHANGE_V1 = "0x4bFb41d5B3570DeFd03C39a9A4D8dE6Bd8B8982E"
LEGACY_NEG_RISK_EXCHANGE_V1 = "0xC5d563A36AE78145C45a50134d48A1215220f80a"
EXCHANGES_V2 = (CTF_EXCHANGE_V2, NEG_RISK_EXCHANGE_V2, EXCHANGE_V3)
ALL_EXCHANGES = (*EXCHANGES_V2, LEGACY_EXCHANGE_V1, LEGACY_NEG_RISK_EXCHANGE_V1)
EXCHANGE_NAMES = {
    CTF_EXCHANGE_V2.lower(): "ctf_exchange_v2",
    NEG_RISK_EXCHANGE_V2.lower(): "neg_risk_ctf_exchange_v2",
    EXCHANGE_V3.lower(): "exchange_v3",
}

ORDER_TYPE = (
    "Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,"
    "uint256 takerAmount,uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,"
    "bytes32 builder)"
)
ORDER_TYPEHASH = keccak(ORDER_TYPE.encode())
DOMAIN_TYPEHASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
TYPED_DATA_SIGN_TYPEHASH = keccak(
    (
        "TypedDataSign(Order contents,string name,string version,uint256 chainId,"
        "address verifyingContract,bytes32 salt)" + ORDER_TYPE
    ).encode()
)
DEPOSIT_WALLET_NAME_HASH = keccak(b"DepositWallet")
DEPOSIT_WALLET_VERSION_HASH = keccak(b"1")
ERC6492_MAGIC = bytes.fromhex("6492" * 16)

CLOB_AUTH_DOMAIN_TYPEHASH = keccak(b"EIP712Domain(string name,string version,uint256 chainId)")
CLOB_AUTH_TYPEHASH = keccak(
    b"ClobAuth(address address,string timestamp,uint256 nonce,string message)"
)
CLOB_AUTH_MESSAGE = "This message attests that I control the given wallet"

_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class SignatureError(ValueError):
    """The signature bytes are malformed or do not verify."""


class DomainMismatch(SignatureError):
    """A deposit-wallet signature names a different EIP-712 app domain than expected."""

    def __init__(self, found_separator: bytes) -> None:
        super().__init__("signature was made for another exchange domain")
        self.found_separator = found_separator


@dataclass(frozen=True)
class OrderStruct:
    """The eleven signed fields of a V2 order (docs/POLYMARKET.md §5.1), already parsed to integers/bytes."""

    salt: int
    maker: str
    signer: str
    token_id: int
    maker_amount: int
    taker_amount: int
    side: int  # 0 BUY, 1 SELL
    signature_type: int
    timestamp: int
    metadata: bytes
    builder: bytes


@dataclass(frozen=True)
class DepositSignature:
    """A parsed ERC-7739 deposit-wallet signature (optionally inside a session wrapper)."""

    inner: bytes  # 65-byte ECDSA r‖s‖v
    app_domain_separator: bytes
    contents_hash: bytes
    contents_type: str
    session_signer: str | None  # set when wrapped: the address the wrapper names


def _u256(value: int) -> bytes:
    if value < 0 or value >= 2**256:
        raise SignatureError("integer out of uint256 range")
    return value.to_bytes(32, "big")


def _address_word(address: str) -> bytes:
    return b"\x00" * 12 + address_bytes(address)


def address_bytes(address: str) -> bytes:
    """20 raw bytes of a 0x-hex address (any letter case); raises on anything else."""
    text = address[2:] if address[:2] in ("0x", "0X") else address
    if len(text) != 40:
        raise SignatureError(f"not an address: {address!r}")
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise SignatureError(f"not an address: {address!r}") from exc


@lru_cache(maxsize=8192)
def checksum(address: str) -> str:
    """EIP-55 form of an address (cached: the same few addresses recur on every order)."""
    return _checksum_raw(address_bytes(address))


@lru_cache(maxsize=8192)
def _checksum_raw(raw: bytes) -> str:
    return to_checksum_address("0x" + raw.hex())


def hex_bytes(text: str) -> bytes:
    """Bytes of a 0x-prefixed hex string; raises `SignatureError` when malformed."""
    if not isinstance(text, str) or text[:2] not in ("0x", "0X"):
        raise SignatureError("expected 0x-prefixed hex")
    try:
        return bytes.fromhex(text[2:])
    except ValueError as exc:
        raise SignatureError("invalid hex") from exc


@lru_cache(maxsize=64)
def domain_separator(chain_id: int, exchange: str, version: str) -> bytes:
    """EIP-712 domain separator of a Polymarket exchange domain."""
    return keccak(
        DOMAIN_TYPEHASH
        + keccak(EXCHANGE_NAME.encode())
        + keccak(version.encode())
        + _u256(chain_id)
        + _address_word(exchange)
    )


def order_struct_hash(order: OrderStruct) -> bytes:
    """hashStruct(Order) of the V2 order."""
    if len(order.metadata) != 32 or len(order.builder) != 32:
        raise SignatureError("metadata and builder must be bytes32")
    if order.side not in (0, 1) or not 0 <= order.signature_type <= 255:
        raise SignatureError("side/signatureType out of range")
    return keccak(
        ORDER_TYPEHASH
        + _u256(order.salt)
        + _address_word(order.maker)
        + _address_word(order.signer)
        + _u256(order.token_id)
        + _u256(order.maker_amount)
        + _u256(order.taker_amount)
        + _u256(order.side)
        + _u256(order.signature_type)
        + _u256(order.timestamp)
        + order.metadata
        + order.builder
    )


def order_digest(order: OrderStruct, chain_id: int, exchange: str, version: str) -> bytes:
    """The EIP-712 digest of the order; its 0x-hex is the CLOB order id (order hash)."""
    return keccak(
        b"\x19\x01" + domain_separator(chain_id, exchange, version) + order_struct_hash(order)
    )


def ecrecover(digest: bytes, signature: bytes) -> str:
    """Checksummed signer of a 65-byte r‖s‖v signature over a 32-byte digest (low-s enforced)."""
    if len(signature) != 65:
        raise SignatureError(f"ECDSA signature must be 65 bytes, got {len(signature)}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v in (27, 28):
        v -= 27
    if v not in (0, 1):
        raise SignatureError("invalid recovery id")
    if not (0 < r < _SECP256K1_N and 0 < s <= _SECP256K1_N // 2):
        raise SignatureError("invalid signature values (r/s out of range or high s)")
    try:
        pub = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([v]), digest, hasher=None
        )
    except Exception as exc:  # coincurve raises plain Exception on unrecoverable input
        raise SignatureError("signature does not recover") from exc
    return _checksum_raw(keccak(pub.format(compressed=False)[1:])[-20:])


def parse_deposit_signature(signature: bytes) -> DepositSignature:
    """Split an ERC-7739 signature: ecdsa(65) ‖ appDomainSep(32) ‖ contentsHash(32) ‖ type ‖ len(2).

    A signature ending in the ERC-6492 magic is first unwrapped as
    `abi.encode(address signer, bytes32, bytes inner) ‖ magic` (session key on a deposit wallet).
    """
    session: str | None = None
    if len(signature) > 32 and signature[-32:] == ERC6492_MAGIC:
        body = signature[:-32]
        if len(body) < 128 or body[:12] != b"\x00" * 12:
            raise SignatureError("malformed wrapped signature")
        session = to_checksum_address(body[12:32])
        offset = int.from_bytes(body[64:96], "big")
        if offset + 32 > len(body):
            raise SignatureError("malformed wrapped signature offset")
        length = int.from_bytes(body[offset : offset + 32], "big")
        inner = body[offset + 32 : offset + 32 + length]
        if len(inner) != length:
            raise SignatureError("malformed wrapped signature length")
        signature = inner
    if len(signature) < 65 + 64 + 2:
        raise SignatureError("deposit-wallet signature too short")
    type_len = int.from_bytes(signature[-2:], "big")
    if 65 + 64 + type_len + 2 != len(signature):
        raise SignatureError("deposit-wallet signature length does not match its type length")
    try:
        contents_type = signature[129 : 129 + type_len].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SignatureError("contents type is not utf-8") from exc
    return DepositSignature(
        inner=signature[:65],
        app_domain_separator=signature[65:97],
        contents_hash=signature[97:129],
        contents_type=contents_type,
        session_signer=session,
    )


def typed_data_sign_digest(
    app_domain_separator: bytes, contents_hash: bytes, wallet: str, chain_id: int
) -> bytes:
    """Digest the deposit wallet's owner signs (ERC-7739 nested TypedDataSign, wallet domain v1)."""
    struct = keccak(
        TYPED_DATA_SIGN_TYPEHASH
        + contents_hash
        + DEPOSIT_WALLET_NAME_HASH
        + DEPOSIT_WALLET_VERSION_HASH
        + _u256(chain_id)
        + _address_word(wallet)
        + b"\x00" * 32
    )
    return keccak(b"\x19\x01" + app_domain_separator + struct)


def recover_order_signer(
    order: OrderStruct, signature: bytes, chain_id: int, exchange: str, version: str
) -> str:
    """The EOA whose key produced this order signature under the given exchange domain.

    Types 0–2: plain ECDSA over the order digest. Type 3: the ERC-7739 trailer must name this
    exact domain and order (else `DomainMismatch` / `SignatureError`), and the inner ECDSA
    recovers the wallet's owner or session key (for a wrapped signature it must equal the
    address the wrapper names).
    """
    if order.signature_type in (0, 1, 2):
        return ecrecover(order_digest(order, chain_id, exchange, version), signature)
    if order.signature_type != 3:
        raise SignatureError(f"unsupported signature type {order.signature_type}")
    parsed = parse_deposit_signature(signature)
    if parsed.contents_type != ORDER_TYPE:
        raise SignatureError("deposit-wallet signature is not over the V2 Order type")
    if parsed.contents_hash != order_struct_hash(order):
        raise SignatureError("deposit-wallet signature is over another order")
    if parsed.app_domain_separator != domain_separator(chain_id, exchange, version):
        raise DomainMismatch(parsed.app_domain_separator)
    recovered = ecrecover(
        typed_data_sign_digest(
            parsed.app_domain_separator, parsed.contents_hash, order.signer, chain_id
        ),
        parsed.inner,
    )
    if parsed.session_signer is not None and recovered != parsed.session_signer:
        raise SignatureError("wrapped signature does not match its signer")
    return recovered


def identify_domain(separator: bytes, chain_id: int) -> tuple[str, str] | None:
    """(exchange, version) whose domain separator this is, among known exchanges and versions."""
    for exchange in ALL_EXCHANGES:
        for version in ("1", "2", "3"):
            if domain_separator(chain_id, exchange, version) == separator:
                return exchange, version
    return None


def clob_auth_digest(address: str, timestamp: str, nonce: int, chain_id: int) -> bytes:
    """EIP-712 digest of the L1 `ClobAuth` message (domain ClobAuthDomain v1, no contract)."""
    domain = keccak(
        CLOB_AUTH_DOMAIN_TYPEHASH + keccak(b"ClobAuthDomain") + keccak(b"1") + _u256(chain_id)
    )
    struct = keccak(
        CLOB_AUTH_TYPEHASH
        + _address_word(address)
        + keccak(timestamp.encode())
        + _u256(nonce)
        + keccak(CLOB_AUTH_MESSAGE.encode())
    )
    return keccak(b"\x19\x01" + domain + struct)


def recover_clob_auth(
    address: str, timestamp: str, nonce: int, signature_hex: str, chain_id: int
) -> str:
    """Signer of an L1 ClobAuth signature (compare with POLY_ADDRESS)."""
    return ecrecover(
        clob_auth_digest(address, timestamp, nonce, chain_id), hex_bytes(signature_hex)
    )


def l2_signature(secret: str, timestamp: str, method: str, path: str, body: str) -> str:
    """POLY_SIGNATURE: base64url(HMAC-SHA256(b64url-decoded secret, ts+METHOD+path+body))."""
    key = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    digest = hmac.new(key, (timestamp + method + path + body).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()


def l2_signature_ok(
    secret: str, timestamp: str, method: str, path: str, body: str, presented: str
) -> bool:
    """Constant-time check of a presented POLY_SIGNATURE."""
    expected = l2_signature(secret, timestamp, method, path, body)
    return hmac.compare_digest(expected.encode(), presented.encode())
