"""Named leases and the outbox."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from engine.core.model import BookingStatus
from engine.store import Store
from tests.engine.store.samples import at, make_booking

TTL = timedelta(minutes=5)


def test_lease_is_exclusive_until_it_expires(store: Store) -> None:
    with store.unit_of_work() as uow:
        assert uow.leases.try_acquire("sync:alice", "one", TTL, at(0))
        assert uow.leases.try_acquire("sync:alice", "one", TTL, at(0.01))  # the holder re-takes it
        assert not uow.leases.try_acquire("sync:alice", "two", TTL, at(0.05))
        assert uow.leases.try_acquire("job:retention", "two", TTL, at(0.05))
        assert uow.leases.holder("sync:alice", at(0.05)) == "one"
        # Expired: the lease of "one" ran out at 0.01 h + 5 min.
        assert uow.leases.try_acquire("sync:alice", "two", TTL, at(0.01) + TTL)
        assert uow.leases.holder("sync:alice", at(0.01) + TTL) == "two"
        uow.commit()


def test_renew_only_while_still_held(store: Store) -> None:
    with store.unit_of_work() as uow:
        assert uow.leases.try_acquire("sync:alice", "one", TTL, at(0))
        assert uow.leases.renew("sync:alice", "one", TTL, at(0) + TTL / 2)
        assert not uow.leases.renew("sync:alice", "two", TTL, at(0))
        # Lapsed: renewing after the expiry fails, the holder must acquire again.
        assert not uow.leases.renew("sync:alice", "one", TTL, at(0) + TTL * 2)
        assert not uow.leases.renew("sync:nobody", "one", TTL, at(0))


def test_release_frees_the_lease_for_others(store: Store) -> None:
    with store.unit_of_work() as uow:
        assert uow.leases.try_acquire("sync:alice", "one", TTL, at(0))
        assert not uow.leases.release("sync:alice", "two")
        assert uow.leases.release("sync:alice", "one")
        assert uow.leases.holder("sync:alice", at(0)) is None
        assert uow.leases.try_acquire("sync:alice", "two", TTL, at(0))


def test_a_lease_another_process_took_is_seen(store: Store, open_store: object) -> None:
    other: Store = open_store()  # type: ignore[operator]
    with store.unit_of_work() as uow:
        assert uow.leases.try_acquire("sync:alice", "one", TTL, at(0))
        uow.commit()
    with other.unit_of_work() as uow:
        assert not uow.leases.try_acquire("sync:alice", "two", TTL, at(0))


def test_held_leases_are_listed_with_holder_expiry_and_heartbeat(store: Store) -> None:
    with store.unit_of_work() as uow:
        assert uow.leases.try_acquire("job:channels", "one", TTL, at(0))
        assert uow.leases.try_acquire("sync:alice", "two", TTL, at(0))
        assert uow.leases.renew("sync:alice", "two", TTL, at(0.02))
        assert uow.leases.release("job:channels", "one")
        uow.commit()
    with store.reader() as uow:
        held = uow.leases.held(at(0.03))
        assert [(lease.name, lease.holder) for lease in held] == [("sync:alice", "two")]
        assert held[0].heartbeat_at == at(0.02)
        assert held[0].expires_at == at(0.02) + TTL
        assert uow.leases.held(at(0.02) + TTL) == []  # ran out: nobody holds it


def test_a_removed_calendar_takes_its_sync_lease_along(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.calendars.ensure(["alice"])
        assert uow.leases.try_acquire("sync:alice", "one", TTL, at(0))
        assert uow.calendars.remove("alice")
        uow.commit()
    with store.reader() as uow:
        assert uow.leases.held(at(0)) == []


def test_postgresql_skips_a_lease_another_taker_has_locked(
    store: Store, open_store: object, backend: str
) -> None:
    """FOR UPDATE SKIP LOCKED: while one process is taking a lease (its
    transaction still open), another does not queue behind it but gives up
    at once."""
    if backend != "postgresql":
        pytest.skip("SQLite serializes takers with its write lock instead")
    other: Store = open_store()  # type: ignore[operator]
    with store.unit_of_work() as uow:
        uow.leases.try_acquire("sync:alice", "one", TTL, at(0))
        uow.commit()
        assert uow.leases.try_acquire("sync:alice", "one", TTL, at(0.01))  # row locked, open
        started = time.monotonic()
        with other.unit_of_work() as second:
            assert not second.leases.try_acquire("sync:alice", "two", TTL, at(1))
        assert time.monotonic() - started < 5
        uow.commit()
    with other.unit_of_work() as second:  # expired and unlocked: taken over
        assert second.leases.try_acquire("sync:alice", "two", TTL, at(1))


def test_outbox_job_is_enqueued_with_the_booking_or_not_at_all(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.bookings.reserve(make_booking("bk-1", 1, 2))
        uow.outbox.enqueue(
            "write-events", {"booking": "bk-1"}, due_at=at(0), now=at(0), booking_id="bk-1"
        )
        # no commit: both vanish
    with store.unit_of_work() as uow:
        assert uow.outbox.pending_count() == 0
        assert uow.bookings.get("bk-1") is None


def test_claim_takes_due_jobs_oldest_first_and_counts_attempts(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.bookings.reserve(make_booking("bk-1", 1, 2))
        later = uow.outbox.enqueue("b", {"n": 2}, due_at=at(0.5), now=at(0))
        first = uow.outbox.enqueue("a", {"n": 1}, due_at=at(0), now=at(0), booking_id="bk-1")
        uow.outbox.enqueue("c", {"n": 3}, due_at=at(5), now=at(0))
        uow.commit()

        claimed = uow.outbox.claim("w1", at(1), hold_for=TTL)
        uow.commit()
    assert [(job.id, job.kind, dict(job.payload), job.attempts) for job in claimed] == [
        (first, "a", {"n": 1}, 1),
        (later, "b", {"n": 2}, 1),
    ]
    assert claimed[0].booking_id == "bk-1"
    with store.unit_of_work() as uow:
        assert uow.outbox.claim("w2", at(1), hold_for=TTL) == []  # still held by w1
        again = uow.outbox.claim("w2", at(1) + TTL, hold_for=TTL)  # w1's claim ran out
        assert [(job.id, job.attempts) for job in again] == [(first, 2), (later, 2)]
        assert not uow.outbox.complete(first, "w1", at(2))  # w1 lost it to w2
        assert uow.outbox.complete(first, "w2", at(2))


def test_a_heartbeat_extends_only_the_claims_its_worker_still_holds(store: Store) -> None:
    with store.unit_of_work() as uow:
        running = uow.outbox.enqueue("a", {}, due_at=at(0), now=at(0))
        finished = uow.outbox.enqueue("b", {}, due_at=at(0), now=at(0))
        uow.outbox.claim("w1", at(0), hold_for=TTL)
        assert uow.outbox.complete(finished, "w1", at(0))
        uow.commit()

        assert uow.outbox.extend_claims([running, finished], "w1", at(0) + 2 * TTL) == 1
        assert uow.outbox.extend_claims([running], "w2", at(0) + 9 * TTL) == 0  # not w2's
        assert uow.outbox.extend_claims([], "w1", at(0) + 9 * TTL) == 0
        uow.commit()

        assert uow.outbox.claim("w2", at(0) + TTL, hold_for=TTL) == []  # the old expiry
        (taken,) = uow.outbox.claim("w2", at(0) + 2 * TTL, hold_for=TTL)
        assert taken.id == running
        state = uow.outbox.get(finished)
        assert state is not None and state[0] == "done"


def test_failed_job_is_retried_at_its_time_or_given_up(store: Store) -> None:
    with store.unit_of_work() as uow:
        retried = uow.outbox.enqueue("a", {}, due_at=at(0), now=at(0))
        dead = uow.outbox.enqueue("b", {}, due_at=at(0), now=at(0))
        uow.outbox.claim("w", at(0), hold_for=TTL)
        assert uow.outbox.fail(retried, "w", "HTTP 503", retry_at=at(1))
        assert uow.outbox.fail(dead, "w", "room declined", retry_at=None)
        uow.commit()

        assert uow.outbox.claim("w", at(0.5), hold_for=TTL) == []
        (job,) = uow.outbox.claim("w", at(1), hold_for=TTL)
        assert (job.id, job.attempts, job.last_error) == (retried, 2, "HTTP 503")
        found = uow.outbox.get(dead)
        assert found is not None and found[0] == "dead" and found[1].last_error == "room declined"
        assert uow.outbox.pending_count() == 1


def test_jobs_of_a_booking_are_listed(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.bookings.reserve(make_booking("bk-1", 1, 2))
        uow.outbox.enqueue("write", {}, due_at=at(0), now=at(0), booking_id="bk-1")
        uow.outbox.enqueue("other", {}, due_at=at(0), now=at(0))
        uow.bookings.set_status("bk-1", BookingStatus.CONFIRMED, at(0))
        uow.commit()
        assert [(state, job.kind) for state, job in uow.outbox.for_booking("bk-1")] == [
            ("pending", "write")
        ]


def test_payload_must_be_json(store: Store) -> None:
    with store.unit_of_work() as uow, pytest.raises(TypeError):
        uow.outbox.enqueue("write", {"when": at(0)}, due_at=at(0), now=at(0))


def test_bookings_whose_jobs_of_a_kind_are_all_done_are_found(store: Store) -> None:
    """What ``OutboxWorker.settle`` looks for: a pending booking with every
    write done; one with a write pending or dead, or without writes, or in
    another status, is not listed."""
    with store.unit_of_work() as uow:
        for number, (name, states) in enumerate([
            ("all-done", ["done", "done"]), ("one-pending", ["done", "pending"]),
            ("one-dead", ["done", "dead"]), ("none", []), ("confirmed", ["done"]),
        ]):
            uow.bookings.reserve(make_booking(name, 2 * number, 2 * number + 1))
            for state in states:
                job = uow.outbox.enqueue("write", {}, due_at=at(0), now=at(0), booking_id=name)
                uow.outbox.claim("w", at(0), hold_for=TTL, booking_id=name)
                if state == "done":
                    uow.outbox.complete(job, "w", at(0))
                elif state == "dead":
                    uow.outbox.fail(job, "w", "gone", retry_at=None)
        uow.outbox.enqueue("delete", {}, due_at=at(0), now=at(0), booking_id="all-done")
        uow.bookings.set_status("confirmed", BookingStatus.CONFIRMED, at(0))
        uow.commit()
        assert uow.outbox.bookings_done_in("write", "pending") == ["all-done"]
        assert uow.outbox.bookings_done_in("write", "confirmed") == ["confirmed"]
        assert uow.bookings.lock("all-done") is BookingStatus.PENDING
        assert uow.bookings.lock("no-such-booking") is None
