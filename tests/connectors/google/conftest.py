"""Fixtures of the Google connector's tests: one Calendar fake per module
(plain HTTP; the TLS cases start their own), and a fresh delegated user
with a calendar per test, so tests share nothing but the server."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from connectors.google import GoogleAccount, GoogleConnector, RetryPolicy
from engine.ports import CalendarRef
from tests.fakes.google_calendar import GoogleCalendarFake

ADMIN = "calpool-admin@acme.test"
FAST = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=2.0)
_users = itertools.count(1)


@pytest.fixture(scope="module")
def fake() -> Iterator[GoogleCalendarFake]:
    with GoogleCalendarFake() as running:
        running.delegate(ADMIN)
        yield running


def account_of(fake: GoogleCalendarFake, **changes: object) -> GoogleAccount:
    info = fake.service_account_info(client_email="calpool@acme-proj.iam.gserviceaccount.com")
    account = GoogleAccount(service_account_info=info, subject=ADMIN, api_url=fake.api_url,
                            timeout=10, retry=FAST)
    return replace(account, **changes)  # type: ignore[arg-type]


@pytest.fixture
def connector(fake: GoogleCalendarFake) -> Iterator[GoogleConnector]:
    made = GoogleConnector(account_of(fake))
    yield made
    made.close()


NewCalendar = Callable[..., CalendarRef]


@pytest.fixture
def new_calendar(fake: GoogleCalendarFake) -> NewCalendar:
    """A fresh user's calendar, the connector acting as that user."""

    def make(zone: str = "Europe/Berlin") -> CalendarRef:
        user = f"user-{next(_users)}@acme.test"
        fake.add_calendar(user, timezone=zone)
        fake.delegate(user)
        return CalendarRef(user, zone, user)

    return make
