"""Reservations: what a follower's open copies hold back, so that sizing never over-spends or
over-sells.

Invariant: a batch reads the reservations of its followers once, under their row locks (taken
in follower id order by the signing transaction), and then counts every copy it sizes with
`Reservations.reserve`, so the next copy of the same follower sees it exactly as if it had been
committed before. Open = may still trade at the venue (`copying.states.OPEN_STATES`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Numeric, and_, bindparam, func, select, type_coerce
from sqlalchemy.orm import Session

from copying.claims import Job
from copying.states import OPEN_STATES
from infra.db import DecimalType
from models import CopyOrder, FollowerFill, FollowerPosition

ZERO = Decimal(0)


@dataclass(frozen=True)
class OpenCopy:
    """A follower's copy that may still trade: its unfilled shares at its limit price."""

    id: int
    follow_id: int
    side: str
    token_id: str
    condition_id: str
    price: Decimal
    remaining: Decimal
    signed_at: datetime | None


def open_copies(session: Session, paper: bool, *, follower_ids: Iterable[int] = (),
                follow_ids: Iterable[int] = ()) -> list[tuple[int, OpenCopy]]:
    """(follower id, open copy) for every open copy of these followers or follows (one query)."""
    followers, follows = sorted(set(follower_ids)), sorted(set(follow_ids))
    if not followers and not follows:
        return []
    who = CopyOrder.follower_id.in_(followers) if followers else CopyOrder.follow_id.in_(follows)
    rows = session.execute(select(
        CopyOrder.id, CopyOrder.follower_id, CopyOrder.follow_id, CopyOrder.side, CopyOrder.token_id,
        CopyOrder.condition_id, CopyOrder.intended_price, CopyOrder.venue_size, CopyOrder.signed_at,
        FollowerFill.size,
    ).outerjoin(FollowerFill, and_(FollowerFill.copy_order_id == CopyOrder.id,
                                   FollowerFill.order_hash == CopyOrder.order_hash))
        .where(who, CopyOrder.paper == paper, CopyOrder.status.in_(OPEN_STATES))).all()
    filled: dict[int, Decimal] = defaultdict(Decimal)
    copies: dict[int, tuple[Any, ...]] = {}
    for *row, fill_size in rows:  # one row per fill of the current venue order (or one without)
        copies[row[0]] = tuple(row)
        if fill_size is not None:
            filled[row[0]] += fill_size
    return [(fid, OpenCopy(cid, follow_id, side, token, cond, price or ZERO,
                           max((venue or ZERO) - filled[cid], ZERO), signed))
            for cid, fid, follow_id, side, token, cond, price, venue, signed in copies.values()]


def reserved_buy_by_follower(session: Session, follower_ids: Iterable[int], paper: bool) -> dict[int, Decimal]:
    """pUSD held back by each follower's open BUY copies: Σ unfilled shares × limit price.

    PostgreSQL sums in exact NUMERIC (one aggregate row per follower, however many copies are
    open); SQLite stores decimals as text, so its copies are read and summed here in Decimal.
    """
    ids = sorted(set(follower_ids))
    out = {fid: ZERO for fid in ids}
    if not ids:
        return out
    if session.get_bind().dialect.name != "postgresql":
        for fid, c in open_copies(session, paper, follower_ids=ids):
            if c.side == "BUY":
                out[fid] += c.remaining * c.price
        return out
    rows = session.execute(_reserved_statement(), {"follower_ids": ids, "paper": paper})
    for fid, total in rows:
        out[fid] = total or ZERO
    return out


def _usd_by_follower(s: Session, ids: list[int], owner: Any, size: Any, price: Any, *where: Any) -> dict[int, Decimal]:
    """Σ size × price per follower (`owner`) over the rows of `ids` matching `where` (NULL counts
    as 0): one exact NUMERIC aggregate row per follower on PostgreSQL, the rows summed here in
    Decimal on SQLite (its decimals are text)."""
    out = {fid: ZERO for fid in ids}
    if s.get_bind().dialect.name == "postgresql":
        usd = type_coerce(func.sum(type_coerce(size, Numeric()) * type_coerce(price, Numeric())), DecimalType())
        for fid, total in s.execute(select(owner, usd).where(owner.in_(ids), *where).group_by(owner)):
            out[fid] = total or ZERO
        return out
    for fid, amount, at in s.execute(select(owner, size, price).where(owner.in_(ids), *where)):
        out[fid] += (amount or ZERO) * (at or ZERO)
    return out


@lru_cache(maxsize=1)
def _reserved_statement() -> Any:
    """The PostgreSQL aggregate behind `reserved_buy_by_follower` (built once: ~0.3 ms each time)."""
    def num(col: Any) -> Any:  # the NUMERIC column as SQL arithmetic sees it
        return func.coalesce(type_coerce(col, Numeric()), 0)

    filled = (select(func.coalesce(func.sum(type_coerce(FollowerFill.size, Numeric())), 0))
              .where(FollowerFill.copy_order_id == CopyOrder.id,
                     FollowerFill.order_hash == CopyOrder.order_hash)
              .correlate(CopyOrder).scalar_subquery())
    remaining = func.greatest(num(CopyOrder.venue_size) - filled, 0)
    usd = type_coerce(func.sum(remaining * num(CopyOrder.intended_price)), DecimalType())
    return (select(CopyOrder.follower_id, usd)
            .where(CopyOrder.follower_id.in_(bindparam("follower_ids", expanding=True)),
                   CopyOrder.paper == bindparam("paper"), CopyOrder.side == "BUY",
                   CopyOrder.status.in_(OPEN_STATES))
            .group_by(CopyOrder.follower_id))


@dataclass
class Reservations:
    """What sizing must subtract, for the followers and follows of one batch.

    Read once under the followers' row locks (one query in the common case: no daily or exposure
    cap and no SELL); every copy signed in the batch is then added with `reserve`, so the next
    copy of the same follower sees it exactly as if it had been committed before.
    """

    day: datetime
    reserved: dict[int, Decimal]  # follower id → USD held back by open BUY copies
    open_by_follow: dict[int, list[OpenCopy]]  # only for follows whose sizing needs the detail
    filled_today: dict[int, Decimal]  # follow id → USD filled by its BUY copies signed today
    positions: dict[tuple[int, str], tuple[str, Decimal, Decimal]]  # (follow, token) → (cond, size, avg)
    targets: dict[tuple[int, str], Decimal] = field(default_factory=dict)  # (follow, token) → target
    # per-follower limits (only followers with a limit): today's BUYs filled, open copies, cost held
    follower_filled_today: dict[int, Decimal] = field(default_factory=dict)
    open_by_follower: dict[int, list[OpenCopy]] = field(default_factory=dict)
    follower_cost: dict[int, Decimal] = field(default_factory=dict)
    follower_cost_by_condition: dict[int, dict[str, Decimal]] = field(default_factory=dict)

    @classmethod
    def load(cls, s: Session, jobs: Sequence[Job], paper: bool, now: datetime,
             limited_followers: Iterable[int] = (), event_followers: Iterable[int] = ()) -> Reservations:
        """Read every reservation the jobs' sizing needs (caller holds the follower locks).

        Per-follow detail (open copies, today's fills, positions) is read only for follows with
        a daily cap, a market exposure cap or a SELL to size: sizing ignores it otherwise. Per
        follower: today's BUYs, open copies and cost held for `limited_followers` (their own caps),
        and the cost per market too for `event_followers` (event-level limits).
        """
        day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        reserved = reserved_buy_by_follower(s, (j.follower.id for j in jobs), paper)
        capped = sorted({j.follow.id for j in jobs if j.follow.daily_usd_cap is not None})
        positioned = sorted({j.follow.id for j in jobs
                             if j.follow.market_exposure_cap is not None or j.co.side == "SELL"})
        detailed = sorted(set(capped) | set(positioned))
        open_by: dict[int, list[OpenCopy]] = {fid: [] for fid in detailed}
        for _, c in open_copies(s, paper, follow_ids=detailed):
            open_by[c.follow_id].append(c)
        filled: dict[int, Decimal] = defaultdict(Decimal)
        positions: dict[tuple[int, str], tuple[str, Decimal, Decimal]] = {}
        targets: dict[tuple[int, str], Decimal] = {}
        if capped:
            for follow_id, size, avg in s.execute(select(
                    CopyOrder.follow_id, CopyOrder.filled_size, CopyOrder.avg_fill_price).where(
                    CopyOrder.follow_id.in_(capped), CopyOrder.side == "BUY",
                    CopyOrder.id.not_in([j.id for j in jobs]), CopyOrder.signed_at.is_not(None),
                    CopyOrder.signed_at >= day)):
                filled[follow_id] += (size or ZERO) * (avg or ZERO)
        if positioned:
            for follow_id, token, cond, size, avg, target in s.execute(select(
                    FollowerPosition.follow_id, FollowerPosition.token_id, FollowerPosition.condition_id,
                    FollowerPosition.size, FollowerPosition.avg_cost, FollowerPosition.target_size).where(
                    FollowerPosition.follow_id.in_(positioned), FollowerPosition.paper == paper)):
                positions[(follow_id, token)] = (cond, size, avg)
                targets[(follow_id, token)] = target
        book = cls(day, reserved, open_by, filled, positions, targets)
        by_condition = sorted(set(event_followers))
        book._load_follower_limits(s, sorted(set(limited_followers) | set(by_condition)), by_condition,
                                   [j.id for j in jobs], paper)
        return book

    def _load_follower_limits(self, s: Session, ids: list[int], by_condition: list[int], batch: list[int],
                              paper: bool) -> None:
        """Today's BUYs, open copies and cost held of the followers that have their own limits;
        the cost per market only for `by_condition` (followers with event-level limits)."""
        if not ids:
            return
        self.open_by_follower = {fid: [] for fid in ids}
        for fid, c in open_copies(s, paper, follower_ids=ids):
            self.open_by_follower[fid].append(c)
        self.follower_filled_today = _usd_by_follower(
            s, ids, CopyOrder.follower_id, CopyOrder.filled_size, CopyOrder.avg_fill_price,
            CopyOrder.side == "BUY", CopyOrder.id.not_in(batch), CopyOrder.signed_at.is_not(None),
            CopyOrder.signed_at >= self.day)
        self.follower_cost = _usd_by_follower(
            s, ids, FollowerPosition.follower_id, FollowerPosition.size, FollowerPosition.avg_cost,
            FollowerPosition.paper == paper)
        self.follower_cost_by_condition = {fid: defaultdict(Decimal) for fid in by_condition}
        if by_condition:
            for fid, cond, size, avg in s.execute(select(
                    FollowerPosition.follower_id, FollowerPosition.condition_id, FollowerPosition.size,
                    FollowerPosition.avg_cost).where(
                    FollowerPosition.follower_id.in_(by_condition), FollowerPosition.paper == paper)):
                self.follower_cost_by_condition[fid][cond] += size * avg

    def follower_usd_by_condition(self, follower_id: int) -> dict[str, Decimal]:
        """The follower's USD at risk per market (condition id): the cost of its positions plus
        its open BUY remainders, all follows (only for followers loaded with `event_followers`)."""
        if follower_id not in self.follower_cost_by_condition:
            raise KeyError(f"follower {follower_id}: loaded without its cost per market")
        out: dict[str, Decimal] = defaultdict(Decimal)
        for cond, usd in self.follower_cost_by_condition[follower_id].items():
            out[cond] += usd
        for c in self.open_by_follower.get(follower_id, ()):
            if c.side == "BUY":
                out[c.condition_id] += c.remaining * c.price
        return dict(out)

    def follower_spent_today_usd(self, follower_id: int) -> Decimal:
        """USD committed today (UTC) by all the follower's BUY copies: fills plus open remainders."""
        return self.follower_filled_today.get(follower_id, ZERO) + sum(
            (c.remaining * c.price for c in self.open_by_follower.get(follower_id, ())
             if c.side == "BUY" and c.signed_at is not None and c.signed_at >= self.day), ZERO)

    def follower_exposure_usd(self, follower_id: int) -> Decimal:
        """The follower's cost of positions held plus its open BUY remainders, all follows."""
        return self.follower_cost.get(follower_id, ZERO) + self.reserved_buy_usd(follower_id)

    def reserved_buy_usd(self, follower_id: int) -> Decimal:
        """pUSD held back by the follower's open BUY copies (unfilled shares × limit price)."""
        return self.reserved.get(follower_id, ZERO)

    def spent_today_usd(self, follow_id: int) -> Decimal:
        """USD committed today (UTC) by this follow's BUY copies: fills plus open remainders."""
        return self.filled_today.get(follow_id, ZERO) + sum(
            (c.remaining * c.price for c in self.open_by_follow.get(follow_id, ())
             if c.side == "BUY" and c.signed_at is not None and c.signed_at >= self.day), ZERO)

    def exposure_usd(self, follow_id: int, condition_id: str) -> Decimal:
        """This follow's cost basis in one market plus its open BUY remainders there."""
        total = sum((size * avg for (fid, _), (cond, size, avg) in self.positions.items()
                     if fid == follow_id and cond == condition_id), ZERO)
        return total + sum((c.remaining * c.price for c in self.open_by_follow.get(follow_id, ())
                            if c.side == "BUY" and c.condition_id == condition_id), ZERO)

    def held_shares(self, follow_id: int, token_id: str) -> Decimal:
        """Shares held through this follow, minus those already offered by open SELLs."""
        size = self.positions.get((follow_id, token_id), ("", ZERO, ZERO))[1]
        size -= sum((c.remaining for c in self.open_by_follow.get(follow_id, ())
                     if c.side == "SELL" and c.token_id == token_id), ZERO)
        return max(size, ZERO)

    def target(self, follow_id: int, token_id: str) -> Decimal:
        """The follow's target holding of a token (0 without a position)."""
        return self.targets.get((follow_id, token_id), ZERO)

    def set_target(self, follow_id: int, token_id: str, target: Decimal) -> None:
        """Record a target written in this batch (a later copy sees it)."""
        self.targets[(follow_id, token_id)] = target

    def reserve(self, follower_id: int, co: CopyOrder, price: Decimal, venue_size: Decimal,
                now: datetime) -> None:
        """Count a copy sized in this batch as open: `venue_size` shares at limit `price`."""
        copy = OpenCopy(co.id, co.follow_id, co.side, co.token_id, co.condition_id, price, venue_size, now)
        self.open_by_follow.setdefault(co.follow_id, []).append(copy)
        if follower_id in self.open_by_follower:
            self.open_by_follower[follower_id].append(copy)
        if co.side == "BUY":
            self.reserved[follower_id] = self.reserved_buy_usd(follower_id) + venue_size * price


