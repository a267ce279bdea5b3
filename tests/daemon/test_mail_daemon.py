"""The attendee's emails end to end: a daemon built by ``daemon.wiring.build``
from a config with ``[smtp]``, its calendars served by the in-memory
connector (as a CalDAV account or a Google one), bookings made, moved and
cancelled through the customer pages with FastAPI's TestClient, the
scheduler's jobs run by hand on a test clock, and the emails received by a
real SMTP server on loopback (aiosmtpd) and read with ``email`` and
``icalendar``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from icalendar import Calendar as ICalendar

from connectors.memory import MemoryConnector, MemoryProvider
from daemon.config import ConfigError, load_config
from daemon.config.settings import Account
from daemon.http.app import create_app
from daemon.scheduler import drain_outbox, send_emails
from daemon.wiring import CONNECTORS, App, build
from engine.core.model import BookingStatus, Interval
from engine.core.uids import booking_uid
from engine.ports import CalendarConnector, RequestObserver
from tests.support.caldav_servers import free_port
from tests.support.config_builder import SiteConfig

NOW = datetime(2027, 3, 1, 7, tzinfo=UTC)  # a Monday, 08:00 in Berlin
OWNER = "alice@example.com"
ROOM = "room-a@example.com"
ANN = "ann@example.org"


class Inbox:
    """aiosmtpd's handler: keeps every message it accepted."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"

    def messages(self) -> list[EmailMessage]:
        found = []
        for _, _, content in self.received:
            message = message_from_bytes(content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            found.append(message)
        return found


@dataclass
class SmtpServer:
    port: int
    inbox: Inbox = field(default_factory=Inbox)
    controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())
    yield server
    server.stop()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class MailSite:
    app: App
    client: TestClient
    clock: Clock
    smtp: SmtpServer

    def slots(self, count: int = 2) -> list[str]:
        answer = self.app.slots.slots("consult", Interval(NOW, NOW + timedelta(days=3)),
                                      now=self.clock.now)
        return [slot.start.isoformat() for slot in answer.slots[:count]]

    def book(self, start: str) -> str:
        """Book on the public page; the manage token of the booking."""
        answer = self.client.post("/meet/consult", data={
            "start": start, "name": "Ann Example", "email": ANN, "notes": "",
            "timezone": "Europe/Berlin"}, follow_redirects=False)
        assert answer.status_code == 303, answer.text
        found = re.search(r"/manage/([A-Za-z0-9_-]+)", answer.headers["location"])
        assert found is not None
        return found.group(1)

    def booking_id(self, token: str) -> str:
        return self.app.manage.open(token, self.clock.now).booking.id

    def run_jobs(self) -> None:
        """The scheduler's outbox and mail jobs, as they run every 2 s."""
        drain_outbox(self.app)
        send_emails(self.app)

    def email_rows(self) -> list[Any]:
        with self.app.store.reader() as uow:
            return uow.emails.deliveries()


def site_config(smtp_port: int, *, provider: str, notify_attendee: bool | None = None
                ) -> SiteConfig:
    config = (
        SiteConfig()
        .daemon(database="sqlite:///calpool.db", timezone="Europe/Berlin")
        .http(public_url="https://calpool.example.org")
        .smtp(host="127.0.0.1", port=smtp_port, security="none",
              sender="Bookings <bookings@acme.example>")
    )
    if provider == "caldav":
        config = config.caldav_account("work", url="https://dav.invalid/dav/")
    else:
        config = config.account("work", provider="google", service_account_file="sa.json",
                                subject="admin@example.com")
    return (
        config
        .calendars({"alice": OWNER, "room-a": ROOM}, persons={"alice"}, account="work")
        .pool("rooms", members=["room-a"])
        # A Google room is invited and answers later: the Google bookings
        # here take no room, so that they confirm at once.
        .event_type("consult", title="Consultation", duration="30m", owner="alice",
                    pools=["rooms"] if provider == "caldav" else None, public=True,
                    notify_attendee=notify_attendee)
    )


@pytest.fixture
def make_site(tmp_path: Path, smtp: SmtpServer) -> Iterator[Any]:
    built: list[MailSite] = []

    def make(*, provider: str = "caldav", notify_attendee: bool | None = None,
             smtp_up: bool = True) -> MailSite:
        clock = Clock()
        memory = MemoryProvider(clock=clock)
        for calendar in (OWNER, ROOM):
            memory.add_calendar(calendar)

        def connector(account: Account, observe: RequestObserver) -> CalendarConnector:
            return MemoryConnector(memory)

        folder = tmp_path / f"site-{len(built)}"
        folder.mkdir()
        (folder / "sa.json").write_text("{}", encoding="utf-8")
        config = site_config(smtp.port, provider=provider,
                             notify_attendee=notify_attendee).migrated(folder)
        app = build(config, clock=clock, connectors={**CONNECTORS, provider: connector})
        for key in ("alice", "room-a"):
            assert not app.sync.sync_calendar(key).failed
        if smtp_up:
            smtp.start()
        site = MailSite(app, TestClient(create_app(app, environ={})), clock, smtp)
        built.append(site)
        return site

    yield make
    for site in built:
        site.client.close()
        site.app.close()


def invitation(message: EmailMessage) -> tuple[str, Any] | None:
    """The ``text/calendar`` part's method parameter and its VEVENT."""
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            calendar = ICalendar.from_ical(part.get_content())
            events = calendar.walk("VEVENT")
            assert len(events) == 1
            assert str(calendar["METHOD"]) == part.get_param("method")
            return str(part.get_param("method")), events[0]
    return None


def bodies(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def test_booking_moving_and_cancelling_mail_the_attendee_with_caldav_invitations(
        make_site: Any) -> None:
    site = make_site(provider="caldav")
    first, second = site.slots()
    token = site.book(first)
    booking_id = site.booking_id(token)
    site.run_jobs()

    [confirmed] = site.smtp.inbox.messages()
    [(mail_from, recipients, _)] = site.smtp.inbox.received
    assert (mail_from, recipients) == ("bookings@acme.example", [ANN])
    assert confirmed["To"].addresses[0].addr_spec == ANN
    text, html = bodies(confirmed)
    manage = f"https://calpool.example.org/manage/{token}"
    assert manage in text and f'href="{manage}"' in html
    found = invitation(confirmed)
    assert found is not None
    method, event = found
    assert method == "REQUEST"
    assert str(event["UID"]) == booking_uid(booking_id)
    assert str(event["ORGANIZER"]) == f"mailto:{OWNER}"
    assert str(event["ATTENDEE"]) == f"mailto:{ANN}"
    assert event.decoded("DTSTART") == datetime.fromisoformat(first)
    first_sequence = int(event["SEQUENCE"])
    # The token is kept nowhere once the confirmation is sent.
    assert [(row.kind, row.state, row.manage_token, row.message)
            for row in site.email_rows()] == [("confirmed", "done", None, None)]

    answer = site.client.post(f"/manage/{token}/reschedule", data={"start": second},
                              follow_redirects=False)
    assert answer.status_code == 303, answer.text
    site.run_jobs()
    moved = site.smtp.inbox.messages()[1]
    found = invitation(moved)
    assert found is not None
    method, event = found
    assert method == "REQUEST" and str(event["UID"]) == booking_uid(booking_id)
    assert int(event["SEQUENCE"]) > first_sequence
    assert event.decoded("DTSTART") == datetime.fromisoformat(second)
    assert token not in moved.as_string()

    answer = site.client.post(f"/manage/{token}/cancel", follow_redirects=False)
    assert answer.status_code == 303
    site.run_jobs()
    messages = site.smtp.inbox.messages()
    assert len(messages) == 3
    found = invitation(messages[2])
    assert found is not None
    method, event = found
    assert method == "CANCEL" and str(event["UID"]) == booking_uid(booking_id)
    assert "cancelled" in bodies(messages[2])[0]

    site.run_jobs()  # nothing more: an accepted email is never sent again
    assert len(site.smtp.inbox.received) == 3


def test_a_google_owner_that_invites_the_attendee_gets_no_ics(make_site: Any) -> None:
    site = make_site(provider="google")
    token = site.book(site.slots()[0])
    site.run_jobs()
    [message] = site.smtp.inbox.messages()
    assert invitation(message) is None
    assert token in bodies(message)[0]
    assert not [part for part in message.walk()
                if part.get_filename() or "calendar" in part.get_content_type()]


def test_notify_attendee_false_puts_the_invitation_into_the_email(make_site: Any) -> None:
    site = make_site(provider="google", notify_attendee=False)
    site.book(site.slots()[0])
    site.run_jobs()
    [message] = site.smtp.inbox.messages()
    found = invitation(message)
    assert found is not None and found[0] == "REQUEST"


def test_a_mail_server_that_is_down_delays_the_email_not_the_booking(make_site: Any) -> None:
    site = make_site(provider="caldav", smtp_up=False)
    token = site.book(site.slots()[0])
    site.run_jobs()
    assert site.app.manage.open(token, site.clock.now).booking.status is BookingStatus.CONFIRMED
    [row] = site.email_rows()
    assert (row.state, row.attempts) == ("pending", 1)
    assert row.last_error and "could not be reached" in row.last_error

    site.smtp.start()
    for _ in range(20):  # the clock moves on until the retry is due: eventually it arrives
        site.clock.now += timedelta(minutes=1)
        site.run_jobs()
        if site.smtp.inbox.received:
            break
    [message] = site.smtp.inbox.messages()
    assert token in bodies(message)[0]
    site.clock.now += timedelta(hours=2)
    site.run_jobs()
    assert len(site.smtp.inbox.received) == 1
    assert [(row.state, row.manage_token) for row in site.email_rows()] == [("done", None)]


def test_without_smtp_no_email_is_kept(tmp_path: Path) -> None:
    config = site_config(1, provider="caldav")
    del config.document["smtp"]
    clock = Clock()
    memory = MemoryProvider(clock=clock)
    for calendar in (OWNER, ROOM):
        memory.add_calendar(calendar)
    app = build(config.migrated(tmp_path), clock=clock,
                connectors={**CONNECTORS, "caldav": lambda a, o: MemoryConnector(memory)})
    try:
        assert app.mail is None
        for key in ("alice", "room-a"):
            assert not app.sync.sync_calendar(key).failed
        client = TestClient(create_app(app, environ={}))
        start = app.slots.slots("consult", Interval(NOW, NOW + timedelta(days=3)),
                                now=NOW).slots[0].start.isoformat()
        answer = client.post("/meet/consult", data={"start": start, "name": "Ann",
                                                    "email": ANN}, follow_redirects=False)
        assert answer.status_code == 303
        drain_outbox(app)
        with app.store.reader() as uow:
            assert uow.emails.deliveries() == []
    finally:
        app.close()


@pytest.mark.parametrize(("settings", "expected"), [
    ({"host": "127.0.0.1", "security": "ssl", "sender": "b@acme.example"},
     "smtp.security: must be one of"),
    ({"host": "127.0.0.1"}, "smtp.from: required key is missing"),
    ({"host": "127.0.0.1", "sender": "not an address"}, "smtp.from: 'not an address' is not"),
    ({"host": "127.0.0.1", "sender": "b@acme.example", "password": "x"},
     "smtp.password: secrets are never inline"),
    ({"host": "127.0.0.1", "sender": "b@acme.example", "password_env": "P"},
     "smtp.username: required key is missing"),
    ({"host": "127.0.0.1", "sender": "b@acme.example", "username": "u"},
     "smtp.password_env: required key is missing"),
    ({"host": "127.0.0.1", "sender": "b@acme.example", "username": "u", "password_env": "P",
      "password_file": "p"}, "smtp.password_file: give only one of"),
    ({"host": "127.0.0.1", "sender": "b@acme.example", "port": 0}, "smtp.port: must be at least"),
])
def test_config_errors_name_the_key(tmp_path: Path, settings: dict[str, Any],
                                    expected: str) -> None:
    config = site_config(25, provider="caldav")
    del config.document["smtp"]
    path = config.smtp(**settings).write(tmp_path)
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert any(problem.startswith(expected) for problem in refused.value.problems), (
        refused.value.problems)


def test_config_defaults_and_the_port_of_each_security(tmp_path: Path) -> None:
    config = site_config(25, provider="caldav")
    del config.document["smtp"]
    loaded = load_config(config.smtp(host="mail.acme.example", security="tls",
                                     sender="Bookings <b@acme.example>").write(tmp_path))
    assert loaded.smtp is not None
    assert (loaded.smtp.port, loaded.smtp.security, loaded.smtp.username) == (465, "tls", None)
    assert loaded.event_types["consult"].notify_attendee is True
