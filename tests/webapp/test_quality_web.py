"""The dashboard's copyability page (admins only), in the style of tests/test_web_views.py."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

from sqlalchemy import select

from infra.db import session_scope
from models import CopyStatus, Follow, Trader
from tests.support import factories as fx
from tests.support.webfixtures import Web, login, web  # noqa: F401 - web is a fixture


def test_copyability_page_shows_each_trader_to_admins_only(web: Web) -> None:  # noqa: F811
    """Two copies of one fill (one filled 10 @ 0.60 against his 0.58, one skipped): the trader's
    row shows 2 seen, 1 copied, the skip and 344.8 bps; a follower user gets 403."""
    with session_scope(web.db.factory) as s:
        trader = s.scalar(select(Trader))
        assert trader is not None
        follows = list(s.scalars(select(Follow).order_by(Follow.id)))
        fill = fx.trader_fill(s, trader)
        fill.first_seen_at = fill.occurred_at + timedelta(milliseconds=800)
        fx.copy_order(s, fill, follows[0], status=CopyStatus.FILLED, filled_size=D(10),
                      avg_fill_price=D("0.60"), posted_at=fill.first_seen_at + timedelta(milliseconds=200))
        fx.copy_order(s, fill, follows[1], status=CopyStatus.SKIPPED, reason="crowding_depth")
    admin = web.client()
    login(admin, "admin")
    page = admin.get("/copyability")
    assert page.status_code == 200
    assert trader.wallet in page.text and "crowding_depth×1" in page.text
    assert "344.8" in page.text and ">800<" in page.text and ">200<" in page.text
    assert admin.get("/copyability?mode=live").status_code == 200
    assert admin.get("/copyability?mode=bogus").status_code == 400
    user = web.client()
    login(user, "f1")
    assert user.get("/copyability").status_code == 403
