"""One fill, one row, whichever source sees it first: chain logs and Data API rows of one fill."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from copying.intake import ChainRef, match_keys, store_fills
from models import CopyOrder, TraderFill
from tests.copying.test_fill_store import DELAY, T, World, act, count, world  # noqa: F401 - fixture
from wire.types import Side

TX = "0x" + "7" * 64


def chain_refs(n: int, block: int = 100) -> list[ChainRef | None]:
    return [ChainRef(block, "0x" + "b" * 64, i) for i in range(n)]


def store(w: World, rows: list, source: str, seconds: int = 1):
    db, tid = w
    with db.session() as s:
        out = store_fills(s, tid, rows, now=T + timedelta(seconds=seconds), max_copy_delay=DELAY,
                          source=source, chain_refs=chain_refs(len(rows)) if source == "chain" else None)
        s.commit()
    return out


def fills(w: World) -> list[TraderFill]:
    db, _ = w
    with db.session() as s:
        return list(s.scalars(select(TraderFill).order_by(TraderFill.id)))


def test_chain_first_then_the_data_apis_float_price_is_the_same_fill(world: World) -> None:  # noqa: F811
    """Chain 14.285715 shares at 13.285715 pUSD (price 0.93000…), the API's float price
    0.9300000035: one row, seen by both, copies queued once."""
    chain = act(tx=TX, size="14.285715", price="0.9299999685")
    api = act(tx=TX, size="14.285715", price="0.9300000035")
    first = store(world, [chain], "chain")
    assert first.new_fills == 1 and first.queued == 2
    again = store(world, [api], "data_api", seconds=30)
    assert (again.new_fills, again.queued, again.matched) == (0, 0, 1)
    [row] = fills(world)
    assert row.seen_by_chain_at == T + timedelta(seconds=1)
    assert row.seen_by_data_api_at == T + timedelta(seconds=30)
    assert row.price == Decimal("0.9299999685") and row.log_index == 0
    db, _ = world
    with db.session() as s:
        assert count(s, CopyOrder) == 2


def test_data_api_first_then_chain(world: World) -> None:  # noqa: F811
    """The other order: the Data API's row stands, the chain adds its sighting and log."""
    store(world, [act(tx=TX, size="50", price="0.65")], "data_api")
    again = store(world, [act(tx=TX, size="50", price="0.6500000000")], "chain", seconds=3)
    assert again.new_fills == 0 and again.matched == 1
    [row] = fills(world)
    assert row.seen_by_data_api_at is not None and row.seen_by_chain_at is not None
    assert row.block_number == 100 and row.block_hash == "0x" + "b" * 64


def test_several_fills_of_one_wallet_in_one_transaction(world: World) -> None:  # noqa: F811
    """Three maker fills (10, 20, 10 shares) in one tx: three rows from the chain; the Data API's
    rows of the same three, in another order, add nothing."""
    chain = [act(tx=TX, size="10"), act(tx=TX, size="20"), act(tx=TX, size="10")]
    assert store(world, chain, "chain").new_fills == 3
    api = [act(tx=TX, size="20"), act(tx=TX, size="10"), act(tx=TX, size="10")]
    again = store(world, api, "data_api")
    assert again.new_fills == 0 and again.matched == 3
    assert len(fills(world)) == 3 and all(f.seen_by_data_api_at for f in fills(world))


def test_a_rounded_api_size_still_matches_within_tolerance(world: World) -> None:  # noqa: F811
    """The API printing 50.004 for the chain's 50.000000: the same fill, not a second one."""
    store(world, [act(tx=TX, size="50")], "chain")
    again = store(world, [act(tx=TX, size="50.004")], "data_api")
    assert again.new_fills == 0 and again.matched == 1 and len(fills(world)) == 1


def test_a_different_fill_in_the_same_transaction_is_kept(world: World) -> None:  # noqa: F811
    """Same tx, token and side but 20 vs 50 shares: two fills (the chain saw one, the API two)."""
    store(world, [act(tx=TX, size="50")], "chain")
    again = store(world, [act(tx=TX, size="50"), act(tx=TX, size="20")], "data_api")
    assert again.new_fills == 1 and again.matched == 1 and len(fills(world)) == 2


def test_other_token_or_side_never_matches(world: World) -> None:  # noqa: F811
    """Tolerance applies only within (tx, token, side)."""
    store(world, [act(tx=TX, size="50")], "chain")
    again = store(world, [act(tx=TX, size="50", token="222"), act(tx=TX, size="50", side=Side.SELL)],
                  "data_api")
    assert again.new_fills == 2 and len(fills(world)) == 3


def test_a_reorg_sighting_moves_the_log_not_the_fill(world: World) -> None:  # noqa: F811
    """The chain seeing the fill again in another block updates its log, inserts nothing."""
    db, tid = world
    store(world, [act(tx=TX, size="50")], "chain")
    with db.session() as s:
        out = store_fills(s, tid, [act(tx=TX, size="50")], now=T, max_copy_delay=DELAY,
                          source="chain", chain_refs=[ChainRef(101, "0x" + "c" * 64, 4)])
        s.commit()
    assert out.new_fills == 0
    [row] = fills(world)
    assert (row.block_number, row.block_hash, row.log_index) == (101, "0x" + "c" * 64, 4)


sizes = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("100000"), places=6)


@settings(max_examples=200, deadline=None)
@given(fills_=st.lists(st.tuples(st.sampled_from(["1", "2"]), st.sampled_from([Side.BUY, Side.SELL]),
                                 sizes), min_size=1, max_size=8),
       seed=st.integers(0, 2**32))
def test_match_keys_agree_across_sources_whatever_the_order(fills_: list, seed: int) -> None:
    """The chain (log order) and the Data API (any order, float-printed sizes) produce the same
    set of match keys for the fills of one transaction."""
    chain = [act(tx=TX, token=t, side=sd, size=str(sz)) for t, sd, sz in fills_]
    api = [act(tx=TX.upper().replace("0X", "0x"), token=t, side=sd, size=repr(float(sz)))
           for t, sd, sz in fills_]
    random.Random(seed).shuffle(api)
    assert sorted(match_keys(chain)) == sorted(match_keys(api))  # type: ignore[type-var]
    assert len(set(match_keys(chain))) == len(chain)


def test_non_trades_have_no_match_key() -> None:
    """Splits/merges and side-less rows never take part in cross-source matching."""
    assert match_keys([act(kind="SPLIT", side=None), act(side=None)]) == [None, None]
