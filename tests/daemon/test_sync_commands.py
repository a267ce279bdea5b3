"""`calpool sync`, `calpool slots` and `calpool run` as processes, on Radicale."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from engine.core.model import Interval
from engine.store import Store
from tests.engine.services.conftest import event_ics, fresh_calendar, put_event
from tests.support.caldav_servers import Server, free_port, start_radicale
from tests.support.config_builder import SiteConfig
from tests.support.sites import CALPOOL, run_calpool


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_radicale(tmp_path_factory.mktemp("commands-radicale"))
    yield server
    server.stop()


@dataclass
class Site:
    """A config on disk whose calendars live on the Radicale fixture."""

    config: Path
    calendars: dict[str, str]  # key -> calendar id on the server
    database: Path


def calpool(site: Site, *argv: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return run_calpool(site.config, *argv, timeout=timeout)


def make_site(tmp_path: Path, server: Server, *, dead: bool = False,
              alice_hours: dict[str, str] | None = None) -> Site:
    """alice and two rooms on ``server``; with ``dead``, a third room on an
    account whose server refuses connections."""
    calendars = {key: fresh_calendar(server, key) for key in ("alice", "room-a", "room-b")}
    config = (
        SiteConfig()
        .daemon(database="sqlite:///calpool.db", timezone="Europe/Berlin")
        .sync(window_future="210d")
        .caldav_account("dav", url=server.home)
        .caldav_account("gone", url=f"http://127.0.0.1:{free_port()}/dav/")
        .calendars(calendars, persons={"alice"})
        .calendar("alice", working_hours=alice_hours)
    )
    members = ["room-a", "room-b"]
    if dead:
        config.calendar("room-dead", account="gone", id="rooms/dead/", kind="room")
        members.append("room-dead")
    config.pool("rooms", members=members)
    config.event_type("consultation", title="Consultation", duration="30m", owner="alice",
                      pools=["rooms"], horizon="200d")
    site = Site(config.write(tmp_path), calendars, tmp_path / "calpool.db")
    assert calpool(site, "db", "upgrade").returncode == 0
    return site


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_sync_on_an_unmigrated_database_names_the_upgrade(tmp_path: Path, radicale: Server) -> None:
    site = make_site(tmp_path, radicale)
    site.database.unlink()

    result = calpool(site, "sync")

    assert result.returncode == 1
    assert "calpool db upgrade" in result.stderr


def test_sync_names_each_failed_calendar_and_syncs_the_others(
    tmp_path: Path, radicale: Server
) -> None:
    site = make_site(tmp_path, radicale, dead=True)
    put_event(radicale, site.calendars["room-a"], "x",
              event_ics("x", utc("2027-01-05T10:00Z"), utc("2027-01-05T11:00Z")))

    result = calpool(site, "sync")

    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.endswith("sync failed for 1 calendar(s): room-dead")
    assert "room-a: synced (full listing), 1 changed, 0 removed" in result.stdout
    assert "alice: synced" in result.stdout and "room-b: synced" in result.stdout
    # Not a terminal: plain progress lines on stderr, no bar (issue 24).
    assert "sync: 4/4 calendars synced, 1 events, " in result.stderr
    assert result.stderr.count("calendars synced") == 4  # every tenth of 4: each one
    assert "\x1b[" not in result.stderr


def test_a_second_pass_reads_the_one_changed_calendar_and_keeps_the_others(
    tmp_path: Path, radicale: Server
) -> None:
    site = make_site(tmp_path, radicale)
    for calendar_id in site.calendars.values():
        put_event(radicale, calendar_id, "x",
                  event_ics("x", utc("2027-01-05T10:00Z"), utc("2027-01-05T11:00Z")))
    assert calpool(site, "sync").returncode == 0
    put_event(radicale, site.calendars["room-b"], "x",
              event_ics("x", utc("2027-01-06T10:00Z"), utc("2027-01-06T12:00Z")))

    result = calpool(site, "sync")

    assert result.returncode == 0, result.stderr
    assert "room-b: synced (changes), 1 changed, 0 removed" in result.stdout
    for key in ("alice", "room-a"):
        assert f"{key}: synced (changes), 0 changed, 0 removed" in result.stdout
    with Store.open(f"sqlite:///{site.database}") as store, store.reader() as uow:
        window = Interval(utc("2027-01-01T00:00Z"), utc("2027-02-01T00:00Z"))
        starts = {key: [(e.start, e.end) for e in uow.events.in_window(key, window)]
                  for key in site.calendars}
    assert starts == {
        "alice": [(utc("2027-01-05T10:00Z"), utc("2027-01-05T11:00Z"))],
        "room-a": [(utc("2027-01-05T10:00Z"), utc("2027-01-05T11:00Z"))],
        "room-b": [(utc("2027-01-06T10:00Z"), utc("2027-01-06T12:00Z"))],
    }


def test_sync_of_an_unknown_calendar_is_a_usage_error(tmp_path: Path, radicale: Server) -> None:
    site = make_site(tmp_path, radicale)

    result = calpool(site, "sync", "--calendar", "nobody")

    assert result.returncode == 2
    assert "unknown calendar 'nobody'" in result.stderr


def test_two_sync_processes_at_once_share_the_work_without_error(
    tmp_path: Path, radicale: Server
) -> None:
    site = make_site(tmp_path, radicale)
    for key, calendar_id in site.calendars.items():
        for n in range(20):
            start = utc(f"2027-01-{n + 1:02d}T09:00Z")
            put_event(radicale, calendar_id, f"{key}-{n}",
                      event_ics(f"{key}-{n}", start, start.replace(hour=10)))
    command = [str(CALPOOL), "--config", str(site.config), "sync"]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=90) for process in processes]

    assert [process.returncode for process in processes] == [0, 0], outputs
    lines = [line for out, _ in outputs for line in out.splitlines()]
    for key in site.calendars:
        outcomes = [line for line in lines if line.startswith(f"{key}: ")]
        assert len(outcomes) == 2 and any("synced" in line for line in outcomes), outcomes
    with Store.open(f"sqlite:///{site.database}") as store, store.reader() as uow:
        assert {key: uow.events.count(key) for key in site.calendars} == dict.fromkeys(
            site.calendars, 20)


def test_slots_json_on_radicale_across_dst_with_recurring_exceptions(
    tmp_path: Path, radicale: Server
) -> None:
    """Europe/Berlin springs forward on Sunday 2027-03-28 at 02:00.  Alice
    works 01:00-04:00 every day, so that day holds two real hours: local
    01:00, 01:30 (CET) and 03:00, 03:30 (CEST).  Room A has a weekly
    Sunday 00:00Z event with 2027-03-21 excluded and the 03-28 instance
    moved to 01:00Z; room B is busy all day on 03-28 (an all-day event)."""
    site = make_site(tmp_path, radicale, alice_hours={"mon-sun": "01:00-04:00"})
    weekly = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calpool tests//EN\r\n"
        "BEGIN:VEVENT\r\nUID:weekly\r\nDTSTAMP:20260101T000000Z\r\n"
        "DTSTART:20270307T000000Z\r\nDTEND:20270307T003000Z\r\n"
        "RRULE:FREQ=WEEKLY;COUNT=6\r\nEXDATE:20270321T000000Z\r\nSUMMARY:weekly\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:weekly\r\nDTSTAMP:20260101T000000Z\r\n"
        "RECURRENCE-ID:20270328T000000Z\r\n"
        "DTSTART:20270328T010000Z\r\nDTEND:20270328T013000Z\r\nSUMMARY:moved\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    put_event(radicale, site.calendars["room-a"], "weekly", weekly)
    all_day = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calpool tests//EN\r\n"
        "BEGIN:VEVENT\r\nUID:closed\r\nDTSTAMP:20260101T000000Z\r\n"
        "DTSTART;VALUE=DATE:20270328\r\nDTEND;VALUE=DATE:20270329\r\nSUMMARY:closed\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    put_event(radicale, site.calendars["room-b"], "closed", all_day)
    assert calpool(site, "sync").returncode == 0

    def slots(day: str, until: str) -> dict[str, list[str]]:
        result = calpool(site, "slots", "consultation", "--start", day, "--end", until,
                         "--timezone", "UTC", "--json")
        assert result.returncode == 0, result.stderr
        document = json.loads(result.stdout)
        assert document["event_type"] == "consultation" and document["timezone"] == "UTC"
        assert document["stale_calendars"] == []
        for slot in document["slots"]:
            assert utc(slot["end"]) - utc(slot["start"]) == utc("2027-01-01T00:30Z") - utc(
                "2027-01-01T00:00Z")
        return {slot["start"]: slot["rooms_available"]["rooms"] for slot in document["slots"]}

    assert slots("2027-03-28", "2027-03-28T12:00Z") == {
        "2027-03-28T00:00:00+00:00": ["room-a"],
        "2027-03-28T00:30:00+00:00": ["room-a"],
        "2027-03-28T01:30:00+00:00": ["room-a"],
    }
    # The week before: the excluded instance leaves room A free.
    week_before = slots("2027-03-21", "2027-03-21T12:00Z")
    assert week_before["2027-03-21T00:00:00+00:00"] == ["room-a", "room-b"]
    # Two weeks before, a plain instance of the series.
    assert slots("2027-03-14", "2027-03-14T12:00Z")["2027-03-14T00:00:00+00:00"] == ["room-b"]


def test_slots_warn_about_calendars_that_never_synced(tmp_path: Path, radicale: Server) -> None:
    site = make_site(tmp_path, radicale)

    result = calpool(site, "slots", "consultation", "--json")

    assert result.returncode == 0
    stale = json.loads(result.stdout)["stale_calendars"]
    assert {entry["calendar"] for entry in stale} == {"alice", "room-a", "room-b"}
    assert {entry["reason"] for entry in stale} == {"never_synced"}
    assert "room-a has never synced" in result.stderr


def test_run_syncs_and_stops_cleanly_on_sigterm(tmp_path: Path, radicale: Server) -> None:
    site = make_site(tmp_path, radicale)
    process = subprocess.Popen(
        [str(CALPOOL), "--config", str(site.config), "run"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        synced: set[str] = set()
        while time.monotonic() < deadline and synced != set(site.calendars):
            time.sleep(0.3)
            with Store.open(f"sqlite:///{site.database}") as store, store.reader() as uow:
                synced = {s.calendar for s in uow.calendars.sync_states() if s.last_success_at}
        assert synced == set(site.calendars)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert "received SIGTERM" in err
