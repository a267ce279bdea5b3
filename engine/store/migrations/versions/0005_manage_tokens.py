"""Manage tokens: the customer's link to cancel or reschedule one booking
(only the sha256 of each token is stored).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store.instants import UTCInstant

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "manage_tokens",
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("booking_id", sa.String(64), nullable=False),
        sa.Column("created_at", UTCInstant, nullable=False),
        sa.PrimaryKeyConstraint("token_sha256", name="pk_manage_tokens"),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], ondelete="CASCADE",
                                name="fk_manage_tokens_booking_id_bookings"),
    )
    op.create_index("ix_manage_tokens_booking_id", "manage_tokens", ["booking_id"])


def downgrade() -> None:
    op.drop_table("manage_tokens")
