"""polymarket_client: every route against its fixture (respx, no network), outcomes, auth, cache."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx

from polymarket_client import (
    ActivityQuery,
    PolymarketClient,
    SyncPolymarketClient,
    TradesQuery,
    combine_market_info,
)
from tests.support.fake_time import FakeTime
from tests.support.paths import POLYMARKET
from wire.errors import ApiError, ParseError, RateLimitError, TransportError
from wire.records import Accepted, Duplicate, InDoubt, RateLimited, Rejected, RejectKind, Restricted
from wire.types import ApiCreds, MarketVersion, SignatureType

POLY = POLYMARKET
FIX = POLY / "fixtures"
ERRORS: dict[str, Any] = json.loads((FIX / "clob_error_bodies.json").read_text())

DATA = "http://data.test/dprefix"
GAMMA = "http://gamma.test"
CLOB = "http://127.0.0.1:9000/prefix"  # a path-prefixed base URL, as a local proxy would serve

HARDHAT_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
HARDHAT_ADDR = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
SECRET = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
CREDS = ApiCreds(
    api_key="f4f247b7-4ac7-ff29-a152-04fda0a8755a", secret=SECRET, passphrase="pass-phrase-value"
)

TS = 1795253614
USER = "0x0d6cf071dbddb6780f4b6912b49d683b8f234395"
CONDITION = "0x649b6fd3f386ef1bf5f7955fa76fa7545c94e2ad5938be41b00eb08d50d7a4c2"
TOKEN = "45202227256710257521935388599371620715578063998808294012969308187257000919017"
V2_CONDITION = "0x0172d880170c4126597dfb630e478dd32e147b0000000000000000e93e16de"


def fx(name: str) -> Any:
    """A fixture body decoded from JSON."""
    return json.loads((FIX / name).read_text())


def fake_time() -> FakeTime:
    """Clocks starting at TS (wall) and 100 (monotonic)."""
    return FakeTime(wall=float(TS), mono=100.0)


def make_client(t: FakeTime, **kw: Any) -> PolymarketClient:
    """A client on fake time, identity jitter, with path-prefixed base URLs."""
    return PolymarketClient(
        data_url=DATA,
        gamma_url=GAMMA,
        clob_url=CLOB,
        sleep=t.sleep,
        jitter=lambda d: d,
        clock=t.clock,
        monotonic=t.monotonic,
        **kw,
    )


def run(fn: Callable[[], Awaitable[Any]]) -> Any:
    """Run one async step."""
    return asyncio.run(fn())  # type: ignore[arg-type]


@pytest.fixture
def t() -> FakeTime:
    return fake_time()


@pytest.fixture
def client(t: FakeTime) -> PolymarketClient:
    return make_client(t)


def hmac_of(request: httpx.Request, path: str) -> str:
    """The L2 signature recomputed independently over the request's exact bytes."""
    message = (request.headers["POLY_TIMESTAMP"] + request.method + path).encode() + request.content
    key = base64.urlsafe_b64decode(SECRET)
    return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def assert_l2_signed(request: httpx.Request, path: str) -> None:
    """POLY_* headers present, signer EOA as POLY_ADDRESS, signature over the exact bytes."""
    assert request.headers["POLY_ADDRESS"] == HARDHAT_ADDR
    assert request.headers["POLY_API_KEY"] == CREDS.api_key
    assert request.headers["POLY_PASSPHRASE"] == CREDS.passphrase
    assert request.headers["POLY_SIGNATURE"] == hmac_of(request, path)


# -- Data API ---------------------------------------------------------------------------------


@respx.mock
def test_activity_walk_resends_identical_filters(client: PolymarketClient) -> None:
    """Two /v2/activity pages: page two repeats every filter and adds only the cursor."""
    page1 = fx("data_trades.json")
    page2 = {"data": [page1["data"][0]], "pagination": {"has_more": False, "next_cursor": None}}
    route = respx.get(f"{DATA}/v2/activity").mock(
        side_effect=[httpx.Response(200, json=page1), httpx.Response(200, json=page2)]
    )
    query = ActivityQuery(user=USER, start=TS - 120, end=TS + 86400)
    result = run(lambda: client.fetch_activity(query))
    assert len(result.items) == 6 and not result.has_more
    first, second = (dict(c.request.url.params) for c in route.calls)
    assert first["type"] == "TRADE,SPLIT,MERGE,REDEEM,CONVERSION" and first["user"] == USER
    assert second == {**first, "cursor": page1["pagination"]["next_cursor"]}


@respx.mock
def test_poll_activity_url_changes_each_poll(client: PolymarketClient, t: FakeTime) -> None:
    """Each poll sends end = now + 86400, so consecutive polls never reuse a cached URL."""
    empty = {"data": [], "pagination": {"has_more": False, "next_cursor": None}}
    route = respx.get(f"{DATA}/v2/activity").mock(return_value=httpx.Response(200, json=empty))
    run(lambda: client.poll_activity(USER, start=TS - 60))
    t.wall += 10
    run(lambda: client.poll_activity(USER, start=TS - 60))
    ends = [c.request.url.params["end"] for c in route.calls]
    assert ends == [str(TS + 86400), str(TS + 10 + 86400)]


@respx.mock
def test_activity_429_retry_after_is_honoured_without_sleeping(
    client: PolymarketClient, t: FakeTime
) -> None:
    """/v2/activity 429 with Retry-After: 2 → one recorded 2 s sleep, then the page."""
    route = respx.get(f"{DATA}/v2/activity").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "2"}, json=ERRORS["data_api_v2_429"]),
            httpx.Response(200, json=fx("data_trades.json")),
        ]
    )
    page = run(lambda: client.get_activity_page(ActivityQuery(user=USER)))
    assert len(page.items) == 5 and route.call_count == 2 and t.sleeps == [2.0]


@respx.mock
def test_trades_route_sends_taker_only_false(client: PolymarketClient) -> None:
    """/v2/trades page parsed from its fixture; the request asks for maker fills too."""
    route = respx.get(f"{DATA}/v2/trades").mock(
        return_value=httpx.Response(200, json=fx("data_trades.json"))
    )
    page = run(lambda: client.get_trades_page(TradesQuery(user=USER)))
    assert route.calls.last.request.url.params["taker_only"] == "false"
    assert page.items[2].price == Decimal("0.37") and page.has_more


@respx.mock
def test_positions_walk_resends_user_with_cursor(client: PolymarketClient) -> None:
    """/v2/positions: the user is sent again with the cursor on page two."""
    body = fx("data_positions.json")
    page1 = {**body, "pagination": {"has_more": True, "next_cursor": "P2"}}
    route = respx.get(f"{DATA}/v2/positions").mock(
        side_effect=[httpx.Response(200, json=page1), httpx.Response(200, json=body)]
    )
    result = run(lambda: client.fetch_positions(USER))
    assert len(result.items) == 4
    assert route.calls[1].request.url.params["user"] == USER
    assert route.calls[1].request.url.params["cursor"] == "P2"


@respx.mock
def test_tokens_route(client: PolymarketClient) -> None:
    """/v2/tokens rows become TokenInfo (module tells CTF vs Protocol V2 vs combo)."""
    row = {
        "token_id": TOKEN,
        "condition_id": CONDITION,
        "structural_condition_id": None,
        "module": "v1_ctf",
        "outcome_index": 0,
        "clob_index": 0,
        "outcome": "Yes",
        "opposite_token_id": "1",
        "resolved": False,
        "final_price": None,
        "title": "t",
        "market_slug": "s",
        "closed": False,
        "neg_risk": True,
        "event_slug": "",
    }
    route = respx.get(f"{DATA}/v2/tokens").mock(
        return_value=httpx.Response(200, json={"data": [row]})
    )
    (info,) = run(lambda: client.get_tokens(token_ids=[TOKEN]))
    assert info.module == "v1_ctf" and info.neg_risk and info.final_price is None
    assert route.calls.last.request.url.params["token_id"] == TOKEN


@respx.mock
def test_data_api_error_body_raises_typed_error(client: PolymarketClient) -> None:
    """A v2 400 error envelope becomes ApiError(code, trace_id), not retried."""
    route = respx.get(f"{DATA}/v2/trades").mock(
        return_value=httpx.Response(400, json=ERRORS["data_api_v2_400"])
    )
    with pytest.raises(ApiError) as info:
        run(lambda: client.get_trades_page(TradesQuery(user=USER)))
    assert info.value.code == "invalid_request" and info.value.trace_id == "4f1c2b9e7a3d5c60"
    assert route.call_count == 1


# -- Gamma and CLOB public --------------------------------------------------------------------


@respx.mock
def test_gamma_lookup_retries_with_closed_true(client: PolymarketClient) -> None:
    """An empty first answer is followed by closed=true before concluding 'not found'."""
    route = respx.get(f"{GAMMA}/markets").mock(
        side_effect=[
            httpx.Response(200, json=[]),
            httpx.Response(200, json=[fx("gamma_market.json")]),
        ]
    )
    market = run(lambda: client.find_gamma_market(condition_id=CONDITION))
    assert market is not None and market.condition_id == CONDITION
    first, second = (c.request.url for c in route.calls)
    assert first.params.get_list("condition_ids") == [CONDITION] and "closed" not in first.params
    assert second.params["closed"] == "true"


@respx.mock
def test_gamma_lookup_not_found_after_both_tries(client: PolymarketClient) -> None:
    """Nothing open or closed → None (two requests for a condition id)."""
    route = respx.get(f"{GAMMA}/markets").mock(return_value=httpx.Response(200, json=[]))
    assert run(lambda: client.find_gamma_market(condition_id=CONDITION)) is None
    assert route.call_count == 2


@respx.mock
def test_gamma_lookup_by_token_and_position_id(client: PolymarketClient) -> None:
    """A CTF token id is looked up as clob_token_ids; a V2 position id as position_ids."""
    route = respx.get(f"{GAMMA}/markets").mock(
        side_effect=[
            httpx.Response(200, json=[fx("gamma_market.json")]),
            httpx.Response(200, json=[fx("gamma_market_protocol_v2.json")]),
        ]
    )
    v1 = run(lambda: client.find_gamma_market(token_id=TOKEN))
    pos = fx("gamma_market_protocol_v2.json")["positionIds"][1]
    v2 = run(lambda: client.find_gamma_market(token_id=pos))
    assert v1.version is MarketVersion.V1 and v2.version is MarketVersion.V2
    assert route.calls[0].request.url.params.get_list("clob_token_ids") == [TOKEN]
    assert route.calls[1].request.url.params.get_list("position_ids") == [pos]


@respx.mock
def test_gamma_repeated_query_params(client: PolymarketClient) -> None:
    """Several condition ids go out as repeated condition_ids params, not a csv."""
    route = respx.get(f"{GAMMA}/markets").mock(return_value=httpx.Response(200, json=[]))
    run(lambda: client.get_gamma_markets(condition_ids=["0xa", "0xb"], closed=False))
    url = route.calls.last.request.url
    assert (
        url.params.get_list("condition_ids") == ["0xa", "0xb"] and url.params["closed"] == "false"
    )


@respx.mock
def test_clob_public_routes_from_fixtures(client: PolymarketClient) -> None:
    """book (best-first), midpoint, spread, tick-size, neg-risk and time under a path prefix."""
    respx.get(f"{CLOB}/book", params={"token_id": TOKEN}).mock(
        return_value=httpx.Response(200, json=fx("clob_book.json"))
    )
    respx.get(f"{CLOB}/midpoint").mock(
        return_value=httpx.Response(200, json={"mid_price": "0.645"})
    )
    respx.get(f"{CLOB}/spread").mock(return_value=httpx.Response(200, json={"spread": "0.01"}))
    respx.get(f"{CLOB}/tick-size").mock(
        return_value=httpx.Response(200, json={"minimum_tick_size": 0.01})
    )
    respx.get(f"{CLOB}/neg-risk").mock(return_value=httpx.Response(200, json={"neg_risk": True}))
    respx.get(f"{CLOB}/time").mock(return_value=httpx.Response(200, json=TS))

    async def body() -> tuple[Any, ...]:
        return (
            await client.get_book(TOKEN),
            await client.get_midpoint(TOKEN),
            await client.get_spread(TOKEN),
            await client.get_tick_size(TOKEN),
            await client.get_neg_risk(TOKEN),
            await client.get_server_time(),
        )

    book, mid, spread, tick, neg, now = run(body)
    assert book.best_bid == Decimal("0.64") and book.best_ask == Decimal("0.65")
    assert book.bids[-1].price == Decimal("0.58") and book.token_id == TOKEN
    assert (mid, spread, tick, neg, now) == (
        Decimal("0.645"),
        Decimal("0.01"),
        Decimal("0.01"),
        True,
        TS,
    )


@respx.mock
def test_book_404_means_no_book(client: PolymarketClient) -> None:
    """'No orderbook exists' (404) → None, without retries."""
    route = respx.get(f"{CLOB}/book").mock(
        return_value=httpx.Response(404, json=ERRORS["http404_no_book"])
    )
    assert run(lambda: client.get_book(TOKEN)) is None and route.call_count == 1


CLOB_V1 = {
    "t": [
        {"t": TOKEN, "o": "Yes"},
        {
            "t": "46889952437493978641606697465725212275743506716002855899008989138170349125777",
            "o": "No",
        },
    ],
    "mts": 0.01,
    "mos": 5,
    "nr": True,
}


@respx.mock
def test_clob_markets_pads_31_byte_ids(client: PolymarketClient) -> None:
    """/clob-markets for a 62-hex structural id is requested with a trailing 00 byte."""
    route = respx.get(f"{CLOB}/clob-markets/{V2_CONDITION}00").mock(
        return_value=httpx.Response(200, json={"t": [], "mts": 0.005, "mos": 5})
    )
    params = run(lambda: client.get_clob_market(V2_CONDITION))
    assert params.tick_size == Decimal("0.005") and route.call_count == 1


@respx.mock
def test_market_info_combines_gamma_and_clob_and_caches(
    client: PolymarketClient, t: FakeTime
) -> None:
    """get_market_info: CLOB tick/min/neg-risk + Gamma version/question; cached until TTL."""
    gamma = respx.get(f"{GAMMA}/markets").mock(
        return_value=httpx.Response(200, json=[fx("gamma_market.json")])
    )
    clob = respx.get(f"{CLOB}/clob-markets/{CONDITION}").mock(
        return_value=httpx.Response(200, json={**CLOB_V1, "mts": 0.001, "fd": {"r": 0.02, "e": 2}})
    )
    info = run(lambda: client.get_market_info(CONDITION))
    assert info.tick_size == Decimal("0.001")  # the CLOB wins over Gamma's 0.01
    assert info.min_size == Decimal("5") and info.neg_risk and info.version is MarketVersion.V1
    assert info.fee_rate == Decimal("0.02") and info.fee_exponent == Decimal("2")
    assert info.accepting_orders and not info.closed and info.end_date is not None
    assert info.token(TOKEN) is not None and info.token(TOKEN).outcome == "Yes"
    # cached by condition id and by token id
    assert run(lambda: client.get_market_info(token_id=TOKEN)) is info
    assert gamma.call_count == 1 and clob.call_count == 1
    t.mono += 31  # TTL 30 s elapsed
    run(lambda: client.get_market_info(CONDITION))
    assert gamma.call_count == 2 and clob.call_count == 2


@respx.mock
def test_market_info_invalidate_after_tick_rejection(client: PolymarketClient) -> None:
    """invalidate_market(token_id=…) forces the next lookup to refetch the (changed) tick."""
    respx.get(f"{GAMMA}/markets").mock(
        return_value=httpx.Response(200, json=[fx("gamma_market.json")])
    )
    clob = respx.get(f"{CLOB}/clob-markets/{CONDITION}").mock(
        side_effect=[
            httpx.Response(200, json=CLOB_V1),
            httpx.Response(200, json={**CLOB_V1, "mts": 0.001}),
        ]
    )
    assert run(lambda: client.get_market_info(CONDITION)).tick_size == Decimal("0.01")
    assert run(lambda: client.get_market_info(CONDITION)).tick_size == Decimal("0.01")
    assert client.invalidate_market(token_id=TOKEN) is True
    assert client.invalidate_market(token_id=TOKEN) is False
    assert run(lambda: client.get_market_info(CONDITION)).tick_size == Decimal("0.001")
    assert clob.call_count == 2


@respx.mock
def test_market_info_v2_market(client: PolymarketClient) -> None:
    """A Protocol V2 market: positionIds as tokens, padded clob-markets route, version v2."""
    v2 = fx("gamma_market_protocol_v2.json")
    respx.get(f"{GAMMA}/markets").mock(return_value=httpx.Response(200, json=[v2]))
    respx.get(f"{CLOB}/clob-markets/{V2_CONDITION}00").mock(
        return_value=httpx.Response(
            200,
            json={
                "t": [
                    {"t": p, "o": o}
                    for p, o in zip(v2["positionIds"], ["Lakers", "Celtics"], strict=True)
                ],
                "mts": 0.005,
                "mos": 5,
                "fd": {"r": 0.05, "e": 1, "to": True},
            },
        )
    )
    info = run(lambda: client.get_market_info(V2_CONDITION))
    assert (
        info.version is MarketVersion.V2 and [t.token_id for t in info.tokens] == v2["positionIds"]
    )
    assert info.fee_rate == Decimal("0.05") and info.tick_size == Decimal("0.005")


def test_market_info_refuses_disagreeing_ids() -> None:
    """Gamma and CLOB listing different trading ids is an error, never a guess."""
    from wire.parse import parse_clob_market, parse_gamma_market

    gamma = parse_gamma_market(fx("gamma_market.json"))
    clob = parse_clob_market({**CLOB_V1, "t": [{"t": "1", "o": "Yes"}, {"t": "2", "o": "No"}]})
    with pytest.raises(ParseError, match="disagree"):
        combine_market_info(gamma, clob)
    fallback = combine_market_info(gamma, None)
    assert not fallback.accepting_orders and fallback.tick_size == Decimal("0.01")


@respx.mock
def test_market_info_unknown_market_is_404(client: PolymarketClient) -> None:
    """No Gamma market (open or closed) → ApiError 404."""
    respx.get(f"{GAMMA}/markets").mock(return_value=httpx.Response(200, json=[]))
    with pytest.raises(ApiError) as info:
        run(lambda: client.get_market_info(CONDITION))
    assert info.value.status == 404


# -- Auth -------------------------------------------------------------------------------------


@respx.mock
def test_create_or_derive_falls_back_to_derive(client: PolymarketClient) -> None:
    """POST /auth/api-key 400 → GET /auth/derive-api-key, both with valid L1 headers."""
    created = respx.post(f"{CLOB}/auth/api-key").mock(
        return_value=httpx.Response(400, json={"error": "Could not create api key"})
    )
    derived = respx.get(f"{CLOB}/auth/derive-api-key").mock(
        return_value=httpx.Response(
            200, json={"apiKey": "k-1", "secret": SECRET, "passphrase": "p-1"}
        )
    )
    creds = run(lambda: client.create_or_derive_api_key(HARDHAT_KEY))
    assert creds == ApiCreds(api_key="k-1", secret=SECRET, passphrase="p-1")
    assert created.call_count == 1 and derived.call_count == 1
    headers = derived.calls.last.request.headers
    assert headers["POLY_ADDRESS"] == HARDHAT_ADDR and headers["POLY_TIMESTAMP"] == str(TS)
    assert headers["POLY_NONCE"] == "0"
    assert headers["POLY_SIGNATURE"] == (  # docs/POLYMARKET.md §4.2 L1 vector for this key and timestamp
        "0x13acc273127ff6bdc31d635a6da077bcf9505a69404c46b4a246731146656cd9"
        "2110246a515f371383bd78b0231f32fd9d977dd4926763950c0478ed5125447b1c"
    )
    assert SECRET not in repr(creds) and "p-1" not in repr(creds)


@respx.mock
def test_create_api_key_success_skips_derive(client: PolymarketClient) -> None:
    """A successful create returns its credentials; derive is not called."""
    respx.post(f"{CLOB}/auth/api-key").mock(
        return_value=httpx.Response(
            200, json={"apiKey": "k-2", "secret": SECRET, "passphrase": "p-2"}
        )
    )
    derived = respx.get(f"{CLOB}/auth/derive-api-key")
    assert run(lambda: client.create_or_derive_api_key(HARDHAT_KEY)).api_key == "k-2"
    assert derived.call_count == 0


@respx.mock
def test_closed_only_status_is_l2_signed(client: PolymarketClient) -> None:
    """GET /auth/ban-status/closed-only carries L2 headers signed over the unprefixed path."""
    route = respx.get(f"{CLOB}/auth/ban-status/closed-only").mock(
        return_value=httpx.Response(200, json={"closed_only": False})
    )
    assert run(lambda: client.get_closed_only(CREDS, HARDHAT_ADDR.lower())) is False
    assert_l2_signed(route.calls.last.request, "/auth/ban-status/closed-only")


# -- POST /order ------------------------------------------------------------------------------

ORDER_BODY = json.dumps(fx("clob_post_order_request.json"), separators=(",", ":")).encode()


@respx.mock
def test_post_order_sends_exact_bytes_signed_over_them(client: PolymarketClient) -> None:
    """The POST body is byte-identical to the input and POLY_SIGNATURE is the §4.2 vector."""
    route = respx.post(f"{CLOB}/order").mock(
        return_value=httpx.Response(
            200, content=(FIX / "clob_post_order_response.json").read_bytes()
        )
    )
    outcome = run(lambda: client.post_order(ORDER_BODY, CREDS, HARDHAT_ADDR))
    request = route.calls.last.request
    assert len(ORDER_BODY) == 742 and request.content == ORDER_BODY
    assert request.headers["content-type"] == "application/json"
    assert request.url.path == "/prefix/order"
    assert_l2_signed(request, "/order")
    assert request.headers["POLY_SIGNATURE"] == "AP77skgw0WFhbK3GUnimcr_s45DEV4ZQQc0WCDKCiTE="
    assert isinstance(outcome, Accepted) and outcome.status == "matched"
    assert outcome.taking_amount == Decimal("15.609375")


@respx.mock
def test_post_order_keeps_non_canonical_bytes(client: PolymarketClient) -> None:
    """Spaced, unsorted JSON is sent as given (never re-serialised) and signed as sent."""
    spaced = b'{ "order": {"salt": 1},  "owner": "k", "orderType": "GTC" }'
    route = respx.post(f"{CLOB}/order").mock(
        return_value=httpx.Response(200, json=ERRORS["http200_post_order_live"])
    )
    run(lambda: client.post_order(spaced, CREDS, HARDHAT_ADDR))
    assert route.calls.last.request.content == spaced
    assert_l2_signed(route.calls.last.request, "/order")


@pytest.mark.parametrize(
    "case", [c for c in ERRORS if c.startswith(("http400", "http401", "http404"))]
)
@respx.mock
def test_post_order_error_bodies(client: PolymarketClient, case: str) -> None:
    """Every 4xx catalogue body → Rejected (or Duplicate for 'Duplicated'), sent once."""
    route = respx.post(f"{CLOB}/order").mock(
        return_value=httpx.Response(int(case[4:7]), json=ERRORS[case])
    )
    outcome = run(lambda: client.post_order(ORDER_BODY, CREDS, HARDHAT_ADDR))
    assert route.call_count == 1
    if case == "http400_duplicated":
        assert isinstance(outcome, Duplicate) and outcome.order_id
    else:
        assert isinstance(outcome, Rejected) and outcome.http_status == int(case[4:7])
    if case == "http400_tick":
        assert outcome.kind is RejectKind.TICK_SIZE


@pytest.mark.parametrize(
    "case,status,kind",
    [
        ("http425_engine_restarting", 425, "restarting"),
        ("http503_trading_disabled", 503, "halted"),
        ("http503_cancel_only", 503, "cancel_only"),
        ("http503_post_only_mode", 503, "post_only"),
    ],
)
@respx.mock
def test_post_order_restrictions(
    client: PolymarketClient, t: FakeTime, case: str, status: int, kind: str
) -> None:
    """425 and the 503 variants → Restricted(kind), one request, no retry sleep."""
    route = respx.post(f"{CLOB}/order").mock(return_value=httpx.Response(status, json=ERRORS[case]))
    outcome = run(lambda: client.post_order(ORDER_BODY, CREDS, HARDHAT_ADDR))
    assert isinstance(outcome, Restricted) and outcome.kind == kind
    assert route.call_count == 1 and t.sleeps == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@respx.mock
def test_post_order_5xx_is_in_doubt_never_retried(
    client: PolymarketClient, t: FakeTime, status: int
) -> None:
    """A 5xx on POST /order → InDoubt after exactly one request and no sleep."""
    route = respx.post(f"{CLOB}/order").mock(return_value=httpx.Response(status, text="oops"))
    outcome = run(lambda: client.post_order(ORDER_BODY, CREDS, HARDHAT_ADDR))
    assert isinstance(outcome, InDoubt) and outcome.http_status == status
    assert route.call_count == 1 and t.sleeps == []


@respx.mock
def test_post_order_accept_then_timeout_is_in_doubt(client: PolymarketClient, t: FakeTime) -> None:
    """The request went out, then the read timed out → InDoubt(request_sent=True), not retried."""
    route = respx.post(f"{CLOB}/order").mock(side_effect=httpx.ReadTimeout("timed out"))
    outcome = run(lambda: client.post_order(ORDER_BODY, CREDS, HARDHAT_ADDR))
    assert isinstance(outcome, InDoubt) and outcome.request_sent
    assert route.call_count == 1 and route.calls.last.request.content == ORDER_BODY
    assert t.sleeps == []


@respx.mock
def test_post_order_connection_reset_and_refused(client: PolymarketClient) -> None:
    """A reset mid-request is InDoubt(sent); a refused connection InDoubt(not sent)."""
    route = respx.post(f"{CLOB}/order").mock(
        side_effect=[
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            httpx.ConnectError("Connection refused"),
        ]
    )
    reset = run(lambda: client.post_order(ORDER_BODY, CREDS, HARDHAT_ADDR))
    refused = run(lambda: client.post_order(ORDER_BODY, CREDS, HARDHAT_ADDR))
    assert isinstance(reset, InDoubt) and reset.request_sent is True
    assert isinstance(refused, InDoubt) and refused.request_sent is False
    assert route.call_count == 2


@respx.mock
def test_post_order_429_and_unreadable_200(client: PolymarketClient, t: FakeTime) -> None:
    """429 → RateLimited(retry_after) without retry; an unreadable 200 → InDoubt."""
    route = respx.post(f"{CLOB}/order").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "5"}, json=ERRORS["http429_rate_limited"]),
            httpx.Response(200, text="<html>gateway</html>"),
        ]
    )
    assert run(lambda: client.post_order(ORDER_BODY, CREDS, HARDHAT_ADDR)) == RateLimited(
        retry_after=5.0, reason="Too Many Requests"
    )
    assert isinstance(run(lambda: client.post_order(ORDER_BODY, CREDS, HARDHAT_ADDR)), InDoubt)
    assert route.call_count == 2 and t.sleeps == []


@respx.mock
def test_post_order_logs_no_secrets(
    client: PolymarketClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing logged during a post contains the secret, passphrase or signature."""
    route = respx.post(f"{CLOB}/order").mock(
        return_value=httpx.Response(400, json=ERRORS["http400_balance"])
    )
    with caplog.at_level(logging.DEBUG):
        run(lambda: client.post_order(ORDER_BODY, CREDS, HARDHAT_ADDR))
    text = caplog.text
    signature = route.calls.last.request.headers["POLY_SIGNATURE"]
    assert "POST /order" in text and "Rejected" in text
    for secret in (SECRET, CREDS.passphrase, signature):
        assert secret not in text


@respx.mock
def test_post_orders_batch(client: PolymarketClient) -> None:
    """POST /orders: bodies sent verbatim inside [...], signed; one outcome per order."""
    bodies = [ORDER_BODY, ORDER_BODY.replace(b"935062534457", b"935062534458")]
    route = respx.post(f"{CLOB}/orders").mock(
        return_value=httpx.Response(
            200,
            json=[
                ERRORS["http200_post_order_live"],
                {"success": False, "errorMsg": "not enough balance"},
            ],
        )
    )
    outcomes = run(lambda: client.post_orders(bodies, CREDS, HARDHAT_ADDR))
    request = route.calls.last.request
    assert request.content == b"[" + bodies[0] + b"," + bodies[1] + b"]"
    assert_l2_signed(request, "/orders")
    assert isinstance(outcomes[0], Accepted) and isinstance(outcomes[1], Rejected)
    assert outcomes[1].kind is RejectKind.BALANCE
    with pytest.raises(ValueError):
        run(lambda: client.post_orders([ORDER_BODY] * 16, CREDS, HARDHAT_ADDR))


# -- Cancels, orders, trades, balances --------------------------------------------------------


@respx.mock
def test_cancels(client: PolymarketClient, t: FakeTime) -> None:
    """DELETE /order, /orders, /cancel-all: signed bodies, {canceled, not_canceled} parsed."""
    oid = "0x3f1c9c1d2b5a7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b"
    one = respx.delete(f"{CLOB}/order").mock(
        return_value=httpx.Response(200, json={"canceled": [oid], "not_canceled": {}})
    )
    many = respx.delete(f"{CLOB}/orders").mock(
        return_value=httpx.Response(
            200, json={"canceled": ["0x1"], "not_canceled": {"0x2": "order not found"}}
        )
    )
    everything = respx.delete(f"{CLOB}/cancel-all").mock(
        return_value=httpx.Response(200, json={"canceled": [], "not_canceled": None})
    )
    assert run(lambda: client.cancel_order(oid, CREDS, HARDHAT_ADDR)).canceled == (oid,)
    request = one.calls.last.request
    assert request.content == f'{{"orderID":"{oid}"}}'.encode()
    assert request.headers["POLY_SIGNATURE"] == "0PeoyKVw5akWbrZvPMVHfbBspYQuQy_QSQXQ_CDbhL0="
    result = run(lambda: client.cancel_orders(["0x1", "0x2"], CREDS, HARDHAT_ADDR))
    assert result.not_canceled == {"0x2": "order not found"}
    assert many.calls.last.request.content == b'["0x1","0x2"]'
    assert_l2_signed(many.calls.last.request, "/orders")
    assert run(lambda: client.cancel_all(CREDS, HARDHAT_ADDR)).canceled == ()
    assert everything.calls.last.request.content == b""
    assert_l2_signed(everything.calls.last.request, "/cancel-all")


@respx.mock
def test_cancel_errors_raise_and_are_not_retried(client: PolymarketClient, t: FakeTime) -> None:
    """A cancel answered 503 raises (no retry); a timeout raises TransportError(sent)."""
    route = respx.delete(f"{CLOB}/order").mock(
        side_effect=[
            httpx.Response(503, json=ERRORS["http503_trading_disabled"]),
            httpx.ReadTimeout("slow"),
        ]
    )
    with pytest.raises(ApiError):
        run(lambda: client.cancel_order("0x1", CREDS, HARDHAT_ADDR))
    with pytest.raises(TransportError) as info:
        run(lambda: client.cancel_order("0x1", CREDS, HARDHAT_ADDR))
    assert info.value.request_sent and route.call_count == 2 and t.sleeps == []


@respx.mock
def test_cancel_orders_chunks_large_lists(client: PolymarketClient) -> None:
    """250 ids go out as DELETE /orders chunks of at most 100; results are merged."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"canceled": json.loads(request.content), "not_canceled": {}}
        )

    route = respx.delete(f"{CLOB}/orders").mock(side_effect=answer)
    ids = [f"0x{i:064x}" for i in range(250)]
    result = run(lambda: client.cancel_orders(ids, CREDS, HARDHAT_ADDR))
    assert list(result.canceled) == ids
    assert [len(json.loads(c.request.content)) for c in route.calls] == [100, 100, 50]


@respx.mock
def test_get_order_found_and_missing(client: PolymarketClient) -> None:
    """GET /data/order/{id}: the fixture parses; 404 and an empty body mean None."""
    oid = fx("clob_order.json")["id"]
    route = respx.get(f"{CLOB}/data/order/{oid}").mock(
        side_effect=[
            httpx.Response(200, json=fx("clob_order.json")),
            httpx.Response(404),
            httpx.Response(200, content=b""),
        ]
    )
    order = run(lambda: client.get_order(oid, CREDS, HARDHAT_ADDR))
    assert order.size_matched == Decimal("7.5") and order.status == "LIVE"
    assert_l2_signed(route.calls.last.request, f"/data/order/{oid}")
    assert run(lambda: client.get_order(oid, CREDS, HARDHAT_ADDR)) is None
    assert run(lambda: client.get_order(oid, CREDS, HARDHAT_ADDR)) is None


@respx.mock
def test_open_orders_cursor_paging(client: PolymarketClient) -> None:
    """/data/orders walks MA== → next → LTE=; query params are not part of the signature."""
    order = fx("clob_order.json")
    route = respx.get(f"{CLOB}/data/orders").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "limit": 1,
                    "next_cursor": "MQ==",
                    "count": 1,
                    "data": [{**order, "status": "ORDER_STATUS_LIVE"}],
                },
            ),
            httpx.Response(
                200, json={"limit": 1, "next_cursor": "LTE=", "count": 1, "data": [order]}
            ),
        ]
    )
    orders = run(lambda: client.get_open_orders(CREDS, HARDHAT_ADDR, market=CONDITION))
    assert [o.status for o in orders] == ["LIVE", "LIVE"]
    cursors = [c.request.url.params["next_cursor"] for c in route.calls]
    assert cursors == ["MA==", "MQ=="]
    assert route.calls[0].request.url.params["market"] == CONDITION
    assert_l2_signed(route.calls[1].request, "/data/orders")


@respx.mock
def test_clob_trades_route(client: PolymarketClient) -> None:
    """/data/trades from its fixture: statuses normalised, maker fills typed."""
    route = respx.get(f"{CLOB}/data/trades").mock(
        return_value=httpx.Response(200, json=fx("clob_trades.json"))
    )
    trades = run(lambda: client.get_clob_trades(CREDS, HARDHAT_ADDR, trade_id="6a89a09b"))
    assert [tr.status for tr in trades] == ["CONFIRMED", "MINED"]
    assert route.calls.last.request.url.params["id"] == "6a89a09b"
    assert route.call_count == 1  # fixture's next_cursor is LTE=


@respx.mock
def test_balance_allowance_and_update(client: PolymarketClient) -> None:
    """/balance-allowance in pUSD; the update route is a signed GET with the same params."""
    get = respx.get(f"{CLOB}/balance-allowance").mock(
        return_value=httpx.Response(
            200, json={"balance": "25000000", "allowances": {"0xE111": "1000000"}}
        )
    )
    upd = respx.get(f"{CLOB}/balance-allowance/update").mock(
        return_value=httpx.Response(200, json={})
    )
    bal = run(
        lambda: client.get_balance_allowance(
            CREDS, HARDHAT_ADDR, "COLLATERAL", signature_type=SignatureType.POLY_1271
        )
    )
    assert bal.balance == Decimal(25) and bal.allowances == {"0xE111": Decimal(1)}
    assert dict(get.calls.last.request.url.params) == {
        "asset_type": "COLLATERAL",
        "signature_type": "3",
    }
    run(
        lambda: client.update_balance_allowance(
            CREDS, HARDHAT_ADDR, "CONDITIONAL-V2", signature_type=0, token_id="7"
        )
    )
    assert upd.calls.last.request.url.params["asset_type"] == "CONDITIONAL-V2"
    assert_l2_signed(upd.calls.last.request, "/balance-allowance/update")


# -- Rate limiting and the sync facade ---------------------------------------------------------


@respx.mock
def test_client_side_bucket_spacing_recorded(t: FakeTime) -> None:
    """More /v2/positions calls than the 150/10 s bucket → waits counted, nothing really slept."""
    client = make_client(t)
    empty = {"data": [], "pagination": {"has_more": False, "next_cursor": None}}
    respx.get(f"{DATA}/v2/positions").mock(return_value=httpx.Response(200, json=empty))

    async def body() -> None:
        for _ in range(152):
            await client.get_positions_page(USER)

    run(body)
    assert client.rate_limit_waits == 2
    assert t.sleeps == [pytest.approx(10 / 150)] * 2


@respx.mock
def test_sync_facade_runs_the_same_routes(t: FakeTime) -> None:
    """SyncPolymarketClient exposes the async client's routes as blocking calls."""
    respx.get(f"{CLOB}/book").mock(return_value=httpx.Response(200, json=fx("clob_book.json")))
    respx.post(f"{CLOB}/order").mock(side_effect=httpx.ReadTimeout("slow"))
    with SyncPolymarketClient(
        data_url=DATA,
        gamma_url=GAMMA,
        clob_url=CLOB,
        sleep=t.sleep,
        clock=t.clock,
        monotonic=t.monotonic,
    ) as sync:
        assert sync.get_book(TOKEN).best_ask == Decimal("0.65")
        assert isinstance(sync.post_order(ORDER_BODY, CREDS, HARDHAT_ADDR), InDoubt)
        sync.invalidate_market(CONDITION)  # plain methods pass through
        assert sync.rate_limit_waits == 0


def test_rate_limit_error_surfaces_for_long_waits(t: FakeTime) -> None:
    """A read whose Retry-After exceeds the cap raises RateLimitError for the caller to schedule."""
    with respx.mock:
        respx.get(f"{CLOB}/midpoint").mock(
            return_value=httpx.Response(429, headers={"Retry-After": "120"})
        )
        client = make_client(t)
        with pytest.raises(RateLimitError) as info:
            run(lambda: client.get_midpoint(TOKEN))
    assert info.value.retry_after == 120.0 and t.sleeps == []


def test_from_settings() -> None:
    """from_settings reads the three base URLs and the chain id."""

    class S:
        data_api_url = DATA
        gamma_api_url = GAMMA
        clob_api_url = CLOB + "/"
        chain_id = 80002

    client = PolymarketClient.from_settings(S())
    assert client.clob_url == CLOB and client.chain_id == 80002 and client.data_url == DATA
