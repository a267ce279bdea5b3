"""The sync cache: calendars with their sync state, leases, busy events, push channels.

Revision ID: 0001
Revises:
Create Date: 2026-01-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store.instants import UTCInstant

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "calendars",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("cursor", sa.Text, nullable=True),
        sa.Column("window_start", UTCInstant, nullable=True),
        sa.Column("window_end", UTCInstant, nullable=True),
        sa.Column("last_success_at", UTCInstant, nullable=True),
        sa.Column("last_attempt_at", UTCInstant, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("last_error_at", UTCInstant, nullable=True),
        sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_calendars"),
        sa.UniqueConstraint("key", name="uq_calendars_key"),
    )
    op.create_table(
        "sync_leases",
        sa.Column("calendar_id", RowId, nullable=False),
        sa.Column("holder", sa.String(200), nullable=True),
        sa.Column("expires_at", UTCInstant, nullable=False),
        sa.PrimaryKeyConstraint("calendar_id", name="pk_sync_leases"),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["calendars.id"],
            ondelete="CASCADE",
            name="fk_sync_leases_calendar_id_calendars",
        ),
    )
    op.create_table(
        "busy_events",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("calendar_id", RowId, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("instance", sa.Text, nullable=False, server_default=""),
        sa.Column("uid", sa.Text, nullable=False),
        sa.Column("start_at", UTCInstant, nullable=False),
        sa.Column("end_at", UTCInstant, nullable=False),
        sa.Column("busy", sa.Boolean, nullable=False),
        sa.Column("etag", sa.Text, nullable=False, server_default=""),
        sa.Column("booking_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_busy_events"),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["calendars.id"],
            ondelete="CASCADE",
            name="fk_busy_events_calendar_id_calendars",
        ),
        sa.UniqueConstraint(
            "calendar_id", "source", "instance", name="uq_busy_events_calendar_id_source_instance"
        ),
        sa.CheckConstraint("end_at >= start_at", name="ck_busy_events_ordered"),
    )
    op.create_index(
        "ix_busy_events_calendar_id_start_at", "busy_events", ["calendar_id", "start_at"]
    )
    op.create_table(
        "push_channels",
        sa.Column("channel_id", sa.String(200), nullable=False),
        sa.Column("calendar_id", RowId, nullable=False),
        sa.Column("resource_id", sa.Text, nullable=False, server_default=""),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("expires_at", UTCInstant, nullable=False),
        sa.Column("created_at", UTCInstant, nullable=False),
        sa.PrimaryKeyConstraint("channel_id", name="pk_push_channels"),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["calendars.id"],
            ondelete="CASCADE",
            name="fk_push_channels_calendar_id_calendars",
        ),
    )
    op.create_index("ix_push_channels_calendar_id", "push_channels", ["calendar_id"])


def downgrade() -> None:
    op.drop_table("push_channels")
    op.drop_table("busy_events")
    op.drop_table("sync_leases")
    op.drop_table("calendars")
