"""CLOB V2 routes: public market data, L1 key management, and L2 trading/account routes.

Shapes follow docs/POLYMARKET.md §3–§5 and the fixtures: books worst→best on both sides, `/price?side=BUY`
answers the best bid, REST statuses carry the `TRADE_STATUS_` prefix, cursors are base64
offsets from `MA==` to the end sentinel `LTE=`.

Invariant: every L2 route authenticates before touching state; a caller sees and cancels only
its own orders and the trades it took part in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sim import engine
from sim.auth import builder_authenticate, existing_key, issue_key, l1_authenticate, l2_authenticate
from sim.engine import trade_tx_visible
from sim.http import HttpError, Request, Response, Router
from sim.orders import OrderRejected, order_view, place_batch, place_order
from sim.state import COLLATERAL, ApiKeyRecord, ClobTrade, HeartbeatState, Market, World
from sim.units import fmt, fmt_base
from sim.verify import CTF_EXCHANGE_V2, EXCHANGE_V3, NEG_RISK_EXCHANGE_V2

if TYPE_CHECKING:
    from sim.core import Simulator

NO_BOOK = {"error": "No orderbook exists for the requested token id"}
END_CURSOR = "LTE="
NOT_CANCELED = "order can't be found - already canceled or matched"
ALLOWANCE_SPENDERS = {
    "COLLATERAL": (CTF_EXCHANGE_V2, NEG_RISK_EXCHANGE_V2, EXCHANGE_V3),
    "CONDITIONAL": (CTF_EXCHANGE_V2, NEG_RISK_EXCHANGE_V2),
    "CONDITIONAL-V2": (EXCHANGE_V3,),
}


def not_found(path: str) -> Response:
    """CLOB-style 404 for an unknown route."""
    return Response(404, {"error": "not found"})


# ---- helpers -----------------------------------------------------------------------------------


def _token_market(world: World, token_id: str | None, *, book_required: bool = True) -> Market:
    if not token_id or not token_id.isdigit():
        raise HttpError(400, {"error": "Invalid token id"})
    market = world.by_token.get(token_id)
    if market is None or (book_required and market.closed):
        raise HttpError(404, NO_BOOK)
    return market


def book_view(world: World, token_id: str) -> dict[str, Any]:
    """GET /book body: bids ascending and asks descending (best price last on both)."""
    market = world.by_token[token_id]
    book = world.books[token_id]
    bids = [{"price": fmt(p), "size": fmt_base(s)} for p, s in reversed(book.levels("BUY"))]
    asks = [{"price": fmt(p), "size": fmt_base(s)} for p, s in reversed(book.levels("SELL"))]
    last = world.last_trade.get(token_id)
    body: dict[str, Any] = {
        "market": market.condition_id,
        "asset_id": token_id,
        "timestamp": str(int(world.clock.now() * 1000)),
        "hash": "",
        "bids": bids,
        "asks": asks,
        "min_order_size": fmt(market.min_size),
        "tick_size": fmt(market.tick_size),
        "neg_risk": market.neg_risk,
        "last_trade_price": fmt(last[0]) if last else "",
    }
    body["hash"] = hashlib.sha1(
        json.dumps([bids, asks, token_id]).encode(), usedforsecurity=False
    ).hexdigest()
    return body


def _best(world: World, token_id: str, side: str) -> Decimal:
    book = world.books[token_id]
    price = book.best_bid() if side == "BUY" else book.best_ask()
    if price is None:
        raise HttpError(404, NO_BOOK)
    return price


def _mid(world: World, token_id: str) -> Decimal:
    return (_best(world, token_id, "BUY") + _best(world, token_id, "SELL")) / 2


def _side_param(value: Any) -> str:
    if value not in ("BUY", "SELL"):
        raise HttpError(400, {"error": "Invalid side"})
    return str(value)


def _list_body(req: Request) -> list[dict[str, Any]]:
    body = req.json()
    if not isinstance(body, list) or not all(isinstance(x, dict) for x in body):
        raise HttpError(400, {"error": "Invalid payload"})
    if len(body) > 500:
        raise HttpError(400, {"error": "Payload exceeds the limit"})
    return body


def _cursor_offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        value = int(base64.b64decode(cursor, validate=True).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise HttpError(400, {"error": "invalid next_cursor"}) from exc
    if value < 0:
        raise HttpError(400, {"error": "invalid next_cursor"})
    return value


def _page(world: World, rows: list[Any], cursor: str | None) -> dict[str, Any]:
    size = world.config.clob_page_size
    start = _cursor_offset(cursor)
    chunk = rows[start : start + size]
    more = start + size < len(rows)
    nxt = base64.b64encode(str(start + size).encode()).decode() if more else END_CURSOR
    return {"limit": size, "next_cursor": nxt, "count": len(chunk), "data": chunk}


def _l2(sim: Simulator, req: Request) -> ApiKeyRecord:
    return l2_authenticate(sim.world, req.method, req.path, req.headers, req.body)


# ---- public ------------------------------------------------------------------------------------


def get_ok(sim: Simulator, req: Request) -> Response:
    """GET /ok."""
    return Response(200, "OK")


def get_time(sim: Simulator, req: Request) -> Response:
    """GET /time: server time, plain integer seconds."""
    return Response(200, int(sim.world.clock.now()))


def get_version(sim: Simulator, req: Request) -> Response:
    """GET /version."""
    return Response(200, {"version": 2})


def get_book(sim: Simulator, req: Request) -> Response:
    """GET /book?token_id=."""
    token = req.param("token_id")
    _token_market(sim.world, token)
    return Response(200, book_view(sim.world, str(token)))


def post_books(sim: Simulator, req: Request) -> Response:
    """POST /books [{token_id}] (unknown ids are skipped)."""
    out = []
    for item in _list_body(req):
        token = str(item.get("token_id", ""))
        market = sim.world.by_token.get(token)
        if market is not None and not market.closed:
            out.append(book_view(sim.world, token))
    return Response(200, out)


def get_books(sim: Simulator, req: Request) -> Response:
    """GET /books?token_ids=a,b."""
    tokens = [t for v in req.params("token_ids") for t in v.split(",") if t]
    out = [
        book_view(sim.world, t)
        for t in tokens
        if t in sim.world.by_token and not sim.world.by_token[t].closed
    ]
    return Response(200, out)


def get_price(sim: Simulator, req: Request) -> Response:
    """GET /price: side=BUY → best bid, side=SELL → best ask (the resting side)."""
    token = req.param("token_id")
    _token_market(sim.world, token)
    side = _side_param(req.param("side"))
    return Response(200, {"price": fmt(_best(sim.world, str(token), side))})


def post_prices(sim: Simulator, req: Request) -> Response:
    """POST /prices [{token_id, side}] → {token: {side: price}}."""
    out: dict[str, dict[str, str]] = {}
    for item in _list_body(req):
        token = str(item.get("token_id", ""))
        _token_market(sim.world, token)
        side = _side_param(item.get("side"))
        out.setdefault(token, {})[side] = fmt(_best(sim.world, token, side))
    return Response(200, out)


def get_midpoint(sim: Simulator, req: Request) -> Response:
    """GET /midpoint → {"mid_price": "0.645"}."""
    token = req.param("token_id")
    _token_market(sim.world, token)
    return Response(200, {"mid_price": fmt(_mid(sim.world, str(token)))})


def post_midpoints(sim: Simulator, req: Request) -> Response:
    """POST /midpoints [{token_id}] → {token: mid}."""
    out = {}
    for item in _list_body(req):
        token = str(item.get("token_id", ""))
        _token_market(sim.world, token)
        out[token] = fmt(_mid(sim.world, token))
    return Response(200, out)


def get_spread(sim: Simulator, req: Request) -> Response:
    """GET /spread → {"spread": "0.01"}."""
    token = req.param("token_id")
    _token_market(sim.world, token)
    spread = _best(sim.world, str(token), "SELL") - _best(sim.world, str(token), "BUY")
    return Response(200, {"spread": fmt(spread)})


def post_spreads(sim: Simulator, req: Request) -> Response:
    """POST /spreads [{token_id}] → {token: spread}."""
    out = {}
    for item in _list_body(req):
        token = str(item.get("token_id", ""))
        _token_market(sim.world, token)
        out[token] = fmt(_best(sim.world, token, "SELL") - _best(sim.world, token, "BUY"))
    return Response(200, out)


def _last(world: World, token: str) -> dict[str, str]:
    last = world.last_trade.get(token)
    return {"price": fmt(last[0]), "side": last[1]} if last else {"price": "0", "side": ""}


def get_last_trade_price(sim: Simulator, req: Request) -> Response:
    """GET /last-trade-price."""
    token = req.param("token_id")
    _token_market(sim.world, token)
    return Response(200, _last(sim.world, str(token)))


def post_last_trades_prices(sim: Simulator, req: Request) -> Response:
    """POST /last-trades-prices [{token_id}]."""
    out = []
    for item in _list_body(req):
        token = str(item.get("token_id", ""))
        _token_market(sim.world, token)
        out.append({"token_id": token, **_last(sim.world, token)})
    return Response(200, out)


def _market_or_404(world: World, token: str | None) -> Market:
    market = world.by_token.get(token or "")
    if market is None:
        raise HttpError(404, {"error": "market not found"})
    return market


def get_tick_size(sim: Simulator, req: Request, token: str | None = None) -> Response:
    """GET /tick-size?token_id= or /tick-size/{token_id}."""
    market = _market_or_404(sim.world, token or req.param("token_id"))
    return Response(200, {"minimum_tick_size": float(market.tick_size)})


def get_neg_risk(sim: Simulator, req: Request, token: str | None = None) -> Response:
    """GET /neg-risk."""
    market = _market_or_404(sim.world, token or req.param("token_id"))
    return Response(200, {"neg_risk": market.neg_risk})


def get_fee_rate(sim: Simulator, req: Request, token: str | None = None) -> Response:
    """GET /fee-rate (V1 artefact: always 0 base fee)."""
    _market_or_404(sim.world, token or req.param("token_id"))
    return Response(200, {"base_fee": 0})


def get_clob_market(sim: Simulator, req: Request, cid: str) -> Response:
    """GET /clob-markets/{condition_id}: compact market parameters."""
    market = sim.world.market_by_condition(cid)
    if market is None:
        raise HttpError(404, {"error": "market not found"})
    body: dict[str, Any] = {
        "t": [{"t": o.token_id, "o": o.label} for o in market.outcomes],
        "mts": float(market.tick_size),
        "mos": float(market.min_size),
        "nr": market.neg_risk,
        "mbf": 0,
        "tbf": 0,
        "gst": None,
        "r": None,
        "rfqe": False,
        "ibce": False,
        "oas": 0,
    }
    if market.fees is not None:
        body["fd"] = {
            "r": float(market.fees.rate),
            "e": float(market.fees.exponent),
            "to": market.fees.taker_only,
        }
    return Response(200, body)


def get_market_by_token(sim: Simulator, req: Request, token: str) -> Response:
    """GET /markets-by-token/{token_id}."""
    market = _market_or_404(sim.world, token)
    return Response(
        200,
        {"condition_id": market.condition_id, "token_ids": [o.token_id for o in market.outcomes]},
    )


def get_clob_legacy_market(sim: Simulator, req: Request, cid: str) -> Response:
    """GET /markets/{condition_id} (legacy CLOB listing shape)."""
    market = sim.world.market_by_condition(cid)
    if market is None:
        raise HttpError(404, {"error": "market not found"})
    return Response(
        200,
        {
            "condition_id": market.condition_id,
            "question": market.question,
            "market_slug": market.slug,
            "tokens": [
                {"token_id": o.token_id, "outcome": o.label, "winner": False}
                for o in market.outcomes
            ],
            "minimum_tick_size": float(market.tick_size),
            "minimum_order_size": float(market.min_size),
            "neg_risk": market.neg_risk,
            "active": market.active,
            "closed": market.closed,
            "accepting_orders": market.accepting_orders,
            "enable_order_book": True,
        },
    )


# ---- L1 ----------------------------------------------------------------------------------------


def _creds(record: ApiKeyRecord) -> dict[str, str]:
    return {"apiKey": record.api_key, "secret": record.secret, "passphrase": record.passphrase}


def post_api_key(sim: Simulator, req: Request) -> Response:
    """POST /auth/api-key (L1): create, or return the key already issued for this nonce."""
    eoa, nonce = l1_authenticate(sim.world, req.headers)
    return Response(200, _creds(issue_key(sim.world, eoa, nonce)))


def get_derive_api_key(sim: Simulator, req: Request) -> Response:
    """GET /auth/derive-api-key (L1): only a key created earlier can be derived."""
    eoa, nonce = l1_authenticate(sim.world, req.headers)
    record = existing_key(sim.world, eoa, nonce)
    if record is None:
        raise HttpError(400, {"error": "Could not derive api key!"})
    return Response(200, _creds(record))


# ---- L2 account --------------------------------------------------------------------------------


def get_api_keys(sim: Simulator, req: Request) -> Response:
    """GET /auth/api-keys (L2): keys of the caller's EOA."""
    key = _l2(sim, req)
    keys = [
        k.api_key for k in sim.world.api_keys.values() if k.address == key.address and not k.deleted
    ]
    return Response(200, {"apiKeys": keys})


def delete_api_key(sim: Simulator, req: Request) -> Response:
    """DELETE /auth/api-key (L2): revoke the calling key."""
    key = _l2(sim, req)
    key.deleted = True
    return Response(200, "OK")


def get_closed_only(sim: Simulator, req: Request) -> Response:
    """GET /auth/ban-status/closed-only (L2)."""
    key = _l2(sim, req)
    return Response(200, {"closed_only": key.address.lower() in sim.world.closed_only})


def _balance_body(sim: Simulator, req: Request) -> dict[str, Any]:
    key = _l2(sim, req)
    world = sim.world
    asset_type = req.param("asset_type") or ""
    if asset_type not in ALLOWANCE_SPENDERS:
        raise HttpError(400, {"error": "invalid asset type"})
    sig_text = req.param("signature_type") or "0"
    if not sig_text.isdigit() or int(sig_text) > 3:
        raise HttpError(400, {"error": "invalid signature type"})
    funder = world.funder_for(key.address, int(sig_text))
    if asset_type == COLLATERAL:
        balance = world.ledger.balance(funder, COLLATERAL) if funder else 0
    else:
        token = req.param("token_id") or ""
        if not token.isdigit():
            raise HttpError(400, {"error": "Invalid token id"})
        market = world.by_token.get(token)
        same_ledger = market is not None and market.conditional_asset_type == asset_type
        balance = world.ledger.balance(funder, token) if (funder and same_ledger) else 0
    allowances = {
        spender: str(world.ledger.allowance(funder, asset_type, spender) if funder else 0)
        for spender in ALLOWANCE_SPENDERS[asset_type]
    }
    return {"balance": str(max(balance, 0)), "allowances": allowances}


def get_balance_allowance(sim: Simulator, req: Request) -> Response:
    """GET /balance-allowance?asset_type=&token_id=&signature_type= (L2)."""
    return Response(200, _balance_body(sim, req))


def get_balance_allowance_update(sim: Simulator, req: Request) -> Response:
    """GET /balance-allowance/update (L2): the simulator's view is always fresh."""
    return Response(200, _balance_body(sim, req))


# ---- L2 orders ---------------------------------------------------------------------------------


def post_order(sim: Simulator, req: Request) -> Response:
    """POST /order (L2)."""
    key = _l2(sim, req)
    try:
        return Response(200, place_order(sim.world, key, req.json()))
    except OrderRejected as exc:
        return Response(exc.status, exc.body())


def post_orders(sim: Simulator, req: Request) -> Response:
    """POST /orders (L2): ≤ 15 orders, per-order errors inside a 200."""
    key = _l2(sim, req)
    try:
        return Response(200, place_batch(sim.world, key, req.json()))
    except OrderRejected as exc:
        return Response(exc.status, exc.body())


def _check_cancel_mode(world: World) -> None:
    if world.config.trading_mode == "disabled":
        raise HttpError(
            503, {"error": "Trading is currently disabled. Check polymarket.com for updates"}
        )


def _cancel_ids(sim: Simulator, key: ApiKeyRecord, ids: list[str]) -> dict[str, Any]:
    canceled: list[str] = []
    not_canceled: dict[str, str] = {}
    for raw_id in ids:
        order = sim.world.orders.get(str(raw_id).lower())
        if (
            order is not None
            and order.owner == key.api_key
            and engine.cancel(sim.world, order, "canceled")
        ):
            canceled.append(order.id)
        else:
            not_canceled[str(raw_id)] = NOT_CANCELED
    return {"canceled": canceled, "not_canceled": not_canceled}


def delete_order(sim: Simulator, req: Request) -> Response:
    """DELETE /order {"orderID"} (L2)."""
    key = _l2(sim, req)
    _check_cancel_mode(sim.world)
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get("orderID"), str):
        raise HttpError(400, {"error": "Invalid payload"})
    return Response(200, _cancel_ids(sim, key, [body["orderID"]]))


def delete_orders(sim: Simulator, req: Request) -> Response:
    """DELETE /orders [ids] (L2)."""
    key = _l2(sim, req)
    _check_cancel_mode(sim.world)
    body = req.json()
    if not isinstance(body, list) or not all(isinstance(x, str) for x in body):
        raise HttpError(400, {"error": "Invalid payload"})
    if len(body) > 3000:
        raise HttpError(400, {"error": "Payload exceeds the limit"})
    return Response(200, _cancel_ids(sim, key, body))


def delete_cancel_all(sim: Simulator, req: Request) -> Response:
    """DELETE /cancel-all (L2): every resting order of the key."""
    key = _l2(sim, req)
    _check_cancel_mode(sim.world)
    ids = [o.id for o in sim.world.orders.values() if o.owner == key.api_key and o.status == "LIVE"]
    return Response(200, _cancel_ids(sim, key, ids))


def delete_cancel_market_orders(sim: Simulator, req: Request) -> Response:
    """DELETE /cancel-market-orders {market?, asset_id?} (L2)."""
    key = _l2(sim, req)
    _check_cancel_mode(sim.world)
    body = req.json() or {}
    if not isinstance(body, dict):
        raise HttpError(400, {"error": "Invalid payload"})
    market, asset = body.get("market"), body.get("asset_id")
    ids = [
        o.id
        for o in sim.world.orders.values()
        if o.owner == key.api_key
        and o.status == "LIVE"
        and (not market or o.condition_id.lower() == str(market).lower())
        and (not asset or o.token_id == str(asset))
    ]
    return Response(200, _cancel_ids(sim, key, ids))


def get_order(sim: Simulator, req: Request, order_id: str) -> Response:
    """GET /data/order/{id} (L2): `null` for unknown orders and for FOK/FAK orders that never
    rested (py-clob-client issue #217: look those up in /data/trades)."""
    key = _l2(sim, req)
    order = sim.world.orders.get(order_id.lower())
    if order is None or order.owner != key.api_key or order.order_type in ("FOK", "FAK"):
        return Response(200, None)
    return Response(200, order_view(order))


def get_orders(sim: Simulator, req: Request) -> Response:
    """GET /data/orders (L2): the key's resting orders, cursor-paged."""
    key = _l2(sim, req)
    oid, market, asset = req.param("id"), req.param("market"), req.param("asset_id")
    rows = [
        order_view(o)
        for o in sim.world.orders.values()
        if o.owner == key.api_key
        and o.status == "LIVE"
        and (not oid or o.id == oid.lower())
        and (not market or o.condition_id.lower() == market.lower())
        and (not asset or o.token_id == asset)
    ]
    return Response(200, _page(sim.world, rows, req.param("next_cursor")))


def trade_view(trade: ClobTrade, viewer: str) -> dict[str, Any]:
    """A ClobTrade row as the key `viewer` sees it (TAKER: all makers; MAKER: its own legs)."""
    taker_view = viewer == trade.taker_owner
    legs = trade.makers if taker_view else [leg for leg in trade.makers if leg.owner == viewer]
    size = trade.size if taker_view else sum(leg.shares for leg in legs)
    return {
        "id": trade.id,
        "taker_order_id": trade.taker_order_id,
        "market": trade.condition_id,
        "asset_id": trade.token_id,
        "side": trade.side,
        "size": fmt_base(size),
        "fee_rate_bps": str(trade.fee_rate_bps if taker_view else 0),
        "price": fmt(trade.price),
        "status": "TRADE_STATUS_" + trade.status,
        "match_time": str(int(trade.match_time)),
        "last_update": str(int(trade.last_update)),
        "outcome": trade.outcome,
        "bucket_index": 0,
        "owner": trade.taker_owner,
        "maker_address": trade.taker_address.lower(),
        "transaction_hash": trade.tx_hash if trade_tx_visible(trade) else "",
        "trader_side": "TAKER" if taker_view else "MAKER",
        "maker_orders": [
            {
                "order_id": leg.order_id,
                "owner": leg.owner,
                "maker_address": leg.maker_address.lower(),
                "matched_amount": fmt_base(leg.shares),
                "price": fmt(leg.price),
                "fee_rate_bps": "0",
                "asset_id": trade.token_id,
                "outcome": trade.outcome,
                "side": leg.side,
            }
            for leg in legs
        ],
    }


def get_trades(sim: Simulator, req: Request) -> Response:
    """GET /data/trades (L2): trades the key took part in, newest first, cursor-paged."""
    key = _l2(sim, req)
    world = sim.world
    tid, market, asset = req.param("id"), req.param("market"), req.param("asset_id")
    maker_address = (req.param("maker_address") or "").lower()
    before, after = req.param("before"), req.param("after")
    rows = []
    for trade_id in reversed(world.trade_ids):
        t = world.trades[trade_id]
        involved = t.taker_owner == key.api_key or any(leg.owner == key.api_key for leg in t.makers)
        if (
            not involved
            or (tid and t.id != tid)
            or (market and t.condition_id.lower() != market.lower())
        ):
            continue
        if asset and t.token_id != asset:
            continue
        if before and before.isdigit() and t.match_time >= int(before):
            continue
        if after and after.isdigit() and t.match_time <= int(after):
            continue
        view = trade_view(t, key.api_key)
        if maker_address and maker_address not in (
            view["maker_address"],
            *[m["maker_address"] for m in view["maker_orders"]],
        ):
            continue
        rows.append(view)
    return Response(200, _page(world, rows, req.param("next_cursor")))


INVALID_HEARTBEAT = "Invalid Heartbeat ID"


def post_heartbeats(sim: Simulator, req: Request) -> Response:
    """POST /v1/heartbeats (L2): the first accepted send arms cancel-all-on-timeout for the key;
    each accepted send returns the id to send next; a wrong id gets 400 with the expected one."""
    key = _l2(sim, req)
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get("heartbeat_id"), str):
        raise HttpError(400, {"error": "Invalid payload"})
    world = sim.world
    armed = world.heartbeats.get(key.api_key)
    expected = armed.heartbeat_id if armed is not None else ""
    if body["heartbeat_id"] != expected:
        raise HttpError(400, {"error_msg": INVALID_HEARTBEAT, "heartbeat_id": expected})
    fresh = world.new_uuid()
    world.heartbeats[key.api_key] = HeartbeatState(fresh, world.clock.now())
    return Response(200, {"heartbeat_id": fresh, "status": "ok"})


def _builder_rows(world: World, code: str, trade: ClobTrade) -> list[dict[str, Any]]:
    """The rows of one trade attributed to `code`: its taker order and each maker order of it."""
    rows = []
    legs: list[tuple[str, str, str, int, Decimal, str, str]] = []  # (type, order, side, shares, price, owner, maker)
    taker = world.orders.get(trade.taker_order_id)
    if trade.taker_user and taker is not None and taker.builder == code:
        legs.append(("TAKER", taker.id, trade.side, trade.size, trade.price, taker.owner, taker.maker))
    for leg in trade.makers:
        order = world.orders.get(leg.order_id) if leg.user else None
        if order is not None and order.builder == code:
            legs.append(("MAKER", order.id, leg.side, leg.shares, leg.price, order.owner, order.maker))
    market = world.by_token[trade.token_id]
    for kind, _order_id, side, shares, price, owner, maker in legs:
        size = Decimal(shares) / Decimal(10**6)
        fee = Decimal(0)
        if kind == "TAKER" and market.fees is not None:
            fee = market.fees.fee(size, price)
        rows.append({
            "id": trade.id,
            "tradeType": kind,
            "takerOrderHash": trade.taker_order_id,
            "builder": code,
            "market": trade.condition_id,
            "assetId": trade.token_id,
            "side": side,
            "size": fmt(size),
            "sizeUsdc": fmt(size * price),
            "price": fmt(price),
            "status": "TRADE_STATUS_" + trade.status,
            "outcome": trade.outcome,
            "outcomeIndex": trade.outcome_index,
            "owner": owner,
            "maker": maker.lower(),
            "transactionHash": trade.tx_hash if trade_tx_visible(trade) else "",
            "matchTime": str(int(trade.match_time)),
            "bucketIndex": 0,
            "fee": fmt(fee),
            "feeUsdc": fmt(fee),
            "err_msg": None,
            "createdAt": None,
            "updatedAt": None,
        })
    return rows


def get_builder_trades(sim: Simulator, req: Request) -> Response:
    """GET /builder/trades?builder_code= (builder auth): trades attributed to the caller's code,
    newest first, cursor-paged; filters id, market, asset_id, before, after."""
    record = builder_authenticate(sim.world, req.method, req.path, req.headers, req.body)
    code = (req.param("builder_code") or "").lower()
    if len(code) != 66 or not code.startswith("0x"):
        raise HttpError(400, {"error": "invalid builder_code"})
    if code != record.builder_code:
        raise HttpError(401, {"error": "Unauthorized/Invalid api key"})
    world = sim.world
    tid, market, asset = req.param("id"), req.param("market"), req.param("asset_id")
    before, after = req.param("before"), req.param("after")
    rows: list[dict[str, Any]] = []
    for trade_id in reversed(world.trade_ids):
        t = world.trades[trade_id]
        if (tid and t.id != tid) or (market and t.condition_id.lower() != market.lower()):
            continue
        if (asset and t.token_id != asset) or (before and before.isdigit() and t.match_time >= int(before)):
            continue
        if after and after.isdigit() and t.match_time <= int(after):
            continue
        rows.extend(_builder_rows(world, code, t))
    return Response(200, _page(world, rows, req.param("next_cursor")))


def build_router() -> Router:
    """All CLOB routes (control routes are added by `sim.control`)."""
    r = Router()
    r.add("GET", r"/ok", get_ok)
    r.add("GET", r"/time", get_time)
    r.add("GET", r"/version", get_version)
    r.add("GET", r"/book", get_book)
    r.add("POST", r"/books", post_books)
    r.add("GET", r"/books", get_books)
    r.add("GET", r"/price", get_price)
    r.add("POST", r"/prices", post_prices)
    r.add("GET", r"/midpoint", get_midpoint)
    r.add("POST", r"/midpoints", post_midpoints)
    r.add("GET", r"/spread", get_spread)
    r.add("POST", r"/spreads", post_spreads)
    r.add("GET", r"/last-trade-price", get_last_trade_price)
    r.add("POST", r"/last-trades-prices", post_last_trades_prices)
    r.add("GET", r"/tick-size", get_tick_size)
    r.add("GET", r"/tick-size/(?P<token>\d+)", get_tick_size)
    r.add("GET", r"/neg-risk", get_neg_risk)
    r.add("GET", r"/neg-risk/(?P<token>\d+)", get_neg_risk)
    r.add("GET", r"/fee-rate", get_fee_rate)
    r.add("GET", r"/fee-rate/(?P<token>\d+)", get_fee_rate)
    r.add("GET", r"/clob-markets/(?P<cid>0x[0-9a-fA-F]+)", get_clob_market)
    r.add("GET", r"/markets-by-token/(?P<token>\d+)", get_market_by_token)
    r.add("GET", r"/markets/(?P<cid>0x[0-9a-fA-F]+)", get_clob_legacy_market)
    r.add("POST", r"/auth/api-key", post_api_key)
    r.add("GET", r"/auth/derive-api-key", get_derive_api_key)
    r.add("GET", r"/auth/api-keys", get_api_keys)
    r.add("DELETE", r"/auth/api-key", delete_api_key)
    r.add("GET", r"/auth/ban-status/closed-only", get_closed_only)
    r.add("GET", r"/balance-allowance", get_balance_allowance)
    r.add("GET", r"/balance-allowance/update", get_balance_allowance_update)
    r.add("POST", r"/order", post_order)
    r.add("POST", r"/orders", post_orders)
    r.add("DELETE", r"/order", delete_order)
    r.add("DELETE", r"/orders", delete_orders)
    r.add("DELETE", r"/cancel-all", delete_cancel_all)
    r.add("DELETE", r"/cancel-market-orders", delete_cancel_market_orders)
    r.add("GET", r"/data/order/(?P<order_id>0x[0-9a-fA-F]{64})", get_order)
    r.add("GET", r"/order/(?P<order_id>0x[0-9a-fA-F]{64})", get_order)
    r.add("GET", r"/data/orders", get_orders)
    r.add("GET", r"/data/trades", get_trades)
    r.add("POST", r"/v1/heartbeats", post_heartbeats)
    r.add("POST", r"/heartbeats", post_heartbeats)
    r.add("GET", r"/builder/trades", get_builder_trades)
    return r
