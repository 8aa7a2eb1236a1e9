"""Crowding control through the executor's signing transaction (fake exchange, SQLite and
PostgreSQL): the copies of one fill share the depth within the limit, pro rata, in a rotated
order, also when they are split over batches and executors."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from copying.claims import claim_jobs
from copying.context import ExecutorContext
from copying.submit import submit_jobs
from infra.db import session_scope
from models import CopyOrder, CopyStatus, CrowdPlan, Tier
from ops.accounts import add_follow, add_follower
from tests.support.dbfixtures import Database
from tests.support.fake_exchange import YES, book
from tests.support.harness import T0, TRADER, Harness
from wire.types import ApiCreds, SignatureType

D = Decimal


def crowd(database: Database, fernet_key: str, n: int, depth: str) -> Harness:
    """The harness's follower and n − 1 more, all copying 10 % of TRADER; asks: `depth` shares
    at 0.60 (the slippage limit of a 0.58 BUY), then a wall at 0.70 beyond it."""
    h = Harness(database, fernet_key)
    with session_scope(h.db.factory) as s:
        for i in range(1, n):
            key = "0x" + hashlib.sha256(f"pmct-quality-crowd-{i}".encode()).hexdigest()
            f = add_follower(s, h.keyring, name=f"C{i}", email=f"c{i}@x.io", private_key=key,
                             signature_type=SignatureType.EOA, funder=None, tier=Tier.WHALE)
            f.encrypted_api_creds = h.keyring.encrypt_api_creds(
                ApiCreds(f"key-c{i}", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "pass-phrase"))
            add_follow(s, follower_wallet=f.funder_address, trader_wallet=TRADER, copy_pct=D(10),
                       max_usd_per_trade=D(50), now=T0 - timedelta(hours=1))
    h.fx.books[YES] = book(YES, [("0.57", "500")], [("0.60", depth), ("0.70", "5000")])
    return h


def of_fill(h: Harness, n: int) -> list[CopyOrder]:
    """The copies of the n-th trader fill (1-based), by id."""
    rows = h.copies()
    fills = sorted({c.trader_fill_id or 0 for c in rows})
    return [c for c in rows if c.trader_fill_id == fills[n - 1]]


def plans(h: Harness) -> list[CrowdPlan]:
    with h.db.session() as s:
        return list(s.scalars(select(CrowdPlan).order_by(CrowdPlan.trader_fill_id)))


def test_twelve_copies_share_66_shares_pro_rata_over_two_batches(database: Database, fernet_key: str) -> None:
    """12 copies of 10 shares, 66 on offer within the limit: 5.5 each (the executor's first batch
    is 8 copies, the next 4: one plan serves both), each shrink noted on the copy."""
    h = crowd(database, fernet_key, 12, "66")
    h.trader_fill()
    h.cycle()
    copies = of_fill(h, 1)
    assert len(copies) == 12
    assert all(c.status != CopyStatus.SKIPPED for c in copies), [c.reason_detail for c in copies]
    assert sum(c.intended_size or 0 for c in copies) <= D(66)
    assert {c.intended_size for c in copies} == {D("5.5")}
    assert all(c.crowd_note and "position" in c.crowd_note for c in copies)
    [plan] = plans(h)
    assert plan.depth == D(66) and len(plan.order) == 12


def test_without_crowding_control_the_copies_ask_for_more_than_the_book(database: Database,
                                                                      fernet_key: str) -> None:
    """The behaviour before: CROWDING_CONTROL=off sizes each copy alone (120 shares asked of 66)."""
    h = crowd(database, fernet_key, 12, "66")
    h.ctx.settings = replace(h.ctx.settings, crowding_control=False)
    h.trader_fill()
    h.cycle()
    copies = of_fill(h, 1)
    assert sum(c.intended_size or 0 for c in copies) == D(120)
    assert plans(h) == []


def test_too_thin_a_book_drops_the_last_in_a_rotated_order(database: Database, fernet_key: str) -> None:
    """8 copies, 20 shares on offer, min size 5: 4 copies get 5 shares, 4 are SKIPPED
    crowding_depth; over three fills the skipped ones change and nobody is last twice in a row."""
    h = crowd(database, fernet_key, 8, "20")
    served: dict[int, int] = {}
    for r in range(3):
        h.clock.now = T0 + timedelta(seconds=r)
        h.trader_fill(price="0.58")
        h.cycle()
        copies = of_fill(h, r + 1)
        kept = [c for c in copies if c.status != CopyStatus.SKIPPED]
        skipped = [c for c in copies if c.status == CopyStatus.SKIPPED]
        assert sum(c.intended_size or 0 for c in kept) <= D(20)
        assert len(kept) == 4 and all(c.intended_size == D(5) for c in kept)
        assert {c.reason for c in skipped} == {"crowding_depth"}
        assert all("within the slippage limit" in (c.reason_detail or "") for c in skipped)
        for c in kept:
            served[c.follower_id] = served.get(c.follower_id, 0) + 1
    lasts = []
    with h.db.session() as s:
        follower_of = {cid: fid for cid, fid in s.execute(select(CopyOrder.id, CopyOrder.follower_id))}
    for plan in plans(h):
        lasts.append(follower_of[plan.order[-1]])
    assert len(lasts) == 3 and lasts[0] != lasts[1] != lasts[2]
    assert len(served) > 4  # the same four do not get everything


def test_two_executors_splitting_one_fill_still_take_at_most_the_depth(database: Database,
                                                                       fernet_key: str) -> None:
    """Executor A claims 5 copies of the fill, B the other 7 (A writes the plan, B reads it): 66
    shares in total, 5.5 each."""
    h = crowd(database, fernet_key, 12, "66")
    h.trader_fill()
    other = ExecutorContext(settings=h.ctx.settings, factory=h.ctx.factory, client=h.fx, venue=h.ctx.venue,
                            keyring=h.keyring, owner="exec-b", clock=h.clock, book_ttl=0.0, market_ttl=0.0)
    first = claim_jobs(h.ctx, 5)
    second = claim_jobs(other, 100)
    assert len(first) == 5 and len(second) == 7
    asyncio.run(submit_jobs(h.ctx, first))
    asyncio.run(submit_jobs(other, second))
    copies = of_fill(h, 1)
    assert sum(c.intended_size or 0 for c in copies) <= D(66)
    assert {c.intended_size for c in copies} == {D("5.5")}
    assert len(plans(h)) == 1


def test_a_lone_copy_and_exits_are_not_planned(database: Database, fernet_key: str) -> None:
    """One follower: sized as before (10 shares asked of a 6-share book), no plan written."""
    h = crowd(database, fernet_key, 1, "6")
    h.trader_fill()
    h.cycle()
    assert h.only().intended_size == D(10) and plans(h) == []


def test_nothing_on_offer_within_the_limit_leaves_the_copies_resting(database: Database,
                                                                     fernet_key: str) -> None:
    """No ask at or under the limit (the leader took it): the 6 copies are not capped (each
    rests at its 10 shares, as without crowding control) and the plan only orders them."""
    h = crowd(database, fernet_key, 6, "0")
    h.fx.books[YES] = book(YES, [("0.50", "500")], [("0.70", "5000")])
    h.trader_fill()
    h.cycle()
    copies = of_fill(h, 1)
    assert {c.intended_size for c in copies} == {D(10)}
    assert all(c.status != CopyStatus.SKIPPED and c.crowd_note is None for c in copies)
    [plan] = plans(h)
    assert plan.resting and len(plan.order) == 6
