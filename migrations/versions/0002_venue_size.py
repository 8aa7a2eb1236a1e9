"""copy_orders.venue_size: shares of the copy's current venue order

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import json
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

from infra import db


def _order_shares(body: bytes) -> Decimal:
    """Shares of the venue order in a stored POST body (BUY: taker amount, SELL: maker amount).

    Frozen here as it was when this revision was written: a migration never imports engine code.
    """
    order = json.loads(body)["order"]
    raw = order["takerAmount"] if order["side"] == "BUY" else order["makerAmount"]
    return Decimal(raw) / Decimal(10**6)

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column and fill it from the stored signed bodies."""
    with op.batch_alter_table("copy_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("venue_size", db.DecimalType(length=64), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT id, signed_payload FROM copy_orders WHERE signed_payload IS NOT NULL")).all()
    if rows:
        table = sa.table("copy_orders", sa.column("id", sa.Integer),
                         sa.column("venue_size", db.DecimalType(length=64)))
        for cid, payload in rows:
            bind.execute(table.update().where(table.c.id == cid).values(
                venue_size=_order_shares(bytes(payload))))


def downgrade() -> None:
    """Drop the column."""
    with op.batch_alter_table("copy_orders", schema=None) as batch_op:
        batch_op.drop_column("venue_size")
