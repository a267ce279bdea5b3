"""Builders shared by the memory connector's own tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.memory import MemoryConnector, MemoryEvent, MemoryProvider
from engine.core.model import Attendee, Interval
from engine.ports import CalendarRef, EventDraft

ZONE = "Europe/Berlin"
CAL = CalendarRef("rooms/spree", ZONE)
WINDOW = Interval(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))
T0 = datetime(2027, 3, 1, 8, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant in March 2027 (UTC)."""
    return datetime(2027, 3, day, hour, minute, tzinfo=UTC)


def meeting(
    uid: str, day: int = 2, hour: int = 9, *, hours: int = 1, transparent: bool = False
) -> MemoryEvent:
    """A single event of ``hours`` on ``day`` of March 2027 from ``hour`` UTC."""
    end = at(day, hour) + timedelta(hours=hours)
    return MemoryEvent(uid=uid, start=at(day, hour), end=end, transparent=transparent)


def provider_with_calendar(clock: Clock | None = None) -> MemoryProvider:
    provider = MemoryProvider(clock=clock or Clock())
    provider.add_calendar(CAL.id)
    return provider


def connected(
    clock: Clock | None = None, *, attempts: int = 2
) -> tuple[MemoryProvider, MemoryConnector]:
    provider = provider_with_calendar(clock)
    return provider, MemoryConnector(provider, attempts=attempts)


def booking(booking_id: str = "b1", *, hour: int = 9, title: str = "Consultation") -> EventDraft:
    return EventDraft(
        booking_id=booking_id,
        title=title,
        start=at(10, hour),
        end=at(10, hour, 30),
        organizer=Attendee("Alice", "alice@example.org"),
        attendees=(Attendee("Carol", "carol@example.net"),),
        rooms=(Attendee("Spree", "spree@rooms.example.org"),),
    )
