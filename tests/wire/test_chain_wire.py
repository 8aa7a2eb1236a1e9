"""The chain wire layer: OrderFilled decoding, JSON-RPC error classification, the client, splits."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from eth_hash.auto import keccak
from hypothesis import given
from hypothesis import strategies as st

from copying.chain_source import _Shrink
from wire.chain import (
    ORDER_FILLED_SIGNATURE,
    ORDER_FILLED_TOPIC,
    LogDecodeError,
    decode_order_filled,
    encode_order_filled_data,
    topic_for_address,
)
from wire.rpc import (
    JsonRpcClient,
    RpcError,
    RpcErrorKind,
    classify_rpc_error,
    error_from_object,
    logs_call,
    logs_filter_json,
    range_limit,
    suggested_range_end,
)
from wire.signing import exchange_addresses
from wire.types import Side

EXCHANGE = "0xE111180000d2663C0091e4f400237545B87B996B"
MAKER = "0x0d6cf071dbddb6780f4b6912b49d683b8f234395"
TAKER = "0x7c3db723f1d4d8cb9c550095203b686cb11e5c6b"
TOKEN = "45202227256710257521935388599371620715578063998808294012969308187257000919017"
TX = "0x" + "ab" * 32
BLOCK_HASH = "0x" + "cd" * 32


def raw_log(side: int, maker_amount: int, taker_amount: int, fee: int = 0, *, taker: str = TAKER,
            data: str | None = None, topic0: str = ORDER_FILLED_TOPIC) -> dict[str, Any]:
    """A hand-built log with the real layout (words written out here, not by the encoder)."""
    words = [side, int(TOKEN), maker_amount, taker_amount, fee, 0x42, 0]
    return {
        "address": EXCHANGE.lower(),
        "topics": [topic0, "0x" + "11" * 32, "0x" + "0" * 24 + MAKER[2:], "0x" + "0" * 24 + taker[2:].lower()],
        "data": data if data is not None else "0x" + "".join(format(w, "064x") for w in words),
        "blockNumber": "0x4c4b409", "blockHash": BLOCK_HASH, "transactionHash": TX,
        "transactionIndex": "0x3", "logIndex": "0x1f", "removed": False,
    }


def test_topic0_is_the_keccak_of_the_event_signature() -> None:
    """topic0 in docs/POLYMARKET.md §8.1 is keccak256 of the canonical signature."""
    assert "0x" + keccak(ORDER_FILLED_SIGNATURE.encode()).hex() == ORDER_FILLED_TOPIC


def test_a_maker_buy_decodes_to_shares_price_and_fee() -> None:
    """BUY: maker amount = pUSD paid, taker amount = shares (6 decimals)."""
    lg = decode_order_filled(raw_log(0, 32_500_000, 50_000_000, fee=12_345), exchange_addresses(137))
    assert lg.side is Side.BUY and lg.token_id == TOKEN
    assert lg.shares == Decimal("50") and lg.usdc == Decimal("32.5") and lg.price == Decimal("0.65")
    assert lg.fee_usdc == Decimal("0.012345")
    assert (lg.maker, lg.taker, lg.exchange) == (MAKER, TAKER, EXCHANGE.lower())
    assert (lg.block_number, lg.log_index, lg.transaction_index) == (0x4C4B409, 31, 3)
    assert lg.identity == (TX, 31) and not lg.is_taker_order
    assert lg.builder == "0x" + "0" * 62 + "42"


def test_a_taker_sell_decodes_the_other_way_round() -> None:
    """SELL: maker amount = shares, taker amount = pUSD; the taker's own event has taker = exchange."""
    lg = decode_order_filled(raw_log(1, 1_234_567, 802_468, taker=EXCHANGE))
    assert lg.side is Side.SELL and lg.shares == Decimal("1.234567") and lg.usdc == Decimal("0.802468")
    assert lg.price == Decimal("0.6499995545")  # the amount ratio, 10 decimals
    assert lg.is_taker_order


@pytest.mark.parametrize("mutate, message", [
    (lambda lg: lg.update(topics=lg["topics"][:3]), "4 topics"),
    (lambda lg: lg.update(topics=["0x" + "00" * 32, *lg["topics"][1:]]), "not OrderFilled"),
    (lambda lg: lg.update(data=lg["data"][:-64]), "6 words"),
    (lambda lg: lg.update(data="0x" + "zz" * 224), "hex bytes"),
    (lambda lg: lg.update(blockHash="0x12"), "blockHash"),
    (lambda lg: lg.update(logIndex=None), "logIndex"),
    (lambda lg: lg.update(address="nope"), "address"),
    (lambda lg: lg["topics"].__setitem__(2, "0x" + "ff" * 32), "not an address"),
])
def test_malformed_logs_are_refused(mutate: Any, message: str) -> None:
    """Anything that is not a well-formed V2 OrderFilled raises LogDecodeError, never guesses."""
    lg = raw_log(0, 1, 1)
    mutate(lg)
    with pytest.raises(LogDecodeError, match=message):
        decode_order_filled(lg)


def test_side_2_zero_amounts_and_foreign_contracts_are_refused() -> None:
    """A side that is neither 0 nor 1, a zero amount, a log of another contract."""
    with pytest.raises(LogDecodeError, match="neither 0"):
        decode_order_filled(raw_log(2, 1, 1))
    with pytest.raises(LogDecodeError, match="zero"):
        decode_order_filled(raw_log(0, 0, 5))
    with pytest.raises(LogDecodeError, match="not a V2 exchange"):
        decode_order_filled(raw_log(0, 1, 1), ["0x4bFb41d5B3570DeFd03C39a9A4D8dE6Bd8B8982E"])


@given(side=st.sampled_from([Side.BUY, Side.SELL]), maker=st.integers(1, 2**96),
       taker=st.integers(1, 2**96), fee=st.integers(0, 2**64))
def test_encode_then_decode_round_trips(side: Side, maker: int, taker: int, fee: int) -> None:
    """The simulator's encoder and the decoder agree on every amount."""
    lg = raw_log(0, 1, 1, data=encode_order_filled_data(side, TOKEN, maker, taker, fee))
    out = decode_order_filled(lg)
    assert (out.side, out.maker_amount, out.taker_amount, out.fee) == (side, maker, taker, fee)


def test_address_topics() -> None:
    """Addresses are left-padded lowercase topics."""
    assert topic_for_address(TAKER.upper().replace("0X", "0x")) == "0x" + "0" * 24 + TAKER[2:]
    with pytest.raises(ValueError):
        topic_for_address("0x1234")


# ---- provider errors -----------------------------------------------------------------------------

# (code, message, data, http status) as real providers answer them
PROVIDER_ERRORS = [
    (-32005, "query returned more than 10000 results. Try with this block range [0xBDE5F8, 0x102DBCC].",
     {"from": "0xBDE5F8", "limit": 10000, "to": "0x102DBCC"}, 200, RpcErrorKind.TOO_MANY_RESULTS),
    (-32602, "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block "
             "range and no limit on the response size, or you can request any block range with a "
             "cap of 10K logs in the response. Based on your parameters and the response size "
             "limit, this block range should work: [0x0, 0xd043b8]", None, 200,
     RpcErrorKind.TOO_MANY_RESULTS),
    (-32602, "query exceeds max results 20000, retry with the range 23879634-23879696", None, 200,
     RpcErrorKind.TOO_MANY_RESULTS),
    (-32600, "You can make eth_getLogs requests with up to a 500 block range. Based on your "
             "parameters, this block range should work: [0x123c9b2, 0x123cba5]", None, 200,
     RpcErrorKind.RANGE_TOO_LARGE),
    (-32602, "range 1000000 exceeds limit of 10000", None, 200, RpcErrorKind.RANGE_TOO_LARGE),
    (-32614, "eth_getLogs is limited to a 10,000 range", None, 413, RpcErrorKind.RANGE_TOO_LARGE),
    (-32602, "eth_getLogs is limited to 1024 block range. Please check the parameter requirements",
     None, 200, RpcErrorKind.RANGE_TOO_LARGE),
    (-32603, "eth_getLogs range is too large, max is 1k blocks", None, 200, RpcErrorKind.RANGE_TOO_LARGE),
    (35, "ranges over 10000 blocks are not supported on freetier", None, 200, RpcErrorKind.RANGE_TOO_LARGE),
    (-32000, "block range is too wide (maximum 1024)", None, 200, RpcErrorKind.RANGE_TOO_LARGE),
    (-32602, "Maximum allowed number of requested blocks is 1000", None, 200, RpcErrorKind.RANGE_TOO_LARGE),
    (-32005, "exceeded project rate limit", {"rate": {"allowed_rps": 5, "backoff_seconds": 30,
                                                      "current_rps": 5.2}}, 429, RpcErrorKind.RATE_LIMITED),
    (-32016, "over rate limit", None, 200, RpcErrorKind.RATE_LIMITED),
    (-32029, "Too many requests", None, 200, RpcErrorKind.RATE_LIMITED),
    (-32601, "the method eth_foo does not exist/is not available", None, 200, RpcErrorKind.OTHER),
    (-32000, "header not found", None, 200, RpcErrorKind.OTHER),
    (-32603, "internal error", None, 502, RpcErrorKind.TRANSPORT),
]


@pytest.mark.parametrize("code, message, data, status, kind", PROVIDER_ERRORS)
def test_provider_errors_are_classified(code: int, message: str, data: Any, status: int,
                                        kind: RpcErrorKind) -> None:
    """Each provider's wording lands in the right class."""
    assert classify_rpc_error(code, message, data, status) is kind


def test_suggested_ranges_and_limits_are_parsed() -> None:
    """The range a provider suggests and the cap it states, when its message has them."""
    assert suggested_range_end("this block range should work: [0x123c9b2, 0x123cba5]") == 0x123CBA5
    assert suggested_range_end("retry with the range 23879634-23879696") == 23879696
    assert suggested_range_end("x", {"from": "0x10", "to": "0x20"}) == 0x20
    assert suggested_range_end("no hint") is None
    assert range_limit("eth_getLogs range is too large, max is 1k blocks") == 1000
    assert range_limit("range 1000000 exceeds limit of 10000") == 10000
    assert range_limit("eth_getLogs is limited to a 10,000 range") == 10000
    assert range_limit("Maximum allowed number of requested blocks is 1000") == 1000
    assert range_limit("block range is too wide (maximum 1024)") == 1024
    assert range_limit("You can make eth_getLogs requests with up to a 500 block range") == 500
    err = error_from_object({"code": -32005, "message": "exceeded project rate limit",
                             "data": {"rate": {"backoff_seconds": 30}}}, 429)
    assert err.kind is RpcErrorKind.RATE_LIMITED and err.retry_after == 30


@pytest.mark.parametrize("message, lo, hi, expected", [
    ("You can make eth_getLogs requests with up to a 500 block range.", 100, 2099, 599),
    ("range 2000 exceeds limit of 1000", 100, 2099, 1099),
    ("query returned more than 10000 results. Try with this block range [0x64, 0x96].", 100, 2099, 150),
    ("some other wording", 100, 2099, 1099),  # no hint: halve
    ("some other wording", 100, 100, 100),  # one block cannot shrink
])
def test_split_takes_the_smallest_sound_range(message: str, lo: int, hi: int, expected: int) -> None:
    """A too-large query shrinks to the provider's cap or suggestion, else to half."""
    kind = classify_rpc_error(-32602, message) if "results" not in message else RpcErrorKind.TOO_MANY_RESULTS
    if kind is RpcErrorKind.OTHER:
        kind = RpcErrorKind.RANGE_TOO_LARGE
    error = error_from_object({"code": -32602, "message": message})
    error.kind = kind
    assert _Shrink(error, 1).new_hi(lo, hi) == expected


# ---- the client ------------------------------------------------------------------------------------

URL = "https://rpc.example/v2/secret-key"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@respx.mock
def test_batches_keep_the_order_and_per_call_errors() -> None:
    """A batch answered out of order maps back by id; one failed call fails only its slot."""
    def answer(request: httpx.Request) -> httpx.Response:
        calls = json.loads(request.content)
        out = [{"jsonrpc": "2.0", "id": c["id"], "result": hex(c["id"])} for c in calls]
        out[0] = {"jsonrpc": "2.0", "id": calls[0]["id"],
                  "error": {"code": -32602, "message": "range 5000 exceeds limit of 1000"}}
        return httpx.Response(200, json=list(reversed(out)))

    respx.post(URL).mock(side_effect=answer)

    async def go() -> list[Any]:
        rpc = JsonRpcClient(URL, max_rps=1000)
        flt = logs_filter_json([EXCHANGE], [ORDER_FILLED_TOPIC, None, [topic_for_address(MAKER)]])
        try:
            return await rpc.batch([logs_call(flt, 1, 5000), logs_call(flt, 1, 10),
                                    logs_call(flt, 11, 20)])
        finally:
            await rpc.aclose()

    first, second, third = run(go())
    assert isinstance(first, RpcError) and first.kind is RpcErrorKind.RANGE_TOO_LARGE and first.limit == 1000
    assert second == "0x2" and third == "0x3"


@respx.mock
def test_the_request_body_is_the_prebuilt_filter() -> None:
    """logs_call splices the pre-serialized filter: valid JSON, hex block numbers, OR list."""
    seen: list[Any] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": seen[-1]["id"], "result": []})

    respx.post(URL).mock(side_effect=answer)

    async def go() -> Any:
        rpc = JsonRpcClient(URL)
        flt = logs_filter_json([EXCHANGE], [ORDER_FILLED_TOPIC, None, [topic_for_address(MAKER)]])
        try:
            return await rpc.batch([logs_call(flt, 16, 31)])
        finally:
            await rpc.aclose()

    assert run(go()) == [[]]
    params = seen[0]["params"][0]
    assert params == {"fromBlock": "0x10", "toBlock": "0x1f", "address": [EXCHANGE.lower()],
                      "topics": [ORDER_FILLED_TOPIC, None, ["0x" + "0" * 24 + MAKER[2:]]]}


@pytest.mark.parametrize("status, body, kind", [
    (429, {"jsonrpc": "2.0", "id": 1, "error": {"code": -32005, "message": "exceeded project rate limit"}},
     RpcErrorKind.RATE_LIMITED),
    (429, "<html>429 Too Many Requests</html>", RpcErrorKind.RATE_LIMITED),
    (503, {"error": "unavailable"}, RpcErrorKind.TRANSPORT),
    (200, "not json", RpcErrorKind.OTHER),
])
@respx.mock
def test_http_failures_are_classified(status: int, body: Any, kind: RpcErrorKind) -> None:
    """Non-200 answers and unreadable bodies become classified RpcErrors, never crashes."""
    content = json.dumps(body).encode() if not isinstance(body, str) else body.encode()
    respx.post(URL).mock(return_value=httpx.Response(status, content=content, headers={"Retry-After": "7"}))

    async def go() -> Any:
        rpc = JsonRpcClient(URL)
        try:
            return await rpc.block_number()
        finally:
            await rpc.aclose()

    with pytest.raises(RpcError) as info:
        run(go())
    assert info.value.kind is kind
    assert "secret-key" not in str(info.value)
    if status == 429 and isinstance(body, str):
        assert info.value.retry_after == 7


@respx.mock
def test_connection_failures_are_transport_errors() -> None:
    """A refused connection is a TRANSPORT error (the follower backs off)."""
    respx.post(URL).mock(side_effect=httpx.ConnectError("refused"))

    async def go() -> Any:
        rpc = JsonRpcClient(URL)
        try:
            return await rpc.chain_id()
        finally:
            await rpc.aclose()

    with pytest.raises(RpcError) as info:
        run(go())
    assert info.value.kind is RpcErrorKind.TRANSPORT


def test_the_client_side_rate_is_enforced() -> None:
    """A batch of N calls takes N tokens: 30 calls at 10/s (burst 10) wait ~2 s (fake clock)."""
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    async def go() -> None:
        transport = httpx.MockTransport(lambda r: httpx.Response(
            200, json=[{"jsonrpc": "2.0", "id": c["id"], "result": "0x1"} for c in json.loads(r.content)]))
        rpc = JsonRpcClient(URL, client=httpx.AsyncClient(transport=transport), max_rps=10,
                            monotonic=lambda: now[0], sleep=sleep)
        flt = logs_filter_json([EXCHANGE], [ORDER_FILLED_TOPIC])
        for _ in range(3):
            await rpc.batch([logs_call(flt, 1, 2)] * 10)
        assert rpc.calls_sent == 30 and rpc.requests_sent == 3

    run(go())
    assert sum(slept) == pytest.approx(2.0)
