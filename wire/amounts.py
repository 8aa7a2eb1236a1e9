"""Order amounts in 6-decimal base units from Decimal prices and sizes (docs/POLYMARKET.md §5.3). Pure, no I/O.

Invariants (each checked by tests/wire/test_order_math.py):
- the returned price is on the tick grid and inside [tick, 1 − tick];
- shares have at most 2 decimals, are > 0 and never exceed the requested size;
- usd has at most the tick's `amount` decimals, so maker/taker base units are exact integers;
- limit orders: usd == shares × price exactly, so the implied price of a BUY (maker/taker) and
  of a SELL (taker/maker) equals the limit price;
- market BUY: usd = dollars floored to cents; shares = usd / price floored to `amount` decimals,
  so shares × price ≤ usd (never asks for more shares than the money buys at the limit price).

Money never touches float: a float argument is refused.

Relation to the SDKs: both SDKs apply "round up at amount+4 decimals, then floor to amount" to
the computed leg. For products of a 2-decimal size and an on-grid price that leg is always exact
(price decimals + 2 ≤ amount decimals for every tick), so the rule is a no-op and we match the
SDKs exactly. For the market-BUY quotient usd / price we floor (docs/POLYMARKET.md §5.3); the SDK's
round-up step can round a quotient ending in …9999x up by one unit of the last decimal, which
would ask for slightly more shares than usd buys at the limit. We deliberately do not copy that.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import NamedTuple

from infra.errors import OrderError
from wire.ticks import floor_to_tick
from wire.types import Side

SIZE_DECIMALS = 2
USD_DECIMALS = 2  # market BUY dollars are floored to cents
BASE_UNIT_DECIMALS = 6
_ONE = Decimal(1)
BASE_UNITS = Decimal(10) ** BASE_UNIT_DECIMALS  # pUSD and shares: 6-decimal integers on the wire


class RoundConfig(NamedTuple):
    """Decimal places per tick for the price, the share size and the computed amount."""

    price: int
    size: int
    amount: int


ROUNDING: dict[Decimal, RoundConfig] = {
    Decimal("0.1"): RoundConfig(price=1, size=2, amount=3),
    Decimal("0.01"): RoundConfig(price=2, size=2, amount=4),
    Decimal("0.005"): RoundConfig(price=3, size=2, amount=5),
    Decimal("0.0025"): RoundConfig(price=4, size=2, amount=6),
    Decimal("0.001"): RoundConfig(price=3, size=2, amount=5),
    Decimal("0.0001"): RoundConfig(price=4, size=2, amount=6),
}


class OrderMathError(OrderError):
    """An order that cannot be expressed in valid amounts; the message names the problem."""


@dataclass(frozen=True)
class OrderAmounts:
    """Signed-order amounts (base units) and the Decimal values they encode."""

    maker_amount: int
    taker_amount: int
    price: Decimal
    shares: Decimal
    usd: Decimal


def _dec(value: Decimal | int, name: str) -> Decimal:
    """Validate a Decimal (or int) argument; floats and non-finite values are refused."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise OrderMathError(f"{name} must be a Decimal, got {type(value).__name__}")
    d = Decimal(value)
    if not d.is_finite():
        raise OrderMathError(f"{name} must be finite, got {d}")
    return d


def _round_config(tick: Decimal | int) -> RoundConfig:
    t = _dec(tick, "tick")
    cfg = ROUNDING.get(t)
    if cfg is None:
        known = ", ".join(str(k) for k in ROUNDING)
        raise OrderMathError(f"unknown tick size {t} (known: {known})")
    return cfg


def decimal_places(x: Decimal) -> int:
    """Number of significant decimal places of `x` (trailing zeros ignored)."""
    exp = x.normalize().as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


def round_down(x: Decimal, places: int) -> Decimal:
    """Floor `x` to `places` decimals."""
    return x.quantize(Decimal(1).scaleb(-places), rounding=ROUND_FLOOR)


def round_up(x: Decimal, places: int) -> Decimal:
    """Ceil `x` to `places` decimals."""
    return x.quantize(Decimal(1).scaleb(-places), rounding=ROUND_CEILING)


def round_amount(x: Decimal, amount_decimals: int) -> Decimal:
    """The SDK rule for a computed leg: round up at amount+4 decimals, then floor to amount."""
    if decimal_places(x) <= amount_decimals:
        return x
    x = round_up(x, amount_decimals + 4)
    if decimal_places(x) > amount_decimals:
        x = round_down(x, amount_decimals)
    return x


def to_base_units(x: Decimal) -> int:
    """6-decimal base units: x × 10^6 rounded half-even to an integer."""
    return int((_dec(x, "amount") * BASE_UNITS).to_integral_value(rounding=ROUND_HALF_EVEN))


def from_base_units(n: int | Decimal) -> Decimal:
    """Human units (pUSD or shares) of a 6-decimal base-unit amount, exactly."""
    return Decimal(n) / BASE_UNITS


def _shares(size: Decimal | int, name: str) -> Decimal:
    s = _dec(size, name)
    if s <= 0:
        raise OrderMathError(f"{name} must be positive, got {s}")
    floored = round_down(s, SIZE_DECIMALS)
    if floored <= 0:
        raise OrderMathError(f"{name} {s} is below 0.01 shares and floors to 0")
    return floored


def _limit_price(price: Decimal | int, tick: Decimal, cfg: RoundConfig) -> Decimal:
    p = _dec(price, "price")
    t = _dec(tick, "tick")
    if not (t <= p <= _ONE - t):
        raise OrderMathError(f"price {p} is outside [{t}, {_ONE - t}] for tick {t}")
    if decimal_places(p) > cfg.price or p % t != 0:
        raise OrderMathError(f"price {p} is not on the tick grid {t}")
    return p.quantize(t)


def _market_price(price: Decimal | int, tick: Decimal) -> Decimal:
    p = _dec(price, "price")
    t = _dec(tick, "tick")
    if p <= 0:
        raise OrderMathError(f"price must be positive, got {p}")
    floored = floor_to_tick(p, t)
    if not (t <= floored <= _ONE - t):
        raise OrderMathError(f"price {p} floors to {floored}, outside [{t}, {_ONE - t}]")
    return floored.quantize(t)


def limit_order_amounts(
    side: Side, price: Decimal, size: Decimal, tick: Decimal
) -> OrderAmounts:
    """Limit order: on-grid price, shares floored to 2 dp, usd = shares × price (§5.3)."""
    cfg = _round_config(tick)
    p = _limit_price(price, tick, cfg)
    shares = _shares(size, "size")
    usd = round_amount(shares * p, cfg.amount)
    if usd <= 0:
        raise OrderMathError(f"order value {shares} × {p} rounds to 0")
    if side is Side.BUY:
        return OrderAmounts(to_base_units(usd), to_base_units(shares), p, shares, usd)
    if side is Side.SELL:
        return OrderAmounts(to_base_units(shares), to_base_units(usd), p, shares, usd)
    raise OrderMathError(f"side must be Side.BUY or Side.SELL, got {side!r}")


def market_buy_amounts(usd: Decimal, price: Decimal, tick: Decimal) -> OrderAmounts:
    """Market BUY: dollars floored to cents, price floored to the grid, shares floored (§5.3)."""
    cfg = _round_config(tick)
    p = _market_price(price, tick)
    dollars = _dec(usd, "usd")
    if dollars <= 0:
        raise OrderMathError(f"usd must be positive, got {dollars}")
    spend = round_down(dollars, USD_DECIMALS)
    if spend <= 0:
        raise OrderMathError(f"usd {dollars} is below one cent and floors to 0")
    # Exact floor of spend / p at `amount` decimals via integer arithmetic (no context rounding).
    sn, sd = spend.as_integer_ratio()
    pn, pd = p.as_integer_ratio()
    scale = 10**cfg.amount
    shares = Decimal((sn * pd * scale) // (sd * pn)).scaleb(-cfg.amount)
    if shares <= 0:
        raise OrderMathError(f"usd {spend} buys 0 shares at price {p}")
    return OrderAmounts(to_base_units(spend), to_base_units(shares), p, shares, spend)


def market_sell_amounts(shares: Decimal, price: Decimal, tick: Decimal) -> OrderAmounts:
    """Market SELL: shares floored to 2 dp, price floored to the grid, usd = shares × price."""
    cfg = _round_config(tick)
    p = _market_price(price, tick)
    qty = _shares(shares, "shares")
    usd = round_amount(qty * p, cfg.amount)
    if usd <= 0:
        raise OrderMathError(f"order value {qty} × {p} rounds to 0")
    return OrderAmounts(to_base_units(qty), to_base_units(usd), p, qty, usd)
