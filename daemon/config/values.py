"""Parsers for the value syntaxes of the config file beyond plain TOML.

Each parser takes the text a user wrote and either returns the engine's value
or raises ``ValueError`` with one sentence that can follow a key path
(``calendars.alice.working_hours.mon-fri: …``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, time
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from daemon.inputs import zone_name
from engine.core.model import LocalRange

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"(\d{2}):(\d{2})")


def check_zone(name: str) -> str:
    """Return ``name`` when it is an IANA time zone known to this machine
    (the one check of ``daemon.inputs``, also for the config file)."""
    return zone_name(name)


_SIZE = re.compile(r"(\d+)(B|KiB|MiB|GiB)")
_SIZE_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


def parse_size(text: str) -> int:
    """The bytes a size string like ``"512B"``, ``"64KiB"`` or ``"1MiB"`` stands for."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a size like \"512B\", \"64KiB\" or \"1MiB\"")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


def parse_days(spec: str) -> tuple[int, ...]:
    """Weekdays (Monday = 0) of a key like ``"mon-fri"``, ``"sat"`` or ``"mon-sun"``."""
    first, _, last = spec.strip().lower().partition("-")
    if first not in DAYS or (last and last not in DAYS):
        raise ValueError(f"{spec!r} is not a day or day range like 'mon-fri' or 'sat'")
    start = DAYS.index(first)
    end = DAYS.index(last) if last else start
    if end < start:
        raise ValueError(f"day range {spec!r} runs backwards; write the days from mon to sun")
    return tuple(range(start, end + 1))


def _parse_time(text: str, *, is_end: bool) -> time:
    match = _TIME.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text.strip()!r} is not a time like '09:00'")
    hour, minute = int(match[1]), int(match[2])
    if is_end and (hour, minute) == (24, 0):
        return time(0)  # LocalRange's spelling of midnight at the end of the day
    if hour > 23 or minute > 59:
        raise ValueError(f"{text.strip()!r} is not a time of day")
    return time(hour, minute)


def parse_ranges(text: str) -> tuple[LocalRange, ...]:
    """Ranges of ``"09:00-12:30,13:30-17:00"``; ``""`` is no hours at all.

    The ranges must be in order and must not overlap, so that a typo such as
    ``"13:00-12:00"`` or a swapped pair is caught rather than silently merged.
    """
    if not text.strip():
        return ()
    ranges: list[LocalRange] = []
    for part in text.split(","):
        start_text, dash, end_text = part.partition("-")
        if not dash:
            raise ValueError(f"{part.strip()!r} is not a time range like '09:00-17:00'")
        start = _parse_time(start_text, is_end=False)
        end = _parse_time(end_text, is_end=True)
        if end != time(0) and end <= start:
            raise ValueError(f"{part.strip()!r} ends before it starts")
        if ranges and (ranges[-1].end == time(0) or start < ranges[-1].end):
            raise ValueError(f"{part.strip()!r} overlaps or precedes the range before it")
        ranges.append(LocalRange(start, end))
    return tuple(ranges)


def parse_weekly(spec: Mapping[str, str]) -> dict[int, tuple[LocalRange, ...]]:
    """The weekly hours of a ``working_hours`` table.

    Raises ``KeyedValueError`` naming the entry that is wrong.
    """
    weekly: dict[int, tuple[LocalRange, ...]] = {}
    claimed_by: dict[int, str] = {}
    for key, value in spec.items():
        try:
            days = parse_days(key)
            ranges = parse_ranges(value)
        except ValueError as exc:
            raise KeyedValueError(key, str(exc)) from None
        for day in days:
            if day in claimed_by:
                raise KeyedValueError(key, f"{DAYS[day]} is already given by {claimed_by[day]!r}")
            claimed_by[day] = key
            weekly[day] = ranges
    return weekly


def parse_overrides(spec: Mapping[str, str]) -> dict[date, tuple[LocalRange, ...]]:
    """The date overrides of an ``overrides`` table: ISO date → ranges."""
    overrides: dict[date, tuple[LocalRange, ...]] = {}
    for key, value in spec.items():
        try:
            day = date.fromisoformat(key)
        except ValueError:
            raise KeyedValueError(key, f"{key!r} is not a date like '2026-12-24'") from None
        try:
            overrides[day] = parse_ranges(value)
        except ValueError as exc:
            raise KeyedValueError(key, str(exc)) from None
    return overrides


class KeyedValueError(ValueError):
    """A bad entry of a table, carrying the entry's key for the key path."""

    def __init__(self, key: str, sentence: str) -> None:
        super().__init__(key, sentence)
        self.key = key
        self.sentence = sentence


def parse_listen(text: str) -> tuple[str, int]:
    """Host and port of ``"127.0.0.1:8740"``, ``"[::1]:8740"`` or ``":8740"``."""
    host, colon, port_text = text.rpartition(":")
    if not colon or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r} is not an address like '127.0.0.1:8740'")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: write an IPv6 address in brackets, like '[::1]:8740'")
    return host or "0.0.0.0", int(port_text)


def resolve_database_url(text: str, folder: Path) -> str:
    """The database URL with a relative SQLite path made absolute under ``folder``.

    Only SQLite and PostgreSQL are supported; SQLAlchemy parses the URL so a
    malformed one is caught here, not when the daemon first connects.
    """
    try:
        url = make_url(text)
    except ArgumentError:
        raise ValueError(
            f"{text!r} is not a database URL like 'sqlite:///calpool.db' "
            "or 'postgresql+psycopg://user@host/calpool'"
        ) from None
    backend = url.get_backend_name()
    if backend == "postgresql":
        if url.drivername not in ("postgresql", "postgresql+psycopg"):
            raise ValueError(f"{url.drivername!r}: calpool talks to PostgreSQL through "
                             "psycopg 3; write postgresql+psycopg://…")
        return text
    if backend != "sqlite":
        raise ValueError(f"{text!r}: only sqlite and postgresql databases are supported")
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return text
    path = Path(database).expanduser()
    if not path.is_absolute():
        path = folder / path
    return url.set(database=str(path)).render_as_string(hide_password=False)
