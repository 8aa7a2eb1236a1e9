"""Scripted trader activity: fills and split/merge/redeem rows as the Data API will show them.

A taker fill becomes one taker row for the trader plus maker rows for synthetic counterparties;
a maker fill becomes one maker row per part for the trader plus one synthetic taker row, all in
one transaction. The trader's ledger follows the fill (it may go negative: traders are not API
users and nothing checks their funds).

Invariant: the rows of one fill share a transaction hash, their sizes add up on each side
(taker size = Σ maker sizes), and they become visible when the simulated clock reaches `at`.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

from sim.chain import record_fill
from sim.engine import row_enrichment
from sim.state import COLLATERAL, DataRow, World
from sim.units import to_base

ACTIVITY_TYPES = (
    "TRADE",
    "SPLIT",
    "MERGE",
    "REDEEM",
    "REWARD",
    "CONVERSION",
    "MIGRATION",
    "DEPOSIT",
    "WITHDRAWAL",
    "YIELD",
    "MAKER_REBATE",
    "TAKER_REBATE",
    "REFERRAL_REWARD",
    "TIP",
)


def _split(size: Decimal, parts: int) -> list[Decimal]:
    """Split a share size into `parts` 2-decimal pieces that add up exactly."""
    parts = max(1, parts)
    unit = (size / parts).quantize(Decimal("0.01"), rounding=ROUND_FLOOR)
    if unit <= 0:
        return [size]
    pieces = [unit] * (parts - 1)
    pieces.append(size - unit * (parts - 1))
    return pieces


def add_trader_fill(
    world: World,
    wallet: str,
    token_id: str,
    side: str,
    size: Decimal,
    price: Decimal,
    at: float | None = None,
    role: str = "taker",
    parts: list[Decimal] | None = None,
    counterparties: int = 2,
    tx_hash: str | None = None,
) -> list[DataRow]:
    """Record a followed trader's fill; returns the trader's own rows."""
    if side not in ("BUY", "SELL"):
        raise ValueError("side must be BUY or SELL")
    if role not in ("taker", "maker"):
        raise ValueError("role must be taker or maker")
    if not Decimal(0) < price < Decimal(1):
        raise ValueError("price must be inside (0, 1)")
    if size <= 0:
        raise ValueError("size must be positive")
    market = world.by_token[token_id]
    when = int(world.clock.now() if at is None else at)
    tx = tx_hash or world.new_tx_hash()
    enrich = row_enrichment(market, token_id)
    other = "SELL" if side == "BUY" else "BUY"
    mine: list[DataRow] = []

    def row(address: str, row_side: str, row_size: Decimal, taker: bool) -> DataRow:
        r = DataRow(
            seq=world.next_seq(),
            proxy_wallet=address.lower(),
            kind="TRADE",
            side=row_side,
            token_id=token_id,
            condition_id=market.condition_id,
            size=row_size,
            price=price,
            timestamp=when,
            transaction_hash=tx,
            taker=taker,
            **enrich,
        )
        world.add_row(r)
        return r

    match: list[DataRow] = []
    if role == "taker":
        mine.append(row(wallet, side, size, True))
        for i, piece in enumerate(_split(size, counterparties)):
            _owner, address = world.liquidity_makers[i % len(world.liquidity_makers)]
            match.append(row(address, other, piece, False))
    else:
        pieces = parts or [size]
        if sum(pieces) != size:
            raise ValueError("parts must add up to size")
        for piece in pieces:
            mine.append(row(wallet, side, piece, False))
        _owner, address = world.liquidity_takers[0]
        match.append(row(address, other, size, True))
    record_fill(world, mine + match, at=when if at is not None else world.clock.now())
    shares = to_base(size)
    cash = to_base(size * price)
    sign = 1 if side == "BUY" else -1
    world.ledger.move(wallet, token_id, sign * shares)
    world.ledger.move(wallet, COLLATERAL, -sign * cash)
    return mine


def add_activity(
    world: World,
    wallet: str,
    kind: str,
    condition_id: str,
    size: Decimal,
    usdc_size: Decimal | None = None,
    at: float | None = None,
) -> DataRow:
    """Record a non-trade activity row (SPLIT, MERGE, REDEEM, ...): no side, price 0.

    The row moves the wallet's balances as the chain would (`sim.settlement.apply_activity`):
    SPLIT adds `size` of every outcome, MERGE removes it, CONVERSION removes `size` of the NO
    outcome (the row names that token), REDEEM burns the wallet's shares of the market.
    """
    from sim.settlement import apply_activity

    if kind not in ACTIVITY_TYPES or kind == "TRADE":
        raise ValueError(f"unsupported activity type {kind!r}")
    market = world.market(condition_id)
    when = int(world.clock.now() if at is None else at)
    token_id = ""
    if kind == "CONVERSION":
        no = [o for o in market.outcomes if o.index == 1]
        token_id = no[0].token_id if no else ""
    r = DataRow(
        seq=world.next_seq(),
        proxy_wallet=wallet.lower(),
        kind=kind,
        side="",
        token_id=token_id,
        condition_id=market.condition_id,
        size=size,
        price=Decimal(0),
        timestamp=when,
        transaction_hash=world.new_tx_hash(),
        taker=False,
        title=market.question,
        slug=market.slug,
        icon=market.icon,
        event_slug=market.event_slug,
        outcome="",
        outcome_index=999,
        usdc=size if usdc_size is None else usdc_size,
    )
    world.add_row(r)
    apply_activity(world, wallet, kind, market, size, token_id)
    return r


def add_combo_fill(
    world: World,
    wallet: str,
    side: str,
    size: Decimal,
    price: Decimal,
    titles: list[str],
    at: float | None = None,
) -> DataRow:
    """Record a combo (parlay) trade row: 0x03… 31-byte condition id, empty slug and outcome."""
    when = int(world.clock.now() if at is None else at)
    cid = "0x03" + format(world.rng.getrandbits(240), "060x")
    token = str(world.rng.getrandbits(255))
    r = DataRow(
        seq=world.next_seq(),
        proxy_wallet=wallet.lower(),
        kind="TRADE",
        side=side,
        token_id=token,
        condition_id=cid,
        size=size,
        price=price,
        timestamp=when,
        transaction_hash=world.new_tx_hash(),
        taker=True,
        title=" AND ".join(titles),
        slug="",
        icon="",
        event_slug="",
        outcome="",
        outcome_index=999,
        is_combo=True,
    )
    world.add_row(r)
    return r
