"""notifications: the outbox, its deliveries and the destinations (Telegram chats, Discord webhooks)

Revision ID: 0005_notifications
Revises: 0004_chain_source
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infra import db

revision = '0005_notifications'
down_revision = '0004_chain_source'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the three notification tables."""
    op.create_table('notify_destinations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=40), nullable=False),
    sa.Column('follower_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.Enum('telegram', 'discord', name='notify_channel', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('telegram_chat_id', sa.BigInteger(), nullable=True),
    sa.Column('encrypted_webhook_url', sa.Text(), nullable=True),
    sa.Column('target_hash', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=80), nullable=False),
    sa.Column('events', sa.JSON(), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('disabled_reason', sa.String(length=300), nullable=True),
    sa.Column('created_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['follower_id'], ['followers.id'], name=op.f('fk_notify_destinations_follower_id_followers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_destinations')),
    sa.UniqueConstraint('scope', 'channel', 'target_hash', name='uq_notify_destinations_target')
    )
    with op.batch_alter_table('notify_destinations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notify_destinations_follower_id'), ['follower_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notify_destinations_telegram_chat_id'), ['telegram_chat_id'], unique=False)

    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('copy_filled', 'copy_skipped', 'copy_rejected', 'copy_in_doubt', 'kill_switch_on', 'kill_switch_off', 'daemon_stale', 'daemon_recovered', 'resolution_payout', 'daily_digest', 'command_reply', name='notification_kind', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('follower_id', sa.Integer(), nullable=True),
    sa.Column('destination_id', sa.Integer(), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=160), nullable=True),
    sa.Column('created_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('routed_at', db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['destination_id'], ['notify_destinations.id'], name=op.f('fk_notifications_destination_id_notify_destinations')),
    sa.ForeignKeyConstraint(['follower_id'], ['followers.id'], name=op.f('fk_notifications_follower_id_followers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_notifications_dedupe_key'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notifications_follower_id'), ['follower_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_routed_at'), ['routed_at'], unique=False)

    op.create_table('notification_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=False),
    sa.Column('destination_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('copy_filled', 'copy_skipped', 'copy_rejected', 'copy_in_doubt', 'kill_switch_on', 'kill_switch_off', 'daemon_stale', 'daemon_recovered', 'resolution_payout', 'daily_digest', 'command_reply', name='notification_kind', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('status', sa.Enum('pending', 'sending', 'sent', 'failed', name='delivery_status', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('in_doubt', sa.Boolean(), nullable=False),
    sa.Column('next_attempt_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lease_owner', sa.String(length=120), nullable=True),
    sa.Column('lease_expires_at', db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('sent_at', db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['destination_id'], ['notify_destinations.id'], name=op.f('fk_notification_deliveries_destination_id_notify_destinations')),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], name=op.f('fk_notification_deliveries_notification_id_notifications')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_deliveries')),
    sa.UniqueConstraint('notification_id', 'destination_id', name='uq_notification_deliveries_pair')
    )
    with op.batch_alter_table('notification_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_deliveries_destination_id'), ['destination_id'], unique=False)
        batch_op.create_index('ix_notification_deliveries_due', ['status', 'next_attempt_at'], unique=False)



def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table('notification_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_deliveries_due')
        batch_op.drop_index(batch_op.f('ix_notification_deliveries_destination_id'))

    op.drop_table('notification_deliveries')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notifications_routed_at'))
        batch_op.drop_index(batch_op.f('ix_notifications_follower_id'))

    op.drop_table('notifications')
    with op.batch_alter_table('notify_destinations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notify_destinations_telegram_chat_id'))
        batch_op.drop_index(batch_op.f('ix_notify_destinations_follower_id'))

    op.drop_table('notify_destinations')
