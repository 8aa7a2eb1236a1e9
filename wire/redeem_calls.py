"""Calls that redeem a resolved market's winning shares for pUSD (docs/POLYMARKET.md §8.2).

- CTF markets (Gamma `version: "v1"`): `redeemPositions(address collateral, bytes32 parent,
  bytes32 conditionId, uint256[] indexSets)` with collateral = pUSD, parent = 0, index sets
  [1, 2], sent to the collateral adapter (neg-risk markets: the neg-risk collateral adapter).
  The adapter burns the ERC-1155 outcome tokens through the CTF and pays pUSD back. Calling the
  CTF's own `redeemPositions` with pUSD as collateral "succeeds" but redeems 0 (the token ids
  are keyed to USDC.e): `redeem_calls` never targets the CTF.
- Protocol V2 markets (`version: "v2"`): the Router's `redeem(bytes31 conditionId,
  uint256 outcomeIndex, uint256 amount)`, one call per outcome with a balance (base units).

Checked against Polymarket's own SDK (py-sdk `actions/relayer/calls.py` and `clients/secure.py`:
`ctf_redeem_positions_call(ctf=<collateral adapter>, collateral=pUSD, ...)`, `router_redeem_call`).
The adapters must be approved once by the wallet (`setApprovalForAll` on the CTF, or on the
PositionManager for V2) — `admin doctor` territory, not done here.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import encode as abi_encode
from eth_hash.auto import keccak

PUSD = "0xC011a7E12a19f7B1f670d46F03B03f3342E82DFB"
CONDITIONAL_TOKENS = "0x4D97DCd97eC945f40cF65F87097ACe5EA0476045"
COLLATERAL_ADAPTER = "0xAdA100Db00Ca00073811820692005400218FcE1f"
NEG_RISK_COLLATERAL_ADAPTER = "0xadA2005600Dec949baf300f4C6120000bDB6eAab"
PROTOCOL_V2_ROUTER = "0x12121212006e4CD160D18e3f00711DA5c3372600"
REDEEM_TARGETS = frozenset(a.lower() for a in (COLLATERAL_ADAPTER, NEG_RISK_COLLATERAL_ADAPTER,
                                              PROTOCOL_V2_ROUTER))

REDEEM_POSITIONS = keccak(b"redeemPositions(address,bytes32,bytes32,uint256[])")[:4]
ROUTER_REDEEM = keccak(b"redeem(bytes31,uint256,uint256)")[:4]
BINARY_INDEX_SETS = (1, 2)


@dataclass(frozen=True)
class ContractCall:
    """One call: target contract and 0x-prefixed calldata."""

    to: str
    data: str


def _condition_bytes32(condition_id: str) -> bytes:
    raw = bytes.fromhex(condition_id[2:] if condition_id.lower().startswith("0x") else condition_id)
    if len(raw) != 32:
        raise ValueError(f"a CTF condition id has 32 bytes, got {len(raw)}")
    return raw


def _condition_bytes31(condition_id: str) -> bytes:
    text = condition_id[2:] if condition_id.lower().startswith("0x") else condition_id
    if len(text) == 64 and text.lower().endswith(("00", "01")):
        text = text[:-2]  # a bytes32 with the outcome byte (the SDK's padding)
    raw = bytes.fromhex(text)
    if len(raw) != 31:
        raise ValueError(f"a Protocol V2 condition id has 31 bytes, got {len(raw)}")
    return raw


def ctf_redeem_call(condition_id: str, *, neg_risk: bool) -> ContractCall:
    """redeemPositions(pUSD, 0, condition, [1, 2]) on the (neg-risk) collateral adapter."""
    data = REDEEM_POSITIONS + abi_encode(
        ["address", "bytes32", "bytes32", "uint256[]"],
        [PUSD, b"\x00" * 32, _condition_bytes32(condition_id), list(BINARY_INDEX_SETS)])
    return ContractCall(NEG_RISK_COLLATERAL_ADAPTER if neg_risk else COLLATERAL_ADAPTER,
                        "0x" + data.hex())


def router_redeem_call(condition_id: str, outcome_index: int, amount: int) -> ContractCall:
    """redeem(condition, outcome index, amount in base units) on the Protocol V2 Router."""
    if outcome_index not in (0, 1) or amount <= 0:
        raise ValueError("outcome index must be 0 or 1 and the amount positive")
    data = ROUTER_REDEEM + abi_encode(["bytes31", "uint256", "uint256"],
                                      [_condition_bytes31(condition_id), outcome_index, amount])
    return ContractCall(PROTOCOL_V2_ROUTER, "0x" + data.hex())


def redeem_calls(condition_id: str, *, version: str, neg_risk: bool,
                 balances: dict[int, int]) -> list[ContractCall]:
    """The calls that redeem a wallet's shares of one market (`balances`: outcome index → base units)."""
    if version == "v2":
        return [router_redeem_call(condition_id, index, amount)
                for index, amount in sorted(balances.items()) if amount > 0]
    return [ctf_redeem_call(condition_id, neg_risk=neg_risk)]
