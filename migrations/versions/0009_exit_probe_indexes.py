"""exit probes: partial indexes for the stop sweep's "has the trader exited?" questions

The stop sweep (copying.stops.find_stops) asks, for every open BUY copy, whether its trader sold
the token after the copied fill and whether a position snapshot showed the holding shrink
after the copy was queued. On the full index of trader fills (all sides) each probe read the
table for every later fill of the pair; these partial indexes hold only the rows that answer
"yes", so each probe is an index-only look (a year of 1,000 traders: the sweep's SQL 8-11 ms
before, README "Data growth").

Revision ID: 0009_exit_probe_indexes
Revises: 0008_copy_quality
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_exit_probe_indexes"
down_revision = "0008_copy_quality"
branch_labels = None
depends_on = None

SELLS = "side = 'SELL' AND activity_type = 'TRADE'"
SHRINKS = "kind IN ('POSITION_CLOSED', 'SIZE_DECREASE')"


def upgrade() -> None:
    """Add the two partial indexes."""
    with op.batch_alter_table("trader_fills", schema=None) as batch_op:
        batch_op.create_index("ix_trader_fills_sells", ["trader_id", "token_id", "occurred_at"], unique=False,
                              postgresql_where=sa.text(SELLS), sqlite_where=sa.text(SELLS))
    with op.batch_alter_table("trader_position_events", schema=None) as batch_op:
        batch_op.create_index("ix_trader_position_events_shrinks", ["trader_id", "token_id", "detected_at"],
                              unique=False, postgresql_where=sa.text(SHRINKS), sqlite_where=sa.text(SHRINKS))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("trader_position_events", schema=None) as batch_op:
        batch_op.drop_index("ix_trader_position_events_shrinks")
    with op.batch_alter_table("trader_fills", schema=None) as batch_op:
        batch_op.drop_index("ix_trader_fills_sells")
