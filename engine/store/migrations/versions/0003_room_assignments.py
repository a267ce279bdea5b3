"""The log of room assignments: which booking held which room of a pool,
from when until when and why it ended (a pool's report per reporting
cycle reads it).  Existing bookings get their current rooms as assigned at
booking time; a cancelled or failed booking's row ends at its last status
change.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store.instants import UTCInstant

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "room_assignments",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("booking_id", sa.String(64), nullable=False),
        sa.Column("pool", sa.String(200), nullable=False),
        sa.Column("room", sa.String(200), nullable=False),
        sa.Column("assigned_at", UTCInstant, nullable=False),
        sa.Column("how", sa.String(16), nullable=False),
        sa.Column("ended_at", UTCInstant, nullable=True),
        sa.Column("ended_how", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_room_assignments"),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], ondelete="CASCADE",
                                name="fk_room_assignments_booking_id_bookings"),
        sa.CheckConstraint("how IN ('booked', 'reassigned')", name="ck_room_assignments_how"),
        sa.CheckConstraint(
            "ended_how IS NULL OR ended_how IN ('reassigned', 'cancelled', 'failed')",
            name="ck_room_assignments_ended_how"),
    )
    op.create_index("ix_room_assignments_pool_assigned_at", "room_assignments",
                    ["pool", "assigned_at"])
    op.create_index("ix_room_assignments_pool_ended_at", "room_assignments",
                    ["pool", "ended_at"])
    op.create_index("ix_room_assignments_booking_id", "room_assignments", ["booking_id"])
    # What the store knows of existing bookings: their current rooms since
    # they were booked; an inactive booking's ended with its last change.
    op.execute(
        """
        INSERT INTO room_assignments (booking_id, pool, room, assigned_at, how, ended_at,
                                      ended_how)
        SELECT r.booking_id, r.pool, r.calendar_key, b.booked_at, 'booked',
               CASE WHEN b.status IN ('cancelled', 'failed')
                    THEN (SELECT MAX(h.at) FROM booking_history h WHERE h.booking_id = b.id)
               END,
               CASE WHEN b.status IN ('cancelled', 'failed') THEN b.status END
        FROM booking_rooms r JOIN bookings b ON b.id = r.booking_id
        """
    )


def downgrade() -> None:
    op.drop_table("room_assignments")
