"""``calpool db upgrade``: apply the schema migrations."""

from __future__ import annotations

from daemon.commands.invocation import CommandFailed, Invocation
from engine.store.database import redacted
from engine.store.migrate import upgrade as upgrade_schema


def upgrade(invocation: Invocation) -> int:
    url = invocation.config().daemon.database_url
    try:
        upgrade_schema(url)
    except Exception as exc:
        # Whatever the driver or Alembic raised, the operator needs one line
        # naming the database, not a stack of SQLAlchemy frames.
        lines = str(exc).strip().splitlines()
        reason = lines[0] if lines else type(exc).__name__
        raise CommandFailed(f"cannot upgrade the database {redacted(url)}: {reason}") from exc
    print(f"database {redacted(url)} is at the current schema", file=invocation.out)
    return 0
