"""How an instant is kept in SQL.

PostgreSQL stores ``timestamptz`` (microsecond precision, compared natively,
and what the exclusion constraint's ``tstzrange`` is built from).

SQLite has no date type, so an instant is an INTEGER of microseconds since
the Unix epoch (UTC).  Integers compare as numbers in the B-tree indexes, so
a window query is a plain range scan, the value round-trips a Python
``datetime`` without loss, and no text parsing happens on the hot path of
loading thousands of busy intervals.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from engine.core.model import as_utc

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    delta = as_utc(value) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


class UTCInstant(TypeDecorator[datetime]):
    """An aware UTC ``datetime`` in Python; see the module docstring for SQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return to_micros(value)
        return as_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return from_micros(int(value))
        assert isinstance(value, datetime)
        return value.astimezone(UTC)
