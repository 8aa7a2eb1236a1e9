"""Paper-trading fill simulation against a real order-book snapshot (EXECUTION_MODE=paper).

Pure functions of values. A new order is a taker: it walks the opposite side best-first
(`OrderBook` is normalised best-first) — a BUY takes asks priced ≤ its limit, a SELL takes bids
priced ≥ its limit — and each fill is at the resting level's price, as on the CLOB.
Time in force: FOK fills completely or not at all; FAK fills what crosses and cancels the rest;
GTC/GTD fill what crosses and rest the remainder.

A resting paper order is a maker that the real book does not know about. `fill_resting` fills it
when a later snapshot shows the opposite side at or through its limit (liquidity that would have
matched it), at the order's own limit price (a maker is paid its price), up to the size shown.

Invariants: filled + resting ≤ requested; filled never exceeds the liquidity that crosses the
limit; every fill price satisfies the limit; FOK/FAK never rest anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from wire.types import BookLevel, OrderBook, OrderType, Side

_ZERO = Decimal(0)


@dataclass(frozen=True)
class PaperFill:
    """The outcome of a simulated order: what filled, at what prices, and what rests."""

    filled_shares: Decimal
    avg_price: Decimal | None  # None when nothing filled
    fills: tuple[tuple[Decimal, Decimal], ...]  # (price, size) per level taken, best first
    resting_shares: Decimal

    @property
    def notional(self) -> Decimal:
        """Exact USD value of the fills (Σ price × size)."""
        return sum((p * s for p, s in self.fills), _ZERO)


def crosses(side: Side, level_price: Decimal, limit_price: Decimal) -> bool:
    """True if an opposite-side level at `level_price` is marketable for this side and limit."""
    return level_price <= limit_price if side is Side.BUY else level_price >= limit_price


def _opposite(book: OrderBook, side: Side) -> tuple[BookLevel, ...]:
    return book.asks if side is Side.BUY else book.bids


def crossing_liquidity(book: OrderBook, side: Side, limit_price: Decimal) -> Decimal:
    """Total opposite-side size that an order at `limit_price` could take."""
    total = _ZERO
    for level in _opposite(book, side):
        if not crosses(side, level.price, limit_price):
            break
        total += level.size
    return total


def _walk(book: OrderBook, side: Side, limit_price: Decimal,
          shares: Decimal) -> list[tuple[Decimal, Decimal]]:
    fills: list[tuple[Decimal, Decimal]] = []
    remaining = shares
    for level in _opposite(book, side):
        if remaining <= _ZERO or not crosses(side, level.price, limit_price):
            break
        take = min(level.size, remaining)
        if take > _ZERO:
            fills.append((level.price, take))
            remaining -= take
    return fills


def _result(fills: list[tuple[Decimal, Decimal]], resting: Decimal) -> PaperFill:
    filled = sum((s for _, s in fills), _ZERO)
    avg = sum((p * s for p, s in fills), _ZERO) / filled if filled > _ZERO else None
    return PaperFill(filled_shares=filled, avg_price=avg, fills=tuple(fills),
                     resting_shares=resting)


def simulate_fill(book: OrderBook, side: Side, limit_price: Decimal, shares: Decimal,
                  order_type: OrderType) -> PaperFill:
    """Simulate placing an order now: walk the book best-first and apply the time in force."""
    if shares <= _ZERO:
        raise ValueError(f"shares must be > 0, got {shares}")
    if order_type is OrderType.FOK and crossing_liquidity(book, side, limit_price) < shares:
        return _result([], _ZERO)
    fills = _walk(book, side, limit_price, shares)
    filled = sum((s for _, s in fills), _ZERO)
    rests = order_type in (OrderType.GTC, OrderType.GTD)
    return _result(fills, shares - filled if rests else _ZERO)


def fill_resting(book: OrderBook, side: Side, limit_price: Decimal,
                 remaining: Decimal) -> PaperFill:
    """Fill a resting paper order from a later snapshot that trades at or through its limit."""
    if remaining <= _ZERO:
        raise ValueError(f"remaining must be > 0, got {remaining}")
    available = crossing_liquidity(book, side, limit_price)
    filled = min(available, remaining)
    fills = [(limit_price, filled)] if filled > _ZERO else []
    return _result(fills, remaining - filled)
