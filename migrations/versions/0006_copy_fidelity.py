"""copy fidelity: late exits per follow, copies without a leader row, targets, resolution, redeem

- follows.mirror_late_exits (a leader exit seen after MAX_COPY_DELAY is still mirrored)
- copy_orders.trader_fill_id nullable + copy_orders.origin (fill | remainder | close), and an
  index on (follow_id, token_id) for the per-follow-and-token ordering rule
- follower_positions.target_size (what the follow should hold), filled with size
- markets.resolved_at, market_tokens.payout
- position_settlements, redemptions

Revision ID: 0006_copy_fidelity
Revises: 0005_notifications
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infra import db

revision = "0006_copy_fidelity"
down_revision = "0005_notifications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("follows", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mirror_late_exits", sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
    with op.batch_alter_table("copy_orders", schema=None) as batch_op:
        batch_op.alter_column("trader_fill_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column(
            "origin", sa.Enum("fill", "remainder", "close", name="copy_origin", native_enum=False,
                              create_constraint=True, length=24),
            nullable=False, server_default="fill"))
        batch_op.create_index("ix_copy_orders_follow_token", ["follow_id", "token_id"], unique=False)
    with op.batch_alter_table("follower_positions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("target_size", db.DecimalType(length=64), nullable=False,
                                      server_default="0"))
    op.execute("UPDATE follower_positions SET target_size = size")
    with op.batch_alter_table("markets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resolved_at", db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("market_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payout", db.DecimalType(length=64), nullable=True))

    op.create_table(
        "position_settlements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("follower_id", sa.Integer(), nullable=False),
        sa.Column("follow_id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.String(length=80), nullable=False),
        sa.Column("condition_id", sa.String(length=66), nullable=False),
        sa.Column("paper", sa.Boolean(), nullable=False),
        sa.Column("size", db.DecimalType(length=64), nullable=False),
        sa.Column("avg_cost", db.DecimalType(length=64), nullable=False),
        sa.Column("payout", db.DecimalType(length=64), nullable=False),
        sa.Column("realized_pnl", db.DecimalType(length=64), nullable=False),
        sa.Column("settled_at", db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["follow_id"], ["follows.id"],
                                name=op.f("fk_position_settlements_follow_id_follows")),
        sa.ForeignKeyConstraint(["follower_id"], ["followers.id"],
                                name=op.f("fk_position_settlements_follower_id_followers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_position_settlements")),
        sa.UniqueConstraint("follow_id", "token_id", "paper", name="uq_position_settlements_key"),
    )
    with op.batch_alter_table("position_settlements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_position_settlements_follower_id"), ["follower_id"],
                              unique=False)

    op.create_table(
        "redemptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("follower_id", sa.Integer(), nullable=False),
        sa.Column("condition_id", sa.String(length=66), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("status", sa.Enum("PENDING", "SIGNED", "SENT", "CONFIRMED", "FAILED", "MANUAL",
                                    name="redemption_status", native_enum=False,
                                    create_constraint=True, length=24), nullable=False),
        sa.Column("shares", db.DecimalType(length=64), nullable=False),
        sa.Column("amount", db.DecimalType(length=64), nullable=False),
        sa.Column("target", sa.String(length=42), nullable=True),
        sa.Column("nonce", sa.BigInteger(), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("raw_tx", sa.LargeBinary(), nullable=True),
        sa.Column("relayer_request", sa.JSON(), nullable=True),
        sa.Column("relayer_id", sa.String(length=80), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("confirmed_at", db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["follower_id"], ["followers.id"],
                                name=op.f("fk_redemptions_follower_id_followers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redemptions")),
        sa.UniqueConstraint("follower_id", "condition_id", name="uq_redemptions_follower_condition"),
        sa.UniqueConstraint("tx_hash", name=op.f("uq_redemptions_tx_hash")),
    )
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.create_index("ix_redemptions_status", ["status"], unique=False)


def downgrade() -> None:
    """Revert this revision (copies without a leader row are deleted first)."""
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.drop_index("ix_redemptions_status")
    op.drop_table("redemptions")
    with op.batch_alter_table("position_settlements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_position_settlements_follower_id"))
    op.drop_table("position_settlements")
    with op.batch_alter_table("market_tokens", schema=None) as batch_op:
        batch_op.drop_column("payout")
    with op.batch_alter_table("markets", schema=None) as batch_op:
        batch_op.drop_column("resolved_at")
    with op.batch_alter_table("follower_positions", schema=None) as batch_op:
        batch_op.drop_column("target_size")
    op.execute("DELETE FROM copy_order_events WHERE copy_order_id IN "
               "(SELECT id FROM copy_orders WHERE trader_fill_id IS NULL)")
    op.execute("DELETE FROM follower_fills WHERE copy_order_id IN "
               "(SELECT id FROM copy_orders WHERE trader_fill_id IS NULL)")
    op.execute("DELETE FROM copy_orders WHERE trader_fill_id IS NULL")
    with op.batch_alter_table("copy_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_copy_orders_follow_token")
        batch_op.drop_column("origin")
        batch_op.alter_column("trader_fill_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("follows", schema=None) as batch_op:
        batch_op.drop_column("mirror_late_exits")
