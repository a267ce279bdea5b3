"""A booking site on the in-memory provider: calendars, pools, event types,
the services over them, and a raw look at what the provider holds."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.memory import MemoryConnector, MemoryProvider, StoredObject
from engine.core.model import (
    AssignmentMethod,
    Attendee,
    Calendar,
    CalendarKind,
    ChangeSet,
    EventType,
    Interval,
    Pool,
)
from engine.ports import CalendarConnector, CalendarRef, EventDraft, WrittenEvent
from engine.services.availability import BusyCache, SlotService
from engine.services.booking import BookingService
from engine.services.drafts import Catalog
from engine.services.outbox import OutboxPolicy, OutboxWorker
from engine.services.room_answers import RoomAnswers
from engine.services.sync import CalendarBinding, SyncService, SyncWindow
from engine.store import Store
from tests.engine.services.memory_calendars import fresh_calendar
from tests.support.booking_copies import booking_key

ZONE = "Europe/Berlin"
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
# Tomorrow 10:00 UTC: on every event type's grid (whole half hours).
SLOT = (NOW + timedelta(days=1)).replace(hour=10)
ANN = Attendee("Ann Example", "ann@example.com")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Site:
    """Calendars on the memory provider and the booking services over them."""

    provider: MemoryProvider
    store: Store
    ids: dict[str, str]  # calendar key -> calendar id on the provider
    connector: CalendarConnector
    clock: Clock
    bookings: BookingService
    slots: SlotService
    sync: SyncService
    event_types: dict[str, EventType]
    pools: dict[str, Pool]
    connectors: dict[str, CalendarConnector] = field(default_factory=dict)
    answers: RoomAnswers | None = None

    def room_answers(self) -> RoomAnswers:
        assert self.answers is not None
        return self.answers

    def stored(self, key: str) -> list[StoredObject]:
        """The objects the provider holds in ``key``'s calendar, read on the
        provider directly (not through calpool's connector)."""
        return list(self.provider.objects(self.ids[key]))

    def events(self, key: str) -> list[dict[str, str]]:
        """The events of ``key``'s calendar as an iCalendar client would show
        their properties (the names the CalDAV connector writes)."""
        found = []
        for stored in self.stored(key):
            event = stored.event
            found.append({
                "UID": event.uid,
                "SUMMARY": event.summary,
                "LOCATION": event.location,
                "DESCRIPTION": event.description,
                "SEQUENCE": str(event.sequence),
                "X-CALPOOL-BOOKING": event.booking_id or "",
                "href": stored.id,
                # calpool's copies by their booking (see booking_copies), others by UID
                "name": booking_key(event.booking_id) if event.booking_id else event.uid,
                # mailto: as the iCalendar ATTENDEE value; a room without a
                # mailbox as the urn the CalDAV connector writes for it.
                "attendees": ",".join(
                    f"mailto:{p.email}" if p.email else f"urn:calpool:{p.name or 'room'}"
                    for p in event.attendees
                ),
            })
        return found

    def uids(self, key: str) -> list[str]:
        """The events in ``key``'s calendar: calpool's copies as
        :func:`uid_of` their booking, others by UID (see booking_copies)."""
        return sorted(event["name"] for event in self.events(key))

    def sync_all(self) -> None:
        for key in self.ids:
            assert not self.sync.sync_calendar(key).failed


def uid_of(booking_id: str) -> str:
    """How :meth:`Site.uids` names ``booking_id``'s copy in any calendar
    (each copy has a UID of its own; sync knows them by the booking id)."""
    return booking_key(booking_id)


def make_site(
    provider: MemoryProvider,
    store: Store,
    *,
    persons: Iterable[str] = ("alice",),
    pools: Mapping[str, tuple[list[str], AssignmentMethod]] | None = None,
    event_types: Iterable[EventType] = (),
    wrap: Callable[[CalendarConnector], CalendarConnector] = lambda c: c,
    policy: OutboxPolicy | None = None,
    invited: Iterable[str] = (),
) -> Site:
    """Calendars for ``persons`` and every pool member, fresh on the provider;
    event types default to one ``consult`` of alice with the first pool.
    The ``invited`` rooms are delivered by the owner's provider itself, as
    Google and Microsoft do within one account: attendees of the owner's
    event, with a mailbox, that answer (no copy of calpool's)."""
    invited = frozenset(invited)
    pools_spec = pools or {"rooms": (["room-a", "room-b"], AssignmentMethod.PRIORITY)}
    calendars: dict[str, Calendar] = {}
    for person in persons:
        calendars[person] = Calendar(person, CalendarKind.PERSON, ZONE, name=person.title())
    pool_models = {}
    for key, (members, method) in pools_spec.items():
        pool_models[key] = Pool(key, tuple(members), method, timezone=ZONE)
        for member in members:
            calendars[member] = Calendar(member, CalendarKind.ROOM, ZONE, name=f"Room {member}")
    types = {t.key: t for t in event_types} or {
        "consult": consult(pools=(next(iter(pools_spec)),))}
    ids = {key: fresh_calendar(provider, key) for key in calendars}
    connector = wrap(MemoryConnector(provider))
    bindings = {key: CalendarBinding(key, CalendarRef(ids[key], ZONE), connector)
                for key in calendars}
    with store.unit_of_work() as uow:
        uow.calendars.ensure(calendars)
        uow.commit()
    cache = BusyCache(calendars)
    cache.reload(store, list(calendars))
    clock = Clock(NOW)
    addresses = {key: f"{key}@example.com" for key in (*persons, *invited)}
    catalog = Catalog(calendars, pool_models, types, bindings, addresses=addresses,
                      delivers=lambda owner, other: other in invited,
                      accounts={key: "calpool" for key in calendars})
    worker = OutboxWorker(store, cache, catalog, policy=policy)
    bookings = BookingService(store, cache, catalog, worker, clock=clock)
    slots = SlotService(store, cache, calendars=calendars, pools=pool_models,
                        event_types=types, stale_after=timedelta(minutes=15))
    answers = RoomAnswers(store, catalog, worker, answer_within=timedelta(minutes=2),
                          clock=clock)
    sync = SyncService(store, bindings, window=SyncWindow(timedelta(days=1), timedelta(days=30)),
                       cache=cache, clock=clock, on_applied=answers.seen_in_sync)
    return Site(provider, store, ids, connector, clock, bookings, slots, sync, types, pool_models,
                answers=answers)


def consult(key: str = "consult", **changes: Any) -> EventType:
    base = EventType(key=key, title="Consultation with {attendee_name}",
                     description="Booked through calpool. {notes}",
                     duration=timedelta(minutes=30), step=timedelta(minutes=30),
                     owner="alice", pools=("rooms",))
    return replace(base, **changes)


class FlakyConnector:
    """The real connector, except that writes into chosen calendar ids fail
    with the given errors first (one error per call, in order)."""

    def __init__(self, inner: CalendarConnector) -> None:
        self._inner = inner
        self.failures: dict[str, list[Exception]] = {}
        self.calls: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _maybe_fail(self, calendar: CalendarRef, what: str) -> None:
        self.calls.append((what, calendar.id))
        queue = self.failures.get(calendar.id)
        if queue:
            raise queue.pop(0)

    def create_event(self, calendar: CalendarRef, draft: EventDraft) -> WrittenEvent:
        self._maybe_fail(calendar, "create")
        return self._inner.create_event(calendar, draft)

    def update_event(self, calendar: CalendarRef, draft: EventDraft, *,
                     etag: str | None = None, source: str = "") -> WrittenEvent:
        self._maybe_fail(calendar, "update")
        return self._inner.update_event(calendar, draft, etag=etag, source=source)

    def list_window(self, calendar: CalendarRef, window: Interval) -> ChangeSet:
        return self._inner.list_window(calendar, window)
