"""Rooms that answer: invited rooms accept, decline or stay silent.

On Google Workspace and Microsoft 365 a room of the owner's account is not
written by calpool: it is a resource attendee of the owner's event and its
booking assistant answers on its own, seconds later.  Its delivery record
(``invited``) keeps the last answer seen; this service reads the owner's
event back (:meth:`~engine.ports.CalendarConnector.read_event`) and acts:

- accepted: recorded; the booking is confirmed once its written copies are
  done and every invited room accepted;
- declined, or silent for longer than ``answer_within``
  (``sync.room_answer_within``): the room is replaced by another free member
  of its pool, chosen by the pool's assignment method, exactly as a room
  found busy before its write (:meth:`OutboxWorker.reassign`); the owner's
  event is updated in place with a higher SEQUENCE; no free member left →
  the booking fails and every copy is removed;
- a room that accepted and declines later (after confirmation) is handled
  the same way, and the booking's history says so.  Accepted rooms of
  bookings not over yet are looked at again, the least recently looked at
  first, ``recheck_after`` apart, so a late decline is found within a
  bounded time without reading every booking on every run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from engine.core.model import AttendeeAnswer, Booking, ChangeSet
from engine.errors import ConnectorError
from engine.services.drafts import Catalog, invitations
from engine.services.outbox import OutboxWorker, record_answer
from engine.store import Delivery, DeliveryHow, DeliveryState, Store

log = logging.getLogger(__name__)


@dataclass
class AnswersReport:
    """What one :meth:`RoomAnswers.check` did."""

    accepted: list[str] = field(default_factory=list)  # "booking/room"
    reassigned: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # bookings failed: no room left
    errors: list[str] = field(default_factory=list)


class RoomAnswers:
    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        outbox: OutboxWorker,
        *,
        answer_within: timedelta = timedelta(minutes=2),
        recheck_after: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._outbox = outbox
        self._answer_within = answer_within
        self._recheck_after = recheck_after
        self._clock = clock

    def check(self, now: datetime | None = None) -> AnswersReport:
        """Read the answers of the invited rooms that are due a look, and act."""
        now = now or self._clock()
        report = AnswersReport()
        with self._store.reader() as uow:
            due = [record for record in uow.deliveries.awaiting_answers(now)
                   if record.state is not DeliveryState.ACCEPTED
                   or now - record.updated_at >= self._recheck_after]
        by_booking: dict[str, list[Delivery]] = {}
        for record in due:
            by_booking.setdefault(record.booking_id, []).append(record)
        for booking_id, records in by_booking.items():
            try:
                self._check_booking(booking_id, records, now, report)
            except ConnectorError as exc:
                # That provider cannot tell now: the next run asks again.
                report.errors.append(f"{booking_id}: {exc}")
                log.info("room answers of booking %s unknown for now: %s", booking_id, exc)
        return report

    def seen_in_sync(self, calendar: str, changes: ChangeSet) -> None:
        """:meth:`synced` as the sync service's ``on_applied`` observer."""
        self.synced(calendar, changes)

    def synced(self, calendar: str, changes: ChangeSet) -> AnswersReport:
        """Act on the answers a sync saw on calpool's own events in an
        owner's calendar (a room that declined, even long after accepting,
        shows there first)."""
        now = self._clock()
        report = AnswersReport()
        seen: dict[str, Mapping[str, AttendeeAnswer]] = {}
        versions: dict[str, tuple[str, str]] = {}
        for instances in changes.objects.values():
            for event in instances:
                if event.booking_id and event.answers and not event.instance:
                    seen[event.booking_id] = event.answers
                    versions[event.booking_id] = (event.source, event.etag)
        if not seen:
            return report
        with self._store.reader() as uow:
            records = {booking_id: [r for r in uow.deliveries.for_booking(booking_id)
                                    if r.how is DeliveryHow.INVITED]
                       for booking_id in seen}
        for booking_id, answers in seen.items():
            changed = [r for r in records[booking_id]
                       if r.state is not DeliveryState.REMOVED
                       and (email := self._catalog.addresses.get(r.calendar, ""))
                       and answers.get(email.lower()) is not None
                       and answers[email.lower()].value != r.answer]
            if changed:
                try:
                    self._check_booking(booking_id, changed, now, report, owner_calendar=calendar,
                                        seen=answers, version=versions[booking_id])
                except ConnectorError as exc:
                    report.errors.append(f"{booking_id}: {exc}")
        return report

    def _check_booking(self, booking_id: str, records: list[Delivery], now: datetime,
                       report: AnswersReport, *, owner_calendar: str | None = None,
                       seen: Mapping[str, AttendeeAnswer] | None = None,
                       version: tuple[str, str] | None = None) -> None:
        with self._store.reader() as uow:
            booking = uow.bookings.get(booking_id)
            owner = uow.deliveries.of(booking_id, booking.owner) if booking else None
        if booking is None or not booking.status.is_active:
            return
        if owner_calendar is not None and owner_calendar != booking.owner:
            return  # an event of calpool's in a room's or a person's calendar
        current = {t.calendar: t for t in invitations(booking, self._catalog.delivers)}
        records = [r for r in records if r.calendar in current and current[r.calendar].pool]
        if not records or owner is None or owner.state is not DeliveryState.WRITTEN:
            return  # people are not swapped; the owner's event is not written yet
        if seen is not None:
            answers: Mapping[str, AttendeeAnswer] = seen
            if version is not None and version[1] and version[1] != owner.etag:
                self._saw_version(booking_id, booking.owner, *version)
        else:
            binding = self._catalog.bindings[booking.owner]
            if binding.connector is None:
                return
            state = binding.connector.read_event(binding.ref, booking_id, source=owner.source)
            answers = state.answers if state is not None else {}
            if state is not None and state.etag and state.etag != owner.etag:
                self._saw_version(booking_id, booking.owner, state.source, state.etag)
        for record in records:
            email = self._catalog.addresses.get(record.calendar, "")
            answer = answers.get(email.lower()) if email else None
            # Silent since the owner's event naming it was written.
            silent_for = now - max(record.since, owner.updated_at)
            if answer is AttendeeAnswer.DECLINED:
                why = ("declined the invitation after accepting it"
                       if record.state is DeliveryState.ACCEPTED else "declined the invitation")
            elif (record.state is DeliveryState.PENDING and answer is not AttendeeAnswer.ACCEPTED
                  and silent_for >= self._answer_within):
                why = f"did not answer within {_spoken(self._answer_within)}"
            else:
                self._note(booking, record, answer, now, report)
                continue
            self._replace(booking, current[record.calendar].pool, record.calendar, why, now,
                          report)
            return  # the booking moved: its other rooms are looked at next run

    def _saw_version(self, booking_id: str, owner: str, source: str, etag: str) -> None:
        """An answer gave the owner's event a new version: record it, so a
        swap's update is conditional on the version the answer left."""
        with self._store.unit_of_work() as uow:
            uow.deliveries.saw_version(booking_id, owner, source=source, etag=etag)
            uow.commit()

    def _note(self, booking: Booking, record: Delivery, answer: AttendeeAnswer | None,
              now: datetime, report: AnswersReport) -> None:
        """Record what the room said (or that it was looked at), and confirm
        the booking when that was the last thing it waited for."""
        with self._store.unit_of_work() as uow:
            uow.bookings.lock(booking.id)
            if answer is None:
                uow.deliveries.invited(booking.id, record.calendar, source=record.source,
                                       etag=record.etag, sequence=record.sequence, now=now)
            else:
                state = record_answer(uow, booking.id, record.calendar, answer, now)
                if state is DeliveryState.ACCEPTED and record.state is not DeliveryState.ACCEPTED:
                    report.accepted.append(f"{booking.id}/{record.calendar}")
            current = uow.bookings.get(booking.id)
            if current is not None and current.status.value == "pending":
                self._outbox.confirm_if_done(uow, booking.id, now)
            uow.commit()

    def _replace(self, booking: Booking, pool: str, room: str, why: str, now: datetime,
                 report: AnswersReport) -> None:
        with self._store.reader() as uow:
            tried = tuple(r.calendar for r in uow.deliveries.for_booking(booking.id)
                          if r.state is DeliveryState.DECLINED)
        tried = (*tried, room)
        candidates = self._outbox.free_candidates(booking, pool, tried)
        with self._store.unit_of_work() as uow:
            uow.bookings.lock(booking.id)
            outcome = self._outbox.reassign(uow, booking, pool, room, candidates, why=why,
                                            tried=tried, now=now, declined=True)
            uow.commit()
        if outcome is None:
            report.failed.append(booking.id)
            log.warning("booking %s failed: room %s %s and no other room of %s is free",
                        booking.id, room, why, pool)
        elif outcome is not False:
            report.reassigned.append(f"{booking.id}/{room}->{outcome.rooms[pool]}")
            log.info("booking %s: room %s %s; reassigned to %s", booking.id, room, why,
                     outcome.rooms[pool])
        self._outbox.drain(now, booking_id=booking.id)


def _spoken(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 60 == 0 and seconds:
        return f"{seconds // 60} min"
    return f"{seconds} s"
