"""The grace audit: fills that only one of the two sources saw, counted and logged once.

With `FILL_SOURCES=chain,data_api` every trade should be seen by both: the chain within a block,
the Data API at its next (maybe slowed-down) poll. A fill still seen by only one source
`FILL_SOURCE_GRACE` seconds after it was first stored is counted (metric
`pmct_fill_single_source_total{source}`) and logged, then marked checked so it is reported once.
Only trades count (splits, merges and redeems never appear on the exchanges' logs).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from infra import metrics
from infra.db import session_scope
from models import TraderFill

log = logging.getLogger("pmct.sources")
BATCH = 1000


def audit_single_source(factory: sessionmaker[Session], trader_ids: Sequence[int], now: datetime,
                        grace: timedelta) -> int:
    """Check the fills of these traders first stored before now − grace; returns how many were
    seen by one source only."""
    if not trader_ids:
        return 0
    t = TraderFill.__table__.c
    cutoff = now - grace
    found = 0
    with session_scope(factory) as s:
        rows = s.execute(
            select(t.id, t.trader_id, t.transaction_hash, t.side, t.size, t.activity_type,
                   t.seen_by_chain_at, t.seen_by_data_api_at, t.chain_removed_at)
            .where(t.sources_checked_at.is_(None), t.first_seen_at < cutoff,
                   t.trader_id.in_(sorted(set(trader_ids))))
            .order_by(t.first_seen_at).limit(BATCH)
        ).all()
        if not rows:
            return 0
        for fid, trader_id, tx, side, size, kind, by_chain, by_api, removed in rows:
            if kind != "TRADE" or side is None or (by_chain is not None and by_api is not None):
                continue
            only = "chain" if by_api is None else "data_api"
            found += 1
            metrics.inc("fill_single_source", source=only)
            log.warning("fill %d of trader %d (tx %s, %s %s) seen by %s only after %.0f s%s",
                        fid, trader_id, tx, side, size, only.replace("_", " "),
                        grace.total_seconds(), " (reorganised away on chain)" if removed else "")
        s.execute(update(TraderFill).where(TraderFill.id.in_([r[0] for r in rows]))
                  .values(sources_checked_at=now))
    return found
