"""Price-time order book of one outcome token: synthetic liquidity plus resting user orders.

Pure data structure: it plans and applies fills but knows nothing of balances, trades or HTTP.

Invariants:
- each side maps a price to a FIFO queue of `Resting` entries; no queue or level is empty;
- a level's synthetic liquidity sits ahead of user orders placed at that price;
- a plan never fills above a BUY limit / below a SELL limit, never more than the entries hold,
  and in budget mode never spends more base units of pUSD than the budget;
- bids and asks never cross after `apply` (callers match before they rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal


@dataclass
class Resting:
    """Liquidity resting at one price: a user order (`order_id`) or synthetic (`order_id=None`)."""

    seq: int
    price: Decimal
    remaining: int  # shares, base units
    order_id: str | None = None
    identity: int = 0  # which synthetic maker identity shows on trades


@dataclass(frozen=True)
class Fill:
    """One planned execution against one resting entry."""

    entry: Resting
    shares: int  # base units
    cost: int  # pUSD base units = shares × price, rounded half-even
    price: Decimal


def cost_of(shares: int, price: Decimal) -> int:
    """pUSD base units paid for `shares` base units at `price` (half-even)."""
    return int((shares * price).to_integral_value(rounding=ROUND_HALF_EVEN))


class TokenBook:
    """Bids and asks of one token."""

    def __init__(self, token_id: str) -> None:
        self.token_id = token_id
        self.bids: dict[Decimal, list[Resting]] = {}
        self.asks: dict[Decimal, list[Resting]] = {}

    def side(self, side: str) -> dict[Decimal, list[Resting]]:
        """The resting side for "BUY" (bids) or "SELL" (asks)."""
        return self.bids if side == "BUY" else self.asks

    def best_bid(self) -> Decimal | None:
        """Highest bid price."""
        return max(self.bids) if self.bids else None

    def best_ask(self) -> Decimal | None:
        """Lowest ask price."""
        return min(self.asks) if self.asks else None

    def levels(self, side: str) -> list[tuple[Decimal, int]]:
        """Aggregated (price, shares) of one side, best first."""
        book = self.side(side)
        prices = sorted(book, reverse=(side == "BUY"))
        return [(p, sum(e.remaining for e in book[p])) for p in prices]

    def add(self, side: str, entry: Resting) -> None:
        """Queue an entry at the back of its price level."""
        self.side(side).setdefault(entry.price, []).append(entry)

    def remove(self, side: str, order_id: str) -> Resting | None:
        """Take a user order out of the book (cancel); returns the entry removed."""
        book = self.side(side)
        for price, queue in list(book.items()):
            for i, e in enumerate(queue):
                if e.order_id == order_id:
                    del queue[i]
                    if not queue:
                        del book[price]
                    return e
        return None

    def synthetic_levels(self, side: str) -> list[tuple[Decimal, int]]:
        """The synthetic (non-user) liquidity of one side, best first."""
        book = self.side(side)
        out = []
        for p in sorted(book, reverse=(side == "BUY")):
            size = sum(e.remaining for e in book[p] if e.order_id is None)
            if size:
                out.append((p, size))
        return out

    def clear_synthetic(self, side: str) -> None:
        """Remove all synthetic liquidity of one side, keeping user orders."""
        book = self.side(side)
        for price in list(book):
            queue = [e for e in book[price] if e.order_id is not None]
            if queue:
                book[price] = queue
            else:
                del book[price]

    def put_synthetic(
        self, side: str, price: Decimal, shares: int, seq: int, identity: int
    ) -> None:
        """Place synthetic liquidity at the front of a level (ahead of user orders there)."""
        if shares <= 0:
            return
        self.side(side).setdefault(price, []).insert(
            0, Resting(seq=seq, price=price, remaining=shares, order_id=None, identity=identity)
        )

    def plan(
        self,
        taker_side: str,
        limit: Decimal,
        shares: int | None = None,
        budget: int | None = None,
        only_users: bool = False,
    ) -> list[Fill]:
        """Fills a taker would get, best price first, FIFO within a level; mutates nothing.

        Exactly one of `shares` (fill up to that many shares) or `budget` (spend up to that many
        pUSD base units: a market BUY) is given. `only_users` skips synthetic liquidity.
        """
        if (shares is None) == (budget is None):
            raise ValueError("give exactly one of shares or budget")
        maker_book = self.asks if taker_side == "BUY" else self.bids
        prices = sorted(maker_book, reverse=(taker_side == "SELL"))
        fills: list[Fill] = []
        left_shares = shares if shares is not None else 0
        left_budget = budget if budget is not None else 0
        for price in prices:
            if (taker_side == "BUY" and price > limit) or (taker_side == "SELL" and price < limit):
                break
            for entry in maker_book[price]:
                if only_users and entry.order_id is None:
                    continue
                if budget is not None:
                    affordable = int(
                        (Decimal(left_budget) / price).to_integral_value(rounding=ROUND_FLOOR)
                    )
                    take = min(entry.remaining, affordable)
                    cost = cost_of(take, price)
                    while take > 0 and cost > left_budget:
                        take -= 1
                        cost = cost_of(take, price)
                    if take <= 0:
                        return fills
                    left_budget -= cost
                else:
                    take = min(entry.remaining, left_shares)
                    if take <= 0:
                        return fills
                    cost = cost_of(take, price)
                    left_shares -= take
                fills.append(Fill(entry=entry, shares=take, cost=cost, price=price))
        return fills

    def apply(self, taker_side: str, fills: list[Fill]) -> None:
        """Consume planned fills from the book, dropping emptied entries and levels."""
        maker_book = self.asks if taker_side == "BUY" else self.bids
        for f in fills:
            f.entry.remaining -= f.shares
            if f.entry.remaining < 0:
                raise AssertionError("overfilled a resting entry")
        for price in {f.price for f in fills}:
            queue = [e for e in maker_book.get(price, []) if e.remaining > 0]
            if queue:
                maker_book[price] = queue
            else:
                maker_book.pop(price, None)
