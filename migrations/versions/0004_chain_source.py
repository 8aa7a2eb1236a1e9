"""chain source: per-shard block cursor, and the fills' cross-source identity and sightings

Revision ID: 0004_chain_source
Revises: 0003_web_users
Create Date: 2026-12-03
"""

from __future__ import annotations

import hashlib
from collections import Counter
from decimal import ROUND_HALF_EVEN, Decimal

import sqlalchemy as sa
from alembic import op

from infra import db
from infra.decimals import canonical_decimal

revision = "0004_chain_source"
down_revision = "0003_web_users"
branch_labels = None
depends_on = None


def _match_key(tx: str, token: str, side: str, size: Decimal, occurrence: int) -> str:
    # Frozen copy of copying.intake.match_keys at this revision (migrations never import the
    # engine's current code: it may change after this file is written).
    text = canonical_decimal(size.quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN))
    ident = (tx.lower(), token, side, text)
    return hashlib.sha256("|".join(("match", *ident, str(occurrence))).encode()).hexdigest()


def upgrade() -> None:
    """Add the table and columns; give stored trades their match key and Data API sighting."""
    op.create_table(
        "chain_cursors",
        sa.Column("shard", sa.String(length=16), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("head_number", sa.BigInteger(), nullable=True),
        sa.Column("head_seen_at", db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("healthy", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("shard", name=op.f("pk_chain_cursors")),
    )
    with op.batch_alter_table("trader_fills", schema=None) as batch_op:
        batch_op.add_column(sa.Column("match_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("seen_by_chain_at", db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("seen_by_data_api_at", db.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("block_number", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("block_hash", sa.String(length=66), nullable=True))
        batch_op.add_column(sa.Column("log_index", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("chain_removed_at", db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sources_checked_at", db.UTCDateTime(timezone=True),
                                      nullable=True))
    bind = op.get_bind()
    fills = sa.table("trader_fills", sa.column("id", sa.Integer), sa.column("trader_id", sa.Integer),
                     sa.column("activity_type", sa.String), sa.column("transaction_hash", sa.String),
                     sa.column("token_id", sa.String), sa.column("side", sa.String),
                     sa.column("size", db.DecimalType(length=64)),
                     sa.column("match_key", sa.String),
                     sa.column("first_seen_at", db.UTCDateTime(timezone=True)),
                     sa.column("seen_by_data_api_at", db.UTCDateTime(timezone=True)),
                     sa.column("sources_checked_at", db.UTCDateTime(timezone=True)))
    # every fill stored so far came from the Data API; the grace audit only looks at new ones
    bind.execute(fills.update().values(seen_by_data_api_at=fills.c.first_seen_at,
                                       sources_checked_at=fills.c.first_seen_at))
    rows = bind.execute(sa.select(fills.c.id, fills.c.trader_id, fills.c.transaction_hash,
                                  fills.c.token_id, fills.c.side, fills.c.size)
                        .where(fills.c.activity_type == "TRADE", fills.c.side.isnot(None))
                        .order_by(fills.c.trader_id, fills.c.id)).all()
    seen: Counter[tuple[object, ...]] = Counter()
    for fid, trader_id, tx, token, side, size in rows:
        group = (trader_id, tx.lower(), token, side,
                 Decimal(size).quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN))
        occurrence = seen[group]
        seen[group] += 1
        bind.execute(fills.update().where(fills.c.id == fid).values(
            match_key=_match_key(tx, token, side, Decimal(size), occurrence)))
    with op.batch_alter_table("trader_fills", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_trader_fills_match", ["trader_id", "match_key"])
        batch_op.create_index("ix_trader_fills_trader_tx", ["trader_id", "transaction_hash"],
                              unique=False)
        batch_op.create_index("ix_trader_fills_unchecked", ["sources_checked_at", "first_seen_at"],
                              unique=False)


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("trader_fills", schema=None) as batch_op:
        batch_op.drop_index("ix_trader_fills_unchecked")
        batch_op.drop_index("ix_trader_fills_trader_tx")
        batch_op.drop_constraint("uq_trader_fills_match", type_="unique")
        for name in ("sources_checked_at", "chain_removed_at", "log_index", "block_hash",
                     "block_number", "seen_by_data_api_at", "seen_by_chain_at", "match_key"):
            batch_op.drop_column(name)
    op.drop_table("chain_cursors")
