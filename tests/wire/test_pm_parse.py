"""pm_parse: every fixture body parses into typed records; every venue answer is classified."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.support.paths import POLYMARKET
from wire.errors import ApiError, ParseError, RateLimitError, RestrictedError
from wire.parse import (
    ActivityQuery,
    TradesQuery,
    build_activity_params,
    build_balance_params,
    build_batch_body,
    build_cancel_body,
    build_gamma_markets_params,
    build_tokens_params,
    build_trades_params,
    classify_post_order,
    classify_post_orders,
    is_combo_condition_id,
    is_v2_position_id,
    normalise_status,
    pad_condition_id,
    parse_activity,
    parse_activity_page,
    parse_balance_allowance,
    parse_book,
    parse_cancel_result,
    parse_clob_market,
    parse_clob_trade,
    parse_error_response,
    parse_gamma_market,
    parse_gamma_markets,
    parse_midpoint,
    parse_open_order,
    parse_order_lookup,
    parse_positions_page,
    parse_retry_after,
    parse_server_time,
    parse_tick_size,
    poll_activity_query,
    to_decimal,
)
from wire.records import (
    Accepted,
    Duplicate,
    InDoubt,
    RateLimited,
    Rejected,
    RejectKind,
    Restricted,
)
from wire.types import MarketVersion, Side

POLY = POLYMARKET
FIX = POLY / "fixtures"
NOW = 1795253614.0


def fixture(name: str) -> Any:
    """A fixture body decoded from JSON."""
    return json.loads((FIX / name).read_text())


ERRORS: dict[str, Any] = fixture("clob_error_bodies.json")


def body(case: str) -> bytes:
    """One clob_error_bodies.json case as wire bytes."""
    return json.dumps(ERRORS[case]).encode()


# -- Data API ---------------------------------------------------------------------------------


def test_trades_page_rows_are_typed_decimal_and_utc() -> None:
    """data_trades.json: Decimal sizes/prices, aware UTC timestamps, cursor, 999 → None."""
    page = parse_activity_page(fixture("data_trades.json"), "/v2/trades")
    assert len(page.items) == 5 and not page.rejected
    first = page.items[0]
    assert first.size == Decimal("250") and first.price == Decimal("0.62")
    assert isinstance(first.size, Decimal) and isinstance(first.price, Decimal)
    assert first.timestamp == datetime.fromtimestamp(1795252443, tz=UTC)
    assert first.timestamp.tzinfo is not None
    assert first.side is Side.BUY and first.type == "TRADE" and first.usdc_size is None
    assert first.outcome_index == 0 and first.copyable
    assert page.items[1].size == Decimal("113.5")
    assert page.items[-1].outcome_index is None  # the 999 sentinel
    assert page.items[-1].event_slug == ""  # empty strings are fine
    assert page.next_cursor == "djI6dHJhZGVzOjE3OTUxOTU4Njk6ODg0MTIwMzM6NS5hYjcxZTQ"
    assert page.has_more


def test_activity_row_keeps_float_text_exactly() -> None:
    """A /v2/activity price like 0.9300000035 becomes exactly Decimal('0.9300000035')."""
    row = {
        "proxy_wallet": "0x7C3DB723F1D4D8CB9C550095203B686CB11E5C6B",
        "timestamp": 1788886609,
        "condition_id": "0x0a91645ed98ad09817e051a17466cff087b920393aefba0fe74e8735fc192f15",
        "type": "TRADE",
        "size": 14.285715,
        "usdc_size": 13.285715,
        "transaction_hash": "0xa661",
        "price": 0.9300000035,
        "token_id": "9825",
        "side": "BUY",
        "outcome_index": 0,
        "title": "",
        "slug": "",
        "icon": "",
        "event_slug": "",
        "outcome": "Yes",
    }
    act = parse_activity(row)
    assert act.price == Decimal("0.9300000035")
    assert act.size == Decimal("14.285715") and act.usdc_size == Decimal("13.285715")
    assert act.proxy_wallet == "0x7c3db723f1d4d8cb9c550095203b686cb11e5c6b"
    assert not act.is_combo


def _row(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "proxy_wallet": "0xabc",
        "timestamp": 1795252443,
        "type": "TRADE",
        "size": 10,
        "price": 0.5,
        "token_id": "1",
        "side": "BUY",
        "outcome_index": 0,
        "transaction_hash": "0x1",
        "condition_id": "0x" + "ab" * 32,
    }
    base.update(over)
    return base


def test_combo_rows_flagged_by_flag_or_by_62_hex_0x03_id() -> None:
    """is_combo: true on the row, or a 62-hex condition id starting 0x03, marks a combo."""
    assert parse_activity(_row(is_combo=True)).is_combo
    combo_id = "0x03" + "2d" * 30
    assert len(combo_id) == 64 and is_combo_condition_id(combo_id)
    combo = parse_activity(_row(condition_id=combo_id))
    assert combo.is_combo and not combo.copyable
    structural = parse_activity(_row(condition_id="0x01" + "2d" * 30))  # 62-hex V2 id accepted
    assert not structural.is_combo and structural.condition_id == "0x01" + "2d" * 30


def test_non_trade_rows_and_missing_usdc() -> None:
    """A REDEEM row with side "" parses with side None; price 0 where n/a; null usdc → None."""
    act = parse_activity(_row(type="REDEEM", side="", price=None, usdc_size=None))
    assert act.side is None and act.price == Decimal(0) and act.usdc_size is None
    assert not act.copyable


def test_untypeable_rows_are_kept_as_rejected_not_lost() -> None:
    """A row without a size lands in `rejected` with its index; the other rows still parse."""
    page = parse_activity_page({"data": [_row(), _row(size=None), _row()], "pagination": None})
    assert len(page.items) == 2
    assert [r.index for r in page.rejected] == [1] and "size" in page.rejected[0].reason


def test_envelope_miss_and_inconsistent_pagination() -> None:
    """data: null is an empty page; has_more disagreeing with next_cursor is a ParseError."""
    assert parse_activity_page({"data": None}).items == ()
    with pytest.raises(ParseError):
        parse_activity_page({"data": [], "pagination": {"has_more": True, "next_cursor": None}})
    with pytest.raises(ParseError):
        parse_activity_page([1, 2])


def test_positions_fixture() -> None:
    """data_positions.json: sizes and P&L as Decimal, dates typed, no more pages."""
    page = parse_positions_page(fixture("data_positions.json"))
    assert not page.has_more and len(page.items) == 2
    pos = page.items[0]
    assert pos.current_size == Decimal("313.5") and pos.avg_price == Decimal("0.6236")
    assert pos.realized_pnl == Decimal("-1.9") and pos.entry_fees_usdc == Decimal("0.0")
    assert pos.end_date == date(2026, 12, 9) and pos.negative_risk and pos.status == "OPEN"
    assert pos.last_event_at == datetime.fromtimestamp(1795252443, tz=UTC)
    assert pos.opposite_token_id.startswith("4688995")


def test_activity_params_resend_identical_filters_and_cache_bust() -> None:
    """Page two carries the same filters plus the cursor; the poll URL's end is now + 1 day."""
    query = poll_activity_query("0xabc", start=1795250000, now=NOW)
    assert query.end == int(NOW) + 86400
    first = build_activity_params(query, None)
    second = build_activity_params(query, "CUR")
    assert first == {
        "user": "0xabc",
        "limit": 100,
        "type": "TRADE,SPLIT,MERGE,REDEEM,CONVERSION",
        "start": 1795250000,
        "end": int(NOW) + 86400,
    }
    assert second == {**first, "cursor": "CUR"}
    assert poll_activity_query("0xabc", start=None, now=NOW + 1).end != query.end
    with pytest.raises(ValueError):
        build_activity_params(ActivityQuery(user="0xabc", limit=1001), None)


def test_trades_params_always_say_taker_only_false() -> None:
    """/v2/trades params send taker_only=false by default (maker fills included)."""
    params = build_trades_params(TradesQuery(user="0xabc", side=Side.SELL), "C")
    assert params["taker_only"] == "false" and params["side"] == "SELL" and params["cursor"] == "C"


def test_tokens_params_need_exactly_one_selector() -> None:
    """/v2/tokens takes token ids or condition ids, not both."""
    assert build_tokens_params(["1", "2"]) == {"token_id": "1,2"}
    with pytest.raises(ValueError):
        build_tokens_params(["1"], ["0xab"])
    with pytest.raises(ValueError):
        build_tokens_params([str(i) for i in range(51)])


def test_data_api_error_body_becomes_typed_error() -> None:
    """The v2 error envelope's code/retryable/trace_id/parameter land on ApiError."""
    err = parse_error_response(400, body("data_api_v2_400"), {}, now=NOW, route="GET /v2/trades")
    assert type(err) is ApiError and err.status == 400 and err.code == "invalid_request"
    assert err.retryable is False and err.trace_id == "4f1c2b9e7a3d5c60"
    assert err.parameter == "side" and err.message == "side must be BUY or SELL"
    limited = parse_error_response(
        429, body("data_api_v2_429"), {"retry-after": "3"}, now=NOW, route="r"
    )
    assert isinstance(limited, RateLimitError) and limited.retry_after == 3.0
    assert limited.retryable is True


def test_error_trace_id_from_header_and_plain_text_body() -> None:
    """A non-JSON error body is kept as text; x-trace-id fills trace_id when the body has none."""
    err = parse_error_response(
        502, b"<html>bad gateway</html>", {"x-trace-id": "t1"}, now=NOW, route="r"
    )
    assert err.status == 502 and "bad gateway" in err.message and err.trace_id == "t1"


def test_retry_after_seconds_date_and_body() -> None:
    """Retry-After in seconds or as an HTTP date, else a body retry_after_seconds."""
    assert parse_retry_after({"retry-after": "7"}, None, NOW) == 7.0
    date_header = "Wed, 21 Oct 2026 07:28:00 GMT"
    expected = datetime(2026, 10, 21, 7, 28, tzinfo=UTC).timestamp() - (NOW - 10**8)
    assert parse_retry_after({"retry-after": date_header}, None, NOW - 10**8) == expected
    assert parse_retry_after({}, {"retry_after_seconds": 4}, NOW) == 4.0
    assert parse_retry_after({}, {}, NOW) is None


# -- Gamma ------------------------------------------------------------------------------------


def test_gamma_v1_market_uses_json_encoded_clob_token_ids() -> None:
    """gamma_market.json (v1): outcomes/clobTokenIds decoded from JSON strings, index-aligned."""
    market = parse_gamma_market(fixture("gamma_market.json"))
    assert market.version is MarketVersion.V1 and market.neg_risk
    assert [t.outcome for t in market.tokens] == ["Yes", "No"]
    assert market.tokens[0].token_id.startswith("4520222725671")
    assert market.tokens[1].outcome_index == 1
    assert market.tick_size == Decimal("0.01") and market.min_size == Decimal("5")
    assert market.end_date == datetime(2026, 12, 9, 12, tzinfo=UTC)
    assert market.accepting_orders and not market.closed and not market.fees_enabled


def test_gamma_v2_market_uses_position_ids_and_fee_schedule() -> None:
    """gamma_market_protocol_v2.json: positionIds chosen by version; fee schedule as Decimal."""
    market = parse_gamma_market(fixture("gamma_market_protocol_v2.json"))
    assert market.version is MarketVersion.V2
    assert [t.outcome for t in market.tokens] == ["Lakers", "Celtics"]
    assert market.tokens[1].token_id.endswith("617537")
    assert all(is_v2_position_id(t.token_id) for t in market.tokens)
    assert market.fee_rate == Decimal("0.05") and market.fee_exponent == Decimal("1")
    assert market.fee_takers_only and market.tick_size == Decimal("0.005")


def test_gamma_version_picks_ids_even_when_both_present_and_unknown_is_rejected() -> None:
    """Version decides clobTokenIds vs positionIds; an unknown or missing version is rejected."""
    raw = dict(fixture("gamma_market.json"))
    raw["positionIds"] = ["111", "222"]
    assert parse_gamma_market(raw).tokens[0].token_id.startswith("4520222725671")
    raw["version"] = "v2"
    assert [t.token_id for t in parse_gamma_market(raw).tokens] == ["111", "222"]
    for bad in ("v3", None, ""):
        raw["version"] = bad
        with pytest.raises(ParseError, match="version"):
            parse_gamma_market(raw)
    assert (
        parse_gamma_markets(None) == []
        and len(
            parse_gamma_markets({"markets": [fixture("gamma_market.json")], "next_cursor": None})
        )
        == 1
    )


def test_gamma_params_repeat_list_filters() -> None:
    """Gamma list filters are lists (httpx repeats them) and closed is explicit text."""
    params = build_gamma_markets_params(condition_ids=["0xa", "0xb"], closed=True)
    assert params == {"condition_ids": ["0xa", "0xb"], "closed": "true"}
    with pytest.raises(ValueError):
        build_gamma_markets_params()


def test_position_id_namespace() -> None:
    """CTF token ids are not in the V2 positionId namespace; V2 position ids are."""
    v1 = parse_gamma_market(fixture("gamma_market.json"))
    assert not any(is_v2_position_id(t.token_id) for t in v1.tokens)
    assert not is_v2_position_id("0x12") and not is_v2_position_id("")


# -- CLOB public ------------------------------------------------------------------------------


def test_book_fixture_normalised_best_first() -> None:
    """clob_book.json (bids ascending, asks descending) → best bid 0.64, best ask 0.65 first."""
    book = parse_book(fixture("clob_book.json"))
    assert book.best_bid == Decimal("0.64") and book.best_ask == Decimal("0.65")
    assert [lv.price for lv in book.bids] == [
        Decimal(p) for p in ("0.64", "0.63", "0.62", "0.6", "0.58")
    ]
    assert [lv.price for lv in book.asks] == [
        Decimal(p) for p in ("0.65", "0.66", "0.67", "0.69", "0.72")
    ]
    assert book.asks[0].size == Decimal("288.62") and book.tick_size == Decimal("0.01")
    assert book.min_size == Decimal("5") and book.neg_risk
    assert book.timestamp == datetime.fromtimestamp(1795252461.337, tz=UTC)


def test_clob_market_params_and_tick_validation() -> None:
    """/clob-markets compact body: tick, min size, neg risk, fees; unknown ticks rejected."""
    raw = {
        "t": [{"t": "1", "o": "Yes"}, {"t": "2", "o": "No"}],
        "mts": 0.005,
        "mos": 5,
        "nr": True,
        "fd": {"r": 0.05, "e": 1, "to": True},
        "itode": True,
        "oas": 3,
    }
    params = parse_clob_market(raw)
    assert params.tick_size == Decimal("0.005") and params.min_size == Decimal("5")
    assert params.neg_risk and params.fee_rate == Decimal("0.05") and params.taker_delay
    assert [t.token_id for t in params.tokens] == ["1", "2"] and params.min_order_age_s == 3
    assert parse_clob_market({"t": [], "mts": "0.01", "mos": "5"}).fee_rate == Decimal(0)
    with pytest.raises(ParseError, match="tick"):
        parse_clob_market({**raw, "mts": 0.02})


def test_small_public_bodies() -> None:
    """midpoint, tick size (number or string), server time (int or object)."""
    assert parse_midpoint({"mid_price": "0.645"}) == Decimal("0.645")
    assert parse_tick_size({"minimum_tick_size": 0.01}) == Decimal("0.01")
    assert parse_tick_size({"minimum_tick_size": "0.0025"}) == Decimal("0.0025")
    assert parse_server_time(1795253614) == 1795253614
    assert parse_server_time({"time": "1795253614"}) == 1795253614


def test_pad_condition_id() -> None:
    """A 31-byte structural id gets 00 appended; 32-byte ids are unchanged; junk is refused."""
    v2 = "0x0172d880170c4126597dfb630e478dd32e147b0000000000000000e93e16de"
    assert pad_condition_id(v2) == v2 + "00"
    v1 = "0x" + "ab" * 32
    assert pad_condition_id(v1) == v1
    with pytest.raises(ValueError):
        pad_condition_id("0x1234")


def test_to_decimal_refuses_bool_and_nan() -> None:
    """Booleans, None and non-finite numbers are not amounts."""
    for bad in (True, None, "nan", "abc", [1]):
        with pytest.raises(ParseError):
            to_decimal(bad, "x")
    assert to_decimal(0.1, "x") == Decimal("0.1")


# -- Order submission outcomes ----------------------------------------------------------------

REJECT_CASES = {
    "http400_order_version_mismatch": RejectKind.VERSION_MISMATCH,
    "http400_maker_not_allowed": RejectKind.WALLET_NOT_ALLOWED,
    "http400_signer_not_api_key": RejectKind.SIGNER_MISMATCH,
    "http400_owner_not_api_key": RejectKind.OWNER_MISMATCH,
    "http400_balance": RejectKind.BALANCE,
    "http400_tick": RejectKind.TICK_SIZE,
    "http400_min_size": RejectKind.MIN_SIZE,
    "http400_marketable_buy_min_notional": RejectKind.MIN_NOTIONAL,
    "http400_market_buy_precision": RejectKind.PRECISION,
    "http400_fok_not_filled": RejectKind.FOK_NOT_FILLED,
    "http400_fak_no_match": RejectKind.FAK_NO_MATCH,
    "http400_post_only_cross": RejectKind.POST_ONLY_CROSS,
    "http400_market_not_ready": RejectKind.MARKET_NOT_READY,
    "http400_closed_only": RejectKind.CLOSED_ONLY,
    "http401_bad_api_key": RejectKind.AUTH,
    "http401_bad_l1": RejectKind.AUTH,
    "http404_no_book": RejectKind.NOT_FOUND,
}


@pytest.mark.parametrize("case,kind", REJECT_CASES.items())
def test_4xx_bodies_are_rejected_with_kind(case: str, kind: RejectKind) -> None:
    """Each 4xx error body of the catalogue is Rejected (not placed) with the right kind."""
    status = int(case[4:7])
    outcome = classify_post_order(status, body(case), {}, now=NOW)
    assert isinstance(outcome, Rejected)
    assert outcome.kind is kind and outcome.http_status == status
    assert outcome.reason == ERRORS[case]["error"]


def test_duplicated_is_duplicate_with_order_id() -> None:
    """'… is invalid. Duplicated.' → Duplicate carrying the order hash, not Rejected."""
    outcome = classify_post_order(400, body("http400_duplicated"), {}, now=NOW)
    assert isinstance(outcome, Duplicate)
    assert outcome.order_id == "0x2f7d1b4c6e8a0f3d5b7c9e1a3c5e7f9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c"


@pytest.mark.parametrize(
    "case,status,kind",
    [
        ("http425_engine_restarting", 425, "restarting"),
        ("http503_trading_disabled", 503, "halted"),
        ("http503_cancel_only", 503, "cancel_only"),
        ("http503_post_only_mode", 503, "post_only"),
    ],
)
def test_restrictions(case: str, status: int, kind: str) -> None:
    """425 and the three 503 variants are Restricted with their kind."""
    outcome = classify_post_order(status, body(case), {"retry-after": "1"}, now=NOW)
    assert outcome == Restricted(
        kind=kind, reason=ERRORS[case]["error"], http_status=status, retry_after=1.0
    )


def test_rate_limited_and_server_errors() -> None:
    """429 → RateLimited(retry_after); 500/502/unknown 503/408 → InDoubt."""
    limited = classify_post_order(429, body("http429_rate_limited"), {"Retry-After": "2"}, now=NOW)
    assert limited == RateLimited(retry_after=2.0, reason="Too Many Requests")
    for status in (500, 502, 503, 504, 408):
        outcome = classify_post_order(status, b'{"error": "boom"}', {}, now=NOW)
        assert isinstance(outcome, InDoubt) and outcome.http_status == status


def test_accept_bodies() -> None:
    """live / delayed / matched 200 bodies → Accepted with Decimal amounts or None for ""."""
    live = classify_post_order(200, body("http200_post_order_live"), {}, now=NOW)
    assert isinstance(live, Accepted) and live.status == "live"
    assert live.making_amount is None and live.trade_ids == ()
    delayed = classify_post_order(200, body("http200_post_order_delayed"), {}, now=NOW)
    assert isinstance(delayed, Accepted) and delayed.status == "delayed"
    matched = classify_post_order(
        200, (FIX / "clob_post_order_response.json").read_bytes(), {}, now=NOW
    )
    assert matched == Accepted(
        order_id="0x2f7d1b4c6e8a0f3d5b7c9e1a3c5e7f9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c",
        status="matched",
        making_amount=Decimal("9.99"),
        taking_amount=Decimal("15.609375"),
        trade_ids=("6a89a09b-69b4-43de-b2bf-eb8657f686fe",),
    )


def test_200_failures_and_doubts() -> None:
    """200 success:false → Rejected; unparsable or unknown-status 200 → InDoubt."""
    refused = classify_post_order(
        200, b'{"success": false, "errorMsg": "invalid expiration"}', {}, now=NOW
    )
    assert isinstance(refused, Rejected) and refused.kind is RejectKind.EXPIRATION
    assert isinstance(classify_post_order(200, b"<html>", {}, now=NOW), InDoubt)
    assert isinstance(classify_post_order(200, b"", {}, now=NOW), InDoubt)
    unmatched = b'{"success": true, "orderID": "0xab", "status": "unmatched", "errorMsg": ""}'
    assert isinstance(classify_post_order(200, unmatched, {}, now=NOW), InDoubt)
    no_id = b'{"success": true, "orderID": "", "status": "live"}'
    assert isinstance(classify_post_order(200, no_id, {}, now=NOW), InDoubt)


def test_batch_outcomes() -> None:
    """POST /orders: per-entry outcomes; wrong length → all InDoubt; HTTP error → all alike."""
    entries = [
        ERRORS["http200_post_order_live"],
        {"success": False, "errorMsg": "order x is invalid. Duplicated."},
    ]
    outcomes = classify_post_orders(200, json.dumps(entries).encode(), {}, count=2, now=NOW)
    assert isinstance(outcomes[0], Accepted) and isinstance(outcomes[1], Duplicate)
    short = classify_post_orders(200, json.dumps(entries[:1]).encode(), {}, count=2, now=NOW)
    assert all(isinstance(o, InDoubt) for o in short)
    failed = classify_post_orders(500, b"", {}, count=3, now=NOW)
    assert len(failed) == 3 and all(isinstance(o, InDoubt) for o in failed)


def test_batch_body_is_byte_exact_and_bounded() -> None:
    """The batch body is the given bodies joined verbatim; more than 15 is refused locally."""
    assert build_batch_body([b'{"a": 1}', b'{"b":2}']) == b'[{"a": 1},{"b":2}]'
    with pytest.raises(ValueError, match="15"):
        build_batch_body([b"{}"] * 16)


def test_cancel_body_matches_api_vector_bytes() -> None:
    """DELETE /order body is compact JSON, the exact bytes of the §4.2 vector."""
    oid = "0x3f1c9c1d2b5a7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b"
    assert build_cancel_body(oid) == f'{{"orderID":"{oid}"}}'.encode()
    result = parse_cancel_result({"canceled": ["0x1"], "not_canceled": {"0x2": "already done"}})
    assert result.canceled == ("0x1",) and result.not_canceled == {"0x2": "already done"}
    assert parse_cancel_result({"canceled": None, "not_canceled": None}).canceled == ()


# -- Ledger -----------------------------------------------------------------------------------


def test_open_order_fixture() -> None:
    """clob_order.json: Decimal sizes, remaining size, status and timestamps."""
    order = parse_open_order(fixture("clob_order.json"))
    assert order.original_size == Decimal("20") and order.size_matched == Decimal("7.5")
    assert order.remaining_size == Decimal("12.5") and order.price == Decimal("0.63")
    assert order.status == "LIVE" and order.side is Side.BUY and order.expiration is None
    assert order.created_at == datetime.fromtimestamp(1795252470, tz=UTC)
    assert order.associate_trades == ("8d972ace-36d2-4472-8ead-994df334b717",)
    assert not order.sizes_were_fixed6


def test_old_order_shape_prefix_and_fixed6_sizes() -> None:
    """ORDER_STATUS_LIVE and 6-decimal base-unit sizes ("100000000") normalise to LIVE / 100."""
    raw = {
        **fixture("clob_order.json"),
        "status": "ORDER_STATUS_LIVE",
        "original_size": "100000000",
        "size_matched": "2500000",
        "expiration": "1795300000",
    }
    order = parse_open_order(raw)
    assert order.status == "LIVE" and order.sizes_were_fixed6
    assert order.original_size == Decimal(100) and order.size_matched == Decimal("2.5")
    assert order.expiration == datetime.fromtimestamp(1795300000, tz=UTC)


def test_order_lookup_empty_means_none() -> None:
    """An empty body, null or {} from GET /data/order means "no such order"."""
    for empty in (b"", b"null", b"{}", b"  "):
        assert parse_order_lookup(empty) is None
    assert parse_order_lookup((FIX / "clob_order.json").read_bytes()) is not None


def test_clob_trades_fixture() -> None:
    """clob_trades.json: TRADE_STATUS_ stripped, Decimal sizes, maker fills typed."""
    page = fixture("clob_trades.json")
    trades = [parse_clob_trade(t) for t in page["data"]]
    maker, taker = trades
    assert maker.status == "CONFIRMED" and taker.status == "MINED"
    assert maker.trader_side == "MAKER" and maker.size == Decimal("7.5")
    assert maker.maker_orders[0].owner == "f4f247b7-4ac7-ff29-a152-04fda0a8755a"
    assert maker.maker_orders[0].side is Side.BUY
    assert sum(m.matched_amount for m in taker.maker_orders) == taker.size == Decimal("15.609375")
    assert taker.match_time == datetime.fromtimestamp(1795252455, tz=UTC)
    assert normalise_status("trade_status_failed") == "FAILED"


def test_balance_allowance_base_units() -> None:
    """Base units become pUSD/shares; V1-style single allowance is kept too."""
    parsed = parse_balance_allowance(
        {
            "balance": "12345678",
            "allowances": {
                "0xE111180000d2663C0091e4f400237545B87B996B": str(2**256 - 1),
                "0xe2222d279d744050d28e00520010520000310F59": "0",
            },
        }
    )
    assert parsed.balance == Decimal("12.345678")
    assert parsed.allowances["0xe2222d279d744050d28e00520010520000310F59"] == Decimal(0)
    assert parse_balance_allowance({"balance": "1", "allowance": "5000000"}).allowances == {
        "": Decimal(5)
    }
    with pytest.raises(ParseError):
        parse_balance_allowance({"allowances": {}})


def test_balance_params() -> None:
    """COLLATERAL takes no token; CONDITIONAL / CONDITIONAL-V2 need one."""
    assert build_balance_params("collateral", None, 3) == {
        "asset_type": "COLLATERAL",
        "signature_type": 3,
    }
    assert build_balance_params("CONDITIONAL-V2", "7", 0)["token_id"] == "7"
    with pytest.raises(ValueError):
        build_balance_params("CONDITIONAL", None, 0)
    with pytest.raises(ValueError):
        build_balance_params("USDC", None, 0)


def test_restriction_errors_for_reads() -> None:
    """An error response of 425/503-restriction becomes RestrictedError with its kind."""
    err = parse_error_response(503, body("http503_cancel_only"), {}, now=NOW, route="r")
    assert isinstance(err, RestrictedError) and err.kind == "cancel_only"
    assert isinstance(parse_error_response(425, b"", {}, now=NOW, route="r"), RestrictedError)
