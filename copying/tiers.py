"""Subscription tiers (seed plan, Phase 5): what each tier may copy, as pure checks.

| tier  | follows (not removed) | copy % per follow | automatic copying |
|-------|-----------------------|-------------------|-------------------|
| free  | 0                     | -                 | no                |
| pro   | 1                     | <= 10             | yes               |
| elite | unlimited             | <= 20             | yes               |
| whale | unlimited             | <= 100            | yes               |

Invariant: `add-follow` and `set-tier` refuse anything these limits forbid (exit 2, nothing
written), and the executor calls `copy_allowed` at copy time, so a follower never copies beyond
its tier. Paused follows count toward the follow limit (resuming one must not exceed it).
A downgrade that existing follows would violate is refused, never applied partially.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from infra.errors import InputError
from models import Follow, Follower, Tier

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

REASON_FREE = "tier_free_no_copying"
REASON_PCT = "tier_copy_pct_limit"


@dataclass(frozen=True)
class TierLimits:
    """What one tier allows; None = unlimited."""

    copying: bool
    max_follows: int | None
    max_copy_pct: Decimal


LIMITS: dict[Tier, TierLimits] = {
    Tier.FREE: TierLimits(copying=False, max_follows=0, max_copy_pct=Decimal(0)),
    Tier.PRO: TierLimits(copying=True, max_follows=1, max_copy_pct=Decimal(10)),
    Tier.ELITE: TierLimits(copying=True, max_follows=None, max_copy_pct=Decimal(20)),
    Tier.WHALE: TierLimits(copying=True, max_follows=None, max_copy_pct=Decimal(100)),
}


class TierLimitError(InputError):
    """A follow or tier change the follower's tier does not allow (exit 2)."""


def as_tier(tier: Tier | str) -> Tier:
    """A Tier from an enum member or its name ('pro', 'PRO'); InputError otherwise."""
    if isinstance(tier, Tier):
        return tier
    try:
        return Tier(str(tier).strip().lower())
    except ValueError:
        raise InputError(
            f"unknown tier {tier!r} (expected one of {', '.join(t.value for t in Tier)})"
        ) from None


def limits_of(tier: Tier | str) -> TierLimits:
    """The limits of a tier."""
    return LIMITS[as_tier(tier)]


def copy_allowed(tier: Tier | str, copy_pct: Decimal) -> tuple[bool, str | None]:
    """May a follow at `copy_pct` % copy now under `tier`: (True, None) or (False, reason)."""
    lim = limits_of(tier)
    if not lim.copying:
        return False, REASON_FREE
    if copy_pct > lim.max_copy_pct:
        return False, REASON_PCT
    return True, None


def check_follow_allowed(tier: Tier | str, active_follow_count: int, copy_pct: Decimal) -> None:
    """Raise TierLimitError unless one more follow at `copy_pct` % fits `tier`.

    `active_follow_count` is the number of the follower's follows that are not removed, not
    counting the new one.
    """
    t = as_tier(tier)
    lim = LIMITS[t]
    if not lim.copying:
        raise TierLimitError(
            f"tier {t.value} does not include automatic copying; "
            "upgrade with `admin set-tier --wallet W --tier pro|elite|whale`"
        )
    if lim.max_follows is not None and active_follow_count + 1 > lim.max_follows:
        raise TierLimitError(
            f"tier {t.value} allows {lim.max_follows} followed trader(s) and this follower "
            f"already has {active_follow_count}; remove one or upgrade with `admin set-tier`"
        )
    if copy_pct > lim.max_copy_pct:
        raise TierLimitError(
            f"tier {t.value} allows --copy-pct up to {lim.max_copy_pct}, got {copy_pct}; "
            "lower it or upgrade with `admin set-tier`"
        )


def tier_violations(tier: Tier | str, follows: Iterable[tuple[str, Decimal]]) -> list[str]:
    """What existing follows `(trader wallet, copy_pct)` break under `tier` (empty = none)."""
    t = as_tier(tier)
    lim = LIMITS[t]
    items = list(follows)
    problems: list[str] = []
    if not lim.copying and items:
        problems.append(f"tier {t.value} allows no follows; this follower has {len(items)}")
        return problems
    if lim.max_follows is not None and len(items) > lim.max_follows:
        problems.append(f"{len(items)} follows (tier {t.value} allows {lim.max_follows})")
    for trader, pct in items:
        if pct > lim.max_copy_pct:
            problems.append(f"the follow of {trader} copies {pct}% "
                            f"(tier {t.value} allows at most {lim.max_copy_pct}%)")
    return problems


# --- database side (used by the admin CLI) ---------------------------------------------------

def _open_follows(session: Session, follower_id: int) -> list[Follow]:
    from sqlalchemy import select

    from models import FollowStatus

    return list(session.scalars(
        select(Follow).where(Follow.follower_id == follower_id, Follow.shadow_of.is_(None),
                             Follow.status != FollowStatus.REMOVED).order_by(Follow.id)))


def enforce_new_follow(session: Session, follow: Follow) -> None:
    """Raise TierLimitError when a just-added (flushed) follow breaks its follower's tier."""
    others = [f for f in _open_follows(session, follow.follower_id) if f.id != follow.id]
    check_follow_allowed(follow.follower.tier, len(others), follow.copy_pct)


def set_tier(session: Session, follower: Follower, tier: Tier | str) -> tuple[str, str, str]:
    """Change a follower's tier; refuses a change its current follows would violate.

    The caller finds the follower (ops.accounts.find_follower: the engine never imports ops).
    Returns (wallet, old tier, new tier).
    """
    new = as_tier(tier)
    follows = _open_follows(session, follower.id)
    problems = tier_violations(new, [(f.trader.wallet, f.copy_pct) for f in follows])
    if problems:
        raise TierLimitError(
            f"cannot move {follower.funder_address} to tier {new.value}: " + "; ".join(problems)
            + " (remove those follows or re-add them with a lower --copy-pct first)")
    old = follower.tier
    follower.tier = new
    return follower.funder_address, old.value, new.value
