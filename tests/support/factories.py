"""Small builders for rows used across tests (no business logic)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from models import CopyOrder, CopyStatus, Follow, Follower, Tier, Trader, TraderFill

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def follower(s: Session, n: int = 1, signature_type: int = 0) -> Follower:
    """A follower with a fake encrypted key (tests that need real keys use the CLI)."""
    addr = f"0x{n:040x}"
    f = Follower(name=f"F{n}", email=f"f{n}@example.com", signer_address=addr,
                 funder_address=addr, signature_type=signature_type,
                 encrypted_private_key="gAAAA-fake", tier=Tier.PRO)
    s.add(f)
    s.flush()
    return f


def trader(s: Session, n: int = 1) -> Trader:
    """A trader row."""
    t = Trader(wallet=f"0x{0xabc000 + n:040x}")
    s.add(t)
    s.flush()
    return t


def follow(s: Session, f: Follower, t: Trader, pct: str = "10", max_trade: str = "50") -> Follow:
    """An active follow."""
    fo = Follow(follower_id=f.id, trader_id=t.id, copy_pct=Decimal(pct),
                max_usd_per_trade=Decimal(max_trade), started_at=T0)
    s.add(fo)
    s.flush()
    return fo


def trader_fill(s: Session, t: Trader, key: str = "k1", **kw: object) -> TraderFill:
    """A BUY trader fill."""
    values: dict[str, object] = dict(
        trader_id=t.id, fill_key=key, activity_type="TRADE", transaction_hash="0x" + "1" * 64,
        condition_id="0x" + "2" * 64, token_id="123", side="BUY", size=Decimal("100"),
        price=Decimal("0.58"), occurred_at=T0, raw={"k": key})
    values.update(kw)
    fill = TraderFill(**values)
    s.add(fill)
    s.flush()
    return fill


def copy_order(s: Session, fill: TraderFill, fo: Follow, **kw: object) -> CopyOrder:
    """A QUEUED copy order."""
    values: dict[str, object] = dict(
        follow_id=fo.id, trader_fill_id=fill.id, follower_id=fo.follower_id, side="BUY",
        token_id=fill.token_id, condition_id=fill.condition_id, trader_price=fill.price,
        status=CopyStatus.QUEUED, paper=False)
    values.update(kw)
    co = CopyOrder(**values)
    s.add(co)
    s.flush()
    return co
