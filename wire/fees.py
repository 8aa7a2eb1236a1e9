"""Polymarket V2 platform (taker) fee arithmetic, in `Decimal` (docs/POLYMARKET.md §5.10).

fee = shares × rate × (p × (1 − p))^exponent, charged to takers only (when the market's
schedule says `takerOnly`), floored to 5 decimal places as the venue charges it. Makers pay
nothing. The fee is not part of the signed order: it is set by the operator at match time,
so callers read `rate`/`exponent` per market (`MarketInfo.fee_rate` / `fee_exponent`).

Invariant: `taker_fee` never exceeds the exact (unrounded) formula value, and
`fee_per_share_bound` never falls below it, so budgeting with the bound is always safe.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext

FEE_DECIMALS = Decimal("0.00001")  # the venue floors platform fees to 5 decimals
_ZERO = Decimal(0)
_ONE = Decimal(1)


def _validate(price: Decimal, rate: Decimal, exponent: Decimal) -> None:
    if not (_ZERO <= price <= _ONE):
        raise ValueError(f"price {price} outside [0, 1]")
    if rate < _ZERO:
        raise ValueError(f"negative fee rate {rate}")
    if exponent < _ZERO:
        raise ValueError(f"negative fee exponent {exponent}")


def _curve(price: Decimal, exponent: Decimal, rounding: str) -> Decimal:
    """(p × (1 − p))^exponent, exact for whole exponents, else rounded in `rounding`'s direction."""
    base = price * (_ONE - price)  # exact: a product of two finite decimals
    if exponent == _ZERO:
        return _ONE
    if exponent == exponent.to_integral_value():
        return base ** int(exponent)  # exact up to 50 digits (prices have few digits)
    if base == _ZERO:
        return _ZERO
    with localcontext() as ctx:
        ctx.prec = 50
        ctx.rounding = rounding
        return base ** exponent


def taker_fee(shares: Decimal, price: Decimal, rate: Decimal, exponent: Decimal = _ONE) -> Decimal:
    """Platform fee in pUSD a taker pays for `shares` at `price`, floored to 5 decimals."""
    _validate(price, rate, exponent)
    if shares < _ZERO:
        raise ValueError(f"negative shares {shares}")
    with localcontext() as ctx:
        ctx.prec = 60
        raw = shares * rate * _curve(price, exponent, ROUND_FLOOR)
        return raw.quantize(FEE_DECIMALS, rounding=ROUND_FLOOR)


def fee_per_share_bound(price: Decimal, rate: Decimal, exponent: Decimal = _ONE) -> Decimal:
    """An upper bound of the taker fee per share at `price` (never below the exact value)."""
    _validate(price, rate, exponent)
    with localcontext() as ctx:
        ctx.prec = 60
        ctx.rounding = ROUND_CEILING
        return rate * _curve(price, exponent, ROUND_CEILING)
