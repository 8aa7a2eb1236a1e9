"""The in-process executor harness: one follower following TRADER, a stateful fake exchange
(tests/support/fake_exchange.py) and an executor context with an injectable clock and crash points.
Used by the executor, executor-safety and fidelity tests of tests/copying/."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from copying.context import ExecutorContext
from copying.intake import store_fills
from copying.venues import LiveVenue, PaperVenue
from crypto import KeyRing
from executor import CycleClock, executor_cycle
from infra.config import Settings
from infra.db import session_scope
from models import CopyOrder, Tier
from ops.accounts import add_follow, add_follower
from tests.support.dbfixtures import Database
from tests.support.fake_exchange import CONDITION, NO, YES, FakeExchange, book, market
from tests.support.keys import TEST_KEY
from wire.types import Activity, ApiCreds, MarketInfo, Side, SignatureType

D = Decimal
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TRADER = "0x7c3db723f1d4d8cb9c550095203b686cb11e5c6b"
DEPOSIT_WALLET = "0xBc0fF067b7740Eff76C1ca93c875Ba6B890d6B50"


class Clock:
    """An injectable clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Crash(BaseException):
    """Simulated process death at a crash point."""


class Harness:
    """A follower following TRADER, a fake exchange, and an executor context."""

    def __init__(self, db: Database, fernet_key: str, *, paper: bool = False,
                 sig_type: SignatureType = SignatureType.EOA, pct: str = "10", max_trade: str = "50",
                 info: MarketInfo | None = None, max_slippage: str | None = None) -> None:
        self.db = db
        self.keyring = KeyRing(fernet_key)
        self.clock = Clock(T0)
        self.fx = FakeExchange(info or market())
        self.fx.clock = self.clock
        self.fx.books[YES] = book(YES, [("0.57", "500")], [("0.60", "500")])
        self.fx.books[NO] = book(NO, [("0.40", "500")], [("0.43", "500")])
        with session_scope(db.factory) as s:
            f = add_follower(s, self.keyring, name="A", email="a@x.io", private_key=TEST_KEY,
                             signature_type=sig_type,
                             funder=DEPOSIT_WALLET if sig_type == SignatureType.POLY_1271 else None,
                             tier=Tier.PRO)
            f.encrypted_api_creds = self.keyring.encrypt_api_creds(
                ApiCreds("key-1", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "pass-phrase"))
            from ops.accounts import FollowLimits
            fo = add_follow(s, follower_wallet=f.funder_address, trader_wallet=TRADER,
                            copy_pct=D(pct), max_usd_per_trade=D(max_trade), now=T0 - timedelta(hours=1),
                            limits=FollowLimits(max_slippage=D(max_slippage) if max_slippage else None))
            self.follower_id, self.follow_id, self.trader_id = f.id, fo.id, fo.trader_id
        settings = Settings(database_url=db.url, execution_mode="paper" if paper else "live",
                            encryption_key=fernet_key, max_copy_delay=120)
        self.crash_at: str | None = None
        venue = PaperVenue(self.fx, self.clock) if paper else LiveVenue(self.fx)
        self.ctx = ExecutorContext(settings=settings, factory=db.factory, client=self.fx, venue=venue,
                                   keyring=self.keyring, owner="test-exec", clock=self.clock,
                                   crash_hook=self._crash, book_ttl=0.0, market_ttl=0.0)
        self.manage = CycleClock(0)
        self._n = 0

    def _crash(self, point: str) -> None:
        if point == self.crash_at:
            raise Crash(point)

    def trader_fill(self, side: Side = Side.BUY, size: str = "100", price: str = "0.58",
                    token: str = YES, at: datetime | None = None) -> None:
        """The trader fills; the watcher stores it and queues copies."""
        self._n += 1
        at = at or self.clock.now
        row = Activity(proxy_wallet=TRADER, timestamp=at, type="TRADE", condition_id=CONDITION,
                       token_id=token, side=side, size=D(size), price=D(price), usdc_size=None,
                       transaction_hash=f"0x{self._n:064x}", outcome="Yes", outcome_index=0,
                       title="Q", slug="q", event_slug="e", is_combo=False, raw={})
        with session_scope(self.db.factory) as s:
            store_fills(s, self.trader_id, [row], now=self.clock.now, max_copy_delay=timedelta(seconds=120))

    def cycle(self) -> None:
        """One executor cycle (always with the open-order pass)."""
        asyncio.run(executor_cycle(self.ctx, asyncio.Event(), self.manage, force_manage=True))

    def copies(self) -> list[CopyOrder]:
        """Copy orders by id."""
        with self.db.session() as s:
            return list(s.scalars(select(CopyOrder).order_by(CopyOrder.id)))

    def only(self) -> CopyOrder:
        """The one copy order."""
        rows = self.copies()
        assert len(rows) == 1
        return rows[0]

    def venue_order(self) -> dict[str, Any]:
        """The signed order of the one order at the fake exchange."""
        assert len(self.fx.orders) == 1, len(self.fx.orders)
        return next(iter(self.fx.orders.values())).body["order"]


def add_second_follower(h: Harness) -> int:
    """Another follower (Hardhat #1 key, own credentials) copying the same trader; its id."""
    from ops.accounts import FollowLimits
    from tests.support.keys import TEST_KEY_2
    with session_scope(h.db.factory) as s:
        f = add_follower(s, h.keyring, name="B", email="b@x.io", private_key=TEST_KEY_2,
                         signature_type=SignatureType.EOA, funder=None, tier=Tier.PRO)
        f.encrypted_api_creds = h.keyring.encrypt_api_creds(
            ApiCreds("key-2", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "pass-phrase-2"))
        add_follow(s, follower_wallet=f.funder_address, trader_wallet=TRADER, copy_pct=D("10"),
                   max_usd_per_trade=D("50"), now=T0 - timedelta(hours=1), limits=FollowLimits())
        return f.id
