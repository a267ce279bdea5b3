"""Objects calpool could not read are visible where people look: the slot
answer's ``stale_calendars``, ``calpool status`` and ``/metrics``."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from daemon.commands.status import status_document
from engine.core.model import ChangeSet, Interval
from tests.daemon.http.conftest import NOW, Site


def unreadable_in(site: Site, calendar: str, found: dict[str, str]) -> None:
    window = Interval(NOW - timedelta(days=1), NOW + timedelta(days=90))
    with site.app.store.unit_of_work() as uow:
        uow.events.apply_changes(calendar, ChangeSet(cursor="c", objects={}, full=True,
                                                     unreadable=found), window, NOW)
        uow.commit()


def test_a_calendar_with_unreadable_objects_is_named_in_the_slot_answer(site: Site) -> None:
    site.synced("alice", "room-a", "room-b")
    unreadable_in(site, "room-a", {"/dav/rooms/a/x.ics": "no DTSTART",
                                   "/dav/rooms/a/y.ics": "unknown TZID"})

    document = site.get("/v1/event-types/consult/slots").json()

    assert [(entry["calendar"], entry["reason"]) for entry in document["stale_calendars"]] == [
        ("room-a", "2 objects unreadable")]


def test_a_calendar_read_again_leaves_the_answer(site: Site) -> None:
    site.synced("alice", "room-a", "room-b")
    unreadable_in(site, "room-a", {"/dav/rooms/a/x.ics": "no DTSTART"})
    assert site.get("/v1/event-types/consult/slots").json()["stale_calendars"][0]["reason"] == (
        "1 object unreadable")
    unreadable_in(site, "room-a", {})
    assert site.get("/v1/event-types/consult/slots").json()["stale_calendars"] == []


def test_status_and_metrics_count_them(site: Site) -> None:
    site.synced("alice", "room-a", "room-b")
    unreadable_in(site, "room-b", {"/dav/rooms/b/z.ics": "INTERVAL=0", "/dav/rooms/b/a.ics": "x"})

    document = status_document(site.app.config, site.app.status.read(NOW, channels=True))
    rooms = {entry["calendar"]: entry for entry in document["calendars"]}
    assert (rooms["room-b"]["unreadable"], rooms["room-b"]["last_unreadable"]) == (
        2, "/dav/rooms/b/a.ics: x")
    assert rooms["room-a"]["unreadable"] == 0 and rooms["room-a"]["last_unreadable"] is None

    text = site.get("/metrics", token=None).text
    samples = {(sample.labels.get("calendar")): sample.value
               for family in text_string_to_metric_families(text)
               if family.name == "calpool_calendar_unreadable_objects"
               for sample in family.samples}
    assert samples["room-b"] == 2 and samples["room-a"] == 0
