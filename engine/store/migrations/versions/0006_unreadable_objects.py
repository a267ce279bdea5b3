"""The objects of each calendar that its connector fetched but could not
read (source → reason), kept with the calendar's sync state so status,
metrics and slot answers can name them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


# Plain ALTER TABLE on both databases (SQLite has DROP COLUMN since 3.35):
# a batch copy of ``calendars`` on SQLite would cascade-delete its events.


def upgrade() -> None:
    op.add_column("calendars", sa.Column("unreadable", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("calendars", "unreadable")
