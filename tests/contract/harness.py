"""What a contract case gets: a connector, a fresh calendar of it, and a
driver that edits that calendar on the provider directly.

To run the contract over another connector, add a parameter to the
``harness`` fixture in ``conftest.py`` that builds a :class:`Harness` for
it, with a :class:`ServerDriver` for its provider (the Google and Graph
fakes' drivers translate the iCalendar text the cases speak).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from engine.ports import CalendarConnector, CalendarRef


class ServerDriver(Protocol):
    """Edits the calendar on the provider directly."""

    def put(self, name: str, ics: str) -> str:
        """Store ``ics`` as object ``name`` (create or replace); return the
        source id the connector will report for it."""
        ...

    def delete(self, name: str) -> None: ...

    def put_malformed(self, name: str) -> str:
        """Store an object the provider accepts but calpool cannot read;
        return its source id."""
        ...

    def foreign_cursor(self) -> str:
        """A cursor the provider issued for another calendar (well-formed,
        but not valid here)."""
        ...


@dataclass
class Harness:
    connector: CalendarConnector
    calendar: CalendarRef
    driver: ServerDriver
    label: str
    # A connector whose credentials the provider refuses; None when the
    # provider runs without authentication in this suite.
    unauthorized: Callable[[], CalendarConnector] | None
    unreachable: Callable[[], CalendarConnector]
