"""Contract of fees.py: Polymarket V2 taker fee = shares × rate × (p(1−p))^e, floored to 5 dp."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire.fees import fee_per_share_bound, taker_fee


@pytest.mark.parametrize(("shares", "price", "rate", "exponent", "fee"), [
    ("100", "0.41", "0.05", "1", "1.2095"),      # sports market of the Protocol V2 fixture
    ("12.34", "0.57", "0.07", "1", "0.21171"),   # 0.21171558 floored to 5 dp
    ("3", "0.333", "0.07", "1", "0.04664"),      # 0.04664331 floored
    ("100", "0.5", "0.25", "2", "1.5625"),       # exponent 2: 100 × 0.25 × 0.0625
    ("10", "0.5", "0.1", "0.5", "0.5"),          # fractional exponent: (0.25)^0.5 = 0.5
    ("1000", "0.5", "0", "1", "0"),              # fee-free market
    ("0.01", "0.01", "0.05", "1", "0"),          # 0.00000495 floors to 0
    ("50", "0.3", "0.05", "0", "2.5"),           # exponent 0: flat rate
])
def test_taker_fee_examples(shares: str, price: str, rate: str, exponent: str, fee: str) -> None:
    """Known fee values, floored (never rounded up) to 5 decimals."""
    assert taker_fee(D(shares), D(price), D(rate), D(exponent)) == D(fee)


def test_fee_rejects_bad_inputs() -> None:
    """Prices outside [0, 1] and negative rates, exponents or shares are errors."""
    for args in [("1", "1.1", "0.05"), ("1", "0.5", "-0.01"), ("-1", "0.5", "0.05")]:
        with pytest.raises(ValueError):
            taker_fee(*(D(a) for a in args))
    with pytest.raises(ValueError):
        taker_fee(D(1), D("0.5"), D("0.05"), D(-1))


@settings(max_examples=300, deadline=None)
@given(shares=st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2),
       price=st.decimals(min_value=D("0.0001"), max_value=D("0.9999"), places=4),
       rate=st.decimals(min_value=D("0"), max_value=D("0.25"), places=3),
       exponent=st.sampled_from([D("1"), D("2"), D("0.5"), D("1.5")]))
def test_fee_bounded_by_per_share_bound(shares: D, price: D, rate: D, exponent: D) -> None:
    """The charged fee never exceeds shares × the per-share bound and is 5-dp, non-negative."""
    fee = taker_fee(shares, price, rate, exponent)
    assert D(0) <= fee <= shares * fee_per_share_bound(price, rate, exponent)
    assert fee == fee.quantize(D("0.00001"))
