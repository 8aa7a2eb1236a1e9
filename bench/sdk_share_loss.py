"""How often py-clob-client-v2's float amount path loses 0.01 share against our Decimal math.

Run: .venv/bin/python bench/sdk_share_loss.py [--n 100000] [--seed 1]

Random limit orders (side, every tick size, on-grid price, size) go through the SDK's
`OrderBuilder.get_order_amounts` (floats) and `wire.amounts.limit_order_amounts` (Decimal); a
mismatch is counted when the SDK's share amount is lower. Two size populations: whole cents
(what PMCT sends: shares have at most 2 decimals) and sizes with 6 decimals. Needs the dev
requirements (the SDK is a test oracle, not a runtime dependency).
"""

from __future__ import annotations

import argparse
import random
import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from py_clob_client_v2.order_builder.builder import ROUNDING_CONFIG, OrderBuilder

from wire.amounts import limit_order_amounts
from wire.types import Side

TICKS = ("0.1", "0.01", "0.001", "0.0001")


def loss_rate(rng: random.Random, n: int, decimals: int) -> float:
    """Percentage of `n` random orders whose SDK share amount is below ours."""
    lost = 0
    for _ in range(n):
        size = Decimal(rng.randint(10 ** (decimals - 2), 10_000 * 10**decimals)) / 10**decimals
        tick = rng.choice(TICKS)
        price = Decimal(tick) * rng.randint(1, int((1 - Decimal(tick)) / Decimal(tick)))
        side = rng.choice(list(Side))
        ours = limit_order_amounts(side, price, size, Decimal(tick))
        _, maker, taker = OrderBuilder.get_order_amounts(None, side.value, float(size), float(price),
                                                         ROUNDING_CONFIG[tick])
        sdk_shares = taker if side is Side.BUY else maker
        our_shares = ours.taker_amount if side is Side.BUY else ours.maker_amount
        lost += sdk_shares < our_shares
    return 100 * lost / n


def main() -> None:
    """Print both rates."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    print(f"sizes in whole cents (0.01–10,000 shares): SDK loses 0.01 share in "
          f"{loss_rate(rng, args.n, 2):.2f} % of {args.n:,} orders")
    print(f"sizes with 6 decimals (0.01–10,000 shares): {loss_rate(rng, args.n, 6):.2f} %")


if __name__ == "__main__":
    main()
