"""``calpool run`` against the Google Calendar fake, through the real
client libraries: a Workspace person and a pool of two Workspace rooms.
The booking lands in the owner's calendar (the owner organizes it: calpool
acts as her) with the first room invited as a resource attendee; that
room declines, so calpool replaces it in the owner's event with the other
room, which accepts, and the booking ends confirmed with it — the history
says so.  calpool writes nothing into the rooms' calendars itself: Google
delivers the invitation there."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.conftest import CALPOOL, environment
from tests.e2e.test_booking_crash import event_uids, start_daemon
from tests.fakes.google_calendar import GoogleCalendarFake, RoomAnswer
from tests.support import sites
from tests.support.caldav_servers import Server, free_port, start_radicale

TOKEN = "google-e2e-token"
OWNER = "alice@acme.test"
ADMIN = "calpool-admin@acme.test"
ROOM_A = "room-a@resource.calendar.google.com"
ROOM_B = "room-b@resource.calendar.google.com"
SETTLE_WITHIN = 90.0  # the room answers are read every 10 s


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[Server]:
    server = start_radicale(tmp_path / "radicale")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake() -> Iterator[GoogleCalendarFake]:
    with GoogleCalendarFake(tls=True) as running:
        running.delegate(ADMIN)
        running.delegate(OWNER)
        running.add_calendar(OWNER, timezone="Europe/Berlin")
        running.add_room(ROOM_A, name="Room A", answer=RoomAnswer.DECLINE, delay=0.2)
        running.add_room(ROOM_B, name="Room B", answer=RoomAnswer.AUTO, delay=0.2)
        yield running


def write_config(folder: Path, fake: GoogleCalendarFake, listen: int, *,
                 pool: tuple[str, ...] = ("room-a", "room-b"), caldav: Server | None = None,
                 ) -> Path:
    key = folder / "service-account.json"
    key.write_text(json.dumps(fake.service_account_info(
        client_email="calpool@acme-proj.iam.gserviceaccount.com")), encoding="utf-8")
    caldav_part = "" if caldav is None else f"""\
[accounts.dav]
provider = "caldav"
url = "{caldav.home}"

[calendars.room-c]
account = "dav"
id = "room-c/"
kind = "room"

"""
    text = f"""\
[daemon]
database = "sqlite:///calpool.db"

[http]
listen = "127.0.0.1:{listen}"
confirm_within = "10s"

[sync]
push = false
poll_interval = "5s"

[[api.tokens]]
name = "desk"
sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"
scopes = ["book"]

[accounts.work]
provider = "google"
service_account_file = "{key}"
subject = "{ADMIN}"
api_url = "{fake.api_url}"
ca_file = "{fake.ca_file}"

[calendars.alice]
account = "work"
id = "{OWNER}"
subject = "{OWNER}"
kind = "person"
timezone = "Europe/Berlin"

[calendars.room-a]
account = "work"
id = "{ROOM_A}"
kind = "room"

[calendars.room-b]
account = "work"
id = "{ROOM_B}"
kind = "room"

{caldav_part}[pools.rooms]
members = {json.dumps(list(pool))}
assignment = "priority"

[event_types.consult]
title = "Consultation with {{attendee_name}}"
duration = "30m"
owner = "alice"
pools = ["rooms"]
"""
    path = sites.write_config(folder, text)
    upgraded = subprocess.run([str(CALPOOL), "--config", str(path), "db", "upgrade"],
                              capture_output=True, text=True, env=environment(), timeout=60)
    assert upgraded.returncode == 0, upgraded.stderr
    return path


def eventually(read: Callable[[], Any], done: Callable[[Any], bool], log: Path) -> Any:
    deadline = time.monotonic() + SETTLE_WITHIN
    while not done(seen := read()):
        assert time.monotonic() < deadline, (seen, log.read_text()[-3000:])
        time.sleep(0.3)
    return seen


def test_a_room_that_declines_is_replaced_by_one_that_accepts(
        tmp_path: Path, fake: GoogleCalendarFake) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, fake, port)
    log = tmp_path / "daemon.log"
    start = (datetime.now(UTC) + timedelta(days=2)).replace(hour=9, minute=0, second=0,
                                                             microsecond=0)
    client = httpx.Client(base_url=url, timeout=30, trust_env=False,
                          headers={"Authorization": f"Bearer {TOKEN}"})
    daemon = start_daemon(config, log, url)
    try:
        booked = client.post("/v1/bookings", json={
            "event_type": "consult", "start": start.isoformat(),
            "attendee": {"name": "Guest", "email": "guest@example.com"}})
        assert booked.status_code in (200, 201, 202), booked.text + log.read_text()[-3000:]
        booking_id = booked.json()["id"]

        final = eventually(lambda: client.get(f"/v1/bookings/{booking_id}").json(),
                           lambda doc: doc["status"] in ("confirmed", "failed")
                           and doc["rooms"] == {"rooms": "room-b"}, log)

        assert final["status"] == "confirmed"
        history = json.dumps(final["history"])
        assert "room-a" in history and "room-b" in history
        live = [e for e in fake.events(OWNER) if e.get("status") != "cancelled"]
        assert len(live) == 1
        (event,) = live
        assert event["organizer"]["email"] == OWNER
        rooms = {a["email"]: a["responseStatus"] for a in event["attendees"] if a.get("resource")}
        assert rooms == {ROOM_B: "accepted"}
        assert [e["id"] for e in fake.events(ROOM_B) if e.get("status") != "cancelled"] == [
            event["id"]]
        # Google delivered the room's copy; calpool wrote none.
        for room in (ROOM_A, ROOM_B):
            written = [(method, path) for method, path, _, _ in fake.requests
                       if method in ("POST", "PUT", "PATCH", "DELETE")
                       and (room in path or quote(room) in path)]
            assert written == []
    finally:
        client.close()  # first: an idle keep-alive connection holds up the daemon's shutdown
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=30)
    assert code == 0
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]


def test_a_pool_mixing_google_and_caldav_rooms_writes_the_caldav_room_itself(
        tmp_path: Path, fake: GoogleCalendarFake, radicale: Server) -> None:
    radicale.make_calendar("room-c")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, fake, port, pool=("room-c", "room-a"), caldav=radicale)
    log = tmp_path / "daemon.log"
    start = (datetime.now(UTC) + timedelta(days=2)).replace(hour=11, minute=0, second=0,
                                                             microsecond=0)
    client = httpx.Client(base_url=url, timeout=30, trust_env=False,
                          headers={"Authorization": f"Bearer {TOKEN}"})
    daemon = start_daemon(config, log, url)
    try:
        booked = client.post("/v1/bookings", json={
            "event_type": "consult", "start": start.isoformat(),
            "attendee": {"name": "Guest", "email": "guest@example.com"}})
        assert booked.status_code in (200, 201, 202), booked.text + log.read_text()[-3000:]
        booking_id = booked.json()["id"]
        final = eventually(lambda: client.get(f"/v1/bookings/{booking_id}").json(),
                           lambda doc: doc["status"] != "pending", log)

        assert (final["status"], final["rooms"]) == ("confirmed", {"rooms": "room-c"})
        assert event_uids(radicale, "room-c") == [f"booking:{booking_id}"]
        (event,) = [e for e in fake.events(OWNER) if e.get("status") != "cancelled"]
        assert not [a for a in event.get("attendees", []) if a.get("resource")]  # none invited
        assert "Room C" in event.get("location", "") or "room-c" in event.get("location", "")
        assert [e for e in fake.events(ROOM_A) if e.get("status") != "cancelled"] == []
    finally:
        client.close()  # first: an idle keep-alive connection holds up the daemon's shutdown
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=30)
    assert code == 0
    assert "Traceback" not in log.read_text()
