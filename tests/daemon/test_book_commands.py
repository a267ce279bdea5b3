"""`calpool book` and `calpool bookings` as processes, on Radicale."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.engine.services.conftest import fresh_calendar
from tests.support.caldav_servers import Server, start_radicale
from tests.support.config_builder import SiteConfig
from tests.support.sites import run_calpool

BERLIN = ZoneInfo("Europe/Berlin")
TOMORROW = date.today() + timedelta(days=1)
START = f"{TOMORROW.isoformat()}T10:00"  # no offset: the owner's zone


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_radicale(tmp_path_factory.mktemp("book-radicale"))
    yield server
    server.stop()


@dataclass
class Site:
    config: Path
    calendars: dict[str, str]  # key -> calendar id on the server
    server: Server

    def stored(self, key: str) -> int:
        """How many events the server holds in ``key``'s calendar."""
        status, _, body = self.server.request(
            "PROPFIND", f"{self.server.home}{self.calendars[key]}", b"", {"Depth": "1"})
        assert status == 207, status
        return body.decode().count(".ics</")


def calpool(site: Site, *argv: str) -> subprocess.CompletedProcess[str]:
    return run_calpool(site.config, *argv)


def make_site(tmp_path: Path, server: Server, *, missing_room: bool = False) -> Site:
    """alice and room-a (room-a never created on the server when
    ``missing_room``: every write there fails)."""
    calendars = {"alice": fresh_calendar(server, "alice")}
    calendars["room-a"] = "never-made/" if missing_room else fresh_calendar(server, "room-a")
    config = (
        SiteConfig()
        .daemon(database="sqlite:///calpool.db", timezone="UTC")
        .sync(window_future="210d")
        .caldav_account("dav", url=server.home)
        .calendars(calendars, persons={"alice"}, timezone="Europe/Berlin")
        .pool("rooms", members=["room-a"])
        .event_type("consultation", title="Consultation with {attendee_name}", duration="30m",
                    owner="alice", pools=["rooms"], horizon="200d")
        .write(tmp_path)
    )
    site = Site(config, calendars, server)
    assert calpool(site, "db", "upgrade").returncode == 0
    return site


def test_book_confirms_and_bookings_lists_the_document(tmp_path: Path, radicale: Server) -> None:
    site = make_site(tmp_path, radicale)

    booked = calpool(site, "book", "consultation", START, "--name", "Ann Example",
                     "--email", "ann@example.com", "--notes", "second floor")

    assert booked.returncode == 0, booked.stderr
    start = datetime.fromisoformat(START).replace(tzinfo=BERLIN)
    line = booked.stdout.strip()
    assert line.startswith("booking ") and " confirmed: " in line
    assert f"{start.isoformat()} - {(start + timedelta(minutes=30)).isoformat()}" in line
    assert line.endswith("rooms: rooms: room-a")
    assert site.stored("alice") == 1 and site.stored("room-a") == 1

    listed = calpool(site, "bookings", "--start", TOMORROW.isoformat(), "--json")

    assert listed.returncode == 0, listed.stderr
    [document] = json.loads(listed.stdout)["bookings"]
    assert line.split()[1] == document["id"]
    assert document == {
        "id": document["id"],
        "status": "confirmed",
        "event_type": "consultation",
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=30)).isoformat(),
        "owner": "alice",
        "with": [],
        "rooms": {"rooms": "room-a"},
        "attendee": {"name": "Ann Example", "email": "ann@example.com"},
        "notes": "second floor",
        "history": document["history"],
        "deliveries": document["deliveries"],
    }
    # One delivery record per calendar written, each copy on the server.
    assert [(d["calendar"], d["how"], d["state"]) for d in document["deliveries"]] == [
        ("alice", "written", "written"), ("room-a", "written", "written")]
    assert all(d["at"][-6:] == start.isoformat()[-6:] for d in document["deliveries"])
    assert [(h["status"], h["at"][-6:]) for h in document["history"]] == [
        ("pending", start.isoformat()[-6:]), ("confirmed", start.isoformat()[-6:])]

    text = calpool(site, "bookings", "--calendar", "room-a")
    assert document["id"] in text.stdout and "confirmed" in text.stdout
    assert calpool(site, "bookings", "--end", TOMORROW.isoformat()).stdout == "no bookings\n"

    again = calpool(site, "book", "consultation", START, "--name", "Bo", "--email", "bo@x.org")
    assert again.returncode == 1
    assert again.stderr.strip() == (
        "calpool book: the slot is taken: the owner is busy then (owner_busy)")
    assert site.stored("alice") == 1


def test_book_usage_errors_exit_2(tmp_path: Path, radicale: Server) -> None:
    site = make_site(tmp_path, radicale)

    off_grid = calpool(site, "book", "consultation", f"{TOMORROW.isoformat()}T10:10",
                       "--name", "Ann", "--email", "ann@example.com")
    unknown = calpool(site, "book", "nope", START, "--name", "Ann", "--email", "a@b.c")
    bad_mail = calpool(site, "book", "consultation", START, "--name", "Ann", "--email", "ann")
    no_calendar = calpool(site, "bookings", "--calendar", "nobody")

    assert [r.returncode for r in (off_grid, unknown, bad_mail, no_calendar)] == [2, 2, 2, 2]
    assert "not on the event type's slot grid" in off_grid.stderr
    assert "unknown event type 'nope'" in unknown.stderr
    assert "'ann' is not an email address" in bad_mail.stderr
    assert "unknown calendar 'nobody'" in no_calendar.stderr


def test_a_failed_write_exits_1_and_leaves_nothing_behind(
    tmp_path: Path, radicale: Server
) -> None:
    site = make_site(tmp_path, radicale, missing_room=True)

    result = calpool(site, "book", "consultation", START, "--name", "Ann",
                     "--email", "ann@example.com")

    assert result.returncode == 1
    assert result.stderr.startswith("calpool book: booking ")
    assert " failed: write-event in room-a failed" in result.stderr
    assert site.stored("alice") == 0
    listed = json.loads(calpool(site, "bookings", "--json").stdout)["bookings"]
    assert [b["status"] for b in listed] == ["failed"]
