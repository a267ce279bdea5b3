"""``calpool run`` against Cyrus IMAP's CalDAV (issue 20): book, reschedule
to another room, cancel — exactly one event of the booking per calendar
after each step, read with raw REPORTs, and no traceback in the log.

With one owner for all calendars (calpool's login owns the person's and the
rooms' calendars) every booking used to fail: Cyrus refuses one UID in two
calendars of a login (``C:unique-scheduling-object-resource``), and that
403 surfaced as an authorization failure.  With one owner per calendar,
shared to calpool's login, calpool names each calendar by its owner's path
and Cyrus answers with a 301 to the shared location.  Each layout runs with
every ``sync_method``; the move finds room A taken by a meeting written
behind calpool's back (through sync, or the live check before the room's
write).
"""

from __future__ import annotations

import hashlib
import html
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from connectors.caldav import SyncMethod
from connectors.caldav.account import booking_uid, copy_uid
from tests.e2e.conftest import CALPOOL, environment
from tests.e2e.test_booking_crash import start_daemon
from tests.support import sites
from tests.support.booking_copies import booking_key, event_names
from tests.support.caldav_servers import free_port
from tests.support.cyrus import CyrusServer, Layout, require_cyrus, start_cyrus

TOKEN = "cyrus-e2e-token"
PASSWORD_ENV = "CALPOOL_TEST_CYRUS_PASSWORD"
CALENDARS = ("alice", "room-a", "room-b")
SETTLE_WITHIN = 30.0


@pytest.fixture(params=list(Layout), ids=[layout.value for layout in Layout])
def cyrus(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CyrusServer]:
    require_cyrus()
    with start_cyrus(tmp_path, layout=request.param) as server:
        yield server


def write_config(folder: Path, server: CyrusServer, listen: int, sync_method: SyncMethod) -> Path:
    calendars = "".join(
        f'[calendars.{key}]\naccount = "dav"\nid = "{server.calendar_id(key)}"\n'
        f'kind = "{"person" if key == "alice" else "room"}"\n\n'
        for key in CALENDARS
    )
    text = f"""\
[daemon]
database = "sqlite:///calpool.db"

[http]
listen = "127.0.0.1:{listen}"
confirm_within = "10s"

[[api.tokens]]
name = "desk"
sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"
scopes = ["book"]

[accounts.dav]
provider = "caldav"
url = "{server.home}"
username = "{server.username}"
password_env = "{PASSWORD_ENV}"
sync_method = "{sync_method.value}"

{calendars}[pools.rooms]
members = ["room-a", "room-b"]
assignment = "priority"

[event_types.consult]
title = "Consultation with {{attendee_name}}"
duration = "30m"
owner = "alice"
pools = ["rooms"]
"""
    path = sites.write_config(folder, text)
    upgraded = subprocess.run(
        [str(CALPOOL), "--config", str(path), "db", "upgrade"],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=60,
    )
    assert upgraded.returncode == 0, upgraded.stderr
    return path


def stored(server: CyrusServer, url: str, calendar_id: str) -> list[str]:
    """The events in the calendar at ``url``, by a raw calendar-query REPORT
    (calpool's copies by booking, each copy's UID checked; others by UID)."""
    query = (
        b'<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
        b'<d:prop><c:calendar-data/></d:prop><c:filter><c:comp-filter name="VCALENDAR">'
        b'<c:comp-filter name="VEVENT"/></c:comp-filter></c:filter></c:calendar-query>'
    )
    status, _, body = server.request(
        "REPORT", url, query, {"Depth": "1", "Content-Type": "application/xml"}
    )
    assert status == 207, (status, body[:300])
    return sorted(event_names(html.unescape(body.decode()), calendar_id))


def uids_in(server: CyrusServer, url: str) -> list[str]:
    status, _, body = server.request(
        "REPORT",
        url,
        b'<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
        b'<d:prop><c:calendar-data/></d:prop><c:filter><c:comp-filter name="VCALENDAR"/>'
        b"</c:filter></c:calendar-query>",
        {"Depth": "1", "Content-Type": "application/xml"},
    )
    assert status == 207
    return sorted(re.findall(r"^UID:(\S+?)\r?$", html.unescape(body.decode()), re.M))


def foreign_meeting(uid: str, start: datetime) -> bytes:
    stamp = "%Y%m%dT%H%M%SZ"
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:someone else\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start.strftime(stamp)}\r\n"
        f"DTEND:{(start + timedelta(hours=1)).strftime(stamp)}\r\nSUMMARY:Walk-in\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


def settle(
    on_server: Callable[[], dict[str, list[str]]], expected: dict[str, list[str]], log: Path
) -> None:
    """Wait until the calendars hold ``expected``, at most SETTLE_WITHIN."""
    deadline = time.monotonic() + SETTLE_WITHIN
    while (seen := on_server()) != expected:
        assert time.monotonic() < deadline, (seen, log.read_text()[-3000:])
        time.sleep(0.2)


@pytest.mark.parametrize("sync_method", list(SyncMethod), ids=lambda method: method.value)
def test_book_reschedule_to_another_room_and_cancel_on_cyrus(
    tmp_path: Path, cyrus: CyrusServer, sync_method: SyncMethod, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = {key: cyrus.make_calendar(key) for key in CALENDARS}
    ids = {key: cyrus.calendar_id(key) for key in CALENDARS}
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    later = tomorrow + timedelta(hours=2)
    # Room A is taken at the later time, before the daemon's first sync.
    walk_in = f"walk-in-{cyrus.layout.value}"
    status, _, body = cyrus.request(
        "PUT",
        f"{urls['room-a']}walk-in.ics",
        foreign_meeting(walk_in, later),
        {"Content-Type": "text/calendar; charset=utf-8"},
    )
    assert status == 201, body

    monkeypatch.setenv(PASSWORD_ENV, cyrus.password or "")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, cyrus, port, sync_method)
    log = tmp_path / "daemon.log"
    client = httpx.Client(
        base_url=url,
        timeout=30,
        trust_env=False,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    daemon = start_daemon(config, log, url)

    def on_server() -> dict[str, list[str]]:
        return {key: stored(cyrus, urls[key], ids[key]) for key in CALENDARS}

    try:
        booked = client.post(
            "/v1/bookings",
            json={
                "event_type": "consult",
                "start": tomorrow.isoformat(),
                "attendee": {"name": "Guest", "email": "guest@example.com"},
            },
        )
        assert booked.status_code == 201, booked.text + log.read_text()[-3000:]
        booking = booked.json()
        assert (booking["status"], booking["rooms"]) == ("confirmed", {"rooms": "room-a"})
        mine = booking_key(booking["id"])
        assert on_server() == {"alice": [mine], "room-a": sorted([mine, walk_in]), "room-b": []}
        # One UID per copy: the owner's is the attendee's, the room's its own.
        assert uids_in(cyrus, urls["alice"]) == [booking_uid(booking["id"])]
        assert copy_uid(booking["id"], ids["room-a"]) in uids_in(cyrus, urls["room-a"])

        moved = client.post(
            f"/v1/bookings/{booking['id']}/reschedule", json={"start": later.isoformat()}
        )
        assert moved.status_code == 200, moved.text + log.read_text()[-3000:]
        assert moved.json()["rooms"] == {"rooms": "room-b"}
        # The answer comes after one drain of the booking's jobs, but the
        # daemon's own outbox loop may hold the removal from room A at that
        # moment (a claimed job is not run twice), so the move settles
        # eventually rather than by the answer.
        settle(on_server, {"alice": [mine], "room-a": [walk_in], "room-b": [mine]}, log)
        assert uids_in(cyrus, urls["room-b"]) == [copy_uid(booking["id"], ids["room-b"])]

        cancelled = client.delete(f"/v1/bookings/{booking['id']}")
        assert cancelled.status_code == 200, cancelled.text
        settle(on_server, {"alice": [], "room-a": [walk_in], "room-b": []}, log)
        assert client.get(f"/v1/bookings/{booking['id']}").json()["status"] == "cancelled"
    finally:
        client.close()  # first: an idle keep-alive connection holds up the daemon's shutdown
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=30)
    assert code == 0
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    assert "Expected some valid XML" not in text, text[-3000:]
