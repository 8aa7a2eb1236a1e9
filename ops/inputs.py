"""Parsers for the values a person types (CLI flags today, HTTP bodies later): one per kind.

Invariant: each parser either returns a value that the database and the engine can hold and use
as is, or raises `InputError` with one line naming the field. They run before anything is
written, so bad input never reaches the database, the date arithmetic or the order math.

- numbers (`parse_decimal`): finite, within what a DecimalType column keeps (at most 20 digits
  before the point and 18 after it; a value with more places is refused, not rounded, because
  PostgreSQL would round it and SQLite would not), and within the option's own range;
- days (`parse_day`): YYYY-MM-DD within `DAY_MIN`..`DAY_MAX`, so `day + 1` never overflows;
- text (`parse_text`): stripped, not empty, no longer than its column, no control characters
  or undecodable bytes (which the database drivers refuse to encode);
- files (`check_output_file`): a writable regular file in an existing directory.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from infra.decimals import canonical_decimal, decimal_column_problem
from infra.errors import InputError

DAY_MIN = date(2000, 1, 1)
DAY_MAX = date(2099, 12, 31)
_SHOWN = 40  # characters of a bad value echoed back in a message


def shown(raw: object) -> str:
    """`raw` quoted for a one-line message, cut to a few dozen characters."""
    text = str(raw)
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


@dataclass(frozen=True)
class DecimalRange:
    """Allowed values of one numeric option; None = unbounded on that side."""

    low: Decimal | None = None
    high: Decimal | None = None
    low_included: bool = False
    high_included: bool = False

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, Decimal):
            return False
        if self.low is not None and (value < self.low or (value == self.low and not self.low_included)):
            return False
        return not (self.high is not None
                    and (value > self.high or (value == self.high and not self.high_included)))

    def describe(self) -> str:
        """'in (0, 100]', 'greater than 0', 'in [0, 1)' ..."""
        if self.high is None:
            if self.low is None:
                return "any number"
            return f"{'at least' if self.low_included else 'greater than'} {self.low}"
        if self.low is None:
            return f"{'at most' if self.high_included else 'less than'} {self.high}"
        return (f"in {'[' if self.low_included else '('}{self.low}, "
                f"{self.high}{']' if self.high_included else ')'}")


PERCENT = DecimalRange(Decimal(0), Decimal(100), high_included=True)  # copy %: (0, 100]
POSITIVE = DecimalRange(Decimal(0))  # caps in USD: > 0
SLIPPAGE = DecimalRange(Decimal(0), Decimal(1), low_included=True)  # a fraction: [0, 1)
PRICE = DecimalRange(Decimal(0), Decimal(1))  # an outcome price: (0, 1)


def parse_decimal(raw: str | Decimal | int, what: str, allowed: DecimalRange | None = None) -> Decimal:
    """A finite Decimal a DecimalType column holds exactly, within `allowed`; InputError else.

    The result is canonical (no exponent, no trailing zeros): '1E+1' gives Decimal('10').
    """
    if isinstance(raw, float):
        raise TypeError("money and prices must be Decimal or text, not float")
    try:
        value = raw if isinstance(raw, Decimal) else Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise InputError(f"{what} must be a number, got {shown(raw)}") from None
    if not value.is_finite():
        raise InputError(f"{what} must be a finite number, got {shown(raw)}")
    problem = decimal_column_problem(value)
    if problem is not None:
        raise InputError(f"{what} {problem}, got {shown(raw)}")
    value = Decimal(canonical_decimal(value)) if value else Decimal(0)  # 0E-999999999 too
    if allowed is not None and value not in allowed:
        raise InputError(f"{what} must be {allowed.describe()}, got {shown(raw)}")
    return value


def parse_day(raw: str | date, what: str) -> date:
    """A YYYY-MM-DD day between DAY_MIN and DAY_MAX; InputError naming `what` otherwise."""
    if isinstance(raw, date):
        day = raw
    else:
        try:
            day = date.fromisoformat(str(raw).strip())
        except ValueError:
            raise InputError(f"{what} must be a date like 2024-01-31, got {shown(raw)}") from None
    if not DAY_MIN <= day <= DAY_MAX:
        raise InputError(f"{what} must be a day between {DAY_MIN} and {DAY_MAX}, got {shown(raw)}")
    return day


def parse_text(raw: str, what: str, max_length: int) -> str:
    """Stripped text of 1..max_length printable characters; InputError naming `what` otherwise."""
    text = raw.strip()
    if not text:
        raise InputError(f"{what} must not be empty")
    if len(text) > max_length:
        raise InputError(f"{what} is longer than {max_length} characters")
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cs"):
            raise InputError(f"{what} must not hold control characters or undecodable bytes")
    return text


def check_output_file(path: Path | None, what: str, suffix: str | None = None) -> None:
    """Refuse (before any work) an output path that cannot be written as a regular file."""
    if path is None:
        return
    if suffix is not None and path.suffix.lower() != suffix:
        raise InputError(f"{what} must end with {suffix}, got {shown(path)}")
    if path.is_dir():
        raise InputError(f"{what} {shown(path)} is a directory")
    if path.exists() and not path.is_file():
        raise InputError(f"{what} {shown(path)} is not a regular file")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{what}: directory {shown(parent)} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{what}: directory {shown(parent)} is not writable")
