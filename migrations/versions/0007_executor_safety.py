"""executor safety and scale: copy modes, per-follower limits, the balance ledger, hot indexes

- copy_orders.paper becomes nullable: a QUEUED copy's mode is decided when an executor claims it;
- follows.mode pins a follow to 'paper' or 'live' (NULL: the claiming executor's mode);
- followers: daily_usd_cap, max_open_exposure (limits across all follows), venue_balance and
  venue_balance_at (the local ledger's anchor);
- indexes for the hot queries at a year of data: partial indexes over the copies not closed
  yet, by status and by follower (they replace the full status index and the follower + status
  one), a follower's copies by queue time (history), copies by follower / follow and signing time, by close
  and queue time, follower fills by follower and time, trader fills by trader, token and time,
  trader position events by trader, token and time.

Revision ID: 0007_executor_safety
Revises: 0006_copy_fidelity
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infra import db

revision = "0007_executor_safety"
down_revision = "0006_copy_fidelity"
branch_labels = None
depends_on = None

OPEN = ("status IN ('QUEUED', 'CLAIMED', 'SIGNED', 'IN_DOUBT', 'LIVE', 'PARTIAL', "
        "'CANCELING')")


def upgrade() -> None:
    """Add the columns and indexes; make copy_orders.paper nullable."""
    with op.batch_alter_table("followers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("daily_usd_cap", db.DecimalType(length=64), nullable=True))
        batch_op.add_column(sa.Column("max_open_exposure", db.DecimalType(length=64), nullable=True))
        batch_op.add_column(sa.Column("venue_balance", db.DecimalType(length=64), nullable=True))
        batch_op.add_column(sa.Column("venue_balance_at", db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("follows", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mode", sa.String(length=8), nullable=True))
        batch_op.create_check_constraint("mode", "mode IS NULL OR mode IN ('paper', 'live')")
    with op.batch_alter_table("copy_orders", schema=None) as batch_op:
        batch_op.alter_column("paper", existing_type=sa.Boolean(), nullable=True)
        batch_op.drop_index("ix_copy_orders_status")
        batch_op.drop_index("ix_copy_orders_follower_status")
        batch_op.create_index("ix_copy_orders_follower_queued", ["follower_id", "queued_at"], unique=False)
        batch_op.create_index("ix_copy_orders_open", ["status", "id"], unique=False,
                              postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))
        batch_op.create_index("ix_copy_orders_open_follower", ["follower_id"], unique=False,
                              postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))
        batch_op.create_index("ix_copy_orders_follower_signed", ["follower_id", "signed_at"], unique=False)
        batch_op.create_index("ix_copy_orders_follow_signed", ["follow_id", "signed_at"], unique=False)
        batch_op.create_index("ix_copy_orders_closed_at", ["closed_at"], unique=False)
        batch_op.create_index("ix_copy_orders_queued_at", ["queued_at"], unique=False)
    with op.batch_alter_table("follower_fills", schema=None) as batch_op:
        batch_op.drop_index("ix_follower_fills_follower_id")
        batch_op.create_index("ix_follower_fills_follower_time", ["follower_id", "filled_at"], unique=False)
    with op.batch_alter_table("trader_fills", schema=None) as batch_op:
        batch_op.create_index("ix_trader_fills_trader_token_time", ["trader_id", "token_id", "occurred_at"],
                              unique=False)
    with op.batch_alter_table("trader_position_events", schema=None) as batch_op:
        batch_op.create_index("ix_trader_position_events_trader_token",
                              ["trader_id", "token_id", "detected_at"], unique=False)


def downgrade() -> None:
    """Drop what upgrade added (a copy whose mode is still undecided becomes live: never posted)."""
    with op.batch_alter_table("trader_position_events", schema=None) as batch_op:
        batch_op.drop_index("ix_trader_position_events_trader_token")
    with op.batch_alter_table("trader_fills", schema=None) as batch_op:
        batch_op.drop_index("ix_trader_fills_trader_token_time")
    with op.batch_alter_table("follower_fills", schema=None) as batch_op:
        batch_op.drop_index("ix_follower_fills_follower_time")
        batch_op.create_index("ix_follower_fills_follower_id", ["follower_id"], unique=False)
    op.execute("UPDATE copy_orders SET paper = false WHERE paper IS NULL")
    with op.batch_alter_table("copy_orders", schema=None) as batch_op:
        for name in ("ix_copy_orders_queued_at", "ix_copy_orders_closed_at", "ix_copy_orders_follow_signed",
                     "ix_copy_orders_follower_signed", "ix_copy_orders_open_follower", "ix_copy_orders_open"):
            batch_op.drop_index(name)
        batch_op.create_index("ix_copy_orders_status", ["status"], unique=False)
        batch_op.drop_index("ix_copy_orders_follower_queued")
        batch_op.create_index("ix_copy_orders_follower_status", ["follower_id", "status"], unique=False)
        batch_op.alter_column("paper", existing_type=sa.Boolean(), nullable=False)
    with op.batch_alter_table("follows", schema=None) as batch_op:
        batch_op.drop_constraint("mode", type_="check")
        batch_op.drop_column("mode")
    with op.batch_alter_table("followers", schema=None) as batch_op:
        for name in ("venue_balance_at", "venue_balance", "max_open_exposure", "daily_usd_cap"):
            batch_op.drop_column(name)
