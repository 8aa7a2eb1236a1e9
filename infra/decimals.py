"""What a money/price column (`infra.db.DecimalType`) holds, without importing SQLAlchemy.

Invariant: a value for which `decimal_column_problem` answers None is stored and read back
unchanged on both databases (PostgreSQL NUMERIC(38, 18), SQLite canonical text).
"""

from __future__ import annotations

from decimal import Decimal

# What a DecimalType column holds on PostgreSQL: NUMERIC(38, 18), i.e. at most 20 digits before
# the decimal point and 18 after it (more places are rounded away; a larger number is refused).
# SQLite stores the canonical text and keeps everything; input validation (ops.inputs) holds
# every value a person types to the PostgreSQL limits so both databases store the same number.
DECIMAL_PRECISION = 38
DECIMAL_SCALE = 18
DECIMAL_INTEGER_DIGITS = DECIMAL_PRECISION - DECIMAL_SCALE


def canonical_decimal(value: Decimal) -> str:
    """Decimal as plain text without exponent or trailing zeros ('0.58', '10', '-1.5')."""
    if not value.is_finite():
        raise ValueError(f"non-finite decimal {value}")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def decimal_column_problem(value: Decimal) -> str | None:
    """Why a DecimalType column cannot hold `value` exactly on both databases (None: it can).

    The answer completes a sentence about the value: 'is not a finite number', 'is too large
    (...)' or 'has more than 18 decimal places'. Trailing zeros do not count as places.
    """
    if not value.is_finite():
        return "is not a finite number"
    if not value:
        return None
    if value.adjusted() >= DECIMAL_INTEGER_DIGITS:
        return f"is too large (at most {DECIMAL_INTEGER_DIGITS} digits before the decimal point)"
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    if -(exponent + trailing_zeros) > DECIMAL_SCALE:
        return f"has more than {DECIMAL_SCALE} decimal places"
    return None
