"""Crowding control, the pure plan (copying.crowding.allocate): depth, pro rata, lots, rotation."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from copying.crowding import Demand, allocate, depth_within, minimum_shares, proportional_demand, rotated
from copying.sizing import LOT
from wire.types import BookLevel

D = Decimal


def book(*levels: tuple[str, str]) -> tuple[BookLevel, ...]:
    """Asks best-first from (price, size) pairs."""
    return tuple(BookLevel(D(p), D(s)) for p, s in levels)


def demands(n: int, shares: str = "20", limit: str = "0.33", minimum: str = "5") -> list[Demand]:
    """n copies of one fill, alike."""
    return [Demand(100 + i, i + 1, D(shares), D(limit), D(minimum)) for i in range(n)]


def test_uniform_crowd_shares_the_depth_pro_rata() -> None:
    """8 copies of 20 shares, 80 shares on offer within the limit: 10 each, total = depth."""
    asks = book(("0.30", "50"), ("0.32", "30"), ("0.40", "1000"))
    plan = allocate(demands(8), asks, rotation=0)
    assert sum(plan.caps.values()) == D(80)
    assert set(plan.caps.values()) == {D(10)}
    assert plan.dropped == []


def test_enough_depth_leaves_every_copy_whole() -> None:
    """The book has room for everyone: nobody is shrunk."""
    plan = allocate(demands(4), book(("0.30", "500")), rotation=3)
    assert all(v == D(20) for v in plan.caps.values())


def test_levels_beyond_the_limit_do_not_count() -> None:
    """Only asks priced at or under the slippage limit are depth."""
    asks = book(("0.30", "10"), ("0.34", "1000"))
    assert depth_within(asks, D("0.33")) == D(10)
    plan = allocate(demands(2), asks, rotation=0)
    assert sum(plan.caps.values()) <= D(10)


def test_lots_left_over_go_in_the_plans_order() -> None:
    """3 copies share 10.00 shares: 3.34 / 3.33 / 3.33, the extra lot to the first in the order."""
    plan = allocate(demands(3, minimum="1"), book(("0.30", "10")), rotation=1)
    first = plan.order[0]
    assert plan.caps[first] == D("3.34")
    assert sorted(plan.caps.values()) == [D("3.33"), D("3.33"), D("3.34")]
    assert plan.deviation_lots() <= 1


def test_under_the_minimum_the_last_in_the_order_is_dropped_first() -> None:
    """8 copies want 20 each, 25 shares on offer, min size 5: 5 copies get 5 shares, the last 3
    in the plan's order get nothing, and the rotation moves who that is."""
    asks = book(("0.30", "25"))
    one = allocate(demands(8), asks, rotation=0)
    kept = [c for c in one.order if one.caps[c] > 0]
    assert len(kept) == 5 and all(one.caps[c] == D(5) for c in kept)
    assert set(one.dropped) == set(one.order[-3:])
    two = allocate(demands(8), asks, rotation=1)
    assert set(two.dropped) != set(one.dropped)
    # over 8 consecutive fills every follower gets shares in some and none is always dropped
    served: dict[int, int] = {}
    for r in range(8):
        p = allocate(demands(8), asks, rotation=r)
        for c, v in p.caps.items():
            served[c] = served.get(c, 0) + (1 if v > 0 else 0)
    assert min(served.values()) >= 4 and max(served.values()) <= 6


def test_tighter_limits_are_held_to_their_own_depth() -> None:
    """A copy with a tight limit only counts the cheap asks; looser copies share the rest."""
    tight = Demand(1, 1, D(100), D("0.30"), D(1))
    loose = [Demand(2 + i, 2 + i, D(100), D("0.35"), D(1)) for i in range(2)]
    asks = book(("0.30", "30"), ("0.34", "90"))
    plan = allocate([tight, *loose], asks, rotation=0)
    assert plan.caps[1] <= D(30)
    assert sum(plan.caps.values()) <= D(120)
    assert plan.caps[2] == plan.caps[3] and plan.caps[2] > plan.caps[1]


def test_nothing_within_the_limit_leaves_every_copy_resting_at_its_size() -> None:
    """No ask at or under any limit: the copies take nothing, so nothing is capped; the order
    still rotates (it is the posting order)."""
    plan = allocate(demands(5), book(("0.65", "1000")), rotation=2)
    assert plan.resting and all(v == D(20) for v in plan.caps.values())
    assert plan.order[0] == 102


def test_rotation_never_leaves_the_same_copy_last_twice_in_a_row() -> None:
    """Consecutive fills of one trader rotate the order by one."""
    ds = demands(7)
    lasts = [rotated(ds, r)[-1].copy_id for r in range(30)]
    assert all(a != b for a, b in zip(lasts, lasts[1:], strict=False))


def test_demand_and_minimum_helpers() -> None:
    """Proportional demand honours max USD at the limit; the minimum honours $1 and the min size."""
    assert proportional_demand(D(60), D(10), D(5), D("0.33")) == D(6)
    assert proportional_demand(D(600), D(10), D(5), D("0.33")) == D("15.15")
    assert minimum_shares(D(5), D("0.05")) == D(20)
    assert minimum_shares(D(5), D("0.50")) == D(5)


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 40), rotation=st.integers(0, 1000),
       wants=st.lists(st.integers(1, 5000), min_size=40, max_size=40),
       limits=st.lists(st.sampled_from(["0.31", "0.33", "0.36"]), min_size=40, max_size=40),
       sizes=st.lists(st.integers(0, 3000), min_size=3, max_size=3))
def test_plan_invariants(n: int, rotation: int, wants: list[int], limits: list[str], sizes: list[int]) -> None:
    """Never more than the depth within any limit; never more than asked; whole lots; each kept
    copy within one lot of the exact pro-rata share."""
    ds = [Demand(i, i, D(wants[i]) / 100, D(limits[i]), D(1)) for i in range(n)]
    asks = book(("0.30", str(D(sizes[0]) / 100)), ("0.32", str(D(sizes[1]) / 100)),
                ("0.35", str(D(sizes[2]) / 100)))
    plan = allocate(ds, asks, rotation)
    if all(depth_within(asks, d.limit) == 0 for d in ds):  # nothing to take: all rest, uncapped
        assert plan.resting and all(plan.caps[d.copy_id] == d.shares for d in ds)
        return
    for lim in {d.limit for d in ds}:
        assert sum(plan.caps[d.copy_id] for d in ds if d.limit <= lim) <= depth_within(asks, lim)
    for d in ds:
        cap = plan.caps[d.copy_id]
        assert cap <= d.shares and cap == cap.quantize(LOT) and (cap == 0 or cap >= d.minimum)
    assert plan.deviation_lots() <= 1
