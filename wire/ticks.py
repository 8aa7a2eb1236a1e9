"""Tick-grid arithmetic on `Decimal` prices: validation and snapping in a chosen direction."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

TICK_SIZES: tuple[Decimal, ...] = tuple(
    Decimal(t) for t in ("0.1", "0.01", "0.005", "0.0025", "0.001", "0.0001")
)


def is_valid_tick(tick: Decimal) -> bool:
    """True if `tick` is one of Polymarket's tick sizes."""
    return tick in TICK_SIZES


def is_on_tick(price: Decimal, tick: Decimal) -> bool:
    """True if `price` is a whole multiple of `tick`."""
    return (price / tick) == (price / tick).to_integral_value()


def floor_to_tick(price: Decimal, tick: Decimal) -> Decimal:
    """Largest grid price ≤ `price`."""
    return (price / tick).to_integral_value(rounding=ROUND_FLOOR) * tick


def ceil_to_tick(price: Decimal, tick: Decimal) -> Decimal:
    """Smallest grid price ≥ `price`."""
    return (price / tick).to_integral_value(rounding=ROUND_CEILING) * tick


def clamp_to_range(price: Decimal, tick: Decimal) -> Decimal:
    """Clamp a grid price into the tradable range [tick, 1 − tick]."""
    return min(max(price, tick), Decimal(1) - tick)


def in_price_range(price: Decimal, tick: Decimal) -> bool:
    """True if `price` is on the grid and inside [tick, 1 − tick]."""
    return is_on_tick(price, tick) and tick <= price <= Decimal(1) - tick
