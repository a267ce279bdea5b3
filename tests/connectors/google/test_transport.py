"""Login, TLS and failures through the real client libraries against the
fake: the JWT-bearer grant per subject, a subject without delegation, TLS
verified with ``ca_file``, throttles honouring ``Retry-After`` (bounded),
5xx retried, and every request counted by the observer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from connectors.google import GoogleConnector, RetryPolicy
from engine.core.model import Interval
from engine.errors import AuthFailed, PermanentError, RateLimited, TransientError
from engine.ports import CalendarRef
from tests.connectors.google.conftest import NewCalendar, account_of
from tests.fakes.google_calendar import GoogleCalendarFake

WINDOW = Interval(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))


def test_a_subject_without_delegation_is_refused_with_a_sentence_an_admin_can_act_on(
        fake: GoogleCalendarFake, connector: GoogleConnector) -> None:
    fake.add_calendar("stranger@acme.test")  # never delegated
    with pytest.raises(AuthFailed) as caught:
        connector.list_window(CalendarRef("stranger@acme.test", "UTC", "stranger@acme.test"),
                              WINDOW)
    assert "stranger@acme.test" in caught.value.detail
    assert "domain-wide delegation" in caught.value.detail
    assert caught.value.calendar == "stranger@acme.test"


def test_each_subject_logs_in_once(fake: GoogleCalendarFake, new_calendar: NewCalendar) -> None:
    connector = GoogleConnector(account_of(fake))
    one, two = new_calendar(), new_calendar()
    before = len(fake.requests)
    for _ in range(3):
        connector.list_window(one, WINDOW)
        connector.list_window(two, WINDOW)
    logins = [r for r in fake.requests[before:] if r[1] == "/token"]
    assert len(logins) == 2
    subjects = {who for method, path, _, who in fake.requests[before:] if path != "/token"}
    assert subjects == {one.id, two.id}


def test_a_throttle_is_waited_out_as_google_asks(
        fake: GoogleCalendarFake, connector: GoogleConnector, new_calendar: NewCalendar) -> None:
    calendar = new_calendar()
    fake.fail(method="GET", path=f"{calendar.id}/events$", status=429, retry_after=1, times=1)
    started = time.monotonic()
    assert dict(connector.list_window(calendar, WINDOW).objects) == {}
    assert time.monotonic() - started >= 1.0  # the Retry-After, not the short backoff


def test_a_throttle_longer_than_the_connector_waits_is_the_callers(
        fake: GoogleCalendarFake, connector: GoogleConnector, new_calendar: NewCalendar) -> None:
    calendar = new_calendar()
    fake.fail(method="GET", path=f"{calendar.id}/events$", status=403,
              reason="userRateLimitExceeded", retry_after=120, times=1)
    before = len(fake.requests)
    with pytest.raises(RateLimited) as caught:
        connector.list_window(calendar, WINDOW)
    assert caught.value.retry_after == 120
    assert len([r for r in fake.requests[before:] if r[1].endswith("/events")]) == 1


def test_server_errors_are_retried_a_bounded_number_of_times(
        fake: GoogleCalendarFake, new_calendar: NewCalendar) -> None:
    calendar = new_calendar()
    connector = GoogleConnector(account_of(fake, retry=RetryPolicy(attempts=3, initial_wait=0.01)))
    fake.fail(method="GET", path=f"{calendar.id}/events$", status=503, times=2)
    assert dict(connector.list_window(calendar, WINDOW).objects) == {}
    fake.fail(method="GET", path=f"{calendar.id}/events$", status=500, reason="backendError",
              times=3)
    with pytest.raises(TransientError) as caught:
        connector.list_window(calendar, WINDOW)
    assert not isinstance(caught.value, RateLimited)


def test_every_request_is_observed(fake: GoogleCalendarFake, new_calendar: NewCalendar) -> None:
    seen: list[str] = []
    connector = GoogleConnector(account_of(fake), observe=seen.append)
    calendar = new_calendar()
    connector.list_window(calendar, WINDOW)
    connector.read_event(calendar, "nothing-here")
    assert seen.count("2xx") >= 2 and "4xx" in seen  # the token, the listing; a 404 read


@pytest.fixture(scope="module")
def tls_fake() -> Iterator[GoogleCalendarFake]:
    with GoogleCalendarFake(tls=True) as running:
        running.delegate("tls-user@acme.test")
        running.add_calendar("tls-user@acme.test")
        yield running


def test_tls_is_verified_with_the_ca_file(tls_fake: GoogleCalendarFake) -> None:
    calendar = CalendarRef("tls-user@acme.test", "UTC", "tls-user@acme.test")
    trusted = GoogleConnector(account_of(tls_fake, ca_file=tls_fake.ca_file))
    assert trusted.list_window(calendar, WINDOW).full

    untrusted = GoogleConnector(replace(account_of(tls_fake), ca_file=None))
    with pytest.raises(PermanentError):
        untrusted.list_window(calendar, WINDOW)
