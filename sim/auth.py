"""CLOB authentication: L1 (ClobAuth signature → API credentials) and L2 (HMAC on every call).

Credentials are derived deterministically from the simulator seed, the EOA and the nonce, so a
scenario replays with the same keys; the secret is base64url with padding like the real one.

Invariants:
- an L2 request passes only if the key exists and is not deleted, the passphrase matches,
  POLY_ADDRESS is the key's EOA, the timestamp is fresh, and the HMAC over
  timestamp + METHOD + path + the exact body bytes received matches; otherwise 401
  `Unauthorized/Invalid api key` (the same text for every cause, as the CLOB does);
- an L1 request passes only if the ClobAuth signature recovers to POLY_ADDRESS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from email.message import Message

from sim.http import HttpError
from sim.state import ApiKeyRecord, BuilderKeyRecord, World
from sim.verify import SignatureError, checksum, l2_signature_ok, recover_clob_auth

L2_ERROR = {"error": "Unauthorized/Invalid api key"}
L1_ERROR = {"error": "Invalid L1 Request headers"}


def _world_secret(world: World) -> bytes:
    return hashlib.sha256(f"pmct-sim:{world.config.seed}".encode()).digest()


def derive_creds(world: World, address: str, nonce: int) -> ApiKeyRecord:
    """The credentials the simulator issues for (EOA, nonce): same inputs, same keys."""
    eoa = checksum(address)
    seed = _world_secret(world)
    tag = f"{eoa.lower()}:{nonce}".encode()
    key_bytes = hmac.new(seed, b"key:" + tag, hashlib.sha256).digest()[:16]
    secret = base64.urlsafe_b64encode(
        hmac.new(seed, b"secret:" + tag, hashlib.sha256).digest()
    ).decode()
    passphrase = hmac.new(seed, b"pass:" + tag, hashlib.sha256).hexdigest()
    return ApiKeyRecord(
        api_key=str(uuid.UUID(bytes=key_bytes, version=4)),
        secret=secret,
        passphrase=passphrase,
        address=eoa,
        nonce=nonce,
    )


def issue_key(world: World, address: str, nonce: int) -> ApiKeyRecord:
    """Create (or return the existing) key for (EOA, nonce)."""
    slot = (address.lower(), nonce)
    existing = world.keys_by_addr_nonce.get(slot)
    if existing is not None and not world.api_keys[existing].deleted:
        return world.api_keys[existing]
    record = derive_creds(world, address, nonce)
    world.api_keys[record.api_key] = record
    world.keys_by_addr_nonce[slot] = record.api_key
    return record


def existing_key(world: World, address: str, nonce: int) -> ApiKeyRecord | None:
    """The live key created earlier for (EOA, nonce), if any."""
    found = world.keys_by_addr_nonce.get((address.lower(), nonce))
    if found is None or world.api_keys[found].deleted:
        return None
    return world.api_keys[found]


def _fresh(world: World, timestamp: str) -> bool:
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    skew = world.config.auth_max_skew
    return abs(ts - time.time()) <= skew or abs(ts - world.clock.now()) <= skew


def l1_authenticate(world: World, headers: Message) -> tuple[str, int]:
    """Check L1 headers; returns (checksummed EOA, nonce) or raises 401."""
    address = headers.get("POLY_ADDRESS") or ""
    signature = headers.get("POLY_SIGNATURE") or ""
    timestamp = headers.get("POLY_TIMESTAMP") or ""
    nonce_text = headers.get("POLY_NONCE") or "0"
    if not (address and signature and timestamp and nonce_text.isdigit()):
        raise HttpError(401, L1_ERROR)
    if not _fresh(world, timestamp):
        raise HttpError(401, L1_ERROR)
    try:
        eoa = checksum(address)
        recovered = recover_clob_auth(
            eoa, timestamp, int(nonce_text), signature, world.config.chain_id
        )
    except SignatureError as exc:
        raise HttpError(401, L1_ERROR) from exc
    if recovered != eoa:
        raise HttpError(401, L1_ERROR)
    return eoa, int(nonce_text)


def l2_authenticate(
    world: World, method: str, path: str, headers: Message, body: bytes
) -> ApiKeyRecord:
    """Check L2 headers over the exact body received; returns the API key record or raises 401."""
    api_key = headers.get("POLY_API_KEY") or ""
    record = world.api_keys.get(api_key)
    address = headers.get("POLY_ADDRESS") or ""
    passphrase = headers.get("POLY_PASSPHRASE") or ""
    timestamp = headers.get("POLY_TIMESTAMP") or ""
    signature = headers.get("POLY_SIGNATURE") or ""
    if record is None or record.deleted or not (address and timestamp and signature):
        raise HttpError(401, L2_ERROR)
    if not hmac.compare_digest(passphrase.encode(), record.passphrase.encode()):
        raise HttpError(401, L2_ERROR)
    if address.lower() != record.address.lower() or not _fresh(world, timestamp):
        raise HttpError(401, L2_ERROR)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HttpError(401, L2_ERROR) from exc
    try:
        ok = l2_signature_ok(record.secret, timestamp, method, path, text, signature)
    except (ValueError, TypeError) as exc:
        raise HttpError(401, L2_ERROR) from exc
    if not ok:
        raise HttpError(401, L2_ERROR)
    return record


def issue_builder_key(world: World, builder_code: str) -> BuilderKeyRecord:
    """Builder API credentials for a builder code (deterministic, like the L2 keys)."""
    code = builder_code.lower()
    for record in world.builder_keys.values():
        if record.builder_code == code:
            return record
    seed = _world_secret(world)
    tag = f"builder:{code}".encode()
    record = BuilderKeyRecord(
        api_key=str(uuid.UUID(bytes=hmac.new(seed, b"key:" + tag, hashlib.sha256).digest()[:16],
                              version=4)),
        secret=base64.urlsafe_b64encode(hmac.new(seed, b"secret:" + tag, hashlib.sha256).digest()).decode(),
        passphrase=hmac.new(seed, b"pass:" + tag, hashlib.sha256).hexdigest(),
        builder_code=code,
    )
    world.builder_keys[record.api_key] = record
    return record


def builder_authenticate(world: World, method: str, path: str, headers: Message,
                         body: bytes) -> BuilderKeyRecord:
    """Check POLY_BUILDER_* headers (HMAC as L2, builder secret); the record or 401."""
    record = world.builder_keys.get(headers.get("POLY_BUILDER_API_KEY") or "")
    passphrase = headers.get("POLY_BUILDER_PASSPHRASE") or ""
    timestamp = headers.get("POLY_BUILDER_TIMESTAMP") or ""
    signature = headers.get("POLY_BUILDER_SIGNATURE") or ""
    if record is None or not (timestamp and signature) or not _fresh(world, timestamp):
        raise HttpError(401, L2_ERROR)
    if not hmac.compare_digest(passphrase.encode(), record.passphrase.encode()):
        raise HttpError(401, L2_ERROR)
    try:
        ok = l2_signature_ok(record.secret, timestamp, method, path, body.decode("utf-8"), signature)
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise HttpError(401, L2_ERROR) from exc
    if not ok:
        raise HttpError(401, L2_ERROR)
    return record
