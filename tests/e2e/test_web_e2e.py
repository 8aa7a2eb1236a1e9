"""The API end to end against the simulator: enable → the leader's next fill is copied by
`watcher.py --once` + `executor.py --once` (real processes); disable → the resting copy is
cancelled at the venue by `executor.py --once`. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D

import pytest
from sqlalchemy import select

from infra.config import Settings
from infra.db import session_scope
from models import CopyOrder, CopyStatus, Tier
from ops.users import add_user, create_api_token
from tests.support.dbfixtures import Database
from tests.support.rig import Rig
from tests.support.simfixtures import HARDHAT_ADDRESSES, TRADER_QUIET
from tests.support.webfixtures import PASSWORD, NoLeaderboard
from webapp.app import create_app

pytestmark = pytest.mark.e2e


def run(d: Rig, script: str) -> None:
    """`python <script> --once` as a process; it must exit 0."""
    done = d.once(script, timeout=90)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def follower_without_follows(d: Rig, index: int) -> str:
    """Hardhat account `index` as a live follower with CLOB credentials, following nobody, and
    its web user; the user's API token."""
    wallet = d.add_follower(index, tier=Tier.ELITE, trader=None)
    with session_scope(d.db.factory) as s:
        add_user(s, username="follower1", role="follower", password=PASSWORD, wallet=wallet)
        return create_api_token(s, "follower1")


def test_enable_copies_the_next_fill_and_disable_cancels_it_at_the_venue(
        database: Database, make_rig: Callable[..., Rig]) -> None:
    """API enable (10 %, $50) → trader BUY 100 @ 0.62 → a resting venue BUY of 10 @ 0.62 signed by
    the follower; API disable → the executor cancels that order at the venue."""
    from fastapi.testclient import TestClient

    d = make_rig(database)
    token = follower_without_follows(d, 1)
    app = create_app(Settings(database_url=database.url, web_session_secret="s" * 40),
                     database.factory, prices=lambda t: None, leaderboard=NoLeaderboard(),
                     market_data=False)
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client:
        r = client.post("/api/copy-trading/enable", headers=auth,
                        json={"target_trader": TRADER_QUIET, "copy_percentage": 10,
                              "max_trade": 50})
        assert r.status_code == 200, r.text
        run(d, "watcher.py")  # seeds the new trader's cursor: history is not copied
        assert d.copies() == []
        d.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "100", "0.62")
        run(d, "watcher.py")
        run(d, "executor.py")
        orders = d.sim.orders()
        assert len(orders) == 1, (orders, d.sim.rejections())
        venue = orders[0]
        assert venue["signer"].lower() == HARDHAT_ADDRESSES[1].lower()
        assert D(str(venue["price"])) == D("0.62") and D(str(venue["original_size"])) == D(10)
        assert venue["status"].upper() == "LIVE"
        status = client.get("/api/copy-trading/status", headers=auth).json()
        assert [o["status"] for o in status["open_orders"]] == ["LIVE"]

        r = client.post("/api/copy-trading/disable", headers=auth,
                        json={"target_trader": TRADER_QUIET})
        assert r.status_code == 200, r.text
        run(d, "executor.py")  # its open-order pass cancels the disabled follow's order
        (venue,) = d.sim.orders()
        assert venue["status"].upper() == "CANCELED", venue
        with d.db.session() as s:
            (co,) = s.scalars(select(CopyOrder)).all()
            assert co.status == CopyStatus.CANCELED and co.reason == "disabled"
        status = client.get("/api/copy-trading/status", headers=auth).json()
        assert status["open_orders"] == [] and status["traders"] == []
        d.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "100", "0.61")
        run(d, "watcher.py")
        run(d, "executor.py")
        assert len(d.sim.orders()) == 1  # nothing new is copied while disabled
