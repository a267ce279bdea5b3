"""Many writers at once: threads on SQLite (queued by BEGIN IMMEDIATE and the
busy timeout), separate connections on PostgreSQL (row locks and the
exclusion constraint).  Exactly one of the contenders for one thing wins."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from engine.core.model import Booking, Interval
from engine.store import IdempotencyState, Link, ReservationConflict, Store
from tests.engine.store.samples import at, make_booking

THREADS = 8
ROUNDS = 4
R = TypeVar("R")


def race(count: int, attempt: Callable[[int], R]) -> list[R | BaseException]:
    """Run ``attempt(i)`` for i < count in threads released together."""
    barrier = threading.Barrier(count)
    results: list[R | BaseException] = [RuntimeError("did not run")] * count

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = attempt(index)
        except BaseException as error:  # recorded and asserted on by the test
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def reserve(store: Store, booking: Booking) -> str:
    with store.unit_of_work() as uow:
        uow.bookings.reserve(booking)
        uow.commit()
    return booking.id


def test_overlapping_reservations_of_one_room_have_exactly_one_winner(store: Store) -> None:
    for round_ in range(ROUNDS):
        base = 10.0 * round_
        # Every interval contains [base + 0.8, base + 1): all overlap pairwise.
        contenders = [
            make_booking(
                f"r{round_}-{i}",
                base + 0.1 * i,
                base + 1 + 0.1 * i,
                owner=f"person-{i}",
                rooms={"berlin": "room-a", "av": "beamer"},
            )
            for i in range(THREADS)
        ]
        results = race(THREADS, lambda i, c=contenders: reserve(store, c[i]))  # type: ignore[misc]

        winners = [r for r in results if isinstance(r, str)]
        losers = [r for r in results if isinstance(r, ReservationConflict)]
        assert len(winners) == 1, results
        assert len(losers) == THREADS - 1, results
        assert {loser.held_by for loser in losers} == set(winners)
        with store.reader() as uow:
            held = uow.bookings.reserved_intervals(
                ["room-a", "beamer"], Interval(at(base - 1), at(base + 3))
            )
        assert len(held["room-a"]) == len(held["beamer"]) == 1


def test_disjoint_reservations_of_one_room_all_succeed(store: Store) -> None:
    contenders = [make_booking(f"bk-{i}", i, i + 1, owner=f"person-{i}") for i in range(THREADS)]
    results = race(THREADS, lambda i: reserve(store, contenders[i]))

    assert sorted(r for r in results if isinstance(r, str)) == sorted(b.id for b in contenders), (
        results
    )
    with store.reader() as uow:
        assert (
            len(uow.bookings.reserved_intervals(["room-a"], Interval(at(0), at(THREADS)))["room-a"])
            == THREADS
        )


def test_one_sync_lease_holder_at_a_time(store: Store) -> None:
    def acquire(index: int) -> bool:
        with store.unit_of_work() as uow:
            won = uow.leases.try_acquire("alice", f"process-{index}", timedelta(minutes=5), at(0))
            uow.commit()
        return won

    results = race(THREADS, acquire)
    assert results.count(True) == 1, results
    with store.reader() as uow:
        assert uow.leases.holder("alice", at(0)) == f"process-{results.index(True)}"


def test_a_link_is_spent_once(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.links.create(
            Link(
                token_sha256="f" * 64,
                event_type="consultation",
                created_at=at(0),
                expires_at=at(48),
            )
        )
        uow.commit()

    def use(index: int) -> bool:
        with store.unit_of_work() as uow:
            uow.bookings.reserve(
                make_booking(f"bk-{index}", index, index + 1, owner=f"p{index}", rooms={})
            )
            spent = uow.links.use("f" * 64, f"bk-{index}", at(1))
            uow.commit()
        return spent

    assert race(THREADS, use).count(True) == 1


def test_an_idempotency_key_is_claimed_once(store: Store) -> None:
    def begin(_index: int) -> IdempotencyState:
        with store.unit_of_work() as uow:
            outcome = uow.idempotency.begin("website", "key-1", "a" * 64, at(0))
            uow.commit()
        return outcome.state

    results = race(THREADS, begin)
    assert results.count(IdempotencyState.NEW) == 1, results
    assert results.count(IdempotencyState.IN_PROGRESS) == THREADS - 1, results


def test_outbox_workers_never_claim_a_job_twice(store: Store) -> None:
    jobs = 24
    with store.unit_of_work() as uow:
        for number in range(jobs):
            uow.outbox.enqueue("write", {"n": number}, due_at=at(0), now=at(0))
        uow.commit()

    def drain(index: int) -> list[int]:
        claimed: list[int] = []
        while True:
            with store.unit_of_work() as uow:
                batch = uow.outbox.claim(
                    f"worker-{index}", at(1), hold_for=timedelta(minutes=5), limit=3
                )
                uow.commit()
            if not batch:
                return claimed
            claimed += [job.payload["n"] for job in batch]

    results = race(4, drain)
    everything = [n for result in results if isinstance(result, list) for n in result]
    assert sorted(everything) == list(range(jobs)), results


@pytest.mark.parametrize("backend", ["postgresql"])
def test_exclusion_constraint_catches_what_the_check_cannot_see(store: Store) -> None:
    """The backstop path: another transaction holds an uncommitted overlapping
    reservation that bypassed the calendar lock, so the repository's own check
    sees nothing; the constraint makes the insert wait for that transaction
    and refuse once it commits, and the refusal names the calendar."""
    with store.unit_of_work() as uow:
        uow.bookings.reserve(make_booking("bk-1", 5, 6, owner="dave", rooms={}))
        uow.commit()
    sneaky = store.unit_of_work()
    with sneaky:
        sneaky._require().execute(
            text(
                "INSERT INTO reservations (booking_id, calendar_key, start_at, end_at, active) "
                "VALUES ('bk-1', 'room-a', :start, :end, true)"
            ),
            {"start": at(1), "end": at(2)},
        )
        committer = threading.Timer(0.3, sneaky.commit)
        committer.start()
        with pytest.raises(ReservationConflict) as refused:
            reserve(store, make_booking("bk-2", 1.5, 2.5, owner="erin"))
        committer.join()
    assert (refused.value.calendar_key, refused.value.held_by) == ("room-a", "bk-1")
    assert isinstance(refused.value.__cause__, IntegrityError)  # raised by the database
