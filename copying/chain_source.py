"""The chain source: followed wallets' fills read from the V2 exchanges' `OrderFilled` logs.

It follows the head (websocket newHeads when `POLYGON_WS` is set, else polling the latest block
every `CHAIN_POLL_INTERVAL`), reads the logs of the three exchanges whose maker topic is one of
this shard's followed funder wallets (chunked OR-lists, pre-serialized: the per-block cost does
not grow with the wallet count), decodes them into the same leader-fill shape as the Data API
rows (market by token through the market cache, the fill's time = its block's timestamp) and
feeds them to the same store-once + fan-out transaction (`store_fills(source="chain")`).

Invariants:
- the block cursor (last block fully read, with its hash) is per shard, persisted in the same
  transaction as the fills it covers; a first run starts at the head (no history);
- a query the provider finds too large is split (range first, then the wallet list) and the
  learned range cap is kept; 429s and errors back off (exponentially, honouring the provider's
  hint) and never retry in a tight loop;
- reorgs: the cursor's block hash is re-checked every step; on a mismatch the fork point is found
  among the last `CHAIN_REORG_DEPTH` processed blocks and the range after it is read again: a
  fill that reappears in another block is the same fill (same match key), one that does not is
  marked `chain_removed_at` and counted. With `CHAIN_CONFIRMATIONS` = n only blocks n deep are
  read, so a reorg shallower than n never reaches the store;
- a taker BUY event's share count is cross-checked against the maker events it matched in the
  same transaction (docs/POLYMARKET.md §8.1 leaves its layout unverified); when they disagree the makers'
  total is used, and when it cannot be checked the fill is left to the Data API;
- health: unhealthy before the first successful step, after `CHAIN_STALE_SECONDS` without a new
  block, or while its last step failed; the watcher then polls the Data API at full speed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from copying.intake import ChainRef, store_fills
from copying.markets import load_market, upsert_market
from copying.ports import MarketSource
from infra import metrics
from infra.config import Settings
from infra.db import session_scope, utcnow
from models import ChainCursor, Trader, TraderFill
from wire.chain import (
    ORDER_FILLED_TOPIC,
    LogDecodeError,
    OrderFilled,
    decode_order_filled,
    topic_for_address,
)
from wire.rpc import BlockHeader, Call, JsonRpcClient, RpcError, RpcErrorKind, logs_call, logs_filter_json
from wire.signing import exchange_addresses
from wire.types import Activity, MarketInfo, Side

log = logging.getLogger("pmct.chain")

MAX_CALLS_PER_STEP = 200  # eth_getLogs calls one step may send while catching up
FAILURES_UNHEALTHY = 1  # one failed step: the Data API polls at full speed until one succeeds
BACKOFF_BASE = 1.0
BACKOFF_MAX = 60.0


@dataclass(frozen=True)
class Followed:
    """A followed wallet of this shard."""

    trader_id: int
    wallet: str  # lowercase funder address


@dataclass
class StepResult:
    """What one step did."""

    head: int = 0
    from_block: int = 0
    to_block: int = 0
    logs: int = 0
    new_fills: int = 0
    queued: int = 0
    skipped: int = 0
    matched: int = 0
    deferred: int = 0
    reorged: bool = False
    calls: int = 0


@dataclass
class _Chunk:
    wallets: tuple[str, ...]
    filter_json: str


@dataclass
class Health:
    """The chain source's health as the watcher and `admin status` see it."""

    started: bool = False
    last_head: int | None = None
    last_head_change: float = 0.0  # monotonic
    failures: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    backoff_until: float = 0.0  # monotonic


class ReorgInFlight(Exception):
    """A block hash changed between two calls of one step: read again."""


class ChainSource:
    """Reads this shard's followed wallets' fills from the chain and stores them."""

    def __init__(self, settings: Settings, factory: sessionmaker[Session], client: MarketSource,
                 rpc: JsonRpcClient, shard: str, *, clock: Callable[[], datetime] = utcnow,
                 monotonic: Callable[[], float] = time.monotonic,
                 subscriber_factory: Callable[..., Any] | None = None) -> None:
        self.settings = settings
        self.factory = factory
        self.client = client
        self.rpc = rpc
        self.shard = shard
        self.clock = clock
        self.monotonic = monotonic
        self.exchanges = [a.lower() for a in exchange_addresses(settings.chain_id)]
        self.followed: dict[str, int] = {}
        self._chunks: list[_Chunk] = []
        self.chunk_size = settings.chain_wallet_chunk
        self.range_cap = settings.chain_max_block_range
        self.cursor: int | None = None
        self.cursor_hash: str | None = None
        self.recent: OrderedDict[int, str] = OrderedDict()  # processed block -> hash
        self.headers: OrderedDict[int, BlockHeader] = OrderedDict()  # header cache (ws + reads)
        self.health = Health()
        self.markets: dict[str, tuple[MarketInfo, str, int | None]] = {}
        self.running = False
        self.ws_connected = False
        self._head_event = asyncio.Event()
        self._ws_head: BlockHeader | None = None
        self._reorg_suspected = False
        self._subscriber_factory = subscriber_factory
        self._suspects: dict[int, str] = {}  # fill id -> block hash it had before a reorg
        self.totals: dict[str, int] = {}

    # ---- wallets -------------------------------------------------------------------------------
    def set_followed(self, followed: Iterable[Followed]) -> None:
        """This shard's followed wallets (called by every watcher cycle)."""
        mapping = {f.wallet.lower(): f.trader_id for f in followed}
        if mapping == self.followed:
            return
        self.followed = mapping
        self._rebuild_chunks()

    def _rebuild_chunks(self) -> None:
        wallets = sorted(self.followed)
        size = max(1, self.chunk_size)
        self._chunks = [self._chunk(tuple(wallets[i:i + size])) for i in range(0, len(wallets), size)]

    def _chunk(self, wallets: tuple[str, ...]) -> _Chunk:
        topics = [ORDER_FILLED_TOPIC, None, [topic_for_address(w) for w in wallets]]
        return _Chunk(wallets, logs_filter_json(self.exchanges, topics))

    # ---- health --------------------------------------------------------------------------------
    @property
    def healthy(self) -> bool:
        """True while blocks keep coming and calls succeed (the Data API may then slow down)."""
        h = self.health
        if not h.started or h.failures >= FAILURES_UNHEALTHY:
            return False
        return self.monotonic() - h.last_head_change <= self.settings.chain_stale_seconds

    @property
    def mode(self) -> str:
        """`ws` while the websocket delivers heads, else `poll`."""
        return "ws" if self.ws_connected else "poll"

    def _count(self, name: str, n: int = 1) -> None:
        self.totals[name] = self.totals.get(name, 0) + n

    def _failed(self, exc: BaseException) -> None:
        h = self.health
        h.failures += 1
        h.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
        h.last_error_at = self.clock()
        kind = exc.kind.value if isinstance(exc, RpcError) else "other"
        metrics.inc("chain_errors", kind=kind)
        self._count(f"error_{kind}")
        delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (h.failures - 1))
        if isinstance(exc, RpcError) and exc.retry_after is not None:
            delay = max(delay, min(BACKOFF_MAX * 5, exc.retry_after))
        h.backoff_until = self.monotonic() + random.uniform(delay / 2, delay)
        log.warning("chain source: %s (failure %d in a row; next try in ≤ %.0f s)",
                    h.last_error, h.failures, delay)
        self._save_health()

    def _save_health(self) -> None:
        try:
            with session_scope(self.factory) as s:
                row = s.get(ChainCursor, self.shard)
                if row is None:
                    return
                row.healthy = self.healthy
                row.mode = self.mode
                row.last_error, row.last_error_at = self.health.last_error, self.health.last_error_at
                row.updated_at = self.clock()
        except Exception:  # noqa: BLE001 - health bookkeeping must not hide the real error
            log.exception("chain source: could not record its health")

    # ---- following the head --------------------------------------------------------------------
    async def on_head(self, header: BlockHeader) -> None:
        """A websocket newHeads notification."""
        self._remember_header(header)
        known = self.recent.get(header.number)
        if known is not None and known != header.hash:
            self._reorg_suspected = True
        if self._ws_head is None or header.number >= self._ws_head.number or known is not None:
            self._ws_head = header
        self._head_event.set()

    async def on_ws_connect(self) -> None:
        """(Re)subscribed: read over HTTP whatever was missed while disconnected."""
        self.ws_connected = True
        self._head_event.set()

    def _remember_header(self, header: BlockHeader) -> None:
        self.headers[header.number] = header
        self.headers.move_to_end(header.number)
        while len(self.headers) > 4 * self.settings.chain_reorg_depth + 16:
            self.headers.popitem(last=False)

    async def run(self, stop: asyncio.Event, may_run: Callable[[], bool] = lambda: True) -> None:
        """Follow the head until `stop` (the watcher runs this beside its Data API cycles)."""
        self.running = True
        sub_task: asyncio.Task[None] | None = None
        if self.settings.polygon_ws and self._subscriber_factory is not None:
            subscriber = self._subscriber_factory(self.settings.polygon_ws, on_head=self.on_head,
                                                  on_connect=self.on_ws_connect)
            sub_task = asyncio.create_task(subscriber.run(stop))
        else:
            subscriber = None
        inflight = 0
        try:
            while not stop.is_set():
                wait = self.settings.chain_poll_interval
                if subscriber is not None:
                    self.ws_connected = bool(subscriber.connected)
                    if self.ws_connected:
                        wait = max(wait, 10.0)  # HTTP check only as a safety net
                backoff = self.health.backoff_until - self.monotonic()
                if backoff > 0:
                    await _wait(stop, None, backoff)
                    continue
                if not may_run():
                    await _wait(stop, None, 1.0)
                    continue
                try:
                    await self.step(self._take_ws_head())
                    inflight = 0
                except ReorgInFlight as exc:
                    self._reorg_suspected = True
                    inflight += 1
                    if inflight >= 3:  # nodes behind a balancer that disagree: back off
                        inflight = 0
                        self._failed(exc)
                    else:
                        await _wait(stop, None, 0.2)
                    continue
                except (RpcError, LogDecodeError, OSError) as exc:
                    self._failed(exc)
                    continue
                except Exception as exc:  # noqa: BLE001 - keep following; the error is recorded
                    log.exception("chain source step failed")
                    self._failed(exc)
                    continue
                await _wait(stop, self._head_event if subscriber is not None else None, wait)
        finally:
            self.running = False
            if sub_task is not None:
                sub_task.cancel()
                try:
                    await sub_task
                except (asyncio.CancelledError, Exception):  # noqa: BLE001, S110
                    pass

    def _take_ws_head(self) -> BlockHeader | None:
        head, self._ws_head = self._ws_head, None
        self._head_event.clear()
        return head if self.ws_connected else None

    # ---- one step ------------------------------------------------------------------------------
    async def step(self, head: BlockHeader | None = None) -> StepResult:
        """Read from the cursor to the (confirmed) head once; store what it finds.

        `head` comes from the websocket (its header cache is then current: newHeads re-sends the
        replaced heights after a reorg); without it one batch reads the latest block and the
        cursor's block, whose hash must not have changed.
        """
        result = StepResult()
        if self.cursor is None:
            self._load_cursor_row()
            if self.cursor is None and not self.followed:
                return result  # the first run starts once it knows its traders (see _start_at)
        cursor_header: BlockHeader | None = None
        if head is None:
            calls = [Call.of("eth_getBlockByNumber", ["latest", False])]
            if self.cursor is not None and self.cursor_hash:
                calls.append(Call.of("eth_getBlockByNumber", [hex(self.cursor), False]))
            answers = await self.rpc.batch(calls)
            result.calls += len(calls)
            for ans in answers:
                if isinstance(ans, RpcError):
                    raise ans
            if answers[0] is None:
                raise RpcError(RpcErrorKind.OTHER, "the node has no latest block")
            head = BlockHeader.from_json(answers[0])
            if len(answers) > 1:
                if answers[1] is None:
                    self._reorg_suspected = True
                else:
                    cursor_header = BlockHeader.from_json(answers[1])
        self._remember_header(head)
        self._saw_head(head)
        result.head = head.number
        if self.cursor is None:
            self._start_at(head)
        assert self.cursor is not None
        target = head.number - self.settings.chain_confirmations
        if cursor_header is not None:
            self._remember_header(cursor_header)
            if cursor_header.hash != self.cursor_hash:
                self._reorg_suspected = True
        elif self.cursor_hash is not None and self.cursor < head.number and not self._reorg_suspected:
            known = self.headers.get(self.cursor)
            if known is None:
                node = await self.rpc.block(self.cursor)
                result.calls += 1
                if node is None:
                    self._reorg_suspected = True
                else:
                    self._remember_header(node)
                    known = node
            if known is not None and known.hash != self.cursor_hash:
                self._reorg_suspected = True
        if self._reorg_suspected or not self._cursor_still_canonical(head):
            result.reorged = await self._rewind(result)
        start = self.cursor + 1
        result.from_block = start
        if target < start:
            self._persist([], target_header=None, result=result)
            self._succeeded()
            return result
        budget = MAX_CALLS_PER_STEP
        lo = start
        while lo <= target and budget > 0:
            hi = min(target, lo + self.range_cap - 1)
            logs, hi, sent = await self._read_window(lo, hi)
            budget -= sent
            result.calls += sent
            await self._process(logs, lo, hi, result)
            lo = hi + 1
        if self._suspects and lo > target:
            self.settle_reorg()
        self._succeeded()
        return result

    def _succeeded(self) -> None:
        self._count("steps")
        self.health.failures = 0
        self.health.last_error = None

    def _saw_head(self, head: BlockHeader) -> None:
        h = self.health
        if h.last_head is None or head.number > h.last_head:
            h.last_head = head.number
            h.last_head_change = self.monotonic()
        h.started = True

    def _cursor_still_canonical(self, head: BlockHeader) -> bool:
        """False when the head is the cursor's height with another hash (deeper: checked apart)."""
        if self.cursor is None or self.cursor_hash is None or head.number != self.cursor:
            return True
        return head.hash == self.cursor_hash

    def _load_cursor_row(self) -> None:
        with session_scope(self.factory) as s:
            row = s.get(ChainCursor, self.shard)
            if row is not None:
                self.cursor, self.cursor_hash = row.block_number, row.block_hash or None
        if self.cursor is not None and self.cursor_hash:
            self.recent[self.cursor] = self.cursor_hash

    def _start_at(self, head: BlockHeader) -> None:
        """First run of this shard: the cursor starts at the (confirmed) head, no history.

        The chain covers nothing before this block, so the shard's traders are marked as never
        polled in the same transaction: their next Data API poll is due at once (not after
        `DATA_API_SLOW_INTERVAL`) and reads the fills between their last poll and this block.
        """
        start = head.number - self.settings.chain_confirmations
        header_hash = head.hash if start == head.number else ""
        with session_scope(self.factory) as s:
            s.add(ChainCursor(shard=self.shard, block_number=start, block_hash=header_hash,
                              head_number=head.number, head_seen_at=self.clock(),
                              mode=self.mode, healthy=True, updated_at=self.clock()))
            if self.followed:
                s.execute(update(Trader).where(Trader.id.in_(sorted(set(self.followed.values()))))
                          .values(last_polled_at=None))
        self.cursor, self.cursor_hash = start, header_hash or None
        if header_hash:
            self.recent[start] = header_hash
        log.info("chain source: first run of shard %s, starting at block %d (no history)",
                 self.shard, start)

    async def _read_window(self, lo: int, hi: int) -> tuple[list[OrderFilled], int, int]:
        """All matching logs of blocks lo..hi' (hi' ≤ hi after range splits); calls sent."""
        calls_sent = 0
        while True:
            try:
                logs, calls = await self._query_chunks(lo, hi, self._chunks)
                return logs, hi, calls_sent + calls
            except _Shrink as shrink:
                calls_sent += shrink.calls
                if shrink.kind is RpcErrorKind.RANGE_TOO_LARGE or hi > lo:
                    new_hi = shrink.new_hi(lo, hi)
                    if shrink.kind is RpcErrorKind.RANGE_TOO_LARGE:
                        self.range_cap = max(1, new_hi - lo + 1)
                        log.info("chain source: provider caps eth_getLogs ranges; now %d blocks",
                                 self.range_cap)
                    self._count("range_splits")
                    hi = new_hi
                    continue
                # one block and still too many results: split the wallet lists
                if self.chunk_size <= 1:
                    raise RpcError(RpcErrorKind.TOO_MANY_RESULTS,
                                   f"block {lo} has too many logs for one wallet") from None
                self.chunk_size = max(1, self.chunk_size // 2)
                self._rebuild_chunks()
                self._count("list_splits")
                log.info("chain source: too many results in one block; wallet lists of %d now",
                         self.chunk_size)

    async def _query_chunks(self, lo: int, hi: int,
                            chunks: Sequence[_Chunk]) -> tuple[list[OrderFilled], int]:
        if not chunks:
            return [], 0
        calls = [logs_call(c.filter_json, lo, hi) for c in chunks]
        results: list[Any] = []
        batch = max(1, self.settings.chain_rpc_batch)
        for i in range(0, len(calls), batch):
            results += await self.rpc.batch(calls[i:i + batch])
        out: list[OrderFilled] = []
        for chunk, res in zip(chunks, results, strict=True):
            if isinstance(res, RpcError):
                if res.kind in (RpcErrorKind.RANGE_TOO_LARGE, RpcErrorKind.TOO_MANY_RESULTS):
                    raise _Shrink(res, len(calls))
                if res.kind is RpcErrorKind.OTHER and _looks_like_filter_cap(str(res)):
                    raise _Shrink(RpcError(RpcErrorKind.TOO_MANY_RESULTS, str(res)), len(calls))
                raise res
            if not isinstance(res, list):
                raise RpcError(RpcErrorKind.OTHER, "eth_getLogs result is not a list")
            for raw in res:
                try:
                    decoded = decode_order_filled(raw, self.exchanges)
                except LogDecodeError as exc:
                    log.warning("chain source: an undecodable log was ignored: %s", exc)
                    self._count("undecodable")
                    continue
                if decoded.maker in chunk.wallets and not decoded.removed:
                    out.append(decoded)
        return out, len(calls)

    async def _headers_for(self, numbers: set[int]) -> dict[int, BlockHeader]:
        missing = sorted(n for n in numbers if n not in self.headers)
        if missing:
            answers = await self.rpc.batch([Call.of("eth_getBlockByNumber", [hex(n), False])
                                            for n in missing])
            for n, ans in zip(missing, answers, strict=True):
                if isinstance(ans, RpcError):
                    raise ans
                if ans is None:
                    raise ReorgInFlight(f"block {n} is gone")
                self._remember_header(BlockHeader.from_json(ans))
        return {n: self.headers[n] for n in numbers}

    async def _process(self, logs: list[OrderFilled], lo: int, hi: int, result: StepResult) -> None:
        result.to_block = hi
        result.logs += len(logs)
        numbers = {lg.block_number for lg in logs} | {hi}
        headers = await self._headers_for(numbers)
        for lg in logs:
            if headers[lg.block_number].hash != lg.block_hash:
                raise ReorgInFlight(f"block {lg.block_number} changed while reading it")
        logs = await self._verify_taker_buys(logs, result)
        rows = await self._to_rows(logs, headers, result)
        self._persist(rows, target_header=headers[hi], result=result)

    async def _verify_taker_buys(self, logs: list[OrderFilled],
                                 result: StepResult) -> list[OrderFilled]:
        """Check each taker BUY's share count against the maker events it matched (§8.1)."""
        suspects = [lg for lg in logs if lg.is_taker_order and lg.side is Side.BUY]
        if not suspects:
            return logs
        calls = [Call.of("eth_getLogs", [{
            "blockHash": lg.block_hash, "address": lg.exchange,
            "topics": [ORDER_FILLED_TOPIC, None, None, topic_for_address(lg.maker)]}])
            for lg in suspects]
        try:
            answers = await self.rpc.batch(calls)
        except RpcError as exc:
            answers = [exc] * len(calls)
        result.calls += len(calls)
        fixed: dict[tuple[str, int], OrderFilled | None] = {}
        for lg, ans in zip(suspects, answers, strict=True):
            legs: list[OrderFilled] = []
            if isinstance(ans, list):
                for raw in ans:
                    try:
                        leg = decode_order_filled(raw, self.exchanges)
                    except LogDecodeError:
                        continue
                    if leg.transaction_hash == lg.transaction_hash and leg.log_index < lg.log_index:
                        legs.append(leg)
            total = sum(leg.share_units for leg in legs)
            if legs and total == lg.share_units:
                continue
            if legs and 0 < lg.usdc_units <= total:  # the makers' total gives a price ≤ 1
                log.warning("chain source: taker BUY %s#%d reports %d share units, its makers %d; "
                            "using the makers' total", lg.transaction_hash, lg.log_index,
                            lg.share_units, total)
                self._count("taker_rows_corrected")
                fixed[lg.identity] = _with_shares(lg, total)
            else:
                log.warning("chain source: taker BUY %s#%d could not be checked; left to the "
                            "Data API", lg.transaction_hash, lg.log_index)
                result.deferred += 1
                self._count("deferred")
                fixed[lg.identity] = None
        out = []
        for lg in logs:
            if lg.identity in fixed:
                replacement = fixed[lg.identity]
                if replacement is not None:
                    out.append(replacement)
            else:
                out.append(lg)
        return out

    async def _market(self, token_id: str) -> tuple[MarketInfo, str, int | None] | None:
        cached = self.markets.get(token_id)
        if cached is not None:
            return cached
        with session_scope(self.factory) as s:
            info = load_market(s, token_id=token_id)
        if info is None:
            try:
                info = await self.client.get_market_info(token_id=token_id)
            except Exception as exc:  # noqa: BLE001 - the Data API brings the fill otherwise
                log.warning("chain source: market of token %s unknown (%s); its fills are left "
                            "to the Data API", token_id[:16], exc)
                return None
            with session_scope(self.factory) as s:
                upsert_market(s, info, self.clock())
        tok = info.token(token_id)
        if tok is None:
            return None
        entry = (info, tok.outcome, tok.outcome_index)
        self.markets[token_id] = entry
        return entry

    async def _to_rows(self, logs: list[OrderFilled], headers: Mapping[int, BlockHeader],
                       result: StepResult) -> list[tuple[int, Activity, ChainRef]]:
        out = []
        for lg in sorted(logs, key=lambda x: (x.block_number, x.log_index)):
            trader_id = self.followed.get(lg.maker)
            if trader_id is None:
                continue
            market = await self._market(lg.token_id)
            if market is None:
                result.deferred += 1
                self._count("deferred")
                continue
            info, outcome, outcome_index = market
            when = datetime.fromtimestamp(headers[lg.block_number].timestamp, UTC)
            row = Activity(
                proxy_wallet=lg.maker, timestamp=when, type="TRADE", condition_id=info.condition_id,
                token_id=lg.token_id, side=lg.side, size=lg.shares, price=lg.price,
                usdc_size=lg.usdc, transaction_hash=lg.transaction_hash, outcome=outcome,
                outcome_index=outcome_index, title=info.question, slug="", event_slug="",
                is_combo=False, raw=_raw(lg))
            out.append((trader_id, row, ChainRef(lg.block_number, lg.block_hash, lg.log_index)))
        return out

    def _persist(self, rows: list[tuple[int, Activity, ChainRef]], *,
                 target_header: BlockHeader | None, result: StepResult) -> None:
        """Store the fills and move the cursor, in one transaction."""
        now = self.clock()
        by_trader: dict[int, list[tuple[Activity, ChainRef]]] = {}
        for trader_id, row, ref in rows:
            by_trader.setdefault(trader_id, []).append((row, ref))
        with session_scope(self.factory) as s:
            for trader_id, items in by_trader.items():
                stored = store_fills(s, trader_id, [r for r, _ in items], now=now,
                                     max_copy_delay=timedelta(seconds=self.settings.max_copy_delay),
                                     source="chain", chain_refs=[ref for _, ref in items])
                result.new_fills += stored.new_fills
                result.queued += stored.queued
                result.skipped += stored.skipped
                result.matched += stored.matched
            cursor = s.get(ChainCursor, self.shard, with_for_update=True)
            if cursor is None:
                raise RuntimeError("chain cursor row vanished")
            if target_header is not None:
                cursor.block_number, cursor.block_hash = target_header.number, target_header.hash
            cursor.head_number = self.health.last_head
            cursor.head_seen_at = now
            cursor.mode = self.mode
            cursor.healthy = True
            cursor.updated_at = now
        if target_header is not None:
            self.cursor, self.cursor_hash = target_header.number, target_header.hash
            self.recent[target_header.number] = target_header.hash
            while len(self.recent) > self.settings.chain_reorg_depth:
                self.recent.popitem(last=False)
        if rows:
            metrics.inc("fills_detected", result.new_fills)
            metrics.inc("copies_queued", result.queued)
            self._count("fills", result.new_fills)
            self._count("matched", result.matched)
            if result.new_fills:
                delay = (now - min(r.timestamp for _, r, _ in rows)).total_seconds()
                metrics.observe("detection_delay_seconds", max(0.0, delay))

    async def _rewind(self, result: StepResult) -> bool:
        """Find the fork point among the recent blocks and move the cursor back to it."""
        self._reorg_suspected = False
        known = sorted(self.recent.items(), reverse=True)
        if not known:
            return False
        answers = await self.rpc.batch([Call.of("eth_getBlockByNumber", [hex(n), False])
                                        for n, _ in known])
        result.calls += len(known)
        fork: int | None = None
        for (n, h), ans in zip(known, answers, strict=True):
            if isinstance(ans, RpcError):
                raise ans
            if ans is not None:
                header = BlockHeader.from_json(ans)
                self._remember_header(header)
                if header.hash == h:
                    fork = n
                    break
        if fork == known[0][0]:
            return False  # nothing changed after all
        if fork is None:
            fork = known[-1][0] - 1
            log.warning("chain source: reorg deeper than the %d blocks kept; reading again from %d",
                        len(known), fork + 1)
        for n in [n for n in self.recent if n > fork]:
            del self.recent[n]
        for n in [n for n in self.headers if n > fork]:
            del self.headers[n]  # replaced heights: read them again
        fork_hash = self.recent.get(fork) or ""
        suspects = self._fills_after(fork)
        self.cursor, self.cursor_hash = fork, fork_hash or None
        with session_scope(self.factory) as s:
            s.execute(update(ChainCursor).where(ChainCursor.shard == self.shard)
                      .values(block_number=fork, block_hash=fork_hash))
        self._suspects.update(suspects)
        metrics.inc("chain_reorgs")
        self._count("reorgs")
        log.warning("chain source: reorg; reading again from block %d (%d stored fill(s) to "
                    "re-find)", fork + 1, len(suspects))
        return True

    def _fills_after(self, block: int) -> dict[int, str]:
        t = TraderFill.__table__.c
        with session_scope(self.factory) as s:
            rows = s.execute(select(t.id, t.block_hash).where(
                t.block_number > block, t.seen_by_chain_at.isnot(None),
                t.chain_removed_at.is_(None),
                t.trader_id.in_(sorted(set(self.followed.values())) or [-1]))).all()
        return {fid: h for fid, h in rows if h}

    def settle_reorg(self) -> int:
        """Fills from a replaced branch not found again once the cursor is past them: removed."""
        if not self._suspects or self.cursor is None:
            return 0
        t = TraderFill.__table__.c
        removed = 0
        with session_scope(self.factory) as s:
            rows = s.execute(select(t.id, t.block_hash, t.block_number, t.transaction_hash)
                             .where(t.id.in_(sorted(self._suspects)))).all()
            for fid, block_hash, block_number, tx in rows:
                if block_number is not None and block_number > self.cursor:
                    continue  # not read again yet
                if block_hash == self._suspects[fid]:
                    s.execute(update(TraderFill).where(TraderFill.id == fid)
                              .values(chain_removed_at=self.clock()))
                    removed += 1
                    log.warning("chain source: fill %d (tx %s) was reorganised away and not "
                                "found again; its copies stand, the Data API is the arbiter",
                                fid, tx)
                self._suspects.pop(fid, None)
        if removed:
            metrics.inc("chain_fills_removed", removed)
            self._count("removed", removed)
        return removed


class _Shrink(Exception):
    """A query too large: shrink it and try again."""

    def __init__(self, error: RpcError, calls: int) -> None:
        super().__init__(str(error))
        self.kind = error.kind
        self.error = error
        self.calls = calls

    def new_hi(self, lo: int, hi: int) -> int:
        """The end of the smaller range to try next."""
        half = lo + (hi - lo + 1) // 2 - 1
        candidates = [max(lo, half)]
        if self.error.limit and self.kind is RpcErrorKind.RANGE_TOO_LARGE:
            candidates.append(lo + self.error.limit - 1)
        if self.error.suggested_to is not None and lo <= self.error.suggested_to < hi:
            candidates.append(self.error.suggested_to)
        return max(lo, min(candidates))


def _looks_like_filter_cap(message: str) -> bool:
    text = message.lower()
    return any(p in text for p in ("too many parameters", "too many topics", "too many addresses",
                                   "filter too large", "parameters in a single request"))


def _with_shares(lg: OrderFilled, share_units: int) -> OrderFilled:
    return replace(lg, taker_amount=share_units)  # BUY: taker amount = shares


def _raw(lg: OrderFilled) -> dict[str, Any]:
    return {"source": "chain", "exchange": lg.exchange, "block_number": lg.block_number,
            "block_hash": lg.block_hash, "log_index": lg.log_index, "order_hash": lg.order_hash,
            "maker": lg.maker, "taker": lg.taker, "side": lg.side.value,
            "maker_amount": str(lg.maker_amount), "taker_amount": str(lg.taker_amount),
            "fee": str(lg.fee), "builder": lg.builder}


async def _wait(stop: asyncio.Event, event: asyncio.Event | None, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait())]
    if event is not None:
        waiters.append(asyncio.ensure_future(event.wait()))
    try:
        await asyncio.wait(waiters, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


