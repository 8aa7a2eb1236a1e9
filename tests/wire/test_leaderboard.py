"""The Data API trader leaderboard (`GET /v2/leaderboard`): the client's request and parsing on a
realistic body, and the simulator's route (ranks with ties, cursors that pin their board, the
`user` arm, v2 errors)."""

from __future__ import annotations

from decimal import Decimal as D

import httpx
import pytest
import respx

from polymarket_client import PolymarketClient, SyncPolymarketClient
from sim import Simulator
from tests.support.simfixtures import TRADER_CAR, TRADER_QUIET
from wire.errors import ApiError
from wire.parse import build_leaderboard_params, parse_leaderboard_page

BODY = {
    "data": [
        {"rank": 1, "user_id": "0x56687BF447DB6FFA42FFE2204A05EDAA20F55839", "pnl": 22053933.75,
         "volume": 43013258.52, "user_name": "Theo4", "profile_image": "", "x_username": "",
         "verified": False},
        {"rank": 1, "user_id": "0x8119010a6e589062aa03583bb3f39ca632d9f887", "pnl": 22053933.75,
         "volume": 23520809.95, "user_name": "PrincessCaro", "profile_image": "https://x/p.png",
         "x_username": "caro", "verified": True},
        {"rank": 3, "user_id": "not-a-wallet", "pnl": 1, "volume": 1, "user_name": "",
         "profile_image": "", "x_username": "", "verified": False},
    ],
    "pagination": {"limit": 3, "offset": 0, "has_more": True, "next_cursor": "Y3Vyc29yLTE"},
}


def test_client_sends_the_v2_query_and_parses_exact_numbers() -> None:
    """First page: time_period/category/sort_by/limit; a cursor is sent alone; pnl and volume
    are exact Decimals; a row without a wallet is rejected, not guessed."""
    with respx.mock(assert_all_called=True) as mock:
        route = mock.get("http://data.test/v2/leaderboard").mock(
            return_value=httpx.Response(200, json=BODY))
        client = SyncPolymarketClient(data_url="http://data.test", http2=False)
        try:
            page = client.get_leaderboard(time_period="MONTH", sort_by="pnl", limit=3)
            again = client.get_leaderboard(cursor=page.next_cursor)
        finally:
            client.close()
    first, second = route.calls[0].request.url.params, route.calls[1].request.url.params
    assert dict(first) == {"time_period": "month", "category": "overall", "sort_by": "PNL",
                           "limit": "3"}
    assert dict(second) == {"cursor": "Y3Vyc29yLTE"}
    assert [e.rank for e in page.items] == [1, 1] and len(page.rejected) == 1
    top = page.items[0]
    assert top.wallet == "0x56687bf447db6ffa42ffe2204a05edaa20f55839"
    assert top.pnl == D("22053933.75") and top.volume == D("43013258.52")
    assert page.items[1].verified and page.items[1].x_username == "caro"
    assert page.next_cursor == "Y3Vyc29yLTE" and again.items == page.items


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"time_period": "year"}, "time_period"), ({"sort_by": "ROI"}, "sort_by"),
    ({"category": "Sports & more"}, "category"), ({"limit": 0}, "limit")])
def test_bad_leaderboard_queries_are_refused_before_sending(kwargs: dict[str, object],
                                                             message: str) -> None:
    """Invalid filters never reach the wire."""
    with pytest.raises(ValueError, match=message):
        build_leaderboard_params(**kwargs)  # type: ignore[arg-type]


def test_leaderboard_v2_error_is_an_api_error() -> None:
    """A v2 400 body becomes ApiError with the code and parameter."""
    async def go() -> None:
        client = PolymarketClient(data_url="http://data.test", http2=False)
        try:
            await client.get_leaderboard()
        finally:
            await client.aclose()

    import asyncio

    with respx.mock() as mock:
        mock.get("http://data.test/v2/leaderboard").mock(return_value=httpx.Response(
            400, json={"error": "invalid cursor", "code": "invalid_request", "retryable": False,
                       "trace_id": "abc", "parameter": "cursor"}))
        with pytest.raises(ApiError) as info:
            asyncio.run(go())
    assert info.value.status == 400 and "invalid cursor" in str(info.value)


def test_simulator_leaderboard_ranks_pages_and_pins_its_board(simulator: Simulator) -> None:
    """The demo world's board: competition ranks, pages that neither skip nor repeat, a cursor
    that refuses a contradicting filter, the user arm with both ranks, v2 errors."""
    http = httpx.Client(base_url=simulator.data_url, timeout=10)
    try:
        full = http.get("/v2/leaderboard", params={"time_period": "all", "sort_by": "VOLUME",
                                                    "limit": 100}).json()
        rows = full["data"]
        assert len(rows) >= 2 and full["pagination"]["has_more"] is False
        volumes = [D(str(r["volume"])) for r in rows]
        assert volumes == sorted(volumes, reverse=True)
        for i, r in enumerate(rows):  # competition ranks: ties share, the next skips
            expected = 1 + sum(1 for v in volumes if v > volumes[i])
            assert r["rank"] == expected
        walked: list[dict[str, object]] = []
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = (
                {"cursor": cursor} if cursor else {"time_period": "all", "sort_by": "VOLUME",
                                                   "limit": 2})
            page = http.get("/v2/leaderboard", params=params).json()
            walked += page["data"]
            cursor = page["pagination"]["next_cursor"]
            assert page["pagination"]["has_more"] is (cursor is not None)
            if cursor is None:
                break
        assert walked == rows
        first = http.get("/v2/leaderboard", params={"time_period": "all", "limit": 1}).json()
        bad = http.get("/v2/leaderboard", params={"cursor": first["pagination"]["next_cursor"],
                                                   "time_period": "day"})
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_request"
        me = http.get("/v2/leaderboard", params={"user": TRADER_CAR, "time_period": "all"}).json()
        assert me["data"]["user_id"] == TRADER_CAR and me["data"]["user_name"] == "Car"
        assert me["data"]["rank_volume"] >= 1 and me["data"]["rank_pnl"] >= 1
        assert http.get("/v2/leaderboard", params={"time_period": "year"}).status_code == 400
        assert http.get("/v2/leaderboard", params={"offset": 5}).status_code == 400
        quiet = [r for r in rows if r["user_id"] == TRADER_QUIET]
        assert quiet and quiet[0]["user_name"] == "quietcompounder"
    finally:
        http.close()
    assert parse_leaderboard_page(full).items[0].rank == 1
