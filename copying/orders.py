"""A copy's venue order: amounts, signer and exchange worked out (`plan_order`), signed into the
copy row (`sign_planned`), and seen by the venues as an `OrderSpec` (`spec_for`).

Invariant (promise 1): signing stores, in the caller's transaction, the exact POST body, its
locally computed order hash (= the venue's order id) and the venue size; the caller commits
that SIGNED row before anything is posted, and only those bytes are ever posted for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import Session

from copying.context import ExecutorContext
from copying.sizing import MIN_NOTIONAL_USD
from copying.states import Event, transition
from copying.venues import OrderSpec
from crypto import signer_for
from models import CopyOrder, Follower
from smart_pricing import PriceAction, PriceDecision
from wire.amounts import (
    OrderMathError,
    from_base_units,
    limit_order_amounts,
    market_buy_amounts,
    market_sell_amounts,
    to_base_units,
)
from wire.auth import SigningKey
from wire.signing import Exchange, OrderRequest, exchange_for, post_order_body, sign_order
from wire.types import ApiCreds, MarketInfo, OrderType, Side, SignatureType

ZERO = Decimal(0)
MIN_NOTIONAL_BASE = to_base_units(MIN_NOTIONAL_USD)  # base units (micro-dollars)


class SkipCopy(Exception):  # noqa: N818 - a decision, not an error: the copy ends SKIPPED(reason)
    """This copy must end SKIPPED with `reason`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


def order_amounts(side: Side, decision: PriceDecision, shares: Decimal, tick: Decimal) -> tuple[int, int]:
    """Maker/taker base units for a limit (GTC) or market (FAK) order."""
    assert decision.price is not None
    if decision.action is PriceAction.MARKET:
        if side is Side.BUY:
            assert decision.spend_price is not None
            a = market_buy_amounts(shares * decision.spend_price, decision.price, tick)
        else:
            a = market_sell_amounts(shares, decision.price, tick)
    else:
        a = limit_order_amounts(side, decision.price, shares, tick)
    return a.maker_amount, a.taker_amount


@dataclass(frozen=True)
class OrderPlan:
    """A venue order worked out for a copy but not signed yet."""

    request: OrderRequest
    exchange: Exchange
    decision: PriceDecision
    shares: Decimal

    @property
    def venue_size(self) -> Decimal:
        """Shares of the venue order (BUY: taker amount, SELL: maker amount)."""
        raw = self.request.taker_amount if self.request.side is Side.BUY else self.request.maker_amount
        return from_base_units(raw)


def plan_order(ctx: ExecutorContext, co: CopyOrder, follower: Follower, market: MarketInfo,
               decision: PriceDecision, shares: Decimal) -> OrderPlan:
    """Amounts, maker/signer and exchange of the venue order for `shares` (SkipCopy if impossible)."""
    assert decision.price is not None and decision.order_type
    side = Side(co.side)
    try:
        maker_amount, taker_amount = order_amounts(side, decision, shares, market.tick_size)
    except OrderMathError as exc:
        raise SkipCopy("invalid_amounts", str(exc)) from None
    if decision.action is PriceAction.MARKET and side is Side.BUY and maker_amount < MIN_NOTIONAL_BASE:
        # the venue refuses a marketable BUY under $1 (maker amount = the dollars it spends)
        spend = from_base_units(maker_amount)
        raise SkipCopy("below_min_notional", f"{shares} shares at the best ask is {spend} USD")
    sig_type = SignatureType(follower.signature_type)
    order_signer = follower.funder_address if sig_type == SignatureType.POLY_1271 else follower.signer_address
    req = OrderRequest(maker=follower.funder_address, signer=order_signer, token_id=co.token_id,
                       maker_amount=maker_amount, taker_amount=taker_amount, side=side,
                       signature_type=sig_type, builder=ctx.settings.builder_code)
    return OrderPlan(req, exchange_for(market.version, market.neg_risk, ctx.settings.chain_id), decision, shares)


def sign_planned(ctx: ExecutorContext, s: Session, co: CopyOrder, plan: OrderPlan, key: SigningKey,
                 creds: ApiCreds | None, event: Event) -> None:
    """Sign `plan` with the follower's key (`crypto.signer_for`: decrypted and parsed once for
    many orders) and store it on `co` (SIGN or REPRICE; caller commits)."""
    decision = plan.decision
    assert decision.price is not None and decision.order_type
    signed = sign_order(plan.request, key, plan.exchange, ctx.settings.chain_id, timestamps=ctx.timestamps)
    owner = creds.api_key if creds is not None else "paper"
    co.signed_payload = post_order_body(signed, owner, decision.order_type)
    co.order_hash = signed.order_hash
    co.venue_size = plan.venue_size
    co.intended_price = decision.price
    co.order_type = decision.order_type.value
    co.attempts = (co.attempts or 0) + 1
    co.signed_at = ctx.clock()
    co.posted_at = co.acked_at = None
    co.lease_owner = co.lease_expires_at = None
    transition(s, co, event, detail={
        "price": str(decision.price), "shares": str(plan.shares), "order_type": decision.order_type.value,
        "stage": decision.stage.value, "exchange": plan.exchange.address})


def sign_into(ctx: ExecutorContext, s: Session, co: CopyOrder, follower: Follower,
              market: MarketInfo, decision: PriceDecision, shares: Decimal,
              creds: ApiCreds | None, event: Event) -> None:
    """Plan and sign one venue order for `shares` with the follower's key (caller commits)."""
    assert ctx.keyring is not None
    plan = plan_order(ctx, co, follower, market, decision, shares)
    with signer_for(ctx.keyring, follower.encrypted_private_key, follower.signer_address) as key:
        sign_planned(ctx, s, co, plan, key, creds, event)


def spec_for(co: CopyOrder, follower: Follower, market: MarketInfo, creds: ApiCreds | None,
             already_filled: Decimal = ZERO) -> OrderSpec:
    """The venue's view of the copy's current signed order (the one builder of `OrderSpec`)."""
    assert co.order_hash and co.signed_payload and co.intended_price is not None
    assert co.venue_size is not None and co.order_type is not None
    return OrderSpec(
        order_hash=co.order_hash, body=co.signed_payload, token_id=co.token_id,
        condition_id=co.condition_id, side=Side(co.side), price=co.intended_price,
        shares=co.venue_size, order_type=OrderType(co.order_type), creds=creds,
        signer_address=follower.signer_address, funder_address=follower.funder_address,
        fee_rate=market.fee_rate, fee_exponent=market.fee_exponent,
        posted_at=co.posted_at or co.signed_at,  # a batch records posted_at after its POSTs
        already_filled=already_filled)
