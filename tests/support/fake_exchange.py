"""A stateful in-memory exchange for executor tests: it remembers every order by hash.

It implements the PolymarketClient methods the executor calls. Orders are verified (hash
recomputed from the wire fields, signer recovered) so a test fails if the executor posts
something the venue would not accept. Marketable orders fill against the configured book.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from copying.paper_fill import simulate_fill
from wire.records import (
    Accepted,
    BalanceAllowance,
    CancelResult,
    ClobTrade,
    Duplicate,
    GammaMarket,
    InDoubt,
    MakerOrderFill,
    OpenOrder,
    PostOutcome,
    Rejected,
    RejectKind,
)
from wire.signing import exchange_for, recover_order_signer, signed_order_from_json
from wire.types import BookLevel, MarketInfo, MarketToken, MarketVersion, OrderBook, OrderType, Side

D = Decimal
CONDITION = "0x" + "c1" * 32
YES, NO = "1001", "1002"


def market(tick: str = "0.01", neg_risk: bool = False, version: MarketVersion = MarketVersion.V1,
           min_size: str = "5", closed: bool = False) -> MarketInfo:
    """A binary market."""
    return MarketInfo(condition_id=CONDITION, question="Will it?", tokens=(
        MarketToken(YES, "Yes", 0), MarketToken(NO, "No", 1)), tick_size=D(tick),
        min_size=D(min_size), neg_risk=neg_risk, version=version, accepting_orders=not closed,
        closed=closed)


def book(token: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]],
         tick: str = "0.01") -> OrderBook:
    """A book from best-first (price, size) lists."""
    return OrderBook(token_id=token, bids=tuple(BookLevel(D(p), D(s)) for p, s in bids),
                     asks=tuple(BookLevel(D(p), D(s)) for p, s in asks), tick_size=D(tick),
                     min_size=D(5))


@dataclass
class VenueOrder:
    """An order the fake venue holds."""

    hash: str
    body: dict[str, Any]
    side: Side
    price: Decimal
    size: Decimal
    order_type: str
    status: str = "LIVE"
    matched: Decimal = D(0)
    trades: list[ClobTrade] = field(default_factory=list)


class FakeExchange:
    """Books, markets, balances and an order ledger keyed by order hash."""

    def __init__(self, info: MarketInfo | None = None, chain_id: int = 137) -> None:
        self.info = info or market()
        self.chain_id = chain_id
        self.books: dict[str, OrderBook] = {}
        self.balance = D("1000")
        self.orders: dict[str, VenueOrder] = {}
        self.posts: list[bytes] = []
        self.cancels: list[str] = []
        self.next_post: list[str] = []  # behaviours: accept_then_error, timeout_unsent, reject
        self.live_history: list[int] = []  # number of live orders after each post
        self.hide_trades = False  # trades matched but not yet listed by /data/trades
        self.batch_posts: list[int] = []  # sizes of the POST /orders requests
        self.gamma: GammaMarket | None = None  # what Gamma says about the market (resolution)
        self.cancel_requests: list[int] = []  # sizes of the DELETE /orders requests
        self.open_order_reads = 0
        self.heartbeats = 0
        self.balance_reads = 0
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # trade times
        self.stale_book_tick: Decimal | None = None  # the next books carry this (old) tick
        self.stale_book_tick_times = 1
        self._trade_n = 0

    # -- the client surface ---------------------------------------------------------------------
    async def get_book(self, token_id: str) -> OrderBook | None:
        """The configured book, carrying the market's current tick and min size (as /book does)."""
        bk = self.books.get(token_id)
        if bk is None:
            return None
        if self.stale_book_tick is not None and self.stale_book_tick_times > 0:
            self.stale_book_tick_times -= 1  # read just before the venue changed the tick
            return replace(bk, tick_size=self.stale_book_tick, min_size=self.info.min_size)
        return replace(bk, tick_size=self.info.tick_size, min_size=self.info.min_size)

    async def get_market_info(self, condition_id: str | None = None, *, token_id: str | None = None,
                              fresh: bool = False) -> MarketInfo:
        """The configured market."""
        return self.info

    def invalidate_market(self, condition_id: str | None = None, *, token_id: str | None = None) -> bool:
        """No cache here."""
        return True

    async def find_gamma_market(self, *, condition_id: str | None = None,
                                token_id: str | None = None) -> GammaMarket | None:
        """The configured Gamma market (None: Gamma does not know it)."""
        return self.gamma

    async def get_balance_allowance(self, creds: Any, signer: str, asset_type: str, *,
                                    signature_type: Any, token_id: str | None = None) -> BalanceAllowance:
        """The configured pUSD balance, less what filled BUY orders spent (as the venue's ledger)."""
        self.balance_reads += 1
        spent = sum((tr.size * tr.price for o in self.orders.values() if o.side is Side.BUY
                     for tr in o.trades), D(0))
        return BalanceAllowance(balance=self.balance - spent, allowances={})

    async def post_order(self, body: bytes, creds: Any, signer_address: str) -> PostOutcome:
        """Verify and place (or misbehave as told by `next_post`)."""
        self.posts.append(body)
        behaviour = self.next_post.pop(0) if self.next_post else "accept"
        if behaviour == "timeout_unsent":
            return InDoubt("connect failed", request_sent=False)
        payload = json.loads(body)
        wire = payload["order"]
        exchange = exchange_for(self.info.version, self.info.neg_risk, self.chain_id)
        signed = signed_order_from_json(wire, exchange, self.chain_id)
        recovered = recover_order_signer(signed, exchange, self.chain_id)
        assert recovered.lower() == signer_address.lower(), "signature does not recover to the API key"
        if behaviour == "reject":
            return Rejected("not enough balance / allowance", RejectKind.BALANCE, 400)
        if signed.order_hash in self.orders:
            return Duplicate(f"order {signed.order_hash} is invalid. Duplicated.", signed.order_hash)
        side = signed.side
        maker, taker = D(signed.maker_amount) / D(10**6), D(signed.taker_amount) / D(10**6)
        size, usd = (taker, maker) if side is Side.BUY else (maker, taker)
        exact = usd / size if size else D(0)
        if payload["orderType"] in ("GTC", "GTD") and exact % self.info.tick_size != 0:
            return Rejected(f"order {signed.order_hash} is invalid. Price ({exact}) breaks minimum tick "
                            f"size rule: {self.info.tick_size}", RejectKind.TICK_SIZE, 400)
        price = exact.quantize(self.info.tick_size)
        order = VenueOrder(signed.order_hash, payload, side, price, size, payload["orderType"])
        self.orders[order.hash] = order
        self._match(order)
        if order.order_type in ("FOK", "FAK") and order.status == "LIVE":
            order.status = "CANCELED"
        self.live_history.append(sum(1 for o in self.orders.values() if o.status == "LIVE"))
        if behaviour == "accept_then_error":
            return InDoubt("HTTP 500 after the order was placed", http_status=500)
        status = "matched" if order.matched > 0 else "live"
        return Accepted(order.hash, status, None, None, tuple(t.id for t in order.trades))

    async def post_orders(self, bodies: Sequence[bytes], creds: Any, signer_address: str) -> list[PostOutcome]:
        """POST /orders: at most 15 bodies of one key, each placed (or refused) as by post_order."""
        assert 0 < len(bodies) <= 15
        self.batch_posts.append(len(bodies))
        return [await self.post_order(body, creds, signer_address) for body in bodies]

    def _match(self, order: VenueOrder) -> None:
        bk = self.books.get(order.body["order"]["tokenId"])
        if bk is None:
            return
        sim = simulate_fill(bk, order.side, order.price, order.size - order.matched,
                            OrderType(order.order_type))
        for price, size in sim.fills:
            self._trade(order, size, price, taker=True)

    def _trade(self, order: VenueOrder, size: Decimal, price: Decimal, taker: bool) -> None:
        self._trade_n += 1
        tid = f"trade-{self._trade_n}"
        now = self.clock()
        maker_orders: tuple[MakerOrderFill, ...] = ()
        if not taker:
            maker_orders = (MakerOrderFill(order.hash, "key", "0x", size, price, None,
                                           order.body["order"]["tokenId"], "Yes", order.side, 0),)
        order.trades.append(ClobTrade(
            id=tid, taker_order_id=order.hash if taker else "0xother", market=CONDITION,
            asset_id=order.body["order"]["tokenId"], side=order.side, size=size, price=price,
            fee_rate_bps=None, status="CONFIRMED", match_time=now, last_update=now, outcome="Yes",
            owner="key", maker_address="0x", transaction_hash="", trader_side="TAKER" if taker else "MAKER",
            maker_orders=maker_orders))
        order.matched += size
        if order.matched >= order.size:
            order.status = "MATCHED"

    async def get_order(self, order_id: str, creds: Any, signer_address: str) -> OpenOrder | None:
        """The order by hash, or None."""
        o = self.orders.get(order_id)
        if o is None:
            return None
        return OpenOrder(id=o.hash, status=o.status, owner="key", maker_address="0x", market=CONDITION,
                         asset_id=o.body["order"]["tokenId"], side=o.side, original_size=o.size,
                         size_matched=o.matched, price=o.price, outcome="Yes", expiration=None,
                         order_type=o.order_type, associate_trades=tuple(t.id for t in o.trades),
                         created_at=None)

    async def get_clob_trades(self, creds: Any, signer_address: str, **filters: Any) -> list[ClobTrade]:
        """Every trade (the executor filters by order hash)."""
        if self.hide_trades:
            return []
        return [t for o in self.orders.values() for t in o.trades]

    async def cancel_order(self, order_id: str, creds: Any, signer_address: str) -> CancelResult:
        """Cancel if live."""
        self.cancels.append(order_id)
        o = self.orders.get(order_id)
        if o is None or o.status != "LIVE":
            return CancelResult((), {order_id: "order can't be found - already canceled or matched"})
        o.status = "CANCELED"
        return CancelResult((order_id,), {})

    async def cancel_orders(self, order_ids: Sequence[str], creds: Any, signer_address: str) -> CancelResult:
        """DELETE /orders: each id as cancel_order; one request recorded."""
        self.cancel_requests.append(len(order_ids))
        canceled: list[str] = []
        not_canceled: dict[str, str] = {}
        for oid in order_ids:
            result = await self.cancel_order(oid, creds, signer_address)
            canceled.extend(result.canceled)
            not_canceled.update(result.not_canceled)
        return CancelResult(tuple(canceled), not_canceled)

    async def get_open_orders(self, creds: Any, signer_address: str, **filters: Any) -> list[OpenOrder]:
        """GET /data/orders: every resting order (one key in these tests)."""
        self.open_order_reads += 1
        found = [await self.get_order(o.hash, creds, signer_address) for o in self.live_orders()]
        return [o for o in found if o is not None]

    async def post_heartbeat(self, creds: Any, signer_address: str, heartbeat_id: str) -> str:
        """Accept every heartbeat."""
        self.heartbeats += 1
        return f"hb-{self.heartbeats}"

    # -- test controls ------------------------------------------------------------------------
    def fill_resting(self, order_hash: str, size: str) -> None:
        """A counterparty hits our resting order."""
        o = self.orders[order_hash]
        self._trade(o, D(size), o.price, taker=False)

    def live_orders(self) -> list[VenueOrder]:
        """Orders resting now."""
        return [o for o in self.orders.values() if o.status == "LIVE"]
