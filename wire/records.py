"""Typed results of Polymarket HTTP calls: pages, positions, markets, orders, trades, outcomes.

Every amount is a `Decimal`, every datetime timezone-aware UTC, and every record keeps the
original wire object in `raw` (excluded from equality and repr). `PostOutcome` is the closed
set of answers to an order submission; only `Rejected` means "definitively not placed".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Generic, TypeVar

from wire.types import MarketToken, MarketVersion, Side

T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# Paging


@dataclass(frozen=True)
class RejectedRow:
    """A feed row that could not be typed; kept so callers can log or count it."""

    index: int
    reason: str
    raw: object = field(repr=False)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page (or several walked pages) of a cursor-paged listing."""

    items: tuple[T, ...]
    next_cursor: str | None
    rejected: tuple[RejectedRow, ...] = ()

    @property
    def has_more(self) -> bool:
        """True when another page is available from `next_cursor`."""
        return self.next_cursor is not None


# ---------------------------------------------------------------------------------------------
# Data API


@dataclass(frozen=True)
class Position:
    """One `/v2/positions` row; optional numbers are None when the API marks them unavailable."""

    proxy_wallet: str
    token_id: str
    condition_id: str
    current_size: Decimal
    avg_price: Decimal | None
    current_price: Decimal | None
    current_value: Decimal | None
    total_size: Decimal | None
    entry_cost_usdc: Decimal | None
    entry_fees_usdc: Decimal | None
    total_cost_usdc: Decimal | None
    realized_pnl: Decimal | None
    unrealized_pnl: Decimal | None
    total_pnl: Decimal | None
    status: str
    redeemable: bool
    mergeable: bool
    negative_risk: bool
    archived: bool
    outcome: str
    outcome_index: int | None
    opposite_outcome: str
    opposite_token_id: str
    title: str
    slug: str
    event_id: str
    event_slug: str
    end_date: date | None
    last_event_at: datetime | None
    raw: dict[str, Any] = field(compare=False, repr=False)


@dataclass(frozen=True)
class TokenInfo:
    """One `/v2/tokens` row: what an asset id is (CTF v1, Protocol V2 binary/neg-risk, combo)."""

    token_id: str
    condition_id: str
    structural_condition_id: str | None
    module: str
    outcome_index: int | None
    clob_index: int | None
    outcome: str
    opposite_token_id: str
    resolved: bool
    final_price: Decimal | None
    title: str
    market_slug: str
    closed: bool
    neg_risk: bool
    event_slug: str
    raw: dict[str, Any] = field(compare=False, repr=False)


@dataclass(frozen=True)
class LeaderboardEntry:
    """One `/v2/leaderboard` row: a trader's standing on the PnL or volume board.

    `pnl` is USD over the window (day/week/month: marked equity change; all: realized only);
    `volume` is both-sides shares, never USD. `rank` ties share a rank and the next skips.
    """

    rank: int
    wallet: str  # the ranked proxy wallet, lower-case (the API's `user_id`)
    user_name: str
    x_username: str
    verified: bool
    pnl: Decimal
    volume: Decimal
    profile_image: str
    raw: dict[str, Any] = field(compare=False, repr=False)


# ---------------------------------------------------------------------------------------------
# Market metadata


@dataclass(frozen=True)
class GammaMarket:
    """A Gamma market with its trading ids chosen by `version` (clobTokenIds vs positionIds)."""

    id: str
    condition_id: str
    question: str
    slug: str
    version: MarketVersion
    tokens: tuple[MarketToken, ...]
    neg_risk: bool
    active: bool
    closed: bool
    archived: bool
    accepting_orders: bool
    enable_order_book: bool
    tick_size: Decimal | None
    min_size: Decimal | None
    end_date: datetime | None
    fees_enabled: bool
    fee_rate: Decimal | None
    fee_exponent: Decimal | None
    fee_takers_only: bool
    seconds_delay: int
    raw: dict[str, Any] = field(compare=False, repr=False)
    outcome_prices: tuple[Decimal, ...] = ()  # index-aligned with `tokens`; payouts once resolved
    resolution_status: str = ""  # `umaResolutionStatus`, e.g. "resolved"
    event_key: str = ""  # `negRiskMarketID` of a neg-risk market, else the first event's id
    category: str = ""  # `category`


@dataclass(frozen=True)
class ClobMarketParams:
    """CLOB `/clob-markets/{condition_id}`: the authoritative trading parameters of a market."""

    tokens: tuple[MarketToken, ...]
    tick_size: Decimal
    min_size: Decimal
    neg_risk: bool
    fee_rate: Decimal
    fee_exponent: Decimal
    fee_takers_only: bool
    taker_delay: bool
    min_order_age_s: int | None
    raw: dict[str, Any] = field(compare=False, repr=False)


# ---------------------------------------------------------------------------------------------
# Order placement outcomes


class RejectKind(StrEnum):
    """Why the venue refused an order (from the message text; OTHER when unrecognised)."""

    TICK_SIZE = "tick_size"
    MIN_SIZE = "min_size"
    MIN_NOTIONAL = "min_notional"
    PRECISION = "precision"
    BALANCE = "balance"
    VERSION_MISMATCH = "version_mismatch"
    WALLET_NOT_ALLOWED = "wallet_not_allowed"
    SIGNER_MISMATCH = "signer_mismatch"
    OWNER_MISMATCH = "owner_mismatch"
    AUTH = "auth"
    FOK_NOT_FILLED = "fok_not_filled"
    FAK_NO_MATCH = "fak_no_match"
    POST_ONLY_CROSS = "post_only_cross"
    MARKET_NOT_READY = "market_not_ready"
    CLOSED_ONLY = "closed_only"
    BANNED = "banned"
    EXPIRATION = "expiration"
    TOO_MANY_ORDERS = "too_many_orders"
    NOT_FOUND = "not_found"
    OTHER = "other"


@dataclass(frozen=True)
class Accepted:
    """The venue holds the order: resting (live), filled at placement (matched) or delayed."""

    order_id: str
    status: str  # live | matched | delayed
    making_amount: Decimal | None
    taking_amount: Decimal | None
    trade_ids: tuple[str, ...]
    message: str = ""


@dataclass(frozen=True)
class Rejected:
    """Definitively not placed (HTTP 4xx or a 200 with success:false)."""

    reason: str
    kind: RejectKind
    http_status: int


@dataclass(frozen=True)
class Duplicate:
    """The venue already has this exact order ('Duplicated'): treat as placed, reconcile by id."""

    reason: str
    order_id: str | None


@dataclass(frozen=True)
class InDoubt:
    """The order may or may not exist (timeout, reset, 5xx, unreadable body): reconcile by hash.

    `request_sent` is False only when the connection failed before any byte was sent.
    """

    reason: str
    http_status: int | None = None
    request_sent: bool = True


@dataclass(frozen=True)
class RateLimited:
    """HTTP 429: not placed; try again after `retry_after` seconds (None when not given)."""

    retry_after: float | None
    reason: str = ""


@dataclass(frozen=True)
class Restricted:
    """Venue-wide restriction: restarting (425), halted/cancel_only/post_only (503). Not placed."""

    kind: str
    reason: str
    http_status: int
    retry_after: float | None = None


PostOutcome = Accepted | Rejected | Duplicate | InDoubt | RateLimited | Restricted


# ---------------------------------------------------------------------------------------------
# Orders, trades, cancels, balances


@dataclass(frozen=True)
class CancelResult:
    """Answer of every cancel route: ids cancelled and {id: reason} for the rest."""

    canceled: tuple[str, ...]
    not_canceled: dict[str, str]


@dataclass(frozen=True)
class OpenOrder:
    """`GET /data/order/{id}` / `/data/orders` row; status has any ORDER_STATUS_ prefix removed."""

    id: str
    status: str
    owner: str
    maker_address: str
    market: str
    asset_id: str
    side: Side | None
    original_size: Decimal
    size_matched: Decimal
    price: Decimal
    outcome: str
    expiration: datetime | None
    order_type: str
    associate_trades: tuple[str, ...]
    created_at: datetime | None
    sizes_were_fixed6: bool = False  # sizes arrived as 6-decimal base units and were scaled
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def remaining_size(self) -> Decimal:
        """Shares still open (original − matched, never negative)."""
        return max(self.original_size - self.size_matched, Decimal(0))


@dataclass(frozen=True)
class MakerOrderFill:
    """One resting order hit by a CLOB trade (`maker_orders[]` entry)."""

    order_id: str
    owner: str
    maker_address: str
    matched_amount: Decimal
    price: Decimal
    fee_rate_bps: Decimal | None
    asset_id: str
    outcome: str
    side: Side | None
    outcome_index: int | None


@dataclass(frozen=True)
class ClobTrade:
    """`GET /data/trades` row; status has any TRADE_STATUS_ prefix removed."""

    id: str
    taker_order_id: str
    market: str
    asset_id: str
    side: Side | None
    size: Decimal
    price: Decimal
    fee_rate_bps: Decimal | None
    status: str
    match_time: datetime | None
    last_update: datetime | None
    outcome: str
    owner: str
    maker_address: str
    transaction_hash: str
    trader_side: str
    maker_orders: tuple[MakerOrderFill, ...]
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class BalanceAllowance:
    """`/balance-allowance`: balance and per-spender allowances in pUSD or shares (human units)."""

    balance: Decimal
    allowances: dict[str, Decimal]
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class BuilderTrade:
    """`GET /builder/trades` row: a trade attributed to a builder code (docs/POLYMARKET.md §8.2)."""

    id: str
    builder: str
    market: str
    asset_id: str
    side: Side | None
    size: Decimal
    size_usdc: Decimal
    price: Decimal
    status: str
    match_time: datetime | None
    fee_usdc: Decimal
    owner: str
    maker: str
    transaction_hash: str
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
