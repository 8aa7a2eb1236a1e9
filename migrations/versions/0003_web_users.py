"""web_users and api_tokens: dashboard / HTTP API users (argon2 password hashes) and bearer tokens
(stored as SHA-256 digests)

Revision ID: 0003_web_users
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infra import db

revision = "0003_web_users"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the two tables."""
    op.create_table(
        "web_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.Enum("admin", "follower", name="user_role", native_enum=False,
                                  create_constraint=True, length=24), nullable=False),
        sa.Column("follower_id", sa.Integer(), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("password_changed_at", db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role = 'admin' OR follower_id IS NOT NULL",
                           name=op.f("ck_web_users_follower_has_wallet")),
        sa.ForeignKeyConstraint(["follower_id"], ["followers.id"],
                                name=op.f("fk_web_users_follower_id_followers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_users")),
        sa.UniqueConstraint("username", name=op.f("uq_web_users_username")),
    )
    with op.batch_alter_table("web_users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_users_follower_id"), ["follower_id"], unique=False)
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["web_users.id"],
                                name=op.f("fk_api_tokens_user_id_web_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    """Drop the two tables."""
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_user_id"))
    op.drop_table("api_tokens")
    with op.batch_alter_table("web_users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_users_follower_id"))
    op.drop_table("web_users")
