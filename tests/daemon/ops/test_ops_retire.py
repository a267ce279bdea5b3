"""A retired App (replaced by a reload, or stopped) takes no more provider
writes off its callers' threads: its writer threads end, and a booking that
reaches it meanwhile is answered, pending, for the outbox to finish."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from engine.core.model import Attendee
from engine.services.booking import Result
from tests.daemon.ops.conftest import NOW, Built

WRITERS = "booking-writes"


def writer_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate()
            if thread.name.startswith(WRITERS) and thread.is_alive()]


def test_retire_ends_the_writer_threads_and_a_late_booking_stays_pending(
    build_app: Callable[..., Built],
) -> None:
    built = build_app()
    for key in ("alice", "room-a", "room-b"):
        built.synced(key, NOW)
    start = (NOW + timedelta(days=2)).replace(hour=10, minute=0)
    ann = Attendee("Ann Example", "ann@example.com")
    # The account's server does not resolve: the write fails and is retried later.
    first = built.app.bookings.attempt("consult", start, ann, "", NOW,
                                       confirm_within=timedelta(seconds=5))
    assert first.result is Result.PENDING, first
    assert writer_threads(), "the attempt ran its writes on the writer threads"

    built.app.retire()

    late = built.app.bookings.attempt("consult", start + timedelta(hours=1), ann, "", NOW,
                                      confirm_within=timedelta(seconds=5))
    assert late.result is Result.PENDING, late
    for thread in writer_threads():
        thread.join(timeout=30)
    assert writer_threads() == []
