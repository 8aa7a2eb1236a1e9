"""Key encryption: round trip, rotation, signer check, masked reprs, no secret in logs."""

from __future__ import annotations

import io
import logging

import pytest
from cryptography.fernet import Fernet

from crypto import (
    CryptoError,
    KeyRing,
    MissingKeyError,
    Secret,
    address_of_key,
    normalize_private_key,
    signer_for,
    signing_key,
)
from infra.logs import configure_logging, mask_secrets
from tests.support.keys import TEST_ADDRESS, TEST_ADDRESS_2, TEST_KEY, TEST_KEY_2
from wire.types import ApiCreds


def test_round_trip_and_token_is_not_plaintext(keyring: KeyRing) -> None:
    """encrypt → decrypt gives the key back; the token does not contain it."""
    token = keyring.encrypt(TEST_KEY)
    assert TEST_KEY[2:] not in token
    assert keyring.decrypt(token).reveal() == TEST_KEY


def test_rotation_old_key_still_decrypts_and_rotate_moves_to_new() -> None:
    """With 'new,old' both decrypt; rotate() re-encrypts under the new key only."""
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token_old = KeyRing(old).encrypt(TEST_KEY)
    ring = KeyRing(f"{new},{old}")
    assert ring.decrypt(token_old).reveal() == TEST_KEY
    assert not ring.is_current(token_old)
    rotated = ring.rotate(token_old)
    assert ring.is_current(rotated)
    assert KeyRing(new).decrypt(rotated).reveal() == TEST_KEY
    with pytest.raises(CryptoError):
        KeyRing(old).decrypt(rotated)


def test_unknown_key_cannot_decrypt(keyring: KeyRing) -> None:
    """A token from another key raises CryptoError, not a raw cryptography error."""
    token = KeyRing(Fernet.generate_key().decode()).encrypt(TEST_KEY)
    with pytest.raises(CryptoError):
        keyring.decrypt(token)


def test_missing_key_is_a_clear_error() -> None:
    """No ENCRYPTION_KEY → MissingKeyError telling how to make one."""
    with pytest.raises(MissingKeyError, match="gen-key"):
        KeyRing(None)


def test_signing_key_checks_the_signer(keyring: KeyRing) -> None:
    """The signing context yields the key for its own address and refuses a swapped token."""
    token1, token2 = keyring.encrypt(TEST_KEY), keyring.encrypt(TEST_KEY_2)
    with signing_key(keyring, token1, TEST_ADDRESS.lower()) as key:
        assert key == TEST_KEY
    with pytest.raises(CryptoError, match="does not match"), \
            signing_key(keyring, token2, TEST_ADDRESS):
        pass
    with signing_key(keyring, token2, TEST_ADDRESS_2) as key2:
        assert key2 == TEST_KEY_2


def test_signer_for_checks_the_signer_and_signs_as_it(keyring: KeyRing) -> None:
    """The parsed signing context yields a key of its own address (whose repr shows only the
    address) and refuses a swapped token, as `signing_key` does."""
    token1, token2 = keyring.encrypt(TEST_KEY), keyring.encrypt(TEST_KEY_2)
    with signer_for(keyring, token1, TEST_ADDRESS.lower()) as signer:
        assert signer.address == TEST_ADDRESS and TEST_KEY[2:] not in repr(signer)
        assert address_of_key(TEST_KEY) == TEST_ADDRESS
    with pytest.raises(CryptoError, match="does not match"), signer_for(keyring, token2, TEST_ADDRESS):
        pass


def test_secret_and_creds_reprs_are_masked() -> None:
    """Secret and ApiCreds never show their values in repr/str/f-strings."""
    s = Secret("supersecretvalue")
    assert "supersecretvalue" not in repr(s) + str(s) + f"{s}"
    c = ApiCreds("key-id", "c2VjcmV0c2VjcmV0c2VjcmV0", "passphrase-xyz")
    assert "c2VjcmV0c2VjcmV0c2VjcmV0" not in repr(c) and "passphrase-xyz" not in repr(c)


def test_api_creds_round_trip(keyring: KeyRing) -> None:
    """L2 credentials encrypt as one token and come back equal."""
    creds = ApiCreds("0f1e-key", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "pp-123456")
    token = keyring.encrypt_api_creds(creds)
    assert "pp-123456" not in token
    assert keyring.decrypt_api_creds(token) == creds


@pytest.mark.parametrize("bad", ["", "0x12", "zz" * 32, "0x" + "0" * 64, "0x" + "f" * 64, "0x" + "1" * 63])
def test_malformed_private_keys_are_refused_without_echo(bad: str) -> None:
    """Malformed or out-of-range keys raise ValueError whose message does not contain them."""
    with pytest.raises(ValueError) as err:
        normalize_private_key(bad)
    assert not bad or bad not in str(err.value)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_secret_in_logs_at_debug(keyring: KeyRing, fmt: str) -> None:
    """At DEBUG, a log line or traceback holding a decrypted key or API secret is masked."""
    stream = io.StringIO()
    configure_logging("DEBUG", fmt, stream=stream)
    try:
        token = keyring.encrypt(TEST_KEY)
        creds = ApiCreds("kid", "c2VjcmV0LXNlY3JldC1zZWNyZXQ=", "my-passphrase-1")
        keyring.decrypt_api_creds(keyring.encrypt_api_creds(creds))
        log = logging.getLogger("pmct.test")
        with signing_key(keyring, token, TEST_ADDRESS) as key:
            log.debug("signing with %s and %s", key, key[2:].upper().lower())
            log.debug("headers POLY_PASSPHRASE=%s secret=%s", creds.passphrase, creds.secret)
            try:
                raise RuntimeError(f"boom {key}")
            except RuntimeError:
                log.exception("failure")
        out = stream.getvalue()
    finally:
        logging.getLogger().handlers.clear()
    assert TEST_KEY[2:] not in out.lower()
    assert "c2VjcmV0LXNlY3JldC1zZWNyZXQ=" not in out and "my-passphrase-1" not in out
    assert "***" in out and "signing with" in out


def test_mask_secrets_keeps_order_hashes() -> None:
    """Hashes that are not secrets (order hashes, tx hashes) stay readable."""
    h = "0x" + "ab" * 32
    assert mask_secrets(f"order {h} posted") == f"order {h} posted"
