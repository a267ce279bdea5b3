"""Delivery records: what calpool wrote (or had the owner's provider
deliver) for each booking, one row per (booking, calendar), with the
provider's object id, etag and sequence, and an invited room's answer.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store.instants import UTCInstant

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("booking_id", sa.String(64), nullable=False),
        sa.Column("calendar", sa.String(200), nullable=False),
        sa.Column("how", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("source", sa.String(1024), nullable=False, server_default=""),
        sa.Column("etag", sa.String(512), nullable=False, server_default=""),
        sa.Column("sequence", sa.Integer, nullable=False, server_default="0"),
        sa.Column("answer", sa.String(16), nullable=True),
        sa.Column("answered_at", UTCInstant, nullable=True),
        sa.Column("since", UTCInstant, nullable=False),
        sa.Column("updated_at", UTCInstant, nullable=False),
        sa.PrimaryKeyConstraint("booking_id", "calendar", name="pk_deliveries"),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], ondelete="CASCADE",
                                name="fk_deliveries_booking_id_bookings"),
        sa.CheckConstraint("how IN ('written', 'invited')", name="ck_deliveries_how"),
        sa.CheckConstraint(
            "state IN ('pending', 'written', 'accepted', 'declined', 'removed')",
            name="ck_deliveries_state"),
    )
    op.create_index("ix_deliveries_how_state", "deliveries", ["how", "state"])


def downgrade() -> None:
    op.drop_table("deliveries")
