"""Schema migrations, run programmatically (``calpool db upgrade``).

Revisions live in ``migrations/versions`` (``0001`` the sync cache, ``0002``
bookings, outbox, links and idempotency keys).  There is no alembic.ini:
the configuration is built here and Alembic runs on our own engine, so the
SQLite pragmas and ``BEGIN IMMEDIATE`` apply to migrations too.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from engine.store.database import READ_ONLY_OPTION, create_store_engine, redacted, unreachable
from engine.store.errors import SchemaNotCurrent

MIGRATIONS = Path(__file__).with_name("migrations")
UPGRADE_COMMAND = "calpool db upgrade"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    """The revision this code needs."""
    head = _script().get_current_head()
    assert head is not None, "the migrations folder has no revision"
    return head


def revisions() -> list[str]:
    """Every known revision, oldest first."""
    return [script.revision for script in reversed(list(_script().walk_revisions()))]


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Migrate the database at ``url`` forward to ``revision``."""
    _run(url, "upgrade", revision)


def downgrade(url: str | URL, revision: str) -> None:
    """Migrate the database at ``url`` back to ``revision`` (``"base"`` = empty)."""
    _run(url, "downgrade", revision)


def _run(url: str | URL, direction: str, revision: str) -> None:
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            config = _config()
            config.attributes["connection"] = connection
            if direction == "upgrade":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
            connection.commit()
    except DBAPIError as error:
        raise unreachable(url, error) from error
    finally:
        engine.dispose()


def current_revision(url: str | URL) -> str | None:
    """The database's revision, ``None`` when it was never migrated."""
    engine = create_store_engine(url)
    try:
        return revision_of(engine)
    finally:
        engine.dispose()


def revision_of(engine: Engine) -> str | None:
    """The revision of the database behind ``engine``; raises :class:`StoreError`
    in one sentence when the database cannot be reached."""
    try:
        with engine.connect() as connection:
            connection = connection.execution_options(**{READ_ONLY_OPTION: True})
            return MigrationContext.configure(connection).get_current_revision()
    except DBAPIError as error:
        raise unreachable(engine.url, error) from error


def check_current(engine: Engine) -> None:
    """Raise :class:`SchemaNotCurrent` unless the database is at the head revision."""
    current = revision_of(engine)
    expected = head_revision()
    if current == expected:
        return
    where = redacted(engine.url)
    if current is None:
        message = f"the database {where} has no calpool schema yet; run `{UPGRADE_COMMAND}`"
    elif current in revisions():
        message = (
            f"the database {where} is at schema revision {current} but this calpool needs "
            f"{expected}; run `{UPGRADE_COMMAND}`"
        )
    else:
        message = (
            f"the database {where} is at schema revision {current}, newer than this calpool "
            f"knows ({expected}); run the calpool version that ran `{UPGRADE_COMMAND}` on it"
        )
    raise SchemaNotCurrent(message, current=current, expected=expected)
