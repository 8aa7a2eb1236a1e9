"""Money units for the simulator: 6-decimal base units (pUSD and outcome shares) and wire text.

Invariant: every amount the simulator stores is an `int` of base units (1e-6) or an exact
`Decimal`; floats appear only at the very edge, when a Data API row is JSON-encoded as a number.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation

SCALE = 10**6
UNIT = Decimal(1).scaleb(-6)  # one base unit
MAX_UINT256 = 2**256 - 1


def dec(value: object) -> Decimal:
    """Parse a wire number or string into a `Decimal` exactly (floats go through `str`)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    try:
        out = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    if not out.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return out


def to_base(amount: Decimal) -> int:
    """Human units → base units, rounding half-even at the sixth decimal (the SDK rule)."""
    return int((amount * SCALE).to_integral_value(rounding=ROUND_HALF_EVEN))


def to_base_floor(amount: Decimal) -> int:
    """Human units → base units, rounding toward −∞."""
    return int((amount * SCALE).to_integral_value(rounding=ROUND_FLOOR))


def from_base(units: int) -> Decimal:
    """Base units → human units, exact."""
    return Decimal(units).scaleb(-6)


def fmt(amount: Decimal | int) -> str:
    """Plain decimal text without exponent or trailing zeros: 9.990000 → "9.99", 5.0 → "5"."""
    d = Decimal(amount)
    if d == 0:
        return "0"
    text = format(d.normalize(), "f")
    return text


def fmt_base(units: int) -> str:
    """Base units as human decimal text ("15609375" → "15.609375")."""
    return fmt(from_base(units))


def decimals(amount: Decimal) -> int:
    """Number of significant decimal places of `amount` (0 for integers)."""
    exp = amount.normalize().as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


def json_number(amount: Decimal) -> int | float:
    """A `Decimal` as the JSON number the Data API prints (int when integral); output only."""
    if amount == amount.to_integral_value():
        return int(amount)
    return float(amount)


def money2(amount: Decimal) -> str:
    """Dollars with at least two decimals, as in "$0.84" error texts."""
    d = amount.normalize()
    if decimals(d) < 2:
        d = d.quantize(Decimal("0.01"))
    return format(d, "f")
