"""Redeem resolved winning positions for pUSD, exactly once per follower and market.

`copying.resolution` stores one PENDING `redemptions` row per live follower holding winning
shares of a resolved market. This module moves each row on, one short transaction per step:

    PENDING ─sign→ SIGNED ─send→ SENT ─receipt ok→ CONFIRMED
       └ no way from here → MANUAL ("redeem by hand")   └ reverted / refused → FAILED

- EOA followers: a transaction from the follower's own key to the collateral adapter (neg-risk
  adapter; the Router for Protocol-V2 markets: `wire.redeem_calls`), signed with eth-account
  inside `crypto.signing_key`, sent through `POLYGON_RPC` (`wire.chain_tx`).
- Safe, proxy and deposit-wallet followers: a signed relayer request (`wire.relayer`) when the
  deployment has relayer (Builder API) credentials; without them they are MANUAL: `admin status`
  lists them with the amount ("redeem by hand").

Exactly once: the signed transaction (its exact bytes and hash) or the signed relayer request
(it carries the wallet's nonce) is committed as SIGNED *before* anything is sent. After a crash a
SIGNED or SENT row is reconciled by its transaction hash (receipt) or relayer id, and only ever
re-sent as the same bytes: the chain executes one transaction per nonce, so a second payout is
impossible. Nothing here signs a second transaction for a row while its first may still be mined.
Paper followers never get a row: their positions are settled at the payout with no transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from copying.context import ExecutorContext
from copying.markets import upsert_market
from crypto import signing_key
from infra.db import session_scope
from models import Follower, Market, MarketTokenRow, PositionSettlement, Redemption, RedemptionStatus
from wire.chain_tx import ChainClient, sign_transaction, with_margin
from wire.errors import ApiError
from wire.redeem_calls import ContractCall, redeem_calls
from wire.relayer import (
    DEPOSIT_WALLET_DEADLINE,
    BuilderCreds,
    RelayerClient,
    deposit_wallet_payload,
    proxy_payload,
    safe_payload,
)
from wire.rpc import RpcError
from wire.types import SignatureType

log = logging.getLogger("pmct.redeem")
ZERO = Decimal(0)
RESEND_AFTER = timedelta(seconds=60)  # a SENT transaction without a receipt is re-sent (same bytes)
OPEN = (RedemptionStatus.PENDING, RedemptionStatus.SIGNED, RedemptionStatus.SENT)
BASE_UNITS = Decimal(10**6)


@dataclass(frozen=True)
class Plan:
    """What a redemption will do: how, through which calls, for how much."""

    redemption_id: int
    follower: str
    condition_id: str
    method: str  # eoa | relayer | manual
    calls: tuple[ContractCall, ...]
    shares: Decimal
    amount: Decimal
    why_manual: str = ""


def method_for(follower: Follower, *, relayer: bool) -> tuple[str, str]:
    """(method, why it is manual) for a follower's wallet type and the deployment's credentials."""
    sig = SignatureType(follower.signature_type)
    if sig == SignatureType.EOA:
        return "eoa", ""
    if not relayer:
        return "manual", "no relayer credentials (POLYMARKET_BUILDER_API_KEY …)"
    return "relayer", ""


def calls_for(s: Session, row: Redemption) -> tuple[ContractCall, ...]:
    """The redeem calls of one follower's market (winning outcomes only for Protocol V2)."""
    market = s.get(Market, row.condition_id)
    version = market.version if market is not None else "v1"
    neg_risk = bool(market.neg_risk) if market is not None else False
    balances: dict[int, int] = {}
    if version == "v2":
        index = dict(s.execute(select(MarketTokenRow.token_id, MarketTokenRow.outcome_index).where(
            MarketTokenRow.condition_id == row.condition_id)).all())
        for token, size, payout in s.execute(select(
                PositionSettlement.token_id, PositionSettlement.size, PositionSettlement.payout).where(
                PositionSettlement.follower_id == row.follower_id,
                PositionSettlement.condition_id == row.condition_id,
                PositionSettlement.paper.is_(False))):
            if payout > 0 and token in index:
                i = index[token]
                balances[i] = balances.get(i, 0) + int(size * BASE_UNITS)
    return tuple(redeem_calls(row.condition_id, version=version, neg_risk=neg_risk, balances=balances))


def plans(s: Session, *, follower_id: int | None, relayer: bool) -> list[Plan]:
    """Every open redemption (of one follower) with its method and calls (nothing written)."""
    q = select(Redemption, Follower).join(Follower, Follower.id == Redemption.follower_id).where(
        Redemption.status.in_(OPEN)).order_by(Redemption.id)
    if follower_id is not None:
        q = q.where(Redemption.follower_id == follower_id)
    out = []
    for row, follower in s.execute(q).all():
        method, why = method_for(follower, relayer=relayer)
        calls = calls_for(s, row)
        if method == "relayer" and follower.signature_type == SignatureType.POLY_GNOSIS_SAFE and len(calls) != 1:
            method, why = "manual", "a Safe redeems one call per request here"
        if method == "eoa" and len(calls) != 1:
            method, why = "manual", "more than one redeem call (both outcomes pay)"
        out.append(Plan(row.id, follower.funder_address, row.condition_id,
                        row.method if row.status != RedemptionStatus.PENDING else method,
                        calls, row.shares, row.amount, why))
    return out


class Redeemer:
    """Sends and reconciles redemptions; built per pass from the settings (or given clients)."""

    def __init__(self, ctx: ExecutorContext, *, chain: ChainClient | None = None,
                 relayer: RelayerClient | None = None) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self._own_chain = chain is None
        self.chain = chain or ChainClient(settings.polygon_rpc)
        self._own_relayer = relayer is None and settings.has_relayer_credentials
        if relayer is None and settings.has_relayer_credentials:
            assert settings.builder_api_key and settings.builder_secret and settings.builder_passphrase
            relayer = RelayerClient(settings.relayer_url, BuilderCreds(
                settings.builder_api_key, settings.builder_secret, settings.builder_passphrase))
        self.relayer = relayer

    async def aclose(self) -> None:
        """Close the clients this object made."""
        if self._own_chain:
            await self.chain.aclose()
        if self._own_relayer and self.relayer is not None:
            await self.relayer.aclose()

    async def ensure_markets(self, follower_id: int | None) -> None:
        """Cache the markets of open redemptions (version and neg-risk pick the contract)."""
        with session_scope(self.ctx.factory) as s:
            q = select(Redemption.condition_id).where(Redemption.status == RedemptionStatus.PENDING)
            if follower_id is not None:
                q = q.where(Redemption.follower_id == follower_id)
            missing = [c for c in set(s.scalars(q)) if s.get(Market, c) is None]
        for condition_id in sorted(missing):
            try:
                info = await self.ctx.client.get_market_info(condition_id)
            except Exception as exc:  # noqa: BLE001 - the redemption waits for the next pass
                log.warning("market %s: could not fetch it for a redemption: %s", condition_id, exc)
                continue
            with session_scope(self.ctx.factory) as s:
                upsert_market(s, info, self.ctx.clock())

    async def run(self, follower_id: int | None = None) -> dict[str, int]:
        """Move every open redemption (of one follower) one step or more; counts by outcome."""
        await self.ensure_markets(follower_id)
        with session_scope(self.ctx.factory) as s:
            todo = plans(s, follower_id=follower_id, relayer=self.relayer is not None)
        counts: dict[str, int] = {}
        for plan in todo:
            with session_scope(self.ctx.factory) as s:
                if plan.method != "manual" and s.get(Market, plan.condition_id) is None:
                    continue  # the market could not be fetched: which contract is unknown yet
            try:
                status = await self.advance(plan)
            except Exception as exc:  # noqa: BLE001 - the row stays where it is; next pass
                log.warning("redemption %s (%s): %s", plan.redemption_id, plan.condition_id, exc)
                status = "error"
            counts[status] = counts.get(status, 0) + 1
        return counts

    def _row(self, s: Session, rid: int) -> Redemption:
        row = s.get(Redemption, rid, with_for_update=True)
        assert row is not None
        return row

    async def advance(self, plan: Plan) -> str:
        """One redemption: sign (stored first), send, and reconcile by hash or relayer id."""
        with session_scope(self.ctx.factory) as s:
            row = self._row(s, plan.redemption_id)
            status = row.status
            if status == RedemptionStatus.PENDING and plan.method == "manual":
                row.method, row.status, row.error = "manual", RedemptionStatus.MANUAL, plan.why_manual
                return RedemptionStatus.MANUAL.value
            method = row.method if status != RedemptionStatus.PENDING else plan.method
        if method == "eoa":
            return await self._advance_eoa(plan, status)
        return await self._advance_relayer(plan, status)

    # -- EOA: a signed transaction through POLYGON_RPC ------------------------------------------
    async def _advance_eoa(self, plan: Plan, status: RedemptionStatus) -> str:
        if status == RedemptionStatus.PENDING:
            await self._sign_eoa(plan)
            self.ctx.crash_hook("redeem_signed")
        with session_scope(self.ctx.factory) as s:
            row = self._row(s, plan.redemption_id)
            tx_hash, raw, sent_at, status = row.tx_hash, row.raw_tx, row.sent_at, row.status
        assert tx_hash is not None and raw is not None
        receipt = await self.chain.receipt(tx_hash)
        if receipt is not None:
            return self._finish(plan.redemption_id, receipt.success, f"block {receipt.block_number}")
        if status == RedemptionStatus.SENT and sent_at is not None and \
                self.ctx.clock() - sent_at < RESEND_AFTER:
            return RedemptionStatus.SENT.value
        try:
            await self.chain.send_raw(raw)
        except RpcError as exc:
            if exc.nonce_too_low:  # the nonce is used and this transaction has no receipt
                receipt = await self.chain.receipt(tx_hash)
                if receipt is not None:
                    return self._finish(plan.redemption_id, receipt.success, "")
                return self._finish(plan.redemption_id, False,
                                    "nonce used by another transaction: check the wallet")
            if not exc.already_known:
                raise
        self.ctx.crash_hook("redeem_sent")
        with session_scope(self.ctx.factory) as s:
            row = self._row(s, plan.redemption_id)
            if row.status in (RedemptionStatus.SIGNED, RedemptionStatus.SENT):
                row.status, row.sent_at = RedemptionStatus.SENT, self.ctx.clock()
                row.attempts = (row.attempts or 0) + 1
        receipt = await self.chain.receipt(tx_hash)
        if receipt is not None:
            return self._finish(plan.redemption_id, receipt.success, f"block {receipt.block_number}")
        return RedemptionStatus.SENT.value

    async def _sign_eoa(self, plan: Plan) -> None:
        """Nonce, gas and fees from the node; the signed bytes and hash stored as SIGNED."""
        call = plan.calls[0]
        with session_scope(self.ctx.factory) as s:
            follower = s.scalar(select(Follower).join(Redemption, Redemption.follower_id == Follower.id)
                                .where(Redemption.id == plan.redemption_id))
            assert follower is not None
            sender, token = follower.signer_address, follower.encrypted_private_key
        nonce = await self.chain.pending_nonce(sender)
        gas = with_margin(await self.chain.estimate_gas(sender, call.to, call.data))
        max_fee, tip = await self.chain.fees()
        keyring = self.ctx.keyring
        assert keyring is not None
        with signing_key(keyring, token, sender) as key:
            signed = sign_transaction(key, chain_id=self.ctx.settings.chain_id, nonce=nonce,
                                      to=call.to, data=call.data, gas=gas, max_fee=max_fee,
                                      priority_fee=tip)
        with session_scope(self.ctx.factory) as s:
            row = self._row(s, plan.redemption_id)
            if row.status != RedemptionStatus.PENDING:
                return  # somebody else signed it meanwhile: theirs stands
            row.method, row.target, row.nonce = "eoa", call.to, signed.nonce
            row.tx_hash, row.raw_tx, row.status = signed.tx_hash, signed.raw, RedemptionStatus.SIGNED

    # -- Safe and deposit wallets: the relayer -------------------------------------------------
    async def _advance_relayer(self, plan: Plan, status: RedemptionStatus) -> str:
        if self.relayer is None:
            return status.value  # credentials were removed: leave the row for later
        if status == RedemptionStatus.PENDING:
            await self._sign_relayer(plan)
            self.ctx.crash_hook("redeem_signed")
        with session_scope(self.ctx.factory) as s:
            row = self._row(s, plan.redemption_id)
            request, relayer_id = row.relayer_request, row.relayer_id
        assert request is not None
        if relayer_id is None:
            try:
                relayer_id = await self.relayer.submit(request)
            except ApiError as exc:
                if exc.status not in (400, 422):
                    raise
                return self._refused(plan.redemption_id, request, exc.message)
            self.ctx.crash_hook("redeem_sent")
            with session_scope(self.ctx.factory) as s:
                row = self._row(s, plan.redemption_id)
                row.relayer_id, row.status, row.sent_at = relayer_id, RedemptionStatus.SENT, self.ctx.clock()
                row.attempts = (row.attempts or 0) + 1
        tx = await self.relayer.transaction(relayer_id)
        if tx is None or not (tx.confirmed or tx.failed):
            return RedemptionStatus.SENT.value
        with session_scope(self.ctx.factory) as s:
            row = self._row(s, plan.redemption_id)
            row.tx_hash = tx.transaction_hash or row.tx_hash
        return self._finish(plan.redemption_id, tx.confirmed, f"relayer {tx.state}")

    async def _sign_relayer(self, plan: Plan) -> None:
        assert self.relayer is not None
        with session_scope(self.ctx.factory) as s:
            follower = s.scalar(select(Follower).join(Redemption, Redemption.follower_id == Follower.id)
                                .where(Redemption.id == plan.redemption_id))
            assert follower is not None
            owner, wallet, token = follower.signer_address, follower.funder_address, follower.encrypted_private_key
            sig = SignatureType(follower.signature_type)
        kind = {SignatureType.POLY_GNOSIS_SAFE: "SAFE", SignatureType.POLY_PROXY: "PROXY"}.get(sig, "WALLET")
        relay = ""
        if kind == "PROXY":
            relay, nonce = await self.relayer.relay_payload(owner)
        else:
            nonce = await self.relayer.nonce(owner, kind)
        chain_id = self.ctx.settings.chain_id
        metadata = f"Redeem positions for condition {plan.condition_id}"[:500]
        keyring = self.ctx.keyring
        assert keyring is not None
        with signing_key(keyring, token, owner) as key:
            if kind == "PROXY":
                request = proxy_payload(key, owner, wallet, plan.calls, nonce, relay, metadata=metadata)
            elif kind == "SAFE":
                request = safe_payload(key, owner, wallet, plan.calls[0], nonce, chain_id, metadata)
            else:
                deadline = int(self.ctx.clock().timestamp()) + DEPOSIT_WALLET_DEADLINE
                request = deposit_wallet_payload(key, owner, wallet, plan.calls, nonce, deadline,
                                                 chain_id, metadata)
        with session_scope(self.ctx.factory) as s:
            row = self._row(s, plan.redemption_id)
            if row.status != RedemptionStatus.PENDING:
                return
            row.method, row.target, row.nonce = "relayer", plan.calls[0].to, nonce
            row.relayer_request, row.status = request, RedemptionStatus.SIGNED

    def _refused(self, rid: int, request: dict[str, object], message: str) -> str:
        """The relayer refused a stored request for good. A deposit-wallet batch past its deadline
        can never execute: it is signed again (PENDING). Anything else needs a look (FAILED)."""
        params = request.get("depositWalletParams")
        deadline = int(str(params.get("deadline", "0"))) if isinstance(params, dict) else None
        expired = deadline is not None and deadline < int(self.ctx.clock().timestamp())
        with session_scope(self.ctx.factory) as s:
            row = self._row(s, rid)
            if row.status != RedemptionStatus.SIGNED or row.relayer_id is not None:
                return row.status.value
            if expired:
                row.status, row.relayer_request, row.error = RedemptionStatus.PENDING, None, message[:500]
                return RedemptionStatus.PENDING.value
            row.status, row.error = RedemptionStatus.FAILED, f"relayer refused: {message}"[:500]
        log.warning("redemption %s: the relayer refused it: %s", rid, message)
        return RedemptionStatus.FAILED.value

    def _finish(self, rid: int, success: bool, note: str) -> str:
        with session_scope(self.ctx.factory) as s:
            row = self._row(s, rid)
            if row.status in (RedemptionStatus.CONFIRMED, RedemptionStatus.FAILED):
                return str(row.status.value)
            row.status = RedemptionStatus.CONFIRMED if success else RedemptionStatus.FAILED
            row.confirmed_at = self.ctx.clock() if success else None
            row.error = None if success else (note or "reverted")
            status = row.status
        log.info("redemption %s: %s %s", rid, status.value, note)
        return status.value


async def redeem_pass(ctx: ExecutorContext, follower_id: int | None = None) -> dict[str, int]:
    """One pass over open redemptions with clients built from the settings."""
    redeemer = Redeemer(ctx)
    try:
        return await redeemer.run(follower_id)
    finally:
        await redeemer.aclose()


def pending_summary(s: Session, now: datetime) -> list[dict[str, object]]:
    """Redemptions not confirmed yet, for `admin status` (MANUAL ones: "redeem by hand")."""
    rows = s.execute(select(Redemption, Follower.funder_address, Market.question)
                     .join(Follower, Follower.id == Redemption.follower_id)
                     .outerjoin(Market, Market.condition_id == Redemption.condition_id)
                     .where(Redemption.status != RedemptionStatus.CONFIRMED)
                     .order_by(Redemption.id)).all()
    out: list[dict[str, object]] = []
    for row, funder, question in rows:
        what = "redeem by hand" if row.status == RedemptionStatus.MANUAL else row.status.value.lower()
        out.append({"follower": funder, "market": question or row.condition_id,
                    "condition_id": row.condition_id, "shares": str(row.shares),
                    "amount": str(row.amount), "method": row.method, "status": what,
                    "tx_hash": row.tx_hash, "error": row.error,
                    "age_seconds": int((now - row.created_at).total_seconds())})
    return out
