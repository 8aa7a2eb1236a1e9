"""Crowding control end to end: watcher + live executor against the simulator's matching engine.

The issue's measurement: 8 followers copy one leader on a book with room for 4 of them, three
times on three markets. Without crowding control the same followers get shares every time and the others none;
with it every follower gets its pro-rata share every round, the venue is never asked for more
than the depth within the limit, and the last follower in the plan changes every round.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import select

from crypto import address_of_key
from infra.db import session_scope
from models import CopyOrder, CrowdPlan, Tier
from ops.accounts import add_follow, add_follower
from tests.support.dbfixtures import Database
from tests.support.rig import Rig
from tests.support.simfixtures import TRADER_QUIET
from wire.types import ApiCreds, SignatureType

pytestmark = pytest.mark.e2e
D = Decimal
FOLLOWERS = 8
ROOM = "40"  # shares on offer within the slippage limit: 4 copies of 10


def crowd(dep: Rig, n: int) -> None:
    """n followers (throwaway keys, funded at the simulator) copying 10 % of the quiet trader."""
    from datetime import UTC, datetime

    for i in range(n):
        key = "0x" + hashlib.sha256(f"pmct-quality-e2e-{i}".encode()).hexdigest()
        address = address_of_key(key)
        raw = dep.sim.create_api_key(address=address)
        dep.sim.fund(address=address, pusd="10000")
        with session_scope(dep.db.factory) as s:
            f = add_follower(s, dep.ring, name=f"E{i}", email=f"e{i}@x.io", private_key=key,
                             signature_type=SignatureType.EOA, funder=None, tier=Tier.WHALE)
            f.encrypted_api_creds = dep.ring.encrypt_api_creds(ApiCreds(raw["apiKey"], raw["secret"], raw["passphrase"]))
            f.api_key_id = raw["apiKey"]
            add_follow(s, follower_wallet=f.funder_address, trader_wallet=TRADER_QUIET, copy_pct=D(10),
                       max_usd_per_trade=D(50), now=datetime.now(UTC))


MARKETS = [("fed", "Yes"), ("btc", "Yes"), ("lakers", "Lakers")]


def rounds(dep: Rig) -> list[dict[int, Decimal]]:
    """Three leader BUYs of 100 @ 0.50, one on each of three markets, each book with ROOM
    shares at 0.50 and a wall beyond the 5 % limit; per round, shares filled per follower."""
    out = []
    for market, outcome in MARKETS:
        token = dep.sim.token_id(market, outcome)
        dep.sim.set_book(token, bids=[["0.45", "500"]], asks=[["0.5", ROOM], ["0.6", "5000"]])
        dep.sim.add_trader_fill(TRADER_QUIET, market, outcome, "BUY", "100", "0.50")
        dep.watch()
        dep.execute()
        dep.execute()
        with dep.db.session() as s:
            fill_id = s.scalar(select(CopyOrder.trader_fill_id).order_by(CopyOrder.id.desc()).limit(1))
            rows = list(s.scalars(select(CopyOrder).where(CopyOrder.trader_fill_id == fill_id)))
        out.append({c.follower_id: c.filled_size for c in rows})
    return out


@pytest.fixture
def dep(database: Database, make_rig: Callable[..., Rig]) -> Rig:
    """A live deployment with 8 followers of the quiet trader."""
    d = make_rig(database)
    crowd(d, FOLLOWERS)
    d.watch()
    return d


def test_with_crowding_control_every_follower_gets_its_share(dep: Rig) -> None:
    """Each round: all 8 followers get 5 shares (40 / 8), 40 in total = the depth; the last in
    the plan's order differs from one round to the next."""
    filled = rounds(dep)
    for r in filled:
        assert len(r) == FOLLOWERS
        assert sum(r.values()) <= D(ROOM)
        assert set(r.values()) == {D(5)}, r
    with dep.db.session() as s:
        plans = list(s.scalars(select(CrowdPlan).order_by(CrowdPlan.trader_fill_id)))
        follower_of = {c.id: c.follower_id for c in s.scalars(select(CopyOrder))}
    lasts = [follower_of[p.order[-1]] for p in plans]
    assert len(lasts) == 3 and lasts[0] != lasts[1] and lasts[1] != lasts[2]


def test_without_crowding_control_the_same_followers_starve(dep: Rig) -> None:
    """The behaviour before: with CROWDING_CONTROL=off each copy asks for 10 shares (80 of a
    40-share book); only 4 fill per round, 4 get nothing and rest behind the others."""
    dep.settings = replace(dep.settings, crowding_control=False)
    filled = rounds(dep)
    starved = [frozenset(f for f, v in r.items() if v == 0) for r in filled]
    assert all(len(s) == FOLLOWERS - 4 for s in starved), filled
    with dep.db.session() as s:
        assert s.scalar(select(CrowdPlan.id)) is None
