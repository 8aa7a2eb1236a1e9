"""Shadow twins: `admin add-follow --shadow-of`, `admin compare`, and a live executor that paper-
fills a shadow's copies beside the live ones and never posts them (simulator, both databases)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from models import CopyStatus, Follow, FollowerFill, FollowStatus
from ops.shadows import compare
from tests.ops.test_admin import add_alice, env, run  # noqa: F401 - env is a fixture
from tests.support.dbfixtures import Database
from tests.support.keys import TEST_ADDRESS
from tests.support.rig import Rig
from tests.support.simfixtures import FED_YES

D = Decimal
TRADER = "0x0d6cf071dbddb6780f4b6912b49d683b8f234395"


def live_follow(db: Database) -> int:
    assert add_alice().exit_code == 0
    r = run("add-follow", "--wallet", TEST_ADDRESS, "--follow", TRADER, "--copy-pct", "10", "--max-trade", "50")
    assert r.exit_code == 0, r.output
    with db.session() as s:
        fo = s.scalar(select(Follow))
        assert fo is not None
        return fo.id


def test_add_follow_shadow_of_copies_the_settings_unless_given(env: Database) -> None:  # noqa: F811
    """A paper twin: same follower and trader, the twin's settings except those given; listed
    with its mode and twin; a second twin is allowed; bad input exits 2 and adds nothing."""
    live = live_follow(env)
    assert run("add-follow", "--shadow-of", str(live), "--copy-pct", "20").exit_code == 2  # PRO: ≤ 10 %
    r = run("add-follow", "--shadow-of", str(live), "--copy-pct", "5", "--max-slippage", "0.02")
    assert r.exit_code == 0, r.output
    assert "paper" in r.output and f"compare --follow-id {live}" in r.output
    with env.session() as s:
        twin = s.scalar(select(Follow).where(Follow.shadow_of == live))
        assert twin is not None
        assert (twin.mode, twin.copy_pct, twin.max_usd_per_trade, twin.max_slippage) == \
            ("paper", D(5), D(50), D("0.02"))
    assert run("add-follow", "--shadow-of", str(live)).exit_code == 0  # same settings
    rows = json.loads(run("list-follows", "--json").output)
    assert [(r["mode"], r["shadow_of"]) for r in rows] == [(None, None), ("paper", live), ("paper", live)]
    for bad in (["--shadow-of", "999"], ["--shadow-of", str(live), "--wallet", TEST_ADDRESS],
                ["--shadow-of", str(live + 1)], ["--shadow-of", str(live), "--copy-pct", "0"],
                ["--wallet", TEST_ADDRESS, "--follow", TRADER]):
        out = run("add-follow", *bad)
        assert out.exit_code == 2, (bad, out.output)
    with env.session() as s:
        assert len(list(s.scalars(select(Follow)))) == 3
    # the twin does not count against the tier, and removing the live follow removes its twins
    assert run("remove-follow", "--wallet", TEST_ADDRESS, "--follow", TRADER).exit_code == 0
    with env.session() as s:
        assert {f.status for f in s.scalars(select(Follow))} == {FollowStatus.REMOVED}


def test_compare_needs_a_twin(env: Database) -> None:  # noqa: F811
    """`admin compare` on a follow without a shadow, or an unknown id, exits 2."""
    live = live_follow(env)
    assert run("compare", "--follow-id", str(live)).exit_code == 2
    assert run("compare", "--follow-id", "77").exit_code == 2


@pytest.fixture
def dep(database: Database, make_rig: Callable[..., Rig]) -> Rig:
    """A live deployment, follower Hardhat #1 copying 10 % of the quiet trader."""
    d = make_rig(database)
    d.add_follower(1)
    d.watch()
    return d


@pytest.mark.e2e
def test_live_executor_paper_fills_the_shadow_and_never_posts_it(dep: Rig) -> None:
    """Trader BUY 100 @ 0.64: the live follow posts 10 shares to the venue; its 5 % shadow gets a
    paper copy of 5 shares filled against the same book, never posted; `compare` shows both."""
    from ops.shadows import add_shadow

    with dep.db.session() as s:
        live = s.scalar(select(Follow))
        assert live is not None
        twin = add_shadow(s, live.id, copy_pct=D(5))
        s.commit()
        live_id, twin_id = live.id, twin.id
    dep.sim.set_book(FED_YES, bids=[["0.60", "500"]], asks=[["0.64", "500"], ["0.66", "500"]])
    dep.sim.add_trader_fill(TRADER, "fed", "Yes", "BUY", "100", "0.64")
    dep.watch()
    dep.execute()
    dep.execute()
    orders = dep.sim.orders()
    assert len(orders) == 1 and D(str(orders[0]["original_size"])) == D(10)
    by_follow = {c.follow_id: c for c in dep.copies()}
    assert by_follow[live_id].paper is False and by_follow[live_id].order_hash == orders[0]["id"]
    shadow = by_follow[twin_id]
    assert shadow.paper is True and shadow.intended_size == D(5), (shadow.status, shadow.reason, shadow.reason_detail)
    assert shadow.status == CopyStatus.FILLED and shadow.avg_fill_price == D("0.64")
    with dep.db.session() as s:
        fills = list(s.scalars(select(FollowerFill).where(FollowerFill.follow_id == twin_id)))
        assert fills and all(f.paper for f in fills)
        sides = compare(s, twin_id, None, dep_now())
    assert [x.follow_id for x in sides] == [live_id, twin_id]
    assert sides[1].mode == "paper" and (sides[1].copies, sides[1].filled) == (1, 1)
    assert sides[1].realized_slippage_bps == D(0) and sides[1].volume_usd == D("3.2")


def dep_now() -> datetime:
    from infra.db import utcnow

    return utcnow()
