"""Followers, traders and follow relationships: validation and persistence (the admin's logic).

Every function validates all of its input before writing anything; bad input raises
`InputError` with a one-line message that never contains a secret. Callers own the transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from crypto import KeyRing, address_of_key, normalize_private_key
from infra.db import session_scope, utcnow
from infra.errors import InputError
from models import Follow, Follower, FollowerStatus, FollowStatus, Tier, Trader
from ops.inputs import PERCENT, POSITIVE, PRICE, SLIPPAGE, parse_decimal, parse_text, shown
from wire.types import SignatureType

_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ZERO_ADDRESS = "0x" + "0" * 40
NAME_LENGTH = 200  # followers.name, traders.label
LABEL_LENGTH = 200
EMAIL_LENGTH = 320  # followers.email


def normalize_address(raw: str, what: str) -> str:
    """Lowercase 0x address; InputError naming `what` if malformed."""
    text = raw.strip()
    if not _ADDRESS_RE.match(text):
        raise InputError(f"{what} must be a 0x-prefixed 40-hex-digit address, got {raw!r}")
    if text.lower() == ZERO_ADDRESS:
        raise InputError(f"{what} must not be the zero address")
    return text.lower()


def checksum(address: str) -> str:
    """EIP-55 checksummed form of an address."""
    from eth_utils import to_checksum_address

    return str(to_checksum_address(address))


@dataclass(frozen=True)
class FollowLimits:
    """Optional per-follow risk limits (None = not set)."""

    max_slippage: Decimal | None = None
    daily_usd_cap: Decimal | None = None
    market_exposure_cap: Decimal | None = None
    price_min: Decimal | None = None
    price_max: Decimal | None = None

    def validate(self) -> None:
        """Raise InputError on an impossible limit (the same checks as the CLI's flags)."""
        for name, value, allowed in (("--max-slippage", self.max_slippage, SLIPPAGE),
                                     ("--daily-cap", self.daily_usd_cap, POSITIVE),
                                     ("--market-cap", self.market_exposure_cap, POSITIVE),
                                     ("--price-min", self.price_min, PRICE),
                                     ("--price-max", self.price_max, PRICE)):
            if value is not None:
                parse_decimal(value, name, allowed)
        if (self.price_min is not None and self.price_max is not None
                and self.price_min > self.price_max):
            raise InputError("--price-min must not be above --price-max")


def find_follower(session: Session, wallet: str) -> Follower:
    """The follower whose funder or signer address is `wallet` (any case)."""
    addr = normalize_address(wallet, "--wallet")
    follower = session.scalar(
        select(Follower).where(
            or_(func.lower(Follower.funder_address) == addr,
                func.lower(Follower.signer_address) == addr)
        )
    )
    if follower is None:
        raise InputError(f"no follower with wallet {addr}")
    return follower


def find_trader(session: Session, wallet: str) -> Trader | None:
    """The trader with this profile wallet, or None."""
    addr = normalize_address(wallet, "--follow")
    return session.scalar(select(Trader).where(Trader.wallet == addr))


def add_follower(
    session: Session,
    keyring: KeyRing,
    *,
    name: str,
    email: str,
    private_key: str,
    signature_type: SignatureType,
    funder: str | None,
    tier: Tier,
) -> Follower:
    """Validate and store a follower; the key is encrypted before it touches the session."""
    name = parse_text(name, "--name", NAME_LENGTH)
    email = parse_text(email, "--email", EMAIL_LENGTH)
    if not _EMAIL_RE.match(email):
        raise InputError(f"--email is not a valid address: {shown(email)}")
    try:
        key = normalize_private_key(private_key)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    signer = address_of_key(key)
    if signature_type == SignatureType.EOA:
        if funder is not None and normalize_address(funder, "--funder") != signer.lower():
            raise InputError("--funder must equal the key's own address for signature type eoa")
        funder_addr = signer
    else:
        if funder is None:
            raise InputError(f"--funder is required for signature type {signature_type.cli_name}")
        funder_addr = checksum(normalize_address(funder, "--funder"))
        if funder_addr.lower() == signer.lower():
            raise InputError(
                f"--funder must be the {signature_type.cli_name} wallet, not the key's own address"
            )
    existing = session.scalar(
        select(Follower.id).where(
            or_(func.lower(Follower.signer_address).in_([signer.lower(), funder_addr.lower()]),
                func.lower(Follower.funder_address).in_([signer.lower(), funder_addr.lower()]))
        )
    )
    if existing is not None:
        raise InputError("a follower with this signer or funder wallet already exists")
    follower = Follower(
        name=name,
        email=email,
        signer_address=signer,
        funder_address=funder_addr,
        signature_type=int(signature_type),
        encrypted_private_key=keyring.encrypt(key),
        tier=tier,
        status=FollowerStatus.ACTIVE,
    )
    del key
    session.add(follower)
    session.flush()
    return follower


def add_follow(
    session: Session,
    *,
    follower_wallet: str,
    trader_wallet: str,
    copy_pct: Decimal,
    max_usd_per_trade: Decimal,
    limits: FollowLimits = FollowLimits(),
    label: str | None = None,
    now: datetime | None = None,
) -> Follow:
    """Validate and store a follow; refuses duplicates. Copies start from `now`."""
    copy_pct = parse_decimal(copy_pct, "--copy-pct", PERCENT)
    max_usd_per_trade = parse_decimal(max_usd_per_trade, "--max-trade", POSITIVE)
    limits.validate()
    if label is not None:
        label = parse_text(label, "--label", LABEL_LENGTH)
    trader_addr = normalize_address(trader_wallet, "--follow")
    follower = find_follower(session, follower_wallet)
    if trader_addr in (follower.funder_address.lower(), follower.signer_address.lower()):
        raise InputError("a follower cannot follow its own wallet")
    trader = session.scalar(select(Trader).where(Trader.wallet == trader_addr))
    if trader is not None:
        dup = session.scalar(
            select(Follow).where(Follow.follower_id == follower.id, Follow.trader_id == trader.id,
                                 Follow.shadow_of.is_(None))
        )
        if dup is not None and dup.status != FollowStatus.REMOVED:
            raise InputError(f"{follower.funder_address} already follows {trader_addr}")
    else:
        dup = None
        trader = Trader(wallet=trader_addr, label=label)
        session.add(trader)
        session.flush()
    start = now or utcnow()
    if dup is not None:  # re-follow after a removal: same row, fresh start
        follow = dup
        follow.status = FollowStatus.ACTIVE
        follow.started_at = start
    else:
        follow = Follow(follower_id=follower.id, trader_id=trader.id, started_at=start)
        session.add(follow)
    follow.copy_pct = copy_pct
    follow.max_usd_per_trade = max_usd_per_trade
    follow.max_slippage = limits.max_slippage
    follow.daily_usd_cap = limits.daily_usd_cap
    follow.market_exposure_cap = limits.market_exposure_cap
    follow.price_min = limits.price_min
    follow.price_max = limits.price_max
    session.flush()
    return follow


def find_follow(session: Session, follower_wallet: str, trader_wallet: str) -> Follow:
    """The follow of this follower on this trader (not removed)."""
    follower = find_follower(session, follower_wallet)
    trader = find_trader(session, trader_wallet)
    follow = None if trader is None else session.scalar(
        select(Follow).where(Follow.follower_id == follower.id, Follow.trader_id == trader.id,
                             Follow.status != FollowStatus.REMOVED, Follow.shadow_of.is_(None))
    )
    if follow is None:
        raise InputError(f"{follower.funder_address} does not follow {trader_wallet.strip().lower()}")
    return follow


def remove_follow(session: Session, follower_wallet: str, trader_wallet: str) -> Follow:
    """Stop a follow for good (its history stays)."""
    from copying.killswitch import notify_executors

    follow = find_follow(session, follower_wallet, trader_wallet)
    follow.status = FollowStatus.REMOVED
    for shadow in session.scalars(select(Follow).where(Follow.shadow_of == follow.id)):
        shadow.status = FollowStatus.REMOVED  # a shadow twin goes with the follow it shadows
    notify_executors(session)  # its open orders are cancelled at the executor's next wake
    return follow


def set_pause(session: Session, follower_wallet: str, trader_wallet: str | None,
              paused: bool) -> str:
    """Pause or resume a follower (all its follows) or a single follow; returns what changed."""
    if trader_wallet is None:
        follower = find_follower(session, follower_wallet)
        if follower.status == FollowerStatus.DISABLED:
            raise InputError("follower is disabled by the kill switch; use `admin enable`")
        follower.status = FollowerStatus.PAUSED if paused else FollowerStatus.ACTIVE
        return f"follower {follower.funder_address} {'paused' if paused else 'resumed'}"
    follow = find_follow(session, follower_wallet, trader_wallet)
    was = follow.pause_reason
    follow.status = FollowStatus.PAUSED if paused else FollowStatus.ACTIVE
    follow.pause_reason = None  # an admin's pause or resume replaces an automatic one
    if not paused and was:
        return (f"follow {follow.follower.funder_address} -> {follow.trader.wallet} resumed "
                f"(it was paused automatically: {was})")
    return f"follow {follow.follower.funder_address} -> {follow.trader.wallet} " + (
        "paused" if paused else "resumed")


def rotate_keys(factory: sessionmaker[Session], keyring: KeyRing,
                progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Re-encrypt every stored secret under the first key, one follower per transaction.

    Safe to re-run after a crash: tokens already under the first key are left alone.
    Returns (rotated, already current).
    """
    rotated = current = 0
    with session_scope(factory) as session:
        ids = list(session.scalars(select(Follower.id).order_by(Follower.id)))
    for fid in ids:
        with session_scope(factory) as session:
            follower = session.get(Follower, fid, with_for_update=True)
            assert follower is not None
            changed = False
            for attr in ("encrypted_private_key", "encrypted_api_creds"):
                token = getattr(follower, attr)
                if token is None:
                    continue
                if keyring.is_current(token):
                    continue
                setattr(follower, attr, keyring.rotate(token))
                changed = True
            if changed:
                rotated += 1
            else:
                current += 1
        if progress:
            progress(1)
    return rotated, current


def follower_row(f: Follower) -> dict[str, object]:
    """A follower as a JSON-safe dict with no secret in it."""
    return {
        "id": f.id,
        "name": f.name,
        "email": f.email,
        "wallet": f.funder_address,
        "signer": f.signer_address,
        "signature_type": SignatureType(f.signature_type).cli_name,
        "tier": f.tier.value,
        "status": f.status.value,
        "l2_credentials": f.encrypted_api_creds is not None,
        "daily_cap_usd": None if f.daily_usd_cap is None else str(f.daily_usd_cap),
        "max_open_exposure_usd": None if f.max_open_exposure is None else str(f.max_open_exposure),
        "event_cap_usd": None if f.event_cap is None else str(f.event_cap),
        "category_cap_usd": None if f.category_cap is None else str(f.category_cap),
        "window_cap_usd": None if f.window_cap is None else str(f.window_cap),
        "daily_loss_stop_usd": None if f.daily_loss_stop is None else str(f.daily_loss_stop),
        "created_at": f.created_at.isoformat(),
    }


FOLLOWER_LIMITS = (  # (Follower attribute, CLI option, what it limits)
    ("daily_usd_cap", "--daily-cap", "daily cap"),
    ("max_open_exposure", "--max-exposure", "max open exposure"),
    ("event_cap", "--event-cap", "per event"),
    ("category_cap", "--category-cap", "per category"),
    ("window_cap", "--window-cap", "per resolution window"),
    ("daily_loss_stop", "--daily-loss-stop", "daily loss stop"),
)


def set_follower_limits(session: Session, wallet: str, *, daily_cap: Decimal | None | str = "keep",
                        max_exposure: Decimal | None | str = "keep",
                        **more: Decimal | None | str) -> Follower:
    """Set (a Decimal ≥ 0), clear (None) or keep ("keep") a follower's own limits, across all its
    follows: USD bought per UTC day, USD at risk (positions held + open BUY orders), and by
    keyword the event-level ones (`event_cap`, `category_cap`, `window_cap`: USD at risk per
    event, category, resolution-date window; `daily_loss_stop`: the day's realized loss)."""
    follower = find_follower(session, wallet)
    values = {"daily_usd_cap": daily_cap, "max_open_exposure": max_exposure, **more}
    unknown = set(values) - {attr for attr, _, _ in FOLLOWER_LIMITS}
    if unknown:
        raise InputError(f"unknown follower limit(s): {', '.join(sorted(unknown))}")
    for attr, what, _ in FOLLOWER_LIMITS:
        value = values.get(attr, "keep")
        if value == "keep":
            continue
        if isinstance(value, Decimal) and value < 0:
            raise InputError(f"{what} must be ≥ 0 (or 'none' to remove the limit)")
        setattr(follower, attr, value)
    return follower


def follow_row(fo: Follow) -> dict[str, object]:
    """A follow as a JSON-safe dict."""
    def d(x: Decimal | None) -> str | None:
        return None if x is None else str(x)

    return {
        "id": fo.id,
        "follower": fo.follower.funder_address,
        "trader": fo.trader.wallet,
        "copy_pct": d(fo.copy_pct),
        "max_trade_usd": d(fo.max_usd_per_trade),
        "max_slippage": d(fo.max_slippage),
        "daily_cap_usd": d(fo.daily_usd_cap),
        "market_cap_usd": d(fo.market_exposure_cap),
        "price_min": d(fo.price_min),
        "price_max": d(fo.price_max),
        "status": fo.status.value,
        "pause_reason": fo.pause_reason,
        "mode": fo.mode,
        "shadow_of": fo.shadow_of,
        "late_exits": fo.mirror_late_exits,
        "started_at": fo.started_at.isoformat(),
    }
