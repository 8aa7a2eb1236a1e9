"""Copy-order sizing: a leader fill + a follow's rules + the market → an order size or a skip.

Pure functions of values (no I/O, no clock), `Decimal` end to end.

Invariants (each is a property test in tests/copying/test_sizing.py):
- sizes are whole hundredths of a share (Polymarket's lot size), always rounded DOWN;
- a BUY never spends more than `max_usd_per_trade`, the remaining daily cap, the remaining
  per-market exposure cap, nor the follower's available pUSD *including* the worst-case taker
  fee (docs/POLYMARKET.md §5.10), all evaluated at the sizing price;
- a SELL never exceeds what the follower holds in that token for this follow (DESIGN promise 3),
  and never takes the holding below the new target;
- BUY sizes never decrease when `copy_pct` grows (monotone), and neither do fallback SELLs.

Rules
- BUY: shares = trader shares × copy_pct / 100, capped by each limit above, floored to 0.01.
  Skipped when the result is below the market's min size or its notional is below $1 (the
  venue's marketable-BUY floor, docs/POLYMARKET.md §5.4). When a cap is what pushed the size under a
  minimum, the skip names that cap (insufficient_balance / daily_cap_reached /
  exposure_cap_reached / follower_daily_cap_reached / follower_exposure_cap_reached) so the
  operator sees the real cause. The follower's own daily cap and open-exposure cap apply across
  all its follows, exactly like the follow's caps; so do its event-level caps (USD at risk per
  event, category and resolution-date window: event_cap_reached / category_cap_reached /
  window_cap_reached) and its daily loss stop (daily_loss_stop), whose inputs come from
  `copying.event_risk`.
- SELL (an exit: the leader's SELL, MERGE, CONVERSION, or a snapshot showing him smaller): the
  follow has a *target* holding T (`FollowerState.target_shares`: BUY fills add to it). The exit
  scales it by the leader's kept fraction, T' = T × after / before, where before/after are the
  leader's position around the exit (`trader_shares_before`), and never above copy % × after (the
  holding converges to copy % of the leader's whatever was missed); with the leader's position
  unknown, T' = T − copy % × sold. The sale is what is held above T' (floored to the lot), never
  more than held, never below zero; the leader closing (after = 0) sells everything held.
  A sale of at least the market's min size is a limit order; a smaller one is a marketable order
  (FAK at the best bid, `SizedOrder.marketable`) when it is worth ≥ $1 at the best bid (the CLOB's
  minimum share size is documented for limit orders; marketable orders have a $1 minimum
  instead: UNCONFIRMED for SELLs, see README "Copy fidelity"); otherwise it is kept
  (`remainder_kept`) and sold with the leader's next sell, as a marketable order once worth
  ≥ $1 (the executor's remainder pass), or redeemed at resolution. Either way the new target is
  returned with the result (`target`), so the caller stores it even when nothing is placed.
- Price band, daily cap and exposure cap are entry limits and apply to BUYs only; exits follow
  the trader whatever the price. `max_usd_per_trade` also bounds BUYs only.
- `price` (keyword) is the price the limits are evaluated at; it defaults to the leader's
  price. To keep the caps hard through smart-pricing repricing, pass the worst price the order
  may reach (e.g. the BUY slippage limit).
- YES and NO are separate tokens and separate positions: nothing here links them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, localcontext
from enum import StrEnum

from wire.fees import fee_per_share_bound
from wire.types import MarketInfo, Side

LOT = Decimal("0.01")  # share sizes carry at most 2 decimals (docs/POLYMARKET.md §5.3)
TARGET_QUANTUM = Decimal("0.000001")  # targets are kept in base units (1e-6 share)
MIN_NOTIONAL_USD = Decimal(1)  # marketable BUY minimum (docs/POLYMARKET.md §5.4)
_ZERO = Decimal(0)
_HUNDRED = Decimal(100)


class SkipReason(StrEnum):
    """Why a leader fill produced no copy order (stored with the skipped copy order)."""

    COMBO = "combo"
    INVALID_FILL = "invalid_fill"
    UNKNOWN_TOKEN = "unknown_token"  # noqa: S105 (a skip reason, not a secret)
    MARKET_CLOSED = "market_closed"
    NOT_ACCEPTING_ORDERS = "not_accepting_orders"
    PRICE_OUT_OF_BAND = "price_out_of_band"
    NO_HOLDINGS = "no_holdings"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    DAILY_CAP_REACHED = "daily_cap_reached"
    EXPOSURE_CAP_REACHED = "exposure_cap_reached"
    FOLLOWER_DAILY_CAP_REACHED = "follower_daily_cap_reached"  # across all the follower's follows
    FOLLOWER_EXPOSURE_CAP_REACHED = "follower_exposure_cap_reached"  # positions + open BUYs
    ZERO_SIZE = "zero_size"
    BELOW_MIN_SIZE = "below_min_size"
    BELOW_MIN_NOTIONAL = "below_min_notional"
    AT_TARGET = "at_target"  # an exit that leaves the holding at or under its new target
    REMAINDER_KEPT = "remainder_kept"  # under the min size and under $1: kept for later
    # event-level risk (copying.event_risk), the follower's across all its follows
    EVENT_CAP_REACHED = "event_cap_reached"  # USD at risk in this market's event
    CATEGORY_CAP_REACHED = "category_cap_reached"  # USD at risk in this market's category
    WINDOW_CAP_REACHED = "window_cap_reached"  # USD at risk resolving near this market's date
    DAILY_LOSS_STOP = "daily_loss_stop"  # the day's realized loss reached the follower's stop


class CapReason(StrEnum):
    """Which limit reduced a copy order below its proportional size."""

    MAX_TRADE = "max_trade"
    BALANCE = "balance"
    DAILY_CAP = "daily_cap"
    EXPOSURE_CAP = "exposure_cap"
    FOLLOWER_DAILY_CAP = "follower_daily_cap"
    FOLLOWER_EXPOSURE_CAP = "follower_exposure_cap"
    HOLDINGS = "holdings"
    CLOSE_OUT = "close_out"  # the leader closed: everything held is sold
    CROWDING = "crowding"  # the fill's copies share the book's depth (copying.crowding)
    EVENT_CAP = "event_cap"
    CATEGORY_CAP = "category_cap"
    WINDOW_CAP = "window_cap"


@dataclass(frozen=True)
class LeaderFill:
    """The trader's fill being copied: shares bought or sold at a price in one token."""

    side: Side
    shares: Decimal
    price: Decimal
    token_id: str
    is_combo: bool = False


@dataclass(frozen=True)
class FollowRules:
    """A follow's sizing settings and the risk-limit state it is checked against."""

    copy_pct: Decimal
    max_usd_per_trade: Decimal
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    daily_cap_usd: Decimal | None = None
    spent_today_usd: Decimal = _ZERO
    exposure_cap_usd: Decimal | None = None
    exposure_usd: Decimal = _ZERO  # the follow's current USD exposure in this market
    # the follower's own limits, across all its follows (None = no limit)
    follower_daily_cap_usd: Decimal | None = None
    follower_spent_today_usd: Decimal = _ZERO
    follower_exposure_cap_usd: Decimal | None = None
    follower_exposure_usd: Decimal = _ZERO  # cost of its positions + its open BUY orders
    # event-level risk (copying.event_risk): caps and what is at risk in this market's event,
    # category and resolution-date window; the day's realized loss and the stop (None = no limit)
    event_cap_usd: Decimal | None = None
    event_exposure_usd: Decimal = _ZERO
    category_cap_usd: Decimal | None = None
    category_exposure_usd: Decimal = _ZERO
    window_cap_usd: Decimal | None = None
    window_exposure_usd: Decimal = _ZERO
    daily_loss_stop_usd: Decimal | None = None
    realized_loss_today_usd: Decimal = _ZERO  # ≥ 0: the day's realized loss (0 on a winning day)

    def __post_init__(self) -> None:
        if not (_ZERO < self.copy_pct <= _HUNDRED):
            raise ValueError(f"copy_pct must be in (0, 100], got {self.copy_pct}")
        if self.max_usd_per_trade <= _ZERO:
            raise ValueError(f"max_usd_per_trade must be > 0, got {self.max_usd_per_trade}")
        for name in ("daily_cap_usd", "exposure_cap_usd", "min_price", "max_price",
                     "follower_daily_cap_usd", "follower_exposure_cap_usd", "event_cap_usd",
                     "category_cap_usd", "window_cap_usd", "daily_loss_stop_usd"):
            value = getattr(self, name)
            if value is not None and value < _ZERO:
                raise ValueError(f"{name} must be ≥ 0, got {value}")
        if min(self.spent_today_usd, self.exposure_usd, self.follower_spent_today_usd,
               self.follower_exposure_usd, self.event_exposure_usd, self.category_exposure_usd,
               self.window_exposure_usd, self.realized_loss_today_usd) < _ZERO:
            raise ValueError("amounts spent and exposures must be ≥ 0")
        if (self.min_price is not None and self.max_price is not None
                and self.min_price > self.max_price):
            raise ValueError(f"min_price {self.min_price} > max_price {self.max_price}")


@dataclass(frozen=True)
class FollowerState:
    """What the follower has: spendable pUSD, and for SELLs its holding and the trader's."""

    available_usd: Decimal
    held_shares: Decimal = _ZERO  # follower's shares in this token for this follow (not on offer)
    trader_shares_before: Decimal | None = None  # trader's position before the sale, if known
    target_shares: Decimal | None = None  # the follow's target holding T (None: what it holds)


@dataclass(frozen=True)
class SizedOrder:
    """A copy order's size; `reason_capped` names the limit that reduced it, if any."""

    shares: Decimal
    notional: Decimal
    reason_capped: CapReason | None = None
    marketable: bool = False  # a SELL under the min size: FAK at the best bid (≥ $1)
    target: Decimal | None = None  # SELL: the follow's target holding after this exit


@dataclass(frozen=True)
class Skip:
    """No order: a fixed-vocabulary reason and a human detail."""

    reason: SkipReason
    detail: str
    target: Decimal | None = None  # SELL: the follow's target holding after this exit


def floor_lot(shares: Decimal) -> Decimal:
    """Round a share quantity down to the 0.01 lot."""
    if shares <= _ZERO:
        return _ZERO.quantize(LOT)
    return shares.quantize(LOT, rounding=ROUND_FLOOR)


def shares_affordable(usd: Decimal, unit_cost: Decimal) -> Decimal:
    """Most whole lots whose cost at `unit_cost` per share stays ≤ `usd` (never rounds up)."""
    if usd <= _ZERO:
        return _ZERO.quantize(LOT)
    with localcontext() as ctx:
        ctx.prec = 60
        ctx.rounding = ROUND_FLOOR
        return (usd / unit_cost).quantize(LOT, rounding=ROUND_FLOOR)


def remaining_cap(cap: Decimal | None, used: Decimal) -> Decimal | None:
    """USD left under a cap (never negative), or None when there is no cap."""
    if cap is None:
        return None
    return max(cap - used, _ZERO)


def size_copy(
    fill: LeaderFill,
    rules: FollowRules,
    market: MarketInfo,
    follower: FollowerState,
    *,
    price: Decimal | None = None,
    market_price: Decimal | None = None,
) -> SizedOrder | Skip:
    """Size one follow's copy of a leader fill, or say why it is skipped.

    `market_price` (SELL): the best bid, what a marketable sale under the min size would get.
    """
    if fill.is_combo:
        return Skip(SkipReason.COMBO, "combo fills cannot be copied with a CLOB order")
    if fill.shares <= _ZERO or not (_ZERO < fill.price < Decimal(1)):
        return Skip(SkipReason.INVALID_FILL,
                    f"leader fill has shares {fill.shares} at price {fill.price}")
    sizing_price = fill.price if price is None else price
    if not (_ZERO < sizing_price < Decimal(1)):
        return Skip(SkipReason.INVALID_FILL, f"sizing price {sizing_price} outside (0, 1)")
    if market.tokens and market.token(fill.token_id) is None:
        return Skip(SkipReason.UNKNOWN_TOKEN,
                    f"token {fill.token_id} is not an outcome of market {market.condition_id}")
    if market.closed:
        return Skip(SkipReason.MARKET_CLOSED, f"market {market.condition_id} is closed")
    if not market.accepting_orders:
        return Skip(SkipReason.NOT_ACCEPTING_ORDERS,
                    f"market {market.condition_id} is not accepting orders")
    with localcontext() as ctx:
        ctx.prec = 60
        if fill.side is Side.BUY:
            return _size_buy(fill, rules, market, follower, sizing_price)
        return _size_sell(fill, rules, market, follower, sizing_price, market_price)


def _size_buy(fill: LeaderFill, rules: FollowRules, market: MarketInfo,
              follower: FollowerState, price: Decimal) -> SizedOrder | Skip:
    if rules.min_price is not None and fill.price < rules.min_price:
        return Skip(SkipReason.PRICE_OUT_OF_BAND,
                    f"price {fill.price} below the follow's min price {rules.min_price}")
    if rules.max_price is not None and fill.price > rules.max_price:
        return Skip(SkipReason.PRICE_OUT_OF_BAND,
                    f"price {fill.price} above the follow's max price {rules.max_price}")
    daily_left = remaining_cap(rules.daily_cap_usd, rules.spent_today_usd)
    if daily_left is not None and daily_left <= _ZERO:
        return Skip(SkipReason.DAILY_CAP_REACHED,
                    f"spent {rules.spent_today_usd} of the {rules.daily_cap_usd} USD daily cap")
    exposure_left = remaining_cap(rules.exposure_cap_usd, rules.exposure_usd)
    if exposure_left is not None and exposure_left <= _ZERO:
        return Skip(SkipReason.EXPOSURE_CAP_REACHED,
                    f"exposure {rules.exposure_usd} at the {rules.exposure_cap_usd} USD market cap")
    follower_daily_left = remaining_cap(rules.follower_daily_cap_usd, rules.follower_spent_today_usd)
    if follower_daily_left is not None and follower_daily_left <= _ZERO:
        return Skip(SkipReason.FOLLOWER_DAILY_CAP_REACHED,
                    f"the follower spent {rules.follower_spent_today_usd} of its "
                    f"{rules.follower_daily_cap_usd} USD daily cap (all follows)")
    follower_exposure_left = remaining_cap(rules.follower_exposure_cap_usd, rules.follower_exposure_usd)
    if follower_exposure_left is not None and follower_exposure_left <= _ZERO:
        return Skip(SkipReason.FOLLOWER_EXPOSURE_CAP_REACHED,
                    f"the follower's open exposure {rules.follower_exposure_usd} is at its "
                    f"{rules.follower_exposure_cap_usd} USD cap")
    if rules.daily_loss_stop_usd is not None and rules.realized_loss_today_usd >= rules.daily_loss_stop_usd:
        return Skip(SkipReason.DAILY_LOSS_STOP,
                    f"daily_loss_stop: realized loss today {rules.realized_loss_today_usd} USD reached the "
                    f"follower's {rules.daily_loss_stop_usd} USD stop (new BUYs resume at 00:00 UTC)")
    risk_left: list[tuple[CapReason, Decimal]] = []
    for cap_reason, skip_reason, cap, used, what in _risk_limits(rules):
        left = remaining_cap(cap, used)
        if left is None:
            continue
        if left <= _ZERO:
            return Skip(skip_reason, f"{skip_reason.value}: {used} USD at risk {what}, at the "
                                     f"follower's {cap} USD cap")
        risk_left.append((cap_reason, left))
    if follower.available_usd <= _ZERO:
        return Skip(SkipReason.INSUFFICIENT_BALANCE,
                    f"available pUSD {follower.available_usd}")

    proportional = floor_lot(fill.shares * rules.copy_pct / _HUNDRED)
    unit_cost = price + fee_per_share_bound(price, market.fee_rate, market.fee_exponent)
    caps: list[tuple[CapReason, Decimal]] = [
        (CapReason.MAX_TRADE, shares_affordable(rules.max_usd_per_trade, price)),
        (CapReason.BALANCE, shares_affordable(follower.available_usd, unit_cost)),
    ]
    if daily_left is not None:
        caps.append((CapReason.DAILY_CAP, shares_affordable(daily_left, price)))
    if exposure_left is not None:
        caps.append((CapReason.EXPOSURE_CAP, shares_affordable(exposure_left, price)))
    if follower_daily_left is not None:
        caps.append((CapReason.FOLLOWER_DAILY_CAP, shares_affordable(follower_daily_left, price)))
    if follower_exposure_left is not None:
        caps.append((CapReason.FOLLOWER_EXPOSURE_CAP, shares_affordable(follower_exposure_left, price)))
    caps.extend((reason, shares_affordable(left, price)) for reason, left in risk_left)

    shares, capped = proportional, None
    for reason, limit in caps:
        if limit < shares:
            shares, capped = limit, reason
    notional = shares * price

    failure = _buy_minimum_failure(shares, notional, market.min_size)
    if failure is None:
        return SizedOrder(shares=shares, notional=notional, reason_capped=capped)
    if capped is not None and _buy_minimum_failure(
            proportional, proportional * price, market.min_size) is None:
        return _cap_skip(capped, shares, notional, proportional, rules, follower)
    return Skip(failure, _minimum_detail(failure, shares, notional, market.min_size))


def _risk_limits(rules: FollowRules) -> list[tuple[CapReason, SkipReason, Decimal | None, Decimal, str]]:
    """The event-level limits: (cap reason, skip reason, cap, USD used, where)."""
    return [
        (CapReason.EVENT_CAP, SkipReason.EVENT_CAP_REACHED, rules.event_cap_usd,
         rules.event_exposure_usd, "in this market's event"),
        (CapReason.CATEGORY_CAP, SkipReason.CATEGORY_CAP_REACHED, rules.category_cap_usd,
         rules.category_exposure_usd, "in this market's category"),
        (CapReason.WINDOW_CAP, SkipReason.WINDOW_CAP_REACHED, rules.window_cap_usd,
         rules.window_exposure_usd, "in markets resolving near this one"),
    ]


def _buy_minimum_failure(shares: Decimal, notional: Decimal,
                         min_size: Decimal) -> SkipReason | None:
    if shares <= _ZERO:
        return SkipReason.ZERO_SIZE
    if shares < min_size:
        return SkipReason.BELOW_MIN_SIZE
    if notional < MIN_NOTIONAL_USD:
        return SkipReason.BELOW_MIN_NOTIONAL
    return None


def _minimum_detail(reason: SkipReason, shares: Decimal, notional: Decimal,
                    min_size: Decimal) -> str:
    if reason is SkipReason.ZERO_SIZE:
        return "the proportional size rounds down to 0 shares"
    if reason is SkipReason.BELOW_MIN_SIZE:
        return f"{shares} shares is below the market's min size {min_size}"
    return f"notional {notional} USD is below the {MIN_NOTIONAL_USD} USD minimum"


def _cap_skip(capped: CapReason, shares: Decimal, notional: Decimal, proportional: Decimal,
              rules: FollowRules, follower: FollowerState) -> Skip:
    """A skip that names the cap which pushed an otherwise valid size under a minimum."""
    tail = f"capped from {proportional} to {shares} shares ({notional} USD), under the minimum"
    if capped is CapReason.BALANCE:
        return Skip(SkipReason.INSUFFICIENT_BALANCE,
                    f"available pUSD {follower.available_usd}: {tail}")
    if capped is CapReason.DAILY_CAP:
        return Skip(SkipReason.DAILY_CAP_REACHED,
                    f"daily cap {rules.daily_cap_usd} USD, spent {rules.spent_today_usd}: {tail}")
    if capped is CapReason.EXPOSURE_CAP:
        return Skip(SkipReason.EXPOSURE_CAP_REACHED,
                    f"exposure cap {rules.exposure_cap_usd} USD, at {rules.exposure_usd}: {tail}")
    if capped is CapReason.FOLLOWER_DAILY_CAP:
        return Skip(SkipReason.FOLLOWER_DAILY_CAP_REACHED,
                    f"follower daily cap {rules.follower_daily_cap_usd} USD, spent "
                    f"{rules.follower_spent_today_usd}: {tail}")
    if capped is CapReason.FOLLOWER_EXPOSURE_CAP:
        return Skip(SkipReason.FOLLOWER_EXPOSURE_CAP_REACHED,
                    f"follower exposure cap {rules.follower_exposure_cap_usd} USD, at "
                    f"{rules.follower_exposure_usd}: {tail}")
    for cap_reason, skip_reason, cap, used, what in _risk_limits(rules):
        if capped is cap_reason:
            return Skip(skip_reason, f"{skip_reason.value}: {used} USD at risk {what}, cap {cap} USD: {tail}")
    reason = SkipReason.BELOW_MIN_SIZE if shares > _ZERO else SkipReason.ZERO_SIZE
    return Skip(reason, f"max_usd_per_trade {rules.max_usd_per_trade}: {tail}")


def exit_target(target: Decimal, sold: Decimal, before: Decimal | None,
                copy_pct: Decimal) -> Decimal:
    """The follow's target holding after a leader exit of `sold` shares from `before` (see module)."""
    with localcontext() as ctx:
        ctx.prec = 60
        target = max(target, _ZERO)
        if before is not None and before > _ZERO:
            after = max(before - sold, _ZERO)
            new = min(target * after / before, copy_pct * after / _HUNDRED)
        else:
            new = target - copy_pct * sold / _HUNDRED
        return max(new, _ZERO).quantize(TARGET_QUANTUM, rounding=ROUND_FLOOR)


def sell_down_to(held_shares: Decimal, target: Decimal, market: MarketInfo, price: Decimal,
                 market_price: Decimal | None, *, reason_capped: CapReason | None = None
                 ) -> SizedOrder | Skip:
    """The sale that brings `held_shares` down to `target` (limit, marketable, or kept)."""
    held = floor_lot(held_shares)
    if held <= _ZERO:
        return Skip(SkipReason.NO_HOLDINGS,
                    f"follower holds {held_shares} shares of this token for this follow",
                    target=target)
    sale = floor_lot(held - target) if target < held else _ZERO
    if sale <= _ZERO:
        return Skip(SkipReason.AT_TARGET, f"holding {held} is at its target {target}",
                    target=target)
    capped = reason_capped if sale == held else None
    if sale >= market.min_size:
        return SizedOrder(shares=sale, notional=sale * price, reason_capped=capped, target=target)
    if market_price is not None and market_price > _ZERO and sale * market_price >= MIN_NOTIONAL_USD:
        return SizedOrder(shares=sale, notional=sale * market_price, reason_capped=capped,
                          marketable=True, target=target)
    worth = "unknown" if market_price is None else str(sale * market_price)
    return Skip(SkipReason.REMAINDER_KEPT,
                f"selling {sale} of {held} held: under the min size {market.min_size} and worth "
                f"{worth} USD (< {MIN_NOTIONAL_USD}): kept, sold with the leader's next sell, once "
                "worth $1, or redeemed", target=target)


def _size_sell(fill: LeaderFill, rules: FollowRules, market: MarketInfo,
               follower: FollowerState, price: Decimal,
               market_price: Decimal | None) -> SizedOrder | Skip:
    current = follower.held_shares if follower.target_shares is None else follower.target_shares
    before = follower.trader_shares_before
    target = exit_target(current, fill.shares, before, rules.copy_pct)
    closed = before is not None and before > _ZERO and fill.shares >= before
    return sell_down_to(follower.held_shares, target, market, price, market_price,
                        reason_capped=CapReason.CLOSE_OUT if closed else CapReason.HOLDINGS)
