"""Build and sign CLOB V2 orders offline and serialise the exact POST /order body (§5.1–5.2).

Invariants:
- `SignedOrder.order_hash` is the EIP-712 digest of the Order struct under the exchange domain,
  i.e. the exchange's `hashOrder(order)` and the venue's orderID. It depends only on the struct
  fields (not on expiration, not on the signature), so the ERC-7739 wrapper used for type 3
  (deposit wallets) does not change it: the wallet's `isValidSignature(hash, sig)` rebuilds
  `hash` as keccak(0x1901 ‖ appDomainSeparator ‖ contentsHash) from the wrapper itself.
- Signatures are byte-identical to py-clob-client-v2 1.2.1 `ExchangeOrderBuilderV2` (and to
  polymarket-client 0.14.0) for every signature type, both exchanges, domains "2" and "3".
- `post_order_body` is deterministic: the same SignedOrder always gives the same bytes, so a
  body stored before the POST can be re-posted verbatim and its HMAC recomputed from it.
- Inconsistent wallet inputs are refused before anything is signed (`OrderSigningError`).

The EIP-712 encoding is hand-rolled (fixed struct, ~20× faster than the generic encoder) and
checked against the SDK in tests; ECDSA goes through `clob_auth.SigningKey` (coincurve when
importable).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypedDict

from eth_hash.auto import keccak
from eth_keys.datatypes import Signature

from infra.errors import OrderError
from wire.auth import SigningKey, checksum_address
from wire.types import MarketVersion, OrderType, Side, SignatureType

ZERO_BYTES32 = "0x" + "00" * 32
MAX_SALT = 2**53 - 1  # both SDKs keep the salt JSON-number safe
_UINT256_MAX = 2**256 - 1

ORDER_TYPE_STRING = (
    "Order(uint256 salt,address maker,address signer,uint256 tokenId,"
    "uint256 makerAmount,uint256 takerAmount,uint8 side,uint8 signatureType,"
    "uint256 timestamp,bytes32 metadata,bytes32 builder)"
)
_ORDER_TYPE_BYTES = ORDER_TYPE_STRING.encode()
ORDER_TYPEHASH = keccak(_ORDER_TYPE_BYTES)
_DOMAIN_TYPEHASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_EXCHANGE_NAME_HASH = keccak(b"Polymarket CTF Exchange")
# ERC-7739 nested typed data for deposit wallets (Solady ERC1271 "TypedDataSign" workflow).
_TYPED_DATA_SIGN_TYPEHASH = keccak(
    b"TypedDataSign(Order contents,string name,string version,uint256 chainId,"
    b"address verifyingContract,bytes32 salt)" + _ORDER_TYPE_BYTES
)
_DEPOSIT_WALLET_NAME_HASH = keccak(b"DepositWallet")
_DEPOSIT_WALLET_VERSION_HASH = keccak(b"1")
_DEPOSIT_WALLET_SALT = bytes(32)
_ERC7739_TRAILER = _ORDER_TYPE_BYTES + len(_ORDER_TYPE_BYTES).to_bytes(2, "big")

_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_BYTES32_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")
_UINT_RE = re.compile(r"^(0|[1-9][0-9]{0,77})$")
_SIDE_CODE = {Side.BUY: 0, Side.SELL: 1}

# Exchange contracts per chain (SDK config; vectors.json "exchanges").
_EXCHANGES: dict[int, dict[str, str]] = {
    137: {
        "standard": "0xE111180000d2663C0091e4f400237545B87B996B",
        "neg_risk": "0xe2222d279d744050d28e00520010520000310F59",
        "v3": "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa",
    },
    80002: {
        "standard": "0xE111180000d2663C0091e4f400237545B87B996B",
        "neg_risk": "0xe2222d279d744050d28e00520010520000310F59",
        "v3": "0x9fE6e61422AdB6F610d8597F9684b16912D50C3D",
    },
}


def exchange_addresses(chain_id: int) -> tuple[str, ...]:
    """The V2 exchanges of a chain (standard, neg-risk, ExchangeV3): where fills are settled."""
    table = _EXCHANGES.get(chain_id)
    if table is None:
        raise OrderSigningError(f"no exchange addresses known for chain {chain_id}")
    return (table["standard"], table["neg_risk"], table["v3"])


class OrderSigningError(OrderError):
    """Order inputs that are invalid or inconsistent; raised before anything is signed."""


@dataclass(frozen=True)
class Exchange:
    """An exchange contract and its EIP-712 domain version ("2" CTF markets, "3" ExchangeV3)."""

    address: str
    domain_version: str


def exchange_for(version: MarketVersion, neg_risk: bool, chain_id: int) -> Exchange:
    """The exchange a market's orders are signed for (§5.1, §7); neg_risk is moot for v2 markets."""
    table = _EXCHANGES.get(chain_id)
    if table is None:
        raise OrderSigningError(f"no exchange addresses known for chain {chain_id}")
    if version is MarketVersion.V2:
        return Exchange(table["v3"], "3")
    if version is MarketVersion.V1:
        return Exchange(table["neg_risk" if neg_risk else "standard"], "2")
    raise OrderSigningError(f"unknown market version {version!r}")


@dataclass(frozen=True)
class OrderRequest:
    """What to sign. salt/timestamp_ms None = fresh 53-bit salt / next per-signer timestamp."""

    maker: str
    signer: str
    token_id: str
    maker_amount: int
    taker_amount: int
    side: Side
    signature_type: SignatureType
    expiration: int = 0
    metadata: str = ZERO_BYTES32
    builder: str = ZERO_BYTES32
    salt: int | None = None
    timestamp_ms: int | None = None


class OrderFields(TypedDict):
    """The EIP-712 `Order` struct's fields, as `order_struct_hash` and `SignedOrder` take them."""

    salt: int
    maker: str
    signer: str
    token_id: str
    maker_amount: int
    taker_amount: int
    side: Side
    signature_type: SignatureType
    timestamp_ms: int
    metadata: str
    builder: str


@dataclass(frozen=True)
class SignedOrder:
    """A signed V2 order: the struct fields, expiration, signature and the venue's order hash."""

    salt: int
    maker: str
    signer: str
    token_id: str
    maker_amount: int
    taker_amount: int
    side: Side
    signature_type: SignatureType
    timestamp_ms: int
    metadata: str
    builder: str
    expiration: int
    signature: str
    order_hash: str

    def to_json(self) -> dict[str, str | int]:
        """The `order` object of the POST /order body (salt and signatureType are JSON numbers)."""
        return {
            "builder": self.builder,
            "expiration": str(self.expiration),
            "maker": self.maker,
            "makerAmount": str(self.maker_amount),
            "metadata": self.metadata,
            "salt": self.salt,
            "side": self.side.value,
            "signature": self.signature,
            "signatureType": int(self.signature_type),
            "signer": self.signer,
            "takerAmount": str(self.taker_amount),
            "timestamp": str(self.timestamp_ms),
            "tokenId": self.token_id,
        }


# ----------------------------------------------------------------------------- salt and clock


def new_salt() -> int:
    """A fresh random 53-bit salt (like the SDK; survives JSON as a number)."""
    return secrets.randbits(53)


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class TimestampSource:
    """Per-signer strictly increasing millisecond timestamps (thread-safe, injectable clock)."""

    def __init__(self, clock: Callable[[], int] = _wall_clock_ms) -> None:
        self._clock = clock
        self._last: dict[str, int] = {}
        self._lock = threading.Lock()

    def next(self, signer: str) -> int:
        """max(clock(), previous + 1) for this signer (case-insensitive address)."""
        key = signer.lower()
        with self._lock:
            now = int(self._clock())
            prev = self._last.get(key)
            ts = now if prev is None or now > prev else prev + 1
            self._last[key] = ts
            return ts


_DEFAULT_TIMESTAMPS = TimestampSource()


def next_timestamp_ms(signer: str, source: TimestampSource | None = None) -> int:
    """Next order timestamp for `signer` from `source` (the process-wide source by default)."""
    return (source or _DEFAULT_TIMESTAMPS).next(signer)


# ----------------------------------------------------------------------------- EIP-712


@lru_cache(maxsize=64)
def domain_separator(exchange: Exchange, chain_id: int) -> bytes:
    """EIP-712 domain separator of an exchange (name "Polymarket CTF Exchange")."""
    return keccak(
        _DOMAIN_TYPEHASH
        + _EXCHANGE_NAME_HASH
        + keccak(exchange.domain_version.encode())
        + int(chain_id).to_bytes(32, "big")
        + bytes(12)
        + bytes.fromhex(exchange.address[2:])
    )


def _word(n: int) -> bytes:
    return n.to_bytes(32, "big")


def _addr_word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


def order_struct_hash(
    *,
    salt: int,
    maker: str,
    signer: str,
    token_id: str,
    maker_amount: int,
    taker_amount: int,
    side: Side,
    signature_type: SignatureType,
    timestamp_ms: int,
    metadata: str,
    builder: str,
) -> bytes:
    """hashStruct(Order) — the ERC-7739 `contents` hash."""
    return keccak(
        ORDER_TYPEHASH
        + _word(salt)
        + _addr_word(maker)
        + _addr_word(signer)
        + _word(int(token_id))
        + _word(maker_amount)
        + _word(taker_amount)
        + _word(_SIDE_CODE[side])
        + _word(int(signature_type))
        + _word(timestamp_ms)
        + bytes.fromhex(metadata[2:])
        + bytes.fromhex(builder[2:])
    )


def _struct_fields(o: SignedOrder) -> OrderFields:
    return {
        "salt": o.salt, "maker": o.maker, "signer": o.signer, "token_id": o.token_id,
        "maker_amount": o.maker_amount, "taker_amount": o.taker_amount, "side": o.side,
        "signature_type": o.signature_type, "timestamp_ms": o.timestamp_ms,
        "metadata": o.metadata, "builder": o.builder,
    }


def order_digest(order: SignedOrder, exchange: Exchange, chain_id: int) -> bytes:
    """The exchange's hashOrder(order): keccak(0x1901 ‖ domainSeparator ‖ hashStruct(order))."""
    contents = order_struct_hash(**_struct_fields(order))
    return keccak(b"\x19\x01" + domain_separator(exchange, chain_id) + contents)


def _typed_data_sign_digest(
    app_separator: bytes, contents: bytes, wallet: str, chain_id: int
) -> bytes:
    """ERC-7739 TypedDataSign digest the deposit wallet's owner signs."""
    struct = keccak(
        _TYPED_DATA_SIGN_TYPEHASH
        + contents
        + _DEPOSIT_WALLET_NAME_HASH
        + _DEPOSIT_WALLET_VERSION_HASH
        + _word(chain_id)
        + _addr_word(wallet)
        + _DEPOSIT_WALLET_SALT
    )
    return keccak(b"\x19\x01" + app_separator + struct)


# ----------------------------------------------------------------------------- validation


def _address(value: str, name: str) -> str:
    if not isinstance(value, str) or not _ADDRESS_RE.match(value):
        raise OrderSigningError(f"{name} must be a 0x-prefixed 20-byte hex address")
    if int(value, 16) == 0:
        raise OrderSigningError(f"{name} must not be the zero address")
    return checksum_address(value)


def _bytes32(value: str, name: str) -> str:
    if not isinstance(value, str) or not _BYTES32_RE.match(value):
        raise OrderSigningError(f"{name} must be 0x followed by 64 hex digits")
    return value.lower()


def _uint(value: int, name: str, *, positive: bool = False, upper: int = _UINT256_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OrderSigningError(f"{name} must be an int, got {type(value).__name__}")
    if value < (1 if positive else 0) or value > upper:
        bound = "positive" if positive else "non-negative"
        raise OrderSigningError(f"{name} must be a {bound} integer ≤ {upper}, got {value}")
    return value


def _token_id(value: str) -> str:
    if not isinstance(value, str) or not _UINT_RE.match(value) or int(value) > _UINT256_MAX:
        raise OrderSigningError("token_id must be a canonical decimal uint256 string")
    return value


def _check_wallet(sig_type: SignatureType, maker: str, signer: str, key_address: str) -> None:
    """Refuse maker/signer/key combinations the exchange would reject (§6)."""
    if sig_type is SignatureType.POLY_1271:
        if maker != signer:
            raise OrderSigningError("signature type 3 needs maker == signer == the deposit wallet")
        if signer == key_address:
            raise OrderSigningError(
                "signature type 3: signer must be the deposit wallet, not the key's own address"
            )
        return
    if signer != key_address:
        raise OrderSigningError(
            f"signer {signer} is not the address of the signing key ({key_address})"
        )
    if sig_type is SignatureType.EOA and maker != signer:
        raise OrderSigningError("signature type 0 (EOA) needs maker == signer")
    if sig_type in (SignatureType.POLY_PROXY, SignatureType.POLY_GNOSIS_SAFE) and maker == signer:
        raise OrderSigningError(
            f"signature type {int(sig_type)} needs maker = the proxy/safe wallet, not the EOA"
        )


# ----------------------------------------------------------------------------- signing


def sign_order(
    req: OrderRequest,
    private_key: str | SigningKey,
    exchange: Exchange,
    chain_id: int,
    *,
    timestamps: TimestampSource | None = None,
) -> SignedOrder:
    """Validate, fill salt/timestamp, and sign `req` (ERC-7739-wrapped for deposit wallets)."""
    try:
        side = Side(req.side)
        sig_type = SignatureType(req.signature_type)
    except ValueError:
        raise OrderSigningError("side or signature_type is not a known value") from None
    maker = _address(req.maker, "maker")
    signer = _address(req.signer, "signer")
    token_id = _token_id(req.token_id)
    maker_amount = _uint(req.maker_amount, "maker_amount", positive=True)
    taker_amount = _uint(req.taker_amount, "taker_amount", positive=True)
    metadata = _bytes32(req.metadata, "metadata")
    builder = _bytes32(req.builder, "builder")
    expiration = _uint(req.expiration, "expiration")
    if exchange.domain_version not in ("2", "3"):
        raise OrderSigningError(f"unsupported exchange domain version {exchange.domain_version!r}")
    if not _ADDRESS_RE.match(exchange.address):
        raise OrderSigningError("exchange address must be a 0x-prefixed 20-byte hex address")

    key = private_key if isinstance(private_key, SigningKey) else SigningKey(private_key)
    _check_wallet(sig_type, maker, signer, key.address)

    salt = _uint(new_salt() if req.salt is None else req.salt, "salt", upper=MAX_SALT)
    timestamp_ms = _uint(
        next_timestamp_ms(signer, timestamps) if req.timestamp_ms is None else req.timestamp_ms,
        "timestamp_ms",
        positive=True,
    )
    fields = OrderFields(
        salt=salt, maker=maker, signer=signer, token_id=token_id, maker_amount=maker_amount,
        taker_amount=taker_amount, side=side, signature_type=sig_type, timestamp_ms=timestamp_ms,
        metadata=metadata, builder=builder,
    )

    app_separator = domain_separator(exchange, chain_id)
    contents = order_struct_hash(**fields)
    digest = keccak(b"\x19\x01" + app_separator + contents)
    if sig_type is SignatureType.POLY_1271:
        inner = key.sign_digest(_typed_data_sign_digest(app_separator, contents, signer, chain_id))
        raw = inner + app_separator + contents + _ERC7739_TRAILER
    else:
        raw = key.sign_digest(digest)
    return SignedOrder(
        expiration=expiration, signature="0x" + raw.hex(), order_hash="0x" + digest.hex(), **fields
    )


def recover_order_signer(order: SignedOrder, exchange: Exchange, chain_id: int) -> str:
    """The EOA whose key produced `order.signature` (unwrapping ERC-7739 for type 3).

    For type 3 the wrapper's app domain separator and contents hash must match the order, i.e.
    keccak(0x1901 ‖ separator ‖ contents) == the order hash, as the deposit wallet checks.
    """
    raw = bytes.fromhex(order.signature[2:])
    app_separator = domain_separator(exchange, chain_id)
    contents = order_struct_hash(**_struct_fields(order))
    if order.signature_type is SignatureType.POLY_1271:
        if len(raw) != 65 + 64 + len(_ERC7739_TRAILER) or raw[129:] != _ERC7739_TRAILER:
            raise OrderSigningError("type 3 signature is not an ERC-7739 Order wrapper")
        if raw[65:97] != app_separator or raw[97:129] != contents:
            raise OrderSigningError("type 3 wrapper does not match this order and exchange")
        digest = _typed_data_sign_digest(app_separator, contents, order.signer, chain_id)
    else:
        if len(raw) != 65:
            raise OrderSigningError("ECDSA signature must be 65 bytes")
        digest = keccak(b"\x19\x01" + app_separator + contents)
    v = raw[64] - 27 if raw[64] >= 27 else raw[64]
    if v not in (0, 1):
        raise OrderSigningError("signature v must be 27 or 28")
    sig = Signature(raw[:64] + bytes((v,)))
    return sig.recover_public_key_from_msg_hash(digest).to_checksum_address()


def signed_order_from_json(
    order: Mapping[str, Any], exchange: Exchange, chain_id: int
) -> SignedOrder:
    """Parse a wire `order` object back into a SignedOrder, recomputing its order hash."""
    try:
        fields = OrderFields({
            "salt": _uint(int(order["salt"]), "salt"),
            "maker": _address(order["maker"], "maker"),
            "signer": _address(order["signer"], "signer"),
            "token_id": _token_id(str(order["tokenId"])),
            "maker_amount": _uint(int(order["makerAmount"]), "makerAmount", positive=True),
            "taker_amount": _uint(int(order["takerAmount"]), "takerAmount", positive=True),
            "side": Side(order["side"]),
            "signature_type": SignatureType(int(order["signatureType"])),
            "timestamp_ms": _uint(int(order["timestamp"]), "timestamp"),
            "metadata": _bytes32(order["metadata"], "metadata"),
            "builder": _bytes32(order["builder"], "builder"),
        })
        expiration = _uint(int(order.get("expiration", "0")), "expiration")
        signature = str(order["signature"])
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, OrderSigningError):
            raise
        raise OrderSigningError(f"malformed order object: {exc!s}") from None
    if not re.fullmatch(r"0x(?:[0-9a-fA-F]{2})+", signature):
        raise OrderSigningError("signature must be 0x-prefixed hex")
    digest = keccak(
        b"\x19\x01" + domain_separator(exchange, chain_id) + order_struct_hash(**fields)
    )
    return SignedOrder(
        expiration=expiration, signature=signature.lower(), order_hash="0x" + digest.hex(), **fields
    )


# ----------------------------------------------------------------------------- wire body


def post_order_body(
    order: SignedOrder, owner: str, order_type: OrderType, post_only: bool = False
) -> bytes:
    """Exact compact JSON for POST /order, keys ordered as in fixtures/clob_post_order_request.json.

    `owner` is the L2 API key (uuid). `postOnly` appears only when true (GTC/GTD only); GTD
    needs a non-zero expiration and the other types need expiration 0.
    """
    order_type = OrderType(order_type)
    if not isinstance(owner, str) or not owner.strip():
        raise OrderSigningError("owner must be the (non-empty) L2 API key")
    if post_only and order_type not in (OrderType.GTC, OrderType.GTD):
        raise OrderSigningError(f"postOnly is only allowed with GTC or GTD, not {order_type.value}")
    if order_type is OrderType.GTD and order.expiration == 0:
        raise OrderSigningError("GTD orders need a non-zero expiration")
    if order_type is not OrderType.GTD and order.expiration != 0:
        raise OrderSigningError(f"{order_type.value} orders must have expiration 0")
    body: dict[str, object] = {
        "deferExec": False,
        "order": order.to_json(),
        "orderType": order_type.value,
        "owner": owner,
    }
    if post_only:
        body["postOnly"] = True
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
