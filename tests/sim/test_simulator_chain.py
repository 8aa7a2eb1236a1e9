"""The simulator's Polygon node: blocks, OrderFilled logs of every fill, JSON-RPC semantics and
caps, batches, eth_subscribe over a websocket (newHeads, logs, removed on reorg), outages."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from sim import SimConfig, Simulator
from tests.support.rig import quiet_scenario
from tests.support.simfixtures import FED_YES, HARDHAT_ADDRESSES, TRADER_CAR, TRADER_QUIET, account, sdk_limit_body
from wire.chain import ORDER_FILLED_TOPIC, decode_order_filled, topic_for_address
from wire.rpc import classify_rpc_error
from wire.types import Side

V2 = ["0xE111180000d2663C0091e4f400237545B87B996B", "0xe2222d279d744050d28e00520010520000310F59",
      "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa"]


@pytest.fixture
def node(simulator_factory: Callable[..., Simulator]) -> Simulator:
    """Blocks by hand."""
    return simulator_factory(quiet_scenario(), config=SimConfig(block_time=0))


def rpc(sim: Simulator, method: str, *params: Any) -> Any:
    body = httpx.post(sim.rpc_url, json={"jsonrpc": "2.0", "id": 7, "method": method,
                                         "params": list(params)}, timeout=10).json()
    assert body["id"] == 7
    return body


def logs_of(sim: Simulator, flt: dict[str, Any]) -> list[dict[str, Any]]:
    body = rpc(sim, "eth_getLogs", flt)
    assert "result" in body, body
    return list(body["result"])


def test_a_leader_fill_is_one_log_per_order_with_the_data_api_hash(node: Simulator) -> None:
    """Taker BUY against two makers: two maker logs then the taker's own (taker = exchange),
    the same transaction hash as the Data API row, amounts in 6-decimal units."""
    head = node.chain_head()["number"]
    rows = node.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
    assert logs_of(node, {"fromBlock": hex(head + 1), "toBlock": "latest"}) == []  # pending
    node.mine_blocks(1)
    logs = [decode_order_filled(x) for x in logs_of(node, {"fromBlock": hex(head + 1)})]
    assert [lg.log_index for lg in logs] == [0, 1, 2]
    assert {lg.transaction_hash for lg in logs} == {rows[0]["transaction_hash"]}
    *makers, taker = logs
    assert all(m.taker == TRADER_QUIET and m.side is Side.SELL for m in makers)
    assert taker.maker == TRADER_QUIET and taker.is_taker_order and taker.side is Side.BUY
    assert taker.shares == Decimal(50) and taker.usdc == Decimal("32.5")
    assert sum(m.shares for m in makers) == taker.shares
    assert taker.exchange in {a.lower() for a in V2} and taker.token_id == FED_YES


def test_filters_have_node_semantics(node: Simulator) -> None:
    """Address lists, OR lists in a topic position, null wildcards, blockHash, tags."""
    head = node.chain_head()["number"]
    node.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
    node.add_trader_fill(TRADER_CAR, "btc", "Yes", "SELL", "100", "0.07", role="maker", parts=["40", "60"])
    mined = node.mine_blocks(1)["blocks"][0]
    everything = {"fromBlock": hex(head + 1), "toBlock": hex(mined)}
    assert len(logs_of(node, everything)) == 6
    quiet = topic_for_address(TRADER_QUIET)
    car = topic_for_address(TRADER_CAR)
    assert len(logs_of(node, {**everything, "topics": [ORDER_FILLED_TOPIC, None, [quiet, car]]})) == 3
    assert len(logs_of(node, {**everything, "topics": [None, None, car]})) == 2
    assert len(logs_of(node, {**everything, "topics": [None, None, None, quiet]})) == 2
    assert logs_of(node, {**everything, "address": "0x" + "1" * 40}) == []
    assert len(logs_of(node, {**everything, "address": V2})) == 6
    block = rpc(node, "eth_getBlockByNumber", hex(mined), False)["result"]
    assert len(logs_of(node, {"blockHash": block["hash"]})) == 6
    assert rpc(node, "eth_getBlockByNumber", "latest", False)["result"]["number"] == hex(mined)
    assert rpc(node, "eth_getBlockByNumber", hex(mined + 5), False)["result"] is None
    assert block["parentHash"] == rpc(node, "eth_getBlockByNumber", hex(mined - 1), False)["result"]["hash"]
    assert rpc(node, "eth_chainId")["result"] == "0x89"
    assert rpc(node, "eth_foo")["error"]["code"] == -32601


@pytest.mark.parametrize("style, code", [("alchemy", -32600), ("infura", -32602),
                                         ("quicknode", -32614), ("geth", -32000)])
def test_range_caps_answer_like_the_providers(node: Simulator, style: str, code: int) -> None:
    """A range over the cap is refused with that provider's code and wording (classified)."""
    node.configure(rpc_max_block_range=10, rpc_error_style=style)
    head = node.chain_head()["number"]
    err = rpc(node, "eth_getLogs", {"fromBlock": hex(head - 20), "toBlock": hex(head)})["error"]
    assert err["code"] == code
    assert classify_rpc_error(err["code"], err["message"], err.get("data")).value == "range_too_large"
    assert "result" in rpc(node, "eth_getLogs", {"fromBlock": hex(head - 9), "toBlock": hex(head)})


@pytest.mark.parametrize("style", ["alchemy", "infura", "geth"])
def test_result_caps_answer_like_the_providers(node: Simulator, style: str) -> None:
    """More matching logs than the cap: an error (never a truncated list), classified as such."""
    node.configure(rpc_max_results=2, rpc_error_style=style)
    head = node.chain_head()["number"]
    node.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
    node.mine_blocks(1)
    err = rpc(node, "eth_getLogs", {"fromBlock": hex(head + 1), "toBlock": "latest"})["error"]
    assert classify_rpc_error(err["code"], err["message"], err.get("data")).value == "too_many_results"


def test_batches_answer_every_call(node: Simulator) -> None:
    """A batch gets one answer per call, errors in place; an empty batch is refused."""
    answer = httpx.post(node.rpc_url, json=[
        {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "nope", "params": []},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_chainId", "params": []}]).json()
    assert [a["id"] for a in answer] == [1, 2, 3] and "error" in answer[1]
    assert httpx.post(node.rpc_url, json=[]).json()["error"]["code"] == -32600
    assert httpx.post(node.rpc_url, content=b"{").json()["error"]["code"] == -32700


def test_automatic_blocks_keep_their_cadence(simulator_factory: Callable[..., Simulator]) -> None:
    """block_time 0.2 s: the head moves on its own; timestamps never go back."""
    sim = simulator_factory(quiet_scenario(), config=SimConfig(block_time=0.2))
    first = sim.chain_head()["number"]
    time.sleep(1.1)
    last = sim.chain_head()["number"]
    assert last - first >= 4
    stamps = [int(rpc(sim, "eth_getBlockByNumber", hex(n), False)["result"]["timestamp"], 16)
              for n in range(first, last + 1)]
    assert stamps == sorted(stamps)


def test_matched_clob_orders_of_followers_are_logged_too(simulator: Simulator) -> None:
    """A follower's order filled on the CLOB: its log appears when the trade is mined, with the
    trade's transaction hash."""
    simulator.fund(HARDHAT_ADDRESSES[0], pusd="100")
    client = account(simulator, 0)
    simulator.set_book(FED_YES, asks=[["0.65", "100"]], bids=[["0.60", "100"]])
    body = sdk_limit_body(client.creds["apiKey"], 0, FED_YES, 0.65, 10, "BUY", "0.01", True)
    assert client.post_order(body).status_code == 200
    trade = simulator.trades()[-1]
    simulator.advance_trades(trade["id"], to="MINED")
    simulator.mine_blocks(1)
    logs = simulator.chain_logs(trade["transaction_hash"])
    assert logs, "no log for the follower's fill"
    mine = [decode_order_filled(x) for x in logs if decode_order_filled(x).maker
            == HARDHAT_ADDRESSES[0].lower()]
    assert len(mine) == 1 and mine[0].shares == Decimal(10) and mine[0].is_taker_order


def test_websocket_new_heads_logs_and_removed_on_reorg(node: Simulator) -> None:
    """newHeads and a logs filter over the websocket; a reorg re-sends the old logs with
    removed: true, then the new blocks and their logs."""
    with connect(node.ws_url, open_timeout=5) as ws:
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}))
        heads = json.loads(ws.recv(timeout=5))["result"]
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "eth_subscribe", "params": [
            "logs", {"topics": [ORDER_FILLED_TOPIC, None, topic_for_address(TRADER_QUIET)]}]}))
        logs_sub = json.loads(ws.recv(timeout=5))["result"]
        rows = node.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
        node.mine_blocks(1)
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(got) < 2:
            got.append(json.loads(ws.recv(timeout=5))["params"])
        assert [g["subscription"] for g in got] == [heads, logs_sub]
        assert got[1]["result"]["transactionHash"] == rows[0]["transaction_hash"]
        node.reorg(rows[0]["transaction_hash"], later=1)
        node.mine_blocks(1)
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(seen) < 4:
            seen.append(json.loads(ws.recv(timeout=5))["params"])
        removed = [s["result"] for s in seen if s["subscription"] == logs_sub and s["result"]["removed"]]
        added = [s["result"] for s in seen if s["subscription"] == logs_sub and not s["result"]["removed"]]
        assert len(removed) == 1 and len(added) == 1
        assert int(added[0]["blockNumber"], 16) == int(removed[0]["blockNumber"], 16) + 1
        assert removed[0]["blockHash"] != rpc(node, "eth_getBlockByNumber", removed[0]["blockNumber"],
                                              False)["result"]["hash"]


def test_outages_and_faults(node: Simulator) -> None:
    """RPC outage: HTTP 503 and websockets refused; Data API outage: 503 on its routes; back up."""
    node.set_outage("rpc", True)
    assert httpx.post(node.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).status_code == 503
    with pytest.raises(Exception), connect(node.ws_url, open_timeout=5) as ws:  # noqa: B017, PT011
        ws.recv(timeout=5)
    node.set_outage("rpc", False)
    assert rpc(node, "eth_chainId")["result"] == "0x89"
    node.set_outage("data", True)
    assert httpx.get(f"{node.data_url}/v2/activity", params={"user": TRADER_QUIET}).status_code == 503
    node.set_outage("data", False)
    node.inject_fault("POST", "/", "429", service="rpc")
    assert httpx.post(node.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).status_code == 429


def test_a_dropped_reorg_removes_the_data_api_row(node: Simulator) -> None:
    """A transaction reorganised away for good leaves neither logs nor Data API rows."""
    rows = node.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "50", "0.65")
    node.mine_blocks(1)
    node.reorg(rows[0]["transaction_hash"], drop=True)
    assert node.chain_logs(rows[0]["transaction_hash"]) == []
    data = httpx.get(f"{node.data_url}/v2/activity", params={"user": TRADER_QUIET}).json()["data"]
    assert all(r["transaction_hash"] != rows[0]["transaction_hash"] for r in data)


def test_the_subscriber_reconnects_after_an_outage(simulator_factory: Callable[..., Simulator]) -> None:
    """wire.rpc_ws.Subscriber: heads flow, the node goes away (connection closed, reconnects
    refused), comes back: the subscriber reconnects by itself and on_connect runs again."""
    import asyncio

    from wire.rpc import BlockHeader
    from wire.rpc_ws import Subscriber

    sim = simulator_factory(quiet_scenario(), config=SimConfig(block_time=0.2))
    heads: list[int] = []
    connects: list[float] = []

    async def scenario() -> Subscriber:
        stop = asyncio.Event()

        async def on_head(h: BlockHeader) -> None:
            heads.append(h.number)

        async def on_connect() -> None:
            connects.append(time.monotonic())

        sub = Subscriber(sim.ws_url, on_head=on_head, on_connect=on_connect, base_delay=0.1,
                         max_delay=0.3)
        task = asyncio.create_task(sub.run(stop))
        await asyncio.sleep(1.0)
        assert heads and sub.connected
        sim.set_outage("rpc", True)
        await asyncio.sleep(1.0)
        assert not sub.connected and sub.failures >= 1
        seen = len(heads)
        sim.set_outage("rpc", False)
        await asyncio.sleep(1.5)
        stop.set()
        await task
        assert len(heads) > seen
        return sub

    sub = asyncio.run(scenario())
    assert len(connects) >= 2 and sub.connects >= 2
    assert heads == sorted(heads)
