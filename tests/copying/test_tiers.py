"""Tier limits as pure checks: free copies nothing, pro 1 trader ≤ 10 %, elite ≤ 20 %, whale all."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from copying.tiers import (
    REASON_FREE,
    REASON_PCT,
    TierLimitError,
    as_tier,
    check_follow_allowed,
    copy_allowed,
    tier_violations,
)
from models import Tier


@pytest.mark.parametrize(("tier", "pct", "expected"), [
    ("free", "0.1", (False, REASON_FREE)),
    ("pro", "10", (True, None)),
    ("pro", "10.0001", (False, REASON_PCT)),
    ("elite", "20", (True, None)),
    ("elite", "20.5", (False, REASON_PCT)),
    ("whale", "100", (True, None)),
    (Tier.PRO, "0.01", (True, None)),
])
def test_copy_allowed_at_copy_time(tier: object, pct: str, expected: tuple[bool, str | None]) -> None:
    """copy_allowed answers per tier and copy % with a reason code when refused."""
    assert copy_allowed(tier, D(pct)) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("tier", "count", "pct", "message"), [
    ("free", 0, "1", "does not include automatic copying"),
    ("pro", 1, "1", "allows 1 followed trader"),
    ("pro", 0, "11", "up to 10"),
    ("elite", 0, "21", "up to 20"),
])
def test_check_follow_allowed_refuses(tier: str, count: int, pct: str, message: str) -> None:
    """A follow beyond the tier raises TierLimitError (an InputError: exit 2) saying why."""
    with pytest.raises(TierLimitError, match=message):
        check_follow_allowed(tier, count, D(pct))


@pytest.mark.parametrize(("tier", "count", "pct"), [
    ("pro", 0, "10"), ("elite", 50, "20"), ("whale", 1000, "100")])
def test_check_follow_allowed_accepts(tier: str, count: int, pct: str) -> None:
    """Follows inside the limits pass (elite and whale have no follow-count limit)."""
    check_follow_allowed(tier, count, D(pct))


def test_tier_violations_and_names() -> None:
    """Violations list every problem of a downgrade; tier names are case-insensitive."""
    follows = [("0xa", D("15")), ("0xb", D("5"))]
    assert tier_violations("elite", follows) == []
    problems = tier_violations("pro", follows)
    assert len(problems) == 2 and "2 follows" in problems[0] and "0xa copies 15%" in problems[1]
    assert tier_violations("free", []) == []
    assert as_tier("ELITE") is Tier.ELITE
    with pytest.raises(ValueError, match="unknown tier"):
        as_tier("gold")
