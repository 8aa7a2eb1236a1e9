"""The simulated Polygon chain: blocks every `block_time`, an `OrderFilled` log for every fill.

Every Data API trade row the simulator creates (scripted leader fills and matched CLOB orders)
gets one `OrderFilled` log with the real V2 layout in the same transaction (same hash as the row):
maker rows first, then the taker order's own event (`taker` = the exchange), as on chain. A log
waits for the first block whose timestamp reaches the fill's time; a fill dated before the last
block lands silently in the block of its time (history the follower may never look at again).

Blocks: automatic every `block_time` simulated seconds (blocks are produced when the clock is
looked at: every request, control call and the websocket ticker), or by hand (`block_time = 0`,
`mine()`). Reorgs move a transaction's logs to a later block or drop them; every block from the
fork point to the head gets a new hash, websocket subscribers see the old logs again with
`removed: true`, then the new blocks and their logs.

Invariants: block numbers are contiguous and timestamps never decrease; a block's hash is a
function of (seed, number, reorg epoch) and its parent hash is the previous block's hash; log
indices are contiguous within a block; every read or write happens under the world lock.
"""

from __future__ import annotations

import bisect
import threading
import time
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from eth_hash.auto import keccak

from wire.chain import ORDER_FILLED_TOPIC, encode_order_filled_data, topic_for_address
from wire.types import Side

if TYPE_CHECKING:
    from sim.state import DataRow, World

GENESIS_NUMBER = 80_000_000
HISTORY_SECONDS = 3600  # blocks exist for the hour before the simulator started
MAX_EVENTS = 100_000


@dataclass
class SimLog:
    """One OrderFilled event, placed in a block or pending."""

    exchange: str  # lowercase
    tx_hash: str
    order_hash: str
    maker: str  # lowercase
    taker: str  # lowercase
    side: str  # BUY | SELL (the maker order's side)
    token_id: str
    maker_amount: int
    taker_amount: int
    fee: int
    at: float  # the fill's time: the log goes into the first block at or after it
    rows: list[DataRow] = field(default_factory=list, repr=False)
    block: int | None = None
    log_index: int = 0
    tx_index: int = 0

    def as_json(self, chain: Chain, removed: bool = False) -> dict[str, Any]:
        """The JSON-RPC log object."""
        assert self.block is not None
        return {
            "address": self.exchange,
            "topics": [ORDER_FILLED_TOPIC, self.order_hash, topic_for_address(self.maker),
                       topic_for_address(self.taker)],
            "data": encode_order_filled_data(Side(self.side), self.token_id, self.maker_amount,
                                             self.taker_amount, self.fee),
            "blockNumber": hex(self.block),
            "blockHash": chain.block_hash(self.block),
            "transactionHash": self.tx_hash,
            "transactionIndex": hex(self.tx_index),
            "logIndex": hex(self.log_index),
            "removed": removed,
        }


@dataclass(frozen=True)
class ChainEvent:
    """Something websocket subscribers hear about: a new head, or a log (maybe removed)."""

    kind: str  # "head" | "log"
    number: int
    log: dict[str, Any] | None = None


class Chain:
    """Blocks, their logs and the pending logs of one simulated world."""

    def __init__(self, block_time: float, start: float, seed: int) -> None:
        self.block_time = float(block_time)
        self.seed = seed
        self.first = GENESIS_NUMBER
        self.times = array("q")
        self.logs: dict[int, list[SimLog]] = {}
        self.epochs: dict[int, int] = {}
        self.pending: list[SimLog] = []
        self.events: list[ChainEvent] = []
        self.wake = threading.Event()
        self.reorgs = 0
        self.produced_at: dict[int, float] = {}  # wall time each block with logs was produced
        genesis = int(start) - HISTORY_SECONDS
        self.times.append(genesis)
        cadence = self.block_time or 2.0
        self.next_due = genesis + cadence
        while self.next_due <= start:  # the hour of history, whatever the mode
            self._produce(int(self.next_due), quiet=True)
            self.next_due += cadence

    # ---- reading -------------------------------------------------------------------------------
    @property
    def head(self) -> int:
        """The latest block number."""
        return self.first + len(self.times) - 1

    def has(self, number: int) -> bool:
        """True when the block exists."""
        return self.first <= number <= self.head

    def timestamp(self, number: int) -> int:
        """A produced block's timestamp."""
        return int(self.times[number - self.first])

    def block_hash(self, number: int) -> str:
        """The block's hash: keccak(seed, number, reorg epoch)."""
        if number < self.first:
            return "0x" + "0" * 64
        epoch = self.epochs.get(number, 0)
        return "0x" + keccak(f"pmct-sim:{self.seed}:{number}:{epoch}".encode()).hex()

    def header(self, number: int) -> dict[str, Any]:
        """The eth_getBlockByNumber object (header fields, no transactions)."""
        logs = self.logs.get(number, [])
        return {
            "number": hex(number),
            "hash": self.block_hash(number),
            "parentHash": self.block_hash(number - 1),
            "timestamp": hex(self.timestamp(number)),
            "miner": "0x" + "0" * 40,
            "gasLimit": hex(30_000_000),
            "gasUsed": hex(21_000 * len({lg.tx_hash for lg in logs})),
            "baseFeePerGas": hex(30_000_000_000),
            "logsBloom": "0x" + "0" * 512,
            "transactions": sorted({lg.tx_hash for lg in logs}),
            "uncles": [],
        }

    def find_by_hash(self, block_hash: str) -> int | None:
        """The number of the canonical block with this hash (recent blocks first)."""
        wanted = block_hash.lower()
        for number in range(self.head, max(self.first, self.head - 5000) - 1, -1):
            if self.block_hash(number) == wanted:
                return number
        return None

    def logs_in(self, lo: int, hi: int) -> Iterable[SimLog]:
        """Logs of blocks lo..hi in chain order."""
        if hi - lo > len(self.logs):
            numbers: Iterable[int] = sorted(n for n in self.logs if lo <= n <= hi)
        else:
            numbers = range(lo, hi + 1)
        for number in numbers:
            yield from self.logs.get(number, ())

    def seconds_to_next_block(self, now: float) -> float | None:
        """How long until the next automatic block (None in manual mode)."""
        if self.block_time <= 0:
            return None
        return max(0.0, self.next_due - now)

    # ---- producing -----------------------------------------------------------------------------
    def advance(self, now: float, quiet: bool = False) -> int:
        """Produce every automatic block due by `now`; returns how many."""
        if self.block_time <= 0:
            return 0
        made = 0
        while self.next_due <= now:
            self._produce(int(self.next_due), quiet=quiet, until=self.next_due)
            self.next_due += self.block_time
            made += 1
        return made

    def set_block_time(self, seconds: float, now: float) -> None:
        """Switch between automatic blocks (`seconds` > 0) and blocks by hand (0)."""
        self.block_time = float(seconds)
        if self.block_time > 0:
            self.next_due = max(now, float(self.times[-1])) + self.block_time
        self.wake.set()

    def mine(self, count: int, now: float) -> list[int]:
        """Produce `count` blocks by hand at the current time (never before the last block)."""
        out = []
        for _ in range(count):
            ts = max(int(now), int(self.times[-1]))
            out.append(self._produce(ts, force=True))
        return out

    def _produce(self, ts: int, quiet: bool = False, force: bool = False,
                 until: float | None = None) -> int:
        ts = max(ts, int(self.times[-1]))
        self.times.append(ts)
        number = self.head
        limit = max(float(ts), until or 0.0)  # the block's exact production time (ts is whole s)
        due = [lg for lg in self.pending if force or lg.at <= limit]
        if due:
            self.pending = [lg for lg in self.pending if not (force or lg.at <= limit)]
            self.produced_at[number] = time.time()
            self._place(number, due)
            for lg in due:
                if lg.at == 0:  # moved here by a reorg: the Data API re-indexes it
                    for row in lg.rows:
                        row.timestamp = ts
        if not quiet:
            self._emit(ChainEvent("head", number))
            for lg in self.logs.get(number, ()):
                self._emit(ChainEvent("log", number, lg.as_json(self)))
        return number

    def _place(self, number: int, logs: list[SimLog], retime: bool = False) -> None:
        block = self.logs.setdefault(number, [])
        block.extend(logs)
        self._reindex(number)
        if retime:  # a reorg moved them: the Data API re-indexes them at the new block's time
            ts = self.timestamp(number)
            for lg in logs:
                for row in lg.rows:
                    row.timestamp = ts

    def _reindex(self, number: int) -> None:
        tx_order: dict[str, int] = {}
        for i, lg in enumerate(self.logs.get(number, [])):
            lg.block = number
            lg.log_index = i
            lg.tx_index = tx_order.setdefault(lg.tx_hash, len(tx_order))
        if number in self.logs and not self.logs[number]:
            del self.logs[number]

    def _emit(self, event: ChainEvent) -> None:
        self.events.append(event)
        if len(self.events) > MAX_EVENTS:
            del self.events[: len(self.events) - MAX_EVENTS]
        self.wake.set()

    def drain(self) -> list[ChainEvent]:
        """Events since the last drain (for the websocket broadcaster)."""
        out, self.events = self.events, []
        return out

    def add(self, logs: list[SimLog]) -> None:
        """Queue the logs of one transaction for the first block at or after their time."""
        if not logs:
            return
        at = logs[0].at
        if at < self.times[0]:
            return  # before the simulated chain began: the Data API alone knows it
        if at >= int(self.times[-1]):
            self.pending.extend(logs)
            self.wake.set()
            return
        index = bisect.bisect_left(self.times, int(-(-at // 1)))  # first block with ts >= at
        self._place(self.first + min(index, len(self.times) - 1), logs)

    # ---- reorgs --------------------------------------------------------------------------------
    def reorg(self, world: World, tx_hash: str, *, later: int = 1, drop: bool = False) -> dict[str, Any]:
        """Move a transaction's logs `later` blocks on (or drop them); new hashes from the fork."""
        tx = tx_hash.lower()
        fork = None
        for number in range(self.head, max(self.first, self.head - 10_000) - 1, -1):
            if any(lg.tx_hash == tx for lg in self.logs.get(number, ())):
                fork = number
                break
        if fork is None:
            raise ValueError(f"transaction {tx_hash} is in no block")
        for number in range(fork, self.head + 1):
            for lg in self.logs.get(number, ()):
                self._emit(ChainEvent("log", number, lg.as_json(self, removed=True)))
        moved = [lg for lg in self.logs[fork] if lg.tx_hash == tx]
        self.logs[fork] = [lg for lg in self.logs[fork] if lg.tx_hash != tx]
        self._reindex(fork)
        for number in range(fork, self.head + 1):
            self.epochs[number] = self.epochs.get(number, 0) + 1
        target = None
        if drop:
            dropped = {id(r) for lg in moved for r in lg.rows}
            world.rows = [r for r in world.rows if id(r) not in dropped]
            for wallet, rows in list(world.rows_by_wallet.items()):
                world.rows_by_wallet[wallet] = [r for r in rows if id(r) not in dropped]
        else:
            target = fork + max(1, int(later))
            fresh = [replace(lg, block=None) for lg in moved]
            for old, new in zip(moved, fresh, strict=True):
                new.rows = old.rows
            if target <= self.head:
                self._place(target, fresh, retime=True)
            else:
                for lg in fresh:
                    lg.at = 0
                self.pending.extend(fresh)
        self.reorgs += 1
        for number in range(fork, self.head + 1):
            self._emit(ChainEvent("head", number))
            for lg in self.logs.get(number, ()):
                self._emit(ChainEvent("log", number, lg.as_json(self)))
        return {"fork_block": fork, "to_block": target, "dropped": drop, "head": self.head}


# ---- logs of fills ------------------------------------------------------------------------------

def _units(amount: Decimal) -> int:
    return int((amount * 10**6).to_integral_value(rounding=ROUND_HALF_EVEN))


def fill_logs(world: World, rows: list[DataRow], exchange: str, at: float,
              fee_units: int = 0) -> list[SimLog]:
    """The OrderFilled logs of one match: a log per maker row, then the taker order's own log."""
    takers = [r for r in rows if r.taker]
    makers = [r for r in rows if not r.taker]
    if len(takers) != 1 or not makers:
        raise ValueError("a match has one taker row and at least one maker row")
    taker = takers[0]
    ex = exchange.lower()
    out: list[SimLog] = []
    paid = 0

    def order_hash(i: int, wallet: str) -> str:
        return "0x" + keccak(f"order:{taker.transaction_hash}:{i}:{wallet}".encode()).hex()

    for i, r in enumerate(makers):
        shares, usdc = _units(r.size), _units(r.size * r.price)
        paid += usdc
        out.append(SimLog(ex, r.transaction_hash, order_hash(i, r.proxy_wallet), r.proxy_wallet.lower(),
                          taker.proxy_wallet.lower(), r.side, r.token_id,
                          usdc if r.side == "BUY" else shares, shares if r.side == "BUY" else usdc,
                          0, at, [r]))
    shares = _units(taker.size)
    taker_amount = shares
    if taker.side == "BUY" and world.config.chain_taker_buy_reports_usdc:
        taker_amount = paid  # the unverified complementary-match layout (docs/POLYMARKET.md §8.1)
    out.append(SimLog(ex, taker.transaction_hash, order_hash(len(makers), taker.proxy_wallet),
                      taker.proxy_wallet.lower(),
                      ex, taker.side, taker.token_id,
                      paid if taker.side == "BUY" else shares,
                      taker_amount if taker.side == "BUY" else paid, fee_units, at, [taker]))
    return out


def record_fill(world: World, rows: list[DataRow], at: float, fee_units: int = 0) -> None:
    """Put the logs of one match's Data API rows on the chain."""
    if not rows:
        return
    market = world.by_token[rows[0].token_id]
    exchange, _version = market.exchange()
    world.chain.add(fill_logs(world, rows, exchange, at, fee_units))
