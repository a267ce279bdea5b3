"""The attendee's emails: confirmed, rescheduled, cancelled.

Which bookings get mail and when is settled in the booking's transactions
(``engine.store.emails``): with ``[smtp]`` set, the manage-token issuer
(:class:`~engine.services.manage.ManageService`) writes a waiting
confirmation that holds the raw manage token; the booking's confirmation
makes it due, a failure drops it, and later reschedules and cancellations
add their own emails.  :class:`MailDispatcher` runs on the scheduler's
thread, never a request's: it claims due emails, composes each at its first
attempt (kept, so a retry sends the same bytes with the same Message-ID),
hands it to the :class:`~engine.ports.MailSender`, and finishes it once the
server accepted it: an accepted email is never sent again, and its token
and text are cleared.  A refused or unreachable server is retried with
backoff (:class:`~engine.services.webhooks.WebhookPolicy`) for up to a
day; a permanent refusal ends it at once.

The message is plain text and HTML (Jinja2 templates beside this module)
with the manage link (only the confirmation has it: the token is kept
nowhere else).  When the owner's calendar is CalDAV, or the event type has
``notify_attendee = false``, no provider invites the attendee, so the email
carries the invitation: ``text/calendar; method=REQUEST`` (``CANCEL`` on
cancel) with the owner's event UID (:func:`engine.core.uids.booking_uid`)
and SEQUENCE, ORGANIZER the owner and ATTENDEE the attendee.  Otherwise
Google or Microsoft already invited the attendee and the email carries no
``.ics``: one invitation, not two.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import message_from_string
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo

from icalendar import Calendar as ICalendar
from icalendar import Event as IEvent
from icalendar import vCalAddress, vText
from jinja2 import Environment, FileSystemLoader, select_autoescape

from engine.core.model import Booking, Calendar, EventType
from engine.core.uids import booking_name, booking_uid
from engine.errors import PermanentError, TransientError
from engine.ports import MailSender
from engine.services.delivery import CalendarSource, known_addresses
from engine.services.drafts import draft, event_sequence
from engine.services.webhooks import WebhookPolicy
from engine.store import EmailDelivery, Store

log = logging.getLogger(__name__)

CONFIRMED, RESCHEDULED, CANCELLED = "confirmed", "rescheduled", "cancelled"
SUBJECTS = {CONFIRMED: "Booked: {title}", RESCHEDULED: "Moved: {title}",
            CANCELLED: "Cancelled: {title}"}

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "mail_templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def manage_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/manage/{token}"


@dataclass
class MailReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


class MailComposer:
    """Writes one email of a booking (see the module docstring)."""

    def __init__(self, *, sender: str, public_url: str, event_types: Mapping[str, EventType],
                 calendars: Mapping[str, Calendar],
                 sources: Mapping[str, CalendarSource]) -> None:
        self._sender = sender
        self._public_url = public_url
        self._event_types = event_types
        self._calendars = calendars
        self._sources = sources
        self._addresses = known_addresses(sources)
        domain = parseaddr(sender)[1].rpartition("@")[2]
        self._domain = domain or "calpool"

    def invites(self, booking: Booking) -> bool:
        """Whether calpool's email carries the invitation (no provider sends one)."""
        event_type = self._event_types.get(booking.event_type)
        source = self._sources.get(booking.owner)
        return ((source is not None and source.provider == "caldav")
                or (event_type is not None and not event_type.notify_attendee))

    def compose(self, delivery: EmailDelivery, booking: Booking, *, sequence: int,
                now: datetime) -> EmailMessage | None:
        """The message, or ``None`` when the booking cannot be mailed (no
        attendee, or its event type left the config)."""
        event_type = self._event_types.get(booking.event_type)
        if booking.attendee is None or not booking.attendee.email or event_type is None:
            return None
        event = draft(booking, event_type, self._calendars, self._addresses, sequence=sequence)
        owner = self._calendars.get(booking.owner)
        zone = ZoneInfo(owner.timezone if owner is not None else "UTC")
        start, end = booking.start.astimezone(zone), booking.end.astimezone(zone)
        organizer = event.organizer
        context = {
            "kind": delivery.kind,
            "title": event.title,
            "attendee": booking.attendee.name or booking.attendee.email,
            "owner": organizer.name if organizer is not None else booking.owner,
            "day": start.strftime("%A, %d %B %Y"),
            "time": f"{start:%H:%M}–{end:%H:%M} ({zone.key})",
            "location": event.location,
            "manage_url": (manage_url(self._public_url, delivery.manage_token)
                           if delivery.manage_token else None),
        }
        message = EmailMessage(policy=SMTP)
        message["Subject"] = SUBJECTS[delivery.kind].format(title=event.title)
        message["From"] = self._sender
        message["To"] = _address(booking.attendee.name, booking.attendee.email)
        message["Date"] = format_datetime(now)
        message["Message-ID"] = (f"<{booking_name(booking.id)}.{delivery.kind}."
                                 f"{delivery.id}@{self._domain}>")
        message.set_content(_templates.get_template("booking.txt").render(context))
        message.add_alternative(_templates.get_template("booking.html").render(context),
                                subtype="html")
        if self.invites(booking):
            method = "CANCEL" if delivery.kind == CANCELLED else "REQUEST"
            ics = self._invitation(booking, event.title, event.location, method, sequence,
                                   organizer.email if organizer is not None else "",
                                   organizer.name if organizer is not None else "", now)
            message.add_alternative(ics, subtype="calendar", params={"method": method})
        return message

    def _invitation(self, booking: Booking, title: str, location: str, method: str,
                    sequence: int, organizer_email: str, organizer_name: str,
                    now: datetime) -> str:
        assert booking.attendee is not None
        calendar = ICalendar()
        calendar.add("prodid", "-//calpool//mail//EN")
        calendar.add("version", "2.0")
        calendar.add("method", method)
        event = IEvent()
        event.add("uid", booking_uid(booking.id))
        event.add("sequence", sequence)
        event.add("dtstamp", now)
        event.add("dtstart", booking.start)
        event.add("dtend", booking.end)
        event.add("summary", title)
        if location:
            event.add("location", location)
        event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
        organizer = vCalAddress(f"mailto:{organizer_email or parseaddr(self._sender)[1]}")
        organizer.params["cn"] = vText(organizer_name or booking.owner)
        event["organizer"] = organizer
        attendee = vCalAddress(f"mailto:{booking.attendee.email}")
        if booking.attendee.name:
            attendee.params["cn"] = vText(booking.attendee.name)
        attendee.params["role"] = vText("REQ-PARTICIPANT")
        attendee.params["partstat"] = vText("NEEDS-ACTION")
        attendee.params["rsvp"] = vText("FALSE")
        event.add("attendee", attendee)
        calendar.add_component(event)
        ics: bytes = calendar.to_ical()
        return ics.decode()


def _address(name: str, email: str) -> str:
    return str(Address(display_name=name, addr_spec=email)) if name else email


class MailDispatcher:
    """Sends the due emails; see the module docstring."""

    def __init__(self, store: Store, sender: MailSender, composer: MailComposer, *,
                 from_address: str, policy: WebhookPolicy | None = None,
                 rng: random.Random | None = None, name: str | None = None) -> None:
        self._store = store
        self._sender = sender
        self._composer = composer
        self._from = parseaddr(from_address)[1]
        self._policy = policy or WebhookPolicy(first_wait=timedelta(seconds=30))
        self._rng = rng or random.SystemRandom()
        self.name = name or f"mail-{uuid.uuid4().hex[:12]}"

    def drain(self, now: datetime) -> MailReport:
        report = MailReport()
        while True:
            with self._store.unit_of_work() as uow:
                claimed = uow.emails.claim(self.name, now, hold_for=self._policy.hold_for,
                                           limit=self._policy.batch)
                uow.commit()
            if not claimed:
                return report
            for delivery in claimed:
                self._send(delivery, now, report)

    def _send(self, delivery: EmailDelivery, now: datetime, report: MailReport) -> None:
        text: str | None = delivery.message
        recipient: str | None = None
        if text is None:
            text, recipient = self._message(delivery, now)
        if text is None:
            self._finish(delivery, now, "the booking has no attendee to mail (or is gone)",
                         report, retry=False)
            return
        if recipient is None:
            recipient = _recipient(text)
        try:
            self._sender.send(text.encode(), self._from, [recipient])
        except TransientError as exc:
            self._finish(delivery, now, str(exc), report, retry=True)
            return
        except PermanentError as exc:
            self._finish(delivery, now, str(exc), report, retry=False)
            return
        with self._store.unit_of_work() as uow:
            uow.emails.complete(delivery.id, self.name, now)
            uow.commit()
        report.sent += 1

    def _message(self, delivery: EmailDelivery, now: datetime) -> tuple[str | None, str | None]:
        with self._store.unit_of_work() as uow:
            booking = uow.bookings.get(delivery.booking_id)
            if booking is None:
                return None, None
            sequence = event_sequence(uow, booking.id, booking.owner)
            message = self._composer.compose(delivery, booking, sequence=sequence, now=now)
            if message is None or booking.attendee is None:
                return None, None
            text = message.as_string()
            uow.emails.keep_message(delivery.id, text)
            uow.commit()
        return text, booking.attendee.email

    def _finish(self, delivery: EmailDelivery, now: datetime, error: str, report: MailReport,
                *, retry: bool) -> None:
        retry_at = (self._policy.retry_at(now, delivery.attempts, delivery.created_at, self._rng)
                    if retry else None)
        with self._store.unit_of_work() as uow:
            uow.emails.fail(delivery.id, self.name, error, retry_at=retry_at, now=now)
            uow.commit()
        if retry_at is not None:
            report.retried += 1
            return
        report.failed += 1
        log.warning("email %s of booking %s given up after %d attempts: %s", delivery.kind,
                    delivery.booking_id, delivery.attempts, error)


def _recipient(text: str) -> str:
    to: str = message_from_string(text)["To"] or ""
    return parseaddr(to)[1]
