"""What the engine needs from Polymarket, as Protocols: `polymarket_client.PolymarketClient`
implements them, and so do the tests' fake exchange and the paper venue's book source.

The engine types its dependencies with these rather than with the concrete client, so a
daemon context, a venue or a test can be given anything that speaks the same calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from wire.records import BalanceAllowance, CancelResult, ClobTrade, GammaMarket, OpenOrder, PostOutcome
from wire.types import ApiCreds, MarketInfo, OrderBook, SignatureType


class BookSource(Protocol):
    """Public order books (the paper venue needs nothing else)."""

    async def get_book(self, token_id: str) -> OrderBook | None:
        """The token's order book, or None when the CLOB has none."""
        ...


class MarketSource(BookSource, Protocol):
    """Market parameters and books: what pricing and sizing read."""

    async def get_market_info(self, condition_id: str | None = None, *, token_id: str | None = None,
                              fresh: bool = False) -> MarketInfo:
        """Tick, min size, neg-risk, version, fees and tokens of a market."""
        ...

    def invalidate_market(self, condition_id: str | None = None, *, token_id: str | None = None) -> bool:
        """Forget cached market info (after the venue refused a stale tick)."""
        ...


class ExchangeClient(MarketSource, Protocol):
    """The authenticated CLOB calls of the live venue and the executor."""

    async def find_gamma_market(self, *, condition_id: str | None = None,
                                token_id: str | None = None) -> GammaMarket | None:
        """Gamma's view of a market, open or closed (resolution: closed + outcome prices)."""
        ...

    async def get_balance_allowance(self, creds: ApiCreds, signer_address: str, asset_type: str, *,
                                    signature_type: SignatureType | int,
                                    token_id: str | None = None) -> BalanceAllowance:
        """pUSD (or a token) balance and allowances of a follower."""
        ...

    async def post_order(self, body: bytes, creds: ApiCreds, signer_address: str) -> PostOutcome:
        """POST /order with exactly `body`."""
        ...

    async def post_orders(self, bodies: Sequence[bytes], creds: ApiCreds,
                          signer_address: str) -> list[PostOutcome]:
        """POST /orders carrying each body byte for byte; one outcome per body."""
        ...

    async def get_order(self, order_id: str, creds: ApiCreds, signer_address: str) -> OpenOrder | None:
        """GET /data/order/{id}, or None when the venue does not know it."""
        ...

    async def get_clob_trades(self, creds: ApiCreds, signer_address: str, *, trade_id: str | None = None,
                              market: str | None = None, asset_id: str | None = None,
                              maker_address: str | None = None, before: int | None = None,
                              after: int | None = None, max_pages: int = 50) -> list[ClobTrade]:
        """The follower's trades (GET /data/trades), filtered."""
        ...

    async def cancel_order(self, order_id: str, creds: ApiCreds, signer_address: str) -> CancelResult:
        """DELETE /order."""
        ...

    async def cancel_orders(self, order_ids: Sequence[str], creds: ApiCreds,
                            signer_address: str) -> CancelResult:
        """DELETE /orders (chunked by the client); results merged."""
        ...

    async def get_open_orders(self, creds: ApiCreds, signer_address: str, *, order_id: str | None = None,
                              market: str | None = None, asset_id: str | None = None,
                              max_pages: int = 50) -> list[OpenOrder]:
        """GET /data/orders, every page: the follower's resting orders."""
        ...

    async def post_heartbeat(self, creds: ApiCreds, signer_address: str, heartbeat_id: str) -> str:
        """POST /v1/heartbeats; returns the id to send next."""
        ...
