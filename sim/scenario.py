"""Scenario loading (markets, books, traders, follower accounts, scripted fills) and the
random-walk trader generator.

A scenario is JSON (see scenarios/demo.json). Times: `at` is seconds from the moment the
scenario is loaded (negative = history), `at_time` an absolute epoch second.

Invariant: loading the same scenario with the same seed yields the same markets, token ids,
keys, transaction hashes and rows (only the load time shifts timestamps).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_hash.auto import keccak

from sim import engine, feeds
from sim.state import COLLATERAL, FeeSchedule, Market, Outcome, Profile, WalletRecord, World
from sim.units import MAX_UINT256, dec, to_base
from sim.verify import CTF_EXCHANGE_V2, EXCHANGE_V3, NEG_RISK_EXCHANGE_V2, checksum
from wire.ticks import floor_to_tick, in_price_range

if TYPE_CHECKING:
    from sim.core import Simulator


class ScenarioError(ValueError):
    """The scenario file is malformed."""


def read_scenario(path: str | Path) -> dict[str, Any]:
    """Parse a scenario file."""
    import json

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ScenarioError("a scenario is a JSON object")
    return data


def derive_condition_id(key: str, version: str, neg_risk: bool) -> str:
    """A stable condition id for a scenario market without one (31-byte structural id for v2)."""
    h = keccak(f"pmct-sim-market:{key}".encode())
    if version == "v1":
        return "0x" + h.hex()
    module = b"\x02" if neg_risk else b"\x01"
    return "0x" + (module + h[:18] + b"\x00" * 8 + h[18:22]).hex()


def derive_token_id(condition_id: str, version: str, index: int) -> str:
    """Outcome id: keccak-derived CTF token id (v1) or positionId = cid << 8 | index (v2)."""
    if version == "v2":
        return str((int(condition_id, 16) << 8) | index)
    return str(int.from_bytes(keccak(bytes.fromhex(condition_id[2:]) + bytes([index])), "big"))


def approve_all(world: World, address: str) -> None:
    """Unlimited pUSD approval to every exchange and share approvals to the right ones."""
    for exchange in (CTF_EXCHANGE_V2, NEG_RISK_EXCHANGE_V2, EXCHANGE_V3):
        world.ledger.set_allowance(address, COLLATERAL, exchange, MAX_UINT256)
    for exchange in (CTF_EXCHANGE_V2, NEG_RISK_EXCHANGE_V2):
        world.ledger.set_allowance(address, "CONDITIONAL", exchange, MAX_UINT256)
    world.ledger.set_allowance(address, "CONDITIONAL-V2", EXCHANGE_V3, MAX_UINT256)


def _levels(raw: Any) -> list[tuple[Decimal, int]]:
    if not isinstance(raw, list):
        raise ScenarioError("book levels are [[price, size], ...]")
    return [(dec(p), to_base(dec(s))) for p, s in raw]


def build_market(spec: dict[str, Any]) -> Market:
    """A `Market` from its scenario entry."""
    try:
        key = str(spec["key"])
        version = spec.get("version", "v1")
        if version not in ("v1", "v2"):
            raise ScenarioError(f"market {key}: version must be v1 or v2")
        neg_risk = bool(spec.get("neg_risk", False))
        cid = spec.get("condition_id") or derive_condition_id(key, version, neg_risk)
        raw_outcomes = spec.get("outcomes", ["Yes", "No"])
        outcomes = []
        for i, o in enumerate(raw_outcomes):
            label = o["label"] if isinstance(o, dict) else str(o)
            token = (o.get("token_id") if isinstance(o, dict) else None) or derive_token_id(
                cid, version, i
            )
            outcomes.append(Outcome(token_id=str(token), label=label, index=i))
        fees = spec.get("fees")
        event = spec.get("event", {})
        return Market(
            key=key,
            condition_id=cid,
            question=spec.get("question", key),
            slug=spec.get("slug", key),
            version=version,
            neg_risk=neg_risk,
            tick_size=dec(spec.get("tick_size", "0.01")),
            min_size=dec(spec.get("min_size", "5")),
            outcomes=outcomes,
            accepting_orders=bool(spec.get("accepting_orders", True)),
            closed=bool(spec.get("closed", False)),
            active=bool(spec.get("active", True)),
            gamma_id=str(spec.get("gamma_id", "")),
            event_id=str(event.get("id", "")),
            event_slug=event.get("slug", ""),
            event_title=event.get("title", ""),
            end_date=spec.get("end_date", ""),
            icon=spec.get("icon", ""),
            category=spec.get("category", ""),
            description=spec.get("description", ""),
            question_id=spec.get("question_id", ""),
            neg_risk_market_id=spec.get("neg_risk_market_id", ""),
            fees=None
            if not fees
            else FeeSchedule(
                rate=dec(fees["rate"]),
                exponent=dec(fees.get("exponent", 1)),
                taker_only=bool(fees.get("taker_only", True)),
                rebate_rate=dec(fees.get("rebate_rate", 0)),
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ScenarioError(f"bad market entry {spec!r}: {exc}") from exc


def resolve_token(world: World, market_key: str, outcome: str) -> str:
    """Token id of `outcome` (label or index) in market `market_key`."""
    market = world.market(market_key)
    for o in market.outcomes:
        if o.label == outcome or str(o.index) == str(outcome) or o.token_id == str(outcome):
            return o.token_id
    raise ScenarioError(f"market {market_key} has no outcome {outcome!r}")


def _token_ref(world: World, ref: str) -> str:
    if ":" in ref:
        market_key, outcome = ref.split(":", 1)
        return resolve_token(world, market_key, outcome)
    if ref not in world.by_token:
        raise ScenarioError(f"unknown token {ref!r}")
    return ref


def load_scenario(world: World, data: dict[str, Any], start: float) -> None:
    """Populate an empty world from a scenario (caller holds the lock)."""
    traders: dict[str, str] = {}
    for spec in data.get("markets", []):
        market = build_market(spec)
        world.add_market(market)
        for label, book in (spec.get("books") or {}).items():
            token = resolve_token(world, market.key, label)
            engine.set_book(
                world, token, bids=_levels(book.get("bids", [])), asks=_levels(book.get("asks", []))
            )
    for spec in data.get("traders", []):
        address = checksum(spec["address"])
        traders[str(spec.get("key", address))] = address
        world.profiles[address.lower()] = Profile(
            name=spec.get("name", ""),
            pseudonym=spec.get("pseudonym", ""),
            bio=spec.get("bio", ""),
            profile_image=spec.get("profile_image", ""),
            profile_image_optimized=spec.get("profile_image_optimized", ""),
        )
    for spec in data.get("accounts", []):
        load_account(world, spec)

    def when(item: dict[str, Any]) -> float:
        if "at_time" in item:
            return float(item["at_time"])
        return start + float(item.get("at", 0))

    def wallet(item: dict[str, Any]) -> str:
        ref = str(item.get("trader", ""))
        if ref in traders:
            return traders[ref]
        return checksum(ref)

    for item in data.get("fills", []):
        try:
            feeds.add_trader_fill(
                world,
                wallet(item),
                resolve_token(world, item["market"], item["outcome"]),
                item["side"],
                dec(item["size"]),
                dec(item["price"]),
                at=when(item),
                role=item.get("role", "taker"),
                parts=[dec(p) for p in item["parts"]] if "parts" in item else None,
                counterparties=int(item.get("counterparties", 2)),
            )
        except (KeyError, ValueError) as exc:
            raise ScenarioError(f"bad fill {item!r}: {exc}") from exc
    for item in data.get("activities", []):
        market = world.market(item["market"])
        feeds.add_activity(
            world,
            wallet(item),
            item["type"],
            market.condition_id,
            dec(item["size"]),
            dec(item["usdc_size"]) if "usdc_size" in item else None,
            at=when(item),
        )
    for item in data.get("combos", []):
        feeds.add_combo_fill(
            world,
            wallet(item),
            item["side"],
            dec(item["size"]),
            dec(item["price"]),
            list(item.get("titles", ["Leg A", "Leg B"])),
            at=when(item),
        )


def load_account(world: World, spec: dict[str, Any]) -> None:
    """A follower-side account: balances, approvals, registered wallets, flags."""
    address = checksum(spec["address"])
    holders = [address]
    for w in spec.get("wallets", []):
        wallet = checksum(w["address"])
        kind = w.get("kind", "deposit")
        if kind not in WalletRecord.SIGNATURE_TYPES:
            raise ScenarioError(f"wallet kind must be proxy, safe or deposit, not {kind!r}")
        signers = {address.lower(), *(checksum(s).lower() for s in w.get("session_signers", []))}
        world.wallets[wallet.lower()] = WalletRecord(
            address=wallet, kind=kind, owner=address, signers=signers
        )
        holders.append(wallet)
    fund_to = [checksum(spec["fund"])] if spec.get("fund") else holders
    for holder in fund_to:
        if "pusd" in spec:
            world.ledger.set_balance(holder, COLLATERAL, to_base(dec(spec["pusd"])))
        for ref, amount in (spec.get("tokens") or {}).items():
            world.ledger.set_balance(holder, _token_ref(world, ref), to_base(dec(amount)))
        if spec.get("approve", True):
            approve_all(world, holder)
    if spec.get("require_deposit_wallet"):
        world.require_deposit.add(address.lower())
    if spec.get("closed_only"):
        world.closed_only.add(address.lower())


# ---- random walk -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RandomWalkConfig:
    """How much synthetic trader activity to generate."""

    traders: int = 3
    markets: int = 4
    rate: float = 0.5  # trader fills per second (Poisson)
    book_move_probability: float = 0.3
    seed: int = 11


TEMPLATES = (
    ("v1", False, "0.01"),
    ("v1", True, "0.001"),
    ("v2", False, "0.01"),
    ("v1", True, "0.01"),
    ("v2", True, "0.001"),
)


def synthetic_book(
    mid: Decimal, tick: Decimal, rng: random.Random, levels: int = 5
) -> tuple[list[tuple[Decimal, int]], list[tuple[Decimal, int]]]:
    """Bids and asks around `mid`, one tick apart, random sizes."""
    best_bid = floor_to_tick(mid, tick)
    bids, asks = [], []
    for i in range(levels):
        b, a = best_bid - tick * i, best_bid + tick * (i + 1)
        if in_price_range(b, tick):
            bids.append((b, to_base(Decimal(rng.randint(50, 2000)))))
        if in_price_range(a, tick):
            asks.append((a, to_base(Decimal(rng.randint(50, 2000)))))
    return bids, asks


class RandomWalk:
    """Background generator of trader fills and book moves on its own markets and traders."""

    def __init__(self, sim: Simulator, config: RandomWalkConfig) -> None:
        self.sim = sim
        self.config = config
        self.rng = random.Random(config.seed)
        self.traders: list[str] = []
        self.tokens: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-random-walk", daemon=True)
        self._setup()

    def _setup(self) -> None:
        world = self.sim.world
        with world.lock:
            for i in range(self.config.markets):
                version, neg_risk, tick = TEMPLATES[i % len(TEMPLATES)]
                key = f"rw-{i}"
                market = build_market(
                    {
                        "key": key,
                        "version": version,
                        "neg_risk": neg_risk,
                        "tick_size": tick,
                        "question": f"Random walk market {i}?",
                        "slug": f"random-walk-market-{i}",
                        "gamma_id": str(900000 + i),
                        "event": {
                            "id": str(90000 + i),
                            "slug": f"rw-event-{i}",
                            "title": f"RW {i}",
                        },
                        "end_date": "2027-01-01T00:00:00Z",
                    }
                )
                world.add_market(market)
                for o in market.outcomes:
                    mid = Decimal(self.rng.randint(20, 80)) / 100
                    bids, asks = synthetic_book(mid, market.tick_size, self.rng)
                    engine.set_book(world, o.token_id, bids=bids, asks=asks)
                    self.tokens.append(o.token_id)
            for i in range(self.config.traders):
                address = checksum(world.new_address())
                world.profiles[address.lower()] = Profile(
                    name=f"rw-trader-{i}", pseudonym=f"Random-Walker-{i}"
                )
                self.traders.append(address)

    def start(self) -> None:
        """Start generating in the background."""
        if self.config.rate > 0:
            self._thread.start()

    def stop(self) -> None:
        """Stop generating."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.rng.expovariate(self.config.rate)):
            with self.sim.world.lock:
                engine.refresh(self.sim.world)
                self.step()

    def step(self) -> None:
        """One trader fill (and maybe a one-tick book move). Caller holds the lock."""
        world = self.sim.world
        trader = self.rng.choice(self.traders)
        token = self.rng.choice(self.tokens)
        book = world.books[token]
        held = world.ledger.balance(trader, token)
        side = "SELL" if held > to_base(Decimal(10)) and self.rng.random() < 0.35 else "BUY"
        ref = book.best_ask() if side == "BUY" else book.best_bid()
        price = ref if ref is not None else Decimal("0.5")
        size = Decimal(self.rng.randint(500, 20000)) / 100
        if side == "SELL":
            size = min(size, Decimal(held) / 10**6).quantize(Decimal("0.01"))
        if size <= 0 or not Decimal(0) < price < 1:
            return
        feeds.add_trader_fill(
            world,
            trader,
            token,
            side,
            size,
            price,
            role="taker" if self.rng.random() < 0.7 else "maker",
        )
        if self.rng.random() < self.config.book_move_probability:
            step = self.rng.choice((-1, 1))
            try:
                engine.shift_book(world, token, step)
            except ValueError:
                pass  # the move would leave the price range; keep the book
