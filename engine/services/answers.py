"""Rooms that answer: an invited room's accept or decline, and its silence.

On Google Workspace and Microsoft 365 a room of the owner's account is not
written by calpool: it is an attendee of the owner's event
(``EventDraft.invite``) and answers on its own, seconds later.  Its answer
reaches calpool three ways, each ending in :meth:`RoomAnswers.seen`:

- in the provider's reply to the owner's write (``WrittenEvent.answers``,
  recorded by the outbox in the write's own transaction);
- by :meth:`RoomAnswers.check`, a scheduled job that reads the owner's
  event (``read_event``, at the source its delivery record keeps) for every
  invited room still to answer, and now and then for the ones that
  accepted (a room may decline later);
- through sync of the owner's calendar (``RemoteEvent.answers``, the
  sync service's ``on_applied`` observer: :meth:`RoomAnswers.synced`).

What an answer does, in one unit of work with the booking's row locked:

- ``accepted``: recorded; a pending booking whose writes are all done and
  whose invited rooms have all accepted is ``confirmed``;
- ``declined``: the room is replaced by another free member of its pool,
  chosen by the pool's method (:meth:`OutboxWorker.reassign`, the path a
  room found busy before its write takes), the owner's event updated in
  place with a higher SEQUENCE, the history naming the room that left, the
  one that came and why; no member free: the booking fails and every copy
  is removed.  The same after confirmation, and the history says so;
- no answer (needs action, tentative) past ``answer_within`` after the
  invitation went out counts as declined.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from engine.core.model import AttendeeAnswer, Booking, BookingStatus, ChangeSet
from engine.errors import ConnectorError
from engine.services.drafts import Catalog
from engine.services.outbox import OutboxWorker, record_answer
from engine.store import Delivery, DeliveryHow, DeliveryState, Store

log = logging.getLogger(__name__)

# An accepted room is read again at most this often by :meth:`RoomAnswers.check`
# (sync brings a later decline sooner where the provider reports answers).
RECHECK_ACCEPTED = timedelta(minutes=10)


@dataclass
class AnswerReport:
    """What one :meth:`RoomAnswers.check` did."""

    read: int = 0
    accepted: int = 0
    reassigned: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def _span(duration: timedelta) -> str:
    """``2m``, ``90s``, ``1h``: a duration as the config writes it."""
    seconds = int(duration.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class RoomAnswers:
    """Acts on invited rooms' answers (see the module docstring)."""

    def __init__(self, store: Store, catalog: Catalog, outbox: OutboxWorker, *,
                 answer_within: timedelta = timedelta(minutes=2),
                 recheck_accepted: timedelta = RECHECK_ACCEPTED) -> None:
        self._store = store
        self._catalog = catalog
        self._outbox = outbox
        self.answer_within = answer_within
        self._recheck_accepted = recheck_accepted
        # The calendars whose events may carry an invited room's answer.
        self._inviting_owners = frozenset(
            event_type.owner
            for event_type in catalog.event_types.values()
            for pool in event_type.pools
            if pool in catalog.pools
            and any(catalog.delivers(event_type.owner, room)
                    for room in catalog.pools[pool].members)
        )

    # ---- the ways an answer comes in ---------------------------------------------------------

    def check(self, now: datetime, *, limit: int = 200) -> AnswerReport:
        """Read the owner's event of every booking with an invited room to
        hear from, and act on what each room answered (or on its silence)."""
        report = AnswerReport()
        with self._store.reader() as uow:
            waiting = uow.deliveries.awaiting_answers(
                now, accepted_before=now - self._recheck_accepted, limit=limit)
        by_booking: dict[str, list[Delivery]] = {}
        for record in waiting:
            by_booking.setdefault(record.booking_id, []).append(record)
        for booking_id, records in by_booking.items():
            try:
                answers = self._read_answers(booking_id, records[0].source, now)
            except ConnectorError as exc:
                # Unreadable now: no answer learnt; silence still counts.
                report.errors.append(f"{booking_id}: {exc}")
                answers = None
            report.read += 1
            for record in records:
                answer = None
                if answers is not None:
                    answer = answers.get(self._email(record.calendar))
                self._tally(report, self.seen(booking_id, record.calendar, answer, now))
        return report

    def synced(self, calendar: str, changes: ChangeSet, now: datetime) -> None:
        """The sync service's ``on_applied`` observer: answers on the owner's
        events that came back through sync."""
        if calendar not in self._inviting_owners:
            return
        for instances in changes.objects.values():
            for event in instances:
                if event.booking_id is None or not event.answers:
                    continue
                self._saw_version(event.booking_id, calendar, event.source, event.etag)
                self._seen_all(event.booking_id, calendar, event.answers, now)

    def _seen_all(self, booking_id: str, owner: str, answers: Mapping[str, AttendeeAnswer],
                  now: datetime) -> None:
        with self._store.reader() as uow:
            booking = uow.bookings.get(booking_id)
            records = uow.deliveries.for_booking(booking_id)
        if booking is None or booking.owner != owner or not booking.status.is_active:
            return
        rooms = set(booking.rooms.values())
        for record in records:
            if record.how is not DeliveryHow.INVITED or record.calendar not in rooms:
                continue
            answer = answers.get(self._email(record.calendar))
            if answer is not None and answer.value != record.answer:
                self.seen(booking_id, record.calendar, answer, now)

    # ---- acting on one answer ----------------------------------------------------------------

    def seen(self, booking_id: str, room: str, answer: AttendeeAnswer | None,
             now: datetime) -> str:
        """Act on ``room``'s ``answer`` (``None``: the event names no answer
        of it, or could not be read) to the invitation of ``booking_id``;
        returns what it did: ``accepted``, ``reassigned``, ``failed``,
        ``waiting`` or ``nothing``."""
        with self._store.reader() as uow:
            booking = uow.bookings.get(booking_id)
            record = uow.deliveries.of(booking_id, room)
            declined_before = [r.calendar for r in uow.deliveries.for_booking(booking_id)
                               if r.state is DeliveryState.DECLINED]
        if (booking is None or record is None or not booking.status.is_active
                or record.how is not DeliveryHow.INVITED or not record.source):
            return "nothing"
        pool = next((p for p, r in booking.rooms.items() if r == room), None)
        if pool is None:
            return "nothing"  # swapped away meanwhile
        why = self._why_leaving(booking, record, answer, now)
        if why is None:
            return self._keep(booking_id, room, answer, now)
        tried = tuple(dict.fromkeys((*declined_before, room)))
        candidates = self._outbox.free_candidates(booking, pool, tried)
        with self._store.unit_of_work() as uow:
            status = uow.bookings.lock(booking_id)
            current = uow.bookings.get(booking_id)
            if (status is None or not status.is_active or current is None
                    or current.rooms.get(pool) != room):
                return "nothing"  # cancelled, failed or swapped by another worker
            if answer is not None:
                record_answer(uow, booking_id, room, answer, now)
            moved = self._outbox.reassign(uow, current, pool, room, candidates, why=why,
                                          tried=tried, now=now, declined=True)
            uow.commit()
        if moved is False:
            return "nothing"
        log.info("booking %s: room %s %s; %s", booking_id, room, why,
                 "reassigned" if moved else "no other room free, the booking failed")
        return "reassigned" if moved else "failed"

    def _why_leaving(self, booking: Booking, record: Delivery,
                     answer: AttendeeAnswer | None, now: datetime) -> str | None:
        """Why the room leaves the booking, or ``None`` when it stays."""
        after = " after confirmation" if booking.status is BookingStatus.CONFIRMED else ""
        if answer is AttendeeAnswer.DECLINED or (
                answer is None and record.state is DeliveryState.DECLINED):
            return f"declined the invitation{after}"
        if answer is AttendeeAnswer.ACCEPTED or record.state is DeliveryState.ACCEPTED:
            return None
        if now - record.since >= self.answer_within:
            return f"did not answer within {_span(self.answer_within)}"
        return None

    def _keep(self, booking_id: str, room: str, answer: AttendeeAnswer | None,
              now: datetime) -> str:
        """The room stays: record what it answered (and when it was seen),
        and confirm the booking when this was the last thing it waited for."""
        with self._store.unit_of_work() as uow:
            status = uow.bookings.lock(booking_id)
            if status is None or not status.is_active:
                return "nothing"
            record = uow.deliveries.of(booking_id, room)
            if record is None:
                return "nothing"
            if answer is not None and answer.value != record.answer:
                record_answer(uow, booking_id, room, answer, now)
            elif answer is not None:
                uow.deliveries.looked_at(booking_id, room, now)
            confirmed = (status is BookingStatus.PENDING
                         and self._outbox.confirm_if_done(uow, booking_id, now))
            uow.commit()
        if confirmed:
            return "accepted"
        return "accepted" if answer is AttendeeAnswer.ACCEPTED else "waiting"

    # ---- plumbing ----------------------------------------------------------------------------

    def _read_answers(self, booking_id: str, source: str,
                      now: datetime) -> Mapping[str, AttendeeAnswer] | None:
        with self._store.reader() as uow:
            booking = uow.bookings.get(booking_id)
        if booking is None:
            return None
        binding = self._catalog.bindings.get(booking.owner)
        if binding is None or binding.connector is None:
            return None
        state = binding.connector.read_event(binding.ref, booking_id, source=source)
        if state is None:
            return None
        self._saw_version(booking_id, booking.owner, state.source, state.etag)
        return state.answers

    def _saw_version(self, booking_id: str, owner: str, source: str, etag: str) -> None:
        """A room's answer gave the owner's event a new version: record it,
        so the next update of that event (a swapped room) is conditional on
        the version the answer left, not refused for it."""
        if not etag:
            return
        with self._store.unit_of_work() as uow:
            uow.deliveries.saw_version(booking_id, owner, source=source, etag=etag)
            uow.commit()

    def _email(self, calendar: str) -> str:
        return self._catalog.addresses.get(calendar, "").lower()

    @staticmethod
    def _tally(report: AnswerReport, outcome: str) -> None:
        if outcome == "accepted":
            report.accepted += 1
        elif outcome == "reassigned":
            report.reassigned += 1
        elif outcome == "failed":
            report.failed += 1

