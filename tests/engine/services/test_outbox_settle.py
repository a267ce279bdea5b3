"""A booking never stays ``pending`` once its writes are done (issue 23).

The outbox worker runs against a store that "dies" at its k-th commit (the
commit never happens, as with ``kill -9`` just before it), for every k;
then a new worker on the same database drains again.  Each round the
booking ends ``confirmed`` by the drain alone: the last write's completion
and the confirmation are one transaction.  ``settle`` finds bookings left
``pending`` with every write done (by older code or another path) and
confirms them, leaving every other state alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.core.model import (
    AssignmentMethod,
    Attendee,
    Booking,
    BookingStatus,
    Calendar,
    CalendarKind,
    ChangeSet,
    EventType,
    Interval,
    Pool,
    RemoteEvent,
)
from engine.ports import CalendarRef, EventDraft, EventState, FreeBusy, WrittenEvent
from engine.services.availability import BusyCache
from engine.services.drafts import DELETE, Catalog, queue_writes
from engine.services.outbox import OutboxPolicy, OutboxWorker
from engine.services.sync import CalendarBinding
from engine.store import Store, UnitOfWork, migrate

NOW = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
HOLD = timedelta(minutes=5)
ZONE = "Europe/Berlin"


class Killed(BaseException):
    """The process died (not an ``Exception``: nothing in the worker catches it)."""


class RecordingConnector:
    """Writes succeed and are recorded; every room is free."""

    push_supported = False

    def __init__(self) -> None:
        self.events: dict[tuple[str, str], EventDraft] = {}

    def list_window(self, calendar: CalendarRef, window: Interval) -> ChangeSet:
        return ChangeSet(cursor="c", objects={}, full=True)

    def free_busy(self, calendars: Sequence[CalendarRef], window: Interval) -> FreeBusy:
        return FreeBusy({ref.id: () for ref in calendars})

    def events_in(self, calendar: CalendarRef, window: Interval) -> tuple[RemoteEvent, ...]:
        return ()

    def read_event(self, calendar: CalendarRef, booking_id: str, *,
                   source: str = "") -> EventState | None:
        return None

    def create_event(self, calendar: CalendarRef, draft: EventDraft) -> WrittenEvent:
        self.events[(calendar.id, draft.booking_id)] = draft
        return WrittenEvent(source=f"{calendar.id}{draft.booking_id}.ics", etag="e",
                            uid=f"calpool-{draft.booking_id}")

    update_event = create_event

    def delete_event(self, calendar: CalendarRef, booking_id: str, *, source: str = "") -> None:
        self.events.pop((calendar.id, booking_id), None)


class _DyingUnitOfWork:
    def __init__(self, inner: UnitOfWork, store: DyingStore) -> None:
        self._inner = inner
        self._store = store

    def __enter__(self) -> _DyingUnitOfWork:
        self._inner.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._inner.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def commit(self) -> None:
        self._store.commits += 1
        if self._store.commits == self._store.die_at:
            raise Killed(f"killed before commit {self._store.commits}")
        self._inner.commit()


class DyingStore:
    """The real store, except that the ``die_at``-th commit never happens."""

    def __init__(self, inner: Store, die_at: int) -> None:
        self._inner = inner
        self.die_at = die_at
        self.commits = 0

    def unit_of_work(self) -> _DyingUnitOfWork:
        return _DyingUnitOfWork(self._inner.unit_of_work(), self)

    def reader(self) -> UnitOfWork:
        return self._inner.reader()


@pytest.fixture
def store(tmp_path: Path) -> Any:
    url = f"sqlite:///{tmp_path / 'calpool.db'}"
    migrate.upgrade(url)
    with Store.open(url) as opened:
        yield opened


def _catalog(connector: RecordingConnector) -> Catalog:
    calendars = {
        "alice": Calendar("alice", CalendarKind.PERSON, ZONE, name="Alice"),
        "bob": Calendar("bob", CalendarKind.PERSON, ZONE, name="Bob"),
        "room-a": Calendar("room-a", CalendarKind.ROOM, ZONE, name="Room A"),
    }
    pools = {"rooms": Pool("rooms", ("room-a",), AssignmentMethod.PRIORITY, timezone=ZONE)}
    types = {"consult": EventType(key="consult", title="Consultation with {attendee_name}",
                                  duration=timedelta(minutes=30),
                                  step=timedelta(minutes=30), owner="alice",
                                  with_=("bob",), pools=("rooms",))}
    bindings = {key: CalendarBinding(key, CalendarRef(f"{key}/", ZONE), connector)
                for key in calendars}
    return Catalog(calendars, pools, types, bindings)


def _worker(store: Any, catalog: Catalog, name: str) -> OutboxWorker:
    return OutboxWorker(store, BusyCache(catalog.calendars), catalog,
                        policy=OutboxPolicy(hold_for=HOLD), name=name)


def _reserve(store: Store, catalog: Catalog, booking_id: str, hour: int) -> Booking:
    start = NOW + timedelta(days=1, hours=hour)
    booking = Booking(id=booking_id, event_type="consult", start=start,
                      end=start + timedelta(minutes=30), owner="alice", with_=("bob",),
                      rooms={"rooms": "room-a"}, status=BookingStatus.PENDING, booked_at=NOW,
                      attendee=Attendee("Ann", "ann@example.com"), notes="")
    with store.unit_of_work() as uow:
        uow.calendars.ensure(catalog.calendars)
        uow.bookings.reserve(booking)
        queue_writes(uow, catalog, booking, NOW)
        uow.commit()
    return booking


def _status(store: Store, booking_id: str) -> BookingStatus:
    with store.reader() as uow:
        found = uow.bookings.get(booking_id)
    assert found is not None
    return found.status


def test_a_kill_at_any_commit_of_the_writes_never_leaves_the_booking_pending(
    store: Store,
) -> None:
    """Every commit of the three writes (owner, ``with`` person, room) is a
    place to die; a drain after restart confirms the booking each time,
    without ``settle``."""
    connector = RecordingConnector()
    catalog = _catalog(connector)
    rounds = 0
    for die_at in range(1, 20):
        booking_id = f"bk-{die_at}"
        _reserve(store, catalog, booking_id, hour=die_at)
        dying = DyingStore(store, die_at)
        try:
            _worker(dying, catalog, name=f"dies-{die_at}").drain(NOW, booking_id=booking_id)
        except Killed:
            rounds += 1
        else:
            assert _status(store, booking_id) is BookingStatus.CONFIRMED
            break
        # The dead worker's claims run out; the restarted process drains.
        _worker(store, catalog, name=f"after-{die_at}").drain(NOW + HOLD, booking_id=booking_id)
        assert _status(store, booking_id) is BookingStatus.CONFIRMED, f"died at commit {die_at}"
        with store.reader() as uow:
            assert {state for state, _ in uow.outbox.for_booking(booking_id)} == {"done"}
    assert rounds >= 4  # the claim and the finish of each of the three writes


def _finish_all(store: Store, booking_id: str, *, last_state: str = "done") -> None:
    """Record every job of the booking done as a worker would, without
    touching the booking (what a kill between two transactions left)."""
    with store.unit_of_work() as uow:
        jobs = uow.outbox.claim("old", NOW, hold_for=HOLD, booking_id=booking_id, limit=50)
        for index, job in enumerate(jobs):
            if index == len(jobs) - 1 and last_state == "dead":
                uow.outbox.fail(job.id, "old", "room declined", retry_at=None)
            elif index == len(jobs) - 1 and last_state == "pending":
                uow.outbox.fail(job.id, "old", "HTTP 503", retry_at=NOW + HOLD)
            else:
                uow.outbox.complete(job.id, "old", NOW)
        uow.commit()


def test_settle_confirms_only_pending_bookings_whose_writes_are_all_done(
    store: Store,
) -> None:
    connector = RecordingConnector()
    catalog = _catalog(connector)
    worker = _worker(store, catalog, name="settler")
    # Left behind by a kill between "last job done" and "confirmed".
    _reserve(store, catalog, "stuck-1", hour=1)
    _finish_all(store, "stuck-1")
    # The same, with a delete still queued (a swapped room's old copy).
    _reserve(store, catalog, "stuck-2", hour=2)
    _finish_all(store, "stuck-2")
    with store.unit_of_work() as uow:
        uow.outbox.enqueue(DELETE, {"calendar": "room-b", "role": "room"}, due_at=NOW,
                           now=NOW, booking_id="stuck-2")
        uow.commit()
    # Not to be touched: a write still to retry, a write given up (the
    # booking fails through the worker, not here), no jobs at all, and
    # bookings already final or confirmed.
    _reserve(store, catalog, "retrying", hour=3)
    _finish_all(store, "retrying", last_state="pending")
    _reserve(store, catalog, "given-up", hour=4)
    _finish_all(store, "given-up", last_state="dead")
    _reserve(store, catalog, "cancelled", hour=5)
    _finish_all(store, "cancelled")
    _reserve(store, catalog, "confirmed", hour=6)
    _finish_all(store, "confirmed")
    with store.unit_of_work() as uow:
        uow.bookings.set_status("cancelled", BookingStatus.CANCELLED, NOW)
        uow.bookings.set_status("confirmed", BookingStatus.CONFIRMED, NOW)
        uow.commit()

    assert worker.settle(NOW) == ["stuck-1", "stuck-2"]

    assert _status(store, "stuck-1") is BookingStatus.CONFIRMED
    assert _status(store, "stuck-2") is BookingStatus.CONFIRMED
    assert _status(store, "retrying") is BookingStatus.PENDING
    assert _status(store, "given-up") is BookingStatus.PENDING
    assert _status(store, "cancelled") is BookingStatus.CANCELLED
    with store.reader() as uow:
        assert [c.status.value for c in uow.bookings.history("confirmed")] == [
            "pending", "confirmed"]
        assert uow.bookings.history("stuck-1")[-1].detail == "written to 3 calendar(s)"
    assert worker.settle(NOW) == []  # nothing twice
