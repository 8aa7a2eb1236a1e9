"""World state of the simulator: clock, markets, accounts, ledger, orders, trades, Data API rows.

Plain data plus bookkeeping helpers; the rules that change it live in `sim.engine`,
`sim.orders` and `sim.feeds`.

Invariants:
- every read or write of a `World` happens while holding `World.lock` (one re-entrant lock;
  the HTTP layer and the control API take it around each request);
- amounts are `int` base units (1e-6) and prices exact `Decimal`s;
- addresses are stored checksummed and indexed by their lower-case form;
- ids (trade uuids, tx hashes) come from the world's seeded RNG, so a scenario replays the same.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sim.matching import TokenBook
from sim.units import MAX_UINT256
from sim.verify import CTF_EXCHANGE_V2, EXCHANGE_V3, NEG_RISK_EXCHANGE_V2

COLLATERAL = "COLLATERAL"  # ledger asset key for pUSD
TRADE_MATCHED = "MATCHED"
TRADE_MINED = "MINED"
TRADE_CONFIRMED = "CONFIRMED"
TRADE_RETRYING = "RETRYING"
TRADE_FAILED = "FAILED"
TRADE_TERMINAL = frozenset({TRADE_CONFIRMED, TRADE_FAILED})


class SimClock:
    """Wall clock plus a settable offset (tests jump 36 h), optionally frozen at an instant."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._frozen: float | None = None

    def now(self) -> float:
        """Current simulated time, epoch seconds."""
        if self._frozen is not None:
            return self._frozen
        return time.time() + self._offset

    @property
    def offset(self) -> float:
        """Seconds added to the wall clock (0 when frozen is unset and nothing was moved)."""
        return (self._frozen - time.time()) if self._frozen is not None else self._offset

    def set_offset(self, seconds: float) -> None:
        """Run at wall clock + `seconds` (unfreezes)."""
        self._frozen = None
        self._offset = float(seconds)

    def advance(self, seconds: float) -> None:
        """Move the simulated time forward (or back) by `seconds`."""
        if self._frozen is not None:
            self._frozen += float(seconds)
        else:
            self._offset += float(seconds)

    def set_time(self, epoch_seconds: float) -> None:
        """Make the simulated time equal `epoch_seconds` now (keeps running unless frozen)."""
        if self._frozen is not None:
            self._frozen = float(epoch_seconds)
        else:
            self._offset = float(epoch_seconds) - time.time()

    def freeze(self, epoch_seconds: float | None = None) -> None:
        """Stop the clock at `epoch_seconds` (default: the current simulated time)."""
        self._frozen = self.now() if epoch_seconds is None else float(epoch_seconds)

    def unfreeze(self) -> None:
        """Let the clock run again from where it stands."""
        if self._frozen is not None:
            self._offset = self._frozen - time.time()
            self._frozen = None


@dataclass(frozen=True)
class FeeSchedule:
    """Gamma `feeSchedule`: platform fee = shares × rate × (p(1−p))^exponent, pUSD."""

    rate: Decimal
    exponent: Decimal = Decimal(1)
    taker_only: bool = True
    rebate_rate: Decimal = Decimal(0)

    def fee(self, shares: Decimal, price: Decimal) -> Decimal:
        """Fee in pUSD for `shares` at `price`, floored to 5 decimals."""
        base = price * (1 - price)
        curve = (
            base ** int(self.exponent)
            if self.exponent == int(self.exponent)
            else base**self.exponent
        )
        return (shares * self.rate * curve).quantize(Decimal("0.00001"), rounding=ROUND_FLOOR)

    @property
    def rate_bps(self) -> int:
        """The rate in basis points, as CLOB trade rows print it."""
        return int(self.rate * 10000)


@dataclass(frozen=True)
class Outcome:
    """One tradable outcome: its CLOB asset id (tokenId or positionId) and label."""

    token_id: str
    label: str
    index: int


@dataclass
class Market:
    """A market as the three services describe it."""

    key: str
    condition_id: str
    question: str
    slug: str
    version: str  # "v1" CTF | "v2" Protocol V2
    neg_risk: bool
    tick_size: Decimal
    min_size: Decimal
    outcomes: list[Outcome]
    accepting_orders: bool = True
    closed: bool = False
    active: bool = True
    gamma_id: str = ""
    event_id: str = ""
    event_slug: str = ""
    event_title: str = ""
    end_date: str = ""
    icon: str = ""
    category: str = ""
    description: str = ""
    fees: FeeSchedule | None = None
    question_id: str = ""
    neg_risk_market_id: str = ""
    payouts: dict[str, Decimal] | None = None  # token id → pUSD per share, once resolved
    resolved_at: float | None = None

    @property
    def resolved(self) -> bool:
        """True once the market has a payout vector."""
        return self.payouts is not None

    def exchange(self) -> tuple[str, str]:
        """(verifyingContract, domain version) every order for this market must be signed for."""
        if self.version == "v2":
            return EXCHANGE_V3, "3"
        return (NEG_RISK_EXCHANGE_V2 if self.neg_risk else CTF_EXCHANGE_V2), "2"

    @property
    def conditional_asset_type(self) -> str:
        """`asset_type` of this market's shares on /balance-allowance."""
        return "CONDITIONAL-V2" if self.version == "v2" else "CONDITIONAL"

    def outcome(self, token_id: str) -> Outcome:
        """The outcome with this token id (KeyError when absent)."""
        for o in self.outcomes:
            if o.token_id == token_id:
                return o
        raise KeyError(token_id)

    def opposite(self, token_id: str) -> Outcome | None:
        """The other outcome of a binary market."""
        others = [o for o in self.outcomes if o.token_id != token_id]
        return others[0] if len(others) == 1 else None


@dataclass
class ApiKeyRecord:
    """CLOB L2 credentials bound to the EOA that signed L1."""

    api_key: str
    secret: str = field(repr=False)
    passphrase: str = field(repr=False)
    address: str = ""
    nonce: int = 0
    deleted: bool = False


@dataclass
class WalletRecord:
    """A funder wallet the simulator knows: proxy (1), Safe (2) or deposit wallet (3)."""

    address: str
    kind: str  # "proxy" | "safe" | "deposit"
    owner: str
    signers: set[str] = field(default_factory=set)  # lower-case owner + session keys

    SIGNATURE_TYPES = {"proxy": 1, "safe": 2, "deposit": 3}


@dataclass(frozen=True)
class Profile:
    """Profile enrichment the Data API prints on a wallet's rows."""

    name: str = ""
    pseudonym: str = ""
    bio: str = ""
    profile_image: str = ""
    profile_image_optimized: str = ""


@dataclass
class SimOrder:
    """An accepted order with its verified fields and matching state."""

    id: str
    owner: str
    eoa: str
    maker: str
    signer: str
    recovered: str
    signature_type: int
    exchange: str
    domain_version: str
    condition_id: str
    token_id: str
    outcome: str
    side: str
    price: Decimal
    maker_amount: int
    taker_amount: int
    original_size: int  # shares, base units
    order_type: str
    post_only: bool
    expiration: int
    created_at: float
    salt: int
    timestamp_ms: int
    signature: str = field(repr=False)
    budget: int | None = None  # pUSD left to spend (market BUY: FOK/FAK)
    builder: str = "0x" + "00" * 32  # the signed order's builder code (attribution)
    status: str = "LIVE"
    status_reason: str = ""
    size_matched: int = 0
    rested: bool = False
    reserved: int = 0  # base units this resting order commits (pUSD for BUY, shares for SELL)
    associate_trades: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        """Unfilled shares, base units."""
        return max(0, self.original_size - self.size_matched)


@dataclass
class MakerLeg:
    """One resting order hit by a match (a user order or synthetic liquidity)."""

    order_id: str
    owner: str
    maker_address: str
    shares: int
    price: Decimal
    side: str
    user: bool


@dataclass
class ClobTrade:
    """A CLOB trade: one taker order against the makers at one price level."""

    id: str
    taker_order_id: str
    taker_owner: str
    taker_address: str
    taker_user: bool
    condition_id: str
    token_id: str
    outcome: str
    outcome_index: int
    side: str  # the taker's side
    size: int
    price: Decimal
    fee_rate_bps: int
    match_time: float
    tx_hash: str
    makers: list[MakerLeg]
    status: str = TRADE_MATCHED
    last_update: float = 0.0
    mined_at: float | None = None  # automatic advance deadlines (None: only by control API)
    confirmed_at: float | None = None
    history: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class DataRow:
    """One Data API row (a wallet's side of a fill, or a split/merge/redeem activity)."""

    seq: int
    proxy_wallet: str  # lower-case
    kind: str  # TRADE, SPLIT, MERGE, REDEEM, ...
    side: str  # "BUY" | "SELL" | ""
    token_id: str
    condition_id: str
    size: Decimal
    price: Decimal
    timestamp: int
    transaction_hash: str
    taker: bool
    title: str = ""
    slug: str = ""
    icon: str = ""
    event_slug: str = ""
    outcome: str = ""
    outcome_index: int = 999
    is_combo: bool = False
    trade_id: str = ""
    usdc: Decimal | None = None  # explicit dollar value of non-trade rows

    @property
    def usdc_size(self) -> Decimal:
        """Dollar value of the row (size × price for trades)."""
        return self.usdc if self.usdc is not None else self.size * self.price


class Ledger:
    """pUSD and outcome-share balances per funder address plus allowances per exchange."""

    def __init__(self) -> None:
        self.balances: dict[str, dict[str, int]] = {}
        self.allowances: dict[str, dict[tuple[str, str], int]] = {}

    def balance(self, address: str, asset: str) -> int:
        """Base units of `asset` (COLLATERAL or a token id) held by `address`."""
        return self.balances.get(address.lower(), {}).get(asset, 0)

    def set_balance(self, address: str, asset: str, units: int) -> None:
        """Overwrite a balance."""
        self.balances.setdefault(address.lower(), {})[asset] = units

    def move(self, address: str, asset: str, delta: int) -> None:
        """Add `delta` (may be negative) to a balance."""
        book = self.balances.setdefault(address.lower(), {})
        book[asset] = book.get(asset, 0) + delta

    def allowance(self, address: str, asset_type: str, exchange: str) -> int:
        """Allowance `address` granted `exchange` for COLLATERAL / CONDITIONAL / CONDITIONAL-V2."""
        return self.allowances.get(address.lower(), {}).get((asset_type, exchange.lower()), 0)

    def set_allowance(self, address: str, asset_type: str, exchange: str, units: int) -> None:
        """Overwrite one allowance."""
        self.allowances.setdefault(address.lower(), {})[(asset_type, exchange.lower())] = units

    def spend_allowance(self, address: str, asset_type: str, exchange: str, units: int) -> None:
        """Consume allowance as the exchange pulls funds (an unlimited approval never shrinks)."""
        current = self.allowance(address, asset_type, exchange)
        if current != MAX_UINT256:
            self.set_allowance(address, asset_type, exchange, max(0, current - units))

    def tokens_of(self, address: str) -> dict[str, int]:
        """All non-collateral balances of an address."""
        return {k: v for k, v in self.balances.get(address.lower(), {}).items() if k != COLLATERAL}


@dataclass
class BuilderKeyRecord:
    """Builder API credentials (POLY_BUILDER_* headers) for one builder code."""

    api_key: str
    secret: str = field(repr=False)
    passphrase: str = field(repr=False)
    builder_code: str = ""


@dataclass
class HeartbeatState:
    """An API key's armed dead-man switch: the id to send next and when the last send was accepted."""

    heartbeat_id: str
    last_accepted: float


@dataclass
class SimConfig:
    """Tunables of one simulator instance."""

    chain_id: int = 137
    seed: int = 1
    mined_after: float | None = 1.0  # seconds after match; None = only via control API
    confirmed_after: float | None = 3.0  # seconds after mined
    clob_page_size: int = 100
    auth_max_skew: float = 600.0  # L1/L2 timestamp tolerance vs wall or simulated clock
    deposit_wallet_only: bool = False  # every EOA must trade through a deposit wallet
    trading_mode: str = "normal"  # normal | disabled | cancel_only | post_only
    gamma_hide_closed_by_default: bool = True
    block_time: float = 2.0  # seconds between automatic blocks; 0 = blocks only by `mine_blocks`
    rpc_max_block_range: int = 1000  # eth_getLogs block-range cap (0 = none)
    rpc_max_results: int = 10000  # eth_getLogs result cap (0 = none)
    rpc_max_filter_values: int = 0  # cap on addresses + topic values in one filter (0 = none)
    rpc_error_style: str = "alchemy"  # whose error codes/messages eth_getLogs caps answer with
    rpc_max_batch: int = 1000  # calls per JSON-RPC batch
    chain_taker_buy_reports_usdc: bool = False  # emulate the unverified taker-BUY layout
    data_down: bool = False  # Data API outage: every route answers 503
    data_api_lag: float = 0.0  # seconds before the Data API shows a row (its indexing delay)
    rpc_down: bool = False  # RPC outage: HTTP answers 503, websocket connections are refused
    tx_mining: str = "instant"  # instant | manual: transactions wait for `mine_transactions`
    relayer_api_key: str = ""  # the Builder API key the relayer accepts ("" = none)
    relayer_secret: str = field(default="", repr=False)
    relayer_passphrase: str = field(default="", repr=False)
    heartbeat_timeout: float = 10.0  # seconds without an accepted heartbeat before cancel-all


class World:
    """Everything the simulator knows, guarded by one lock."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.lock = threading.RLock()
        self.config = config or SimConfig()
        self.clock = SimClock()
        self.rng = random.Random(self.config.seed)
        self.started_at = self.clock.now()
        self.markets: dict[str, Market] = {}
        self.by_token: dict[str, Market] = {}
        self.by_condition: dict[str, Market] = {}
        self.books: dict[str, TokenBook] = {}
        self.last_trade: dict[str, tuple[Decimal, str]] = {}
        self.api_keys: dict[str, ApiKeyRecord] = {}
        self.keys_by_addr_nonce: dict[tuple[str, int], str] = {}
        self.wallets: dict[str, WalletRecord] = {}
        self.require_deposit: set[str] = set()
        self.closed_only: set[str] = set()
        self.banned: set[str] = set()
        self.profiles: dict[str, Profile] = {}
        self.ledger = Ledger()
        self.orders: dict[str, SimOrder] = {}
        self.open_by_maker: dict[str, set[str]] = {}
        self.live_gtd: set[str] = set()
        self.reserved: dict[str, dict[str, int]] = {}
        self.trades: dict[str, ClobTrade] = {}
        self.trade_ids: list[str] = []
        self.pending_trades: set[str] = set()
        self.auto_trades: set[str] = set()  # pending trades with automatic status deadlines
        self.rows: list[DataRow] = []
        self.rows_by_wallet: dict[str, list[DataRow]] = {}
        self.chain_txs: dict[str, dict[str, Any]] = {}  # tx hash → {raw, sender, nonce, receipt}
        self.chain_nonces: dict[str, int] = {}  # lower-case sender → next nonce
        self.relayer_txs: dict[str, dict[str, Any]] = {}  # transactionID → relayer transaction
        self.relayer_nonces: dict[tuple[str, str], int] = {}  # (lower-case owner, type) → nonce
        self.redemptions: list[dict[str, Any]] = []  # every payout made (tests count them)
        self.rejections: deque[dict[str, Any]] = deque(maxlen=1000)
        self.builder_keys: dict[str, BuilderKeyRecord] = {}
        self.heartbeats: dict[str, HeartbeatState] = {}  # API key → armed heartbeat
        self.requests: deque[dict[str, Any]] = deque(maxlen=5000)
        self.request_counts: dict[str, int] = {}  # "service METHOD path" -> requests, never trimmed
        self._seq = 0
        self.liquidity_makers = [self._synthetic_identity() for _ in range(3)]
        self.liquidity_takers = [self._synthetic_identity() for _ in range(3)]
        from sim.chain import Chain

        self.chain = Chain(self.config.block_time, self.started_at, self.config.seed)

    # ---- ids -------------------------------------------------------------------------------
    def next_seq(self) -> int:
        """Monotonic sequence number (keyset tiebreaker, book priority)."""
        self._seq += 1
        return self._seq

    def new_uuid(self) -> str:
        """A deterministic uuid4-shaped id."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def new_tx_hash(self) -> str:
        """A deterministic 0x-hex transaction hash."""
        return "0x" + format(self.rng.getrandbits(256), "064x")

    def new_address(self) -> str:
        """A deterministic lower-case 0x address (synthetic counterparties and traders)."""
        return "0x" + format(self.rng.getrandbits(160), "040x")

    def _synthetic_identity(self) -> tuple[str, str]:
        return self.new_uuid(), self.new_address()

    # ---- markets ---------------------------------------------------------------------------
    def add_market(self, market: Market) -> None:
        """Register a market and create an empty book for each outcome."""
        if market.key in self.markets:
            raise ValueError(f"duplicate market key {market.key!r}")
        self.markets[market.key] = market
        self.by_condition[market.condition_id.lower()] = market
        for o in market.outcomes:
            if o.token_id in self.by_token:
                raise ValueError(f"token id {o.token_id} is used by two markets")
            self.by_token[o.token_id] = market
            self.books[o.token_id] = TokenBook(o.token_id)

    def market_by_condition(self, condition_id: str) -> Market | None:
        """Market by condition id; a 31-byte id also matches with the SDK's `00` padding."""
        cid = condition_id.lower()
        found = self.by_condition.get(cid)
        if found is None and len(cid) == 66 and cid.endswith("00"):
            found = self.by_condition.get(cid[:-2])
        return found

    def market(self, key_or_condition: str) -> Market:
        """Market by scenario key or condition id (KeyError when unknown)."""
        if key_or_condition in self.markets:
            return self.markets[key_or_condition]
        found = self.market_by_condition(key_or_condition)
        if found is None:
            raise KeyError(f"unknown market {key_or_condition!r}")
        return found

    # ---- wallets ---------------------------------------------------------------------------
    def wallet(self, address: str) -> WalletRecord | None:
        """A registered proxy / Safe / deposit wallet."""
        return self.wallets.get(address.lower())

    def funder_for(self, eoa: str, signature_type: int) -> str:
        """The funder /balance-allowance reports for an EOA and signature type."""
        if signature_type == 0:
            return eoa
        kind = {1: "proxy", 2: "safe", 3: "deposit"}.get(signature_type)
        for w in self.wallets.values():
            if w.kind == kind and eoa.lower() in w.signers:
                return w.address
        return ""

    def profile(self, address: str) -> Profile:
        """Profile enrichment of a wallet (empty strings when unknown)."""
        return self.profiles.get(address.lower(), Profile())

    # ---- orders ----------------------------------------------------------------------------
    def index_open(self, order: SimOrder) -> None:
        """Record an order as resting."""
        self.open_by_maker.setdefault(order.maker.lower(), set()).add(order.id)
        if order.order_type == "GTD":
            self.live_gtd.add(order.id)

    def unindex_open(self, order: SimOrder) -> None:
        """Forget an order that stopped resting."""
        self.open_by_maker.get(order.maker.lower(), set()).discard(order.id)
        self.live_gtd.discard(order.id)

    def set_reservation(self, order: SimOrder, amount: int) -> None:
        """Record what a resting order now commits, keeping the maker's total in step."""
        asset = COLLATERAL if order.side == "BUY" else order.token_id
        totals = self.reserved.setdefault(order.maker.lower(), {})
        totals[asset] = totals.get(asset, 0) + amount - order.reserved
        order.reserved = amount

    def reserved_amount(self, maker: str, asset: str) -> int:
        """Base units of `asset` (COLLATERAL or a token id) committed by resting orders."""
        return self.reserved.get(maker.lower(), {}).get(asset, 0)

    def open_orders_of(self, maker: str) -> list[SimOrder]:
        """Resting orders whose funder is `maker`."""
        return [self.orders[i] for i in self.open_by_maker.get(maker.lower(), ())]

    # ---- data rows -------------------------------------------------------------------------
    def add_row(self, row: DataRow) -> None:
        """Store a Data API row."""
        self.rows.append(row)
        self.rows_by_wallet.setdefault(row.proxy_wallet.lower(), []).append(row)
