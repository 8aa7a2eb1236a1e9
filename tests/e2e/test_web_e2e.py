"""The API end to end against the simulator: enable → the leader's next fill is copied by
`watcher.py --once` + `executor.py --once` (real processes); disable → the resting copy is
cancelled at the venue by `executor.py --once`. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import pytest
from sqlalchemy import select

from infra.config import Settings
from infra.db import session_scope
from models import CopyOrder, CopyStatus, Tier
from ops.accounts import add_follower
from ops.users import add_user, create_api_token
from polymarket_client import PolymarketClient
from sim import Simulator
from tests.e2e.test_executor_e2e import Deployment
from tests.e2e.test_watcher_e2e import quiet_scenario
from tests.support.dbfixtures import Database
from tests.support.paths import ROOT
from tests.support.simfixtures import HARDHAT_ADDRESSES, HARDHAT_KEYS, TRADER_QUIET
from tests.support.webfixtures import PASSWORD, NoLeaderboard
from webapp.app import create_app
from wire.types import SignatureType

pytestmark = pytest.mark.e2e


def run(script: str, env: dict[str, str]) -> None:
    """`python <script> --once` as a process; it must exit 0."""
    done = subprocess.run([sys.executable, script, "--once"], cwd=ROOT, env=env,  # noqa: S603
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def follower_without_follows(d: Deployment, index: int) -> str:
    """Hardhat account `index` as a live follower with CLOB credentials, following nobody."""
    async def derive() -> Any:
        client = PolymarketClient.from_settings(d.settings, http2=False)
        try:
            return await client.create_or_derive_api_key(HARDHAT_KEYS[index])
        finally:
            await client.aclose()

    creds = asyncio.run(derive())
    with session_scope(d.db.factory) as s:
        f = add_follower(s, d.ring, name=f"F{index}", email=f"f{index}@x.io",
                         private_key=HARDHAT_KEYS[index], signature_type=SignatureType.EOA,
                         funder=None, tier=Tier.ELITE)
        f.encrypted_api_creds = d.ring.encrypt_api_creds(creds)
        f.api_key_id = creds.api_key
        add_user(s, username="follower1", role="follower", password=PASSWORD,
                 wallet=f.funder_address)
        return create_api_token(s, "follower1")


def test_enable_copies_the_next_fill_and_disable_cancels_it_at_the_venue(
        database: Database, simulator_factory: Callable[..., Simulator], fernet_key: str) -> None:
    """API enable (10 %, $50) → trader BUY 100 @ 0.62 → a resting venue BUY of 10 @ 0.62 signed by
    the follower; API disable → the executor cancels that order at the venue."""
    from fastapi.testclient import TestClient

    d = Deployment(database, simulator_factory(quiet_scenario()), fernet_key)
    token = follower_without_follows(d, 1)
    app = create_app(Settings(database_url=database.url, web_session_secret="s" * 40),
                     database.factory, prices=lambda t: None, leaderboard=NoLeaderboard(),
                     market_data=False)
    auth = {"Authorization": f"Bearer {token}"}
    env = d.env()
    with TestClient(app) as client:
        r = client.post("/api/copy-trading/enable", headers=auth,
                        json={"target_trader": TRADER_QUIET, "copy_percentage": 10,
                              "max_trade": 50})
        assert r.status_code == 200, r.text
        run("watcher.py", env)  # seeds the new trader's cursor: history is not copied
        assert d.copies() == []
        d.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "100", "0.62")
        run("watcher.py", env)
        run("executor.py", env)
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
        run("executor.py", env)  # its open-order pass cancels the disabled follow's order
        (venue,) = d.sim.orders()
        assert venue["status"].upper() == "CANCELED", venue
        with d.db.session() as s:
            (co,) = s.scalars(select(CopyOrder)).all()
            assert co.status == CopyStatus.CANCELED and co.reason == "disabled"
        status = client.get("/api/copy-trading/status", headers=auth).json()
        assert status["open_orders"] == [] and status["traders"] == []
        d.sim.add_trader_fill(TRADER_QUIET, "fed", "Yes", "BUY", "100", "0.61")
        run("watcher.py", env)
        run("executor.py", env)
        assert len(d.sim.orders()) == 1  # nothing new is copied while disabled
