"""The sync report on a real CalDAV server: objects the connector could
not read are counted and named, not passed over in silence (issue 21)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from connectors.caldav import CalDAVAccount, CalDAVConnector, RetryPolicy
from engine.ports import CalendarRef
from engine.services.sync import CalendarBinding, SyncService, SyncWindow
from engine.store import Store
from tests.engine.services.conftest import event_ics, fresh_calendar, put_event
from tests.engine.services.test_sync import NOW, at, cached
from tests.support.caldav_servers import Server, start_radicale


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with start_radicale(tmp_path_factory.mktemp("sync-radicale")) as server:
        yield server


def test_unreadable_objects_are_counted_in_the_report(radicale: Server, store: Store) -> None:
    """A sync that skipped objects used to say "0 changed" and nothing else."""
    calendar = fresh_calendar(radicale, "unreadable")
    put_event(radicale, calendar, "good", event_ics("good", at(2), at(3)))
    unknown_zone = (  # a globally unique TZID without VTIMEZONE whose tail is no IANA name
        event_ics("bad", at(4), at(5))
        .replace("DTSTART:", "DTSTART;TZID=/vendor/Not/A_Zone:")
        .replace("DTEND:", "DTEND;TZID=/vendor/Not/A_Zone:")
        .replace("Z\r\n", "\r\n")
    )
    put_event(radicale, calendar, "bad", unknown_zone)
    connector = CalDAVConnector(CalDAVAccount(
        url=radicale.home, retry=RetryPolicy(attempts=1, initial_wait=0.01, max_wait=0.05)))
    sync = SyncService(
        store, {"room": CalendarBinding("room", CalendarRef(calendar, "Europe/Berlin"), connector)},
        window=SyncWindow(timedelta(days=1), timedelta(days=30)), clock=lambda: NOW)

    report = sync.sync_calendar("room")
    connector.close()

    assert (report.changed, report.removed, report.unreadable) == (1, 0, 1)
    assert "bad.ics: " in report.last_unreadable and "A_Zone" in report.last_unreadable
    assert cached(store, "room") == [("good", at(2), at(3))]
