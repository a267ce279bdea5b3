"""Sample values for the store suite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.core.model import Attendee, Booking, BookingStatus, ChangeSet, Interval, RemoteEvent

T0 = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    """An instant ``hours`` after a fixed Monday morning."""
    return T0 + timedelta(hours=hours)


def make_booking(
    booking_id: str,
    start: float,
    end: float,
    *,
    owner: str = "alice",
    with_: tuple[str, ...] = (),
    rooms: dict[str, str] | None = None,
    status: BookingStatus = BookingStatus.PENDING,
    booked_at: datetime | None = None,
    event_type: str = "consultation",
) -> Booking:
    return Booking(
        id=booking_id,
        event_type=event_type,
        start=at(start),
        end=at(end),
        owner=owner,
        with_=with_,
        rooms={"berlin": "room-a"} if rooms is None else rooms,
        status=status,
        booked_at=booked_at or at(-24),
        attendee=Attendee(name="Kim Doe", email="kim@example.org"),
        notes="first visit",
    )


WINDOW = Interval(at(-24), at(24 * 90))


def event(
    source: str,
    start: float,
    end: float,
    *,
    instance: str = "",
    busy: bool = True,
    booking_id: str | None = None,
    etag: str = "",
) -> RemoteEvent:
    return RemoteEvent(
        source=source,
        uid=f"uid-{source}",
        instance=instance,
        start=at(start),
        end=at(end),
        busy=busy,
        etag=etag or f"etag-{source}-{start}",
        booking_id=booking_id,
    )


def changes(
    cursor: str, *events: RemoteEvent, gone: tuple[str, ...] = (), full: bool = False
) -> ChangeSet:
    """A change set listing ``events`` by source, plus ``gone`` sources."""
    objects: dict[str, list[RemoteEvent]] = {source: [] for source in gone}
    for each in events:
        objects.setdefault(each.source, []).append(each)
    return ChangeSet(
        cursor=cursor, objects={key: tuple(value) for key, value in objects.items()}, full=full
    )
