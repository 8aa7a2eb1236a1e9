"""The database cache of market parameters (tick, min size, neg-risk, version, closed...).

The watcher fills it for every new token it sees; the executor reads it and refreshes an entry
from the CLOB when it is missing, older than its TTL, or contradicted by a tick-size rejection.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Market, MarketTokenRow
from wire.types import MarketInfo, MarketToken, MarketVersion


def upsert_market(session: Session, info: MarketInfo, now: datetime) -> Market:
    """Insert or refresh one market and its tokens."""
    row = session.get(Market, info.condition_id)
    if row is None:
        row = Market(condition_id=info.condition_id)
        session.add(row)
    row.question = info.question
    row.version = info.version.value
    row.tick_size = info.tick_size
    row.min_size = info.min_size
    row.neg_risk = info.neg_risk
    row.accepting_orders = info.accepting_orders
    row.closed = info.closed
    row.end_date = info.end_date
    row.fee_rate = info.fee_rate
    row.fee_exponent = info.fee_exponent
    row.fee_takers_only = info.fee_takers_only
    row.event_key = info.event_key or None
    row.category = info.category or None
    row.fetched_at = now
    session.flush()
    for tok in info.tokens:
        trow = session.get(MarketTokenRow, tok.token_id)
        if trow is None:
            session.add(MarketTokenRow(token_id=tok.token_id, condition_id=info.condition_id,
                                       outcome=tok.outcome, outcome_index=tok.outcome_index))
        else:
            trow.condition_id, trow.outcome = info.condition_id, tok.outcome
            trow.outcome_index = tok.outcome_index
    session.flush()
    return row


def to_market_info(row: Market) -> MarketInfo:
    """The stored market as the shared MarketInfo value."""
    return MarketInfo(
        condition_id=row.condition_id,
        question=row.question,
        tokens=tuple(MarketToken(t.token_id, t.outcome, t.outcome_index) for t in row.tokens),
        tick_size=row.tick_size,
        min_size=row.min_size,
        neg_risk=row.neg_risk,
        version=MarketVersion(row.version),
        accepting_orders=row.accepting_orders,
        closed=row.closed,
        end_date=row.end_date,
        fee_rate=row.fee_rate,
        fee_exponent=row.fee_exponent,
        fee_takers_only=row.fee_takers_only,
        event_key=row.event_key or "",
        category=row.category or "",
    )


def load_market(session: Session, *, token_id: str | None = None,
                condition_id: str | None = None, max_age: timedelta | None = None,
                now: datetime | None = None) -> MarketInfo | None:
    """A cached market by token or condition id; None if absent or older than `max_age`."""
    if token_id is not None:
        row = session.scalar(
            select(Market).join(MarketTokenRow).where(MarketTokenRow.token_id == token_id)
        )
    else:
        row = session.get(Market, condition_id)
    if row is None:
        return None
    if max_age is not None and now is not None and now - row.fetched_at > max_age:
        return None
    return to_market_info(row)


def known_tokens(session: Session, token_ids: set[str]) -> set[str]:
    """The subset of `token_ids` already cached."""
    if not token_ids:
        return set()
    return set(session.scalars(select(MarketTokenRow.token_id)
                               .where(MarketTokenRow.token_id.in_(token_ids))))
