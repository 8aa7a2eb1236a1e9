"""Market resolution and redemption in the simulator, and what split/merge/convert/redeem rows do
to a wallet's balances.

`resolve` gives a market its payout vector (Gamma then shows it closed with those outcome prices
and `umaResolutionStatus: "resolved"`; the Data API marks positions redeemable); resting orders
there are cancelled (CANCELED_MARKET_RESOLVED). `redeem` burns a holder's shares of a resolved
market and pays pUSD at the payout, once (a second call finds nothing to burn), recording a
REDEEM row on the holder's activity and the payout in `World.redemptions`.

Invariant: pUSD paid = Σ burned shares × payout, floored to base units; shares are only burned
from the holder that redeems.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sim import engine
from sim.state import COLLATERAL, DataRow, Market, World
from sim.units import from_base


class Revert(Exception):  # noqa: N818 - the EVM's word for it
    """A call that reverts (the transaction is mined with status 0)."""


def resolve(world: World, market: Market, payouts: dict[str, Decimal]) -> dict[str, Any]:
    """Resolve `market` with per-token payouts (each in [0, 1], summing to 1)."""
    if market.resolved:
        raise ValueError(f"market {market.key} is already resolved")
    tokens = {o.token_id for o in market.outcomes}
    if set(payouts) != tokens or any(not 0 <= p <= 1 for p in payouts.values()) \
            or sum(payouts.values()) != 1:
        raise ValueError("payouts must give every outcome a price in [0, 1], summing to 1")
    market.payouts = dict(payouts)
    market.closed, market.accepting_orders = True, False
    market.resolved_at = world.clock.now()
    cancelled = 0
    for order in list(world.orders.values()):
        if order.token_id in tokens and order.status == "LIVE":
            engine.cancel(world, order, "market resolved")
            order.status = "CANCELED_MARKET_RESOLVED"
            cancelled += 1
    return {"key": market.key, "condition_id": market.condition_id,
            "payouts": {t: str(p) for t, p in payouts.items()}, "orders_cancelled": cancelled}


def redeem(world: World, holder: str, market: Market, *, outcome_index: int | None = None,
           amount: int | None = None, via: str) -> int:
    """Burn `holder`'s shares of a resolved market and pay pUSD; the base units paid."""
    if not market.resolved or market.payouts is None:
        raise Revert("condition not resolved")
    paid = burned = 0
    for o in market.outcomes:
        if outcome_index is not None and o.index != outcome_index:
            continue
        held = world.ledger.balance(holder, o.token_id)
        take = held if amount is None else amount
        if take > held:
            raise Revert("insufficient balance")
        if take <= 0:
            continue
        world.ledger.move(holder, o.token_id, -take)
        payout = market.payouts[o.token_id]
        paid += int((Decimal(take) * payout).to_integral_value(rounding=ROUND_FLOOR))
        burned += take
    if paid:
        world.ledger.move(holder, COLLATERAL, paid)
    if burned:
        world.add_row(DataRow(
            seq=world.next_seq(), proxy_wallet=holder.lower(), kind="REDEEM", side="", token_id="",
            condition_id=market.condition_id, size=from_base(burned), price=Decimal(0),
            timestamp=int(world.clock.now()), transaction_hash=world.new_tx_hash(), taker=False,
            title=market.question, slug=market.slug, icon=market.icon, event_slug=market.event_slug,
            usdc=from_base(paid)))
    world.redemptions.append({"holder": holder.lower(), "condition_id": market.condition_id,
                              "shares": burned, "paid": paid, "via": via})
    return paid


def apply_activity(world: World, wallet: str, kind: str, market: Market, size: Decimal,
                   token_id: str) -> None:
    """What a SPLIT / MERGE / CONVERSION / REDEEM row does to the wallet's balances."""
    units = int(size * 10**6)
    if kind == "SPLIT":
        for o in market.outcomes:
            world.ledger.move(wallet, o.token_id, units)
        world.ledger.move(wallet, COLLATERAL, -units)
    elif kind == "MERGE":
        for o in market.outcomes:
            world.ledger.move(wallet, o.token_id, -units)
        world.ledger.move(wallet, COLLATERAL, units)
    elif kind == "CONVERSION" and token_id:
        world.ledger.move(wallet, token_id, -units)
    elif kind == "REDEEM":
        for o in market.outcomes:
            world.ledger.set_balance(wallet, o.token_id, 0)
