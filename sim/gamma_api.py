"""Gamma routes: /markets (list filters as repeated query params), /markets/{id},
/markets/slug/{slug}, /markets/keyset.

Market objects follow fixtures/gamma_market*.json: `outcomes`, `outcomePrices` and (v1)
`clobTokenIds` are JSON-encoded strings, `positionIds` a real array on v2 markets.

Invariant: without an explicit `closed` parameter, closed markets are hidden (the stricter
reading of an UNCONFIRMED Gamma default; `SimConfig.gamma_hide_closed_by_default`), so a client
resolving a possibly-closed market must ask with `closed=true` as docs/POLYMARKET.md §2 advises.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sim.http import HttpError, Request, Response, Router
from sim.state import Market, World
from sim.units import fmt, json_number

if TYPE_CHECKING:
    from sim.core import Simulator


def not_found(path: str) -> Response:
    """Gamma-style 404."""
    return Response(404, {"type": "not found error", "error": "not found"})


def _prices(world: World, market: Market) -> list[str]:
    if market.payouts is not None:  # resolved: the payout vector
        return [fmt(market.payouts[o.token_id]) for o in market.outcomes]
    out = []
    for o in market.outcomes:
        book = world.books[o.token_id]
        bid, ask = book.best_bid(), book.best_ask()
        if bid is not None and ask is not None:
            out.append(fmt((bid + ask) / 2))
        else:
            last = world.last_trade.get(o.token_id)
            out.append(fmt(last[0]) if last else "0.5")
    return out


def market_json(world: World, market: Market) -> dict[str, Any]:
    """One Gamma market object."""
    first = world.books[market.outcomes[0].token_id]
    bid, ask = first.best_bid(), first.best_ask()
    last = world.last_trade.get(market.outcomes[0].token_id)
    body: dict[str, Any] = {
        "id": market.gamma_id,
        "question": market.question,
        "conditionId": market.condition_id,
        "slug": market.slug,
        "version": market.version,
        "resolutionSource": "",
        "umaResolutionStatus": "resolved" if market.payouts is not None else None,
        "endDate": market.end_date,
        "endDateIso": market.end_date[:10] if market.end_date else None,
        "image": market.icon,
        "icon": market.icon,
        "description": market.description,
        "groupItemTitle": "",
        "category": market.category,
        "outcomes": json.dumps([o.label for o in market.outcomes]),
        "outcomePrices": json.dumps(_prices(world, market)),
        "marketMakerAddress": "",
        "questionID": market.question_id,
        "negRisk": market.neg_risk,
        "negRiskMarketID": market.neg_risk_market_id,
        "active": market.active,
        "closed": market.closed,
        "archived": False,
        "restricted": False,
        "enableOrderBook": True,
        "acceptingOrders": market.accepting_orders,
        "orderPriceMinTickSize": json_number(market.tick_size),
        "orderMinSize": json_number(market.min_size),
        "secondsDelay": 0,
        "feesEnabled": market.fees is not None,
        "feeType": "sports" if market.fees is not None else None,
        "feeSchedule": None
        if market.fees is None
        else {
            "exponent": json_number(market.fees.exponent),
            "rate": fmt(market.fees.rate),
            "takerOnly": market.fees.taker_only,
            "rebateRate": fmt(market.fees.rebate_rate),
        },
        "bestBid": json_number(bid) if bid is not None else None,
        "bestAsk": json_number(ask) if ask is not None else None,
        "lastTradePrice": json_number(last[0]) if last else None,
        "spread": json_number(ask - bid) if (bid is not None and ask is not None) else None,
        "events": [
            {
                "id": market.event_id,
                "slug": market.event_slug,
                "title": market.event_title,
                "negRisk": market.neg_risk,
                "closed": market.closed,
            }
        ]
        if market.event_id
        else [],
    }
    if market.version == "v2":
        body["positionIds"] = [o.token_id for o in market.outcomes]
    else:
        body["clobTokenIds"] = json.dumps([o.token_id for o in market.outcomes])
    return body


def _flag(req: Request, name: str) -> bool | None:
    value = req.param(name)
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise HttpError(422, {"type": "validation error", "error": f"{name} must be true or false"})
    return value.lower() == "true"


def _filtered(sim: Simulator, req: Request) -> list[Market]:
    world = sim.world
    cids = {c.lower() for c in req.params("condition_ids")}
    tokens = set(req.params("clob_token_ids"))
    positions = set(req.params("position_ids"))
    ids = set(req.params("id"))
    slugs = set(req.params("slug"))
    version = req.param("version")
    closed = _flag(req, "closed")
    active = _flag(req, "active")
    out = []
    for m in world.markets.values():
        token_ids = {o.token_id for o in m.outcomes}
        if cids and m.condition_id.lower() not in cids:
            continue
        if tokens and (m.version != "v1" or not tokens & token_ids):
            continue
        if positions and (m.version != "v2" or not positions & token_ids):
            continue
        if ids and m.gamma_id not in ids:
            continue
        if slugs and m.slug not in slugs:
            continue
        if version and m.version != version:
            continue
        if closed is None and world.config.gamma_hide_closed_by_default and m.closed:
            continue
        if closed is not None and m.closed != closed:
            continue
        if active is not None and m.active != active:
            continue
        out.append(m)
    return out


def _int(req: Request, name: str, default: int) -> int:
    text = req.param(name)
    if text is None:
        return default
    if not text.isdigit():
        raise HttpError(
            422, {"type": "validation error", "error": f"{name} must be a non-negative integer"}
        )
    return int(text)


def get_markets(sim: Simulator, req: Request) -> Response:
    """GET /markets: bare array of market objects."""
    markets = _filtered(sim, req)
    offset, limit = _int(req, "offset", 0), _int(req, "limit", 500)
    return Response(200, [market_json(sim.world, m) for m in markets[offset : offset + limit]])


def get_markets_keyset(sim: Simulator, req: Request) -> Response:
    """GET /markets/keyset: {markets, next_cursor} (one page: the simulator has few markets)."""
    markets = _filtered(sim, req)
    limit = min(_int(req, "limit", 100), 1000)
    return Response(
        200, {"markets": [market_json(sim.world, m) for m in markets[:limit]], "next_cursor": None}
    )


def get_market(sim: Simulator, req: Request, market_id: str) -> Response:
    """GET /markets/{id}."""
    for m in sim.world.markets.values():
        if m.gamma_id == market_id:
            return Response(200, market_json(sim.world, m))
    return not_found(req.path)


def get_market_by_slug(sim: Simulator, req: Request, slug: str) -> Response:
    """GET /markets/slug/{slug}."""
    for m in sim.world.markets.values():
        if m.slug == slug:
            return Response(200, market_json(sim.world, m))
    return not_found(req.path)


def build_router() -> Router:
    """All Gamma routes."""
    r = Router()
    r.add("GET", r"/markets", get_markets)
    r.add("GET", r"/markets/keyset", get_markets_keyset)
    r.add("GET", r"/markets/slug/(?P<slug>[^/]+)", get_market_by_slug)
    r.add("GET", r"/markets/(?P<market_id>\d+)", get_market)
    return r
