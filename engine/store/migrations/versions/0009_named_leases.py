"""Named leases and config fingerprints (several processes on one database).

``leases`` replaces ``sync_leases``: one row per lease name
(``sync:<calendar>``, ``job:retention``, ``job:window-roll``,
``job:channels``), with its holder, expiry and last heartbeat, so jobs that
must run in one process at a time are leased like a calendar's sync.  A
sync lease in flight during the upgrade is dropped: its holder re-takes it
on its next sync (``calpool db upgrade`` runs while the daemons are down).

``config_fingerprints`` keeps each config a process ran with (the sha256 of
its document, the calendars it names, when it was first seen); the newest
one decides which calendars leave the store.  ``processes`` says which
fingerprint each running process has, for ``calpool status``.

``reservations.version`` is the calendar's version when the row last
changed, so a process's busy cache reloads only the bookings that changed
since the version it holds (rows written before are 0: a cache loads them
at start).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.store.instants import UTCInstant

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("holder", sa.String(200), nullable=True),
        sa.Column("expires_at", UTCInstant, nullable=False),
        sa.Column("heartbeat_at", UTCInstant, nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )
    op.drop_table("sync_leases")
    op.create_table(
        "config_fingerprints",
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("calendars", sa.Text, nullable=False),
        sa.Column("first_seen_at", UTCInstant, nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name="pk_config_fingerprints"),
    )
    op.create_table(
        "processes",
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False, server_default=""),
        sa.Column("started_at", UTCInstant, nullable=False),
        sa.Column("seen_at", UTCInstant, nullable=False),
        sa.PrimaryKeyConstraint("holder", name="pk_processes"),
    )
    op.add_column("reservations",
                  sa.Column("version", sa.BigInteger, nullable=False, server_default="0"))
    op.create_index("ix_reservations_calendar_key_version", "reservations",
                    ["calendar_key", "version"])


def downgrade() -> None:
    op.drop_index("ix_reservations_calendar_key_version", table_name="reservations")
    op.drop_column("reservations", "version")
    op.drop_table("processes")
    op.drop_table("config_fingerprints")
    op.create_table(
        "sync_leases",
        sa.Column("calendar_id", RowId, nullable=False),
        sa.Column("holder", sa.String(200), nullable=True),
        sa.Column("expires_at", UTCInstant, nullable=False),
        sa.PrimaryKeyConstraint("calendar_id", name="pk_sync_leases"),
        sa.ForeignKeyConstraint(["calendar_id"], ["calendars.id"], ondelete="CASCADE",
                                name="fk_sync_leases_calendar_id_calendars"),
    )
    op.drop_table("leases")
