"""``calpool db upgrade``: apply the schema migrations;
``calpool db forget-calendar KEY``: drop a calendar no config names any more."""

from __future__ import annotations

from daemon.commands.invocation import CommandFailed, Invocation
from engine.services.housekeeping import forget_calendar as forget_stored_calendar
from engine.store import SchemaNotCurrent, Store
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


def forget_calendar(invocation: Invocation) -> int:
    """Drop calendar KEY from the store with its cached events, cursor, lease
    and push channels (its bookings stay): what a process with the newest
    config does for the calendars its config lost, for when none runs."""
    config = invocation.config()
    key = invocation.args.calendar
    if key in config.calendars:
        raise CommandFailed(f"calendar {key!r} is in this config ({config.path}); "
                            "remove it there first")
    try:
        store = Store.open(config.daemon.database_url)
    except SchemaNotCurrent as exc:
        raise CommandFailed(str(exc)) from exc
    try:
        if not forget_stored_calendar(store, key):
            raise CommandFailed(f"the database has no calendar {key!r}")
    finally:
        store.close()
    print(f"forgot calendar {key}: its cached events, cursor, lease and push channels "
          "(its bookings stay)", file=invocation.out)
    return 0
