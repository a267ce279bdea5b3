"""The attendee's emails: ``email_deliveries``.

One row per message to a booking's attendee (confirmed, rescheduled,
cancelled), claimed and retried like webhook deliveries.  A confirmation
row holds the raw manage token (the one place it is kept) until the
message is finished; then the token and the kept message are cleared.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store.instants import UTCInstant

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "email_deliveries",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("booking_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("manage_token", sa.String(200), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("due_at", UTCInstant, nullable=True),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("claimed_until", UTCInstant, nullable=True),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", UTCInstant, nullable=False),
        sa.Column("finished_at", UTCInstant, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_email_deliveries"),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], ondelete="CASCADE",
                                name="fk_email_deliveries_booking_id_bookings"),
        sa.CheckConstraint("state IN ('waiting', 'pending', 'done', 'failed', 'dropped')",
                           name="ck_email_deliveries_state"),
    )
    op.create_index("ix_email_deliveries_state_due_at", "email_deliveries", ["state", "due_at"])
    op.create_index("ix_email_deliveries_booking_id", "email_deliveries", ["booking_id"])


def downgrade() -> None:
    op.drop_table("email_deliveries")
