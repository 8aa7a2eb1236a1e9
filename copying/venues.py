"""Where copy orders go: the live CLOB, or a paper venue that never posts.

Both venues take the same `OrderSpec` (the exact signed body plus what it means) and answer with
the client's `PostOutcome` values, so the executor's path is identical up to the POST.
Invariant of `PaperVenue`: it has no code path that sends POST /order; it only reads books.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from copying.ledger import FillRecord
from copying.paper_fill import fill_resting, simulate_fill
from copying.ports import BookSource, ExchangeClient
from wire.fees import taker_fee
from wire.parse import MAX_BATCH_ORDERS
from wire.records import Accepted, CancelResult, ClobTrade, OpenOrder, PostOutcome, Rejected, RejectKind
from wire.types import ApiCreds, OrderBook, OrderType, Side

log = logging.getLogger("pmct.venue")
ZERO = Decimal(0)


@dataclass(frozen=True)
class OrderSpec:
    """One signed venue order and what it stands for."""

    order_hash: str
    body: bytes
    token_id: str
    condition_id: str
    side: Side
    price: Decimal
    shares: Decimal
    order_type: OrderType
    creds: ApiCreds | None
    signer_address: str  # the L2 POLY_ADDRESS (the EOA)
    funder_address: str
    fee_rate: Decimal
    fee_exponent: Decimal
    posted_at: datetime | None
    already_filled: Decimal = ZERO  # shares of this venue order already recorded


@dataclass(frozen=True)
class VenueAccount:
    """One follower at the venue: its L2 credentials and POLY_ADDRESS (the EOA signer)."""

    follower_id: int
    creds: ApiCreds | None
    signer_address: str


@dataclass(frozen=True)
class CancelReport:
    """What a batch cancel established: orders the venue says are not live any more, and the
    ones it could not confirm (they stay CANCELING and are asked again)."""

    confirmed: frozenset[str]
    unconfirmed: dict[str, str]  # order hash (lower case) → why


@dataclass(frozen=True)
class OrderRefresh:
    """What the venue says about an order now."""

    state: str  # live | filled | canceled | unknown
    size_matched: Decimal
    fills: tuple[FillRecord, ...]


class Venue(Protocol):
    """The executor's view of an exchange."""

    paper: bool

    async def post(self, spec: OrderSpec) -> tuple[PostOutcome, tuple[FillRecord, ...]]:
        """Place the order; fills known at placement (paper) come back with the outcome."""

    async def post_many(self, specs: list[OrderSpec]) -> list[tuple[PostOutcome, tuple[FillRecord, ...]]]:
        """Place up to MAX_BATCH_ORDERS orders of one signer; one answer per spec, in order."""

    async def refresh(self, spec: OrderSpec) -> OrderRefresh:
        """Current state and the fills not recorded yet."""

    async def cancel(self, spec: OrderSpec) -> bool:
        """Ask to cancel; True when the venue confirms the order is no longer live."""

    async def cancel_many(self, account: VenueAccount, order_hashes: list[str]) -> CancelReport:
        """Cancel many orders of one follower (DELETE /orders in chunks); confirmed or not, per order."""


# a not_canceled reason that still tells the order is not live at the venue
_GONE_MARKERS = ("can't be found", "cannot be found", "not found", "already canceled", "matched")

_LIVE_STATES = {"LIVE", "DELAYED", "UNMATCHED"}
_DEAD_STATES = {"CANCELED", "CANCELED_MARKET_RESOLVED", "INVALID", "CANCELED_NOT_ENOUGH_BALANCE",
                "CANCELED_MARKET_NOT_FOUND", "CANCELED_EXPIRED_ORDER", "CANCELED_ORDER_TIMED_OUT"}


class LiveVenue:
    """The real CLOB through PolymarketClient."""

    paper = False

    def __init__(self, client: ExchangeClient) -> None:
        self.client = client

    async def post(self, spec: OrderSpec) -> tuple[PostOutcome, tuple[FillRecord, ...]]:
        """POST exactly `spec.body` once."""
        assert spec.creds is not None
        return await self.client.post_order(spec.body, spec.creds, spec.signer_address), ()

    async def post_many(self, specs: list[OrderSpec]) -> list[tuple[PostOutcome, tuple[FillRecord, ...]]]:
        """One POST /orders carrying each `spec.body` byte for byte (one POST /order for a single spec)."""
        if len(specs) == 1:
            return [await self.post(specs[0])]
        first = specs[0]
        assert first.creds is not None and 0 < len(specs) <= MAX_BATCH_ORDERS
        assert all(s.creds == first.creds and s.signer_address == first.signer_address for s in specs)
        outcomes = await self.client.post_orders([s.body for s in specs], first.creds, first.signer_address)
        return [(o, ()) for o in outcomes]

    async def refresh(self, spec: OrderSpec) -> OrderRefresh:
        """GET /data/order by hash; trades fetched only when more has matched than recorded."""
        assert spec.creds is not None
        order = await self.client.get_order(spec.order_hash, spec.creds, spec.signer_address)
        if order is None:
            fills = await self._fills(spec) if spec.posted_at is not None else ()
            if fills:  # a filled FOK/FAK may be gone from the order route but not from trades
                matched = spec.already_filled + sum((f.size for f in fills), ZERO)
                state = "filled" if matched >= spec.shares else "canceled"
                return OrderRefresh(state, matched, fills)
            return OrderRefresh("unknown", ZERO, ())
        status = order.status.upper()
        matched = order.size_matched
        fills = await self._fills(spec) if matched > spec.already_filled else ()
        if matched >= order.original_size > 0 or status == "MATCHED":
            state = "filled" if matched >= spec.shares else "canceled"
        elif status in _DEAD_STATES:
            state = "canceled"
        else:
            state = "live" if status in _LIVE_STATES or not status else "live"
        return OrderRefresh(state, matched, fills)

    async def _fills(self, spec: OrderSpec) -> tuple[FillRecord, ...]:
        assert spec.creds is not None
        after = int((spec.posted_at - timedelta(minutes=5)).timestamp()) if spec.posted_at else None
        trades = await self.client.get_clob_trades(spec.creds, spec.signer_address,
                                                   asset_id=spec.token_id, after=after)
        return tuple(fills_of(trades, spec.order_hash, spec.fee_rate, spec.fee_exponent,
                              spec.posted_at))

    async def cancel_many(self, account: VenueAccount, order_hashes: list[str]) -> CancelReport:
        """DELETE /orders (chunks within the per-signer cancel burst); an order the venue did not
        cancel because it is gone counts as confirmed, anything else is read back once."""
        assert account.creds is not None
        wanted = {h.lower() for h in order_hashes}
        if not wanted:
            return CancelReport(frozenset(), {})
        try:
            result = await self.client.cancel_orders(sorted(wanted), account.creds,
                                                     account.signer_address)
        except Exception as exc:  # noqa: BLE001 - not confirmed: the copies stay CANCELING
            return CancelReport(frozenset(), {h: f"{type(exc).__name__}: {exc}"[:200] for h in wanted})
        confirmed = {c.lower() for c in result.canceled} & wanted
        doubtful: dict[str, str] = {}
        for oid, why in result.not_canceled.items():
            key = oid.lower()
            if key in wanted and any(m in why.lower() for m in _GONE_MARKERS):
                confirmed.add(key)
            elif key in wanted:
                doubtful[key] = why
        for key in wanted - confirmed - set(doubtful):
            doubtful[key] = "absent from the cancel answer"
        unconfirmed: dict[str, str] = {}
        for key, why in doubtful.items():  # rare: ask about the order itself
            try:
                order = await self.client.get_order(key, account.creds, account.signer_address)
            except Exception as exc:  # noqa: BLE001
                unconfirmed[key] = f"{why}; read back failed: {type(exc).__name__}"
                continue
            if order is None or order.status.upper() not in _LIVE_STATES:
                confirmed.add(key)
            else:
                unconfirmed[key] = why
        return CancelReport(frozenset(confirmed), unconfirmed)

    async def open_orders(self, account: VenueAccount) -> dict[str, OpenOrder]:
        """The follower's resting orders (GET /data/orders, every page), by lower-case hash."""
        assert account.creds is not None
        rows = await self.client.get_open_orders(account.creds, account.signer_address)
        return {o.id.lower(): o for o in rows}

    async def trades_since(self, account: VenueAccount, after: int | None) -> list[ClobTrade]:
        """The follower's trades matched after `after` (epoch s; None = all), every page."""
        assert account.creds is not None
        return await self.client.get_clob_trades(account.creds, account.signer_address, after=after)

    async def cancel(self, spec: OrderSpec) -> bool:
        """DELETE /order, then confirm by reading the order back."""
        assert spec.creds is not None
        result: CancelResult = await self.client.cancel_order(spec.order_hash, spec.creds,
                                                              spec.signer_address)
        if spec.order_hash in result.canceled or spec.order_hash.lower() in {
                c.lower() for c in result.canceled}:
            return True
        order = await self.client.get_order(spec.order_hash, spec.creds, spec.signer_address)
        return order is None or order.status.upper() != "LIVE"


def fills_of(trades: list[ClobTrade] | tuple[ClobTrade, ...], order_hash: str, fee_rate: Decimal,
             fee_exponent: Decimal, default_time: datetime | None) -> list[FillRecord]:
    """The fills of one of our orders in a trade listing: as the taker (fee at the rate the trade
    reports, else the market's) or as a maker of the trade (no fee); FAILED trades are left out."""
    out: list[FillRecord] = []
    wanted = order_hash.lower()
    for t in trades:
        if t.status.upper() == "FAILED":
            continue
        when = t.match_time or t.last_update or default_time
        assert when is not None, "a trade with no time and no default"
        if t.taker_order_id.lower() == wanted:
            rate = (t.fee_rate_bps / Decimal(10000)) if t.fee_rate_bps is not None else fee_rate
            fee = taker_fee(t.size, t.price, rate, fee_exponent) if rate > 0 else ZERO
            out.append(FillRecord(t.id, order_hash, t.size, t.price, fee, t.status, when))
        for m in t.maker_orders:
            if m.order_id.lower() == wanted:
                out.append(FillRecord(t.id, order_hash, m.matched_amount, m.price, ZERO, t.status, when))
    return out


def order_hashes_in(trades: list[ClobTrade]) -> set[str]:
    """Every order hash (lower case) a trade listing mentions, taker and makers."""
    found: set[str] = set()
    for t in trades:
        found.add(t.taker_order_id.lower())
        found.update(m.order_id.lower() for m in t.maker_orders)
    return found


class PaperVenue:
    """Simulated fills against the real order book; never posts an order."""

    paper = True

    def __init__(self, client: BookSource, clock: Callable[[], datetime]) -> None:
        self.client = client  # used only for public book reads
        self.clock = clock
        self._canceled: set[str] = set()

    def _fee(self, spec: OrderSpec, size: Decimal, price: Decimal) -> Decimal:
        return taker_fee(size, price, spec.fee_rate, spec.fee_exponent) if spec.fee_rate > 0 else ZERO

    async def post(self, spec: OrderSpec) -> tuple[PostOutcome, tuple[FillRecord, ...]]:
        """Walk the current book as a taker; rest the remainder for GTC/GTD."""
        book = await self.client.get_book(spec.token_id)
        if book is None:
            return Rejected("paper: no order book for this token", RejectKind.NOT_FOUND, 404), ()
        sim = simulate_fill(book, spec.side, spec.price, spec.shares, spec.order_type)
        if spec.order_type is OrderType.FOK and sim.filled_shares == 0:
            return Rejected("paper: FOK not fully fillable", RejectKind.FOK_NOT_FILLED, 400), ()
        if spec.order_type is OrderType.FAK and sim.filled_shares == 0:
            return Rejected("paper: FAK found no match", RejectKind.FAK_NO_MATCH, 400), ()
        now = self.clock()
        fills = tuple(
            FillRecord(f"paper-{spec.order_hash[2:14]}-{i}", spec.order_hash, size, price,
                       self._fee(spec, size, price), "CONFIRMED", now)
            for i, (price, size) in enumerate(sim.fills))
        status = "matched" if sim.filled_shares > 0 else "live"
        return Accepted(spec.order_hash, status, None, None, tuple(f.trade_id for f in fills)), fills

    async def post_many(self, specs: list[OrderSpec]) -> list[tuple[PostOutcome, tuple[FillRecord, ...]]]:
        """Each spec as `post`, one after the other (paper never sends anything)."""
        return [await self.post(spec) for spec in specs]

    async def refresh(self, spec: OrderSpec, book: OrderBook | None = None) -> OrderRefresh:
        """A resting paper order fills when a later book trades through its limit (`book`: the
        token's book if the caller already holds a fresh one)."""
        remaining = spec.shares - spec.already_filled
        if remaining <= 0:
            return OrderRefresh("filled", spec.already_filled, ())
        if spec.order_type in (OrderType.FOK, OrderType.FAK) or spec.order_hash in self._canceled:
            return OrderRefresh("canceled", spec.already_filled, ())
        if book is None:
            book = await self.client.get_book(spec.token_id)
        if book is None:
            return OrderRefresh("live", spec.already_filled, ())
        sim = fill_resting(book, spec.side, spec.price, remaining)
        now = self.clock()
        base = int(spec.already_filled * 100)
        fills = tuple(
            FillRecord(f"paper-{spec.order_hash[2:14]}-r{base}-{i}", spec.order_hash, size, price,
                       ZERO, "CONFIRMED", now)
            for i, (price, size) in enumerate(sim.fills))
        matched = spec.already_filled + sim.filled_shares
        return OrderRefresh("filled" if matched >= spec.shares else "live", matched, fills)

    async def cancel(self, spec: OrderSpec) -> bool:
        """A paper order is cancelled at once; it never fills afterwards."""
        self._canceled.add(spec.order_hash)
        return True

    async def cancel_many(self, account: VenueAccount, order_hashes: list[str]) -> CancelReport:
        """Every paper order is cancelled at once."""
        self._canceled.update(order_hashes)
        return CancelReport(frozenset(h.lower() for h in order_hashes), {})
