"""Live free/busy through ``freeBusy.query`` against the fake: batches of
at most 50 calendars, chunks of at most 90 days, and a calendar Google
reports an error for named alone in ``FreeBusy.errors``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.google import GoogleConnector
from engine.core.model import Interval
from engine.errors import NotFound
from engine.ports import CalendarRef
from tests.connectors.google.conftest import NewCalendar
from tests.fakes.google_calendar import GoogleCalendarFake


def busy_at(fake: GoogleCalendarFake, calendar: CalendarRef, start: datetime, hours: int = 1
            ) -> Interval:
    end = start + timedelta(hours=hours)
    fake.insert(calendar.id, {"summary": "busy", "start": {"dateTime": start.isoformat()},
                              "end": {"dateTime": end.isoformat()}})
    return Interval(start, end)


def free_busy_calls(fake: GoogleCalendarFake, since: int) -> int:
    return sum(1 for method, path, _, _ in fake.requests[since:]
               if method == "POST" and path.endswith("/freeBusy"))


def test_many_calendars_and_a_long_window_are_split_as_google_demands(
        fake: GoogleCalendarFake, connector: GoogleConnector, new_calendar: NewCalendar) -> None:
    calendars = [new_calendar() for _ in range(60)]
    start = datetime(2027, 1, 1, tzinfo=UTC)
    window = Interval(start, start + timedelta(days=200))  # three chunks of ≤ 90 days
    early = busy_at(fake, calendars[0], start + timedelta(days=3))
    late = busy_at(fake, calendars[59], start + timedelta(days=150))
    # Across a chunk boundary: reported as one span.
    across = busy_at(fake, calendars[1], start + timedelta(days=90) - timedelta(hours=1), hours=2)
    before = len(fake.requests)

    answer = connector.free_busy(calendars, window)

    assert free_busy_calls(fake, before) == 2 * 3  # two batches (50 + 10), three chunks each
    assert answer.of(calendars[0].id) == (early,)
    assert answer.of(calendars[59].id) == (late,)
    assert answer.of(calendars[1].id) == (across,)
    assert answer.of(calendars[30].id) == ()
    assert dict(answer.errors) == {}


def test_a_calendar_google_cannot_answer_for_is_reported_alone(
        fake: GoogleCalendarFake, connector: GoogleConnector, new_calendar: NewCalendar) -> None:
    known = new_calendar()
    span = busy_at(fake, known, datetime(2027, 3, 2, 9, tzinfo=UTC))
    missing = CalendarRef("nobody@elsewhere.test", "UTC")

    answer = connector.free_busy([known, missing],
                                 Interval(datetime(2027, 3, 1, tzinfo=UTC),
                                          datetime(2027, 3, 8, tzinfo=UTC)))

    assert answer.of(known.id) == (span,)
    assert isinstance(answer.errors[missing.id], NotFound)
    with pytest.raises(NotFound):
        answer.of(missing.id)


def test_the_query_is_asked_in_utc_as_the_account_subject(
        fake: GoogleCalendarFake, connector: GoogleConnector, new_calendar: NewCalendar) -> None:
    calendar = new_calendar()
    before = len(fake.requests)
    connector.free_busy([calendar], Interval(datetime(2027, 3, 1, tzinfo=UTC),
                                             datetime(2027, 3, 2, tzinfo=UTC)))
    (subject,) = [who for method, path, _, who in fake.requests[before:]
                  if path.endswith("/freeBusy")]
    assert subject == "calpool-admin@acme.test"
