"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infra import db

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('daemon_heartbeats',
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=200), nullable=False),
    sa.Column('started_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_cycle_at', db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_cycle_ms', sa.Integer(), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_daemon_heartbeats'))
    )
    op.create_table('followers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('signer_address', sa.String(length=42), nullable=False),
    sa.Column('funder_address', sa.String(length=42), nullable=False),
    sa.Column('signature_type', sa.SmallInteger(), nullable=False),
    sa.Column('encrypted_private_key', sa.Text(), nullable=False),
    sa.Column('encrypted_api_creds', sa.Text(), nullable=True),
    sa.Column('api_key_id', sa.String(length=64), nullable=True),
    sa.Column('tier', sa.Enum('free', 'pro', 'elite', 'whale', name='tier', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('status', sa.Enum('active', 'paused', 'disabled', name='follower_status', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('paper_balance', db.DecimalType(length=64), nullable=True),
    sa.Column('created_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('signature_type BETWEEN 0 AND 3', name=op.f('ck_followers_signature_type')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_followers')),
    sa.UniqueConstraint('funder_address', name=op.f('uq_followers_funder_address')),
    sa.UniqueConstraint('signer_address', name=op.f('uq_followers_signer_address'))
    )
    op.create_table('markets',
    sa.Column('condition_id', sa.String(length=66), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('version', sa.String(length=2), nullable=False),
    sa.Column('tick_size', db.DecimalType(length=64), nullable=False),
    sa.Column('min_size', db.DecimalType(length=64), nullable=False),
    sa.Column('neg_risk', sa.Boolean(), nullable=False),
    sa.Column('accepting_orders', sa.Boolean(), nullable=False),
    sa.Column('closed', sa.Boolean(), nullable=False),
    sa.Column('end_date', db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('fee_rate', db.DecimalType(length=64), nullable=False),
    sa.Column('fee_exponent', db.DecimalType(length=64), nullable=False),
    sa.Column('fee_takers_only', sa.Boolean(), nullable=False),
    sa.Column('fetched_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('condition_id', name=op.f('pk_markets'))
    )
    op.create_table('shard_leases',
    sa.Column('shard', sa.String(length=16), nullable=False),
    sa.Column('owner', sa.String(length=120), nullable=False),
    sa.Column('expires_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('acquired_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('shard', name=op.f('pk_shard_leases'))
    )
    op.create_table('system_flags',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('updated_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_system_flags'))
    )
    op.create_table('traders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('wallet', sa.String(length=42), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=True),
    sa.Column('cursor_ts', sa.BigInteger(), nullable=True),
    sa.Column('seeded_at', db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_polled_at', db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_snapshot_at', db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_traders')),
    sa.UniqueConstraint('wallet', name=op.f('uq_traders_wallet'))
    )
    op.create_table('follows',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('follower_id', sa.Integer(), nullable=False),
    sa.Column('trader_id', sa.Integer(), nullable=False),
    sa.Column('copy_pct', db.DecimalType(length=64), nullable=False),
    sa.Column('max_usd_per_trade', db.DecimalType(length=64), nullable=False),
    sa.Column('max_slippage', db.DecimalType(length=64), nullable=True),
    sa.Column('daily_usd_cap', db.DecimalType(length=64), nullable=True),
    sa.Column('market_exposure_cap', db.DecimalType(length=64), nullable=True),
    sa.Column('price_min', db.DecimalType(length=64), nullable=True),
    sa.Column('price_max', db.DecimalType(length=64), nullable=True),
    sa.Column('status', sa.Enum('active', 'paused', 'removed', name='follow_status', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('started_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('CAST(copy_pct AS NUMERIC) > 0 AND CAST(copy_pct AS NUMERIC) <= 100', name=op.f('ck_follows_copy_pct_range')),
    sa.CheckConstraint('CAST(max_usd_per_trade AS NUMERIC) > 0', name=op.f('ck_follows_max_usd_positive')),
    sa.ForeignKeyConstraint(['follower_id'], ['followers.id'], name=op.f('fk_follows_follower_id_followers')),
    sa.ForeignKeyConstraint(['trader_id'], ['traders.id'], name=op.f('fk_follows_trader_id_traders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_follows')),
    sa.UniqueConstraint('follower_id', 'trader_id', name='uq_follows_follower_trader')
    )
    with op.batch_alter_table('follows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_follows_follower_id'), ['follower_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_follows_trader_id'), ['trader_id'], unique=False)

    op.create_table('market_tokens',
    sa.Column('token_id', sa.String(length=80), nullable=False),
    sa.Column('condition_id', sa.String(length=66), nullable=False),
    sa.Column('outcome', sa.String(length=200), nullable=False),
    sa.Column('outcome_index', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['condition_id'], ['markets.condition_id'], name=op.f('fk_market_tokens_condition_id_markets')),
    sa.PrimaryKeyConstraint('token_id', name=op.f('pk_market_tokens'))
    )
    with op.batch_alter_table('market_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_market_tokens_condition_id'), ['condition_id'], unique=False)

    op.create_table('trader_fills',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trader_id', sa.Integer(), nullable=False),
    sa.Column('fill_key', sa.String(length=64), nullable=False),
    sa.Column('occurrence', sa.Integer(), nullable=False),
    sa.Column('activity_type', sa.String(length=24), nullable=False),
    sa.Column('transaction_hash', sa.String(length=66), nullable=False),
    sa.Column('condition_id', sa.String(length=66), nullable=False),
    sa.Column('token_id', sa.String(length=80), nullable=False),
    sa.Column('side', sa.String(length=4), nullable=True),
    sa.Column('size', db.DecimalType(length=64), nullable=False),
    sa.Column('price', db.DecimalType(length=64), nullable=False),
    sa.Column('usdc_size', db.DecimalType(length=64), nullable=True),
    sa.Column('outcome', sa.String(length=200), nullable=False),
    sa.Column('outcome_index', sa.Integer(), nullable=True),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('slug', sa.String(length=300), nullable=False),
    sa.Column('event_slug', sa.String(length=300), nullable=False),
    sa.Column('is_combo', sa.Boolean(), nullable=False),
    sa.Column('occurred_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('first_seen_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('raw', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['trader_id'], ['traders.id'], name=op.f('fk_trader_fills_trader_id_traders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trader_fills')),
    sa.UniqueConstraint('trader_id', 'fill_key', name='uq_trader_fills_identity')
    )
    with op.batch_alter_table('trader_fills', schema=None) as batch_op:
        batch_op.create_index('ix_trader_fills_trader_time', ['trader_id', 'occurred_at'], unique=False)

    op.create_table('trader_position_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trader_id', sa.Integer(), nullable=False),
    sa.Column('token_id', sa.String(length=80), nullable=False),
    sa.Column('kind', sa.Enum('NEW_POSITION', 'SIZE_INCREASE', 'SIZE_DECREASE', 'POSITION_CLOSED', name='position_event_kind', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('old_size', db.DecimalType(length=64), nullable=False),
    sa.Column('new_size', db.DecimalType(length=64), nullable=False),
    sa.Column('detected_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('handled_at', db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['trader_id'], ['traders.id'], name=op.f('fk_trader_position_events_trader_id_traders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trader_position_events'))
    )
    with op.batch_alter_table('trader_position_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_trader_position_events_trader_id'), ['trader_id'], unique=False)

    op.create_table('trader_position_snapshots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trader_id', sa.Integer(), nullable=False),
    sa.Column('token_id', sa.String(length=80), nullable=False),
    sa.Column('condition_id', sa.String(length=66), nullable=False),
    sa.Column('size', db.DecimalType(length=64), nullable=False),
    sa.Column('avg_price', db.DecimalType(length=64), nullable=True),
    sa.Column('taken_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['trader_id'], ['traders.id'], name=op.f('fk_trader_position_snapshots_trader_id_traders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trader_position_snapshots'))
    )
    with op.batch_alter_table('trader_position_snapshots', schema=None) as batch_op:
        batch_op.create_index('ix_trader_snapshots_trader_time', ['trader_id', 'taken_at'], unique=False)

    op.create_table('copy_orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('follow_id', sa.Integer(), nullable=False),
    sa.Column('trader_fill_id', sa.Integer(), nullable=False),
    sa.Column('follower_id', sa.Integer(), nullable=False),
    sa.Column('side', sa.String(length=4), nullable=False),
    sa.Column('token_id', sa.String(length=80), nullable=False),
    sa.Column('condition_id', sa.String(length=66), nullable=False),
    sa.Column('trader_price', db.DecimalType(length=64), nullable=False),
    sa.Column('status', sa.Enum('QUEUED', 'CLAIMED', 'SIGNED', 'LIVE', 'PARTIAL', 'CANCELING', 'FILLED', 'REJECTED', 'IN_DOUBT', 'NOT_PLACED', 'CANCELED', 'EXPIRED', 'SKIPPED', name='copy_status', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('reason_detail', sa.Text(), nullable=True),
    sa.Column('intended_size', db.DecimalType(length=64), nullable=True),
    sa.Column('intended_price', db.DecimalType(length=64), nullable=True),
    sa.Column('order_type', sa.String(length=4), nullable=True),
    sa.Column('signed_payload', sa.LargeBinary(), nullable=True),
    sa.Column('order_hash', sa.String(length=66), nullable=True),
    sa.Column('exchange_order_id', sa.String(length=66), nullable=True),
    sa.Column('filled_size', db.DecimalType(length=64), nullable=False),
    sa.Column('avg_fill_price', db.DecimalType(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('paper', sa.Boolean(), nullable=False),
    sa.Column('lease_owner', sa.String(length=120), nullable=True),
    sa.Column('lease_expires_at', db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('queued_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('signed_at', db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('posted_at', db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acked_at', db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['follow_id'], ['follows.id'], name=op.f('fk_copy_orders_follow_id_follows')),
    sa.ForeignKeyConstraint(['follower_id'], ['followers.id'], name=op.f('fk_copy_orders_follower_id_followers')),
    sa.ForeignKeyConstraint(['trader_fill_id'], ['trader_fills.id'], name=op.f('fk_copy_orders_trader_fill_id_trader_fills')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_copy_orders')),
    sa.UniqueConstraint('order_hash', name=op.f('uq_copy_orders_order_hash')),
    sa.UniqueConstraint('trader_fill_id', 'follow_id', name='uq_copy_orders_fill_follow')
    )
    with op.batch_alter_table('copy_orders', schema=None) as batch_op:
        batch_op.create_index('ix_copy_orders_follower_status', ['follower_id', 'status'], unique=False)
        batch_op.create_index('ix_copy_orders_status', ['status'], unique=False)

    op.create_table('follower_positions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('follower_id', sa.Integer(), nullable=False),
    sa.Column('follow_id', sa.Integer(), nullable=False),
    sa.Column('token_id', sa.String(length=80), nullable=False),
    sa.Column('condition_id', sa.String(length=66), nullable=False),
    sa.Column('paper', sa.Boolean(), nullable=False),
    sa.Column('size', db.DecimalType(length=64), nullable=False),
    sa.Column('avg_cost', db.DecimalType(length=64), nullable=False),
    sa.Column('realized_pnl', db.DecimalType(length=64), nullable=False),
    sa.Column('fees_paid', db.DecimalType(length=64), nullable=False),
    sa.Column('updated_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('CAST(size AS NUMERIC) >= 0', name=op.f('ck_follower_positions_size_not_negative')),
    sa.ForeignKeyConstraint(['follow_id'], ['follows.id'], name=op.f('fk_follower_positions_follow_id_follows')),
    sa.ForeignKeyConstraint(['follower_id'], ['followers.id'], name=op.f('fk_follower_positions_follower_id_followers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_follower_positions')),
    sa.UniqueConstraint('follow_id', 'token_id', 'paper', name='uq_follower_positions_key')
    )
    with op.batch_alter_table('follower_positions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_follower_positions_follower_id'), ['follower_id'], unique=False)

    op.create_table('copy_order_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('copy_order_id', sa.Integer(), nullable=False),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('from_status', sa.String(length=24), nullable=True),
    sa.Column('to_status', sa.String(length=24), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('order_hash', sa.String(length=66), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.Column('created_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['copy_order_id'], ['copy_orders.id'], name=op.f('fk_copy_order_events_copy_order_id_copy_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_copy_order_events'))
    )
    with op.batch_alter_table('copy_order_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_copy_order_events_copy_order_id'), ['copy_order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_copy_order_events_order_hash'), ['order_hash'], unique=False)

    op.create_table('follower_fills',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('copy_order_id', sa.Integer(), nullable=False),
    sa.Column('follower_id', sa.Integer(), nullable=False),
    sa.Column('follow_id', sa.Integer(), nullable=False),
    sa.Column('trade_id', sa.String(length=80), nullable=False),
    sa.Column('order_hash', sa.String(length=66), nullable=False),
    sa.Column('token_id', sa.String(length=80), nullable=False),
    sa.Column('side', sa.String(length=4), nullable=False),
    sa.Column('size', db.DecimalType(length=64), nullable=False),
    sa.Column('price', db.DecimalType(length=64), nullable=False),
    sa.Column('fee', db.DecimalType(length=64), nullable=False),
    sa.Column('trade_status', sa.String(length=32), nullable=False),
    sa.Column('paper', sa.Boolean(), nullable=False),
    sa.Column('realized_pnl', db.DecimalType(length=64), nullable=False),
    sa.Column('filled_at', db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['copy_order_id'], ['copy_orders.id'], name=op.f('fk_follower_fills_copy_order_id_copy_orders')),
    sa.ForeignKeyConstraint(['follow_id'], ['follows.id'], name=op.f('fk_follower_fills_follow_id_follows')),
    sa.ForeignKeyConstraint(['follower_id'], ['followers.id'], name=op.f('fk_follower_fills_follower_id_followers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_follower_fills')),
    sa.UniqueConstraint('trade_id', 'order_hash', name='uq_follower_fills_trade_order')
    )
    with op.batch_alter_table('follower_fills', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_follower_fills_copy_order_id'), ['copy_order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_follower_fills_follower_id'), ['follower_id'], unique=False)



def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('follower_fills', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_follower_fills_follower_id'))
        batch_op.drop_index(batch_op.f('ix_follower_fills_copy_order_id'))

    op.drop_table('follower_fills')
    with op.batch_alter_table('copy_order_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_copy_order_events_order_hash'))
        batch_op.drop_index(batch_op.f('ix_copy_order_events_copy_order_id'))

    op.drop_table('copy_order_events')
    with op.batch_alter_table('follower_positions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_follower_positions_follower_id'))

    op.drop_table('follower_positions')
    with op.batch_alter_table('copy_orders', schema=None) as batch_op:
        batch_op.drop_index('ix_copy_orders_status')
        batch_op.drop_index('ix_copy_orders_follower_status')

    op.drop_table('copy_orders')
    with op.batch_alter_table('trader_position_snapshots', schema=None) as batch_op:
        batch_op.drop_index('ix_trader_snapshots_trader_time')

    op.drop_table('trader_position_snapshots')
    with op.batch_alter_table('trader_position_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_trader_position_events_trader_id'))

    op.drop_table('trader_position_events')
    with op.batch_alter_table('trader_fills', schema=None) as batch_op:
        batch_op.drop_index('ix_trader_fills_trader_time')

    op.drop_table('trader_fills')
    with op.batch_alter_table('market_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_market_tokens_condition_id'))

    op.drop_table('market_tokens')
    with op.batch_alter_table('follows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_follows_trader_id'))
        batch_op.drop_index(batch_op.f('ix_follows_follower_id'))

    op.drop_table('follows')
    op.drop_table('traders')
    op.drop_table('system_flags')
    op.drop_table('shard_leases')
    op.drop_table('markets')
    op.drop_table('followers')
    op.drop_table('daemon_heartbeats')
