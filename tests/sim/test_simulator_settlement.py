"""The simulator's resolution, merges and redemptions: Gamma and the Data API show them, the
JSON-RPC node behaves like one (nonces, replays, the CTF trap), the relayer checks who signs."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from copying.resolution import payouts_of
from sim import Simulator
from tests.support.rig import quiet_scenario
from tests.support.simfixtures import (
    FED_CONDITION,
    FED_NO,
    FED_YES,
    HARDHAT_ADDRESSES,
    HARDHAT_KEYS,
    SAFE_WALLET_0,
    TRADER_QUIET,
)
from wire.chain_tx import sign_transaction
from wire.parse import parse_gamma_markets
from wire.redeem_calls import CONDITIONAL_TOKENS, ctf_redeem_call
from wire.relayer import BuilderCreds, builder_headers, safe_payload

D = Decimal
EOA = HARDHAT_ADDRESSES[1]
KEY = HARDHAT_KEYS[1]


def rpc(sim: Simulator, method: str, *params: Any) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    answer: dict[str, Any] = httpx.post(sim.rpc_url, json=body).json()
    return answer


def send(sim: Simulator, to: str, data: str, nonce: int, key: str = KEY, chain_id: int = 137,
         gas: int = 200_000) -> dict[str, Any]:
    signed = sign_transaction(key, chain_id=chain_id, nonce=nonce, to=to, data=data, gas=gas,
                              max_fee=60 * 10**9, priority_fee=30 * 10**9)
    return rpc(sim, "eth_sendRawTransaction", "0x" + signed.raw.hex())


@pytest.fixture
def sim(simulator_factory: Callable[..., Simulator]) -> Simulator:
    """The quiet demo world; Hardhat #1 holds 10 Fed Yes and 4 Fed No."""
    s = simulator_factory(quiet_scenario())
    s.fund(EOA, pusd="100", tokens={FED_YES: "10", FED_NO: "4"})
    return s


def test_a_resolved_market_is_closed_with_its_payout_vector_on_gamma(sim: Simulator) -> None:
    """Gamma (asked with closed=true) shows closed, outcomePrices [1, 0], resolved; PMCT reads
    the payouts; resting orders there are cancelled."""
    before = httpx.get(f"{sim.gamma_url}/markets", params={"condition_ids": FED_CONDITION}).json()
    assert payouts_of(parse_gamma_markets(before)[0]) is None
    result = sim.resolve_market("fed", winner="Yes")
    assert result["payouts"] == {FED_YES: "1", FED_NO: "0"}
    hidden = httpx.get(f"{sim.gamma_url}/markets", params={"condition_ids": FED_CONDITION}).json()
    assert hidden == []  # closed markets only with closed=true
    body = httpx.get(f"{sim.gamma_url}/markets",
                     params={"condition_ids": FED_CONDITION, "closed": "true"}).json()
    assert body[0]["umaResolutionStatus"] == "resolved" and json.loads(body[0]["outcomePrices"]) == ["1", "0"]
    assert payouts_of(parse_gamma_markets(body)[0]) == {FED_YES: D(1), FED_NO: D(0)}
    with pytest.raises(ValueError):
        sim.resolve_market("fed", winner="No")


def test_redeem_through_the_adapter_pays_once_and_the_data_api_follows(sim: Simulator) -> None:
    """The neg-risk collateral adapter pays 10 pUSD for 10 winning shares (4 losing burned); the
    same bytes again: already known; the next nonce redeems nothing more."""
    trade = sim.add_trader_fill(EOA, "fed", "Yes", "BUY", "1", "0.65")  # a Data API position row
    assert trade
    sim.resolve_market("fed", winner="Yes")
    redeemable = httpx.get(f"{sim.data_url}/v2/positions",
                           params={"user": EOA, "status": "REDEEMABLE"}).json()["data"]
    assert [(r["token_id"], r["redeemable"], r["status"]) for r in redeemable] == [(FED_YES, True, "REDEEMABLE")]
    call = ctf_redeem_call(FED_CONDITION, neg_risk=True)
    signed = sign_transaction(KEY, chain_id=137, nonce=0, to=call.to, data=call.data, gas=200_000,
                              max_fee=60 * 10**9, priority_fee=30 * 10**9)
    answer = rpc(sim, "eth_sendRawTransaction", "0x" + signed.raw.hex())
    assert answer["result"] == signed.tx_hash
    receipt = rpc(sim, "eth_getTransactionReceipt", signed.tx_hash)["result"]
    assert receipt["status"] == "0x1"
    assert D(sim.balances(EOA)["pusd"]) == D("110.35")  # 100 − 0.65 + 11 winning shares
    assert rpc(sim, "eth_sendRawTransaction", "0x" + signed.raw.hex())["error"]["message"] == "already known"
    again = send(sim, call.to, call.data, nonce=1)
    assert rpc(sim, "eth_getTransactionReceipt", again["result"])["result"]["status"] == "0x1"
    assert len(sim.redemptions()) == 2 and sim.redemptions()[1]["paid"] == 0
    after = httpx.get(f"{sim.data_url}/v2/positions", params={"user": EOA}).json()["data"]
    assert after == []  # the REDEEM row closed the position
    activity = httpx.get(f"{sim.data_url}/v2/activity", params={"user": EOA, "type": "REDEEM"}).json()["data"]
    assert len(activity) == 1 and D(str(activity[0]["usdc_size"])) == D(11)


def test_node_semantics_nonces_chain_id_and_the_ctf_trap(sim: Simulator) -> None:
    """Nonce too high / too low, a wrong chain id, the wrong adapter (revert), an unresolved
    market (revert) and the CTF with pUSD: succeeds, pays nothing (docs/POLYMARKET.md §8.2)."""
    call = ctf_redeem_call(FED_CONDITION, neg_risk=True)
    assert "nonce too high" in send(sim, call.to, call.data, nonce=3)["error"]["message"]
    assert "chain id" in send(sim, call.to, call.data, nonce=0, chain_id=80002)["error"]["message"]
    unresolved = send(sim, call.to, call.data, nonce=0)
    assert rpc(sim, "eth_getTransactionReceipt", unresolved["result"])["result"]["status"] == "0x0"
    assert send(sim, call.to, call.data, nonce=0)["error"]["message"] == "already known"  # same bytes
    assert "nonce too low" in send(sim, call.to, call.data, nonce=0, gas=210_000)["error"]["message"]
    sim.resolve_market("fed", winner="Yes")
    wrong = ctf_redeem_call(FED_CONDITION, neg_risk=False)  # fed is neg-risk
    tx = send(sim, wrong.to, wrong.data, nonce=1)
    assert rpc(sim, "eth_getTransactionReceipt", tx["result"])["result"]["status"] == "0x0"
    trap = send(sim, CONDITIONAL_TOKENS, call.data, nonce=2)
    assert rpc(sim, "eth_getTransactionReceipt", trap["result"])["result"]["status"] == "0x1"
    assert D(sim.balances(EOA)["pusd"]) == D(100) and sim.redemptions() == []
    assert int(rpc(sim, "eth_getTransactionCount", EOA, "pending")["result"], 16) == 3
    assert rpc(sim, "eth_bogus")["error"]["code"] == -32601


def test_a_leader_merge_moves_the_ledger_and_the_positions(sim: Simulator) -> None:
    """MERGE 50 of a leader holding 250 Yes (history) and 60 No: both sides drop by 50."""
    sim.add_trader_fill(TRADER_QUIET, "fed", "No", "BUY", "60", "0.36")
    sim.add_activity(TRADER_QUIET, "MERGE", "fed", "50")
    tokens = sim.balances(TRADER_QUIET)["tokens"]
    assert (D(tokens[FED_YES]), D(tokens[FED_NO])) == (D(200), D(10))
    rows = httpx.get(f"{sim.data_url}/v2/positions", params={"user": TRADER_QUIET}).json()["data"]
    assert {r["token_id"]: D(str(r["current_size"])) for r in rows} == {FED_YES: D(200), FED_NO: D(10)}


def test_the_relayer_checks_credentials_signer_and_nonce(sim: Simulator) -> None:
    """No builder key → 401; a SAFE request not signed by the Safe's owner → 400; a replayed
    request (same nonce) → 400; the first one executes."""
    creds = BuilderCreds("k", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "p")
    sim.configure(relayer_api_key=creds.api_key, relayer_secret=creds.secret, relayer_passphrase=creds.passphrase)
    sim.fund(SAFE_WALLET_0, tokens={FED_YES: "3"})
    sim.resolve_market("fed", winner="Yes")
    call = ctf_redeem_call(FED_CONDITION, neg_risk=True)
    owner = HARDHAT_ADDRESSES[0]

    def submit(payload: dict[str, Any], auth: bool = True) -> httpx.Response:
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = builder_headers(creds, "POST", "/submit", body, 1_800_000_000) if auth else {}
        return httpx.post(f"{sim.relayer_url}/submit", content=body,
                          headers={**headers, "Content-Type": "application/json"})

    good = safe_payload(HARDHAT_KEYS[0], owner, SAFE_WALLET_0, call, 0, 137)
    assert submit(good, auth=False).status_code == 401
    forged = safe_payload(HARDHAT_KEYS[2], owner, SAFE_WALLET_0, call, 0, 137)
    assert submit(forged).status_code == 400
    first = submit(good)
    assert first.status_code == 200 and first.json()["state"] == "STATE_NEW"
    replay = submit(good)
    assert replay.status_code == 400 and "nonce" in replay.json()["error"]
    assert D(sim.balances(SAFE_WALLET_0)["pusd"]) >= D(3) and len(sim.redemptions()) == 1
