"""Typed outbox jobs carry their account; a job whose account is cooling
down after a throttle waits on its own (issue 15)."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from connectors.memory import Fault, FaultKind, MemoryConnector, MemoryProvider, Operation
from engine.core.model import AssignmentMethod, BookingStatus
from engine.errors import RateLimited
from engine.services.drafts import EventJob
from engine.services.limits import AccountLimit, LimitedConnector
from engine.services.outbox import OutboxPolicy
from engine.services.sync import CalendarBinding
from engine.store import Store
from tests.engine.services.booking_harness import ANN, NOW, SLOT, consult, make_site
from tests.engine.services.test_account_limits import FakeTime


def _throttle(limit: AccountLimit, seconds: float) -> None:
    """The provider answers one call of the account with 429 Retry-After."""

    def throttled() -> None:
        raise RateLimited("429", retry_after=seconds)

    with contextlib.suppress(RateLimited):
        limit.call(throttled)


def test_a_throttled_accounts_job_does_not_hold_another_accounts_jobs(
    provider: MemoryProvider, store: Store,
) -> None:
    """alice's calendars are on an account the provider throttled for ten
    minutes; bob's on another.  bob's booking is written and confirmed in
    the same drain; alice's jobs are put back, due when the cool-down ends,
    without spending an attempt (with ``max_attempts = 1`` a spent attempt
    would fail the booking), and go through once it is over."""
    site = make_site(
        provider, store, persons=("alice", "bob"),
        pools={"rooms": (["room-a"], AssignmentMethod.PRIORITY),
               "far": (["room-f"], AssignmentMethod.PRIORITY)},
        event_types=[consult(), consult("meet", owner="bob", pools=("far",))],
        policy=OutboxPolicy(max_attempts=1))
    time = FakeTime()
    slow = LimitedConnector(MemoryConnector(provider, account="calpool"),
                            AccountLimit("slow", max_concurrent=2, timing=time.timing(10)))
    catalog = site.bookings.catalog
    bindings = dict(catalog.bindings)
    for key in ("alice", "room-a"):
        bindings[key] = CalendarBinding(key, bindings[key].ref, slow)
    assert isinstance(catalog.bindings, dict)
    catalog.bindings.update(bindings)
    _throttle(slow.limit, 600)

    first = site.bookings.book("consult", SLOT, ANN, "", NOW)
    second = site.bookings.book("meet", SLOT, ANN, "", NOW)
    report = site.bookings.outbox.drain(NOW)

    assert site.bookings.get(second.id).status is BookingStatus.CONFIRMED
    assert site.bookings.get(first.id).status is BookingStatus.PENDING
    assert report.dead == 0
    with store.reader() as uow:
        waiting = [job for state, job in uow.outbox.for_booking(first.id) if state == "pending"]
    assert len(waiting) == 2 and all(job.attempts == 0 for job in waiting)
    assert all(NOW + timedelta(seconds=590) <= job.due_at <= NOW + timedelta(seconds=610)
               for job in waiting)
    assert site.stored("alice") == [] and len(site.stored("bob")) == 1

    time.advance(600)
    site.bookings.outbox.drain(NOW + timedelta(seconds=610))
    assert site.bookings.get(first.id).status is BookingStatus.CONFIRMED
    assert len(site.stored("alice")) == 1 and len(site.stored("room-a")) == 1


def test_a_job_carries_its_kind_account_and_payload_model(
    provider: MemoryProvider, store: Store,
) -> None:
    site = make_site(provider, store)
    booking = site.bookings.book("consult", SLOT, ANN, "", NOW)
    with store.reader() as uow:
        jobs = [job for _, job in uow.outbox.for_booking(booking.id)]
    assert [job.kind for job in jobs] == ["write-event", "write-event"]
    specs = [EventJob.model_validate(job.payload) for job in jobs]
    assert [(spec.calendar, spec.role, spec.pool, spec.account) for spec in specs] == [
        ("alice", "owner", "", "calpool"), ("room-a", "room", "rooms", "calpool")]


def test_a_throttle_the_provider_answered_counts_as_an_attempt(
    provider: MemoryProvider, store: Store,
) -> None:
    """Only the limit's own refusal (nothing sent) is free: a provider that
    keeps answering 429 spends the job's attempts like any transient error,
    so the booking ends failed and compensated instead of pending for ever."""
    site = make_site(provider, store, policy=OutboxPolicy(max_attempts=2))
    provider.inject(Fault(kind=FaultKind.THROTTLED, times=50, retry_after=1,
                          operations=frozenset({Operation.CREATE})))
    booking = site.bookings.book("consult", SLOT, ANN, "", NOW)
    at = NOW
    for _ in range(4):
        site.bookings.outbox.drain(at)
        at += timedelta(minutes=31)  # past any backoff

    assert site.bookings.get(booking.id).status is BookingStatus.FAILED
