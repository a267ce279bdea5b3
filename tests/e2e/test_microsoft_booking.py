"""``calpool run`` against the Microsoft Graph fake over TLS (issue 17): an
M365 person with a pool of two room mailboxes.  A booking invites the
pool's first room as a resource attendee of the owner's event; the room's
booking attendant accepts and the meeting lands in its mailbox, once.  A
room that declines is replaced within the pool: the owner's event is
updated in place to invite the other room, which accepts.  The fake runs
in this process; the daemon reaches it only through its config
(``authority_url``, ``graph_url``, ``ca_file``, the secret in the
environment) and the real msal and requests."""

from __future__ import annotations

import hashlib
import signal
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import CALPOOL, environment
from tests.e2e.test_booking_crash import event_uids, start_daemon
from tests.fakes.graph import GraphFake, RoomAnswer
from tests.support import sites
from tests.support.booking_copies import booking_key
from tests.support.caldav_servers import free_port, start_radicale

TOKEN = "m365-e2e-token"
SECRET_ENV = "CALPOOL_TEST_M365_SECRET"
OWNER = "alice@contoso.example"
ROOMS = {"room-a": "havel@contoso.example", "room-b": "spree@contoso.example"}
SETTLE_WITHIN = 60.0
DAV_ROOM = "room-dav"


@pytest.fixture
def fake() -> Iterator[GraphFake]:
    with GraphFake() as running:
        running.add_mailbox(OWNER, timezone="Europe/Berlin")
        for address in ROOMS.values():
            running.add_room(address, name=address.split("@")[0].title(), delay=0.2)
        yield running


def write_config(folder: Path, fake: GraphFake, listen: int,
                 tls: tuple[str, str] | None = None, dav_home: str | None = None,
                 confirm_within: str = "10s") -> Path:
    """The site's config; with ``tls`` (certificate, key) the daemon serves
    https, and Graph notifies it (push on, polls an hour apart); with
    ``dav_home`` the pool's first room is a CalDAV calendar there."""
    rooms = "".join(
        f'[calendars.{key}]\naccount = "m365"\nid = "{address}"\nkind = "room"\n\n'
        for key, address in ROOMS.items()
    )
    members = ", ".join(f'"{key}"' for key in ROOMS)
    if dav_home is not None:
        rooms = (f'[accounts.dav]\nprovider = "caldav"\nurl = "{dav_home}"\n\n'
                 f'[calendars.{DAV_ROOM}]\naccount = "dav"\nid = "{DAV_ROOM}/"\n'
                 f'kind = "room"\nname = "Spree"\n\n') + rooms
        members = f'"{DAV_ROOM}", {members}'

    if tls is None:
        http, sync = "", 'push = false\npoll_interval = "2s"'
    else:
        http = (f'public_url = "https://127.0.0.1:{listen}"\n'
                f'tls_cert_file = "{tls[0]}"\ntls_key_file = "{tls[1]}"')
        sync = 'push = true\npoll_interval = "1h"\nsafety_poll = "1h"'
    text = f"""\
[daemon]
database = "sqlite:///calpool.db"
outbox_claim_hold = "3s"   # a killed daemon's claims are taken over soon

[http]
listen = "127.0.0.1:{listen}"
confirm_within = "{confirm_within}"
{http}

[sync]
{sync}
room_answer_within = "30s"
lease_ttl = "5s"

[[api.tokens]]
name = "desk"
sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"
scopes = ["book", "slots"]

[accounts.m365]
provider = "microsoft"
tenant_id = "{fake.tenant_id}"
client_id = "{fake.client_id}"
client_secret_env = "{SECRET_ENV}"
authority_url = "{fake.authority_url}"
graph_url = "{fake.graph_url}"
ca_file = "{fake.ca_file}"

[calendars.alice]
account = "m365"
id = "{OWNER}"
kind = "person"
timezone = "Europe/Berlin"

{rooms}[pools.rooms]
members = [{members}]
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


def settle(check: Callable[[], Any], expected: Any, log: Path) -> None:
    deadline = time.monotonic() + SETTLE_WITHIN
    while (seen := check()) != expected:
        assert time.monotonic() < deadline, (seen, log.read_text()[-4000:])
        time.sleep(0.2)


def rooms_of_owners_event(fake: GraphFake, subject_part: str) -> dict[str, str]:
    """The resource attendees of the owner's event and their answers."""
    events = [e for e in fake.events(OWNER) if subject_part in e.get("subject", "")]
    if len(events) != 1:
        return {"events": str(len(events))}
    return {a["emailAddress"]["address"]: a["status"]["response"]
            for a in events[0]["attendees"] if a["type"] == "resource"}


def owner_patches(fake: GraphFake) -> list[str]:
    return [path for method, path, _, _ in fake.requests
            if method == "PATCH" and f"/users/{OWNER}/events/" in path]


def copies(fake: GraphFake, subject_part: str) -> dict[str, int]:
    return {key: sum(subject_part in e.get("subject", "") for e in fake.events(address))
            for key, address in ROOMS.items()}


def test_book_a_person_and_a_room_mailbox_then_replace_a_room_that_declines(
    tmp_path: Path, fake: GraphFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, fake.client_secret)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, fake, port)
    log = tmp_path / "daemon.log"
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(
        hour=9, minute=0, second=0, microsecond=0)
    client = httpx.Client(base_url=url, timeout=30, trust_env=False,
                          headers={"Authorization": f"Bearer {TOKEN}"})
    daemon = start_daemon(config, log, url)

    def book(start: datetime, name: str) -> dict[str, Any]:
        booked = client.post("/v1/bookings", json={
            "event_type": "consult", "start": start.isoformat(),
            "attendee": {"name": name, "email": f"{name.lower()}@example.net"}})
        assert booked.status_code == 201, booked.text + log.read_text()[-3000:]
        answer: dict[str, Any] = booked.json()
        return answer

    def booking(identifier: str) -> tuple[str, dict[str, str]]:
        found = client.get(f"/v1/bookings/{identifier}").json()
        return found["status"], found["rooms"]

    try:
        first = book(tomorrow, "Guest")
        assert first["rooms"] == {"rooms": "room-a"}
        settle(lambda: rooms_of_owners_event(fake, "Guest"),
               {ROOMS["room-a"]: "accepted"}, log)
        settle(lambda: booking(first["id"]), ("confirmed", {"rooms": "room-a"}), log)
        assert copies(fake, "Guest") == {"room-a": 1, "room-b": 0}

        fake.set_room_answer(ROOMS["room-a"], RoomAnswer.DECLINE)
        patches = len(owner_patches(fake))
        second = book(tomorrow + timedelta(hours=2), "Other")
        settle(lambda: booking(second["id"]), ("confirmed", {"rooms": "room-b"}), log)
        settle(lambda: rooms_of_owners_event(fake, "Other"), {ROOMS["room-b"]: "accepted"}, log)
        assert copies(fake, "Other") == {"room-a": 0, "room-b": 1}
        # Room A was invited first (the pool's first by priority) and declined:
        # the owner's event was updated in place to invite room B.
        assert len(owner_patches(fake)) > patches
        assert len([e for e in fake.events(OWNER) if "Other" in e["subject"]]) == 1
        # The first booking keeps its room: its copy is calpool's, not a conflict.
        assert booking(first["id"]) == ("confirmed", {"rooms": "room-a"})
    finally:
        client.close()  # first: an idle keep-alive connection holds up the daemon's shutdown
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=30)
    assert code == 0
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]


def delta_requests(fake: GraphFake, mailbox: str) -> int:
    return sum(1 for _, path, _, _ in fake.requests
               if path.endswith(f"/users/{mailbox}/calendarView/delta"))


def start_tls_daemon(config: Path, log: Path, url: str, ca_file: str) -> subprocess.Popen[bytes]:
    """``calpool run`` serving https; ready once ``/healthz`` answers."""
    with log.open("ab") as out:
        process = subprocess.Popen([str(CALPOOL), "--config", str(config), "run"],
                                   stdout=out, stderr=subprocess.STDOUT, env=environment())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/healthz", timeout=2,
                         verify=ssl.create_default_context(cafile=ca_file),
                         trust_env=False).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    pytest.fail("calpool run did not answer /healthz:\n" + log.read_text())


def test_a_change_in_a_room_mailbox_reaches_the_slots_through_its_subscription(
    tmp_path: Path, fake: GraphFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, fake.client_secret)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    fake.receiver_ca_file = fake.ca_file
    config = write_config(tmp_path, fake, port, tls=fake.issue_cert("127.0.0.1"))
    log = tmp_path / "daemon.log"
    day = (datetime.now(UTC) + timedelta(days=2)).replace(hour=0, minute=0, second=0,
                                                          microsecond=0)
    taken = day.replace(hour=10)
    trusted = ssl.create_default_context(cafile=fake.ca_file)
    client = httpx.Client(base_url=url, timeout=30, trust_env=False, verify=trusted,
                          headers={"Authorization": f"Bearer {TOKEN}"})
    daemon = start_tls_daemon(config, log, url, fake.ca_file)

    def starts() -> set[datetime]:
        answer = client.get("/v1/event-types/consult/slots", params={
            "start": day.isoformat(), "end": (day + timedelta(days=1)).isoformat(),
            "timezone": "UTC"})
        assert answer.status_code == 200, answer.text
        return {datetime.fromisoformat(slot["start"]) for slot in answer.json()["slots"]}

    def live_subscriptions() -> int:
        return sum(not sub["deleted"] for sub in fake.subscriptions.values())

    try:
        settle(live_subscriptions, 1 + len(ROOMS), log)  # validated against /hooks/microsoft
        settle(lambda: taken in starts(), True, log)
        changed = time.monotonic()
        for key, address in ROOMS.items():
            fake.create(address, {"subject": f"walk-in {key}", "showAs": "busy",
                                  "start": {"dateTime": taken.isoformat(), "timeZone": "UTC"},
                                  "end": {"dateTime": (taken + timedelta(hours=1)).isoformat(),
                                          "timeZone": "UTC"}})
        # Both rooms taken at 10:00: the slot goes, though polls are an hour apart.
        settle(lambda: taken in starts(), False, log)
        print(f"change on the provider -> slot gone: {time.monotonic() - changed:.2f} s")
        notified = [url for url, _, body in fake.deliveries if b"changeType" in body]
        assert notified and all(u.startswith(f"{url}/hooks/microsoft") for u in notified)

        # A notification with a wrong clientState is refused (401: nothing is triggered).
        room_a = next(i for i, sub in fake.subscriptions.items()
                      if ROOMS["room-a"] in sub["resource"] and not sub["deleted"])
        forged = client.post("/hooks/microsoft", json={"value": [{
            "subscriptionId": room_a, "clientState": "not-the-secret", "changeType": "updated",
            "resource": f"Users/{ROOMS['room-a']}/Events/x",
            "resourceData": {"id": "x"}, "tenantId": fake.tenant_id}]})
        assert forged.status_code == 401, forged.text
        # A lifecycle "missed" from Graph: that calendar is synced again.
        deltas = delta_requests(fake, ROOMS["room-a"])
        fake.send_lifecycle(room_a, "missed")
        settle(lambda: delta_requests(fake, ROOMS["room-a"]) > deltas, True, log)
    finally:
        client.close()  # first: an idle keep-alive connection holds up the daemon's shutdown
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=30)
    assert code == 0
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    # Shut down: the daemon deleted its subscriptions.
    assert live_subscriptions() == 0, text[-3000:]


def walk_in(start: datetime) -> bytes:
    stamp = "%Y%m%dT%H%M%SZ"
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:someone else\r\nBEGIN:VEVENT\r\n"
        f"UID:walk-in\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start.strftime(stamp)}\r\n"
        f"DTEND:{(start + timedelta(hours=1)).strftime(stamp)}\r\nSUMMARY:Walk-in\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


def test_a_pool_mixing_a_caldav_room_with_room_mailboxes(
    tmp_path: Path, fake: GraphFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool's first room is a CalDAV calendar: calpool writes its copy
    there and names it on the owner's Graph event without inviting it; the
    next booking at that time gets a room mailbox, invited, which accepts."""
    radicale = start_radicale(tmp_path / "dav")
    try:
        dav_room = radicale.make_calendar(DAV_ROOM)
        monkeypatch.setenv(SECRET_ENV, fake.client_secret)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        config = write_config(tmp_path, fake, port, dav_home=radicale.home)
        log = tmp_path / "daemon.log"
        start = (datetime.now(UTC) + timedelta(days=1)).replace(
            hour=13, minute=0, second=0, microsecond=0)
        later = start + timedelta(hours=2)
        # The CalDAV room is taken at the later time, before the daemon's first sync.
        status, _, _ = radicale.request("PUT", f"{dav_room}walk-in.ics", walk_in(later),
                                        {"Content-Type": "text/calendar"})
        assert status == 201
        client = httpx.Client(base_url=url, timeout=30, trust_env=False,
                              headers={"Authorization": f"Bearer {TOKEN}"})
        daemon = start_daemon(config, log, url)
        try:
            first = client.post("/v1/bookings", json={
                "event_type": "consult", "start": start.isoformat(),
                "attendee": {"name": "Dav", "email": "dav@example.net"}})
            assert first.status_code == 201, first.text + log.read_text()[-3000:]
            assert first.json()["rooms"] == {"rooms": DAV_ROOM}
            assert event_uids(radicale, DAV_ROOM) == sorted(
                [booking_key(first.json()["id"]), "walk-in"])
            (owners,) = [e for e in fake.events(OWNER) if "Dav" in e["subject"]]
            assert [a for a in owners["attendees"] if a["type"] == "resource"] == []
            assert owners["location"]["displayName"] == "Spree"

            # The daemon's first sync of the CalDAV room (within seconds of its
            # start) shows the walk-in: until then calpool would assign that room,
            # find it taken on writing, and reassign.
            def dav_room_offered_later() -> bool:
                answer = client.get("/v1/event-types/consult/slots", params={
                    "start": later.isoformat(),
                    "end": (later + timedelta(minutes=1)).isoformat()})
                assert answer.status_code == 200, answer.text
                return any(DAV_ROOM in slot["rooms_available"]["rooms"]
                           for slot in answer.json()["slots"])

            settle(dav_room_offered_later, False, log)
            second = client.post("/v1/bookings", json={
                "event_type": "consult", "start": later.isoformat(),
                "attendee": {"name": "Mailbox", "email": "mailbox@example.net"}})
            assert second.status_code == 201, second.text + log.read_text()[-3000:]
            room = second.json()["rooms"]["rooms"]
            assert room in ROOMS
            settle(lambda: rooms_of_owners_event(fake, "Mailbox"),
                   {ROOMS[room]: "accepted"}, log)
            assert event_uids(radicale, DAV_ROOM) == sorted(
                [booking_key(first.json()["id"]), "walk-in"])
        finally:
            client.close()  # first: an idle keep-alive connection holds up the daemon's shutdown
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=30)
        assert code == 0
        assert "Traceback" not in log.read_text()
    finally:
        radicale.stop()


def test_killed_right_after_the_owners_event_landed_the_booking_is_written_once(
    tmp_path: Path, fake: GraphFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``kill -9`` as soon as the owner's event is in the mailbox, before
    (or just after) the daemon kept its id: after the restart the outbox
    writes the booking again, and the connector finds the event by the
    booking's extended property instead of posting a second one."""
    monkeypatch.setenv(SECRET_ENV, fake.client_secret)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, fake, port, confirm_within="0s")
    log = tmp_path / "daemon.log"
    start = (datetime.now(UTC) + timedelta(days=1)).replace(
        hour=15, minute=0, second=0, microsecond=0)
    client = httpx.Client(base_url=url, timeout=30, trust_env=False,
                          headers={"Authorization": f"Bearer {TOKEN}"})
    daemon = start_daemon(config, log, url)
    try:
        accepted = client.post("/v1/bookings", json={
            "event_type": "consult", "start": start.isoformat(),
            "attendee": {"name": "Crash", "email": "crash@example.net"}})
        assert accepted.status_code == 202, accepted.text + log.read_text()[-3000:]
        identifier = accepted.json()["id"]
        deadline = time.monotonic() + SETTLE_WITHIN
        while not [e for e in fake.events(OWNER) if "Crash" in e["subject"]]:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
        daemon.kill()  # SIGKILL: no shutdown, the store update may not have happened
        daemon.wait(timeout=30)

        daemon = start_daemon(config, log, url)
        settle(lambda: client.get(f"/v1/bookings/{identifier}").json()["status"],
               "confirmed", log)
        settle(lambda: rooms_of_owners_event(fake, "Crash"), {ROOMS["room-a"]: "accepted"}, log)
        assert copies(fake, "Crash") == {"room-a": 1, "room-b": 0}
    finally:
        client.close()  # first: an idle keep-alive connection holds up the daemon's shutdown
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=30)
    assert code == 0
