"""Execution engine: settle matches, rest and cancel orders, expire GTDs, advance trade statuses,
and move synthetic liquidity (which fills resting user orders it crosses).

Invariants (each is what a test of the executor relies on):
- a match moves shares and pUSD between the taker and each user maker exactly once, at the
  maker's price, and records one CLOB trade per (taker execution, price level);
- all trades of one taker execution share one transaction hash, exposed from MINED on;
- a user order's `size_matched` only grows, never past its original size, and it leaves the
  book (and the open-order index) exactly when it is fully matched, cancelled or expired;
- Data API rows of a trade appear once, when the trade becomes MINED (block time = mined time);
- synthetic liquidity never crosses itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eth_hash.auto import keccak

from sim.matching import Fill, Resting, TokenBook, cost_of
from sim.state import (
    COLLATERAL,
    TRADE_CONFIRMED,
    TRADE_FAILED,
    TRADE_MATCHED,
    TRADE_MINED,
    TRADE_RETRYING,
    TRADE_TERMINAL,
    ClobTrade,
    DataRow,
    MakerLeg,
    Market,
    SimOrder,
    World,
)
from sim.units import from_base, to_base
from wire.ticks import in_price_range

TRADE_NEXT = {
    TRADE_MATCHED: TRADE_MINED,
    TRADE_MINED: TRADE_CONFIRMED,
    TRADE_RETRYING: TRADE_FAILED,
}
TRADE_MOVES = {
    TRADE_MATCHED: {TRADE_MINED, TRADE_CONFIRMED, TRADE_RETRYING, TRADE_FAILED},
    TRADE_MINED: {TRADE_CONFIRMED, TRADE_RETRYING, TRADE_FAILED},
    TRADE_RETRYING: {TRADE_MINED, TRADE_CONFIRMED, TRADE_FAILED},
}


@dataclass(frozen=True)
class Taker:
    """Who takes liquidity in a match: a user order or a synthetic counterparty."""

    owner: str
    address: str
    side: str
    order: SimOrder | None = None

    @property
    def user(self) -> bool:
        """True when a user order (not synthetic flow) is the taker."""
        return self.order is not None


def _opposite(side: str) -> str:
    return "SELL" if side == "BUY" else "BUY"


def maker_identity(world: World, entry: Resting) -> tuple[str, str]:
    """(owner, address) shown for a resting entry on trades and Data API rows."""
    if entry.order_id is not None:
        o = world.orders[entry.order_id]
        return o.owner, o.maker
    return world.liquidity_makers[entry.identity % len(world.liquidity_makers)]


def settle(
    world: World, market: Market, token_id: str, taker: Taker, fills: list[Fill]
) -> list[ClobTrade]:
    """Apply planned fills: book, orders, ledger, trades. Returns the trades created."""
    if not fills:
        return []
    book = world.books[token_id]
    now = world.clock.now()
    outcome = market.outcome(token_id)
    fee_schedule = market.fees
    exchange, _version = market.exchange()
    asset_type = market.conditional_asset_type
    book.apply(taker.side, fills)
    tx_hash = world.new_tx_hash()
    trades: list[ClobTrade] = []
    groups: dict[Decimal, list[Fill]] = {}
    for f in fills:
        groups.setdefault(f.price, []).append(f)
    for price, level in groups.items():
        legs: list[MakerLeg] = []
        taker_fee = 0
        for f in level:
            owner, address = maker_identity(world, f.entry)
            legs.append(
                MakerLeg(
                    order_id=f.entry.order_id or _synthetic_order_id(world, token_id, f.entry),
                    owner=owner,
                    maker_address=address,
                    shares=f.shares,
                    price=price,
                    side=_opposite(taker.side),
                    user=f.entry.order_id is not None,
                )
            )
            if f.entry.order_id is not None:
                _settle_maker(
                    world, world.orders[f.entry.order_id], f, token_id, exchange, asset_type
                )
            if taker.user and fee_schedule is not None:
                taker_fee += to_base(fee_schedule.fee(from_base(f.shares), price))
        shares = sum(f.shares for f in level)
        cost = sum(f.cost for f in level)
        if taker.order is not None:
            _settle_taker(
                world, taker.order, shares, cost, taker_fee, token_id, exchange, asset_type
            )
        if not taker.user and not any(leg.user for leg in legs):
            continue  # synthetic against synthetic: liquidity just moves, nobody sees a trade
        trade = ClobTrade(
            id=world.new_uuid(),
            taker_order_id=taker.order.id if taker.order else _synthetic_taker_id(world),
            taker_owner=taker.owner,
            taker_address=taker.address,
            taker_user=taker.user,
            condition_id=market.condition_id,
            token_id=token_id,
            outcome=outcome.label,
            outcome_index=outcome.index,
            side=taker.side,
            size=shares,
            price=price,
            fee_rate_bps=fee_schedule.rate_bps if (fee_schedule and taker.user) else 0,
            match_time=now,
            tx_hash=tx_hash,
            makers=legs,
            last_update=now,
        )
        trade.history.append((TRADE_MATCHED, now))
        if world.config.mined_after is not None:
            trade.mined_at = now + world.config.mined_after
            if world.config.confirmed_after is not None:
                trade.confirmed_at = trade.mined_at + world.config.confirmed_after
        world.trades[trade.id] = trade
        world.trade_ids.append(trade.id)
        world.pending_trades.add(trade.id)
        if trade.mined_at is not None:
            world.auto_trades.add(trade.id)
        if taker.order is not None:
            taker.order.associate_trades.append(trade.id)
        for f in level:
            if f.entry.order_id is not None:
                world.orders[f.entry.order_id].associate_trades.append(trade.id)
        trades.append(trade)
    last = fills[-1]
    world.last_trade[token_id] = (last.price, taker.side)
    return trades


def _synthetic_order_id(world: World, token_id: str, entry: Resting) -> str:
    return "0x" + keccak(f"{world.config.seed}:{token_id}:{entry.seq}".encode()).hex()


def _synthetic_taker_id(world: World) -> str:
    return world.new_tx_hash()  # any 32-byte id; synthetic flow has no real order


def _settle_maker(
    world: World, order: SimOrder, fill: Fill, token_id: str, exchange: str, asset_type: str
) -> None:
    order.size_matched += fill.shares
    if order.side == "BUY":  # maker bought: pays pUSD, receives shares
        world.ledger.move(order.maker, COLLATERAL, -fill.cost)
        world.ledger.spend_allowance(order.maker, COLLATERAL, exchange, fill.cost)
        world.ledger.move(order.maker, token_id, fill.shares)
    else:
        world.ledger.move(order.maker, token_id, -fill.shares)
        world.ledger.move(order.maker, COLLATERAL, fill.cost)
    world.set_reservation(order, reservation_of(order))
    if order.remaining == 0:
        order.status = "MATCHED"
        world.unindex_open(order)


def _settle_taker(
    world: World,
    order: SimOrder,
    shares: int,
    cost: int,
    fee: int,
    token_id: str,
    exchange: str,
    asset_type: str,
) -> None:
    order.size_matched += shares
    if order.budget is not None:
        order.budget -= cost
    if order.side == "BUY":
        world.ledger.move(order.maker, COLLATERAL, -(cost + fee))
        world.ledger.spend_allowance(order.maker, COLLATERAL, exchange, cost)
        world.ledger.move(order.maker, token_id, shares)
    else:
        world.ledger.move(order.maker, token_id, -shares)
        world.ledger.move(order.maker, COLLATERAL, cost - fee)


def reservation_of(order: SimOrder) -> int:
    """What a resting order commits: pUSD for the unfilled part of a BUY, shares for a SELL."""
    if order.side == "BUY":
        return cost_of(order.remaining, order.price)
    return order.remaining


def rest(world: World, order: SimOrder) -> None:
    """Put a (partially filled) user order on the book."""
    book = world.books[order.token_id]
    book.add(
        order.side,
        Resting(
            seq=world.next_seq(), price=order.price, remaining=order.remaining, order_id=order.id
        ),
    )
    order.rested = True
    world.index_open(order)
    world.set_reservation(order, reservation_of(order))


def cancel(world: World, order: SimOrder, reason: str = "canceled") -> bool:
    """Take a resting order off the book; False when it was not live."""
    if order.status != "LIVE":
        return False
    world.books[order.token_id].remove(order.side, order.id)
    order.status = "CANCELED"
    order.status_reason = reason
    world.unindex_open(order)
    world.set_reservation(order, 0)
    return True


def refresh(world: World) -> None:
    """Apply everything due by the simulated clock: GTD expiry, trade statuses, new blocks."""
    now = world.clock.now()
    for oid in list(world.live_gtd):
        order = world.orders[oid]
        if order.expiration <= now:
            cancel(world, order, "expired")
    timeout = world.config.heartbeat_timeout
    for api_key, hb in list(world.heartbeats.items()):
        if now - hb.last_accepted > timeout:  # the dead-man switch fires: cancel-all, disarmed
            del world.heartbeats[api_key]
            for order in [o for o in world.orders.values()
                          if o.owner == api_key and o.status == "LIVE"]:
                cancel(world, order, "heartbeat_timeout")
    for tid in list(world.auto_trades):
        trade = world.trades[tid]
        if trade.status == TRADE_MATCHED and trade.mined_at is not None and now >= trade.mined_at:
            advance_trade(world, trade, TRADE_MINED, at=trade.mined_at)
        if (
            trade.status == TRADE_MINED
            and trade.confirmed_at is not None
            and now >= trade.confirmed_at
        ):
            advance_trade(world, trade, TRADE_CONFIRMED, at=trade.confirmed_at)
        if trade.status != TRADE_MATCHED and trade.confirmed_at is None:
            world.auto_trades.discard(tid)  # nothing more happens on its own
    world.chain.advance(now)


def advance_trade(
    world: World, trade: ClobTrade, target: str | None = None, at: float | None = None
) -> None:
    """Move a trade MATCHED → MINED → CONFIRMED (or RETRYING → FAILED); rows appear at MINED."""
    if trade.status in TRADE_TERMINAL:
        raise ValueError(f"trade {trade.id} is already {trade.status}")
    goal = target or TRADE_NEXT[trade.status]
    if goal not in TRADE_MOVES[trade.status]:
        raise ValueError(f"trade {trade.id} cannot go from {trade.status} to {goal}")
    when = world.clock.now() if at is None else at
    if goal == TRADE_CONFIRMED and trade.status in (TRADE_MATCHED, TRADE_RETRYING):
        _mark(world, trade, TRADE_MINED, when)
    _mark(world, trade, goal, when)


def _mark(world: World, trade: ClobTrade, status: str, when: float) -> None:
    trade.status = status
    trade.last_update = when
    trade.history.append((status, when))
    if status == TRADE_MINED and not any(s == TRADE_MINED for s, _ in trade.history[:-1]):
        _emit_rows(world, trade, int(when))
    if status in TRADE_TERMINAL:
        world.pending_trades.discard(trade.id)
        world.auto_trades.discard(trade.id)


def trade_tx_visible(trade: ClobTrade) -> bool:
    """True once the trade's transaction hash is public (mined at least once)."""
    return any(s == TRADE_MINED for s, _ in trade.history)


def _emit_rows(world: World, trade: ClobTrade, timestamp: int) -> None:
    from sim.chain import record_fill

    market = world.by_token[trade.token_id]
    enrich = row_enrichment(market, trade.token_id)
    rows: list[DataRow] = []
    rows.append(
        DataRow(
            seq=world.next_seq(),
            proxy_wallet=trade.taker_address.lower(),
            kind="TRADE",
            side=trade.side,
            token_id=trade.token_id,
            condition_id=market.condition_id,
            size=from_base(trade.size),
            price=trade.price,
            timestamp=timestamp,
            transaction_hash=trade.tx_hash,
            taker=True,
            trade_id=trade.id,
            **enrich,
        )
    )
    for leg in trade.makers:
        rows.append(
            DataRow(
                seq=world.next_seq(),
                proxy_wallet=leg.maker_address.lower(),
                kind="TRADE",
                side=leg.side,
                token_id=trade.token_id,
                condition_id=market.condition_id,
                size=from_base(leg.shares),
                price=leg.price,
                timestamp=timestamp,
                transaction_hash=trade.tx_hash,
                taker=False,
                trade_id=trade.id,
                **enrich,
            )
        )
    for r in rows:
        world.add_row(r)
    record_fill(world, rows, at=float(timestamp))


def row_enrichment(market: Market, token_id: str) -> dict[str, Any]:
    """Gamma enrichment fields of a Data API row for one outcome."""
    o = market.outcome(token_id)
    return {
        "title": market.question,
        "slug": market.slug,
        "icon": market.icon,
        "event_slug": market.event_slug,
        "outcome": o.label,
        "outcome_index": o.index,
    }


# ---- synthetic liquidity ----------------------------------------------------------------------


def _check_levels(market: Market, levels: list[tuple[Decimal, int]]) -> None:
    for price, size in levels:
        if not in_price_range(price, market.tick_size):
            raise ValueError(f"price {price} is off the {market.tick_size} grid or out of range")
        if size <= 0:
            raise ValueError("level sizes must be positive")


def set_book(
    world: World,
    token_id: str,
    bids: list[tuple[Decimal, int]] | None = None,
    asks: list[tuple[Decimal, int]] | None = None,
) -> list[ClobTrade]:
    """Replace a side's synthetic liquidity (None keeps it); new levels that cross resting user
    orders trade against them first, at the user's price. Returns the trades created."""
    market = world.by_token[token_id]
    book = world.books[token_id]
    new_bids = bids if bids is not None else book.synthetic_levels("BUY")
    new_asks = asks if asks is not None else book.synthetic_levels("SELL")
    _check_levels(market, new_bids)
    _check_levels(market, new_asks)
    if new_bids and new_asks and max(p for p, _ in new_bids) >= min(p for p, _ in new_asks):
        raise ValueError("synthetic bids and asks would cross")
    trades: list[ClobTrade] = []
    if asks is not None:
        book.clear_synthetic("SELL")
        trades += _place_synthetic(world, market, book, "SELL", asks)
    if bids is not None:
        book.clear_synthetic("BUY")
        trades += _place_synthetic(world, market, book, "BUY", bids)
    return trades


def _place_synthetic(
    world: World, market: Market, book: TokenBook, side: str, levels: list[tuple[Decimal, int]]
) -> list[ClobTrade]:
    trades: list[ClobTrade] = []
    ordered = sorted(levels, key=lambda lv: lv[0], reverse=(side == "BUY"))
    for i, (price, size) in enumerate(ordered):
        fills = book.plan(side, price, shares=size, only_users=True)
        if fills:
            owner, address = world.liquidity_takers[i % len(world.liquidity_takers)]
            trades += settle(
                world, market, book.token_id, Taker(owner=owner, address=address, side=side), fills
            )
            size -= sum(f.shares for f in fills)
        book.put_synthetic(side, price, size, world.next_seq(), identity=i)
    return trades


def shift_book(world: World, token_id: str, ticks: int) -> list[ClobTrade]:
    """Move all synthetic levels by `ticks` ticks (levels leaving the price range are dropped)."""
    market = world.by_token[token_id]
    book = world.books[token_id]
    step = market.tick_size * ticks

    def moved(levels: list[tuple[Decimal, int]]) -> list[tuple[Decimal, int]]:
        return [(p + step, s) for p, s in levels if in_price_range(p + step, market.tick_size)]

    bids, asks = moved(book.synthetic_levels("BUY")), moved(book.synthetic_levels("SELL"))
    book.clear_synthetic("BUY")
    book.clear_synthetic("SELL")
    if ticks > 0:  # moving up: asks first so the bids that follow never cross them
        return set_book(world, token_id, bids=None, asks=asks) + set_book(
            world, token_id, bids=bids, asks=None
        )
    return set_book(world, token_id, bids=bids, asks=None) + set_book(
        world, token_id, bids=None, asks=asks
    )


def sweep(world: World, token_id: str, side: str, limit: Decimal, shares: int) -> list[ClobTrade]:
    """A synthetic taker: takes `shares` from the book up to `limit` (user orders included)."""
    market = world.by_token[token_id]
    book = world.books[token_id]
    fills = book.plan(side, limit, shares=shares)
    owner, address = world.liquidity_takers[0]
    return settle(world, market, token_id, Taker(owner=owner, address=address, side=side), fills)
