"""CLOB authentication: L1 (EIP-712 `ClobAuth` signed by the key) and L2 (API-key HMAC) headers.

Also the key primitives the order signer shares: `SigningKey` (address + `sign_digest`, 65-byte
r‖s‖v, v = 27/28) and `checksum_address`. The ECC backend is eth_keys' choice, made once at
import (coincurve when importable, else pure Python; `ECC_BACKEND_CLASS` overrides); with
coincurve, SigningKey calls coincurve directly.

Invariant: a private key, API secret or passphrase never appears in a return value other than
the header it belongs in, in an exception message, or in a log. Keys are parsed per call and not
cached. The L2 signature covers exactly `timestamp + METHOD + path + body bytes` (docs/POLYMARKET.md §4.2):
sign the bytes you send, never a re-serialisation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from functools import lru_cache
from typing import TYPE_CHECKING, NoReturn

from eth_hash.auto import keccak
from eth_keys.backends import get_backend
from eth_keys.backends.coincurve import CoinCurveECCBackend
from eth_keys.datatypes import PrivateKey

from infra.errors import InputError
from wire.types import ApiCreds

CLOB_AUTH_MESSAGE = "This message attests that I control the given wallet"

_ECC = get_backend()
# With the coincurve backend we call coincurve directly: one key object per signing (eth_keys
# would build two, each deriving the public key again), ~3x less time per order.
_USE_COINCURVE = isinstance(_ECC, CoinCurveECCBackend)
if _USE_COINCURVE or TYPE_CHECKING:
    import coincurve

_DOMAIN_TYPEHASH = keccak(b"EIP712Domain(string name,string version,uint256 chainId)")
_CLOB_AUTH_TYPEHASH = keccak(
    b"ClobAuth(address address,string timestamp,uint256 nonce,string message)"
)
_NAME_HASH = keccak(b"ClobAuthDomain")
_VERSION_HASH = keccak(b"1")
_MESSAGE_HASH = keccak(CLOB_AUTH_MESSAGE.encode())


class InvalidPrivateKey(InputError):
    """A private key that cannot be parsed (the message never contains the key)."""


def ecc_backend_name() -> str:
    """Name of the eth_keys ECC backend in use (e.g. CoinCurveECCBackend, NativeECCBackend)."""
    return type(_ECC).__name__


def checksum_address(address: str) -> str:
    """EIP-55 checksummed form of a 0x-prefixed 40-hex-digit address (any case in)."""
    if len(address) != 42 or address[:2] not in ("0x", "0X"):
        raise ValueError("address must be 0x followed by 40 hex digits")
    lower = address[2:].lower()
    try:
        int(lower, 16)
    except ValueError:
        raise ValueError("address must be 0x followed by 40 hex digits") from None
    return _checksum_lower(lower)


@lru_cache(maxsize=4096)
def _checksum_lower(lower: str) -> str:
    digest = keccak(lower.encode()).hex()
    return "0x" + "".join(
        c.upper() if d in "89abcdef" else c for c, d in zip(lower, digest, strict=False)
    )


class SigningKey:
    """A parsed secp256k1 private key; its repr shows only the address, never the key."""

    __slots__ = ("_key", "address")
    _key: coincurve.PrivateKey | PrivateKey  # depending on the backend

    def __init__(self, private_key: str) -> None:
        text = private_key.strip() if isinstance(private_key, str) else ""
        if text[:2] in ("0x", "0X"):
            text = text[2:]
        if len(text) != 64:
            raise InvalidPrivateKey("private key must be 32 bytes as 64 hex digits")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise InvalidPrivateKey("private key is not valid hex") from None
        try:
            if _USE_COINCURVE:
                self._key = coincurve.PrivateKey(raw)
                public = self._key.public_key.format(compressed=False)[1:]
            else:
                self._key = PrivateKey(raw, backend=_ECC)
                public = self._key.public_key.to_bytes()
        except Exception:
            raise InvalidPrivateKey("private key is out of range for secp256k1") from None
        self.address: str = checksum_address("0x" + keccak(public)[-20:].hex())

    def sign_digest(self, digest: bytes) -> bytes:
        """ECDSA-sign a 32-byte digest: 65 bytes r‖s‖v with v = 27/28 (Ethereum convention)."""
        if len(digest) != 32:
            raise ValueError("digest must be 32 bytes")
        key = self._key
        if isinstance(key, PrivateKey):  # the eth_keys backend (no coincurve)
            sig = _ECC.ecdsa_sign(digest, key).to_bytes()
        else:
            sig = key.sign_recoverable(digest, hasher=None)
        return sig[:64] + bytes((sig[64] + 27,))

    def __repr__(self) -> str:
        return f"SigningKey(address={self.address})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("SigningKey cannot be pickled")


def address_of(private_key: str) -> str:
    """The checksummed Ethereum address of a private key."""
    return SigningKey(private_key).address


def clob_auth_digest(address: str, chain_id: int, timestamp: int, nonce: int = 0) -> bytes:
    """EIP-712 digest of the L1 `ClobAuth` message (domain ClobAuthDomain v1, no contract)."""
    domain = keccak(
        _DOMAIN_TYPEHASH + _NAME_HASH + _VERSION_HASH + int(chain_id).to_bytes(32, "big")
    )
    struct = keccak(
        _CLOB_AUTH_TYPEHASH
        + bytes.fromhex(checksum_address(address)[2:]).rjust(32, b"\0")
        + keccak(str(int(timestamp)).encode())
        + int(nonce).to_bytes(32, "big")
        + _MESSAGE_HASH
    )
    return keccak(b"\x19\x01" + domain + struct)


def l1_headers(private_key: str, chain_id: int, timestamp: int, nonce: int = 0) -> dict[str, str]:
    """L1 headers for create/derive API key: POLY_ADDRESS/SIGNATURE/TIMESTAMP/NONCE (§4.1)."""
    if int(timestamp) < 0 or int(nonce) < 0:
        raise ValueError("timestamp and nonce must be non-negative")
    key = SigningKey(private_key)
    sig = key.sign_digest(clob_auth_digest(key.address, chain_id, timestamp, nonce))
    return {
        "POLY_ADDRESS": key.address,
        "POLY_SIGNATURE": "0x" + sig.hex(),
        "POLY_TIMESTAMP": str(int(timestamp)),
        "POLY_NONCE": str(int(nonce)),
    }


def _decode_secret(secret: str) -> bytes:
    """Base64url-decode an API secret, restoring stripped `=` padding first."""
    padded = secret.strip() + "=" * (-len(secret.strip()) % 4)
    try:
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("API secret is not valid base64url") from None


def l2_signature(
    secret: str, timestamp: str, method: str, request_path: str, body: bytes | str | None
) -> str:
    """POLY_SIGNATURE: base64url(HMAC-SHA256(secret, ts + method + path + exact body)), padded.

    `method` is signed as given (callers pass the upper-case wire method); `body` is the exact
    wire body (str is UTF-8 encoded); None or empty means no body.
    """
    message = (str(timestamp) + method + request_path).encode()
    if body:
        message += body.encode() if isinstance(body, str) else bytes(body)
    digest = hmac.new(_decode_secret(secret), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")


def l2_headers(
    creds: ApiCreds,
    address: str,
    method: str,
    request_path: str,
    body: bytes | None,
    timestamp: int,
) -> dict[str, str]:
    """L2 headers for an authenticated CLOB call (§4.2); `address` is the EOA bound to the key."""
    if "?" in request_path or "#" in request_path:
        raise ValueError("request_path must be the path only, without a query string")
    if not request_path.startswith("/"):
        raise ValueError("request_path must start with '/'")
    ts = str(int(timestamp))
    return {
        "POLY_ADDRESS": checksum_address(address),
        "POLY_API_KEY": creds.api_key,
        "POLY_PASSPHRASE": creds.passphrase,
        "POLY_TIMESTAMP": ts,
        "POLY_SIGNATURE": l2_signature(creds.secret, ts, method.upper(), request_path, body),
    }


def builder_headers(api_key: str, secret: str, passphrase: str, method: str, request_path: str,
                    body: bytes | None, timestamp: int) -> dict[str, str]:
    """POLY_BUILDER_* headers for the builder routes (same HMAC as L2, builder credentials)."""
    if "?" in request_path or not request_path.startswith("/"):
        raise ValueError("request_path must be the path only, starting with '/'")
    ts = str(int(timestamp))
    return {
        "POLY_BUILDER_API_KEY": api_key,
        "POLY_BUILDER_PASSPHRASE": passphrase,
        "POLY_BUILDER_TIMESTAMP": ts,
        "POLY_BUILDER_SIGNATURE": l2_signature(secret, ts, method.upper(), request_path, body),
    }
