"""POST /order intake: parse, verify, validate and execute one signed V2 order like the CLOB does.

The checks and their texts follow docs/POLYMARKET.md §5 and fixtures/clob_error_bodies.json; texts the
reference marks as unknown are chosen here and flagged `UNCONFIRMED` in `MESSAGES`.

Invariants:
- an order is stored (and can match) only after every check passed, so a rejected POST leaves
  no trace but a `rejections` entry; an accepted one is keyed by its EIP-712 order hash;
- the same signed bytes are accepted once: a second POST of the same hash is `Duplicated`;
- balance checks subtract what the maker's other resting orders already commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sim import engine
from sim.state import COLLATERAL, ApiKeyRecord, Market, SimOrder, World
from sim.units import MAX_UINT256, decimals, fmt, fmt_base, from_base, money2, to_base
from sim.verify import (
    ALL_EXCHANGES,
    DomainMismatch,
    OrderStruct,
    SignatureError,
    checksum,
    ecrecover,
    hex_bytes,
    identify_domain,
    order_digest,
    recover_order_signer,
)
from wire.ticks import is_on_tick

ORDER_TYPES = ("GTC", "GTD", "FOK", "FAK")
MAX_BATCH = 15
GTD_MIN_LEAD_SECONDS = 60  # UNCONFIRMED server rule (old docs: 60 s security threshold)

# tick → (price decimals, size decimals, amount decimals), docs/POLYMARKET.md §5.3
ROUNDING = {
    Decimal("0.1"): (1, 2, 3),
    Decimal("0.01"): (2, 2, 4),
    Decimal("0.005"): (3, 2, 5),
    Decimal("0.0025"): (4, 2, 6),
    Decimal("0.001"): (3, 2, 5),
    Decimal("0.0001"): (4, 2, 6),
}

MESSAGES = {
    "payload": "Invalid order payload",  # UNCONFIRMED text
    "version": "order_version_mismatch",
    "signature": "invalid signature",
    "maker_not_allowed": "maker address not allowed, please use the deposit wallet flow",
    "signer": "the order signer address has to be the address of the API KEY",
    "owner": "the order owner has to be the owner of the API KEY",
    "market_not_found": "market not found",
    "not_ready": "the market is not yet ready to process new orders",
    "closed": "the market is closed",  # UNCONFIRMED text
    "order_type": "invalid order type",  # UNCONFIRMED text
    "expiration": "invalid expiration",
    # UNCONFIRMED text:
    "post_only_type": "invalid post-only order: only GTC and GTD orders can be post-only",
    "post_only_cross": "invalid post-only order: order crosses book",
    "fok": "order couldn't be fully filled. FOK orders are fully filled or killed.",
    "fak": (
        "no orders found to match with FAK order. "
        "FAK orders are partially filled or killed if no match is found."
    ),
    "disabled": "Trading is currently disabled. Check polymarket.com for updates",
    "cancel_only": (
        "Trading is currently cancel-only. New orders are not accepted, but cancels are allowed."
    ),
    "post_only_mode": "post-only mode: only post-only orders and cancels are allowed",
}


class OrderRejected(Exception):
    """A POST /order refusal: HTTP status and the `{"error": ...}` body to send."""

    def __init__(
        self,
        message: str,
        status: int = 400,
        order_id: str = "",
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.order_id = order_id
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        return {"error": self.message, **self.extra}


@dataclass(frozen=True)
class ParsedOrder:
    """A wire order split into the signed struct and the unsigned extras."""

    struct: OrderStruct
    signature: bytes
    signature_hex: str
    expiration: int
    side: str


def _uint(value: Any, field: str, allow_int: bool = True) -> int:
    if isinstance(value, bool):
        raise OrderRejected(MESSAGES["payload"])
    if isinstance(value, int) and allow_int:
        out = value
    elif isinstance(value, str) and value.isdigit():
        out = int(value)
    else:
        raise OrderRejected(MESSAGES["payload"], extra={})
    if out < 0 or out >= 2**256:
        raise OrderRejected(MESSAGES["payload"])
    return out


def parse_order(raw: dict[str, Any]) -> ParsedOrder:
    """Strictly parse the `order` object of a POST /order body (400 on any malformed field)."""
    try:
        side_text = raw["side"]
        if side_text not in ("BUY", "SELL"):
            raise OrderRejected(MESSAGES["payload"])
        sig_type = raw["signatureType"]
        if isinstance(sig_type, bool) or not isinstance(sig_type, int) or not 0 <= sig_type <= 3:
            raise OrderRejected(MESSAGES["payload"])
        metadata = hex_bytes(raw["metadata"])
        builder = hex_bytes(raw["builder"])
        if len(metadata) != 32 or len(builder) != 32:
            raise OrderRejected(MESSAGES["payload"])
        maker = checksum(raw["maker"])
        signer = checksum(raw["signer"])
        signature_hex = raw["signature"]
        signature = hex_bytes(signature_hex)
        struct = OrderStruct(
            salt=_uint(raw["salt"], "salt"),
            maker=maker,
            signer=signer,
            token_id=_uint(raw["tokenId"], "tokenId"),
            maker_amount=_uint(raw["makerAmount"], "makerAmount"),
            taker_amount=_uint(raw["takerAmount"], "takerAmount"),
            side=0 if side_text == "BUY" else 1,
            signature_type=sig_type,
            timestamp=_uint(raw["timestamp"], "timestamp"),
            metadata=metadata,
            builder=builder,
        )
        expiration = _uint(raw.get("expiration", "0"), "expiration")
    except (KeyError, TypeError, SignatureError) as exc:
        raise OrderRejected(MESSAGES["payload"]) from exc
    return ParsedOrder(struct, signature, signature_hex, expiration, side_text)


def _diagnose(
    world: World, parsed: ParsedOrder, expected_version: str, want: set[str]
) -> OrderRejected:
    """Tell a wrong-domain-version signature (order_version_mismatch) from a bad one."""
    chain = world.config.chain_id
    for exchange in ALL_EXCHANGES:
        for version in ("1", "2", "3"):
            try:
                who = ecrecover(
                    order_digest(parsed.struct, chain, exchange, version), parsed.signature
                )
            except SignatureError:
                return OrderRejected(MESSAGES["signature"])
            if who.lower() in want:
                if version != expected_version:
                    return OrderRejected(MESSAGES["version"])
                return OrderRejected(MESSAGES["signature"])
    return OrderRejected(MESSAGES["signature"])


def _verify_signature(world: World, parsed: ParsedOrder, market: Market, key: ApiKeyRecord) -> str:
    exchange, version = market.exchange()
    chain = world.config.chain_id
    s = parsed.struct
    try:
        recovered = recover_order_signer(s, parsed.signature, chain, exchange, version)
    except DomainMismatch as exc:
        found = identify_domain(exc.found_separator, chain)
        if found is not None and found[1] != version:
            raise OrderRejected(MESSAGES["version"]) from exc
        raise OrderRejected(MESSAGES["signature"]) from exc
    except SignatureError as exc:
        raise OrderRejected(MESSAGES["signature"]) from exc
    if s.signature_type in (0, 1, 2) and recovered != s.signer:
        raise _diagnose(world, parsed, version, {s.signer.lower()})
    return recovered


def _check_wallet_rules(
    world: World, parsed: ParsedOrder, recovered: str, key: ApiKeyRecord
) -> None:
    s = parsed.struct
    eoa = key.address.lower()
    if s.signature_type in (0, 1, 2):
        if s.signer.lower() != eoa:
            raise OrderRejected(MESSAGES["signer"])
        if s.signature_type == 0:
            if s.maker != s.signer:
                raise OrderRejected(MESSAGES["owner"])
            return
        wallet = world.wallet(s.maker)
        kind = {1: "proxy", 2: "safe"}[s.signature_type]
        if wallet is None or wallet.kind != kind or eoa not in wallet.signers:
            raise OrderRejected(MESSAGES["owner"])
        return
    wallet = world.wallet(s.maker)
    if (
        s.signer != s.maker
        or wallet is None
        or wallet.kind != "deposit"
        or recovered.lower() not in wallet.signers
        or recovered.lower() != eoa
    ):
        raise OrderRejected(MESSAGES["signer"])


def reserved_collateral(world: World, maker: str) -> int:
    """pUSD base units committed by the maker's resting BUY orders."""
    return world.reserved_amount(maker, COLLATERAL)


def reserved_shares(world: World, maker: str, token_id: str) -> int:
    """Share base units committed by the maker's resting SELL orders of one token."""
    return world.reserved_amount(maker, token_id)


def _check_mode(world: World, post_only: bool) -> None:
    mode = world.config.trading_mode
    if mode == "disabled":
        raise OrderRejected(MESSAGES["disabled"], status=503)
    if mode == "cancel_only":
        raise OrderRejected(MESSAGES["cancel_only"], status=503)
    if mode == "post_only" and not post_only:
        raise OrderRejected(
            MESSAGES["post_only_mode"], status=503, extra={"code": "post_only_mode"}
        )


def place_order(world: World, key: ApiKeyRecord, payload: Any) -> dict[str, Any]:
    """Accept and execute one POST /order body, or raise `OrderRejected`. Caller holds the lock."""
    try:
        return _place(world, key, payload)
    except OrderRejected as exc:
        world.rejections.append(
            {
                "time": world.clock.now(),
                "owner": key.api_key,
                "order_id": exc.order_id,
                "status": exc.status,
                "error": exc.message,
            }
        )
        raise


def _place(world: World, key: ApiKeyRecord, payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict) or not isinstance(payload.get("order"), dict):
        raise OrderRejected(MESSAGES["payload"])
    raw = payload["order"]
    post_only = payload.get("postOnly", False)
    if not isinstance(post_only, bool):
        raise OrderRejected(MESSAGES["payload"])
    _check_mode(world, post_only)
    if any(k in raw for k in ("nonce", "feeRateBps", "taker")) or "timestamp" not in raw:
        raise OrderRejected(MESSAGES["version"])
    parsed = parse_order(raw)
    s = parsed.struct
    order_type = payload.get("orderType", "GTC")
    if order_type not in ORDER_TYPES:
        raise OrderRejected(MESSAGES["order_type"])
    market = world.by_token.get(str(s.token_id))
    if market is None:
        raise OrderRejected(MESSAGES["market_not_found"], status=404)
    exchange, version = market.exchange()
    order_id = "0x" + order_digest(s, world.config.chain_id, exchange, version).hex()

    def reject(message: str, status: int = 400) -> OrderRejected:
        return OrderRejected(message, status=status, order_id=order_id)

    if payload.get("owner") != key.api_key:
        raise reject(MESSAGES["owner"])
    eoa = key.address.lower()
    if s.signature_type in (0, 1, 2) and (
        world.config.deposit_wallet_only or eoa in world.require_deposit
    ):
        raise reject(MESSAGES["maker_not_allowed"])
    try:
        recovered = _verify_signature(world, parsed, market, key)
        _check_wallet_rules(world, parsed, recovered, key)
    except OrderRejected as exc:
        exc.order_id = order_id
        raise
    if order_id in world.orders:
        raise reject(f"order {order_id} is invalid. Duplicated.")
    if eoa in world.banned:
        raise reject(f"'{eoa}' address banned")
    if eoa in world.closed_only and parsed.side == "BUY":
        raise reject(f"'{eoa}' address in closed only mode")
    if market.closed:
        raise reject(MESSAGES["closed"])
    if not market.accepting_orders:
        raise reject(MESSAGES["not_ready"])

    now = world.clock.now()
    if order_type == "GTD":
        if parsed.expiration <= now + GTD_MIN_LEAD_SECONDS:
            raise reject(MESSAGES["expiration"])
    elif parsed.expiration != 0:
        raise reject(MESSAGES["expiration"])
    is_market = order_type in ("FOK", "FAK")
    if post_only and is_market:
        raise reject(MESSAGES["post_only_type"])
    if s.maker_amount <= 0 or s.taker_amount <= 0:
        raise reject(
            "invalid amounts, maker and taker amounts must be positive"
        )  # UNCONFIRMED text

    side = parsed.side
    usd, shares = (
        (s.maker_amount, s.taker_amount) if side == "BUY" else (s.taker_amount, s.maker_amount)
    )
    tick = market.tick_size
    _price_dp, size_dp, amount_dp = ROUNDING[tick]
    lot = 10 ** (6 - size_dp)
    cent_units = 10 ** (6 - amount_dp)
    if is_market and side == "BUY":
        if usd % 10**4 or shares % cent_units:
            raise reject(
                "invalid amounts, the market buy orders maker amount supports a max accuracy of 2 "
                f"decimals, taker amount a max of {amount_dp} decimals"
            )
    else:
        if shares % lot:
            size = from_base(shares)
            raise reject(
                f"order {order_id} is invalid. Size ({fmt(size)}) has {decimals(size)} "
                f"decimal places. Maximum lot size is {size_dp}"
            )
        if usd % cent_units:
            maker_dp, taker_dp = (amount_dp, size_dp) if side == "BUY" else (size_dp, amount_dp)
            raise reject(
                f"invalid amounts, the {side.lower()} orders maker amount supports a max "
                f"accuracy of {maker_dp} decimals, taker amount a max of {taker_dp} decimals"
            )
    exact = Decimal(usd) / Decimal(shares)
    if is_market:
        price = (exact / tick).to_integral_value(rounding=ROUND_HALF_EVEN) * tick
    else:
        price = exact
        if not is_on_tick(price, tick):
            raise reject(
                f"order {order_id} is invalid. Price ({fmt(price)}) breaks minimum tick size "
                f"rule: {fmt(tick)}"
            )
    if not tick <= price <= 1 - tick:
        raise reject(
            f"order {order_id} is invalid. Price ({fmt(price)}) breaks minimum tick size "
            f"rule: {fmt(tick)}"
        )
    if not is_market and shares < to_base(market.min_size):
        raise reject(
            f"order {order_id} is invalid. Size ({fmt_base(shares)}) lower than the minimum: "
            f"{fmt(market.min_size)}"
        )

    book = world.books[str(s.token_id)]
    best = book.best_ask() if side == "BUY" else book.best_bid()
    crosses = best is not None and (best <= price if side == "BUY" else best >= price)
    if post_only and crosses:
        raise reject(MESSAGES["post_only_cross"])
    if side == "BUY" and crosses and usd < 10**6:
        raise reject(
            f"invalid amount for a marketable BUY order (${money2(from_base(usd))}), min size: 1"
        )

    token_id = str(s.token_id)
    if side == "BUY":
        need = usd
        if crosses and market.fees is not None:
            need += to_base(market.fees.fee(from_base(shares), price))
        available = world.ledger.balance(s.maker, COLLATERAL) - reserved_collateral(world, s.maker)
        allowance = world.ledger.allowance(s.maker, COLLATERAL, exchange)
    else:
        need = shares
        available = world.ledger.balance(s.maker, token_id) - reserved_shares(
            world, s.maker, token_id
        )
        allowance = world.ledger.allowance(s.maker, market.conditional_asset_type, exchange)
    if available < need:
        raise reject(
            "not enough balance / allowance: the balance is not enough -> balance: "
            f"{max(available, 0)}"
        )
    if allowance < need and allowance != MAX_UINT256:
        raise reject(
            f"not enough balance / allowance: the allowance is not enough -> allowance: {allowance}"
        )

    budget_mode = is_market and side == "BUY"
    fills = (
        book.plan(side, price, budget=usd) if budget_mode else book.plan(side, price, shares=shares)
    )
    if order_type == "FOK":
        if budget_mode:
            complete = usd - sum(f.cost for f in fills) <= 1
        else:
            complete = sum(f.shares for f in fills) == shares
        if not complete:
            raise reject(MESSAGES["fok"])
    if order_type == "FAK" and not fills:
        raise reject(MESSAGES["fak"])

    outcome = market.outcome(token_id)
    order = SimOrder(
        id=order_id,
        owner=key.api_key,
        eoa=key.address,
        maker=s.maker,
        signer=s.signer,
        recovered=recovered,
        signature_type=s.signature_type,
        exchange=exchange,
        domain_version=version,
        condition_id=market.condition_id,
        token_id=token_id,
        outcome=outcome.label,
        side=side,
        price=price,
        maker_amount=s.maker_amount,
        taker_amount=s.taker_amount,
        original_size=shares,
        order_type=order_type,
        post_only=post_only,
        expiration=parsed.expiration,
        created_at=now,
        salt=s.salt,
        timestamp_ms=s.timestamp,
        signature=parsed.signature_hex,
        budget=usd if budget_mode else None,
        builder="0x" + s.builder.hex(),
    )
    world.orders[order_id] = order
    taker = engine.Taker(owner=key.api_key, address=s.maker, side=side, order=order)
    trades = engine.settle(world, market, token_id, taker, fills)
    filled_shares = sum(f.shares for f in fills)
    filled_cost = sum(f.cost for f in fills)
    if budget_mode:
        order.original_size = max(order.original_size, order.size_matched)
    if is_market:
        order.status = "MATCHED"
        if order.remaining and order_type == "FAK":
            order.status_reason = "unfilled remainder killed"
    elif order.remaining > 0:
        engine.rest(world, order)
    else:
        order.status = "MATCHED"
    if fills:
        fee = (
            sum(to_base(market.fees.fee(from_base(f.shares), f.price)) for f in fills)
            if market.fees
            else 0
        )
        making = filled_cost if side == "BUY" else filled_shares
        taking = filled_shares if side == "BUY" else filled_cost - fee
        making_text, taking_text = fmt_base(making), fmt_base(taking)
    else:
        making_text = taking_text = ""
    return {
        "success": True,
        "errorMsg": "",
        "orderID": order_id,
        "status": "matched" if fills else "live",
        "makingAmount": making_text,
        "takingAmount": taking_text,
        "transactionsHashes": [],
        "tradeIDs": [t.id for t in trades],
    }


def batch_error(exc: OrderRejected) -> dict[str, Any]:
    """Per-order failure entry of a POST /orders answer."""
    return {
        "success": False,
        "errorMsg": exc.message,
        "orderID": exc.order_id,
        "status": "",
        "makingAmount": "",
        "takingAmount": "",
        "transactionsHashes": [],
        "tradeIDs": [],
    }


def place_batch(world: World, key: ApiKeyRecord, payload: Any) -> list[dict[str, Any]]:
    """POST /orders: up to 15 orders, each accepted or refused on its own."""
    if not isinstance(payload, list) or not payload:
        raise OrderRejected(MESSAGES["payload"])
    if len(payload) > MAX_BATCH:
        raise OrderRejected(f"Too many orders in payload: {len(payload)}, max allowed: {MAX_BATCH}")
    _check_mode(world, all(isinstance(p, dict) and p.get("postOnly") is True for p in payload))
    results = []
    for item in payload:
        try:
            results.append(place_order(world, key, item))
        except OrderRejected as exc:
            results.append(batch_error(exc))
    return results


def order_view(order: SimOrder) -> dict[str, Any]:
    """GET /data/order/{id} shape (OpenOrder)."""
    return {
        "id": order.id,
        "status": order.status,
        "owner": order.owner,
        "maker_address": order.maker.lower(),
        "market": order.condition_id,
        "asset_id": order.token_id,
        "side": order.side,
        "original_size": fmt_base(order.original_size),
        "size_matched": fmt_base(order.size_matched),
        "price": fmt(order.price),
        "outcome": order.outcome,
        "expiration": str(order.expiration),
        "order_type": order.order_type,
        "associate_trades": list(order.associate_trades),
        "created_at": int(order.created_at),
    }


def inspect_order(order: SimOrder) -> dict[str, Any]:
    """Everything the simulator verified and tracks about an order (control API)."""
    return {
        **order_view(order),
        "maker": order.maker,
        "signer": order.signer,
        "recovered_signer": order.recovered,
        "api_key_address": order.eoa,
        "signature_type": order.signature_type,
        "exchange": order.exchange,
        "domain_version": order.domain_version,
        "maker_amount": str(order.maker_amount),
        "taker_amount": str(order.taker_amount),
        "post_only": order.post_only,
        "status_reason": order.status_reason,
        "salt": order.salt,
        "timestamp": str(order.timestamp_ms),
        "rested": order.rested,
        "builder": order.builder,
        "accepted_at": order.created_at,  # simulated epoch seconds, sub-second (benchmarks)
    }
