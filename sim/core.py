"""`Simulator`: the three services on free loopback ports plus the Python control API.

Every public method here is also reachable over HTTP as `POST /_sim/<method>` with the keyword
arguments as a JSON object (see `sim.control`), so in-process tests and a simulator running in
another process are driven the same way. Arguments are JSON-friendly: amounts and prices as
decimal strings (or numbers), addresses as hex strings.

Invariant: every method takes the world lock and applies due clock events first, exactly like an
HTTP request does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from sim import chain_tx_api, clob_api, control, data_api, engine, feeds, gamma_api, relayer_api, rpc_api, settlement
from sim.auth import issue_builder_key, issue_key
from sim.faults import FaultRegistry
from sim.http import ServiceApp, ServiceServer
from sim.orders import inspect_order
from sim.scenario import (
    RandomWalk,
    RandomWalkConfig,
    approve_all,
    load_scenario,
    read_scenario,
    resolve_token,
)
from sim.state import COLLATERAL, TRADE_TERMINAL, SimConfig, WalletRecord, World
from sim.units import MAX_UINT256, dec, fmt, fmt_base, to_base
from sim.verify import EXCHANGE_NAMES, checksum

F = TypeVar("F", bound=Callable[..., Any])
CONTROL_METHODS = control.CONTROL_METHODS  # the registry lives in sim.control (no import cycle)


def controlled(fn: F) -> F:
    """Run a control method under the world lock after applying due events; expose it over HTTP."""
    CONTROL_METHODS.add(fn.__name__)

    @functools.wraps(fn)
    def wrapper(self: Simulator, *args: Any, **kwargs: Any) -> Any:
        with self.world.lock:
            engine.refresh(self.world)
            return fn(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _levels(levels: Any) -> list[tuple[Decimal, int]]:
    return [(dec(p), to_base(dec(s))) for p, s in levels]


class Simulator:
    """A local, strict Polymarket: Data API, Gamma and CLOB V2 on 127.0.0.1."""

    def __init__(
        self,
        scenario: dict[str, Any] | str | Path | None = None,
        config: SimConfig | None = None,
        random_walk: RandomWalkConfig | None = None,
        data_port: int = 0,
        gamma_port: int = 0,
        clob_port: int = 0,
        rpc_port: int = 0,
        ws_port: int = 0,
        relayer_port: int = 0,
    ) -> None:
        self._scenario = (
            read_scenario(scenario) if isinstance(scenario, (str, Path)) else (scenario or {})
        )
        base = config or SimConfig()
        if "seed" in self._scenario and config is None:
            base.seed = int(self._scenario["seed"])
        delays = self._scenario.get("trade_delays") or {}
        if config is None and delays:
            base.mined_after = delays.get("mined_after", base.mined_after)
            base.confirmed_after = delays.get("confirmed_after", base.confirmed_after)
        if config is None and "chain_id" in self._scenario:
            base.chain_id = int(self._scenario["chain_id"])
        if config is None and "block_time" in self._scenario:
            base.block_time = float(self._scenario["block_time"])
        self._config_template = base
        self._random_walk_config = random_walk
        self.errors: list[str] = []
        self.faults = FaultRegistry()
        self.world = self._fresh_world()
        self.random_walk: RandomWalk | None = None
        apps = {
            "data": ServiceApp("data", data_api.build_router(), self, data_api.not_found),
            "gamma": ServiceApp("gamma", gamma_api.build_router(), self, gamma_api.not_found),
            "clob": ServiceApp(
                "clob", control.add_routes(clob_api.build_router()), self, clob_api.not_found
            ),
            "rpc": ServiceApp("rpc", rpc_api.build_router(), self, rpc_api.not_found),
            "relayer": ServiceApp("relayer", relayer_api.build_router(), self, relayer_api.not_found),
        }
        self._servers = {
            "data": ServiceServer(apps["data"], data_port),
            "gamma": ServiceServer(apps["gamma"], gamma_port),
            "clob": ServiceServer(apps["clob"], clob_port),
            "rpc": ServiceServer(apps["rpc"], rpc_port),
            "relayer": ServiceServer(apps["relayer"], relayer_port),
        }
        from sim.ws import WsNode

        self._ws = WsNode(self, ws_port)
        self._started = False

    def _fresh_world(self) -> World:
        cfg = SimConfig(**vars(self._config_template))
        world = World(cfg)
        with world.lock:
            load_scenario(world, self._scenario, world.clock.now())
        return world

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Simulator:
        """Start the three servers (and the random walk, if configured)."""
        if self._started:
            return self
        for server in self._servers.values():
            server.start()
        self._ws.start()
        if self._random_walk_config is not None:
            self.random_walk = RandomWalk(self, self._random_walk_config)
            self.random_walk.start()
        self._started = True
        return self

    def stop(self) -> None:
        """Stop everything and close the ports."""
        if self.random_walk is not None:
            self.random_walk.stop()
        if self._started:
            self._ws.stop()
            for server in self._servers.values():
                server.stop()
        self._started = False

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def data_url(self) -> str:
        """Data API base URL."""
        return self._servers["data"].url

    @property
    def gamma_url(self) -> str:
        """Gamma base URL."""
        return self._servers["gamma"].url

    @property
    def clob_url(self) -> str:
        """CLOB base URL (control routes live under /_sim/ here)."""
        return self._servers["clob"].url

    @property
    def rpc_url(self) -> str:
        """Polygon JSON-RPC (HTTP) URL."""
        return self._servers["rpc"].url

    @property
    def ws_url(self) -> str:
        """Polygon JSON-RPC websocket URL (eth_subscribe)."""
        return self._ws.url

    # ---- control: chain --------------------------------------------------------------------------
    @controlled
    def mine_blocks(self, count: int = 1) -> dict[str, Any]:
        """Produce `count` blocks now (with every pending log); works in automatic mode too."""
        numbers = self.world.chain.mine(int(count), self.world.clock.now())
        return {"blocks": numbers, "head": self.world.chain.head}

    @controlled
    def chain_head(self) -> dict[str, Any]:
        """The head block: number, hash, timestamp, and how many logs wait for a block."""
        chain = self.world.chain
        return {"number": chain.head, "hash": chain.block_hash(chain.head),
                "timestamp": chain.timestamp(chain.head), "pending_logs": len(chain.pending),
                "block_time": chain.block_time}

    @controlled
    def block_times(self, numbers: list[int]) -> dict[str, float]:
        """Wall time (epoch s) at which each of these blocks with logs was produced."""
        made = self.world.chain.produced_at
        return {str(n): made[int(n)] for n in numbers if int(n) in made}

    @controlled
    def chain_logs(self, tx_hash: str | None = None) -> list[dict[str, Any]]:
        """The OrderFilled logs on chain (optionally of one transaction), oldest first."""
        chain = self.world.chain
        return [lg.as_json(chain) for lg in chain.logs_in(chain.first, chain.head)
                if tx_hash is None or lg.tx_hash == tx_hash.lower()]

    @controlled
    def reorg(self, tx_hash: str, later: int = 1, drop: bool = False) -> dict[str, Any]:
        """Reorganise the chain: the transaction's logs move `later` blocks on (or are dropped
        with its Data API rows); every block from the fork to the head gets a new hash."""
        return self.world.chain.reorg(self.world, tx_hash, later=int(later), drop=bool(drop))

    @controlled
    def set_outage(self, service: str, down: bool = True) -> dict[str, Any]:
        """Take the Data API (`data`) or the RPC (`rpc`: HTTP 503 and websockets refused) down
        or back up."""
        if service not in ("data", "rpc"):
            raise ValueError("service must be data or rpc")
        setattr(self.world.config, f"{service}_down", bool(down))
        if service == "rpc" and down:
            self.world.chain.wake.set()
        return {"service": service, "down": bool(down)}

    @property
    def relayer_url(self) -> str:
        """Polymarket relayer base URL."""
        return self._servers["relayer"].url

    # ---- control: resolution, transactions, relayer ------------------------------------------
    @controlled
    def resolve_market(self, market: str, winner: str | None = None,
                       payouts: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resolve a market: `winner` (an outcome label or index) pays 1, the others 0; or give
        `payouts` per outcome label (e.g. {"Yes": "0.5", "No": "0.5"})."""
        m = self.world.market(market)
        if (winner is None) == (payouts is None):
            raise ValueError("give exactly one of winner or payouts")
        if winner is not None:
            won = resolve_token(self.world, m.key, str(winner))
            vector = {o.token_id: Decimal(1 if o.token_id == won else 0) for o in m.outcomes}
        else:
            assert payouts is not None
            vector = {resolve_token(self.world, m.key, str(k)): dec(v) for k, v in payouts.items()}
        return settlement.resolve(self.world, m, vector)

    @controlled
    def mine_transactions(self) -> list[dict[str, Any]]:
        """Mine every pending transaction (with `tx_mining="manual"`); their receipts."""
        return [chain_tx_api.mine(self.world, h) for h, rec in self.world.chain_txs.items()
                if rec["receipt"] is None]

    @controlled
    def chain_transactions(self) -> list[dict[str, Any]]:
        """Every transaction sent: hash, sender, nonce, target, receipt status (None: pending)."""
        return [{"hash": h, "sender": r["sender"], "nonce": r["nonce"], "to": r["to"],
                 "status": None if r["receipt"] is None else int(r["receipt"]["status"], 16),
                 "revert": r.get("revert")} for h, r in self.world.chain_txs.items()]

    @controlled
    def relayer_transactions(self) -> list[dict[str, Any]]:
        """Every relayer transaction, oldest first."""
        return [dict(t) for t in self.world.relayer_txs.values()]

    @controlled
    def redemptions(self, holder: str | None = None) -> list[dict[str, Any]]:
        """Every payout made by a redemption (holder, condition, shares and pUSD in base units)."""
        return [dict(r) for r in self.world.redemptions
                if holder is None or r["holder"] == holder.lower()]

    # ---- control: world ------------------------------------------------------------------------
    @controlled
    def reset(self) -> dict[str, Any]:
        """Back to the freshly loaded scenario: clock, faults, keys, orders, trades cleared."""
        self.faults.clear()
        fresh = self._fresh_world()
        lock = self.world.lock
        self.world.__dict__.update(fresh.__dict__)
        self.world.lock = lock
        if self.random_walk is not None:
            self.random_walk.stop()
            self.random_walk = RandomWalk(self, self._random_walk_config or RandomWalkConfig())
            self.random_walk.start()
        return {"ok": True}

    @controlled
    def now(self) -> float:
        """Simulated time, epoch seconds."""
        return self.world.clock.now()

    @controlled
    def set_clock(
        self,
        offset: float | None = None,
        advance: float | None = None,
        time: float | None = None,
        freeze: bool | None = None,
    ) -> dict[str, Any]:
        """Move the simulated clock: absolute `offset` from wall time, `advance` by seconds, or set
        `time`; `freeze=True` stops it, `freeze=False` lets it run."""
        clock = self.world.clock
        if offset is not None:
            clock.set_offset(offset)
        if time is not None:
            clock.set_time(time)
        if advance is not None:
            clock.advance(advance)
        if freeze is True:
            clock.freeze()
        elif freeze is False:
            clock.unfreeze()
        engine.refresh(self.world)
        return {"now": clock.now(), "offset": clock.offset}

    @controlled
    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change `SimConfig` fields at run time (e.g. mined_after=None for manual trade statuses,
        clob_page_size=2, trading_mode="cancel_only", deposit_wallet_only=True)."""
        for name, value in settings.items():
            if not hasattr(self.world.config, name):
                raise ValueError(f"unknown setting {name!r}")
            setattr(self.world.config, name, value)
            if name == "block_time":
                self.world.chain.set_block_time(float(value), self.world.clock.now())
        return dict(vars(self.world.config))

    @controlled
    def set_market(self, market: str, **changes: Any) -> dict[str, Any]:
        """Change a market: closed, accepting_orders, active, tick_size, min_size."""
        m = self.world.market(market)
        for name, value in changes.items():
            if name in ("tick_size", "min_size"):
                setattr(m, name, dec(value))
            elif name in ("closed", "accepting_orders", "active"):
                setattr(m, name, bool(value))
            else:
                raise ValueError(f"cannot change {name!r}")
        return {
            "key": m.key,
            "condition_id": m.condition_id,
            "closed": m.closed,
            "accepting_orders": m.accepting_orders,
            "tick_size": fmt(m.tick_size),
            "min_size": fmt(m.min_size),
        }

    @controlled
    def markets(self) -> list[dict[str, Any]]:
        """Every market with its outcome token ids."""
        return [
            {
                "key": m.key,
                "condition_id": m.condition_id,
                "version": m.version,
                "neg_risk": m.neg_risk,
                "tick_size": fmt(m.tick_size),
                "min_size": fmt(m.min_size),
                "closed": m.closed,
                "accepting_orders": m.accepting_orders,
                "tokens": {o.label: o.token_id for o in m.outcomes},
            }
            for m in self.world.markets.values()
        ]

    @controlled
    def token_id(self, market: str, outcome: str) -> str:
        """Token id of an outcome (label or index) of a market (key or condition id)."""
        return resolve_token(self.world, market, outcome)

    # ---- control: accounts ---------------------------------------------------------------------
    @controlled
    def create_api_key(self, address: str, nonce: int = 0) -> dict[str, str]:
        """Issue L2 credentials for an EOA without an L1 signature (test convenience)."""
        record = issue_key(self.world, address, int(nonce))
        return {"apiKey": record.api_key, "secret": record.secret, "passphrase": record.passphrase}

    @controlled
    def create_builder_key(self, builder_code: str) -> dict[str, str]:
        """Builder API credentials for a builder code (what polymarket.com's builder settings give)."""
        code = str(builder_code)
        if len(code) != 66 or not code.startswith("0x"):
            raise ValueError("builder_code must be 0x + 64 hex digits")
        record = issue_builder_key(self.world, code)
        return {"key": record.api_key, "secret": record.secret, "passphrase": record.passphrase}

    @controlled
    def heartbeats(self) -> dict[str, float]:
        """API keys whose heartbeat is armed, with the time of the last accepted send."""
        return {key: hb.last_accepted for key, hb in self.world.heartbeats.items()}

    @controlled
    def register_wallet(
        self,
        owner: str,
        wallet: str,
        kind: str = "deposit",
        session_signers: list[str] | None = None,
    ) -> dict[str, Any]:
        """Declare a proxy / Safe / deposit wallet owned by `owner` (and optional session keys)."""
        if kind not in WalletRecord.SIGNATURE_TYPES:
            raise ValueError("kind must be proxy, safe or deposit")
        owner_c, wallet_c = checksum(owner), checksum(wallet)
        signers = {owner_c.lower(), *(checksum(s).lower() for s in session_signers or [])}
        self.world.wallets[wallet_c.lower()] = WalletRecord(
            address=wallet_c, kind=kind, owner=owner_c, signers=signers
        )
        return {"wallet": wallet_c, "kind": kind, "owner": owner_c}

    @controlled
    def fund(
        self,
        address: str,
        pusd: Any = None,
        tokens: dict[str, Any] | None = None,
        approve: bool = True,
    ) -> dict[str, Any]:
        """Set pUSD and share balances (human units; token keys are ids or "market:Outcome") and,
        by default, grant every exchange unlimited approvals."""
        holder = checksum(address)
        if pusd is not None:
            self.world.ledger.set_balance(holder, COLLATERAL, to_base(dec(pusd)))
        for ref, amount in (tokens or {}).items():
            token = resolve_token(self.world, *ref.split(":", 1)) if ":" in ref else ref
            self.world.ledger.set_balance(holder, token, to_base(dec(amount)))
        if approve:
            approve_all(self.world, holder)
        return self._balances(holder)

    @controlled
    def set_allowance(
        self, address: str, asset_type: str, exchange: str, amount: Any
    ) -> dict[str, Any]:
        """Set one allowance in base units ("max" = unlimited) for an asset type and exchange."""
        units = MAX_UINT256 if amount == "max" else int(amount)
        self.world.ledger.set_allowance(checksum(address), asset_type, checksum(exchange), units)
        return self._balances(checksum(address))

    @controlled
    def balances(self, address: str) -> dict[str, Any]:
        """pUSD and share balances of an address, human units."""
        return self._balances(checksum(address))

    def _balances(self, holder: str) -> dict[str, Any]:
        return {
            "address": holder,
            "pusd": fmt_base(self.world.ledger.balance(holder, COLLATERAL)),
            "tokens": {t: fmt_base(v) for t, v in self.world.ledger.tokens_of(holder).items() if v},
        }

    @controlled
    def set_account_flags(
        self,
        address: str,
        closed_only: bool | None = None,
        banned: bool | None = None,
        require_deposit_wallet: bool | None = None,
    ) -> dict[str, Any]:
        """Put an EOA in closed-only mode, ban it, or force the deposit-wallet flow on it."""
        key = checksum(address).lower()
        for flag, target in (
            (closed_only, self.world.closed_only),
            (banned, self.world.banned),
            (require_deposit_wallet, self.world.require_deposit),
        ):
            if flag is True:
                target.add(key)
            elif flag is False:
                target.discard(key)
        return {
            "closed_only": key in self.world.closed_only,
            "banned": key in self.world.banned,
            "require_deposit_wallet": key in self.world.require_deposit,
        }

    # ---- control: market activity ------------------------------------------------------------
    @controlled
    def add_trader_fill(
        self,
        trader: str,
        market: str,
        outcome: str,
        side: str,
        size: Any,
        price: Any,
        at: float | None = None,
        in_seconds: float | None = None,
        role: str = "taker",
        parts: list[Any] | None = None,
        counterparties: int = 2,
        name: str | None = None,
    ) -> list[dict[str, Any]]:
        """A followed trader's fill, visible on the Data API at `at` (epoch s), `in_seconds` from
        now, or now. Returns the trader's own rows as /v2/activity prints them."""
        token = resolve_token(self.world, market, outcome)
        when = (
            at
            if at is not None
            else (self.world.clock.now() + in_seconds if in_seconds is not None else None)
        )
        if name is not None:
            from sim.state import Profile

            self.world.profiles[trader.lower()] = Profile(name=name)
        rows = feeds.add_trader_fill(
            self.world,
            checksum(trader),
            token,
            side,
            dec(size),
            dec(price),
            at=when,
            role=role,
            parts=[dec(p) for p in parts] if parts else None,
            counterparties=int(counterparties),
        )
        return [data_api.activity_row(self.world, r) for r in rows]

    @controlled
    def add_activity(
        self,
        trader: str,
        kind: str,
        market: str,
        size: Any,
        usdc_size: Any = None,
        at: float | None = None,
    ) -> dict[str, Any]:
        """A SPLIT / MERGE / REDEEM / ... row for a wallet."""
        row = feeds.add_activity(
            self.world,
            checksum(trader),
            kind,
            self.world.market(market).condition_id,
            dec(size),
            dec(usdc_size) if usdc_size is not None else None,
            at=at,
        )
        return data_api.activity_row(self.world, row)

    @controlled
    def add_combo_fill(
        self,
        trader: str,
        side: str,
        size: Any,
        price: Any,
        titles: list[str] | None = None,
        at: float | None = None,
    ) -> dict[str, Any]:
        """A combo (parlay) trade row (not copyable)."""
        row = feeds.add_combo_fill(
            self.world,
            checksum(trader),
            side,
            dec(size),
            dec(price),
            titles or ["Leg A", "Leg B"],
            at=at,
        )
        return data_api.activity_row(self.world, row)

    @controlled
    def set_book(
        self, token_id: str, bids: list[Any] | None = None, asks: list[Any] | None = None
    ) -> list[str]:
        """Replace synthetic liquidity ([[price, size], ...]; None keeps a side). Levels that cross
        resting user orders fill them first. Returns the ids of trades created."""
        trades = engine.set_book(
            self.world,
            str(token_id),
            bids=_levels(bids) if bids is not None else None,
            asks=_levels(asks) if asks is not None else None,
        )
        return [t.id for t in trades]

    @controlled
    def shift_book(self, token_id: str, ticks: int) -> list[str]:
        """Move all synthetic levels by `ticks` ticks (filling user orders crossed); trade ids."""
        return [t.id for t in engine.shift_book(self.world, str(token_id), int(ticks))]

    @controlled
    def sweep(self, token_id: str, side: str, price: Any, size: Any) -> list[str]:
        """A synthetic taker order of `size` shares up to `price` (hits user orders too)."""
        return [
            t.id
            for t in engine.sweep(self.world, str(token_id), side, dec(price), to_base(dec(size)))
        ]

    @controlled
    def book(self, token_id: str) -> dict[str, Any]:
        """The /book body of a token (even for a closed market)."""
        return clob_api.book_view(self.world, str(token_id))

    # ---- control: trades ---------------------------------------------------------------------
    @controlled
    def advance_trades(
        self, trade_id: str | None = None, to: str | None = None
    ) -> list[dict[str, Any]]:
        """Advance one trade (or every unfinished one) a step, or to `to`
        (MINED, CONFIRMED, RETRYING, FAILED). Returns the trades touched."""
        ids = (
            [trade_id]
            if trade_id
            else [t for t in self.world.trade_ids if t in self.world.pending_trades]
        )
        out = []
        for tid in ids:
            trade = self.world.trades[tid]
            if trade.status in TRADE_TERMINAL and trade_id is None:
                continue
            engine.advance_trade(self.world, trade, to)
            out.append(self._trade(trade.id))
        return out

    def _trade(self, trade_id: str) -> dict[str, Any]:
        t = self.world.trades[trade_id]
        return {
            "id": t.id,
            "status": t.status,
            "taker_order_id": t.taker_order_id,
            "taker_owner": t.taker_owner,
            "taker_address": t.taker_address,
            "side": t.side,
            "token_id": t.token_id,
            "size": fmt_base(t.size),
            "price": fmt(t.price),
            "transaction_hash": t.tx_hash,
            "match_time": t.match_time,
            "history": [[s, when] for s, when in t.history],
            "makers": [
                {
                    "order_id": m.order_id,
                    "owner": m.owner,
                    "maker_address": m.maker_address,
                    "matched_amount": fmt_base(m.shares),
                    "price": fmt(m.price),
                    "side": m.side,
                    "user": m.user,
                }
                for m in t.makers
            ],
        }

    @controlled
    def trades(self) -> list[dict[str, Any]]:
        """Every CLOB trade, oldest first, with status history."""
        return [self._trade(t) for t in self.world.trade_ids]

    @controlled
    def orders(self, owner: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Every accepted order with its verified fields (optionally one key's, one status)."""
        return [
            {
                **inspect_order(o),
                "exchange_name": EXCHANGE_NAMES.get(o.exchange.lower(), o.exchange),
            }
            for o in self.world.orders.values()
            if (owner is None or o.owner == owner) and (status is None or o.status == status)
        ]

    @controlled
    def request_counts(self) -> dict[str, int]:
        """Requests served since start, per "service METHOD path" (never trimmed)."""
        return dict(self.world.request_counts)

    @controlled
    def rejections(self) -> list[dict[str, Any]]:
        """Refused POST /order attempts (newest last)."""
        return list(self.world.rejections)

    @controlled
    def requests(self, service: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        """The request log (method, path, status), optionally filtered."""
        return [
            r
            for r in self.world.requests
            if (service is None or r["service"] == service) and (path is None or r["path"] == path)
        ]

    # ---- control: faults ---------------------------------------------------------------------
    def inject_fault(
        self,
        method: str,
        path: str,
        kind: str,
        count: int = 1,
        service: str = "clob",
        status: int | None = None,
        retry_after: int = 1,
        delay: float = 0.0,
    ) -> dict[str, Any]:
        """The next `count` requests to (service, method, path) fail as `kind`: 429, 5xx,
        accept_then_5xx, delay, drop or accept_then_drop. `path` may end in * for a prefix."""
        rule = self.faults.add(
            method,
            path,
            kind,
            count=count,
            service=service,
            status=status,
            retry_after=retry_after,
            delay=delay,
        )
        return {"id": rule.id, "kind": rule.kind, "remaining": rule.remaining}

    def clear_faults(self) -> dict[str, Any]:
        """Disarm every pending fault."""
        self.faults.clear()
        return {"ok": True}

    def pending_faults(self) -> list[dict[str, Any]]:
        """Faults still armed."""
        return self.faults.pending()


CONTROL_METHODS.update({"inject_fault", "clear_faults", "pending_faults"})
