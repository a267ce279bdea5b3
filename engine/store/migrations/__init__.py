"""Alembic environment and revisions of the calpool schema (see engine.store.migrate)."""
