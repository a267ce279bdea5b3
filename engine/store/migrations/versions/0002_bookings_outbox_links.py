"""Bookings with their history and reservations, the outbox, one-time links,
idempotency keys; on PostgreSQL the exclusion constraint that keeps active
reservations of one calendar from overlapping.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store.instants import UTCInstant

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _booking_fk(table: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["booking_id"], ["bookings.id"], ondelete=ondelete, name=f"fk_{table}_booking_id_bookings"
    )


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        # Lets a GiST index combine text equality with range overlap; a trusted
        # extension, so the database owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")

    op.create_table(
        "bookings",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("start_at", UTCInstant, nullable=False),
        sa.Column("end_at", UTCInstant, nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("booked_at", UTCInstant, nullable=False),
        sa.Column("attendee_name", sa.Text, nullable=True),
        sa.Column("attendee_email", sa.Text, nullable=True),
        sa.Column("notes", sa.Text, nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_bookings"),
        sa.CheckConstraint("end_at > start_at", name="ck_bookings_ordered"),
        sa.CheckConstraint(
            "status IN ('pending', 'confirmed', 'failed', 'cancelled')", name="ck_bookings_status"
        ),
    )
    op.create_index("ix_bookings_start_at", "bookings", ["start_at"])
    op.create_index("ix_bookings_owner_start_at", "bookings", ["owner", "start_at"])

    op.create_table(
        "booking_with",
        sa.Column("booking_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("calendar_key", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("booking_id", "position", name="pk_booking_with"),
        _booking_fk("booking_with"),
    )
    op.create_table(
        "booking_rooms",
        sa.Column("booking_id", sa.String(64), nullable=False),
        sa.Column("pool", sa.String(200), nullable=False),
        sa.Column("calendar_key", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("booking_id", "pool", name="pk_booking_rooms"),
        _booking_fk("booking_rooms"),
    )
    op.create_index("ix_booking_rooms_pool_calendar_key", "booking_rooms", ["pool", "calendar_key"])
    op.create_table(
        "booking_history",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("booking_id", sa.String(64), nullable=False),
        sa.Column("at", UTCInstant, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_booking_history"),
        _booking_fk("booking_history"),
    )
    op.create_index("ix_booking_history_booking_id_id", "booking_history", ["booking_id", "id"])

    op.create_table(
        "reservations",
        sa.Column("booking_id", sa.String(64), nullable=False),
        sa.Column("calendar_key", sa.String(200), nullable=False),
        sa.Column("start_at", UTCInstant, nullable=False),
        sa.Column("end_at", UTCInstant, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("booking_id", "calendar_key", name="pk_reservations"),
        _booking_fk("reservations"),
        sa.CheckConstraint("end_at > start_at", name="ck_reservations_ordered"),
    )
    op.create_index(
        "ix_reservations_calendar_key_start_at", "reservations", ["calendar_key", "start_at"]
    )
    if postgres:
        # The database, not Python, guarantees invariant 3: two active
        # reservations of one calendar never overlap (half-open ranges, so
        # back-to-back bookings are fine).  SQLite gets the same guarantee from
        # the overlap check inside its serialized BEGIN IMMEDIATE transaction.
        op.execute(
            "ALTER TABLE reservations ADD CONSTRAINT ex_reservations_no_overlap "
            "EXCLUDE USING gist (calendar_key WITH =, tstzrange(start_at, end_at, '[)') WITH &&) "
            "WHERE (active)"
        )

    op.create_table(
        "outbox",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("booking_id", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("due_at", UTCInstant, nullable=False),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("claimed_until", UTCInstant, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", UTCInstant, nullable=False),
        sa.Column("finished_at", UTCInstant, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        _booking_fk("outbox"),
        sa.CheckConstraint("state IN ('pending', 'done', 'dead')", name="ck_outbox_state"),
    )
    op.create_index("ix_outbox_state_due_at", "outbox", ["state", "due_at"])
    op.create_index("ix_outbox_booking_id", "outbox", ["booking_id"])

    op.create_table(
        "links",
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("created_at", UTCInstant, nullable=False),
        sa.Column("expires_at", UTCInstant, nullable=False),
        sa.Column("attendee_name", sa.Text, nullable=True),
        sa.Column("attendee_email", sa.Text, nullable=True),
        sa.Column("used_at", UTCInstant, nullable=True),
        sa.Column("booking_id", sa.String(64), nullable=True),
        sa.Column("revoked_at", UTCInstant, nullable=True),
        sa.PrimaryKeyConstraint("token_sha256", name="pk_links"),
        _booking_fk("links", ondelete="SET NULL"),
    )
    op.create_index("ix_links_booking_id", "links", ["booking_id"])

    op.create_table(
        "idempotency_keys",
        sa.Column("token_name", sa.String(200), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", UTCInstant, nullable=False),
        sa.Column("response_status", sa.Integer, nullable=True),
        sa.Column("response_body", sa.Text, nullable=True),
        sa.Column("completed_at", UTCInstant, nullable=True),
        sa.PrimaryKeyConstraint("token_name", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("links")
    op.drop_table("outbox")
    op.drop_table("reservations")
    op.drop_table("booking_history")
    op.drop_table("booking_rooms")
    op.drop_table("booking_with")
    op.drop_table("bookings")
