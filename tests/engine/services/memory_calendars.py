"""Editing calendars of the in-memory provider behind calpool's back, as
a person with another client would: the service tests' provider side."""

from __future__ import annotations

import itertools
from datetime import datetime

from connectors.memory import MemoryEvent, MemoryProvider

_names = itertools.count(1)


def fresh_calendar(provider: MemoryProvider, stem: str) -> str:
    """A new empty calendar on ``provider``; returns its id."""
    name = f"{stem}-{next(_names)}/"
    provider.add_calendar(name)
    return name


def plain_event(uid: str, start: datetime, end: datetime, *, extra: str = "") -> MemoryEvent:
    """A single event titled ``uid``; ``extra`` may say ``TRANSP:TRANSPARENT``
    or ``STATUS:CANCELLED`` (one per line), as an iCalendar client would."""
    flags = {line.strip().upper() for line in extra.splitlines() if line.strip()}
    unknown = flags - {"TRANSP:TRANSPARENT", "STATUS:CANCELLED"}
    assert not unknown, f"plain_event cannot express {unknown}"
    return MemoryEvent(
        uid=uid,
        start=start,
        end=end,
        summary=uid,
        transparent="TRANSP:TRANSPARENT" in flags,
        cancelled="STATUS:CANCELLED" in flags,
    )


def put_event(provider: MemoryProvider, calendar_id: str, name: str, event: MemoryEvent) -> None:
    """Store ``event`` as ``name`` (create or replace)."""
    provider.put(calendar_id, name, event)


def delete_event(provider: MemoryProvider, calendar_id: str, name: str) -> None:
    assert provider.delete(calendar_id, name), f"no {name} in {calendar_id}"
