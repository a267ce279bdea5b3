"""Who claimed an Idempotency-Key: ``idempotency_keys.claimed_by``, the
claiming process's holder name (as in ``processes`` and ``leases``).

A key claimed by a process that has stopped saying it runs (killed with
``kill -9``: its row in ``processes`` goes stale) is taken over by a retry
once the process counts as gone, instead of only when the claim is older
than any request could run; keys claimed before this revision have no
claimer and keep the time rule alone.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("idempotency_keys", sa.Column("claimed_by", sa.String(200), nullable=True))


def downgrade() -> None:
    op.drop_column("idempotency_keys", "claimed_by")
