"""copy quality: crowding plans, shadow twins, event-level risk limits, market events and categories

- crowd_plans: how the copies of one leader fill share the book (copying.crowding);
- copy_orders.crowd_note: why crowding control shrank a copy;
- follows.shadow_of (a paper twin of a live follow) and follows.pause_reason; one follow per
  (follower, trader) becomes a partial unique index over the follows that are not shadows;
- followers: event_cap, category_cap, window_cap, daily_loss_stop (copying.event_risk);
- markets: event_key (neg-risk market id, else Gamma event id) and category;
- notification kind `follow_auto_paused` (auto-pause of a follow whose copied edge stays negative).

Revision ID: 0008_copy_quality
Revises: 0007_executor_safety
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infra import db

revision = "0008_copy_quality"
down_revision = "0007_executor_safety"
branch_labels = None
depends_on = None

NOT_SHADOW = "shadow_of IS NULL"
OLD_KINDS = ("copy_filled", "copy_skipped", "copy_rejected", "copy_in_doubt", "kill_switch_on", "kill_switch_off",
             "daemon_stale", "daemon_recovered", "resolution_payout", "daily_digest", "command_reply")
NEW_KINDS = (*OLD_KINDS, "follow_auto_paused")


def _kinds(values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*values, name="notification_kind", native_enum=False, create_constraint=True, length=24)


def _set_kinds(old: tuple[str, ...], new: tuple[str, ...]) -> None:
    """The CHECK of notifications.kind and notification_deliveries.kind allows `new`."""
    for table in ("notifications", "notification_deliveries"):
        name = f"ck_{table}_notification_kind"
        if op.get_bind().dialect.name == "postgresql":
            allowed = ", ".join(f"'{k}'" for k in new)
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
            op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK (kind IN ({allowed}))")
        else:  # SQLite: the table is copied with the new type (and its CHECK)
            with op.batch_alter_table(table, recreate="always") as batch_op:
                batch_op.alter_column("kind", existing_type=_kinds(old), type_=_kinds(new),
                                      existing_nullable=False)


def upgrade() -> None:
    """Add the table, the columns and the indexes."""
    op.create_table(
        "crowd_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trader_fill_id", sa.Integer(), nullable=False),
        sa.Column("paper", sa.Boolean(), nullable=False),
        sa.Column("token_id", sa.String(length=80), nullable=False),
        sa.Column("depth", db.DecimalType(length=64), nullable=False),
        sa.Column("planned", db.DecimalType(length=64), nullable=False),
        sa.Column("rotation", sa.Integer(), nullable=False),
        sa.Column("order", sa.JSON(), nullable=False),
        sa.Column("caps", sa.JSON(), nullable=False),
        sa.Column("resting", sa.Boolean(), nullable=False),
        sa.Column("created_at", db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["trader_fill_id"], ["trader_fills.id"],
                                name=op.f("fk_crowd_plans_trader_fill_id_trader_fills")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crowd_plans")),
        sa.UniqueConstraint("trader_fill_id", "paper", name="uq_crowd_plans_fill_mode"),
    )
    with op.batch_alter_table("copy_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("crowd_note", sa.String(length=300), nullable=True))
    with op.batch_alter_table("follows", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shadow_of", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("pause_reason", sa.String(length=300), nullable=True))
        batch_op.create_foreign_key(op.f("fk_follows_shadow_of_follows"), "follows", ["shadow_of"], ["id"])
        batch_op.create_index(batch_op.f("ix_follows_shadow_of"), ["shadow_of"], unique=False)
        batch_op.drop_constraint("uq_follows_follower_trader", type_="unique")
    with op.batch_alter_table("follows", schema=None) as batch_op:
        batch_op.create_index("uq_follows_follower_trader", ["follower_id", "trader_id"], unique=True,
                              postgresql_where=sa.text(NOT_SHADOW), sqlite_where=sa.text(NOT_SHADOW))
    with op.batch_alter_table("followers", schema=None) as batch_op:
        for name in ("event_cap", "category_cap", "window_cap", "daily_loss_stop"):
            batch_op.add_column(sa.Column(name, db.DecimalType(length=64), nullable=True))
    with op.batch_alter_table("markets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_key", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("category", sa.String(length=120), nullable=True))
        batch_op.create_index(batch_op.f("ix_markets_event_key"), ["event_key"], unique=False)
    _set_kinds(OLD_KINDS, NEW_KINDS)


def downgrade() -> None:
    """Drop what upgrade added (auto-pause notifications go first)."""
    op.execute("DELETE FROM notification_deliveries WHERE kind = 'follow_auto_paused'")
    op.execute("DELETE FROM notifications WHERE kind = 'follow_auto_paused'")
    _set_kinds(NEW_KINDS, OLD_KINDS)
    with op.batch_alter_table("markets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_markets_event_key"))
        batch_op.drop_column("category")
        batch_op.drop_column("event_key")
    with op.batch_alter_table("followers", schema=None) as batch_op:
        for name in ("daily_loss_stop", "window_cap", "category_cap", "event_cap"):
            batch_op.drop_column(name)
    with op.batch_alter_table("follows", schema=None) as batch_op:
        batch_op.drop_index("uq_follows_follower_trader")
    with op.batch_alter_table("follows", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_follows_follower_trader", ["follower_id", "trader_id"])
        batch_op.drop_index(batch_op.f("ix_follows_shadow_of"))
        batch_op.drop_constraint(op.f("fk_follows_shadow_of_follows"), type_="foreignkey")
        batch_op.drop_column("pause_reason")
        batch_op.drop_column("shadow_of")
    with op.batch_alter_table("copy_orders", schema=None) as batch_op:
        batch_op.drop_column("crowd_note")
    op.drop_table("crowd_plans")
