"""The outbox worker: provider writes of bookings, retried, confirmed or
compensated.

Each job is one write into one calendar (:mod:`engine.services.drafts`).
A job is claimed in one transaction, done against the provider outside any
transaction (a provider call must never hold the database's write lock),
and its outcome recorded in another:

- ``write-event``: the booking's event into the job's calendar, built from
  the booking as it is now.  Before a room's copy is written the room is
  asked live: when something other than calpool's own event for this
  booking holds it, the room is swapped for another free member of its pool
  (reserve the new, release the old: one unit of work, with a history
  entry); no free member left → the booking fails.  When every write of a
  booking is done, it is ``confirmed``, in the transaction that records the
  last write done; :meth:`OutboxWorker.settle` confirms any booking found
  pending with every write done all the same.
- ``delete-event``: the booking's event out of the job's calendar
  (cancellation, compensation, the room swapped away).

A :class:`~engine.errors.TransientError` is retried with exponential
backoff (a provider's Retry-After honoured) up to ``max_attempts``; any other
connector error, or running out of attempts, is permanent: the booking ends
``failed`` and every calendar it was written to gets a delete job
(invariant 5: nothing half-written and unrecorded).  Writes are idempotent
(invariant 4), so a job repeated after a crash does no harm.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError

from engine.core.model import AttendeeAnswer, Booking, BookingStatus, Interval
from engine.errors import Conflict, ConnectorError, NotFound, RateLimited, TransientError
from engine.ports import CalendarConnector, CalendarRef, EventDraft, WrittenEvent
from engine.services.availability import BusyCache
from engine.services.drafts import (
    DELETE,
    OWNER,
    ROOM,
    WRITE,
    Catalog,
    EventJob,
    Target,
    draft,
    invitations,
    next_sequence,
    queue_delete,
    queue_removal,
    queue_write,
    targets,
)
from engine.services.leases import Heartbeat
from engine.services.limits import CoolingDown
from engine.services.rooms import choose_room, free_members
from engine.store import (
    Delivery,
    DeliveryHow,
    DeliveryState,
    OutboxJob,
    ReservationConflict,
    Store,
    StoreError,
    UnitOfWork,
)

log = logging.getLogger(__name__)

# A drain stops after this many batches, so a job that keeps coming due
# cannot hold a request thread or the scheduler forever.
_MAX_BATCHES = 200


@dataclass(frozen=True, slots=True)
class OutboxPolicy:
    """Retries and claims.  ``hold_for`` must outlast one provider call with
    the connector's own retries."""

    max_attempts: int = 8
    first_wait: timedelta = timedelta(seconds=5)
    max_wait: timedelta = timedelta(minutes=30)
    hold_for: timedelta = timedelta(minutes=5)
    batch: int = 10

    def retry_at(self, now: datetime, attempts: int, error: TransientError,
                 rng: random.Random) -> datetime:
        """Exponential backoff with full jitter on the upper half; a
        provider's Retry-After is a floor."""
        wait: timedelta = min(self.max_wait, self.first_wait * 2 ** max(0, attempts - 1))
        wait = wait / 2 + wait / 2 * rng.random()
        if isinstance(error, RateLimited) and error.retry_after is not None:
            wait = max(wait, timedelta(seconds=error.retry_after))
        return now + wait


@dataclass
class DrainReport:
    """What one :meth:`OutboxWorker.drain` did, job by job."""

    done: int = 0
    retried: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def jobs(self) -> int:
        return self.done + self.retried + self.dead


class _Permanent(Exception):
    """A job cannot succeed: the booking fails with ``detail``."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _KeptClaims:
    """The claims of one batch, extended from a heartbeat every third of
    ``hold_for`` while the batch runs: a batch of slow provider calls keeps
    its later jobs (no second worker runs them meanwhile), and a worker that
    dies stops beating, so its jobs are claimable ``hold_for`` after its
    last beat.  The claims are measured from the drain's ``now`` plus the
    time the batch has run, so a drain at a given instant (a test's clock)
    keeps its own time base."""

    def __init__(self, store: Store, worker: str, jobs: Sequence[OutboxJob], claimed_at: datetime,
                 hold_for: timedelta) -> None:
        self._store = store
        self._worker = worker
        self._claimed_at = claimed_at
        self._hold_for = hold_for
        self._started = time.monotonic()
        self._running = {job.id for job in jobs}
        self._lock = threading.Lock()
        self._heartbeat = Heartbeat(f"the outbox claims of {worker}",
                                    hold_for.total_seconds() / 3, self._extend)

    def finished(self, job_id: int) -> None:
        with self._lock:
            self._running.discard(job_id)

    def _extend(self) -> bool:
        with self._lock:
            running = sorted(self._running)
        if not running:
            return True
        ran_for = timedelta(seconds=time.monotonic() - self._started)
        with self._store.unit_of_work() as uow:
            held = uow.outbox.extend_claims(running, self._worker,
                                            self._claimed_at + ran_for + self._hold_for)
            uow.commit()
        return held > 0

    def __enter__(self) -> _KeptClaims:
        self._heartbeat.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._heartbeat.stop()


class OutboxWorker:
    """Runs due outbox jobs; several workers (threads, processes) may drain
    at once, the store's claims keep each job with one of them."""

    def __init__(
        self,
        store: Store,
        cache: BusyCache,
        catalog: Catalog,
        *,
        policy: OutboxPolicy | None = None,
        rng: random.Random | None = None,
        name: str | None = None,
    ) -> None:
        self._store = store
        self._cache = cache
        self._catalog = catalog
        self._policy = policy or OutboxPolicy()
        self._rng = rng or random.SystemRandom()
        self.name = name or f"outbox-{uuid.uuid4().hex[:12]}"

    def drain(self, now: datetime, *, booking_id: str | None = None) -> DrainReport:
        """Run every job due at ``now`` (only ``booking_id``'s when given),
        including the jobs they queue for now (compensation, a swapped room)."""
        report = DrainReport()
        for _ in range(_MAX_BATCHES):
            with self._store.unit_of_work() as uow:
                jobs = uow.outbox.claim(self.name, now, hold_for=self._policy.hold_for,
                                        limit=self._policy.batch, booking_id=booking_id)
                uow.commit()
            if not jobs:
                break
            with _KeptClaims(self._store, self.name, jobs, now, self._policy.hold_for) as kept:
                for job in jobs:
                    self._run(job, now, report)
                    kept.finished(job.id)
        return report

    # ---- one job ----------------------------------------------------------------------------

    def _run(self, job: OutboxJob, now: datetime, report: DrainReport) -> None:
        try:
            spec = _spec(job)
            if job.kind == WRITE:
                self._write(job, spec, now)
            elif job.kind == DELETE:
                self._delete(job, spec, now)
            else:
                raise _Permanent(f"unknown outbox job kind {job.kind!r}")
            report.done += 1
        except CoolingDown as exc:
            # The account is cooling down after a throttle and its limit sent
            # nothing: this job waits it out on its own, due when the
            # cool-down ends and without spending an attempt, while other
            # accounts' jobs go on.  A throttle the provider itself answered
            # counts as an attempt (below, Retry-After as the least wait): a
            # provider that never stops throttling must not keep a job alive
            # for ever.
            until = now + timedelta(seconds=exc.retry_after or 0)
            with self._store.unit_of_work() as uow:
                uow.outbox.defer(job.id, self.name, str(exc), until=until)
                uow.commit()
            report.retried += 1
            report.errors.append(str(exc))
        except TransientError as exc:
            self._retry_or_give_up(job, now, exc, report)
        except (ConnectorError, _Permanent) as exc:
            detail = exc.detail if isinstance(exc, _Permanent) else str(exc)
            self._give_up(job, now, f"{_where(job)} failed: {detail}")
            report.dead += 1
            report.errors.append(detail)
        except Exception as exc:  # a bug must not pin the job or stop the drain
            log.exception("outbox job %d (%s) failed unexpectedly", job.id, _where(job))
            self._retry_or_give_up(job, now, TransientError(f"{type(exc).__name__}: {exc}"),
                                   report)

    def _retry_or_give_up(self, job: OutboxJob, now: datetime, error: TransientError,
                          report: DrainReport) -> None:
        report.errors.append(str(error))
        if job.attempts >= self._policy.max_attempts:
            self._give_up(job, now, f"{_where(job)} failed {job.attempts} times: {error}")
            report.dead += 1
            return
        retry_at = self._policy.retry_at(now, job.attempts, error, self._rng)
        log.info("outbox job %d (%s) will retry at %s: %s", job.id, _where(job),
                 retry_at.isoformat(), error)
        with self._store.unit_of_work() as uow:
            uow.outbox.fail(job.id, self.name, str(error), retry_at=retry_at)
            uow.commit()
        report.retried += 1

    def _write(self, job: OutboxJob, spec: EventJob, now: datetime) -> None:
        target = spec.target
        booking = self._active_booking(job)
        if booking is None or (target.role == ROOM and booking.rooms.get(target.pool)
                               != target.calendar):
            # Cancelled or failed meanwhile (its deletes are queued), or
            # the room was swapped away: nothing to write.
            self._finish(job, now)
            return
        connector, ref = self._reach(target.calendar)
        if target.role == ROOM and self._taken_on_provider(connector, ref, booking):
            self._swap_room(job, spec, booking, target, now)
            return
        if target.role == OWNER and spec.sequence == 0:
            # The rooms the owner's provider invites itself are asked before
            # the invitation goes out, as a written room is before its copy.
            swapped = self._swap_busy_invited(booking, now)
            if swapped is None:
                self._finish(job, now)  # failed (its deletes are queued) or gone
                return
            booking = swapped
        event = draft(booking, self._catalog.event_types[booking.event_type],
                      self._catalog.calendars, self._catalog.addresses,
                      sequence=spec.sequence, organizer_copy=target.role == OWNER,
                      delivers=self._catalog.delivers)
        with self._store.reader() as uow:
            record = uow.deliveries.of(booking.id, target.calendar)
        if event.sequence or (record is not None and record.source):
            written = _replace(connector, ref, event, record)
        else:
            try:
                written = connector.create_event(ref, event)
            except Conflict:
                # The id derived from the booking holds an older version of
                # this booking's event: replace it.
                written = connector.update_event(ref, event)
        self._finish(job, now, written=booking, result=written, target=target)

    def _delete(self, job: OutboxJob, spec: EventJob, now: datetime) -> None:
        if job.booking_id is None:
            raise _Permanent("a delete job without its booking")
        connector, ref = self._reach(spec.calendar)
        with self._store.reader() as uow:
            record = uow.deliveries.of(job.booking_id, spec.calendar)
        connector.delete_event(ref, job.booking_id, source=record.source if record else "")
        self._finish(job, now, removed=spec.target)

    # ---- outcomes ---------------------------------------------------------------------------

    def _finish(self, job: OutboxJob, now: datetime, *, written: Booking | None = None,
                result: WrittenEvent | None = None, target: Target | None = None,
                removed: Target | None = None) -> None:
        """Complete ``job`` and, in the same transaction, what follows from
        it: after a write, confirm the booking when it was the last one, or
        take the event back out when the booking stopped being active while
        it was written.  One transaction, so a crash cannot leave the last
        write done and its booking ``pending`` (:meth:`settle` heals what
        older code or another path left so)."""
        with self._store.unit_of_work() as uow:
            # The booking's row first: two workers finishing its last two
            # writes at once (PostgreSQL, read committed) take turns here,
            # and the later one then sees the other's completion committed.
            status = uow.bookings.lock(job.booking_id) if job.booking_id is not None else None
            uow.outbox.complete(job.id, self.name, now)
            if written is not None and result is not None and target is not None:
                self._record_write(uow, written, target, result, now)
            if removed is not None and job.booking_id is not None:
                self._record_removal(uow, job.booking_id, removed, now)
            if written is not None:
                if status is None or not status.is_active:
                    # Cancel or failure ran while this write was in flight:
                    # their deletes may have run before it, so delete again.
                    uow.outbox.enqueue(DELETE, dict(job.payload), due_at=now, now=now,
                                       booking_id=written.id)
                elif status is BookingStatus.PENDING:
                    self._confirm_if_written(uow, written.id, now)
            uow.commit()

    def _record_write(self, uow: UnitOfWork, booking: Booking, target: Target,
                      result: WrittenEvent, now: datetime) -> None:
        """The delivery record of a write; the owner's copy also carries the
        invitations, and the answers its provider reported with the write."""
        sequence = _sequence_of(uow, booking.id, target.calendar)
        uow.deliveries.written(booking.id, target.calendar, source=result.source,
                               etag=result.etag, sequence=sequence, now=now)
        if target.role != OWNER:
            return
        for invited in invitations(booking, self._catalog.delivers):
            uow.deliveries.invited(booking.id, invited.calendar, source=result.source,
                                   etag=result.etag, sequence=sequence, now=now)
            email = self._catalog.addresses.get(invited.calendar, "")
            answer = result.answers.get(email.lower()) if email else None
            if answer is not None:
                record_answer(uow, booking.id, invited.calendar, answer, now)

    def _record_removal(self, uow: UnitOfWork, booking_id: str, target: Target,
                        now: datetime) -> None:
        found = uow.deliveries.of(booking_id, target.calendar)
        if found is not None and found.state is not DeliveryState.DECLINED:
            uow.deliveries.removed(booking_id, target.calendar, now)
        if target.role == OWNER:  # the invitations go with the owner's event
            for record in uow.deliveries.for_booking(booking_id):
                if (record.how is DeliveryHow.INVITED
                        and record.state not in (DeliveryState.DECLINED, DeliveryState.REMOVED)):
                    uow.deliveries.removed(booking_id, record.calendar, now)

    def settle(self, now: datetime) -> list[str]:
        """Confirm every booking still ``pending`` although all its writes
        are done, and return their ids.  :meth:`_finish` confirms in the
        transaction of the last write, so this finds only what a crash of
        older code, or a path that forgot, left behind; the scheduler runs
        it with every drain so such a booking never stays pending for good."""
        with self._store.reader() as uow:
            found = uow.outbox.bookings_done_in(WRITE, BookingStatus.PENDING.value)
        settled = []
        for booking_id in found:
            with self._store.unit_of_work() as uow:
                if (uow.bookings.lock(booking_id) is BookingStatus.PENDING
                        and self._confirm_if_written(uow, booking_id, now)):
                    uow.commit()
                    settled.append(booking_id)
        if settled:
            log.warning("confirmed %d booking(s) left pending with every write done: %s",
                        len(settled), ", ".join(settled))
        return settled

    def confirm_if_done(self, uow: UnitOfWork, booking_id: str, now: datetime) -> bool:
        """Confirm a pending booking (its row locked by the caller) whose
        writes are all done and whose invited rooms have all accepted;
        ``False`` while one is not."""
        return self._confirm_if_written(uow, booking_id, now)

    def _confirm_if_written(self, uow: UnitOfWork, booking_id: str, now: datetime) -> bool:
        booking = uow.bookings.get(booking_id)
        if booking is None or not _all_written(uow, booking_id):
            return False
        invited = invitations(booking, self._catalog.delivers)
        if invited:
            records = {r.calendar: r for r in uow.deliveries.for_booking(booking_id)}
            if any(records.get(t.calendar) is None
                   or records[t.calendar].state is not DeliveryState.ACCEPTED for t in invited):
                return False
        count = len(targets(booking, self._catalog.delivers))
        detail = f"written to {count} calendar(s)"
        if invited:
            detail += f"; {len(invited)} invited, accepted"
        uow.bookings.set_status(booking_id, BookingStatus.CONFIRMED, now, detail=detail)
        return True

    def _give_up(self, job: OutboxJob, now: datetime, detail: str) -> None:
        """A permanent failure: the job is dead; a write failure fails its
        booking and compensates every calendar the booking was written to."""
        log.warning("outbox job %d gave up: %s", job.id, detail)
        with self._store.unit_of_work() as uow:
            if job.booking_id is not None:
                uow.bookings.lock(job.booking_id)  # the booking before its job, as in _finish
            uow.outbox.fail(job.id, self.name, detail, retry_at=None)
            if job.kind == WRITE and job.booking_id is not None:
                self._fail_booking(uow, job.booking_id, now, detail)
            uow.commit()

    def _fail_booking(self, uow: UnitOfWork, booking_id: str, now: datetime, detail: str) -> None:
        booking = uow.bookings.get(booking_id)
        if booking is None or not booking.status.is_active:
            return
        uow.bookings.set_status(booking_id, BookingStatus.FAILED, now, detail=detail)
        # A one-time link spent on this booking may be used again: the
        # customer got no meeting out of it (same transaction as the failure).
        uow.links.give_back(booking_id)
        queue_removal(uow, self._catalog, booking, now)

    # ---- a room busy on its provider --------------------------------------------------------

    def _taken_on_provider(
        self, connector: CalendarConnector, ref: CalendarRef, booking: Booking
    ) -> bool:
        """Whether something holds the room during the booking on its
        provider now.  calpool's own events do not count when they are this
        booking's (a repeated write) or belong to a booking that is no
        longer active (a delete still queued)."""
        window = booking.interval
        busy = connector.free_busy([ref], window).of(ref.id)
        if not any(span.overlaps(window) for span in busy):
            return False
        # Free/busy cannot tell whose event it is; a plain read of the
        # window can (without opening a sync round on the provider).
        owners = {event.booking_id for event in connector.events_in(ref, window)
                  if event.busy and Interval(event.start, event.end).overlaps(window)}
        if None in owners:
            return True
        others = {found for found in owners if found is not None and found != booking.id}
        if not others:
            return False
        with self._store.reader() as uow:
            return any(
                (other_booking := uow.bookings.get(other)) is not None
                and other_booking.status.is_active
                for other in others
            )

    def _swap_room(self, job: OutboxJob, spec: EventJob, booking: Booking, target: Target,
                   now: datetime) -> None:
        tried = (*spec.tried, target.calendar)
        candidates = self.free_candidates(booking, target.pool, tried)
        with self._store.unit_of_work() as uow:
            outcome = self.reassign(uow, booking, target.pool, target.calendar, candidates,
                                    why="busy on the provider", tried=tried, now=now)
            if outcome is None:
                uow.outbox.fail(job.id, self.name, "room busy on the provider", retry_at=None)
            else:
                uow.outbox.complete(job.id, self.name, now)
            uow.commit()

    def _swap_busy_invited(self, booking: Booking, now: datetime) -> Booking | None:
        """``booking`` with every invited room that something else holds on
        its provider replaced by a free member of its pool (the pool's
        method chooses, a history entry each); ``None`` when the booking
        failed for want of a free member, or is no longer active."""
        for pool, room in list(booking.rooms.items()):
            if not self._catalog.delivers(booking.owner, room):
                continue
            tried: tuple[str, ...] = ()
            while True:
                connector, ref = self._reach(room)
                if not self._taken_on_provider(connector, ref, booking):
                    break
                tried = (*tried, room)
                candidates = self.free_candidates(booking, pool, tried)
                with self._store.unit_of_work() as uow:
                    uow.bookings.lock(booking.id)
                    moved = self.reassign(uow, booking, pool, room, candidates,
                                          why="busy on the provider", tried=tried, now=now)
                    uow.commit()
                if not moved:
                    return None
                booking, room = moved, moved.rooms[pool]
        return booking

    def free_candidates(self, booking: Booking, pool_key: str,
                        tried: Sequence[str]) -> list[str]:
        """The members of ``pool_key`` free for ``booking`` now, as the cache
        knows them, but the ones already ``tried``."""
        pool = self._catalog.pools[pool_key]
        event_type = self._catalog.event_types[booking.event_type]
        self._cache.refresh(self._store)
        snapshot = self._cache.snapshot()
        return [
            member
            for member in free_members(event_type, pool, booking,
                                       calendars=self._catalog.calendars,
                                       busy=snapshot.busy, bookings=snapshot.bookings)
            if member not in tried
        ]

    def reassign(self, uow: UnitOfWork, booking: Booking, pool_key: str, leaving: str,
                 candidates: list[str], *, why: str, tried: Sequence[str],
                 now: datetime, declined: bool = False) -> Booking | Literal[False] | None:
        """Replace room ``leaving`` of ``booking`` by a free member of
        ``pool_key`` (the pool's assignment method chooses among
        ``candidates``): reserve the new, release the old, with a history
        entry naming both and ``why``; queue the new room's copy or
        invitation, take the old one's out and update the copies written
        already in place (higher SEQUENCE).  ``None``: no member is free, so
        the booking failed (compensation queued).  ``False``: the booking is
        no longer active, nothing done.  ``declined``: the room left by
        declining (or by not answering), which its record keeps saying.  In
        the caller's unit of work."""
        pool = self._catalog.pools[pool_key]
        moved = None
        while candidates and moved is None:
            chosen = choose_room(uow, pool, candidates, now=now, rng=self._rng)
            try:
                moved = uow.bookings.move(
                    booking.id, start=booking.start, end=booking.end,
                    rooms={**booking.rooms, pool.key: chosen}, at=now,
                    detail=f"room {leaving} {why}; reassigned to {chosen}",
                )
            except ReservationConflict:
                candidates.remove(chosen)
            except StoreError:
                return False  # cancelled or failed meanwhile
        if moved is None:
            if declined:
                uow.deliveries.removed(booking.id, leaving, now, state=DeliveryState.DECLINED)
            self._fail_booking(
                uow, booking.id, now,
                f"room {leaving} {why}; no other room of pool {pool.key} is free",
            )
            return None
        self._requeue_after_swap(uow, moved, Target(leaving, ROOM, pool.key), now,
                                 tuple(tried), declined=declined)
        return moved

    def _requeue_after_swap(self, uow: UnitOfWork, moved: Booking, old: Target, now: datetime,
                            tried: tuple[str, ...], *, declined: bool) -> None:
        """The new room's write (or invitation), the old room's copy out (in
        case an earlier attempt wrote there) or its invitation off, and
        updates of the copies already written, which still name the old room."""
        delivers = self._catalog.delivers
        sequence = next_sequence(uow, moved.id)
        new = Target(moved.rooms[old.pool], ROOM, old.pool)
        written = {r.calendar for r in uow.deliveries.for_booking(moved.id)
                   if r.how is DeliveryHow.WRITTEN and r.state is DeliveryState.WRITTEN}
        if delivers(moved.owner, new.calendar):
            uow.deliveries.plan(moved.id, new.calendar, DeliveryHow.INVITED, now)
        else:
            queue_write(uow, self._catalog, moved, new, now, tried=tried)
        for target in targets(moved, delivers):
            if target.calendar in written and target.calendar != new.calendar:
                queue_write(uow, self._catalog, moved, target, now, sequence=sequence)
        if delivers(moved.owner, old.calendar):
            uow.deliveries.removed(moved.id, old.calendar, now,
                                   state=DeliveryState.DECLINED if declined
                                   else DeliveryState.REMOVED)
        else:
            queue_delete(uow, self._catalog, moved, old, now)

    # ---- plumbing ---------------------------------------------------------------------------

    def _active_booking(self, job: OutboxJob) -> Booking | None:
        if job.booking_id is None:
            raise _Permanent("a write job without its booking")
        with self._store.reader() as uow:
            booking = uow.bookings.get(job.booking_id)
        return booking if booking is not None and booking.status.is_active else None

    def _reach(self, calendar: str) -> tuple[CalendarConnector, CalendarRef]:
        binding = self._catalog.bindings.get(calendar)
        if binding is None:
            raise _Permanent(f"calendar {calendar} is not configured")
        if binding.connector is None:
            raise _Permanent(f"calendar {calendar} cannot be written: {binding.reason}")
        return binding.connector, binding.ref


def _all_written(uow: UnitOfWork, booking_id: str) -> bool:
    return all(state == "done" for state, job in uow.outbox.for_booking(booking_id)
               if job.kind == WRITE)


def _spec(job: OutboxJob) -> EventJob:
    try:
        return EventJob.model_validate(job.payload)
    except ValidationError as exc:
        raise _Permanent(f"outbox job {job.id} has a malformed payload: {exc}") from exc


def _replace(connector: CalendarConnector, ref: CalendarRef, event: EventDraft,
             record: Delivery | None) -> WrittenEvent:
    """Replace the booking's event in place, where its record says it is and
    at the version recorded (conditional where the provider has etags)."""
    source = record.source if record is not None else ""
    etag = (record.etag or None) if record is not None else None
    try:
        return connector.update_event(ref, event, etag=etag, source=source)
    except NotFound:
        return connector.create_event(ref, event)
    except Conflict:
        # Changed on the provider since it was recorded (an invited room
        # answered: a new etag): replace the version there now.
        current = connector.read_event(ref, event.booking_id, source=source)
        if current is None:
            return connector.create_event(ref, event)
        return connector.update_event(ref, event, etag=current.etag, source=current.source)


def _sequence_of(uow: UnitOfWork, booking_id: str, calendar: str) -> int:
    """The SEQUENCE of the write just done: the highest queued for it."""
    return max((EventJob.model_validate(job.payload).sequence
                for _, job in uow.outbox.for_booking(booking_id)
                if job.kind == WRITE and job.payload.get("calendar") == calendar), default=0)


def record_answer(uow: UnitOfWork, booking_id: str, calendar: str, answer: AttendeeAnswer,
                  now: datetime) -> DeliveryState:
    """An invited room's answer onto its delivery record: accepted, declined,
    or still pending (needs action, tentative)."""
    state = {AttendeeAnswer.ACCEPTED: DeliveryState.ACCEPTED,
             AttendeeAnswer.DECLINED: DeliveryState.DECLINED}.get(answer, DeliveryState.PENDING)
    uow.deliveries.answered(booking_id, calendar, answer.value, state, now)
    return state


def _where(job: OutboxJob) -> str:
    payload: Any = job.payload
    return f"{job.kind} in {payload.get('calendar', '?')}"
