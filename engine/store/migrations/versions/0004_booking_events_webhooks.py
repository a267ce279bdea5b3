"""Booking events (created, confirmed, rescheduled, room changed, cancelled,
failed), written by the booking repository in the transaction of the
change, and the webhook deliveries made of them, one per event and
endpoint.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store.instants import UTCInstant

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "booking_events",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("booking_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("at", UTCInstant, nullable=False),
        sa.Column("dispatched", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("id", name="pk_booking_events"),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], ondelete="CASCADE",
                                name="fk_booking_events_booking_id_bookings"),
    )
    op.create_index("ix_booking_events_dispatched_id", "booking_events", ["dispatched", "id"])
    op.create_index("ix_booking_events_booking_id", "booking_events", ["booking_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("event_id", RowId, nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("due_at", UTCInstant, nullable=False),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("claimed_until", UTCInstant, nullable=True),
        sa.Column("body", sa.Text, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", UTCInstant, nullable=False),
        sa.Column("finished_at", UTCInstant, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
        sa.ForeignKeyConstraint(["event_id"], ["booking_events.id"], ondelete="CASCADE",
                                name="fk_webhook_deliveries_event_id_booking_events"),
        sa.UniqueConstraint("event_id", "endpoint", name="uq_webhook_deliveries_event_id_endpoint"),
        sa.CheckConstraint("state IN ('pending', 'done', 'failed')",
                           name="ck_webhook_deliveries_state"),
    )
    op.create_index("ix_webhook_deliveries_state_due_at", "webhook_deliveries",
                    ["state", "due_at"])


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("booking_events")
