"""Smart pricing: the limit price of a copy order as a function of its age and the live book.

Pure functions of values (no I/O, no clock). The schedule (seed plan, "Smart Pricing"):

| age      | BUY price (SELL is the mirror image)                                     |
|----------|---------------------------------------------------------------------------|
| 0–6 h    | the trader's price                                                        |
| 6–12 h   | trader + f × (mid − trader); f by spread class: tight 10 %, normal 15 %,   |
|          | wide 20 % (patient when the book is tight, aggressive when it is wide)    |
| 12–24 h  | the mid                                                                    |
| 24–36 h  | the best opposite price (best ask for a BUY, best bid for a SELL): the   |
|          | order is marketable "at that price or better"                            |
| ≥ 36 h   | market conversion: a FAK order whose protective limit is the slippage    |
|          | limit, so it takes whatever the book offers up to that price             |

Invariants (property tests in tests/copying/test_smart_pricing.py):
- every price is on the tick grid and inside [tick, 1 − tick]; snapping is in the safe
  direction (BUY floors, SELL ceils);
- no price ever crosses the per-follow slippage limit: BUY ≤ trader × (1 + s),
  SELL ≥ trader × (1 − s) (default s = DEFAULT_MAX_SLIPPAGE = 5 %); a target beyond it is
  clamped to it;
- before 6 h a price is never worse than the trader's (BUY ≤ trader, SELL ≥ trader);
- for a fixed book the schedule only ever gets more aggressive with age: each stage's price is
  the most aggressive of its own target and every earlier stage's target (a BUY never goes
  below the trader's price because the mid happens to be lower). A stage whose reference the
  book cannot give (no mid, no opposite side) leaves the price where the earlier stages put it.
- never chase: at the market stage, when the opposite side is empty or entirely beyond the
  slippage limit the decision is WAIT (keep any live order, ask again later); from
  GIVE_UP_AFTER (72 h) on it is SKIP (cancel the copy, reason recorded).
When no grid price satisfies the rules (e.g. the tick changed under a price near 0 or 1) the
decision is WAIT with reason `no_valid_price` (SKIP from GIVE_UP_AFTER on).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_FLOOR, Decimal, localcontext
from enum import StrEnum
from typing import Literal, TypedDict

from infra.errors import InputError
from wire.ticks import ceil_to_tick, floor_to_tick, is_valid_tick
from wire.types import BookLevel, OrderBook, OrderType, Side

SpreadClass = Literal["tight", "normal", "wide"]

TIGHT_BELOW = Decimal("0.005")  # relative spread (spread / mid) under 0.5 % is tight
WIDE_ABOVE = Decimal("0.02")  # over 2 % is wide; in between (inclusive) is normal
TOWARD_MID_FRACTION: dict[SpreadClass, Decimal] = {
    "tight": Decimal("0.10"),
    "normal": Decimal("0.15"),
    "wide": Decimal("0.20"),
}
DEFAULT_MAX_SLIPPAGE = Decimal("0.05")  # 5 % of the trader's price

TOWARD_MID_AFTER = timedelta(hours=6)
MID_AFTER = timedelta(hours=12)
BEST_OPPOSITE_AFTER = timedelta(hours=24)
MARKET_AFTER = timedelta(hours=36)
GIVE_UP_AFTER = timedelta(hours=72)  # market stage still not executable → skip the copy

MARKET_ORDER_TYPE = OrderType.FAK  # fill what the book offers within the limit, cancel the rest
LIMIT_ORDER_TYPE = OrderType.GTC

_ONE = Decimal(1)


class PriceAction(StrEnum):
    """What the executor should do with a copy order."""

    LIMIT = "limit"  # (re)place a resting limit order at `price`
    MARKET = "market"  # place a FAK order with protective limit `price`
    WAIT = "wait"  # place or change nothing now; ask again later
    SKIP = "skip"  # give up on this copy (cancel any live order); `reason` says why


class Stage(StrEnum):
    """The step of the schedule a decision comes from."""

    TRADER = "trader"
    TOWARD_MID = "toward_mid"
    MID = "mid"
    BEST_OPPOSITE = "best_opposite"
    MARKET = "market"


class PriceReason(StrEnum):
    """Why a decision is not the plain scheduled price."""

    NONE = ""
    CLAMPED_TO_SLIPPAGE_LIMIT = "clamped_to_slippage_limit"
    BEYOND_SLIPPAGE_LIMIT = "beyond_slippage_limit"
    NO_LIQUIDITY = "no_liquidity"
    NO_VALID_PRICE = "no_valid_price"
    INVALID_TRADER_PRICE = "invalid_trader_price"


@dataclass(frozen=True)
class PriceDecision:
    """A pricing decision: an action, its price and order type, and where it came from."""

    action: PriceAction
    price: Decimal | None  # LIMIT: the limit price; MARKET: the protective limit
    order_type: OrderType | None
    stage: Stage
    spread: SpreadClass
    reason: PriceReason = PriceReason.NONE
    # MARKET BUY: the best ask the dollar budget is counted at. The venue spends a market BUY's
    # dollars at the prices it finds, so a budget of shares × limit would buy more shares than
    # sized whenever the asks are better than the limit; shares × best ask cannot.
    budget_price: Decimal | None = None

    @property
    def spend_price(self) -> Decimal | None:
        """The price a BUY's dollars are counted at: the best ask for a market BUY, else `price`."""
        return self.budget_price if self.budget_price is not None else self.price


def spread_class(book: OrderBook) -> SpreadClass:
    """Classify the book's relative spread (spread / mid); a one-sided book counts as wide."""
    spread, mid = book.spread, book.mid
    if spread is None or mid is None or mid <= 0:
        return "wide"
    relative = spread / mid
    if relative < TIGHT_BELOW:
        return "tight"
    if relative > WIDE_ABOVE:
        return "wide"
    return "normal"


def stage_for(elapsed: timedelta) -> Stage:
    """The schedule stage for an order of this age (a negative age counts as 0)."""
    if elapsed >= MARKET_AFTER:
        return Stage.MARKET
    if elapsed >= BEST_OPPOSITE_AFTER:
        return Stage.BEST_OPPOSITE
    if elapsed >= MID_AFTER:
        return Stage.MID
    if elapsed >= TOWARD_MID_AFTER:
        return Stage.TOWARD_MID
    return Stage.TRADER


def snap(side: Side, price: Decimal, tick: Decimal) -> Decimal:
    """Snap to the grid in the safe direction: a BUY floors, a SELL ceils."""
    return floor_to_tick(price, tick) if side is Side.BUY else ceil_to_tick(price, tick)


def slippage_limit(side: Side, trader_price: Decimal, tick: Decimal,
                   max_slippage: Decimal = DEFAULT_MAX_SLIPPAGE) -> Decimal:
    """The worst grid price allowed: BUY highest ≤ trader×(1+s), SELL lowest ≥ trader×(1−s)."""
    if side is Side.BUY:
        return floor_to_tick(trader_price * (_ONE + max_slippage), tick)
    return ceil_to_tick(trader_price * (_ONE - max_slippage), tick)


def _more_aggressive(side: Side, a: Decimal, b: Decimal) -> Decimal:
    return max(a, b) if side is Side.BUY else min(a, b)


def _within(side: Side, price: Decimal, bound: Decimal) -> bool:
    """True if `price` is no worse for us than `bound` (BUY ≤ bound, SELL ≥ bound)."""
    return price <= bound if side is Side.BUY else price >= bound


def _opposite_best(side: Side, book: OrderBook) -> Decimal | None:
    return book.best_ask if side is Side.BUY else book.best_bid


def price_copy(
    side: Side,
    trader_price: Decimal,
    book: OrderBook,
    tick: Decimal,
    elapsed: timedelta,
    max_slippage: Decimal = DEFAULT_MAX_SLIPPAGE,
) -> PriceDecision:
    """Price a copy order of this age against this book, following the schedule above."""
    if not is_valid_tick(tick):
        raise ValueError(f"{tick} is not a Polymarket tick size")
    if not (Decimal(0) <= max_slippage < _ONE):
        raise ValueError(f"max_slippage must be in [0, 1), got {max_slippage}")
    elapsed = max(elapsed, timedelta(0))
    stage = stage_for(elapsed)
    spread = spread_class(book)

    def decide(action: PriceAction, price: Decimal | None = None,
               reason: PriceReason = PriceReason.NONE, budget_price: Decimal | None = None) -> PriceDecision:
        order_type = {PriceAction.LIMIT: LIMIT_ORDER_TYPE,
                      PriceAction.MARKET: MARKET_ORDER_TYPE}.get(action)
        return PriceDecision(action, price, order_type, stage, spread, reason, budget_price)

    def stuck(reason: PriceReason) -> PriceDecision:
        return decide(PriceAction.SKIP if elapsed >= GIVE_UP_AFTER else PriceAction.WAIT,
                      reason=reason)

    if not (Decimal(0) < trader_price < _ONE):
        return decide(PriceAction.SKIP, reason=PriceReason.INVALID_TRADER_PRICE)

    with localcontext() as ctx:
        ctx.prec = 50
        low, high = tick, _ONE - tick
        limit = slippage_limit(side, trader_price, tick, max_slippage)
        limit = min(limit, high) if side is Side.BUY else max(limit, low)
        if not (low <= limit <= high):
            return stuck(PriceReason.NO_VALID_PRICE)

        if stage is Stage.MARKET:
            best = _opposite_best(side, book)
            if best is None:
                return stuck(PriceReason.NO_LIQUIDITY)
            if not _within(side, best, limit):
                return stuck(PriceReason.BEYOND_SLIPPAGE_LIMIT)
            return decide(PriceAction.MARKET, limit, budget_price=best if side is Side.BUY else None)

        target = _scheduled_target(side, trader_price, book, tick, stage, spread)
        reason = PriceReason.NONE
        if not _within(side, target, limit):
            target, reason = limit, PriceReason.CLAMPED_TO_SLIPPAGE_LIMIT
        target = min(max(target, low), high)
        if stage is Stage.TRADER and not _within(side, target, trader_price):
            return stuck(PriceReason.NO_VALID_PRICE)
        if not _within(side, target, limit):
            return stuck(PriceReason.NO_VALID_PRICE)
        return decide(PriceAction.LIMIT, target, reason)


def _scheduled_target(side: Side, trader_price: Decimal, book: OrderBook, tick: Decimal,
                      stage: Stage, spread: SpreadClass) -> Decimal:
    """The most aggressive of the trader's price and each reached stage's grid target."""
    price = snap(side, trader_price, tick)
    mid = book.mid
    if stage in (Stage.TOWARD_MID, Stage.MID, Stage.BEST_OPPOSITE) and mid is not None:
        step = trader_price + TOWARD_MID_FRACTION[spread] * (mid - trader_price)
        price = _more_aggressive(side, price, snap(side, step, tick))
    if stage in (Stage.MID, Stage.BEST_OPPOSITE) and mid is not None:
        price = _more_aggressive(side, price, snap(side, mid, tick))
    if stage is Stage.BEST_OPPOSITE:
        best = _opposite_best(side, book)
        if best is not None:
            price = _more_aggressive(side, price, snap(side, best, tick))
    return price


def reprice_due(live_price: Decimal | None, decision: PriceDecision) -> bool:
    """True when a live order at `live_price` must be replaced to follow `decision`.

    LIMIT: when there is no live order or its price differs; MARKET: always (a conversion);
    WAIT: never; SKIP: never (the caller cancels instead of replacing).
    """
    if decision.action is PriceAction.MARKET:
        return True
    if decision.action is PriceAction.LIMIT:
        return live_price is None or decision.price != live_price
    return False


# --- the plan's entry point -----------------------------------------------------------------

DEFAULT_FACADE_TICK = Decimal("0.01")  # Polymarket's common tick; its prices are valid on finer grids
_STAGE_STEP = {stage: n for n, stage in enumerate(Stage, start=1)}  # 1 = trader … 5 = market


class OptimalPrice(TypedDict):
    """What `SmartPricingEngine.calculate_optimal_price` returns."""

    price: Decimal | None  # limit price (LIMIT) or protective limit (MARKET); None for wait/skip
    spend_price: Decimal | None  # what a BUY's dollars are counted at (best ask for a market BUY)
    action: str  # limit | market | wait | skip
    order_type: str | None  # GTC for a limit, FAK for a market conversion, None otherwise
    spread_class: SpreadClass  # tight | normal | wide
    stage: str  # trader | toward_mid | mid | best_opposite | market
    step: int  # the stage's place in the schedule, 1 (0–6 h) … 5 (≥ 36 h)
    reason: str  # "" or a PriceReason value (clamped_to_slippage_limit, no_liquidity, …)
    tick_size: Decimal
    max_slippage: Decimal


def _decimal(name: str, value: object) -> Decimal:
    """`Decimal(str(value))` for an int, float, str or Decimal; InputError for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise InputError(f"{name} must be a number, got {type(value).__name__}")
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError:
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not number.is_finite():
        raise InputError(f"{name} must be finite, got {value!r}")
    return number


def _side(value: object) -> Side:
    if isinstance(value, Side):
        return value
    text = value.strip().upper() if isinstance(value, str) else value
    try:
        return Side(text)
    except ValueError:
        raise InputError(f"order_side must be BUY or SELL, got {value!r}") from None


def _book_price(name: str, value: object) -> Decimal | None:
    if value is None:
        return None
    price = _decimal(name, value)
    if not (Decimal(0) < price < _ONE):
        raise InputError(f"{name} must be strictly between 0 and 1, got {value!r}")
    return price


class SmartPricingEngine:
    """The plan's pricing entry point: `calculate_optimal_price`, a thin facade over `price_copy`.

    It turns the plan's loose inputs (floats, strings, a `market_data` dict, hours as a number)
    into exact Decimals with `Decimal(str(x))`, validates them (InputError on anything wrong),
    calls `price_copy` and returns its decision as a dict. No state, no I/O.
    """

    def __init__(self, tick_size: object = DEFAULT_FACADE_TICK,
                 max_slippage: object = DEFAULT_MAX_SLIPPAGE) -> None:
        """Defaults for calls whose `market_data` names no `tick_size` / `max_slippage`."""
        self.tick_size = self._tick(tick_size)
        self.max_slippage = self._slippage(max_slippage)

    @staticmethod
    def _tick(value: object) -> Decimal:
        tick = _decimal("tick_size", value)
        if not is_valid_tick(tick):
            raise InputError(f"tick_size must be a Polymarket tick size, got {value!r}")
        return tick

    @staticmethod
    def _slippage(value: object) -> Decimal:
        slippage = _decimal("max_slippage", value)
        if not (Decimal(0) <= slippage < _ONE):
            raise InputError(f"max_slippage must be in [0, 1), got {value!r}")
        return slippage

    def calculate_optimal_price(
        self,
        target_price: object,
        order_side: object,
        market_data: Mapping[str, object],
        hours_elapsed: object,
        *,
        tick_size: object = None,
        max_slippage: object = None,
    ) -> OptimalPrice:
        """Price a copy of a trade at `target_price` that has waited `hours_elapsed` hours.

        `market_data` needs `best_bid` and/or `best_ask` (a missing or None side is an empty
        side) and may carry `tick_size` and `max_slippage` (the keyword arguments win over it;
        other keys are ignored). Raises InputError on an unknown side, a price outside (0, 1),
        a crossed book, negative hours, or a bad tick / slippage.
        """
        side = _side(order_side)
        trader_price = _decimal("target_price", target_price)
        if not (Decimal(0) < trader_price < _ONE):
            raise InputError(f"target_price must be strictly between 0 and 1, got {target_price!r}")
        if not isinstance(market_data, Mapping):
            raise InputError(f"market_data must be a mapping, got {type(market_data).__name__}")
        bid = _book_price("best_bid", market_data.get("best_bid"))
        ask = _book_price("best_ask", market_data.get("best_ask"))
        if bid is not None and ask is not None and bid >= ask:
            raise InputError(f"crossed book: best_bid {bid} >= best_ask {ask}")
        tick = self._tick(_first(tick_size, market_data.get("tick_size"), self.tick_size))
        slippage = self._slippage(_first(max_slippage, market_data.get("max_slippage"),
                                         self.max_slippage))
        hours = _decimal("hours_elapsed", hours_elapsed)
        if hours < 0:
            raise InputError(f"hours_elapsed must be >= 0, got {hours_elapsed!r}")
        try:  # whole microseconds, rounded down: an order is never aged past a boundary early
            elapsed = timedelta(microseconds=int((hours * 3_600_000_000).to_integral_value(ROUND_FLOOR)))
        except ArithmeticError:  # OverflowError from timedelta, decimal.Overflow from the product
            raise InputError(f"hours_elapsed is too large: {hours_elapsed!r}") from None
        book = OrderBook(
            token_id="",
            bids=() if bid is None else (BookLevel(bid, Decimal(0)),),
            asks=() if ask is None else (BookLevel(ask, Decimal(0)),),
            tick_size=tick, min_size=Decimal(0),
        )
        decision = price_copy(side, trader_price, book, tick, elapsed, slippage)
        return OptimalPrice(
            price=decision.price,
            spend_price=decision.spend_price,
            action=decision.action.value,
            order_type=None if decision.order_type is None else decision.order_type.value,
            spread_class=decision.spread,
            stage=decision.stage.value,
            step=_STAGE_STEP[decision.stage],
            reason=decision.reason.value,
            tick_size=tick,
            max_slippage=slippage,
        )


def _first(*values: object) -> object:
    """The first value that is not None."""
    return next(v for v in values if v is not None)
