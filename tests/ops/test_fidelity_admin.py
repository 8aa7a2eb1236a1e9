"""Admin commands of copy fidelity: late exits per follow, disable / remove-follow with
--close-positions (confirmation, --yes), `admin redeem --dry-run`, the redemptions in `status`."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest
from sqlalchemy import select

from models import (
    CopyOrder,
    CopyOrigin,
    CopyStatus,
    Follow,
    Follower,
    FollowerPosition,
    FollowStatus,
    Market,
    Redemption,
    RedemptionStatus,
)
from tests.ops.test_admin import TRADER, add_alice, counts, env, run  # noqa: F401
from tests.support.dbfixtures import Database
from tests.support.keys import TEST_ADDRESS

CONDITION = "0x" + "c1" * 32


def alice_follows(*extra: str) -> None:
    assert add_alice().exit_code == 0
    r = run("add-follow", "--wallet", TEST_ADDRESS, "--follow", TRADER, "--copy-pct", "10",
            "--max-trade", "50", *extra)
    assert r.exit_code == 0, r.output


def hold(db: Database, size: str = "10", paper: bool = True) -> None:
    with db.session() as s:
        follow = s.scalars(select(Follow)).one()
        s.add(FollowerPosition(follower_id=follow.follower_id, follow_id=follow.id, token_id="1001",
                               condition_id=CONDITION, paper=paper, size=D(size), target_size=D(size),
                               avg_cost=D("0.5")))
        s.commit()


def test_late_exits_can_be_turned_off_per_follow(env: Database) -> None:  # noqa: F811
    """add-follow --no-late-exits, list-follows shows it, set-follow turns it back on."""
    alice_follows("--no-late-exits")
    rows = json.loads(run("list-follows", "--json").stdout)
    assert rows[0]["late_exits"] is False
    r = run("set-follow", "--wallet", TEST_ADDRESS, "--follow", TRADER, "--late-exits", "on")
    assert r.exit_code == 0 and "late exits on" in r.stdout
    assert json.loads(run("list-follows", "--json").stdout)[0]["late_exits"] is True
    assert run("set-follow", "--wallet", TEST_ADDRESS, "--follow", TRADER, "--late-exits", "maybe").exit_code == 2
    bad = run("set-follow", "--wallet", TEST_ADDRESS, "--follow", "0x" + "9" * 40, "--late-exits", "off")
    assert bad.exit_code == 2


def test_disable_keeps_mirroring_exits_and_close_positions_asks_first(env: Database) -> None:  # noqa: F811
    """Plain disable: no close; --close-positions lists the holding and asks: 'n' aborts with
    nothing written; --yes queues one close sale (target 0)."""
    alice_follows()
    hold(env)
    before = counts(env)
    r = run("disable", "--wallet", TEST_ADDRESS, "--follow", TRADER, "--close-positions", input="n\n")
    assert r.exit_code == 1 and "sell 10 shares" in r.output
    assert counts(env) == before  # aborted: not even disabled
    r = run("disable", "--wallet", TEST_ADDRESS, "--follow", TRADER, "--close-positions", "--yes")
    assert r.exit_code == 0, r.output
    assert "exits are still mirrored" in r.stdout and "1 close sale(s) queued" in r.stdout
    with env.session() as s:
        close = s.scalars(select(CopyOrder)).one()
        pos = s.scalars(select(FollowerPosition)).one()
        assert (close.origin, close.status, close.side, close.trader_fill_id) == (
            CopyOrigin.CLOSE, CopyStatus.QUEUED, "SELL", None)
        assert pos.target_size == 0 and pos.size == D(10)


def test_remove_follow_with_close_positions_and_without(env: Database) -> None:  # noqa: F811
    """remove-follow keeps the holding under the leader's exits; --close-positions --yes sells it."""
    alice_follows()
    hold(env)
    r = run("remove-follow", "--wallet", TEST_ADDRESS, "--follow", TRADER, "--close-positions", "--yes")
    assert r.exit_code == 0 and "1 close sale(s) queued" in r.stdout
    with env.session() as s:
        assert s.scalars(select(Follow)).one().status == FollowStatus.REMOVED
        assert len(s.scalars(select(CopyOrder)).all()) == 1


def test_disable_all_refuses_close_positions(env: Database) -> None:  # noqa: F811
    """--close-positions is per follower or follow; with --all it is a usage error."""
    alice_follows()
    before = counts(env)
    r = run("disable", "--all", "--close-positions", "--yes")
    assert r.exit_code == 2 and counts(env) == before


def test_follower_disable_closes_every_follow(env: Database) -> None:  # noqa: F811
    """disable --wallet --close-positions --yes: one close per held token of every follow."""
    alice_follows()
    hold(env)
    r = run("disable", "--wallet", TEST_ADDRESS, "--close-positions", "--yes")
    assert r.exit_code == 0, r.output
    with env.session() as s:
        assert s.scalars(select(Follower)).one().status.value == "disabled"
        assert [c.origin for c in s.scalars(select(CopyOrder))] == [CopyOrigin.CLOSE]


def test_redeem_dry_run_and_status(env: Database, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """A pending redemption: `redeem --dry-run` shows the adapter call and writes nothing;
    without relayer credentials a deposit-wallet follower is listed to "redeem by hand"."""
    monkeypatch.setenv("EXECUTION_MODE", "live")
    alice_follows()
    with env.session() as s:
        follower = s.scalars(select(Follower)).one()
        s.add(Market(condition_id=CONDITION, question="Will it?", version="v1", tick_size=D("0.01"),
                     min_size=D(5), neg_risk=True))
        s.add(Redemption(follower_id=follower.id, condition_id=CONDITION, method="pending",
                         status=RedemptionStatus.PENDING, shares=D(10), amount=D(10), attempts=0))
        s.commit()
    before = counts(env)
    r = run("redeem", "--wallet", TEST_ADDRESS, "--dry-run")
    assert r.exit_code == 0, r.output
    assert "10 shares -> 10 pUSD via eoa" in r.stdout
    assert "0xadA2005600Dec949baf300f4C6120000bDB6eAab 0x01b7037c" in r.stdout
    assert counts(env) == before
    status = json.loads(run("status", "--json").stdout)
    assert [(x["status"], x["amount"], x["method"]) for x in status["redemptions"]] == [
        ("pending", "10", "pending")]
    with env.session() as s:
        row = s.scalars(select(Redemption)).one()
        row.status, row.method = RedemptionStatus.MANUAL, "manual"
        s.commit()
    text = run("status").stdout
    assert "redeem by hand" in text and "Will it?" in text


def test_pause_help_says_exits_are_still_mirrored(env: Database) -> None:  # noqa: F811
    """The pause semantics are in the help."""
    assert "exits are still mirrored" in run("pause", "--help").stdout
    assert "--close-positions" in run("remove-follow", "--help").stdout
