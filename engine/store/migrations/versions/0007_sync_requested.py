"""Push plumbing: the "sync requested" mark per calendar, the message ids
of push deliveries already acted on (duplicates trigger one sync), and the
provider's calendar id of each push channel (to renew and stop it).

The mark is a pair of counters: a notification raises ``requested``; a sync
that read ``requested = n`` before it fetched writes ``served = n`` in the
transaction of its batch, so a notification that arrives while a sync runs
(in this process or another that holds the lease) stays outstanding.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store.instants import UTCInstant

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sync_requests",
        sa.Column("calendar_id", RowId, nullable=False),
        sa.Column("requested", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("served", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("requested_at", UTCInstant, nullable=True),
        sa.PrimaryKeyConstraint("calendar_id", name="pk_sync_requests"),
        sa.ForeignKeyConstraint(["calendar_id"], ["calendars.id"], ondelete="CASCADE",
                                name="fk_sync_requests_calendar_id_calendars"),
    )
    op.create_table(
        "push_messages",
        sa.Column("channel_id", sa.String(200), nullable=False),
        sa.Column("message", sa.String(200), nullable=False),
        sa.Column("received_at", UTCInstant, nullable=False),
        sa.PrimaryKeyConstraint("channel_id", "message", name="pk_push_messages"),
    )
    op.create_index("ix_push_messages_received_at", "push_messages", ["received_at"])
    op.add_column(
        "push_channels", sa.Column("calendar_ref", sa.Text, nullable=False, server_default="")
    )


def downgrade() -> None:
    op.drop_column("push_channels", "calendar_ref")
    op.drop_table("push_messages")
    op.drop_table("sync_requests")
