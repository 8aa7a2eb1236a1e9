"""Crowding control: the copies of one leader fill share the book's depth, pro rata, in turn.

When many followers copy one fill, their BUYs together never ask for more than the book offers
within their slippage limits, so that no copy chases the price past its limit or rests unfilled
behind the others (CROWDING_CONTROL, on by default; README "Copy quality").

The plan (`allocate`, pure):
- each copy's demand is its proportional size (leader shares × copy %, within max USD per
  trade at its limit price), in lots of 0.01 share; its limit is its slippage limit;
- the visible depth within a limit L is the ask size priced ≤ L; for every limit L, the copies
  whose limit is ≤ L together get at most the depth within L (so the total is at most the depth
  within the loosest limit);
- pro rata by progressive filling: every copy gets the same fraction of its demand until a
  limit binds; the copies under it keep that fraction, the others share what is left;
- shares are floored to the lot, then the lots left over go one each, in the plan's order, to
  the copies that were rounded down: no copy is more than one lot from its exact pro-rata share;
- a copy whose share falls under its minimum (the market's min size, $1) is dropped, the last
  in the plan's order first (several at once when the depth cannot hold them all at their
  minimum), and the rest is planned again without it;
- the order is the copies by follow id, rotated by the fill's rank among its trader's fills:
  over consecutive fills of one trader the same follower is never last twice in a row;
- when the book offers nothing within any copy's limit, no copy takes liquidity: each keeps its
  own size and rests as a limit order (repriced later as before), posted in the plan's order.

Where it is kept (`plan_caps`): the first signing transaction that sizes a copy of the fill writes
the plan for ALL the fill's BUY copies of its mode (`CrowdPlan`, unique per fill and mode, its
row locked after the followers and copies, so never in a deadlock); every later batch, on this
executor or another, reads it. So the copies of one fill split over batches or executors still
take at most the depth the first batch saw in total. A copy the plan did not know (queued after
it) gets what is left unplanned. A copy sized smaller by its own limits leaves its unused share
unallocated (never given to another). Only BUY copies of a leader fill with at least two copies
are planned: an exit or a lone copy is sized as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal, localcontext
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from copying.modes import for_mode, mode_name
from copying.sizing import LOT, MIN_NOTIONAL_USD, floor_lot, shares_affordable
from models import CopyOrder, CopyStatus, CrowdPlan, Follow, TraderFill
from wire.types import BookLevel

ZERO = Decimal(0)
ONE = Decimal(1)
SKIP_REASON = "crowding_depth"


@dataclass(frozen=True)
class Demand:
    """One copy of the fill: what it would buy alone, its price limit, its smallest valid size."""

    copy_id: int
    key: int  # the order key (follow id)
    shares: Decimal
    limit: Decimal
    minimum: Decimal


@dataclass
class Allocation:
    """The plan: shares per copy (0 = dropped), the order (first to last), the exact shares."""

    caps: dict[int, Decimal]
    order: list[int]
    exact: dict[int, Decimal] = field(default_factory=dict)
    dropped: list[int] = field(default_factory=list)
    resting: bool = False  # no ask within any limit: nothing is taken, nothing capped

    def deviation_lots(self) -> Decimal:
        """Largest |allotted − exact pro-rata share| over the copies kept, in lots."""
        kept = [cid for cid, s in self.caps.items() if s > 0]
        return max((abs(self.caps[c] - self.exact[c]) / LOT for c in kept), default=ZERO)


def depth_within(asks: Sequence[BookLevel], limit: Decimal) -> Decimal:
    """Ask size priced at or under `limit` (asks best-first)."""
    return sum((lv.size for lv in asks if lv.price <= limit), ZERO)


def rotated(demands: Sequence[Demand], rotation: int) -> list[Demand]:
    """The copies by key, rotated left by `rotation` (mod their number)."""
    ordered = sorted(demands, key=lambda d: (d.key, d.copy_id))
    if not ordered:
        return []
    k = rotation % len(ordered)
    return ordered[k:] + ordered[:k]


def _ratios(demands: Sequence[Demand], depth: dict[Decimal, Decimal]) -> dict[int, Decimal]:
    """Progressive filling: the fraction of its demand each copy gets (module docstring)."""
    ratio: dict[int, Decimal] = {}
    active = [d for d in demands if d.shares > 0]
    frozen: list[Demand] = []
    limits = sorted(depth)
    while active:
        best: tuple[Decimal, Decimal] | None = None
        for lim in limits:
            asked = sum((d.shares for d in active if d.limit <= lim), ZERO)
            if asked <= 0:
                continue
            used = sum((d.shares * ratio[d.copy_id] for d in frozen if d.limit <= lim), ZERO)
            r = (depth[lim] - used) / asked
            if best is None or r < best[0]:
                best = (r, lim)
        assert best is not None
        r, lim = best
        if r >= ONE:
            for d in active:
                ratio[d.copy_id] = ONE
            break
        r = max(r, ZERO)
        now = [d for d in active if d.limit <= lim]
        for d in now:
            ratio[d.copy_id] = r
        frozen.extend(now)
        active = [d for d in active if d.limit > lim]
    for d in demands:
        ratio.setdefault(d.copy_id, ZERO)
    return ratio


def _fits(d: Demand, extra: Decimal, used: dict[Decimal, Decimal], depth: dict[Decimal, Decimal]) -> bool:
    return all(used[lim] + extra <= depth[lim] for lim in depth if lim >= d.limit)


def _round(order: Sequence[Demand], ratio: dict[int, Decimal], depth: dict[Decimal, Decimal]
           ) -> tuple[dict[int, Decimal], dict[int, Decimal]]:
    """Exact shares, then lots: floored, and the lots left over one each in the plan's order."""
    exact = {d.copy_id: d.shares * ratio[d.copy_id] for d in order}
    caps = {d.copy_id: floor_lot(exact[d.copy_id]) for d in order}
    used = {lim: sum((caps[d.copy_id] for d in order if d.limit <= lim), ZERO) for lim in depth}
    for d in order:
        if caps[d.copy_id] < exact[d.copy_id] and caps[d.copy_id] + LOT <= d.shares \
                and _fits(d, LOT, used, depth):
            caps[d.copy_id] += LOT
            for lim in depth:
                if lim >= d.limit:
                    used[lim] += LOT
    return caps, exact


def allocate(demands: Sequence[Demand], asks: Sequence[BookLevel], rotation: int) -> Allocation:
    """Share the asks among the copies of one fill (module docstring); pure."""
    with localcontext() as ctx:
        ctx.prec = 60
        order = rotated(demands, rotation)
        depth = {d.limit: depth_within(asks, d.limit) for d in order}
        if not any(depth.values()):  # nothing to take: every copy rests at its own size, in turn
            return Allocation({d.copy_id: d.shares for d in order}, [d.copy_id for d in order],
                              {d.copy_id: d.shares for d in order}, [], resting=True)
        kept = list(order)
        dropped: list[int] = []
        while True:
            ratio = _ratios(kept, {lim: depth[lim] for lim in {d.limit for d in kept}} or {ZERO: ZERO})
            caps, exact = _round(kept, ratio, {lim: depth[lim] for lim in {d.limit for d in kept}})
            short = [d for d in kept if caps[d.copy_id] < d.minimum]
            if not short:
                break
            # the last in the plan's order among those under their minimum go first; as many at
            # once as can certainly not all be kept (the loosest depth / the smallest minimum)
            smallest = min(d.minimum for d in kept)
            room = int(max(depth[d.limit] for d in kept) / smallest) if smallest > 0 else len(kept)
            gone = {d.copy_id for d in short[-max(1, min(len(short), len(kept) - room)):]}
            dropped.extend(d.copy_id for d in short if d.copy_id in gone)
            kept = [d for d in kept if d.copy_id not in gone]
        out = {d.copy_id: ZERO for d in order}
        out.update(caps)
        exact_all = {d.copy_id: ZERO for d in order}
        exact_all.update(exact)
        return Allocation(out, [d.copy_id for d in order], exact_all, dropped)


def minimum_shares(min_size: Decimal, price: Decimal) -> Decimal:
    """The smallest BUY the venue takes at `price`: the min size and $1, in lots (rounded up)."""
    with localcontext() as ctx:
        ctx.prec = 60
        dollar = (MIN_NOTIONAL_USD / price).quantize(LOT, rounding=ROUND_CEILING) if price > 0 else min_size
    return max(min_size, dollar)


def proportional_demand(fill_shares: Decimal, copy_pct: Decimal, max_usd: Decimal, limit: Decimal) -> Decimal:
    """A copy's demand: copy % of the leader's shares, within max USD per trade at its limit."""
    with localcontext() as ctx:
        ctx.prec = 60
        return min(floor_lot(fill_shares * copy_pct / Decimal(100)), shares_affordable(max_usd, limit))


# --- the plan in the database (inside the signing transaction) ----------------------------------

@dataclass(frozen=True)
class Cap:
    """What a copy may buy under its fill's plan, and where it stands in it."""

    shares: Decimal
    position: int  # 0-based place in the plan's order (the posting order); late copies last
    of: int  # copies in the plan
    depth: Decimal
    planned_late: bool = False  # the plan did not know this copy: it gets what is left


def fill_rank(s: Session, fill: TraderFill) -> int:
    """How many of its trader's fills came before this one (the plan's rotation)."""
    return int(s.scalar(select(func.count()).select_from(TraderFill).where(
        TraderFill.trader_id == fill.trader_id, TraderFill.id < fill.id)) or 0)


class Member(NamedTuple):
    """What a plan needs of one copy of the fill and its follow (read as columns, not objects)."""

    copy_id: int
    trader_price: Decimal
    follow_id: int
    copy_pct: Decimal
    max_usd_per_trade: Decimal
    max_slippage: Decimal | None  # the follow's own limit (None: the deployment's default)


def plan_members(s: Session, fill_id: int, paper: bool, *, pinned_only: bool = False) -> list[Member]:
    """The fill's BUY copies this mode may take that are not decided yet (queued or claimed);
    with `pinned_only` (a live executor's paper lane) only those of follows pinned to paper."""
    mode = Follow.mode == mode_name(paper) if pinned_only else for_mode(paper)
    return [Member(*row) for row in s.execute(
        select(CopyOrder.id, CopyOrder.trader_price, Follow.id, Follow.copy_pct, Follow.max_usd_per_trade,
               Follow.max_slippage).join(Follow, Follow.id == CopyOrder.follow_id)
        .where(CopyOrder.trader_fill_id == fill_id, CopyOrder.side == "BUY", mode,
               CopyOrder.status.in_((CopyStatus.QUEUED, CopyStatus.CLAIMED)))
        .order_by(CopyOrder.id))]


def _insert_ignore(s: Session, values: dict[str, object]) -> None:
    maker = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    s.execute(maker(CrowdPlan).values(**values).on_conflict_do_nothing(
        index_elements=["trader_fill_id", "paper"]))


def load_or_write_plan(s: Session, fill: TraderFill, paper: bool, asks: Sequence[BookLevel],
                       demand_of: dict[int, Demand] | Iterable[Demand], now: object) -> CrowdPlan:
    """The fill's plan, row-locked: written from `demand_of` unless another batch wrote it first."""
    demands = list(demand_of.values()) if isinstance(demand_of, dict) else list(demand_of)
    rank = fill_rank(s, fill)
    plan = allocate(demands, asks, rank)
    loosest = max((d.limit for d in demands), default=ZERO)
    _insert_ignore(s, {
        "trader_fill_id": fill.id, "paper": paper, "token_id": fill.token_id,
        "depth": depth_within(asks, loosest), "planned": sum(plan.caps.values(), ZERO),
        "rotation": rank, "order": plan.order, "caps": {str(k): str(v) for k, v in plan.caps.items()},
        "resting": plan.resting, "created_at": now})
    row = existing_plan(s, fill.id, paper)
    assert row is not None
    return row


def existing_plan(s: Session, fill_id: int, paper: bool) -> CrowdPlan | None:
    """The fill's plan for this mode, row-locked (None when none was written)."""
    return s.scalar(select(CrowdPlan).where(CrowdPlan.trader_fill_id == fill_id, CrowdPlan.paper == paper)
                    .with_for_update().execution_options(populate_existing=True))


def plan_places(plan: CrowdPlan) -> dict[int, int]:
    """Each planned copy's place in the plan's order (0 first)."""
    return {cid: i for i, cid in enumerate(plan.order)}


def cap_of(plan: CrowdPlan, copy_id: int, places: dict[int, int]) -> Cap | None:
    """A copy's cap under the plan (`places`: `plan_places(plan)`, computed once per plan); a
    copy the plan did not know gets what is left unplanned (under a resting plan, nothing is
    capped: None)."""
    if plan.resting:
        return None
    count = len(plan.order)
    if str(copy_id) in plan.caps:
        return Cap(Decimal(plan.caps[str(copy_id)]), places[copy_id], count, plan.depth)
    return Cap(max(plan.depth - plan.planned, ZERO), count, count, plan.depth, planned_late=True)


def shrink_note(cap: Cap, wanted: Decimal) -> str:
    """Why a copy was shrunk (stored on it as `crowd_note`)."""
    where = "after the plan" if cap.planned_late else f"position {cap.position + 1} of {cap.of}"
    return (f"crowding: {cap.shares} of {wanted} shares; {cap.depth} shares offered within the "
            f"slippage limit, shared pro rata by the copies of this fill ({where})")


def skip_detail(cap: Cap, wanted: Decimal, minimum: Decimal) -> str:
    """Why a copy got nothing (its skip detail)."""
    where = "after the plan" if cap.planned_late else f"position {cap.position + 1} of {cap.of}"
    return (f"the book offers {cap.depth} shares within the slippage limit to the copies of this fill; "
            f"this copy's share is {cap.shares} of {wanted} (under its minimum {minimum}; {where})")


@dataclass
class CrowdBook:
    """The plans a signing transaction uses: each planned copy's cap, each fill's plan row."""

    caps: dict[int, Cap] = field(default_factory=dict)
    plans: dict[int, CrowdPlan] = field(default_factory=dict)  # fill id → its plan
    fill_of: dict[int, int] = field(default_factory=dict)  # copy id → fill id

    order: dict[int, int] = field(default_factory=dict)  # copy id → place in its plan's order

    def position(self, copy_id: int) -> int:
        """Where a copy goes in the posting order (copies outside any plan after the planned)."""
        return self.order.get(copy_id, 1 << 30)

    def took(self, copy_id: int, shares: Decimal) -> None:
        """Count what a copy the plan did not know took from what was left."""
        cap = self.caps.get(copy_id)
        if cap is not None and cap.planned_late:
            plan = self.plans[self.fill_of[copy_id]]
            plan.planned = plan.planned + shares
