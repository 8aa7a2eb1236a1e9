"""Encryption of follower secrets at rest, and the only place a private key becomes plaintext.

Invariants:
- secrets are stored only as Fernet tokens; `ENCRYPTION_KEY` is a comma-separated list
  (MultiFernet): the first key encrypts, every key decrypts, `rotate()` re-encrypts under the first;
- a private key is plaintext only inside `signing_key(...)` (or, parsed, inside `signer_for(...)`),
  and only after its address has been checked against the follower's signer address (a swapped
  ciphertext is refused);
- secret values are wrapped in `Secret`, whose repr/str are masked; every secret decrypted or
  encrypted here is registered (by hash only) with `infra.logs`, whose `SecretMaskingFilter`
  masks it in log records and `mask_secrets` in any one-line error message.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from infra.errors import CryptoError as CryptoError  # re-exported for callers
from infra.errors import InputError
from infra.errors import MissingKeyError as MissingKeyError
from infra.logs import MASK, register_secret

if TYPE_CHECKING:
    from wire.auth import SigningKey
    from wire.types import ApiCreds

_PRIVATE_KEY_RE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


class Secret:
    """A secret string whose repr and str are masked; `reveal()` returns the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The plaintext value: call only where it is used, never to log or print it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", hashlib.sha256(self._value.encode()).hexdigest()))


def generate_key() -> str:
    """A new random Fernet key (url-safe base64 text)."""
    return Fernet.generate_key().decode()


def normalize_private_key(raw: str) -> str:
    """`0x`-prefixed lowercase 64-hex private key; InputError (without the key) if malformed."""
    text = raw.strip()
    if not _PRIVATE_KEY_RE.match(text):
        raise InputError("private key must be 64 hex characters (optionally 0x-prefixed)")
    hexpart = text[2:] if text.lower().startswith("0x") else text
    value = int(hexpart, 16)
    secp256k1_n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    if not 0 < value < secp256k1_n:
        raise InputError("private key is out of range for secp256k1")
    return "0x" + hexpart.lower()


def address_of_key(private_key: str) -> str:
    """Checksummed Ethereum address of a private key (secp256k1 via `wire.auth.SigningKey`)."""
    from wire.auth import SigningKey

    return SigningKey(private_key).address


class KeyRing:
    """Fernet encryption under a rotating list of keys."""

    def __init__(self, keys: str | None) -> None:
        if not keys:
            raise MissingKeyError(
                "ENCRYPTION_KEY is not set; generate one with `admin gen-key` and put it in .env"
            )
        try:
            fernets = [Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()]
        except (ValueError, TypeError):
            raise CryptoError("ENCRYPTION_KEY holds an invalid Fernet key") from None
        if not fernets:
            raise MissingKeyError("ENCRYPTION_KEY is empty")
        self._multi = MultiFernet(fernets)
        self._primary = fernets[0]

    def encrypt(self, plaintext: str) -> str:
        """Encrypt under the first key."""
        register_secret(plaintext)
        return self._multi.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> Secret:
        """Decrypt with any key of the ring."""
        try:
            value = self._multi.decrypt(token.encode()).decode()
        except InvalidToken:
            raise CryptoError(
                "cannot decrypt a stored secret: none of the ENCRYPTION_KEY keys matches"
            ) from None
        register_secret(value)
        return Secret(value)

    def is_current(self, token: str) -> bool:
        """True when `token` is already encrypted under the first key."""
        try:
            self._primary.decrypt(token.encode())
            return True
        except InvalidToken:
            return False

    def rotate(self, token: str) -> str:
        """The same secret re-encrypted under the first key."""
        try:
            return self._multi.rotate(token.encode()).decode()
        except InvalidToken:
            raise CryptoError("cannot rotate a secret: none of the ENCRYPTION_KEY keys matches") from None

    def encrypt_api_creds(self, creds: ApiCreds) -> str:
        """Encrypt CLOB L2 credentials as one token."""
        register_secret(creds.secret)
        register_secret(creds.passphrase)
        payload = {"api_key": creds.api_key, "secret": creds.secret, "passphrase": creds.passphrase}
        return self.encrypt(json.dumps(payload))

    def decrypt_api_creds(self, token: str) -> ApiCreds:
        """Decrypt CLOB L2 credentials stored by `encrypt_api_creds`."""
        from wire.types import ApiCreds

        data = json.loads(self.decrypt(token).reveal())
        register_secret(data["secret"])
        register_secret(data["passphrase"])
        return ApiCreds(api_key=data["api_key"], secret=data["secret"], passphrase=data["passphrase"])


def _checked_signer(private_key: str, expected_signer: str) -> SigningKey:
    """The parsed key, refused when it does not belong to `expected_signer` (a swapped token)."""
    from wire.auth import SigningKey

    signer = SigningKey(private_key)
    if signer.address.lower() != expected_signer.lower():
        raise CryptoError("stored private key does not match the follower's signer address")
    return signer


@contextmanager
def signer_for(keyring: KeyRing, encrypted_private_key: str, expected_signer: str) -> Iterator[SigningKey]:
    """Yield the decrypted key, parsed once (`wire.auth.SigningKey`), for one signing step of many
    orders, after checking its address; the same promises as `signing_key`."""
    secret = keyring.decrypt(encrypted_private_key)
    signer: SigningKey | None = None
    try:
        signer = _checked_signer(secret.reveal(), expected_signer)
        yield signer
    finally:
        del signer
        del secret


@contextmanager
def signing_key(keyring: KeyRing, encrypted_private_key: str, expected_signer: str) -> Iterator[str]:
    """Yield the decrypted private key for one signing step, after checking its address.

    The plaintext exists only for the duration of the `with` block; the reference held here is
    dropped on exit. A ciphertext whose key does not belong to `expected_signer` is refused.
    """
    secret = keyring.decrypt(encrypted_private_key)
    key = secret.reveal()
    try:
        _checked_signer(key, expected_signer)
        yield key
    finally:
        del key
        del secret
