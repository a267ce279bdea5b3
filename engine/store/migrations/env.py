"""Alembic environment: run on the connection ``engine.store.migrate`` hands in.

calpool runs Alembic programmatically (``calpool db upgrade``), so there is
no alembic.ini; ``config.attributes["connection"]`` is always set.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from engine.store.schema import metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("run calpool's migrations through `calpool db upgrade`")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("calpool's migrations run online only")
run_migrations_online()
