"""Shared value types at the Polymarket edge: sides, wallet kinds, markets, books, activity.

Every price, size and amount is a `Decimal`; every datetime is timezone-aware UTC.
Secrets (`ApiCreds`) have a masked repr so they never reach a log by accident.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum, IntEnum
from typing import Any

from infra.errors import InputError

ZERO = Decimal(0)
ONE = Decimal(1)

QueryValue = str | int
# Query parameters we send: text or integer values, or a list of texts (httpx repeats the key).
QueryParams = Mapping[str, QueryValue | Sequence[str]]


class Side(str, Enum):
    """Order or fill side from the wallet's own perspective."""

    BUY = "BUY"
    SELL = "SELL"


class SignatureType(IntEnum):
    """CLOB V2 signature types (the order's `signatureType`)."""

    EOA = 0
    POLY_PROXY = 1
    POLY_GNOSIS_SAFE = 2
    POLY_1271 = 3  # deposit wallet: maker = signer = the wallet, ERC-7739 wrapped signature

    @classmethod
    def from_name(cls, name: str) -> SignatureType:
        """Map the CLI names eoa/proxy/safe/deposit (or a digit) to a signature type."""
        key = name.strip().lower()
        table = {"eoa": cls.EOA, "proxy": cls.POLY_PROXY, "safe": cls.POLY_GNOSIS_SAFE,
                 "deposit": cls.POLY_1271, "0": cls.EOA, "1": cls.POLY_PROXY,
                 "2": cls.POLY_GNOSIS_SAFE, "3": cls.POLY_1271}
        if key not in table:
            raise InputError(f"unknown signature type {name!r} (expected eoa, proxy, safe or deposit)")
        return table[key]

    @property
    def cli_name(self) -> str:
        """The name the admin CLI uses for this type."""
        return {0: "eoa", 1: "proxy", 2: "safe", 3: "deposit"}[int(self)]


class OrderType(str, Enum):
    """CLOB order time-in-force."""

    GTC = "GTC"
    GTD = "GTD"
    FOK = "FOK"
    FAK = "FAK"


class MarketVersion(str, Enum):
    """Gamma `version`: v1 = CTF market (tokenIds, domain "2"), v2 = Protocol V2 (positionIds, domain "3")."""

    V1 = "v1"
    V2 = "v2"


@dataclass(frozen=True)
class ApiCreds:
    """CLOB L2 credentials; repr never shows the secret or passphrase."""

    api_key: str
    secret: str = field(repr=False)
    passphrase: str = field(repr=False)

    def __repr__(self) -> str:
        return f"ApiCreds(api_key={self.api_key!r}, secret=***, passphrase=***)"


@dataclass(frozen=True)
class MarketToken:
    """One outcome of a market: its trading id (tokenId or positionId) and label."""

    token_id: str
    outcome: str
    outcome_index: int


@dataclass(frozen=True)
class MarketInfo:
    """What the executor needs to know about a market to size, price and sign an order."""

    condition_id: str
    question: str
    tokens: tuple[MarketToken, ...]
    tick_size: Decimal
    min_size: Decimal
    neg_risk: bool
    version: MarketVersion
    accepting_orders: bool
    closed: bool
    end_date: datetime | None = None
    fee_rate: Decimal = ZERO
    fee_exponent: Decimal = ONE
    fee_takers_only: bool = True
    event_key: str = ""  # the event it belongs to: neg-risk market id, else Gamma event id
    category: str = ""  # Gamma's category ("" when unknown)

    def token(self, token_id: str) -> MarketToken | None:
        """The outcome with this trading id, or None."""
        for t in self.tokens:
            if t.token_id == token_id:
                return t
        return None


@dataclass(frozen=True)
class BookLevel:
    """One price level of an order book."""

    price: Decimal
    size: Decimal


@dataclass(frozen=True)
class OrderBook:
    """An order book normalised best-first on both sides (the wire sends worst-first)."""

    token_id: str
    bids: tuple[BookLevel, ...]  # best (highest) first
    asks: tuple[BookLevel, ...]  # best (lowest) first
    tick_size: Decimal
    min_size: Decimal
    neg_risk: bool = False
    timestamp: datetime | None = None

    @property
    def best_bid(self) -> Decimal | None:
        """Highest bid price, or None when there are no bids."""
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        """Lowest ask price, or None when there are no asks."""
        return self.asks[0].price if self.asks else None

    @property
    def mid(self) -> Decimal | None:
        """Mid price, or None unless both sides are present."""
        if self.best_bid is None or self.best_ask is None:
            return None
        return (self.best_bid + self.best_ask) / 2

    @property
    def spread(self) -> Decimal | None:
        """best ask − best bid, or None unless both sides are present."""
        if self.best_bid is None or self.best_ask is None:
            return None
        return self.best_ask - self.best_bid


@dataclass(frozen=True)
class Activity:
    """One Data API `/v2/activity` (or `/v2/trades`) row, typed; `raw` keeps the original."""

    proxy_wallet: str
    timestamp: datetime
    type: str  # TRADE, SPLIT, MERGE, REDEEM, CONVERSION, ...
    condition_id: str
    token_id: str
    side: Side | None
    size: Decimal
    price: Decimal
    usdc_size: Decimal | None
    transaction_hash: str
    outcome: str
    outcome_index: int | None  # None for the 999 "unlabelled" sentinel
    title: str
    slug: str
    event_slug: str
    is_combo: bool
    raw: dict[str, Any] = field(compare=False, repr=False)

    @property
    def copyable(self) -> bool:
        """True for a plain TRADE row that a normal CLOB order can copy."""
        return self.type == "TRADE" and not self.is_combo and self.side is not None
