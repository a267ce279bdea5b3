"""What a contract case gets: a connector, a fresh calendar of it, and the
provider side of that calendar — a driver that edits it on the provider
directly, behind the connector's back, as a person with another client or
the provider's operator would.

Cases speak :class:`~tests.contract.calendar_data.EventSpec` to the driver;
each driver translates (CalDAV renders iCalendar, the memory driver builds
its objects, a Google or Graph fake's driver would build its JSON).  What a
provider cannot do in the suite it names in ``unsupported`` with the
reason, and the cases that need it skip there (:meth:`Harness.require`).

To run the contract over another connector, add a parameter to the
``harness`` fixture in ``conftest.py`` that builds a :class:`Harness` for
it, with a :class:`ProviderSide` for its provider.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import pytest

from engine.ports import CalendarConnector, CalendarRef
from tests.contract.calendar_data import EventSpec, When


class Capability(enum.Enum):
    """Provider-side acts that not every provider offers."""

    UNREADABLE_OBJECT = "store an object the provider accepts but calpool cannot read"
    EXPIRE_CURSOR = "forget the cursors it issued"
    PUSH_DELIVERY = "deliver push notifications"
    ROOM_DECLINE = "make a room decline an invitation"
    INVITATIONS = "invite rooms of the account itself"
    KEEP_CANCELLED = "keep a cancelled event or occurrence in the calendar (STATUS:CANCELLED)"
    CLIENT_UID = "store an event under the UID its client chose"
    CURSOR_CHECK = "tell which cursors are still current without a changes request"


class ProviderSide(Protocol):
    """Edits one calendar on the provider directly.  Events are named by
    their UID; each call returns the source id the connector will report."""

    # What this provider cannot do in the suite, and why (shown as the skip reason).
    unsupported: Mapping[Capability, str]

    def put(self, event: EventSpec) -> str:
        """Store ``event`` (create, or replace the one of its UID)."""
        ...

    def move(self, uid: str, start: When, end: When) -> str:
        """Give the single event ``uid`` new times (zone as it was put)."""
        ...

    def delete(self, uid: str) -> None: ...

    def put_unreadable(self, uid: str) -> str:
        """Store an object the provider accepts but calpool cannot read."""
        ...

    def expire_cursor(self) -> None:
        """Make the provider forget every cursor it issued for the calendar."""
        ...

    def foreign_cursor(self) -> str:
        """A cursor the provider issued for another calendar (well-formed,
        but not valid here)."""
        ...

    def decline_as_room(self, source: str, email: str) -> None:
        """The invited room ``email`` declines the event held in this
        calendar as ``source`` (its booking assistant found it busy): the
        provider records the answer on that event."""
        ...

    def pushes(self, address: str) -> list[tuple[Mapping[str, str], bytes]]:
        """The webhook deliveries (headers, body) the provider made to
        ``address`` since last asked."""
        ...


@dataclass
class Harness:
    connector: CalendarConnector
    calendar: CalendarRef
    driver: ProviderSide
    label: str
    # A connector whose credentials the provider refuses; None when the
    # provider runs without authentication in this suite.
    unauthorized: Callable[[], CalendarConnector] | None
    unreachable: Callable[[], CalendarConnector]
    # The provider's clock, for cases about expiry.
    now: Callable[[], datetime]

    def require(self, capability: Capability) -> None:
        """Skip the case where this provider cannot do ``capability``."""
        reason = self.driver.unsupported.get(capability)
        if reason is not None:
            pytest.skip(f"{self.label} cannot {capability.value}: {reason}")
